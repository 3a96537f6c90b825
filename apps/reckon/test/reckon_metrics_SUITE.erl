%% Common Test suite of reckon_metrics: user metrics (counters, gauges,
%% histograms and their encoded form), the recorder's bounds and tiers
%% through the NIF, and the sampler (values against what the VM reports,
%% the scheduler_wall_time flag as it was found, restarts that keep the
%% series). Every assertion is on values, none on time taken.
-module(reckon_metrics_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, end_per_testcase/2]).
-export([counters_gauges_histograms/1, striped_counter_from_many_processes/1,
         names_are_terms_and_make_no_atom/1, kinds_and_bounds/1, bad_arguments/1,
         series_cap_refuses_and_counts/1, minutes_keep_min_max_mean/1,
         sampler_records_vm_values/1, sampler_counts_new_processes/1,
         sampler_finds_long_queues/1, flag_off_restored/1, flag_on_kept/1,
         restart_keeps_series_and_flag/1, options_refused/1, file_rotated_and_read_back/1,
         file_survives_kill_9/1, prometheus_text_passes_promtool/1,
         sysmon_records_long_gc_and_schedule/1, sysmon_keeps_existing_monitor/1,
         encoded_histogram_read_by_hdrhistogram_py/1, upgrade_takes_over_recorder/1]).

%% These cases pass wrong arguments on purpose.
-dialyzer({nowarn_function, [bad_arguments/1, options_refused/1, kinds_and_bounds/1]}).

all() ->
    [counters_gauges_histograms, striped_counter_from_many_processes,
     names_are_terms_and_make_no_atom, kinds_and_bounds, bad_arguments,
     series_cap_refuses_and_counts, minutes_keep_min_max_mean,
     sampler_records_vm_values, sampler_counts_new_processes, sampler_finds_long_queues,
     flag_off_restored, flag_on_kept, restart_keeps_series_and_flag, options_refused,
     file_rotated_and_read_back, file_survives_kill_9, prometheus_text_passes_promtool,
     sysmon_records_long_gc_and_schedule, sysmon_keeps_existing_monitor,
     encoded_histogram_read_by_hdrhistogram_py, upgrade_takes_over_recorder].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(reckon),
    Config.

end_per_suite(_Config) ->
    ok.

end_per_testcase(_Case, _Config) ->
    ok = reckon_metrics:stop(),
    ok.

%%% User metrics

counters_gauges_histograms(_Config) ->
    {ok, C} = reckon_metrics:counter(requests, [{code, 200}]),
    ok = reckon_metrics:inc(C),
    ok = reckon_metrics:inc(C, 41),
    ?assertEqual(42, reckon_metrics:value(C)),
    %% The same name and labels give the same counter.
    {ok, C2} = reckon_metrics:counter(requests, [{code, 200}]),
    ok = reckon_metrics:inc(C2),
    ?assertEqual(43, reckon_metrics:value(C)),
    {ok, G} = reckon_metrics:gauge(temperature),
    ok = reckon_metrics:set(G, 20),
    ok = reckon_metrics:add(G, 1.5),
    ok = reckon_metrics:inc(G, -0.5),
    ?assertEqual(21.0, reckon_metrics:value(G)),
    {ok, H} = reckon_metrics:histogram(latency),
    [ok = reckon_metrics:observe(H, V) || V <- lists:seq(1, 1000)],
    P = reckon_metrics:percentiles(H),
    ?assertMatch(#{count := 1000, min := 1}, P),
    %% Two significant digits: within 1 % of the exact value.
    ?assert(abs(maps:get(p50, P) - 500) =< 5),
    ?assert(abs(maps:get(p99, P) - 990) =< 10),
    ?assertEqual(P, reckon_metrics:value(H)),
    Encoded = reckon_metrics:encode(H),
    %% HdrHistogram's compressed V2 cookie (0x1c849314), base64.
    ?assertMatch(<<"HISTF", _/binary>>, Encoded),
    <<16#1c849314:32, _/binary>> = base64:decode(Encoded).

striped_counter_from_many_processes(_Config) ->
    {ok, C} = reckon_metrics:counter(striped, []),
    {ok, H} = reckon_metrics:histogram(striped_hist),
    Self = self(),
    Pids = [spawn_link(fun() ->
                               [begin ok = reckon_metrics:inc(C), ok = reckon_metrics:observe(H, I)
                                end || I <- lists:seq(1, 5000)],
                               Self ! {done, self()}
                       end) || _ <- lists:seq(1, 8)],
    [receive {done, Pid} -> ok end || Pid <- Pids],
    ?assertEqual(40000, reckon_metrics:value(C)),
    ?assertMatch(#{count := 40000, min := 1}, reckon_metrics:percentiles(H)).

names_are_terms_and_make_no_atom(_Config) ->
    Atoms = erlang:system_info(atom_count),
    Name = {<<"svc">>, "a name never seen as an atom 7f3a", 12},
    Labels = #{"path" => <<"/x">>},
    {ok, C} = reckon_metrics:counter(Name, Labels),
    ok = reckon_metrics:inc(C, 3),
    ?assertEqual(Atoms, erlang:system_info(atom_count)),
    %% An unknown atom in a key read back (a file of another node) is not made.
    Key = <<131, 100, 0, 20, "no_such_atom_9q8w7e6r">>,
    ?assertMatch({undecodable, _}, reckon_metrics_lib:name(Key)),
    ?assertEqual(Atoms, erlang:system_info(atom_count)).

kinds_and_bounds(_Config) ->
    {ok, _} = reckon_metrics:counter(kind_taken),
    ?assertEqual({error, other_kind}, reckon_metrics:gauge(kind_taken)),
    ?assertEqual({error, other_kind}, reckon_metrics:histogram(kind_taken)),
    ?assertEqual({error, {bad_option, sigfig}},
                 reckon_metrics:histogram(h_bad, [], #{sigfig => 4})),
    ?assertEqual({error, {bad_option, highest}},
                 reckon_metrics:histogram(h_bad, [], #{highest => 1})),
    ?assertEqual({error, {bad_option, bins}},
                 reckon_metrics:histogram(h_bad, [], #{bins => 1})),
    ?assertEqual({error, key_too_long},
                 reckon_metrics:counter(binary:copy(<<"x">>, 2000))),
    {ok, H} = reckon_metrics:histogram(h_small, [], #{highest => 1000, sigfig => 3}),
    ok = reckon_metrics:observe(H, 1 bsl 40),
    ?assertMatch(#{count := 1, max := Max} when Max >= 1000 andalso Max < 1100,
                 reckon_metrics:percentiles(H)).

bad_arguments(_Config) ->
    {ok, C} = reckon_metrics:counter(bad_args_c),
    {ok, G} = reckon_metrics:gauge(bad_args_g),
    {ok, H} = reckon_metrics:histogram(bad_args_hist),
    Cases = [{fun() -> reckon_metrics:inc(not_a_handle) end, 1},
             {fun() -> reckon_metrics:inc(H) end, 1},
             {fun() -> reckon_metrics:inc(C, -1) end, 2},
             {fun() -> reckon_metrics:inc(C, 1.5) end, 2},
             {fun() -> reckon_metrics:inc(G, nan) end, 2},
             {fun() -> reckon_metrics:set(C, 1) end, 1},
             {fun() -> reckon_metrics:set(G, "1") end, 2},
             {fun() -> reckon_metrics:add(H, 1) end, 1},
             {fun() -> reckon_metrics:observe(H, -1) end, 2},
             {fun() -> reckon_metrics:observe(H, 1 bsl 64) end, 2},
             {fun() -> reckon_metrics:observe(C, 1) end, 1},
             {fun() -> reckon_metrics:value(make_ref()) end, 1},
             {fun() -> reckon_metrics:percentiles(C) end, 1},
             {fun() -> reckon_metrics:encode(G) end, 1},
             {fun() -> reckon_metrics:history(x, 0) end, 2},
             {fun() -> reckon_metrics:history(x, 30 * 86400 + 1) end, 2}],
    [begin
         try F() of
             Result -> ct:fail({no_badarg, F, Result})
         catch
             error:badarg:St ->
                 [{reckon_metrics, _, _, Info} | _] = St,
                 ?assertMatch(#{cause := {Index, _}}, proplists:get_value(error_info, Info))
         end
     end || {F, Index} <- Cases],
    ?assertEqual([], reckon_metrics:history(never_recorded, 60)).

%%% The recorder through the NIF (a recorder of its own, with small bounds)

series_cap_refuses_and_counts(_Config) ->
    Rec = reckon_nif:metrics_new(#{max_series => 10, max_metrics => 2}),
    T = erlang:system_time(second),
    Results = [reckon_nif:metrics_record(Rec, term_to_binary(I), T, I) || I <- lists:seq(1, 1000)],
    ?assertEqual(10, length([ok || ok <- Results])),
    ?assertEqual(990, length([full || {error, full} <- Results])),
    #{series := Series, series_refused := Refused, bytes := Bytes, bound_bytes := Bound} =
        reckon_nif:metrics_info(Rec),
    ?assertEqual({10, 990}, {Series, Refused}),
    ?assert(Bytes =< Bound),
    %% A series takes only newer points.
    ?assertEqual({error, late}, reckon_nif:metrics_record(Rec, term_to_binary(1), T, 5)),
    {ok, _} = reckon_nif:metrics_metric(Rec, #{key => <<"a">>, kind => counter,
                                                highest => 0, sigfig => 1}),
    {ok, _} = reckon_nif:metrics_metric(Rec, #{key => <<"b">>, kind => gauge,
                                                highest => 0, sigfig => 1}),
    ?assertEqual({error, full}, reckon_nif:metrics_metric(Rec, #{key => <<"c">>, kind => gauge,
                                                                 highest => 0, sigfig => 1})),
    ?assertMatch(#{metrics_refused := 1}, reckon_nif:metrics_info(Rec)),
    %% Options are a map with every key.
    ?assertError(badarg, reckon_nif:metrics_new(#{max_series => 10})),
    ?assertError(badarg, reckon_nif:metrics_metric(Rec, #{key => <<"d">>, kind => gauge})).

minutes_keep_min_max_mean(_Config) ->
    Rec = reckon_nif:metrics_new(#{max_series => 4, max_metrics => 1}),
    %% Two minutes two hours ago: 0..59 then 100..159.
    T0 = (erlang:system_time(second) - 7200) div 60 * 60,
    [ok = reckon_nif:metrics_record(Rec, <<"k">>, T0 + I, I) || I <- lists:seq(0, 59)],
    [ok = reckon_nif:metrics_record(Rec, <<"k">>, T0 + 60 + I, 100 + I) || I <- lists:seq(0, 59)],
    ok = reckon_nif:metrics_record(Rec, <<"k">>, T0 + 120, 0),
    [#{t := T0, min := 0.0, max := 59.0, mean := Mean0, count := 60},
     #{t := T1, min := 100.0, max := 159.0, mean := Mean1, count := 60}, #{count := 1}] =
        reckon_nif:metrics_history(Rec, <<"k">>, 86400),
    ?assertEqual({T0 + 60, 29.5, 129.5}, {T1, Mean0, Mean1}),
    %% The last hour holds none of it.
    ?assertEqual([], reckon_nif:metrics_history(Rec, <<"k">>, 3600)).

%%% Sampler

sampler_records_vm_values(_Config) ->
    ok = reckon_metrics:start(#{}),
    wait_points({memory, total}, 2),
    [#{mean := Limit} | _] = reckon_metrics:history({limit, process}, 60),
    ?assertEqual(float(erlang:system_info(process_limit)), Limit),
    [#{mean := AtomLimit} | _] = reckon_metrics:history({limit, atom}, 60),
    ?assertEqual(float(erlang:system_info(atom_limit)), AtomLimit),
    #{mean := Total} = lists:last(reckon_metrics:history({memory, total}, 60)),
    Now = erlang:memory(total),
    ?assert(Total > Now * 0.5 andalso Total < Now * 2),
    Usage = [M || #{mean := M} <- reckon_metrics:history({scheduler_usage, total}, 60)],
    ?assert(Usage =/= [] andalso lists:all(fun(U) -> U >= 0.0 andalso U =< 1.0 end, Usage)),
    Reds = [M || #{mean := M} <- reckon_metrics:history(reductions, 60)],
    ?assert(Reds =/= [] andalso lists:all(fun(R) -> R > 0 end, Reds)),
    [?assertNotEqual([], reckon_metrics:history(S, 60))
     || S <- [{run_queue, total}, {run_queue, 1}, {count, ets}, {count, port},
              gc_count, io_in, context_switches, {memory, binary},
              {allocator, binary_alloc, carriers_size}]],
    Summary = maps:from_list(reckon_metrics:summary()),
    ?assertMatch(#{minute := #{count := N}, hour := #{}, day := #{}} when N >= 2,
                 maps:get({memory, total}, Summary)),
    ?assert(lists:member({scheduler_usage, total}, reckon_metrics:series())),
    #{series := Held, bytes := Bytes, bound_bytes := Bound} = reckon_metrics:info(),
    ?assert(Held > 40 andalso Bytes =< Bound).

sampler_counts_new_processes(_Config) ->
    ok = reckon_metrics:start(#{}),
    Before = erlang:system_info(process_count),
    Pids = [spawn(fun() -> receive stop -> ok end end) || _ <- lists:seq(1, 2000)],
    After = erlang:system_info(process_count),
    T = erlang:system_time(second),
    %% A tick in a later second than the spawns sees them all.
    Point = reckon_ct:wait_until(fun() ->
                               [P || #{t := PT} = P <- reckon_metrics:history({count, process}, 60),
                                     PT > T]
                       end),
    #{mean := Count} = Point,
    [P ! stop || P <- Pids],
    ?assert(Count >= Before + 2000 - 50 andalso Count =< After + 50, {Count, Before, After}).

sampler_finds_long_queues(_Config) ->
    Sink = spawn(fun() -> receive stop -> ok end end),
    [Sink ! {msg, I} || I <- lists:seq(1, 5000)],
    {message_queue_len, Len} = erlang:process_info(Sink, message_queue_len),
    %% Queues are scanned at the first tick after a start and every
    %% queue_interval (10 s) ticks after it.
    ok = reckon_metrics:start(#{queue_top => 3}),
    #{mean := Longest} =
        reckon_ct:wait_until(fun() ->
                           [P || #{mean := M} = P <- reckon_metrics:history({message_queue, 1}, 60),
                                 M >= Len]
                   end, 150),
    exit(Sink, kill),
    ?assertEqual(float(Len), Longest),
    ?assertNotEqual([], reckon_metrics:history({message_queue, 3}, 60)).

flag_off_restored(_Config) ->
    ?assertEqual(undefined, erlang:statistics(scheduler_wall_time)),
    ok = reckon_metrics:start(#{}),
    ?assertNotEqual(undefined, erlang:statistics(scheduler_wall_time)),
    ok = reckon_metrics:start(#{alloc_interval => 5}),
    ok = reckon_metrics:stop(),
    ?assertEqual(undefined, erlang:statistics(scheduler_wall_time)).

flag_on_kept(_Config) ->
    Self = self(),
    Holder = spawn(fun() ->
                           _ = erlang:system_flag(scheduler_wall_time, true),
                           Self ! set,
                           receive stop -> ok end
                   end),
    receive set -> ok end,
    ok = reckon_metrics:start(#{}),
    ok = reckon_metrics:stop(),
    ?assertNotEqual(undefined, erlang:statistics(scheduler_wall_time)),
    Ref = monitor(process, Holder),
    Holder ! stop,
    receive {'DOWN', Ref, _, _, _} -> ok end,
    ?assertEqual(undefined, erlang:statistics(scheduler_wall_time)).

restart_keeps_series_and_flag(_Config) ->
    ok = reckon_metrics:start(#{}),
    wait_points({memory, total}, 1),
    {ok, C} = reckon_metrics:counter(survives_restart),
    ok = reckon_metrics:inc(C, 7),
    Old = whereis(reckon_metrics_sampler),
    Ref = monitor(process, Old),
    exit(Old, kill),
    receive {'DOWN', Ref, _, _, _} -> ok end,
    New = reckon_ct:wait_until(fun() ->
                             case whereis(reckon_metrics_sampler) of
                                 undefined -> [];
                                 P -> [P]
                             end
                     end),
    ?assertNotEqual(Old, New),
    %% The VM dropped the killed sampler's setting; the new one is off.
    ?assertEqual(undefined, erlang:statistics(scheduler_wall_time)),
    ?assertNotEqual([], reckon_metrics:history({memory, total}, 3600)),
    ?assertEqual(7, reckon_metrics:value(C)),
    {ok, C2} = reckon_metrics:counter(survives_restart),
    ?assertEqual(7, reckon_metrics:value(C2)).

options_refused(_Config) ->
    ?assertEqual({error, {bad_option, foo}}, reckon_metrics:start(#{foo => 1})),
    ?assertEqual({error, {bad_option, queue_interval}},
                 reckon_metrics:start(#{queue_interval => 5})),
    ?assertEqual({error, {bad_option, alloc_interval}},
                 reckon_metrics:start(#{alloc_interval => 0})),
    ?assertEqual({error, {bad_option, queue_top}}, reckon_metrics:start(#{queue_top => x})),
    ?assertEqual({error, options}, reckon_metrics:start([])),
    ?assertEqual(undefined, erlang:statistics(scheduler_wall_time)).

%%% The crash-surviving file

file_rotated_and_read_back(Config) ->
    Dir = filename:join(?config(priv_dir, Config), "rotated"),
    {ok, G} = reckon_metrics:gauge(in_the_file),
    ok = reckon_metrics:set(G, 12.5),
    ok = reckon_metrics:start(#{file_dir => Dir, file_interval => 1, file_keep => 2}),
    %% Four files written (one a tick), of which two are kept.
    reckon_ct:wait_until(fun() ->
                       case reckon_nif:metrics_file_stats(reckon_metrics_lib:recorder()) of
                           #{written := N, failed := 0} when N >= 4 -> [N];
                           _ -> []
                       end
               end),
    ok = reckon_metrics:stop(),
    {ok, Names} = file:list_dir(Dir),
    Files = [F || F <- Names, filename:extension(F) =:= ".mpk"],
    ?assertEqual(2, length(Files), Names),
    Newest = lists:last(lists:sort(fun(A, B) -> seq(A) =< seq(B) end, Files)),
    {ok, #{taken_at := At, series := Series, metrics := Metrics}} =
        reckon_metrics:read_file(filename:join(Dir, Newest)),
    #{seconds := Secs, minutes := [_ | _]} = proplists:get_value({memory, total}, Series),
    ?assert(length(Secs) >= 4),
    #{t := Last} = lists:last(Secs),
    ?assert(Last =< At),
    %% The file of the stop holds every tick the recorder holds.
    ?assertEqual(lists:last(reckon_metrics:history({memory, total}, 3600)), lists:last(Secs)),
    ?assertEqual(12.5, proplists:get_value({user, in_the_file, []}, Metrics)),
    ?assertMatch({error, {unreadable, _}}, reckon_metrics:read_file(filename:join(Dir, "none"))),
    ?assertMatch({error, {file, _}},
                 reckon_metrics:start(#{file_dir => filename:join(filename:join(Dir, Newest), "x")})),
    ?assertEqual(undefined, erlang:statistics(scheduler_wall_time)).

seq(File) ->
    list_to_integer(lists:nth(2, string:split(filename:rootname(File), ".", all))).

%% A node of its own (an OS process) records with a file every second; it
%% is killed with SIGKILL, and its newest file holds the series up to the
%% last tick whose write had completed before the kill.
file_survives_kill_9(Config) ->
    Config1 = reckon_ct:distribute("metrics_ct_", Config),
    Dir = filename:join(?config(priv_dir, Config), "killed"),
    {Peer, Node} = reckon_ct:start_peer("metrics_victim"),
    try
        {ok, _} = erpc:call(Node, application, ensure_all_started, [reckon]),
        ok = erpc:call(Node, reckon_metrics, start, [#{file_dir => Dir, file_interval => 1}]),
        %% (A handle does not survive a trip through the distribution.)
        ok = erpc:call(Node, fun() ->
                                     {ok, C} = reckon_metrics:counter(victim_counter),
                                     reckon_metrics:inc(C, 5)
                             end),
        Stats = fun() -> erpc:call(Node, reckon_nif, metrics_file_stats,
                                   [erpc:call(Node, reckon_metrics_lib, recorder, [])])
                end,
        reckon_ct:wait_until(fun() ->
                           case length(erpc:call(Node, reckon_metrics, history,
                                                 [{memory, total}, 60])) of
                               N when N >= 3 -> [N];
                               _ -> []
                           end
                   end),
        #{t := LastT} = lists:last(erpc:call(Node, reckon_metrics, history,
                                             [{memory, total}, 60])),
        #{written := Written0} = Stats(),
        %% Two more writes: the second one started after the tick at LastT.
        reckon_ct:wait_until(fun() ->
                           case Stats() of
                               #{written := W} when W >= Written0 + 2 -> [W];
                               _ -> []
                           end
                   end),
        OsPid = erpc:call(Node, os, getpid, []),
        erlang:monitor_node(Node, true),
        _ = os:cmd("kill -9 " ++ OsPid),
        receive {nodedown, Node} -> ok after 10000 -> ct:fail(still_alive) end,
        {ok, Names} = file:list_dir(Dir),
        Files = [F || F <- Names, filename:extension(F) =:= ".mpk"],
        ?assert(length(Files) >= 1 andalso length(Files) =< 3, Names),
        Newest = lists:last(lists:sort(fun(A, B) -> seq(A) =< seq(B) end, Files)),
        {ok, #{series := Series, metrics := Metrics}} =
            reckon_metrics:read_file(filename:join(Dir, Newest)),
        #{seconds := Secs} = proplists:get_value({memory, total}, Series),
        #{t := FileLastT} = lists:last(Secs),
        ?assert(FileLastT >= LastT, {FileLastT, LastT}),
        ?assertEqual(5, proplists:get_value({user, victim_counter, []}, Metrics)),
        ?assertNotEqual(undefined, proplists:get_value({count, process}, Series))
    after
        catch peer:stop(Peer),
        reckon_ct:undistribute(Config1)
    end.

%%% Exports

%% The text passes Prometheus's own checker (promtool, Debian's
%% `prometheus' package, installed by scripts/ensure-deps.sh).
prometheus_text_passes_promtool(Config) ->
    {ok, C} = reckon_metrics:counter(<<"Http Requests">>, [{code, 200}, {path, "/a\"b"}]),
    ok = reckon_metrics:inc(C, 3),
    {ok, G} = reckon_metrics:gauge(pool_size),
    ok = reckon_metrics:set(G, 10),
    {ok, H} = reckon_metrics:histogram(db_query_latency),
    [ok = reckon_metrics:observe(H, V) || V <- [3, 40, 40, 700, 9000]],
    ok = reckon_metrics:start(#{}),
    wait_points({memory, total}, 1),
    Text = iolist_to_binary(reckon_metrics:prometheus_text()),
    File = filename:join(?config(priv_dir, Config), "metrics.prom"),
    ok = file:write_file(File, Text),
    Out = os:cmd("promtool check metrics < " ++ File ++ " 2>&1; echo exit=$?"),
    ?assertEqual("exit=0", lists:last(string:lexemes(Out, "\n")), {Out, Text}),
    [?assertMatch({_, _}, binary:match(Text, Line), Line)
     || Line <- [<<"http_requests_total{code=\"200\",path=\"/a\\\"b\"} 3\n">>,
                 <<"pool_size 10.0\n">>,
                 <<"db_query_latency_bucket{le=\"50\"} 3\n">>,
                 <<"db_query_latency_bucket{le=\"+Inf\"} 5\n">>,
                 <<"db_query_latency_count 5\n">>,
                 <<"# TYPE erlang_vm_memory_bytes gauge\n">>,
                 <<"# TYPE erlang_vm_long_gc_seconds histogram\n">>,
                 <<"erlang_vm_long_schedule_seconds_bucket{le=\"0.05\"} ">>,
                 <<"erlang_vm_objects_limit{type=\"process\"} ">>]].

%% encode/1 decoded by an independent HdrHistogram implementation (the
%% `hdrhistogram' package of PyPI, through scripts/check-hdr.py): the same
%% count, min, max and percentiles as percentiles/1, for a known
%% distribution (10 000 values from 1 to about 14 million, squares, so
%% every bucket magnitude is used).
%%
%% The two read a percentile's rank differently when q * count has a
%% fractional part below one half: the Rust crate takes ceil(q * count)
%% (as Java's HdrHistogram does today), the Python package rounds it
%% (int(q * count + 0.5), Java's older rule), one rank lower. With 10 000
%% values every rank is whole, so they agree; with 7 values (1..6 and 1000)
%% the 90th percentile (rank 6.3) is 1000 for the crate (rank 7) and 6 for
%% the package (rank 6): the decoded data are the same, the rule is not.
encoded_histogram_read_by_hdrhistogram_py(Config) ->
    {ok, H} = reckon_metrics:histogram(cross_checked),
    [ok = reckon_metrics:observe(H, I * I div 7) || I <- lists:seq(1, 10000)],
    Theirs = decode_with_python(H, Config),
    Ours = reckon_metrics:percentiles(H),
    ?assertEqual(maps:with([count, min, max, p50, p90, p99, p999], Ours), Theirs),
    ?assertEqual(10000, maps:get(count, Theirs)),
    {ok, Small} = reckon_metrics:histogram(cross_checked_small),
    [ok = reckon_metrics:observe(Small, V) || V <- [1, 2, 3, 4, 5, 6, 1000]],
    SmallTheirs = decode_with_python(Small, Config),
    SmallOurs = reckon_metrics:percentiles(Small),
    ?assertEqual(maps:with([count, min, max, p50, p99, p999], SmallOurs),
                 maps:without([p90], SmallTheirs)),
    ?assertMatch({#{p90 := P90}, #{p90 := 6}} when P90 >= 1000, {SmallOurs, SmallTheirs}).

decode_with_python(H, Config) ->
    File = filename:join(?config(priv_dir, Config),
                         "hist-" ++ integer_to_list(erlang:unique_integer([positive]))),
    ok = file:write_file(File, reckon_metrics:encode(H)),
    Script = filename:join([root(filename:dirname(code:which(?MODULE))), "scripts",
                            "check-hdr.py"]),
    Out = os:cmd("python3 " ++ Script ++ " " ++ File ++ " 2>&1; echo rc=$?"),
    case re:run(Out, "^(\\{.*\\})\nrc=0\n$", [{capture, all_but_first, binary}, dotall]) of
        {match, [Json]} ->
            maps:from_list([{binary_to_atom(K), V}
                            || [K, V0] <- element(2, re:run(Json, "\"([a-z0-9]+)\": ([0-9]+)",
                                                         [global, {capture, all_but_first,
                                                                   binary}])),
                               V <- [binary_to_integer(V0)]]);
        nomatch ->
            ct:fail({check_hdr, Out})
    end.

%% The repository's root: the first parent of `Dir' with scripts/check-hdr.py.
root("/") -> error(no_root);
root(Dir) ->
    case filelib:is_regular(filename:join([Dir, "scripts", "check-hdr.py"])) of
        true -> Dir;
        false -> root(filename:dirname(Dir))
    end.

%%% System monitor

%% While sampling, the handler is the node's system monitor: a process
%% with a big heap collecting it (long_gc above 5 ms) and one turning a
%% tuple of 10 million elements into a list (no yield: long_schedule above
%% 20 ms) land in the histograms long_gc_ms and long_schedule_ms. Stopping
%% gives the monitor back; a sampler killed leaves none behind either.
sysmon_records_long_gc_and_schedule(_Config) ->
    ?assertEqual(undefined, erlang:system_monitor()),
    ?assertEqual({error, {bad_option, long_gc_ms}}, reckon_metrics:start(#{long_gc_ms => 0})),
    ok = reckon_metrics:start(#{long_gc_ms => 5, long_schedule_ms => 20}),
    ?assertMatch(#{system_monitor := on}, reckon_metrics:info()),
    Sysmon = whereis(reckon_metrics_sysmon),
    ?assertMatch({Sysmon, _}, erlang:system_monitor()),
    {ok, Gc} = reckon_metrics:histogram(long_gc_ms),
    {ok, Schedule} = reckon_metrics:histogram(long_schedule_ms),
    #{count := Gc0} = reckon_metrics:percentiles(Gc),
    #{count := Schedule0} = reckon_metrics:percentiles(Schedule),
    Busy = fun() ->
                   L = lists:seq(1, 3000000),
                   true = erlang:garbage_collect(),
                   _ = [length(tuple_to_list(erlang:make_tuple(10000000, a))) || _ <- [1, 2, 3]],
                   length(L)
           end,
    {Pid, Ref} = spawn_monitor(Busy),
    receive {'DOWN', Ref, _, Pid, _} -> ok end,
    #{min := GcMin} =
        reckon_ct:wait_until(fun() ->
                           [P || #{count := N} = P <- [reckon_metrics:percentiles(Gc)], N > Gc0]
                   end),
    #{max := ScheduleMax} =
        reckon_ct:wait_until(fun() ->
                           [P || #{count := N} = P <- [reckon_metrics:percentiles(Schedule)],
                                 N > Schedule0]
                   end),
    ?assert(GcMin >= 5, GcMin),
    ?assert(ScheduleMax >= 20, ScheduleMax),
    ok = reckon_metrics:stop(),
    ?assertEqual(undefined, erlang:system_monitor()),
    ?assertEqual(undefined, whereis(reckon_metrics_sysmon)),
    ?assertMatch(#{system_monitor := off}, reckon_metrics:info()),
    %% A sampler killed while sampling: its handler dies with it, and the VM
    %% clears the monitor of a dead process.
    ok = reckon_metrics:start(#{}),
    Sysmon2 = whereis(reckon_metrics_sysmon),
    ?assertMatch({Sysmon2, _}, erlang:system_monitor()),
    MRef = monitor(process, Sysmon2),
    exit(whereis(reckon_metrics_sampler), kill),
    receive {'DOWN', MRef, _, _, _} -> ok end,
    ?assertEqual(undefined, erlang:system_monitor()),
    _ = reckon_ct:wait_until(fun() -> [P || P <- [whereis(reckon_metrics_sampler)], is_pid(P)] end).

%% A system monitor set by someone else is never replaced: the sampler
%% reports it as taken, and it is still there, unchanged, after a stop.
sysmon_keeps_existing_monitor(_Config) ->
    Holder = spawn(fun() -> receive stop -> ok end end),
    undefined = erlang:system_monitor(Holder, [{long_gc, 1000}]),
    try
        ok = reckon_metrics:start(#{}),
        ?assertMatch(#{system_monitor := {taken, Holder}}, reckon_metrics:info()),
        ?assertEqual({Holder, [{long_gc, 1000}]}, erlang:system_monitor()),
        ok = reckon_metrics:stop(),
        ?assertEqual({Holder, [{long_gc, 1000}]}, erlang:system_monitor())
    after
        _ = erlang:system_monitor(undefined),
        Holder ! stop
    end.

%%% Library upgrade

%% The recorder and metric handles are versioned resources: a second copy
%% of the library (the same build), loaded while they live, takes them
%% over with everything in them; after the old code is purged (its library
%% unloaded) they keep working, and going back to the first copy works too.
upgrade_takes_over_recorder(Config) ->
    ok = reckon_metrics:start(#{}),
    wait_points({memory, total}, 1),
    ok = reckon_metrics:stop(),
    {ok, C} = reckon_metrics:counter(upgraded_events),
    ok = reckon_metrics:inc(C, 11),
    {ok, H} = reckon_metrics:histogram(upgraded_hist),
    [ok = reckon_metrics:observe(H, V) || V <- lists:seq(1, 100)],
    History = reckon_metrics:history({memory, total}, 3600),
    Percentiles = reckon_metrics:percentiles(H),
    OrigEbin = filename:join(code:lib_dir(reckon), "ebin"),
    try
        Lib = install_copy(?config(priv_dir, Config), "99.0.0"),
        ?assertEqual({module, reckon_nif}, code:load_file(reckon_nif)),
        ?assertEqual(filename:join(Lib, "priv"), code:priv_dir(reckon)),
        ?assertEqual(11, reckon_metrics:value(C)),
        ?assertEqual(Percentiles, reckon_metrics:percentiles(H)),
        ?assertEqual(History, reckon_metrics:history({memory, total}, 3600)),
        _ = code:purge(reckon_nif),
        ok = reckon_metrics:inc(C),
        ok = reckon_metrics:observe(H, 1000),
        ?assertEqual(12, reckon_metrics:value(C)),
        ?assertMatch(#{count := 101, max := Max} when Max >= 1000,
                     reckon_metrics:percentiles(H)),
        {ok, C2} = reckon_metrics:counter(upgraded_events),
        ?assertEqual(12, reckon_metrics:value(C2)),
        %% The sampler records into the taken-over recorder.
        #{t := LastT} = lists:last(History),
        ok = reckon_metrics:start(#{}),
        _ = reckon_ct:wait_until(fun() -> [P || #{t := T} = P <- reckon_metrics:history({memory, total}, 60),
                                      T > LastT]
                       end),
        ok = reckon_metrics:stop()
    after
        true = code:replace_path(reckon, OrigEbin),
        {module, reckon_nif} = code:load_file(reckon_nif),
        _ = code:purge(reckon_nif)
    end,
    ok = reckon_metrics:inc(C),
    ?assertEqual(13, reckon_metrics:value(C)),
    ?assertMatch(#{count := 101}, reckon_metrics:percentiles(H)).

%% A copy of the reckon application (beams and library) as reckon-`Vsn',
%% first on the code path.
install_copy(Dir, Vsn) ->
    Lib = filename:join(Dir, "reckon-" ++ Vsn),
    [ok = filelib:ensure_dir(filename:join([Lib, Sub, "x"])) || Sub <- ["ebin", "priv"]],
    From = code:lib_dir(reckon),
    [{ok, _} = file:copy(F, filename:join([Lib, "ebin", filename:basename(F)]))
     || F <- filelib:wildcard(filename:join([From, "ebin", "*"]))],
    {ok, _} = file:copy(filename:join([From, "priv", "reckon_nif.so"]),
                        filename:join([Lib, "priv", "reckon_nif.so"])),
    true = code:replace_path(reckon, filename:join(Lib, "ebin")),
    Lib.

%%% Helpers

%% Waits (at most 10 s) until series `Series' has `N' points in its last minute.
wait_points(Series, N) ->
    reckon_ct:wait_until(fun() ->
                       Points = reckon_metrics:history(Series, 60),
                       case length(Points) >= N of
                           true -> [Points];
                           false -> []
                       end
               end).

