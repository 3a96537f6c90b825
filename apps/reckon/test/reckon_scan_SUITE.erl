%% Values of reckon's top-N and windows: processes with known memory,
%% mailboxes, refc binaries and growth; sockets moving known byte counts;
%% processes born and dying during a window.
-module(reckon_scan_SUITE).
-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_testcase/2, end_per_testcase/2]).
-export([window_shapes_are_maps/1]).
-export([memory_top_is_exact/1, mailbox_top_is_exact/1, binary_memory_is_summed/1,
         caller_is_skipped/1, window_ranks_growth/1, died_never_ranked/1,
         born_and_died_listed/1, bin_leak_finds_garbage/1, inet_count_values/1,
         inet_window_growth/1, bad_arguments/1]).

%% A window long enough that the chunks sent mid-window land between its samples.
-define(WINDOW, 1000).
-define(MID, 300).

all() ->
    [memory_top_is_exact, mailbox_top_is_exact, binary_memory_is_summed, caller_is_skipped,
     window_ranks_growth, died_never_ranked, born_and_died_listed, bin_leak_finds_garbage,
     inet_count_values, inet_window_growth, bad_arguments,
     window_shapes_are_maps].

suite() ->
    [{timetrap, {seconds, 60}}].

init_per_testcase(_Case, Config) ->
    {ok, _} = application:ensure_all_started(reckon),
    Config.

end_per_testcase(_Case, _Config) ->
    ok.

%%% Helpers

%% A process that runs `Setup' then waits; returns once `Setup' is done.
holder(Setup) ->
    Parent = self(),
    Pid = spawn(fun() ->
                        Kept = Setup(),
                        Parent ! {ready, self()},
                        receive {stop, never} -> Kept end
                end),
    receive {ready, Pid} -> Pid end.

sink() ->
    holder(fun() -> ok end).

fill(Pid, N) ->
    [Pid ! {msg, I} || I <- lists:seq(1, N)],
    ok.

queue_len(Pid) ->
    {message_queue_len, N} = erlang:process_info(Pid, message_queue_len),
    N.

kill_all(Pids) ->
    [exit(P, kill) || P <- Pids],
    ok.

%% The entries of `Pids' in a top list, in its order.
mine(Top, Pids) ->
    [E || E <- Top, lists:member(element(1, E), Pids)].

%% Runs `Fun' after ?MID ms, in another process.
later(Fun) ->
    spawn_link(fun() -> timer:sleep(?MID), Fun() end).

%%% Top-N

memory_top_is_exact(_Config) ->
    Sizes = [300000, 200000, 100000],
    Pids = [holder(fun() -> lists:seq(1, N) end) || N <- Sizes],
    %% the runner's own processes may be larger: rank among ours
    Top = mine(reckon:proc_count(memory, 20), Pids),
    ?assertEqual(Pids, [P || {P, _, _} <- Top]),
    [?assertEqual(element(2, erlang:process_info(P, memory)), V) || {P, V, _} <- Top],
    [{_, _, Details} | _] = Top,
    ?assertMatch({current_function, {_, _, _}}, lists:keyfind(current_function, 1, Details)),
    ?assertMatch({initial_call, {erlang, apply, 2}}, lists:keyfind(initial_call, 1, Details)),
    kill_all(Pids).

mailbox_top_is_exact(_Config) ->
    [A, B, C] = Pids = [sink(), sink(), sink()],
    fill(A, 300),
    fill(B, 700),
    fill(C, 500),
    register(reckon_scan_suite_b, B),
    ?assertEqual([{B, 700}, {C, 500}, {A, 300}],
                 [{P, V} || {P, V, _} <- reckon:proc_count(message_queue_len, 3)]),
    [{B, 700, [Name | _]}] = reckon:proc_count(message_queue_len, 1),
    ?assertEqual(reckon_scan_suite_b, Name),
    ?assertEqual([], reckon:proc_count(message_queue_len, 0)),
    kill_all(Pids).

binary_memory_is_summed(_Config) ->
    Sizes = [4000000, 3000000, 1000000],
    P = holder(fun() -> [binary:copy(<<7>>, S) || S <- Sizes] end),
    ?assertMatch([{P, 8000000, _}], reckon:proc_count(binary_memory, 1)),
    kill_all([P]).

caller_is_skipped(_Config) ->
    Big = lists:seq(1, 2000000),
    Top = reckon:proc_count(memory, 100),
    ?assertNot(lists:keymember(self(), 1, Top)),
    ?assertEqual(2000000, length(Big)).

%%% Windows

window_ranks_growth(_Config) ->
    [A, B, Idle] = Pids = [sink(), sink(), sink()],
    fill(Idle, 5000),
    later(fun() -> fill(A, 500), fill(B, 200) end),
    Top = reckon:proc_window(message_queue_len, 3, ?WINDOW),
    ?assertMatch([{A, 500, _}, {B, 200, _}, {_, 0, _}], Top),
    ?assertEqual(5000, queue_len(Idle)),
    kill_all(Pids).

%% A process that dies during the window is never ranked, however large its
%% value was; nor is one born during it, however large its value is.
died_never_ranked(_Config) ->
    Dying = [sink() || _ <- lists:seq(1, 50)],
    [fill(P, 2000) || P <- Dying],
    Grower = sink(),
    Self = self(),
    later(fun() ->
                  kill_all(Dying),
                  Born = [sink() || _ <- lists:seq(1, 50)],
                  [fill(P, 3000) || P <- Born],
                  fill(Grower, 10),
                  Self ! {born, Born}
          end),
    #{top := Top, died := Died, died_count := DiedCount, born := BornList,
      born_count := BornCount} = reckon:proc_window(message_queue_len, 10000, ?WINDOW,
                                                    #{list => 100}),
    Born = receive {born, Bs} -> Bs end,
    Ranked = [P || {P, _, _} <- Top],
    ?assertEqual([], [P || P <- Ranked, lists:member(P, Dying)]),
    ?assertEqual([], [P || P <- Ranked, lists:member(P, Born)]),
    ?assertMatch([{Grower, 10, _} | _], Top),
    ?assert(lists:all(fun({_, V, _}) -> V =< 10 end, Top)),
    ?assertEqual(lists:sort(Dying), lists:sort([P || {P, 2000} <- Died])),
    ?assert(DiedCount >= 50),
    ?assertEqual(lists:sort(Born), lists:sort([P || {P, 3000, _} <- BornList])),
    ?assert(BornCount >= 50),
    ?assertNot(lists:keymember(Grower, 1, Died)),
    kill_all([Grower | Born]).

born_and_died_listed(_Config) ->
    Doomed = sink(),
    fill(Doomed, 40),
    Self = self(),
    later(fun() ->
                  exit(Doomed, kill),
                  New = sink(),
                  fill(New, 60),
                  Self ! {new, New}
          end),
    W = reckon:proc_window(message_queue_len, 5, ?WINDOW, #{list => 3}),
    New = receive {new, N} -> N end,
    #{born := Born, died := Died, born_count := BC, died_count := DC} = W,
    ?assertEqual([{Doomed, 40}], [D || {P, _} = D <- Died, P =:= Doomed]),
    ?assertMatch([{New, 60, [_ | _]}], [E || {P, _, _} = E <- Born, P =:= New]),
    ?assert(length(Born) =< 3 andalso length(Died) =< 3),
    ?assert(BC >= 1 andalso DC >= 1),
    %% the three-argument form is the top of the four-argument one
    ?assertEqual(lists:sort(maps:keys(W)), [born, born_count, died, died_count, top]),
    kill_all([New]).

%%% Binary leaks

bin_leak_finds_garbage(_Config) ->
    Self = self(),
    MinHeap = [{min_heap_size, 100000}],
    Leaky = spawn_opt(fun() -> garbage_binaries(Self, 20) end, MinHeap),
    Keeper = spawn_opt(fun() -> kept_binaries(Self, 20) end, MinHeap),
    [receive {ready, P} -> ok end || P <- [Leaky, Keeper]],
    ?assertEqual({binary, 20}, binary_count(Leaky)),
    Top = reckon:bin_leak(20),
    ?assertMatch([{Leaky, -20, _}], mine(Top, [Leaky])),
    %% holding its binaries, the keeper frees none
    ?assert(lists:all(fun({_, V, _}) -> V =:= 0 end, mine(Top, [Keeper]))),
    ?assertEqual({binary, 0}, binary_count(Leaky)),
    ?assertEqual({binary, 20}, binary_count(Keeper)),
    kill_all([Leaky, Keeper]).

binary_count(Pid) ->
    {binary, Bins} = erlang:process_info(Pid, binary),
    {binary, length(Bins)}.

%% Makes `N' refc binaries and drops them: they stay until a collection.
garbage_binaries(Parent, N) ->
    N = length([binary:copy(<<1>>, 1000) || _ <- lists:seq(1, N)]),
    Parent ! {ready, self()},
    receive {stop, never} -> ok end.

kept_binaries(Parent, N) ->
    Bins = [binary:copy(<<1>>, 1000) || _ <- lists:seq(1, N)],
    Parent ! {ready, self()},
    receive {stop, never} -> Bins end.

%%% Inet ports

pair() ->
    {ok, L} = gen_tcp:listen(0, [binary, {active, false}, {ip, {127, 0, 0, 1}}]),
    {ok, Port} = inet:port(L),
    {ok, A} = gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}]),
    {ok, B} = gen_tcp:accept(L),
    ok = gen_tcp:close(L),
    {A, B}.

drain(Sock, N) ->
    {ok, Bin} = gen_tcp:recv(Sock, N, 5000),
    N = byte_size(Bin),
    ok.

inet_count_values(_Config) ->
    {A, B} = pair(),
    ok = gen_tcp:send(A, binary:copy(<<1>>, 12345)),
    ok = drain(B, 12345),
    ?assertMatch([{A, 12345, [{send_oct, 12345}]} | _], reckon:inet_count(send_oct, 5)),
    ?assertMatch([{B, 12345, [{recv_oct, 12345}]} | _], reckon:inet_count(recv_oct, 5)),
    [{First, 12345, Stats} | _] = reckon:inet_count(oct, 5),
    ?assert(First =:= A orelse First =:= B),
    ?assertEqual(12345, lists:sum([V || {_, V} <- Stats])),
    [gen_tcp:close(S) || S <- [A, B]].

inet_window_growth(_Config) ->
    {A, B} = pair(),
    {C, D} = pair(),
    ok = gen_tcp:send(C, binary:copy(<<1>>, 100000)),
    ok = drain(D, 100000),
    later(fun() -> ok = gen_tcp:send(A, binary:copy(<<2>>, 5000)) end),
    Top = reckon:inet_window(send_oct, 2, ?WINDOW),
    ?assertMatch([{A, 5000, [{send_oct, 5000}]}, {_, 0, _}], Top),
    ok = drain(B, 5000),
    [gen_tcp:close(S) || S <- [A, B, C, D]].

%%% Arguments

bad_arguments(_Config) ->
    Bad = [fun() -> reckon:proc_count(messages, 3) end,
           fun() -> reckon:proc_count(memory, -1) end,
           fun() -> reckon:proc_count(memory, 10001) end,
           fun() -> reckon:proc_count("memory", 3) end,
           fun() -> reckon:proc_window(reductions, 3, 0) end,
           fun() -> reckon:proc_window(reductions, 3, 100, not_a_map) end,
           fun() -> reckon:proc_window(reductions, 3, 100, #{list => -1}) end,
           fun() -> reckon:bin_leak(infinity) end,
           fun() -> reckon:inet_count(memory, 3) end,
           fun() -> reckon:inet_window(oct, 3, 3600001) end],
    [?assertError(badarg, F()) || F <- Bad],
    ?assertError({bad_option, foo}, reckon:proc_window(reductions, 3, 100, #{foo => 1})).

%% A window is made from one options map and answers one map with atom
%% keys; a missing or mistyped key is badarg.
window_shapes_are_maps(_Config) ->
    Opts = #{kind => integer, n => 2, cap => 2, expected => 4},
    W = reckon_nif:window_new(Opts),
    ok = reckon_nif:window_add(W, first, [{1, 10}, {2, 10}]),
    ok = reckon_nif:window_add(W, second, [{1, 15}, {3, 1}]),
    ?assertEqual(#{top => [{1, 5}], born => [{3, 1}], died => [{2, 10}], born_count => 1,
                   died_count => 1},
                 reckon_nif:window_finish(W)),
    _ = [?assertError(badarg, reckon_nif:window_new(maps:remove(K, Opts)))
         || K <- maps:keys(Opts)],
    ?assertError(badarg, reckon_nif:window_new(Opts#{kind := port})),
    ?assertError(badarg, reckon_nif:window_new(Opts#{n := -1})).
