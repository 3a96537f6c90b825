-module(sluice_box_SUITE).
-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, init/1]).
-export([box_new_takes_one_options_map/1, box_info_is_a_map/1, resize_to_zero_is_named/1, filtered_beyond_delivered_is_named/1, restore_sizes_mismatch_is_named/1]).
-export([queue_drops_oldest/1, stack_serves_newest_drops_bottom/1, keep_old_drops_new/1,
         closed_box_refuses/1, bad_options/1, bad_arguments/1, non_owner/1,
         notify_now_and_later/1, active_now_and_later/1, active_filter/1,
         resize_counts_drops/1, byte_budget/1, give_away/1, owner_death_heir/1,
         owner_death_closes/1, keeper_claim_and_return/1, refc_binaries_shared/1,
         memory_goes_back/1, concurrent_producers_reconcile/1,
         no_long_schedule/1, initial_state_notify/1, filter_drops_in_mail_count/1,
         heir_by_name/1, heir_name_unresolved_closes/1]).

all() ->
    [queue_drops_oldest, stack_serves_newest_drops_bottom, keep_old_drops_new,
     closed_box_refuses, bad_options, bad_arguments, non_owner, notify_now_and_later,
     active_now_and_later, active_filter, resize_counts_drops, byte_budget, give_away,
     owner_death_heir, owner_death_closes, keeper_claim_and_return, refc_binaries_shared,
     memory_goes_back, concurrent_producers_reconcile, no_long_schedule,
     initial_state_notify, filter_drops_in_mail_count, heir_by_name,
     heir_name_unresolved_closes,
     box_new_takes_one_options_map, box_info_is_a_map, resize_to_zero_is_named, filtered_beyond_delivered_is_named, restore_sizes_mismatch_is_named].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(sluice),
    Config.

end_per_suite(_Config) ->
    ok.

%% The supervisor of keeper_claim_and_return.
init(sup) ->
    {ok, {#{strategy => one_for_one}, []}}.

%%% Helpers

%% Posts Make(I) for I in From..To, without building a list.
fill(_Box, I, To, _Make) when I > To -> ok;
fill(Box, I, To, Make) ->
    _ = sluice_box:post(Box, Make(I)),
    fill(Box, I + 1, To, Make).

event(I) -> {event, I, <<I:128>>}.

new(Opts) ->
    {ok, Box} = sluice_box:new(Opts),
    Box.

post_all(Box, Msgs) -> [sluice_box:post(Box, M) || M <- Msgs].

mail(Box) ->
    receive {mail, Box, _} = M -> M; {mail, Box, _, _, _} = M -> M
    after 1000 -> ct:fail(no_mail)
    end.

no_mail(Box) ->
    receive {mail, Box, _} = M -> ct:fail({unexpected, M}); {mail, Box, _, _, _} = M -> ct:fail({unexpected, M})
    after 50 -> ok
    end.

reconciles(Box) ->
    #{posted := P, delivered := D, size := S, dropped := Dropped} = sluice_box:info(Box),
    ?assertEqual(P, D + S + lists:sum(maps:values(Dropped))).

%% Runs Fun in a new process and returns its result.
in_process(Fun) ->
    {Pid, Ref} = spawn_monitor(fun() -> exit({done, Fun()}) end),
    receive
        {'DOWN', Ref, process, Pid, {done, Result}} -> Result;
        {'DOWN', Ref, process, Pid, Reason} -> ct:fail(Reason)
    end.

%%% Policies

queue_drops_oldest(_Config) ->
    Box = new(#{max => 3, type => queue}),
    ?assertEqual([ok, ok, ok, full, full], post_all(Box, [1, 2, 3, 4, 5])),
    ?assertEqual({[3, 4], 2, 2}, sluice_box:take(Box, 2)),
    ?assertEqual({[5], 1, 0}, sluice_box:take(Box, 10)),
    ?assertEqual({[], 0, 0}, sluice_box:take(Box, 10)),
    ?assertMatch(#{type := queue, posted := 5, delivered := 3, peak := 3,
                   dropped := #{overflow := 2}}, sluice_box:info(Box)),
    reconciles(Box).

stack_serves_newest_drops_bottom(_Config) ->
    Box = new(#{max => 3, type => stack}),
    ?assertEqual([ok, ok, ok, full], post_all(Box, [1, 2, 3, 4])),
    %% the bottom (1) went; the newest is served first
    ?assertEqual({[4, 3], 2, 1}, sluice_box:take(Box, 2)),
    post_all(Box, [5, 6]),
    ?assertEqual({[6, 5, 2], 3, 0}, sluice_box:take(Box, 5)),
    reconciles(Box).

keep_old_drops_new(_Config) ->
    Box = new(#{max => 2, type => keep_old}),
    ?assertEqual([ok, ok, full, full], post_all(Box, [1, 2, 3, 4])),
    ?assertEqual({[1, 2], 2, 2}, sluice_box:take(Box, 5)),
    reconciles(Box).

closed_box_refuses(_Config) ->
    Box = new(#{max => 5}),
    post_all(Box, [a, b]),
    ok = sluice_box:close(Box),
    ?assertEqual({error, closed}, sluice_box:post(Box, c)),
    ?assertEqual({error, closed}, sluice_box:take(Box, 1)),
    ?assertEqual({error, closed}, sluice_box:notify(Box)),
    ?assertEqual({error, closed}, sluice_box:resize(Box, 10)),
    ?assertMatch(#{closed := true, size := 0, dropped := #{closed := 2}}, sluice_box:info(Box)),
    ok = sluice_box:close(Box),
    reconciles(Box).

%%% Bad input

bad_options(_Config) ->
    [?assertEqual({error, {bad_option, max}}, sluice_box:new(#{max => M}))
     || M <- [0, -1, 1.5, ten, infinity]],
    ?assertEqual({error, {bad_option, max}}, sluice_box:new(#{type => queue})),
    ?assertEqual({error, {bad_option, options}}, sluice_box:new(not_a_map)),
    ?assertEqual({error, {bad_option, max}}, sluice_box:new(#{})),
    ?assertEqual({error, {bad_option, type}}, sluice_box:new(#{max => 1, type => lifo})),
    ?assertEqual({error, {bad_option, colour}}, sluice_box:new(#{max => 1, colour => red})),
    ?assertEqual({error, {bad_option, owner}}, sluice_box:new(#{max => 1, owner => me})),
    ?assertEqual({error, {bad_option, heir}}, sluice_box:new(#{max => 1, heir => {local, self}})),
    ?assertEqual({error, {bad_option, heir}}, sluice_box:new(#{max => 1, heir => {via, "m", n}})),
    ?assertEqual({error, {bad_option, initial_state}},
                 sluice_box:new(#{max => 1, initial_state => active})),
    ?assertEqual({error, {bad_option, max_bytes}}, sluice_box:new(#{max => 1, max_bytes => 0})).

bad_arguments(_Config) ->
    Box = new(#{max => 2}),
    ?assertError(badarg, sluice_box:take(Box, 0)),
    ?assertError(badarg, sluice_box:take(Box, -3)),
    ?assertError(badarg, sluice_box:take(Box, all)),
    ?assertError(badarg, sluice_box:resize(Box, 0)),
    ?assertError(badarg, sluice_box:active(Box, fun(X) -> X end, [])),
    ?assertError(badarg, sluice_box:give_away(Box, not_a_pid, x)),
    ?assertError(badarg, sluice_box:post({not_a_box}, x)),
    ?assertError(badarg, sluice_nif:box_post({sluice_box, make_ref(), false}, x)),
    %% the shell explains which argument is wrong
    try sluice_box:take(Box, 0)
    catch error:badarg:Stack ->
            ?assertMatch(#{2 := "must be a positive integer"},
                         sluice_util:format_error(badarg, Stack))
    end.

%% Only the owner takes, arms, hands over and closes; anybody posts, resizes
%% and reads.
non_owner(_Config) ->
    Box = new(#{max => 5}),
    ok = sluice_box:post(Box, mine),
    Other = in_process(fun() ->
                               {sluice_box:take(Box, 1), sluice_box:notify(Box),
                                sluice_box:active(Box), sluice_box:active(Box, fun(M, S) -> {{ok, M}, S} end, x),
                                sluice_box:give_away(Box, self(), x), sluice_box:close(Box),
                                sluice_box:post(Box, theirs), sluice_box:resize(Box, 4),
                                sluice_box:usage(Box)}
                       end),
    NotOwner = {error, not_owner},
    ?assertEqual({NotOwner, NotOwner, NotOwner, NotOwner, NotOwner, NotOwner, ok, ok, {2, 4}},
                 Other),
    ?assertEqual({[mine, theirs], 2, 0}, sluice_box:take(Box, 5)).

%%% Delivery modes

notify_now_and_later(_Config) ->
    Box = new(#{max => 5}),
    ok = sluice_box:notify(Box),
    no_mail(Box),
    ok = sluice_box:post(Box, a),
    ?assertEqual({mail, Box, new_data}, mail(Box)),
    ok = sluice_box:post(Box, b),
    no_mail(Box),
    %% data already there: at once
    ok = sluice_box:notify(Box),
    ?assertEqual({mail, Box, new_data}, mail(Box)),
    ?assertEqual({[a, b], 2, 0}, sluice_box:take(Box, 5)).

active_now_and_later(_Config) ->
    Box = new(#{max => 3, type => stack}),
    post_all(Box, [1, 2, 3, 4]),
    ok = sluice_box:active(Box),
    ?assertEqual({mail, Box, [4, 3, 2], 3, 1}, mail(Box)),
    ok = sluice_box:active(Box),
    no_mail(Box),
    %% armed on an empty box: the post delivers itself, once
    ok = sluice_box:post(Box, 5),
    ?assertEqual({mail, Box, [5], 1, 0}, mail(Box)),
    ok = sluice_box:post(Box, 6),
    no_mail(Box),
    ?assertMatch(#{size := 1, delivered := 4}, sluice_box:info(Box)),
    %% more than one NIF call's worth
    Big = new(#{max => 5000}),
    post_all(Big, lists:seq(1, 2500)),
    ok = sluice_box:active(Big),
    ?assertEqual({mail, Big, lists:seq(1, 2500), 2500, 0}, mail(Big)),
    reconciles(Box).

active_filter(_Config) ->
    Box = new(#{max => 10}),
    post_all(Box, lists:seq(1, 8)),
    %% odd ones dropped, evens doubled, stop after three delivered
    Filter = fun(_, 0) -> skip;
                (M, N) when M rem 2 =:= 1 -> {{drop, M}, N};
                (M, N) -> {{ok, 2 * M}, N - 1}
             end,
    ok = sluice_box:active(Box, Filter, 3),
    ?assertEqual({mail, Box, [4, 8, 12], 3, 3}, mail(Box)),
    %% 7 was skipped: it and 8 stay, in place
    ?assertMatch(#{size := 2, dropped := #{filter := 3}}, sluice_box:info(Box)),
    ?assertEqual({[7, 8], 2, 0}, sluice_box:take(Box, 5)),
    %% the other drop shape
    post_all(Box, [1, 2]),
    ok = sluice_box:active(Box, fun(M, S) -> {drop, [M | S]} end, []),
    ?assertEqual({mail, Box, [], 0, 2}, mail(Box)),
    %% empty box: a notice first, then the filter runs on the next call
    ok = sluice_box:active(Box, Filter, 1),
    ok = sluice_box:post(Box, 10),
    ?assertEqual({mail, Box, new_data}, mail(Box)),
    ok = sluice_box:active(Box, Filter, 1),
    ?assertEqual({mail, Box, [20], 1, 0}, mail(Box)),
    ?assertMatch(#{dropped := #{filter := 5}}, sluice_box:info(Box)),
    reconciles(Box).

resize_counts_drops(_Config) ->
    Q = new(#{max => 5, type => queue}),
    post_all(Q, [1, 2, 3, 4, 5]),
    ok = sluice_box:resize(Q, 2),
    ?assertEqual({2, 2}, sluice_box:usage(Q)),
    ?assertEqual({[4, 5], 2, 3}, sluice_box:take(Q, 5)),
    K = new(#{max => 5, type => keep_old}),
    post_all(K, [1, 2, 3, 4, 5]),
    ok = sluice_box:resize(K, 2),
    ?assertEqual({[1, 2], 2, 3}, sluice_box:take(K, 5)),
    ok = sluice_box:resize(K, 10),
    ?assertEqual({0, 10}, sluice_box:usage(K)),
    ?assertMatch(#{dropped := #{resize := 3}}, sluice_box:info(K)).

byte_budget(_Config) ->
    Msg = <<0:800>>,
    Size = erlang:external_size(Msg),
    Box = new(#{max => 100, max_bytes => 3 * Size}),
    ?assertEqual([ok, ok, ok, full], post_all(Box, [Msg, Msg, Msg, Msg])),
    ?assertMatch(#{size := 3, bytes := B, max_bytes := MB} when B =:= 3 * Size andalso MB =:= B,
                 sluice_box:info(Box)),
    %% a message larger than the whole budget is dropped on arrival
    ?assertEqual(full, sluice_box:post(Box, <<0:8000>>)),
    ?assertEqual({3, 100}, sluice_box:usage(Box)),
    %% skipped messages put back are measured again
    ok = sluice_box:active(Box, fun(_, _) -> skip end, x),
    ?assertMatch({mail, Box, [], 0, 2}, mail(Box)),
    ?assertMatch(#{size := 3, bytes := B} when B =:= 3 * Size, sluice_box:info(Box)),
    reconciles(Box).

%%% Ownership

give_away(_Config) ->
    Box = new(#{max => 5}),
    Self = self(),
    Pid = spawn_link(fun() ->
                             receive {sluice_transfer, B, From, Data, give_away} ->
                                     Self ! {got, From, Data, sluice_box:take(B, 5)},
                                     ok = sluice_box:give_away(B, Self, back)
                             end
                     end),
    ok = sluice_box:post(Box, x),
    ok = sluice_box:give_away(Box, Pid, hello),
    ?assertEqual({error, not_owner}, sluice_box:take(Box, 1)),
    receive {got, Self, hello, Taken} -> ?assertEqual({[x], 1, 0}, Taken) end,
    receive {sluice_transfer, Box, Pid, back, give_away} -> ok after 1000 -> ct:fail(no_transfer) end,
    ?assertMatch(#{owner := Self}, sluice_box:info(Box)),
    ?assertEqual({[], 0, 0}, sluice_box:take(Box, 1)).

owner_death_heir(_Config) ->
    Self = self(),
    Owner = spawn(fun() -> receive {sluice_transfer, _, _, _, _} -> exit(crashed) end end),
    Box = new(#{max => 5, owner => Owner, heir => Self, heir_data => {some, data}}),
    post_all(Box, [1, 2]),
    exit(Owner, crashed),
    receive
        {sluice_transfer, Box, Owner, {some, data}, crashed} -> ok
    after 1000 -> ct:fail(no_transfer)
    end,
    ?assertEqual({[1, 2], 2, 0}, sluice_box:take(Box, 5)).

owner_death_closes(_Config) ->
    Owner = spawn(fun() -> receive stop -> ok end end),
    Box = new(#{max => 5, owner => Owner}),
    post_all(Box, [1, 2, 3]),
    Ref = monitor(process, Owner),
    Owner ! stop,
    receive {'DOWN', Ref, process, Owner, _} -> ok end,
    wait_closed(Box, 100),
    ?assertEqual({error, closed}, sluice_box:post(Box, 4)),
    ?assertMatch(#{size := 0, dropped := #{closed := 3}}, sluice_box:info(Box)),
    reconciles(Box).

wait_closed(Box, Tries) ->
    case sluice_box:info(Box) of
        #{closed := true} -> ok;
        _ when Tries > 0 -> timer:sleep(10), wait_closed(Box, Tries - 1);
        Info -> ct:fail({not_closed, Info})
    end.

keeper_claim_and_return(_Config) ->
    process_flag(trap_exit, true),
    {ok, Sup} = supervisor:start_link(?MODULE, sup),
    {ok, _} = supervisor:start_child(Sup, sluice_box:child_spec(#{name => kept, max => 10})),
    {ok, Box} = sluice_box:lookup(kept),
    ?assertEqual({error, not_found}, sluice_box:lookup(not_kept)),
    ok = sluice_box:post(Box, one),
    Self = self(),
    Consumer = spawn(fun() ->
                             {ok, B} = sluice_box:claim(kept),
                             Self ! {claimed, sluice_box:take(B, 1)},
                             receive stop -> exit(stopped) end
                     end),
    receive {claimed, Taken} -> ?assertEqual({[one], 1, 0}, Taken) end,
    ?assertEqual({error, {owned_by, Consumer}}, sluice_box:claim(kept)),
    ok = sluice_box:post(Box, two),
    Consumer ! stop,
    %% back with the keeper, message and all
    {ok, Box} = claim_when_back(kept, 100),
    ?assertEqual({[two], 1, 0}, sluice_box:take(Box, 5)),
    %% the keeper stopping closes the box
    ok = supervisor:terminate_child(Sup, {sluice_box, kept}),
    ?assertEqual({error, closed}, sluice_box:post(Box, three)),
    ?assertEqual({error, not_found}, sluice_box:lookup(kept)),
    unlink(Sup),
    exit(Sup, shutdown).

claim_when_back(Name, Tries) ->
    case sluice_box:claim(Name) of
        {ok, _} = Ok -> Ok;
        {error, {owned_by, _}} when Tries > 0 -> timer:sleep(10), claim_when_back(Name, Tries - 1);
        Other -> ct:fail({claim, Other})
    end.

%%% Memory

%% Large binaries are referenced, not copied.
refc_binaries_shared(_Config) ->
    Bin = binary:copy(<<7>>, 1 bsl 20),
    Box = new(#{max => 200}),
    Before = erlang:memory(binary),
    [ok = sluice_box:post(Box, {big, Bin}) || _ <- lists:seq(1, 100)],
    Growth = erlang:memory(binary) - Before,
    ?assert(Growth < 10 bsl 20, {binary_growth, Growth}),
    {Msgs, 100, 0} = sluice_box:take(Box, 200),
    ?assert(lists:all(fun({big, B}) -> B =:= Bin end, Msgs)).

%% Storage goes back as messages are taken or dropped.
memory_goes_back(_Config) ->
    in_process(fun() ->
                       Box = new(#{max => 200000}),
                       Used = fun settled_memory/0,
                       Base = Used(),
                       fill(Box, 1, 100000, fun event/1),
                       Full = Used() - Base,
                       drain(Box),
                       Drained = Used() - Base,
                       ct:pal("100 000 messages: ~p bytes held, ~p after taking them", [Full, Drained]),
                       ?assert(Full > 3000000),
                       ?assert(Drained < Full div 4, {Full, Drained}),
                       fill(Box, 1, 100000, fun event/1),
                       ok = sluice_box:resize(Box, 10),
                       Resized = Used() - Base,
                       ?assert(Resized < Full div 4, {Full, Resized})
               end).

%% Node memory once it stops moving: memory freed on a dirty scheduler
%% goes back to the allocator of the scheduler that allocated it a little
%% later.
settled_memory() ->
    erlang:garbage_collect(),
    settled_memory(erlang:memory(total), 0, 100).

settled_memory(Mem, 2, _) ->
    Mem;
settled_memory(Mem, _, 0) ->
    Mem;
settled_memory(Prev, Still, Tries) ->
    timer:sleep(20),
    case erlang:memory(total) of
        Mem when abs(Mem - Prev) < 65536 -> settled_memory(Mem, Still + 1, Tries - 1);
        Mem -> settled_memory(Mem, 0, Tries - 1)
    end.

drain(Box) ->
    case sluice_box:take(Box, 5000) of
        {[], 0, _} -> ok;
        {_, _, _} -> drain(Box)
    end.

%%% Concurrency and scheduling

%% 8 producers x 250 000 posts while the owner takes: every message is
%% delivered at most once, in each producer's order, and the counters
%% reconcile exactly.
concurrent_producers_reconcile(_Config) ->
    Producers = 8,
    PerProducer = 250000,
    Box = new(#{max => 1000, type => queue}),
    Self = self(),
    Pids = [spawn_link(fun() -> produce(Box, P, PerProducer, 0, 0), Self ! {produced, self()} end)
            || P <- lists:seq(1, Producers)],
    {Last, Reported} = consume(Box, Pids, #{}, 0),
    {Rest, RestCount, RestDropped} = sluice_box:take(Box, 2000),
    Seen = check_order(Rest, Last),
    Delivered = maps:fold(fun(_, {N, _}, Acc) -> Acc + N end, 0, Seen),
    #{posted := Posted, delivered := D, size := 0,
      dropped := #{overflow := Overflow} = Dropped} = sluice_box:info(Box),
    ct:pal("posted ~p delivered ~p overflow ~p", [Posted, D, Overflow]),
    ?assertEqual(Producers * PerProducer, Posted),
    ?assertEqual(D, Delivered),
    ?assertEqual(Posted, D + Overflow),
    %% every drop was reported once, to a take
    ?assertEqual(Overflow, Reported + RestDropped),
    ?assertEqual(#{overflow => Overflow, resize => 0, filter => 0, closed => 0, expired => 0,
                   early => 0}, Dropped),
    ?assert(RestCount =< 1000).

produce(_Box, _P, N, N, Full) -> Full;
produce(Box, P, N, I, Full) ->
    case sluice_box:post(Box, {P, I}) of
        ok -> produce(Box, P, N, I + 1, Full);
        full -> produce(Box, P, N, I + 1, Full + 1)
    end.

consume(_Box, [], Seen, Dropped) ->
    {Seen, Dropped};
consume(Box, Pids, Seen, Dropped) ->
    {Msgs, _, D} = sluice_box:take(Box, 100),
    Seen2 = check_order(Msgs, Seen),
    Pids2 = receive {produced, Pid} -> lists:delete(Pid, Pids) after 0 -> Pids end,
    consume(Box, Pids2, Seen2, Dropped + D).

%% Per producer: how many seen, and the last sequence number, which must grow.
check_order([], Seen) -> Seen;
check_order([{P, I} | Rest], Seen) ->
    case Seen of
        #{P := {_, Last}} when I =< Last -> ct:fail({out_of_order_or_duplicate, P, I, Last});
        #{P := {N, _}} -> check_order(Rest, Seen#{P => {N + 1, I}});
        #{} -> check_order(Rest, Seen#{P => {1, I}})
    end.

%% A delivery of 100 000 messages is cut into NIF calls of at most 1000
%% messages each (the time of the longest call is a benchmark figure,
%% `box/take_call_ms'); freeing a whole box (resize, close) runs on a dirty
%% scheduler, so no process is seen holding a normal one for 50 ms.
no_long_schedule(_Config) ->
    Box = new(#{max => 100000}),
    fill(Box, 1, 100000, fun event/1),
    Counts = batch_sizes(fun() ->
                                 {_, 100000, 0} = sluice_box:take(Box, 100000),
                                 fill(Box, 1, 100000, fun event/1),
                                 ok = sluice_box:active(Box),
                                 {mail, Box, _, 100000, 0} = mail(Box)
                         end),
    ct:log("messages per NIF call: ~w", [Counts]),
    ?assertEqual(200000, lists:sum(Counts)),
    ?assertEqual([], [C || C <- Counts, C > 1000]),
    ok = sluice_box:close(Box),
    Self = self(),
    ?assertEqual([], sluice_long_schedule:quiet(5, fun(_) ->
        B = new(#{max => 100000}),
        Events = sluice_long_schedule:during(50, fun() ->
                                                         fill(B, 1, 100000, fun event/1),
                                                         ok = sluice_box:resize(B, 1),
                                                         fill(B, 1, 100000, fun event/1),
                                                         ok = sluice_box:resize(B, 100000),
                                                         fill(B, 1, 100000, fun event/1),
                                                         ok = sluice_box:close(B)
                                                 end),
        [E || {Who, _} = E <- Events, Who =:= Self]
    end)).

%% How many messages each box_take and box_arm NIF call handed out while
%% `Fun' ran in this process.
batch_sizes(Fun) ->
    Self = self(),
    Tracer = spawn_link(fun() -> batches([]) end),
    Pattern = [{'_', [], [{return_trace}]}],
    _ = [erlang:trace_pattern({sluice_nif, F, 2}, Pattern, [local]) || F <- [box_take, box_arm]],
    erlang:trace(Self, true, [call, {tracer, Tracer}]),
    try
        Fun()
    after
        erlang:trace(Self, false, [call]),
        _ = [erlang:trace_pattern({sluice_nif, F, 2}, false, [local]) || F <- [box_take, box_arm]]
    end,
    Tracer ! {done, Self},
    receive {batches, Tracer, Sizes} -> Sizes after 5000 -> ct:fail(no_trace) end.

batches(Acc) ->
    receive
        {trace, _, return_from, {sluice_nif, _, 2}, {Msgs, Count, _}} when is_list(Msgs) ->
            batches([Count | Acc]);
        {done, Test} ->
            Test ! {batches, self(), lists:reverse(Acc)};
        _ ->
            batches(Acc)
    end.


%% pobox's start_link/3 initial state: `notify' arms the box at creation,
%% so the owner gets {mail, Box, new_data} from the first post; `passive'
%% (the default) sends nothing unasked. The same for buckets.
initial_state_notify(_Config) ->
    {ok, Box} = sluice_box:new(#{max => 3, initial_state => notify}),
    ok = sluice_box:post(Box, a),
    ?assertEqual({mail, Box, new_data}, mail(Box)),
    ok = sluice_box:post(Box, b),
    no_mail(Box),
    {ok, Passive} = sluice_box:new(#{max => 3}),
    ok = sluice_box:post(Passive, a),
    no_mail(Passive),
    Self = self(),
    Owner = spawn_link(fun() -> receive M -> Self ! {got, M} end end),
    {ok, Theirs} = sluice_box:new(#{max => 3, owner => Owner, initial_state => notify}),
    ok = sluice_box:post(Theirs, x),
    receive {got, Got} -> ?assertEqual({mail, Theirs, new_data}, Got)
    after 1000 -> ct:fail(no_notice)
    end,
    {ok, B} = sluice_buckets:new(#{max => 3, width => 1000, initial_state => notify}),
    ok = sluice_buckets:post(B, a),
    ?assertEqual({mail, B, new_data}, mail(B)),
    ?assertEqual({error, {bad_option, initial_state}},
                 sluice_buckets:new(#{max => 3, width => 10, initial_state => on})).

%% pobox counts the messages a filter drops in the mail's Dropped, beside
%% the box's own drops since the previous delivery.
filter_drops_in_mail_count(_Config) ->
    Box = new(#{max => 3}),
    post_all(Box, [1, 2, 3, 4]),
    ok = sluice_box:active(Box, fun(M, S) when M rem 2 =:= 0 -> {drop, S};
                                   (M, S) -> {{ok, M}, S} end, nostate),
    %% 1 overflowed, 2 and 4 filtered
    ?assertEqual({mail, Box, [3], 1, 3}, mail(Box)),
    reconciles(Box).

%% A heir may be a name (registered, {global, _}, {via, _, _}), resolved
%% when the owner dies, as in pobox.
heir_by_name(_Config) ->
    Self = self(),
    Check = fun(Heir, Register, Unregister) ->
                Owner = spawn(fun() -> receive stop -> exit(crashed) end end),
                Box = new(#{max => 5, owner => Owner, heir => Heir, heir_data => Heir}),
                ok = sluice_box:post(Box, 1),
                Register(),
                Owner ! stop,
                receive {sluice_transfer, Box, Owner, Heir, crashed} -> ok
                after 1000 -> ct:fail({no_transfer, Heir})
                end,
                Unregister(),
                ?assertEqual({[1], 1, 0}, sluice_box:take(Box, 5))
            end,
    Check(box_heir_name, fun() -> register(box_heir_name, Self) end,
          fun() -> unregister(box_heir_name) end),
    Check({global, box_heir_g}, fun() -> yes = global:register_name(box_heir_g, Self) end,
          fun() -> global:unregister_name(box_heir_g) end),
    Check({via, global, box_heir_v}, fun() -> yes = global:register_name(box_heir_v, Self) end,
          fun() -> global:unregister_name(box_heir_v) end).

%% A heir name that resolves to no process when the owner dies: no heir,
%% the box is closed.
heir_name_unresolved_closes(_Config) ->
    [begin
         Owner = spawn(fun() -> receive stop -> ok end end),
         Box = new(#{max => 5, owner => Owner, heir => Heir}),
         post_all(Box, [1, 2]),
         Owner ! stop,
         wait_closed(Box, 100),
         ?assertMatch(#{dropped := #{closed := 2}}, sluice_box:info(Box))
     end || Heir <- [no_such_heir, {global, no_such_heir}, {via, no_such_module, x}]],
    ok.

%% The NIF takes the box's options as one map with atom keys; a bound of 0
%% (a core error) is the named reason `zero_max', which new/1 reports as
%% the option `max'; a missing or mistyped key is `badarg'.
box_new_takes_one_options_map(_Config) ->
    {ok, Full} = sluice_box_opts:box(#{max => 4, max_bytes => 1000, codel => #{}}),
    Opts = sluice_box_opts:nif_box(Full),
    Box = #{} = sluice_nif:box_info({sluice_box, sluice_nif:box_new(Opts), true}),
    ?assertMatch(#{type := queue, max := 4, max_bytes := 1000, size := 0}, Box),
    ?assertEqual({error, zero_max}, sluice_nif:box_new(Opts#{max := 0})),
    ?assertEqual({error, {bad_option, max}}, sluice_box_opts:made({error, zero_max})),
    _ = [?assertError(badarg, sluice_nif:box_new(maps:remove(K, Opts))) || K <- maps:keys(Opts)],
    ?assertError(badarg, sluice_nif:box_new(Opts#{type := fifo})),
    ?assertError(badarg, sluice_nif:box_new(Opts#{red_prob := 2.0})),
    ?assertError(badarg, sluice_nif:box_new([{max, 4}])).

%% box_info/1 answers a map with atom keys; info/1 is the public one, in
%% microseconds and without the storage regions.
box_info_is_a_map(_Config) ->
    {ok, Box} = sluice_box:new(#{max => 2}),
    [ok, ok, full] = [sluice_box:post(Box, M) || M <- [a, b, c]],
    ?assertMatch(#{type := queue, posted := 3, size := 2, max := 2, max_bytes := infinity,
                   dropped := #{overflow := 1}, sojourn := #{p50 := _, p99 := _, max := _},
                   regions := _, closed := false},
                 sluice_nif:box_info(Box)),
    Info = sluice_box:info(Box),
    ?assertNot(is_map_key(regions, Info)),
    ?assertMatch(#{posted := 3, dropped := #{overflow := 1}, max_bytes := infinity}, Info).

%% A resize to 0 (BufferError::ZeroMax) is `{error, zero_max}' from the
%% NIF; the facade refuses it first, naming the argument.
resize_to_zero_is_named(_Config) ->
    {ok, Box} = sluice_box:new(#{max => 2}),
    ?assertEqual({error, zero_max}, sluice_nif:box_resize(Box, 0)),
    sluice_assert:badarg(fun() -> sluice_box:resize(Box, 0) end, 2,
                         "must be a positive integer below 2^40").

%% Counting more filtered messages than were delivered
%% (BufferError::NotDelivered) is `{error, not_delivered}', not a badarg.
filtered_beyond_delivered_is_named(_Config) ->
    {ok, Box} = sluice_box:new(#{max => 2}),
    ok = sluice_box:post(Box, a),
    ?assertEqual({error, not_delivered}, sluice_nif:box_filtered(Box, 1)),
    {[a], 1, 0} = sluice_box:take(Box, 1),
    ?assertEqual(ok, sluice_nif:box_filtered(Box, 1)),
    ?assertEqual({error, not_delivered}, sluice_nif:box_filtered(Box, 1)),
    ?assertEqual({error, not_delivered}, sluice_nif:box_restore(Box, [a], [])).

%% Sizes that do not go with the messages put back are
%% `{error, sizes_mismatch}'.
restore_sizes_mismatch_is_named(_Config) ->
    {ok, Box} = sluice_box:new(#{max => 4, max_bytes => 1000}),
    ok = sluice_box:post(Box, a),
    {[a], 1, 0} = sluice_box:take(Box, 1),
    ?assertEqual({error, sizes_mismatch}, sluice_nif:box_restore(Box, [a, b], [4])),
    ?assertEqual(ok, sluice_nif:box_restore(Box, [a], [erlang:external_size(a)])).
