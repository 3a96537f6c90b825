%% Common Test suite of sluice_breaker (the PropEr models come with the
%% rest of the breaker work).
-module(sluice_breaker_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([blow_and_heal/1, run_melts_on_failures/1, names_and_control/1,
         fault_injection_is_counted/1, alarms_and_events/1, eight_processes_reconcile/1]).

-spec all() -> [atom()].
all() -> [blow_and_heal, run_melts_on_failures, names_and_control, fault_injection_is_counted,
          alarms_and_events, eight_processes_reconcile].

-spec init_per_suite(list()) -> list().
init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(sluice),
    Config.

-spec end_per_suite(list()) -> ok.
end_per_suite(_Config) ->
    ok.

%% Blown on the melt after MaxR within MaxT; half-open after the reset
%% delay; a failed probe reopens for twice as long; a good one heals.
blow_and_heal(_Config) ->
    N = {db, 1},
    ok = sluice_breaker:install(N, #{strategy => {standard, 2, 1000}, reset => 100,
                                     backoff => 2.0, clock => manual}),
    ok = sluice_breaker:ask(N, sync),
    [ok = sluice_breaker:melt(N) || _ <- [1, 2]],
    ok = sluice_breaker:ask(N, sync),
    ok = sluice_breaker:melt(N),
    ?assertEqual(blown, sluice_breaker:ask(N, sync)),
    ok = sluice_breaker:set_time(N, 100),
    ?assertEqual(ok, sluice_breaker:ask(N, sync)),
    ?assertMatch(#{state := half_open, probes := 1}, sluice_breaker:info(N)),
    ok = sluice_breaker:melt(N),
    ok = sluice_breaker:set_time(N, 299),
    ?assertEqual(blown, sluice_breaker:ask(N, sync)),
    ok = sluice_breaker:set_time(N, 300),
    ?assertEqual(fine, sluice_breaker:run(N, fun() -> fine end, sync)),
    ?assertMatch(#{state := closed, trips := 2, melts := 4}, sluice_breaker:info(N)),
    ok = sluice_breaker:remove(N).

%% run/3 melts on {error, _}, on exceptions (re-raised) and on slow calls,
%% or as a classifier says.
run_melts_on_failures(_Config) ->
    N = flaky,
    ok = sluice_breaker:install(N, #{strategy => {standard, 10, 60000}, slow => 20}),
    ?assertEqual({error, down}, sluice_breaker:run(N, fun() -> {error, down} end, sync)),
    ?assertError(boom, sluice_breaker:run(N, fun() -> error(boom) end, sync)),
    ?assertEqual(late, sluice_breaker:run(N, fun() -> timer:sleep(30), late end, sync)),
    ?assertEqual(ok, sluice_breaker:run(N, fun() -> ok end, sync)),
    Classify = {classify, fun(nope) -> melt; (_) -> ok end},
    ?assertEqual(nope, sluice_breaker:run(N, fun() -> nope end, Classify)),
    ?assertMatch(#{melts := 4, asks := 5}, sluice_breaker:info(N)),
    ok = sluice_breaker:remove(N).

names_and_control(_Config) ->
    ?assertEqual({error, not_found}, sluice_breaker:ask(<<"nobody">>, sync)),
    ?assertEqual({error, not_found}, sluice_breaker:melt(<<"nobody">>)),
    ?assertEqual({error, not_found}, sluice_breaker:remove(<<"nobody">>)),
    ?assertMatch({error, {bad_option, _}},
                 sluice_breaker:install(x, #{strategy => {standard, -1, 10}})),
    N = <<"payments">>,
    ok = sluice_breaker:install(N, #{reset => manual, strategy => {standard, 0, 1000}}),
    ok = sluice_breaker:circuit_disable(N),
    ?assertEqual(blown, sluice_breaker:ask(N, async_dirty)),
    ok = sluice_breaker:circuit_enable(N),
    ?assertEqual(ok, sluice_breaker:ask(N, async_dirty)),
    ok = sluice_breaker:melt(N),
    ?assertEqual(blown, sluice_breaker:ask(N, async_dirty)),
    ok = sluice_breaker:reset(N),
    ?assertEqual(ok, sluice_breaker:ask(N, async_dirty)),
    ok = sluice_breaker:remove(N),
    ?assertEqual({error, not_found}, sluice_breaker:info(N)).

%% Fault injection refuses about `Rate' of the asks of a closed breaker and
%% counts them (fuse does not).
fault_injection_is_counted(_Config) ->
    N = injected,
    ok = sluice_breaker:install(N, #{strategy => {fault_injection, 0.25, 1000, 1000}}),
    Blown = length([x || _ <- lists:seq(1, 20000), sluice_breaker:ask(N, sync) =:= blown]),
    #{injected := Injected, blown := B, asks := Asks} = sluice_breaker:info(N),
    ?assertEqual({Blown, Blown, 20000}, {Injected, B, Asks}),
    ?assert(abs(Blown / 20000 - 0.25) < 0.02, Blown),
    ok = sluice_breaker:remove(N).

%% The melt that blows sets a SASL alarm and tells subscribers; healing
%% clears it and tells them too.
alarms_and_events(_Config) ->
    {ok, _} = application:ensure_all_started(sasl),
    N = {alarmed, 1},
    ok = sluice_breaker:install(N, #{strategy => {standard, 0, 1000}, reset => manual}),
    ok = sluice_breaker:subscribe(),
    ok = sluice_breaker:melt(N),
    receive {sluice_breaker, N, blown} -> ok after 1000 -> ct:fail(no_blown_event) end,
    ?assert(lists:member({{sluice_breaker, N}, blown}, alarm_handler:get_alarms())),
    ok = sluice_breaker:melt(N),
    ok = sluice_breaker:reset(N),
    receive {sluice_breaker, N, healed} -> ok after 1000 -> ct:fail(no_healed_event) end,
    ?assertNot(lists:keymember({sluice_breaker, N}, 1, alarm_handler:get_alarms())),
    receive {sluice_breaker, N, _} = Extra -> ct:fail({extra, Extra}) after 200 -> ok end,
    ok = sluice_breaker:unsubscribe(),
    ok = sluice_breaker:remove(N).

%% 8 processes ask and melt one breaker at once (it blows and heals many
%% times on a 1 ms reset): every counter reconciles.
eight_processes_reconcile(_Config) ->
    N = {busy, 8},
    ok = sluice_breaker:install(N, #{strategy => {standard, 5, 50}, reset => 1, probes => 2}),
    Self = self(),
    Pids = [spawn_link(fun() -> Self ! {done, self(), work(N, 20000, 0, 0)} end)
            || _ <- lists:seq(1, 8)],
    Results = [receive {done, P, R} -> R end || P <- Pids],
    Asks = lists:sum([A || {A, _} <- Results]),
    Melts = lists:sum([M || {_, M} <- Results]),
    #{asks := InfoAsks, ok := Ok, blown := Blown, melts := InfoMelts, trips := Trips} =
        sluice_breaker:info(N),
    ct:pal("asks ~p ok ~p blown ~p melts ~p trips ~p", [InfoAsks, Ok, Blown, InfoMelts, Trips]),
    ?assertEqual({Asks, Melts}, {InfoAsks, InfoMelts}),
    ?assertEqual(InfoAsks, Ok + Blown),
    ?assert(Trips > 0 andalso Blown > 0),
    ok = sluice_breaker:remove(N).

%% Asks `Left' times, melting after every tenth ask let through.
work(_N, 0, Asks, Melts) ->
    {Asks, Melts};
work(N, Left, Asks, Melts) ->
    case sluice_breaker:ask(N, sync) of
        ok when Left rem 10 =:= 0 ->
            ok = sluice_breaker:melt(N),
            work(N, Left - 1, Asks + 1, Melts + 1);
        _ ->
            work(N, Left - 1, Asks + 1, Melts)
    end.
