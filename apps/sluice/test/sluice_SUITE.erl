%% sluice's front page: `sluice:tools/0,1' lists every live tool, named or
%% anonymous, with the counters its own info function reports, without a
%% message; dead tools go; histograms of box sojourn and breaker run times;
%% and the telemetry events of sluice's servers, with a stand-in
%% `telemetry' module (test/telemetry.erl) and without one.
-module(sluice_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, groups/0, init_per_suite/1, end_per_suite/1, init_per_group/2,
         end_per_group/2]).
-export([every_kind_is_listed/1, counters_match_info/1, ids_are_unique_and_stable/1,
         dead_tools_disappear/1, no_message_is_sent/1, limit_bounds_the_listing/1,
         histograms_are_cumulative/1, breaker_run_time_is_recorded/1]).
-export([breaker_blown_and_healed/1, box_drop_notices/1, lock_holder_down/1,
         crashing_handler_is_contained/1, without_telemetry_nothing_breaks/1]).

all() ->
    [{group, tools}, {group, telemetry}, without_telemetry_nothing_breaks].

groups() ->
    [{tools, [], [every_kind_is_listed, counters_match_info, ids_are_unique_and_stable,
                  dead_tools_disappear, no_message_is_sent, limit_bounds_the_listing,
                  histograms_are_cumulative, breaker_run_time_is_recorded]},
     {telemetry, [], [breaker_blown_and_healed, box_drop_notices, lock_holder_down,
                      crashing_handler_is_contained]}].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(sluice),
    unload_telemetry(),
    Config.

end_per_suite(_Config) ->
    unload_telemetry(),
    ok.

init_per_group(telemetry, Config) ->
    {module, telemetry} = code:ensure_loaded(telemetry),
    Config;
init_per_group(_, Config) ->
    Config.

end_per_group(telemetry, _Config) ->
    unload_telemetry();
end_per_group(_, _Config) ->
    ok.

unload_telemetry() ->
    _ = code:purge(telemetry),
    _ = code:delete(telemetry),
    _ = code:purge(telemetry),
    ok.

%%% Helpers

%% The tool with id `Id' in `Tools', or `none'.
find(Id, Tools) ->
    case [T || #{id := I} = T <- Tools, I =:= Id] of
        [T] -> T;
        [] -> none
    end.

%% The tool of kind `Kind' named `Name'.
named(Kind, Name, Tools) ->
    [T] = [T || #{kind := K, name := N} = T <- Tools, K =:= Kind, N =:= Name],
    T.

%% A box's id (the NIF's; the same `sluice:tools/0' reports).
box_id(Box) -> sluice_nif:box_id(Box).

lock_opts(Name) ->
    #{resources => 2, callback => {sluice_test_lock, []}, name => Name}.

%% The lock's NIF object (its handle is `{sluice_lock, Ref}').
lock_ref(Lock) -> element(2, Lock).

%% The limit's / limiter's NIF object (`{sluice_limit, Ref}',
%% `{sluice_limiter, Ref}').
ref_of(Handle) -> element(2, Handle).

wait_until(Fun, 0) -> ?assert(Fun());
wait_until(Fun, N) ->
    case Fun() of
        true -> ok;
        false -> timer:sleep(20), wait_until(Fun, N - 1)
    end.

%% The telemetry event `Event' sent to this process by test/telemetry.erl.
event(Event) ->
    receive {telemetry, Event, M, Meta} -> {M, Meta}
    after 2000 -> ct:fail({no_event, Event})
    end.

%%% The listing

%% One tool of each kind, named and anonymous, each listed once with its
%% kind, id and name.
every_kind_is_listed(_Config) ->
    {ok, _Valve} = sluice_drop:new(listed_valve, #{}),
    {ok, Box} = sluice_box:new(#{max => 4}),
    {ok, Keeper} = sluice_box:start_link(#{name => listed_box, max => 4}),
    {ok, Named} = sluice_box:lookup(listed_box),
    {ok, Buckets} = sluice_buckets:new(#{max => 4, width => 100}),
    {ok, Lock} = sluice_lock:new(lock_opts(listed_lock)),
    {ok, Anon} = sluice_lock:new(maps:remove(name, lock_opts(x))),
    {ok, Limit} = sluice_limit:new_concurrency(#{max => 3}),
    {ok, Limiter} = sluice_limit:new_rate(#{limit => 5}),
    ok = sluice_breaker:install(listed_breaker, #{}),
    Tools = sluice:tools(),
    V = named(drop, listed_valve, Tools),
    ?assertMatch(#{counters := #{asked := 0}, gauges := #{rate := 1.0}}, V),
    ?assertMatch(#{kind := box, name := undefined}, find(box_id(Box), Tools)),
    ?assertMatch(#{kind := box, name := listed_box}, find(box_id(Named), Tools)),
    ?assertMatch(#{kind := buckets, name := undefined}, find(box_id(Buckets), Tools)),
    LockId = sluice_nif:lock_id(lock_ref(Lock)),
    ?assertMatch(#{kind := lock, name := listed_lock}, find(LockId, Tools)),
    AnonId = sluice_nif:lock_id(lock_ref(Anon)),
    ?assertMatch(#{kind := lock, name := undefined}, find(AnonId, Tools)),
    ?assertMatch(#{kind := limit, counters := #{acquired := 0}, gauges := #{max := 3}},
                 find(sluice_nif:lock_id(ref_of(Limit)), Tools)),
    ?assertMatch(#{kind := limit, name := undefined, counters := #{allowed := 0}},
                 find(sluice_nif:rate_id(ref_of(Limiter)), Tools)),
    ?assertMatch(#{kind := breaker, gauges := #{state := 0}},
                 named(breaker, listed_breaker, Tools)),
    %% every map has the documented keys and types
    _ = [begin
             #{kind := K, id := I, counters := C, gauges := G} = T,
             ?assert(lists:member(K, [drop, box, buckets, lock, limit, breaker])),
             ?assert(is_integer(I) andalso I > 0),
             ?assert(lists:all(fun({Key, N}) -> is_atom(Key) andalso is_integer(N)
                                                    andalso N >= 0 end, maps:to_list(C))),
             ?assert(lists:all(fun({Key, N}) -> is_atom(Key) andalso is_number(N) end,
                               maps:to_list(G)))
         end || T <- Tools],
    ok = sluice_drop:delete(listed_valve),
    ok = sluice_breaker:remove(listed_breaker),
    ok = sluice_lock:close(Lock),
    ok = sluice_lock:close(Anon),
    unlink(Keeper),
    exit(Keeper, shutdown),
    ok = sluice_box:close(Box),
    ok = sluice_buckets:close(Buckets).

%% After known work, each tool's counters are what its own info function
%% reports.
counters_match_info(_Config) ->
    {ok, Valve} = sluice_drop:new(counted_valve, #{rate => 0.5, rates => #{low => 0.0}}),
    _ = [sluice_drop:ask(Valve) || _ <- lists:seq(1, 200)],
    _ = [drop = sluice_drop:ask(Valve, low) || _ <- lists:seq(1, 7)],
    {ok, Box} = sluice_box:new(#{max => 3}),
    _ = [sluice_box:post(Box, I) || I <- lists:seq(1, 10)],
    {[_, _], 2, 7} = sluice_box:take(Box, 2),
    {ok, Lock} = sluice_lock:new(lock_opts(counted_lock)),
    {ok, R1, _} = sluice_lock:checkout(Lock),
    {ok, R2, _} = sluice_lock:checkout(Lock),
    {error, busy} = sluice_lock:checkout(Lock),
    ok = sluice_lock:checkin(Lock, R1, ok),
    {ok, Limit} = sluice_limit:new_concurrency(#{max => 1}),
    {ok, Token} = sluice_limit:acquire(Limit),
    {error, limit} = sluice_limit:acquire(Limit),
    {ok, Limiter} = sluice_limit:new_rate(#{limit => 3, clock => manual}),
    _ = [sluice_limit:check(Limiter, K) || K <- [a, a, a, a, b]],
    ok = sluice_breaker:install(counted_breaker, #{strategy => {standard, 1, 60000}}),
    ok = sluice_breaker:ask(counted_breaker, sync),
    ok = sluice_breaker:melt(counted_breaker),
    ok = sluice_breaker:melt(counted_breaker),
    blown = sluice_breaker:ask(counted_breaker, sync),
    Tools = sluice:tools(),
    %% valve
    #{counters := VC, gauges := VG, priorities := Prios} = named(drop, counted_valve, Tools),
    #{asked := Asked, kept := Kept, dropped := Dropped, priorities := InfoPrios} =
        sluice_drop:info(counted_valve),
    ?assertEqual(#{asked => Asked, kept => Kept, dropped => Dropped}, VC),
    ?assertEqual(207, Asked),
    ?assertEqual(#{rate => 0.5, effective_rate => 0.5, priorities => 2}, VG),
    ?assertEqual(maps:map(fun(_, P) -> maps:with([kept, dropped, rate, effective_rate], P) end,
                          InfoPrios), Prios),
    %% box
    #{counters := BC, gauges := BG, histograms := #{sojourn := S}} =
        find(box_id(Box), Tools),
    #{posted := 10, delivered := 2, dropped := BD, size := 1, max := 3, peak := 3} =
        sluice_box:info(Box),
    ?assertEqual(#{posted => 10, delivered => 2,
                   dropped_overflow => maps:get(overflow, BD), dropped_resize => 0,
                   dropped_filter => 0, dropped_closed => 0, dropped_expired => 0,
                   dropped_early => 0}, BC),
    ?assertEqual(7, maps:get(overflow, BD)),
    ?assertMatch(#{size := 1, max := 3, peak := 3, bytes := 0}, BG),
    ?assertEqual(2, maps:get(count, S)),
    %% lock
    #{counters := LC, gauges := LG} = named(lock, counted_lock, Tools),
    #{checkouts := 2, busy := 1, deaths := 0, in_use := 1} = LI = sluice_lock:info(Lock),
    ?assertEqual(maps:with([checkouts, busy, deaths], LI), LC),
    ?assertEqual(#{in_use => 1, peak => 2, slots => 2, capacity => 64}, LG),
    %% concurrency limit
    #{counters := CC, gauges := CG} = find(sluice_nif:lock_id(ref_of(Limit)), Tools),
    CI = sluice_limit:info(Limit),
    ?assertEqual(#{acquired => 1, refused => 1, deaths => 0}, CC),
    ?assertEqual(maps:with([acquired, refused, deaths], CI), CC),
    ?assertEqual(#{held => 1, peak => 1, max => 1, max_holders => 64}, CG),
    %% rate limiter
    #{counters := RC, gauges := RG} = find(sluice_nif:rate_id(ref_of(Limiter)), Tools),
    ?assertEqual(#{allowed => 4, refused => 1, evicted => 0}, RC),
    ?assertEqual(#{keys => 2, overrides => 0}, RG),
    %% breaker
    #{counters := KC, gauges := KG} = named(breaker, counted_breaker, Tools),
    KI = sluice_breaker:info(counted_breaker),
    ?assertEqual(maps:remove(state, KI), KC),
    ?assertMatch(#{asks := 2, ok := 1, blown := 1, melts := 2, trips := 1}, KC),
    ?assertEqual(#{state => 1}, KG),
    ok = sluice_limit:release(Token),
    ok = sluice_lock:checkin(Lock, R2, ok),
    ok = sluice_lock:close(Lock),
    ok = sluice_drop:delete(counted_valve),
    ok = sluice_breaker:remove(counted_breaker),
    ok = sluice_box:close(Box).

%% Every id is listed once; two listings give each tool the same id.
ids_are_unique_and_stable(_Config) ->
    {ok, B1} = sluice_box:new(#{max => 1}),
    {ok, B2} = sluice_box:new(#{max => 1}),
    {ok, L} = sluice_limit:new_rate(#{limit => 1}),
    {ok, _} = sluice_drop:new(id_valve, #{}),
    ok = sluice_breaker:install(id_breaker, #{}),
    First = sluice:tools(),
    Second = sluice:tools(),
    Ids = [I || #{id := I} <- First],
    ?assertEqual(length(Ids), length(lists:usort(Ids))),
    ?assertEqual(lists:sort(Ids), lists:sort([I || #{id := I} <- Second])),
    ?assertEqual(lists:sort([{K, I, N} || #{kind := K, id := I, name := N} <- First]),
                 lists:sort([{K, I, N} || #{kind := K, id := I, name := N} <- Second])),
    ?assertNotEqual(box_id(B1), box_id(B2)),
    _ = sluice_limit:info(L),
    ok = sluice_drop:delete(id_valve),
    ok = sluice_breaker:remove(id_breaker),
    ok = sluice_box:close(B1),
    ok = sluice_box:close(B2).

%% A tool that is gone is not listed: a box closed, a box nobody holds any
%% more (anonymous, freed), a rate limiter collected, a valve deleted, a
%% breaker removed, a lock closed, a concurrency limit collected.
dead_tools_disappear(_Config) ->
    Self = self(),
    {ok, Closed} = sluice_box:new(#{max => 1}),
    {ok, Valve} = sluice_drop:new(dying_valve, #{}),
    ok = sluice_breaker:install(dying_breaker, #{}),
    {ok, Lock} = sluice_lock:new(lock_opts(dying_lock)),
    %% objects held by a process only, then let go
    Holder = spawn(fun() ->
                           {ok, B} = sluice_box:new(#{max => 1}),
                           {ok, R} = sluice_limit:new_rate(#{limit => 1}),
                           {ok, C} = sluice_limit:new_concurrency(#{max => 1}),
                           Self ! {made, [box_id(B), sluice_nif:lock_id(ref_of(C)),
                                          sluice_nif:rate_id(ref_of(R))]},
                           receive stop -> ok end,
                           _ = [B, R, C]
                   end),
    Held = receive {made, HeldIds} -> HeldIds end,
    Before = sluice:tools(),
    Ids = Held ++ [box_id(Closed), sluice_nif:drop_id(element(2, Valve)),
           sluice_nif:lock_id(lock_ref(Lock)),
           maps:get(id, named(breaker, dying_breaker, Before))],
    _ = [?assertNotEqual(none, find(I, Before)) || I <- Ids],
    ok = sluice_box:close(Closed),
    ok = sluice_drop:delete(dying_valve),
    ok = sluice_breaker:remove(dying_breaker),
    ok = sluice_lock:close(Lock),
    Mon = monitor(process, Holder),
    Holder ! stop,
    receive {'DOWN', Mon, process, _, _} -> ok end,
    %% the holder's heap is gone; the objects go with the next collections
    wait_until(fun() ->
                       _ = [garbage_collect(P) || P <- processes()],
                       After = sluice:tools(),
                       lists:all(fun(I) -> find(I, After) =:= none end, Ids)
               end, 50).

%% A listing sends no message (the caller's sends are traced).
no_message_is_sent(_Config) ->
    {ok, B} = sluice_box:new(#{max => 2}),
    {ok, _} = sluice_box:start_link(#{name => quiet_box, max => 2}),
    {ok, _} = sluice_drop:new(quiet_valve, #{}),
    {ok, Lock} = sluice_lock:new(lock_opts(quiet_lock)),
    ok = sluice_breaker:install(quiet_breaker, #{}),
    Tracer = spawn_link(fun Loop() ->
                                receive
                                    {trace, _, send, _, _} = T -> put(sends, [T | sends()]), Loop();
                                    {trace, _, send_to_non_existing_process, _, _} = T ->
                                        put(sends, [T | sends()]), Loop();
                                    {report, To} -> To ! {sends, sends()}
                                end
                        end),
    1 = erlang:trace(self(), true, [send, {tracer, Tracer}]),
    Tools = sluice:tools(),
    1 = erlang:trace(self(), false, [send]),
    Tracer ! {report, self()},
    Sends = receive {sends, S} -> S end,
    ?assertEqual([], [T || {trace, _, _, _, To} = T <- Sends, To =/= Tracer]),
    ?assert(length(Tools) >= 5),
    ok = sluice_lock:close(Lock),
    ok = sluice_drop:delete(quiet_valve),
    ok = sluice_breaker:remove(quiet_breaker),
    ok = sluice_box:close(B).

sends() ->
    case get(sends) of undefined -> []; L -> L end.

%% `tools/1' lists at most `limit' tools; its options are checked.
limit_bounds_the_listing(_Config) ->
    Boxes = [element(2, {ok, _} = sluice_box:new(#{max => 1})) || _ <- lists:seq(1, 5)],
    ?assert(length(sluice:tools()) >= 5),
    ?assertEqual(3, length(sluice:tools(#{limit => 3}))),
    ?assertEqual([], sluice:tools(#{limit => 0})),
    ?assertEqual(sluice:tools(), sluice:tools(#{})),
    ?assertEqual({error, {bad_option, limit}}, sluice:tools(#{limit => -1})),
    ?assertEqual({error, {bad_option, limit}}, sluice:tools(#{limit => 10001})),
    ?assertEqual({error, {bad_option, limit}}, sluice:tools(#{limit => many})),
    ?assertEqual({error, {bad_option, other}}, sluice:tools(#{other => 1})),
    ?assertEqual({error, {bad_option, options}}, sluice:tools(not_a_map)),
    _ = [ok = sluice_box:close(B) || B <- Boxes].

%% A box's sojourn histogram counts every delivery since it was made, its
%% buckets are non-empty, lowest first, and sum to its count; its sum of
%% nanoseconds is in the range the manual clock set.
histograms_are_cumulative(_Config) ->
    {ok, Box} = sluice_box:new(#{max => 100, clock => manual}),
    _ = [ok = sluice_box:post(Box, I) || I <- lists:seq(1, 10)],
    ok = sluice_box:set_time(Box, 5),
    {_, 4, 0} = sluice_box:take(Box, 4),
    #{histograms := #{sojourn := H1}} = find(box_id(Box), sluice:tools()),
    ok = sluice_box:set_time(Box, 25),
    {_, 6, 0} = sluice_box:take(Box, 6),
    #{histograms := #{sojourn := H2}} = find(box_id(Box), sluice:tools()),
    %% (an arrival time is kept to within a few ns)
    ?assertMatch(#{count := 4}, H1),
    ?assertMatch(#{count := 10}, H2),
    ?assert(abs(maps:get(sum, H1) - 20000000) < 1000),
    ?assert(abs(maps:get(sum, H2) - 170000000) < 1000),
    _ = [begin
             #{count := C, buckets := Bs} = H,
             ?assertEqual(C, lists:sum([N || {_, N} <- Bs])),
             ?assert(lists:all(fun({_, N}) -> N > 0 end, Bs)),
             ?assertEqual(lists:usort([U || {U, _} <- Bs]), [U || {U, _} <- Bs])
         end || H <- [H1, H2]],
    %% 5 ms lands in a bucket bounded within 1/32 above it, as 25 ms does
    [{U1, 4}] = maps:get(buckets, H1),
    ?assert(U1 >= 5000000 andalso U1 < 5000000 * 33 / 32),
    [{U1, 4}, {U2, 6}] = maps:get(buckets, H2),
    ?assert(U2 >= 25000000 andalso U2 < 25000000 * 33 / 32),
    ok = sluice_box:close(Box).

%% `run/3' records how long its fun took, also when it raises, melts or is
%% slow; a blown breaker's refusal is not a run.
breaker_run_time_is_recorded(_Config) ->
    N = timed_breaker,
    ok = sluice_breaker:install(N, #{strategy => {standard, 1, 60000}, reset => manual,
                                     slow => 15}),
    ok = sluice_breaker:run(N, fun() -> ok end, sync),
    ok = sluice_breaker:run(N, fun() -> timer:sleep(30), ok end, sync),
    ?assertError(oops, sluice_breaker:run(N, fun() -> error(oops) end, sync)),
    blown = sluice_breaker:run(N, fun() -> ok end, sync),
    #{histograms := #{run := H}} = named(breaker, N, sluice:tools()),
    ?assertMatch(#{count := 3}, H),
    #{sum := Sum, buckets := Bs} = H,
    ?assert(Sum >= 30000000),
    ?assert(lists:any(fun({U, _}) -> U >= 30000000 end, Bs)),
    ?assertMatch(#{melts := 2, trips := 1, ok := 3, blown := 1}, sluice_breaker:info(N)),
    ok = sluice_breaker:remove(N).

%%% Telemetry

breaker_blown_and_healed(_Config) ->
    true = register(sluice_telemetry_test, self()),
    N = {telemetry_breaker, 1},
    ok = sluice_breaker:install(N, #{strategy => {standard, 0, 1000}, reset => manual}),
    ok = sluice_breaker:melt(N),
    {#{system_time := T}, Meta} = event([sluice, breaker, blown]),
    ?assert(is_integer(T)),
    ?assertEqual(#{name => N, state => open}, Meta),
    ok = sluice_breaker:reset(N),
    {_, Healed} = event([sluice, breaker, healed]),
    ?assertEqual(#{name => N, state => closed}, Healed),
    ok = sluice_breaker:melt(N),
    {_, _} = event([sluice, breaker, blown]),
    ok = sluice_breaker:remove(N),
    {_, Removed} = event([sluice, breaker, healed]),
    ?assertEqual(#{name => N, state => removed}, Removed),
    unregister(sluice_telemetry_test).

box_drop_notices(_Config) ->
    true = register(sluice_telemetry_test, self()),
    {ok, Box} = sluice_box:new(#{max => 1}),
    ok = sluice_box:drop_notices(Box, 100),
    ok = sluice_box:post(Box, a),
    full = sluice_box:post(Box, b),
    full = sluice_box:post(Box, c),
    receive {sluice_dropped, Box, overflow, 2} -> ok after 2000 -> ct:fail(no_notice) end,
    {M, Meta} = event([sluice, box, dropped]),
    ?assertEqual(#{count => 2}, M),
    Self = self(),
    ?assertEqual(#{box => Box, id => box_id(Box), reason => overflow, owner => Self}, Meta),
    ok = sluice_box:close(Box),
    unregister(sluice_telemetry_test).

lock_holder_down(_Config) ->
    true = register(sluice_telemetry_test, self()),
    {ok, Lock} = sluice_lock:new(lock_opts(telemetry_lock)),
    Self = self(),
    Holder = spawn(fun() ->
                           {ok, {I, _}, _} = sluice_lock:checkout(Lock),
                           Self ! {slot, I},
                           receive never -> ok end
                   end),
    Slot = receive {slot, I} -> I end,
    exit(Holder, kill),
    {M, Meta} = event([sluice, lock, holder_down]),
    ?assertEqual(#{count => 1}, M),
    ?assertEqual(#{id => sluice_nif:lock_id(lock_ref(Lock)), name => telemetry_lock,
                   slot => Slot}, Meta),
    %% the slot lends again
    wait_until(fun() -> maps:get(in_use, sluice_lock:info(Lock)) =:= 0 end, 50),
    ok = sluice_lock:close(Lock),
    unregister(sluice_telemetry_test).

%% A handler that raises never reaches the caller of sluice_telemetry.
crashing_handler_is_contained(_Config) ->
    ?assertEqual(ok, sluice_telemetry:execute([sluice, test], #{count => 1}, #{crash => true})),
    true = register(sluice_telemetry_test, self()),
    ?assertEqual(ok, sluice_telemetry:execute([sluice, test], #{count => 1}, #{})),
    {#{count := 1}, #{}} = event([sluice, test]),
    unregister(sluice_telemetry_test).

%% With no `telemetry' module loaded, every state change still does what it
%% did (subscribers, notices, watchers), and `execute/3' is a no-op that
%% never loads the module.
without_telemetry_nothing_breaks(_Config) ->
    unload_telemetry(),
    ?assertNot(erlang:module_loaded(telemetry)),
    ?assertEqual(ok, sluice_telemetry:execute([sluice, test], #{count => 1}, #{})),
    ?assertNot(erlang:module_loaded(telemetry)),
    Servers = [{S, whereis(S)} || S <- [sluice_breaker_server, sluice_box_warden,
                                        sluice_lock_sup]],
    N = untold_breaker,
    ok = sluice_breaker:install(N, #{strategy => {standard, 0, 1000}, reset => manual}),
    ok = sluice_breaker:subscribe(),
    ok = sluice_breaker:melt(N),
    receive {sluice_breaker, N, blown} -> ok after 2000 -> ct:fail(no_blown) end,
    ok = sluice_breaker:reset(N),
    receive {sluice_breaker, N, healed} -> ok after 2000 -> ct:fail(no_healed) end,
    ok = sluice_breaker:unsubscribe(),
    ok = sluice_breaker:remove(N),
    {ok, Box} = sluice_box:new(#{max => 1}),
    ok = sluice_box:drop_notices(Box, 20),
    ok = sluice_box:post(Box, a),
    full = sluice_box:post(Box, b),
    receive {sluice_dropped, Box, overflow, 1} -> ok after 2000 -> ct:fail(no_notice) end,
    ok = sluice_box:close(Box),
    {ok, Lock} = sluice_lock:new(lock_opts(quiet_lock2)),
    Holder = spawn(fun() -> {ok, _, _} = sluice_lock:checkout(Lock), receive never -> ok end end),
    wait_until(fun() -> maps:get(in_use, sluice_lock:info(Lock)) =:= 1 end, 50),
    exit(Holder, kill),
    wait_until(fun() -> #{deaths := D, in_use := U} = sluice_lock:info(Lock),
                        D =:= 1 andalso U =:= 0 end, 50),
    wait_until(fun() -> sluice_nif:lock_empty(lock_ref(Lock)) =:= 0 end, 50),
    ?assertNot(erlang:module_loaded(telemetry)),
    ?assertEqual(Servers, [{S, whereis(S)} || {S, _} <- Servers]),
    ok = sluice_lock:close(Lock).
