%% @doc Benchmark suite `metrics': `reckon_metrics' (its sampler and its user
%% metrics) against plain-Erlang references written here, in the same run.
%%
%% == Cases ==
%% <ul>
%% <li>`sampler_tick_100k' (`ms'): the sampler's CPU time per tick on a node
%%     with 100 000 extra (idle) processes, over `TICKS' ticks at 1 Hz, so
%%     the full message-queue scan and the allocator reading of every tenth
%%     tick count in proportion. Ours is the real sampler
%%     (`reckon_metrics:start(#{})'); the reference is a straightforward
%%     Erlang sampler (`ref_*' below) reading the same values the same way
%%     (`erlang:memory/0', `system_info/1', `statistics/1', scheduler wall
%%     time, allocator sizes), scanning every process's
%%     `message_queue_len' into a list it sorts, and keeping its history in
%%     ETS with the same tiers (a point per second for an hour, min, max,
%%     sum and count per minute for a day and per hour for 30 days). Both
%%     run at the same time, a quarter of a second apart. CPU time is the
%%     time each sampler process is scheduled in (`erlang:trace/3' `running'
%%     events with monotonic timestamps), the sampling work being done
%%     inside it: `process_info(Pid, message_queue_len)' of an idle process
%%     is read by the caller. The figure is the median plain tick and the
%%     median scanning tick, weighted 9 to 1 (medians, as the machine is
%%     shared; the note line before it gives every side's total and each
%%     scan).</li>
%% <li>`sampler_sched_share' (`percent'): that cost once a second: the
%%     sampler's share of one scheduler at 1 Hz, scans included.</li>
%% <li>`observe_p1', `observe_p2' (`ns_per_op'): one histogram update
%%     (`reckon_metrics:observe/2') from 1 and 2 processes, against a
%%     histogram kept as prometheus.erl keeps one: a row per scheduler
%%     stripe in an ETS table (`write_concurrency'), looked up for its bucket
%%     bounds, the bucket found by comparing the bounds in order, then
%%     `ets:update_counter/3' of the bucket and the sum.</li>
%% <li>`counter_inc_p2' (`ns_per_op'): one counter increment
%%     (`reckon_metrics:inc/1') from 2 processes, against
%%     `ets:update_counter/3' of one row of a `write_concurrency' table.</li>
%% </ul>
-module(bench_metrics).
-behaviour(bench).

-export([cases/0]).

-define(PROCS, 100000).
-define(TICKS, 40).
-define(TOP, 5).
%% Bucket bounds of the prometheus.erl-style histogram (µs), and its
%% stripes (prometheus.erl keys a histogram's row by scheduler id).
-define(BOUNDS, [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000]).
-define(STRIPES, 8).

%% @doc The cases of this suite (see the module documentation).
-spec cases() -> [{atom(), fun(() -> bench:result())}].
cases() ->
    [{sampler_tick_100k, fun sampler_tick/0},
     {sampler_sched_share, fun sampler_share/0},
     {observe_p1, fun() -> observe(1) end},
     {observe_p2, fun() -> observe(2) end},
     {counter_inc_p2, fun counter_inc/0}].

%%% Sampler

%% Runs both samplers for ?TICKS seconds with 100 000 extra processes; keeps
%% the share figures for the next case.
-spec sampler_tick() -> bench:result().
sampler_tick() ->
    {ok, _} = application:ensure_all_started(reckon),
    Idle = [spawn(fun() -> receive stop -> ok end end) || _ <- lists:seq(1, ?PROCS)],
    Ref = ref_start(),
    Ours = whereis(reckon_metrics_sampler),
    Tracers = [{P, tracer(P)} || P <- [Ours, Ref]],
    T0 = erlang:monotonic_time(nanosecond),
    Since = erlang:system_time(second),
    ok = reckon_metrics:start(#{}),
    Ref ! {start, self()},
    %% Exactly ?TICKS ticks each, so each side scans the queues as often.
    timer:sleep((?TICKS - 1) * 1000),
    ok = ours_ticks(Since, ?TICKS),
    erlang:trace(Ours, false, [running]),
    %% (The reference's trace ends with it.)
    RefTicks = receive {ref_done, Ref, N} -> N end,
    MRef = monitor(process, Ref),
    receive {'DOWN', MRef, process, Ref, _} -> ok end,
    Wall = erlang:monotonic_time(nanosecond) - T0,
    [OursSecs, RefSecs] = [cpu_ns(T) || {_, T} <- Tracers],
    ok = reckon_metrics:stop(),
    #{ticks := ?TICKS} = sys:get_state(reckon_metrics_sampler),
    ?TICKS = RefTicks,
    [P ! stop || P <- Idle],
    [note(Side, Secs, Wall) || {Side, Secs} <- [{ours, OursSecs}, {ref, RefSecs}]],
    [Ours1, Ref1] = [per_tick(Secs) / 1.0e6 || Secs <- [OursSecs, RefSecs]],
    %% A share of one scheduler: a tick's cost once a second.
    persistent_term:put({?MODULE, share}, {Ours1 / 10, Ref1 / 10}),
    {Ours1, Ref1, ms}.

-spec note(ours | ref, [non_neg_integer()], integer()) -> ok.
note(Side, Secs, Wall) ->
    {Plain, Scans} = lists:split(length(Secs) - ?TICKS div 10, Secs),
    io:format(standard_error, "# metrics: ~s sampler, ~b seconds traced over ~.1f s: ~.1f ms CPU in all; "
              "median tick ~.2f ms, scan ticks ~s ms~n",
              [Side, length(Secs), Wall / 1.0e9, lists:sum(Secs) / 1.0e6,
               bench:median(Plain) / 1.0e6,
               lists:join(", ", [float_to_list(X / 1.0e6, [{decimals, 1}]) || X <- Scans])]).

%% Waits until the sampler has ticked `N' times since second `Since'
%% (polling its points every 50 ms, which does not involve its process:
%% its next tick is a second away).
-spec ours_ticks(integer(), pos_integer()) -> ok.
ours_ticks(Since, N) ->
    case length([T || #{t := T} <- reckon_metrics:history({memory, total}, 120), T >= Since]) of
        Ticks when Ticks >= N -> ok;
        _ -> timer:sleep(50), ours_ticks(Since, N)
    end.

-spec sampler_share() -> bench:result().
sampler_share() ->
    {Ours, Ref} = persistent_term:get({?MODULE, share}),
    {Ours, Ref, percent}.

%% A process summing the time `Pid' is scheduled in, from now on.
-spec tracer(pid()) -> pid().
tracer(Pid) ->
    Self = self(),
    T = spawn(fun() -> Self ! {traced, self()}, trace_loop(undefined, #{}) end),
    receive {traced, T} -> ok end,
    1 = erlang:trace(Pid, true, [running, monotonic_timestamp, {tracer, T}]),
    T.

%% Keeps the CPU time of each wall-clock second (by when a slice began).
-spec trace_loop(integer() | undefined, #{integer() => non_neg_integer()}) -> ok.
trace_loop(In, Secs) ->
    receive
        {trace_ts, _, in, _, TS} -> trace_loop(TS, Secs);
        {trace_ts, _, out, _, TS} when is_integer(In) ->
            Ns = erlang:convert_time_unit(TS - In, native, nanosecond),
            Sec = erlang:convert_time_unit(In + erlang:time_offset(), native, second),
            trace_loop(undefined, maps:update_with(Sec, fun(X) -> X + Ns end, Ns, Secs));
        {trace_ts, _, _, _, _} -> trace_loop(In, Secs);
        {sum, From} -> From ! {sum, self(), Secs}, ok
    end.

%% The CPU time (ns) of each second the sampler was traced in (a tick in
%% each), least first.
-spec cpu_ns(pid()) -> [non_neg_integer()].
cpu_ns(Tracer) ->
    %% Trace messages sent before the trace was turned off are ahead of ours.
    Tracer ! {sum, self()},
    receive {sum, Tracer, Secs} -> lists:sort(maps:values(Secs)) end.

%% A tick's cost with the scans in proportion: of ?TICKS ticks, one in ten
%% scans the queues (the costliest seconds); the median of each kind,
%% weighted 9 to 1. Medians, because the machine is shared: one second in
%% which another program took the core would otherwise count as sampling.
-spec per_tick([non_neg_integer()]) -> float().
per_tick(Secs) ->
    {Plain, Scans} = lists:split(length(Secs) - ?TICKS div 10, Secs),
    (9 * bench:median(Plain) + bench:median(Scans)) / 10.

%%% The reference sampler

%% The reference sampler: on `{start, From}' it ticks ?TICKS times, then
%% tells `From' `{ref_done, self(), Ticks}' and ends.
-spec ref_start() -> pid().
ref_start() ->
    Tabs = [ets:new(T, [set, public]) || T <- [ref_seconds, ref_minutes, ref_hours]],
    spawn(fun() -> receive {start, From} -> ref_loop(From, ref_init(Tabs)) end end).

-spec ref_init([ets:tid()]) -> map().
ref_init(Tabs) ->
    _ = erlang:system_flag(scheduler_wall_time, true),
    ref_schedule(#{tabs => Tabs, prev => ref_counters(), ticks => 0}).

%% Ticks a quarter into each wall-clock second (ours at the middle), so a
%% tick's work falls in one second.
-spec ref_schedule(map()) -> map().
ref_schedule(State) ->
    Now = erlang:system_time(millisecond),
    _ = erlang:send_after(1000 - (Now - 250) rem 1000, self(), tick),
    State.

-spec ref_loop(pid(), map()) -> ok.
ref_loop(From, #{ticks := ?TICKS}) ->
    From ! {ref_done, self(), ?TICKS},
    ok;
ref_loop(From, State) ->
    receive tick -> ref_loop(From, ref_schedule(ref_tick(State))) end.

-spec ref_tick(map()) -> map().
ref_tick(#{tabs := Tabs, prev := Prev, ticks := Ticks} = State) ->
    Now = ref_counters(),
    Due = Ticks rem 10 =:= 0,
    Points = [{{memory, T}, B} || {T, B} <- erlang:memory()]
        ++ lists:append([[{{count, T}, erlang:system_info(C)}, {{limit, T}, erlang:system_info(L)}]
                         || {T, C, L} <- [{process, process_count, process_limit},
                                          {port, port_count, port_limit},
                                          {atom, atom_count, atom_limit},
                                          {ets, ets_count, ets_limit}]])
        ++ ref_run_queues() ++ ref_usage(Prev, Now)
        ++ [{K, maps:get(K, Now) - maps:get(K, Prev)}
            || K <- [io_in, io_out, gc_count, gc_words_reclaimed, reductions, context_switches]]
        ++ case Due of
               true -> ref_allocators() ++ ref_queues();
               false -> []
           end,
    T = erlang:system_time(second),
    _ = [ref_store(Tabs, Name, T, V) || {Name, V} <- Points],
    State#{prev := Now, ticks := Ticks + 1}.

-spec ref_counters() -> map().
ref_counters() ->
    {{input, In}, {output, Out}} = erlang:statistics(io),
    {GCs, Words, _} = erlang:statistics(garbage_collection),
    {Reds, _} = erlang:statistics(reductions),
    {Switches, _} = erlang:statistics(context_switches),
    #{io_in => In, io_out => Out, gc_count => GCs, gc_words_reclaimed => Words,
      reductions => Reds, context_switches => Switches,
      wall => lists:sort(erlang:statistics(scheduler_wall_time))}.

-spec ref_run_queues() -> [{term(), number()}].
ref_run_queues() ->
    Lengths = erlang:statistics(run_queue_lengths_all),
    {Normal, Dirty} = lists:split(erlang:system_info(schedulers), Lengths),
    [{{run_queue, total}, lists:sum(Lengths)}]
        ++ [{{run_queue, I}, L} || {I, L} <- lists:zip(lists:seq(1, length(Normal)), Normal)]
        ++ [{{run_queue, D}, L} || {D, L} <- lists:zip([dirty_cpu, dirty_io], Dirty)].

-spec ref_usage(map(), map()) -> [{term(), float()}].
ref_usage(#{wall := W0}, #{wall := W1}) ->
    N = erlang:system_info(schedulers),
    Pairs = [{I, A1 - A0, T1 - T0} || {{I, A0, T0}, {I, A1, T1}} <- lists:zip(W0, W1), I =< N],
    Busy = lists:sum([A || {_, A, _} <- Pairs]),
    Total = lists:sum([T || {_, _, T} <- Pairs]),
    [{{scheduler_usage, total}, Busy / max(1, Total)}
     | [{{scheduler_usage, I}, A / max(1, T)} || {I, A, T} <- Pairs]].

-spec ref_allocators() -> [{term(), number()}].
ref_allocators() ->
    lists:append(
      [begin
           Kinds = [K || {instance, _, Ks} <- erlang:system_info({allocator_sizes, A}), K <- Ks],
           Carriers = lists:sum([element(2, lists:keyfind(carriers_size, 1, Props))
                                 || {_, Props} <- Kinds, lists:keymember(carriers_size, 1, Props)]),
           Blocks = lists:sum([element(2, S) || {_, Props} <- Kinds,
                                                {blocks, Types} <- [lists:keyfind(blocks, 1, Props)],
                                                {_, Sizes} <- Types, S <- Sizes,
                                                element(1, S) =:= size]),
           [{{allocator, A, carriers_size}, Carriers}, {{allocator, A, blocks_size}, Blocks}]
       end || A <- erlang:system_info(alloc_util_allocators)]).

%% Every process's queue length, sorted, the ?TOP longest kept.
-spec ref_queues() -> [{term(), non_neg_integer()}].
ref_queues() ->
    Lengths = [{P, N} || P <- erlang:processes(),
                         {message_queue_len, N} <- [erlang:process_info(P, message_queue_len)]],
    Top = lists:sublist(lists:reverse(lists:keysort(2, Lengths)), ?TOP),
    [{{message_queue, Rank}, N} || {Rank, {_, N}} <- lists:zip(lists:seq(1, length(Top)), Top)].

%% One point into the three tiers: the second (and the second an hour
%% ago out), the minute's and the hour's min, max, sum and count (and the
%% minute a day ago and the hour 30 days ago out).
-spec ref_store([ets:tid()], term(), integer(), number()) -> true.
ref_store([Seconds, Minutes, Hours], Name, T, V) ->
    true = ets:insert(Seconds, {{Name, T}, V}),
    true = ets:delete(Seconds, {Name, T - 3600}),
    ref_agg(Minutes, Name, T div 60, 1440, V),
    ref_agg(Hours, Name, T div 3600, 720, V).

-spec ref_agg(ets:tid(), term(), integer(), pos_integer(), number()) -> true.
ref_agg(Tab, Name, Slot, Keep, V) ->
    Agg = case ets:lookup(Tab, {Name, Slot}) of
              [{_, {Min, Max, Sum, Count}}] -> {min(Min, V), max(Max, V), Sum + V, Count + 1};
              [] -> {V, V, V, 1}
          end,
    true = ets:insert(Tab, {{Name, Slot}, Agg}),
    true = ets:delete(Tab, {Name, Slot - Keep}).

%%% User metrics

-spec observe(pos_integer()) -> bench:result().
observe(Procs) ->
    {ok, _} = application:ensure_all_started(reckon),
    ok = reckon_metrics:start(#{}),
    {ok, H} = reckon_metrics:histogram(bench_observe),
    ok = reckon_metrics:stop(),
    Tab = ets:new(bench_prom_hist, [set, public, {write_concurrency, true},
                                    {read_concurrency, true}]),
    Zeros = list_to_tuple(lists:duplicate(length(?BOUNDS) + 1, 0)),
    _ = [ets:insert(Tab, list_to_tuple([{hist, S}, ?BOUNDS, 0 | tuple_to_list(Zeros)]))
         || S <- lists:seq(0, ?STRIPES - 1)],
    Result = bench:compare(fun(N) -> ours_observe(H, N) end, fun(N) -> ref_observe(Tab, N) end,
                           #{ops => 500000, procs => Procs}),
    ets:delete(Tab),
    Result.

%% Values 0..99 000 in steps of 97, as latencies in µs would spread.
-spec ours_observe(reckon_metrics:metric(), non_neg_integer()) -> ok.
ours_observe(_H, 0) -> ok;
ours_observe(H, N) ->
    ok = reckon_metrics:observe(H, (N band 1023) * 97),
    ours_observe(H, N - 1).

-spec ref_observe(ets:tid(), non_neg_integer()) -> ok.
ref_observe(_Tab, 0) -> ok;
ref_observe(Tab, N) ->
    V = (N band 1023) * 97,
    Key = {hist, erlang:system_info(scheduler_id) rem ?STRIPES},
    [Row] = ets:lookup(Tab, Key),
    Pos = position(element(2, Row), V, 0),
    _ = ets:update_counter(Tab, Key, [{3, V}, {4 + Pos, 1}]),
    ref_observe(Tab, N - 1).

%% The index of the first bound `V' is at most (the last index past them).
-spec position([number()], number(), non_neg_integer()) -> non_neg_integer().
position([], _V, I) -> I;
position([Bound | _], V, I) when V =< Bound -> I;
position([_ | Bounds], V, I) -> position(Bounds, V, I + 1).

-spec counter_inc() -> bench:result().
counter_inc() ->
    {ok, _} = application:ensure_all_started(reckon),
    ok = reckon_metrics:start(#{}),
    {ok, C} = reckon_metrics:counter(bench_counter),
    ok = reckon_metrics:stop(),
    Tab = ets:new(bench_counter, [set, public, {write_concurrency, true}]),
    true = ets:insert(Tab, {count, 0}),
    Result = bench:compare(fun(N) -> ours_inc(C, N) end, fun(N) -> ref_inc(Tab, N) end,
                           #{ops => 500000, procs => 2}),
    ets:delete(Tab),
    Result.

-spec ours_inc(reckon_metrics:metric(), non_neg_integer()) -> ok.
ours_inc(_C, 0) -> ok;
ours_inc(C, N) ->
    ok = reckon_metrics:inc(C),
    ours_inc(C, N - 1).

-spec ref_inc(ets:tid(), non_neg_integer()) -> ok.
ref_inc(_Tab, 0) -> ok;
ref_inc(Tab, N) ->
    _ = ets:update_counter(Tab, count, 1),
    ref_inc(Tab, N - 1).
