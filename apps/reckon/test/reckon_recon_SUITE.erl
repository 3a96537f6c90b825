%% @doc reckon against recon: the call shapes a recon user types, with the
%% answers recon gives (or the documented difference), and the messages of
%% a refused argument.
-module(reckon_recon_SUITE).

-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([badarg_names_argument/1, info_three_integers/1, info_binary_keys/1,
         registered_name_unregistered/1, port_info_shapes/1, shell_never_ranked/1,
         allocated_types_with_literal_alloc/1, snapshot_load_recon_text/1]).

-spec all() -> [atom()].
all() ->
    [badarg_names_argument, info_three_integers, info_binary_keys,
     registered_name_unregistered, port_info_shapes, shell_never_ranked,
     allocated_types_with_literal_alloc, snapshot_load_recon_text].

-spec init_per_suite(list()) -> list().
init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(reckon),
    Config.

-spec end_per_suite(list()) -> ok.
end_per_suite(_Config) ->
    ok.

%% A refused argument raises badarg from the public function (the top of
%% the stack, in reckon or reckon_alloc), with an error_info message naming
%% the argument.
-spec badarg_names_argument(list()) -> ok.
badarg_names_argument(_Config) ->
    P = idle(),
    {ok, Sock} = gen_udp:open(0),
    Cases = [{proc_count, 2, 1, fun() -> reckon:proc_count(memroy, 5) end, "memory"},
             {proc_count, 2, 2, fun() -> reckon:proc_count(memory, -1) end, "integer"},
             {info, 2, 2, fun() -> reckon:info(P, [memry]) end, "binary_memory"},
             {info, 2, 2, fun() -> reckon:info(P, messages) end, "never messages"},
             {info, 2, 1, fun() -> reckon:info(<<"nope">>, memory) end, "pid"},
             {info, 1, 1, fun() -> reckon:info(42.0) end, "pid"},
             {info, 3, 2, fun() -> reckon:info(0, x, 0) end, "integer"},
             {info, 4, 4, fun() -> reckon:info(0, 1, 0, memry) end, "keys"},
             {proc_window, 3, 3, fun() -> reckon:proc_window(reductions, 5, -3) end,
              "time"},
             {proc_window, 4, 4, fun() -> reckon:proc_window(memory, 5, 10, nope) end,
              "map"},
             {bin_leak, 1, 1, fun() -> reckon:bin_leak(x) end, "integer"},
             {inet_count, 2, 1, fun() -> reckon:inet_count(octs, 5) end, "recv_oct"},
             {inet_window, 3, 3, fun() -> reckon:inet_window(oct, 5, 0) end, "time"},
             {get_state, 2, 2, fun() -> reckon:get_state(P, -1) end, "timeout"},
             {term_to_pid, 1, 1, fun() -> reckon:term_to_pid({a, b}) end, "pid"},
             {cluster_proc_count, 2, 1, fun() -> reckon:cluster_proc_count(x, 5) end,
              "memory"},
             {node_stats_list, 2, 1, fun() -> reckon:node_stats_list(-1, 10) end, "integer"},
             {node_stats, 4, 3, fun() -> reckon:node_stats(1, 10, x, y) end, "arity 2"},
             {scheduler_usage, 1, 1, fun() -> reckon:scheduler_usage(0) end, "3600000"},
             {port_info, 2, 2, fun() -> reckon:port_info(Sock, bogus) end, "type"},
             {term_to_port, 1, 1, fun() -> reckon:term_to_port({x}) end, "port"},
             {source, 1, 1, fun() -> reckon:source("x") end, "module"},
             {remote_load, 2, 1, fun() -> reckon:remote_load([1], lists) end, "node"},
             {rpc, 3, 3, fun() -> reckon:rpc([node()], fun() -> ok end, -1) end, "timeout"},
             {named_rpc, 1, 1, fun() -> reckon:named_rpc(fun(_) -> ok end) end, "arity 0"},
             {memory, 1, 1, fun() -> reckon_alloc:memory(usedd) end, "allocated_types"},
             {memory, 2, 2, fun() -> reckon_alloc:memory(used, now) end, "current"},
             {fragmentation, 1, 1, fun() -> reckon_alloc:fragmentation(x) end, "max"},
             {sbcs_to_mbcs, 1, 1, fun() -> reckon_alloc:sbcs_to_mbcs(x) end, "max"},
             {average_block_sizes, 1, 1, fun() -> reckon_alloc:average_block_sizes(x) end,
              "max"},
             {allocators, 1, 1, fun() -> reckon_alloc:allocators(type) end, "types"},
             {set_unit, 1, 1, fun() -> reckon_alloc:set_unit(kb) end, "kilobyte"}],
    [check_badarg(C) || C <- Cases],
    ok = gen_udp:close(Sock),
    P ! stop,
    ok.

-spec check_badarg({atom(), arity(), pos_integer(), fun(() -> term()), string()}) -> ok.
check_badarg({Fun, Arity, Index, Call, Word}) ->
    try Call() of
        Result -> ct:fail({no_badarg, Fun, Result})
    catch
        error:badarg:Stack ->
            [{Module, Fun, Args, Info} | _] = Stack,
            ?assert(lists:member(Module, [reckon, reckon_alloc])),
            ?assertEqual(Arity, length(Args)),
            ?assertMatch(#{module := reckon_lib}, proplists:get_value(error_info, Info)),
            Messages = reckon_lib:format_error(badarg, Stack),
            ?assertEqual([Index], maps:keys(Messages), Fun),
            Text = lists:flatten(io_lib:format("~ts", [maps:get(Index, Messages)])),
            ?assertNotEqual(nomatch, string:find(Text, Word), {Fun, Text}),
            ok
    end.

%% recon's info/3 and info/4: the pid as three integers.
-spec info_three_integers(list()) -> ok.
info_three_integers(_Config) ->
    P = idle(),
    "<" ++ Rest = pid_to_list(P),
    [A, B, C] = [list_to_integer(X) || X <- string:lexemes(Rest -- ">", ".")],
    Info = reckon:info(A, B, C),
    ?assertEqual([meta, signals, location, memory_used, work], [K || {K, _} <- Info]),
    ?assertMatch({memory, M} when is_integer(M), reckon:info(A, B, C, memory)),
    ?assertMatch({work, [{reductions, _}]}, reckon:info(A, B, C, work)),
    ?assertMatch([{status, waiting}, {trap_exit, false}],
                 reckon:info(A, B, C, [status, trap_exit])),
    P ! stop,
    ok.

%% binary_memory and binary, alone or in a list, as recon answers them;
%% `binary' holds at most 1000 binaries, as the other lists.
-spec info_binary_keys(list()) -> ok.
info_binary_keys(_Config) ->
    Self = self(),
    P = spawn(fun() ->
                      Bins = [binary:copy(<<I:32, 0:(100 * 8)>>) || I <- lists:seq(1, 1500)],
                      Self ! ready,
                      receive stop -> length(Bins) end
              end),
    receive ready -> ok end,
    {binary_memory, Mem} = reckon:info(P, binary_memory),
    ?assert(Mem >= 1500 * 104),
    {binary, Bins} = reckon:info(P, binary),
    ?assertEqual(1000, length(Bins)),
    ?assertMatch([{binary, L}, {binary_memory, Mem}] when length(L) =:= 1000,
                 reckon:info(P, [binary, binary_memory])),
    P ! stop,
    ok.

%% recon (process_info/2) gives [] for the name of an unregistered process.
-spec registered_name_unregistered(list()) -> ok.
registered_name_unregistered(_Config) ->
    P = idle(),
    ?assertEqual([], reckon:info(P, registered_name)),
    ?assertEqual([{registered_name, []}], reckon:info(P, [registered_name])),
    true = register(reckon_recon_SUITE_named, P),
    ?assertEqual({registered_name, reckon_recon_SUITE_named},
                 reckon:info(P, registered_name)),
    P ! stop,
    ok.

%% recon's categories of port_info/1: `io' is input and output only, the
%% inet statistics are `statistics' in `type'; `specific' answers `{type, _}'.
-spec port_info_shapes(list()) -> ok.
port_info_shapes(_Config) ->
    {ok, Listen} = gen_tcp:listen(0, [{ip, {127, 0, 0, 1}}, binary, {active, false}]),
    {ok, Port} = inet:port(Listen),
    {ok, Client} = gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}]),
    Info = reckon:port_info(Client),
    ?assertEqual([meta, signals, io, memory_used, type], [C || {C, _} <- Info]),
    ?assertMatch({io, [{input, _}, {output, _}]}, reckon:port_info(Client, io)),
    {type, Type} = reckon:port_info(Client, specific),
    ?assertEqual({type, Type}, reckon:port_info(Client, type)),
    ?assertEqual([statistics, peername, sockname, options], [K || {K, _} <- Type]),
    {statistics, Stats} = lists:keyfind(statistics, 1, Type),
    ?assertEqual(lists:sort([K || {K, _} <- element(2, inet:getstat(Client))]),
                 lists:sort([K || {K, _} <- Stats])),
    %% A listening socket has no peer: left out, as recon does.
    {type, ListenType} = reckon:port_info(Listen, type),
    ?assertEqual([statistics, sockname, options], [K || {K, _} <- ListenType]),
    ok = gen_tcp:close(Client),
    ok = gen_tcp:close(Listen).

%% In a real shell (an erl whose input is piped), proc_count ranks neither
%% the evaluator that calls it nor the shell's server process.
-spec shell_never_ranked(list()) -> ok.
shell_never_ranked(_Config) ->
    Erl = os:find_executable("erl"),
    Ebin = filename:dirname(code:which(reckon)),
    Input = "application:ensure_all_started(reckon).\n"
            "[Server] = [P || P <- element(2, process_info(self(), links)),"
            " element(1, element(2, process_info(P, current_function))) =:= shell],"
            " Ranked = [X || {X, _, _} <- reckon:proc_count(memory, 10000),"
            " X =:= Server orelse X =:= self()],"
            " io:format(\"RANKED=~w~n\", [Ranked]).\n"
            "halt().\n",
    File = filename:join(filename:dirname(Ebin), "shell_input.txt"),
    ok = file:write_file(File, Input),
    Out = os:cmd(Erl ++ " -pa " ++ Ebin ++ " < " ++ File),
    ?assertNotEqual(nomatch, string:find(Out, "RANKED=[]\n"), Out),
    ok = file:delete(File),
    ok.

%% A documented difference: allocated_types counts literal_alloc (module
%% literals), which recon leaves out, so the types add up to `allocated'.
-spec allocated_types_with_literal_alloc(list()) -> ok.
allocated_types_with_literal_alloc(_Config) ->
    Types = reckon_alloc:memory(allocated_types, current),
    {literal_alloc, Literal} = lists:keyfind(literal_alloc, 1, Types),
    ?assert(Literal > 0),
    ?assertEqual(reckon_alloc:memory(allocated, current), lists:sum([V || {_, V} <- Types])),
    ok.

%% recon's snapshot files are text (`~p.' of the snapshot, read with
%% file:consult/1): they load, and one naming an atom the node does not
%% know is refused without creating it.
-spec snapshot_load_recon_text(list()) -> ok.
snapshot_load_recon_text(Config) ->
    Dir = proplists:get_value(priv_dir, Config),
    Allocs = [binary_alloc, eheap_alloc, ets_alloc],
    Snap = {erlang:memory(), [{A, erlang:system_info({allocator, A})} || A <- Allocs]},
    Text = iolist_to_binary(io_lib:format("~p.~n", [Snap])),
    Good = filename:join(Dir, "recon.snap"),
    ok = file:write_file(Good, Text),
    _ = reckon_alloc:snapshot_clear(),
    ?assertEqual(undefined, reckon_alloc:snapshot_load(Good)),
    ?assertEqual(Allocs, [T || {T, _} <- reckon_alloc:memory(allocated_types)]),
    Unknown = "reckon_recon_SUITE_" ++ integer_to_list(erlang:unique_integer([positive])),
    Bad = filename:join(Dir, "unknown_atom.snap"),
    ok = file:write_file(Bad, binary:replace(Text, <<"ets_alloc">>, list_to_binary(Unknown))),
    Atoms = erlang:system_info(atom_count),
    ?assertEqual({error, unsafe_or_corrupt}, reckon_alloc:snapshot_load(Bad)),
    ?assertEqual(Atoms, erlang:system_info(atom_count)),
    ?assertError(badarg, list_to_existing_atom(Unknown)),
    Quoted = filename:join(Dir, "quoted_atom.snap"),
    ok = file:write_file(Quoted, binary:replace(Text, <<"ets_alloc">>,
                                                list_to_binary("'" ++ Unknown ++ " x'"))),
    ?assertEqual({error, unsafe_or_corrupt}, reckon_alloc:snapshot_load(Quoted)),
    ?assertEqual(Atoms, erlang:system_info(atom_count)),
    _ = reckon_alloc:snapshot_clear(),
    ok.

-spec idle() -> pid().
idle() ->
    spawn(fun() -> receive stop -> ok end end).
