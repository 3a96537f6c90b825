%% Crash dumps made by real nodes, one per condition of Erlang in Anger's
%% chapter on crash dumps: each node is an OS process started with
%% `ERL_CRASH_DUMP' pointing into this suite's priv_dir, builds the
%% condition and dies (`erlang:halt/1' with a slogan, or a real
%% out-of-process-limit crash). Each dump is read through reckon:crashdump/1
%% and through `reckon-dump analyze --format json'; both must name the
%% condition and its likely cause, and agree on every figure. The JSON is
%% also checked against docs/reckon-dump.schema.json with Python's `json'.
-module(reckon_dump_SUITE).
-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1]).
-export([full_mailbox/1, processes_near_limit/1, process_limit_crash/1, many_sockets/1,
         big_binaries/1, large_ets/1, atom_flood/1, truncated_dump/1, bad_arguments/1,
         cli_usage/1, app_deps/1]).

suite() -> [{timetrap, {minutes, 5}}].

all() ->
    [full_mailbox, processes_near_limit, process_limit_crash, many_sockets, big_binaries,
     large_ets, atom_flood, truncated_dump, bad_arguments, cli_usage, app_deps].

init_per_suite(Config) ->
    Root = root(filename:dirname(code:which(?MODULE))),
    Target = case os:getenv("CARGO_TARGET_DIR") of
                 false -> filename:join(Root, "target");
                 Dir -> Dir
             end,
    Out = os:cmd("cd " ++ Root ++ " && cargo build --quiet --release --locked -p reckon_cli"
                 " --target-dir " ++ Target ++ " 2>&1; echo rc=$?"),
    ?assertMatch({match, _}, re:run(Out, "rc=0\n$"), Out),
    Bin = filename:join([Target, "release", "reckon-dump"]),
    true = filelib:is_regular(Bin),
    [{root, Root}, {cli, Bin} | Config].

end_per_suite(_Config) ->
    ok.

%% The repository's root: the first parent of `Dir' with native/reckon_cli.
root("/") -> error(no_root);
root(Dir) ->
    case filelib:is_dir(filename:join([Dir, "native", "reckon_cli"])) of
        true -> Dir;
        false -> root(filename:dirname(Dir))
    end.

%%% Conditions

full_mailbox(Config) ->
    R = dump(Config, "mailbox", "",
             "P = spawn(fun() -> receive never -> ok end end), register(bigbox, P), "
             "[P ! {msg, N} || N <- lists:seq(1, 50000)], "
             "erlang:halt(\"mailbox test\")"),
    ?assertEqual(<<"mailbox test">>, slogan(R)),
    [Top | _] = get([processes, top_message_queue], R),
    ?assertMatch(#{name := <<"bigbox">>, message_queue := 50000}, Top),
    ?assertEqual(#{value => 50000, count => 1},
                 hd(get([processes, message_queues, largest], R))),
    [Fun | _] = get([processes, queue_functions, functions], R),
    ?assertMatch(#{processes := 1, messages := 50000}, Fun),
    Ev = cause(<<"full_mailbox">>, R),
    ?assert(lists:any(fun(E) -> binary:match(E, <<"bigbox">>) =/= nomatch end, Ev)).

processes_near_limit(Config) ->
    R = dump(Config, "procs", "+P 1024",
             "[spawn(fun() -> receive stop -> ok end end) "
             " || _ <- lists:seq(1, 1000 - erlang:system_info(process_count))], "
             "erlang:halt(\"many processes\")"),
    ?assertEqual(1024, get([processes, limit_estimate], R)),
    ?assert(get([processes, count], R) >= 1000),
    cause(<<"too_many_processes">>, R).

%% The process table fills up, then a kernel server is killed: its
%% supervisor cannot start it again (system_limit), kernel stops and the
%% node dies writing the dump.
process_limit_crash(Config) ->
    R = dump(Config, "proclimit", "+P 1024",
             "Fill = fun F() -> try spawn(fun() -> receive stop -> ok end end) of _ -> F() "
             "catch error:system_limit -> ok end end, Fill(), "
             "exit(whereis(global_name_server), kill), receive after 20000 -> ok end"),
    ?assertMatch(<<"Kernel pid terminated", _/binary>>, slogan(R)),
    Ev = cause(<<"too_many_processes">>, R),
    ?assert(lists:any(fun(E) -> binary:match(E, <<"Kernel pid terminated">>) =/= nomatch end, Ev)).

many_sockets(Config) ->
    R = dump(Config, "sockets", "+Q 1024",
             "Ls = [gen_tcp:listen(0, []) || _ <- lists:seq(1, 990 - erlang:system_info(port_count))], "
             "[{ok, _} = L || L <- Ls], erlang:halt(\"many sockets\")"),
    ?assertEqual(1024, get([ports, limit_estimate], R)),
    [#{name := <<"tcp">>, count := Tcp} | _] = get([ports, types], R),
    ?assert(Tcp >= 980),
    cause(<<"too_many_ports">>, R).

big_binaries(Config) ->
    R = dump(Config, "binaries", "",
             "put(keep, [binary:copy(<<I>>, 1048576) || I <- lists:seq(1, 10)]), "
             "erlang:halt(\"big binaries\")"),
    ?assert(get([binaries, count], R) >= 10),
    ?assertMatch([#{bytes := 1048576} | _], get([binaries, largest], R)),
    cause(<<"binary_memory">>, R).

large_ets(Config) ->
    R = dump(Config, "ets", "",
             "T = ets:new(big_table, [named_table, public]), "
             "ets:insert(T, [{I, I, <<\"some padding\">>} || I <- lists:seq(1, 300000)]), "
             "erlang:halt(\"large ets\")"),
    ?assertMatch([#{name := <<"big_table">>, objects := 300000} | _], get([ets, largest], R)),
    Ev = cause(<<"ets_memory">>, R),
    ?assert(lists:any(fun(E) -> binary:match(E, <<"big_table">>) =/= nomatch end, Ev)).

atom_flood(Config) ->
    R = dump(Config, "atoms", "+t 20000",
             "[list_to_atom(\"flood_\" ++ integer_to_list(I)) "
             " || I <- lists:seq(1, 19500 - erlang:system_info(atom_count))], "
             "erlang:halt(\"atom flood\")"),
    ?assertEqual(20000, get([atoms, limit], R)),
    ?assert(get([atoms, count], R) >= 19500),
    cause(<<"too_many_atoms">>, R).

%% A dump cut in the middle gives a partial report that says where it stopped.
truncated_dump(Config) ->
    Full = filename:join(?config(priv_dir, Config), "mailbox.dump"),
    {ok, Bin} = file:read_file(Full),
    Cut = filename:join(?config(priv_dir, Config), "cut.dump"),
    ok = file:write_file(Cut, binary:part(Bin, 0, byte_size(Bin) div 3)),
    {ok, R} = reckon:crashdump(Cut),
    ?assertMatch(#{complete := false, stopped_at := #{byte := _, section := _}},
                 get([input], R)),
    ?assert(lists:any(fun(W) -> binary:match(W, <<"incomplete">>) =/= nomatch end,
                      get([warnings], R))),
    ?assertEqual(get([input], R), get([input], cli(Config, Cut))).

bad_arguments(Config) ->
    ?assertEqual({error, enoent}, reckon:crashdump("/nonexistent/erl_crash.dump")),
    ?assertEqual({error, eisdir}, reckon:crashdump(?config(priv_dir, Config))),
    Dump = filename:join(?config(priv_dir, Config), "mailbox.dump"),
    {ok, R} = reckon:crashdump(Dump, #{top => 1, threshold => 60000}),
    ?assertEqual(1, length(get([processes, top_memory], R))),
    ?assertEqual([], get([processes, queue_functions, functions], R)),
    [badarg(fun() -> reckon:crashdump(Bad) end, 1) || Bad <- [42, <<>>, [foo | bar]]],
    [badarg(fun() -> reckon:crashdump(Dump, Bad) end, 2)
     || Bad <- [[], #{top => 0}, #{top => 1001}, #{threshold => -1}, #{other => 1}]].

%% `metrics' waits for the flight recorder; a usage error exits 2.
cli_usage(Config) ->
    Cli = ?config(cli, Config),
    ?assertMatch({match, _}, re:run(os:cmd(Cli ++ " metrics x 2>&1; echo rc=$?"), "not available.*rc=2", [dotall])),
    ?assertMatch({match, _}, re:run(os:cmd(Cli ++ " analyze --top 0 x 2>&1; echo rc=$?"), "rc=2")),
    ?assertMatch({match, _}, re:run(os:cmd(Cli ++ " analyze /nonexistent 2>&1; echo rc=$?"), "rc=1")),
    Dump = filename:join(?config(priv_dir, Config), "mailbox.dump"),
    Text = os:cmd(Cli ++ " analyze " ++ Dump),
    ?assertMatch({match, _}, re:run(Text, "== Likely cause\n  full_mailbox\n")),
    Pack = os:cmd(Cli ++ " analyze --format msgpack " ++ Dump ++ " | head -c 1 | od -An -tx1"),
    ?assertEqual("8d", string:trim(Pack)).  % a MessagePack map of 13 fields

app_deps(_Config) ->
    _ = application:load(sasl),
    Dot = reckon:app_deps(),
    ?assertMatch(<<"digraph app_deps {\n", _/binary>>, Dot),
    [?assertNotEqual(nomatch, binary:match(Dot, Part), Part)
     || Part <- [<<"\"kernel\" [shape=ellipse];">>, <<"\"stdlib\" [shape=box];">>,
                 <<"\"sasl\" [shape=ellipse];">>, <<"\"sasl\" -> \"stdlib\";">>,
                 <<"\"stdlib\" -> \"kernel\";">>]],
    Lib = reckon_app_deps:dot([{a, true, [b], [c]}]),
    [?assertNotEqual(nomatch, binary:match(Lib, Part), Part)
     || Part <- [<<"\"a\" -> \"b\";">>, <<"\"a\" -> \"c\" [style=dashed];">>,
                 <<"\"b\" [shape=box, style=dotted];">>]].

%%% Helpers

%% Starts a node with `Args' that evaluates `Eval' (which must end it),
%% then reads its dump both ways; returns the Erlang report.
dump(Config, Name, Args, Eval) ->
    File = filename:join(?config(priv_dir, Config), Name ++ ".dump"),
    _ = file:delete(File),
    Cmd = "env -u ERL_FLAGS -u ERL_AFLAGS -u ERL_ZFLAGS ERL_CRASH_DUMP=" ++ File
        ++ " erl -noshell -noinput " ++ Args ++ " -eval '" ++ Eval ++ "' 2>&1",
    Out = os:cmd(Cmd),
    ct:log("~s~n~s", [Cmd, Out]),
    ?assert(filelib:is_regular(File)),
    {ok, R} = reckon:crashdump(File),
    ct:log("~p", [R]),
    ?assertMatch(#{complete := true}, get([input], R)),
    ?assertEqual(cli_canonical(Config, File), canonical(Config, json(R))),
    R.

%% The CLI's JSON, checked against the schema, as Python prints it sorted.
cli_canonical(Config, File) ->
    Json = os:cmd(?config(cli, Config) ++ " analyze --format json " ++ File),
    Path = filename:join(?config(priv_dir, Config), "cli.json"),
    ok = file:write_file(Path, Json),
    Schema = filename:join([?config(root, Config), "docs", "reckon-dump.schema.json"]),
    Checker = filename:join([?config(root, Config), "scripts", "check-json-schema.py"]),
    Check = os:cmd("python3 " ++ Checker ++ " " ++ Schema ++ " " ++ Path ++ " 2>&1; echo rc=$?"),
    ?assertMatch({match, _}, re:run(Check, "rc=0\n$"), Check),
    canonical_file(Path).

cli(Config, File) ->
    Json = os:cmd(?config(cli, Config) ++ " analyze --format json " ++ File),
    Path = filename:join(?config(priv_dir, Config), "cli2.json"),
    ok = file:write_file(Path, Json),
    {ok, R} = reckon:crashdump(File),
    ?assertEqual(canonical_file(Path), canonical(Config, json(R))),
    R.

canonical(Config, Iodata) ->
    Path = filename:join(?config(priv_dir, Config), "erl.json"),
    ok = file:write_file(Path, Iodata),
    canonical_file(Path).

canonical_file(Path) ->
    os:cmd("python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1])), "
           "sort_keys=True))' " ++ Path ++ " 2>&1").

%% The report as JSON (strings are binaries, keys atoms, undefined is null).
json(M) when is_map(M) ->
    ["{", lists:join(",", [[json(atom_to_binary(K)), ":", json(V)]
                           || {K, V} <- lists:sort(maps:to_list(M))]), "}"];
json(L) when is_list(L) -> ["[", lists:join(",", [json(X) || X <- L]), "]"];
json(undefined) -> "null";
json(true) -> "true";
json(false) -> "false";
json(N) when is_integer(N) -> integer_to_list(N);
json(B) when is_binary(B) ->
    [$", [esc(C) || C <- unicode:characters_to_list(B)], $"].

esc($") -> "\\\"";
esc($\\) -> "\\\\";
esc(C) when C < 32 -> io_lib:format("\\u~4.16.0b", [C]);
esc(C) -> <<C/utf8>>.

get([], V) -> V;
get([K | Ks], M) -> get(Ks, maps:get(K, M)).

slogan(R) -> get([dump, slogan], R).

%% The evidence of `Cause', which must be among the report's causes.
cause(Cause, R) ->
    Causes = get([likely_causes], R),
    case [Ev || #{cause := C, evidence := Ev} <- Causes, C =:= Cause] of
        [Ev | _] -> Ev;
        [] -> ct:fail({no_cause, Cause, Causes})
    end.

badarg(Fun, Index) ->
    try Fun() of
        Other -> ct:fail({no_badarg, Other})
    catch
        error:badarg:St ->
            [{reckon, crashdump, _, Info} | _] = St,
            #{cause := {Index, _}} = proplists:get_value(error_info, Info)
    end.
