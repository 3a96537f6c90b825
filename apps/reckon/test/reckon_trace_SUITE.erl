%% Common Test suite of reckon_trace: a known workload is traced into a test
%% io server (a process that collects io requests), and the lines that come
%% out are checked exactly (without their time and pid prefix).
%%
%% How return traces count: every event is one line and counts toward the
%% limit, a call and its return alike (return_traces_count_toward_the_limit).
-module(reckon_trace_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2, end_per_testcase/2]).
-export([absolute_limit_gives_n_lines/1, return_traces_count_toward_the_limit/1,
         shell_fun_match_spec/1, throttle_reports_each_window/1, windowed_stop_trips/1,
         cleanup_after_limit/1, cleanup_after_clear/1, cleanup_after_caller_dies/1,
         next_call_replaces/1, message_ping_pong/1, records_by_name/1, truncation_caps/1,
         dangerous_specs_refused/1, bad_arguments/1, slow_io_server_drops/1,
         options/1, format_recon_messages/1, session_path/1, owner_killed/1,
         upgrade_keeps_the_trace/1, without_sluice/1]).
-export([work/1, other/1, shared/1, work_local/1]).

-record(point, {x :: term(), y :: term()}).

all() ->
    [absolute_limit_gives_n_lines, return_traces_count_toward_the_limit, shell_fun_match_spec,
     throttle_reports_each_window, windowed_stop_trips, cleanup_after_limit,
     cleanup_after_clear, cleanup_after_caller_dies, next_call_replaces, message_ping_pong,
     records_by_name, truncation_caps, dangerous_specs_refused, bad_arguments,
     slow_io_server_drops, options, format_recon_messages, session_path, owner_killed,
     upgrade_keeps_the_trace, without_sluice].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(reckon),
    Config.

end_per_suite(_Config) ->
    ok.

init_per_testcase(_Case, Config) ->
    Config.

end_per_testcase(_Case, _Config) ->
    ok = reckon_trace:clear(),
    _ = erlang:trace_pattern({?MODULE, '_', '_'}, false, [global]),
    _ = erlang:trace_pattern({?MODULE, '_', '_'}, false, [local]),
    ok.

%%% The workload

work(X) -> X.
other(X) -> X.
shared(X) -> X.
work_local(X) -> [double(X)].
double(X) -> 2 * X.

%% A process that calls work(I) for I in 1..N each time it gets `{go, N}'.
worker() ->
    spawn(fun Loop() ->
                  receive
                      {go, From, N} -> _ = [?MODULE:work(I) || I <- lists:seq(1, N)],
                                       From ! {done, self()}, Loop();
                      {apply, From, F} -> F(), From ! {done, self()}, Loop()
                  end
          end).

run(Worker, N) ->
    Worker ! {go, self(), N},
    receive {done, Worker} -> ok end.

run_fun(Worker, F) ->
    Worker ! {apply, self(), F},
    receive {done, Worker} -> ok end.

%%% The test io server

io_server(Delay) ->
    spawn(fun() -> io_loop(Delay, []) end).

io_loop(Delay, Acc) ->
    receive
        {io_request, From, ReplyAs, Req} ->
            _ = Delay > 0 andalso timer:sleep(Delay),
            Chars = chars(Req),
            From ! {io_reply, ReplyAs, ok},
            io_loop(Delay, [Chars | Acc]);
        {get, From} ->
            From ! {output, unicode:characters_to_binary(lists:reverse(Acc))},
            io_loop(Delay, Acc)
    end.

chars({put_chars, _Enc, Chars}) -> Chars;
chars({put_chars, _Enc, M, F, A}) -> apply(M, F, A);
chars({put_chars, Chars}) -> Chars;
chars(_) -> [].

output(Io) ->
    Io ! {get, self()},
    receive {output, Bin} -> Bin end.

%% The lines written so far, each without its "HH:MM:SS.micro <pid> " prefix.
lines(Io) ->
    [strip(L) || L <- binary:split(output(Io), <<"\n">>, [global, trim_all])].

strip(Line) ->
    case re:run(Line, "^[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6} <[0-9.]+> (.*)$",
                [{capture, all_but_first, binary}]) of
        {match, [Rest]} -> Rest;
        nomatch -> Line
    end.

%% Waits for the trace's last line (`... tracing stopped'): the lines before it.
until_stopped(Io) ->
    until_stopped(Io, 500).

until_stopped(Io, 0) ->
    ct:fail({never_stopped, lines(Io)});
until_stopped(Io, Tries) ->
    Lines = lines(Io),
    case lists:reverse(Lines) of
        [Last | Before] ->
            case binary:match(Last, <<"tracing stopped">>) of
                nomatch -> timer:sleep(20), until_stopped(Io, Tries - 1);
                _ -> {lists:reverse(Before), Last}
            end;
        [] ->
            timer:sleep(20), until_stopped(Io, Tries - 1)
    end.

wait_owner_gone() ->
    wait_owner_gone(250).

wait_owner_gone(0) -> ct:fail(owner_still_running);
wait_owner_gone(N) ->
    case whereis(reckon_trace_owner) of
        undefined -> ok;
        _ -> timer:sleep(20), wait_owner_gone(N - 1)
    end.

calls_lines(Ns) ->
    [iolist_to_binary(io_lib:format("reckon_trace_SUITE:work(~b)", [N])) || N <- Ns].

shell_fun(Text) ->
    {ok, Tokens, _} = erl_scan:string(Text),
    {ok, [Expr]} = erl_parse:parse_exprs(Tokens),
    {value, Fun, _} = erl_eval:expr(Expr, []),
    Fun.

%%% Limits

absolute_limit_gives_n_lines(_Config) ->
    Io = io_server(0),
    W = worker(),
    1 = reckon_trace:calls({?MODULE, work, 1}, 5, [{io_server, Io}, {pid, W}]),
    run(W, 20),
    {Lines, Last} = until_stopped(Io),
    ?assertEqual(calls_lines(lists:seq(1, 5)), Lines),
    ?assertEqual(<<"reckon_trace: limit of 5 events reached, tracing stopped">>, Last).

%% Returns count: a call and its return are two events, two lines.
return_traces_count_toward_the_limit(_Config) ->
    Io = io_server(0),
    W = worker(),
    1 = reckon_trace:calls({?MODULE, work, return_trace}, 5, [{io_server, Io}, {pid, W}]),
    run(W, 20),
    {Lines, _} = until_stopped(Io),
    ?assertEqual([<<"reckon_trace_SUITE:work(1)">>, <<"reckon_trace_SUITE:work/1 --> 1">>,
                  <<"reckon_trace_SUITE:work(2)">>, <<"reckon_trace_SUITE:work/1 --> 2">>,
                  <<"reckon_trace_SUITE:work(3)">>], Lines).

shell_fun_match_spec(_Config) ->
    Io = io_server(0),
    W = worker(),
    Fun = shell_fun("fun([X]) when X rem 3 =:= 0 -> return_trace() end."),
    1 = reckon_trace:calls({?MODULE, work, Fun}, 4, [{io_server, Io}, {pid, W}]),
    run(W, 20),
    {Lines, _} = until_stopped(Io),
    %% The match spec's rejections do not count: exactly 4 accepted events.
    ?assertEqual([<<"reckon_trace_SUITE:work(3)">>, <<"reckon_trace_SUITE:work/1 --> 3">>,
                  <<"reckon_trace_SUITE:work(6)">>, <<"reckon_trace_SUITE:work/1 --> 6">>], Lines),
    %% exception_trace() too, and a compiled fun is refused.
    Io2 = io_server(0),
    ExcFun = shell_fun("fun([X]) when X > 2 -> exception_trace() end."),
    1 = reckon_trace:calls({?MODULE, double, ExcFun}, 2, [{io_server, Io2}, {pid, W},
                                                          {scope, local}]),
    run_fun(W, fun() -> catch ?MODULE:work_local(a) end),
    {Lines2, _} = until_stopped(Io2),
    ?assertMatch([<<"reckon_trace_SUITE:double(a)">>,
                  <<"reckon_trace_SUITE:double/1 error badarith">>], Lines2),
    ?assertError(badarg, reckon_trace:calls({?MODULE, work, fun(_) -> ok end}, 2)).

%% A burst of 12 calls in each of 4 windows of 5 events: 5 lines and
%% "7 events suppressed" per window, in order, exactly.
throttle_reports_each_window(_Config) ->
    Io = io_server(0),
    W = worker(),
    Ms = 300,
    1 = reckon_trace:calls({?MODULE, work, 1}, {5, Ms},
                           [{io_server, Io}, {pid, W}, {limit, throttle}]),
    T0 = erlang:monotonic_time(millisecond),
    lists:foreach(fun(K) ->
                          sleep_until(T0 + K * Ms + Ms div 4),
                          run(W, 12)
                  end, lists:seq(0, 3)),
    sleep_until(T0 + 4 * Ms + Ms div 2),
    ok = reckon_trace:clear(),
    {Lines, Last} = until_stopped(Io),
    Window = calls_lines(lists:seq(1, 5)) ++ [<<"7 events suppressed">>],
    ?assertEqual(lists:append(lists:duplicate(4, Window)), Lines),
    ?assertEqual(<<"reckon_trace: cleared, tracing stopped">>, Last).

sleep_until(T) ->
    timer:sleep(max(0, T - erlang:monotonic_time(millisecond))).

%% Stop mode with a rate: events pass while a window holds at most N; the
%% first beyond ends the trace.
windowed_stop_trips(_Config) ->
    Io = io_server(0),
    W = worker(),
    1 = reckon_trace:calls({?MODULE, work, 1}, {3, 60000}, [{io_server, Io}, {pid, W}]),
    run(W, 10),
    {Lines, Last} = until_stopped(Io),
    ?assertEqual(calls_lines([1, 2, 3]), Lines),
    ?assertEqual(<<"reckon_trace: more than 3 events in 60000 ms, tracing stopped">>, Last),
    ?assertEqual({error, {bad_option, limit}},
                 reckon_trace:calls({?MODULE, work, 1}, 3, [{limit, throttle}])).

%%% Cleanup and isolation

%% Someone else's trace: a pattern on other/1 and on shared/1 (which our
%% spec also names), and a process traced by this test process.
others() ->
    1 = erlang:trace_pattern({?MODULE, other, 1}, true, [global]),
    1 = erlang:trace_pattern({?MODULE, shared, 1}, true, [local]),
    Traced = spawn(fun() -> receive stop -> ok end end),
    1 = erlang:trace(Traced, true, [send]),
    Traced.

assert_clean(Traced, Ws) ->
    wait_owner_gone(),
    ?assertEqual({traced, false}, erlang:trace_info({?MODULE, work, 1}, traced)),
    ?assertEqual({traced, false}, erlang:trace_info({?MODULE, work_local, 1}, traced)),
    [?assertEqual({flags, []}, erlang:trace_info(W, flags)) || W <- Ws],
    [?assertEqual({tracer, []}, erlang:trace_info(W, tracer)) || W <- Ws],
    ?assertEqual({flags, []}, erlang:trace_info(new, flags)),
    ?assertEqual([], [P || P <- erlang:processes(), P =/= Traced,
                           {flags, [_ | _]} <- [erlang:trace_info(P, flags)]]),
    %% Someone else's trace is untouched.
    ?assertEqual({traced, global}, erlang:trace_info({?MODULE, other, 1}, traced)),
    ?assertEqual({traced, local}, erlang:trace_info({?MODULE, shared, 1}, traced)),
    ?assertEqual({flags, [send]}, erlang:trace_info(Traced, flags)),
    Self = self(),
    ?assertEqual({tracer, Self}, erlang:trace_info(Traced, tracer)),
    ok.

%% {?MODULE, '_', '_'} names work/1, other/1, shared/1...: those traced
%% already are left out of the count and alone.
start_all(Io, Max) ->
    Exported = length(?MODULE:module_info(exports)),
    Count = reckon_trace:calls({?MODULE, '_', '_'}, Max, [{io_server, Io}]),
    ?assertEqual(Exported - 2, Count),
    ?assertEqual({flags, [call]}, erlang:trace_info(new, flags)),
    ok.

cleanup_after_limit(_Config) ->
    Traced = others(),
    Io = io_server(0),
    W = worker(),
    ok = start_all(Io, 3),
    run(W, 10),
    {Lines, _} = until_stopped(Io),
    ?assertEqual(calls_lines([1, 2, 3]), Lines),
    assert_clean(Traced, [W]).

cleanup_after_clear(_Config) ->
    Traced = others(),
    Io = io_server(0),
    W = worker(),
    ok = start_all(Io, 1000),
    New = worker(),
    ?assertMatch({tracer, {reckon_tracer, _}}, erlang:trace_info(New, tracer)),
    run(W, 2),
    ok = reckon_trace:clear(),
    {Lines, Last} = until_stopped(Io),
    ?assertEqual(calls_lines([1, 2]), [L || L <- Lines, binary:match(L, <<"work(">>) =/= nomatch]),
    ?assertEqual(<<"reckon_trace: cleared, tracing stopped">>, Last),
    assert_clean(Traced, [W, New]).

cleanup_after_caller_dies(_Config) ->
    Traced = others(),
    Io = io_server(0),
    W = worker(),
    Self = self(),
    Starter = spawn(fun() ->
                            Self ! {started, reckon_trace:calls({?MODULE, work, 1}, 1000,
                                                                [{io_server, Io}])},
                            receive never -> ok end
                    end),
    receive {started, 1} -> ok end,
    ?assertMatch({tracer, {reckon_tracer, _}}, erlang:trace_info(W, tracer)),
    exit(Starter, kill),
    {_, Last} = until_stopped(Io),
    ?assertEqual(<<"reckon_trace: the process that started the trace exited, tracing stopped">>,
                 Last),
    assert_clean(Traced, [W]).

next_call_replaces(_Config) ->
    Io = io_server(0),
    W = worker(),
    1 = reckon_trace:calls({?MODULE, other, 1}, 100, [{io_server, Io}, {pid, W}]),
    1 = reckon_trace:calls({?MODULE, work, 1}, 100, [{io_server, Io}, {pid, W}]),
    ?assertEqual({traced, false}, erlang:trace_info({?MODULE, other, 1}, traced)),
    ?assertEqual({traced, global}, erlang:trace_info({?MODULE, work, 1}, traced)),
    ok = reckon_trace:clear(),
    ?assertEqual({traced, false}, erlang:trace_info({?MODULE, work, 1}, traced)),
    ?assertEqual({flags, []}, erlang:trace_info(W, flags)).

%%% Messages

message_ping_pong(_Config) ->
    Io = io_server(0),
    Pong = spawn(fun PongLoop() -> receive {ping, From, N} -> From ! {pong, N}, PongLoop() end end),
    Ping = spawn(fun() ->
                         receive go -> ok end,
                         [begin Pong ! {ping, self(), N}, receive {pong, N} -> ok end end
                          || N <- lists:seq(1, 5)]
                 end),
    1 = reckon_trace:messages(Ping, 5, [{io_server, Io}]),
    Ping ! go,
    {Lines, _} = until_stopped(Io),
    P = list_to_binary(pid_to_list(Ping)),
    Q = list_to_binary(pid_to_list(Pong)),
    ?assertEqual([<<"< go">>,
                  <<" > ", Q/binary, ": {ping,", P/binary, ",1}">>,
                  <<"< {pong,1}">>,
                  <<" > ", Q/binary, ": {ping,", P/binary, ",2}">>,
                  <<"< {pong,2}">>], Lines),
    ?assert(lists:member(erlang:trace_info(Ping, flags), [{flags, []}, undefined])).

%%% Output

records_by_name(_Config) ->
    Io = io_server(0),
    W = worker(),
    Self = self(),
    %% Imported by a process that then crashes: the definitions stay.
    {Pid, Ref} = spawn_monitor(fun() -> Self ! {imported, reckon_rec:import(?MODULE)},
                                        exit(crash) end),
    receive {imported, Imported} -> ?assertEqual([{imported, ?MODULE, point, 3}], Imported) end,
    receive {'DOWN', Ref, process, Pid, crash} -> ok end,
    ?assertEqual([{{point, 3}, ?MODULE, [x, y]}], reckon_rec:get_list()),
    1 = reckon_trace:calls({?MODULE, work, 1}, 2, [{io_server, Io}, {pid, W}]),
    run_fun(W, fun() -> ?MODULE:work(#point{x = 1, y = [a]}), ?MODULE:work({point, 1}) end),
    {Lines, _} = until_stopped(Io),
    ?assertEqual([<<"reckon_trace_SUITE:work(#point{x = 1,y = [a]})">>,
                  <<"reckon_trace_SUITE:work({point,1})">>], Lines),
    ok = reckon_rec:clear(),
    ?assertEqual([], reckon_rec:get_list()),
    Io2 = io_server(0),
    1 = reckon_trace:calls({?MODULE, work, 1}, 1, [{io_server, Io2}, {pid, W}]),
    run_fun(W, fun() -> ?MODULE:work(#point{x = 1, y = 2}) end),
    ?assertEqual({[<<"reckon_trace_SUITE:work({point,1,2})">>], <<"reckon_trace: limit of 1 events reached, tracing stopped">>},
                 until_stopped(Io2)).

truncation_caps(_Config) ->
    Io = io_server(0),
    W = worker(),
    1 = reckon_trace:calls({?MODULE, work, 1}, 3, [{io_server, Io}, {pid, W}]),
    Map = maps:from_list([{K, K} || K <- lists:seq(1, 50)]),
    run_fun(W, fun() ->
                       ?MODULE:work(lists:seq(1, 100)),
                       ?MODULE:work(Map),
                       ?MODULE:work(lists:foldl(fun(_, A) -> [A] end, deep, lists:seq(1, 25)))
               end),
    {[List, MapLine, Deep], _} = until_stopped(Io),
    %% Depth 20: a long list shows its first 19 elements, then |...
    ?assertEqual(iolist_to_binary(["reckon_trace_SUITE:work([",
                                   lists:join(",", [integer_to_list(I) || I <- lists:seq(1, 19)]),
                                   "|...])"]), List),
    ?assertMatch({_, _}, binary:match(MapLine, <<"...}">>)),
    ?assert(byte_size(MapLine) < 400),
    ?assertMatch({_, _}, binary:match(Deep, <<"...">>)),
    %% The byte cap cuts a line visibly.
    Io2 = io_server(0),
    1 = reckon_trace:calls({?MODULE, work, 1}, 1, [{io_server, Io2}, {pid, W}, {max_bytes, 100},
                                                   {max_depth, 1000}]),
    run_fun(W, fun() -> ?MODULE:work(lists:duplicate(200, abcdef)) end),
    {[Cut], _} = until_stopped(Io2),
    ?assertMatch({match, _}, re:run(Cut, "\\.\\.\\.\\([0-9]+ bytes cut\\)$")),
    ?assert(byte_size(output(Io2)) < 300).

dangerous_specs_refused(_Config) ->
    Refused = [{'_', '_', '_'}, {'_', '_', 1}, {reckon_trace, calls, 2}, {reckon_tracer, '_', '_'},
               {reckon_trace_fmt, '_', '_'}, {sluice_box, post, 2}, {io_lib_format, fwrite, 2},
               {group, '_', '_'}, {erlang, '_', '_'}, {lists, '_', 2}, {io, '_', '_'},
               {io_lib, '_', '_'}],
    lists:foreach(fun(TSpec) ->
                          ?assertMatch({error, {dangerous_spec, TSpec, [_ | _]}},
                                       reckon_trace:calls(TSpec, 10))
                  end, Refused),
    %% One refused spec in a list refuses the call; nothing is set.
    ?assertMatch({error, {dangerous_spec, {lists, '_', '_'}, _}},
                 reckon_trace:calls([{?MODULE, work, 1}, {lists, '_', '_'}], 10)),
    ?assertEqual({traced, false}, erlang:trace_info({?MODULE, work, 1}, traced)),
    ?assertEqual(undefined, whereis(reckon_trace_owner)),
    %% Bounded patterns on those modules are allowed.
    ?assertEqual(1, reckon_trace:calls({lists, seq, 2}, 10, [{pid, self()}, {io_server, io_server(0)}])).

bad_arguments(_Config) ->
    ?assertError(badarg, reckon_trace:calls(nope, 10)),
    ?assertError(badarg, reckon_trace:calls([], 10)),
    ?assertError(badarg, reckon_trace:calls({"m", f, 1}, 10)),
    ?assertError(badarg, reckon_trace:calls({?MODULE, work, [bad_ms]}, 10)),
    ?assertError(badarg, reckon_trace:calls({?MODULE, work, 1}, 0)),
    ?assertError(badarg, reckon_trace:calls({?MODULE, work, 1}, {1, 0})),
    ?assertError(badarg, reckon_trace:messages(42, 1, [])),
    %% A name of no process names no process.
    ?assertEqual(0, reckon_trace:messages(nope_not_registered_42, 1, [])),
    ok = reckon_trace:clear(),
    ?assertError(badarg, reckon_trace:format(nope)),
    ?assertEqual({error, {bad_option, bogus}}, reckon_trace:calls({?MODULE, work, 1}, 1, [{bogus, 1}])),
    ?assertEqual({error, {bad_option, scope}}, reckon_trace:calls({?MODULE, work, 1}, 1, [{scope, x}])),
    ?assertEqual({error, {bad_option, pid}}, reckon_trace:calls({?MODULE, work, 1}, 1, [{pid, 42}])),
    ?assertEqual({error, {bad_option, options}}, reckon_trace:calls({?MODULE, work, 1}, 1, nope)),
    ?assertEqual({error, {bad_option, scope}}, reckon_trace:messages(self(), 1, [{scope, local}])),
    ?assertEqual(undefined, whereis(reckon_trace_owner)).

%% A slow io server (5 ms a request): the box between tracer and formatter
%% drops the oldest and counts; every accepted event is printed or counted
%% as dropped; no mailbox grows and the node's memory stays flat.
slow_io_server_drops(_Config) ->
    Io = io_server(5),
    W = worker(),
    N = 20000,
    Before = erlang:memory(total),
    1 = reckon_trace:calls({?MODULE, work, 1}, N, [{io_server, Io}, {pid, W}, {buffer, 50}]),
    Owner = whereis(reckon_trace_owner),
    {links, Links} = process_info(Owner, links),
    Sampler = spawn_link(fun() -> sample([P || P <- Links, is_pid(P)], 0, 0) end),
    run(W, N),
    {Lines, _} = until_stopped(Io),
    Sampler ! {stop, self()},
    {PeakQueue, PeakMem} = receive {peak, Q, M} -> {Q, M} end,
    Dropped = lists:sum([binary_to_integer(D)
                         || L <- Lines,
                            {match, [D]} <- [re:run(L, "^([0-9]+) events dropped \\(output too slow\\)$",
                                                    [{capture, all_but_first, binary}])]]),
    Events = [L || L <- Lines, binary:match(L, <<"work(">>) =/= nomatch],
    ct:pal("printed ~b, dropped ~b, peak queue ~b, memory ~b -> peak ~b",
           [length(Events), Dropped, PeakQueue, Before, PeakMem]),
    ?assert(Dropped > 0),
    ?assertEqual(N, length(Events) + Dropped),
    ?assert(PeakQueue =< 100),
    ?assert(PeakMem - Before < 64 * 1024 * 1024).

sample(Pids, Q, M) ->
    receive
        {stop, From} -> From ! {peak, Q, M}
    after 2 ->
            Qs = [L || P <- Pids, {message_queue_len, L} <- [process_info(P, message_queue_len)]],
            sample(Pids, lists:max([Q | Qs]), max(M, erlang:memory(total)))
    end.

options(_Config) ->
    W = worker(),
    %% {args, arity}, {timestamp, trace}, a formatter fun.
    Io = io_server(0),
    1 = reckon_trace:calls({?MODULE, work, 1}, 1, [{io_server, Io}, {pid, W}, {args, arity}]),
    run(W, 3),
    ?assertEqual({[<<"reckon_trace_SUITE:work/1">>], <<"reckon_trace: limit of 1 events reached, tracing stopped">>},
                 until_stopped(Io)),
    Io2 = io_server(0),
    Fmt = fun(Msg) -> io_lib:format("~p~n", [setelement(2, Msg, pid)]) end,
    1 = reckon_trace:calls({?MODULE, work, 1}, 1, [{io_server, Io2}, {pid, W}, {timestamp, trace},
                                                   {formatter, Fmt}]),
    run(W, 3),
    {[Line], _} = until_stopped(Io2),
    ?assertMatch({match, _}, re:run(Line, "^\\{trace_ts,pid,call,\\{reckon_trace_SUITE,work,\\[1\\]\\},\\{[0-9]+,[0-9]+,[0-9]+\\}\\}$")),
    %% {scope, local} traces a local function; return_to.
    Io3 = io_server(0),
    1 = reckon_trace:calls({?MODULE, double, 1}, 2, [{io_server, Io3}, {pid, [W]}, {scope, local},
                                                     return_to]),
    run_fun(W, fun() -> ?MODULE:work_local(4) end),
    ?assertMatch({[<<"reckon_trace_SUITE:double(4)">>, <<" '--> reckon_trace_SUITE:work_local/1">>], _},
                 until_stopped(Io3)),
    %% Pids by name and string.
    register(reckon_trace_test_worker, W),
    Io4 = io_server(0),
    1 = reckon_trace:calls({?MODULE, work, 1}, 1, [{io_server, Io4},
                                                   {pid, [reckon_trace_test_worker, pid_to_list(W)]}]),
    run(W, 1),
    ?assertMatch({[<<"reckon_trace_SUITE:work(1)">>], _}, until_stopped(Io4)).

format_recon_messages(_Config) ->
    Pid = self(),
    P = pid_to_list(Pid),
    Check = fun(Msg, Want) ->
                    Line = iolist_to_binary(reckon_trace:format(Msg)),
                    ?assertEqual(<<(list_to_binary(Want))/binary>>, strip(string:trim(Line, trailing, "\n")))
            end,
    Check({trace, Pid, call, {m, f, [1, "a"]}}, "m:f(1, \"a\")"),
    Check({trace, Pid, call, {m, f, 2}}, "m:f/2"),
    Check({trace, Pid, return_from, {m, f, 2}, ok}, "m:f/2 --> ok"),
    Check({trace, Pid, exception_from, {m, f, 2}, {error, badarg}}, "m:f/2 error badarg"),
    Check({trace, Pid, 'receive', hello}, "< hello"),
    Check({trace_ts, Pid, send, hi, Pid, {1, 2, 3}}, " > " ++ P ++ ": hi").

%% Where the VM has trace sessions, the trace is set and removed through
%% them. On OTP 25 a stand-in `trace' module (reckon_trace_fake_session)
%% runs that path: the same lines come out, and destroying the session
%% leaves nothing behind.
session_path(_Config) ->
    persistent_term:put({reckon_trace_session, module}, reckon_trace_fake_session),
    try
        ?assert(reckon_trace_session:available()),
        Io = io_server(0),
        W = worker(),
        1 = reckon_trace:calls({?MODULE, work, 1}, 3, [{io_server, Io}, {pid, W}]),
        ?assertEqual(1, persistent_term:get({reckon_trace_fake_session, created})),
        run(W, 10),
        {Lines, _} = until_stopped(Io),
        ?assertEqual(calls_lines([1, 2, 3]), Lines),
        wait_owner_gone(),
        ?assertEqual({traced, false}, erlang:trace_info({?MODULE, work, 1}, traced)),
        ?assertEqual({flags, []}, erlang:trace_info(W, flags))
    after
        _ = persistent_term:erase({reckon_trace_session, module}),
        _ = persistent_term:erase({reckon_trace_fake_session, created})
    end,
    ?assertNot(reckon_trace_session:available()).

%% The owner killed (not by reckon_trace): the tracer state, which monitors
%% it, ends the trace at once, so traced processes lose the tracer at their
%% next event and nothing is printed; the next call (here clear/0) removes
%% the patterns the dead owner had set, and only those.
owner_killed(_Config) ->
    Traced = others(),
    Io = io_server(0),
    W = worker(),
    1 = reckon_trace:calls({?MODULE, work, 1}, 100, [{io_server, Io}, {pid, W}]),
    exit(whereis(reckon_trace_owner), kill),
    wait_owner_gone(),
    run(W, 5),
    ?assertEqual({flags, []}, erlang:trace_info(W, flags)),
    ?assertEqual([], [L || L <- lines(Io), binary:match(L, <<"work(">>) =/= nomatch]),
    ?assertEqual({traced, global}, erlang:trace_info({?MODULE, work, 1}, traced)),
    ok = reckon_trace:clear(),
    assert_clean(Traced, [W]).

%% A second copy of reckon (beams and libraries, as reckon-99.0.0) is
%% loaded while a trace runs: the new reckon_tracer library takes the
%% tracer state over (nif_glue's upgrade callback), and the trace goes on,
%% its count intact, through the reload and the purge of the old code.
upgrade_keeps_the_trace(Config) ->
    Io = io_server(0),
    W = worker(),
    1 = reckon_trace:calls({?MODULE, work, 1}, 6, [{io_server, Io}, {pid, W}]),
    run(W, 2),
    OrigEbin = filename:join(code:lib_dir(reckon), "ebin"),
    try
        Lib = filename:join(?config(priv_dir, Config), "reckon-99.0.0"),
        [ok = filelib:ensure_dir(filename:join([Lib, Sub, "x"])) || Sub <- ["ebin", "priv"]],
        From = code:lib_dir(reckon),
        [{ok, _} = file:copy(F, filename:join([Lib, "ebin", filename:basename(F)]))
         || F <- filelib:wildcard(filename:join([From, "ebin", "*"]))],
        {ok, _} = file:copy(filename:join([From, "priv", "reckon_tracer.so"]),
                            filename:join([Lib, "priv", "reckon_tracer.so"])),
        true = code:replace_path(reckon, filename:join(Lib, "ebin")),
        ?assertEqual({module, reckon_tracer}, code:load_file(reckon_tracer)),
        run_fun(W, fun() -> ?MODULE:work(3), ?MODULE:work(4) end),
        _ = code:purge(reckon_tracer),
        run_fun(W, fun() -> [?MODULE:work(I) || I <- lists:seq(5, 9)] end)
    after
        true = code:replace_path(reckon, OrigEbin),
        {module, reckon_tracer} = code:load_file(reckon_tracer),
        _ = code:purge(reckon_tracer)
    end,
    {Lines, Last} = until_stopped(Io),
    ?assertEqual(calls_lines(lists:seq(1, 6)), Lines),
    ?assertEqual(<<"reckon_trace: limit of 6 events reached, tracing stopped">>, Last).

%% On a node without the sluice application, reckon starts (sluice is an
%% optional application of it) and reckon_trace says what is missing.
without_sluice(_Config) ->
    OtpLib = code:lib_dir(),
    Sluice = filename:join(code:lib_dir(sluice), "ebin"),
    Paths = [D || D <- code:get_path(), not lists:prefix(OtpLib, D), D =/= Sluice],
    {ok, Peer, _} = peer:start(#{connection => standard_io, args => ["-pa" | Paths]}),
    try
        ?assertEqual(non_existing, peer:call(Peer, code, which, [sluice_box])),
        ?assertMatch({ok, _}, peer:call(Peer, application, ensure_all_started, [reckon])),
        ?assertMatch({error, {sluice_not_available, _}},
                     peer:call(Peer, reckon_trace, calls, [{?MODULE, work, 1}, 1]))
    after
        peer:stop(Peer)
    end.
