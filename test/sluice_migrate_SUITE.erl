%% Locks, rate limiters, breakers and valves across builds of the NIF
%% library whose layouts differ: objects made by build A (the default) are
%% converted in place when build B (`layout_b') is loaded over it, again
%% when A is loaded over B, and each time the old code is purged; their
%% contents, counters and behaviour carry on exactly. Each kind has a
%% sequential case, and a concurrent one where 8 processes keep calling
%% its hot path through every swap (each call answered once; the counters
%% reconcile exactly with what the callers saw).
-module(sluice_migrate_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2, end_per_testcase/2]).
-export([lock_keeps_holders/1, lock_under_load/1, limiter_decides_on/1, limiter_under_load/1,
         breaker_heals_after/1, breaker_under_load/1, valve_counts_on/1, valve_under_load/1]).

-define(KINDS, [valve, sluice_lock, sluice_limiter, sluice_breaker]).
-define(WORKERS, 8).

all() ->
    [lock_keeps_holders, lock_under_load, limiter_decides_on, limiter_under_load,
     breaker_heals_after, breaker_under_load, valve_counts_on, valve_under_load].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(sluice),
    %% build B once, before any case times its swaps
    _ = sluice_builds:library(sluice, "sluice_nif", layout_b),
    [{orig_ebin, filename:join(code:lib_dir(sluice), "ebin")} | Config].

end_per_suite(_Config) ->
    ok.

init_per_testcase(_Case, Config) ->
    [{baseline, [{K, steady(K)} || K <- ?KINDS]} | Config].

%% Every object a case made is freed, by whichever library is loaded last.
end_per_testcase(_Case, Config) ->
    [?assertEqual({K, N}, {K, settle(K, N, 100)}) || {K, N} <- ?config(baseline, Config)],
    ?assertMatch(#{instances := 1}, lib_info()),
    ok.

%% ---------------------------------------------------------------------
%% Swapping builds

lib_info() -> maps:from_list(sluice_nif:lib_info()).

live(Kind) -> proplists:get_value(Kind, maps:get(live, lib_info())).

%% Loads build `Build' of the library as a new copy of the application.
load(Config, Build) ->
    Vsn = "90.0." ++ integer_to_list(erlang:unique_integer([positive])),
    _ = sluice_builds:install(sluice, ?config(priv_dir, Config), Vsn, Build),
    ?assertEqual({module, sluice_nif}, code:load_file(sluice_nif)),
    ?assertMatch(#{instances := 2}, lib_info()).

purge() ->
    _ = code:purge(sluice_nif),
    ?assertMatch(#{instances := 1}, lib_info()).

%% B over A, A purged, A over B, B purged; `Check(Step)' after each step;
%% then back to the application's own library.
swaps(Config, Check) ->
    try
        load(Config, layout_b),
        Check(b_over_a),
        purge(),
        Check(b),
        load(Config, default),
        Check(a_over_b),
        purge(),
        Check(a)
    after
        %% (a step that failed may have left old code behind)
        _ = code:purge(sluice_nif),
        sluice_builds:restore({sluice, ?config(orig_ebin, Config)}, [sluice_nif])
    end,
    Check(restored).

%% Runs `Fun' in a process of its own (see sluice_builds).
in_process(Fun) -> sluice_builds:in_process(Fun).

%% `Kind''s live count once it stays the same across two looks 100 ms
%% apart (removed breakers are freed when the breaker server drains its
%% change queue, every 50 ms).
steady(Kind) -> sluice_builds:settled(fun() -> live(Kind) end, 100).

settle(Kind, Want, Tries) ->
    _ = [erlang:garbage_collect(P) || P <- processes()],
    case live(Kind) of
        Want -> Want;
        _ when Tries > 0 -> timer:sleep(20), settle(Kind, Want, Tries - 1);
        Other -> Other
    end.

%% 8 processes calling `Call(Worker, I)' in a loop until told to stop, each
%% call repeated until it answers (an exception is counted and retried);
%% `Tally(Answer, Counts)' folds the answers. Returns a fun that stops them
%% and returns the summed counts and the exceptions seen.
workers(Call, Tally) ->
    Parent = self(),
    Pids = [spawn_link(fun() -> Parent ! {ready, self()}, work(Call, Tally, W, 0, #{}, 0) end)
            || W <- lists:seq(1, ?WORKERS)],
    [receive {ready, P} -> ok end || P <- Pids],
    fun() ->
            [P ! {stop, self()} || P <- Pids],
            Results = [receive {P, Counts, Failed} -> {Counts, Failed} end || P <- Pids],
            Sum = fun(Maps) ->
                          lists:foldl(fun(M, Acc) ->
                                              maps:fold(fun(K, V, A) ->
                                                                maps:update_with(K, fun(X) -> X + V end, V, A)
                                                        end, Acc, M)
                                      end, #{}, Maps)
                  end,
            {Sum([C || {C, _} <- Results]), lists:sum([F || {_, F} <- Results])}
    end.

work(Call, Tally, W, I, Counts, Failed) ->
    receive
        {stop, From} -> From ! {self(), Counts, Failed}
    after 0 ->
            {Answer, F} = answer(Call, W, I, 0),
            work(Call, Tally, W, I + 1, Tally(Answer, Counts), Failed + F)
    end.

answer(Call, W, I, Failed) ->
    try Call(W, I) of
        Answer -> {Answer, Failed}
    catch
        error:Why ->
            ct:log("worker ~p call ~p: ~p", [W, I, Why]),
            answer(Call, W, I, Failed + 1)
    end.

count(Key, Counts) -> maps:update_with(Key, fun(N) -> N + 1 end, 1, Counts).

%% Lets the workers make some calls on the library now loaded.
busy() -> timer:sleep(50).

%% ---------------------------------------------------------------------
%% Locks

%% Slots of a lock whose resources are terms with binaries, refs and pids;
%% two holders keep a loan each across the swaps; one dies under build B
%% and its place is freed by B's `down' callback (its watcher is told);
%% the other hands its loan back under A.
lock_keeps_holders(Config) ->
    in_process(fun() -> lock_scenario(Config) end).

lock_scenario(Config) ->
    Self = self(),
    Watcher = spawn_link(fun() -> forward(Self) end),
    Res = fun(I) -> {resource, I, binary:copy(<<I>>, 100), make_ref(), self()} end,
    Resources = maps:from_list([{I, Res(I)} || I <- lists:seq(0, 3)]),
    L = sluice_nif:lock_new(4, 6),
    [ok = sluice_nif:lock_fill(L, I, maps:get(I, Resources), {Watcher, 1})
     || I <- lists:seq(0, 3)],
    Holder = fun() ->
                     spawn_link(fun() ->
                                        {ok, {I, _} = Loan, R} = sluice_nif:lock_checkout(L),
                                        Self ! {holding, self(), Loan, R =:= maps:get(I, Resources)},
                                        receive
                                            {checkin, From} -> From ! {checked_in, sluice_nif:lock_checkin(L, Loan)}
                                        end,
                                        receive stop -> ok end
                                end)
             end,
    Take = fun(H) -> receive {holding, H, Loan, true} -> Loan end end,
    [H1, H2] = [Holder(), Holder()],
    {I1, _} = Loan1 = Take(H1),
    {I2, _} = Loan2 = Take(H2),
    Slots = fun() -> [sluice_nif:lock_slot(L, I) || I <- lists:seq(0, 5)] end,
    Info0 = sluice_nif:lock_info(L),
    ?assertMatch(#{in_use := 2, checkouts := 2, busy := 0, slots := 4, capacity := 6}, Info0),
    Slots0 = Slots(),
    Id = sluice_nif:lock_id(L),
    Step = fun(b_over_a) ->
                   ?assertEqual(Info0, sluice_nif:lock_info(L)),
                   ?assertEqual(Slots0, Slots()),
                   ?assertEqual(Id, sluice_nif:lock_id(L));
              (b) ->
                   %% a loan of a free slot lends its resource as it was put
                   ?assertEqual(Info0, sluice_nif:lock_info(L)),
                   {ok, {I, _} = Mine, R} = sluice_nif:lock_checkout(L),
                   ?assertEqual(maps:get(I, Resources), R),
                   ok = sluice_nif:lock_checkin(L, Mine),
                   %% H1 dies under B: its slot empties, its watcher is told
                   unlink(H1),
                   exit(H1, kill),
                   receive {sluice_lock, dead, I1} -> ok
                   after 5000 -> ct:fail(no_death_notice)
                   end,
                   ?assertMatch(#{deaths := 1, in_use := 1, checkouts := 3}, sluice_nif:lock_info(L)),
                   ?assertEqual(empty, sluice_nif:lock_slot(L, I1)),
                   ?assertEqual({error, not_lent}, sluice_nif:lock_checkin(L, Loan1));
              (a_over_b) ->
                   ?assertEqual(empty, sluice_nif:lock_slot(L, I1)),
                   %% the watcher makes it ready again, under A
                   ok = sluice_nif:lock_fill(L, I1, {refilled, I1}, {Watcher, 1}),
                   ?assertEqual(free, sluice_nif:lock_slot(L, I1));
              (a) ->
                   ?assertEqual(lent, sluice_nif:lock_slot(L, I2)),
                   H2 ! {checkin, self()},
                   receive {checked_in, Answer} -> ?assertEqual(ok, Answer) end,
                   ?assertEqual({error, not_lent}, sluice_nif:lock_checkin(L, Loan2)),
                   ?assertMatch(#{in_use := 0, deaths := 1, checkouts := 3, peak := 3},
                                sluice_nif:lock_info(L));
              (restored) ->
                   %% every slot lends again; the refilled one its new resource
                   Loans = [begin {ok, Lo, R} = sluice_nif:lock_checkout(L), {Lo, R} end
                            || _ <- lists:seq(1, 4)],
                   {error, busy} = sluice_nif:lock_checkout(L),
                   ?assertEqual(lists:sort([{refilled, I1} | [maps:get(I, Resources)
                                                             || I <- lists:seq(0, 3), I =/= I1]]),
                                lists:sort([R || {_, R} <- Loans])),
                   [ok = sluice_nif:lock_checkin(L, Lo) || {Lo, _} <- Loans],
                   ?assertMatch(#{in_use := 0, deaths := 1, checkouts := 7, busy := 1, peak := 4},
                                sluice_nif:lock_info(L))
           end,
    swaps(Config, Step),
    H2 ! stop,
    ok.

forward(To) ->
    receive Msg -> To ! Msg, forward(To) end.

%% 8 processes check out and in (or find it busy) through every swap; the
%% lock's counters are exactly what they saw.
lock_under_load(Config) ->
    in_process(fun() -> lock_load_scenario(Config) end).

lock_load_scenario(Config) ->
    L = sluice_nif:lock_new(3, 3),
    [ok = sluice_nif:lock_fill(L, I, {token, I}, none) || I <- lists:seq(0, 2)],
    Call = fun(_W, _I) ->
                   case sluice_nif:lock_checkout(L) of
                       {ok, {Index, _} = Loan, {token, Index}} ->
                           erlang:yield(),
                           ok = sluice_nif:lock_checkin(L, Loan),
                           ok;
                       {error, busy} ->
                           busy
                   end
           end,
    Stop = workers(Call, fun count/2),
    swaps(Config, fun(_) -> busy() end),
    {Counts, Failed} = Stop(),
    ct:log("lock calls: ~p, exceptions ~p", [Counts, Failed]),
    Ok = maps:get(ok, Counts, 0),
    Busy = maps:get(busy, Counts, 0),
    ?assert(Ok > 0),
    ?assertMatch(#{checkouts := Ok, busy := Busy, in_use := 0, deaths := 0},
                 sluice_nif:lock_info(L)),
    ?assertEqual(0, Failed).

%% ---------------------------------------------------------------------
%% Rate limiters

%% A limiter with many keys (more than it holds: some are evicted) and
%% overrides decides through every swap as a limiter that never left the
%% library loaded last decides on the same requests.
limiter_decides_on(Config) ->
    in_process(fun() -> limiter_scenario(Config) end).

limiter_scenario(Config) ->
    Opts = #{limit => 10, period => 1000, burst => 3, max_keys => 320, max_overrides => 40,
             global => #{limit => 4000, period => 1000, burst => 400}, clock => manual},
    {ok, R} = sluice_limit:new_rate(Opts),
    Ops = fun(Round) -> limiter_ops(Round) end,
    Run = fun(Lim, Round) -> [limiter_op(Lim, Op) || Op <- Ops(Round)] end,
    First = Run(R, 0),
    Info0 = sluice_limit:info(R),
    #{overrides := Overrides, keys := Keys, evicted := Evicted} = Info0,
    ?assert(Overrides > 0 andalso Keys =< 320 andalso Evicted > 0),
    Id = sluice_nif:rate_id(element(2, R)),
    Rounds = [{b_over_a, 1}, {b, 2}, {a_over_b, 3}, {a, 4}, {restored, 5}],
    Self = self(),
    Step = fun(S) ->
                   ?assertEqual(Id, sluice_nif:rate_id(element(2, R))),
                   {S, N} = lists:keyfind(S, 1, Rounds),
                   Self ! {round, N, Run(R, N)}
           end,
    swaps(Config, Step),
    Later = [receive {round, N, Answers} -> Answers end || {_, N} <- Rounds],
    %% the same requests on a limiter made now, never converted
    {ok, Fresh} = sluice_limit:new_rate(Opts),
    ?assertEqual([First | Later], [Run(Fresh, N) || N <- lists:seq(0, 5)]),
    ?assertEqual(sluice_limit:info(Fresh), sluice_limit:info(R)),
    ok.

%% Round `N' of requests: the clock moves on, overrides come and go, and
%% 600 keys (of 800) ask, some more than their burst allows.
limiter_ops(N) ->
    [{time, N * 700} |
     [{override, {key, K}, case (K + N) rem 3 of
                               0 -> default;
                               _ -> #{limit => 100, period => 1000, burst => 5 + N}
                           end} || K <- lists:seq(N * 7, N * 7 + 30)]]
    ++ [{check, {key, (K * 7 + N * 13) rem 800}, 1 + K rem 2} || K <- lists:seq(1, 600)].

limiter_op(R, {time, Ms}) -> sluice_limit:set_time(R, Ms);
limiter_op(R, {override, Key, Rate}) -> sluice_limit:set_override(R, Key, Rate);
limiter_op(R, {check, Key, Cost}) -> sluice_limit:check(R, Key, Cost).

%% 8 processes check keys through every swap; allowed and refused are
%% exactly what they were told.
limiter_under_load(Config) ->
    in_process(fun() -> limiter_load_scenario(Config) end).

limiter_load_scenario(Config) ->
    {ok, R} = sluice_limit:new_rate(#{limit => 1000, period => 1000, burst => 20,
                                      max_keys => 2000}),
    Call = fun(W, I) ->
                   case sluice_limit:check(R, {W, I rem 50}) of
                       ok -> allowed;
                       {error, {retry_after, _}} -> refused
                   end
           end,
    Stop = workers(Call, fun count/2),
    swaps(Config, fun(_) -> busy() end),
    {Counts, Failed} = Stop(),
    ct:log("limiter calls: ~p, exceptions ~p", [Counts, Failed]),
    Allowed = maps:get(allowed, Counts, 0),
    Refused = maps:get(refused, Counts, 0),
    ?assert(Allowed > 0),
    ?assertMatch(#{allowed := Allowed, refused := Refused}, sluice_limit:info(R)),
    ?assertEqual(0, Failed).

%% ---------------------------------------------------------------------
%% Breakers

%% A breaker melted to blown and installed by name stays blown through the
%% swaps (its window, counters and run times too), is still found by
%% name and listed with the same id, and heals after them; a failure-rate
%% breaker keeps its window of asks and melts.
breaker_heals_after(Config) ->
    in_process(fun() -> breaker_scenario(Config) end).

breaker_scenario(Config) ->
    N = {migrated, breaker},
    F = {migrated, rate},
    ok = sluice_breaker:install(N, #{strategy => {standard, 2, 60000}, reset => 1000,
                                     probes => 2, backoff => 2, clock => manual,
                                     run_times => true}),
    ok = sluice_breaker:install(F, #{strategy => {failure_rate, 0.5, 10, 60000},
                                     reset => manual, clock => manual}),
    [ok = sluice_breaker:run(N, fun() -> ok end, sync) || _ <- lists:seq(1, 5)],
    [ok = sluice_breaker:melt(N) || _ <- lists:seq(1, 3)],
    blown = sluice_breaker:ask(N, sync),
    %% F: 8 asks and 4 melts so far, within its window
    [ok = sluice_breaker:ask(F, sync) || _ <- lists:seq(1, 8)],
    [ok = sluice_breaker:melt(F) || _ <- lists:seq(1, 4)],
    InfoN = sluice_breaker:info(N),
    InfoF = sluice_breaker:info(F),
    ?assertMatch(#{state := open, melts := 3, trips := 1, asks := 6, blown := 1}, InfoN),
    ?assertMatch(#{state := closed, asks := 8, melts := 4}, InfoF),
    Row = fun(Name) -> [T || #{kind := breaker, name := Nm} = T <- sluice:tools(), Nm =:= Name] end,
    [#{id := Id, histograms := #{run := #{count := 5} = Hist}}] = Row(N),
    Same = fun() ->
                   ?assertEqual(InfoN, sluice_breaker:info(N)),
                   ?assertEqual(InfoF, sluice_breaker:info(F)),
                   ?assertMatch([#{id := Id, histograms := #{run := Hist}}], Row(N))
           end,
    Step = fun(b_over_a) ->
                   Same();
              (b) ->
                   Same(),
                   %% one more ask: still blown (the deadline is a second away)
                   ?assertEqual(blown, sluice_breaker:ask(N, sync));
              (a_over_b) ->
                   ?assertMatch(#{state := open, asks := 7, blown := 2}, sluice_breaker:info(N)),
                   %% F's window is carried: two more melts over ten asks blow it
                   ok = sluice_breaker:ask(F, sync),
                   ok = sluice_breaker:ask(F, sync),
                   ?assertMatch(#{state := closed}, sluice_breaker:info(F)),
                   ok = sluice_breaker:melt(F),
                   ?assertMatch(#{state := open, trips := 1, melts := 5}, sluice_breaker:info(F));
              (a) ->
                   %% N heals: its deadline passes, two probes go well
                   ok = sluice_breaker:set_time(N, 1000),
                   ?assertEqual(ok, sluice_breaker:run(N, fun() -> ok end, sync)),
                   ?assertMatch(#{state := half_open}, sluice_breaker:info(N)),
                   ?assertEqual(ok, sluice_breaker:run(N, fun() -> ok end, sync)),
                   ?assertMatch(#{state := closed, probes := 2, trips := 1},
                                sluice_breaker:info(N));
              (restored) ->
                   ?assertMatch([#{id := Id, histograms := #{run := #{count := 7}}}], Row(N)),
                   ?assertEqual(ok, sluice_breaker:ask(N, sync)),
                   ?assertEqual(blown, sluice_breaker:ask(F, sync))
           end,
    swaps(Config, Step),
    ok = sluice_breaker:remove(N),
    ok = sluice_breaker:remove(F),
    ?assertEqual({error, not_found}, sluice_breaker:ask(N, sync)).

%% 8 processes ask (and one in 256 calls melt) a named breaker through
%% every swap; its asks, answers and melts are exactly what they saw.
breaker_under_load(Config) ->
    in_process(fun() -> breaker_load_scenario(Config) end).

breaker_load_scenario(Config) ->
    N = {migrated, loaded},
    %% (never blown: far fewer melts than that within the window)
    ok = sluice_breaker:install(N, #{strategy => {standard, 4000000, 600000}}),
    Call = fun(_W, I) when I rem 256 =:= 0 -> ok = sluice_breaker:melt(N), melt;
              (_W, _I) -> sluice_breaker:ask(N, sync)
           end,
    Stop = workers(Call, fun count/2),
    swaps(Config, fun(S) -> busy(), ct:log("~p: ~p", [S, sluice_breaker:info(N)]) end),
    {Counts, Failed} = Stop(),
    ct:log("breaker calls: ~p, exceptions ~p", [Counts, Failed]),
    Ok = maps:get(ok, Counts, 0),
    Melts = maps:get(melt, Counts, 0),
    ?assertEqual(#{}, maps:without([ok, melt], Counts)),
    ?assertMatch(#{state := closed, asks := Ok, ok := Ok, blown := 0, melts := Melts},
                 sluice_breaker:info(N)),
    ?assertEqual(0, Failed),
    ok = sluice_breaker:remove(N).

%% ---------------------------------------------------------------------
%% Valves

%% A named valve's rates, factors, counters and reported drops carry on
%% through the swaps, and a valve of the first layout (as released
%% libraries made them) is still served.
valve_counts_on(Config) ->
    in_process(fun() -> valve_scenario(Config) end).

valve_scenario(Config) ->
    {ok, V} = sluice_drop:new({migrated, valve},
                              #{rate => 0.5, rates => #{high => 1.0, never => 0.0}}),
    [sluice_drop:ask(V) || _ <- lists:seq(1, 1000)],
    [ok = sluice_drop:ask(V, high) || _ <- lists:seq(1, 300)],
    [drop = sluice_drop:ask(V, never) || _ <- lists:seq(1, 200)],
    Taken = sluice_drop:take_dropped(V),
    ok = sluice_drop:set_rate(V, high, 0.75),
    Ref = element(2, V),
    ok = sluice_nif:drop_set(Ref, 0, factor, 0.5),
    Old = sluice_nif:drop_new_v1([0.0, 1.0]),
    [drop = sluice_nif:drop_ask(Old, 0) || _ <- lists:seq(1, 7)],
    ok = sluice_nif:drop_ask(Old, 1),
    Info0 = sluice_drop:info(V),
    ?assertMatch(#{asked := 1500, dropped := Taken}, Info0),
    Settings = fun() -> [maps:with([rate, factor], R) || R <- sluice_nif:drop_counters(Ref)] end,
    Settings0 = Settings(),
    Id = sluice_nif:drop_id(Ref),
    Asks = [{b_over_a, 10}, {b, 20}, {a_over_b, 30}, {a, 40}, {restored, 50}],
    Step = fun(S) ->
                   {S, K} = lists:keyfind(S, 1, Asks),
                   Before = sluice_drop:info(V),
                   ?assertEqual(Id, sluice_nif:drop_id(Ref)),
                   ?assertEqual(Settings0, Settings()),
                   [drop = sluice_drop:ask(V, never) || _ <- lists:seq(1, K)],
                   [_ = sluice_drop:ask(V, high) || _ <- lists:seq(1, K)],
                   drop = sluice_nif:drop_ask(Old, 0),
                   After = sluice_drop:info(V),
                   #{asked := A0, dropped := D0, priorities := #{never := #{dropped := N0}}} = Before,
                   #{asked := A1, dropped := D1, priorities := #{never := #{dropped := N1}}} = After,
                   ?assertEqual({A0 + 2 * K, N0 + K}, {A1, N1}),
                   %% only the drops since the last report are reported
                   ?assertEqual(D1 - D0, sluice_drop:take_dropped(V))
           end,
    swaps(Config, Step),
    #{asked := Asked, priorities := #{never := #{dropped := Never}}} = sluice_drop:info(V),
    ?assertEqual(1500 + 2 * 150, Asked),
    ?assertEqual(200 + 150, Never),
    ?assertEqual(0, sluice_drop:take_dropped(V)),
    ?assertMatch([#{dropped := 12, kept := 0}, #{kept := 1, dropped := 0}],
                 sluice_nif:drop_counters(Old)),
    ok = sluice_drop:delete(V).

%% 8 processes ask a valve through every swap; its counters per priority
%% are exactly what they were told.
valve_under_load(Config) ->
    in_process(fun() -> valve_load_scenario(Config) end).

valve_load_scenario(Config) ->
    Ref = sluice_nif:drop_new([0.5, 1.0, 0.0]),
    Call = fun(_W, I) -> {I rem 3, sluice_nif:drop_ask(Ref, I rem 3)} end,
    Stop = workers(Call, fun count/2),
    swaps(Config, fun(_) -> busy() end),
    {Counts, Failed} = Stop(),
    ct:log("valve calls: ~p, exceptions ~p", [Counts, Failed]),
    Got = fun(P, What) -> maps:get({P, What}, Counts, 0) end,
    Want = [#{kept => Got(P, ok), dropped => Got(P, drop)} || P <- [0, 1, 2]],
    ?assertEqual(Want, [maps:with([kept, dropped], R) || R <- sluice_nif:drop_counters(Ref)]),
    ?assertEqual(0, Got(1, drop) + Got(2, ok)),
    ?assertEqual(Got(0, drop) + Got(2, drop), sluice_nif:drop_take_dropped(Ref)),
    ?assertEqual(0, Failed).
