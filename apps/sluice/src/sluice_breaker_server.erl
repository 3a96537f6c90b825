%% @private
%% @doc Tells the world about breakers that blow and heal: SASL alarms
%% (`{{sluice_breaker, Name}, blown}', when `alarm_handler' runs) and
%% `{sluice_breaker, Name, blown | healed}' to subscribers.
%%
%% No ask or melt sends anything here. Every `POLL_MS' ms this server reads
%% the NIF library's count of breakers blown by a melt; when it moved, or
%% while a breaker it knows blown is not healed, it reads the state of every
%% installed breaker (install and remove, slow paths, tell it the names).
-module(sluice_breaker_server).
-behaviour(gen_server).

-export([start_link/0, installed/1, removed/1, subscribe/1, unsubscribe/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-define(POLL_MS, 50).

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc Breaker `Name' was installed (or replaced).
-spec installed(term()) -> ok.
installed(Name) ->
    gen_server:cast(?MODULE, {installed, Name}).

%% @doc Breaker `Name' was removed.
-spec removed(term()) -> ok.
removed(Name) ->
    gen_server:cast(?MODULE, {removed, Name}).

-spec subscribe(pid()) -> ok.
subscribe(Pid) ->
    gen_server:call(?MODULE, {subscribe, Pid}).

-spec unsubscribe(pid()) -> ok.
unsubscribe(Pid) ->
    gen_server:call(?MODULE, {unsubscribe, Pid}).

%% State: installed names, the ones known blown, subscribers (pid to
%% monitor), and the trip count last seen.
-spec init([]) -> {ok, map()}.
init([]) ->
    erlang:send_after(?POLL_MS, self(), poll),
    {ok, #{names => #{}, blown => #{}, subscribers => #{}, trips => sluice_nif:breaker_trips()}}.

-spec handle_call(term(), gen_server:from(), map()) -> {reply, term(), map()}.
handle_call({subscribe, Pid}, _From, #{subscribers := Subs} = S) ->
    case Subs of
        #{Pid := _} -> {reply, ok, S};
        #{} -> {reply, ok, S#{subscribers := Subs#{Pid => monitor(process, Pid)}}}
    end;
handle_call({unsubscribe, Pid}, _From, #{subscribers := Subs} = S) ->
    case maps:take(Pid, Subs) of
        {Mon, Rest} -> demonitor(Mon, [flush]), {reply, ok, S#{subscribers := Rest}};
        error -> {reply, ok, S}
    end;
handle_call(_Req, _From, S) ->
    {reply, {error, unknown_call}, S}.

-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast({installed, Name}, #{names := Names} = S) ->
    {noreply, S#{names := Names#{Name => true}}};
handle_cast({removed, Name}, #{names := Names} = S) ->
    {noreply, S#{names := maps:remove(Name, Names)}};
handle_cast(_Msg, S) ->
    {noreply, S}.

-spec handle_info(term(), map()) -> {noreply, map()}.
handle_info(poll, #{trips := Seen, blown := Blown} = S) ->
    erlang:send_after(?POLL_MS, self(), poll),
    Trips = sluice_nif:breaker_trips(),
    case Trips =/= Seen orelse map_size(Blown) > 0 of
        true -> {noreply, look(S#{trips := Trips})};
        false -> {noreply, S}
    end;
handle_info({'DOWN', _Mon, process, Pid, _}, #{subscribers := Subs} = S) ->
    {noreply, S#{subscribers := maps:remove(Pid, Subs)}};
handle_info(_Msg, S) ->
    {noreply, S}.

%% Reads every installed breaker's state and reports the changes.
-spec look(map()) -> map().
look(#{names := Names, blown := Blown} = S) ->
    Now = maps:from_list([{N, true} || N <- maps:keys(Names), blown(N)]),
    _ = [begin alarm(set, N), tell(S, N, blown) end
         || N <- maps:keys(Now), not maps:is_key(N, Blown)],
    _ = [begin alarm(clear, N), tell(S, N, healed) end
         || N <- maps:keys(Blown), not maps:is_key(N, Now)],
    S#{blown := Now}.

-spec blown(term()) -> boolean().
blown(Name) ->
    case sluice_breaker:info(Name) of
        #{state := State} -> State =:= open orelse State =:= half_open;
        {error, not_found} -> false
    end.

-spec tell(map(), term(), blown | healed) -> ok.
tell(#{subscribers := Subs}, Name, What) ->
    _ = [Pid ! {sluice_breaker, Name, What} || Pid <- maps:keys(Subs)],
    ok.

%% SASL's alarm handler, when it runs.
-spec alarm(set | clear, term()) -> ok.
alarm(What, Name) ->
    case whereis(alarm_handler) of
        undefined -> ok;
        _ when What =:= set -> alarm_handler:set_alarm({{sluice_breaker, Name}, blown});
        _ -> alarm_handler:clear_alarm({sluice_breaker, Name})
    end.
