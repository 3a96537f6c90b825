%% @doc `make demo': a service with a bounded database pool, bursts and an
%% outage, run once unprotected and once protected by sluice, each in a
%% node started from the `sluice' release; then a summary and a report.
%%
%% {@link main/0} runs in a driver node that `scripts/demo.sh' starts. For
%% each run it starts the release (`bin/sluice daemon') under a node name
%% and cookie of its own (a copy of the release's `vm.args' passed through
%% `VMARGS_PATH'), loads the demo's modules into it over RPC, starts
%% reckon's flight recorder there and calls {@link
%% sluice_demo_service:run/2}, whose lines are printed on the driver's
%% terminal. The unprotected node is stopped after its run; the protected
%% one too, unless `DEMO_KEEP=1': then the service keeps running in it in
%% the background (with an outage every run's length) and the driver
%% prints how to attach a remote shell and what to try. The report
%% ({@link sluice_demo_report}) goes to `<out>/report/index.html'.
%%
%% The environment: `DEMO_REL' (the release's directory, required),
%% `DEMO_OUT' (default `_build/demo'), `DEMO_KEEP' (`1' keeps the protected
%% node), `DEMO_SECONDS' (the length of each run, default 30; the outage
%% takes the same share of it), `DEMO_ID' (in the nodes' names and their
%% `vm.args' files, `<out>/vm.args.<mode>_<id>'; default the OS pid).
%%
%% This module prints to the terminal on purpose: it is a shell-facing demo.
-module(sluice_demo).

-export([main/0, print_summary/1]).

-define(MODULES, [sluice_demo_db, sluice_demo_service]).

%% @doc Runs the demo and halts: status 0 when both runs ended, 1 if not.
-spec main() -> no_return().
main() ->
    Status = try run() of
                 ok -> 0
             catch
                 throw:{demo, Why} ->
                     io:format(standard_error, "demo: ~s~n", [Why]),
                     1;
                 Class:Reason:Stack ->
                     io:format(standard_error, "demo crashed: ~p:~p~n~p~n",
                               [Class, Reason, Stack]),
                     1
             end,
    halt(Status).

-spec run() -> ok.
run() ->
    Rel = case os:getenv("DEMO_REL") of
              false -> throw({demo, "DEMO_REL (the release directory) is not set"});
              R -> R
          end,
    Out = env("DEMO_OUT", "_build/demo"),
    Keep = env("DEMO_KEEP", "") =:= "1",
    Opts = options(env("DEMO_SECONDS", "")),
    #{seconds := Secs, outage := {From, To}} = maps:merge(sluice_demo_service:defaults(), Opts),
    io:format("sluice demo: one service, ~b s unprotected then ~b s protected by sluice;~n"
              "the database is down from ~b s to ~b s of each run.~n"
              "columns: requests offered and served this second; shed by reason (limit: rate "
              "limit per client,~n  valve: load-regulated valve, box: box overflow, aged: expired "
              "in a box, open: breaker~n  open, busy: no connection free, dberr: failed query); "
              "p50/p99 latency of the requests~n  served this second; node memory; longest "
              "message queue of the node; breaker state.~n~n",
              [Secs, Secs, From div 1000, To div 1000]),
    Unprotected = in_node(Rel, Out, unprotected, Opts, false),
    Protected = in_node(Rel, Out, protected, Opts, Keep),
    Results = [Unprotected, Protected],
    print_summary(Results),
    case sluice_demo_report:write(filename:join(Out, "report"), Results) of
        {ok, Index} ->
            io:format("~nreport: ~s~n", [filename:absname(Index)]);
        {error, Why} ->
            throw({demo, io_lib:format("the report could not be written: ~p", [Why])})
    end,
    ok.

-spec options(string()) -> sluice_demo_service:options().
options("") ->
    #{};
options(S) ->
    case string:to_integer(S) of
        {Secs, ""} when Secs >= 4 ->
            #{seconds => Secs, outage => {Secs * 1000 * 8 div 30, Secs * 1000 * 16 div 30}};
        _ ->
            throw({demo, "DEMO_SECONDS must be an integer of at least 4"})
    end.

-spec env(string(), string()) -> string().
env(Name, Default) ->
    case os:getenv(Name) of
        false -> Default;
        V -> V
    end.

%%% One run in a node of the release

-spec in_node(string(), string(), sluice_demo_service:mode(), sluice_demo_service:options(),
              boolean()) -> sluice_demo_service:result().
in_node(Rel, Out, Mode, Opts, Keep) ->
    Id = env("DEMO_ID", os:getpid()),
    Name = lists:flatten(io_lib:format("sluice_demo_~s_~s", [Mode, Id])),
    Cookie = lists:flatten(io_lib:format("sluice_demo_~b", [rand:uniform(1 bsl 40)])),
    VmArgs = filename:absname(filename:join(Out, "vm.args." ++ atom_to_list(Mode) ++ "_" ++ Id)),
    write_vm_args(Rel, VmArgs, Name, Cookie),
    Bin = filename:join([filename:absname(Rel), "bin", "sluice"]),
    Env = "VMARGS_PATH='" ++ VmArgs ++ "' RELX_RPC_TIMEOUT=30 ",
    Cmd = fun(Arg) -> Env ++ "'" ++ Bin ++ "' " ++ Arg end,
    [_, Host] = string:split(atom_to_list(node()), "@"),
    %% The node's name, made here from the demo's own prefix and the OS pid.
    Node = list_to_atom(Name ++ "@" ++ Host),
    erlang:set_cookie(Node, list_to_atom(Cookie)),
    _ = os:cmd(Cmd("daemon") ++ " 2>&1"),
    try
        ok = wait_up(Node, 60),
        _ = [load(Node, M) || M <- ?MODULES],
        _ = rpc:call(Node, reckon_metrics, start, [#{}]),
        Result = call(Node, sluice_demo_service, run, [Mode, Opts]),
        io:format("~n"),
        case Keep of
            true ->
                _ = call(Node, sluice_demo_service, start_background, [Mode, Opts]),
                print_keep(Node, Cmd);
            false ->
                ok
        end,
        Result
    after
        Keep orelse stop_node(Node, Cmd)
    end.

-spec write_vm_args(string(), string(), string(), string()) -> ok.
write_vm_args(Rel, Path, Name, Cookie) ->
    {ok, [[Vsn, _Erts]]} = read_start_erl(Rel),
    {ok, Orig} = file:read_file(filename:join([Rel, "releases", Vsn, "vm.args"])),
    Lines = [case Line of
                 <<"-sname ", _/binary>> -> <<"-sname ", (list_to_binary(Name))/binary>>;
                 <<"-name ", _/binary>> -> <<"-sname ", (list_to_binary(Name))/binary>>;
                 <<"-setcookie ", _/binary>> -> <<"-setcookie ", (list_to_binary(Cookie))/binary>>;
                 _ -> Line
             end || Line <- binary:split(Orig, <<"\n">>, [global])],
    ok = filelib:ensure_dir(Path),
    ok = file:write_file(Path, lists:join(<<"\n">>, Lines)).

-spec read_start_erl(string()) -> {ok, [[string()]]} | {error, term()}.
read_start_erl(Rel) ->
    case file:read_file(filename:join([Rel, "releases", "start_erl.data"])) of
        {ok, Data} ->
            [Erts, Vsn] = string:lexemes(binary_to_list(Data), " \n"),
            {ok, [[Vsn, Erts]]};
        Error ->
            Error
    end.

-spec wait_up(node(), non_neg_integer()) -> ok.
wait_up(Node, 0) ->
    throw({demo, io_lib:format("the node ~s did not answer within 30 s", [Node])});
wait_up(Node, Tries) ->
    case net_adm:ping(Node) of
        pong ->
            %% The node answers before its applications have started.
            case rpc:call(Node, application, which_applications, []) of
                Apps when is_list(Apps) ->
                    Started = fun(App) -> lists:keymember(App, 1, Apps) end,
                    case Started(sluice) andalso Started(reckon) of
                        true -> ok;
                        false -> timer:sleep(500), wait_up(Node, Tries - 1)
                    end;
                _ ->
                    timer:sleep(500),
                    wait_up(Node, Tries - 1)
            end;
        pang ->
            timer:sleep(500),
            wait_up(Node, Tries - 1)
    end.

-spec load(node(), module()) -> ok.
load(Node, Mod) ->
    {Mod, Beam, File} = code:get_object_code(Mod),
    {module, Mod} = call(Node, code, load_binary, [Mod, File, Beam]),
    ok.

%% An RPC whose errors end the demo with what went wrong.
-spec call(node(), module(), atom(), list()) -> term().
call(Node, M, F, A) ->
    case rpc:call(Node, M, F, A, infinity) of
        {badrpc, Why} -> throw({demo, io_lib:format("~s:~s on ~s failed: ~p", [M, F, Node, Why])});
        Result -> Result
    end.

-spec stop_node(node(), fun((string()) -> string())) -> true.
stop_node(Node, Cmd) ->
    _ = os:cmd(Cmd("stop") ++ " 2>&1"),
    _ = [timer:sleep(200) || _ <- lists:seq(1, 25), net_adm:ping(Node) =:= pong],
    true.

-spec print_keep(node(), fun((string()) -> string())) -> ok.
print_keep(Node, Cmd) ->
    io:format("The protected node ~s keeps running, and the service in it (with the outage~n"
              "back every run's length). Attach a remote shell with:~n"
              "  ~s~n"
              "(leave it with Ctrl-G then q and Enter: q(). would stop the node), and try:~n"
              "  reckon_top:start().                        the dashboard (s Enter: sluice's tools,"
              " q Enter: quit)~n"
              "  reckon:proc_window(reductions, 5, 1000).   the busiest processes over a second~n"
              "  reckon_metrics:summary().                  the flight recorder's series~n"
              "  sluice:tools().                            every live tool and its counters~n"
              "Stop the node with:~n"
              "  ~s~n~n",
              [Node, Cmd("remote_console"), Cmd("stop")]).

%%% The summary table

%% @doc Prints the summary table of the runs.
-spec print_summary([sluice_demo_service:result()]) -> ok.
print_summary(Results) ->
    io:format("~-34s~s~n", [summary, [io_lib:format("~16s", [M]) || #{mode := M} <- Results]]),
    _ = [io:format("  ~-32s~s~n", [Label, [io_lib:format("~16s", [V]) || V <- Vs]])
         || {Label, Vs} <- sluice_demo_report:summary_rows(Results)],
    ok.
