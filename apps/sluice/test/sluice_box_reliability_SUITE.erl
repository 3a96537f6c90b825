%% Reliability of sluice_box: bad arguments stop in the caller, nothing a
%% box holds vanishes on a hand-over or a warden restart, and a box holds
%% no more memory than its bounds say.
-module(sluice_box_reliability_SUITE).
-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([bad_handles_never_reach_the_warden/1, buckets_raise_badarg/1,
         give_away_to_dead_or_remote/1, active_send_to_dead_owner_goes_back/1,
         warden_restart_keeps_heirs/1, unreachable_boxes_are_freed/1,
         owed_drops_release_their_terms/1, sub_binaries_do_not_keep_parents/1,
         large_posts_hold_no_scheduler/1, large_deliveries_hold_no_scheduler/1,
         large_skipped_messages_go_back_whole/1, idle_boxes_are_small/1]).

all() ->
    [bad_handles_never_reach_the_warden, buckets_raise_badarg, give_away_to_dead_or_remote,
     active_send_to_dead_owner_goes_back, warden_restart_keeps_heirs,
     unreachable_boxes_are_freed, owed_drops_release_their_terms,
     sub_binaries_do_not_keep_parents, large_posts_hold_no_scheduler,
     large_deliveries_hold_no_scheduler, large_skipped_messages_go_back_whole,
     idle_boxes_are_small].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(sluice),
    Config.

end_per_suite(_Config) ->
    ok.

%%% Helpers

new(Opts) ->
    {ok, Box} = sluice_box:new(Opts),
    Box.

%% A pid of node 'a@nowhere' (no connection needed to make one).
remote_pid() ->
    binary_to_term(<<131, 88, 119, 9, "a@nowhere", 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1>>).

dead_pid() ->
    {Pid, Mon} = spawn_monitor(fun() -> ok end),
    receive {'DOWN', Mon, process, Pid, _} -> Pid end.

%% Fails unless `F' raises badarg with an error_info message (never a
%% function_clause or a bare badarg).
badarg(F) ->
    try F() of
        Other -> ct:fail({no_badarg, Other})
    catch
        error:badarg:Stack ->
            [{_, _, _, Info} | _] = Stack,
            ?assertMatch(#{cause := {_, _}}, proplists:get_value(error_info, Info)),
            ok
    end.

%% Waits for a new warden after the one with pid `Old' died.
new_warden(Old, 0) ->
    ct:fail({warden_not_restarted, Old});
new_warden(Old, Tries) ->
    case whereis(sluice_box_warden) of
        Pid when is_pid(Pid), Pid =/= Old -> Pid;
        _ -> timer:sleep(10), new_warden(Old, Tries - 1)
    end.

wait_closed(_Box, 0) ->
    ct:fail(not_closed);
wait_closed(Box, Tries) ->
    case sluice_box:info(Box) of
        #{closed := true} -> ok;
        #{} -> timer:sleep(10), wait_closed(Box, Tries - 1)
    end.

live_boxes() ->
    Live = proplists:get_value(live, sluice_nif:lib_info()),
    proplists:get_value(sluice_box, Live).

%%% Cases

%% Forged handles, a valve's ref in a box tuple and a remote pid are
%% refused in the caller; the warden never crashes.
bad_handles_never_reach_the_warden(_Config) ->
    Warden = whereis(sluice_box_warden),
    Box = new(#{max => 4}),
    Valve = sluice_nif:drop_new([0.0]),
    Forged = [{sluice_box, make_ref(), false}, {sluice_box, Valve, false},
              {sluice_box, element(2, Box), true}, {not_a_box}, not_a_box, make_ref()],
    [begin
         badarg(fun() -> sluice_box:close(F) end),
         badarg(fun() -> sluice_box:give_away(F, self(), x) end),
         badarg(fun() -> sluice_box:drop_notices(F, 100) end),
         badarg(fun() -> sluice_box:post(F, x) end),
         badarg(fun() -> sluice_box:take(F, 1) end),
         badarg(fun() -> sluice_box:notify(F) end),
         badarg(fun() -> sluice_box:active(F) end),
         badarg(fun() -> sluice_box:active(F, fun(M, S) -> {{ok, M}, S} end, []) end),
         badarg(fun() -> sluice_box:resize(F, 3) end),
         badarg(fun() -> sluice_box:usage(F) end),
         badarg(fun() -> sluice_box:info(F) end),
         badarg(fun() -> sluice_box:set_time(F, 1) end)
     end || F <- Forged],
    badarg(fun() -> sluice_box:give_away(Box, not_a_pid, x) end),
    badarg(fun() -> sluice_box:drop_notices(Box, 1 bsl 70) end),
    badarg(fun() -> sluice_box:set_time(Box, 1 bsl 70) end),
    badarg(fun() -> sluice_box:resize(Box, 1 bsl 70) end),
    ?assertEqual({error, not_local}, sluice_box:give_away(Box, remote_pid(), x)),
    ?assertEqual({error, {bad_option, options}}, sluice_box:new([{max, 1}])),
    ?assertEqual({error, {bad_option, max}}, sluice_box:new(#{max => 1 bsl 70})),
    ?assertEqual({error, {bad_option, owner}}, sluice_box:new(#{max => 1, owner => remote_pid()})),
    ?assertEqual({error, {bad_option, red_max}},
                 sluice_box:new(#{max => 9, red_min => 5, red_max => 2, red_prob => 0.5})),
    %% calls sent around the facade are refused, not a crash
    [?assertMatch({error, _}, gen_server:call(sluice_box_warden, Call))
     || Call <- [{give_away, Box, self(), not_a_pid, x}, {give_away, Box, self(), remote_pid(), x},
                 {watch, Box, not_a_pid, none, x}, {notices, Box, self(), -1}, junk]],
    ?assertEqual(ok, gen_server:call(sluice_box_warden, {close, {sluice_box, make_ref(), false},
                                                         self()})),
    ?assertEqual(ok, sluice_box:close(Box)),
    ?assertEqual(Warden, whereis(sluice_box_warden)).

%% Every function of sluice_buckets raises badarg for a non-handle.
buckets_raise_badarg(_Config) ->
    Warden = whereis(sluice_box_warden),
    [begin
         badarg(fun() -> sluice_buckets:post(F, x) end),
         badarg(fun() -> sluice_buckets:set_time(F, 1) end),
         badarg(fun() -> sluice_buckets:take(F, 1) end),
         badarg(fun() -> sluice_buckets:notify(F) end),
         badarg(fun() -> sluice_buckets:active(F) end),
         badarg(fun() -> sluice_buckets:active(F, fun(M, S) -> {{ok, M}, S} end, []) end),
         badarg(fun() -> sluice_buckets:resize(F, 1) end),
         badarg(fun() -> sluice_buckets:usage(F) end),
         badarg(fun() -> sluice_buckets:info(F) end),
         badarg(fun() -> sluice_buckets:give_away(F, self(), x) end),
         badarg(fun() -> sluice_buckets:close(F) end),
         badarg(fun() -> sluice_buckets:drop_notices(F, 10) end)
     end || F <- [{not_a_box}, 42, {sluice_box, make_ref(), false}]],
    ?assertEqual({error, {bad_option, options}}, sluice_buckets:new(nope)),
    ?assertEqual({error, {bad_option, width}}, sluice_buckets:new(#{max => 1, width => 1 bsl 70})),
    {ok, B} = sluice_buckets:new(#{max => 3, width => 10}),
    badarg(fun() -> sluice_buckets:take(B, 0) end),
    ?assertEqual({error, not_local}, sluice_buckets:give_away(B, remote_pid(), x)),
    ok = sluice_buckets:close(B),
    ?assertEqual(Warden, whereis(sluice_box_warden)).

%% give_away to a dead process: `{error, noproc}', and the caller keeps the
%% box with every message (as pobox's `false').
give_away_to_dead_or_remote(_Config) ->
    Box = new(#{max => 10}),
    [ok = sluice_box:post(Box, I) || I <- [1, 2, 3]],
    ?assertEqual({error, noproc}, sluice_box:give_away(Box, dead_pid(), data)),
    ?assertEqual({error, not_local}, sluice_box:give_away(Box, remote_pid(), data)),
    ?assertMatch(#{owner := Self, closed := false} when Self =:= self(), sluice_box:info(Box)),
    ?assertEqual({[1, 2, 3], 3, 0}, sluice_box:take(Box, 10)),
    ok = sluice_box:close(Box).

%% An owner armed `active' dies; a post arrives before the warden has
%% handed the box to the heir (three processes keep the warden busy). The
%% message must reach the heir, every round: posted = taken by the heir.
active_send_to_dead_owner_goes_back(_Config) ->
    Stop = make_ref(),
    Churn = fun Loop() ->
                    receive Stop -> ok
                    after 0 ->
                            {ok, B} = sluice_box:new(#{max => 2}),
                            ok = sluice_box:close(B),
                            Loop()
                    end
            end,
    Churners = [spawn_link(Churn) || _ <- [1, 2, 3]],
    Lost = lists:sum([round_lost() || _ <- lists:seq(1, 300)]),
    [C ! Stop || C <- Churners],
    ?assertEqual(0, Lost).

%% One round: 1 if the posted message did not reach the heir.
round_lost() ->
    Self = self(),
    Owner = spawn(fun() -> receive {arm, B} -> ok = sluice_box:active(B), Self ! armed end,
                           receive never -> ok end
                  end),
    Box = new(#{max => 10, owner => Owner, heir => Self, heir_data => round}),
    Owner ! {arm, Box},
    receive armed -> ok end,
    Mon = monitor(process, Owner),
    exit(Owner, kill),
    receive {'DOWN', Mon, process, Owner, _} -> ok end,
    ok = sluice_box:post(Box, msg),
    receive {sluice_transfer, Box, Owner, round, _} -> ok
    after 5000 -> ct:fail(no_transfer)
    end,
    %% The post may have been sent to the heir as mail (the box was already
    %% the heir's, still armed), or wait in the box.
    Mailed = receive {mail, Box, M, _, _} -> M after 0 -> [] end,
    {Taken, _, _} = sluice_box:take(Box, 10),
    Msgs = Mailed ++ Taken,
    #{posted := 1, delivered := Delivered, dropped := Dropped} = sluice_box:info(Box),
    ?assertEqual(0, lists:sum(maps:values(Dropped))),
    ?assertEqual(length(Msgs), Delivered),
    ok = sluice_box:close(Box),
    case Msgs of
        [msg] -> 0;
        [] -> 1
    end.

%% A warden killed and restarted still knows every owner and heir: the heir
%% of a dead owner gets the box with its messages, and a heir-less box of a
%% dead owner is closed.
warden_restart_keeps_heirs(_Config) ->
    Self = self(),
    Owner = spawn(fun() -> receive never -> ok end end),
    Lone = spawn(fun() -> receive never -> ok end end),
    Box = new(#{max => 10, owner => Owner, heir => Self, heir_data => back}),
    Orphan = new(#{max => 10, owner => Lone}),
    [ok = sluice_box:post(Box, I) || I <- [1, 2, 3]],
    ok = sluice_box:post(Orphan, x),
    Noticed = new(#{max => 1}),
    ok = sluice_box:drop_notices(Noticed, 20),
    Old = whereis(sluice_box_warden),
    exit(Old, kill),
    _ = new_warden(Old, 200),
    exit(Owner, kill),
    receive {sluice_transfer, Box, Owner, back, killed} -> ok
    after 5000 -> ct:fail(no_transfer)
    end,
    ?assertEqual({[1, 2, 3], 3, 0}, sluice_box:take(Box, 10)),
    exit(Lone, kill),
    ok = wait_closed(Orphan, 500),
    %% notices restarted: two posts into a max 1 box, one overflow told
    ok = sluice_box:post(Noticed, a),
    full = sluice_box:post(Noticed, b),
    receive {sluice_dropped, Noticed, overflow, 1} -> ok
    after 2000 -> ct:fail(no_notice)
    end,
    [ok = sluice_box:close(B) || B <- [Box, Noticed]].

%% Boxes a live owner drops without closing are freed: the warden keeps
%% no handle of a box without heir or notices.
unreachable_boxes_are_freed(_Config) ->
    N = 20000,
    Self = self(),
    Before = live_boxes(),
    Maker = spawn(fun() ->
                          [{ok, _} = sluice_box:new(#{max => 4}) || _ <- lists:seq(1, N)],
                          erlang:garbage_collect(),
                          Self ! made,
                          receive stop -> ok end
                  end),
    receive made -> ok end,
    erlang:garbage_collect(whereis(sluice_box_warden)),
    After = settle_live(Before + N, 100),
    ct:pal("live boxes: ~p before, ~p after ~p made and dropped", [Before, After, N]),
    ?assert(After - Before < N div 100),
    Maker ! stop.

settle_live(Last, 0) ->
    Last;
settle_live(_Last, Tries) ->
    erlang:garbage_collect(whereis(sluice_box_warden)),
    timer:sleep(20),
    settle_live(live_boxes(), Tries - 1).

-define(MB, (1024 * 1024)).

%% Runs `F' in a fresh process, garbage collected when done (so it holds
%% none of what it made), and returns the growth of binary memory over
%% what it was before, while the process still lives.
binary_growth(F) ->
    Self = self(),
    erlang:garbage_collect(),
    Before = erlang:memory(binary),
    Pid = spawn(fun() -> F(), erlang:garbage_collect(), Self ! {done, self()},
                         receive stop -> ok end
                end),
    receive {done, Pid} -> ok end,
    erlang:garbage_collect(),
    Growth = erlang:memory(binary) - Before,
    Pid ! stop,
    Growth.

%% 200 distinct 8 MB binaries into a max 1 box: the box holds one, and the
%% drops it owes release theirs at once.
owed_drops_release_their_terms(_Config) ->
    Box = new(#{max => 1}),
    Base = binary:copy(<<0>>, 8 * ?MB - 8),
    Growth = binary_growth(fun() ->
                                   [begin
                                        _ = sluice_box:post(Box, <<I:64, Base/binary>>),
                                        erlang:garbage_collect()
                                    end || I <- lists:seq(1, 200)]
                           end),
    ct:pal("binary memory growth: ~p MB (bound: 1 message of 8 MB)", [Growth div ?MB]),
    ?assertEqual({1, 1}, sluice_box:usage(Box)),
    ?assert(Growth < 4 * 8 * ?MB),
    ok = sluice_box:close(Box).

%% Sub-binaries of 70 bytes of 20 MB binaries, in a max_bytes box: the box
%% keeps copies, not the parents.
sub_binaries_do_not_keep_parents(_Config) ->
    Box = new(#{max => 1000, max_bytes => 4000}),
    Growth = binary_growth(fun() ->
                                   [begin
                                        Parent = binary:copy(<<I:64>>, 20 * ?MB div 8),
                                        <<Sub:70/binary, _/binary>> = Parent,
                                        _ = sluice_box:post(Box, {I, Sub}),
                                        erlang:garbage_collect()
                                    end || I <- lists:seq(1, 40)]
                           end),
    #{size := Held, bytes := Bytes} = sluice_box:info(Box),
    ct:pal("~p held (~p bytes counted), binary memory growth ~p bytes", [Held, Bytes, Growth]),
    ?assert(Held > 10),
    ?assert(Growth < 10 * 4000 + ?MB),
    ok = sluice_box:close(Box).

%% Posting a 2 M-element list ten times holds no normal scheduler for long
%% (the copy runs on a dirty scheduler), and the message arrives whole.
large_posts_hold_no_scheduler(_Config) ->
    %% with a byte budget the message is measured on the dirty scheduler too
    [?assertEqual([], sluice_long_schedule:quiet(5, fun(_) -> large_posts(Opts) end))
     || Opts <- [#{max => 20}, #{max => 20, max_bytes => 1 bsl 30}]].

large_posts(Opts) ->
    Box = new(Opts),
    Self = self(),
    List = lists:seq(1, 2000000),
    Poster = spawn(fun() ->
                           receive go -> ok end,
                           [ok = sluice_box:post(Box, List) || _ <- lists:seq(1, 10)],
                           Self ! {posted, self()}
                   end),
    Old = erlang:system_monitor(self(), [{long_schedule, 10}]),
    Poster ! go,
    receive {posted, Poster} -> ok after 60000 -> ct:fail(not_posted) end,
    _ = case Old of
            undefined -> erlang:system_monitor(undefined);
            {Pid, Opts} -> erlang:system_monitor(Pid, Opts)
        end,
    Events = flush_long(Poster, []),
    ct:pal("long_schedule events of the poster: ~p", [Events]),
    {[First | _] = Msgs, 10, 0} = sluice_box:take(Box, 20),
    ?assertEqual(10, length(Msgs)),
    ?assert(First =:= List),
    ok = sluice_box:close(Box),
    Events.

flush_long(Poster, Acc) ->
    receive
        {monitor, Poster, long_schedule, Info} -> flush_long(Poster, [Info | Acc]);
        {monitor, _, long_schedule, _} -> flush_long(Poster, Acc)
    after 0 -> lists:reverse(Acc)
    end.

%% Ten 2 M-element lists, with small messages between them, leave a box
%% through take/2, through active/1, and sent by the posts themselves to
%% an owner armed `active`: each is copied out on a dirty scheduler, so no
%% NIF call holds the owner's or the producer's scheduler (no
%% long_schedule of 10 ms), and every message arrives whole, in order, with
%% the counters reconciled.
large_deliveries_hold_no_scheduler(_Config) ->
    List = lists:seq(1, 2000000),
    [?assertEqual([], sluice_long_schedule:quiet(5, fun(_) -> large_delivery(How, Opts, List) end))
     || How <- [take, active, post_active],
        Opts <- [#{max => 40}, #{max => 40, max_bytes => 1 bsl 30}]].

%% Message P (from 0) of the 20: {small, I} or {large, I, List}.
nth_message(P, _List) when P rem 2 =:= 0 -> {small, P div 2 + 1};
nth_message(P, List) -> {large, P div 2 + 1, List}.

large_delivery(How, Opts, List) ->
    N = 20,
    Self = self(),
    Owner = spawn(fun() ->
                          receive {box, Box, Producer} -> delivery_owner(How, Box, N, Producer, Self) end
                  end),
    Box = new(Opts#{owner => Owner}),
    Producer = spawn(fun() ->
                             receive go -> ok end,
                             [produce(How, Box, nth_message(P, List), P) || P <- lists:seq(0, N - 1)],
                             Self ! {produced, self()}
                     end),
    Old = erlang:system_monitor(self(), [{long_schedule, 10}]),
    _ = case How of
            post_active -> ok;
            %% the box holds everything before the owner takes
            _ -> Producer ! go, receive {produced, Producer} -> ok after 60000 -> ct:fail(not_posted) end
        end,
    Owner ! {box, Box, Producer},
    How =:= post_active andalso (Producer ! go),
    Got = receive {got, Owner, Result} -> Result after 120000 -> ct:fail(not_delivered) end,
    _ = case Old of
            undefined -> erlang:system_monitor(undefined);
            {Pid, MonOpts} -> erlang:system_monitor(Pid, MonOpts)
        end,
    Events = flush_long_of([Owner, Producer], []),
    ct:pal("~p ~p: ~p; long_schedule events: ~p", [How, Opts, Got, Events]),
    ?assertEqual({ok, N}, Got),
    #{posted := Posted, delivered := Delivered, dropped := Dropped, size := Size} =
        sluice_box:info(Box),
    ?assertEqual({N, N, 0}, {Posted, Delivered, Size}),
    ?assertEqual(Posted, Delivered + lists:sum(maps:values(Dropped)) + Size),
    Owner ! stop,
    Events.

%% A filter that skips at a 2 M-element list puts it back into the box on
%% a dirty scheduler (no long_schedule of the owner), and the next take
%% gets it whole, in order, with the counters reconciled.
large_skipped_messages_go_back_whole(_Config) ->
    List = lists:seq(1, 2000000),
    ?assertEqual([], sluice_long_schedule:quiet(5, fun(_) -> large_skipped(List) end)).

large_skipped(List) ->
    Self = self(),
    Owner = spawn(fun() ->
                          B = receive {box, Box0} -> Box0 end,
                          Skip = fun({large, _, _}, _St) -> skip;
                                    (Msg, St) -> {{ok, Msg}, St}
                                 end,
                          ok = sluice_box:active(B, Skip, []),
                          First = receive {mail, B, Msgs, _, _} -> Msgs end,
                          {Rest, _, _} = sluice_box:take(B, 10),
                          Self ! {got, self(), First, check_msgs(Rest, 1)},
                          receive stop -> sluice_box:close(B) end
                  end),
    Box = new(#{max => 10, owner => Owner}),
    [ok = sluice_box:post(Box, nth_message(P, List)) || P <- lists:seq(0, 3)],
    Old = erlang:system_monitor(self(), [{long_schedule, 10}]),
    Owner ! {box, Box},
    Got = receive {got, Owner, F, R} -> {F, R} after 60000 -> ct:fail(not_delivered) end,
    _ = case Old of
            undefined -> erlang:system_monitor(undefined);
            {Pid, MonOpts} -> erlang:system_monitor(Pid, MonOpts)
        end,
    Events = flush_long_of([Owner], []),
    ct:pal("~p; long_schedule events: ~p", [Got, Events]),
    ?assertEqual({[{small, 1}], 4}, Got),
    #{posted := 4, delivered := 4, size := 0} = sluice_box:info(Box),
    Owner ! stop,
    Events.

%% For post_active, each post waits until the owner is armed again, so
%% every message is delivered by the post that stores it.
produce(post_active, Box, Msg, P) ->
    receive {armed, P} -> ok end,
    ok = sluice_box:post(Box, Msg);
produce(_, Box, Msg, _P) ->
    ok = sluice_box:post(Box, Msg).

%% The owner checks each message as it arrives (an Erlang loop, which is
%% preempted like any code) and keeps none of them.
delivery_owner(How, Box, N, Producer, Test) ->
    Result = owner_loop(How, Box, 0, N, Producer),
    Test ! {got, self(), Result},
    receive stop -> sluice_box:close(Box) end.

owner_loop(_How, _Box, N, N, _) ->
    {ok, N};
owner_loop(take, Box, P, N, Producer) ->
    {Msgs, _, _} = sluice_box:take(Box, N - P),
    next(take, Box, check_msgs(Msgs, P), N, Producer);
owner_loop(active, Box, P, N, Producer) ->
    ok = sluice_box:active(Box),
    receive {mail, Box, Msgs, _, _} -> next(active, Box, check_msgs(Msgs, P), N, Producer) end;
owner_loop(post_active, Box, P, N, Producer) ->
    ok = sluice_box:active(Box),
    Producer ! {armed, P},
    receive {mail, Box, Msgs, _, _} -> next(post_active, Box, check_msgs(Msgs, P), N, Producer) end.

next(_How, _Box, {bad, _} = Bad, _N, _Producer) -> Bad;
next(How, Box, P, N, Producer) -> owner_loop(How, Box, P, N, Producer).

check_msgs([], P) -> P;
check_msgs([{small, I} | Rest], P) when P rem 2 =:= 0, I =:= P div 2 + 1 -> check_msgs(Rest, P + 1);
check_msgs([{large, I, L} | Rest], P) when P rem 2 =:= 1, I =:= P div 2 + 1 ->
    case is_seq(L, 1) of
        true -> check_msgs(Rest, P + 1);
        false -> {bad, P}
    end;
check_msgs(_, P) -> {bad, P}.

is_seq([], Next) -> Next =:= 2000001;
is_seq([Next | Rest], Next) -> is_seq(Rest, Next + 1);
is_seq(_, _) -> false.

%% The long schedules of `Pids', but those of the owner's check loop
%% (plain Erlang, preempted by reductions: on a loaded machine the OS
%% may hold its scheduler thread, which no change to sluice can help).
flush_long_of(Pids, Acc) ->
    Check = {?MODULE, is_seq, 2},
    receive
        {monitor, Pid, long_schedule, Info} ->
            Own = {proplists:get_value(in, Info), proplists:get_value(out, Info)} =:= {Check, Check},
            case lists:member(Pid, Pids) andalso not Own of
                true -> flush_long_of(Pids, [{Pid, Info} | Acc]);
                false -> flush_long_of(Pids, Acc)
            end
    after 0 -> lists:reverse(Acc)
    end.

%% An idle box costs its counters, not lanes, storage and a histogram
%% (it was 12.6 KB): under 4 KB each over 10 000 boxes.
idle_boxes_are_small(_Config) ->
    N = 10000,
    Self = self(),
    erlang:garbage_collect(),
    Before = erlang:memory(total),
    Pid = spawn(fun() ->
                        Boxes = [element(2, sluice_box:new(#{max => 100}))
                                 || _ <- lists:seq(1, N)],
                        erlang:garbage_collect(),
                        Self ! {made, self()},
                        receive stop -> length(Boxes) end
                end),
    receive {made, Pid} -> ok end,
    erlang:garbage_collect(whereis(sluice_box_warden)),
    PerBox = (erlang:memory(total) - Before) / N,
    Pid ! stop,
    ct:pal("~.1f bytes per idle box", [PerBox]),
    ?assert(PerBox < 4000).
