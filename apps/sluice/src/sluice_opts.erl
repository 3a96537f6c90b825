%% @private
%% @doc The options validator every sluice facade uses.
%%
%% A spec is a list of `{Key, Default, Check}' (or `{Key, required, Check}')
%% in the order the keys are checked. {@link validate/2} refuses a value that
%% is not a map, then the first unknown key (in term order), then the first
%% required key missing, then the first value whose `Check' says `false', in
%% spec order; otherwise it returns the options with every default filled
%% in. Checks are plain predicates, never raising: a check that raises on a
%% strange value counts as `false' (so a check written for integers cannot
%% turn a list into an exception).
%%
%% The predicates below are the checks most options need.
-module(sluice_opts).

-export([validate/2, validate/3]).
-export([pos_int/1, non_neg_int/1, ms/1, rate/1, one_of/1, local_pid/1, pos_int_upto/1,
         any/1, proper_list/1]).
-export_type([spec/0, check/0]).

-type check() :: fun((term()) -> boolean()).
-type spec() :: [{atom(), term(), check()}].

%% The largest number of milliseconds an option may give: the NIF library
%% keeps times in nanoseconds in 64 bits, with room to add.
-define(MAX_MS, (1 bsl 40)).

%% @doc Checks `Opts' against `Spec': `{ok, Full}' or `{error, {bad_option, Key}}'
%% (`Key' is `options' when `Opts' is not a map).
-spec validate(term(), spec()) -> {ok, map()} | {error, {bad_option, term()}}.
validate(Opts, Spec) ->
    validate(Opts, Spec, #{}).

%% @doc As {@link validate/2}, with defaults computed by the caller
%% (`Extra', merged over the spec's defaults: the owner as `self()', say).
-spec validate(term(), spec(), map()) -> {ok, map()} | {error, {bad_option, term()}}.
validate(Opts, Spec, Extra) when is_map(Opts) ->
    Known = [K || {K, _, _} <- Spec],
    case lists:sort(maps:keys(maps:without(Known, Opts))) of
        [Unknown | _] ->
            {error, {bad_option, Unknown}};
        [] ->
            case [K || {K, required, _} <- Spec, not is_map_key(K, Opts)] of
                [Missing | _] ->
                    {error, {bad_option, Missing}};
                [] ->
                    Defaults = maps:merge(maps:from_list([{K, D} || {K, D, _} <- Spec,
                                                                    D =/= required]),
                                          Extra),
                    Full = maps:merge(Defaults, Opts),
                    check(Spec, Full)
            end
    end;
validate(_Opts, _Spec, _Extra) ->
    {error, {bad_option, options}}.

-spec check(spec(), map()) -> {ok, map()} | {error, {bad_option, term()}}.
check([], Full) ->
    {ok, Full};
check([{Key, _, Check} | Rest], Full) ->
    case holds(Check, map_get(Key, Full)) of
        true -> check(Rest, Full);
        false -> {error, {bad_option, Key}}
    end.

-spec holds(check(), term()) -> boolean().
holds(Check, Value) ->
    try Check(Value) of
        true -> true;
        _ -> false
    catch
        _:_ -> false
    end.

%% @doc A positive integer below 2^40.
-spec pos_int(term()) -> boolean().
pos_int(V) -> is_integer(V) andalso V > 0 andalso V < ?MAX_MS.

%% @doc A non-negative integer below 2^40.
-spec non_neg_int(term()) -> boolean().
non_neg_int(V) -> is_integer(V) andalso V >= 0 andalso V < ?MAX_MS.

%% @doc A positive number of milliseconds the NIF library can hold in nanoseconds.
-spec ms(term()) -> boolean().
ms(V) -> pos_int(V).

%% @doc A number in [0, 1].
-spec rate(term()) -> boolean().
rate(V) -> is_number(V) andalso V >= 0 andalso V =< 1.

%% @doc A check that the value is one of `Values'.
-spec one_of([term()]) -> check().
one_of(Values) -> fun(V) -> lists:member(V, Values) end.

%% @doc A check that the value is a positive integer of at most `Max'.
-spec pos_int_upto(pos_integer()) -> check().
pos_int_upto(Max) -> fun(V) -> is_integer(V) andalso V > 0 andalso V =< Max end.

%% @doc A pid of a process of this node.
-spec local_pid(term()) -> boolean().
local_pid(V) -> is_pid(V) andalso node(V) =:= node().

%% @doc Any value.
-spec any(term()) -> true.
any(_) -> true.

%% @doc A proper list (`is_list/1' looks at the first cell only).
-spec proper_list(term()) -> boolean().
proper_list(V) when is_list(V) ->
    try length(V) >= 0 catch error:badarg -> false end;
proper_list(_) -> false.
