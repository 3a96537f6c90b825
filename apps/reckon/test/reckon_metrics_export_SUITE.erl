%% Common Test suite of what reckon_metrics hands to other tools: the
%% `/metrics' endpoint, checked with the real tools a user points at it
%% (`promtool check metrics' on what it serves, and a real Prometheus server,
%% Debian's `prometheus' package, that scrapes it and answers a query for a
%% value the test set), and telemetry events, received by a `telemetry'
%% module the test loads (the real library is on hex, which is not reachable
%% here; the module has its `execute/3').
-module(reckon_metrics_export_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, end_per_testcase/2]).
-export([off_unless_configured/1, serves_metrics_on_loopback/1, bad_http_options/1,
         stops_with_the_sampler/1, prometheus_scrapes_the_endpoint/1,
         telemetry_tick_events/1, no_telemetry_no_events/1, sluice_tools_recorded/1]).

%% A case passes wrong options on purpose.
-dialyzer({nowarn_function, [bad_http_options/1]}).

all() ->
    [off_unless_configured, serves_metrics_on_loopback, bad_http_options,
     stops_with_the_sampler, prometheus_scrapes_the_endpoint,
     telemetry_tick_events, no_telemetry_no_events, sluice_tools_recorded].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(reckon),
    {ok, _} = application:ensure_all_started(inets),
    Config.

end_per_suite(_Config) ->
    ok.

end_per_testcase(_Case, _Config) ->
    ok = reckon_metrics:stop(),
    unload_telemetry(),
    ok.

%% Sampling alone opens no port.
off_unless_configured(_Config) ->
    ok = reckon_metrics:start(#{}),
    ?assertEqual(off, reckon_metrics:endpoint()).

%% Port 0 takes a port the OS picks; the endpoint listens on 127.0.0.1
%% only, answers GET and HEAD on /metrics in the text format, 404
%% elsewhere, and its text passes promtool.
serves_metrics_on_loopback(Config) ->
    {ok, G} = reckon_metrics:gauge(http_suite_level),
    ok = reckon_metrics:set(G, 7),
    ok = reckon_metrics:start(#{http_port => 0}),
    #{ip := {127, 0, 0, 1}, port := Port} = reckon_metrics:endpoint(),
    ?assert(Port > 0),
    {ok, {{_, 200, _}, Headers, Body}} = get(Port, "/metrics"),
    ?assertEqual("text/plain; version=0.0.4; charset=utf-8",
                 proplists:get_value("content-type", Headers)),
    ?assertMatch({_, _}, binary:match(Body, <<"\nhttp_suite_level 7.0\n">>), Body),
    File = filename:join(?config(priv_dir, Config), "served.prom"),
    ok = file:write_file(File, Body),
    Out = os:cmd("promtool check metrics < " ++ File ++ " 2>&1; echo exit=$?"),
    ?assertEqual("exit=0", lists:last(string:lexemes(Out, "\n")), Out),
    ?assertMatch({ok, {{_, 404, _}, _, _}}, get(Port, "/")),
    ?assertMatch({ok, {{_, 200, _}, _, <<>>}},
                 httpc:request(head, {url(Port, "/metrics"), []}, [], [{body_format, binary}])),
    %% Not reachable on another address of the host.
    case non_loopback_address() of
        undefined -> ok;
        Other ->
            ?assertMatch({error, _},
                         gen_tcp:connect(Other, Port, [binary, {active, false}], 2000))
    end.

bad_http_options(_Config) ->
    ?assertEqual({error, {bad_option, http_port}}, reckon_metrics:start(#{http_port => 70000})),
    ?assertEqual({error, {bad_option, http_port}}, reckon_metrics:start(#{http_port => "80"})),
    ?assertEqual({error, {bad_option, http_ip}},
                 reckon_metrics:start(#{http_port => 0, http_ip => localhost})),
    %% A port in use: the start fails with a reason, sampling stays off.
    {ok, Busy} = gen_tcp:listen(0, [{ip, {127, 0, 0, 1}}]),
    {ok, BusyPort} = inet:port(Busy),
    ?assertMatch({error, {http, _}}, reckon_metrics:start(#{http_port => BusyPort})),
    ?assertEqual(off, reckon_metrics:endpoint()),
    ok = gen_tcp:close(Busy).

%% Stopping the sampler closes the port; a restart without the option opens none.
stops_with_the_sampler(_Config) ->
    ok = reckon_metrics:start(#{http_port => 0}),
    #{port := Port} = reckon_metrics:endpoint(),
    ok = reckon_metrics:stop(),
    ?assertEqual(off, reckon_metrics:endpoint()),
    ?assertMatch({error, _}, gen_tcp:connect({127, 0, 0, 1}, Port, [], 2000)),
    ok = reckon_metrics:start(#{http_port => 0}),
    ok = reckon_metrics:start(#{}),
    ?assertEqual(off, reckon_metrics:endpoint()).

%% A real Prometheus server scrapes the endpoint every second; the value
%% of a user gauge and of a user counter, read back through Prometheus's
%% HTTP query API, are the ones the test set.
prometheus_scrapes_the_endpoint(Config) ->
    {ok, G} = reckon_metrics:gauge(<<"scrape_test_gauge">>, [{pool, "a"}]),
    ok = reckon_metrics:set(G, 42.5),
    {ok, C} = reckon_metrics:counter(scrape_test_events),
    ok = reckon_metrics:inc(C, 1234),
    ok = reckon_metrics:start(#{http_port => 0}),
    #{port := Port} = reckon_metrics:endpoint(),
    Dir = ?config(priv_dir, Config),
    PromPort = free_port(),
    Yml = filename:join(Dir, "prometheus.yml"),
    ok = file:write_file(Yml, io_lib:format(
        "global:~n  scrape_interval: 1s~n  scrape_timeout: 1s~n"
        "scrape_configs:~n  - job_name: reckon~n"
        "    static_configs:~n      - targets: ['127.0.0.1:~b']~n", [Port])),
    Cmd = io_lib:format("prometheus --config.file=~s --storage.tsdb.path=~s "
                        "--web.listen-address=127.0.0.1:~b > ~s 2>&1",
                        [Yml, filename:join(Dir, "tsdb"), PromPort,
                         filename:join(Dir, "prometheus.log")]),
    Prom = open_port({spawn, lists:flatten(Cmd)}, [exit_status]),
    try
        ?assertEqual(<<"42.5">>,
                     query_value(PromPort, "scrape_test_gauge{pool=\"a\",job=\"reckon\"}")),
        ?assertEqual(<<"1234">>, query_value(PromPort, "scrape_test_events_total")),
        %% A sampler series too: the node's process count is a positive number.
        Procs = binary_to_integer(query_value(PromPort,
                                              "erlang_vm_objects{type=\"process\"}")),
        ?assert(Procs > 0),
        %% Prometheus saw the target up.
        ?assertEqual(<<"1">>, query_value(PromPort, "up{job=\"reckon\"}"))
    after
        case erlang:port_info(Prom, os_pid) of
            {os_pid, OsPid} -> os:cmd("kill " ++ integer_to_list(OsPid));
            undefined -> ct:pal("prometheus exited: ~s", [log(Dir)])
        end,
        catch port_close(Prom)
    end.

%%% sluice's tools

%% While sluice runs, a breaker's counters are series of their increase
%% per second, its state a series of its level, its run times a
%% histogram of the recorder (µs), and /metrics gives them all live.
sluice_tools_recorded(_Config) ->
    {ok, _} = application:ensure_all_started(sluice),
    Name = recorded_breaker,
    ok = sluice_breaker:install(Name, #{run_times => true, strategy => {standard, 100, 60000},
                                        reset => manual}),
    ok = reckon_metrics:start(#{http_port => 0}),
    %% The first tick sees the breaker: no point for a counter yet.
    reckon_ct:wait_until(fun() -> reckon_metrics:history({sluice, breaker, Name, state}, 60) end),
    Before = sum_counts({sluice, breaker, Name, ok}),
    Runs = 20,
    _ = [ok = sluice_breaker:run(Name, fun() -> timer:sleep(2), ok end, sync)
         || _ <- lists:seq(1, Runs)],
    %% Every run shows, once, in the per-second increases of `ok'.
    reckon_ct:wait_until(fun() ->
                       case sum_counts({sluice, breaker, Name, ok}) - Before of
                           Runs -> [done];
                           _ -> []
                       end
               end),
    [#{mean := 0.0}] = lists:usort([maps:with([mean], P) || P <- reckon_metrics:history(
                                                                   {sluice, breaker, Name, state}, 60)]),
    {ok, H} = reckon_metrics:histogram({sluice, breaker, Name, run_us}, [],
                                       #{highest => 60000000}),
    #{count := Runs, min := Min} = reckon_metrics:percentiles(H),
    ?assert(Min >= 2000, Min),
    #{port := Port} = reckon_metrics:endpoint(),
    {ok, {{_, 200, _}, _, Body}} = get(Port, "/metrics"),
    Ok = iolist_to_binary(["sluice_breaker_ok_total{tool=\"recorded_breaker\"} ",
                           integer_to_list(Runs), "\n"]),
    ?assertMatch({_, _}, binary:match(Body, Ok), Body),
    ?assertMatch({_, _}, binary:match(Body, <<"sluice_breaker_run_seconds_count{tool=\"recorded_breaker\"} 20\n">>)),
    ok = sluice_breaker:remove(Name).

%% The sum of the per-second points of a series over the last minute.
sum_counts(Series) ->
    lists:sum([round(Mean * C) || #{mean := Mean, count := C} <- reckon_metrics:history(Series, 60)]).

%%% Telemetry

%% With a telemetry module loaded, every tick emits [reckon, metrics, tick]
%% with its duration, the points it recorded and those refused.
telemetry_tick_events(_Config) ->
    load_telemetry(self()),
    ok = reckon_metrics:start(#{}),
    [#{duration := D, points := P, refused := R} = M1, _] =
        [receive {telemetry, [reckon, metrics, tick], M, #{tick := T}} when T >= 0 -> M
         after 10000 -> ct:fail(no_tick)
         end || _ <- [1, 2]],
    ?assert(is_integer(D) andalso D >= 0, M1),
    ?assert(P >= 20, M1),
    ?assertEqual(0, R).

%% Without one, sampling goes on and nothing is sent anywhere.
no_telemetry_no_events(_Config) ->
    %% (Another suite of the same run may have loaded a test telemetry module.)
    unload_telemetry(),
    ?assertNot(erlang:function_exported(telemetry, execute, 3)),
    ok = reckon_metrics:start(#{}),
    wait_ticks(2),
    receive {telemetry, _, _, _} = Got -> ct:fail({unexpected, Got})
    after 0 -> ok
    end.

%% Loads a module `telemetry' whose execute/3 sends each event to `To'
%% (registered under the name reckon_telemetry_test).
load_telemetry(To) ->
    unload_telemetry(),
    true = register(reckon_telemetry_test, To),
    Forms = [{attribute, 1, module, telemetry},
             {attribute, 2, export, [{execute, 3}]},
             {function, 3, execute, 3,
              [{clause, 3, [{var, 3, 'E'}, {var, 3, 'M'}, {var, 3, 'D'}], [],
                [{op, 4, '!', {atom, 4, reckon_telemetry_test},
                  {tuple, 4, [{atom, 4, telemetry}, {var, 4, 'E'}, {var, 4, 'M'},
                              {var, 4, 'D'}]}}]}]}],
    {ok, telemetry, Bin} = compile:forms(Forms, []),
    {module, telemetry} = code:load_binary(telemetry, "telemetry.erl", Bin),
    ok.

unload_telemetry() ->
    _ = code:purge(telemetry),
    _ = code:delete(telemetry),
    _ = code:purge(telemetry),
    ok.

wait_ticks(N) ->
    Before = length(reckon_metrics:history({memory, total}, 60)),
    wait_ticks(Before + N, 100).

wait_ticks(_Want, 0) -> ct:fail(no_ticks);
wait_ticks(Want, Left) ->
    case length(reckon_metrics:history({memory, total}, 60)) >= Want of
        true -> ok;
        false -> timer:sleep(100), wait_ticks(Want, Left - 1)
    end.

%%% Helpers

log(Dir) ->
    case file:read_file(filename:join(Dir, "prometheus.log")) of
        {ok, Text} -> Text;
        {error, _} -> <<"(no log)">>
    end.

get(Port, Path) ->
    httpc:request(get, {url(Port, Path), []}, [{timeout, 10000}], [{body_format, binary}]).

url(Port, Path) ->
    "http://127.0.0.1:" ++ integer_to_list(Port) ++ Path.

free_port() ->
    {ok, S} = gen_tcp:listen(0, [{ip, {127, 0, 0, 1}}]),
    {ok, P} = inet:port(S),
    ok = gen_tcp:close(S),
    P.

non_loopback_address() ->
    {ok, Ifs} = inet:getifaddrs(),
    Addrs = [A || {_, Props} <- Ifs, {addr, A} <- Props, tuple_size(A) =:= 4,
                  element(1, A) =/= 127],
    case Addrs of
        [A | _] -> A;
        [] -> undefined
    end.

%% The value of the one sample `Query' gives, asked every 500 ms for at
%% most 60 s (Prometheus starts, then scrapes once a second).
query_value(PromPort, Query) ->
    query_value(PromPort, Query, 120).

query_value(_PromPort, Query, 0) ->
    ct:fail({no_sample, Query});
query_value(PromPort, Query, Left) ->
    Url = "http://127.0.0.1:" ++ integer_to_list(PromPort) ++ "/api/v1/query?query="
        ++ uri_string:quote(Query),
    Answer = httpc:request(get, {Url, []}, [{timeout, 5000}], [{body_format, binary}]),
    case sample(Answer) of
        {ok, Value} -> Value;
        none -> timer:sleep(500), query_value(PromPort, Query, Left - 1)
    end.

%% The value of a one-sample vector answer (a JSON body: the value is the
%% second element of `"value":[Time,"V"]').
sample({ok, {{_, 200, _}, _, Body}}) ->
    case re:run(Body, <<"\"result\":\\[\\{.*\"value\":\\[[0-9.]+,\"([^\"]+)\"\\]">>,
                [{capture, all_but_first, binary}]) of
        {match, [V]} -> {ok, V};
        nomatch -> none
    end;
sample(_) ->
    none.
