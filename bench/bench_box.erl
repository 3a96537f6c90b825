%% @doc Benchmark suite `box': `sluice_box' against a process-backed buffer
%% as pobox builds it, in the same run.
%%
%% == The reference ==
%% One plain Erlang process with gen_server semantics: a post is an
%% asynchronous message `{post, Msg}' into its mailbox, handled in arrival
%% order; `take', `info' and `close' are synchronous calls (monitor, request,
%% reply) that queue behind every post sent before them. It holds an Erlang
%% `queue' of at most `max' messages, drops the oldest when full (the `queue'
%% type), counts posted, stored, delivered and dropped messages, and exits
%% when its owner (the process that started it) does. Ours is the box of
%% `sluice_box:new(#{max => Max, type => queue})', owned by the process that
%% would own the reference: `post' is a NIF call in the producer.
%%
%% == Cases ==
%% <ul>
%% <li>`post_p1', `post_p2', `post_p8', `post_p64' (`ops_per_s'): 2 000 000
%%     posts of `{event, I, <<0:128>>}' per round, split over 1, 2, 8 or 64
%%     producers, into a buffer of max 1000 that its owner drains
%%     concurrently (a loop taking batches of 100 until told to stop).
%%     Counted end to end: the clock starts when the producers are released
%%     and stops when every post has been accounted for by the buffer
%%     (stored or dropped): for ours when the last producer's last `post'
%%     returned (it is synchronous); for the reference when a call to the
%%     buffer process, queued behind every post, reports them all posted.
%%     One untimed round per side, then 5 timed rounds alternating the
%%     sides; the figure is total posts over the median round time. After
%%     each round the counters are checked: posted = delivered + dropped +
%%     size, delivered = what the owner took, and (ours) overflow drops =
%%     `full' answers; a mismatch is printed as a `#' note.</li>
%% <li>`bytes_per_msg' (`bytes'): node memory growth (`erlang:memory(total)'
%%     once settled, the producer and the reference process garbage
%%     collected) while a buffer of max 100 000 holds 100 000 distinct
%%     messages `{event, I, <<I:128>>}' built in the producer, nobody
%%     taking, divided by 100 000. The reference's growth is its heap (the
%%     queue and the messages); ours is the NIF envs holding the copies.
%%     `erlang:memory/1' does not see what the NIF library takes from the C
%%     allocator (its per-message index entries), so ours is a lower
%%     bound.</li>
%% <li>`flood_peak_memory' (`bytes'): 2 producers post as fast as they can
%%     for `FLOOD_MS' ms (default 5000; `erlc -DFLOOD_MS=...') into a buffer
%%     of max 1000 whose owner drains ten times slower: their post rate is
%%     first measured for 200 ms with nobody draining, then the owner takes,
%%     every millisecond, what a tenth of that rate allows (at most 1000 at
%%     a time; capacity unused while the buffer is empty is lost).
%%     `erlang:memory(total)' is sampled every 10 ms; the figure is the peak
%%     growth over the settled value just before the flood. A `#' note gives
%%     each side's post rate (the reference's: sent), the owner's pace and
%%     the rate it was delivered; another the reference's peak
%%     `message_queue_len' (ours has no process, hence no mailbox: 0, and
%%     `bench:better/3' would report 0.0, a loss, for a 0 `msgs' figure, so
%%     this is a note, not a `BENCH' line). The reference's owner mostly
%%     waits: each of its `take' calls queues behind the flood. Afterwards the
%%     reference process is killed, not drained.</li>
%% <li>`idle_bytes' (`bytes'): node memory growth (`bench:memory_delta/1')
%%     while one process keeps 10 000 empty buffers of max 100, per buffer:
%%     ours are boxes it owns (no lanes, storage or histogram until first
%%     used), the reference's are buffer processes, each an empty queue in
%%     a receive loop, with their monitor of the owner.</li>
%% <li>`take_call_ms' (`ms'): the longest a delivery holds a scheduler in
%%     one go, handing out 100 000 held messages `{event, I, <<I:128>>}'.
%%     Ours: the longest of the `box_take' NIF calls that `take/2' makes
%%     (each at most 1000 messages); the reference: a buffer process
%%     sending the 100 000 in one message, as pobox's `active' delivery
%%     does (a send copies its message without yielding). Median of
%%     three rounds. The cap per call is tested (sluice_box_SUITE's
%%     `no_long_schedule'); this is its time.</li>
%% </ul>
-module(bench_box).
-behaviour(bench).

-export([cases/0]).

-define(MAX, 1000).
-define(POST_TOTAL, 2000000).
-define(ROUNDS, 5).
-define(BATCH, 100).
-ifndef(FLOOD_MS).
-define(FLOOD_MS, 5000).
-endif.
-define(FLOOD_PRODUCERS, 2).
%% How long the producers' post rate is measured before a flood.
-define(CALIBRATE_MS, 200).
-define(SAMPLE_MS, 10).
-define(HELD, 100000).
-define(HEAP, 10000).
%% Idle buffers in `idle_bytes'.
-define(IDLE, 10000).
%% Posts between two looks at the mailbox in a flooding producer.
-define(CHECK_EVERY, 1000).

%% A `sluice_box' handle (side `ours') or the reference process (side `ref').
-type buf() :: term().
-type side() :: ours | ref.
%% How the owner drains (see start_owner/3).
-type pace() :: spin | {PerMs :: pos_integer(), T0 :: integer(), Granted :: non_neg_integer()}.
-type info() :: #{posted := non_neg_integer(), delivered := non_neg_integer(),
                  dropped := #{atom() => non_neg_integer()}, size := non_neg_integer(),
                  atom() => term()}.

-record(rb, {q = queue:new() :: queue:queue(term()), len = 0 :: non_neg_integer(),
             max :: pos_integer(), owner :: reference(), posted = 0 :: non_neg_integer(),
             stored = 0 :: non_neg_integer(), delivered = 0 :: non_neg_integer(),
             dropped = 0 :: non_neg_integer(), unseen = 0 :: non_neg_integer()}).

%% @doc The cases of this suite (see the module documentation).
-spec cases() -> [{atom(), fun(() -> bench:result())}].
cases() ->
    [{post_p1, fun() -> post_case(1) end},
     {post_p2, fun() -> post_case(2) end},
     {post_p8, fun() -> post_case(8) end},
     {post_p64, fun() -> post_case(64) end},
     {bytes_per_msg, fun bytes_case/0},
     {flood_peak_memory, fun flood_case/0},
     {idle_bytes, fun idle_case/0},
     {take_call_ms, fun take_call_case/0}].

%%% Post throughput, end to end

-spec post_case(pos_integer()) -> bench:result().
post_case(Procs) ->
    PerProc = ?POST_TOTAL div Procs,
    _ = [post_round(Side, Procs, PerProc) || Side <- [ours, ref]],
    Pairs = [{post_round(ours, Procs, PerProc), post_round(ref, Procs, PerProc)}
             || _ <- lists:seq(1, ?ROUNDS)],
    {OursNs, RefNs} = lists:unzip(Pairs),
    Total = PerProc * Procs,
    {Total * 1.0e9 / bench:median(OursNs), Total * 1.0e9 / bench:median(RefNs), ops_per_s}.

%% Nanoseconds from releasing the producers to every post accounted for.
-spec post_round(side(), pos_integer(), pos_integer()) -> integer().
post_round(Side, Procs, PerProc) ->
    {Owner, Buf} = start_owner(Side, ?MAX, spin),
    Producers = start_producers(Procs, Side, Buf, PerProc),
    T0 = erlang:monotonic_time(nanosecond),
    _ = [P ! go || P <- Producers],
    Fulls = [receive {done, P, Full} -> Full end || P <- Producers],
    Total = PerProc * Procs,
    ok = settle(Side, Buf, Total),
    T1 = erlang:monotonic_time(nanosecond),
    {Delivered, Info} = stop_owner(Owner),
    check(Side, Total, lists:sum(Fulls), Delivered, Info),
    T1 - T0.

%% Producers posting N messages each (reporting their `full' answers), or
%% flooding until stopped (reporting their posts), once released by `go'.
-spec start_producers(pos_integer(), side(), buf(), pos_integer() | flood) -> [pid()].
start_producers(Procs, Side, Buf, Work) ->
    Parent = self(),
    Producers = [spawn_opt(fun() -> producer(Parent, Side, Buf, Work) end,
                           [link, {min_heap_size, ?HEAP}])
                 || _ <- lists:seq(1, Procs)],
    _ = [receive {ready, P} -> ok end || P <- Producers],
    Producers.

-spec producer(pid(), side(), buf(), pos_integer() | flood) -> ok.
producer(Parent, Side, Buf, Work) ->
    Parent ! {ready, self()},
    receive go -> ok end,
    case Work of
        flood -> flood_loop(Parent, Side, Buf, 0);
        N -> Parent ! {done, self(), post_loop(N, Side, Buf, 0)}, ok
    end.

%% Posts N messages; returns how many posts answered `full'.
-spec post_loop(non_neg_integer(), side(), buf(), non_neg_integer()) -> non_neg_integer().
post_loop(0, _Side, _Buf, Full) ->
    Full;
post_loop(N, Side, Buf, Full) ->
    case post(Side, Buf, {event, N, <<0:128>>}) of
        ok -> post_loop(N - 1, Side, Buf, Full);
        full -> post_loop(N - 1, Side, Buf, Full + 1)
    end.

%% Ours is accounted for when `post' returns; the reference when its process
%% has handled every post message (a call queues behind them).
-spec settle(side(), buf(), non_neg_integer()) -> ok.
settle(ours, _Box, _Total) ->
    ok;
settle(ref, Pid, Total) ->
    case info(ref, Pid) of
        #{posted := Total} -> ok;
        #{posted := Posted} when Posted < Total -> settle(ref, Pid, Total)
    end.

-spec check(side(), non_neg_integer(), non_neg_integer(), non_neg_integer(), info()) -> ok.
check(Side, Total, Fulls, Taken,
      #{posted := Posted, delivered := Delivered, dropped := Dropped, size := Size}) ->
    Overflow = maps:get(overflow, Dropped, 0),
    DropSum = lists:sum(maps:values(Dropped)),
    FullsOk = Side =:= ref orelse Fulls =:= Overflow,
    case Posted =:= Total andalso Delivered =:= Taken andalso FullsOk
        andalso Posted =:= Delivered + DropSum + Size of
        true -> ok;
        false -> note("box: ~s counters do not reconcile: sent ~b, full answers ~b, taken ~b, "
                      "info ~0p", [Side, Total, Fulls, Taken, Dropped#{posted => Posted,
                                   delivered => Delivered, size => Size}])
    end.

%%% Flood: peak node memory

-spec flood_case() -> bench:result().
flood_case() ->
    {OursPeak, _, OursPace, OursPosts, OursTaken} = flood_round(ours),
    {RefPeak, RefMailbox, RefPace, RefPosts, RefTaken} = flood_round(ref),
    PerSec = fun(N) -> N * 1000 div ?FLOOD_MS end,
    note("box/flood_peak_memory: ~b ms, ~b producers; ours posted ~b/s, owner paced at "
         "~b/s, delivered ~b/s; ref sent ~b/s, owner paced at ~b/s, delivered ~b/s",
         [?FLOOD_MS, ?FLOOD_PRODUCERS, PerSec(OursPosts), OursPace * 1000, PerSec(OursTaken),
          PerSec(RefPosts), RefPace * 1000, PerSec(RefTaken)]),
    note("box/flood_peak_mailbox: ours=0 (no box process) ref=~b msgs", [RefMailbox]),
    {OursPeak, RefPeak, bytes}.

%% {peak memory growth, peak mailbox length, owner's pace (messages per ms),
%% posts, messages delivered}
-spec flood_round(side()) -> {integer(), non_neg_integer(), pos_integer(),
                              non_neg_integer(), non_neg_integer()}.
flood_round(Side) ->
    PerMs = max(1, calibrate(Side) div 10),
    {Owner, Buf} = start_owner(Side, ?MAX, {PerMs, erlang:monotonic_time(microsecond), 0}),
    Producers = start_producers(?FLOOD_PRODUCERS, Side, Buf, flood),
    Base = bench:settled_memory(),
    Samplers = [sampler(fun() -> erlang:memory(total) end)
                | [sampler(fun() -> mailbox_len(Buf) end) || Side =:= ref]],
    Posts = flood_for(Producers, ?FLOOD_MS),
    [PeakMem | PeakMailbox] = [stop_sampler(S) || S <- Samplers],
    _ = [kill(Buf) || Side =:= ref],
    {Delivered, _Info} = stop_owner(Owner),
    {PeakMem - Base, lists:sum(PeakMailbox), PerMs, Posts, Delivered}.

%% Posts per millisecond of the producers into a buffer nobody drains.
-spec calibrate(side()) -> non_neg_integer().
calibrate(Side) ->
    Buf = new_buffer(Side, ?MAX),
    Posts = flood_for(start_producers(?FLOOD_PRODUCERS, Side, Buf, flood), ?CALIBRATE_MS),
    ok = case Side of
             ours -> close(ours, Buf);
             ref -> kill(Buf)
         end,
    Posts div ?CALIBRATE_MS.

%% Lets the producers post for Ms milliseconds; returns their posts.
-spec flood_for([pid()], pos_integer()) -> non_neg_integer().
flood_for(Producers, Ms) ->
    _ = [P ! go || P <- Producers],
    receive after Ms -> ok end,
    _ = [P ! {stop, self()} || P <- Producers],
    lists:sum([receive {done, P, Posted} -> Posted end || P <- Producers]).

-spec flood_loop(pid(), side(), buf(), non_neg_integer()) -> ok.
flood_loop(Parent, Side, Buf, Posted) ->
    _ = post_loop(?CHECK_EVERY, Side, Buf, 0),
    receive
        {stop, Parent} -> Parent ! {done, self(), Posted + ?CHECK_EVERY}, ok
    after 0 ->
        flood_loop(Parent, Side, Buf, Posted + ?CHECK_EVERY)
    end.

%% A process sampling Fun every ?SAMPLE_MS; stop_sampler/1 returns the peak.
-spec sampler(fun(() -> non_neg_integer())) -> pid().
sampler(Fun) ->
    spawn_link(fun() -> sample_loop(Fun, Fun()) end).

-spec sample_loop(fun(() -> non_neg_integer()), non_neg_integer()) -> ok.
sample_loop(Fun, Peak) ->
    receive
        {stop, From} -> From ! {peak, self(), Peak}, ok
    after ?SAMPLE_MS ->
        sample_loop(Fun, max(Peak, Fun()))
    end.

-spec stop_sampler(pid()) -> non_neg_integer().
stop_sampler(Pid) ->
    Pid ! {stop, self()},
    receive {peak, Pid, Peak} -> Peak end.

-spec kill(pid()) -> ok.
kill(Pid) ->
    MRef = monitor(process, Pid),
    exit(Pid, kill),
    receive {'DOWN', MRef, process, Pid, _} -> ok end.

-spec mailbox_len(pid()) -> non_neg_integer().
mailbox_len(Pid) ->
    case process_info(Pid, message_queue_len) of
        {message_queue_len, Len} -> Len;
        undefined -> 0
    end.

%%% Bytes per buffered message

%% Bytes per idle buffer: node memory growth while one process keeps ?IDLE
%% empty buffers of max 100 (ours: boxes it owns; the reference: buffer
%% processes, each an empty queue in a receive loop), divided by ?IDLE.
-spec idle_case() -> bench:result().
idle_case() ->
    Build = fun(Side) ->
                    fun() -> [new_buffer(Side, 100) || _ <- lists:seq(1, ?IDLE)] end
            end,
    Ours = bench:memory_delta(Build(ours)),
    Ref = bench:memory_delta(Build(ref)),
    {Ours / ?IDLE, Ref / ?IDLE, bytes}.

-spec take_call_case() -> bench:result().
take_call_case() ->
    Msgs = [{event, I, <<I:128>>} || I <- lists:seq(1, ?HELD)],
    Rounds = [{longest_take(Msgs), longest_send(Msgs)} || _ <- lists:seq(1, 3)],
    {Ours, Ref} = lists:unzip(Rounds),
    {bench:median(Ours) / 1.0e6, bench:median(Ref) / 1.0e6, ms}.

%% Nanoseconds of the longest NIF call emptying a box of `Msgs'.
-spec longest_take([term()]) -> integer().
longest_take(Msgs) ->
    {ok, Box} = sluice_box:new(#{max => ?HELD}),
    _ = [sluice_box:post(Box, M) || M <- Msgs],
    Longest = take_calls(Box, 0),
    ok = sluice_box:close(Box),
    Longest.

-spec take_calls(sluice_box:box(), integer()) -> integer().
take_calls(Box, Longest) ->
    T0 = erlang:monotonic_time(),
    {_, Count, _} = sluice_nif:box_take(Box, 1000),
    Ns = erlang:convert_time_unit(erlang:monotonic_time() - T0, native, nanosecond),
    case Count of
        0 -> Longest;
        _ -> take_calls(Box, max(Longest, Ns))
    end.

%% Nanoseconds of sending `Msgs' in one message to a waiting process.
-spec longest_send([term()]) -> integer().
longest_send(Msgs) ->
    Pid = spawn(fun() -> receive {mail, _} -> ok end end),
    T0 = erlang:monotonic_time(),
    Pid ! {mail, Msgs},
    erlang:convert_time_unit(erlang:monotonic_time() - T0, native, nanosecond).

-spec bytes_case() -> bench:result().
bytes_case() ->
    {held(ours) / ?HELD, held(ref) / ?HELD, bytes}.

%% Growth of erlang:memory(total) while a buffer holds ?HELD messages.
%% The building process owns the buffer: when it stops, the box is closed
%% and freed (its owner died) and the reference process exits with it.
-spec held(side()) -> integer().
held(Side) ->
    bench:memory_delta(fun() -> hold(Side) end).

-spec hold(side()) -> buf().
hold(Side) ->
    Buf = new_buffer(Side, ?HELD),
    0 = fill(?HELD, Side, Buf, 0),
    ok = settle(Side, Buf, ?HELD),
    case info(Side, Buf) of
        #{size := ?HELD} -> ok;
        Info -> exit({not_all_held, Side, Info})
    end,
    _ = [erlang:garbage_collect(Buf) || Side =:= ref],
    Buf.

%% Posts N distinct messages; returns how many posts answered `full'.
-spec fill(non_neg_integer(), side(), buf(), non_neg_integer()) -> non_neg_integer().
fill(0, _Side, _Buf, Full) ->
    Full;
fill(N, Side, Buf, Full) ->
    case post(Side, Buf, {event, N, <<N:128>>}) of
        ok -> fill(N - 1, Side, Buf, Full);
        full -> fill(N - 1, Side, Buf, Full + 1)
    end.

%%% The owner: creates the buffer, drains it until stopped, closes it

%% Pace `spin': takes batches of ?BATCH back to back. Pace `{PerMs, T0, Granted}':
%% every millisecond, takes what PerMs messages per ms since T0 allow beyond
%% the Granted already asked for (capacity unused while the box is empty is
%% lost, so there is no burst after a quiet spell), at most 1000 at a time.
-spec start_owner(side(), pos_integer(), pace()) -> {pid(), buf()}.
start_owner(Side, Max, Pace) ->
    Parent = self(),
    Pid = spawn_opt(fun() ->
                            Buf = new_buffer(Side, Max),
                            Parent ! {buffer, self(), Buf},
                            drain(Side, Buf, Pace, 0)
                    end, [link, {min_heap_size, ?HEAP}]),
    receive {buffer, Pid, Buf} -> {Pid, Buf} end.

-spec drain(side(), buf(), pace(), non_neg_integer()) -> ok.
drain(Side, Buf, Pace, Taken) ->
    {N, Next, Pause} = next_batch(Pace),
    {_, Count, _} = case N of
                        0 -> {[], 0, 0};
                        _ -> take(Side, Buf, N)
                    end,
    receive
        {stop, From} ->
            Info = info(Side, Buf),
            ok = close(Side, Buf),
            From ! {stopped, self(), Taken + Count, Info},
            ok
    after Pause ->
        drain(Side, Buf, Next, Taken + Count)
    end.

%% How many to take now, the pace after that, and the pause before the next.
-spec next_batch(pace()) -> {non_neg_integer(), pace(), 0 | 1}.
next_batch(spin) ->
    {?BATCH, spin, 0};
next_batch({PerMs, T0, Granted}) ->
    Due = PerMs * (erlang:monotonic_time(microsecond) - T0) div 1000 - Granted,
    N = max(0, min(Due, 1000)),
    {N, {PerMs, T0, Granted + N}, 1}.

%% Messages the owner took, and the buffer's info just before it was closed.
-spec stop_owner(pid()) -> {non_neg_integer(), info() | undefined}.
stop_owner(Pid) ->
    Pid ! {stop, self()},
    receive {stopped, Pid, Taken, Info} -> {Taken, Info} end.

%%% Both sides behind one interface (the dispatch costs both the same)

-spec new_buffer(side(), pos_integer()) -> buf().
new_buffer(ours, Max) ->
    {ok, Box} = sluice_box:new(#{max => Max, type => queue}),
    Box;
new_buffer(ref, Max) ->
    Owner = self(),
    spawn(fun() -> ref_loop(#rb{max = Max, owner = monitor(process, Owner)}) end).

-spec post(side(), buf(), term()) -> ok | full.
post(ours, Box, Msg) ->
    sluice_box:post(Box, Msg);
post(ref, Pid, Msg) ->
    Pid ! {post, Msg},
    ok.

-spec take(side(), buf(), pos_integer()) ->
    {[term()], non_neg_integer(), non_neg_integer()}.
take(ours, Box, N) ->
    sluice_box:take(Box, N);
take(ref, Pid, N) ->
    case call(Pid, {take, N}) of
        {ok, Reply} -> Reply;
        down -> {[], 0, 0}
    end.

-spec info(side(), buf()) -> info() | undefined.
info(ours, Box) ->
    sluice_box:info(Box);
info(ref, Pid) ->
    case call(Pid, info) of
        {ok, Info} -> Info;
        down -> undefined
    end.

-spec close(side(), buf()) -> ok.
close(ours, Box) ->
    sluice_box:close(Box);
close(ref, Pid) ->
    _ = call(Pid, close),
    ok.

%%% The reference buffer process

-spec call(pid(), term()) -> {ok, term()} | down.
call(Pid, Request) ->
    MRef = monitor(process, Pid),
    Pid ! {call, {self(), MRef}, Request},
    receive
        {MRef, Reply} -> demonitor(MRef, [flush]), {ok, Reply};
        {'DOWN', MRef, process, Pid, _} -> down
    end.

-spec ref_loop(#rb{}) -> ok.
ref_loop(#rb{q = Q, len = Len, max = Max, posted = Posted, stored = Stored} = S) ->
    receive
        {post, Msg} when Len < Max ->
            ref_loop(S#rb{q = queue:in(Msg, Q), len = Len + 1, posted = Posted + 1,
                          stored = Stored + 1});
        {post, Msg} ->
            ref_loop(S#rb{q = queue:in(Msg, queue:drop(Q)), posted = Posted + 1,
                          stored = Stored + 1, dropped = S#rb.dropped + 1,
                          unseen = S#rb.unseen + 1});
        {call, {From, Tag}, {take, N}} ->
            Count = min(N, Len),
            {Front, Back} = queue:split(Count, Q),
            From ! {Tag, {queue:to_list(Front), Count, S#rb.unseen}},
            ref_loop(S#rb{q = Back, len = Len - Count, delivered = S#rb.delivered + Count,
                          unseen = 0});
        {call, {From, Tag}, info} ->
            From ! {Tag, #{posted => Posted, stored => Stored, delivered => S#rb.delivered,
                           dropped => #{overflow => S#rb.dropped}, size => Len, max => Max}},
            ref_loop(S);
        {call, {From, Tag}, close} ->
            From ! {Tag, ok},
            ok;
        {'DOWN', Owner, process, _, _} when Owner =:= S#rb.owner ->
            ok
    end.

-spec note(io:format(), [term()]) -> ok.
note(Format, Args) ->
    io:format(standard_error, "# " ++ Format ++ "~n", Args).
