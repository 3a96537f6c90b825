%% One PropEr state-machine model of a lender of leases, for the two
%% sluice tools that lend a bounded number of things: a sluice_lock
%% (resources) and a sluice_limit concurrency limit (places; it is a lock
%% lending tokens). A suite runs it through an adapter, a module with this
%% behaviour's callbacks that maps the model's few operations onto its API
%% (sluice_lock_prop_SUITE, sluice_concurrency_prop_SUITE).
%%
%% Each run makes a lender of 1..5 leases (room for 8), runs a command
%% sequence against it and against a model that counts leases, and closes
%% it. Leases are held by the test process itself or by helper processes,
%% which the model may kill; an adapter whose lender has a worker per
%% slot (the lock's watchers) lets the model kill those too. Commands that
%% make the lender work (a holder's death, a worker's death, a resize) wait
%% until it is done (the adapter's `settle/2', `kill_worker/2',
%% `resize/2'), so the model can treat them as instant. After every command
%% it checks:
%% M1. a take (by the test process or a helper) gets a lease exactly when
%%     fewer leases are out than the lender's size, and is refused at once
%%     with the adapter's `refusal()' otherwise (`{error, busy}',
%%     `{error, limit}');
%% M2. giving back a lease out is `ok', a lease given back already the
%%     adapter's `not_lent()' (`{error, not_lent}', `{error, not_held}');
%% M3. a killed holder's leases end, counted as deaths, without any call
%%     from it, and the lender lends them again; a killed worker is
%%     restarted and the lender keeps lending;
%% M4. resize changes the size (done with no lease out);
%% M5. the lender's info map (under the adapter's names, `info_keys()'):
%%     leases taken, refusals, deaths, leases out, peak and size equal the
%%     model's, and nothing else is in it.
-module(sluice_lease_model).

-include_lib("proper/include/proper.hrl").

-export([prop/1]).
-export([command/1, precondition/2, postcondition/3, next_state/3]).
-export([take/1, give_back_own/1, give_back_stale/1, helper_take/1, kill_helpers/1,
         kill_worker/2, resize/2]).

%% The lender under test, made with `open(Size, Capacity)': `Size' leases
%% to lend, resizable up to `Capacity'.
-callback open(Size :: pos_integer(), Capacity :: pos_integer()) -> Lender :: term().
%% Takes a lease in the calling process: `{ok, Lease}', or the refusal.
-callback take(Lender :: term()) -> {ok, Lease :: term()} | Refusal :: term().
-callback give_back(Lender :: term(), Lease :: term()) -> ok | NotLent :: term().
%% Resizes, and returns once the lender lends at its new size.
-callback resize(Lender :: term(), Size :: pos_integer()) -> term().
-callback info(Lender :: term()) -> map().
%% Returns once the leases of the holders just killed are back: `Out'
%% leases (the test process's own) are still out.
-callback settle(Lender :: term(), Out :: non_neg_integer()) -> ok.
%% Ends the run: `Own' are the leases the test process still holds.
-callback close(Lender :: term(), Own :: [term()]) -> ok.
%% The answer to a take when every lease is out.
-callback refusal() -> term().
%% The answer to giving back a lease given back already.
-callback not_lent() -> term().
%% The key of `info/1''s map for each of the model's counters.
-callback info_keys() -> #{taken | refused | deaths | out | peak | size => atom()}.
%% Kills the worker of slot `I' (below the size) and returns once it was
%% restarted and the lender lends again.
-callback kill_worker(Lender :: term(), I :: non_neg_integer()) -> ok.
-optional_callbacks([kill_worker/2]).

-define(LENDER, {?MODULE, lender}).
-define(OWN, {?MODULE, own}).
-define(BACK, {?MODULE, back}).
-define(HELPERS, {?MODULE, helpers}).
-define(CAPACITY, 8).

%% @doc The property, for the lender of `Adapter'.
-spec prop(Adapter) -> proper:test() when Adapter :: module().
prop(Adapter) ->
    {module, Adapter} = code:ensure_loaded(Adapter),
    ?FORALL(N, range(1, 5),
    ?FORALL(Cmds, proper_statem:commands(?MODULE, initial_state(Adapter, N)),
            begin
                put(?LENDER, Adapter:open(N, ?CAPACITY)),
                put(?OWN, []),
                put(?BACK, []),
                put(?HELPERS, []),
                {History, State, Result} = proper_statem:run_commands(?MODULE, Cmds),
                _ = kill_helpers(Adapter),
                ok = Adapter:close(get(?LENDER), get(?OWN)),
                sluice_prop:verdict(Cmds, {History, State, Result}, [], true)
            end)).

%%% Model

-spec initial_state(module(), pos_integer()) -> map().
initial_state(Adapter, N) ->
    #{adapter => Adapter, size => N, own => 0, back => 0, helpers => 0, taken => 0,
      refused => 0, deaths => 0, peak => 0}.

-spec command(map()) -> proper_types:type().
command(#{adapter := A}) ->
    Workers = case erlang:function_exported(A, kill_worker, 2) of
                  true -> [{1, {call, ?MODULE, kill_worker, [A, range(0, ?CAPACITY - 1)]}}];
                  false -> []
              end,
    frequency([{6, {call, ?MODULE, take, [A]}},
               {4, {call, ?MODULE, give_back_own, [A]}},
               {1, {call, ?MODULE, give_back_stale, [A]}},
               {3, {call, ?MODULE, helper_take, [A]}},
               {1, {call, ?MODULE, kill_helpers, [A]}}]
              ++ Workers
              ++ [{1, {call, ?MODULE, resize, [A, range(1, ?CAPACITY)]}}]).

-spec precondition(map(), tuple()) -> boolean().
precondition(#{own := Own}, {call, _, give_back_own, _}) -> Own > 0;
precondition(#{back := Back}, {call, _, give_back_stale, _}) -> Back > 0;
precondition(#{size := N}, {call, _, kill_worker, [_, I]}) -> I < N;
precondition(#{own := Own, helpers := H}, {call, _, resize, _}) -> Own + H =:= 0;
precondition(_S, _Call) -> true.

-spec next_state(map(), term(), tuple()) -> map().
next_state(S, _Res, Call) ->
    {_, S2} = step(S, Call),
    S2.

-spec postcondition(map(), tuple(), term()) -> boolean().
postcondition(S, Call, {Res, Info}) ->
    {ExpRes, S2} = step(S, Call),
    Res =:= ExpRes andalso Info =:= info(S2).

%% The info map the lender must show in state `S'.
-spec info(map()) -> map().
info(#{adapter := A, own := Own, helpers := H} = S) ->
    Counts = maps:with([taken, refused, deaths, peak, size], S),
    Keys = A:info_keys(),
    maps:from_list([{maps:get(K, Keys), V} || {K, V} <- maps:to_list(Counts#{out => Own + H})]).

-spec step(map(), tuple()) -> {term(), map()}.
step(#{adapter := A} = S, {call, _, F, [_]}) when F =:= take; F =:= helper_take ->
    #{size := N, own := Own, helpers := H} = S,
    Key = case F of take -> own; helper_take -> helpers end,
    case Own + H < N of
        true ->
            #{taken := T, peak := P} = S,
            S1 = S#{taken := T + 1, peak := max(P, Own + H + 1)},
            {ok, S1#{Key := maps:get(Key, S) + 1}};
        false ->
            {A:refusal(), S#{refused := maps:get(refused, S) + 1}}
    end;
step(#{own := Own, back := Back} = S, {call, _, give_back_own, [_]}) ->
    {ok, S#{own := Own - 1, back := Back + 1}};
step(#{adapter := A} = S, {call, _, give_back_stale, [_]}) ->
    {A:not_lent(), S};
step(#{helpers := H, deaths := D} = S, {call, _, kill_helpers, [_]}) ->
    {ok, S#{helpers := 0, deaths := D + H}};
step(S, {call, _, kill_worker, [_, _]}) ->
    {ok, S};
step(S, {call, _, resize, [_, N]}) ->
    {ok, S#{size := N}}.

%%% Commands: each returns its result and the lender's info map.

-spec take(module()) -> {term(), map()}.
take(A) ->
    case A:take(get(?LENDER)) of
        {ok, Lease} -> put(?OWN, [Lease | get(?OWN)]), finish(A, ok);
        Refused -> finish(A, Refused)
    end.

-spec give_back_own(module()) -> {term(), map()}.
give_back_own(A) ->
    [Lease | Rest] = get(?OWN),
    put(?OWN, Rest),
    put(?BACK, [Lease | get(?BACK)]),
    finish(A, A:give_back(get(?LENDER), Lease)).

-spec give_back_stale(module()) -> {term(), map()}.
give_back_stale(A) ->
    [Lease | _] = get(?BACK),
    finish(A, A:give_back(get(?LENDER), Lease)).

%% A helper takes a lease and holds it until killed.
-spec helper_take(module()) -> {term(), map()}.
helper_take(A) ->
    Lender = get(?LENDER),
    Self = self(),
    H = spawn(fun() -> Self ! {took, self(), A:take(Lender)}, receive stop -> ok end end),
    receive
        {took, H, {ok, _}} -> put(?HELPERS, [H | get(?HELPERS)]), finish(A, ok);
        {took, H, Refused} -> H ! stop, finish(A, Refused)
    end.

-spec kill_helpers(module()) -> {term(), map()}.
kill_helpers(A) ->
    Hs = get(?HELPERS),
    Mons = [monitor(process, H) || H <- Hs],
    _ = [exit(H, kill) || H <- Hs],
    _ = [receive {'DOWN', M, process, _, _} -> ok end || M <- Mons],
    put(?HELPERS, []),
    ok = A:settle(get(?LENDER), length(get(?OWN))),
    finish(A, ok).

-spec kill_worker(module(), non_neg_integer()) -> {term(), map()}.
kill_worker(A, I) ->
    ok = A:kill_worker(get(?LENDER), I),
    finish(A, ok).

-spec resize(module(), pos_integer()) -> {term(), map()}.
resize(A, N) ->
    finish(A, A:resize(get(?LENDER), N)).

-spec finish(module(), term()) -> {term(), map()}.
finish(A, Res) ->
    {Res, A:info(get(?LENDER))}.
