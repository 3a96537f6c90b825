%% Tests of reckon_code: source from debug info and its errors, then, with a
%% peer node, remote_load, rpc and named_rpc (results, bad nodes, failing
%% funs, shell funs) and bad arguments.
-module(reckon_code_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, groups/0, init_per_suite/1, end_per_suite/1,
         init_per_group/2, end_per_group/2, init_per_testcase/2, end_per_testcase/2]).
-export([source_of_loaded_module/1, source_of_compiled_probe/1,
         source_without_debug_info/1, source_without_beam/1, source_stale_beam/1,
         source_bad_argument/1,
         remote_load_loads_on_peer/1, remote_load_default_nodes/1,
         remote_load_errors/1,
         rpc_runs_on_every_node/1, rpc_shell_fun/1, rpc_bad_nodes/1, rpc_timeout/1,
         rpc_failing_fun/1, named_rpc_names_nodes/1, named_rpc_failing_fun/1,
         bad_arguments/1]).

-define(PROBE, reckon_code_SUITE_probe).

all() ->
    [{group, source}, {group, cluster}, bad_arguments].

groups() ->
    [{source, [], [source_of_loaded_module, source_of_compiled_probe,
                   source_without_debug_info, source_without_beam, source_stale_beam,
                   source_bad_argument]},
     {cluster, [], [remote_load_loads_on_peer, remote_load_default_nodes,
                    remote_load_errors, rpc_runs_on_every_node, rpc_shell_fun,
                    rpc_bad_nodes, rpc_timeout, rpc_failing_fun, named_rpc_names_nodes,
                    named_rpc_failing_fun]}].

init_per_suite(Config) ->
    reckon_ct:distribute("reckon_code_ct_", Config).

end_per_suite(Config) ->
    reckon_ct:undistribute(Config).

init_per_group(_Group, Config) ->
    Config.

end_per_group(_Group, _Config) ->
    ok.

init_per_testcase(Case, Config) ->
    case lists:member(Case, cluster_cases()) of
        true -> start_peer(Config);
        false -> Config
    end.

end_per_testcase(_Case, Config) ->
    unload_probe(),
    case ?config(peer, Config) of
        undefined -> ok;
        Peer -> _ = catch peer:stop(Peer), ok
    end.

cluster_cases() ->
    {cluster, [], Cases} = lists:keyfind(cluster, 1, groups()),
    Cases.

start_peer(Config) ->
    {Peer, Node} = reckon_ct:start_peer(?MODULE_STRING),
    [{peer, Peer}, {peer_node, Node} | Config].

%%% Probe modules, compiled in the test

probe_forms(Answer) ->
    Text = ["-module(", atom_to_list(?PROBE), ").\n",
            "-export([answer/0]).\n",
            "-record(probe_rec, {size = 0 :: non_neg_integer()}).\n",
            "-spec answer() -> integer().\n",
            "answer() -> helper(#probe_rec{size = ", integer_to_list(Answer), "}).\n",
            "helper(#probe_rec{size = Size}) -> Size.\n"],
    {ok, Tokens, _} = erl_scan:string(lists:flatten(Text)),
    split_forms(Tokens, [], []).

split_forms([], [], Forms) ->
    lists:reverse(Forms);
split_forms([{dot, _} = Dot | Rest], Acc, Forms) ->
    {ok, Form} = erl_parse:parse_form(lists:reverse([Dot | Acc])),
    split_forms(Rest, [], [Form | Forms]);
split_forms([Token | Rest], Acc, Forms) ->
    split_forms(Rest, [Token | Acc], Forms).

%% Compiles the probe into Dir (not in any peer's code path) and loads it here.
install_probe(Config, Options, Answer) ->
    Dir = filename:join(?config(priv_dir, Config), "probe_ebin"),
    ok = filelib:ensure_path(Dir),
    {ok, ?PROBE, Beam} = compile:forms(probe_forms(Answer), [binary, return_errors | Options]),
    Path = filename:join(Dir, atom_to_list(?PROBE) ++ ".beam"),
    ok = file:write_file(Path, Beam),
    true = code:add_patha(Dir),
    _ = code:purge(?PROBE),
    {module, ?PROBE} = code:load_abs(filename:rootname(Path)),
    {Dir, Path}.

unload_probe() ->
    _ = code:purge(?PROBE),
    _ = code:delete(?PROBE),
    _ = code:purge(?PROBE),
    _ = [code:del_path(Dir) || Dir <- code:get_path(), filename:basename(Dir) =:= "probe_ebin"],
    ok.

%%% Source

source_of_loaded_module(_Config) ->
    Source = reckon_code:source(reckon_proc),
    ?assert(is_binary(Source)),
    [?assertNotEqual(nomatch, binary:match(Source, Name))
     || Name <- [<<"-module(reckon_proc).">>, <<"term_to_pid(">>, <<"get_state(">>,
                 <<"info(">>]],
    ?assertEqual(Source, reckon:source(reckon_proc)).

source_of_compiled_probe(Config) ->
    _ = install_probe(Config, [debug_info], 42),
    Source = reckon_code:source(?PROBE),
    [?assertNotEqual(nomatch, binary:match(Source, Part))
     || Part <- [<<"answer() ->">>, <<"helper(">>, <<"probe_rec">>, <<"-spec answer()">>]],
    %% What is printed compiles back to the same behaviour.
    Text = unicode:characters_to_list(Source),
    {ok, Tokens, _} = erl_scan:string(Text),
    Forms = split_forms(Tokens, [], []),
    {ok, ?PROBE, _} = compile:forms(Forms, [binary, return_errors]).

source_without_debug_info(Config) ->
    _ = install_probe(Config, [], 42),
    ?assertEqual(42, ?PROBE:answer()),
    ?assertEqual({error, {no_debug_info, ?PROBE}}, reckon_code:source(?PROBE)).

source_without_beam(_Config) ->
    ?assertEqual({error, {no_beam, reckon_code_SUITE_nothing}},
                 reckon_code:source(reckon_code_SUITE_nothing)),
    %% Loaded from memory, with no file anywhere.
    {ok, ?PROBE, Beam} = compile:forms(probe_forms(1), [binary, debug_info]),
    {module, ?PROBE} = code:load_binary(?PROBE, "/nonexistent/probe.beam", Beam),
    ?assertEqual({error, {no_beam, ?PROBE}}, reckon_code:source(?PROBE)).

source_stale_beam(Config) ->
    {_Dir, Path} = install_probe(Config, [debug_info], 1),
    {ok, ?PROBE, Newer} = compile:forms(probe_forms(2), [binary, debug_info]),
    ok = file:write_file(Path, Newer),
    ?assertEqual({error, {stale_beam, ?PROBE, Path}}, reckon_code:source(?PROBE)).

source_bad_argument(_Config) ->
    ?assertError(badarg, reckon_code:source("reckon_proc")),
    ?assertError(badarg, reckon_code:source(<<"reckon_proc">>)).

%%% Cluster

remote_load_loads_on_peer(Config) ->
    Node = ?config(peer_node, Config),
    _ = install_probe(Config, [debug_info], 42),
    ?assertEqual(false, erpc:call(Node, code, is_loaded, [?PROBE])),
    ?assertEqual(non_existing, erpc:call(Node, code, which, [?PROBE])),
    ?assertEqual([{Node, {module, ?PROBE}}], reckon_code:remote_load(Node, ?PROBE)),
    ?assertMatch({file, _}, erpc:call(Node, code, is_loaded, [?PROBE])),
    ?assertEqual(true, erpc:call(Node, erlang, function_exported, [?PROBE, answer, 0])),
    ?assertEqual(42, erpc:call(Node, ?PROBE, answer, [])),
    %% Loading again replaces the code; a list of nodes works the same.
    ?assertEqual([{Node, {module, ?PROBE}}], reckon:remote_load([Node], ?PROBE)).

remote_load_default_nodes(Config) ->
    Node = ?config(peer_node, Config),
    _ = install_probe(Config, [], 7),
    ?assertEqual([{N, {module, ?PROBE}} || N <- nodes()], reckon_code:remote_load(?PROBE)),
    ?assert(lists:member(Node, nodes())),
    ?assertEqual(7, erpc:call(Node, ?PROBE, answer, [])).

remote_load_errors(Config) ->
    Node = ?config(peer_node, Config),
    Nobody = nobody(),
    ?assertError({no_object_code, reckon_code_SUITE_nothing},
                 reckon_code:remote_load(Node, reckon_code_SUITE_nothing)),
    _ = install_probe(Config, [], 3),
    ?assertEqual([{Nobody, {badrpc, nodedown}}, {Node, {module, ?PROBE}}],
                 reckon_code:remote_load([Nobody, Node], ?PROBE)),
    ?assertEqual([], reckon_code:remote_load([], ?PROBE)),
    ?assertError(badarg, reckon_code:remote_load("node", ?PROBE)),
    ?assertError(badarg, reckon_code:remote_load(Node, "module")).

rpc_runs_on_every_node(Config) ->
    Node = ?config(peer_node, Config),
    {Nodes, []} = reckon_code:rpc(fun() -> node() end),
    ?assertEqual(lists:sort([node() | nodes()]), lists:sort(Nodes)),
    ?assert(lists:member(Node, Nodes)),
    ?assertEqual({[Node], []}, reckon_code:rpc(Node, fun() -> node() end)),
    ?assertEqual({[Node, node()], []}, reckon:rpc([Node, node()], fun() -> node() end)),
    ?assertEqual({[], []}, reckon_code:rpc([], fun() -> node() end)).

rpc_shell_fun(Config) ->
    Node = ?config(peer_node, Config),
    Fun = shell_fun("fun() -> {node(), 6 * 7} end."),
    ?assertEqual({[{Node, 42}], []}, reckon_code:rpc(Node, Fun, 5000)),
    ?assertEqual({[{Node, {Node, 42}}], []}, reckon_code:named_rpc(Node, Fun)).

rpc_bad_nodes(Config) ->
    Node = ?config(peer_node, Config),
    Nobody = nobody(),
    ?assertEqual({[Node], [Nobody]}, reckon_code:rpc([Nobody, Node], fun() -> node() end)),
    ?assertEqual({[{Node, Node}], [Nobody]},
                 reckon_code:named_rpc([Node, Nobody], fun() -> node() end)).

rpc_timeout(Config) ->
    Node = ?config(peer_node, Config),
    Slow = fun() -> receive never_sent -> ok end end,
    ?assertEqual({[], [Node]}, reckon_code:rpc(Node, Slow, 100)),
    ?assertEqual({[{node(), node()}], [Node]},
                 reckon_code:named_rpc([node(), Node],
                                       fun() -> case node() of
                                                    Node -> receive never_sent -> ok end;
                                                    Here -> Here
                                                end
                                       end, 100)).

rpc_failing_fun(Config) ->
    Node = ?config(peer_node, Config),
    ?assertMatch({[{badrpc, {'EXIT', {boom, [_ | _]}}}], []},
                 reckon_code:rpc(Node, fun() -> error(boom) end)),
    ?assertEqual({[thrown], []}, reckon_code:rpc(Node, fun() -> throw(thrown) end)),
    ?assertEqual({[{badrpc, {'EXIT', gone}}], []},
                 reckon_code:rpc(Node, fun() -> exit(gone) end)).

named_rpc_names_nodes(Config) ->
    Node = ?config(peer_node, Config),
    {Named, []} = reckon_code:named_rpc(fun() -> node() end),
    ?assert(lists:all(fun({N, Result}) -> N =:= Result end, Named)),
    ?assertEqual(lists:sort([node() | nodes()]), lists:sort([N || {N, _} <- Named])),
    ?assertEqual({[{Node, Node}, {node(), node()}], []},
                 reckon:named_rpc([Node, node()], fun() -> node() end, infinity)).

named_rpc_failing_fun(Config) ->
    Node = ?config(peer_node, Config),
    Here = node(),
    Fun = fun() -> case node() of Here -> fine; _ -> error(boom) end end,
    ?assertMatch({[{Here, fine}, {Node, {badrpc, {'EXIT', {boom, _}}}}], []},
                 reckon_code:named_rpc([Here, Node], Fun)).

bad_arguments(_Config) ->
    Fun = fun() -> ok end,
    ?assertError(badarg, reckon_code:rpc(fun(X) -> X end)),
    ?assertError(badarg, reckon_code:rpc(not_a_fun)),
    ?assertError(badarg, reckon_code:rpc("node", Fun)),
    ?assertError(badarg, reckon_code:rpc([node() | node()], Fun)),
    ?assertError(badarg, reckon_code:rpc([node(), "other"], Fun)),
    ?assertError(badarg, reckon_code:rpc(node(), Fun, -1)),
    ?assertError(badarg, reckon_code:rpc(node(), Fun, soon)),
    ?assertError(badarg, reckon_code:named_rpc(fun(_, _) -> ok end)),
    ?assertError(badarg, reckon_code:named_rpc(42, Fun)),
    ?assertError(badarg, reckon_code:named_rpc(node(), Fun, 1.0)),
    ?assertEqual({[ok], []}, reckon_code:rpc(node(), Fun)),
    ?assertEqual({[{node(), ok}], []}, reckon_code:named_rpc(node(), Fun)).

%%% Helpers

%% A fun as a shell makes it: interpreted by erl_eval, no module of ours.
shell_fun(Text) ->
    {ok, Tokens, _} = erl_scan:string(Text),
    {ok, [Expr]} = erl_parse:parse_exprs(Tokens),
    {value, Fun, _} = erl_eval:expr(Expr, erl_eval:new_bindings()),
    Fun.

%% A node name on this host that no node uses.
nobody() ->
    [_, Host] = string:split(atom_to_list(node()), "@"),
    list_to_atom("reckon_nobody@" ++ Host).
