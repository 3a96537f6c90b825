%% Common Test suite of sluice_group.
-module(sluice_group_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([join_pick_leave/1, dead_members_leave/1, best_of_two_takes_the_shorter_queue/1]).

-spec all() -> [atom()].
all() -> [join_pick_leave, dead_members_leave, best_of_two_takes_the_shorter_queue].

-spec init_per_suite(list()) -> list().
init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(sluice),
    Config.

-spec end_per_suite(list()) -> ok.
end_per_suite(_Config) ->
    ok.

worker() ->
    spawn(fun() -> receive stop -> ok end end).

join_pick_leave(_Config) ->
    Name = {pool, make_ref()},
    ?assertEqual({error, empty}, sluice_group:pick(Name)),
    [A, B, C] = Ws = [worker() || _ <- [1, 2, 3]],
    _ = [ok = sluice_group:join(Name, W) || W <- Ws],
    ok = sluice_group:join(Name, A),
    ?assertEqual(lists:sort(Ws), lists:sort(sluice_group:members(Name))),
    Picked = lists:usort([element(2, sluice_group:pick(Name)) || _ <- lists:seq(1, 200)]),
    ?assertEqual(lists:sort(Ws), Picked),
    ok = sluice_group:leave(Name, B),
    ?assertEqual(lists:sort([A, C]), lists:sort(sluice_group:members(Name))),
    ok = sluice_group:leave(Name, A),
    ok = sluice_group:leave(Name, C),
    ?assertEqual({error, empty}, sluice_group:pick(Name, best_of_two)),
    ?assertError(badarg, sluice_group:join(Name, not_a_pid)).

dead_members_leave(_Config) ->
    [A, B] = [worker(), worker()],
    ok = sluice_group:join(g1, A),
    ok = sluice_group:join({g, 2}, A),
    ok = sluice_group:join(g1, B),
    Ref = monitor(process, A),
    exit(A, kill),
    receive {'DOWN', Ref, process, A, _} -> ok end,
    _ = sys:get_state(sluice_group_server),
    ?assertEqual([B], sluice_group:members(g1)),
    ?assertEqual([], sluice_group:members({g, 2})),
    ?assertEqual({ok, B}, sluice_group:pick(g1)).

best_of_two_takes_the_shorter_queue(_Config) ->
    Busy = spawn(fun() -> receive stop -> ok end end),
    Idle = worker(),
    _ = [Busy ! {work, I} || I <- lists:seq(1, 100)],
    ok = sluice_group:join(two, Busy),
    ok = sluice_group:join(two, Idle),
    ?assertEqual([{ok, Idle}], lists:usort([sluice_group:pick(two, best_of_two)
                                            || _ <- lists:seq(1, 50)])).
