%% Common Test suite of reckon_node: node_stats/4, node_stats_list/2,
%% node_stats_print/2 and scheduler_usage/1, called through the reckon
%% facade. Every assertion is on values; the work a case measures is done
%% inside the fold, between the counters of two samples, so it always falls
%% in the second sample's interval whatever the machine's timing.
-module(reckon_node_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_testcase/2, end_per_testcase/2]).
-export([shapes/1, fold_gets_n_samples_in_order/1, zero_samples/1,
         process_count_grows/1, tcp_bytes_counted/1, gc_and_reductions_counted/1,
         refc_binary_counted/1, no_error_logger_queue_len/1, print_names_every_stat/1,
         bad_arguments/1, usage_per_scheduler/1, usage_restores_flag_off/1,
         usage_restores_flag_on/1, flag_restored_after_crash_and_kill/1,
         busy_loops_show/1]).

%% These cases pass wrong arguments and failing funs on purpose.
-dialyzer({nowarn_function, [zero_samples/1, bad_arguments/1,
                             flag_restored_after_crash_and_kill/1]}).

-define(ABSOLUTES, [process_count, run_queue, memory_total,
                    memory_procs, memory_atoms, memory_bin, memory_ets]).
-define(INCREMENTS, [bytes_in, bytes_out, gc_count, gc_words_reclaimed, reductions,
                     scheduler_usage]).
-define(MB, (1024 * 1024)).

all() ->
    [shapes, fold_gets_n_samples_in_order, zero_samples, process_count_grows,
     tcp_bytes_counted, gc_and_reductions_counted, refc_binary_counted, no_error_logger_queue_len,
     print_names_every_stat, bad_arguments, usage_per_scheduler, usage_restores_flag_off,
     usage_restores_flag_on, flag_restored_after_crash_and_kill, busy_loops_show].

%% Every case starts and ends with the flag off (nothing else in a CT node
%% sets it), so that a leak is seen by the case that caused it.
init_per_testcase(_Case, Config) ->
    ?assertEqual(undefined, erlang:statistics(scheduler_wall_time)),
    Config.

end_per_testcase(_Case, _Config) ->
    ?assertEqual(undefined, erlang:statistics(scheduler_wall_time)),
    ok.

%%% Samples

%% The keys in recon's order, non-negative integers, and a usage per scheduler.
shapes(_Config) ->
    [{Abs, Inc}] = reckon:node_stats_list(1, 20),
    ?assertEqual(?ABSOLUTES, [K || {K, _} <- Abs]),
    ?assertEqual(?INCREMENTS, [K || {K, _} <- Inc]),
    [?assert(is_integer(V) andalso V >= 0) || {_, V} <- Abs],
    [?assert(is_integer(V) andalso V >= 0) || {K, V} <- Inc, K =/= scheduler_usage],
    {scheduler_usage, Usage} = lists:keyfind(scheduler_usage, 1, Inc),
    check_usage(Usage).

%% The fold sees exactly N samples, each with the accumulator of the one
%% before; 100 processes started in each call show in the next sample.
fold_gets_n_samples_in_order(_Config) ->
    Fold = fun({Abs, _Inc} = Sample, Acc) ->
                   _ = spawn_waiters(100),
                   [{value(process_count, Abs), Sample} | Acc]
           end,
    Seen = lists:reverse(reckon:node_stats(4, 10, Fold, [])),
    ?assertEqual(4, length(Seen)),
    Counts = [C || {C, _} <- Seen],
    [?assert(Next >= Prev + 100) || {Prev, Next} <- pairs(Counts)],
    ?assertEqual(3, length(reckon:node_stats_list(3, 5))),
    stop_waiters().

zero_samples(_Config) ->
    ?assertEqual(acc, reckon:node_stats(0, 10, fun(_, _) -> error(called) end, acc)),
    ?assertEqual([], reckon:node_stats_list(0, 10)),
    %% The largest interval is accepted (no sample is waited for).
    ?assertEqual([], reckon:node_stats_list(0, 3600000)).

process_count_grows(_Config) ->
    [{Before, _}, {After, _}] = two_samples(fun() -> spawn_waiters(5000) end),
    ?assert(value(process_count, After) >= value(process_count, Before) + 5000),
    stop_waiters().

%% 1 MB through a loopback TCP connection (the inet driver's ports).
tcp_bytes_counted(_Config) ->
    {ok, Listen} = gen_tcp:listen(0, [binary, {active, false}, {ip, loopback}]),
    {ok, Port} = inet:port(Listen),
    {ok, Client} = gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}]),
    {ok, Server} = gen_tcp:accept(Listen),
    Move = fun() -> move_bytes(Client, Server, ?MB) end,
    [_, {_, Inc}] = two_samples(Move),
    ?assert(value(bytes_out, Inc) >= ?MB),
    ?assert(value(bytes_in, Inc) >= ?MB),
    [_ = gen_tcp:close(S) || S <- [Client, Server, Listen]],
    ok.

gc_and_reductions_counted(_Config) ->
    Collect = fun() -> [true = erlang:garbage_collect() || _ <- lists:seq(1, 50)] end,
    [_, {_, Inc}] = two_samples(Collect),
    ?assert(value(gc_count, Inc) >= 50),
    ?assert(value(reductions, Inc) > 0).

%% A process holding a 16 MB refc binary: memory_bin grows by at least half
%% of it whatever else is freed meanwhile.
refc_binary_counted(_Config) ->
    Self = self(),
    Hold = fun() ->
                   Holder = spawn(fun() ->
                                          Bin = binary:copy(<<7>>, 16 * ?MB),
                                          Self ! {held, byte_size(Bin)},
                                          receive stop -> byte_size(Bin) end
                                  end),
                   receive {held, _} -> Holder end
           end,
    Fold = fun(Sample, Acc) -> [{Sample, Hold()} | Acc] end,
    [{{Abs1, _}, Holder1}, {{Abs2, _}, Holder2}] =
        lists:reverse(reckon:node_stats(2, 10, Fold, [])),
    ?assert(value(memory_bin, Abs2) >= value(memory_bin, Abs1) + 8 * ?MB),
    [Pid ! stop || Pid <- [Holder1, Holder2]],
    ok.

%% As recon on OTP >= 21: no error_logger_queue_len among the absolutes.
no_error_logger_queue_len(_Config) ->
    [{Abs, _}] = reckon:node_stats_list(1, 5),
    ?assertEqual(false, lists:keymember(error_logger_queue_len, 1, Abs)),
    ?assertEqual(?ABSOLUTES, [K || {K, _} <- Abs]).

print_names_every_stat(_Config) ->
    {Result, Output} = capture(fun() -> reckon:node_stats_print(2, 10) end),
    ?assertEqual(ok, Result),
    [?assertMatch({_, _}, binary:match(Output, atom_to_binary(K)), K)
     || K <- ?ABSOLUTES ++ ?INCREMENTS],
    ?assertEqual(2, length(binary:matches(Output, <<"process_count">>))).

bad_arguments(_Config) ->
    Fun = fun(_, A) -> A end,
    [?assertError(badarg, reckon:node_stats(N, 10, Fun, acc)) || N <- [-1, 1.0, two]],
    [?assertError(badarg, reckon:node_stats(1, I, Fun, acc))
     || I <- [0, -5, 3600001, 1.5, infinity]],
    [?assertError(badarg, reckon:node_stats(1, 10, F, acc))
     || F <- [fun(_) -> ok end, fun() -> ok end, {m, f}]],
    [?assertError(badarg, reckon:node_stats_list(N, I)) || {N, I} <- [{-1, 10}, {1, 0}]],
    [?assertError(badarg, reckon:node_stats_print(N, I)) || {N, I} <- [{x, 10}, {1, 3600001}]],
    [?assertError(badarg, reckon:scheduler_usage(I)) || I <- [0, -1, 3600001, 0.5, x]],
    %% The shell is told which argument is wrong.
    try reckon:node_stats(1, 0, Fun, acc) of
        _ -> ct:fail(no_error)
    catch
        error:badarg:Stack ->
            ?assertMatch(#{2 := _}, reckon_lib:format_error(badarg, Stack))
    end.

%%% Scheduler usage

usage_per_scheduler(_Config) ->
    check_usage(reckon:scheduler_usage(50)).

usage_restores_flag_off(_Config) ->
    _ = reckon:scheduler_usage(20),
    ?assertEqual(undefined, erlang:statistics(scheduler_wall_time)),
    _ = reckon:node_stats_list(2, 10),
    ?assertEqual(undefined, erlang:statistics(scheduler_wall_time)).

usage_restores_flag_on(_Config) ->
    false = erlang:system_flag(scheduler_wall_time, true),
    try
        _ = reckon:scheduler_usage(20),
        ?assertNotEqual(undefined, erlang:statistics(scheduler_wall_time)),
        _ = reckon:node_stats_list(1, 10),
        ?assertNotEqual(undefined, erlang:statistics(scheduler_wall_time))
    after
        true = erlang:system_flag(scheduler_wall_time, false)
    end,
    ?assertEqual(undefined, erlang:statistics(scheduler_wall_time)).

%% A fold that crashes leaves the flag off as the error comes out; a caller
%% killed mid-interval leaves it off once the holder has seen it die.
flag_restored_after_crash_and_kill(_Config) ->
    ?assertError(boom, reckon:node_stats(3, 10, fun(_, _) -> error(boom) end, acc)),
    ?assertEqual(undefined, erlang:statistics(scheduler_wall_time)),
    {Pid, Ref} = spawn_monitor(fun() -> reckon:scheduler_usage(600000) end),
    ok = wait_for(fun() -> erlang:statistics(scheduler_wall_time) =/= undefined end),
    exit(Pid, kill),
    receive {'DOWN', Ref, process, Pid, killed} -> ok end,
    ok = wait_for(fun() -> erlang:statistics(scheduler_wall_time) =:= undefined end).

%% Two busy loops keep at least one normal scheduler mostly active.
busy_loops_show(_Config) ->
    Loops = [spawn(fun spin/0) || _ <- [1, 2]],
    Usage = try reckon:scheduler_usage(300) after [exit(L, kill) || L <- Loops] end,
    Normal = [U || {Id, U} <- Usage, Id =< erlang:system_info(schedulers)],
    ?assert(lists:max(Normal) > 0.3).

%%% Helpers

check_usage(Usage) ->
    Count = erlang:system_info(schedulers) + erlang:system_info(dirty_cpu_schedulers),
    ?assertEqual(lists:seq(1, Count), [Id || {Id, _} <- Usage]),
    [?assert(is_float(U) andalso U >= 0.0 andalso U =< 1.0) || {_, U} <- Usage],
    ok.

%% Two samples; `Work' runs in the fold of the first, so inside the
%% second's interval.
two_samples(Work) ->
    Fold = fun(Sample, []) -> _ = Work(), [Sample];
              (Sample, Acc) -> [Sample | Acc]
           end,
    lists:reverse(reckon:node_stats(2, 10, Fold, [])).

value(Key, List) ->
    {Key, Value} = lists:keyfind(Key, 1, List),
    Value.

pairs([A, B | Rest]) -> [{A, B} | pairs([B | Rest])];
pairs(_) -> [].

spawn_waiters(N) ->
    Pids = [spawn(fun() -> receive stop -> ok end end) || _ <- lists:seq(1, N)],
    put(waiters, Pids ++ get_waiters()),
    Pids.

get_waiters() ->
    case get(waiters) of
        undefined -> [];
        Pids -> Pids
    end.

stop_waiters() ->
    [Pid ! stop || Pid <- get_waiters()],
    erase(waiters),
    ok.

move_bytes(Client, Server, Size) ->
    Self = self(),
    Receiver = spawn(fun() -> receive go -> Self ! {moved, recv_all(Server, Size)} end end),
    ok = gen_tcp:controlling_process(Server, Receiver),
    Receiver ! go,
    ok = gen_tcp:send(Client, binary:copy(<<1>>, Size)),
    receive {moved, Got} -> ?assertEqual(Size, Got) end.

recv_all(_Socket, 0) ->
    0;
recv_all(Socket, Left) ->
    {ok, Data} = gen_tcp:recv(Socket, 0),
    byte_size(Data) + recv_all(Socket, Left - byte_size(Data)).

spin() -> spin().

wait_for(Pred) -> wait_for(Pred, 500).

wait_for(_Pred, 0) ->
    timeout;
wait_for(Pred, Tries) ->
    case Pred() of
        true -> ok;
        false -> timer:sleep(10), wait_for(Pred, Tries - 1)
    end.

%% Runs `Fun' in a process whose group leader keeps what is written.
capture(Fun) ->
    Self = self(),
    Leader = spawn_link(fun() -> io_capture([]) end),
    {Pid, Ref} = spawn_monitor(fun() ->
                                       group_leader(Leader, self()),
                                       Self ! {result, self(), Fun()}
                               end),
    Result = receive {result, Pid, R} -> R end,
    receive {'DOWN', Ref, process, Pid, _} -> ok end,
    Leader ! {get, self()},
    receive {output, Leader, Output} -> {Result, Output} end.

io_capture(Acc) ->
    receive
        {io_request, From, ReplyAs, Request} ->
            From ! {io_reply, ReplyAs, ok},
            io_capture([chars(Request) | Acc]);
        {get, From} ->
            From ! {output, self(), unicode:characters_to_binary(lists:reverse(Acc))}
    end.

chars({put_chars, _Enc, Chars}) -> Chars;
chars({put_chars, _Enc, M, F, A}) -> apply(M, F, A);
chars(_) -> [].
