%% PropEr state-machine model of a sluice_lock, run inside Common Test:
%% `SLUICE_LOCK_PROP_RUNS' runs (default 1000).
%%
%% Each run makes a lock of 1..5 resources (room for 8), runs a command
%% sequence against it and against a model that counts loans, and closes
%% it. Loans are held by the test process itself or by helper processes,
%% which the model may kill; watchers may be killed too. Commands that make
%% a watcher work (a holder's death, a watcher's death) wait until every
%% slot in use lends again, so the model can treat them as instant. After
%% every command it checks:
%% L1. a checkout (by the test process or a helper) gets a resource exactly
%%     when fewer loans are out than slots in use, `{error, busy}' otherwise;
%% L2. a checkin of a loan out is `ok', of a loan handed back already
%%     `{error, not_lent}';
%% L3. a killed holder's loans end (`deaths'), their slots lend again once
%%     their watchers made them ready; a killed watcher is restarted and
%%     the lock keeps lending;
%% L4. resize changes the slots in use (done with no loan out);
%% L5. info/1: checkouts, busy answers, deaths, loans out, peak and slots
%%     equal the model's.
-module(sluice_lock_prop_SUITE).
-behaviour(sluice_lock).

-include_lib("common_test/include/ct.hrl").
-include_lib("proper/include/proper.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, lock_model/1]).
-export([command/1, precondition/2, postcondition/3, next_state/3]).
-export([checkout/0, checkin_own/0, checkin_stale/0, helper_hold/0, kill_helpers/0,
         kill_watcher/1, resize/1]).
-export([init/1, checkout/2, checkin/2, dead/1, handle_info/2, terminate/2]).

-define(LOCK, {?MODULE, lock}).
-define(OWN, {?MODULE, own}).
-define(BACK, {?MODULE, back}).
-define(HELPERS, {?MODULE, helpers}).
-define(CAPACITY, 8).
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
    sluice_prop:check(prop_lock(), "SLUICE_LOCK_PROP_RUNS", ?DEFAULT_RUNS, 40).

-spec prop_lock() -> proper:test().
prop_lock() ->
    ?FORALL(N, range(1, 5),
    ?FORALL(Cmds, proper_statem:commands(?MODULE, initial_state(N)),
            begin
                {ok, Lock} = sluice_lock:new(#{resources => N, max_resources => ?CAPACITY,
                                               callback => {?MODULE, []}}),
                put(?LOCK, Lock),
                put(?OWN, []),
                put(?BACK, []),
                put(?HELPERS, []),
                ready(Lock),
                {History, State, Result} = proper_statem:run_commands(?MODULE, Cmds),
                _ = kill_helpers(),
                _ = [sluice_lock:checkin(Lock, R, X) || {R, X} <- get(?OWN)],
                ok = sluice_lock:close(Lock),
                sluice_prop:verdict(Cmds, {History, State, Result}, [], true)
            end)).

%%% Model

-spec initial_state(pos_integer()) -> map().
initial_state(N) ->
    #{active => N, own => 0, back => 0, helpers => 0, checkouts => 0, busy => 0,
      deaths => 0, peak => 0}.

-spec command(map()) -> proper_types:type().
command(_S) ->
    frequency([{6, {call, ?MODULE, checkout, []}},
               {4, {call, ?MODULE, checkin_own, []}},
               {1, {call, ?MODULE, checkin_stale, []}},
               {3, {call, ?MODULE, helper_hold, []}},
               {1, {call, ?MODULE, kill_helpers, []}},
               {1, {call, ?MODULE, kill_watcher, [range(0, ?CAPACITY - 1)]}},
               {1, {call, ?MODULE, resize, [range(1, ?CAPACITY)]}}]).

-spec precondition(map(), tuple()) -> boolean().
precondition(#{own := Own}, {call, _, checkin_own, []}) -> Own > 0;
precondition(#{back := Back}, {call, _, checkin_stale, []}) -> Back > 0;
precondition(#{active := N}, {call, _, kill_watcher, [I]}) -> I < N;
precondition(#{own := Own, helpers := H}, {call, _, resize, [_]}) -> Own + H =:= 0;
precondition(_S, _Call) -> true.

-spec next_state(map(), term(), tuple()) -> map().
next_state(S, _Res, Call) ->
    {_, S2} = step(S, Call),
    S2.

-spec postcondition(map(), tuple(), term()) -> boolean().
postcondition(S, Call, {Res, Info}) ->
    {ExpRes, S2} = step(S, Call),
    #{active := N, own := Own, helpers := H, checkouts := C, busy := B, deaths := D,
      peak := P} = S2,
    Res =:= ExpRes andalso
        Info =:= #{checkouts => C, busy => B, deaths => D, in_use => Own + H, peak => P,
                   resources => N}.

-spec step(map(), tuple()) -> {term(), map()}.
step(S, {call, _, F, []}) when F =:= checkout; F =:= helper_hold ->
    #{active := N, own := Own, helpers := H} = S,
    Key = case F of checkout -> own; helper_hold -> helpers end,
    case Own + H < N of
        true ->
            #{checkouts := C, peak := P} = S,
            S1 = S#{checkouts := C + 1, peak := max(P, Own + H + 1)},
            {ok, S1#{Key := maps:get(Key, S) + 1}};
        false ->
            {busy, S#{busy := maps:get(busy, S) + 1}}
    end;
step(#{own := Own, back := Back} = S, {call, _, checkin_own, []}) ->
    {ok, S#{own := Own - 1, back := Back + 1}};
step(S, {call, _, checkin_stale, []}) ->
    {{error, not_lent}, S};
step(#{helpers := H, deaths := D} = S, {call, _, kill_helpers, []}) ->
    {ok, S#{helpers := 0, deaths := D + H}};
step(S, {call, _, kill_watcher, [_]}) ->
    {ok, S};
step(S, {call, _, resize, [N]}) ->
    {ok, S#{active := N}}.

%%% Commands: each returns its result and info/1 (without the resource).

-spec checkout() -> {term(), map()}.
checkout() ->
    Lock = get(?LOCK),
    case sluice_lock:checkout(Lock) of
        {ok, R, X} -> put(?OWN, [{R, X} | get(?OWN)]), finish(ok);
        {error, busy} -> finish(busy)
    end.

-spec checkin_own() -> {term(), map()}.
checkin_own() ->
    [{R, X} = Loan | Rest] = get(?OWN),
    put(?OWN, Rest),
    put(?BACK, [Loan | get(?BACK)]),
    finish(sluice_lock:checkin(get(?LOCK), R, X)).

-spec checkin_stale() -> {term(), map()}.
checkin_stale() ->
    [{R, X} | _] = get(?BACK),
    finish(sluice_lock:checkin(get(?LOCK), R, X)).

%% A helper checks out and holds its loan until killed.
-spec helper_hold() -> {term(), map()}.
helper_hold() ->
    Lock = get(?LOCK),
    Self = self(),
    H = spawn(fun() -> Self ! {held, self(), sluice_lock:checkout(Lock)}, receive stop -> ok end end),
    receive
        {held, H, {ok, _, _}} -> put(?HELPERS, [H | get(?HELPERS)]), finish(ok);
        {held, H, {error, busy}} -> H ! stop, finish(busy)
    end.

-spec kill_helpers() -> {term(), map()}.
kill_helpers() ->
    Hs = get(?HELPERS),
    Mons = [monitor(process, H) || H <- Hs],
    _ = [exit(H, kill) || H <- Hs],
    _ = [receive {'DOWN', M, process, _, _} -> ok end || M <- Mons],
    put(?HELPERS, []),
    ready(get(?LOCK)),
    finish(ok).

-spec kill_watcher(non_neg_integer()) -> {term(), map()}.
kill_watcher(I) ->
    Lock = get(?LOCK),
    {ok, {_, _, _, Sup}} = sluice_lock_sup:row(element(2, Lock)),
    [W] = [P || {Id, P, _, _} <- supervisor:which_children(Sup), Id =:= I],
    Mon = monitor(process, W),
    exit(W, kill),
    receive {'DOWN', Mon, process, W, _} -> ok end,
    restarted(Sup, I, W, 200),
    ready(Lock),
    finish(ok).

-spec resize(pos_integer()) -> {term(), map()}.
resize(N) ->
    Lock = get(?LOCK),
    Res = sluice_lock:resize(Lock, N),
    ready(Lock),
    finish(Res).

-spec finish(term()) -> {term(), map()}.
finish(Res) ->
    {Res, sluice_lock:info(get(?LOCK))}.

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
