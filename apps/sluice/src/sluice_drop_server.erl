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
-export([init/1, handle_call/3, handle_cast/2]).

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
    case maps:keys(maps:without([rate, rates, regulate], Opts)) of
        [Key | _] -> {error, {bad_option, Key}};
        [] -> validate_rates(Opts)
    end.

-spec validate_rates(map()) -> {ok, rates(), map() | none} | {error, {bad_option, term()}}.
validate_rates(Opts) ->
    Rates = maps:get(rates, Opts, #{}),
    Default = maps:get(rate, Opts, 1),
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
                    case validate_regulation(maps:get(regulate, Opts, none)) of
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

%% @doc Checks a regulation map (or `none') and fills in its defaults.
-spec validate_regulation(term()) -> {ok, map() | none} | {error, {bad_option, term()}}.
validate_regulation(none) ->
    {ok, none};
validate_regulation(#{signal := Signal, low := Low, high := High} = Reg) ->
    Full = maps:merge(#{min_rate => 0.0, interval => 100}, Reg),
    #{min_rate := Min, interval := Interval} = Full,
    Known = [signal, low, high, min_rate, interval, priorities],
    case maps:keys(maps:without(Known, Full)) of
        [Key | _] -> {error, {bad_option, Key}};
        [] when not is_function(Signal, 0) -> {error, {bad_option, signal}};
        [] when not is_number(Low) -> {error, {bad_option, low}};
        [] when not is_number(High); High =< Low -> {error, {bad_option, high}};
        [] when not is_integer(Interval); Interval < 1 -> {error, {bad_option, interval}};
        [] ->
            case {sluice_util:rate(Min), maps:get(priorities, Full, [])} of
                {error, _} -> {error, {bad_option, min_rate}};
                {_, Ps} when not is_list(Ps) -> {error, {bad_option, priorities}};
                {{ok, M}, _} -> {ok, Full#{min_rate := M}}
            end
    end;
validate_regulation(Reg) when is_map(Reg) ->
    [Missing | _] = [K || K <- [signal, low, high], not is_map_key(K, Reg)],
    {error, {bad_option, {missing, Missing}}};
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

-spec handle_call(term(), gen_server:from(), nil) -> {reply, term(), nil}.
handle_call({new, Name, Rates, Regulation}, _From, State) ->
    case ets:member(?TABLE, Name) of
        true ->
            {reply, {error, already_exists}, State};
        false ->
            Prios = maps:from_list(lists:zip([P || {P, _} <- Rates], lists:seq(0, length(Rates) - 1))),
            Valve = #sluice_valve{ref = sluice_nif:drop_new([R || {_, R} <- Rates]),
                                  name = Name, priorities = Prios,
                                  default = maps:get(default, Prios)},
            install(Name, Valve, Regulation),
            {reply, {ok, Valve}, State}
    end;
handle_call({delete, Name}, _From, State) ->
    case ets:lookup(?TABLE, Name) of
        [{_, #sluice_valve{ref = Ref}, _, _}] ->
            ok = sluice_nif:drop_delete(Ref),
            ets:delete(?TABLE, Name),
            {reply, ok, State};
        [] ->
            {reply, {error, not_found}, State}
    end;
handle_call({regulate, Name, Regulation}, _From, State) ->
    case ets:lookup(?TABLE, Name) of
        [{_, #sluice_valve{priorities = Prios} = Valve, _, _}] ->
            Unknown = [P || none =/= Regulation, P <- maps:get(priorities, Regulation, []),
                            not is_map_key(P, Prios)],
            case Unknown of
                [P | _] ->
                    {reply, {error, {bad_option, {priorities, P}}}, State};
                [] ->
                    [ok = sluice_nif:drop_set(Valve#sluice_valve.ref, I, true, 1.0)
                     || I <- maps:values(Prios)],
                    install(Name, Valve, Regulation),
                    {reply, ok, State}
            end;
        [] ->
            {reply, {error, not_found}, State}
    end.

-spec handle_cast(term(), nil) -> {noreply, nil}.
handle_cast(_Msg, State) ->
    {noreply, State}.

-spec install(sluice_drop:name(), valve_handle(), map() | none) -> ok.
install(Name, Valve, Regulation) ->
    Token = make_ref(),
    ets:insert(?TABLE, {Name, Valve, Regulation, Token}),
    case Regulation of
        none -> ok;
        _ -> {ok, _} = sluice_drop_regulator_sup:start_regulator(Name, Token), ok
    end.
