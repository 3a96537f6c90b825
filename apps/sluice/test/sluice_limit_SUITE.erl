%% Common Test suite of sluice_limit: the answers and bounds the models do
%% not cover (a cost above the burst, eviction at scale, bounded overrides)
%% and bad options and arguments.
-module(sluice_limit_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([set_time_on_the_system_clock_is_named/1, a_rate_finer_than_a_nanosecond_is_named/1]).
-export([a_cost_above_the_burst_never_passes/1, eviction_holds_no_scheduler/1,
         overrides_are_bounded/1, bad_options_are_named/1, bad_arguments_raise_badarg/1]).

-spec all() -> [atom()].
all() ->
    [a_cost_above_the_burst_never_passes, eviction_holds_no_scheduler, overrides_are_bounded,
     bad_options_are_named, bad_arguments_raise_badarg,
     set_time_on_the_system_clock_is_named, a_rate_finer_than_a_nanosecond_is_named].

-spec init_per_suite(list()) -> list().
init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(sluice),
    Config.

-spec end_per_suite(list()) -> ok.
end_per_suite(_Config) ->
    ok.

%% A request costing more than the burst is refused as such, at any time,
%% never told to wait; the global limit's burst holds the same way.
a_cost_above_the_burst_never_passes(_Config) ->
    {ok, L} = sluice_limit:new_rate(#{limit => 10, period => 1000, burst => 3, clock => manual}),
    ?assertEqual({error, {exceeds_burst, 3}}, sluice_limit:check(L, k, 4)),
    ok = sluice_limit:set_time(L, 100000),
    ?assertEqual({error, {exceeds_burst, 3}}, sluice_limit:check(L, k, 4)),
    ?assertEqual(ok, sluice_limit:check(L, k, 3)),
    ?assertEqual({error, {retry_after, 100}}, sluice_limit:check(L, k, 1)),
    ok = sluice_limit:set_override(L, vip, #{limit => 100, burst => 50}),
    ?assertEqual(ok, sluice_limit:check(L, vip, 40)),
    ?assertMatch(#{allowed := 2, refused := 3}, sluice_limit:info(L)),
    {ok, G} = sluice_limit:new_rate(#{limit => 100, burst => 100, global => #{limit => 10, burst => 5}}),
    ?assertEqual({error, {exceeds_burst, 5}}, sluice_limit:check(G, k, 6)).

%% A table of 200 000 keys, full of keys that are not idle: new keys each
%% evict one, and no scheduler is held 20 ms (an eviction looks at a
%% bounded sample, not the whole shard); the table never exceeds max_keys.
eviction_holds_no_scheduler(_Config) ->
    Max = 200000,
    {ok, L} = sluice_limit:new_rate(#{limit => 1, period => 1000000, max_keys => Max}),
    fill(L, 0, Max),
    #{keys := Full} = sluice_limit:info(L),
    ?assert(Full =< Max),
    %% run I fills keys never seen before
    ?assertEqual([], sluice_long_schedule:quiet(5, fun(I) ->
        From = Max + (I - 1) * 100000,
        sluice_long_schedule:during(20, fun() -> fill(L, From, From + 100000) end)
    end)),
    #{keys := Keys, evicted := Evicted} = sluice_limit:info(L),
    ct:pal("keys ~p, evicted ~p", [Keys, Evicted]),
    ?assert(Keys =< Max),
    ?assert(Evicted >= 100000 - (Max - Full)).

fill(_L, N, N) -> ok;
fill(L, I, N) -> ok = sluice_limit:check(L, {user, I}), fill(L, I + 1, N).

%% Overrides count against max_overrides (one more is refused) and show
%% in info/1; replacing or removing one frees nothing wrongly.
overrides_are_bounded(_Config) ->
    {ok, L} = sluice_limit:new_rate(#{limit => 10, max_keys => 16, max_overrides => 100}),
    Rate = #{limit => 1000},
    _ = [ok = sluice_limit:set_override(L, {vip, I}, Rate) || I <- lists:seq(1, 100)],
    ?assertEqual({error, too_many_overrides}, sluice_limit:set_override(L, {vip, 101}, Rate)),
    ?assertEqual(ok, sluice_limit:set_override(L, {vip, 1}, #{limit => 5})),
    ?assertMatch(#{overrides := 100, keys := 0}, sluice_limit:info(L)),
    ok = sluice_limit:set_override(L, {vip, 1}, default),
    ok = sluice_limit:set_override(L, {vip, 1}, default),
    ?assertMatch(#{overrides := 99}, sluice_limit:info(L)),
    ?assertEqual(ok, sluice_limit:set_override(L, {vip, 101}, Rate)),
    {ok, D} = sluice_limit:new_rate(#{limit => 10, max_keys => 16}),
    _ = [ok = sluice_limit:set_override(D, I, Rate) || I <- lists:seq(1, 10000)],
    ?assertEqual({error, too_many_overrides}, sluice_limit:set_override(D, 0, Rate)),
    ?assertMatch(#{overrides := 10000}, sluice_limit:info(D)).

bad_options_are_named(_Config) ->
    Bad = fun(Key, Opts) -> ?assertEqual({error, {bad_option, Key}}, sluice_limit:new_rate(Opts)) end,
    Bad(brust, #{limit => 10, brust => 3}),
    Bad(limit, #{period => 10}),
    Bad(limit, #{limit => 0}),
    Bad(burst, #{limit => 10, burst => 1 bsl 64}),
    Bad(burst, #{limit => 10, burst => 0}),
    Bad(max_keys, #{limit => 10, max_keys => 1 bsl 64}),
    Bad(max_keys, #{limit => 10, max_keys => 0}),
    Bad(max_overrides, #{limit => 10, max_overrides => -1}),
    Bad(period, #{limit => 10, period => foo}),
    Bad(limit, #{limit => 1 bsl 30, period => 1}),
    Bad(burst, #{limit => 1, period => 1 bsl 39, burst => 1 bsl 39}),
    Bad(global, #{limit => 10, global => #{limit => foo}}),
    Bad(global, #{limit => 10, global => #{limit => 1, brust => 2}}),
    Bad(clock, #{limit => 10, clock => wall}),
    Bad(options, [{limit, 10}]),
    {ok, L} = sluice_limit:new_rate(#{limit => 10}),
    ?assertEqual({error, {bad_option, brust}}, sluice_limit:set_override(L, k, #{limit => 1, brust => 1})),
    ?assertEqual({error, {bad_option, limit}}, sluice_limit:set_override(L, k, #{})),
    BadC = fun(Key, Opts) ->
                   ?assertEqual({error, {bad_option, Key}}, sluice_limit:new_concurrency(Opts))
           end,
    BadC(max, #{max => 0}),
    BadC(max, #{max => 5000}),
    BadC(max, #{}),
    BadC(maxx, #{max => 1, maxx => 2}),
    BadC(max_holders, #{max => 10, max_holders => 5}),
    BadC(max_holders, #{max => 10, max_holders => 1 bsl 64}),
    BadC(options, max).

bad_arguments_raise_badarg(_Config) ->
    {ok, L} = sluice_limit:new_rate(#{limit => 10}),
    {ok, C} = sluice_limit:new_concurrency(#{max => 1}),
    {ok, Lock} = sluice_lock:new(#{resources => 1, callback => {sluice_lock_prop_SUITE, []}}),
    ForgedL = {sluice_limiter, make_ref()},
    ForgedC = {sluice_limit, make_ref()},
    _ = [begin
             sluice_assert:badarg(fun() -> sluice_limit:check(X, k) end),
             sluice_assert:badarg(fun() -> sluice_limit:check(X, k, 1) end),
             sluice_assert:badarg(fun() -> sluice_limit:set_override(X, k, default) end),
             sluice_assert:badarg(fun() -> sluice_limit:set_time(X, 1) end),
             sluice_assert:badarg(fun() -> sluice_limit:sweep(X) end)
         end || X <- [ForgedL, C, Lock, not_a_limiter, {sluice_limiter, 1}]],
    _ = [begin
             sluice_assert:badarg(fun() -> sluice_limit:acquire(X) end),
             sluice_assert:badarg(fun() -> sluice_limit:run(X, fun() -> ok end) end),
             sluice_assert:badarg(fun() -> sluice_limit:resize(X, 2) end)
         end || X <- [ForgedC, L, Lock, not_a_limit, {sluice_limit, 1}]],
    _ = [sluice_assert:badarg(fun() -> sluice_limit:info(X) end) || X <- [ForgedC, ForgedL, Lock, x]],
    sluice_assert:badarg(fun() -> sluice_limit:check(L, k, 0) end),
    sluice_assert:badarg(fun() -> sluice_limit:check(L, k, 1 bsl 64) end),
    sluice_assert:badarg(fun() -> sluice_limit:check(L, k, foo) end),
    sluice_assert:badarg(fun() -> sluice_limit:set_override(L, k, foo) end),
    sluice_assert:badarg(fun() -> sluice_limit:set_time(L, 10) end),
    sluice_assert:badarg(fun() -> sluice_limit:set_time(L, -1) end),
    sluice_assert:badarg(fun() -> sluice_limit:release(foo) end),
    sluice_assert:badarg(fun() -> sluice_limit:release({ForgedC, {0, 1}}) end),
    sluice_assert:badarg(fun() -> sluice_limit:release({C, {-1, 1}}) end),
    sluice_assert:badarg(fun() -> sluice_limit:resize(C, 0) end),
    sluice_assert:badarg(fun() -> sluice_limit:run(C, fun(_) -> ok end) end),
    ok = sluice_lock:close(Lock).

%% Moving the clock of a limiter on the system clock is `{error,
%% system_clock}' from the NIF (it was a bare badarg); set_time/2 raises
%% badarg with a message naming the option to set.
set_time_on_the_system_clock_is_named(_Config) ->
    {ok, L} = sluice_limit:new_rate(#{limit => 10}),
    ?assertEqual({error, system_clock}, sluice_nif:rate_set_time(element(2, L), 5)),
    sluice_assert:badarg(fun() -> sluice_limit:set_time(L, 5) end, 1,
                         "is a rate limiter on the system clock (not clock => manual)"),
    {ok, M} = sluice_limit:new_rate(#{limit => 10, clock => manual}),
    ok = sluice_limit:set_time(M, 5).

%% A rate finer than 1 ns (gcra::Rate::new refusing it) is `{error,
%% too_fine}' from the NIF, for a limiter and for an override; the facade
%% refuses such a rate first as the option `limit'. The limiter's options
%% are one map, its counters a map.
a_rate_finer_than_a_nanosecond_is_named(_Config) ->
    Opts = #{per_key => {10, 1000, 10}, global => none, max_keys => 10, max_overrides => 1,
             manual_clock => false},
    Ref = sluice_nif:rate_new(Opts),
    ?assertEqual(#{allowed => 0, refused => 0, evicted => 0, keys => 0, overrides => 0},
                 sluice_nif:rate_info(Ref)),
    ?assertEqual({error, too_fine}, sluice_nif:rate_new(Opts#{per_key := {2000000, 1, 1}})),
    ?assertEqual({error, too_fine}, sluice_nif:rate_new(Opts#{global := {2000000, 1, 1}})),
    ?assertEqual({error, too_fine}, sluice_nif:rate_override(Ref, k, {2000000, 1, 1})),
    _ = [?assertError(badarg, sluice_nif:rate_new(maps:remove(K, Opts))) || K <- maps:keys(Opts)],
    ?assertEqual({error, {bad_option, limit}},
                 sluice_limit:new_rate(#{limit => 2000000, period => 1})),
    {ok, L} = sluice_limit:new_rate(#{limit => 10}),
    ?assertEqual({error, {bad_option, limit}},
                 sluice_limit:set_override(L, k, #{limit => 2000000, period => 1})).
