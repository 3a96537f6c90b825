%% @private
%% @doc The system-monitor handler of {@link reckon_metrics}: a process the
%% sampler starts (linked) when sampling starts and stops when it stops.
%%
%% It installs itself as the node's system monitor
%% (`erlang:system_monitor(self(), [{long_gc, Ms}, {long_schedule, Ms}])',
%% thresholds from the sampler's `long_gc_ms' and `long_schedule_ms'
%% options) only when no monitor is set: the VM has one system monitor, and
%% this handler never takes it from whoever holds it. When one is set, it
%% logs a warning once and reports `{taken, Pid}' ({@link status/0},
%% shown by `reckon_metrics:info/0'); should it lose a race with a process
%% that set one between its look and its own call, it puts that setting
%% back. Each event's duration (`timeout' in the event's info, ms) is
%% recorded in the recorder's histograms `long_gc_ms' and
%% `long_schedule_ms' (the user histograms of those names, no labels). When
%% it stops it clears the monitor only if the monitor is still its own; if
%% it dies, the VM clears the monitor of a dead process.
-module(reckon_metrics_sysmon).
-behaviour(gen_server).

-export([start_link/1, stop/1, status/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2,
         code_change/3]).

%% The histograms' highest value: an hour in ms.
-define(HIGHEST, 3600000).

-type status() :: on | {taken, pid()} | off.
-type state() :: #{status := on | {taken, pid()},
                   gc := reference() | undefined, schedule := reference() | undefined}.

-export_type([status/0]).

%%% API

%% @doc Starts the handler with the thresholds (ms) of `Opts' (`off': that
%% event is not monitored).
-spec start_link(#{long_gc_ms := pos_integer() | off, long_schedule_ms := pos_integer() | off}) ->
    {ok, pid()} | {error, term()}.
start_link(Opts) ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, Opts, []).

%% @doc Stops the handler (giving the monitor back when it holds it).
-spec stop(pid()) -> ok.
stop(Pid) ->
    try gen_server:stop(Pid, shutdown, 5000)
    catch exit:_ -> ok
    end.

%% @doc `on' (the handler holds the system monitor), `{taken, Pid}' (`Pid'
%% held it when the handler started), or `off' (no handler runs).
-spec status() -> status().
status() ->
    try gen_server:call(?MODULE, status, 5000)
    catch exit:_ -> off
    end.

%%% gen_server

-spec init(#{long_gc_ms := pos_integer() | off, long_schedule_ms := pos_integer() | off}) ->
    {ok, state()}.
init(#{long_gc_ms := Gc, long_schedule_ms := Schedule}) ->
    Options = [{long_gc, Gc} || Gc =/= off] ++ [{long_schedule, Schedule} || Schedule =/= off],
    Status = case erlang:system_monitor() of
                 undefined -> install(Options);
                 {Holder, _} -> {taken, Holder}
             end,
    case Status of
        on -> ok;
        {taken, Pid} ->
            logger:warning("reckon: the system monitor is held by ~p; long_gc and "
                           "long_schedule are not recorded", [Pid],
                           #{domain => [reckon, metrics]})
    end,
    {ok, #{status => Status, gc => histogram(long_gc_ms),
           schedule => histogram(long_schedule_ms)}}.

%% Sets this process as the system monitor; puts back a setting that
%% another process made in the meantime.
-spec install([{long_gc | long_schedule, pos_integer()}]) -> on | {taken, pid()}.
install(Options) ->
    case erlang:system_monitor(self(), Options) of
        undefined -> on;
        {Holder, _} = Theirs ->
            _ = erlang:system_monitor(Theirs),
            {taken, Holder}
    end.

%% The histogram `Name' (`undefined' when the name is taken by a user
%% metric of another kind, or no metric can be made).
-spec histogram(atom()) -> reference() | undefined.
histogram(Name) ->
    case reckon_metrics:histogram(Name, [], #{highest => ?HIGHEST}) of
        {ok, H} -> H;
        {error, Why} ->
            logger:warning("reckon: histogram ~p cannot be made (~p); its events are not "
                           "recorded", [Name, Why], #{domain => [reckon, metrics]}),
            undefined
    end.

-spec handle_call(term(), gen_server:from(), state()) -> {reply, term(), state()}.
handle_call(status, _From, #{status := Status} = State) ->
    {reply, Status, State};
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

-spec handle_cast(term(), state()) -> {noreply, state()}.
handle_cast(_Msg, State) ->
    {noreply, State}.

-spec handle_info(term(), state()) -> {noreply, state()}.
handle_info({monitor, _Who, long_gc, Info}, #{gc := H} = State) ->
    observe(H, Info),
    {noreply, State};
handle_info({monitor, _Who, long_schedule, Info}, #{schedule := H} = State) ->
    observe(H, Info),
    {noreply, State};
handle_info(_Msg, State) ->
    {noreply, State}.

-spec observe(reference() | undefined, term()) -> ok.
observe(H, Info) when H =/= undefined, is_list(Info) ->
    case lists:keyfind(timeout, 1, Info) of
        {timeout, Ms} when is_integer(Ms), Ms >= 0 -> reckon_metrics_lib:metric_observe(H, Ms);
        _ -> ok
    end;
observe(_H, _Info) ->
    ok.

%% Clears the monitor if it is still this process's; a setting another
%% process made in the meantime is put back.
-spec terminate(term(), state()) -> ok.
terminate(_Reason, _State) ->
    Self = self(),
    _ = case erlang:system_monitor() of
            {Self, _} ->
                case erlang:system_monitor(undefined) of
                    {Self, _} -> ok;
                    undefined -> ok;
                    Theirs -> erlang:system_monitor(Theirs)
                end;
            _ ->
                ok
        end,
    ok.

%% Release upgrades and downgrades (`{update, reckon_metrics_sysmon, {advanced, _}}' in an
%% appup): the state has the same shape in every version so far, and is kept
%% as it is in both directions (`OldVsn' is `{down, Vsn}' on the way down).
-spec code_change(term(), state(), term()) -> {ok, state()}.
code_change(_OldVsn, State, _Extra) ->
    {ok, State}.
