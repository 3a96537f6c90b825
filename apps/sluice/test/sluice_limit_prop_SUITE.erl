%% PropEr state-machine model of sluice_limit's rate limiter with its clock
%% under the test's control (`clock => manual'), run inside Common Test:
%% `SLUICE_LIMIT_PROP_RUNS' runs (default 1000).
%%
%% Each run makes a limiter (limit 1..20 per 100..2000 ms, burst 1..5, a
%% global limit or none, one key with an override or none) and checks three
%% keys at costs 1..3 while the clock moves. The model is the generic cell
%% rate algorithm in the limiter's own units (nanoseconds, the interval
%% rounded down): each key's theoretical arrival time `tat'; a request of
%% cost `C' at `Now' moves it to `max(tat, Now) + C * interval' when that
%% stays within `Now + interval * burst'. After every check it verifies:
%% R1. the answer: `ok' exactly when both the key's limit (or its override)
%%     and the global one allow it;
%% R1b. a cost above the key's burst (or the global one) is refused with
%%     `{exceeds_burst, Burst}', whatever the time, and counted as refused;
%% R2. `retry_after' is exact, in whole ms rounded up: the wait until the
%%     refusing limit would allow the request;
%% R3. info/1: allowed and refused counts, keys held;
%% R4. over the run, no key got more than `burst + W * limit / period' cost
%%     units in any window of `W' ms (checked on the allowed requests).
-module(sluice_limit_prop_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("proper/include/proper.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, rate_model/1]).
-export([command/1, precondition/2, postcondition/3, next_state/3]).
-export([check/2, advance/1]).

-define(LIM, {?MODULE, limiter}).
-define(NOW, {?MODULE, now}).
-define(MS, 1000000).
-define(DEFAULT_RUNS, 1000).

-spec all() -> [atom()].
all() -> [rate_model].

-spec init_per_suite(list()) -> list().
init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(sluice),
    Config.

-spec end_per_suite(list()) -> ok.
end_per_suite(_Config) ->
    ok.

-spec rate_model(list()) -> true.
rate_model(_Config) ->
    sluice_prop:check(prop_rate(), "SLUICE_LIMIT_PROP_RUNS", ?DEFAULT_RUNS, 80).

-spec prop_rate() -> proper:test().
prop_rate() ->
    ?FORALL(Cfg, config(),
    ?FORALL(Cmds, proper_statem:commands(?MODULE, initial_state(Cfg)),
            begin
                #{rate := Rate, global := Global, override := Override} = Cfg,
                {ok, L} = sluice_limit:new_rate(Rate#{global => Global, clock => manual}),
                _ = [ok = sluice_limit:set_override(L, 1, O) || O <- [Override], O =/= none],
                put(?LIM, L),
                put(?NOW, 0),
                {History, State, Result} = proper_statem:run_commands(?MODULE, Cmds),
                Window = windows_hold(State),
                sluice_prop:verdict(Cmds, {History, State, Result}, [{"config", Cfg}], Window)
            end)).

-spec config() -> proper_types:type().
config() ->
    Rate = ?LET({L, P, B}, {range(1, 20), range(100, 2000), range(1, 5)},
                #{limit => L, period => P, burst => B}),
    ?LET({R, G, O}, {Rate, oneof([none, Rate]), oneof([none, Rate])},
         #{rate => R, global => G, override => O}).

%%% Model

-spec initial_state(map()) -> map().
initial_state(Cfg) ->
    Cfg#{now => 0, tats => #{}, global_tat => 0, allowed => 0, refused => 0, log => []}.

-spec command(map()) -> proper_types:type().
command(_S) ->
    frequency([{5, {call, ?MODULE, check, [range(1, 3), range(1, 3)]}},
               {3, {call, ?MODULE, advance, [range(0, 400)]}}]).

-spec precondition(map(), tuple()) -> boolean().
precondition(_S, _Call) -> true.

-spec next_state(map(), term(), tuple()) -> map().
next_state(S, _Res, Call) ->
    {_, S2} = step(S, Call),
    S2.

-spec postcondition(map(), tuple(), term()) -> boolean().
postcondition(S, Call, {Res, Info}) ->
    {ExpRes, #{allowed := A, refused := R, tats := Tats} = S2} = step(S, Call),
    _ = S2,
    Res =:= ExpRes andalso
        maps:with([allowed, refused], Info) =:= #{allowed => A, refused => R} andalso
        maps:get(keys, Info) =:= map_size(Tats) andalso
        maps:get(overrides, Info) =:= case maps:get(override, S) of none -> 0; _ -> 1 end.

-spec step(map(), tuple()) -> {term(), map()}.
step(#{now := Now} = S, {call, _, advance, [D]}) ->
    {ok, S#{now := Now + D}};
step(S, {call, _, check, [Key, Cost]}) ->
    #{now := NowMs, tats := Tats, global_tat := GTat} = S,
    Now = NowMs * ?MS,
    {_, OwnTol} = OwnRate = rate_of(Key, S),
    case exceeds(OwnRate, Cost) orelse
         (maps:get(global, S) =/= none andalso exceeds(ns(maps:get(global, S)), Cost)) of
        true ->
            Burst = case exceeds(OwnRate, Cost) of
                        true -> OwnTol div element(1, OwnRate);
                        false -> maps:get(burst, maps:get(global, S))
                    end,
            {{error, {exceeds_burst, Burst}}, S#{refused := maps:get(refused, S) + 1}};
        false ->
            step_admit(S, Key, Cost, Now, Tats, GTat)
    end.

-spec exceeds({pos_integer(), pos_integer()}, pos_integer()) -> boolean().
exceeds({Interval, Tolerance}, Cost) -> Cost * Interval > Tolerance.

-spec step_admit(map(), pos_integer(), pos_integer(), non_neg_integer(), map(),
                 non_neg_integer()) -> {term(), map()}.
step_admit(#{now := NowMs} = S, Key, Cost, Now, Tats, GTat) ->
    Own = admit(rate_of(Key, S), maps:get(Key, Tats, 0), Now, Cost),
    Global = case maps:get(global, S) of
                 none -> {ok, GTat};
                 G -> admit(ns(G), GTat, Now, Cost)
             end,
    case {Own, Global} of
        {{ok, T}, {ok, GT}} ->
            #{allowed := A, log := Log} = S,
            {ok, S#{tats := Tats#{Key => T}, global_tat := GT, allowed := A + 1,
                    log := [{Key, NowMs, Cost} | Log]}};
        {{wait, W}, _} ->
            {{error, {retry_after, ceil_ms(W)}}, S#{refused := maps:get(refused, S) + 1}};
        {_, {wait, W}} ->
            {{error, {retry_after, ceil_ms(W)}}, S#{refused := maps:get(refused, S) + 1}}
    end.

-spec rate_of(pos_integer(), map()) -> {pos_integer(), pos_integer()}.
rate_of(1, #{override := O}) when O =/= none -> ns(O);
rate_of(_Key, #{rate := R}) -> ns(R).

%% {Interval, Tolerance} in ns, as the limiter computes them.
-spec ns(map()) -> {pos_integer(), pos_integer()}.
ns(#{limit := L, period := P, burst := B}) ->
    Interval = P * ?MS div L,
    {Interval, Interval * B}.

-spec admit({pos_integer(), pos_integer()}, non_neg_integer(), non_neg_integer(), pos_integer()) ->
    {ok, non_neg_integer()} | {wait, pos_integer()}.
admit({Interval, Tolerance}, Tat, Now, Cost) ->
    Next = max(Tat, Now) + Interval * Cost,
    case Next =< Now + Tolerance of
        true -> {ok, Next};
        false -> {wait, Next - Now - Tolerance}
    end.

-spec ceil_ms(pos_integer()) -> pos_integer().
ceil_ms(Ns) -> (Ns + ?MS - 1) div ?MS.

%% R4 over the run's allowed requests (the global limit only lowers them).
-spec windows_hold(map()) -> boolean().
windows_hold(#{log := Log} = S) ->
    lists:all(fun(Key) ->
                      #{limit := L, period := P, burst := B} =
                          case {Key, maps:get(override, S)} of
                              {1, O} when O =/= none -> O;
                              _ -> maps:get(rate, S)
                          end,
                      Reqs = lists:reverse([{T, C} || {K, T, C} <- Log, K =:= Key]),
                      lists:all(fun(W) -> within(Reqs, W, B + W * L / P) end, [100, 1000, 5000])
              end, [1, 2, 3]).

-spec within([{non_neg_integer(), pos_integer()}], pos_integer(), float()) -> boolean().
within([], _W, _Max) -> true;
within([{T0, _} | _] = Reqs, W, Max) ->
    Sum = lists:sum([C || {T, C} <- Reqs, T < T0 + W]),
    Sum =< Max + 1.0e-9 andalso within(tl(Reqs), W, Max).

%%% Commands

-spec check(pos_integer(), pos_integer()) -> {term(), map()}.
check(Key, Cost) ->
    L = get(?LIM),
    {sluice_limit:check(L, Key, Cost), sluice_limit:info(L)}.

-spec advance(non_neg_integer()) -> {term(), map()}.
advance(D) ->
    L = get(?LIM),
    Now = get(?NOW) + D,
    put(?NOW, Now),
    {sluice_limit:set_time(L, Now), sluice_limit:info(L)}.
