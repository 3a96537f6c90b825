%% @private
%% @doc What `sluice_breaker' needs beside its NIF calls: the options spec
%% of `install/2' and the body of `run/3'.
-module(sluice_breaker_util).

-export([option_spec/0, run_checked/4]).

%% The largest melt count a strategy may name (the NIF keeps 32 bits).
-define(MAX_R, (1 bsl 32)).

%% @doc The options of `sluice_breaker:install/2', checked in this order.
%% `max_reset' defaults to 10 times `reset' (`default' stands for that).
-spec option_spec() -> sluice_opts:spec().
option_spec() ->
    [{strategy, {standard, 10, 10000}, fun strategy/1},
     {reset, 10000, fun(V) -> V =:= manual orelse sluice_opts:ms(V) end},
     {probes, 1, sluice_opts:pos_int_upto(?MAX_R - 1)},
     {backoff, 1.0, fun(V) -> is_number(V) andalso V >= 1 andalso float(V) < 1.0e300 end},
     {max_reset, default, fun(V) -> V =:= default orelse sluice_opts:ms(V) end},
     {jitter, 0.0, fun sluice_opts:rate/1},
     {slow, infinity, fun(V) -> V =:= infinity orelse sluice_opts:ms(V) end},
     {clock, system, sluice_opts:one_of([system, manual])}].

-spec strategy(term()) -> boolean().
strategy({standard, MaxR, MaxT}) ->
    melts(MaxR) andalso sluice_opts:ms(MaxT);
strategy({fault_injection, Rate, MaxR, MaxT}) ->
    sluice_opts:rate(Rate) andalso melts(MaxR) andalso sluice_opts:ms(MaxT);
strategy({failure_rate, Ratio, MinCalls, Window}) ->
    sluice_opts:rate(Ratio) andalso sluice_opts:non_neg_int(MinCalls)
        andalso sluice_opts:ms(Window);
strategy(_) ->
    false.

-spec melts(term()) -> boolean().
melts(N) -> is_integer(N) andalso N >= 0 andalso N < ?MAX_R.

%% @doc Runs `Fun' for the breaker `Name' whose ask said go, and reports
%% its outcome by name (`SlowMs' 0: no limit) with the time it took (the
%% breaker's run times): one NIF call for both. A breaker removed or
%% replaced meanwhile gets the report of its name, or none.
-spec run_checked(term(), non_neg_integer(), fun(() -> R), fun((R) -> ok | melt)) -> R.
run_checked(Name, SlowMs, Fun, Classify) ->
    T0 = erlang:monotonic_time(),
    try Fun() of
        Result ->
            Ns = elapsed(T0),
            Late = SlowMs > 0 andalso Ns > SlowMs * 1000000,
            _ = sluice_nif:breaker_report_name(Name, Late orelse Classify(Result) =:= melt, Ns),
            Result
    catch
        Class:Reason:Stack ->
            _ = sluice_nif:breaker_report_name(Name, true, elapsed(T0)),
            erlang:raise(Class, Reason, Stack)
    end.

%% Nanoseconds since `T0' (native monotonic time).
-spec elapsed(integer()) -> non_neg_integer().
elapsed(T0) ->
    max(0, erlang:convert_time_unit(erlang:monotonic_time() - T0, native, nanosecond)).
