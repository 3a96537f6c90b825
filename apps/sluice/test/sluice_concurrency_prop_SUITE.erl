%% PropEr state-machine model of a sluice_limit concurrency limit, run
%% inside Common Test: `SLUICE_CONCURRENCY_PROP_RUNS' runs (default 1000).
%%
%% Each run makes a limit of max 1..5 (room for 8) and runs commands that
%% acquire and release places, by the test process or by helper processes
%% the model may kill, and resize the limit (with no place held). After
%% every command it checks:
%% C1. an acquire succeeds exactly when fewer than `max' places are held,
%%     else `{error, limit}' at once;
%% C2. a release of a token held is `ok', of a token released already
%%     `{error, not_held}';
%% C3. a killed holder's places come back (counted as deaths) without any
%%     call: the command waits until info/1 shows them back;
%% C4. info/1: acquired, refused, deaths, held, peak and max equal the
%%     model's; `run/2' releases also when its fun raises.
-module(sluice_concurrency_prop_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("proper/include/proper.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, concurrency_model/1,
         run_releases_on_raise/1]).
-export([command/1, precondition/2, postcondition/3, next_state/3]).
-export([acquire/0, release_own/0, release_stale/0, helper_acquire/0, kill_helpers/0,
         resize/1]).

-define(LIMIT, {?MODULE, limit}).
-define(OWN, {?MODULE, own}).
-define(BACK, {?MODULE, back}).
-define(HELPERS, {?MODULE, helpers}).
-define(DEFAULT_RUNS, 1000).

-spec all() -> [atom()].
all() -> [concurrency_model, run_releases_on_raise].

-spec init_per_suite(list()) -> list().
init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(sluice),
    Config.

-spec end_per_suite(list()) -> ok.
end_per_suite(_Config) ->
    ok.

-spec run_releases_on_raise(list()) -> ok.
run_releases_on_raise(_Config) ->
    {ok, L} = sluice_limit:new_concurrency(#{max => 1}),
    ?assertError(boom, sluice_limit:run(L, fun() -> error(boom) end)),
    ?assertEqual(done, sluice_limit:run(L, fun() -> done end)),
    {ok, T} = sluice_limit:acquire(L),
    ?assertEqual({error, limit}, sluice_limit:run(L, fun() -> done end)),
    ok = sluice_limit:release(T),
    ?assertMatch(#{acquired := 3, refused := 1, held := 0}, sluice_limit:info(L)).

-spec concurrency_model(list()) -> true.
concurrency_model(_Config) ->
    sluice_prop:check(prop(), "SLUICE_CONCURRENCY_PROP_RUNS", ?DEFAULT_RUNS, 40).

-spec prop() -> proper:test().
prop() ->
    ?FORALL(Max, range(1, 5),
    ?FORALL(Cmds, proper_statem:commands(?MODULE, initial_state(Max)),
            begin
                {ok, L} = sluice_limit:new_concurrency(#{max => Max, max_holders => 8}),
                put(?LIMIT, L),
                put(?OWN, []),
                put(?BACK, []),
                put(?HELPERS, []),
                {History, State, Result} = proper_statem:run_commands(?MODULE, Cmds),
                _ = kill_helpers(),
                sluice_prop:verdict(Cmds, {History, State, Result}, [], true)
            end)).

%%% Model

-spec initial_state(pos_integer()) -> map().
initial_state(Max) ->
    #{max => Max, own => 0, back => 0, helpers => 0, acquired => 0, refused => 0,
      deaths => 0, peak => 0}.

-spec command(map()) -> proper_types:type().
command(_S) ->
    frequency([{6, {call, ?MODULE, acquire, []}},
               {4, {call, ?MODULE, release_own, []}},
               {1, {call, ?MODULE, release_stale, []}},
               {3, {call, ?MODULE, helper_acquire, []}},
               {1, {call, ?MODULE, kill_helpers, []}},
               {1, {call, ?MODULE, resize, [range(1, 8)]}}]).

-spec precondition(map(), tuple()) -> boolean().
precondition(#{own := Own}, {call, _, release_own, []}) -> Own > 0;
precondition(#{back := Back}, {call, _, release_stale, []}) -> Back > 0;
precondition(#{own := Own, helpers := H}, {call, _, resize, [_]}) -> Own + H =:= 0;
precondition(_S, _Call) -> true.

-spec next_state(map(), term(), tuple()) -> map().
next_state(S, _Res, Call) ->
    {_, S2} = step(S, Call),
    S2.

-spec postcondition(map(), tuple(), term()) -> boolean().
postcondition(S, Call, {Res, Info}) ->
    {ExpRes, #{max := Max, own := Own, helpers := H, acquired := A, refused := R,
               deaths := D, peak := P}} = step(S, Call),
    Res =:= ExpRes andalso
        Info =:= #{acquired => A, refused => R, deaths => D, held => Own + H, peak => P,
                   max => Max}.

-spec step(map(), tuple()) -> {term(), map()}.
step(S, {call, _, F, []}) when F =:= acquire; F =:= helper_acquire ->
    #{max := Max, own := Own, helpers := H, acquired := A, peak := P} = S,
    Key = case F of acquire -> own; helper_acquire -> helpers end,
    case Own + H < Max of
        true -> {ok, S#{Key := maps:get(Key, S) + 1, acquired := A + 1,
                        peak := max(P, Own + H + 1)}};
        false -> {{error, limit}, S#{refused := maps:get(refused, S) + 1}}
    end;
step(#{own := Own, back := Back} = S, {call, _, release_own, []}) ->
    {ok, S#{own := Own - 1, back := Back + 1}};
step(S, {call, _, release_stale, []}) ->
    {{error, not_held}, S};
step(#{helpers := H, deaths := D} = S, {call, _, kill_helpers, []}) ->
    {ok, S#{helpers := 0, deaths := D + H}};
step(S, {call, _, resize, [Max]}) ->
    {ok, S#{max := Max}}.

%%% Commands

-spec acquire() -> {term(), map()}.
acquire() ->
    case sluice_limit:acquire(get(?LIMIT)) of
        {ok, T} -> put(?OWN, [T | get(?OWN)]), finish(ok);
        Refused -> finish(Refused)
    end.

-spec release_own() -> {term(), map()}.
release_own() ->
    [T | Rest] = get(?OWN),
    put(?OWN, Rest),
    put(?BACK, [T | get(?BACK)]),
    finish(sluice_limit:release(T)).

-spec release_stale() -> {term(), map()}.
release_stale() ->
    [T | _] = get(?BACK),
    finish(sluice_limit:release(T)).

-spec helper_acquire() -> {term(), map()}.
helper_acquire() ->
    L = get(?LIMIT),
    Self = self(),
    H = spawn(fun() -> Self ! {got, self(), sluice_limit:acquire(L)}, receive stop -> ok end end),
    receive
        {got, H, {ok, _}} -> put(?HELPERS, [H | get(?HELPERS)]), finish(ok);
        {got, H, Refused} -> H ! stop, finish(Refused)
    end.

-spec kill_helpers() -> {term(), map()}.
kill_helpers() ->
    L = get(?LIMIT),
    Hs = get(?HELPERS),
    #{held := Held} = sluice_limit:info(L),
    Mons = [monitor(process, H) || H <- Hs],
    _ = [exit(H, kill) || H <- Hs],
    _ = [receive {'DOWN', M, process, _, _} -> ok end || M <- Mons],
    put(?HELPERS, []),
    back(L, Held - length(Hs), 400),
    finish(ok).

%% Waits until `Held' places are held (the dead holders' came back).
-spec back(sluice_limit:limit(), non_neg_integer(), non_neg_integer()) -> ok.
back(L, Held, Tries) ->
    case sluice_limit:info(L) of
        #{held := Held} -> ok;
        _ when Tries > 0 -> timer:sleep(5), back(L, Held, Tries - 1);
        _ -> ok
    end.

-spec resize(pos_integer()) -> {term(), map()}.
resize(Max) ->
    finish(sluice_limit:resize(get(?LIMIT), Max)).

-spec finish(term()) -> {term(), map()}.
finish(Res) ->
    {Res, sluice_limit:info(get(?LIMIT))}.
