%% @private
%% @doc Registry of named valves: owns the table that maps names to handles
%% and serialises creation, deletion and regulation changes. Lookups read
%% the table directly and never message this process; asks never see it.
%%
%% Table rows are `{Name, Valve, Regulation | none, Token}'. A regulator
%% checks on every tick that the row still carries its `Token' and stops
%% when it does not, so replacing or removing a regulation needs no pid
%% bookkeeping here.
-module(sluice_drop_server).
-behaviour(gen_server).

-export([start_link/0, validate/1, validate_regulation/1, new/3, delete/1, regulate/2,
         lookup/1, regulated/0, regulated/1, row/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, code_change/3]).

-include_lib("kernel/include/logger.hrl").
-include("sluice_drop.hrl").

-define(TABLE, sluice_drop_valves).
-define(MAX_PRIORITIES, 16).

-type rates() :: [{sluice_drop:priority(), float()}].

-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc Checks valve options; returns the rate of each priority and the regulation.
-spec validate(map()) ->
    {ok, rates(), map() | none} | {error, {bad_option, term()}}.
validate(Opts) ->
    Spec = [{rate, 1, fun sluice_opts:any/1}, {rates, #{}, fun sluice_opts:any/1},
            {regulate, none, fun sluice_opts:any/1}],
    case sluice_opts:validate(Opts, Spec) of
        {ok, Full} -> validate_rates(Full);
        {error, _} = Error -> Error
    end.

-spec validate_rates(map()) -> {ok, rates(), map() | none} | {error, {bad_option, term()}}.
validate_rates(#{rates := Rates, rate := Default} = Opts) ->
    if
        not is_map(Rates) ->
            {error, {bad_option, rates}};
        map_size(Rates) > ?MAX_PRIORITIES;
        map_size(Rates) =:= ?MAX_PRIORITIES andalso not is_map_key(default, Rates) ->
            {error, {bad_option, {rates, too_many_priorities}}};
        true ->
            All = lists:sort(maps:to_list(maps:merge(#{default => Default}, Rates))),
            case [P || {P, R} <- All, sluice_util:rate(R) =:= error] of
                [default | _] when not is_map_key(default, Rates) -> {error, {bad_option, rate}};
                [P | _] -> {error, {bad_option, {rates, P}}};
                [] ->
                    Valid = [{P, float(R)} || {P, R} <- All],
                    case validate_regulation(maps:get(regulate, Opts)) of
                        {ok, Reg} -> check_regulated(Reg, Valid);
                        {error, _} = Error -> Error
                    end
            end
    end.

-spec check_regulated(map() | none, rates()) ->
    {ok, rates(), map() | none} | {error, {bad_option, term()}}.
check_regulated(#{priorities := Ps} = Reg, Rates) ->
    case [P || P <- Ps, not lists:keymember(P, 1, Rates)] of
        [] -> {ok, Rates, Reg};
        [P | _] -> {error, {bad_option, {priorities, P}}}
    end;
check_regulated(Reg, Rates) ->
    {ok, Rates, Reg}.

%% @doc Checks a regulation map (or `none') and fills in its defaults
%% (`priorities' left out means all of them).
-spec validate_regulation(term()) -> {ok, map() | none} | {error, {bad_option, term()}}.
validate_regulation(none) ->
    {ok, none};
validate_regulation(Reg) when is_map(Reg) ->
    case [K || K <- [signal, low, high], not is_map_key(K, Reg)] of
        [Missing | _] ->
            {error, {bad_option, {missing, Missing}}};
        [] ->
            Finite = fun(V) -> is_number(V) andalso is_float(float(V)) end,
            Spec = [{signal, required, fun(V) -> is_function(V, 0) end},
                    {low, required, Finite},
                    {high, required, Finite},
                    {interval, 100, fun sluice_opts:ms/1},
                    {min_rate, 0.0, fun sluice_opts:rate/1},
                    {priorities, all, fun(V) -> V =:= all orelse sluice_opts:proper_list(V) end}],
            case sluice_opts:validate(Reg, Spec) of
                {ok, #{low := Low, high := High}} when High =< Low ->
                    {error, {bad_option, high}};
                {ok, #{min_rate := Min, priorities := Ps} = Full} ->
                    Valid = Full#{min_rate := float(Min)},
                    {ok, case Ps of all -> maps:remove(priorities, Valid); _ -> Valid end};
                {error, _} = Error ->
                    Error
            end
    end;
validate_regulation(_) ->
    {error, {bad_option, regulate}}.

-spec new(sluice_drop:name(), rates(), map() | none) ->
    {ok, valve_handle()} | {error, already_exists}.
new(Name, Rates, Regulation) ->
    gen_server:call(?MODULE, {new, Name, Rates, Regulation}).

-spec delete(sluice_drop:name()) -> ok | {error, not_found}.
delete(Name) ->
    gen_server:call(?MODULE, {delete, Name}).

-spec regulate(sluice_drop:name(), map() | none) -> ok | {error, not_found | {bad_option, term()}}.
regulate(Name, Regulation) ->
    gen_server:call(?MODULE, {regulate, Name, Regulation}).

%% @doc The handle registered under `Name', read from the table.
-spec lookup(sluice_drop:name()) -> {ok, valve_handle()} | {error, not_found}.
lookup(Name) ->
    case row(Name) of
        {Name, Valve, _, _} -> {ok, Valve};
        none -> {error, not_found}
    end.

%% @doc The name and token of every regulated valve.
-spec regulated() -> [{sluice_drop:name(), reference()}].
regulated() ->
    ets:select(?TABLE, [{{'$1', '_', '$2', '$3'}, [{'=/=', '$2', none}], [{{'$1', '$3'}}]}]).

-spec regulated(sluice_drop:name()) -> boolean().
regulated(Name) ->
    case row(Name) of
        {_, _, Reg, _} -> Reg =/= none;
        none -> false
    end.

%% @doc The table row of `Name', or `none'.
-spec row(sluice_drop:name()) -> tuple() | none.
row(Name) ->
    try ets:lookup(?TABLE, Name) of
        [Row] -> Row;
        [] -> none
    catch
        error:badarg -> erlang:error({not_started, sluice})
    end.

%% gen_server callbacks

%% The table is kept by `sluice_tables': it outlives this server.
-spec init([]) -> {ok, nil}.
init([]) ->
    {ok, nil}.

%% Every request was checked by the facade; still, a refusal from the NIF
%% library or the regulator supervisor becomes an error reply, never a
%% crash (this server's restart would disturb no state, but callers
%% waiting on it would see an exit).
-spec handle_call(term(), gen_server:from(), nil) -> {reply, term(), nil}.
handle_call(Request, _From, State) ->
    try call(Request) of
        Reply -> {reply, Reply, State}
    catch
        Class:Reason ->
            ?LOG_ERROR(#{what => valve_request_failed, request => element(1, Request),
                         why => {Class, Reason}}, #{domain => [sluice, drop]}),
            {reply, {error, {Class, Reason}}, State}
    end.

-spec call(term()) -> term().
call({new, Name, Rates, Regulation}) ->
    case ets:member(?TABLE, Name) of
        true ->
            {error, already_exists};
        false ->
            case sluice_nif:drop_new([R || {_, R} <- Rates]) of
                {error, Reason} ->
                    {error, {bad_option, refused_option(Reason)}};
                Ref ->
                    Prios = maps:from_list(lists:zip([P || {P, _} <- Rates],
                                                     lists:seq(0, length(Rates) - 1))),
                    Valve = #sluice_valve{ref = Ref, name = Name, priorities = Prios,
                                          default = maps:get(default, Prios)},
                    case install(Name, Valve, Regulation) of
                        ok -> {ok, Valve};
                        {error, _} = Error -> Error
                    end
            end
    end;
call({delete, Name}) ->
    case ets:lookup(?TABLE, Name) of
        [{_, #sluice_valve{ref = Ref}, _, _}] ->
            _ = sluice_nif:drop_delete(Ref),
            true = ets:delete(?TABLE, Name),
            ok;
        [] ->
            {error, not_found}
    end;
call({regulate, Name, Regulation}) ->
    case ets:lookup(?TABLE, Name) of
        [{_, #sluice_valve{priorities = Prios} = Valve, _, _}] ->
            Unknown = [P || none =/= Regulation, P <- maps:get(priorities, Regulation, []),
                            not is_map_key(P, Prios)],
            case Unknown of
                [P | _] ->
                    {error, {bad_option, {priorities, P}}};
                [] ->
                    _ = [sluice_nif:drop_set(Valve#sluice_valve.ref, I, factor, 1.0)
                         || I <- maps:values(Prios)],
                    install(Name, Valve, Regulation)
            end;
        [] ->
            {error, not_found}
    end;
call(_Request) ->
    {error, unknown_call}.

%% The option a valve's rates were refused for by the NIF library (the
%% caller checked them: only a check out of step with the library's).
-spec refused_option(no_priorities | too_many_priorities | bad_rate) -> term().
refused_option(no_priorities) -> rates;
refused_option(too_many_priorities) -> {rates, too_many_priorities};
refused_option(bad_rate) -> rate.

-spec handle_cast(term(), nil) -> {noreply, nil}.
handle_cast(_Msg, State) ->
    {noreply, State}.

-spec handle_info(term(), nil) -> {noreply, nil}.
handle_info(_Msg, State) ->
    {noreply, State}.

-spec install(sluice_drop:name(), valve_handle(), map() | none) -> ok | {error, term()}.
install(Name, Valve, Regulation) ->
    Token = make_ref(),
    true = ets:insert(?TABLE, {Name, Valve, Regulation, Token}),
    case Regulation of
        none ->
            ok;
        _ ->
            case sluice_drop_regulator_sup:start_regulator(Name, Token) of
                {ok, _} -> ok;
                {error, _} = Error -> Error
            end
    end.

%% Release upgrades and downgrades (`{update, sluice_drop_server, {advanced, _}}' in an
%% appup): the state has the same shape in every version so far, and is kept
%% as it is in both directions (`OldVsn' is `{down, Vsn}' on the way down).
-spec code_change(term(), nil, term()) -> {ok, nil}.
code_change(_OldVsn, State, _Extra) ->
    {ok, State}.
