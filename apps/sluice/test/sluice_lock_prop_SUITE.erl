%% PropEr state-machine model of a sluice_lock, run inside Common Test:
%% `SLUICE_LOCK_PROP_RUNS' runs (default 1000).
%%
%% The model is sluice_lease_model's (the lock lends resources: M1-M5
%% there), run through this suite's adapter callbacks: a lease is a loan
%% `{Ref, Resource}' from checkout/1, given back by checkin/3; a refusal is
%% `{error, busy}', a loan handed back already `{error, not_lent}'; the
%% lock's watchers are the workers the model may kill (a killed watcher is
%% restarted and its slot lends again). The suite is also the callback
%% module of the locks it makes.
-module(sluice_lock_prop_SUITE).
-behaviour(sluice_lock).
-behaviour(sluice_lease_model).

-include_lib("common_test/include/ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, lock_model/1]).
-export([open/2, take/1, give_back/2, resize/2, info/1, settle/2, close/2, refusal/0,
         not_lent/0, info_keys/0, kill_worker/2]).
-export([init/1, checkout/2, checkin/2, dead/1, handle_info/2, terminate/2]).

-define(DEFAULT_RUNS, 1000).

%%% Callbacks of the locks under test

init(_) -> {ok, none}.
checkout(none, S) -> {ok, {res, self()}, S}.
checkin(_Resource, S) -> {ok, S}.
dead(S) -> {ok, S}.
handle_info(_Msg, S) -> {ok, S}.
terminate(_Reason, _S) -> ok.

%%% Common Test

-spec all() -> [atom()].
all() -> [lock_model].

-spec init_per_suite(list()) -> list().
init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(sluice),
    Config.

-spec end_per_suite(list()) -> ok.
end_per_suite(_Config) ->
    ok.

-spec lock_model(list()) -> true.
lock_model(_Config) ->
    sluice_prop:check(sluice_lease_model:prop(?MODULE), "SLUICE_LOCK_PROP_RUNS",
                      ?DEFAULT_RUNS, 40).

%%% The lease model's adapter

-spec open(pos_integer(), pos_integer()) -> sluice_lock:lock().
open(N, Capacity) ->
    {ok, Lock} = sluice_lock:new(#{resources => N, max_resources => Capacity,
                                   callback => {?MODULE, []}}),
    ready(Lock),
    Lock.

-spec take(sluice_lock:lock()) -> {ok, {sluice_lock:ref(), term()}} | {error, busy}.
take(Lock) ->
    case sluice_lock:checkout(Lock) of
        {ok, R, X} -> {ok, {R, X}};
        Busy -> Busy
    end.

-spec give_back(sluice_lock:lock(), {sluice_lock:ref(), term()}) -> ok | {error, not_lent}.
give_back(Lock, {R, X}) ->
    sluice_lock:checkin(Lock, R, X).

-spec resize(sluice_lock:lock(), pos_integer()) -> term().
resize(Lock, N) ->
    Res = sluice_lock:resize(Lock, N),
    ready(Lock),
    Res.

-spec info(sluice_lock:lock()) -> map().
info(Lock) ->
    sluice_lock:info(Lock).

%% The slots of dead holders lend again once their watchers refilled them.
-spec settle(sluice_lock:lock(), non_neg_integer()) -> ok.
settle(Lock, _Out) ->
    ready(Lock).

-spec close(sluice_lock:lock(), [{sluice_lock:ref(), term()}]) -> ok.
close(Lock, Own) ->
    _ = [sluice_lock:checkin(Lock, R, X) || {R, X} <- Own],
    sluice_lock:close(Lock).

-spec refusal() -> {error, busy}.
refusal() -> {error, busy}.

-spec not_lent() -> {error, not_lent}.
not_lent() -> {error, not_lent}.

-spec info_keys() -> map().
info_keys() ->
    #{taken => checkouts, refused => busy, deaths => deaths, out => in_use, peak => peak,
      size => resources}.

%% Kills the watcher of slot `I' and waits until it was restarted and
%% every slot in use lends again.
-spec kill_worker(sluice_lock:lock(), non_neg_integer()) -> ok.
kill_worker(Lock, I) ->
    {ok, {_, _, _, Sup}} = sluice_lock_sup:row(element(2, Lock)),
    [W] = [P || {Id, P, _, _} <- supervisor:which_children(Sup), Id =:= I],
    Mon = monitor(process, W),
    exit(W, kill),
    receive {'DOWN', Mon, process, W, _} -> ok end,
    restarted(Sup, I, W, 200),
    ready(Lock).

%% Waits until the watcher of slot `I' is a new process.
-spec restarted(pid(), non_neg_integer(), pid(), non_neg_integer()) -> ok.
restarted(Sup, I, Old, Tries) ->
    case [P || {Id, P, _, _} <- supervisor:which_children(Sup), Id =:= I] of
        [P] when is_pid(P), P =/= Old -> ok;
        _ when Tries > 0 -> timer:sleep(5), restarted(Sup, I, Old, Tries - 1)
    end.

%% Waits until no slot in use is empty (its watcher made it ready).
-spec ready(sluice_lock:lock()) -> ok.
ready(Lock) ->
    ready(Lock, 400).

-spec ready(sluice_lock:lock(), non_neg_integer()) -> ok.
ready(Lock, Tries) ->
    Ref = element(2, Lock),
    #{resources := N} = sluice_lock:info(Lock),
    case [I || I <- lists:seq(0, N - 1), sluice_nif:lock_slot(Ref, I) =:= empty] of
        [] -> ok;
        _ when Tries > 0 -> timer:sleep(5), ready(Lock, Tries - 1)
    end.
