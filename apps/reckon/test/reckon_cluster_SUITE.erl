%% The cluster-wide top-N on two nodes (this one and a peer started with
%% OTP's `peer' module): each node's answer is merged into one ranking.
-module(reckon_cluster_SUITE).
-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([proc_count_merges_nodes/1, proc_window_merges_nodes/1, bin_leak_merges_nodes/1,
         inet_count_merges_nodes/1, inet_window_merges_nodes/1, bad_arguments/1]).

-define(WINDOW, 1000).
-define(MID, 300).

all() ->
    [proc_count_merges_nodes, proc_window_merges_nodes, bin_leak_merges_nodes,
     inet_count_merges_nodes, inet_window_merges_nodes, bad_arguments].

suite() ->
    [{timetrap, {seconds, 120}}].

init_per_suite(Config) ->
    reckon_ct:distribute("reckon_cluster_ct_", Config).

end_per_suite(Config) ->
    reckon_ct:undistribute(Config).

%% A peer running reckon.
init_per_testcase(_Case, Config) ->
    {Peer, Node} = reckon_ct:start_peer(?MODULE_STRING),
    {ok, _} = erpc:call(Node, application, ensure_all_started, [reckon]),
    [{peer, Peer}, {peer_node, Node} | Config].

end_per_testcase(_Case, Config) ->
    _ = catch peer:stop(?config(peer, Config)),
    ok.

%%% Helpers

%% A process on `Node' that waits forever.
sink(Node) ->
    erpc:call(Node, erlang, spawn, [timer, sleep, [infinity]]).

%% Sends `N' messages to `Pid' and waits until they are all queued.
fill(Pid, N) ->
    [Pid ! {msg, I} || I <- lists:seq(1, N)],
    wait_queued(Pid, N, 500).

wait_queued(Pid, N, 0) ->
    ct:fail({not_queued, Pid, N, queue_len(Pid)});
wait_queued(Pid, N, Tries) ->
    case queue_len(Pid) >= N of
        true -> ok;
        false -> timer:sleep(10), wait_queued(Pid, N, Tries - 1)
    end.

queue_len(Pid) ->
    {message_queue_len, Len} = erpc:call(node(Pid), erlang, process_info,
                                         [Pid, message_queue_len]),
    Len.

mine(Top, Keys) ->
    [{K, V} || {K, V, _} <- Top, lists:member(K, Keys)].

%%% Cases

proc_count_merges_nodes(Config) ->
    Peer = ?config(peer_node, Config),
    Local = sink(node()),
    Remote = sink(Peer),
    ok = fill(Local, 400),
    ok = fill(Remote, 900),
    Top = reckon:cluster_proc_count(message_queue_len, 2),
    ?assertMatch([{Remote, 900, _}, {Local, 400, _}], Top),
    ?assertEqual(Peer, node(Remote)),
    exit(Local, kill).

proc_window_merges_nodes(Config) ->
    Peer = ?config(peer_node, Config),
    Local = sink(node()),
    Remote = sink(Peer),
    ok = fill(Remote, 5000),
    spawn_link(fun() ->
                       timer:sleep(?MID),
                       [Local ! {msg, I} || I <- lists:seq(1, 300)],
                       [Remote ! {msg, I} || I <- lists:seq(1, 200)]
               end),
    Top = reckon:cluster_proc_window(message_queue_len, 2, ?WINDOW),
    ?assertMatch([{Local, 300, _}, {Remote, 200, _}], Top),
    exit(Local, kill).

bin_leak_merges_nodes(Config) ->
    Peer = ?config(peer_node, Config),
    Make = fun(N) -> fun() -> leak(N) end end,
    Local = spawn_opt(Make(10), [{min_heap_size, 100000}]),
    Remote = spawn_opt(Peer, Make(30), [{min_heap_size, 100000}]),
    wait_binaries(Local, 10, 500),
    wait_binaries(Remote, 30, 500),
    Top = reckon:cluster_bin_leak(30),
    ?assertEqual([{Remote, -30}, {Local, -10}], mine(Top, [Local, Remote])),
    %% the most freed first, over both nodes
    Values = [V || {_, V, _} <- Top],
    ?assertEqual(lists:sort(Values), Values),
    exit(Local, kill).

leak(N) ->
    N = length([binary:copy(<<1>>, 1000) || _ <- lists:seq(1, N)]),
    receive {stop, never} -> ok end.

wait_binaries(Pid, N, 0) ->
    ct:fail({no_binaries, Pid, N});
wait_binaries(Pid, N, Tries) ->
    case erpc:call(node(Pid), erlang, process_info, [Pid, binary]) of
        {binary, Bins} when length(Bins) >= N -> ok;
        _ -> timer:sleep(10), wait_binaries(Pid, N, Tries - 1)
    end.

%% Opens a loopback TCP pair on `Node' (owned by a process there that
%% waits) and sends `Bytes' from its first socket; returns the sockets.
remote_pair(Node, Bytes) ->
    Self = self(),
    erpc:call(Node, erlang, spawn, [fun() -> Self ! {pair, pair_sending(Bytes)},
                                             timer:sleep(infinity) end]),
    receive {pair, Pair} -> Pair after 10000 -> ct:fail(no_pair) end.

pair_sending(Bytes) ->
    {ok, L} = gen_tcp:listen(0, [binary, {active, false}, {ip, {127, 0, 0, 1}}]),
    {ok, Port} = inet:port(L),
    {ok, A} = gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}]),
    {ok, B} = gen_tcp:accept(L),
    ok = gen_tcp:close(L),
    ok = gen_tcp:send(A, binary:copy(<<1>>, Bytes)),
    {ok, _} = gen_tcp:recv(B, Bytes, 5000),
    {A, B}.

inet_count_merges_nodes(Config) ->
    Peer = ?config(peer_node, Config),
    {LA, LB} = pair_sending(7000),
    {RA, _RB} = remote_pair(Peer, 9000),
    Top = reckon:cluster_inet_count(send_oct, 10),
    ?assertEqual([{RA, 9000}, {LA, 7000}], mine(Top, [LA, RA])),
    ?assertEqual(Peer, node(RA)),
    [gen_tcp:close(S) || S <- [LA, LB]].

inet_window_merges_nodes(Config) ->
    Peer = ?config(peer_node, Config),
    {LA, LB} = pair_sending(1),
    {RA, _RB} = remote_pair(Peer, 1),
    spawn_link(fun() ->
                       timer:sleep(?MID),
                       ok = gen_tcp:send(LA, binary:copy(<<1>>, 3000)),
                       ok = erpc:call(Peer, gen_tcp, send, [RA, binary:copy(<<1>>, 4000)])
               end),
    Top = reckon:cluster_inet_window(send_oct, 10, ?WINDOW),
    ?assertEqual([{RA, 4000}, {LA, 3000}], mine(Top, [LA, RA])),
    [gen_tcp:close(S) || S <- [LA, LB]].

bad_arguments(_Config) ->
    ?assertError(badarg, reckon:cluster_proc_count(messages, 3)),
    ?assertError(badarg, reckon:cluster_proc_window(reductions, 3, 0)),
    ?assertError(badarg, reckon:cluster_bin_leak(-1)),
    ?assertError(badarg, reckon:cluster_inet_count(memory, 3)),
    ?assertError(badarg, reckon:cluster_inet_window(oct, 3, foo)).
