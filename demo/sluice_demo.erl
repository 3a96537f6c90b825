%% @doc `make demo': a flood of producers against a deliberately slow
%% consumer, first unprotected, then through a random-drop valve regulated by
%% the consumer's mailbox length.
%%
%% == The set-up ==
%% `producers' processes offer `offered' messages per second in all, paced by
%% the clock, each message a small tuple carrying a 64-byte binary. One
%% consumer handles at most `service' messages per second (it sleeps once it
%% is ahead of that rate). The offered load is ten times what the consumer can
%% take, the situation of Erlang in Anger's chapter 3.
%%
%% == The two phases ==
%% <ol>
%% <li>`unprotected': producers send straight to the consumer. Its mailbox
%%     and the node's memory grow without bound; every message that arrives
%%     waits behind all the others.</li>
%% <li>`protected': producers ask a `sluice_drop' valve first and send only on
%%     `ok'. A regulator samples the consumer's `message_queue_len' every
%%     `interval' ms and lowers the keep rate from 100 % at `low' messages to
%%     `min_rate' at `high', so the mailbox stays near that band and the
%%     consumer works as fast as before on fresh messages.</li>
%% </ol>
%% Each phase lasts `seconds' seconds, prints one line per second (mailbox
%% length, node memory, messages kept, dropped and consumed in that second,
%% current keep rate) and then stops every process it started and deletes its
%% valve. A safety cap ends a phase early if the mailbox passes
%% `max_mailbox' messages or the node `max_memory_mb' megabytes. A summary
%% compares the phases.
%%
%% This module prints to the terminal on purpose: it is a shell-facing demo,
%% not library code.
-module(sluice_demo).

-export([main/0, run/1]).
-export_type([options/0, summary/0]).

%% Defaults: `seconds' 15, `producers' 4, `offered' 50 000 msg/s,
%% `service' 5 000 msg/s, `low' 1 000, `high' 10 000 messages, `min_rate' 0.0,
%% `interval' 50 ms, `max_mailbox' 2 000 000, `max_memory_mb' 600.
-type options() :: #{seconds => pos_integer(),
                     producers => pos_integer(),
                     offered => pos_integer(),
                     service => pos_integer(),
                     low => non_neg_integer(),
                     high => pos_integer(),
                     min_rate => float(),
                     interval => pos_integer(),
                     max_mailbox => pos_integer(),
                     max_memory_mb => pos_integer()}.
%% What one phase did.
-type summary() :: #{phase := phase(),
                     seconds := float(),
                     peak_mailbox := non_neg_integer(),
                     peak_memory_mb := float(),
                     end_mailbox := non_neg_integer(),
                     offered := non_neg_integer(),
                     kept := non_neg_integer(),
                     dropped := non_neg_integer(),
                     consumed := non_neg_integer(),
                     capped := boolean()}.
-type phase() :: unprotected | protected.
%% Counter indexes of a phase's `counters' array.
-define(OFFERED, 1).
-define(SENT, 2).
-define(CONSUMED, 3).
-define(TICK_MS, 100).
-define(TICKS_PER_LINE, 10).
-define(MB, 1048576).

%%% Entry points

%% @doc Runs the demo with its defaults (`DEMO_SECONDS' in the environment
%% overrides the length of each phase) and halts the node: status 0 when
%% both phases ran, 1 when the demo crashed.
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

%% @doc Runs both phases with `Opts' (see {@link options()}), prints their
%% lines and the summary, and returns the phases' summaries.
-spec run(options()) -> [summary()].
run(Opts0) ->
    Opts = maps:merge(defaults(), Opts0),
    {ok, _} = application:ensure_all_started(sluice),
    #{seconds := Secs, producers := P, offered := Offered, service := Service} = Opts,
    io:format("sluice demo: ~b producers offer ~b msg/s to one consumer that handles ~b msg/s;~n"
              "~b s unprotected, then ~b s through a valve regulated by the consumer's "
              "mailbox (low ~b, high ~b).~n"
              "node memory at start: ~.1f MB~n~n",
              [P, Offered, Service, Secs, Secs, maps:get(low, Opts), maps:get(high, Opts),
               memory_mb()]),
    header(),
    Unprotected = phase(unprotected, Opts),
    Protected = phase(protected, Opts),
    summary(Unprotected, Protected, Service),
    [Unprotected, Protected].

-spec defaults() -> #{atom() => number()}.
defaults() ->
    #{seconds => 15, producers => 4, offered => 50000, service => 5000,
      low => 1000, high => 10000, min_rate => 0.0, interval => 50,
      max_mailbox => 2000000, max_memory_mb => 600}.

%%% One phase

-spec phase(phase(), #{atom() => number()}) -> summary().
phase(Phase, #{seconds := Secs, producers := P, offered := Offered,
               service := Service} = Opts) ->
    Counters = counters:new(3, [write_concurrency]),
    T0 = erlang:monotonic_time(microsecond),
    Consumer = spawn_link(fun() -> consumer(Counters, Service, T0, 0) end),
    {Gate, Cleanup} = gate(Phase, Consumer, Opts),
    PerProducer = Offered / P,
    Producers = [spawn_link(fun() -> producer(Consumer, Gate, Counters, PerProducer, T0, 0) end)
                 || _ <- lists:seq(1, P)],
    State = #{phase => Phase, consumer => Consumer, counters => Counters, gate => Gate,
              t0 => T0, ticks => Secs * 1000 div ?TICK_MS, tick => 0,
              peak_mailbox => 0, peak_memory => 0, capped => false,
              last => {0, 0}, opts => Opts},
    Final = monitor_loop(State),
    stop(Producers),
    Summary = summarise(Final),
    Cleanup(),
    stop([Consumer]),
    io:format("~-12s cleaned up: processes stopped, node memory ~.1f MB~n~n",
              [Phase, settled_memory_mb(erlang:memory(total), 30)]),
    Summary.

%% How producers get past the gate: `none' (send always) or a regulated valve,
%% and what to do at the end of the phase.
-spec gate(phase(), pid(), #{atom() => number()}) ->
    {none | sluice_drop:valve(), fun(() -> ok | {error, not_found})}.
gate(unprotected, _Consumer, _Opts) ->
    {none, fun() -> ok end};
gate(protected, Consumer, #{low := Low, high := High, min_rate := Min, interval := Ms}) ->
    Name = {?MODULE, make_ref()},
    Signal = fun() ->
                     {message_queue_len, N} = process_info(Consumer, message_queue_len),
                     N
             end,
    {ok, Valve} = sluice_drop:new(Name, #{rate => 1.0,
                                          regulate => #{signal => Signal, low => Low,
                                                        high => High, min_rate => Min,
                                                        interval => Ms}}),
    {Valve, fun() -> sluice_drop:delete(Name) end}.

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
            io:format("~-12s safety cap reached (mailbox ~b, memory ~.1f MB): "
                      "ending this phase early~n",
                      [maps:get(phase, S2), Mailbox, Memory / ?MB]),
            S2#{capped := true};
        false ->
            monitor_loop(S2)
    end.

-spec line(map(), non_neg_integer(), non_neg_integer()) -> map().
line(#{phase := Phase, counters := C, gate := Gate, tick := Tick, last := Last} = State,
     Mailbox, Memory) ->
    Sent = counters:get(C, ?SENT),
    Consumed = counters:get(C, ?CONSUMED),
    {LastSent, LastConsumed} = Last,
    Dropped = case Gate of
                  none -> 0;
                  Valve -> sluice_drop:take_dropped(Valve)
              end,
    io:format("~-12s ~3b ~10b ~9.1f ~9b ~10b ~11b ~6s~n",
              [Phase, Tick * ?TICK_MS div 1000, Mailbox, Memory / ?MB,
               Sent - LastSent, Dropped, Consumed - LastConsumed, keep_rate(Gate)]),
    State#{last := {Sent, Consumed}}.

-spec header() -> ok.
header() ->
    io:format("~-12s ~3s ~10s ~9s ~9s ~10s ~11s ~6s~n",
              [phase, "s", "mailbox", "memory_MB", "kept/s", "dropped/s", "consumed/s",
               "keep%"]).

-spec keep_rate(none | sluice_drop:valve()) -> string().
keep_rate(none) ->
    "100";
keep_rate(Valve) ->
    #{priorities := #{default := #{effective_rate := R}}} = sluice_drop:info(Valve),
    integer_to_list(round(R * 100)).

-spec summarise(map()) -> summary().
summarise(#{phase := Phase, counters := C, gate := Gate, t0 := T0, consumer := Consumer,
            peak_mailbox := PeakBox, peak_memory := PeakMem, capped := Capped}) ->
    Offered = counters:get(C, ?OFFERED),
    Kept = counters:get(C, ?SENT),
    Dropped = case Gate of
                  none -> 0;
                  Valve -> maps:get(dropped, sluice_drop:info(Valve))
              end,
    #{phase => Phase,
      seconds => (erlang:monotonic_time(microsecond) - T0) / 1.0e6,
      peak_mailbox => PeakBox,
      peak_memory_mb => PeakMem / ?MB,
      end_mailbox => mailbox(Consumer),
      offered => Offered, kept => Kept, dropped => Dropped,
      consumed => counters:get(C, ?CONSUMED),
      capped => Capped}.

-spec summary(summary(), summary(), pos_integer()) -> ok.
summary(U, P, Service) ->
    Row = fun(Label, Fun) ->
                  io:format("  ~-34s ~14s ~14s~n", [Label, Fun(U), Fun(P)])
          end,
    Int = fun(Key) -> fun(S) -> integer_to_list(maps:get(Key, S)) end end,
    io:format("summary                              ~14s ~14s~n", [unprotected, protected]),
    Row("peak consumer mailbox (msgs)", Int(peak_mailbox)),
    Row("peak node memory (MB)",
        fun(S) -> float_to_list(maps:get(peak_memory_mb, S), [{decimals, 1}]) end),
    Row("consumed (msgs/s)", fun(S) -> integer_to_list(rate(consumed, S)) end),
    Row("kept / dropped (msgs)",
        fun(S) -> io_lib:format("~b/~b", [maps:get(kept, S), maps:get(dropped, S)]) end),
    Row("wait of a new message at end (s)",
        fun(S) -> float_to_list(maps:get(end_mailbox, S) / Service, [{decimals, 1}]) end),
    _ = [io:format("  (~s ended early at its safety cap)~n", [maps:get(phase, S)])
         || S <- [U, P], maps:get(capped, S)],
    #{offered := Offered, dropped := Dropped} = P,
    io:format("The valve dropped ~b % of what was offered, at the producers; the consumer "
              "handled~n~b msg/s unprotected and ~b msg/s protected, while its peak mailbox "
              "went from~n~b to ~b messages and the peak node memory from ~.1f to ~.1f MB.~n",
              [round(100 * Dropped / max(1, Offered)), rate(consumed, U), rate(consumed, P),
               maps:get(peak_mailbox, U), maps:get(peak_mailbox, P),
               maps:get(peak_memory_mb, U), maps:get(peak_memory_mb, P)]).

-spec rate(consumed, summary()) -> non_neg_integer().
rate(Key, Summary) ->
    round(maps:get(Key, Summary) / maps:get(seconds, Summary)).

%%% Producers and consumer

%% Offers `Rate' messages per second from `T0' on, paced by the clock.
-spec producer(pid(), none | sluice_drop:valve(), counters:counters_ref(), float(),
               integer(), non_neg_integer()) -> no_return().
producer(Consumer, Gate, C, Rate, T0, Done) ->
    Due = trunc(Rate * (erlang:monotonic_time(microsecond) - T0) / 1.0e6),
    Batch = min(Due - Done, 1000),
    case Batch > 0 of
        true ->
            offer(Consumer, Gate, C, Done, Batch),
            producer(Consumer, Gate, C, Rate, T0, Done + Batch);
        false ->
            receive after 1 -> ok end,
            producer(Consumer, Gate, C, Rate, T0, Done)
    end.

-spec offer(pid(), none | sluice_drop:valve(), counters:counters_ref(),
            non_neg_integer(), non_neg_integer()) -> ok.
offer(_Consumer, _Gate, _C, _Seq, 0) ->
    ok;
offer(Consumer, Gate, C, Seq, N) ->
    counters:add(C, ?OFFERED, 1),
    case Gate =:= none orelse sluice_drop:ask(Gate) =:= ok of
        true ->
            Consumer ! {event, Seq, <<Seq:64, 0:448>>},
            counters:add(C, ?SENT, 1);
        false ->
            ok
    end,
    offer(Consumer, Gate, C, Seq + 1, N - 1).

%% Handles at most `Rate' messages per second: when it is ahead of that pace
%% it sleeps; when it has nothing to do it does not bank the unused capacity.
-spec consumer(counters:counters_ref(), pos_integer(), integer(), non_neg_integer()) ->
    no_return().
consumer(C, Rate, T0, Done) ->
    Due = Rate * (erlang:monotonic_time(microsecond) - T0) div 1000000,
    case Done < Due of
        true ->
            receive
                {event, _Seq, Payload} when is_binary(Payload) ->
                    counters:add(C, ?CONSUMED, 1),
                    consumer(C, Rate, T0, Done + 1)
            after 0 ->
                receive after 1 -> ok end,
                consumer(C, Rate, T0, Due)
            end;
        false ->
            receive after 1 -> ok end,
            consumer(C, Rate, T0, Done)
    end.

%%% Helpers

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
