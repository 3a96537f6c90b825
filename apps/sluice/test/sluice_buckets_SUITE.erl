%% Common Test suite of sluice_buckets: options, the shared delivery model,
%% expiry under a controlled burst, and storage.
-module(sluice_buckets_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([buckets_new_takes_one_options_map/1]).
-export([bad_options/1, burst_expires_whole_buckets/1, same_delivery_as_a_box/1,
         clock_is_per_buffer/1, expired_storage_goes_back/1, drop_notices/1]).

-spec all() -> [atom()].
all() ->
    [bad_options, burst_expires_whole_buckets, same_delivery_as_a_box, clock_is_per_buffer,
     expired_storage_goes_back, drop_notices,
     buckets_new_takes_one_options_map].

-spec init_per_suite(list()) -> list().
init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(sluice),
    Config.

-spec end_per_suite(list()) -> ok.
end_per_suite(_Config) ->
    ok.

-spec bad_options(list()) -> ok.
bad_options(_Config) ->
    ?assertEqual({error, {bad_option, max}}, sluice_buckets:new(#{width => 10})),
    ?assertEqual({error, {bad_option, width}}, sluice_buckets:new(#{max => 10})),
    [?assertEqual({error, {bad_option, K}}, sluice_buckets:new(maps:merge(#{max => 5, width => 10}, Opts)))
     || {K, Opts} <- [{width, #{width => 0}}, {max_age, #{max_age => 0}},
                      {order, #{order => newest}}, {within, #{within => stack}},
                      {when_full, #{when_full => drop}}, {clock, #{clock => fake}},
                      {colour, #{colour => red}}]],
    ok.

%% A burst over three slices of 10 ms; at 35 ms the first slice (newest
%% arrival at 9 ms) is older than max_age 25 ms and goes whole.
-spec burst_expires_whole_buckets(list()) -> ok.
burst_expires_whole_buckets(_Config) ->
    {ok, B} = sluice_buckets:new(#{max => 1000, width => 10, max_age => 25, clock => manual}),
    Burst = fun(T0) ->
                    [begin ok = sluice_buckets:set_time(B, T0 + I), ok = sluice_buckets:post(B, {T0, I}) end
                     || I <- lists:seq(0, 9)]
            end,
    _ = [Burst(T) || T <- [0, 10, 20]],
    ?assertEqual({30, 1000}, sluice_buckets:usage(B)),
    ok = sluice_buckets:set_time(B, 35),
    {Msgs, 5, 10} = sluice_buckets:take(B, 5),
    ?assertEqual([{20, I} || I <- [9, 8, 7, 6, 5]], Msgs),
    ?assertMatch(#{type := buckets, size := 15, dropped := #{expired := 10}},
                 sluice_buckets:info(B)),
    ok = sluice_buckets:close(B).

%% take, notify, active and active/3 behave as for a box, and the box
%% functions accept the handle.
-spec same_delivery_as_a_box(list()) -> ok.
same_delivery_as_a_box(_Config) ->
    {ok, B} = sluice_buckets:new(#{max => 10, width => 1000, order => oldest_first,
                                   within => fifo}),
    ok = sluice_buckets:notify(B),
    ok = sluice_box:post(B, a),
    receive {mail, B, new_data} -> ok after 1000 -> ct:fail(no_notice) end,
    ok = sluice_buckets:post(B, b),
    ok = sluice_buckets:active(B, fun(M, S) -> {{ok, {M, S}}, S + 1} end, 0),
    receive {mail, B, [{a, 0}, {b, 1}], 2, 0} -> ok after 1000 -> ct:fail(no_mail) end,
    Self = self(),
    %% The helper lives on until the end: its death would close the box.
    Helper = spawn(fun() ->
                           receive {sluice_transfer, B, Self, x, give_away} ->
                                   Self ! {got, sluice_box:take(B, 5)}
                           end,
                           receive stop -> ok end
                   end),
    ok = sluice_buckets:post(B, c),
    ok = sluice_buckets:give_away(B, Helper, x),
    receive {got, Got} -> ?assertEqual({[c], 1, 0}, Got) after 1000 -> ct:fail(no_take) end,
    ?assertEqual({error, not_owner}, sluice_buckets:take(B, 1)),
    Helper ! stop,
    ok.

-spec clock_is_per_buffer(list()) -> ok.
clock_is_per_buffer(_Config) ->
    {ok, Sys} = sluice_buckets:new(#{max => 10, width => 10, max_age => 1000}),
    ?assertError(badarg, sluice_buckets:set_time(Sys, -1)),
    %% a buffer on the system clock ignores set_time
    ok = sluice_buckets:post(Sys, x),
    ok = sluice_buckets:set_time(Sys, 1 bsl 30),
    ?assertEqual({[x], 1, 0}, sluice_buckets:take(Sys, 5)),
    {ok, A} = sluice_buckets:new(#{max => 10, width => 10, max_age => 5, clock => manual}),
    {ok, Bb} = sluice_buckets:new(#{max => 10, width => 10, max_age => 5, clock => manual}),
    ok = sluice_buckets:post(A, a),
    ok = sluice_buckets:post(Bb, b),
    ok = sluice_buckets:set_time(A, 100),
    ?assertEqual({[], 0, 1}, sluice_buckets:take(A, 5)),
    ?assertEqual({[b], 1, 0}, sluice_buckets:take(Bb, 5)),
    ok.

%% The storage of an expired bucket of 100 000 messages is freed over the
%% following calls, a few regions each.
-spec expired_storage_goes_back(list()) -> ok.
expired_storage_goes_back(_Config) ->
    {ok, B} = sluice_buckets:new(#{max => 200000, width => 10, max_age => 5, clock => manual}),
    [ok = sluice_buckets:post(B, {event, I, <<I:128>>}) || I <- lists:seq(1, 100000)],
    #{regions := Full} = regions(B),
    ?assert(Full > 700),
    ok = sluice_buckets:set_time(B, 100),
    ?assertEqual({[], 0, 100000}, sluice_buckets:take(B, 1)),
    [ok = sluice_buckets:post(B, I) || I <- lists:seq(1, 200)],
    #{regions := Left} = regions(B),
    ?assert(Left < 10, {Full, Left}),
    ok = sluice_buckets:close(B).

-spec regions(sluice_buckets:buckets()) -> #{regions := non_neg_integer()}.
regions(B) ->
    #{regions := Regions} = sluice_nif:box_info(B),
    #{regions => Regions}.

%% Summaries of drops, at most one per interval and reason, only when there
%% were drops, to the owner of the moment; none after `off'.
-spec drop_notices(list()) -> ok.
drop_notices(_Config) ->
    {ok, B} = sluice_buckets:new(#{max => 2, width => 10, max_age => 5, clock => manual}),
    Self = self(),
    _ = spawn(fun() -> Self ! {other, sluice_buckets:drop_notices(B, 10)} end),
    receive {other, Other} -> ?assertEqual({error, not_owner}, Other) end,
    ok = sluice_buckets:drop_notices(B, 20),
    [_ = sluice_buckets:post(B, I) || I <- lists:seq(1, 5)],
    ?assertEqual([{overflow, 3}], notices(B, 100)),
    %% nobody posts or takes: the notices' timer expires the old bucket
    ok = sluice_buckets:set_time(B, 50),
    ?assertEqual([{expired, 2}], notices(B, 100)),
    ?assertEqual({0, 2}, sluice_buckets:usage(B)),
    ?assertEqual([], notices(B, 100)),
    ok = sluice_buckets:drop_notices(B, off),
    [_ = sluice_buckets:post(B, I) || I <- lists:seq(1, 5)],
    ?assertEqual([], notices(B, 100)),
    ok = sluice_buckets:close(B).

%% The drops the notices received within `Ms' told of, per reason.
-spec notices(sluice_buckets:buckets(), non_neg_integer()) -> [{atom(), pos_integer()}].
notices(B, Ms) ->
    Deadline = erlang:monotonic_time(millisecond) + Ms,
    notices(B, Deadline, []).

notices(B, Deadline, Acc) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {sluice_dropped, B, Reason, Count} -> notices(B, Deadline, [{Reason, Count} | Acc])
    after Left ->
        Sums = lists:foldl(fun({R, C}, M) -> maps:update_with(R, fun(N) -> N + C end, C, M) end,
                           #{}, Acc),
        lists:sort(maps:to_list(Sums))
    end.

%% The NIF takes a buffer's options as one map; a bound of 0
%% (BufferError::ZeroMax) is the named reason `zero_max', reported by new/1
%% as the option `max'; a missing or mistyped key is `badarg'.
buckets_new_takes_one_options_map(_Config) ->
    {ok, Full} = sluice_box_opts:buckets(#{max => 3, width => 10}),
    Opts = sluice_box_opts:nif_buckets(Full),
    B = {sluice_box, sluice_nif:buckets_new(Opts), false},
    ?assertMatch(#{type := buckets, max := 3, size := 0}, sluice_nif:box_info(B)),
    ?assertEqual({error, zero_max}, sluice_nif:buckets_new(Opts#{max := 0})),
    _ = [?assertError(badarg, sluice_nif:buckets_new(maps:remove(K, Opts)))
         || K <- maps:keys(Opts)],
    ?assertError(badarg, sluice_nif:buckets_new(Opts#{order := sideways})),
    ?assertError(badarg, sluice_nif:buckets_new(Opts#{width := 0})).
