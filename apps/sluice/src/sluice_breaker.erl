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
%% A breaker's state is a few words behind a NIF, and the NIF library keeps
%% the names (a sharded hash map of name terms, compared with `=:=');
%% {@link ask/2} and {@link melt/1} are one NIF call each on the name, on
%% the caller's scheduler. Neither arms a timer nor sends a message: an
%% open breaker becomes half-open when an ask finds its delay over.
%% `install/2' and `remove/1' are O(1) too (one shard of the map locked;
%% no `persistent_term', so no node-wide literal GC), so breakers may come
%% and go with the connections they guard.
%%
%% == Alarms and events ==
%% The NIF library queues each breaker whose state flips between blown
%% (open or half-open) and not, and each breaker removed or replaced;
%% `sluice_breaker_server' drains that queue every 50 ms, so its work
%% follows what changed, not how many breakers are installed. A breaker
%% that blew sets the SASL alarm `{{sluice_breaker, Name}, blown}' (when
%% `alarm_handler' runs) and sends `{sluice_breaker, Name, blown}' to the
%% processes that {@link subscribe/0}d; once closed again (or removed), the
%% alarm is cleared and they get `{sluice_breaker, Name, healed}'. So alarms
%% follow within 50 ms, and still no ask or melt sends a message. A
%% restarted server lists the blown breakers once and puts the alarms
%% right; subscriptions are kept in a table, so they survive it.
%%
%% == Linearizability ==
%% Each ask and each melt is atomic against the others: a melt that blows
%% the breaker is seen by every ask that starts after it returns; at most
%% `probes' asks get through a half-open breaker however many race.
-module(sluice_breaker).

-include("sluice_error.hrl").

-export([install/2, ask/2, melt/1, run/3, reset/1, remove/1, circuit_disable/1,
         circuit_enable/1, info/1, set_time/2, subscribe/0, unsubscribe/0]).
-export_type([options/0]).

-type options() :: #{strategy => tuple(), reset => pos_integer() | manual,
                     probes => pos_integer(), backoff => number(),
                     max_reset => pos_integer(), jitter => number(),
                     slow => pos_integer() | infinity, run_times => boolean(),
                     clock => system | manual}.
%% `strategy' (default `{standard, 10, 10000}'): `{standard, MaxR, MaxT}'
%% (blown on the melt after `MaxR' melts within `MaxT' ms),
%% `{fault_injection, Rate, MaxR, MaxT}' (as standard, and asks of a closed
%% breaker blown at random with probability `Rate', counted as
%% `injected'), or `{failure_rate, Ratio, MinCalls, WindowMs}' (blown when
%% melts / asks over the window reach `Ratio' with at least `MinCalls'
%% asks). `reset' (default 10000): ms before probing, or `manual' (until
%% {@link reset/1}); `probes' (default 1); `backoff' (default 1.0): factor
%% (at least 1) the delay grows by at each failed probe, up to `max_reset'
%% (default 10 times `reset'); `jitter' (default 0.0): fraction of the delay
%% added at random; `slow' (default `infinity'): ms after which a {@link
%% run/3} counts as failed; `run_times' (default `false'): record how long
%% the funs of {@link run/3} take (the `run' histogram of {@link
%% sluice:tools/0}; always with `slow', which measures them anyway; two
%% clock reads per run, tens of nanoseconds); `clock' (default `system')
%% or `manual' ({@link set_time/2}). Unknown keys and bad values are refused with
%% `{error, {bad_option, Key}}'.

%% @doc Installs (or replaces) the breaker `Name' (any term). `Opts' is a
%% map of {@link options()} or fuse's tuple `{Strategy, {reset, Ms}}' (the
%% map `#{strategy => Strategy, reset => Ms}'). A breaker replaced while
%% disabled ({@link circuit_disable/1}) stays disabled, as in fuse: an
%% operator's disable outlives an application re-installing its breakers.
-spec install(Name, Opts) -> ok | {error, {bad_option, term()}} when
      Name :: term(),
      Opts :: options() | {tuple(), {reset, pos_integer()}}.
install(Name, {Strategy, {reset, Ms}}) ->
    install(Name, #{strategy => Strategy, reset => Ms});
install(Name, Opts) ->
    case sluice_opts:validate(Opts, sluice_breaker_util:option_spec()) of
        {ok, #{strategy := Strategy, reset := Reset, slow := Slow} = O} ->
            Delay = case Reset of manual -> 0; _ -> Reset end,
            MaxReset = case O of
                           #{max_reset := default} -> min(10 * Delay, (1 bsl 40) - 1);
                           #{max_reset := M} -> M
                       end,
            SlowMs = case Slow of infinity -> 0; _ -> Slow end,
            Ref = sluice_nif:breaker_new(#{strategy => nif_strategy(Strategy), delay => Delay,
                                           probes => maps:get(probes, O),
                                           backoff => float(maps:get(backoff, O)),
                                           max_delay => MaxReset,
                                           jitter => float(maps:get(jitter, O)),
                                           manual_clock => maps:get(clock, O) =:= manual,
                                           timed => maps:get(run_times, O)}),
            _ = disabled(Name) andalso sluice_nif:breaker_control(Ref, disable) =:= ok,
            sluice_nif:breaker_install(Name, Ref, SlowMs);
        {error, _} = Error ->
            Error
    end.

-spec disabled(term()) -> boolean().
disabled(Name) ->
    case sluice_nif:breaker_lookup(Name) of
        {Old, _} -> maps:get(state, sluice_nif:breaker_info(Old)) =:= disabled;
        undefined -> false
    end.

%% The strategy map of `sluice_nif:breaker_new/1'.
-spec nif_strategy(tuple()) -> #{type := atom(), atom() => number()}.
nif_strategy({standard, MaxR, MaxT}) -> #{type => standard, max_r => MaxR, max_t => MaxT};
nif_strategy({fault_injection, Rate, MaxR, MaxT}) ->
    #{type => fault_injection, rate => float(Rate), max_r => MaxR, max_t => MaxT};
nif_strategy({failure_rate, Ratio, MinCalls, Window}) ->
    #{type => failure_rate, ratio => float(Ratio), min_calls => MinCalls, window => Window}.

%% @doc `ok' (go ahead), `blown', or `{error, not_found}'. `Context' is
%% accepted for fuse's shape (`sync', `async_dirty'); every ask is the same
%% one NIF call.
-spec ask(Name, Context) -> ok | blown | {error, not_found} when
      Name :: term(),
      Context :: term().
ask(Name, _Context) ->
    sluice_nif:breaker_ask_name(Name).

%% @doc Reports a failure of the dependency behind `Name'; `{error,
%% not_found}' (where fuse answers `ok') when no breaker has that name, so
%% a misspelt or removed name shows.
-spec melt(Name) -> ok | {error, not_found} when Name :: term().
melt(Name) ->
    sluice_nif:breaker_melt_name(Name).

%% @doc Asks, then runs `Fun()' and reports its outcome: `{error, _}'
%% results, exceptions (re-raised after melting) and calls slower than
%% `slow' melt the breaker; other results count as successes (which close
%% a half-open breaker). Returns `Fun''s result, `blown' or
%% `{error, not_found}'. With `{classify, Classifier}' as `Context',
%% `Classifier(Result)' says `ok' or `melt' instead. With `slow' or
%% `run_times', how long `Fun' took (exceptions included) is recorded in
%% the breaker's `run' histogram of {@link sluice:tools/0}, measured by the
%% NIF library in the two calls `run/3' makes anyway (the ask before `Fun',
%% the report after it).
-spec run(Name, Fun, Context) -> Result | blown | {error, not_found} when
      Name :: term(),
      Fun :: fun(() -> Result),
      Context :: term().
run(Name, Fun, Context) when is_function(Fun, 0) ->
    Classify = case Context of
                   {classify, F} when is_function(F, 1) -> F;
                   {classify, _} -> ?BADARG([Name, Fun, Context], 3,
                                            "{classify, F} needs a fun of arity 1");
                   _ -> fun({error, _}) -> melt; (_) -> ok end
               end,
    case sluice_nif:breaker_ask_to_run(Name) of
        Start when is_integer(Start) ->
            sluice_breaker_util:run_checked(Name, Start, Fun, Classify);
        Refused -> Refused
    end;
run(Name, Fun, Context) ->
    ?BADARG([Name, Fun, Context], 2, "must be a fun of arity 0").

%% @doc Heals the breaker and forgets its melts.
-spec reset(Name) -> ok | {error, not_found} when Name :: term().
reset(Name) -> control(Name, reset).

%% @doc Blows the breaker until {@link circuit_enable/1}.
-spec circuit_disable(Name) -> ok | {error, not_found} when Name :: term().
circuit_disable(Name) -> control(Name, disable).

%% @doc Ends {@link circuit_disable/1}: the breaker is healed.
-spec circuit_enable(Name) -> ok | {error, not_found} when Name :: term().
circuit_enable(Name) -> control(Name, enable).

-spec control(term(), reset | disable | enable) -> ok | {error, not_found}.
control(Name, What) ->
    case sluice_nif:breaker_lookup(Name) of
        {Ref, _} -> sluice_nif:breaker_control(Ref, What);
        undefined -> {error, not_found}
    end.

%% @doc Removes the breaker.
-spec remove(Name) -> ok | {error, not_found} when Name :: term().
remove(Name) ->
    case sluice_nif:breaker_remove(Name) of
        true -> ok;
        false -> {error, not_found}
    end.

%% @doc The state (`closed', `open', `half_open', `disabled') and counters:
%% asks, ok, blown (injected included), injected, melts, trips, probes.
-spec info(Name) -> #{atom() => term()} | {error, not_found} when Name :: term().
info(Name) ->
    case sluice_nif:breaker_lookup(Name) of
        {Ref, _} ->
            sluice_nif:breaker_info(Ref);
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

%% @doc Moves a manual clock to `Ms' milliseconds (never back); `badarg'
%% for a breaker on the system clock.
-spec set_time(Name, Ms) -> ok | {error, not_found} when
      Name :: term(),
      Ms :: non_neg_integer().
set_time(Name, Ms) when is_integer(Ms), Ms >= 0, Ms < 1 bsl 40 ->
    case sluice_nif:breaker_lookup(Name) of
        {Ref, _} ->
            case sluice_nif:breaker_set_time(Ref, Ms) of
                ok -> ok;
                {error, system_clock} ->
                    ?BADARG([Name, Ms], 1, "is a breaker on the system clock (not clock => manual)")
            end;
        undefined ->
            {error, not_found}
    end;
set_time(Name, Ms) ->
    ?BADARG([Name, Ms], 2, "must be a non-negative integer of milliseconds below 2^40").
