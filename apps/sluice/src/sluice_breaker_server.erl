%% @private
%% @doc Tells the world about breakers that blow and heal: SASL alarms
%% (`{{sluice_breaker, Name}, blown}', when `alarm_handler' runs) and
%% `{sluice_breaker, Name, blown | healed}' to subscribers.
%%
%% The melt that blows a breaker (and only that one) casts one message
%% here; asks and other melts never do. A blown breaker is then looked at
%% every `POLL_MS' ms until it is closed again (healed, reset or removed),
%% which clears the alarm.
-module(sluice_breaker_server).
-behaviour(gen_server).

-export([start_link/0, tripped/1, subscribe/1, unsubscribe/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-define(POLL_MS, 100).

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc A melt just blew breaker `Name'.
-spec tripped(term()) -> ok.
tripped(Name) ->
    gen_server:cast(?MODULE, {tripped, Name}).

-spec subscribe(pid()) -> ok.
subscribe(Pid) ->
    gen_server:call(?MODULE, {subscribe, Pid}).

-spec unsubscribe(pid()) -> ok.
unsubscribe(Pid) ->
    gen_server:call(?MODULE, {unsubscribe, Pid}).

%% State: subscribers (pid to monitor) and the breakers known blown.
-spec init([]) -> {ok, map()}.
init([]) ->
    {ok, #{subscribers => #{}, blown => #{}}}.

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
handle_cast({tripped, Name}, #{blown := Blown} = S) ->
    case Blown of
        #{Name := _} ->
            {noreply, S};
        #{} ->
            alarm(set, Name),
            tell(S, Name, blown),
            erlang:send_after(?POLL_MS, self(), {poll, Name}),
            {noreply, S#{blown := Blown#{Name => true}}}
    end;
handle_cast(_Msg, S) ->
    {noreply, S}.

-spec handle_info(term(), map()) -> {noreply, map()}.
handle_info({poll, Name}, #{blown := Blown} = S) ->
    case sluice_breaker:info(Name) of
        #{state := State} when State =/= closed ->
            erlang:send_after(?POLL_MS, self(), {poll, Name}),
            {noreply, S};
        _ ->
            alarm(clear, Name),
            tell(S, Name, healed),
            {noreply, S#{blown := maps:remove(Name, Blown)}}
    end;
handle_info({'DOWN', _Mon, process, Pid, _}, #{subscribers := Subs} = S) ->
    {noreply, S#{subscribers := maps:remove(Pid, Subs)}};
handle_info(_Msg, S) ->
    {noreply, S}.

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
