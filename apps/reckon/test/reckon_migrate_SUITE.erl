%% In-place migration of reckon's NIF state across builds: a library of
%% another build (the `layout_b' build of each crate, whose every state is
%% laid out otherwise and fingerprinted otherwise) is loaded while objects
%% of the default build live; every object keeps its content and keeps
%% working, after the old code is purged too, and again when the default
%% build is loaded back over `layout_b'. Then the same while 8 processes
%% keep calling the kind's hot path through the swaps, with counts that
%% must reconcile exactly, and no process killed by a purge.
%%
%% Each load installs a fresh copy of the application (beams, and the
%% library chosen) as reckon-<vsn>, so the VM opens a new file every time.
-module(reckon_migrate_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([windows_migrate/1, recorder_and_metrics_migrate/1, tracer_migrates/1,
         windows_migrate_under_load/1, metrics_migrate_under_load/1,
         tracer_migrates_under_load/1, unreadable_wire_is_refused/1]).
-export([window_worker/3, window_loop/4, metric_worker/3, metric_loop/3,
         tracer_worker/3, tracer_loop/3]).

-define(WORKERS, 8).

suite() -> [{timetrap, {minutes, 15}}].

all() ->
    [windows_migrate, recorder_and_metrics_migrate, tracer_migrates,
     windows_migrate_under_load, metrics_migrate_under_load, tracer_migrates_under_load,
     unreadable_wire_is_refused].

%% Builds the layout_b libraries, and the wire_b build of reckon_nif
%% (cargo does nothing when they are up to date), next to the default ones.
init_per_suite(Config) ->
    Src = proplists:get_value(source, reckon_nif:module_info(compile)),
    Root = filename:dirname(filename:dirname(filename:dirname(filename:dirname(Src)))),
    Target = filename:join([Root, "target", "features-layout_b"]),
    Cmd = lists:flatten(
            io_lib:format("cd '~ts' && cargo build --quiet --release --locked"
                          " -p reckon_nif -p reckon_tracer"
                          " --features reckon_nif/layout_b,reckon_tracer/layout_b"
                          " --target-dir '~ts' 2>&1; echo \"rc=$?\"", [Root, Target])),
    Out = os:cmd(Cmd),
    ?assertMatch({match, _}, re:run(Out, "rc=0\\s*$"), Out),
    WireTarget = filename:join([Root, "target", "features-wire_b"]),
    WireOut = os:cmd(lists:flatten(
                       io_lib:format("cd '~ts' && cargo build --quiet --release --locked"
                                     " -p reckon_nif --features reckon_nif/wire_b"
                                     " --target-dir '~ts' 2>&1; echo \"rc=$?\"",
                                     [Root, WireTarget]))),
    ?assertMatch({match, _}, re:run(WireOut, "rc=0\\s*$"), WireOut),
    B = [{list_to_atom(Lib), filename:join([Target, "release", "lib" ++ Lib ++ ".so"])}
         || Lib <- ["reckon_nif", "reckon_tracer"]],
    Priv = code:priv_dir(reckon),
    A = [{M, filename:join(Priv, atom_to_list(M) ++ ".so")} || M <- [reckon_nif, reckon_tracer]],
    Wire = [{reckon_nif, filename:join([WireTarget, "release", "libreckon_nif.so"])}],
    [{libs_b, B}, {libs_a, A}, {libs_wire, Wire}, {orig_ebin, filename:join(code:lib_dir(reckon), "ebin")},
     {orig_lib, code:lib_dir(reckon)} | Config].

end_per_suite(_Config) ->
    ok.

init_per_testcase(_Case, Config) ->
    Config.

%% Back to the original copy (and its default libraries) for each module
%% loaded from another (a library is never loaded again from the file it
%% runs from: that would be the same instance).
end_per_testcase(_Case, Config) ->
    Orig = ?config(orig_ebin, Config),
    true = code:replace_path(reckon, Orig),
    [begin
         {module, M} = code:load_file(M),
         _ = code:purge(M)
     end || M <- [reckon_nif, reckon_tracer], filename:dirname(code:which(M)) =/= Orig],
    ok.

%%% Windows

%% A window keyed by integers and one keyed by pids, both in their first
%% sample: through default -> layout_b -> (purge) -> default -> (purge),
%% chunks keep being added, the second sample goes in, and each finishes
%% with the answer of a window that saw the same chunks in one library.
windows_migrate(Config) ->
    Before = reckon_nif:lib_info(),
    in_process(fun() -> windows_migrate_(Config) end),
    live_back_to(reckon_nif, Before, [window]).

windows_migrate_(Config) ->
    Pids = [spawn(fun() -> receive stop -> ok end end) || _ <- lists:seq(1, 40)],
    Chunks = fun(Keys) -> [[{K, K * 7} || K <- Part] || Part <- split(Keys, 4)] end,
    Ints = lists:seq(1, 400),
    Steps = [{first, Chunks(lists:sublist(Ints, 1, 200))},
             {first, Chunks(lists:sublist(Ints, 201, 200))},
             {second, [[{K, K * 3} || K <- lists:seq(150, 300)]]},
             {second, [[{K, K} || K <- lists:seq(301, 500)]]}],
    PidSteps = [{first, [[{P, I} || {I, P} <- lists:enumerate(lists:sublist(Pids, 30))]]},
                {first, [[{P, 100} || P <- lists:nthtail(30, Pids)]]},
                {second, [[{P, I * I} || {I, P} <- lists:enumerate(lists:sublist(Pids, 5, 30))]]},
                {second, []}],
    Opts = #{n => 10, cap => 20, expected => 16},
    W = reckon_nif:window_new(Opts#{kind => integer}),
    WP = reckon_nif:window_new(Opts#{kind => pid}),
    Feed = fun(Win, {Phase, Cs}) -> [ok = reckon_nif:window_add(Win, Phase, C) || C <- Cs] end,
    Swaps = swaps(Config, reckon_nif),
    lists:foreach(fun({Swap, Step, PidStep}) ->
                          Swap(),
                          Feed(W, Step),
                          Feed(WP, PidStep)
                  end, lists:zip3([fun() -> ok end | Swaps] ++ [fun() -> ok end],
                                  Steps, PidSteps)),
    %% A first chunk after the second sample began is still refused.
    ?assertError(badarg, reckon_nif:window_add(W, first, [{1, 1}])),
    Ref = reckon_nif:window_new(Opts#{kind => integer}),
    RefP = reckon_nif:window_new(Opts#{kind => pid}),
    [Feed(Ref, S) || S <- Steps],
    [Feed(RefP, S) || S <- PidSteps],
    %% The died are ranked from the first sample's map, whose order is a
    %% hash table's: equal values come in any order.
    Finish = fun(Win) -> maps:update_with(died, fun lists:sort/1, reckon_nif:window_finish(Win)) end,
    Expected = Finish(Ref),
    ?assertMatch(#{born_count := 100, died_count := 149}, Expected),
    ?assertEqual(Expected, Finish(W)),
    ExpectedP = Finish(RefP),
    ?assertMatch(#{died_count := 10, born_count := 0, top := [{_, _} | _]}, ExpectedP),
    ?assertEqual(ExpectedP, Finish(WP)),
    ?assertError(badarg, reckon_nif:window_finish(W)),
    [P ! stop || P <- Pids].

%% 8 processes add chunks of distinct keys to windows of their own (a new
%% one every 200 chunks, finished and checked) and, every 20th chunk, to a
%% shared one, in a loop through every swap: every key added is counted
%% once at the end (each died: none was met in a second sample).
windows_migrate_under_load(Config) ->
    Before = reckon_nif:lib_info(),
    in_process(fun() ->
        Shared = reckon_nif:window_new(#{kind => integer, n => 5, cap => 5, expected => 1}),
        Workers = [spawn_link(?MODULE, window_worker, [self(), Shared, I])
                   || I <- lists:seq(1, ?WORKERS)],
        under_load(Config, reckon_nif, Workers),
        Counts = stop_workers(Workers),
        ?assert(lists:sum([N || {N, _} <- Counts]) > 0),
        SharedKeys = lists:sum([S || {_, S} <- Counts]),
        ?assertMatch(#{died_count := SharedKeys, born_count := 0},
                     reckon_nif:window_finish(Shared))
    end),
    live_back_to(reckon_nif, Before, [window]).

window_worker(Parent, Shared, I) ->
    Parent ! {ready, self()},
    ?MODULE:window_loop(Parent, {Shared, I}, new_window(), {0, 0}).

new_window() ->
    reckon_nif:window_new(#{kind => integer, n => 5, cap => 5, expected => 1}).

%% Chunks of 10 keys; the own window checked and replaced every 200.
window_loop(Parent, {Shared, I} = S, Own, {N, SharedKeys}) ->
    receive
        {stop, From} ->
            ?assertMatch(#{died_count := D} when D =:= (N rem 200) * 10,
                         reckon_nif:window_finish(Own)),
            From ! {self(), {N, SharedKeys}}
    after 0 ->
        Keys = [(I bsl 40) + N * 10 + K || K <- lists:seq(0, 9)],
        ok = reckon_nif:window_add(Own, first, [{K, 1} || K <- Keys]),
        Shared1 = case N rem 20 of
                      0 -> ok = reckon_nif:window_add(Shared, first, [{K, K} || K <- Keys]),
                           SharedKeys + 10;
                      _ -> SharedKeys
                  end,
        Own1 = case (N + 1) rem 200 of
                   0 -> ?assertMatch(#{died_count := 2000, born_count := 0},
                                     reckon_nif:window_finish(Own)),
                        new_window();
                   _ -> Own
               end,
        ?MODULE:window_loop(Parent, S, Own1, {N + 1, Shared1})
    end.

%%% The recorder and user metrics

%% A recorder with series, a counter (two handles), a gauge and a
%% histogram, and its file writer: everything reads the same after each
%% swap and purge, every handle still shares its metric with the recorder
%% and the other handles, and the writer (restarted from the new library's
%% code) numbers its files on and writes the migrated state.
recorder_and_metrics_migrate(Config) ->
    Before = reckon_nif:lib_info(),
    in_process(fun() -> recorder_and_metrics_migrate_(Config) end),
    live_back_to(reckon_nif, Before, [recorder, metric]).

recorder_and_metrics_migrate_(Config) ->
    Dir = filename:join(?config(priv_dir, Config), "recorder_files"),
    R = reckon_nif:metrics_new(#{max_series => 16, max_metrics => 8}),
    Now = erlang:system_time(second),
    [ok = reckon_nif:metrics_record(R, term_to_binary({s, K}), Now - 60 + T, K * T)
     || K <- [1, 2, 3], T <- lists:seq(0, 40)],
    {ok, C1} = metric(R, <<"c">>, counter),
    {ok, C2} = metric(R, <<"c">>, counter),
    {ok, G} = metric(R, <<"g">>, gauge),
    {ok, H} = metric(R, <<"h">>, histogram),
    ok = reckon_metrics_lib:metric_add(C1, 5),
    ok = reckon_metrics_lib:metric_add(C2, 6),
    ok = reckon_metrics_lib:metric_set(G, 2.5),
    [ok = reckon_metrics_lib:metric_observe(H, V) || V <- lists:seq(1, 200)],
    ok = reckon_metrics_lib:metric_observe_n(H, [{1000, 5}]),
    ok = reckon_nif:metrics_file_start(R, #{dir => unicode:characters_to_binary(Dir), keep => 2}),
    Written = fun(N) ->
                      ok = reckon_nif:metrics_flush(R),
                      reckon_ct:wait_until(fun() -> case reckon_nif:metrics_file_stats(R) of
                                                        #{written := N} = S -> [S];
                                                        _ -> []
                                                    end
                                           end)
              end,
    #{last := File1} = Written(1),
    Snapshot = fun() -> recorder_view(R, [C1, C2, G, H]) end,
    View0 = Snapshot(),
    ?assertMatch(#{values := [11, 11, 2.5, #{count := 205, max := Max}]} when Max >= 1000, View0),
    Steps = lists:enumerate(2, swaps(Config, reckon_nif)),
    lists:foreach(
      fun({I, Swap}) ->
              Pre = Snapshot(),
              Swap(),
              %% Everything reads as before, then keeps working.
              View = Snapshot(),
              ?assertEqual(Pre, View),
              #{values := [Cv, Cv, Gv, #{count := Hc}]} = View,
              ?assertEqual(#{written => I - 1, failed => 0},
                           maps:with([written, failed], reckon_nif:metrics_file_stats(R))),
              ok = reckon_metrics_lib:metric_add(C1, 1),
              ok = reckon_metrics_lib:metric_add(C2, 1),
              ok = reckon_metrics_lib:metric_add(G, 1.0),
              ok = reckon_metrics_lib:metric_observe(H, 7),
              #{values := [V1, V2, Gv1, #{count := Hc1}]} = Snapshot(),
              ?assertEqual({Cv + 2, Cv + 2, Gv + 1.0, Hc + 1}, {V1, V2, Gv1, Hc1}),
              ok = reckon_nif:metrics_record(R, <<"new">>, Now + I, I),
              #{last := Last} = Written(I),
              {ok, #{metrics := Ms}} = reckon_nif:metrics_read_file(Last),
              ?assertEqual(Cv + 2, proplists:get_value(<<"c">>, Ms))
      end, Steps),
    ?assertMatch(#{values := [15, 15, 4.5, #{count := 207}]}, Snapshot()),
    ?assertEqual(2, length(filelib:wildcard(filename:join(Dir, "reckon_metrics.*.mpk")))),
    ?assertNot(filelib:is_regular(File1)),
    %% A handle made now shares the counter with the old ones.
    {ok, C3} = metric(R, <<"c">>, counter),
    ok = reckon_metrics_lib:metric_add(C3, 100),
    ?assertEqual(115, reckon_nif:metric_value(C1)),
    ok = reckon_nif:metrics_file_stop(R).

%% 8 processes, each with handles of its own on a shared counter, gauge
%% and histogram, update them in a loop through every swap: the values are
%% exactly the sums of the updates each process made.
metrics_migrate_under_load(Config) ->
    Before = reckon_nif:lib_info(),
    in_process(fun() -> metrics_migrate_under_load_(Config) end),
    live_back_to(reckon_nif, Before, [recorder, metric]).

metrics_migrate_under_load_(Config) ->
    R = reckon_nif:metrics_new(#{max_series => 4, max_metrics => 4}),
    Workers = [spawn_link(?MODULE, metric_worker, [self(), R, I]) || I <- lists:seq(1, ?WORKERS)],
    under_load(Config, reckon_nif, Workers),
    Counts = stop_workers(Workers),
    Total = lists:sum(Counts),
    ?assert(Total > 0),
    {ok, C} = metric(R, <<"c">>, counter),
    {ok, G} = metric(R, <<"g">>, gauge),
    {ok, H} = metric(R, <<"h">>, histogram),
    ?assertEqual(Total, reckon_nif:metric_value(C)),
    ?assertEqual(float(Total), reckon_nif:metric_value(G)),
    ?assertMatch(#{count := Total}, reckon_nif:metric_value(H)),
    Users = maps:from_list([{K, V} || #{key := K, value := V} <- reckon_nif:metrics_user(R)]),
    ?assertMatch(#{<<"c">> := Total, <<"h">> := #{count := Total}}, Users).

metric_worker(Parent, R, _I) ->
    {ok, C} = metric(R, <<"c">>, counter),
    {ok, G} = metric(R, <<"g">>, gauge),
    {ok, H} = metric(R, <<"h">>, histogram),
    Parent ! {ready, self()},
    ?MODULE:metric_loop(Parent, {C, G, H}, 0).

metric_loop(Parent, {C, G, H} = S, N) ->
    receive
        {stop, From} -> From ! {self(), N}
    after 0 ->
        ok = reckon_metrics_lib:metric_add(C, 1),
        ok = reckon_metrics_lib:metric_add(G, 1.0),
        ok = case N rem 2 of
                 0 -> reckon_metrics_lib:metric_observe(H, N);
                 1 -> reckon_metrics_lib:metric_observe_n(H, [{N, 1}])
             end,
        ?MODULE:metric_loop(Parent, S, N + 1)
    end.

%%% The tracer

%% A trace limited to 10 events in all, its pump 3 events behind at most,
%% and a throttled trace whose owner is killed after the swaps: the counts
%% carry on exactly (accepted, in flight, dropped), the 10th event across
%% three libraries ends the trace, and the owner's monitor, which belongs
%% to the object, still closes the second trace.
tracer_migrates(Config) ->
    Before = reckon_tracer:lib_info(),
    in_process(fun() -> tracer_migrates_(Config) end),
    live_back_to(reckon_tracer, Before, [tracer]).

tracer_migrates_(Config) ->
    Owner = spawn(fun() -> receive stop -> ok end end),
    T1 = reckon_tracer:new(#{n => 10, window => 0, mode => stop, pump => self(),
                             owner => self(), cap => 3}),
    T2 = reckon_tracer:new(#{n => 2, window => 60000, mode => throttle, pump => self(),
                             owner => Owner, cap => 100}),
    Event = fun(T) -> ok = reckon_tracer:trace(call, T, self(), {?MODULE, f, []}, #{}) end,
    [Event(T1) || _ <- lists:seq(1, 4)],
    ?assertEqual(3, length(events(T1))),
    [Event(T2) || _ <- lists:seq(1, 5)],
    ?assertEqual(2, length(events(T2))),
    [Swap1, Swap2] = swaps(Config, reckon_tracer),
    Swap1(),
    ?assertEqual(4, reckon_tracer:accepted(T1)),
    ?assertEqual(1, reckon_tracer:take_dropped(T1)),
    ?assertEqual(0, reckon_tracer:take_dropped(T1)),
    ?assertEqual(3, reckon_tracer:take_suppressed(T2, all)),
    ?assertEqual(trace, reckon_tracer:enabled(trace_status, T1, self())),
    [ok = reckon_tracer:ack(T1) || _ <- lists:seq(1, 3)],
    [Event(T1) || _ <- lists:seq(1, 3)],
    ?assertEqual(3, length(events(T1))),
    Swap2(),
    ?assertEqual(7, reckon_tracer:accepted(T1)),
    [ok = reckon_tracer:ack(T1) || _ <- lists:seq(1, 3)],
    [Event(T1) || _ <- lists:seq(1, 3)],
    ?assertEqual(3, length(events(T1))),
    receive {reckon_trace_limit, T1} -> ok after 5000 -> ct:fail(no_limit_message) end,
    ?assertEqual(remove, reckon_tracer:enabled(trace_status, T1, self())),
    ?assertEqual(10, reckon_tracer:accepted(T1)),
    ?assertEqual(trace, reckon_tracer:enabled(trace_status, T2, self())),
    exit(Owner, kill),
    reckon_ct:wait_until(fun() -> [x || remove =:= reckon_tracer:enabled(trace_status, T2, self())] end).

%% 8 processes send events into one trace (its limit far away, a pump that
%% takes and acknowledges every event, at most 1000 waiting) through every
%% swap: every event was accepted once, and either reached the pump or was
%% counted as dropped.
tracer_migrates_under_load(Config) ->
    Before = reckon_tracer:lib_info(),
    in_process(fun() -> tracer_migrates_under_load_(Config) end),
    live_back_to(reckon_tracer, Before, [tracer]).

tracer_migrates_under_load_(Config) ->
    Parent = self(),
    Pump = spawn_link(fun() -> pump(Parent, undefined, 0) end),
    T = reckon_tracer:new(#{n => 1 bsl 31, window => 0, mode => stop, pump => Pump,
                            owner => self(), cap => 1000}),
    Pump ! {state, T},
    Workers = [spawn_link(?MODULE, tracer_worker, [self(), T, I]) || I <- lists:seq(1, ?WORKERS)],
    under_load(Config, reckon_tracer, Workers),
    Total = lists:sum(stop_workers(Workers)),
    ?assert(Total > 0),
    ?assertEqual(Total, reckon_tracer:accepted(T)),
    Dropped = reckon_tracer:take_dropped(T),
    Pump ! {count, self()},
    ?assertEqual(Total, Dropped + receive {pumped, N} -> N after 10000 -> timeout end).

tracer_worker(Parent, T, I) ->
    Parent ! {ready, self()},
    ?MODULE:tracer_loop(Parent, {T, I}, 0).

tracer_loop(Parent, {T, I} = S, N) ->
    receive
        {stop, From} -> From ! {self(), N}
    after 0 ->
        ok = reckon_tracer:trace(call, T, self(), {?MODULE, I, N}, #{}),
        ?MODULE:tracer_loop(Parent, S, N + 1)
    end.

pump(Parent, T, N) ->
    receive
        {state, S} -> pump(Parent, S, N);
        {reckon_trace_event, _, _, _, _, _} -> ok = reckon_tracer:ack(T), pump(Parent, T, N + 1);
        {count, From} -> From ! {pumped, N}
    end.

%%% A build that cannot read the states

%% A build whose windows' interchange form is of another version refuses
%% to load while a window of this build lives: the old code keeps running
%% and the window keeps working; once no window lives, it loads.
unreadable_wire_is_refused(Config) ->
    Before = reckon_nif:lib_info(),
    WireLib = proplists:get_value(reckon_nif, ?config(libs_wire, Config)),
    in_process(fun() ->
        W = reckon_nif:window_new(#{kind => integer, n => 3, cap => 3, expected => 1}),
        ok = reckon_nif:window_add(W, first, [{1, 10}, {2, 20}]),
        _ = install_copy(Config, reckon_nif, WireLib, "90.0.3"),
        ?assertEqual({error, on_load_failure}, code:load_file(reckon_nif)),
        ?assertMatch(#{instances := 1}, reckon_nif:lib_info()),
        ok = reckon_nif:window_add(W, second, [{1, 15}, {3, 1}]),
        ?assertMatch(#{top := [{1, 5}], born := [{3, 1}], died := [{2, 20}]},
                     reckon_nif:window_finish(W))
    end),
    live_back_to(reckon_nif, Before, [window]),
    _ = install_copy(Config, reckon_nif, WireLib, "90.0.4"),
    ?assertEqual({module, reckon_nif}, code:load_file(reckon_nif)),
    ?assertEqual(false, code:purge(reckon_nif)),
    in_process(fun() ->
        W = reckon_nif:window_new(#{kind => integer, n => 3, cap => 3, expected => 1}),
        ok = reckon_nif:window_add(W, first, [{1, 10}]),
        ?assertMatch(#{died := [{1, 10}]}, reckon_nif:window_finish(W))
    end),
    %% No window of the wire_b build is left for the default one to refuse.
    live_back_to(reckon_nif, Before, [window]).

%%% Helpers

%% The two swaps of every case: load the layout_b build over the default
%% one, purge; load the default build over layout_b, purge. The purge is a
%% soft one (no process runs old code any more) and kills no process.
swaps(Config, Mod) ->
    [fun() -> swap(Config, Mod, libs_b, "90.0.1") end,
     fun() -> swap(Config, Mod, libs_a, "90.0.2") end].

swap(Config, Mod, Which, Vsn) ->
    Lib = install_copy(Config, Mod, proplists:get_value(Mod, ?config(Which, Config)), Vsn),
    #{generation := Gen} = Mod:lib_info(),
    ?assertEqual({module, Mod}, code:load_file(Mod)),
    ?assertEqual(filename:join(Lib, "priv"), code:priv_dir(reckon)),
    ?assertMatch(#{generation := G, instances := 2} when G =:= Gen + 1, Mod:lib_info()),
    %% A process in a dirty NIF of the old library (window_finish/1) runs
    %% old code until it returns: wait for it, as a soft purge does.
    reckon_ct:wait_until(fun() -> [ok || code:soft_purge(Mod)] end),
    ?assertEqual(false, code:purge(Mod)),
    ?assertMatch(#{instances := 1}, Mod:lib_info()),
    ok.

%% A copy of reckon (beams, and `LibFile' as the library of `Mod', the
%% other library the default one) as reckon-`Vsn', first on the code path.
install_copy(Config, Mod, LibFile, Vsn) ->
    Lib = filename:join(?config(priv_dir, Config), "reckon-" ++ Vsn ++ "-" ++ atom_to_list(Mod)
                        ++ "-" ++ integer_to_list(erlang:unique_integer([positive]))),
    [ok = filelib:ensure_dir(filename:join([Lib, Sub, "x"])) || Sub <- ["ebin", "priv"]],
    From = ?config(orig_lib, Config),
    [{ok, _} = file:copy(F, filename:join([Lib, "ebin", filename:basename(F)]))
     || F <- filelib:wildcard(filename:join([From, "ebin", "*"]))],
    [{ok, _} = file:copy(case M of Mod -> LibFile; _ -> Default end,
                         filename:join([Lib, "priv", atom_to_list(M) ++ ".so"]))
     || {M, Default} <- ?config(libs_a, Config)],
    true = code:replace_path(reckon, filename:join(Lib, "ebin")),
    Lib.

%% Runs both swaps while `Workers' (which said ready, or will) call the
%% hot path; each worker made some calls between the swaps.
under_load(Config, Mod, Workers) ->
    [receive {ready, W} -> ok after 10000 -> ct:fail({not_ready, W}) end || W <- Workers],
    [begin timer:sleep(200), Swap(), timer:sleep(200) end || Swap <- swaps(Config, Mod)],
    [?assert(is_process_alive(W)) || W <- Workers],
    ok.

%% Runs `Fun' in a process of its own, so that every handle it made is
%% garbage once it ends; its failure is this case's.
in_process(Fun) ->
    {Pid, Ref} = spawn_monitor(fun() ->
                                       try Fun() of
                                           _ -> exit(done)
                                       catch Class:Reason:Stack ->
                                           exit({failed, Class, Reason, Stack})
                                       end
                               end),
    receive
        {'DOWN', Ref, process, Pid, done} -> ok;
        {'DOWN', Ref, process, Pid, Why} -> ct:fail(Why)
    end.

stop_workers(Workers) ->
    [W ! {stop, self()} || W <- Workers],
    [receive {W, N} -> unlink(W), N after 10000 -> ct:fail({no_answer, W}) end || W <- Workers].

%% The live counts of `Kinds' return to what they were once this process
%% dropped its handles.
live_back_to(Mod, Before, Kinds) ->
    reckon_ct:wait_until(fun() ->
                                 erlang:garbage_collect(),
                                 Now = maps:with(Kinds, Mod:lib_info()),
                                 [ok || Now =:= maps:with(Kinds, Before)]
                         end).

metric(R, Key, Kind) ->
    reckon_nif:metrics_metric(R, #{key => Key, kind => Kind, highest => 1 bsl 40, sigfig => 3}).

%% What a recorder holds: its series, its info (but the bytes held, which
%% depend on capacities), its user metrics, and the values of `Handles'.
recorder_view(R, Handles) ->
    Keys = lists:sort(reckon_nif:metrics_keys(R)),
    #{keys => Keys,
      history => [reckon_nif:metrics_history(R, K, 3600) || K <- Keys, K =/= <<"new">>],
      info => maps:remove(bytes, reckon_nif:metrics_info(R)),
      user => lists:sort([K || #{key := K} <- reckon_nif:metrics_user(R)]),
      values => [reckon_nif:metric_value(H) || H <- Handles]}.

%% The trace events of `T' waiting in this process's mailbox.
events(T) ->
    receive
        {reckon_trace_event, call, _, _, _, _} = E -> [E | events(T)]
    after 100 -> []
    end.

split(List, N) ->
    Len = (length(List) + N - 1) div N,
    split_(List, Len).

split_([], _) -> [];
split_(List, Len) when length(List) =< Len -> [List];
split_(List, Len) ->
    {A, B} = lists:split(Len, List),
    [A | split_(B, Len)].
