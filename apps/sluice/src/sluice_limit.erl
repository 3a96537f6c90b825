%% @doc Admission limits (Erlang in Anger, 3.2.3 and 3.3.5): concurrency
%% limits and per-key rate limits, each decision one NIF call on the
%% caller's scheduler.
%%
%% == Concurrency limits ==
%% {@link new_concurrency/1} makes a limit of `max' holders at once:
%% {@link acquire/1} answers `{ok, Token}' or, at once, `{error, limit}';
%% {@link release/1} gives the token back; {@link run/2} runs a fun under
%% the limit and releases also when it raises. A holder that dies releases
%% its token (the limit monitors each process that ever held one, once).
%% It is a `sluice_lock' whose resources are plain tokens.
%%
%% == Rate limits ==
%% {@link new_rate/1} makes a limiter of `limit' requests per `period' ms
%% per key, with a burst of `burst' (default `limit'), by the generic cell
%% rate algorithm: {@link check/2} answers `ok' (and counts the request) or
%% `{error, {retry_after, Ms}}', and a request that waits that long is
%% allowed. A request whose cost exceeds the burst could never pass: it is
%% refused with `{error, {exceeds_burst, Burst}}' (the key's burst, or the
%% global limit's). Over any window of `W' ms a key gets at most `burst + W *
%% limit / period' requests. Keys are any term (hashed, never made into
%% atoms). A key may have a limit of its own ({@link set_override/3}: a
%% premium account), and a `global' limit may hold over all keys at once:
%% a request is allowed when both allow it. Overrides are bounded by
%% `max_overrides' (default 10 000; one more is refused with `{error,
%% too_many_overrides}'), are never evicted, and cost about 40 bytes each;
%% `info/1' counts them (`overrides').
%%
%% The key table is bounded by `max_keys' (default 100 000), in 16 shards.
%% A key whose allowance is full again is the same as a key never seen.
%% When a full shard meets a new key, the eviction looks at 32 entries of
%% the shard (a clock hand moving over them, so the cost per call is
%% bounded whatever `max_keys'): the first idle one gives its place, else
%% the one of them closest to idle (it regains its burst early; `info/1'
%% counts it as evicted). The trade-off for that bound: an idle key
%% elsewhere in the shard may stay while a busy one in the sample goes.
%% Each key costs about 50 bytes. {@link sweep/1} forgets every idle key
%% (on a dirty scheduler: it looks at every key).
%%
%% == Bad arguments ==
%% Options are checked by {@link new_rate/1}, {@link new_concurrency/1}
%% and {@link set_override/3}: `{error, {bad_option, Key}}' (unknown keys
%% too). Any other bad argument (a term that is not a limiter or a limit,
%% a cost that is not a positive integer, a forged token) raises `badarg'
%% with a message naming it.
-module(sluice_limit).

-export([new_rate/1, check/2, check/3, set_override/3, set_time/2, sweep/1, info/1]).
-export([new_concurrency/1, acquire/1, release/1, run/2, resize/2]).
-export_type([limiter/0, rate_options/0, limit/0, token/0]).

-include("sluice_error.hrl").

-record(sluice_limiter, {ref :: reference()}).
-record(sluice_limit, {ref :: reference()}).

%% Most holders a concurrency limit can be resized to.
-define(MAX_HOLDERS, 4096).
-define(NOT_LIMITER, "not a rate limiter").
-define(NOT_LIMIT, "not a concurrency limit").
-define(U64(X), (is_integer(X) andalso X >= 0 andalso X < 1 bsl 64)).

-opaque limiter() :: #sluice_limiter{}.
%% A rate limiter, from {@link new_rate/1}.
-opaque limit() :: #sluice_limit{}.
%% A concurrency limit, from {@link new_concurrency/1}.
-opaque token() :: {limit(), {non_neg_integer(), pos_integer()}}.
%% A place held under a concurrency limit: what {@link acquire/1} returns
%% and {@link release/1} gives back.
-type rate_options() :: #{limit := pos_integer(), period => pos_integer(),
                          burst => pos_integer(), global => map() | none,
                          max_keys => pos_integer(), max_overrides => non_neg_integer(),
                          clock => system | manual}.
%% `limit' (mandatory) requests per `period' ms (default 1000) with a burst
%% of `burst' (default `limit'); `global': a limit over all keys (`#{limit,
%% period, burst}', default none); `max_keys' (default 100 000);
%% `max_overrides' (default 10 000); `clock': `system' (default) or
%% `manual' ({@link set_time/2}, for tests).

%% @doc A rate limiter (see {@link rate_options()}).
-spec new_rate(Opts) -> {ok, limiter()} | {error, {bad_option, term()}} when
      Opts :: rate_options().
new_rate(Opts) ->
    Spec = [{limit, required, fun sluice_opts:pos_int/1},
            {period, 1000, fun sluice_opts:ms/1},
            {burst, default, fun(V) -> V =:= default orelse sluice_opts:pos_int(V) end},
            {global, none, fun(V) -> V =:= none orelse element(1, spec(V)) =/= error end},
            {max_keys, 100000, fun sluice_opts:pos_int/1},
            {max_overrides, 10000, fun sluice_opts:non_neg_int/1},
            {clock, system, sluice_opts:one_of([system, manual])}],
    case sluice_opts:validate(Opts, Spec) of
        {ok, #{global := Global, max_keys := MaxKeys, max_overrides := MaxOverrides,
               clock := Clock} = Full} ->
            case spec(maps:with([limit, period, burst], Full)) of
                {error, _} = Bad ->
                    Bad;
                PerKey ->
                    G = case Global of none -> none; _ -> spec(Global) end,
                    case sluice_nif:rate_new(#{per_key => PerKey, global => G,
                                               max_keys => MaxKeys,
                                               max_overrides => MaxOverrides,
                                               manual_clock => Clock =:= manual}) of
                        {error, too_fine} -> {error, {bad_option, limit}};
                        Ref -> {ok, #sluice_limiter{ref = Ref}}
                    end
            end;
        {error, _} = Bad ->
            Bad
    end.

%% `{Limit, PeriodMs, Burst}' of a rate map, or the first bad key.
-spec spec(term()) -> {pos_integer(), pos_integer(), pos_integer()} | {error, {bad_option, term()}}.
spec(Rate) ->
    Spec = [{limit, required, fun sluice_opts:pos_int/1},
            {period, 1000, fun sluice_opts:ms/1},
            {burst, default, fun(V) -> V =:= default orelse sluice_opts:pos_int(V) end}],
    case sluice_opts:validate(Rate, Spec) of
        {ok, #{limit := Limit, period := Period, burst := Burst0}} ->
            Burst = case Burst0 of default -> Limit; _ -> Burst0 end,
            Interval = Period * 1000000 div Limit,
            if
                Interval =:= 0 -> {error, {bad_option, limit}};
                Interval * Burst >= 1 bsl 64 -> {error, {bad_option, burst}};
                true -> {Limit, Period, Burst}
            end;
        {error, _} = Bad ->
            Bad
    end.

%% @doc Checks a request for `Key': `ok' (counted), `{error, {retry_after,
%% Ms}}', or `{error, {exceeds_burst, Burst}}' (see the module doc).
-spec check(Limiter, Key) -> ok | {error, {retry_after | exceeds_burst, non_neg_integer()}} when
      Limiter :: limiter(),
      Key :: term().
check(#sluice_limiter{ref = Ref} = L, Key) ->
    try sluice_nif:rate_check(Ref, Key, 1)
    catch error:badarg -> ?BADARG([L, Key], 1, ?NOT_LIMITER)
    end;
check(L, Key) ->
    ?BADARG([L, Key], 1, ?NOT_LIMITER).

%% @doc As {@link check/2} for a request that costs `Cost' units.
-spec check(Limiter, Key, Cost) ->
    ok | {error, {retry_after | exceeds_burst, non_neg_integer()}} when
      Limiter :: limiter(),
      Key :: term(),
      Cost :: pos_integer().
check(#sluice_limiter{ref = Ref} = L, Key, Cost)
  when is_integer(Cost), Cost > 0, Cost < 1 bsl 64 ->
    try sluice_nif:rate_check(Ref, Key, Cost)
    catch error:badarg -> ?BADARG([L, Key, Cost], 1, ?NOT_LIMITER)
    end;
check(#sluice_limiter{} = L, Key, Cost) ->
    ?BADARG([L, Key, Cost], 3, "must be a positive integer below 2^64");
check(L, Key, Cost) ->
    ?BADARG([L, Key, Cost], 1, ?NOT_LIMITER).

%% @doc Gives `Key' a limit of its own (`#{limit, period, burst}'), or the
%% limiter's again (`default'); `{error, too_many_overrides}' when
%% `max_overrides' keys have one already.
-spec set_override(Limiter, Key, Rate) ->
    ok | {error, {bad_option, term()} | too_many_overrides} when
      Limiter :: limiter(),
      Key :: term(),
      Rate :: map() | default.
set_override(#sluice_limiter{} = L, Key, Rate) when Rate =:= default; is_map(Rate) ->
    Spec = case Rate of default -> none; _ -> spec(Rate) end,
    case Spec of
        {error, _} = Bad -> Bad;
        _ ->
            case limiter_nif(fun(Ref) -> sluice_nif:rate_override(Ref, Key, Spec) end, L,
                             [L, Key, Rate]) of
                {error, too_fine} -> {error, {bad_option, limit}};
                Answer -> Answer
            end
    end;
set_override(#sluice_limiter{} = L, Key, Rate) ->
    ?BADARG([L, Key, Rate], 3, "must be a rate map or default");
set_override(L, Key, Rate) ->
    ?BADARG([L, Key, Rate], 1, ?NOT_LIMITER).

%% @doc Moves a manual clock to `Ms' milliseconds (never back).
-spec set_time(Limiter, Ms) -> ok when Limiter :: limiter(), Ms :: non_neg_integer().
set_time(#sluice_limiter{} = L, Ms) when ?U64(Ms) ->
    case limiter_nif(fun(Ref) -> sluice_nif:rate_set_time(Ref, Ms) end, L, [L, Ms]) of
        ok -> ok;
        {error, system_clock} ->
            ?BADARG([L, Ms], 1, "is a rate limiter on the system clock (not clock => manual)")
    end;
set_time(#sluice_limiter{} = L, Ms) ->
    ?BADARG([L, Ms], 2, "must be a non-negative integer");
set_time(L, Ms) ->
    ?BADARG([L, Ms], 1, ?NOT_LIMITER).

%% @doc Forgets the keys whose allowance is full again; how many went.
-spec sweep(Limiter) -> non_neg_integer() when Limiter :: limiter().
sweep(#sluice_limiter{} = L) ->
    limiter_nif(fun sluice_nif:rate_sweep/1, L, [L]);
sweep(L) ->
    ?BADARG([L], 1, ?NOT_LIMITER).

%% @doc A concurrency limit of `max' holders at once (`max_holders', default
%% the larger of `max' and 64, bounds {@link resize/2}).
-spec new_concurrency(Opts) -> {ok, limit()} | {error, {bad_option, term()}} when
      Opts :: #{max := pos_integer(), max_holders => pos_integer()}.
new_concurrency(Opts) ->
    Spec = [{max, required, sluice_opts:pos_int_upto(?MAX_HOLDERS)},
            {max_holders, default,
             fun(V) -> V =:= default orelse (sluice_opts:pos_int_upto(?MAX_HOLDERS))(V) end}],
    case sluice_opts:validate(Opts, Spec) of
        {ok, #{max := Max, max_holders := Cap0}} ->
            Cap = case Cap0 of default -> max(Max, 64); _ -> Cap0 end,
            case Cap >= Max of
                true ->
                    Ref = sluice_nif:lock_new(Max, Cap),
                    _ = [ok = sluice_nif:lock_fill(Ref, I, token, none)
                         || I <- lists:seq(0, Max - 1)],
                    {ok, #sluice_limit{ref = Ref}};
                false ->
                    {error, {bad_option, max_holders}}
            end;
        {error, _} = Bad ->
            Bad
    end.

%% @doc Takes a place under the limit: `{ok, Token}', or `{error, limit}'
%% at once when `max' holders hold one.
-spec acquire(Limit) -> {ok, token()} | {error, limit} when Limit :: limit().
acquire(#sluice_limit{ref = Ref} = Limit) ->
    try sluice_nif:lock_checkout(Ref) of
        {ok, Loan, _Token} -> {ok, {Limit, Loan}};
        {error, busy} -> {error, limit};
        %% (a limit never has 0 places: the object of a closed lock, retagged)
        {error, closed} -> ?BADARG([Limit], 1, ?NOT_LIMIT)
    catch
        error:badarg -> ?BADARG([Limit], 1, ?NOT_LIMIT)
    end;
acquire(Limit) ->
    ?BADARG([Limit], 1, ?NOT_LIMIT).

%% @doc Gives a place back: `ok', or `{error, not_held}' when the token was
%% released already.
-spec release(Token) -> ok | {error, not_held} when Token :: token().
release({#sluice_limit{ref = Ref}, {I, G} = Loan} = Token) when ?U64(I), ?U64(G) ->
    try sluice_nif:lock_checkin(Ref, Loan) of
        ok -> ok;
        {error, not_lent} -> {error, not_held}
    catch
        error:badarg -> ?BADARG([Token], 1, "not a token")
    end;
release(Token) ->
    ?BADARG([Token], 1, "not a token").

%% @doc Runs `Fun()' under the limit and releases, also when it raises:
%% `Fun''s result, or `{error, limit}'.
-spec run(Limit, Fun) -> Result | {error, limit} when
      Limit :: limit(),
      Fun :: fun(() -> Result).
run(Limit, Fun) when is_function(Fun, 0) ->
    case acquire(Limit) of
        {ok, Token} ->
            try Fun() after _ = release(Token) end;
        {error, limit} = Refused ->
            Refused
    end;
run(Limit, Fun) ->
    ?BADARG([Limit, Fun], 2, "must be a fun of no argument").

%% @doc Changes `max' (up to `max_holders'); places above it held now are
%% lost when released.
-spec resize(Limit, Max) -> ok | {error, too_many} when
      Limit :: limit(),
      Max :: pos_integer().
resize(#sluice_limit{ref = Ref} = Limit, Max) when is_integer(Max), Max > 0 ->
    #{slots := Old, capacity := Cap} = limit_nif(fun sluice_nif:lock_info/1, Limit, [Limit, Max]),
    %% (a limit never has 0 places; a lock's object, retagged, is refused)
    Lock = Old =:= 0 orelse sluice_lock_sup:row(Ref) =/= error,
    case Max =< Cap of
        _ when Lock ->
            ?BADARG([Limit, Max], 1, ?NOT_LIMIT);
        true ->
            _ = sluice_nif:lock_resize(Ref, Max),
            New = lists:seq(min(Old, Max), Max - 1),
            _ = [sluice_nif:lock_fill(Ref, I, token, none)
                 || I <- New, sluice_nif:lock_slot(Ref, I) =:= empty],
            ok;
        false ->
            {error, too_many}
    end;
resize(#sluice_limit{} = Limit, Max) ->
    ?BADARG([Limit, Max], 2, "must be a positive integer");
resize(Limit, Max) ->
    ?BADARG([Limit, Max], 1, ?NOT_LIMIT).

%% @doc Counters. A rate limiter: requests allowed and refused, keys
%% evicted before they were idle, keys held, keys with an override. A
%% concurrency limit: places acquired and refused, holders that died
%% holding one, places held now, the most held at once (never above
%% `max'), and `max'.
-spec info(Limiter) -> #{atom() => non_neg_integer()} when Limiter :: limiter() | limit().
info(#sluice_limiter{} = L) ->
    limiter_nif(fun sluice_nif:rate_info/1, L, [L]);
info(#sluice_limit{} = L) ->
    #{checkouts := Acquired, busy := Refused, deaths := Deaths, in_use := Held, peak := Peak,
      slots := Max} = limit_nif(fun sluice_nif:lock_info/1, L, [L]),
    #{acquired => Acquired, refused => Refused, deaths => Deaths, held => Held, peak => Peak,
      max => Max};
info(L) ->
    ?BADARG([L], 1, "not a rate limiter or a concurrency limit").

%% `Fun(Ref)' on a limiter's NIF object; its `badarg' (a forged handle)
%% becomes a message on argument 1 of the call (`Args').
-spec limiter_nif(fun((reference()) -> T), limiter(), [term()]) -> T.
limiter_nif(Fun, #sluice_limiter{ref = Ref}, Args) ->
    try Fun(Ref)
    catch error:badarg -> ?BADARG(Args, 1, ?NOT_LIMITER)
    end.

-spec limit_nif(fun((reference()) -> T), limit(), [term()]) -> T.
limit_nif(Fun, #sluice_limit{ref = Ref}, Args) ->
    try Fun(Ref)
    catch error:badarg -> ?BADARG(Args, 1, ?NOT_LIMIT)
    end.
