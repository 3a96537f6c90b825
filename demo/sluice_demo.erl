%% @doc `make demo': a flood of producers against a deliberately slow
%% consumer, first unprotected, then through a random-drop valve regulated by
%% the consumer's mailbox length, then through a bounded `sluice_box'.
%%
%% == The set-up ==
%% `producers' processes offer `offered' messages per second in all, paced by
%% the clock, each message a small tuple carrying a 64-byte binary that
%% starts with its send time. One consumer handles at most `service' messages
%% per second (it sleeps once it is ahead of that rate). The offered load is
%% ten times what the consumer can take, the situation of Erlang in Anger's
%% chapter 3.
%%
%% == The three phases ==
%% <ol>
%% <li>`unprotected': producers send straight to the consumer. Its mailbox
%%     and the node's memory grow without bound; every message that arrives
%%     waits behind all the others.</li>
%% <li>`protected': producers ask a `sluice_drop' valve first and send only on
%%     `ok'. A regulator samples the consumer's `message_queue_len' every
%%     `interval' ms and lowers the keep rate from 100 % at `low' messages to
%%     `min_rate' at `high', so the mailbox stays near that band and the
%%     consumer works as fast as before on fresher messages.</li>
%% <li>`boxed': the consumer owns a `sluice_box' of type `box_type' holding
%%     at most `box_max' messages. Producers `post' to it (and count the
%%     `full' answers); the consumer `take's batches of at most 100 at the
%%     same pace as before. Nothing goes through the consumer's mailbox and
%%     there is no buffer process: once the box is full each post drops one
%%     message (the oldest held for `queue' and `stack', the new one for
%%     `keep_old'), so memory stays flat and no message waits behind more
%%     than `box_max' others.</li>
%% </ol>
%% Each phase lasts `seconds' seconds and prints one line per second: the
%% consumer's mailbox length, node memory (`erlang:memory(total)'), messages
%% held in the box, messages kept and dropped in that second (kept: sent to
%% the consumer's mailbox, or for the box posted minus dropped, so kept plus
%% dropped is what was offered), consumed in that second, the valve's keep
%% rate, how long the last consumed message had waited (`age_ms', measured
%% by the consumer from the send time), and the box's sojourn p99 since the
%% phase began (from `sluice_box:info/1'). Then the phase stops every
%% process it started and deletes its valve or closes its box. A safety cap
%% ends a phase early if the mailbox passes `max_mailbox' messages or the
%% node `max_memory_mb' megabytes. A summary compares the phases.
%%
%% This module prints to the terminal on purpose: it is a shell-facing demo,
%% not library code.
-module(sluice_demo).

-export([main/0, run/1]).
-export_type([options/0, summary/0]).

%% Defaults: `seconds' 10, `producers' 4, `offered' 50 000 msg/s,
%% `service' 5 000 msg/s, `low' 1 000, `high' 10 000 messages, `min_rate' 0.0,
%% `interval' 50 ms, `box_type' `queue', `box_max' 1 000 messages,
%% `max_mailbox' 2 000 000, `max_memory_mb' 600.
-type options() :: #{seconds => pos_integer(),
                     producers => pos_integer(),
                     offered => pos_integer(),
                     service => pos_integer(),
                     low => non_neg_integer(),
                     high => pos_integer(),
                     min_rate => float(),
                     interval => pos_integer(),
                     box_type => sluice_box:type(),
                     box_max => pos_integer(),
                     max_mailbox => pos_integer(),
                     max_memory_mb => pos_integer()}.
%% What one phase did; `box' only for the boxed phase (sojourn times of the
%% delivered messages, from `sluice_box:info/1').
-type summary() :: #{phase := phase(),
                     seconds := float(),
                     peak_mailbox := non_neg_integer(),
                     peak_memory_mb := float(),
                     offered := non_neg_integer(),
                     kept := non_neg_integer(),
                     dropped := non_neg_integer(),
                     consumed := non_neg_integer(),
                     last_age_ms := non_neg_integer(),
                     capped := boolean(),
                     box => #{type := sluice_box:type(), max := pos_integer(),
                              peak := non_neg_integer(), full := non_neg_integer(),
                              sojourn_ms := #{p50 | p99 | max => float()}}}.
-type phase() :: unprotected | protected | boxed.
%% How producers hand a message over.
-type gate() :: {send, pid()} | {valve, sluice_drop:valve(), pid()} | {box, sluice_box:box()}.
%% Where the consumer finds its messages.
-type source() :: mailbox | {box, sluice_box:box()}.
%% Counter indexes of a phase's `counters' array.
-define(OFFERED, 1).
-define(SENT, 2).      % sent to the consumer, or posted (`ok' or `full')
-define(CONSUMED, 3).
-define(FULL, 4).      % `full' answers to posts
-define(AGE, 5).       % microseconds the last consumed message had waited
-define(BATCH, 100).
-define(TICK_MS, 100).
-define(TICKS_PER_LINE, 10).
-define(MB, 1048576).
-define(ROW, "~-11s ~3b ~8b ~9.1f ~s ~8b ~9b ~10b ~s ~7b ~s~n").
-define(HEADER, "~-11s ~3s ~8s ~9s ~6s ~8s ~9s ~10s ~5s ~7s ~7s~n").

%%% Entry points

%% @doc Runs the demo with its defaults (`DEMO_SECONDS' in the environment
%% overrides the length of each phase) and halts the node: status 0 when
%% the three phases ran, 1 when the demo crashed.
-spec main() -> no_return().
main() ->
    Status = try run(env_options()) of
                 _ -> 0
             catch
                 Class:Reason:Stack ->
                     io:format(standard_error, "demo crashed: ~p:~p~n~p~n",
                               [Class, Reason, Stack]),
                     1
             end,
    halt(Status).

-spec env_options() -> options().
env_options() ->
    case os:getenv("DEMO_SECONDS") of
        false -> #{};
        "" -> #{};
        S -> #{seconds => list_to_integer(S)}
    end.

%% @doc Runs the three phases with `Opts' (see {@link options()}), prints
%% their lines and the summary, and returns the phases' summaries.
-spec run(options()) -> [summary()].
run(Opts0) ->
    Opts = maps:merge(defaults(), Opts0),
    {ok, _} = application:ensure_all_started(sluice),
    #{seconds := Secs, producers := P, offered := Offered, service := Service} = Opts,
    io:format("sluice demo: ~b producers offer ~b msg/s to one consumer that handles ~b msg/s;~n"
              "~b s each: unprotected, through a valve regulated by the consumer's mailbox "
              "(low ~b, high ~b),~nand through a sluice_box (~s, max ~b) the consumer takes "
              "from.~nnode memory at start: ~.1f MB~n~n",
              [P, Offered, Service, Secs, maps:get(low, Opts), maps:get(high, Opts),
               maps:get(box_type, Opts), maps:get(box_max, Opts), memory_mb()]),
    io:format(?HEADER,
              [phase, "s", "mailbox", "memory_MB", "box", "kept/s", "dropped/s", "consumed/s",
               "keep%", "age_ms", "p99_ms"]),
    Summaries = [phase(Phase, Opts) || Phase <- [unprotected, protected, boxed]],
    summary(Summaries),
    Summaries.

-spec defaults() -> options().
defaults() ->
    #{seconds => 10, producers => 4, offered => 50000, service => 5000,
      low => 1000, high => 10000, min_rate => 0.0, interval => 50,
      box_type => queue, box_max => 1000,
      max_mailbox => 2000000, max_memory_mb => 600}.

%%% One phase

-spec phase(phase(), options()) -> summary().
phase(Phase, #{seconds := Secs, producers := P, offered := Offered} = Opts) ->
    Counters = counters:new(5, [write_concurrency]),
    T0 = erlang:monotonic_time(microsecond),
    {Consumer, Gate, Cleanup} = start_consumer(Phase, Counters, T0, Opts),
    PerProducer = Offered / P,
    Producers = [spawn_link(fun() -> producer(Gate, Counters, PerProducer, T0, 0) end)
                 || _ <- lists:seq(1, P)],
    State = #{phase => Phase, consumer => Consumer, counters => Counters, gate => Gate,
              t0 => T0, ticks => Secs * 1000 div ?TICK_MS, tick => 0,
              peak_mailbox => 0, peak_memory => 0, capped => false,
              last => {0, 0, 0}, opts => Opts},
    Final = monitor_loop(State),
    stop(Producers),
    Summary = summarise(Final),
    Done = Cleanup(),
    stop([Consumer]),
    io:format("~-11s cleaned up: processes stopped~s, node memory ~.1f MB~n~n",
              [Phase, Done, settled_memory_mb(erlang:memory(total), 30)]),
    Summary.

%% Starts the phase's consumer and its gate; the returned fun undoes the
%% gate at the end of the phase and says what it did.
-spec start_consumer(phase(), counters:counters_ref(), integer(), options()) ->
    {pid(), gate(), fun(() -> string())}.
start_consumer(boxed, C, T0, #{service := Service, box_type := Type, box_max := Max}) ->
    Self = self(),
    Consumer = spawn_link(fun() ->
                                  %% The consumer creates the box, so it is its owner.
                                  {ok, B} = sluice_box:new(#{type => Type, max => Max}),
                                  Self ! {self(), box, B},
                                  consumer({box, B}, C, Service, T0, 0)
                          end),
    receive {Consumer, box, Box} -> ok end,
    {Consumer, {box, Box}, fun() -> close_box(Consumer) end};
start_consumer(Phase, C, T0, #{service := Service} = Opts) ->
    Consumer = spawn_link(fun() -> consumer(mailbox, C, Service, T0, 0) end),
    case Phase of
        unprotected ->
            {Consumer, {send, Consumer}, fun() -> "" end};
        protected ->
            {Valve, Delete} = valve(Consumer, Opts),
            {Consumer, {valve, Valve, Consumer}, Delete}
    end.

%% A valve regulated by `Consumer''s mailbox length, and the fun deleting it.
-spec valve(pid(), options()) -> {sluice_drop:valve(), fun(() -> string())}.
valve(Consumer, #{low := Low, high := High, min_rate := Min, interval := Ms}) ->
    Name = {?MODULE, make_ref()},
    Signal = fun() -> mailbox(Consumer) end,
    {ok, Valve} = sluice_drop:new(Name, #{rate => 1.0,
                                          regulate => #{signal => Signal, low => Low,
                                                        high => High, min_rate => Min,
                                                        interval => Ms}}),
    {Valve, fun() -> ok = sluice_drop:delete(Name), ", valve deleted" end}.

%% Only the owner closes a box: asks the consumer to, and waits for it.
-spec close_box(pid()) -> string().
close_box(Consumer) ->
    Consumer ! {close_box, self()},
    receive
        {Consumer, box_closed, ok} -> ", box closed";
        {Consumer, box_closed, Error} ->
            lists:flatten(io_lib:format(", box not closed (~p)", [Error]))
    after 5000 ->
        ", box not closed (no answer; freed when its owner is stopped)"
    end.

%% Samples every ?TICK_MS, prints a line every ?TICKS_PER_LINE ticks, and
%% returns the final state when the phase's time is up or a cap is reached.
-spec monitor_loop(map()) -> map().
monitor_loop(#{tick := Tick, ticks := Ticks} = State) when Tick >= Ticks ->
    State;
monitor_loop(#{t0 := T0, tick := Tick, consumer := Consumer, opts := Opts} = State) ->
    Next = T0 + (Tick + 1) * ?TICK_MS * 1000,
    sleep_until(Next),
    Mailbox = mailbox(Consumer),
    Memory = erlang:memory(total),
    S1 = State#{tick := Tick + 1,
                peak_mailbox := max(Mailbox, maps:get(peak_mailbox, State)),
                peak_memory := max(Memory, maps:get(peak_memory, State))},
    S2 = case (Tick + 1) rem ?TICKS_PER_LINE of
             0 -> line(S1, Mailbox, Memory);
             _ -> S1
         end,
    #{max_mailbox := MaxBox, max_memory_mb := MaxMb} = Opts,
    case Mailbox > MaxBox orelse Memory > MaxMb * ?MB of
        true ->
            io:format("~-11s safety cap reached (mailbox ~b, memory ~.1f MB): "
                      "ending this phase early~n",
                      [maps:get(phase, S2), Mailbox, Memory / ?MB]),
            S2#{capped := true};
        false ->
            monitor_loop(S2)
    end.

-spec line(map(), non_neg_integer(), non_neg_integer()) -> map().
line(#{phase := Phase, counters := C, gate := Gate, tick := Tick, last := Last} = State,
     Mailbox, Memory) ->
    #{kept := Kept, dropped := Dropped, box := Box, keep := Keep, p99 := P99} =
        gate_stats(Gate, C),
    Consumed = counters:get(C, ?CONSUMED),
    {LastKept, LastDropped, LastConsumed} = Last,
    io:format(?ROW,
              [Phase, Tick * ?TICK_MS div 1000, Mailbox, Memory / ?MB, pad(Box, 6),
               Kept - LastKept, Dropped - LastDropped, Consumed - LastConsumed, pad(Keep, 5),
               counters:get(C, ?AGE) div 1000, pad(P99, 7)]),
    State#{last := {Kept, Dropped, Consumed}}.

%% Cumulative kept and dropped counts of a gate, and its own columns.
-spec gate_stats(gate(), counters:counters_ref()) ->
    #{kept := non_neg_integer(), dropped := non_neg_integer(),
      box := string(), keep := string(), p99 := string()}.
gate_stats({send, _}, C) ->
    #{kept => counters:get(C, ?SENT), dropped => 0, box => "-", keep => "100", p99 => "-"};
gate_stats({valve, Valve, _}, C) ->
    #{dropped := Dropped, priorities := #{default := #{effective_rate := R}}} =
        sluice_drop:info(Valve),
    #{kept => counters:get(C, ?SENT), dropped => Dropped, box => "-",
      keep => integer_to_list(round(R * 100)), p99 => "-"};
gate_stats({box, Box}, _C) ->
    #{posted := Posted, dropped := #{overflow := Over}, size := Size,
      sojourn := #{p99 := P99}} = sluice_box:info(Box),
    #{kept => Posted - Over, dropped => Over, box => integer_to_list(Size), keep => "-",
      p99 => float_to_list(P99 / 1000, [{decimals, 1}])}.

-spec summarise(map()) -> summary().
summarise(#{phase := Phase, counters := C, gate := Gate, t0 := T0,
            peak_mailbox := PeakBox, peak_memory := PeakMem, capped := Capped}) ->
    #{kept := Kept, dropped := Dropped} = gate_stats(Gate, C),
    Summary = #{phase => Phase,
                seconds => (erlang:monotonic_time(microsecond) - T0) / 1.0e6,
                peak_mailbox => PeakBox,
                peak_memory_mb => PeakMem / ?MB,
                offered => counters:get(C, ?OFFERED), kept => Kept, dropped => Dropped,
                consumed => counters:get(C, ?CONSUMED),
                last_age_ms => counters:get(C, ?AGE) div 1000,
                capped => Capped},
    case Gate of
        {box, Box} ->
            #{type := Type, max := Max, peak := Peak, sojourn := Sojourn} =
                sluice_box:info(Box),
            Summary#{box => #{type => Type, max => Max, peak => Peak,
                              full => counters:get(C, ?FULL),
                              sojourn_ms => maps:map(fun(_, Us) -> Us / 1000 end, Sojourn)}};
        _ ->
            Summary
    end.

-spec summary([summary()]) -> ok.
summary(Summaries) ->
    Cells = fun(Fun) -> [[$\s | pad(Fun(S), 15)] || S <- Summaries] end,
    Row = fun(Label, Fun) -> io:format("  ~-34s~s~n", [Label, Cells(Fun)]) end,
    Int = fun(Key) -> fun(S) -> integer_to_list(maps:get(Key, S)) end end,
    Boxed = fun(Fun) -> fun(#{box := B}) -> Fun(B); (_) -> "-" end end,
    io:format("~-36s~s~n", [summary, Cells(fun(S) -> atom_to_list(maps:get(phase, S)) end)]),
    Row("peak consumer mailbox (msgs)", Int(peak_mailbox)),
    Row("peak node memory (MB)",
        fun(S) -> float_to_list(maps:get(peak_memory_mb, S), [{decimals, 1}]) end),
    Row("consumed (msgs/s)", fun(S) -> integer_to_list(rate(consumed, S)) end),
    Row("kept / dropped (msgs)",
        fun(S) -> io_lib:format("~b/~b", [maps:get(kept, S), maps:get(dropped, S)]) end),
    Row("last consumed msg had waited (ms)", Int(last_age_ms)),
    Row("box sojourn p50/p99/max (ms)",
        Boxed(fun(#{sojourn_ms := #{p50 := P50, p99 := P99, max := Max}}) ->
                      io_lib:format("~.1f/~.1f/~.1f", [P50, P99, Max])
              end)),
    Row("box peak size / max", Boxed(fun(#{peak := Peak, max := Max}) ->
                                             io_lib:format("~b/~b", [Peak, Max])
                                     end)),
    Row("box 'full' answers to posts", Boxed(fun(#{full := F}) -> integer_to_list(F) end)),
    _ = [io:format("  (~s ended early at its safety cap)~n", [maps:get(phase, S)])
         || S <- Summaries, maps:get(capped, S)],
    [U, P, B] = Summaries,
    Pct = fun(#{offered := Offered, dropped := Dropped}) ->
                  round(100 * Dropped / max(1, Offered))
          end,
    Each = fun(Fmt, Fun) -> io_lib:format(Fmt, [Fun(U), Fun(P), Fun(B)]) end,
    io:format("At the producers, the valve dropped ~b % of what was offered and the box ~b %~n"
              "(~s). Unprotected, protected and boxed, the consumer handled~n"
              "~s msg/s; its peak mailbox was ~s messages and the peak node~n"
              "memory ~s MB; the last message it consumed had waited ~s ms.~n",
              [Pct(P), Pct(B), box_drops(maps:get(type, maps:get(box, B))),
               Each("~b, ~b and ~b", fun(S) -> rate(consumed, S) end),
               Each("~b, ~b and ~b", fun(S) -> maps:get(peak_mailbox, S) end),
               Each("~.1f, ~.1f and ~.1f", fun(S) -> maps:get(peak_memory_mb, S) end),
               Each("~b, ~b and ~b", fun(S) -> maps:get(last_age_ms, S) end)]).

-spec box_drops(sluice_box:type()) -> string().
box_drops(keep_old) -> "new messages, when full";
box_drops(_) -> "the oldest it held, when full".

-spec rate(consumed, summary()) -> non_neg_integer().
rate(Key, Summary) ->
    round(maps:get(Key, Summary) / maps:get(seconds, Summary)).

%%% Producers and consumer

%% Offers `Rate' messages per second from `T0' on, paced by the clock.
-spec producer(gate(), counters:counters_ref(), float(), integer(), non_neg_integer()) ->
    no_return().
producer(Gate, C, Rate, T0, Done) ->
    Due = trunc(Rate * (erlang:monotonic_time(microsecond) - T0) / 1.0e6),
    Batch = min(Due - Done, 1000),
    case Batch > 0 of
        true ->
            offer(Gate, C, Done, Batch),
            producer(Gate, C, Rate, T0, Done + Batch);
        false ->
            pause(),
            producer(Gate, C, Rate, T0, Done)
    end.

-spec offer(gate(), counters:counters_ref(), non_neg_integer(), non_neg_integer()) -> ok.
offer(_Gate, _C, _Seq, 0) ->
    ok;
offer(Gate, C, Seq, N) ->
    counters:add(C, ?OFFERED, 1),
    SentAt = erlang:monotonic_time(microsecond),
    pass(Gate, C, {event, Seq, <<SentAt:64/signed, Seq:64, 0:384>>}),
    offer(Gate, C, Seq + 1, N - 1).

-spec pass(gate(), counters:counters_ref(), tuple()) -> ok.
pass({send, Consumer}, C, Msg) ->
    Consumer ! Msg,
    counters:add(C, ?SENT, 1);
pass({valve, Valve, Consumer}, C, Msg) ->
    case sluice_drop:ask(Valve) of
        ok -> pass({send, Consumer}, C, Msg);
        _ -> ok
    end;
pass({box, Box}, C, Msg) ->
    case sluice_box:post(Box, Msg) of
        ok -> counters:add(C, ?SENT, 1);
        full -> counters:add(C, ?SENT, 1), counters:add(C, ?FULL, 1);
        {error, closed} -> ok
    end.

%% Handles at most `Rate' messages per second: when it is ahead of that pace
%% it sleeps; when it has nothing to do it does not bank the unused capacity.
%% A box consumer ends when asked to close its box.
-spec consumer(source(), counters:counters_ref(), pos_integer(), integer(),
               non_neg_integer()) -> ok.
consumer(Source, C, Rate, T0, Done) ->
    case closing(Source) of
        true ->
            ok;
        false ->
            Due = Rate * (erlang:monotonic_time(microsecond) - T0) div 1000000,
            case Done < Due andalso consume(Source, C, min(Due - Done, ?BATCH)) of
                false ->
                    pause(),
                    consumer(Source, C, Rate, T0, Done);
                0 ->
                    pause(),
                    consumer(Source, C, Rate, T0, Due);
                N ->
                    consumer(Source, C, Rate, T0, Done + N)
            end
    end.

%% A mailbox consumer is never asked (a selective receive would scan its
%% flooded mailbox); a box consumer's mailbox is empty.
-spec closing(source()) -> boolean().
closing(mailbox) ->
    false;
closing({box, Box}) ->
    receive
        {close_box, From} ->
            From ! {self(), box_closed, sluice_box:close(Box)},
            true
    after 0 ->
        false
    end.

%% Consumes up to `Max' messages, counts them and records how long the last
%% one had waited; returns how many it consumed.
-spec consume(source(), counters:counters_ref(), pos_integer()) -> non_neg_integer().
consume(Source, C, Max) ->
    {N, Last} = case Source of
                    mailbox ->
                        receive_events(Max, 0, none);
                    {box, Box} ->
                        {Msgs, Count, _Dropped} = sluice_box:take(Box, Max),
                        {Count, lists:foldl(fun sent_at/2, none, Msgs)}
                end,
    case Last of
        none ->
            ok;
        _ ->
            counters:add(C, ?CONSUMED, N),
            counters:put(C, ?AGE, erlang:monotonic_time(microsecond) - Last)
    end,
    N.

-spec receive_events(pos_integer(), non_neg_integer(), integer() | none) ->
    {non_neg_integer(), integer() | none}.
receive_events(Max, N, Last) when N >= Max ->
    {N, Last};
receive_events(Max, N, Last) ->
    receive
        {event, _, _} = Event -> receive_events(Max, N + 1, sent_at(Event, Last))
    after 0 ->
        {N, Last}
    end.

%% The work done on each message: read its send time.
-spec sent_at(tuple(), integer() | none) -> integer().
sent_at({event, _Seq, <<SentAt:64/signed, _/binary>>}, _Previous) ->
    SentAt.

%%% Helpers

%% `Chars' right-aligned in `Width' columns, never cut (unlike `~Ns').
-spec pad(io_lib:chars(), non_neg_integer()) -> unicode:chardata().
pad(Chars, Width) ->
    string:pad(lists:flatten(Chars), Width, leading).

-spec pause() -> ok.
pause() ->
    receive after 1 -> ok end.

-spec mailbox(pid()) -> non_neg_integer().
mailbox(Pid) ->
    case process_info(Pid, message_queue_len) of
        {message_queue_len, N} -> N;
        undefined -> 0
    end.

-spec stop([pid()]) -> ok.
stop(Pids) ->
    _ = [begin unlink(P), exit(P, kill) end || P <- Pids],
    _ = [begin
             MRef = monitor(process, P),
             receive {'DOWN', MRef, process, P, _} -> ok end
         end || P <- Pids],
    ok.

-spec sleep_until(integer()) -> ok.
sleep_until(Deadline) ->
    case (Deadline - erlang:monotonic_time(microsecond)) div 1000 of
        Ms when Ms > 0 -> receive after Ms -> ok end;
        _ -> ok
    end.

%% Node memory once it stops shrinking (a killed process with a long
%% mailbox is freed in the background), polling up to `Tries' times.
-spec settled_memory_mb(non_neg_integer(), non_neg_integer()) -> float().
settled_memory_mb(Last, 0) ->
    Last / ?MB;
settled_memory_mb(Last, Tries) ->
    garbage_collect(),
    receive after ?TICK_MS -> ok end,
    case erlang:memory(total) of
        Now when Last - Now > ?MB -> settled_memory_mb(Now, Tries - 1);
        Now -> Now / ?MB
    end.

-spec memory_mb() -> float().
memory_mb() ->
    erlang:memory(total) / ?MB.
