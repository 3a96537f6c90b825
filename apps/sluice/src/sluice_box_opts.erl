%% @private
%% @doc The options of `sluice_box:new/1' and `sluice_buckets:new/1',
%% checked with `sluice_opts' in the caller.
-module(sluice_box_opts).

-export([box/1, buckets/1, nif_box/1, nif_buckets/1, made/1]).

%% @doc The options of `sluice_box:new/1' checked, with their defaults
%% (the owner: the caller).
-spec box(term()) -> {ok, map()} | {error, {bad_option, term()}}.
box(Opts) ->
    Inf = fun(Check) -> fun(V) -> V =:= infinity orelse Check(V) end end,
    Spec = [{max, required, fun sluice_opts:pos_int/1},
            {type, queue, sluice_opts:one_of([queue, stack, keep_old])},
            {owner, undefined, fun sluice_opts:local_pid/1},
            {heir, none, fun heir/1},
            {heir_data, undefined, fun sluice_opts:any/1},
            {max_bytes, infinity, Inf(fun sluice_opts:pos_int/1)},
            {max_age, infinity, Inf(fun sluice_opts:ms/1)},
            {codel, none, fun codel/1},
            {red_min, 0, fun sluice_opts:non_neg_int/1},
            {red_max, 0, fun sluice_opts:non_neg_int/1},
            {red_prob, 0.0, fun sluice_opts:rate/1},
            {clock, system, sluice_opts:one_of([system, manual])},
            {name, undefined, fun sluice_opts:any/1},
            {initial_state, passive, sluice_opts:one_of([passive, notify])}],
    case sluice_opts:validate(Opts, Spec, #{owner => self()}) of
        {ok, #{red_min := Min, red_max := RedMax}} when Min > RedMax ->
            {error, {bad_option, red_max}};
        Result ->
            Result
    end.

-spec codel(term()) -> boolean().
codel(none) -> true;
codel(#{} = V) -> maps:size(maps:without([target, interval], V)) =:= 0
                      andalso lists:all(fun sluice_opts:ms/1, maps:values(V)).

%% @doc The options map of `sluice_nif:box_new/1', from the checked
%% options: 0 turns a limit or a policy off.
-spec nif_box(map()) -> #{atom() => term()}.
nif_box(#{type := Type, max := Max, max_bytes := MaxBytes, owner := Owner,
          initial_state := Initial, max_age := MaxAge, codel := Codel, red_min := RedMin,
          red_max := RedMax, red_prob := RedProb, clock := Clock}) ->
    {Target, Interval} = case Codel of
                             none -> {0, 0};
                             #{} -> {maps:get(target, Codel, 5), maps:get(interval, Codel, 100)}
                         end,
    #{type => Type, max => Max, max_bytes => off(MaxBytes), owner => Owner,
      notify => Initial =:= notify, max_age => off(MaxAge), codel_target => Target,
      codel_interval => Interval, red_min => RedMin, red_max => RedMax,
      red_prob => float(RedProb), manual_clock => Clock =:= manual}.

%% @doc The options map of `sluice_nif:buckets_new/1', from the checked
%% options.
-spec nif_buckets(map()) -> #{atom() => term()}.
nif_buckets(#{max := Max, width := Width, max_age := MaxAge, order := Order, within := Within,
              when_full := WhenFull, owner := Owner, clock := Clock,
              initial_state := Initial}) ->
    #{max => Max, width => Width, max_age => off(MaxAge), order => Order, within => Within,
      when_full => WhenFull, manual_clock => Clock =:= manual, owner => Owner,
      notify => Initial =:= notify}.

-spec off(infinity | non_neg_integer()) -> non_neg_integer().
off(infinity) -> 0;
off(N) -> N.

%% @doc What `sluice_nif:box_new/1' or `buckets_new/1' answered, for the
%% caller of `new/1': `{ok, Ref}', or the option that the library refused
%% (`{error, zero_max}': a bound of 0).
-spec made(reference() | {error, zero_max}) -> {ok, reference()} | {error, {bad_option, max}}.
made({error, zero_max}) -> {error, {bad_option, max}};
made(Ref) -> {ok, Ref}.

%% @doc The options of `sluice_buckets:new/1' checked, with their defaults
%% (the owner: the caller).
-spec buckets(term()) -> {ok, map()} | {error, {bad_option, term()}}.
buckets(Opts) ->
    Spec = [{max, required, fun sluice_opts:pos_int/1},
            {width, required, fun sluice_opts:ms/1},
            {max_age, infinity, fun(V) -> V =:= infinity orelse sluice_opts:ms(V) end},
            {order, newest_first, sluice_opts:one_of([newest_first, oldest_first])},
            {within, lifo, sluice_opts:one_of([lifo, fifo])},
            {when_full, drop_oldest, sluice_opts:one_of([drop_oldest, drop_new])},
            {owner, undefined, fun sluice_opts:local_pid/1},
            {heir, none, fun heir/1},
            {heir_data, undefined, fun sluice_opts:any/1},
            {clock, system, sluice_opts:one_of([system, manual])},
            {initial_state, passive, sluice_opts:one_of([passive, notify])}],
    sluice_opts:validate(Opts, Spec, #{owner => self()}).

%% A heir: `none', a local pid, or a name resolved when the owner dies
%% (pobox's shapes): a registered name, `{global, Name}', `{via, Mod, Name}'.
-spec heir(term()) -> boolean().
heir(none) -> true;
heir(Name) when is_atom(Name) -> true;
heir({global, _}) -> true;
heir({via, Mod, _}) -> is_atom(Mod);
heir(V) -> sluice_opts:local_pid(V).
