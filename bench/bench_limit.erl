%% @doc Benchmark suite `limit': `sluice_limit' rate checks against a token
%% bucket per key in ETS, in the same run.
%%
%% == The reference ==
%% A public ETS table (`read_concurrency', `write_concurrency') of
%% `{Key, Tokens, LastMs}': a check reads the key's row, refills it for the
%% time passed (at `limit' per `period'), and, when a token is left, writes
%% the row back with one token less. Keys never seen start full.
%%
%% == Cases ==
%% <ul>
%% <li>`check_100k_keys', `check_100k_keys_p2' (`ns_per_op'): 1 or 2
%%     processes check keys `{user, I rem 100000}' in turn, so 100 000
%%     distinct keys are tracked, against a limit (100 per second, burst
%%     100) that most checks stay within.</li>
%% </ul>
-module(bench_limit).
-behaviour(bench).

-export([cases/0]).

-define(KEYS, 100000).
-define(LIMIT, 100).
-define(PERIOD, 1000).

%% @doc The cases of this suite (see the module documentation).
-spec cases() -> [{atom(), fun(() -> bench:result())}].
cases() ->
    [{check_100k_keys, fun() -> checks(1) end},
     {check_100k_keys_p2, fun() -> checks(2) end}].

-spec checks(pos_integer()) -> bench:result().
checks(Procs) ->
    {ok, L} = sluice_limit:new_rate(#{limit => ?LIMIT, period => ?PERIOD, max_keys => 2 * ?KEYS}),
    Tab = ets:new(ref_buckets, [public, set, {read_concurrency, true},
                                {write_concurrency, true}]),
    Result = bench:compare(fun(N) -> ours(N, L) end,
                           fun(N) -> ref(N, Tab) end,
                           #{ops => 400000, procs => Procs, rounds => 5}),
    true = ets:delete(Tab),
    Result.

-spec ours(non_neg_integer(), sluice_limit:limiter()) -> ok.
ours(0, _L) ->
    ok;
ours(N, L) ->
    _ = sluice_limit:check(L, {user, N rem ?KEYS}),
    ours(N - 1, L).

-spec ref(non_neg_integer(), ets:tid()) -> ok.
ref(0, _Tab) ->
    ok;
ref(N, Tab) ->
    _ = bucket(Tab, {user, N rem ?KEYS}),
    ref(N - 1, Tab).

%% One token-bucket check of `Key'.
-spec bucket(ets:tid(), term()) -> ok | {error, {retry_after, non_neg_integer()}}.
bucket(Tab, Key) ->
    Now = erlang:monotonic_time(millisecond),
    {Tokens, Last} = case ets:lookup(Tab, Key) of
                         [{_, T, L}] -> {T, L};
                         [] -> {float(?LIMIT), Now}
                     end,
    Refilled = min(float(?LIMIT), Tokens + (Now - Last) * ?LIMIT / ?PERIOD),
    case Refilled >= 1.0 of
        true ->
            true = ets:insert(Tab, {Key, Refilled - 1.0, Now}),
            ok;
        false ->
            {error, {retry_after, ceil((1.0 - Refilled) * ?PERIOD / ?LIMIT)}}
    end.
