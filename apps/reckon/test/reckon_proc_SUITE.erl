%% Tests of reckon_proc: the categories and keys of info, values of known
%% processes (dictionary, queue length, links, monitors, trap_exit, memory,
%% reductions, initial call), caps, refused keys, get_state and every form
%% of pid term.
-module(reckon_proc_SUITE).
-behaviour(gen_server).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, groups/0, init_per_testcase/2, end_per_testcase/2]).
-export([info_categories/1, info_shapes/1, dictionary_entry/1,
         message_queue_len/1, messages_refused/1, links_monitors_trap_exit/1,
         memory_grows_with_heap/1, reductions_grow/1, initial_call/1,
         dead_is_undefined/1, facade_delegates/1,
         cap_links/1, cap_dictionary/1, cap_monitors/1, cap_big_value/1,
         get_state_gen_server/1, get_state_dead/1, get_state_timeout/1,
         get_state_bad_timeout/1,
         pid_forms/1, registered_forms/1, via_registry/1, malformed_terms/1,
         text_creates_no_atom/1]).
%% gen_server callbacks, for get_state_gen_server.
-export([init/1, handle_call/3, handle_cast/2]).
%% A tiny via registry, for via_registry.
-export([whereis_name/1]).

all() ->
    [{group, info}, {group, caps}, {group, state}, {group, names}].

groups() ->
    [{info, [], [info_categories, info_shapes, dictionary_entry, message_queue_len,
                 messages_refused, links_monitors_trap_exit, memory_grows_with_heap,
                 reductions_grow, initial_call, dead_is_undefined, facade_delegates]},
     {caps, [], [cap_links, cap_dictionary, cap_monitors, cap_big_value]},
     {state, [], [get_state_gen_server, get_state_dead, get_state_timeout,
                  get_state_bad_timeout]},
     {names, [], [pid_forms, registered_forms, via_registry, malformed_terms,
                  text_creates_no_atom]}].

init_per_testcase(_Case, Config) ->
    Config.

end_per_testcase(_Case, _Config) ->
    ok.

%%% Helpers

%% A process that waits for `stop' and never reads any other message.
idle() ->
    spawn(fun() -> receive stop -> ok end end).

%% A process that runs each fun it is sent and answers `{done, Ref}'.
worker() ->
    spawn(fun worker_loop/0).

worker_loop() ->
    receive
        {run, From, Ref, Fun} ->
            Fun(),
            From ! {done, Ref},
            worker_loop();
        stop ->
            ok
    end.

run_in(Pid, Fun) ->
    Ref = make_ref(),
    Pid ! {run, self(), Ref, Fun},
    receive {done, Ref} -> ok after 30000 -> error(worker_timeout) end.

stop(Pid) ->
    exit(Pid, kill),
    Ref = monitor(process, Pid),
    receive {'DOWN', Ref, process, Pid, _} -> ok end.

dead_pid() ->
    Pid = idle(),
    stop(Pid),
    Pid.

%%% Info

info_categories(_Config) ->
    Pid = idle(),
    Info = reckon_proc:info(Pid),
    ?assertEqual([meta, signals, location, memory_used, work], [C || {C, _} <- Info]),
    Keys = [{C, [K || {K, _} <- Props]} || {C, Props} <- Info],
    ?assertEqual([{meta, [registered_name, dictionary, group_leader, status]},
                  {signals, [links, monitors, monitored_by, trap_exit]},
                  {location, [initial_call, current_stacktrace]},
                  {memory_used, [memory, message_queue_len, heap_size, total_heap_size,
                                 garbage_collection]},
                  {work, [reductions]}], Keys),
    ?assertEqual(false, lists:keymember(messages, 1, lists:append([P || {_, P} <- Info]))),
    stop(Pid).

info_shapes(_Config) ->
    Pid = idle(),
    {memory, Memory} = reckon_proc:info(Pid, memory),
    ?assert(is_integer(Memory) andalso Memory > 0),
    ?assertMatch({work, [{reductions, R}]} when is_integer(R), reckon_proc:info(Pid, work)),
    ?assertMatch([{trap_exit, false}, {status, waiting}],
                 reckon_proc:info(Pid, [trap_exit, status])),
    ?assertEqual([], reckon_proc:info(Pid, [])),
    ?assertEqual({group_leader, group_leader()}, reckon_proc:info(Pid, group_leader)),
    ?assertEqual([], reckon_proc:info(Pid, registered_name)),
    ?assertEqual([{registered_name, []}], reckon_proc:info(Pid, [registered_name])),
    stop(Pid).

dictionary_entry(_Config) ->
    Pid = worker(),
    run_in(Pid, fun() -> put(colour, blue), put({shade, 2}, <<"navy">>) end),
    {dictionary, Dict} = reckon_proc:info(Pid, dictionary),
    ?assertEqual(blue, proplists:get_value(colour, Dict)),
    ?assertEqual(<<"navy">>, proplists:get_value({shade, 2}, Dict)),
    {meta, Meta} = reckon_proc:info(Pid, meta),
    ?assertEqual(lists:sort(Dict), lists:sort(proplists:get_value(dictionary, Meta))),
    stop(Pid).

message_queue_len(_Config) ->
    Pid = idle(),
    [Pid ! {hello, N} || N <- lists:seq(1, 7)],
    ?assertEqual({message_queue_len, 7}, reckon_proc:info(Pid, message_queue_len)),
    {memory_used, Used} = reckon_proc:info(Pid, memory_used),
    ?assertEqual(7, proplists:get_value(message_queue_len, Used)),
    %% Asking did not read the mailbox.
    ?assertEqual({message_queue_len, 7}, erlang:process_info(Pid, message_queue_len)),
    stop(Pid).

messages_refused(_Config) ->
    Pid = idle(),
    Pid ! secret,
    ?assertError(badarg, reckon_proc:info(Pid, messages)),
    ?assertError(badarg, reckon_proc:info(Pid, [memory, messages])),
    ?assertError(badarg, reckon_proc:info(Pid, [messages])),
    ?assertError(badarg, reckon_proc:info(Pid, backtrace)),
    ?assertError(badarg, reckon_proc:info(Pid, no_such_key)),
    ?assertError(badarg, reckon_proc:info(Pid, 42)),
    ?assertError(badarg, reckon_proc:info(Pid, [memory | reductions])),
    ?assertError(badarg, reckon:info(Pid, messages)),
    %% Refused even for a dead process: the key is checked first.
    ?assertError(badarg, reckon_proc:info(dead_pid(), messages)),
    ?assertEqual({message_queue_len, 1}, erlang:process_info(Pid, message_queue_len)),
    stop(Pid).

links_monitors_trap_exit(_Config) ->
    Watched = idle(),
    Pid = worker(),
    run_in(Pid, fun() ->
                        process_flag(trap_exit, true),
                        _ = monitor(process, Watched)
                end),
    true = link(Pid),
    Ref = monitor(process, Pid),
    {signals, Signals} = reckon_proc:info(Pid, signals),
    ?assertEqual([self()], proplists:get_value(links, Signals)),
    ?assertEqual([{process, Watched}], proplists:get_value(monitors, Signals)),
    ?assertEqual([self()], proplists:get_value(monitored_by, Signals)),
    ?assertEqual(true, proplists:get_value(trap_exit, Signals)),
    ?assertEqual({monitored_by, [Pid]}, reckon_proc:info(Watched, monitored_by)),
    demonitor(Ref, [flush]),
    true = unlink(Pid),
    stop(Pid),
    stop(Watched).

memory_grows_with_heap(_Config) ->
    Idle = worker(),
    Heavy = worker(),
    run_in(Heavy, fun() -> put(heap, lists:seq(1, 100000)) end),
    {memory, IdleMemory} = reckon_proc:info(Idle, memory),
    {memory, HeavyMemory} = reckon_proc:info(Heavy, memory),
    %% 100000 list cells are 200000 words.
    ?assert(HeavyMemory - IdleMemory >= 100000 * 2 * erlang:system_info(wordsize)),
    {total_heap_size, IdleHeap} = reckon_proc:info(Idle, total_heap_size),
    {total_heap_size, HeavyHeap} = reckon_proc:info(Heavy, total_heap_size),
    ?assert(HeavyHeap > IdleHeap),
    stop(Idle),
    stop(Heavy).

reductions_grow(_Config) ->
    Pid = worker(),
    {reductions, Before} = reckon_proc:info(Pid, reductions),
    run_in(Pid, fun() -> lists:foldl(fun(X, Acc) -> X + Acc end, 0, lists:seq(1, 50000)) end),
    {reductions, After} = reckon_proc:info(Pid, reductions),
    ?assert(After - Before >= 50000),
    stop(Pid).

initial_call(_Config) ->
    {ok, Server} = gen_server:start(?MODULE, some_state, []),
    %% proc_lib's initial call, not gen's or proc_lib's own.
    ?assertEqual({initial_call, {?MODULE, init, 1}}, reckon_proc:info(Server, initial_call)),
    {location, Location} = reckon_proc:info(Server, location),
    ?assertEqual({?MODULE, init, 1}, proplists:get_value(initial_call, Location)),
    ?assert(is_list(proplists:get_value(current_stacktrace, Location))),
    %% The dictionary was fetched to find it, but not returned.
    ?assertEqual([{initial_call, {?MODULE, init, 1}}],
                 reckon_proc:info(Server, [initial_call])),
    gen_server:stop(Server),
    Plain = spawn(timer, sleep, [infinity]),
    ?assertEqual({initial_call, {timer, sleep, 1}}, reckon_proc:info(Plain, initial_call)),
    stop(Plain).

dead_is_undefined(_Config) ->
    Dead = dead_pid(),
    ?assertEqual(undefined, reckon_proc:info(Dead)),
    ?assertEqual(undefined, reckon_proc:info(Dead, memory)),
    ?assertEqual(undefined, reckon_proc:info(Dead, [memory, links])),
    ?assertEqual(undefined, reckon_proc:info(Dead, signals)),
    ?assertEqual(undefined, reckon_proc:info(reckon_proc_SUITE_nobody, work)),
    ?assertEqual(undefined, reckon_proc:info({global, reckon_proc_SUITE_nobody})).

facade_delegates(_Config) ->
    Pid = idle(),
    [Pid ! x || _ <- lists:seq(1, 3)],
    ?assertEqual({message_queue_len, 3}, reckon:info(Pid, message_queue_len)),
    ?assertEqual(reckon_proc:info(Pid, [links, trap_exit]),
                 reckon:info(pid_to_list(Pid), [links, trap_exit])),
    ?assertMatch([{meta, _}, {signals, _}, {location, _}, {memory_used, _}, {work, _}],
                 reckon:info(Pid)),
    ?assertEqual(Pid, reckon:term_to_pid(list_to_binary(pid_to_list(Pid)))),
    stop(Pid).

%%% Caps

cap_links(_Config) ->
    Pid = worker(),
    run_in(Pid, fun() -> [spawn_link(fun() -> receive stop -> ok end end)
                          || _ <- lists:seq(1, 5000)] end),
    ?assertEqual({links, 5000}, count(erlang:process_info(Pid, links))),
    {links, Links} = reckon_proc:info(Pid, links),
    ?assertEqual(1000, length(Links)),
    ?assert(lists:all(fun erlang:is_pid/1, Links)),
    %% The linked processes die with it.
    stop(Pid).

cap_dictionary(_Config) ->
    Pid = worker(),
    run_in(Pid, fun() -> [put({key, N}, N) || N <- lists:seq(1, 5000)] end),
    {dictionary, Dict} = reckon_proc:info(Pid, dictionary),
    ?assertEqual(1000, length(Dict)),
    ?assert(lists:all(fun({{key, N}, N}) -> true; (_) -> false end, Dict)),
    stop(Pid).

cap_monitors(_Config) ->
    Target = idle(),
    Pid = worker(),
    run_in(Pid, fun() -> [monitor(process, Target) || _ <- lists:seq(1, 5000)] end),
    {monitors, Monitors} = reckon_proc:info(Pid, monitors),
    ?assertEqual(1000, length(Monitors)),
    {monitored_by, By} = reckon_proc:info(Target, monitored_by),
    ?assertEqual(1000, length(By)),
    stop(Pid),
    stop(Target).

cap_big_value(_Config) ->
    Pid = worker(),
    Big = lists:seq(1, 20000),
    Small = lists:seq(1, 100),
    run_in(Pid, fun() -> put(big, Big), put(small, Small) end),
    {dictionary, Dict} = reckon_proc:info(Pid, dictionary),
    Words = erts_debug:flat_size(Big),
    ?assertEqual(40000, Words),
    ?assertEqual({reckon_truncated, Words}, proplists:get_value(big, Dict)),
    ?assertEqual(Small, proplists:get_value(small, Dict)),
    stop(Pid).

count({Key, List}) -> {Key, length(List)}.

%%% State

init(State) -> {ok, State}.
handle_call(get, _From, State) -> {reply, State, State}.
handle_cast({set, State}, _OldState) -> {noreply, State}.

get_state_gen_server(_Config) ->
    State = #{name => "counter", count => 3, items => [a, b]},
    {ok, Pid} = gen_server:start(?MODULE, State, []),
    ?assertEqual(State, reckon_proc:get_state(Pid)),
    ok = gen_server:cast(Pid, {set, changed}),
    ?assertEqual(changed, reckon_proc:get_state(Pid, 5000)),
    ?assertEqual(changed, reckon:get_state(pid_to_list(Pid))),
    true = register(reckon_proc_SUITE_server, Pid),
    ?assertEqual(changed, reckon_proc:get_state(reckon_proc_SUITE_server, infinity)),
    gen_server:stop(Pid).

get_state_dead(_Config) ->
    Dead = dead_pid(),
    ?assertError({noproc, Dead}, reckon_proc:get_state(Dead)),
    ?assertError({noproc, reckon_proc_SUITE_nobody},
                 reckon_proc:get_state(reckon_proc_SUITE_nobody)),
    ?assertError({noproc, {global, reckon_proc_SUITE_nobody}},
                 reckon:get_state({global, reckon_proc_SUITE_nobody}, 100)).

get_state_timeout(_Config) ->
    %% A process that never handles system messages never answers.
    Pid = idle(),
    ?assertError({timeout, Pid}, reckon_proc:get_state(Pid, 50)),
    ?assertError({timeout, Pid}, reckon_proc:get_state(Pid, 0)),
    stop(Pid).

get_state_bad_timeout(_Config) ->
    Pid = idle(),
    ?assertError(badarg, reckon_proc:get_state(Pid, -1)),
    ?assertError(badarg, reckon_proc:get_state(Pid, 1.5)),
    ?assertError(badarg, reckon_proc:get_state(Pid, forever)),
    stop(Pid).

%%% Names

pid_forms(_Config) ->
    Pid = idle(),
    Text = pid_to_list(Pid),
    [A, B, C] = string:lexemes(Text, "<.>"),
    Triple = {list_to_integer(A), list_to_integer(B), list_to_integer(C)},
    ?assertEqual(Pid, reckon_proc:term_to_pid(Pid)),
    ?assertEqual(Pid, reckon_proc:term_to_pid(Text)),
    ?assertEqual(Pid, reckon_proc:term_to_pid(list_to_binary(Text))),
    ?assertEqual(Pid, reckon_proc:term_to_pid(Triple)),
    ?assertEqual(reckon_proc:info(Pid, memory), reckon_proc:info(Triple, memory)),
    ?assertEqual(reckon_proc:info(Pid, links), reckon_proc:info(list_to_binary(Text), links)),
    ?assertEqual(whereis(init), reckon_proc:term_to_pid({0, 0, 0})),
    stop(Pid).

registered_forms(_Config) ->
    Pid = idle(),
    true = register(reckon_proc_SUITE_local, Pid),
    yes = global:register_name(reckon_proc_SUITE_global, Pid),
    ?assertEqual(Pid, reckon_proc:term_to_pid(reckon_proc_SUITE_local)),
    ?assertEqual(Pid, reckon_proc:term_to_pid({global, reckon_proc_SUITE_global})),
    ?assertEqual(Pid, reckon_proc:term_to_pid({via, global, reckon_proc_SUITE_global})),
    ?assertEqual({registered_name, reckon_proc_SUITE_local},
                 reckon_proc:info(reckon_proc_SUITE_local, registered_name)),
    ?assertEqual(undefined, reckon_proc:term_to_pid(reckon_proc_SUITE_nobody)),
    ?assertEqual(undefined, reckon_proc:term_to_pid({global, reckon_proc_SUITE_nobody})),
    ?assertEqual(undefined, reckon_proc:term_to_pid({via, global, reckon_proc_SUITE_nobody})),
    global:unregister_name(reckon_proc_SUITE_global),
    stop(Pid).

%% Names held in persistent_term, under {reckon_proc_SUITE, Name}.
whereis_name(Name) ->
    persistent_term:get({?MODULE, Name}, undefined).

via_registry(_Config) ->
    Pid = idle(),
    persistent_term:put({?MODULE, {worker, 7}}, Pid),
    ?assertEqual(Pid, reckon_proc:term_to_pid({via, ?MODULE, {worker, 7}})),
    ?assertEqual({trap_exit, false}, reckon_proc:info({via, ?MODULE, {worker, 7}}, trap_exit)),
    ?assertEqual(undefined, reckon_proc:term_to_pid({via, ?MODULE, {worker, 8}})),
    ?assertEqual(undefined, reckon_proc:info({via, ?MODULE, {worker, 8}})),
    %% A module without whereis_name/1 is no registry.
    ?assertError(badarg, reckon_proc:term_to_pid({via, lists, x})),
    _ = persistent_term:erase({?MODULE, {worker, 7}}),
    stop(Pid).

malformed_terms(_Config) ->
    Bad = ["not a pid", "<0.x.0>", <<"<0.1>">>, <<"reckon">>, [1, 2, foo], [a],
           {-1, 0, 0}, {a, b, c}, {1, 2}, 3.14, 42, make_ref(), {global},
           {via, "mod", x}, {via, 3, x}, {local, x},
           binary:copy(<<"<">>, 1000)],
    [?assertError(badarg, reckon_proc:term_to_pid(Term)) || Term <- Bad],
    [?assertError(badarg, reckon_proc:info(Term)) || Term <- Bad],
    [?assertError(badarg, reckon_proc:get_state(Term)) || Term <- Bad],
    ok.

text_creates_no_atom(_Config) ->
    Name = <<"reckon_proc_SUITE_never_an_atom_5f1c">>,
    ?assertError(badarg, reckon_proc:term_to_pid(Name)),
    ?assertError(badarg, reckon_proc:term_to_pid(binary_to_list(Name))),
    ?assertError(badarg, binary_to_existing_atom(Name, utf8)).
