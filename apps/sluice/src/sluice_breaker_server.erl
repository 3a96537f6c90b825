%% @private
%% @doc Tells the world about breakers that blow and heal: SASL alarms
%% (`{{sluice_breaker, Name}, blown}', when `alarm_handler' runs) and
%% `{sluice_breaker, Name, blown | healed}' to subscribers, and the
%% telemetry events `[sluice, breaker, blown | healed]' (see
%% `sluice_telemetry').
%%
%% No ask or melt sends anything here. The NIF library queues every breaker
%% that flipped between blown (open, half-open) and not, and every breaker
%% removed or replaced; every `POLL_MS' ms this server drains that queue
%% (in batches the NIF bounds), so a poll costs what changed, not what is
%% installed. Each entry gives the name and the state its breaker has now.
%%
%% Nothing here is lost with this process: the queue lives in the NIF
%% library, the subscribers in the table `sluice_breaker_subscribers' (kept
%% by `sluice_tables'), and a restarted server lists the blown breakers once
%% (a dirty NIF) and puts the alarms right: it sets the missing ones (and
%% tells subscribers `blown') and clears those of breakers healed or removed
%% meanwhile (and tells them `healed').
-module(sluice_breaker_server).
-behaviour(gen_server).

-export([start_link/0, subscribe/1, unsubscribe/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, code_change/3]).

-define(POLL_MS, 50).
-define(SUBS, sluice_breaker_subscribers).

-type state() :: #{blown := #{term() => true}, monitors := #{pid() => reference()}}.

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

-spec subscribe(pid()) -> ok.
subscribe(Pid) ->
    gen_server:call(?MODULE, {subscribe, Pid}).

-spec unsubscribe(pid()) -> ok.
unsubscribe(Pid) ->
    gen_server:call(?MODULE, {unsubscribe, Pid}).

%% State: the names known blown, and a monitor per subscriber.
-spec init([]) -> {ok, state()}.
init([]) ->
    Monitors = maps:from_list([{Pid, monitor(process, Pid)} || {Pid} <- ets:tab2list(?SUBS)]),
    _ = drain(),
    Blown = maps:from_list([{N, true} || N <- sluice_nif:breaker_blown()]),
    S = #{blown => Blown, monitors => Monitors},
    Alarmed = [N || {{sluice_breaker, N}, blown} <- alarms()],
    _ = [begin alarm(clear, N), tell(N, healed, state_of(N)) end
         || N <- Alarmed, not is_map_key(N, Blown)],
    _ = [begin alarm(set, N), tell(N, blown, state_of(N)) end
         || N <- maps:keys(Blown), not lists:member(N, Alarmed)],
    erlang:send_after(?POLL_MS, self(), poll),
    {ok, S}.

-spec handle_call(term(), gen_server:from(), state()) -> {reply, term(), state()}.
handle_call({subscribe, Pid}, _From, #{monitors := Mons} = S) when is_pid(Pid) ->
    case Mons of
        #{Pid := _} ->
            {reply, ok, S};
        #{} ->
            true = ets:insert(?SUBS, {Pid}),
            {reply, ok, S#{monitors := Mons#{Pid => monitor(process, Pid)}}}
    end;
handle_call({unsubscribe, Pid}, _From, #{monitors := Mons} = S) ->
    true = ets:delete(?SUBS, Pid),
    case maps:take(Pid, Mons) of
        {Mon, Rest} -> demonitor(Mon, [flush]), {reply, ok, S#{monitors := Rest}};
        error -> {reply, ok, S}
    end;
handle_call(_Req, _From, S) ->
    {reply, {error, unknown_call}, S}.

-spec handle_cast(term(), state()) -> {noreply, state()}.
handle_cast(_Msg, S) ->
    {noreply, S}.

-spec handle_info(term(), state()) -> {noreply, state()}.
handle_info(poll, #{blown := Blown} = S) ->
    erlang:send_after(?POLL_MS, self(), poll),
    {noreply, S#{blown := lists:foldl(fun change/2, Blown, drain())}};
handle_info({'DOWN', _Mon, process, Pid, _}, #{monitors := Mons} = S) ->
    true = ets:delete(?SUBS, Pid),
    {noreply, S#{monitors := maps:remove(Pid, Mons)}};
handle_info(_Msg, S) ->
    {noreply, S}.

%% Every change queued so far, oldest first.
-spec drain() -> [{term(), atom()}].
drain() ->
    case sluice_nif:breaker_changes() of
        [] -> [];
        Batch -> Batch ++ drain()
    end.

%% Reports one breaker's change, if its blown-ness differs from what we knew.
-spec change({term(), atom()}, #{term() => true}) -> #{term() => true}.
change({Name, State}, Blown) ->
    case {State =:= open orelse State =:= half_open, is_map_key(Name, Blown)} of
        {true, false} -> alarm(set, Name), tell(Name, blown, State), Blown#{Name => true};
        {false, true} ->
            alarm(clear, Name), tell(Name, healed, State), maps:remove(Name, Blown);
        _ -> Blown
    end.

%% Subscribers get `{sluice_breaker, Name, What}'; telemetry (when loaded)
%% the event `[sluice, breaker, What]' with the state the breaker has now.
-spec tell(term(), blown | healed, atom()) -> ok.
tell(Name, What, State) ->
    _ = [Pid ! {sluice_breaker, Name, What} || {Pid} <- ets:tab2list(?SUBS)],
    sluice_telemetry:execute([sluice, breaker, What], #{system_time => erlang:system_time()},
                             #{name => Name, state => State}).

%% The state of the breaker `Name' now, for a restarted server's reports.
-spec state_of(term()) -> atom().
state_of(Name) ->
    case sluice_nif:breaker_lookup(Name) of
        {Ref, _} -> maps:get(state, sluice_nif:breaker_info(Ref));
        undefined -> removed
    end.

%% SASL's alarm handler, when it runs.
-spec alarm(set | clear, term()) -> ok.
alarm(What, Name) ->
    case whereis(alarm_handler) of
        undefined -> ok;
        _ when What =:= set -> alarm_handler:set_alarm({{sluice_breaker, Name}, blown});
        _ -> alarm_handler:clear_alarm({sluice_breaker, Name})
    end.

-spec alarms() -> [term()].
alarms() ->
    case whereis(alarm_handler) of
        undefined -> [];
        _ -> alarm_handler:get_alarms()
    end.

%% Release upgrades and downgrades (`{update, sluice_breaker_server, {advanced, _}}' in an
%% appup): the state has the same shape in every version so far, and is kept
%% as it is in both directions (`OldVsn' is `{down, Vsn}' on the way down).
-spec code_change(term(), state(), term()) -> {ok, state()}.
code_change(_OldVsn, State, _Extra) ->
    {ok, State}.
