%% Tests of sluice_drop: statistics of the drop decision, named valves,
%% priorities, counters, regulation and bad input.
-module(sluice_drop_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-define(NOT_A_VALVE, "not a valve handle (or a handle of another kind)").

-export([all/0, groups/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([valve_errors_are_named/1]).
-export([random_fraction/1, random_extremes/1, ask_fraction/1, priorities/1,
         counters_and_take_dropped/1, set_rate_is_visible_to_all/1,
         names_are_any_term/1, lookup_does_not_message/1, outlives_creator/1,
         delete_and_not_found/1, bad_input/1, bad_options/1,
         regulation_curve/1, regulation_follows_signal/1,
         regulation_spares_priorities/1, regulation_survives_bad_signal/1,
         regulator_stops_with_valve/1, improper_priorities_leave_the_server_up/1,
         forged_handles_raise_badarg/1, idle_valves_are_small/1, first_layout_is_served/1]).

-define(N, 100000).

all() ->
    [{group, statistics}, {group, valves}, {group, errors}, {group, regulation}].

groups() ->
    [{statistics, [], [random_fraction, random_extremes, ask_fraction]},
     {valves, [], [priorities, counters_and_take_dropped, set_rate_is_visible_to_all,
                   names_are_any_term, lookup_does_not_message, outlives_creator,
                   delete_and_not_found, idle_valves_are_small, first_layout_is_served]},
     {errors, [], [valve_errors_are_named,
                   bad_input, bad_options, improper_priorities_leave_the_server_up,
                   forged_handles_raise_badarg]},
     {regulation, [], [regulation_curve, regulation_follows_signal,
                       regulation_spares_priorities, regulation_survives_bad_signal,
                       regulator_stops_with_valve]}].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(sluice),
    Config.

end_per_suite(_Config) ->
    ok.

init_per_testcase(Case, Config) ->
    [{valve, {Case, erlang:unique_integer()}} | Config].

end_per_testcase(_Case, Config) ->
    _ = sluice_drop:delete(?config(valve, Config)),
    ok.

%% The kept fraction of N Bernoulli(Rate) trials lies within 4 standard deviations.
assert_fraction(Rate, Kept, N) ->
    Sd = math:sqrt(N * Rate * (1 - Rate)),
    Dev = abs(Kept - N * Rate),
    ct:log("rate ~p: kept ~p of ~p (~.2f sd)", [Rate, Kept, N, Dev / Sd]),
    ?assert(Dev =< 4 * Sd).

count(Fun, N) -> count(Fun, N, 0).
count(_Fun, 0, Acc) -> Acc;
count(Fun, N, Acc) ->
    case Fun() of
        true -> count(Fun, N - 1, Acc + 1);
        ok -> count(Fun, N - 1, Acc + 1);
        _ -> count(Fun, N - 1, Acc)
    end.

random_fraction(_Config) ->
    [assert_fraction(Rate, count(fun() -> sluice_drop:random(Rate) end, ?N), ?N)
     || Rate <- [0.05, 0.5, 0.95]].

random_extremes(_Config) ->
    ?assertEqual(?N, count(fun() -> sluice_drop:random(1.0) end, ?N)),
    ?assertEqual(0, count(fun() -> sluice_drop:random(0.0) end, ?N)),
    ?assertEqual(1000, count(fun() -> sluice_drop:random(1) end, 1000)),
    ?assertEqual(0, count(fun() -> sluice_drop:random(0) end, 1000)).

ask_fraction(Config) ->
    Name = ?config(valve, Config),
    {ok, V} = sluice_drop:new(Name, #{rate => 0.05, rates => #{mid => 0.5, hi => 0.95}}),
    Kept = [{P, Rate, count(fun() -> sluice_drop:ask(V, P) end, ?N)}
            || {P, Rate} <- [{default, 0.05}, {mid, 0.5}, {hi, 0.95}]],
    [assert_fraction(Rate, K, ?N) || {_, Rate, K} <- Kept],
    #{priorities := Per} = sluice_drop:info(V),
    [?assertMatch(#{asked := ?N, kept := K}, maps:get(P, Per)) || {P, _, K} <- Kept].

priorities(Config) ->
    Name = ?config(valve, Config),
    {ok, V} = sluice_drop:new(Name, #{rate => 0.0, rates => #{high => 1.0, {tenant, 7} => 0}}),
    ?assertEqual(drop, sluice_drop:ask(V)),
    ?assertEqual(ok, sluice_drop:ask(V, high)),
    ?assertEqual(drop, sluice_drop:ask(V, {tenant, 7})),
    ?assertEqual(ok, sluice_drop:ask(Name, high)),
    #{priorities := Per, asked := 4, kept := 2, dropped := 2} = sluice_drop:info(V),
    ?assertEqual([default, high, {tenant, 7}], lists:sort(maps:keys(Per))),
    ?assertMatch(#{rate := 1.0, effective_rate := 1.0, asked := 2, kept := 2}, maps:get(high, Per)).

counters_and_take_dropped(Config) ->
    Name = ?config(valve, Config),
    {ok, V} = sluice_drop:new(Name, #{rate => 0.3, rates => #{never => 0.0}}),
    Parent = self(),
    Pids = [spawn_link(fun() ->
                               Ok = count(fun() -> sluice_drop:ask(V) end, 20000),
                               _ = [drop = sluice_drop:ask(V, never) || _ <- lists:seq(1, 500)],
                               Parent ! {self(), Ok}
                       end) || _ <- lists:seq(1, 4)],
    Kept = lists:sum([receive {P, K} -> K end || P <- Pids]),
    #{asked := Asked, kept := KeptInfo, dropped := Dropped, priorities := Per} = sluice_drop:info(V),
    ?assertEqual(4 * 20500, Asked),
    ?assertEqual(Kept, KeptInfo),
    ?assertEqual(Asked, KeptInfo + Dropped),
    ?assertMatch(#{asked := 2000, dropped := 2000, kept := 0}, maps:get(never, Per)),
    ?assertEqual(Dropped, sluice_drop:take_dropped(V)),
    ?assertEqual(0, sluice_drop:take_dropped(Name)),
    drop = sluice_drop:ask(V, never),
    ?assertEqual(1, sluice_drop:take_dropped(V)).

set_rate_is_visible_to_all(Config) ->
    Name = ?config(valve, Config),
    {ok, V} = sluice_drop:new(Name, #{rate => 1.0, rates => #{low => 1}}),
    ok = sluice_drop:set_rate(V, 0.0),
    ok = sluice_drop:set_rate(Name, low, 0),
    Self = self(),
    spawn_link(fun() ->
                       Self ! {answers, count(fun() -> sluice_drop:ask(V) end, 1000),
                               count(fun() -> sluice_drop:ask(V, low) end, 1000)}
               end),
    receive {answers, A, B} -> ?assertEqual({0, 0}, {A, B}) end,
    ok = sluice_drop:set_rate(V, 1),
    ?assertEqual(1000, count(fun() -> sluice_drop:ask(V) end, 1000)),
    #{priorities := #{default := #{rate := 1.0}, low := #{rate := 0.0}}} = sluice_drop:info(V).

names_are_any_term(_Config) ->
    Names = [<<"valve-", (integer_to_binary(I))/binary>> || I <- lists:seq(1, 50)]
        ++ [{tenant, "x", 1.5}, make_ref(), 42, [a, <<1>>]],
    %% warm up every code path once, then make sure nothing creates atoms
    {ok, _} = sluice_drop:new(warmup, #{}), ok = sluice_drop:delete(warmup),
    Before = erlang:system_info(atom_count),
    [{ok, _} = sluice_drop:new(N, #{rate => 1.0}) || N <- Names],
    [ok = sluice_drop:ask(N) || N <- Names],
    [?assertMatch(#{name := N, asked := 1}, sluice_drop:info(N)) || N <- Names],
    [ok = sluice_drop:delete(N) || N <- Names],
    ?assertEqual(Before, erlang:system_info(atom_count)).

lookup_does_not_message(Config) ->
    Name = ?config(valve, Config),
    {ok, V} = sluice_drop:new(Name, #{}),
    ok = sys:suspend(sluice_drop_server),
    try
        ?assertEqual(ok, sluice_drop:ask(Name)),
        ?assertEqual({ok, V}, sluice_drop:lookup(Name)),
        ?assertEqual(ok, sluice_drop:ask(V)),
        ?assertMatch(#{asked := 2}, sluice_drop:info(Name))
    after
        sys:resume(sluice_drop_server)
    end.

outlives_creator(Config) ->
    Name = ?config(valve, Config),
    {Pid, Ref} = spawn_monitor(fun() -> {ok, _} = sluice_drop:new(Name, #{rate => 1.0}) end),
    receive {'DOWN', Ref, process, Pid, normal} -> ok end,
    erlang:garbage_collect(),
    ?assertEqual(ok, sluice_drop:ask(Name)).

delete_and_not_found(Config) ->
    Name = ?config(valve, Config),
    {ok, V} = sluice_drop:new(Name, #{}),
    ?assertEqual({error, already_exists}, sluice_drop:new(Name, #{})),
    ok = sluice_drop:delete(V),
    ?assertEqual({error, not_found}, sluice_drop:delete(Name)),
    [?assertEqual({error, not_found}, F())
     || F <- [fun() -> sluice_drop:ask(V) end, fun() -> sluice_drop:ask(Name) end,
              fun() -> sluice_drop:ask(Name, default) end,
              fun() -> sluice_drop:info(V) end, fun() -> sluice_drop:info(Name) end,
              fun() -> sluice_drop:take_dropped(Name) end,
              fun() -> sluice_drop:set_rate(V, 0.5) end,
              fun() -> sluice_drop:lookup(Name) end,
              fun() -> sluice_drop:regulate(Name, none) end]],
    %% the name is free again
    {ok, _} = sluice_drop:new(Name, #{}).

bad_input(Config) ->
    Name = ?config(valve, Config),
    {ok, V} = sluice_drop:new(Name, #{rates => #{low => 0.5}}),
    Bad = [fun() -> sluice_drop:random(1.5) end,
           fun() -> sluice_drop:random(-0.1) end,
           fun() -> sluice_drop:random(2) end,
           fun() -> sluice_drop:random(half) end,
           fun() -> sluice_drop:ask(V, unknown) end,
           fun() -> sluice_drop:set_rate(V, 1.01) end,
           fun() -> sluice_drop:set_rate(V, low, "0.5") end,
           fun() -> sluice_drop:set_rate(V, unknown, 0.5) end,
           fun() -> sluice_drop:new(other, [{rate, 0.5}]) end],
    [?assertError(badarg, F()) || F <- Bad],
    %% the message names the argument
    try sluice_drop:random(1.5)
    catch error:badarg:Stack ->
            Text = lists:flatten(erl_error:format_exception(error, badarg, Stack)),
            ?assertNotEqual(nomatch, string:find(Text, "rate must be a number in [0.0, 1.0]"))
    end.

bad_options(_Config) ->
    Sig = fun() -> 0 end,
    Cases = [{#{colour => red}, colour},
             {#{rate => 1.2}, rate},
             {#{rate => x}, rate},
             {#{rates => [{a, 0.5}]}, rates},
             {#{rates => #{a => -1}}, {rates, a}},
             {#{rates => maps:from_list([{I, 0.5} || I <- lists:seq(1, 16)])},
              {rates, too_many_priorities}},
             {#{regulate => on}, regulate},
             {#{regulate => #{signal => Sig, low => 1}}, {missing, high}},
             {#{regulate => #{signal => 1, low => 1, high => 2}}, signal},
             {#{regulate => #{signal => Sig, low => 5, high => 2}}, high},
             {#{regulate => #{signal => Sig, low => 1, high => 2, interval => 0}}, interval},
             {#{regulate => #{signal => Sig, low => 1, high => 2, min_rate => 3}}, min_rate},
             {#{regulate => #{signal => Sig, low => 1, high => 2, priorities => [nope]}},
              {priorities, nope}},
             {#{regulate => #{signal => Sig, low => 1, high => 2, every => 1}}, every},
             {#{regulate => #{signal => Sig, low => 1, high => 2, priorities => [a | b]}},
              priorities},
             {#{regulate => #{signal => Sig, low => 1 bsl 1100, high => 1 bsl 1101}}, low},
             {#{regulate => #{signal => Sig, low => 1, high => 2, interval => 1 bsl 64}},
              interval}],
    [?assertEqual({error, {bad_option, Key}}, sluice_drop:new(bad, Opts)) || {Opts, Key} <- Cases],
    ?assertEqual({error, not_found}, sluice_drop:lookup(bad)),
    %% exactly 16 priorities are fine
    {ok, _} = sluice_drop:new(sixteen, #{rates => maps:from_list([{I, 0.5} || I <- lists:seq(1, 15)])}),
    ok = sluice_drop:delete(sixteen).

regulation_curve(_Config) ->
    Reg = #{low => 100, high => 200, min_rate => 0.2},
    ?assertEqual(1.0, sluice_drop_regulator:factor(0, Reg)),
    ?assertEqual(1.0, sluice_drop_regulator:factor(100, Reg)),
    ?assert(abs(sluice_drop_regulator:factor(150, Reg) - 0.6) < 1.0e-9),
    ?assertEqual(0.2, sluice_drop_regulator:factor(200, Reg)),
    ?assertEqual(0.2, sluice_drop_regulator:factor(1.0e9, Reg)).

%% A signal the test controls, and a wait for the regulator to apply it.
signal() ->
    Ref = atomics:new(1, [{signed, true}]),
    {Ref, fun() -> atomics:get(Ref, 1) end}.

await_rate(V, Prio, Expected) -> await_rate(V, Prio, Expected, 500).
await_rate(V, Prio, Expected, Tries) ->
    #{priorities := #{Prio := #{effective_rate := Eff}}} = sluice_drop:info(V),
    case abs(Eff - Expected) < 1.0e-9 of
        true -> ok;
        false when Tries > 0 -> timer:sleep(10), await_rate(V, Prio, Expected, Tries - 1);
        false -> ct:fail({effective_rate, Prio, Eff, expected, Expected})
    end.

regulation_follows_signal(Config) ->
    Name = ?config(valve, Config),
    {Load, Signal} = signal(),
    {ok, V} = sluice_drop:new(Name, #{rate => 0.8,
                                      regulate => #{signal => Signal, low => 10, high => 30,
                                                    min_rate => 0.25, interval => 5}}),
    ?assertMatch(#{regulated := true}, sluice_drop:info(V)),
    await_rate(V, default, 0.8),
    atomics:put(Load, 1, 20),
    await_rate(V, default, 0.8 * 0.625),
    atomics:put(Load, 1, 1000),
    await_rate(V, default, 0.8 * 0.25),
    atomics:put(Load, 1, 0),
    await_rate(V, default, 0.8),
    ok = sluice_drop:regulate(V, none),
    ?assertMatch(#{regulated := false}, sluice_drop:info(V)),
    atomics:put(Load, 1, 1000),
    timer:sleep(50),
    await_rate(V, default, 0.8, 0).

regulation_spares_priorities(Config) ->
    Name = ?config(valve, Config),
    {Load, Signal} = signal(),
    atomics:put(Load, 1, 100),
    {ok, V} = sluice_drop:new(Name, #{rates => #{vip => 1.0}}),
    ok = sluice_drop:regulate(Name, #{signal => Signal, low => 0, high => 10, interval => 5,
                                      priorities => [default]}),
    await_rate(V, default, 0.0),
    ?assertEqual(drop, sluice_drop:ask(V)),
    ?assertEqual(ok, sluice_drop:ask(V, vip)),
    ?assertEqual({error, {bad_option, {priorities, nope}}},
                 sluice_drop:regulate(V, #{signal => Signal, low => 0, high => 1,
                                           priorities => [nope]})).

regulation_survives_bad_signal(Config) ->
    Name = ?config(valve, Config),
    Mode = atomics:new(1, []),
    Signal = fun() ->
                     case atomics:get(Mode, 1) of
                         0 -> 50;
                         1 -> error(broken_sensor);
                         2 -> not_a_number
                     end
             end,
    {ok, V} = sluice_drop:new(Name, #{regulate => #{signal => Signal, low => 0, high => 100,
                                                    interval => 5}}),
    await_rate(V, default, 0.5),
    atomics:put(Mode, 1, 1),
    timer:sleep(50),
    await_rate(V, default, 0.5, 0),
    atomics:put(Mode, 1, 2),
    timer:sleep(50),
    await_rate(V, default, 0.5, 0),
    ?assertEqual([], [P || {_, P, _, _} <- supervisor:which_children(sluice_drop_regulator_sup),
                           not is_pid(P)]),
    ?assertMatch(#{regulated := true}, sluice_drop:info(V)).

regulator_stops_with_valve(Config) ->
    Name = ?config(valve, Config),
    {_, Signal} = signal(),
    Count = fun() -> proplists:get_value(active, supervisor:count_children(sluice_drop_regulator_sup)) end,
    Before = Count(),
    {ok, _} = sluice_drop:new(Name, #{regulate => #{signal => Signal, low => 0, high => 1,
                                                    interval => 5}}),
    ?assertEqual(Before + 1, Count()),
    %% replacing the regulation leaves one regulator, deleting the valve none
    ok = sluice_drop:regulate(Name, #{signal => Signal, low => 0, high => 2, interval => 5}),
    wait_until(fun() -> Count() =:= Before + 1 end),
    ok = sluice_drop:delete(Name),
    wait_until(fun() -> Count() =:= Before end).

wait_until(Fun) -> wait_until(Fun, 500).
wait_until(Fun, Tries) ->
    case Fun() of
        true -> ok;
        false when Tries > 0 -> timer:sleep(10), wait_until(Fun, Tries - 1);
        false -> ct:fail(condition_never_held)
    end.

%% A priorities list that is not a proper list is refused by the caller's
%% validation; sluice_drop_server is never reached and never restarts, and
%% a request it does not know is answered, not a crash.
improper_priorities_leave_the_server_up(Config) ->
    Name = ?config(valve, Config),
    Server = whereis(sluice_drop_server),
    {ok, V} = sluice_drop:new(Name, #{}),
    Reg = #{signal => fun() -> 0 end, low => 1, high => 2, priorities => [default | oops]},
    ?assertEqual({error, {bad_option, priorities}}, sluice_drop:regulate(V, Reg)),
    ?assertEqual({error, {bad_option, priorities}}, sluice_drop:regulate(Name, Reg)),
    ?assertEqual({error, {bad_option, priorities}}, sluice_drop:new(other, #{regulate => Reg})),
    ?assertEqual({error, unknown_call}, gen_server:call(sluice_drop_server, {nonsense, 1})),
    ?assertEqual({error, unknown_call}, gen_server:call(sluice_drop_server, nonsense)),
    ?assertEqual(Server, whereis(sluice_drop_server)),
    ?assertEqual(ok, sluice_drop:ask(V)).

%% A forged or foreign handle raises badarg naming argument 1, never an
%% error from inside the NIF or the facade.
forged_handles_raise_badarg(Config) ->
    Name = ?config(valve, Config),
    {ok, V} = sluice_drop:new(Name, #{}),
    Forged = [setelement(2, V, make_ref()), setelement(4, V, not_a_map),
              setelement(5, V, 99), setelement(2, V, element(2, V) =:= x)],
    Calls = [fun(H) -> sluice_drop:ask(H) end, fun(H) -> sluice_drop:ask(H, default) end,
             fun(H) -> sluice_drop:set_rate(H, default, 0.5) end,
             fun(H) -> sluice_drop:info(H) end, fun(H) -> sluice_drop:take_dropped(H) end],
    Outcomes = [{H, catch_badarg(fun() -> C(H) end)} || H <- Forged, C <- Calls],
    ?assertEqual([], [O || {_, R} = O <- Outcomes, R =/= {badarg, 1}, R =/= fine]),
    ?assert(lists:member(sluice_drop:ask(V), [ok, drop])).

%% `{badarg, Index}' for a badarg raised by a sluice_drop function with an
%% error_info cause, `fine' for an answer, the exception otherwise.
catch_badarg(F) ->
    try F() of
        _ -> fine
    catch
        error:badarg:Stack ->
            case Stack of
                [{sluice_drop, _, _, Info} | _] ->
                    case proplists:get_value(error_info, Info) of
                        #{cause := {Index, Why}} when is_list(Why) -> {badarg, Index};
                        _ -> {no_error_info, hd(Stack)}
                    end;
                _ ->
                    {badarg_from_inside, hd(Stack)}
            end;
        Class:Reason:Stack ->
            {Class, Reason, hd(Stack)}
    end.

%% An idle valve costs a small multiple of its counters (its stripes are
%% allocated when first used): 4 000 idle valves, under 1 500 bytes each
%% (handle, name row and resource); it was about 5 KB.
idle_valves_are_small(_Config) ->
    Names = [{idle_valve, I} || I <- lists:seq(1, 4000)],
    Before = settled_memory(),
    Self = self(),
    Holder = spawn_link(fun() ->
                                Vs = [element(2, {ok, _} = sluice_drop:new(N, #{})) || N <- Names],
                                Self ! built,
                                receive stop -> Vs end
                        end),
    receive built -> ok end,
    Bytes = (settled_memory() - Before) div length(Names),
    Holder ! stop,
    _ = [ok = sluice_drop:delete(N) || N <- Names],
    ct:pal("an idle valve: ~p bytes", [Bytes]),
    ?assert(Bytes < 1500, Bytes).

settled_memory() ->
    garbage_collect(),
    timer:sleep(50),
    erlang:memory(total).

%% A valve of the first layout (made by an older library and taken over)
%% still answers, counts and reports.
first_layout_is_served(_Config) ->
    Ref = sluice_nif:drop_new_v1([0.0]),
    V = {sluice_valve, Ref, first_layout, #{default => 0}, 0},
    ?assertEqual(drop, sluice_drop:ask(V)),
    ok = sluice_drop:set_rate(V, 1.0),
    ?assertEqual(ok, sluice_drop:ask(V, default)),
    ?assertEqual(1, sluice_drop:take_dropped(V)),
    ?assertMatch(#{asked := 2, kept := 1, dropped := 1}, sluice_drop:info(V)).

%% The valve's errors (sluice_core::drop::ValveError) are named reasons
%% from the NIF where they were bare badargs: rates a valve cannot have,
%% a priority it does not have, a bad rate; its counters are maps.
valve_errors_are_named(_Config) ->
    ?assertEqual({error, no_priorities}, sluice_nif:drop_new([])),
    ?assertEqual({error, too_many_priorities}, sluice_nif:drop_new(lists:duplicate(17, 1.0))),
    ?assertEqual({error, bad_rate}, sluice_nif:drop_new([1.5])),
    Ref = sluice_nif:drop_new([1.0, 0.0]),
    ?assertEqual({error, unknown_priority}, sluice_nif:drop_ask(Ref, 2)),
    ?assertEqual({error, unknown_priority}, sluice_nif:drop_set(Ref, 2, rate, 0.5)),
    ?assertEqual({error, bad_rate}, sluice_nif:drop_set(Ref, 0, factor, 2.0)),
    ?assertError(badarg, sluice_nif:drop_set(Ref, 0, true, 0.5)),
    ok = sluice_nif:drop_set(Ref, 1, rate, 0.5),
    ?assertEqual([#{rate => 1.0, factor => 1.0, kept => 0, dropped => 0},
                  #{rate => 0.5, factor => 1.0, kept => 0, dropped => 0}],
                 sluice_nif:drop_counters(Ref)),
    %% a handle whose priority index is not the valve's: badarg naming it
    V = {sluice_valve, Ref, forged, #{default => 0, high => 5}, 5},
    sluice_assert:badarg(fun() -> sluice_drop:ask(V) end, 1, ?NOT_A_VALVE),
    sluice_assert:badarg(fun() -> sluice_drop:ask(V, high) end, 1, ?NOT_A_VALVE),
    sluice_assert:badarg(fun() -> sluice_drop:set_rate(V, high, 0.5) end, 1, ?NOT_A_VALVE),
    ok = sluice_nif:drop_delete(Ref),
    ?assertEqual({error, not_found}, sluice_nif:drop_ask(Ref, 0)).
