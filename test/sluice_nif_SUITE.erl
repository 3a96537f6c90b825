%% NIF lifecycle: panics become exceptions, resources are freed, and a newer
%% build of the library takes over live resources when the stub module is
%% reloaded (as a release upgrade does), before and after the old code is purged.
-module(sluice_nif_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([upgrade_keeps_breaker_names/1, versioned_resources_are_counted/1,
         upgrade_takes_over_limits/1, upgrade_keeps_tools_listed/1]).
-export([panic_is_an_exception/1, resources_are_freed/1, upgrade_takes_over_valves/1,
         upgrade_takes_over_boxes/1]).

all() ->
    [panic_is_an_exception, resources_are_freed, upgrade_takes_over_valves,
     upgrade_takes_over_boxes, upgrade_keeps_breaker_names, versioned_resources_are_counted,
     upgrade_takes_over_limits, upgrade_keeps_tools_listed].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(sluice),
    Config.

end_per_suite(_Config) ->
    ok.

lib_info() -> maps:from_list(sluice_nif:lib_info()).

live_valves() -> proplists:get_value(valve, maps:get(live, lib_info())).

live_boxes() -> proplists:get_value(sluice_box, maps:get(live, lib_info())).

panic_is_an_exception(_Config) ->
    ?assertError(nif_panicked, sluice_nif:induce_panic()),
    %% the VM and the library carry on
    {Pid, Ref} = spawn_monitor(fun() -> sluice_nif:induce_panic() end),
    receive {'DOWN', Ref, process, Pid, Reason} -> ?assertMatch({nif_panicked, _}, Reason) end,
    ?assert(is_boolean(sluice_drop:random(0.5))),
    {ok, _} = sluice_drop:new(after_panic, #{}),
    ok = sluice_drop:ask(after_panic),
    ok = sluice_drop:delete(after_panic).

%% Collects garbage everywhere until the live count stops changing.
settle() -> sluice_builds:settled(fun live_valves/0).

%% Runs `Fun' in a process of its own (see sluice_builds).
in_process(Fun) -> sluice_builds:in_process(Fun).

resources_are_freed(_Config) ->
    Baseline = settle(),
    Parent = self(),
    Pid = spawn(fun() ->
                        Names = [{freed, I} || I <- lists:seq(1, 200)],
                        [{ok, _} = sluice_drop:new(N, #{rate => 0.5}) || N <- Names],
                        [sluice_drop:ask(N) || N <- Names],
                        Parent ! {created, live_valves()},
                        [ok = sluice_drop:delete(N) || N <- Names],
                        receive stop -> ok end
                end),
    receive {created, Live} -> ?assertEqual(Baseline + 200, Live) end,
    Pid ! stop,
    ?assertEqual(Baseline, settle()).

%% Installs a copy of the sluice application (beams and NIF library) as
%% version `Vsn' under `Dir' and points the code path at it.
install_copy(Dir, Vsn) ->
    Lib = filename:join(Dir, "sluice-" ++ Vsn),
    [ok = filelib:ensure_dir(filename:join([Lib, Sub, "x"])) || Sub <- ["ebin", "priv"]],
    From = code:lib_dir(sluice),
    [{ok, _} = file:copy(F, filename:join([Lib, "ebin", filename:basename(F)]))
     || F <- filelib:wildcard(filename:join([From, "ebin", "*"]))],
    {ok, _} = file:copy(filename:join([From, "priv", "sluice_nif.so"]),
                        filename:join([Lib, "priv", "sluice_nif.so"])),
    true = code:replace_path(sluice, filename:join(Lib, "ebin")),
    Lib.

upgrade_takes_over_valves(Config) ->
    Baseline = settle(),
    #{generation := G1} = lib_info(),
    in_process(fun() -> upgrade_scenario(Config) end),
    %% back on the original library (a third instance)
    ?assertMatch(#{instances := 1, generation := G3} when G3 =:= G1 + 2, lib_info()),
    ?assertMatch(#{asked := 2011}, sluice_drop:info(upgraded)),
    %% the valve made by the first instance is freed by the third one
    ?assertEqual(Baseline + 1, settle()),
    ok = sluice_drop:delete(upgraded),
    ?assertEqual(Baseline, settle()).

upgrade_scenario(Config) ->
    OrigEbin = filename:join(code:lib_dir(sluice), "ebin"),
    #{generation := G1, instance := I1} = lib_info(),
    {ok, V} = sluice_drop:new(upgraded, #{rate => 0.5, rates => #{never => 0.0}}),
    [sluice_drop:ask(V) || _ <- lists:seq(1, 1000)],
    [drop = sluice_drop:ask(V, never) || _ <- lists:seq(1, 10)],
    #{asked := 1010, kept := Kept, dropped := Dropped} = Before = sluice_drop:info(V),
    try
        %% v2: a second copy of the library, loaded while v1's valve is alive
        Lib = install_copy(?config(priv_dir, Config), "99.0.0"),
        ?assertEqual({module, sluice_nif}, code:load_file(sluice_nif)),
        ?assertEqual(filename:join(Lib, "priv"), code:priv_dir(sluice)),
        #{generation := G2, instance := I2, instances := 2} = lib_info(),
        ?assertEqual(G1 + 1, G2),
        ?assertNotEqual(I1, I2),
        %% the valve made by v1 answers v2 with its counters intact
        ?assertEqual(Before, sluice_drop:info(V)),
        ?assertEqual(drop, sluice_drop:ask(V, never)),
        %% v1's code is purged: its library is unloaded, the valve lives on
        _ = code:purge(sluice_nif),
        ?assertMatch(#{instances := 1}, lib_info()),
        [sluice_drop:ask(V) || _ <- lists:seq(1, 1000)],
        #{asked := 2011, kept := K2, dropped := D2,
          priorities := #{never := #{dropped := 11}}} = sluice_drop:info(upgraded),
        ?assert(K2 >= Kept andalso D2 >= Dropped + 1),
        ?assertEqual(D2, sluice_drop:take_dropped(V)),
        %% new valves work on v2, and v2 frees what v1 made
        {ok, _} = sluice_drop:new(made_by_v2, #{}),
        ok = sluice_drop:ask(made_by_v2),
        ok = sluice_drop:delete(made_by_v2)
    after
        true = code:replace_path(sluice, OrigEbin),
        {module, sluice_nif} = code:load_file(sluice_nif),
        _ = code:purge(sluice_nif)
    end.

%% A box holding messages across a library upgrade: nothing is lost, order
%% and counters carry on, and the box is freed by the library loaded last.
upgrade_takes_over_boxes(Config) ->
    Live = live_boxes(),
    in_process(fun() -> box_upgrade_scenario(Config) end),
    %% made by the first instance, freed by the third
    ?assertEqual(Live, settle_boxes(Live, 100)).

box_upgrade_scenario(Config) ->
    {ok, Box} = sluice_box:new(#{max => 1000, type => queue}),
    [ok = sluice_box:post(Box, {msg, I, <<I:64>>}) || I <- lists:seq(1, 500)],
    {First, 100, 0} = sluice_box:take(Box, 100),
    ?assertEqual([{msg, I, <<I:64>>} || I <- lists:seq(1, 100)], First),
    OrigEbin = filename:join(code:lib_dir(sluice), "ebin"),
    try
        install_copy(?config(priv_dir, Config), "99.0.1"),
        {module, sluice_nif} = code:load_file(sluice_nif),
        ?assertMatch(#{instances := 2}, lib_info()),
        {Second, 100, 0} = sluice_box:take(Box, 100),
        ?assertEqual([{msg, I, <<I:64>>} || I <- lists:seq(101, 200)], Second),
        _ = code:purge(sluice_nif),
        ?assertMatch(#{instances := 1}, lib_info()),
        [ok = sluice_box:post(Box, {msg, I, <<I:64>>}) || I <- lists:seq(501, 600)],
        ok = sluice_box:active(Box),
        receive
            {mail, Box, Third, 400, 0} ->
                ?assertEqual([{msg, I, <<I:64>>} || I <- lists:seq(201, 600)], Third)
        after 1000 -> ct:fail(no_mail)
        end
    after
        true = code:replace_path(sluice, OrigEbin),
        {module, sluice_nif} = code:load_file(sluice_nif),
        _ = code:purge(sluice_nif)
    end,
    ?assertMatch(#{posted := 600, delivered := 600, size := 0}, sluice_box:info(Box)),
    ok = sluice_box:post(Box, after_upgrade),
    ?assertMatch({[after_upgrade], 1, 0}, sluice_box:take(Box, 10)),
    ok = sluice_box:close(Box).

settle_boxes(Want, Tries) -> sluice_builds:reaches(fun live_boxes/0, Want, Tries).

%% Breakers across a library upgrade: the names live in the library-wide
%% block, so a blown breaker is still found, still blown, and heals, and
%% its state changes still reach the breaker server.
upgrade_keeps_breaker_names(Config) ->
    in_process(fun() -> breaker_upgrade_scenario(Config) end).

breaker_upgrade_scenario(Config) ->
    OrigEbin = filename:join(code:lib_dir(sluice), "ebin"),
    N = {upgraded, breaker},
    ok = sluice_breaker:install(N, #{strategy => {standard, 0, 60000}, reset => manual}),
    ok = sluice_breaker:melt(N),
    blown = sluice_breaker:ask(N, sync),
    try
        _ = install_copy(?config(priv_dir, Config), "98.0.0"),
        ?assertEqual({module, sluice_nif}, code:load_file(sluice_nif)),
        ?assertEqual(blown, sluice_breaker:ask(N, sync)),
        _ = code:purge(sluice_nif),
        ?assertMatch(#{instances := 1}, lib_info()),
        ?assertEqual(blown, sluice_breaker:ask(N, sync)),
        ?assertMatch(#{state := open, melts := 1}, sluice_breaker:info(N)),
        ok = sluice_breaker:reset(N),
        ?assertEqual(ok, sluice_breaker:ask(N, sync)),
        ok = sluice_breaker:install(made_after, #{}),
        ?assertEqual(ok, sluice_breaker:ask(made_after, sync)),
        ok = sluice_breaker:remove(made_after)
    after
        true = code:replace_path(sluice, OrigEbin),
        {module, sluice_nif} = code:load_file(sluice_nif),
        _ = code:purge(sluice_nif)
    end,
    ?assertEqual(ok, sluice_breaker:ask(N, sync)),
    ok = sluice_breaker:remove(N),
    ?assertEqual({error, not_found}, sluice_breaker:ask(N, sync)).

%% Live objects of every kind whose state is laid out by the compiler.
-define(VERSIONED, [sluice_box, sluice_lock, sluice_limiter, sluice_breaker]).

live(Kind) -> proplists:get_value(Kind, maps:get(live, lib_info())).

%% Collects garbage everywhere until `Kind''s live count is `Want' (or tries run out).
settle_kind(Kind, Want) -> settle_kind(Kind, Want, 100).
settle_kind(Kind, Want, Tries) ->
    _ = [erlang:garbage_collect(P) || P <- processes()],
    case live(Kind) of
        Want -> Want;
        _ when Tries > 0 -> timer:sleep(20), settle_kind(Kind, Want, Tries - 1);
        Other -> Other
    end.

%% `Kind''s live count once it stays the same across two looks 100 ms
%% apart (removed breakers are freed when the breaker server drains its
%% change queue, every 50 ms).
steady(Kind) -> sluice_builds:settled(fun() -> live(Kind) end, 100).

%% Every versioned kind (boxes, locks, rate limiters, breakers) is counted
%% live from its constructor to its destructor, and reported by lib_info/0.
versioned_resources_are_counted(_Config) ->
    Base = maps:from_list([{K, steady(K)} || K <- ?VERSIONED]),
    ?assert(lists:all(fun is_integer/1, maps:values(Base))),
    Made = in_process(
             fun() ->
                     Three = lists:seq(1, 3),
                     Boxes = [ok_value(sluice_box:new(#{max => 10})) || _ <- Three],
                     Limits = [ok_value(sluice_limit:new_concurrency(#{max => 2})) || _ <- Three],
                     Rates = [ok_value(sluice_limit:new_rate(#{limit => 5})) || _ <- Three],
                     Names = [{counted, I} || I <- Three],
                     [ok = sluice_breaker:install(N, #{}) || N <- Names],
                     Live = maps:from_list([{K, live(K)} || K <- ?VERSIONED]),
                     [ok = sluice_box:close(B) || B <- Boxes],
                     [ok = sluice_breaker:remove(N) || N <- Names],
                     {Live, length(Limits ++ Rates)}
             end),
    ?assertEqual({maps:map(fun(_, N) -> N + 3 end, Base), 6}, Made),
    [?assertEqual({K, N}, {K, settle_kind(K, N)}) || {K, N} <- maps:to_list(Base)],
    ok.

%% A concurrency limit (a lock) and a rate limiter across a library
%% upgrade: the place held before is freed by the new library's `down'
%% callback when its holder dies, the limiter's allowance carries on, and
%% both are freed by the library loaded last.
upgrade_takes_over_limits(Config) ->
    Base = [{K, live(K)} || K <- [sluice_lock, sluice_limiter]],
    in_process(fun() -> limits_upgrade_scenario(Config) end),
    [?assertEqual({K, N}, {K, settle_kind(K, N)}) || {K, N} <- Base],
    ok.

limits_upgrade_scenario(Config) ->
    OrigEbin = filename:join(code:lib_dir(sluice), "ebin"),
    {ok, Limit} = sluice_limit:new_concurrency(#{max => 1}),
    {ok, Rate} = sluice_limit:new_rate(#{limit => 1, period => 60000, clock => manual}),
    ok = sluice_limit:check(Rate, key),
    Parent = self(),
    Holder = spawn(fun() ->
                           {ok, _} = sluice_limit:acquire(Limit),
                           Parent ! held,
                           receive stop -> ok end
                   end),
    receive held -> ok end,
    {error, limit} = sluice_limit:acquire(Limit),
    try
        _ = install_copy(?config(priv_dir, Config), "97.0.0"),
        ?assertEqual({module, sluice_nif}, code:load_file(sluice_nif)),
        _ = code:purge(sluice_nif),
        ?assertMatch(#{instances := 1}, lib_info()),
        ?assertEqual({error, limit}, sluice_limit:acquire(Limit)),
        ?assertMatch({error, {retry_after, _}}, sluice_limit:check(Rate, key)),
        %% keys new to every shard of the limiter, and overrides
        [ok = sluice_limit:check(Rate, {fresh, I}) || I <- lists:seq(1, 256)],
        ok = sluice_limit:set_override(Rate, premium, #{limit => 5, period => 1000}),
        [ok = sluice_limit:set_override(Rate, {fresh, I}, default) || I <- lists:seq(1, 256)],
        %% the holder dies under the new library: its down callback frees the place
        Ref = monitor(process, Holder),
        Holder ! stop,
        receive {'DOWN', Ref, process, Holder, _} -> ok end,
        ?assertMatch({ok, _}, wait_acquire(Limit, 100)),
        ok = sluice_limit:set_time(Rate, 60000),
        ?assertEqual(ok, sluice_limit:check(Rate, key))
    after
        true = code:replace_path(sluice, OrigEbin),
        {module, sluice_nif} = code:load_file(sluice_nif),
        _ = code:purge(sluice_nif)
    end,
    ?assertMatch(#{allowed := 258, refused := 1, overrides := 1}, sluice_limit:info(Rate)),
    ?assertMatch(#{deaths := 1}, sluice_limit:info(Limit)).

%% `sluice:tools/0' across a library upgrade: the registries of boxes,
%% locks and limiters live in the library-wide block, so the tools made by
%% the first instance are still listed (same ids) by the second, after the
%% first is purged, and still leave the listing when freed; the warden
%% still closes by id a box whose owner dies.
upgrade_keeps_tools_listed(Config) ->
    in_process(fun() -> tools_upgrade_scenario(Config) end).

tools_upgrade_scenario(Config) ->
    OrigEbin = filename:join(code:lib_dir(sluice), "ebin"),
    {ok, Box} = sluice_box:new(#{max => 10}),
    {ok, Limit} = sluice_limit:new_concurrency(#{max => 2}),
    {ok, Rate} = sluice_limit:new_rate(#{limit => 5}),
    Parent = self(),
    Owner = spawn(fun() ->
                          {ok, B} = sluice_box:new(#{max => 1}),
                          Parent ! {orphan, sluice_nif:box_id(B), B},
                          receive stop -> ok end
                  end),
    {OrphanId, Orphan} = receive {orphan, OId, OBox} -> {OId, OBox} end,
    Ids = [sluice_nif:box_id(Box), sluice_nif:lock_id(element(2, Limit)),
           sluice_nif:rate_id(element(2, Rate)), OrphanId],
    Listed = fun() -> [I || #{id := I} <- sluice:tools(), lists:member(I, Ids)] end,
    ?assertEqual(lists:sort(Ids), lists:sort(Listed())),
    try
        _ = install_copy(?config(priv_dir, Config), "96.0.0"),
        ?assertEqual({module, sluice_nif}, code:load_file(sluice_nif)),
        _ = code:purge(sluice_nif),
        ?assertMatch(#{instances := 1}, lib_info()),
        ?assertEqual(lists:sort(Ids), lists:sort(Listed())),
        %% the orphan's owner dies: the warden closes it by id
        Owner ! stop,
        ok = wait_closed(Orphan, 100),
        ?assertEqual(lists:sort(Ids -- [OrphanId]), lists:sort(Listed()))
    after
        true = code:replace_path(sluice, OrigEbin),
        {module, sluice_nif} = code:load_file(sluice_nif),
        _ = code:purge(sluice_nif)
    end,
    ?assertEqual(lists:sort(Ids -- [OrphanId]), lists:sort(Listed())),
    ok = sluice_box:close(Box),
    ?assertEqual(lists:sort(Ids -- [OrphanId, hd(Ids)]), lists:sort(Listed())),
    %% (the limit and the limiter are held until here)
    ?assertMatch(#{max := 2}, sluice_limit:info(Limit)),
    ?assertMatch(#{allowed := 0}, sluice_limit:info(Rate)).

wait_closed(Box, Tries) ->
    case sluice_box:info(Box) of
        #{closed := true} -> ok;
        _ when Tries > 0 -> timer:sleep(20), wait_closed(Box, Tries - 1);
        Info -> {not_closed, Info}
    end.

-spec ok_value({ok, T}) -> T.
ok_value({ok, Value}) -> Value.

wait_acquire(Limit, Tries) ->
    case sluice_limit:acquire(Limit) of
        {error, limit} when Tries > 0 -> timer:sleep(10), wait_acquire(Limit, Tries - 1);
        Answer -> Answer
    end.
