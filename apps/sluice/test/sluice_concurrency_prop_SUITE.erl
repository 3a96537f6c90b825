%% PropEr state-machine model of a sluice_limit concurrency limit, run
%% inside Common Test: `SLUICE_CONCURRENCY_PROP_RUNS' runs (default 1000).
%%
%% A concurrency limit is a lock lending tokens: the model is
%% sluice_lease_model's (M1-M5 there), run through this suite's adapter
%% callbacks: a lease is a token from acquire/1, given back by release/1;
%% a refusal is `{error, limit}', a token released already
%% `{error, not_held}'; a killed holder's places come back without any
%% call (the command waits until info/1 shows them back). Also: `run/2'
%% releases when its fun raises.
-module(sluice_concurrency_prop_SUITE).
-behaviour(sluice_lease_model).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, concurrency_model/1,
         run_releases_on_raise/1]).
-export([open/2, take/1, give_back/2, resize/2, info/1, settle/2, close/2, refusal/0,
         not_lent/0, info_keys/0]).

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
    sluice_prop:check(sluice_lease_model:prop(?MODULE), "SLUICE_CONCURRENCY_PROP_RUNS",
                      ?DEFAULT_RUNS, 40).

%%% The lease model's adapter

-spec open(pos_integer(), pos_integer()) -> sluice_limit:limit().
open(Max, Capacity) ->
    {ok, L} = sluice_limit:new_concurrency(#{max => Max, max_holders => Capacity}),
    L.

-spec take(sluice_limit:limit()) -> {ok, sluice_limit:token()} | {error, limit}.
take(L) ->
    sluice_limit:acquire(L).

-spec give_back(sluice_limit:limit(), sluice_limit:token()) -> ok | {error, not_held}.
give_back(_L, Token) ->
    sluice_limit:release(Token).

-spec resize(sluice_limit:limit(), pos_integer()) -> term().
resize(L, Max) ->
    sluice_limit:resize(L, Max).

-spec info(sluice_limit:limit()) -> map().
info(L) ->
    sluice_limit:info(L).

%% Waits until `Held' places are held (the dead holders' came back).
-spec settle(sluice_limit:limit(), non_neg_integer()) -> ok.
settle(L, Held) ->
    back(L, Held, 400).

-spec back(sluice_limit:limit(), non_neg_integer(), non_neg_integer()) -> ok.
back(L, Held, Tries) ->
    case sluice_limit:info(L) of
        #{held := Held} -> ok;
        _ when Tries > 0 -> timer:sleep(5), back(L, Held, Tries - 1);
        _ -> ok
    end.

-spec close(sluice_limit:limit(), [sluice_limit:token()]) -> ok.
close(_L, _Own) ->
    ok.

-spec refusal() -> {error, limit}.
refusal() -> {error, limit}.

-spec not_lent() -> {error, not_held}.
not_lent() -> {error, not_held}.

-spec info_keys() -> map().
info_keys() ->
    #{taken => acquired, refused => refused, deaths => deaths, out => held, peak => peak,
      size => max}.
