%% @private
%% @doc The options of `sluice_box:new/1' and `sluice_buckets:new/1',
%% checked with `sluice_opts' in the caller.
-module(sluice_box_opts).

-export([box/1, buckets/1, policies/1]).

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

%% @doc The NIF's policy tuple (see `sluice_nif:box_new/6').
-spec policies(map()) -> {non_neg_integer(), non_neg_integer(), non_neg_integer(),
                          non_neg_integer(), non_neg_integer(), float(), boolean()}.
policies(#{max_age := MaxAge, codel := Codel, red_min := RedMin, red_max := RedMax,
           red_prob := RedProb, clock := Clock}) ->
    Age = case MaxAge of infinity -> 0; _ -> MaxAge end,
    {Target, Interval} = case Codel of
                             none -> {0, 0};
                             #{} -> {maps:get(target, Codel, 5), maps:get(interval, Codel, 100)}
                         end,
    {Age, Target, Interval, RedMin, RedMax, float(RedProb), Clock =:= manual}.

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
