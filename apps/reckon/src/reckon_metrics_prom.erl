%% @private
%% @doc The Prometheus text format (version 0.0.4) of the recorder: the
%% newest value of every sampler series as a gauge, user counters (with
%% `_total'), gauges, and histograms as Prometheus histograms (cumulative
%% `_bucket{le}' at 1, 2, 5, 10, 20, 50, ... up to the histogram's highest
%% value, `_sum', `_count'). Every family has its HELP and TYPE lines.
%%
%% Names follow Prometheus's conventions: sampler series are
%% `erlang_vm_*' families with labels (`{memory, total}' is
%% `erlang_vm_memory_bytes{kind="total"}'); a user metric's name (an atom,
%% a string or a binary) is lower-cased with every character outside
%% `[a-z0-9_:]' made `_', and its labels, when a list of `{Key, Value}',
%% become labels (keys made the same way, values escaped). A user metric
%% whose name or labels have no such form is left out. The system
%% monitor's histograms `long_gc_ms' and `long_schedule_ms' are
%% `erlang_vm_long_gc_seconds' and `erlang_vm_long_schedule_seconds'.
-module(reckon_metrics_prom).

-export([render/0, text/1, metric_name/1]).
-export_type([family/0, sample/0]).

-type family() :: {Name :: binary(), Type :: binary(), Help :: binary()}.
%% A metric family: its name, type and help text.
-type sample() :: {Suffix :: binary(), Labels :: [{binary(), binary()}], Value :: number()}.
%% One sample of a family.

%% @doc The text of every series and user metric.
-spec render() -> iodata().
render() ->
    case reckon_metrics_lib:recorder() of
        undefined -> [];
        Rec ->
            Series = [{reckon_metrics_lib:name(K), Last}
                      || {K, #{last := Last}} <- reckon_nif:metrics_summary(Rec),
                         Last =/= undefined],
            Samples = lists:append([series_sample(Name, V) || {Name, V} <- Series]),
            Users = lists:append([user_samples(reckon_metrics_lib:name(K), {Kind, V})
                                  || #{key := K, kind := Kind, value := V}
                                         <- reckon_nif:metrics_user(Rec)]),
            Tools = reckon_metrics_tools:prometheus_samples(),
            format(group(Samples ++ Users ++ Tools))
    end.

-spec series_sample(term(), number()) -> [{family(), sample()}].
series_sample({memory, Kind}, V) ->
    [{{<<"erlang_vm_memory_bytes">>, <<"gauge">>, <<"Memory by type (erlang:memory/0)">>},
      {<<>>, [{<<"kind">>, text(Kind)}], V}}];
series_sample({count, T}, V) ->
    [{{<<"erlang_vm_objects">>, <<"gauge">>, <<"Processes, ports, atoms, ETS tables">>},
      {<<>>, [{<<"type">>, text(T)}], V}}];
series_sample({limit, T}, V) ->
    [{{<<"erlang_vm_objects_limit">>, <<"gauge">>, <<"Limits of processes, ports, atoms, ETS tables">>},
      {<<>>, [{<<"type">>, text(T)}], V}}];
series_sample({run_queue, Q}, V) ->
    [{{<<"erlang_vm_run_queue_length">>, <<"gauge">>, <<"Run queue lengths">>},
      {<<>>, [{<<"queue">>, text(Q)}], V}}];
series_sample({scheduler_usage, S}, V) ->
    [{{<<"erlang_vm_scheduler_utilization_ratio">>, <<"gauge">>,
       <<"Scheduler utilization over the last second">>},
      {<<>>, [{<<"scheduler">>, text(S)}], V}}];
series_sample({allocator, A, K}, V) ->
    [{{<<"erlang_vm_allocator_bytes">>, <<"gauge">>, <<"Allocator carrier and block sizes">>},
      {<<>>, [{<<"allocator">>, text(A)}, {<<"kind">>, text(K)}], V}}];
series_sample({message_queue, R}, V) ->
    [{{<<"erlang_vm_message_queue_longest">>, <<"gauge">>, <<"Longest message queues, by rank">>},
      {<<>>, [{<<"rank">>, text(R)}], V}}];
series_sample(Name, V) when is_atom(Name) ->
    case lists:member(Name, [reductions, gc_count, gc_words_reclaimed, io_in, io_out,
                             context_switches]) of
        true ->
            [{{<<"erlang_vm_", (atom_to_binary(Name))/binary, "_per_second">>, <<"gauge">>,
               <<"Increase over the last second">>}, {<<>>, [], V}}];
        false -> []
    end;
series_sample(_Name, _V) ->
    [].

-spec user_samples(term(), term()) -> [{family(), sample()}].
user_samples({user, Name, []}, {histogram, H}) when Name =:= long_gc_ms;
                                                    Name =:= long_schedule_ms ->
    %% The system monitor's histograms (ms), in seconds as Prometheus has it.
    Event = binary:part(atom_to_binary(Name), 0, byte_size(atom_to_binary(Name)) - 3),
    #{count := Count, sum := Sum, buckets := Buckets} = H,
    F = {<<"erlang_vm_", Event/binary, "_seconds">>, <<"histogram">>,
         <<"Durations of the system monitor's ", Event/binary, " events">>},
    [{F, {<<"_bucket">>, [{<<"le">>, number(Le / 1000)}], C}} || {Le, C} <- Buckets]
        ++ [{F, {<<"_bucket">>, [{<<"le">>, <<"+Inf">>}], Count}},
            {F, {<<"_sum">>, [], Sum / 1000}}, {F, {<<"_count">>, [], Count}}];
user_samples({user, Name, Labels}, Value) ->
    case {metric_name(Name), labels(Labels)} of
        {error, _} -> [];
        {_, error} -> [];
        {N, Ls} -> user_samples(N, Ls, Value)
    end;
user_samples(_, _) ->
    [].

-spec user_samples(binary(), [{binary(), binary()}], term()) -> [{family(), sample()}].
user_samples(N, Ls, {counter, V}) ->
    [{{<<N/binary, "_total">>, <<"counter">>, <<"reckon_metrics counter">>}, {<<>>, Ls, V}}];
user_samples(N, Ls, {gauge, V}) ->
    [{{N, <<"gauge">>, <<"reckon_metrics gauge">>}, {<<>>, Ls, V}}];
user_samples(N, Ls, {histogram, #{count := Count, sum := Sum, buckets := Buckets}}) ->
    F = {N, <<"histogram">>, <<"reckon_metrics histogram">>},
    [{F, {<<"_bucket">>, Ls ++ [{<<"le">>, integer_to_binary(Le)}], C}} || {Le, C} <- Buckets]
        ++ [{F, {<<"_bucket">>, Ls ++ [{<<"le">>, <<"+Inf">>}], Count}},
            {F, {<<"_sum">>, Ls, Sum}}, {F, {<<"_count">>, Ls, Count}}].

%% Samples grouped by family, families in first-seen order.
-spec group([{family(), sample()}]) -> [{family(), [sample()]}].
group(Samples) ->
    {Order, Map} = lists:foldl(fun({F, S}, {O, M}) ->
                                       case M of
                                           #{F := Ss} -> {O, M#{F := [S | Ss]}};
                                           _ -> {[F | O], M#{F => [S]}}
                                       end
                               end, {[], #{}}, Samples),
    [{F, lists:reverse(maps:get(F, Map))} || F <- lists:reverse(Order)].

-spec format([{family(), [sample()]}]) -> iodata().
format(Families) ->
    [[<<"# HELP ">>, Name, $\s, Help, $\n, <<"# TYPE ">>, Name, $\s, Type, $\n,
      [[Name, Suffix, label_text(Ls), $\s, number(V), $\n] || {Suffix, Ls, V} <- Samples]]
     || {{Name, Type, Help}, Samples} <- Families].

-spec label_text([{binary(), binary()}]) -> iodata().
label_text([]) -> [];
label_text(Ls) ->
    [${, lists:join($,, [[K, $=, $", escape(V), $"] || {K, V} <- Ls]), $}].

-spec number(number()) -> binary().
number(V) when is_integer(V) -> integer_to_binary(V);
number(V) when is_float(V) -> float_to_binary(V, [short]).

-spec escape(binary()) -> binary().
escape(V) ->
    binary:replace(binary:replace(binary:replace(V, <<"\\">>, <<"\\\\">>, [global]),
                                  <<"\"">>, <<"\\\"">>, [global]),
                   <<"\n">>, <<"\\n">>, [global]).

%% @doc A label value's text: an atom, integer, binary or string as it
%% reads, any other term as `~0p' prints it.
-spec text(term()) -> binary().
text(A) when is_atom(A) -> atom_to_binary(A);
text(I) when is_integer(I) -> integer_to_binary(I);
text(B) when is_binary(B) -> B;
text(L) when is_list(L) ->
    case io_lib:printable_unicode_list(L) of
        true -> unicode:characters_to_binary(L);
        false -> iolist_to_binary(io_lib:format("~0p", [L]))
    end;
text(T) -> iolist_to_binary(io_lib:format("~0p", [T])).

%% @doc A name made of [a-z0-9_:], not starting with a digit.
-spec metric_name(term()) -> binary() | error.
metric_name(A) when is_atom(A) -> metric_name(atom_to_binary(A));
metric_name(L) when is_list(L) ->
    case unicode:characters_to_binary(L) of
        B when is_binary(B) -> metric_name(B);
        _ -> error
    end;
metric_name(<<>>) -> error;
metric_name(B) when is_binary(B) ->
    Clean = << <<(clean(C))>> || <<C>> <= string:lowercase(B) >>,
    case Clean of
        <<D, _/binary>> when D >= $0, D =< $9 -> <<$_, Clean/binary>>;
        _ -> Clean
    end;
metric_name(_) -> error.

-spec clean(byte()) -> byte().
clean(C) when C >= $a, C =< $z; C >= $0, C =< $9; C =:= $_; C =:= $: -> C;
clean(_) -> $_.

-spec labels(term()) -> [{binary(), binary()}] | error.
labels(Labels) when is_list(Labels) ->
    try
        [begin
             <<First, _/binary>> = Name = label_name(K),
             true = First =/= $:,
             {Name, text(V)}
         end || {K, V} <- Labels]
    catch error:_ -> error
    end;
labels(_) -> error.

-spec label_name(term()) -> binary().
label_name(K) ->
    case metric_name(K) of
        B when is_binary(B) -> binary:replace(B, <<":">>, <<"_">>, [global])
    end.
