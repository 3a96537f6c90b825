%% Common Test suite of sluice_lock. The suite is also the callback module of
%% its locks: each watcher's resource is `{res, Index, Incarnation}' and the
%% watchers report `dead/1', `checkin/2' and restarts to the test process.
-module(sluice_lock_SUITE).
-behaviour(sluice_lock).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([checkout_of_a_closed_lock_is_named/1, slots_beyond_the_lock_are_named/1]).
-export([lend_and_refuse/1, transaction_checks_in_on_raise/1, dead_holder_frees_its_slot/1,
         watcher_crash_keeps_the_lock/1, stress_leaves_no_slot_busy/1,
         under_the_users_supervisor/1, survives_a_restart_of_the_lock_service/1,
         close_stops_a_start_link_lock/1, a_name_in_use_is_refused/1,
         a_blocking_callback_blocks_no_other_lock/1, peak_and_exclusive_loans/1,
         holder_deaths_hold_no_scheduler/1, bad_options_are_named/1,
         bad_arguments_raise_badarg/1, app_stop_hands_resources_back/1,
         checkout_with_timeout/1, denied_at_start_is_an_error_of_new/1]).
-export([init/1, checkout/2, checkin/2, dead/1, handle_info/2, terminate/2]).

-spec all() -> [atom()].
all() ->
    [lend_and_refuse, transaction_checks_in_on_raise, dead_holder_frees_its_slot,
     watcher_crash_keeps_the_lock, stress_leaves_no_slot_busy, under_the_users_supervisor,
     survives_a_restart_of_the_lock_service, close_stops_a_start_link_lock,
     a_name_in_use_is_refused, a_blocking_callback_blocks_no_other_lock, peak_and_exclusive_loans,
     holder_deaths_hold_no_scheduler, bad_options_are_named, bad_arguments_raise_badarg,
     app_stop_hands_resources_back, checkout_with_timeout,
     denied_at_start_is_an_error_of_new,
     checkout_of_a_closed_lock_is_named, slots_beyond_the_lock_are_named].

-spec init_per_suite(list()) -> list().
init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(sluice),
    Config.

-spec end_per_suite(list()) -> ok.
end_per_suite(_Config) ->
    ok.

%%% Callbacks: the state is {TestProcess, Incarnation}.

init({block, Test}) ->
    {ok, {block, Test}};
init(deny) ->
    {ok, deny};
init(Test) ->
    Test ! {watcher_up, self()},
    {ok, {Test, erlang:unique_integer([positive])}}.

checkout(none, deny) ->
    {error, denied, deny};
checkout(none, {block, Test}) ->
    Test ! {blocked, self()},
    receive never -> ok end;
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

%% Killing sluice_lock_sup while a holder is out: the lock lends all its
%% resources again afterwards, no resource still lent was handed back
%% through checkin/2, and a holder that dies afterwards has its slot
%% refilled.
survives_a_restart_of_the_lock_service(_Config) ->
    Lock = new(2),
    Self = self(),
    Holder = spawn(fun() -> Self ! {got, sluice_lock:checkout(Lock)}, receive stop -> ok end end),
    {ok, _, Lent} = receive {got, G} -> G end,
    Old = whereis(sluice_lock_sup),
    exit(Old, kill),
    New = wait_restarted(sluice_lock_sup, Old, 200),
    ?assert(is_pid(New)),
    %% the restarted watchers refill both slots (one lent: it takes its new
    %% resource when the loan comes back)
    _ = [receive {watcher_up, _} -> ok after 2000 -> ct:fail(no_watcher_after_restart) end
         || _ <- [1, 2]],
    wait_free(Lock, 1, 200),
    ?assertMatch(#{in_use := 1, resources := 2}, sluice_lock:info(Lock)),
    exit(Holder, kill),
    wait_free(Lock, 2, 200),
    ?assertMatch(#{in_use := 0, resources := 2, deaths := 1}, sluice_lock:info(Lock)),
    %% the restart handed nothing back: no resource of the lock went to checkin/2
    receive {checked_back, Lent} = Back -> ct:fail({lent_resource_handed_back, Back})
    after 0 -> ok
    end,
    Loans = take_all(Lock, []),
    ?assertEqual(2, length(Loans)),
    _ = [ok = sluice_lock:checkin(Lock, R, X) || {R, X} <- Loans],
    ok = sluice_lock:close(Lock),
    _ = [receive {checked_back, _} -> ok after 2000 -> ct:fail(no_checkin_on_close) end
         || _ <- [1, 2]],
    flush().

wait_restarted(Name, Old, Tries) ->
    case whereis(Name) of
        P when is_pid(P), P =/= Old -> P;
        _ when Tries > 0 -> timer:sleep(10), wait_restarted(Name, Old, Tries - 1);
        _ -> ct:fail({not_restarted, Name})
    end.

flush() ->
    receive _ -> flush() after 0 -> ok end.

%% close/1 of a lock started from a child spec stops its supervisor and
%% watchers (each runs checkin/2) and frees its name.
close_stops_a_start_link_lock(_Config) ->
    flush(),
    Opts = #{name => {db, closing}, resources => 2, callback => {?MODULE, self()}},
    UserSup = sup_of(sluice_lock:child_spec(Opts)),
    unlink(UserSup),
    _ = [receive {watcher_up, _} -> ok after 1000 -> ct:fail(no_watcher) end || _ <- [1, 2]],
    {ok, Lock} = sluice_lock:lookup({db, closing}),
    [{_, LockSup, supervisor, _}] = supervisor:which_children(UserSup),
    Watchers = [W || {_, W, _, _} <- supervisor:which_children(LockSup)],
    ok = sluice_lock:close(Lock),
    _ = [receive {checked_back, _} -> ok after 2000 -> ct:fail(no_checkin) end || _ <- [1, 2]],
    ?assertEqual({error, not_found}, sluice_lock:lookup({db, closing})),
    ?assertNot(is_process_alive(LockSup)),
    ?assertEqual([], [W || W <- Watchers, is_process_alive(W)]),
    ?assertEqual([], supervisor:which_children(UserSup)),
    ?assertError(badarg, sluice_lock:checkout(Lock)),
    %% the name is free again
    {ok, _} = supervisor:start_child(UserSup, sluice_lock:child_spec(Opts)),
    ?assertMatch({ok, _}, sluice_lock:lookup({db, closing})),
    exit(UserSup, shutdown),
    wait_gone({db, closing}, 100),
    flush().

%% A second start_link/1 under a name in use is refused; the first lock
%% goes on.
a_name_in_use_is_refused(_Config) ->
    flush(),
    Opts = #{name => {db, twice}, resources => 1, callback => {?MODULE, self()}},
    {ok, Sup} = sluice_lock:start_link(Opts),
    receive {watcher_up, _} -> ok after 1000 -> ct:fail(no_watcher) end,
    {ok, Lock} = sluice_lock:lookup({db, twice}),
    ?assertEqual({error, {already_started, Sup}}, sluice_lock:start_link(Opts)),
    ?assertEqual({ok, Lock}, sluice_lock:lookup({db, twice})),
    wait_free(Lock, 1, 100),
    ok = sluice_lock:close(Lock),
    ?assertEqual({error, not_found}, sluice_lock:lookup({db, twice})),
    unlink(Sup),
    flush().

%% A callback whose checkout/2 never returns: new/1 answers {error,
%% timeout} after init_timeout, and meanwhile other locks are made and
%% closed (nothing node-wide waits on the callback).
a_blocking_callback_blocks_no_other_lock(_Config) ->
    flush(),
    Self = self(),
    Blocked = spawn(fun() ->
                            Self ! {blocked_new, sluice_lock:new(#{resources => 2,
                                                                   callback => {?MODULE, {block, Self}},
                                                                   init_timeout => 1500})}
                    end),
    receive {blocked, _} -> ok after 2000 -> ct:fail(callback_never_ran) end,
    Other = spawn(fun() ->
                          {ok, L} = sluice_lock:new(#{resources => 1, callback => {?MODULE, Self}}),
                          {ok, R, X} = sluice_lock:checkout(L),
                          ok = sluice_lock:checkin(L, R, X),
                          Self ! {other, sluice_lock:close(L)}
                  end),
    receive {other, ok} -> ok
    after 1000 -> ct:fail({lock_service_blocked, erlang:process_info(Other, current_stacktrace)})
    end,
    receive {blocked_new, Res} -> ?assertEqual({error, timeout}, Res)
    after 3000 -> ct:fail({new_never_returned, erlang:process_info(Blocked, current_stacktrace)})
    end,
    flush().

%% 64 processes check out and in a lock of 10 in a loop: no resource is
%% ever lent to two holders at once (each marks it held with insert_new),
%% and `peak' never exceeds `resources'.
peak_and_exclusive_loans(_Config) ->
    Lock = new(10),
    Tab = ets:new(held, [public, set, {write_concurrency, true}]),
    Self = self(),
    Deadline = erlang:monotonic_time(millisecond) + 1500,
    Workers = [spawn_link(fun() -> Self ! {done, self(), exclusive(Lock, Tab, Deadline, 0)} end)
               || _ <- lists:seq(1, 64)],
    Counts = [receive {done, W, N} -> N end || W <- Workers],
    ct:pal("pairs ~p", [lists:sum(Counts)]),
    ?assert(lists:sum(Counts) > 0),
    #{peak := Peak, in_use := 0, resources := 10} = sluice_lock:info(Lock),
    ?assert(Peak =< 10),
    ets:delete(Tab),
    ok = sluice_lock:close(Lock),
    flush().

exclusive(Lock, Tab, Deadline, N) ->
    case erlang:monotonic_time(millisecond) > Deadline of
        true ->
            N;
        false ->
            case sluice_lock:checkout(Lock) of
                {ok, R, X} ->
                    true = ets:insert_new(Tab, {X}) orelse error({lent_twice, X}),
                    true = ets:delete(Tab, X),
                    ok = sluice_lock:checkin(Lock, R, X),
                    exclusive(Lock, Tab, Deadline, N + 1);
                {error, busy} ->
                    exclusive(Lock, Tab, Deadline, N)
            end
    end.

%% 100 000 processes each check out and in once, then all exit: no
%% scheduler is held 100 ms (a death removes that holder only), and the
%% lock still works. (On a loaded machine the OS alone stretches a few of
%% 100 000 exits past 30 ms; none past 100 ms was seen at a load of 10 on
%% 2 cores.)
holder_deaths_hold_no_scheduler(_Config) ->
    ?assertEqual([], sluice_long_schedule:quiet(5, fun(_) -> holder_deaths() end)).

holder_deaths() ->
    Lock = new(1),
    Self = self(),
    Holders = [spawn(fun() ->
                             once(Lock),
                             Self ! {ready, self()},
                             receive stop -> ok end
                     end) || _ <- lists:seq(1, 100000)],
    _ = [receive {ready, H} -> ok end || H <- Holders],
    Long = sluice_long_schedule:during(100, fun() ->
                                  Mons = [monitor(process, H) || H <- Holders],
                                  _ = [H ! stop || H <- Holders],
                                  _ = [receive {'DOWN', M, _, _, _} -> ok end || M <- Mons]
                          end),
    wait_free(Lock, 1, 100),
    ?assertMatch(#{in_use := 0, deaths := 0}, sluice_lock:info(Lock)),
    ok = sluice_lock:close(Lock),
    flush(),
    %% this process only monitors and messages the holders (plain Erlang)
    [E || {Who, _} = E <- Long, Who =/= Self].

%% One checkout and checkin, retried while busy.
once(Lock) ->
    case sluice_lock:checkout(Lock) of
        {ok, R, X} -> ok = sluice_lock:checkin(Lock, R, X);
        {error, busy} -> erlang:yield(), once(Lock)
    end.

bad_options_are_named(_Config) ->
    CB = {?MODULE, self()},
    ?assertEqual({error, {bad_option, resources}}, sluice_lock:new(#{resources => 0, callback => CB})),
    ?assertEqual({error, {bad_option, resources}},
                 sluice_lock:new(#{resources => 5000, callback => CB})),
    ?assertEqual({error, {bad_option, resources}}, sluice_lock:new(#{callback => CB})),
    ?assertEqual({error, {bad_option, callback}}, sluice_lock:new(#{resources => 1})),
    ?assertEqual({error, {bad_option, callback}},
                 sluice_lock:new(#{resources => 1, callback => {no_such_module_here, []}})),
    ?assertEqual({error, {bad_option, callback}},
                 sluice_lock:new(#{resources => 1, callback => {lists, []}})),
    ?assertEqual({error, {bad_option, callback}}, sluice_lock:new(#{resources => 1, callback => x})),
    ?assertEqual({error, {bad_option, resourses}},
                 sluice_lock:new(#{resourses => 1, callback => CB})),
    ?assertEqual({error, {bad_option, max_resources}},
                 sluice_lock:new(#{resources => 10, max_resources => 5, callback => CB})),
    ?assertEqual({error, {bad_option, maxr}},
                 sluice_lock:new(#{resources => 1, callback => CB, maxr => -1})),
    ?assertEqual({error, {bad_option, init_timeout}},
                 sluice_lock:new(#{resources => 1, callback => CB, init_timeout => 0})),
    ?assertEqual({error, {bad_option, options}}, sluice_lock:new([{resources, 1}])),
    ?assertEqual({error, {bad_option, name}}, sluice_lock:start_link(#{resources => 1, callback => CB})),
    sluice_assert:badarg(fun() -> sluice_lock:child_spec(#{resources => 1, callback => CB}) end),
    sluice_assert:badarg(fun() -> sluice_lock:child_spec(not_a_map) end),
    flush().

bad_arguments_raise_badarg(_Config) ->
    Lock = new(1),
    {ok, Limit} = sluice_limit:new_concurrency(#{max => 1}),
    Forged = {sluice_lock, make_ref()},
    {ok, R, X} = sluice_lock:checkout(Lock),
    _ = [begin
             sluice_assert:badarg(fun() -> sluice_lock:checkout(L) end),
             sluice_assert:badarg(fun() -> sluice_lock:checkin(L, R, X) end),
             sluice_assert:badarg(fun() -> sluice_lock:info(L) end),
             sluice_assert:badarg(fun() -> sluice_lock:resize(L, 2) end),
             sluice_assert:badarg(fun() -> sluice_lock:close(L) end),
             sluice_assert:badarg(fun() -> sluice_lock:transaction(L, fun(_) -> ok end) end)
         end || L <- [Forged, not_a_lock, {sluice_lock, 1}, Limit, {sluice_lock, make_ref(), self()}]],
    sluice_assert:badarg(fun() -> sluice_lock:checkin(Lock, bad_ref, X) end),
    sluice_assert:badarg(fun() -> sluice_lock:checkin(Lock, {-1, 1}, X) end),
    sluice_assert:badarg(fun() -> sluice_lock:checkin(Lock, {1 bsl 64, 1}, X) end),
    sluice_assert:badarg(fun() -> sluice_lock:resize(Lock, 0) end),
    sluice_assert:badarg(fun() -> sluice_lock:resize(Lock, foo) end),
    sluice_assert:badarg(fun() -> sluice_lock:transaction(Lock, not_a_fun) end),
    ok = sluice_lock:close(Lock),
    %% closed: no more checkouts or resizes; counters and loans out still work
    sluice_assert:badarg(fun() -> sluice_lock:checkout(Lock) end),
    sluice_assert:badarg(fun() -> sluice_lock:resize(Lock, 1) end),
    ?assertEqual(ok, sluice_lock:checkin(Lock, R, X)),
    ?assertMatch(#{resources := 0, in_use := 0}, sluice_lock:info(Lock)),
    ?assertEqual(ok, sluice_lock:close(Lock)),
    flush().

%% The application stops: each watcher of a new/1 lock hands its resource
%% back as it stops.
app_stop_hands_resources_back(_Config) ->
    flush(),
    _Lock = new(2),
    ok = application:stop(sluice),
    Backs = [receive {checked_back, B} -> B after 2000 -> ct:fail(no_checkin_at_stop) end
             || _ <- [1, 2]],
    ?assertEqual(2, length(lists:usort(Backs))),
    {ok, _} = application:ensure_all_started(sluice),
    flush().

%% dispcount's checkout(Info, Timeout): tries again while busy until the
%% timeout, then {error, busy}; gets a resource handed back meanwhile; the
%% caller sends no message while it waits (no server on the path).
checkout_with_timeout(_Config) ->
    Lock = new(1),
    {ok, R, X} = sluice_lock:checkout(Lock, 0),
    ?assertEqual({error, busy}, sluice_lock:checkout(Lock, 0)),
    erlang:trace(self(), true, [send]),
    ?assertEqual({error, busy}, sluice_lock:checkout(Lock, 30)),
    erlang:trace(self(), false, [send]),
    ?assertEqual(none, receive {trace, _, send, _, _} = T -> T after 0 -> none end),
    Self = self(),
    spawn_link(fun() -> timer:sleep(20), ok = sluice_lock:checkin(Lock, R, X), Self ! back end),
    ?assertMatch({ok, _, X}, sluice_lock:checkout(Lock, 5000)),
    receive back -> ok end,
    ?assertError(badarg, sluice_lock:checkout(Lock, -1)),
    ?assertError(badarg, sluice_lock:checkout(Lock, infinity)),
    ?assertError(badarg, sluice_lock:checkout(not_a_lock, 10)),
    ok = sluice_lock:close(Lock),
    ?assertError(badarg, sluice_lock:checkout(Lock, 10)).

%% The documented model: the watcher makes resources ahead of the loans
%% (From is none), so a callback answering {error, denied, State} at start
%% gives no lock: new/1 answers an error, and no caller ever sees denied.
denied_at_start_is_an_error_of_new(_Config) ->
    ?assertMatch({error, _},
                 sluice_lock:new(#{resources => 1, callback => {?MODULE, deny},
                                   init_timeout => 300})).

%% A checkout of a closed lock is `{error, closed}' from the NIF (it was a
%% bare badarg); the facade raises badarg with a message saying so.
checkout_of_a_closed_lock_is_named(_Config) ->
    Lock = new(1),
    Ref = element(2, Lock),
    ok = sluice_lock:close(Lock),
    ?assertEqual({error, closed}, sluice_nif:lock_checkout(Ref)),
    sluice_assert:badarg(fun() -> sluice_lock:checkout(Lock) end, 1, "the lock is closed"),
    sluice_assert:badarg(fun() -> sluice_lock:checkout(Lock, 10) end, 1, "the lock is closed"),
    sluice_assert:badarg(fun() -> sluice_lock:checkout({sluice_lock, make_ref()}) end, 1,
                         "not a lock (or a lock of another build)").

%% A slot index beyond the lock is `{error, no_slot}', a size beyond its
%% capacity `{error, over_capacity}' (both were bare badargs); lock_info/1
%% is a map.
slots_beyond_the_lock_are_named(_Config) ->
    Ref = sluice_nif:lock_new(1, 2),
    ?assertEqual({error, no_slot}, sluice_nif:lock_fill(Ref, 2, token, none)),
    ?assertEqual({error, no_slot}, sluice_nif:lock_fill(Ref, 1, token, none)),
    ?assertEqual(ok, sluice_nif:lock_fill(Ref, 0, token, none)),
    ?assertEqual({error, no_slot}, sluice_nif:lock_slot(Ref, 2)),
    ?assertEqual(empty, sluice_nif:lock_slot(Ref, 1)),
    ?assertEqual({error, over_capacity}, sluice_nif:lock_resize(Ref, 3)),
    ?assertEqual(2, sluice_nif:lock_resize(Ref, 2)),
    ?assertEqual(#{checkouts => 0, busy => 0, deaths => 0, in_use => 0, peak => 0, slots => 2,
                   capacity => 2},
                 sluice_nif:lock_info(Ref)),
    Lock = new(1),
    ?assertEqual({error, too_many}, sluice_lock:resize(Lock, 65)),
    ok = sluice_lock:close(Lock).
