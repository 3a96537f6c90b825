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
%% an anonymous one. Its histograms (a box's `sojourn', a breaker's `run')
%% go, a bucket at a time, into the recorder's histograms (hdrhistogram)
%% named `{sluice, Kind, Tool, sojourn_us | run_us}', in microseconds.
-module(reckon_metrics_tools).

-export([tools/0, points/1, prometheus_samples/0, telemetry/3]).

%% The telemetry library is not a dependency: it is called only when loaded.
-ignore_xref([{telemetry, execute, 3}]).

-type totals() :: #{{atom(), term(), atom() | {hist, atom()}} => number() | #{pos_integer() => pos_integer()}}.
%% Each tool counter's value, and each tool histogram's buckets, at the
%% previous tick.

%% Highest value (µs) of a tool's histogram in the recorder: a minute
%% (sluice's own histograms stop at 34 s).
-define(HIST_HIGHEST, 60000000).

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
    Totals2 = maps:fold(fun(H, Hist, Ts) -> hist_delta(Kind, Id, Name, H, Hist, Prev, Ts) end,
                        Totals1, maps:get(histograms, Tool, #{})),
    {Gauges ++ Deltas ++ Points, Totals2}.

%% Adds what histogram `H' of a tool gained since the previous tick (none
%% at its first sight) to the recorder's histogram of it, a bucket at a
%% time (each value at its bucket's upper bound, in µs).
-spec hist_delta(atom(), term(), term(), atom(), term(), totals(), totals()) -> totals().
hist_delta(Kind, Id, Name, H, #{buckets := Buckets}, Prev, Totals) when is_list(Buckets) ->
    Key = {Kind, Id, {hist, H}},
    Now = maps:from_list([B || {Upper, C} = B <- Buckets, is_integer(Upper), is_integer(C)]),
    case Prev of
        #{Key := Before} ->
            Pairs = [{Upper div 1000, C - maps:get(Upper, Before, 0)}
                     || {Upper, C} <- maps:to_list(Now), C > maps:get(Upper, Before, 0)],
            record(Pairs, {sluice, Kind, Name, hist_name(H)});
        _ ->
            ok
    end,
    Totals#{Key => Now};
hist_delta(_Kind, _Id, _Name, _H, _Hist, _Prev, Totals) ->
    Totals.

-spec hist_name(atom()) -> atom().
hist_name(sojourn) -> sojourn_us;
hist_name(run) -> run_us;
hist_name(Other) -> Other.

-spec record([{non_neg_integer(), pos_integer()}], term()) -> ok.
record([], _Name) ->
    ok;
record(Pairs, Name) ->
    Made = case reckon_metrics_lib:recorder() of
               undefined -> {error, not_started};
               Rec -> reckon_nif:metrics_metric(Rec, #{key => reckon_metrics_lib:user_key(Name, []),
                                                       kind => histogram,
                                                       highest => ?HIST_HIGHEST, sigfig => 2})
           end,
    case Made of
        {ok, Handle} ->
            _ = [reckon_metrics_lib:metric_observe_n(Handle, Chunk) || Chunk <- chunks(Pairs, 1000)],
            ok;
        {error, _} ->
            ok
    end.

-spec chunks([T], pos_integer()) -> [[T]].
chunks(List, N) when length(List) =< N -> [List];
chunks(List, N) ->
    {Chunk, Rest} = lists:split(N, List),
    [Chunk | chunks(Rest, N)].

%% @doc Every live sluice tool's counters (`sluice_<kind>_<counter>_total')
%% and gauges (`sluice_<kind>_<gauge>'), read now, labelled `tool' (its
%% name, or `id' for an anonymous one).
-spec prometheus_samples() -> [{reckon_metrics_prom:family(), reckon_metrics_prom:sample()}].
prometheus_samples() ->
    lists:append([tool_samples(T) || T <- tools()]).

-spec tool_samples(map()) -> [{reckon_metrics_prom:family(), reckon_metrics_prom:sample()}].
tool_samples(#{kind := Kind, id := Id} = Tool) ->
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
                         || {H, Hist} <- lists:sort(maps:to_list(maps:get(histograms, Tool, #{})))]).

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
