%% Kills each of sluice's servers in turn while load runs, and checks that
%% no tool notices: every tool keeps answering, every name is still found,
%% a breaker blown afterwards still raises its alarm and tells its
%% subscribers, every lock still lends all its resources and refills a slot
%% whose holder dies, group members that die still leave, a box whose owner
%% dies still passes to its heir with its messages, and regulation goes on.
-module(sluice_restart_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2, end_per_testcase/2]).
-export([kill_table_heir/1, kill_table_keeper/1, kill_table_keeper_and_heir_apart/1,
         kill_drop_server/1, kill_regulator_sup/1, kill_regulator/1, kill_box_warden/1,
         kill_lock_sup/1, kill_group_server/1, kill_breaker_server/1,
         kill_every_server_in_turn/1]).

-define(SERVERS, [sluice_table_heir, sluice_tables, sluice_drop_server,
                  sluice_drop_regulator_sup, sluice_box_warden, sluice_lock_sup,
                  sluice_group_server, sluice_breaker_server]).

all() ->
    [kill_table_heir, kill_table_keeper, kill_table_keeper_and_heir_apart, kill_drop_server,
     kill_regulator_sup, kill_regulator, kill_box_warden, kill_lock_sup, kill_group_server,
     kill_breaker_server, kill_every_server_in_turn].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(sasl),
    {ok, _} = application:ensure_all_started(sluice),
    Config.

end_per_suite(_Config) ->
    ok.

%% A fresh application per case: each case's kills count alone against
%% sluice_sup's restart intensity (10 in 10 s).
init_per_testcase(_Case, Config) ->
    ok = application:stop(sluice),
    {ok, _} = application:ensure_all_started(sluice),
    World = world(),
    Load = start_load(World),
    [{world, World}, {load, Load} | Config].

end_per_testcase(_Case, Config) ->
    _ = stop_load(?config(load, Config)),
    teardown(?config(world, Config)),
    ok.

%%% Cases

kill_table_heir(Config) -> kill_and_check([sluice_table_heir], Config).
kill_table_keeper(Config) -> kill_and_check([sluice_tables], Config).
kill_table_keeper_and_heir_apart(Config) ->
    kill_and_check([sluice_tables, sluice_table_heir, sluice_tables], Config).
kill_drop_server(Config) -> kill_and_check([sluice_drop_server], Config).
kill_regulator_sup(Config) -> kill_and_check([sluice_drop_regulator_sup], Config).
kill_box_warden(Config) -> kill_and_check([sluice_box_warden], Config).
kill_lock_sup(Config) -> kill_and_check([sluice_lock_sup], Config).
kill_group_server(Config) -> kill_and_check([sluice_group_server], Config).
kill_breaker_server(Config) -> kill_and_check([sluice_breaker_server], Config).
kill_every_server_in_turn(Config) -> kill_and_check(?SERVERS, Config).

%% A valve's regulator: the valve stays regulated by a new one.
kill_regulator(Config) ->
    [{_, Regulator, _, _}] = supervisor:which_children(sluice_drop_regulator_sup),
    exit(Regulator, kill),
    check(?config(world, Config)),
    check_load(?config(load, Config)).

kill_and_check(Servers, Config) ->
    World = ?config(world, Config),
    Tops = top_children(),
    _ = [kill(S) || S <- Servers],
    ?assertEqual(length(Tops), length(top_children())),
    check(World),
    check_load(?config(load, Config)).

%% Kills a registered server and waits for its successor.
kill(Name) ->
    Old = whereis(Name),
    ?assert(is_pid(Old)),
    Mon = monitor(process, Old),
    exit(Old, kill),
    receive {'DOWN', Mon, process, Old, _} -> ok end,
    wait_until(fun() -> is_pid(whereis(Name)) andalso whereis(Name) =/= Old end),
    %% Let the new one finish its init (a call is answered after it).
    _ = sys:get_state(whereis(Name)),
    ct:log("~p restarted: ~p -> ~p", [Name, Old, whereis(Name)]).

top_children() ->
    [{Id, Pid} || {Id, Pid, _, _} <- supervisor:which_children(sluice_sup), is_pid(Pid)].

%%% The world: one of every tool, named where names exist

world() ->
    Tag = erlang:unique_integer([positive]),
    ValveName = {restart_valve, Tag},
    {ok, _} = sluice_drop:new(ValveName, #{rate => 1.0,
                                           regulate => #{signal => fun() -> 100 end,
                                                         low => 0, high => 10,
                                                         interval => 10}}),
    Heir = spawn_link(fun heir/0),
    Owner = spawn(fun() -> receive stop -> ok end end),
    {ok, Box} = sluice_box:new(#{max => 1000, owner => Owner, heir => Heir,
                                 heir_data => Tag}),
    BoxName = {restart_box, Tag},
    LockName = {restart_lock, Tag},
    {ok, Sup} = sluice_test_sup:start_link(
                  [sluice_box:child_spec(#{name => BoxName, max => 10}),
                   sluice_lock:child_spec(#{name => LockName, resources => 2,
                                            callback => {sluice_test_lock, []}})]),
    unlink(Sup),
    {ok, Lock} = sluice_lock:new(#{resources => 2, callback => {sluice_test_lock, []}}),
    ok = wait_lends(Lock, 2),
    Group = {restart_group, Tag},
    Members = [spawn(fun() -> receive stop -> ok end end) || _ <- [1, 2, 3]],
    _ = [ok = sluice_group:join(Group, M) || M <- Members],
    Breaker = {restart_breaker, Tag},
    ok = sluice_breaker:install(Breaker, #{strategy => {standard, 1, 60000}, reset => manual}),
    ok = sluice_breaker:subscribe(),
    {ok, Limiter} = sluice_limit:new_rate(#{limit => 1000000}),
    {ok, Limit} = sluice_limit:new_concurrency(#{max => 2}),
    #{valve => ValveName, box => Box, owner => Owner, heir => Heir, tag => Tag,
      box_name => BoxName, lock_name => LockName, sup => Sup, lock => Lock,
      group => Group, members => Members, breaker => Breaker, limiter => Limiter,
      limit => Limit}.

teardown(#{valve := V, sup := Sup, lock := Lock, breaker := B, members := Ms, heir := H}) ->
    _ = sluice_drop:delete(V),
    exit(Sup, shutdown),
    _ = sluice_lock:close(Lock),
    _ = sluice_breaker:remove(B),
    _ = sluice_breaker:unsubscribe(),
    _ = [M ! stop || M <- Ms],
    unlink(H),
    exit(H, kill),
    ok.

%% The heir forwards what it is given to whoever asks.
heir() ->
    receive
        {sluice_transfer, Box, _Dead, Data, _Reason} ->
            receive {give, To} -> To ! {heir_got, Box, Data} end,
            heir();
        {give, To} ->
            To ! none,
            heir()
    end.

%%% Checks after a kill

check(#{valve := ValveName, box := Box, owner := Owner, heir := Heir, tag := Tag,
        box_name := BoxName, lock_name := LockName, lock := Lock, group := Group,
        members := Members, breaker := Breaker, limiter := Limiter, limit := Limit}) ->
    %% Valves: found by name, answering, still regulated (the signal keeps
    %% the effective rate at 0).
    {ok, _} = sluice_drop:lookup(ValveName),
    wait_until(fun() ->
                       #{regulated := true, priorities := #{default := #{effective_rate := E}}} =
                           sluice_drop:info(ValveName),
                       E == 0.0
               end),
    ?assertEqual(drop, sluice_drop:ask(ValveName)),
    ?assertMatch({ok, _}, sluice_drop:new({ValveName, new}, #{})),
    ok = sluice_drop:delete({ValveName, new}),
    %% Named box and lock: found, working.
    {ok, Named} = sluice_box:lookup(BoxName),
    ?assertEqual(ok, sluice_box:post(Named, hello)),
    {ok, NamedLock} = sluice_lock:lookup(LockName),
    ok = wait_lends(NamedLock, 2),
    %% Locks: all resources lent; a holder that dies has its slot refilled.
    ok = wait_lends(Lock, 2),
    Holder = spawn(fun() -> {ok, _, _} = sluice_lock:checkout(Lock), receive stop -> ok end end),
    wait_until(fun() -> maps:get(in_use, sluice_lock:info(Lock)) =:= 1 end),
    exit(Holder, kill),
    ok = wait_lends(Lock, 2),
    ?assertMatch(#{in_use := 0, resources := 2}, sluice_lock:info(Lock)),
    {ok, Other} = sluice_lock:new(#{resources => 1, callback => {sluice_test_lock, []}}),
    ok = wait_lends(Other, 1),
    ok = sluice_lock:close(Other),
    %% Groups: members kept; a member that dies leaves.
    [Dying | Staying] = Members,
    ?assertEqual(lists:sort(Members), lists:sort(sluice_group:members(Group))),
    exit(Dying, kill),
    wait_until(fun() -> lists:sort(sluice_group:members(Group)) =:= lists:sort(Staying) end),
    %% Breakers: a melt that blows raises the alarm and tells subscribers.
    ok = sluice_breaker:ask(Breaker, sync),
    ok = sluice_breaker:melt(Breaker),
    ok = sluice_breaker:melt(Breaker),
    ?assertEqual(blown, sluice_breaker:ask(Breaker, sync)),
    receive {sluice_breaker, Breaker, blown} -> ok after 2000 -> ct:fail(no_blown_event) end,
    ?assert(lists:member({{sluice_breaker, Breaker}, blown}, alarm_handler:get_alarms())),
    ok = sluice_breaker:reset(Breaker),
    ?assertEqual(ok, sluice_breaker:ask(Breaker, sync)),
    receive {sluice_breaker, Breaker, healed} -> ok after 2000 -> ct:fail(no_healed_event) end,
    %% Limits answer.
    ?assertEqual(ok, sluice_limit:check(Limiter, key)),
    ?assertEqual(ok, sluice_limit:run(Limit, fun() -> ok end)),
    %% Boxes: the owner dies, the heir gets the box and every message.
    Posted = [{msg, Tag, I} || I <- lists:seq(1, 50)],
    _ = [ok = sluice_box:post(Box, M) || M <- Posted],
    exit(Owner, kill),
    wait_until(fun() -> maps:get(owner, sluice_box:info(Box)) =:= Heir end),
    Heir ! {give, self()},
    receive {heir_got, Box, Tag} -> ok after 2000 -> ct:fail(heir_not_given_the_box) end,
    ?assertMatch(#{size := S, closed := false} when S >= 50, sluice_box:info(Box)),
    ok.

%% Waits until `N' loans can be had at once from `Lock', and gives them back.
wait_lends(Lock, N) ->
    wait_until(fun() ->
                       Loans = take_all(Lock, []),
                       _ = [sluice_lock:checkin(Lock, R, X) || {R, X} <- Loans],
                       length(Loans) =:= N
               end).

take_all(Lock, Acc) ->
    case sluice_lock:checkout(Lock) of
        {ok, R, X} -> take_all(Lock, [{R, X} | Acc]);
        {error, busy} -> Acc
    end.

wait_until(Fun) -> wait_until(Fun, 300).

wait_until(Fun, 0) ->
    ?assert(Fun());
wait_until(Fun, Tries) ->
    case catch Fun() of
        true -> ok;
        _ -> timer:sleep(10), wait_until(Fun, Tries - 1)
    end.

%%% Load: processes using every tool's hot path while servers die

start_load(#{valve := V, limiter := L, limit := C, group := G, breaker := B}) ->
    Self = self(),
    {ok, LoadBox} = sluice_box:new(#{max => 100}),
    %% The test process owns this box; the loaders only post.
    Ops = [fun() -> ok_or_drop(sluice_drop:ask(V)) end,
           fun() -> ok_or_full(sluice_box:post(LoadBox, load)) end,
           fun() -> ok = sluice_limit:check(L, erlang:unique_integer() rem 100) end,
           fun() -> _ = sluice_limit:run(C, fun() -> ok end), ok end,
           fun() -> {ok, _} = sluice_group:pick(G, best_of_two), ok end,
           fun() -> _ = sluice_breaker:ask(B, sync), ok end],
    Pids = [spawn(fun() -> load(Self, Ops, 0) end) || _ <- [1, 2, 3]],
    {Pids, LoadBox}.

ok_or_drop(ok) -> ok;
ok_or_drop(drop) -> ok.

ok_or_full(ok) -> ok;
ok_or_full(full) -> ok.

load(Test, Ops, N) ->
    receive
        {stop, From} -> From ! {load_done, self(), N}
    after 0 ->
        try
            _ = [Op() || Op <- Ops],
            timer:sleep(1),
            load(Test, Ops, N + 1)
        catch
            Class:Reason:Stack ->
                Test ! {load_failed, self(), {Class, Reason, Stack}},
                receive {stop, From} -> From ! {load_done, self(), N} end
        end
    end.

%% No loader failed, and each made progress.
check_load({Pids, _Box}) ->
    receive {load_failed, _, Why} -> ct:fail({load_failed, Why}) after 0 -> ok end,
    ?assert(lists:all(fun erlang:is_process_alive/1, Pids)).

stop_load({Pids, Box}) ->
    Counts = [begin P ! {stop, self()}, receive {load_done, P, N} -> N end end || P <- Pids],
    ct:log("load rounds per loader: ~p", [Counts]),
    _ = sluice_box:close(Box),
    ok.
