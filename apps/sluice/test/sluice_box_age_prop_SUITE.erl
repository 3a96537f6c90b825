%% Property tests of sluice_box's age and early-drop policies, with the box's
%% clock under the test's control (`clock => manual': no sleeps), run inside
%% Common Test:
%% - `max_age_model' and `codel_model': PropEr state machines of one box
%%   against a pure model, `SLUICE_BOX_AGE_PROP_RUNS' runs each (default
%%   1000);
%% - `early_drop_fraction': at a fixed occupancy, the fraction of posts
%%   random early drop refuses matches the configured probability.
%%
%% The models hold the messages (oldest first) with the time each arrived,
%% the clock, the counters per drop reason and the drops not yet reported.
%% After every command they check the result and info/1 (posted, delivered,
%% dropped per reason, size), and that posted = delivered + dropped + size:
%% A1. `max_age': a take first drops, as `expired', every message older
%%     than max_age (oldest first), then delivers as the type says; posts
%%     never expire anything; the drops are reported with the delivery;
%% A2. `codel' (a queue): each message that comes to the head of a take is
%%     dropped (`expired') or delivered as the controller says: above
%%     target for a whole interval starts dropping, then drops fall due
%%     every interval/sqrt(count), a message within target (or the last one
%%     held) stops it, a restart soon after resumes near the old rate.
%%     The model runs the same controller, in nanoseconds as the box does.
-module(sluice_box_age_prop_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("proper/include/proper.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, max_age_model/1, codel_model/1,
         early_drop_fraction/1]).
-export([command/1, precondition/2, postcondition/3, next_state/3]).
-export([post/1, burst/2, advance/1, take/1]).

-define(BOX, {?MODULE, box}).
-define(NOW, {?MODULE, now}).
-define(DEFAULT_RUNS, 1000).
-define(MS, 1000000).
-define(FIRST_MSG, (1 bsl 64)).

-type model() :: map().
-type call() :: {call, module(), atom(), [term()]}.

-spec all() -> [atom()].
all() -> [max_age_model, codel_model, early_drop_fraction].

-spec init_per_suite(list()) -> list().
init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(sluice),
    Config.

-spec end_per_suite(list()) -> ok.
end_per_suite(_Config) ->
    ok.

-spec max_age_model(list()) -> true.
max_age_model(_Config) ->
    check(?LET({Type, Max, MaxAge}, {oneof([queue, stack, keep_old]), range(1, 6), range(1, 20)},
               #{type => Type, max => Max, max_age => MaxAge, codel => none})).

-spec codel_model(list()) -> true.
codel_model(_Config) ->
    check(?LET({Max, Target, Interval}, {range(2, 20), range(1, 5), range(2, 20)},
               #{type => queue, max => Max, max_age => infinity,
                 codel => #{target => Target, interval => Interval}})).

-spec check(proper_types:type()) -> true.
check(Config) ->
    sluice_prop:check(prop(Config), "SLUICE_BOX_AGE_PROP_RUNS", ?DEFAULT_RUNS, 60).

-spec prop(proper_types:type()) -> proper:test().
prop(ConfigType) ->
    ?FORALL(Cfg, ConfigType,
    ?FORALL(Cmds, proper_statem:commands(?MODULE, initial_state(Cfg)),
            begin
                {ok, Box} = sluice_box:new(maps:merge(Cfg, #{clock => manual})),
                put(?BOX, Box),
                put(?NOW, 0),
                {History, State, Result} = proper_statem:run_commands(?MODULE, Cmds),
                ok = sluice_box:close(Box),
                sluice_prop:verdict(Cmds, {History, State, Result}, [{"config", Cfg}], true)
            end)).

%%% Model

-spec initial_state(map()) -> model().
initial_state(Cfg) ->
    Cfg#{now => 0, held => [], next => ?FIRST_MSG, posted => 0, delivered => 0,
         dropped => #{overflow => 0, resize => 0, filter => 0, closed => 0, expired => 0,
                      early => 0},
         unreported => 0,
         ctl => #{first_above => 0, drop_next => 0, count => 0, dropping => false}}.

-spec command(model()) -> proper_types:type().
command(#{next := Next}) ->
    frequency([{10, {call, ?MODULE, post, [Next]}},
               {1, {call, ?MODULE, burst, [Next, range(1, 40)]}},
               {6, {call, ?MODULE, advance, [range(0, 8)]}},
               {8, {call, ?MODULE, take, [range(1, 3)]}}]).

-spec precondition(model(), call()) -> boolean().
precondition(_S, _Call) -> true.

-spec next_state(model(), term(), call()) -> model().
next_state(S, _Res, Call) ->
    {_, S2} = step(S, Call),
    S2.

-spec postcondition(model(), call(), term()) -> boolean().
postcondition(S, Call, {Res, Info}) ->
    {ExpRes, S2} = step(S, Call),
    #{posted := P, delivered := D, dropped := Dropped, held := Held} = S2,
    Res =:= ExpRes
        andalso Info =:= #{posted => P, delivered => D, dropped => Dropped, size => length(Held)}
        andalso P =:= D + lists:sum(maps:values(Dropped)) + length(Held).

-spec step(model(), call()) -> {term(), model()}.
step(S, {call, _, post, [Msg]}) ->
    #{type := Type, max := Max, held := Held, posted := P, now := Now, next := Next} = S,
    S1 = S#{posted := P + 1, next := Next + 1},
    case length(Held) < Max of
        true -> {ok, S1#{held := Held ++ [{Msg, Now}]}};
        false when Type =:= keep_old -> {full, lost(overflow, 1, S1)};
        false -> {full, lost(overflow, 1, S1#{held := tl(Held) ++ [{Msg, Now}]})}
    end;
step(S, {call, M, burst, [First, N]}) ->
    lists:foldl(fun(Msg, {Rs, Si}) ->
                        {R, Si2} = step(Si, {call, M, post, [Msg]}),
                        {Rs ++ [R], Si2}
                end, {[], S}, lists:seq(First, First + N - 1));
step(#{now := Now} = S, {call, _, advance, [D]}) ->
    {ok, S#{now := Now + D}};
step(#{held := []} = S, {call, _, take, [_]}) ->
    {{[], 0, 0}, S};
step(S, {call, _, take, [N]}) ->
    {Out, S1} = deliver(N, [], expire(S)),
    #{delivered := D, unreported := U} = S1,
    {{Out, length(Out), U}, S1#{delivered := D + length(Out), unreported := 0}}.

%% A1: messages older than max_age go first, oldest first.
-spec expire(model()) -> model().
expire(#{max_age := infinity} = S) ->
    S;
expire(#{max_age := MaxAge, now := Now, held := Held} = S) ->
    {Old, Young} = lists:splitwith(fun({_, At}) -> Now - At > MaxAge end, Held),
    lost(expired, length(Old), S#{held := Young}).

-spec deliver(non_neg_integer(), [integer()], model()) -> {[integer()], model()}.
deliver(0, Acc, S) ->
    {lists:reverse(Acc), S};
deliver(_N, Acc, #{held := []} = S) ->
    {lists:reverse(Acc), S};
deliver(N, Acc, #{type := stack, held := Held} = S) ->
    {Msg, _} = lists:last(Held),
    deliver(N - 1, [Msg | Acc], S#{held := lists:droplast(Held)});
deliver(N, Acc, #{codel := none, held := [{Msg, _} | Rest]} = S) ->
    deliver(N - 1, [Msg | Acc], S#{held := Rest});
deliver(N, Acc, #{codel := Codel, held := [{Msg, At} | Rest], now := Now, ctl := Ctl} = S) ->
    case should_drop(Codel, Now - At, Now * ?MS, Rest =:= [], Ctl) of
        {true, Ctl2} -> deliver(N, Acc, lost(expired, 1, S#{held := Rest, ctl := Ctl2}));
        {false, Ctl2} -> deliver(N - 1, [Msg | Acc], S#{held := Rest, ctl := Ctl2})
    end.

%% A2: the controller, with the box's arithmetic (times in ns; the sojourn
%% compared in whole ms, which is what the ns comparison comes to).
-spec should_drop(map(), non_neg_integer(), non_neg_integer(), boolean(), map()) ->
    {boolean(), map()}.
should_drop(#{target := Target, interval := IntervalMs}, SojournMs, Now, Last,
            #{first_above := FA, drop_next := DN, count := Count, dropping := Dropping} = C) ->
    Interval = IntervalMs * ?MS,
    {Ok, FA2} = if
                    SojournMs =< Target orelse Last -> {false, 0};
                    FA =:= 0 -> {false, max(1, Now + Interval)};
                    Now >= FA -> {true, FA};
                    true -> {false, FA}
                end,
    C1 = C#{first_above := FA2},
    if
        Dropping andalso not Ok ->
            {false, C1#{dropping := false}};
        Dropping andalso Now >= DN ->
            Count2 = Count + 1,
            {true, C1#{count := Count2, drop_next := law(DN, Interval, Count2)}};
        Dropping ->
            {false, C1};
        not Ok ->
            {false, C1};
        true ->
            Recent = max(0, Now - DN) < 16 * Interval,
            Count2 = case Count > 2 andalso Recent of
                         true -> Count - 2;
                         false -> 1
                     end,
            {true, C1#{dropping := true, count := Count2, drop_next := law(Now, Interval, Count2)}}
    end.

-spec law(non_neg_integer(), pos_integer(), pos_integer()) -> non_neg_integer().
law(T, Interval, Count) ->
    T + trunc(Interval / math:sqrt(Count)).

-spec lost(atom(), non_neg_integer(), model()) -> model().
lost(Reason, N, #{dropped := Dropped, unreported := U} = S) ->
    S#{dropped := Dropped#{Reason := maps:get(Reason, Dropped) + N}, unreported := U + N}.

%%% Commands

-spec post(integer()) -> {term(), map()}.
post(Msg) -> finish(sluice_box:post(get(?BOX), Msg)).

-spec burst(integer(), pos_integer()) -> {term(), map()}.
burst(First, N) ->
    Box = get(?BOX),
    finish([sluice_box:post(Box, Msg) || Msg <- lists:seq(First, First + N - 1)]).

-spec advance(non_neg_integer()) -> {term(), map()}.
advance(D) ->
    Now = get(?NOW) + D,
    put(?NOW, Now),
    finish(sluice_box:set_time(get(?BOX), Now)).

-spec take(pos_integer()) -> {term(), map()}.
take(N) -> finish(sluice_box:take(get(?BOX), N)).

-spec finish(term()) -> {term(), map()}.
finish(Res) ->
    {Res, maps:with([posted, delivered, dropped, size], sluice_box:info(get(?BOX)))}.

%%% Random early drop

%% Occupancy held at 150 between red_min 100 and red_max 200 with red_prob
%% 0.5: each post is refused with probability 0.25. Over 20 000 posts the
%% standard deviation of the fraction is about 0.003; the test allows five.
-spec early_drop_fraction(list()) -> ok.
early_drop_fraction(_Config) ->
    {ok, Box} = sluice_box:new(#{max => 1000, red_min => 100, red_max => 200,
                                 red_prob => 0.5}),
    fill(Box, 150),
    {150, _} = sluice_box:usage(Box),
    Posts = 20000,
    #{dropped := #{early := Before}} = sluice_box:info(Box),
    Refused = hold(Box, Posts, 0),
    #{dropped := #{early := After}} = sluice_box:info(Box),
    Fraction = Refused / Posts,
    ct:pal("early drops at occupancy 150: ~.4f (expected 0.25)", [Fraction]),
    ?assertEqual(After - Before, Refused),
    ?assert(abs(Fraction - 0.25) < 0.015, Fraction),
    ok = sluice_box:close(Box).

%% Posts until `Size' are held (posts below red_min are never refused).
-spec fill(sluice_box:box(), non_neg_integer()) -> ok.
fill(Box, Size) ->
    case sluice_box:usage(Box) of
        {Size, _} -> ok;
        _ -> _ = sluice_box:post(Box, x), fill(Box, Size)
    end.

%% Posts `N' times, taking one message back after each stored one so the
%% occupancy stays put; returns how many posts were refused.
-spec hold(sluice_box:box(), non_neg_integer(), non_neg_integer()) -> non_neg_integer().
hold(_Box, 0, Refused) ->
    Refused;
hold(Box, N, Refused) ->
    case sluice_box:post(Box, y) of
        ok ->
            {[_], 1, _} = sluice_box:take(Box, 1),
            hold(Box, N - 1, Refused);
        full ->
            hold(Box, N - 1, Refused + 1)
    end.
