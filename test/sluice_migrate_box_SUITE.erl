%% Boxes and buffers of buckets across builds of the NIF library: a build
%% laid out otherwise (the cargo feature `layout_b', "B") loaded over the
%% default build ("A") converts every live box in place, and A loaded again
%% over B converts them back. Every message (its order, size, large mark
%% and arrival time), every counter, the sojourn histogram, the settings,
%% the owner and its arming, the closed flag and the id carry over, and the
%% boxes keep working; also while producers post and an owner takes
%% through the swaps and purges.
-module(sluice_migrate_box_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, suite/0, init_per_suite/1, end_per_suite/1]).
-export([boxes_carry_over/1, buckets_carry_over/1, load_carries_over/1]).

suite() ->
    [{timetrap, {minutes, 15}}].

all() ->
    [boxes_carry_over, buckets_carry_over, load_carries_over].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(sluice),
    %% B is built once, before any case swaps libraries.
    _ = sluice_builds:library(sluice, "sluice_nif", layout_b),
    [{orig_ebin, filename:join(code:lib_dir(sluice), "ebin")} | Config].

end_per_suite(_Config) ->
    ok.

%% ---------------------------------------------------------------------
%% Helpers

lib_info() -> maps:from_list(sluice_nif:lib_info()).

live_boxes() -> proplists:get_value(sluice_box, maps:get(live, lib_info())).

%% Loads build `Build' as version `Vsn' over the library loaded now.
load(Config, Vsn, Build) ->
    _ = sluice_builds:install(sluice, ?config(priv_dir, Config), Vsn, Build),
    ?assertEqual({module, sluice_nif}, code:load_file(sluice_nif)),
    ?assertMatch(#{instances := 2}, lib_info()).

%% Purges the old code: its library unloads, handing its objects over.
purge() ->
    _ = code:purge(sluice_nif),
    ?assertMatch(#{instances := 1}, lib_info()).

restore(Config) ->
    ok = sluice_builds:restore({sluice, ?config(orig_ebin, Config)}, [sluice_nif]).

%% Runs `Fun' in a process of its own (the owner of what it makes), so that
%% nothing it made stays referenced once it is done.
in_process(Fun) ->
    {Pid, Ref} = spawn_monitor(fun() -> exit({done, Fun()}) end),
    receive
        {'DOWN', Ref, process, Pid, {done, Result}} -> Result;
        {'DOWN', Ref, process, Pid, Reason} -> ct:fail(Reason)
    end.

%% The live boxes once garbage collection frees no more (what earlier
%% suites left unreferenced goes first): the baseline of a case.
baseline() -> sluice_builds:settled(fun live_boxes/0).

%% Waits until the live boxes are `Want' again (the warden closes the boxes
%% of a dead owner; a box is freed once no process holds its handle).
settle_boxes(Want) -> sluice_builds:reaches(fun live_boxes/0, Want, 200).

%% What `info' says of a box, but for how its storage is laid out.
seen(Box) -> maps:remove(regions, sluice_box:info(Box)).

msgs(Tag, From, To) -> [{Tag, I} || I <- lists:seq(From, To)].

%% A term over the post's walk budget: posted and taken on dirty schedulers.
large(I) -> {large, I, lists:seq(1, 20000)}.

%% Runs A -> B (check, purge A) -> A again (check, purge B): `Check(Step)'
%% after each load and after each purge, Step in 1..4.
swaps(Config, Tag, Check) ->
    try
        load(Config, Tag ++ ".1", layout_b),
        Check(1),
        purge(),
        Check(2),
        load(Config, Tag ++ ".2", default),
        Check(3),
        purge(),
        Check(4)
    after
        restore(Config)
    end.

%% ---------------------------------------------------------------------
%% Boxes

boxes_carry_over(Config) ->
    Live = baseline(),
    in_process(fun() -> boxes_scenario(Config) end),
    ?assertEqual(Live, settle_boxes(Live)).

%% Box 1, a queue on a manual clock with an age limit, with drops of every
%% reason but `closed' and `early' (box 5 has those): 610 posted, 50
%% expired, 40 overflow, 50 resize, 10 filter, 10 delivered, 450 held.
queue_box() ->
    {ok, B} = sluice_box:new(#{max => 500, type => queue, clock => manual, max_age => 1000}),
    ok = sluice_box:set_time(B, 0),
    [ok = sluice_box:post(B, M) || M <- msgs(m, 1, 50)],
    ok = sluice_box:set_time(B, 1500),
    [ok = sluice_box:post(B, M) || M <- msgs(m, 51, 500)],
    ?assertEqual({msgs(m, 51, 60), 10, 50}, sluice_box:take(B, 10)),
    [ok = sluice_box:post(B, M) || M <- msgs(m, 501, 560)],
    [full = sluice_box:post(B, M) || M <- msgs(m, 561, 600)],
    ok = sluice_box:resize(B, 450),
    ok = sluice_box:resize(B, 500),
    Filter = fun({m, N}, S) when N =< 160 -> {drop, S};
                (_, _) -> skip
             end,
    ok = sluice_box:active(B, Filter, none),
    receive {mail, B, [], 0, 100} -> ok after 5000 -> ct:fail(no_filtered_mail) end,
    ok = sluice_box:set_time(B, 1600),
    [ok = sluice_box:post(B, M) || M <- msgs(m, 601, 610)],
    ?assertMatch(#{type := queue, posted := 610, delivered := 10, size := 450, max := 500,
                   dropped := #{overflow := 40, resize := 50, filter := 10, expired := 50,
                                closed := 0, early := 0}},
                 sluice_box:info(B)),
    B.

boxes_scenario(Config) ->
    Self = self(),
    Q = queue_box(),
    %% 2: a stack armed `notify' while empty
    {ok, S} = sluice_box:new(#{max => 10, type => stack}),
    ok = sluice_box:notify(S),
    %% 3: a byte budget, small and large messages
    {ok, Z} = sluice_box:new(#{max => 100, max_bytes => 10000000, type => keep_old}),
    Sized = [{z, 1}, large(2), {z, 3}, large(4), {z, 5}],
    [ok = sluice_box:post(Z, M) || M <- Sized],
    %% 4: closed
    {ok, C} = sluice_box:new(#{max => 10}),
    [ok = sluice_box:post(C, M) || M <- msgs(c, 1, 5)],
    ok = sluice_box:close(C),
    %% 5: early drops (random early drop certain from one message held)
    {ok, E} = sluice_box:new(#{max => 100, red_min => 0, red_max => 1, red_prob => 1.0}),
    Answers = [sluice_box:post(E, M) || M <- msgs(e, 1, 20)],
    ?assertEqual([ok | lists:duplicate(19, full)], Answers),
    Boxes = [Q, S, Z, C, E],
    Ids = [sluice_nif:box_id(B) || B <- Boxes],
    Before = [seen(B) || B <- Boxes],
    ?assertMatch(#{closed := true, dropped := #{closed := 5}}, seen(C)),
    ?assertMatch(#{dropped := #{early := 19}, size := 1}, seen(E)),
    #{bytes := Bytes} = seen(Z),
    ?assert(Bytes > 20000 * 2),
    Check =
        fun(Step) ->
                %% every box is still itself
                ?assertEqual(Ids, [sluice_nif:box_id(B) || B <- Boxes]),
                ?assertEqual(Self, maps:get(owner, seen(Q))),
                case Step of
                    1 ->
                        ?assertEqual(Before, [seen(B) || B <- Boxes]),
                        %% the queue delivers on, in order
                        ?assertEqual({msgs(m, 161, 200), 40, 0}, sluice_box:take(Q, 40)),
                        ok = sluice_box:post(Q, {m, 611}),
                        %% the stack's owner is told of the first post
                        ok = sluice_box:post(S, {s, 1}),
                        receive {mail, S, new_data} -> ok
                        after 5000 -> ct:fail(no_new_data)
                        end,
                        ?assertEqual({[{s, 1}], 1, 0}, sluice_box:take(S, 10)),
                        ok = sluice_box:active(S),
                        %% the closed box stays closed
                        ?assertEqual({error, closed}, sluice_box:post(C, late)),
                        %% sizes and large marks carried: small and large
                        %% messages come out as they went in
                        ?assertEqual({[{z, 1}, large(2)], 2, 0}, sluice_box:take(Z, 2)),
                        ?assertEqual(full, sluice_box:post(E, {e, 21})),
                        ?assertMatch(#{dropped := #{early := 20}}, seen(E)),
                        ok;
                    2 ->
                        #{size := 411, posted := 611, delivered := 50} = seen(Q),
                        ?assertMatch(#{size := 3, closed := false}, seen(Z)),
                        ok;
                    3 ->
                        %% the stack armed `active' on B delivers on A
                        ok = sluice_box:post(S, {s, 2}),
                        receive {mail, S, [{s, 2}], 1, 0} -> ok
                        after 5000 -> ct:fail(no_active_mail)
                        end,
                        ?assertEqual({msgs(m, 201, 300), 100, 0}, sluice_box:take(Q, 100)),
                        ok;
                    4 ->
                        ?assertEqual({[{z, 3}, large(4), {z, 5}], 3, 0}, sluice_box:take(Z, 10)),
                        ?assertMatch(#{size := 0, bytes := 0, posted := 5, delivered := 5},
                                     seen(Z)),
                        %% the age limit goes on from the carried arrival
                        %% times on the carried clock: the rest expires
                        ok = sluice_box:set_time(Q, 2700),
                        ok = sluice_box:post(Q, {m, 612}),
                        ?assertEqual({[{m, 612}], 1, 311}, sluice_box:take(Q, 1000)),
                        ?assertMatch(#{posted := 612, delivered := 151, size := 0,
                                       dropped := #{overflow := 40, resize := 50,
                                                    filter := 10, expired := 361}},
                                     seen(Q)),
                        ?assertMatch(#{closed := true, posted := 5,
                                       dropped := #{closed := 5}}, seen(C)),
                        ok
                end,
                [reconciles(B) || B <- Boxes],
                ok
        end,
    swaps(Config, "90.1", Check),
    %% on the original library again, every box works
    ok = sluice_box:post(Q, after_all),
    ?assertEqual({[after_all], 1, 0}, sluice_box:take(Q, 10)),
    [ok = sluice_box:close(B) || B <- [Q, S, Z, E]],
    ok.

%% posted = delivered + dropped (every reason) + held, exactly.
reconciles(Box) ->
    #{posted := P, delivered := D, dropped := Dropped, size := N} = sluice_box:info(Box),
    ?assertEqual(P, D + lists:sum(maps:values(Dropped)) + N).

%% ---------------------------------------------------------------------
%% Buffers of buckets

buckets_carry_over(Config) ->
    Live = baseline(),
    in_process(fun() -> buckets_scenario(Config) end),
    ?assertEqual(Live, settle_boxes(Live)).

buckets_scenario(Config) ->
    %% four buckets of ten messages, the newest first, each newest first
    {ok, N} = sluice_buckets:new(#{max => 100, width => 10, max_age => 1000,
                                   clock => manual}),
    [begin
         ok = sluice_buckets:set_time(N, T),
         [ok = sluice_buckets:post(N, M) || M <- msgs(n, T + 1, T + 10)]
     end || T <- [0, 10, 20, 30]],
    ?assertEqual({lists:reverse(msgs(n, 36, 40)), 5, 0}, sluice_buckets:take(N, 5)),
    %% oldest first, each oldest first, dropping the new when full
    {ok, O} = sluice_buckets:new(#{max => 12, width => 5, clock => manual,
                                   order => oldest_first, within => fifo,
                                   when_full => drop_new}),
    [begin
         ok = sluice_buckets:set_time(O, T),
         [sluice_buckets:post(O, M) || M <- msgs(o, T + 1, T + 5)]
     end || T <- [0, 5, 10]],
    ?assertMatch(#{size := 12, dropped := #{overflow := 3}}, sluice_buckets:info(O)),
    ok = sluice_buckets:active(O),
    receive {mail, O, Mail, 12, 3} -> ?assertEqual(msgs(o, 1, 12), Mail)
    after 5000 -> ct:fail(no_mail)
    end,
    [ok = sluice_buckets:post(O, M) || M <- msgs(o, 16, 18)],
    Both = [N, O],
    Ids = [sluice_nif:box_id(B) || B <- Both],
    Before = [seen(B) || B <- Both],
    Check =
        fun(Step) ->
                ?assertEqual(Ids, [sluice_nif:box_id(B) || B <- Both]),
                ?assertEqual(buckets, maps:get(type, seen(N))),
                case Step of
                    1 ->
                        ?assertEqual(Before, [seen(B) || B <- Both]),
                        ?assertEqual({lists:reverse(msgs(n, 31, 35)), 5, 0},
                                     sluice_buckets:take(N, 5)),
                        ?assertEqual({msgs(o, 16, 18), 3, 0}, sluice_buckets:take(O, 10)),
                        %% armed on B, while empty
                        ok = sluice_buckets:notify(O),
                        ok;
                    2 ->
                        ok = sluice_buckets:post(O, {o, 19}),
                        receive {mail, O, new_data} -> ok
                        after 5000 -> ct:fail(no_new_data)
                        end;
                    3 ->
                        %% a new bucket on A, delivered first (newest)
                        ok = sluice_buckets:set_time(N, 40),
                        ok = sluice_buckets:post(N, {n, 41}),
                        Rest = [{n, 41} | lists:append([lists:reverse(msgs(n, T + 1, T + 10))
                                                        || T <- [20, 10, 0]])],
                        ?assertEqual({Rest, 31, 0}, sluice_buckets:take(N, 100)),
                        ok;
                    4 ->
                        ?assertEqual({[{o, 19}], 1, 0}, sluice_buckets:take(O, 10)),
                        %% buckets expire on the carried clock
                        [ok = sluice_buckets:post(N, M) || M <- msgs(n, 42, 44)],
                        ok = sluice_buckets:set_time(N, 2000),
                        ok = sluice_buckets:post(N, {n, 45}),
                        ?assertEqual({[{n, 45}], 1, 3}, sluice_buckets:take(N, 10)),
                        ?assertMatch(#{posted := 45, delivered := 42,
                                       dropped := #{expired := 3}, size := 0}, seen(N)),
                        ok
                end,
                [reconciles(B) || B <- Both],
                ok
        end,
    swaps(Config, "90.2", Check),
    [ok = sluice_box:close(B) || B <- Both],
    ok.

%% ---------------------------------------------------------------------
%% Under load

load_carries_over(Config) ->
    Live = baseline(),
    in_process(fun() -> load_scenario(Config) end),
    ?assertEqual(Live, settle_boxes(Live)).

-define(PRODUCERS, 8).

%% 8 producers post `{P, Seq}' to a box and a buffer of buckets (both
%% delivering in arrival order, dropping the oldest when full) while their
%% owner takes from both, through A -> B -> A with purges. Then: posted =
%% delivered + dropped + held for each, exactly; as many `full' answers as
%% overflow drops; as many drops reported with the takes; no message
%% delivered twice; each producer's messages delivered in the order posted;
%% no process killed.
load_scenario(Config) ->
    Self = self(),
    Owner = spawn_link(fun() -> owner_init(Self) end),
    {Box, Bk} = receive {made, Owner, Made} -> Made after 5000 -> ct:fail(no_boxes) end,
    Producers = [spawn_link(fun() -> producer(P, Box, Bk, 1, #{}) end)
                 || P <- lists:seq(1, ?PRODUCERS)],
    Watched = [{P, erlang:monitor(process, P)} || P <- [Owner | Producers]],
    Pause = fun() -> timer:sleep(300) end,
    Pause(),
    swaps(Config, "90.3", fun(_) -> Pause() end),
    Pause(),
    %% nothing was killed by the purges
    [receive {'DOWN', M, process, P, Why} -> ct:fail({killed, P, Why}) after 0 -> ok end
     || {P, M} <- Watched],
    ?assert(lists:all(fun erlang:is_process_alive/1, [Owner | Producers])),
    Counts = [begin P ! {stop, self()}, receive {counts, P, C} -> C end end
              || P <- Producers],
    Owner ! {drain, self()},
    {Got, Reported} = receive {drained, Owner, G, R} -> {G, R} end,
    [check_load(Target, Which, Counts, maps:get(Which, Got), maps:get(Which, Reported))
     || {Target, Which} <- [{Box, box}, {Bk, buckets}]],
    Owner ! stop,
    [erlang:demonitor(M, [flush]) || {_, M} <- Watched],
    ok.

owner_init(Parent) ->
    {ok, Box} = sluice_box:new(#{max => 400, type => queue}),
    {ok, Bk} = sluice_buckets:new(#{max => 400, width => 2, order => oldest_first,
                                    within => fifo}),
    Parent ! {made, self(), {Box, Bk}},
    owner(Box, Bk, #{box => [], buckets => []}, #{box => 0, buckets => 0}).

%% Takes from both until told to drain; `Got' holds the messages taken,
%% newest first.
owner(Box, Bk, Got, Reported) ->
    receive
        {drain, From} ->
            {Got2, Rep2} = drain(Box, Bk, Got, Reported),
            From ! {drained, self(), maps:map(fun(_, L) -> lists:reverse(L) end, Got2), Rep2},
            receive stop -> ok end
    after 0 ->
            {Got2, Rep2} = take_both(Box, Bk, Got, Reported, 50),
            timer:sleep(1),
            owner(Box, Bk, Got2, Rep2)
    end.

take_both(Box, Bk, Got, Reported, N) ->
    lists:foldl(
      fun({T, Which}, {G, R}) ->
              {Msgs, Count, Dropped} = sluice_box:take(T, N),
              ?assertEqual(Count, length(Msgs)),
              {G#{Which := lists:reverse(Msgs, maps:get(Which, G))},
               R#{Which := maps:get(Which, R) + Dropped}}
      end, {Got, Reported}, [{Box, box}, {Bk, buckets}]).

drain(Box, Bk, Got, Reported) ->
    case {sluice_box:usage(Box), sluice_box:usage(Bk)} of
        {{0, _}, {0, _}} -> {Got, Reported};
        _ -> {G, R} = take_both(Box, Bk, Got, Reported, 1000), drain(Box, Bk, G, R)
    end.

%% Posts `{P, Seq}' to both until told to stop; counts the answers.
producer(P, Box, Bk, Seq, Counts) ->
    receive
        {stop, From} -> From ! {counts, self(), Counts#{last => Seq - 1}}
    after 0 ->
            C1 = count({box, sluice_box:post(Box, {P, Seq})}, Counts),
            C2 = count({buckets, sluice_buckets:post(Bk, {P, Seq})}, C1),
            producer(P, Box, Bk, Seq + 1, C2)
    end.

count(Key, Counts) -> maps:update_with(Key, fun(N) -> N + 1 end, 1, Counts).

check_load(Target, Which, Counts, Got, Reported) ->
    Sum = fun(Answer) -> lists:sum([maps:get({Which, Answer}, C, 0) || C <- Counts]) end,
    Posted = lists:sum([maps:get(last, C) || C <- Counts]),
    ?assertEqual(Posted, Sum(ok) + Sum(full)),
    #{posted := P, delivered := D, size := 0,
      dropped := #{overflow := Over} = Dropped} = Info = sluice_box:info(Target),
    ct:pal("~p: ~p posted, ~p delivered, dropped ~p", [Which, P, D, Dropped]),
    ?assertEqual(Posted, P),
    ?assertEqual(length(Got), D),
    ?assertEqual(P, D + lists:sum(maps:values(Dropped))),
    ?assertEqual(Over, Sum(full)),
    ?assertEqual(lists:sum(maps:values(Dropped)), Reported),
    ?assertEqual(length(Got), length(lists:usort(Got)), {duplicates, Which}),
    %% each producer's messages in the order posted
    [begin
         Seqs = [S || {P1, S} <- Got, P1 =:= Prod],
         ?assertEqual(lists:usort(Seqs), Seqs, {order, Which, Prod})
     end || Prod <- lists:seq(1, ?PRODUCERS)],
    ?assert(D > 0, Info),
    ok.
