%% @doc Circuit breakers (Erlang in Anger, 3.2.2), fuse's shape: callers
%% `ask' before using a dependency and `melt' when it fails; enough melts
%% blow the breaker and callers are refused at once, then it heals.
%%
%% == States ==
%% ```
%%            melts reach the strategy's limit
%%   closed ---------------------------------> open (for the reset delay)
%%     ^                                         |    ^
%%     |          an ask after the reset delay   |    | a melt: delay * backoff
%%     |                                         v    |  (capped, with jitter)
%%     +------------------------------------- half_open
%%       `probes' successes, or every probe out and no melt for a delay
%%
%%   disabled (circuit_disable/1): every ask blown until circuit_enable/1
%% '''
%% == The ask and melt path ==
%% A breaker's state is a few words behind a NIF; {@link ask/2} and
%% {@link melt/1} are one NIF call each, on the caller's scheduler, after a
%% `persistent_term' read of the name. Neither arms a timer nor sends a
%% message: an open breaker becomes half-open when an ask finds its delay
%% over. Only `install/2' and `remove/1' write (`persistent_term' updates
%% are costly, so breakers are meant to be installed once).
%%
%% == Alarms and events ==
%% `sluice_breaker_server' looks, every 50 ms, at a count of the breakers
%% blown (one word in the NIF library, raised by the melt that blows one):
%% when it moved, or while some breaker is blown, it reads the installed
%% breakers' states. A breaker found blown sets the SASL alarm
%% `{{sluice_breaker, Name}, blown}' (when `alarm_handler' runs) and sends
%% `{sluice_breaker, Name, blown}' to the processes that {@link
%% subscribe/0}d; once closed again, the alarm is cleared and they get
%% `{sluice_breaker, Name, healed}'. So alarms follow within 50 ms, and
%% still no ask or melt sends a message.
%%
%% == Linearizability ==
%% Each ask and each melt is atomic against the others: a melt that blows
%% the breaker is seen by every ask that starts after it returns; at most
%% `probes' asks get through a half-open breaker however many race.
-module(sluice_breaker).

-export([install/2, ask/2, melt/1, run/3, reset/1, remove/1, circuit_disable/1,
         circuit_enable/1, info/1, set_time/2, subscribe/0, unsubscribe/0]).
-export_type([options/0]).

-define(KEY(Name), {sluice_breaker, Name}).

%% `strategy' (default `{standard, 10, 10000}'): `{standard, MaxR, MaxT}'
%% (blown on the melt after `MaxR' melts within `MaxT' ms),
%% `{fault_injection, Rate, MaxR, MaxT}' (as standard, and asks of a closed
%% breaker blown at random with probability `Rate', counted as
%% `injected'), or `{failure_rate, Ratio, MinCalls, WindowMs}' (blown when
%% melts / asks over the window reach `Ratio' with at least `MinCalls'
%% asks). `reset' (default 10000): ms before probing, or `manual' (until
%% {@link reset/1}); `probes' (default 1); `backoff' (default 1.0): factor
%% the delay grows by at each failed probe, up to `max_reset' (default 10
%% times `reset'); `jitter' (default 0.0): fraction of the delay added at
%% random; `slow' (default `infinity'): ms after which a {@link run/3}
%% counts as failed; `clock': `system' or `manual' ({@link set_time/2}).
-type options() :: #{strategy => tuple(), reset => pos_integer() | manual,
                     probes => pos_integer(), backoff => number(),
                     max_reset => pos_integer(), jitter => number(),
                     slow => pos_integer() | infinity, clock => system | manual}.

%% @doc Installs (or replaces) the breaker `Name' (any term).
-spec install(term(), options()) -> ok | {error, {bad_option, atom()}}.
install(Name, Opts) when is_map(Opts) ->
    Strategy = maps:get(strategy, Opts, {standard, 10, 10000}),
    Reset = maps:get(reset, Opts, 10000),
    Delay = case Reset of manual -> 0; _ -> Reset end,
    Recovery = {Delay, maps:get(probes, Opts, 1), float(maps:get(backoff, Opts, 1.0)),
                maps:get(max_reset, Opts, 10 * Delay), float(maps:get(jitter, Opts, 0.0))},
    Manual = maps:get(clock, Opts, system) =:= manual,
    try sluice_nif:breaker_new(nif_strategy(Strategy), Recovery, Manual) of
        Ref ->
            persistent_term:put(?KEY(Name), {Ref, maps:get(slow, Opts, infinity)}),
            sluice_breaker_server:installed(Name)
    catch
        error:badarg -> {error, {bad_option, bad_key(Strategy, Recovery)}}
    end.

-spec nif_strategy(tuple()) -> tuple().
nif_strategy({fault_injection, Rate, MaxR, MaxT}) -> {fault_injection, float(Rate), MaxR, MaxT};
nif_strategy({failure_rate, Ratio, MinCalls, Window}) ->
    {failure_rate, float(Ratio), MinCalls, Window};
nif_strategy(Other) -> Other.

-spec bad_key(term(), tuple()) -> atom().
bad_key({standard, R, T}, _) when is_integer(R), R >= 0, is_integer(T), T > 0 -> reset;
bad_key({fault_injection, _, _, _}, _) -> reset;
bad_key({failure_rate, _, _, _}, _) -> reset;
bad_key(_, _) -> strategy.

-spec ref(term()) -> {reference(), pos_integer() | infinity} | undefined.
ref(Name) ->
    persistent_term:get(?KEY(Name), undefined).

%% @doc `ok' (go ahead), `blown', or `{error, not_found}'. `Context' is
%% accepted for fuse's shape (`sync', `async_dirty'); every ask is the same
%% one NIF call.
-spec ask(term(), term()) -> ok | blown | {error, not_found}.
ask(Name, _Context) ->
    case persistent_term:get(?KEY(Name), undefined) of
        {Ref, _} -> sluice_nif:breaker_ask(Ref);
        undefined -> {error, not_found}
    end.

%% @doc Reports a failure of the dependency behind `Name'.
-spec melt(term()) -> ok | {error, not_found}.
melt(Name) ->
    case ref(Name) of
        {Ref, _} -> _ = sluice_nif:breaker_melt(Ref), ok;
        undefined -> {error, not_found}
    end.

%% @doc Asks, then runs `Fun()' and reports its outcome: `{error, _}'
%% results, exceptions (re-raised after melting) and calls slower than
%% `slow' melt the breaker; other results count as successes (which close
%% a half-open breaker). Returns `Fun''s result, `blown' or
%% `{error, not_found}'. With `{classify, Classifier}' as `Context',
%% `Classifier(Result)' says `ok' or `melt' instead.
-spec run(term(), fun(() -> Result), term()) -> Result | blown | {error, not_found}.
run(Name, Fun, Context) when is_function(Fun, 0) ->
    case ref(Name) of
        {Ref, Slow} ->
            case sluice_nif:breaker_ask(Ref) of
                blown -> blown;
                ok -> run_checked(Ref, Slow, Fun, classifier(Context))
            end;
        undefined ->
            {error, not_found}
    end.

-spec run_checked(reference(), pos_integer() | infinity, fun(() -> R),
                  fun((R) -> ok | melt)) -> R.
run_checked(Ref, Slow, Fun, Classify) ->
    T0 = erlang:monotonic_time(millisecond),
    try Fun() of
        Result ->
            Late = Slow =/= infinity andalso erlang:monotonic_time(millisecond) - T0 > Slow,
            _ = case Late orelse Classify(Result) =:= melt of
                    true -> sluice_nif:breaker_melt(Ref);
                    false -> sluice_nif:breaker_succeed(Ref)
                end,
            Result
    catch
        Class:Reason:Stack ->
            _ = sluice_nif:breaker_melt(Ref),
            erlang:raise(Class, Reason, Stack)
    end.

-spec classifier(term()) -> fun((term()) -> ok | melt).
classifier({classify, F}) when is_function(F, 1) -> F;
classifier(_) -> fun({error, _}) -> melt; (_) -> ok end.

%% @doc Heals the breaker and forgets its melts.
-spec reset(term()) -> ok | {error, not_found}.
reset(Name) -> control(Name, reset).

%% @doc Blows the breaker until {@link circuit_enable/1}.
-spec circuit_disable(term()) -> ok | {error, not_found}.
circuit_disable(Name) -> control(Name, disable).

%% @doc Ends {@link circuit_disable/1}: the breaker is healed.
-spec circuit_enable(term()) -> ok | {error, not_found}.
circuit_enable(Name) -> control(Name, enable).

-spec control(term(), reset | disable | enable) -> ok | {error, not_found}.
control(Name, What) ->
    case ref(Name) of
        {Ref, _} -> sluice_nif:breaker_control(Ref, What);
        undefined -> {error, not_found}
    end.

%% @doc Removes the breaker.
-spec remove(term()) -> ok | {error, not_found}.
remove(Name) ->
    case persistent_term:erase(?KEY(Name)) of
        true -> sluice_breaker_server:removed(Name);
        false -> {error, not_found}
    end.

%% @doc The state (`closed', `open', `half_open', `disabled') and counters:
%% asks, ok, blown (injected included), injected, melts, trips, probes.
-spec info(term()) -> #{atom() => term()} | {error, not_found}.
info(Name) ->
    case ref(Name) of
        {Ref, _} ->
            {State, {Asks, Ok, Blown, Injected, Melts, Trips, Probes}} =
                sluice_nif:breaker_info(Ref),
            #{state => State, asks => Asks, ok => Ok, blown => Blown, injected => Injected,
              melts => Melts, trips => Trips, probes => Probes};
        undefined ->
            {error, not_found}
    end.

%% @doc Asks for `{sluice_breaker, Name, blown | healed}' messages about
%% every breaker.
-spec subscribe() -> ok.
subscribe() ->
    sluice_breaker_server:subscribe(self()).

%% @doc Stops those messages.
-spec unsubscribe() -> ok.
unsubscribe() ->
    sluice_breaker_server:unsubscribe(self()).

%% @doc Moves a manual clock to `Ms' milliseconds (never back).
-spec set_time(term(), non_neg_integer()) -> ok | {error, not_found}.
set_time(Name, Ms) ->
    case ref(Name) of
        {Ref, _} -> sluice_nif:breaker_set_time(Ref, Ms);
        undefined -> {error, not_found}
    end.
