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
%% allowed. Over any window of `W' ms a key gets at most `burst + W *
%% limit / period' requests. Keys are any term (hashed, never made into
%% atoms). A key may have a limit of its own ({@link set_override/3}: a
%% premium account), and a `global' limit may hold over all keys at once:
%% a request is allowed when both allow it.
%%
%% The key table is bounded by `max_keys' (default 100 000): a key whose
%% allowance is full again is the same as a key never seen, so such idle
%% keys are dropped first when the table is full; if none is idle, the key
%% closest to idle goes (it regains its burst early; `info/1' counts it as
%% evicted). Each key costs about 40 bytes.
-module(sluice_limit).

-export([new_rate/1, check/2, check/3, set_override/3, set_time/2, sweep/1, info/1]).
-export([new_concurrency/1, acquire/1, release/1, run/2, resize/2]).
-export_type([limiter/0, rate_options/0, limit/0, token/0]).

-include("sluice_error.hrl").

-record(sluice_limiter, {ref :: reference()}).
-record(sluice_limit, {ref :: reference()}).

-opaque limiter() :: #sluice_limiter{}.
-opaque limit() :: #sluice_limit{}.
-opaque token() :: {limit(), {non_neg_integer(), pos_integer()}}.

%% Most holders a concurrency limit can be resized to.
-define(MAX_HOLDERS, 4096).
%% `limit' (mandatory) requests per `period' ms (default 1000) with a burst
%% of `burst' (default `limit'); `global': a limit over all keys (`#{limit,
%% period, burst}', default none); `max_keys' (default 100 000); `clock':
%% `system' (default) or `manual' ({@link set_time/2}, for tests).
-type rate_options() :: #{limit := pos_integer(), period => pos_integer(),
                          burst => pos_integer(), global => map() | none,
                          max_keys => pos_integer(), clock => system | manual}.

%% @doc A rate limiter (see {@link rate_options()}).
-spec new_rate(rate_options()) -> {ok, limiter()} | {error, {bad_option, atom()}}.
new_rate(#{limit := _} = Opts) ->
    Global = maps:get(global, Opts, none),
    MaxKeys = maps:get(max_keys, Opts, 100000),
    Clock = maps:get(clock, Opts, system),
    case {spec(Opts), Global =:= none orelse spec(Global)} of
        {{error, _} = Bad, _} ->
            Bad;
        {_, {error, _}} ->
            {error, {bad_option, global}};
        {Spec, GlobalSpec} when is_integer(MaxKeys), MaxKeys > 0,
                                (Clock =:= system orelse Clock =:= manual) ->
            G = case GlobalSpec of true -> none; _ -> GlobalSpec end,
            {ok, #sluice_limiter{ref = sluice_nif:rate_new(Spec, G, MaxKeys,
                                                           Clock =:= manual)}};
        _ when not is_integer(MaxKeys); MaxKeys =< 0 ->
            {error, {bad_option, max_keys}};
        _ ->
            {error, {bad_option, clock}}
    end;
new_rate(_) ->
    {error, {bad_option, limit}}.

%% `{Limit, PeriodMs, Burst}' of a rate map.
-spec spec(map()) -> {pos_integer(), pos_integer(), pos_integer()} | {error, {bad_option, atom()}}.
spec(#{limit := Limit} = M) when is_integer(Limit), Limit > 0 ->
    Period = maps:get(period, M, 1000),
    Burst = maps:get(burst, M, Limit),
    if
        not is_integer(Period); Period =< 0; Period >= 1 bsl 40 -> {error, {bad_option, period}};
        not is_integer(Burst); Burst =< 0 -> {error, {bad_option, burst}};
        Period * 1000000 div Limit =:= 0 -> {error, {bad_option, limit}};
        true -> {Limit, Period, Burst}
    end;
spec(_) ->
    {error, {bad_option, limit}}.

%% @doc Checks a request for `Key': `ok' (counted) or `{error, {retry_after,
%% Ms}}'.
-spec check(limiter(), term()) -> ok | {error, {retry_after, non_neg_integer()}}.
check(Limiter, Key) ->
    check(Limiter, Key, 1).

%% @doc As {@link check/2} for a request that costs `Cost' units.
-spec check(limiter(), term(), pos_integer()) -> ok | {error, {retry_after, non_neg_integer()}}.
check(#sluice_limiter{ref = Ref}, Key, Cost) when is_integer(Cost), Cost > 0 ->
    sluice_nif:rate_check(Ref, Key, Cost);
check(Limiter, Key, Cost) ->
    ?BADARG([Limiter, Key, Cost], 3, "must be a positive integer").

%% @doc Gives `Key' a limit of its own (`#{limit, period, burst}'), or the
%% limiter's again (`default').
-spec set_override(limiter(), term(), map() | default) -> ok | {error, {bad_option, atom()}}.
set_override(#sluice_limiter{ref = Ref}, Key, default) ->
    sluice_nif:rate_override(Ref, Key, none);
set_override(#sluice_limiter{ref = Ref}, Key, #{} = Rate) ->
    case spec(Rate) of
        {error, _} = Bad -> Bad;
        Spec -> sluice_nif:rate_override(Ref, Key, Spec)
    end.

%% @doc Moves a manual clock to `Ms' milliseconds (never back).
-spec set_time(limiter(), non_neg_integer()) -> ok.
set_time(#sluice_limiter{ref = Ref}, Ms) when is_integer(Ms), Ms >= 0 ->
    sluice_nif:rate_set_time(Ref, Ms).

%% @doc A concurrency limit of `max' holders at once (`max_holders', default
%% the larger of `max' and 64, bounds {@link resize/2}).
-spec new_concurrency(#{max := pos_integer(), max_holders => pos_integer()}) ->
    {ok, limit()} | {error, {bad_option, atom()}}.
new_concurrency(#{max := Max} = Opts) when is_integer(Max), Max > 0, Max =< ?MAX_HOLDERS ->
    Cap = maps:get(max_holders, Opts, max(Max, 64)),
    case is_integer(Cap) andalso Cap >= Max andalso Cap =< ?MAX_HOLDERS of
        true ->
            Ref = sluice_nif:lock_new(Max, Cap),
            _ = [ok = sluice_nif:lock_fill(Ref, I, token, none) || I <- lists:seq(0, Max - 1)],
            {ok, #sluice_limit{ref = Ref}};
        false ->
            {error, {bad_option, max_holders}}
    end;
new_concurrency(_) ->
    {error, {bad_option, max}}.

%% @doc Takes a place under the limit: `{ok, Token}', or `{error, limit}'
%% at once when `max' holders hold one.
-spec acquire(limit()) -> {ok, token()} | {error, limit}.
acquire(#sluice_limit{ref = Ref} = Limit) ->
    case sluice_nif:lock_checkout(Ref) of
        {ok, Loan, _Token} -> {ok, {Limit, Loan}};
        {error, busy} -> {error, limit}
    end.

%% @doc Gives a place back: `ok', or `{error, not_held}' when the token was
%% released already.
-spec release(token()) -> ok | {error, not_held}.
release({#sluice_limit{ref = Ref}, Loan}) ->
    case sluice_nif:lock_checkin(Ref, Loan) of
        ok -> ok;
        {error, not_lent} -> {error, not_held}
    end.

%% @doc Runs `Fun()' under the limit and releases, also when it raises:
%% `Fun''s result, or `{error, limit}'.
-spec run(limit(), fun(() -> Result)) -> Result | {error, limit}.
run(Limit, Fun) when is_function(Fun, 0) ->
    case acquire(Limit) of
        {ok, Token} ->
            try Fun() after _ = release(Token) end;
        {error, limit} = Refused ->
            Refused
    end.

%% @doc Changes `max' (up to `max_holders'); places above it held now are
%% lost when released.
-spec resize(limit(), pos_integer()) -> ok | {error, too_many}.
resize(#sluice_limit{ref = Ref}, Max) when is_integer(Max), Max > 0 ->
    {_, _, _, _, _, Old, Cap} = sluice_nif:lock_info(Ref),
    case Max =< Cap of
        true ->
            _ = sluice_nif:lock_resize(Ref, Max),
            New = lists:seq(min(Old, Max), Max - 1),
            _ = [sluice_nif:lock_fill(Ref, I, token, none)
                 || I <- New, sluice_nif:lock_slot(Ref, I) =:= empty],
            ok;
        false ->
            {error, too_many}
    end.

%% @doc Forgets the keys whose allowance is full again; how many went.
-spec sweep(limiter()) -> non_neg_integer().
sweep(#sluice_limiter{ref = Ref}) ->
    sluice_nif:rate_sweep(Ref).

%% @doc Counters. A rate limiter: requests allowed and refused, keys
%% evicted before they were idle, keys held. A concurrency limit: places
%% acquired and refused, holders that died holding one, places held now,
%% the most held at once, and `max'.
-spec info(limiter() | limit()) -> #{atom() => non_neg_integer()}.
info(#sluice_limiter{ref = Ref}) ->
    {Allowed, Refused, Evicted, Keys} = sluice_nif:rate_info(Ref),
    #{allowed => Allowed, refused => Refused, evicted => Evicted, keys => Keys};
info(#sluice_limit{ref = Ref}) ->
    {Acquired, Refused, Deaths, Held, Peak, Max, _Cap} = sluice_nif:lock_info(Ref),
    #{acquired => Acquired, refused => Refused, deaths => Deaths, held => Held, peak => Peak,
      max => Max}.
