%% @private
%% @doc A supervised process keeping one `sluice_box' under a name
%% (`sluice_box:child_spec/1', `sluice_box:start_link/1').
%%
%% The keeper creates the box and registers it under option `name', so
%% producers find it with `sluice_box:lookup/1' (an ETS read, no message).
%% Unless `owner' is given the keeper owns the box, and unless `heir' is
%% given the keeper is its heir: a consumer calls `sluice_box:claim/1' to
%% become the owner, and when that consumer dies the box (and what it holds)
%% returns to the keeper until the restarted consumer claims it again.
%% When the keeper stops the box is closed and its name released.
-module(sluice_box_keeper).
-behaviour(gen_server).

-export([start_link/1, lookup/1, claim/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2, code_change/3]).

-define(TABLE, sluice_box_names).

-record(state, {name :: term(), box :: sluice_box:box()}).

-spec start_link(sluice_box:options()) -> {ok, pid()} | {error, term()}.
start_link(#{name := _} = Opts) ->
    gen_server:start_link(?MODULE, Opts, []);
start_link(_Opts) ->
    {error, {bad_option, name}}.

%% @doc The box registered under `Name'.
-spec lookup(term()) -> {ok, sluice_box:box()} | {error, not_found}.
lookup(Name) ->
    case ets:whereis(?TABLE) =/= undefined andalso ets:lookup(?TABLE, Name) of
        [{_, Box, _Keeper}] -> {ok, Box};
        _ -> {error, not_found}
    end.

%% @doc Hands the box registered under `Name' to the caller, if its keeper owns it.
-spec claim(term()) -> {ok, sluice_box:box()} | {error, not_found | {owned_by, pid()}}.
claim(Name) ->
    case ets:whereis(?TABLE) =/= undefined andalso ets:lookup(?TABLE, Name) of
        [{_, _Box, Keeper}] ->
            try gen_server:call(Keeper, {claim, self()})
            catch exit:{noproc, _} -> {error, not_found}
            end;
        _ ->
            {error, not_found}
    end.

%% A keeper that cannot start answers `{error, Reason}' to `start_link/1'
%% and ends normally, so the caller (linked to it) is not taken down: bad
%% options, or a name in use (`{already_started, Keeper}').
-spec init(sluice_box:options()) -> {ok, #state{}}.
init(#{name := Name} = Opts) ->
    process_flag(trap_exit, true),
    BoxOpts = maps:merge(#{owner => self(), heir => self()}, Opts),
    case sluice_box:new(BoxOpts) of
        {ok, Box} ->
            case ets:insert_new(?TABLE, {Name, Box, self()}) of
                true ->
                    {ok, #state{name = Name, box = Box}};
                false ->
                    _ = sluice_box:close(Box),
                    fail({already_started, case ets:lookup(?TABLE, Name) of
                                               [{_, _, Keeper}] -> Keeper;
                                               [] -> undefined
                                           end})
            end;
        {error, Reason} ->
            fail(Reason)
    end.

-spec fail(term()) -> no_return().
fail(Reason) ->
    proc_lib:init_ack({error, Reason}),
    exit(normal).

-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, term(), #state{}}.
handle_call({claim, Pid}, _From, #state{name = Name, box = Box} = S) ->
    Reply = case sluice_box:give_away(Box, Pid, Name) of
                ok -> {ok, Box};
                {error, _} -> {error, {owned_by, maps:get(owner, sluice_box:info(Box))}}
            end,
    {reply, Reply, S};
handle_call(_Other, _From, S) ->
    {reply, {error, unknown_call}, S}.

-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast(_Msg, S) ->
    {noreply, S}.

%% Boxes coming back from a dead consumer, notices: nothing to do.
-spec handle_info(term(), #state{}) -> {noreply, #state{}}.
handle_info(_Msg, S) ->
    {noreply, S}.

-spec terminate(term(), #state{}) -> ok.
terminate(_Reason, #state{name = Name, box = Box}) ->
    ets:delete(?TABLE, Name),
    sluice_box_warden:discard(Box).

-spec code_change(term(), #state{}, term()) -> {ok, #state{}}.
code_change(_OldVsn, S, _Extra) ->
    {ok, S}.
