%% Common Test suite of sluice_breaker (the PropEr models come with the
%% rest of the breaker work).
-module(sluice_breaker_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([set_time_on_the_system_clock_is_named/1]).
-export([blow_and_heal/1, run_melts_on_failures/1, names_and_control/1,
         fault_injection_is_counted/1, alarms_and_events/1, eight_processes_reconcile/1,
         churn_at_scale_holds_no_scheduler/1, killed_server_keeps_alarms_and_subscribers/1,
         idle_server_cost_does_not_grow/1, options_are_validated/1, bad_arguments_raise_badarg/1,
         fuse_option_tuples_install/1, reinstall_keeps_disabled/1, melt_unknown_is_not_found/1]).

-spec all() -> [atom()].
all() -> [blow_and_heal, run_melts_on_failures, names_and_control, fault_injection_is_counted,
          alarms_and_events, eight_processes_reconcile, churn_at_scale_holds_no_scheduler,
          killed_server_keeps_alarms_and_subscribers, idle_server_cost_does_not_grow,
          options_are_validated, bad_arguments_raise_badarg, fuse_option_tuples_install,
          reinstall_keeps_disabled, melt_unknown_is_not_found,
     set_time_on_the_system_clock_is_named].

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

%% With 50 000 breakers installed, removing and re-installing 1000 of them
%% holds no scheduler (no node-wide literal GC, as persistent_term:erase
%% caused): no long_schedule event of 20 ms, and every ask answers right.
churn_at_scale_holds_no_scheduler(_Config) ->
    Names = [{scale, I} || I <- lists:seq(1, 50000)],
    Opts = #{strategy => {standard, 0, 60000}, reset => manual},
    _ = [ok = sluice_breaker:install(N, Opts) || N <- Names],
    Churned = lists:sublist(Names, 1, 1000),
    %% processes holding a breaker-name term, as a node's workers do
    Holders = [spawn_link(fun() -> hold(N) end) || N <- lists:sublist(Names, 1, 200)],
    ?assertEqual([], sluice_long_schedule:quiet(5, fun(_) ->
        sluice_long_schedule:during(20, fun() ->
            _ = [begin ok = sluice_breaker:remove(N), ok = sluice_breaker:install(N, Opts) end
                 || N <- Churned],
            ok
        end)
    end)),
    [ok = sluice_breaker:melt(N) || {scale, I} = N <- Churned, I rem 2 =:= 0],
    Answers = [{N, sluice_breaker:ask(N, sync)} || N <- Churned],
    ?assertEqual([], [A || {{scale, I}, R} = A <- Answers,
                           R =/= case I rem 2 of 0 -> blown; 1 -> ok end]),
    _ = [unlink(P) || P <- Holders],
    _ = [exit(P, kill) || P <- Holders],
    _ = [ok = sluice_breaker:remove(N) || N <- Names],
    ?assertEqual({error, not_found}, sluice_breaker:ask({scale, 1}, sync)).

-spec hold(term()) -> no_return().
hold(Term) ->
    receive stop -> Term end,
    hold(Term).

%% The breaker server killed: the restarted one still raises the alarm of
%% a breaker blown afterwards and tells the subscribers it had, and puts
%% right an alarm whose breaker healed while it was down.
killed_server_keeps_alarms_and_subscribers(_Config) ->
    {ok, _} = application:ensure_all_started(sasl),
    ok = sluice_breaker:subscribe(),
    Healed = {killed, healed},
    ok = sluice_breaker:install(Healed, #{strategy => {standard, 0, 1000}, reset => manual}),
    ok = sluice_breaker:melt(Healed),
    receive {sluice_breaker, Healed, blown} -> ok after 1000 -> ct:fail(no_blown_event) end,
    Old = whereis(sluice_breaker_server),
    sys:suspend(Old),
    ok = sluice_breaker:reset(Healed),
    exit(Old, kill),
    New = wait_restart(sluice_breaker_server, Old),
    receive {sluice_breaker, Healed, healed} -> ok after 1000 -> ct:fail(no_healed_event) end,
    ?assertNot(lists:keymember({sluice_breaker, Healed}, 1, alarm_handler:get_alarms())),
    N = {killed, 1},
    ok = sluice_breaker:install(N, #{strategy => {standard, 0, 1000}, reset => manual}),
    ok = sluice_breaker:melt(N),
    receive {sluice_breaker, N, blown} -> ok after 1000 -> ct:fail(no_blown_event) end,
    ?assertEqual([{{sluice_breaker, N}, blown}],
                 [A || {{sluice_breaker, {killed, _}}, _} = A <- alarm_handler:get_alarms()]),
    ok = sluice_breaker:remove(N),
    receive {sluice_breaker, N, healed} -> ok after 1000 -> ct:fail(no_healed_on_remove) end,
    ?assertNot(lists:keymember({sluice_breaker, N}, 1, alarm_handler:get_alarms())),
    ?assertEqual(New, whereis(sluice_breaker_server)),
    ok = sluice_breaker:unsubscribe(),
    ok = sluice_breaker:remove(Healed).

wait_restart(Name, Old) ->
    case whereis(Name) of
        Pid when is_pid(Pid), Pid =/= Old -> Pid;
        _ -> timer:sleep(5), wait_restart(Name, Old)
    end.

%% With 40 000 breakers installed and one blown, the server's work stays
%% small: it drains what changed rather than re-reading every breaker
%% every 50 ms (that pass cost about one scheduler).
idle_server_cost_does_not_grow(_Config) ->
    Names = [{idle, I} || I <- lists:seq(1, 40000)],
    Opts = #{strategy => {standard, 0, 60000}, reset => manual},
    _ = [ok = sluice_breaker:install(N, Opts) || N <- Names],
    ok = sluice_breaker:melt({idle, 7}),
    timer:sleep(200),
    Server = whereis(sluice_breaker_server),
    {reductions, R0} = process_info(Server, reductions),
    timer:sleep(1000),
    {reductions, R1} = process_info(Server, reductions),
    ct:pal("breaker server: ~p reductions in about 1 s", [R1 - R0]),
    ?assert(R1 - R0 < 20000, R1 - R0),
    _ = [ok = sluice_breaker:remove(N) || N <- Names].

%% install/2 refuses unknown keys and bad values, naming the key.
options_are_validated(_Config) ->
    Bad = [{#{resett => 5}, resett}, {#{slow => foo}, slow}, {#{reset => foo}, reset},
           {#{backoff => foo}, backoff}, {#{backoff => 0.5}, backoff},
           {#{jitter => 2}, jitter}, {#{probes => 0}, probes}, {#{clock => wall}, clock},
           {#{max_reset => -1}, max_reset}, {#{strategy => {standard, 1 bsl 32, 10}}, strategy},
           {#{strategy => {fault_injection, 1.5, 1, 10}}, strategy},
           {#{strategy => {failure_rate, 0.5, 10, 0}}, strategy},
           {#{strategy => nope}, strategy}, {[{reset, 5}], options}],
    _ = [?assertEqual({Opts, {error, {bad_option, Key}}},
                      {Opts, sluice_breaker:install(validated, Opts)}) || {Opts, Key} <- Bad],
    ?assertEqual({error, not_found}, sluice_breaker:ask(validated, sync)),
    ok = sluice_breaker:install(validated, #{strategy => {failure_rate, 1, 10, 100},
                                             backoff => 2, jitter => 1, slow => 5,
                                             max_reset => 50, reset => 10}),
    ok = sluice_breaker:remove(validated).

%% Bad arguments raise badarg with a message naming the argument.
bad_arguments_raise_badarg(_Config) ->
    N = {bad_args, 1},
    ok = sluice_breaker:install(N, #{}),
    Fun = fun() -> ok end,
    Cases = [{fun() -> sluice_breaker:run(N, not_a_fun, sync) end, 2},
             {fun() -> sluice_breaker:run(N, fun(_) -> ok end, sync) end, 2},
             {fun() -> sluice_breaker:run(N, Fun, {classify, nope}) end, 3},
             {fun() -> sluice_breaker:set_time(N, -1) end, 2},
             {fun() -> sluice_breaker:set_time(N, 1 bsl 70) end, 2},
             {fun() -> sluice_breaker:set_time(N, 5) end, 1}],
    _ = [begin
             {'EXIT', {badarg, [{sluice_breaker, _, _, Info} | _]}} = (catch F()),
             #{cause := {Index, Why}} = proplists:get_value(error_info, Info),
             ?assert(is_list(Why))
         end || {F, Index} <- Cases],
    ok = sluice_breaker:remove(N).

%% fuse's install tuples work unchanged: {{standard, MaxR, MaxT}, {reset, Ms}}
%% and {{fault_injection, Rate, MaxR, MaxT}, {reset, Ms}}; bad ones are
%% refused as the map form would be.
fuse_option_tuples_install(_Config) ->
    N = {fuse_tuple, 1},
    ok = sluice_breaker:install(N, {{standard, 1, 10000}, {reset, 60000}}),
    ok = sluice_breaker:ask(N, sync),
    [ok = sluice_breaker:melt(N) || _ <- [1, 2]],
    ?assertEqual(blown, sluice_breaker:ask(N, sync)),
    F = {fuse_tuple, 2},
    ok = sluice_breaker:install(F, {{fault_injection, 1.0, 10, 1000}, {reset, 100}}),
    ?assertEqual(blown, sluice_breaker:ask(F, sync)),
    ?assertMatch(#{injected := 1}, sluice_breaker:info(F)),
    ?assertEqual({error, {bad_option, strategy}},
                 sluice_breaker:install(N, {{standard, -1, 10}, {reset, 10}})),
    ?assertEqual({error, {bad_option, reset}},
                 sluice_breaker:install(N, {{standard, 1, 10}, {reset, -5}})),
    ?assertEqual({error, {bad_option, options}}, sluice_breaker:install(N, {standard, 1, 10})),
    ok = sluice_breaker:remove(N),
    ok = sluice_breaker:remove(F).

%% As in fuse, a disabled breaker installed again stays disabled.
reinstall_keeps_disabled(_Config) ->
    N = {reinstall, 1},
    ok = sluice_breaker:install(N, #{}),
    ok = sluice_breaker:circuit_disable(N),
    ok = sluice_breaker:install(N, {{standard, 5, 1000}, {reset, 100}}),
    ?assertEqual(blown, sluice_breaker:ask(N, sync)),
    ?assertMatch(#{state := disabled}, sluice_breaker:info(N)),
    ok = sluice_breaker:circuit_enable(N),
    ok = sluice_breaker:ask(N, sync),
    ok = sluice_breaker:install(N, #{}),
    ok = sluice_breaker:ask(N, sync),
    ok = sluice_breaker:remove(N).

%% A documented difference: melt/1 of a name no breaker has is
%% {error, not_found} (fuse answers ok), so a misspelt name shows.
melt_unknown_is_not_found(_Config) ->
    ?assertEqual({error, not_found}, sluice_breaker:melt({never_installed, 1})).

%% Moving the clock of a breaker on the system clock is `{error,
%% system_clock}' from the NIF (it was a bare badarg); set_time/2 raises
%% badarg with a message naming the option. The breaker's options are one
%% map, its counters a map.
set_time_on_the_system_clock_is_named(_Config) ->
    Opts = #{strategy => #{type => standard, max_r => 1, max_t => 1000}, delay => 100,
             probes => 1, backoff => 1.0, max_delay => 1000, jitter => 0.0,
             manual_clock => false},
    Ref = sluice_nif:breaker_new(Opts),
    ?assertEqual({error, system_clock}, sluice_nif:breaker_set_time(Ref, 5)),
    ?assertMatch(#{state := closed, asks := 0, ok := 0, blown := 0, injected := 0, melts := 0,
                   trips := 0, probes := 0},
                 sluice_nif:breaker_info(Ref)),
    _ = [?assertError(badarg, sluice_nif:breaker_new(maps:remove(K, Opts)))
         || K <- maps:keys(Opts)],
    ?assertError(badarg, sluice_nif:breaker_new(Opts#{strategy := {standard, 1, 1000}})),
    _ = sluice_nif:breaker_new(Opts#{strategy := #{type => fault_injection, rate => 0.5,
                                                   max_r => 1, max_t => 10}}),
    _ = sluice_nif:breaker_new(Opts#{strategy := #{type => failure_rate, ratio => 0.5,
                                                   min_calls => 1, window => 10}}),
    ok = sluice_breaker:install(system_clock_breaker, #{}),
    sluice_assert:badarg(fun() -> sluice_breaker:set_time(system_clock_breaker, 5) end, 1,
                         "is a breaker on the system clock (not clock => manual)"),
    ok = sluice_breaker:remove(system_clock_breaker).
