%% @doc Benchmark suite `trace': `reckon_trace:calls/3' throttled to 100
%% events per second on a hot function, against the recon way written here:
%% an Erlang tracer process that receives every trace message and counts it
%% against the same throttle (formatting and writing the events it keeps,
%% counting the others as suppressed).
%%
%% == Cases ==
%% A process calls the traced function `hot/1' 1 000 000 times, traced by
%% each side in turn (3 interleaved rounds), output to an io server that
%% answers every request at once.
%% <ul>
%% <li>`throttled_hot_call' (`ops_per_s'): the workload's calls per second
%%     (median of the rounds). Ours discards an event over the limit in the
%%     tracer NIF's `enabled/3', before the VM builds it; the reference's
%%     tracee builds and sends a message for every call.</li>
%% <li>`tracer_peak_queue' (`msgs'): the longest message queue seen on the
%%     tracer side during those runs (sampled every millisecond by a process
%%     of high priority): the reference's tracer process; ours, the pump and
%%     the formatter. Floored at 1 so the ratio is defined.</li>
%% </ul>
-module(bench_trace).
-behaviour(bench).

-export([cases/0, hot/1]).

%% The peaks of the first case, read by the second (each case runs in a
%% process of its own).
-define(KEY, {bench_trace, peak}).
-define(CALLS, 1000000).
-define(N, 100).
-define(WINDOW, 1000).
-define(ROUNDS, 3).

%% @doc The cases of this suite (see the module documentation).
-spec cases() -> [{atom(), fun(() -> bench:result())}].
cases() ->
    [{throttled_hot_call, fun throttled_hot_call/0},
     {tracer_peak_queue, fun tracer_peak_queue/0}].

%% @doc The traced function.
-spec hot(integer()) -> integer().
hot(X) -> X.

-spec throttled_hot_call() -> bench:result().
throttled_hot_call() ->
    {ok, _} = application:ensure_all_started(reckon),
    Io = null_io(),
    Rounds = [{run(ours, Io), run(ref, Io)} || _ <- lists:seq(1, ?ROUNDS)],
    {OursRate, OursQ} = lists:unzip([O || {O, _} <- Rounds]),
    {RefRate, RefQ} = lists:unzip([R || {_, R} <- Rounds]),
    ok = persistent_term:put(?KEY, {lists:max(OursQ), lists:max(RefQ)}),
    exit(Io, kill),
    {bench:median(OursRate), bench:median(RefRate), ops_per_s}.

-spec tracer_peak_queue() -> bench:result().
tracer_peak_queue() ->
    {Ours, Ref} = persistent_term:get(?KEY),
    {max(Ours, 1), max(Ref, 1), msgs}.

%% One round of one side: the workload's calls per second and the peak
%% queue on the tracer side.
-spec run(ours | ref, pid()) -> {float(), non_neg_integer()}.
run(Side, Io) ->
    Worker = spawn(fun() -> worker() end),
    Watched = start(Side, Worker, Io),
    Sampler = spawn(fun() -> process_flag(priority, high), sample(Watched, 0) end),
    Worker ! {go, self()},
    Ns = receive {done, Worker, T} -> T end,
    ok = drain(Watched),
    Sampler ! {stop, self()},
    Peak = receive {peak, Sampler, P} -> P end,
    ok = stop(Side, Worker, Watched),
    {?CALLS / (Ns / 1.0e9), Peak}.

-spec worker() -> ok.
worker() ->
    receive {go, From} -> ok end,
    T0 = erlang:monotonic_time(nanosecond),
    ok = loop(?CALLS),
    From ! {done, self(), erlang:monotonic_time(nanosecond) - T0},
    receive stop -> ok end.

-spec loop(non_neg_integer()) -> ok.
loop(0) -> ok;
loop(N) -> _ = ?MODULE:hot(N), loop(N - 1).

%% Sets the trace; the processes on the tracer side.
-spec start(ours | ref, pid(), pid()) -> [pid()].
start(ours, Worker, Io) ->
    1 = reckon_trace:calls({?MODULE, hot, 1}, {?N, ?WINDOW},
                           [{limit, throttle}, {pid, Worker}, {io_server, Io}]),
    {links, Links} = process_info(whereis(reckon_trace_owner), links),
    [P || P <- Links, is_pid(P), P =/= self()];
start(ref, Worker, Io) ->
    Tracer = spawn(fun() -> ref_tracer(Io, 0, erlang:monotonic_time(millisecond), 0) end),
    1 = erlang:trace_pattern({?MODULE, hot, 1}, [{'_', [], []}], [global]),
    1 = erlang:trace(Worker, true, [call, {tracer, Tracer}]),
    [Tracer].

-spec stop(ours | ref, pid(), [pid()]) -> ok.
stop(ours, Worker, _) ->
    ok = reckon_trace:clear(),
    exit(Worker, kill),
    ok;
stop(ref, Worker, [Tracer]) ->
    _ = erlang:trace_pattern({?MODULE, hot, 1}, false, [global]),
    exit(Worker, kill),
    exit(Tracer, kill),
    ok.

%% The recon way: every event reaches this process, which counts it
%% against the window and formats and writes the ones it keeps.
-spec ref_tracer(pid(), non_neg_integer(), integer(), non_neg_integer()) -> no_return().
ref_tracer(Io, Count, Start, Suppressed) ->
    receive
        {trace, _, call, _} = Msg ->
            Now = erlang:monotonic_time(millisecond),
            {Count1, Start1, Suppressed1} =
                case Now - Start >= ?WINDOW of
                    true ->
                        _ = Suppressed > 0 andalso
                            io:put_chars(Io, io_lib:format("~b events suppressed~n", [Suppressed])),
                        {0, Now, 0};
                    false ->
                        {Count, Start, Suppressed}
                end,
            case Count1 < ?N of
                true ->
                    ok = io:put_chars(Io, reckon_trace:format(Msg)),
                    ref_tracer(Io, Count1 + 1, Start1, Suppressed1);
                false ->
                    ref_tracer(Io, Count1, Start1, Suppressed1 + 1)
            end
    end.

%% Waits until the tracer side's queues are empty.
-spec drain([pid()]) -> ok.
drain(Pids) ->
    case lists:sum([queue_len(P) || P <- Pids]) of
        0 -> ok;
        _ -> timer:sleep(5), drain(Pids)
    end.

-spec queue_len(pid()) -> non_neg_integer().
queue_len(Pid) ->
    case process_info(Pid, message_queue_len) of
        {message_queue_len, L} -> L;
        undefined -> 0
    end.

-spec sample([pid()], non_neg_integer()) -> ok.
sample(Pids, Peak) ->
    receive
        {stop, From} -> From ! {peak, self(), Peak}, ok
    after 1 ->
            sample(Pids, lists:max([Peak | [queue_len(P) || P <- Pids]]))
    end.

%% An io server that answers every request at once.
-spec null_io() -> pid().
null_io() ->
    spawn(fun Loop() ->
                  receive
                      {io_request, From, ReplyAs, _} -> From ! {io_reply, ReplyAs, ok}, Loop();
                      _ -> Loop()
                  end
          end).
