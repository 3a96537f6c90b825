%% @private
%% @doc What {@link reckon_metrics} reads from applications it does not
%% depend on: every live sluice tool's counters and gauges (through
%% `sluice:tools/0', only while the sluice application runs), and
%% telemetry events (through `telemetry:execute/3', only while a
%% `telemetry' module is loaded). Neither is needed to build or run reckon.
%%
%% A sluice tool's series are `{sluice, Kind, Tool, Counter}' (the
%% counter's increase over the last second) and `{sluice, Kind, Tool,
%% Gauge}' (its level), where `Tool' is the tool's name, or `{id, Id}' for
%% an anonymous one.
-module(reckon_metrics_tools).

-export([tools/0, points/1, prometheus_samples/0, telemetry/3]).

%% The telemetry library is not a dependency: it is called only when loaded.
-ignore_xref([{telemetry, execute, 3}]).

-type totals() :: #{{atom(), term(), atom()} => number()}.
%% Each tool counter's value at the previous tick.

%% @doc Every live sluice tool (`sluice:tools/0'), or `[]' when sluice is
%% not running.
-spec tools() -> [map()].
tools() ->
    case whereis(sluice_sup) =/= undefined
        andalso code:ensure_loaded(sluice) =:= {module, sluice}
        andalso erlang:function_exported(sluice, tools, 0) of
        true ->
            try sluice:tools()
            catch Class:Why ->
                    logger:warning("reckon: sluice:tools() failed (~p:~p)", [Class, Why],
                                   #{domain => [reckon, metrics]}),
                    []
            end;
        false ->
            []
    end.

%% @doc The points of every live sluice tool, given the counters' values at
%% the previous tick, and their values now. A counter's first sight gives
%% no point (its increase is not known yet).
-spec points(totals()) -> {[{term(), number()}], totals()}.
points(Prev) ->
    lists:foldl(fun(Tool, Acc) -> tool_points(Tool, Prev, Acc) end, {[], #{}}, tools()).

-spec tool_points(map(), totals(), {[{term(), number()}], totals()}) ->
    {[{term(), number()}], totals()}.
tool_points(#{kind := Kind, id := Id} = Tool, Prev, {Points, Totals}) ->
    Name = case maps:get(name, Tool, undefined) of
               undefined -> {id, Id};
               N -> N
           end,
    Gauges = [{{sluice, Kind, Name, G}, V}
              || {G, V} <- maps:to_list(maps:get(gauges, Tool, #{})), is_number(V)],
    {Deltas, Totals1} =
        maps:fold(fun(C, V, {Ds, Ts}) when is_integer(V) ->
                          Key = {Kind, Id, C},
                          Ds1 = case Prev of
                                    #{Key := V0} when V >= V0 ->
                                        [{{sluice, Kind, Name, C}, V - V0} | Ds];
                                    _ -> Ds
                                end,
                          {Ds1, Ts#{Key => V}};
                     (_, _, Acc) -> Acc
                  end, {[], Totals}, maps:get(counters, Tool, #{})),
    {Gauges ++ Deltas ++ Points, Totals1};
tool_points(_Tool, _Prev, Acc) ->
    Acc.

%% @doc Every live sluice tool's counters (`sluice_<kind>_<counter>_total')
%% and gauges (`sluice_<kind>_<gauge>'), read now, labelled `tool' (its
%% name, or `id' for an anonymous one).
-spec prometheus_samples() -> [{reckon_metrics_prom:family(), reckon_metrics_prom:sample()}].
prometheus_samples() ->
    lists:append([tool_samples(T) || T <- tools()]).

-spec tool_samples(map()) -> [{reckon_metrics_prom:family(), reckon_metrics_prom:sample()}].
tool_samples(#{kind := Kind, id := Id} = Tool) when is_atom(Kind) ->
    Label = case maps:get(name, Tool, undefined) of
                undefined -> [{<<"id">>, integer_to_binary(Id)}];
                Name -> [{<<"tool">>, reckon_metrics_prom:text(Name)}]
            end,
    Prefix = <<"sluice_", (atom_to_binary(Kind))/binary, "_">>,
    [{{<<Prefix/binary, (reckon_metrics_prom:metric_name(C))/binary, "_total">>, <<"counter">>,
       <<"sluice ", (atom_to_binary(Kind))/binary, " counter">>}, {<<>>, Label, V}}
     || {C, V} <- lists:sort(maps:to_list(maps:get(counters, Tool, #{}))), is_integer(V)]
        ++ [{{<<Prefix/binary, (reckon_metrics_prom:metric_name(G))/binary>>, <<"gauge">>,
              <<"sluice ", (atom_to_binary(Kind))/binary, " gauge">>}, {<<>>, Label, V}}
            || {G, V} <- lists:sort(maps:to_list(maps:get(gauges, Tool, #{}))), is_number(V)]
        ++ lists:append([hist_samples(<<Prefix/binary, (reckon_metrics_prom:metric_name(H))/binary,
                                        "_seconds">>, Kind, Label, Hist)
                         || {H, Hist} <- lists:sort(maps:to_list(maps:get(histograms, Tool, #{})))]);
tool_samples(_Tool) ->
    [].

%% A histogram of nanoseconds (non-cumulative buckets with inclusive
%% upper bounds) as a Prometheus histogram in seconds, with buckets at 1,
%% 2.5 and 5 of each power of ten from 1 µs to 10 s. A bucket of the
%% histogram counts below a bound when its own upper bound is at most the
%% bound; its width is at most 1/32 of its bound.
-spec hist_samples(binary(), atom(), [{binary(), binary()}], term()) ->
    [{reckon_metrics_prom:family(), reckon_metrics_prom:sample()}].
hist_samples(Name, Kind, Label, #{count := Count, sum := Sum, buckets := Buckets})
  when is_list(Buckets) ->
    F = {Name, <<"histogram">>, <<"sluice ", (atom_to_binary(Kind))/binary, " histogram (s)">>},
    Cumulative = [{Le, lists:sum([C || {Upper, C} <- Buckets, Upper =< LeNs])}
                  || {Le, LeNs} <- bounds()],
    [{F, {<<"_bucket">>, Label ++ [{<<"le">>, Le}], C}} || {Le, C} <- Cumulative]
        ++ [{F, {<<"_bucket">>, Label ++ [{<<"le">>, <<"+Inf">>}], Count}},
            {F, {<<"_sum">>, Label, Sum / 1.0e9}}, {F, {<<"_count">>, Label, Count}}];
hist_samples(_Name, _Kind, _Label, _Hist) ->
    [].

%% The bucket bounds: their text in seconds, and in nanoseconds.
-spec bounds() -> [{binary(), pos_integer()}].
bounds() ->
    [{float_to_binary(Ns / 1.0e9, [short]), Ns}
     || Decade <- [1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000],
        Ns <- [Decade, Decade * 5 div 2, Decade * 5]] ++ [{<<"10.0">>, 10000000000}].

%% @doc `telemetry:execute(Event, Measurements, Metadata)' when a
%% `telemetry' module is loaded; nothing otherwise. Never raises.
-spec telemetry([atom()], map(), map()) -> ok.
telemetry(Event, Measurements, Metadata) ->
    Telemetry = telemetry,
    case erlang:function_exported(Telemetry, execute, 3) of
        true ->
            try Telemetry:execute(Event, Measurements, Metadata)
            catch _:_ -> ok
            end,
            ok;
        false ->
            ok
    end.
