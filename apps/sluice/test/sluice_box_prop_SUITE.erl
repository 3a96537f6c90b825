%% PropEr state-machine model of a sluice_box, run inside Common Test: one
%% test case per type (queue, stack, keep_old), each a quickcheck of
%% `SLUICE_BOX_PROP_RUNS' runs (default 2000).
%%
%% Each run makes one box (max 1..5, with or without the test process as
%% heir), runs a command sequence against it and against a pure model, then
%% closes it. The test process owns the box unless a helper process was
%% given it. The model holds the type, max, the held messages (oldest
%% first), the counters per drop reason, the drops since the last delivery,
%% the arming (off/notify/active), the owner and whether the box is closed.
%% Messages are unique increasing integers. After every command it checks:
%% B1. the command's result: `ok'/`full' for a post (queue and stack drop
%%     the oldest, keep_old the new message), `{Msgs, Count, Dropped}' for a
%%     take (queue/keep_old oldest first, stack newest first), `ok' for a
%%     resize (queue/stack drop the oldest, keep_old the newest),
%%     `{error, not_owner | closed}' where the caller may not act;
%% B2. the mail the test process got meanwhile: `{mail, Box, new_data}' and
%%     `{mail, Box, Msgs, Count, Dropped}' from notify, active, active/3
%%     (through a filter) or from the first post into an armed box, and
%%     `{sluice_transfer, ...}' from hand-overs and owner deaths; the helper
%%     got nothing it should not (an arming does not follow the box);
%% B3. info/1: posted, delivered, dropped per reason (overflow, resize,
%%     filter, closed; never expired or early), size, max, peak, owner, closed all equal the
%%     model's, posted = delivered + dropped + size, and usage/1 agrees;
%% so the messages delivered, by take and by mail, are exactly the model's,
%% in order, none lost or duplicated. After close/1 the held messages are
%% counted as dropped (`closed').
%%
%% Messages are bignums (heap terms), so a copy read from freed storage
%% would show; bursts of up to 200 posts fill and close storage chunks (128
%% messages each). Owner changes: give_away to the test process itself, to a
%% helper process (which then takes, gives the box back, or is killed: the
%% box passes to the heir, or is closed when there is none). Sojourn times
%% are not modelled.
-module(sluice_box_prop_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("proper/include/proper.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1,
         queue_model/1, stack_model/1, keep_old_model/1]).
-export([command/1, precondition/2, postcondition/3, next_state/3]).
-export([post/1, burst/2, take/1, resize/1, notify/0, active/0, active_filter/1, give_self/1,
         give_helper/1, helper_take/1, give_back/1, kill_helper/0]).

-define(BOX, {?MODULE, box}).
-define(HELPER, {?MODULE, helper}).
-define(HEIR_DATA, {heir, data}).
-define(WAIT, 1000).
-define(DEFAULT_RUNS, 2000).
%% Largest size quickcheck asks for: command sequences stay short (a run
%% of 2000 tests takes seconds).
-define(MAX_SIZE, 60).
%% Messages are unique increasing integers from here: bignums, so that each
%% is a term on a heap and a copy read after its storage was freed shows.
-define(FIRST_MSG, (1 bsl 64)).

-type type() :: sluice_box:type().
-type owner() :: self | helper.
-type arm() :: off | notify | active.
-type reason() :: overflow | resize | filter | closed | expired | early.
-type filter_spec() :: {limit, 0..3} | odd | {limit_odd, 0..3}.
-type model() :: #{type := type(), max := pos_integer(), heir := boolean(),
                   held := [integer()], next := pos_integer(),
                   posted := non_neg_integer(), delivered := non_neg_integer(),
                   dropped := #{reason() => non_neg_integer()},
                   unreported := non_neg_integer(), peak := non_neg_integer(),
                   arm := arm(), owner := owner(), closed := boolean()}.
%% Mail and hand-overs as the test process got them, pids named.
-type mail() :: {mail, new_data} | {mail, [term()], non_neg_integer(), non_neg_integer()}
              | {transfer, term(), term(), term()}.
-type outcome() :: #{res := term(), mail := [mail()], info := map(),
                     usage := {non_neg_integer(), pos_integer()}, strays := [term()]}.
-type call() :: {call, module(), atom(), [term()]}.

%%% Common Test

-spec all() -> [atom()].
all() -> [queue_model, stack_model, keep_old_model].

-spec init_per_suite(list()) -> list().
init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(sluice),
    Config.

-spec end_per_suite(list()) -> ok.
end_per_suite(_Config) ->
    ok.

-spec queue_model(list()) -> true.
queue_model(_Config) -> check(queue).

-spec stack_model(list()) -> true.
stack_model(_Config) -> check(stack).

-spec keep_old_model(list()) -> true.
keep_old_model(_Config) -> check(keep_old).

-spec check(type()) -> true.
check(Type) ->
    sluice_prop:check(prop_box(Type), "SLUICE_BOX_PROP_RUNS", ?DEFAULT_RUNS, ?MAX_SIZE).

-spec prop_box(type()) -> proper:test().
prop_box(Type) ->
    ?FORALL({Max, Heir}, {range(1, 5), boolean()},
    ?FORALL(Cmds, proper_statem:commands(?MODULE, initial_state(Type, Max, Heir)),
            begin
                Opts = case Heir of
                           true -> #{heir => self(), heir_data => ?HEIR_DATA};
                           false -> #{}
                       end,
                {ok, Box} = sluice_box:new(Opts#{type => Type, max => Max}),
                put(?BOX, Box),
                {History, State, Result} = proper_statem:run_commands(?MODULE, Cmds),
                Closed = cleanup(Box),
                ExpClosed = expected_info(close_model(State)),
                ?WHENFAIL(report(Cmds, History, State, Result, Closed, ExpClosed),
                          aggregate(proper_statem:command_names(Cmds),
                                    aggregate(features(Cmds, History),
                                              Result =:= ok andalso Closed =:= ExpClosed)))
            end)).

%% Closes the box (through its helper owner if it has one), stops the
%% helper, flushes the box's mail; info/1 afterwards.
-spec cleanup(sluice_box:box()) -> map().
cleanup(Box) ->
    case get(?HELPER) of
        undefined -> ok;
        H -> _ = call_helper(H, close)
    end,
    ok = sluice_box:close(Box),
    _ = drain(Box),
    Info = summary(sluice_box:info(Box)),
    _ = erase(?BOX),
    _ = erase(?HELPER),
    Info.

%% Prints the failed run, messages shown as `{m, N}' (the N-th message).
-spec report(list(), list(), model(), term(), map(), map()) -> ok.
report(Cmds, History, State, Result, Closed, ExpClosed) ->
    pal("commands ~p~nhistory ~p~nstate ~p~nresult ~p", [Cmds, History, State, Result]),
    case Result of
        {postcondition, _} ->
            [_Init | Calls] = Cmds,
            {S, Actual} = lists:last(History),
            {set, _, Call} = lists:nth(length(History), Calls),
            {ExpRes, ExpMail, S2} = step(S, Call),
            pal("failed ~p~nexpected res ~p mail ~p~n  info ~p~nactual ~p",
                [Call, ExpRes, ExpMail, expected_info(S2), Actual]);
        ok ->
            pal("after close: expected ~p~nactual ~p", [ExpClosed, Closed]);
        _ ->
            ok
    end.

-spec pal(string(), [term()]) -> ok.
pal(Format, Args) ->
    ct:pal(Format, readable(Args)).

-spec readable(term()) -> term().
readable(N) when is_integer(N), N >= ?FIRST_MSG -> {m, N - ?FIRST_MSG};
readable(L) when is_list(L) -> [readable(E) || E <- L];
readable(T) when is_tuple(T) -> list_to_tuple(readable(tuple_to_list(T)));
readable(M) when is_map(M) -> maps:from_list(readable(maps:to_list(M)));
readable(X) -> X.

%% What a run exercised, for the statistics printed by quickcheck (shares
%% of all the features seen, not of runs).
-spec features(list(), list()) -> [atom()].
features([_Init | Calls], History) ->
    Steps = lists:zip(lists:sublist([C || {set, _, C} <- Calls], length(History)), History),
    lists:usort(lists:append([feature(S, Call, R) || {Call, {S, R}} <- Steps])).

-spec feature(model(), call(), term()) -> [atom()].
feature(S, {call, _, F, _} = Call, _Result) ->
    {Res, Mail, S2} = step(S, Call),
    Dropped = fun(#{dropped := D}, R) -> maps:get(R, D) end,
    Posted = fun(#{posted := P}) -> P end,
    [post_full || Res =:= full orelse (F =:= burst andalso lists:member(full, Res))]
        ++ [crossed_128_posts || Posted(S2) div 128 > Posted(S) div 128]
        ++ [woke_notify || F =:= post orelse F =:= burst, lists:member({mail, new_data}, Mail)]
        ++ [woke_active || F =:= post orelse F =:= burst, {mail, _, _, _} <- Mail]
        ++ [resize_dropped || Dropped(S2, resize) > Dropped(S, resize)]
        ++ [filter_dropped || Dropped(S2, filter) > Dropped(S, filter)]
        ++ [filter_left_some || F =:= active_filter, maps:get(held, S2) =/= []]
        ++ [take_reported || {[_ | _], _, D} <- [Res], D > 0]
        ++ [mail_reported || [{mail, _, _, D}] <- [Mail], D > 0]
        ++ [not_owner || Res =:= {error, not_owner} orelse Res =:= {{error, not_owner}, none}]
        ++ [heir_took_over || F =:= kill_helper, maps:get(closed, S2) =:= false]
        ++ [owner_died_closed || F =:= kill_helper, maps:get(closed, S2)].

%%% Model

-spec initial_state(type(), pos_integer(), boolean()) -> model().
initial_state(Type, Max, Heir) ->
    #{type => Type, max => Max, heir => Heir, held => [], next => ?FIRST_MSG, posted => 0,
      delivered => 0, dropped => #{overflow => 0, resize => 0, filter => 0, closed => 0,
                                   expired => 0, early => 0},
      unreported => 0, peak => 0, arm => off, owner => self, closed => false}.

-spec command(model()) -> proper_types:type().
command(#{next := Next, owner := Owner, closed := Closed}) ->
    Mine = [{10, {call, ?MODULE, post, [Next]}},
            {1, {call, ?MODULE, burst, [Next, range(1, 200)]}},
            {4, {call, ?MODULE, take, [range(1, 6)]}},
            {2, {call, ?MODULE, resize, [range(1, 5)]}},
            {2, {call, ?MODULE, notify, []}},
            {2, {call, ?MODULE, active, []}},
            {3, {call, ?MODULE, active_filter, [filter_spec()]}},
            {1, {call, ?MODULE, give_self, [data()]}},
            {2, {call, ?MODULE, give_helper, [data()]}}],
    Helper = case Owner =:= helper andalso not Closed of
                 true -> [{6, {call, ?MODULE, helper_take, [range(1, 6)]}},
                          {3, {call, ?MODULE, give_back, [data()]}},
                          {3, {call, ?MODULE, kill_helper, []}}];
                 false -> []
             end,
    frequency(Mine ++ Helper).

-spec filter_spec() -> proper_types:type().
filter_spec() ->
    oneof([{limit, range(0, 3)}, odd, {limit_odd, range(0, 3)}]).

-spec data() -> proper_types:type().
data() ->
    elements([a, 1, {d, 2}]).

-spec precondition(model(), call()) -> boolean().
precondition(#{owner := Owner, closed := Closed}, {call, _, F, _})
  when F =:= helper_take; F =:= give_back; F =:= kill_helper ->
    Owner =:= helper andalso not Closed;
precondition(_S, _Call) ->
    true.

-spec next_state(model(), term(), call()) -> model().
next_state(S, _Res, Call) ->
    {_, _, S2} = step(S, Call),
    S2.

-spec postcondition(model(), call(), term()) -> boolean().
postcondition(S, Call, #{res := Res, mail := Mail, info := Info, usage := Usage,
                         strays := Strays}) ->
    {ExpRes, ExpMail, #{held := Held, max := Max} = S2} = step(S, Call),
    Res =:= ExpRes andalso Mail =:= ExpMail andalso Strays =:= []
        andalso Info =:= expected_info(S2) andalso Usage =:= {length(Held), Max}
        andalso reconciles(Info);
postcondition(_S, _Call, _Other) ->
    false.

-spec reconciles(map()) -> boolean().
reconciles(#{posted := P, delivered := D, dropped := Dropped, size := Size}) ->
    P =:= D + lists:sum(maps:values(Dropped)) + Size.

-spec expected_info(model()) -> map().
expected_info(#{type := Type, posted := P, delivered := D, dropped := Dropped, held := Held,
                max := Max, peak := Peak, owner := Owner, closed := Closed}) ->
    #{type => Type, posted => P, delivered => D, dropped => Dropped, size => length(Held),
      max => Max, peak => Peak, bytes => 0, max_bytes => infinity, owner => Owner,
      closed => Closed}.

%% One command on the model: the expected result, the expected mail of the
%% test process, and the next state.
-spec step(model(), call()) -> {term(), [mail()], model()}.
step(#{closed := true} = S, {call, _, post, [_]}) ->
    {{error, closed}, [], bump(S)};
step(S, {call, _, post, [Msg]}) ->
    #{type := Type, max := Max, held := Held, posted := P, peak := Peak} = S,
    {Held1, Res, Over} =
        case length(Held) < Max of
            true -> {Held ++ [Msg], ok, 0};
            false when Type =:= keep_old -> {Held, full, 1};
            false -> {tl(Held) ++ [Msg], full, 1}
        end,
    S1 = lost(overflow, Over, S#{held := Held1, posted := P + 1,
                                 peak := max(Peak, length(Held1))}),
    {Mail, S2} = wake(S1),
    {Res, Mail, bump(S2)};
step(S, {call, M, burst, [First, N]}) ->
    {Results, Mails, S2} =
        lists:foldl(fun(Msg, {Rs, Ms, Si}) ->
                            {R, Mail, Si2} = step(Si, {call, M, post, [Msg]}),
                            {[R | Rs], [Mail | Ms], Si2}
                    end, {[], [], S}, lists:seq(First, First + N - 1)),
    {lists:reverse(Results), lists:append(lists:reverse(Mails)), S2};
%% A closed box refuses its owner's calls before asking who calls.
step(#{closed := true} = S, {call, _, F, _})
  when F =:= take; F =:= notify; F =:= active; F =:= active_filter ->
    {{error, closed}, [], S};
step(#{owner := Owner} = S, {call, _, take, [_]}) when Owner =/= self ->
    {{error, not_owner}, [], S};
step(S, {call, _, F, [N]}) when F =:= take; F =:= helper_take ->
    Order = delivery_order(S),
    {Out, Rest} = lists:split(min(N, length(Order)), Order),
    {Res, S1} = delivered(Out, S),
    {Res, [], S1#{held := held_from(Rest, S)}};
%% As resize/2's spec says (`ok | {error, closed}'), and as every other
%% call does, a closed box refuses a resize.
step(#{closed := true} = S, {call, _, resize, [_]}) ->
    {{error, closed}, [], S};
step(#{type := Type, held := Held} = S, {call, _, resize, [Max]}) ->
    Excess = max(0, length(Held) - Max),
    Kept = case Type of
               keep_old -> lists:sublist(Held, Max);
               _ -> lists:nthtail(Excess, Held)
           end,
    {ok, [], lost(resize, Excess, S#{held := Kept, max := Max})};
step(#{owner := Owner} = S, {call, _, F, _})
  when Owner =/= self, (F =:= notify orelse F =:= active orelse F =:= active_filter) ->
    {{error, not_owner}, [], S};
step(#{held := []} = S, {call, _, notify, []}) ->
    {ok, [], S#{arm := notify}};
step(S, {call, _, notify, []}) ->
    {ok, [{mail, new_data}], S#{arm := off}};
step(#{held := []} = S, {call, _, active, []}) ->
    {ok, [], S#{arm := active}};
step(S, {call, _, active, []}) ->
    {Mail, S1} = deliver_all(S#{arm := off}),
    {ok, [Mail], S1};
step(#{held := []} = S, {call, _, active_filter, [_]}) ->
    {ok, [], S#{arm := notify}};
step(#{dropped := Dropped} = S, {call, _, active_filter, [Spec]}) ->
    {Fun, FS} = filter(Spec),
    {Out, Filtered, Rest} = run_filter(Fun, FS, delivery_order(S), []),
    {{Msgs, Count, D}, S1} = delivered(Out, S),
    S2 = S1#{held := held_from(Rest, S), arm := off,
             dropped := Dropped#{filter := maps:get(filter, Dropped) + Filtered}},
    %% the mail's Dropped counts the filter's drops too, as pobox does
    {ok, [{mail, Msgs, Count, D + Filtered}], S2};
step(#{closed := true} = S, {call, _, give_self, [_]}) ->
    {{error, closed}, [], S};
step(#{owner := helper} = S, {call, _, give_self, [_]}) ->
    {{error, not_owner}, [], S};
step(S, {call, _, give_self, [Data]}) ->
    {ok, [{transfer, self, Data, give_away}], S#{arm := off}};
step(#{closed := true} = S, {call, _, give_helper, [_]}) ->
    {{{error, closed}, none}, [], S};
step(#{owner := helper} = S, {call, _, give_helper, [_]}) ->
    {{{error, not_owner}, none}, [], S};
step(S, {call, _, give_helper, [Data]}) ->
    {{ok, {transfer, self, Data, give_away}}, [], S#{owner := helper, arm := off}};
step(S, {call, _, give_back, [Data]}) ->
    {ok, [{transfer, helper, Data, give_away}], S#{owner := self, arm := off}};
step(#{heir := true} = S, {call, _, kill_helper, []}) ->
    {ok, [{transfer, helper, ?HEIR_DATA, killed}], S#{owner := self, arm := off}};
step(S, {call, _, kill_helper, []}) ->
    {ok, [], close_model(S)}.

-spec bump(model()) -> model().
bump(#{next := Next} = S) -> S#{next := Next + 1}.

%% Counts `N' messages dropped for `Reason' (overflow, resize), reported
%% with the next delivery.
-spec lost(overflow | resize, non_neg_integer(), model()) -> model().
lost(Reason, N, #{dropped := Dropped, unreported := U} = S) ->
    S#{dropped := Dropped#{Reason := maps:get(Reason, Dropped) + N}, unreported := U + N}.

%% The first post into an empty armed box wakes the owner.
-spec wake(model()) -> {[mail()], model()}.
wake(#{arm := off} = S) ->
    {[], S};
wake(#{arm := notify} = S) ->
    {[{mail, new_data}], S#{arm := off}};
wake(#{arm := active} = S) ->
    {Mail, S1} = deliver_all(S#{arm := off}),
    {[Mail], S1}.

-spec deliver_all(model()) -> {mail(), model()}.
deliver_all(S) ->
    {{Msgs, Count, D}, S1} = delivered(delivery_order(S), S),
    {{mail, Msgs, Count, D}, S1#{held := []}}.

%% A delivery of `Out': the batch, and the counters after it.
-spec delivered([term()], model()) ->
    {{[term()], non_neg_integer(), non_neg_integer()}, model()}.
delivered(Out, #{delivered := D, unreported := U} = S) ->
    Count = length(Out),
    {{Out, Count, U}, S#{delivered := D + Count, unreported := 0}}.

-spec delivery_order(model()) -> [integer()].
delivery_order(#{type := stack, held := Held}) -> lists:reverse(Held);
delivery_order(#{held := Held}) -> Held.

%% The held list (oldest first) of what is left, in delivery order.
-spec held_from([integer()], model()) -> [integer()].
held_from(Rest, #{type := stack}) -> lists:reverse(Rest);
held_from(Rest, _S) -> Rest.

-spec close_model(model()) -> model().
close_model(#{held := Held, dropped := Dropped} = S) ->
    S#{closed := true, held := [], arm := off,
       dropped := Dropped#{closed := maps:get(closed, Dropped) + length(Held)}}.

%% Delivered (filtered) messages, the number dropped by the filter, and the
%% messages left from the first skip on.
-spec run_filter(sluice_box:filter(), term(), [integer()], [term()]) ->
    {[term()], non_neg_integer(), [integer()]}.
run_filter(Fun, FS, Msgs, Acc) ->
    run_filter(Fun, FS, Msgs, Acc, 0).

-spec run_filter(sluice_box:filter(), term(), [integer()], [term()], non_neg_integer()) ->
    {[term()], non_neg_integer(), [integer()]}.
run_filter(_Fun, _FS, [], Acc, Dropped) ->
    {lists:reverse(Acc), Dropped, []};
run_filter(Fun, FS, [Msg | Rest] = Msgs, Acc, Dropped) ->
    case Fun(Msg, FS) of
        {{ok, Out}, FS2} -> run_filter(Fun, FS2, Rest, [Out | Acc], Dropped);
        {{drop, _}, FS2} -> run_filter(Fun, FS2, Rest, Acc, Dropped + 1);
        {drop, FS2} -> run_filter(Fun, FS2, Rest, Acc, Dropped + 1);
        skip -> {lists:reverse(Acc), Dropped, Msgs}
    end.

%%% Filters

-spec filter(filter_spec()) -> {sluice_box:filter(), term()}.
filter({limit, K}) -> {fun limit_filter/2, K};
filter(odd) -> {fun odd_filter/2, none};
filter({limit_odd, K}) -> {fun limit_odd_filter/2, K}.

%% Delivers at most K messages, then skips.
-spec limit_filter(integer(), non_neg_integer()) -> {{ok, integer()}, non_neg_integer()} | skip.
limit_filter(_Msg, 0) -> skip;
limit_filter(Msg, K) -> {{ok, Msg}, K - 1}.

%% Drops odd messages, delivers the others.
-spec odd_filter(integer(), none) -> {{ok | drop, integer()}, none}.
odd_filter(Msg, S) when Msg rem 2 =:= 1 -> {{drop, Msg}, S};
odd_filter(Msg, S) -> {{ok, Msg}, S}.

%% Drops odd messages (`{drop, State}'), delivers at most K even ones
%% rewritten as `{even, Msg}', then skips.
-spec limit_odd_filter(integer(), non_neg_integer()) ->
    {{ok, {even, integer()}}, non_neg_integer()} | {drop, non_neg_integer()} | skip.
limit_odd_filter(_Msg, 0) -> skip;
limit_odd_filter(Msg, K) when Msg rem 2 =:= 1 -> {drop, K};
limit_odd_filter(Msg, K) -> {{ok, {even, Msg}}, K - 1}.

%%% Commands: each acts on the box of this run, then reports the result,
%%% the mail the test process got, the helper's stray messages, info/1 and
%%% usage/1.

-spec post(integer()) -> outcome().
post(Msg) -> finish(sluice_box:post(box(), Msg)).

%% Posts `N' messages from `First' on: the list of results.
-spec burst(integer(), pos_integer()) -> outcome().
burst(First, N) ->
    Box = box(),
    finish([sluice_box:post(Box, Msg) || Msg <- lists:seq(First, First + N - 1)]).

-spec take(pos_integer()) -> outcome().
take(N) -> finish(sluice_box:take(box(), N)).

-spec resize(pos_integer()) -> outcome().
resize(Max) -> finish(sluice_box:resize(box(), Max)).

-spec notify() -> outcome().
notify() -> finish(sluice_box:notify(box())).

-spec active() -> outcome().
active() -> finish(sluice_box:active(box())).

-spec active_filter(filter_spec()) -> outcome().
active_filter(Spec) ->
    {Fun, FS} = filter(Spec),
    finish(sluice_box:active(box(), Fun, FS)).

-spec give_self(term()) -> outcome().
give_self(Data) -> finish(sluice_box:give_away(box(), self(), Data)).

%% Gives the box to a new helper: `{Result, TransferTheHelperGot | none}'.
-spec give_helper(term()) -> outcome().
give_helper(Data) ->
    Self = self(),
    Box = box(),
    H = spawn(fun() -> helper_start(Self, Box) end),
    case sluice_box:give_away(Box, H, Data) of
        ok ->
            case get(?HELPER) of
                undefined -> ok;
                Old -> _ = call_helper(Old, stop)
            end,
            put(?HELPER, H),
            Got = receive {H, got, T} -> norm_mail(T) after ?WAIT -> no_transfer end,
            finish({ok, Got});
        Error ->
            H ! {Self, stop},
            finish({Error, none})
    end.

-spec helper_take(pos_integer()) -> outcome().
helper_take(N) -> finish(call_helper(get(?HELPER), {take, N})).

-spec give_back(term()) -> outcome().
give_back(Data) ->
    H = get(?HELPER),
    Box = box(),
    case call_helper(H, {give_back, Data}) of
        ok ->
            receive
                {sluice_transfer, Box, H, _, _} = T -> finish(ok, [T])
            after ?WAIT -> finish(ok, [])
            end;
        Other ->
            finish(Other)
    end.

%% Kills the helper owner, then waits for the box to pass to its heir or to
%% be closed.
-spec kill_helper() -> outcome().
kill_helper() ->
    H = get(?HELPER),
    Ref = monitor(process, H),
    exit(H, kill),
    receive {'DOWN', Ref, process, H, _} -> ok after ?WAIT -> ok end,
    finish(ok, owner_gone(box(), H, erlang:monotonic_time(millisecond) + ?WAIT)).

-spec owner_gone(sluice_box:box(), pid(), integer()) -> [tuple()].
owner_gone(Box, H, Deadline) ->
    receive
        {sluice_transfer, Box, H, _, _} = T -> [T]
    after 0 ->
        case sluice_box:info(Box) of
            #{closed := true} -> [];
            #{} ->
                case erlang:monotonic_time(millisecond) > Deadline of
                    true -> [];
                    false -> receive after 1 -> owner_gone(Box, H, Deadline) end
                end
        end
    end.

-spec box() -> sluice_box:box().
box() -> get(?BOX).

-spec finish(term()) -> outcome().
finish(Res) -> finish(Res, []).

-spec finish(term(), [tuple()]) -> outcome().
finish(Res, Got) ->
    Box = box(),
    Mail = [norm_mail(M) || M <- Got ++ drain(Box)],
    Strays = case get(?HELPER) of
                 undefined -> [];
                 H -> case is_process_alive(H) of
                          true -> call_helper(H, strays);
                          false -> []
                      end
             end,
    #{res => Res, mail => Mail, strays => Strays, info => summary(sluice_box:info(Box)),
      usage => sluice_box:usage(Box)}.

%% The box's mail and hand-overs waiting in the mailbox, in order.
-spec drain(sluice_box:box()) -> [tuple()].
drain(Box) ->
    receive
        {mail, Box, _} = M -> [M | drain(Box)];
        {mail, Box, _, _, _} = M -> [M | drain(Box)];
        {sluice_transfer, Box, _, _, _} = M -> [M | drain(Box)]
    after 0 ->
        []
    end.

-spec norm_mail(tuple()) -> mail().
norm_mail({mail, _Box, new_data}) -> {mail, new_data};
norm_mail({mail, _Box, Msgs, Count, Dropped}) -> {mail, Msgs, Count, Dropped};
norm_mail({sluice_transfer, _Box, From, Data, Reason}) -> {transfer, norm_pid(From), Data, Reason}.

-spec norm_pid(pid()) -> owner() | {other, pid()}.
norm_pid(Pid) when Pid =:= self() -> self;
norm_pid(Pid) ->
    case get(?HELPER) of
        Pid -> helper;
        _ -> {other, Pid}
    end.

-spec summary(sluice_box:info()) -> map().
summary(#{owner := Owner} = Info) ->
    Keys = [type, posted, delivered, dropped, size, max, peak, bytes, max_bytes, closed],
    (maps:with(Keys, Info))#{owner => norm_pid(Owner)}.

%%% Helper: a process that takes the box, then on request takes from it,
%%% gives it back, closes it, reports stray messages, or stops.

-spec call_helper(pid(), term()) -> term().
call_helper(H, Req) ->
    Ref = monitor(process, H),
    H ! {self(), Req},
    receive
        {H, reply, Res} -> demonitor(Ref, [flush]), Res;
        {'DOWN', Ref, process, H, Why} -> {helper_down, Why}
    after ?WAIT ->
        demonitor(Ref, [flush]),
        helper_timeout
    end.

-spec helper_start(pid(), sluice_box:box()) -> ok.
helper_start(Parent, Box) ->
    receive
        {sluice_transfer, Box, _, _, _} = T ->
            Parent ! {self(), got, T},
            helper_loop(Parent, Box);
        {Parent, stop} ->
            ok
    end.

-spec helper_loop(pid(), sluice_box:box()) -> ok.
helper_loop(Parent, Box) ->
    receive
        {Parent, {take, N}} ->
            Parent ! {self(), reply, sluice_box:take(Box, N)},
            helper_loop(Parent, Box);
        {Parent, {give_back, Data}} ->
            Parent ! {self(), reply, sluice_box:give_away(Box, Parent, Data)},
            helper_loop(Parent, Box);
        {Parent, strays} ->
            Parent ! {self(), reply, flush()},
            helper_loop(Parent, Box);
        {Parent, close} ->
            Parent ! {self(), reply, sluice_box:close(Box)},
            ok;
        {Parent, stop} ->
            Parent ! {self(), reply, ok},
            ok
    end.

-spec flush() -> [term()].
flush() ->
    receive M -> [M | flush()] after 0 -> [] end.
