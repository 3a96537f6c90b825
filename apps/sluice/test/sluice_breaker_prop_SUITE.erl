%% PropEr models of sluice_breaker, run inside Common Test, with the
%% breaker's clock under the test's control (`clock => manual'):
%% `breaker_model': `SLUICE_BREAKER_PROP_RUNS' sequential runs (default
%% 2000); `breaker_parallel': `SLUICE_BREAKER_PAR_RUNS' parallel runs
%% (default 200) of 2 to 8 processes asking and melting at once.
%%
%% The sequential model keeps the breaker as the library does, in
%% nanoseconds: its state (closed, open until a time, half-open, disabled),
%% the melt times in the standard window, the failure-rate slices, the
%% current reset delay, the probes granted and succeeded, and every counter.
%% It checks, after each command, the answer and info/1. The requirements:
%% R01 a closed breaker answers `ok' to ask;
%% R02 a melt is counted whatever the state;
%% R03 standard: the melt that makes more than MaxR melts within MaxT ms
%%     blows the breaker; melts older than MaxT ms do not count;
%% R04 a blown breaker answers `blown' until its reset delay is over;
%% R05 after the delay, the next asks are probes (answered `ok'), at most
%%     `probes' of them; others are `blown';
%% R06 a melt while half-open reopens it for the delay times the backoff,
%%     capped at max_reset;
%% R07 `probes' successes (run/3 that went well) close a half-open
%%     breaker, and the delay goes back to its start;
%% R08 every probe out and no melt for a delay: the next ask closes it;
%% R09 with `reset => manual' a blown breaker stays blown until reset/1;
%% R10 reset/1 heals at once and forgets melts;
%% R11 circuit_disable/1 blows every ask until circuit_enable/1, which
%%     heals; melts meanwhile are counted but change nothing;
%% R12 fault injection with rate 1.0 blows every ask of a closed breaker
%%     (counted as injected), with 0.0 none;
%% R13 failure rate: it blows when, over the window (ten slices), at least
%%     `min_calls' asks were made and melts / asks reached the ratio;
%% R14 run/3 asks first: `blown' without running the fun when blown;
%%     `{error, _}' results melt, other results succeed;
%% R15 counters: asks = ok + blown, trips and probes as the model counts;
%% R16 remove/1 then ask: `{error, not_found}'.
%% The parallel model: a standard breaker (MaxR 0..3, manual reset) asked
%% and melted by several processes at once; PropEr checks that some
%% interleaving explains every answer (blown exactly after the MaxR+1-th
%% melt in that order), and afterwards asks = ok + blown and melts = the
%% melts made.
-module(sluice_breaker_prop_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("proper/include/proper.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, breaker_model/1, breaker_parallel/1]).
-export([command/1, precondition/2, postcondition/3, next_state/3]).
-export([ask/0, melt/0, run_ok/0, run_error/0, advance/1, reset/0, disable/0, enable/0,
         remove_and_ask/0]).

-define(NAME, {?MODULE, breaker}).
-define(NOW, {?MODULE, now}).
-define(MS, 1000000).

-spec all() -> [atom()].
all() -> [breaker_model, breaker_parallel].

-spec init_per_suite(list()) -> list().
init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(sluice),
    Config.

-spec end_per_suite(list()) -> ok.
end_per_suite(_Config) ->
    ok.

%%% Sequential

-spec breaker_model(list()) -> true.
breaker_model(_Config) ->
    sluice_prop:check(prop_breaker(), "SLUICE_BREAKER_PROP_RUNS", 2000, 50).

prop_breaker() ->
    ?FORALL(Cfg, config(),
    ?FORALL(Cmds, proper_statem:commands(?MODULE, initial_state(Cfg)),
            begin
                ok = sluice_breaker:install(?NAME, options(Cfg)),
                put(?NOW, 0),
                {History, State, Result} = proper_statem:run_commands(?MODULE, Cmds),
                _ = sluice_breaker:remove(?NAME),
                sluice_prop:verdict(Cmds, {History, State, Result}, [{"config", Cfg}], true)
            end)).

config() ->
    Strategy = oneof([?LET({R, T}, {range(0, 3), range(10, 100)}, {standard, R, T}),
                      ?LET({Rate, R, T}, {elements([0.0, 1.0]), range(0, 3), range(10, 100)},
                           {fault_injection, Rate, R, T}),
                      ?LET({Ratio, Min, W}, {elements([0.25, 0.5, 1.0]), range(1, 5),
                                             range(20, 200)},
                           {failure_rate, Ratio, Min, W})]),
    ?LET({S, Reset, Probes, Backoff, MaxFactor},
         {Strategy, oneof([manual, range(5, 60)]), range(1, 3), elements([1.0, 1.5, 2.0, 3.0]),
          range(1, 4)},
         #{strategy => S, reset => Reset, probes => Probes, backoff => Backoff,
           max_reset => case Reset of manual -> 1; _ -> Reset * MaxFactor end}).

options(Cfg) ->
    Cfg#{clock => manual}.

%%% Model (times in ns, as the breaker's)

initial_state(#{reset := Reset} = Cfg) ->
    Cfg#{now => 0, state => closed, melts => [], slices => [], delay => base(Reset),
         half_since => 0, granted => 0, succeeded => 0,
         c => #{asks => 0, ok => 0, blown => 0, injected => 0, melts => 0, trips => 0,
                probes => 0},
         removed => false}.

base(manual) -> 0;
base(Ms) -> Ms * ?MS.

command(#{removed := true}) ->
    {call, ?MODULE, advance, [0]};
command(S) ->
    %% Sometimes to the very ms a blown breaker's delay ends, or just before.
    Deadline = case S of
                   #{state := {open, Until}, now := Now} when Until < 1 bsl 60 ->
                       Ms = (Until + ?MS - 1) div ?MS,
                       [{3, {call, ?MODULE, advance, [max(0, Ms - Now - D)]}} || D <- [0, 1]];
                   _ ->
                       []
               end,
    frequency(Deadline ++
              [{6, {call, ?MODULE, ask, []}},
               {5, {call, ?MODULE, melt, []}},
               {2, {call, ?MODULE, run_ok, []}},
               {2, {call, ?MODULE, run_error, []}},
               {5, {call, ?MODULE, advance, [range(0, 80)]}},
               {1, {call, ?MODULE, reset, []}},
               {1, {call, ?MODULE, disable, []}},
               {1, {call, ?MODULE, enable, []}},
               {1, {call, ?MODULE, remove_and_ask, []}}]).

precondition(#{removed := true}, {call, _, F, _}) -> F =:= advance;
precondition(_S, _Call) -> true.

next_state(S, _Res, Call) ->
    {_, S2} = step(S, Call),
    S2.

postcondition(S, Call, {Res, Info}) ->
    {ExpRes, S2} = step(S, Call),
    Res =:= ExpRes andalso Info =:= expected_info(S2).

expected_info(#{removed := true}) ->
    {error, not_found};
expected_info(#{state := State, c := C}) ->
    C#{state => case State of {open, _} -> open; half -> half_open; _ -> State end}.

count(Key, #{c := C} = S) -> S#{c := C#{Key := maps:get(Key, C) + 1}}.

step(#{now := Now} = S, {call, _, advance, [D]}) ->
    {ok, S#{now := Now + D}};
step(S, {call, _, remove_and_ask, []}) ->
    {{error, not_found}, S#{removed := true}};
step(S, {call, _, ask, []}) ->
    {Answer, S2} = ask_model(S),
    {case Answer of blown -> blown; _ -> ok end, S2};
step(S, {call, _, melt, []}) ->
    {ok, melt_model(S)};
step(S, {call, _, F, []}) when F =:= run_ok; F =:= run_error ->
    case ask_model(S) of
        {blown, S2} -> {blown, S2};
        {_, S2} when F =:= run_ok -> {fine, succeed_model(S2)};
        {_, S2} -> {{error, failed}, melt_model(S2)}
    end;
step(S, {call, _, reset, []}) ->
    {ok, close(S)};
step(S, {call, _, disable, []}) ->
    {ok, S#{state := disabled}};
step(#{state := disabled} = S, {call, _, enable, []}) ->
    {ok, close(S)};
step(S, {call, _, enable, []}) ->
    {ok, S}.

%% The answer of an ask (ok, probe or blown) and the state after it.
ask_model(S0) ->
    S = count(asks, S0),
    {Answer, S2} = decide(S),
    case Answer of
        blown -> {blown, count(blown, S2)};
        _ -> {Answer, count(ok, S2)}
    end.

decide(#{state := closed, strategy := {fault_injection, Rate, _, _}} = S) ->
    case Rate >= 1.0 of
        true -> {blown, count(injected, S)};
        false -> {ok, S}
    end;
decide(#{state := closed, strategy := {failure_rate, _, _, W}} = S) ->
    {ok, bump_slice(S, W, 1, 0)};
decide(#{state := closed} = S) ->
    {ok, S};
decide(#{state := disabled} = S) ->
    {blown, S};
decide(#{state := {open, Until}, now := Now} = S) when Now * ?MS < Until ->
    {blown, S};
decide(#{state := {open, _}, now := Now} = S) ->
    probe(S#{state := half, granted := 0, succeeded := 0, half_since := Now * ?MS});
decide(#{state := half} = S) ->
    probe(S).

probe(#{granted := G, probes := P, c := C} = S) when G < P ->
    {probe, S#{granted := G + 1, c := C#{probes := maps:get(probes, C) + 1}}};
probe(#{half_since := Since, delay := D, now := Now} = S) when Now * ?MS >= Since + D ->
    {ok, close(S)};
probe(S) ->
    {blown, S}.

melt_model(S0) ->
    S = count(melts, S0),
    #{state := State, now := NowMs} = S,
    Now = NowMs * ?MS,
    case State of
        closed ->
            {Open, S2} = closed_melt(S, Now),
            case Open of
                true -> trip(S2#{delay := base(maps:get(reset, S2))}, Now);
                false -> S2
            end;
        half ->
            #{delay := D, backoff := B, max_reset := MaxMs} = S,
            Grown = trunc(D * max(B, 1.0)),
            trip(S#{delay := min(Grown, max(MaxMs * ?MS, D))}, Now);
        _ ->
            S
    end.

closed_melt(#{strategy := {failure_rate, Ratio, Min, W}} = S, _Now) ->
    S2 = bump_slice(S, W, 0, 1),
    {Asks, Melts} = lists:foldl(fun({_, A, M}, {SA, SM}) -> {SA + A, SM + M} end, {0, 0},
                                maps:get(slices, S2)),
    {Asks >= max(Min, 1) andalso Melts >= Ratio * Asks, S2};
closed_melt(#{strategy := Strategy, melts := Melts} = S, Now) ->
    {MaxR, MaxT} = case Strategy of
                       {standard, R, T} -> {R, T * ?MS};
                       {fault_injection, _, R, T} -> {R, T * ?MS}
                   end,
    Kept0 = [M || M <- Melts ++ [Now], Now - M < MaxT],
    Kept = lists:nthtail(max(0, length(Kept0) - (MaxR + 1)), Kept0),
    {length(Kept) > MaxR, S#{melts := Kept}}.

%% The failure-rate slice of now, with `Asks' and `Melts' added.
bump_slice(#{slices := Slices, now := NowMs} = S, WMs, Asks, Melts) ->
    Now = NowMs * ?MS,
    W = WMs * ?MS,
    Width = max(W div 10, 1),
    Start = Now - Now rem Width,
    Live = [Sl || {T, _, _} = Sl <- Slices, Now - T < max(W, 1)],
    Slices2 = case lists:reverse(Live) of
                  [{Start, A, M} | Older] -> lists:reverse([{Start, A + Asks, M + Melts} | Older]);
                  _ -> Live ++ [{Start, Asks, Melts}]
              end,
    S#{slices := Slices2}.

trip(#{reset := Reset, delay := D, c := C} = S, Now) ->
    Until = case Reset of
                manual -> (1 bsl 62) - 1;
                _ -> min(Now + D, (1 bsl 61) - 1)
            end,
    S#{state := {open, Until}, melts := [], slices := [],
       c := C#{trips := maps:get(trips, C) + 1}}.

succeed_model(#{state := half, succeeded := N, probes := P} = S) when N + 1 >= P ->
    close(S#{succeeded := N + 1});
succeed_model(#{state := half, succeeded := N} = S) ->
    S#{succeeded := N + 1};
succeed_model(S) ->
    S.

close(#{reset := Reset} = S) ->
    S#{state := closed, melts := [], slices := [], delay := base(Reset)}.

%%% Commands

finish(Res) ->
    {Res, sluice_breaker:info(?NAME)}.

ask() -> finish(sluice_breaker:ask(?NAME, sync)).
melt() -> finish(sluice_breaker:melt(?NAME)).
run_ok() -> finish(sluice_breaker:run(?NAME, fun() -> fine end, sync)).
run_error() -> finish(sluice_breaker:run(?NAME, fun() -> {error, failed} end, sync)).
reset() -> finish(sluice_breaker:reset(?NAME)).
disable() -> finish(sluice_breaker:circuit_disable(?NAME)).
enable() -> finish(sluice_breaker:circuit_enable(?NAME)).

advance(D) ->
    Now = get(?NOW) + D,
    put(?NOW, Now),
    case sluice_breaker:set_time(?NAME, Now) of
        {error, not_found} -> {ok, {error, not_found}};
        Res -> finish(Res)
    end.

remove_and_ask() ->
    ok = sluice_breaker:remove(?NAME),
    {sluice_breaker:ask(?NAME, sync), {error, not_found}}.

%%% Parallel

-spec breaker_parallel(list()) -> true.
breaker_parallel(_Config) ->
    sluice_prop:check(prop_parallel(), "SLUICE_BREAKER_PAR_RUNS", 200, 12).

prop_parallel() ->
    ?FORALL(MaxR, range(0, 3),
    ?FORALL(Cmds, proper_statem:parallel_commands(sluice_breaker_par_model,
                                                 sluice_breaker_par_model:initial_state(MaxR)),
            begin
                ok = sluice_breaker:install(sluice_breaker_par_model:name(),
                                            #{strategy => {standard, MaxR, 60000},
                                              reset => manual}),
                {Seq, Par, Result} = proper_statem:run_parallel_commands(
                                       sluice_breaker_par_model, Cmds),
                Info = sluice_breaker:info(sluice_breaker_par_model:name()),
                _ = sluice_breaker:remove(sluice_breaker_par_model:name()),
                Made = length([x || {set, _, {call, _, melt, _}} <- commands_of(Cmds)]),
                #{asks := A, ok := O, blown := B, melts := M} = Info,
                ?WHENFAIL(ct:pal("max_r ~p~nseq ~p~npar ~p~nresult ~p~ninfo ~p",
                                 [MaxR, Seq, Par, Result, Info]),
                          Result =:= ok andalso A =:= O + B andalso M =:= Made)
            end)).

commands_of({Seq, Pars}) ->
    Seq ++ lists:append(Pars).
