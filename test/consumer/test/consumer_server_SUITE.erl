%% Starts the consumer application (and sluice, as its dependency), pushes
%% events through consumer_server and checks that its counts, the sink's and
%% sluice_drop:info/1 agree.
%%
%% This suite belongs to the test/consumer project (run by
%% scripts/test-consumer.sh). The umbrella's own `rebar3 ct' also finds it,
%% since rebar3 searches test/ recursively; there the consumer application is
%% not built, so the suite skips itself.
-module(consumer_server_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([nif_comes_from_the_dependency/1, reckon_comes_from_the_dependency/1,
         counts_reconcile/1, rate_changes_are_seen/1]).

-define(EVENTS, 20000).

all() ->
    [nif_comes_from_the_dependency, reckon_comes_from_the_dependency, counts_reconcile,
     rate_changes_are_seen].

init_per_suite(Config) ->
    case application:load(consumer) of
        Loaded when Loaded =:= ok; Loaded =:= {error, {already_loaded, consumer}} ->
            {ok, Apps} = application:ensure_all_started(consumer),
            [{apps, Apps} | Config];
        {error, _} ->
            {skip, "not in the consumer project: run sh scripts/test-consumer.sh"}
    end.

end_per_suite(Config) ->
    [ok = application:stop(A) || A <- lists:reverse(?config(apps, Config))],
    ok.

%% sluice's priv/ holds the library its own compile hook built in the
%% dependency checkout, and it loads.
nif_comes_from_the_dependency(_Config) ->
    Nif = filename:join(code:priv_dir(sluice), "sluice_nif.so"),
    ?assert(filelib:is_regular(Nif)),
    ?assert(is_boolean(sluice_drop:random(0.5))).

%% reckon, the second dependency, built its own library in its own sparse
%% checkout, and answers a top-N in this node: a process holding a large
%% heap is first by memory.
reckon_comes_from_the_dependency(_Config) ->
    Nif = filename:join(code:priv_dir(reckon), "reckon_nif.so"),
    ?assert(filelib:is_regular(Nif)),
    Self = self(),
    Big = spawn(fun() ->
                        Heap = lists:seq(1, 500000),
                        Self ! {built, self()},
                        receive stop -> length(Heap) end
                end),
    receive {built, Big} -> ok end,
    [{First, Memory, _} | _] = Top = reckon:proc_count(memory, 3),
    ?assertEqual(3, length(Top)),
    ?assertEqual(Big, First),
    ?assert(Memory > 500000 * 16),
    Big ! stop,
    {ok, Box} = sluice_box:new(#{max => 10}),
    ok = sluice_box:post(Box, hello),
    ?assertEqual({[hello], 1, 0}, sluice_box:take(Box, 1)).

counts_reconcile(_Config) ->
    ok = consumer_server:set_sink(self()),
    Answers = [consumer_server:push(N) || N <- lists:seq(1, ?EVENTS)],
    Kept = length([ok || ok <- Answers]),
    Dropped = length([drop || drop <- Answers]),
    ?assertEqual(?EVENTS, Kept + Dropped),
    ?assertEqual(#{kept => Kept, dropped => Dropped}, consumer_server:stats()),
    ?assertEqual(Kept, length(receive_events())),
    Valve = consumer_server:valve(),
    #{asked := Asked, kept := VKept, dropped := VDropped} = sluice_drop:info(Valve),
    ?assertEqual({?EVENTS, Kept, Dropped}, {Asked, VKept, VDropped}),
    ?assertEqual(Dropped, sluice_drop:take_dropped(Valve)),
    ?assertEqual(0, sluice_drop:take_dropped(Valve)),
    %% Rate 0.5 over 20000 events: the kept share lies within 4 sigma of 0.5.
    ?assert(abs(Kept / ?EVENTS - 0.5) < 4 * math:sqrt(0.25 / ?EVENTS)).

rate_changes_are_seen(_Config) ->
    ok = consumer_server:set_sink(self()),
    Valve = consumer_server:valve(),
    ok = sluice_drop:set_rate(Valve, 0.0),
    ?assertEqual([drop, drop, drop], [consumer_server:push(x) || _ <- [1, 2, 3]]),
    ok = sluice_drop:set_rate(Valve, 1.0),
    ?assertEqual([ok, ok, ok], [consumer_server:push(x) || _ <- [1, 2, 3]]),
    ?assertEqual([x, x, x], receive_events()).

receive_events() ->
    receive {event, E} -> [E | receive_events()] after 0 -> [] end.
