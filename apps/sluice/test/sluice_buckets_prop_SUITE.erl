%% PropEr state-machine model of a sluice_buckets buffer with its clock under
%% the test's control (`clock => manual': no sleeps), run inside Common
%% Test: one test case per delivery order, each a quickcheck of
%% `SLUICE_BUCKETS_PROP_RUNS' runs (default 1000).
%%
%% Each run makes one buffer (max 1..6, width 1..10 ms, max_age infinity or
%% 1..30 ms, `within' lifo or fifo, `when_full' drop_oldest or drop_new),
%% runs a command sequence against it and against a pure model, then closes
%% it. The model keeps the buckets oldest first, each as its slice
%% (arrival time div width), its newest arrival time and its messages in
%% arrival order; the clock; the counters per drop reason; the drops since
%% the last delivery; the arming. After every command it checks:
%% K1. the command's result: `ok'/`full' for a post, `{Msgs, Count,
%%     Dropped}' for a take, in the configured order (buckets newest or
%%     oldest first, messages inside a bucket newest or oldest first);
%% K2. expiry: a post or a take first drops, whole, every bucket whose
%%     newest message is more than max_age old (counted `expired', reported
%%     with the next delivery); nothing else expires messages, so `size'
%%     counts an expired bucket until then;
%% K3. a full buffer drops the oldest message held (drop_oldest) or the new
%%     one (drop_new), counted `overflow'; a shrink drops the same way,
%%     counted `resize';
%% K4. the mail of notify and active (the same shapes as sluice_box), and
%%     the wake-up sent by the first post into an armed buffer;
%% K5. info/1: posted, delivered, dropped per reason, size, max, peak,
%%     type `buckets', equal to the model's, and posted = delivered +
%%     dropped + size.
%% After close/1 the held messages are counted as dropped (`closed').
-module(sluice_buckets_prop_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("proper/include/proper.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, newest_first_model/1,
         oldest_first_model/1]).
-export([command/1, precondition/2, postcondition/3, next_state/3]).
-export([post/1, burst/2, advance/1, take/1, resize/1, notify/0, active/0]).

-define(BUF, {?MODULE, buckets}).
-define(DEFAULT_RUNS, 1000).
-define(MAX_SIZE, 60).
%% Messages are unique increasing bignums (terms on a heap).
-define(FIRST_MSG, (1 bsl 64)).

-type order() :: newest_first | oldest_first.
-type bucket() :: {Slice :: non_neg_integer(), Newest :: non_neg_integer(), [integer()]}.
-type model() :: #{order := order(), within := lifo | fifo,
                   when_full := drop_oldest | drop_new, width := pos_integer(),
                   max_age := pos_integer() | infinity, max := pos_integer(),
                   now := non_neg_integer(), buckets := [bucket()], next := pos_integer(),
                   posted := non_neg_integer(), delivered := non_neg_integer(),
                   dropped := #{atom() => non_neg_integer()},
                   unreported := non_neg_integer(), peak := non_neg_integer(),
                   arm := off | notify | active}.
-type call() :: {call, module(), atom(), [term()]}.

%%% Common Test

-spec all() -> [atom()].
all() -> [newest_first_model, oldest_first_model].

-spec init_per_suite(list()) -> list().
init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(sluice),
    Config.

-spec end_per_suite(list()) -> ok.
end_per_suite(_Config) ->
    ok.

-spec newest_first_model(list()) -> true.
newest_first_model(_Config) -> check(newest_first).

-spec oldest_first_model(list()) -> true.
oldest_first_model(_Config) -> check(oldest_first).

-spec check(order()) -> true.
check(Order) ->
    sluice_prop:check(prop_buckets(Order), "SLUICE_BUCKETS_PROP_RUNS", ?DEFAULT_RUNS, ?MAX_SIZE).

-spec prop_buckets(order()) -> proper:test().
prop_buckets(Order) ->
    ?FORALL(Cfg, config(Order),
    ?FORALL(Cmds, proper_statem:commands(?MODULE, initial_state(Cfg)),
            begin
                #{max := Max, width := Width, max_age := MaxAge, within := Within,
                  when_full := WhenFull} = Cfg,
                {ok, Buf} = sluice_buckets:new(#{max => Max, width => Width, max_age => MaxAge,
                                                 order => Order, within => Within,
                                                 when_full => WhenFull, clock => manual}),
                put(?BUF, Buf),
                put({?MODULE, now}, 0),
                {History, State, Result} = proper_statem:run_commands(?MODULE, Cmds),
                ok = sluice_buckets:close(Buf),
                _ = drain(Buf),
                Closed = summary(sluice_buckets:info(Buf)),
                ExpClosed = expected_info(close_model(State)),
                _ = erase(?BUF),
                sluice_prop:verdict(Cmds, {History, State, Result},
                                    [{"config", Cfg}, {"closed", Closed}, {"expected", ExpClosed}],
                                    Closed =:= ExpClosed)
            end)).

-spec config(order()) -> proper_types:type().
config(Order) ->
    ?LET({Max, Width, MaxAge, Within, WhenFull},
         {range(1, 6), range(1, 10), oneof([infinity, range(1, 30)]), oneof([lifo, fifo]),
          oneof([drop_oldest, drop_new])},
         #{order => Order, max => Max, width => Width, max_age => MaxAge, within => Within,
           when_full => WhenFull}).

%%% Model

-spec initial_state(map()) -> model().
initial_state(Cfg) ->
    Cfg#{now => 0, buckets => [], next => ?FIRST_MSG, posted => 0, delivered => 0,
         dropped => #{overflow => 0, resize => 0, filter => 0, closed => 0, expired => 0,
                      early => 0},
         unreported => 0, peak => 0, arm => off}.

-spec command(model()) -> proper_types:type().
command(#{next := Next}) ->
    frequency([{10, {call, ?MODULE, post, [Next]}},
               {1, {call, ?MODULE, burst, [Next, range(1, 150)]}},
               {5, {call, ?MODULE, advance, [range(0, 12)]}},
               {4, {call, ?MODULE, take, [range(1, 6)]}},
               {1, {call, ?MODULE, resize, [range(1, 6)]}},
               {1, {call, ?MODULE, notify, []}},
               {1, {call, ?MODULE, active, []}}]).

-spec precondition(model(), call()) -> boolean().
precondition(_S, _Call) -> true.

-spec next_state(model(), term(), call()) -> model().
next_state(S, _Res, Call) ->
    {_, _, S2} = step(S, Call),
    S2.

-spec postcondition(model(), call(), term()) -> boolean().
postcondition(S, Call, #{res := Res, mail := Mail, info := Info}) ->
    {ExpRes, ExpMail, S2} = step(S, Call),
    Res =:= ExpRes andalso Mail =:= ExpMail andalso Info =:= expected_info(S2)
        andalso reconciles(Info);
postcondition(_S, _Call, _Other) ->
    false.

-spec reconciles(map()) -> boolean().
reconciles(#{posted := P, delivered := D, dropped := Dropped, size := Size}) ->
    P =:= D + lists:sum(maps:values(Dropped)) + Size.

-spec expected_info(model()) -> map().
expected_info(#{posted := P, delivered := D, dropped := Dropped, max := Max,
                peak := Peak} = S) ->
    #{type => buckets, posted => P, delivered => D, dropped => Dropped, size => held(S),
      max => Max, peak => Peak}.

-spec held(model()) -> non_neg_integer().
held(#{buckets := Buckets}) ->
    lists:sum([length(Msgs) || {_, _, Msgs} <- Buckets]).

%% One command on the model: the expected result, mail, and next state.
-spec step(model(), call()) -> {term(), list(), model()}.
step(S, {call, _, post, [Msg]}) ->
    S1 = expire(S),
    #{max := Max, when_full := WhenFull, posted := P} = S1,
    case held(S1) < Max of
        true ->
            store(Msg, ok, S1#{posted := P + 1});
        false when WhenFull =:= drop_new ->
            {full, [], bump(lost(overflow, 1, S1#{posted := P + 1}))};
        false ->
            store(Msg, full, lost(overflow, 1, drop_oldest(S1#{posted := P + 1})))
    end;
step(S, {call, M, burst, [First, N]}) ->
    lists:foldl(fun(Msg, {Rs, Ms, Si}) ->
                        {R, Mail, Si2} = step(Si, {call, M, post, [Msg]}),
                        {Rs ++ [R], Ms ++ Mail, Si2}
                end, {[], [], S}, lists:seq(First, First + N - 1));
step(#{now := Now} = S, {call, _, advance, [D]}) ->
    {ok, [], S#{now := Now + D}};
step(S, {call, _, take, [N]}) ->
    case held(S) of
        0 ->
            {{[], 0, 0}, [], S};
        _ ->
            S1 = expire(S),
            {Out, S2} = deliver(N, S1),
            {Res, S3} = delivered(Out, S2),
            {Res, [], S3}
    end;
step(#{max := _, when_full := WhenFull} = S, {call, _, resize, [Max]}) ->
    Excess = max(0, held(S) - Max),
    Drop = case WhenFull of
               drop_oldest -> fun drop_oldest/1;
               drop_new -> fun drop_newest/1
           end,
    S1 = lists:foldl(fun(_, Si) -> Drop(Si) end, S, lists:seq(1, Excess)),
    {ok, [], lost(resize, Excess, S1#{max := Max})};
step(S, {call, _, notify, []}) ->
    case held(S) of
        0 -> {ok, [], S#{arm := notify}};
        _ -> {ok, [{mail, new_data}], S#{arm := off}}
    end;
step(S, {call, _, active, []}) ->
    case held(S) of
        0 ->
            {ok, [], S#{arm := active}};
        _ ->
            {Mail, S1} = deliver_all(expire(S#{arm := off})),
            {ok, [Mail], S1}
    end.

-spec bump(model()) -> model().
bump(#{next := Next} = S) -> S#{next := Next + 1}.

%% Stores `Msg' at the current time, then wakes an armed owner.
-spec store(integer(), ok | full, model()) -> {ok | full, list(), model()}.
store(Msg, Res, #{now := Now, width := Width, buckets := Buckets, peak := Peak} = S) ->
    Slice = Now div Width,
    Buckets1 = case lists:reverse(Buckets) of
                   [{Last, Newest, Msgs} | Older] when Last >= Slice ->
                       lists:reverse([{Last, max(Newest, Now), Msgs ++ [Msg]} | Older]);
                   _ ->
                       Buckets ++ [{Slice, Now, [Msg]}]
               end,
    S1 = S#{buckets := Buckets1},
    S2 = S1#{peak := max(Peak, held(S1))},
    {Mail, S3} = wake(S2),
    {Res, Mail, bump(S3)}.

-spec wake(model()) -> {list(), model()}.
wake(#{arm := off} = S) ->
    {[], S};
wake(#{arm := notify} = S) ->
    {[{mail, new_data}], S#{arm := off}};
wake(#{arm := active} = S) ->
    {Mail, S1} = deliver_all(S#{arm := off}),
    {[Mail], S1}.

-spec deliver_all(model()) -> {tuple(), model()}.
deliver_all(S) ->
    {Out, S1} = deliver(held(S), S),
    {{Msgs, Count, D}, S2} = delivered(Out, S1),
    {{mail, Msgs, Count, D}, S2}.

%% Drops, whole, the buckets too old now (K2).
-spec expire(model()) -> model().
expire(#{max_age := infinity} = S) ->
    S;
expire(#{max_age := MaxAge, now := Now, buckets := Buckets} = S) ->
    {Old, Kept} = lists:splitwith(fun({_, Newest, _}) -> Now - Newest > MaxAge end, Buckets),
    lost(expired, lists:sum([length(M) || {_, _, M} <- Old]), S#{buckets := Kept}).

%% Takes up to `N' messages in delivery order.
-spec deliver(non_neg_integer(), model()) -> {[integer()], model()}.
deliver(N, #{order := Order, within := Within, buckets := Buckets} = S) ->
    InOrder = case Order of
                  newest_first -> lists:reverse(Buckets);
                  oldest_first -> Buckets
              end,
    {Out, Left} = take_from(N, Within, InOrder, []),
    Kept = case Order of
               newest_first -> lists:reverse(Left);
               oldest_first -> Left
           end,
    {Out, S#{buckets := Kept}}.

-spec take_from(non_neg_integer(), lifo | fifo, [bucket()], [integer()]) ->
    {[integer()], [bucket()]}.
take_from(0, _Within, Buckets, Acc) ->
    {lists:reverse(Acc), Buckets};
take_from(_N, _Within, [], Acc) ->
    {lists:reverse(Acc), []};
take_from(N, Within, [{Slice, Newest, Msgs} | Rest], Acc) ->
    Ordered = case Within of
                  lifo -> lists:reverse(Msgs);
                  fifo -> Msgs
              end,
    K = min(N, length(Ordered)),
    {Got, Left} = lists:split(K, Ordered),
    Acc1 = lists:reverse(Got, Acc),
    case Left of
        [] ->
            take_from(N - K, Within, Rest, Acc1);
        _ ->
            Back = case Within of
                       lifo -> lists:reverse(Left);
                       fifo -> Left
                   end,
            {lists:reverse(Acc1), [{Slice, Newest, Back} | Rest]}
    end.

-spec delivered([integer()], model()) -> {{[integer()], non_neg_integer(), non_neg_integer()},
                                          model()}.
delivered(Out, #{delivered := D, unreported := U} = S) ->
    Count = length(Out),
    {{Out, Count, U}, S#{delivered := D + Count, unreported := 0}}.

%% Removes the oldest message held (the first of the oldest bucket).
-spec drop_oldest(model()) -> model().
drop_oldest(#{buckets := [{_, _, [_]} | Rest]} = S) ->
    S#{buckets := Rest};
drop_oldest(#{buckets := [{Slice, Newest, [_ | Msgs]} | Rest]} = S) ->
    S#{buckets := [{Slice, Newest, Msgs} | Rest]};
drop_oldest(S) ->
    S.

%% Removes the newest message held (the last of the newest bucket).
-spec drop_newest(model()) -> model().
drop_newest(#{buckets := []} = S) ->
    S;
drop_newest(#{buckets := Buckets} = S) ->
    case lists:reverse(Buckets) of
        [{_, _, [_]} | Older] ->
            S#{buckets := lists:reverse(Older)};
        [{Slice, Newest, Msgs} | Older] ->
            S#{buckets := lists:reverse([{Slice, Newest, lists:droplast(Msgs)} | Older])}
    end.

%% Counts `N' messages dropped for `Reason', reported with the next delivery
%% (all but filter and closed).
-spec lost(atom(), non_neg_integer(), model()) -> model().
lost(Reason, N, #{dropped := Dropped, unreported := U} = S) ->
    S#{dropped := Dropped#{Reason := maps:get(Reason, Dropped) + N}, unreported := U + N}.

-spec close_model(model()) -> model().
close_model(#{dropped := Dropped} = S) ->
    S#{buckets := [], arm := off,
       dropped := Dropped#{closed := maps:get(closed, Dropped) + held(S)}}.

%%% Commands

-spec post(integer()) -> map().
post(Msg) -> finish(sluice_buckets:post(buf(), Msg)).

-spec burst(integer(), pos_integer()) -> map().
burst(First, N) ->
    Buf = buf(),
    finish([sluice_buckets:post(Buf, Msg) || Msg <- lists:seq(First, First + N - 1)]).

%% Moves the manual clock `D' ms on.
-spec advance(non_neg_integer()) -> map().
advance(D) ->
    Buf = buf(),
    Now = case get({?MODULE, now}) of undefined -> 0; T -> T end,
    put({?MODULE, now}, Now + D),
    finish(sluice_buckets:set_time(Buf, Now + D)).

-spec take(pos_integer()) -> map().
take(N) -> finish(sluice_buckets:take(buf(), N)).

-spec resize(pos_integer()) -> map().
resize(Max) -> finish(sluice_buckets:resize(buf(), Max)).

-spec notify() -> map().
notify() -> finish(sluice_buckets:notify(buf())).

-spec active() -> map().
active() -> finish(sluice_buckets:active(buf())).

-spec buf() -> sluice_buckets:buckets().
buf() -> get(?BUF).

-spec finish(term()) -> map().
finish(Res) ->
    Buf = buf(),
    Mail = [norm(M) || M <- drain(Buf)],
    #{res => Res, mail => Mail, info => summary(sluice_buckets:info(Buf))}.

-spec drain(sluice_buckets:buckets()) -> [tuple()].
drain(Buf) ->
    receive
        {mail, Buf, _} = M -> [M | drain(Buf)];
        {mail, Buf, _, _, _} = M -> [M | drain(Buf)]
    after 0 ->
        []
    end.

-spec norm(tuple()) -> tuple().
norm({mail, _Buf, new_data}) -> {mail, new_data};
norm({mail, _Buf, Msgs, Count, Dropped}) -> {mail, Msgs, Count, Dropped}.

-spec summary(sluice_box:info()) -> map().
summary(Info) ->
    maps:with([type, posted, delivered, dropped, size, max, peak], Info).
