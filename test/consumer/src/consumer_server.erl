%% @doc A gen_server that forwards events through a random-drop valve.
%%
%% It creates the valve `consumer_events' when it starts and deletes it when
%% it stops. {@link push/1} asks the valve; kept events are forwarded to the
%% sink process (if one is set) and counted, dropped ones are only counted.
-module(consumer_server).
-behaviour(gen_server).

-export([start_link/1, push/1, set_sink/1, stats/0, valve/0]).
-export([init/1, handle_call/3, handle_cast/2, terminate/2]).

-define(VALVE, consumer_events).

-record(state, {valve :: sluice_drop:valve(),
                sink = none :: pid() | none,
                kept = 0 :: non_neg_integer(),
                dropped = 0 :: non_neg_integer()}).

-spec start_link(sluice_drop:rate()) -> {ok, pid()} | ignore | {error, term()}.
start_link(Rate) ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, Rate, []).

%% @doc Offers one event: `ok' if it was forwarded, `drop' if the valve dropped it.
-spec push(term()) -> ok | drop.
push(Event) ->
    gen_server:call(?MODULE, {push, Event}).

%% @doc Sends every kept event as `{event, Event}' to `Pid'.
-spec set_sink(pid()) -> ok.
set_sink(Pid) ->
    gen_server:call(?MODULE, {set_sink, Pid}).

%% @doc How many events were kept and dropped so far.
-spec stats() -> #{kept := non_neg_integer(), dropped := non_neg_integer()}.
stats() ->
    gen_server:call(?MODULE, stats).

%% @doc The name of the valve this server owns.
-spec valve() -> sluice_drop:name().
valve() ->
    ?VALVE.

-spec init(sluice_drop:rate()) -> {ok, #state{}} | {stop, term()}.
init(Rate) ->
    process_flag(trap_exit, true),
    case sluice_drop:new(?VALVE, #{rate => Rate}) of
        {ok, Valve} -> {ok, #state{valve = Valve}};
        {error, Reason} -> {stop, {valve, Reason}}
    end.

-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, term(), #state{}}.
handle_call({push, Event}, _From, #state{valve = Valve} = State) ->
    case sluice_drop:ask(Valve) of
        ok ->
            forward(State#state.sink, Event),
            {reply, ok, State#state{kept = State#state.kept + 1}};
        drop ->
            {reply, drop, State#state{dropped = State#state.dropped + 1}}
    end;
handle_call({set_sink, Pid}, _From, State) ->
    {reply, ok, State#state{sink = Pid}};
handle_call(stats, _From, #state{kept = Kept, dropped = Dropped} = State) ->
    {reply, #{kept => Kept, dropped => Dropped}, State};
handle_call(_Other, _From, State) ->
    {reply, {error, unknown_call}, State}.

-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast(_Msg, State) ->
    {noreply, State}.

-spec terminate(term(), #state{}) -> ok.
terminate(_Reason, _State) ->
    _ = sluice_drop:delete(?VALVE),
    ok.

-spec forward(pid() | none, term()) -> ok.
forward(none, _Event) ->
    ok;
forward(Sink, Event) ->
    Sink ! {event, Event},
    ok.
