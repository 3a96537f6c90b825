%% Common Test suite of sluice_lock. The suite is also the callback module of
%% its locks: each watcher's resource is `{res, Index, Incarnation}' and the
%% watchers report `dead/1', `checkin/2' and restarts to the test process.
-module(sluice_lock_SUITE).
-behaviour(sluice_lock).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([lend_and_refuse/1, transaction_checks_in_on_raise/1, dead_holder_frees_its_slot/1,
         watcher_crash_keeps_the_lock/1, stress_leaves_no_slot_busy/1,
         under_the_users_supervisor/1]).
-export([init/1, checkout/2, checkin/2, dead/1, handle_info/2, terminate/2]).

-spec all() -> [atom()].
all() ->
    [lend_and_refuse, transaction_checks_in_on_raise, dead_holder_frees_its_slot,
     watcher_crash_keeps_the_lock, stress_leaves_no_slot_busy, under_the_users_supervisor].

-spec init_per_suite(list()) -> list().
init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(sluice),
    Config.

-spec end_per_suite(list()) -> ok.
end_per_suite(_Config) ->
    ok.

%%% Callbacks: the state is {TestProcess, Incarnation}.

init(Test) ->
    Test ! {watcher_up, self()},
    {ok, {Test, erlang:unique_integer([positive])}}.

checkout(none, {_Test, Inc} = S) ->
    {ok, {res, self(), Inc}, S}.

checkin(Resource, {Test, _} = S) ->
    Test ! {checked_back, Resource},
    {ok, S}.

dead({Test, _}) ->
    Test ! {dead, self()},
    {ok, {Test, erlang:unique_integer([positive])}}.

handle_info(_Msg, S) ->
    {ok, S}.

terminate(_Reason, _S) ->
    ok.

new(N) ->
    {ok, Lock} = sluice_lock:new(#{resources => N, callback => {?MODULE, self()}}),
    _ = [receive {watcher_up, _} -> ok after 1000 -> ct:fail(no_watcher) end
         || _ <- lists:seq(1, N)],
    wait_free(Lock, N, 100),
    Lock.

%% Waits until `N' slots can be lent (the watchers filled them).
wait_free(Lock, N, Tries) ->
    Loans = take_all(Lock, []),
    _ = [ok = sluice_lock:checkin(Lock, R, X) || {R, X} <- Loans],
    case length(Loans) of
        N -> ok;
        _ when Tries > 0 -> timer:sleep(10), wait_free(Lock, N, Tries - 1);
        Got -> ct:fail({slots_ready, Got, N})
    end.

take_all(Lock, Acc) ->
    case sluice_lock:checkout(Lock) of
        {ok, R, X} -> take_all(Lock, [{R, X} | Acc]);
        {error, busy} -> Acc
    end.

%%% Cases

lend_and_refuse(_Config) ->
    Lock = new(3),
    #{busy := B0, checkouts := C0} = sluice_lock:info(Lock),
    Loans = take_all(Lock, []),
    ?assertEqual(3, length(Loans)),
    ?assertEqual(3, length(lists:usort([X || {_, X} <- Loans]))),
    ?assertEqual({error, busy}, sluice_lock:checkout(Lock)),
    [{R, X} | _] = Loans,
    ok = sluice_lock:checkin(Lock, R, X),
    ?assertEqual({error, not_lent}, sluice_lock:checkin(Lock, R, X)),
    {ok, _, X} = sluice_lock:checkout(Lock),
    ?assertMatch(#{in_use := 3, peak := 3, deaths := 0}, sluice_lock:info(Lock)),
    #{busy := B1, checkouts := C1} = sluice_lock:info(Lock),
    %% take_all ended on a busy answer, then one more busy, then one loan
    ?assertEqual({B0 + 2, C0 + 4}, {B1, C1}),
    ok = sluice_lock:close(Lock).

transaction_checks_in_on_raise(_Config) ->
    Lock = new(1),
    #{checkouts := C0} = sluice_lock:info(Lock),
    ?assertError(boom, sluice_lock:transaction(Lock, fun(_) -> error(boom) end)),
    ?assertEqual(ok, sluice_lock:transaction(Lock, fun({res, _, _}) -> ok end)),
    ?assertMatch(#{in_use := 0}, sluice_lock:info(Lock)),
    #{checkouts := C1} = sluice_lock:info(Lock),
    ?assertEqual(C0 + 2, C1),
    ok = sluice_lock:close(Lock).

dead_holder_frees_its_slot(_Config) ->
    Lock = new(1),
    Self = self(),
    Holder = spawn(fun() -> Self ! {got, sluice_lock:checkout(Lock)}, receive stop -> ok end end),
    {ok, _, Old} = receive {got, G} -> G end,
    ?assertEqual({error, busy}, sluice_lock:checkout(Lock)),
    exit(Holder, kill),
    receive {dead, _Watcher} -> ok after 1000 -> ct:fail(no_dead_callback) end,
    wait_free(Lock, 1, 100),
    {ok, R, New} = sluice_lock:checkout(Lock),
    ?assertNotEqual(Old, New),
    ok = sluice_lock:checkin(Lock, R, New),
    ?assertMatch(#{deaths := 1, in_use := 0}, sluice_lock:info(Lock)),
    ok = sluice_lock:close(Lock).

%% A watcher killed while its slot is lent: the loan stays valid, the
%% restarted watcher refills the slot once it is back.
watcher_crash_keeps_the_lock(_Config) ->
    Lock = new(1),
    {ok, R, {res, Watcher, _} = X} = sluice_lock:checkout(Lock),
    exit(Watcher, kill),
    receive {watcher_up, _} -> ok after 1000 -> ct:fail(no_restart) end,
    ok = sluice_lock:checkin(Lock, R, X),
    wait_refilled(Lock, Watcher, 100),
    ok = sluice_lock:close(Lock).

wait_refilled(Lock, Old, Tries) ->
    case sluice_lock:checkout(Lock) of
        {ok, R, {res, W, _} = X} ->
            ok = sluice_lock:checkin(Lock, R, X),
            case W of
                Old when Tries > 0 -> timer:sleep(10), wait_refilled(Lock, Old, Tries - 1);
                Old -> ct:fail(not_refilled);
                _ -> ok
            end;
        {error, busy} when Tries > 0 ->
            timer:sleep(10), wait_refilled(Lock, Old, Tries - 1)
    end.

%% 64 processes hammer a lock of 10 for 2 s, a quarter of them killed while
%% they may hold a loan; afterwards every slot is free again and the
%% counters reconcile: loans = hand-backs + deaths.
stress_leaves_no_slot_busy(_Config) ->
    Lock = new(10),
    Self = self(),
    Deadline = erlang:monotonic_time(millisecond) + 2000,
    Workers = [spawn(fun() -> hammer(Lock, Deadline, Self, 0) end) || _ <- lists:seq(1, 64)],
    Victims = lists:sublist(Workers, 16),
    timer:sleep(500),
    _ = [exit(V, kill) || V <- Victims],
    Backs = lists:sum([receive {backs, W, B} -> B end || W <- Workers -- Victims]),
    timer:sleep(100),
    #{checkouts := Outs, deaths := Deaths, in_use := InUse} = sluice_lock:info(Lock),
    ct:pal("loans ~p, hand-backs by survivors ~p, deaths ~p", [Outs, Backs, Deaths]),
    ?assertEqual(0, InUse),
    ?assert(Deaths =< 16),
    wait_free(Lock, 10, 100),
    ok = sluice_lock:close(Lock).

hammer(Lock, Deadline, Parent, Backs) ->
    case erlang:monotonic_time(millisecond) > Deadline of
        true ->
            Parent ! {backs, self(), Backs};
        false ->
            case sluice_lock:checkout(Lock) of
                {ok, R, X} ->
                    ok = sluice_lock:checkin(Lock, R, X),
                    hammer(Lock, Deadline, Parent, Backs + 1);
                {error, busy} ->
                    hammer(Lock, Deadline, Parent, Backs)
            end
    end.

%% A lock under the user's supervisor, found by name; it goes with it.
under_the_users_supervisor(_Config) ->
    Self = self(),
    Opts = #{name => {db, primary}, resources => 2, callback => {?MODULE, Self}},
    Sup = sup_of(sluice_lock:child_spec(Opts)),
    unlink(Sup),
    _ = [receive {watcher_up, _} -> ok after 1000 -> ct:fail(no_watcher) end || _ <- [1, 2]],
    {ok, Lock} = sluice_lock:lookup({db, primary}),
    wait_free(Lock, 2, 100),
    ?assertMatch({ok, _, {res, _, _}}, sluice_lock:checkout(Lock)),
    exit(Sup, shutdown),
    wait_gone({db, primary}, 100).

sup_of(Child) ->
    {ok, Pid} = sluice_test_sup:start_link([Child]),
    Pid.

wait_gone(Name, Tries) ->
    case sluice_lock:lookup(Name) of
        {error, not_found} -> ok;
        {ok, _} when Tries > 0 -> timer:sleep(10), wait_gone(Name, Tries - 1)
    end.
