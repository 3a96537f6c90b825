%% @doc The demo's report: a self-contained HTML page and the SVG charts it
%% shows, drawn from the measured series of both runs.
%%
%% {@link write/2} writes `index.html' and one SVG file per chart into a
%% directory: memory, p99 latency of served requests (log scale), served
%% and shed requests per second, the unprotected run on the left and the
%% protected one on the right, on the same scales, with the outage shaded.
%% Nothing is fetched: the SVG is written here, and the page is XHTML (an
%% XML parser reads it) that refers to the SVG files beside it.
-module(sluice_demo_report).

-export([write/2, summary_rows/1]).

-define(W, 560).
-define(H, 296).
-define(LEFT, 64).
-define(RIGHT, 16).
-define(TOP, 34).
-define(BOTTOM, 86).

-type series() :: {Name :: string(), Colour :: string(), [{number(), number() | null}]}.
-type scale() :: linear | log.

%% @doc Writes the report of `Results' (the unprotected run, then the
%% protected one) into `Dir'; returns the path of its `index.html'.
-spec write(Dir, Results) -> {ok, file:filename()} | {error, term()} when
      Dir :: file:filename(), Results :: [sluice_demo_service:result()].
write(Dir, Results) ->
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    Charts = charts(Results),
    Files = [{File, svg(Spec)} || {File, Spec} <- Charts],
    Written = [file:write_file(filename:join(Dir, F), Svg) || {F, Svg} <- Files],
    Index = filename:join(Dir, "index.html"),
    case [E || {error, _} = E <- Written] of
        [] ->
            case file:write_file(Index, html(Results, [F || {F, _} <- Charts])) of
                ok -> {ok, Index};
                Error -> Error
            end;
        [Error | _] ->
            Error
    end.

%%% Charts

-spec charts([sluice_demo_service:result()]) -> [{string(), map()}].
charts(Results) ->
    Secs = lists:max([length(S) || #{series := S} <- Results]),
    Rows = [{memory, "node memory", "MB", linear, fun memory/1},
            {p99, "p99 latency of served requests", "ms (log scale)", log, fun p99/1},
            {served, "served per second", "requests/s", linear, fun served/1},
            {shed, "shed per second, by reason", "requests/s", linear, fun shed/1}],
    lists:append(
      [begin
           PerRun = [{R, Fun(R)} || R <- Results],
           YMax = lists:max([1 | [V || {_, Lines} <- PerRun, {_, _, Ps} <- Lines,
                                       {_, V} <- Ps, V =/= null]]),
           [{lists:flatten(io_lib:format("~s_~s.svg", [Key, Mode])),
             #{title => io_lib:format("~s: ~s", [Mode, Title]), unit => Unit, scale => Scale,
               lines => Lines, xmax => Secs, ymax => YMax, outage => outage(R)}}
            || {#{mode := Mode} = R, Lines} <- PerRun]
       end || {Key, Title, Unit, Scale, Fun} <- Rows]).

-spec memory(sluice_demo_service:result()) -> [series()].
memory(#{series := S}) ->
    [{"erlang:memory(total)", "#1f77b4", [{T, M} || #{t := T, memory_mb := M} <- S]}].

-spec p99(sluice_demo_service:result()) -> [series()].
p99(#{series := S}) ->
    [{"p99", "#d62728", [{T, P} || #{t := T, p99_ms := P} <- S]},
     {"p50", "#ff9896", [{T, P} || #{t := T, p50_ms := P} <- S]}].

-spec served(sluice_demo_service:result()) -> [series()].
served(#{series := S}) ->
    [{"served", "#2ca02c", [{T, V} || #{t := T, served := V} <- S]},
     {"offered", "#7f7f7f", [{T, V} || #{t := T, offered := V} <- S]}].

-spec shed(sluice_demo_service:result()) -> [series()].
shed(#{mode := Mode, series := S}) ->
    [{atom_to_list(R), colour(R), [{T, maps:get(R, Shed, 0)} || #{t := T, shed := Shed} <- S]}
     || R <- sluice_demo_service:reasons(Mode), R =/= unfinished].

-spec colour(atom()) -> string().
colour(rate_limited) -> "#9467bd";
colour(valve) -> "#17becf";
colour(box_overflow) -> "#bcbd22";
colour(box_expired) -> "#e377c2";
colour(breaker_open) -> "#ff7f0e";
colour(pool_busy) -> "#8c564b";
colour(db_error) -> "#d62728";
colour(_) -> "#7f7f7f".

%% The outage as seconds `{From, To}' of the series.
-spec outage(sluice_demo_service:result()) -> {number(), number()} | none.
outage(#{options := #{outage := {From, To}}}) -> {From / 1000, To / 1000};
outage(_) -> none.

%%% SVG

-spec svg(map()) -> iodata().
svg(#{title := Title, unit := Unit, scale := Scale, lines := Lines, xmax := XMax,
      ymax := YMax0, outage := Outage}) ->
    {YMin, YMax} = case Scale of
                       log -> {1, pow10_above(YMax0)};
                       linear -> {0, nice(YMax0)}
                   end,
    PW = ?W - ?LEFT - ?RIGHT,
    PH = ?H - ?TOP - ?BOTTOM,
    X = fun(T) -> ?LEFT + PW * T / XMax end,
    Y = fun(V) -> ?TOP + PH * (1 - frac(Scale, V, YMin, YMax)) end,
    Band = case Outage of
               none -> [];
               {From, To} ->
                   [rect(X(From), ?TOP, X(min(To, XMax)) - X(From), PH, "#f2c4c4"),
                    text(X(From) + 4, ?TOP + 14, "start", "outage", "#a33")]
           end,
    YTicks = [{V, Y(V)} || V <- yticks(Scale, YMin, YMax)],
    XTicks = [{T, X(T)} || T <- lists:seq(0, XMax, xstep(XMax))],
    Grid = [[line(?LEFT, Py, ?LEFT + PW, Py, "#e0e0e0"),
             text(?LEFT - 6, Py + 4, "end", label(V), "#333")] || {V, Py} <- YTicks]
        ++ [[line(Px, ?TOP + PH, Px, ?TOP + PH + 5, "#333"),
             text(Px, ?TOP + PH + 18, "middle", integer_to_list(T), "#333")]
            || {T, Px} <- XTicks],
    Axes = [line(?LEFT, ?TOP, ?LEFT, ?TOP + PH, "#333"),
            line(?LEFT, ?TOP + PH, ?LEFT + PW, ?TOP + PH, "#333"),
            text(?LEFT + PW / 2, ?TOP + PH + 34, "middle", "time since the start (s)", "#333"),
            ["<text x=\"14\" y=\"", num(?TOP + PH / 2), "\" text-anchor=\"middle\" "
             "font-size=\"12\" fill=\"#333\" transform=\"rotate(-90 14 ", num(?TOP + PH / 2),
             ")\">", esc(Unit), "</text>\n"]],
    Paths = [polyline(Points, Colour, X, Y, Scale, YMin) || {_, Colour, Points} <- Lines],
    Legend = legend(Lines, ?TOP + PH + 48),
    ["<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
     "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"", num(?W), "\" height=\"", num(?H),
     "\" viewBox=\"0 0 ", num(?W), " ", num(?H), "\" font-family=\"sans-serif\">\n",
     rect(0, 0, ?W, ?H, "#ffffff"),
     text(?LEFT, 20, "start", Title, "#000"),
     Band, Grid, Axes, Paths, Legend, "</svg>\n"].

-spec polyline([{number(), number() | null}], string(), fun(), fun(), scale(), number()) ->
    iodata().
polyline(Points, Colour, X, Y, Scale, YMin) ->
    %% A gap (null: nothing served that second) splits the line.
    Segments = split(Points, [], []),
    [["<polyline fill=\"none\" stroke=\"", Colour, "\" stroke-width=\"2\" points=\"",
      lists:join(" ", [[num(X(T)), ",", num(Y(clamp(Scale, V, YMin)))] || {T, V} <- Seg]),
      "\"/>\n"] || Seg <- Segments, Seg =/= []].

-spec split([{number(), number() | null}], list(), [list()]) -> [list()].
split([], Cur, Acc) -> lists:reverse([lists:reverse(Cur) | Acc]);
split([{_, null} | Rest], Cur, Acc) -> split(Rest, [], [lists:reverse(Cur) | Acc]);
split([P | Rest], Cur, Acc) -> split(Rest, [P | Cur], Acc).

%% One item per line, wrapping onto a second row when the first is full.
-spec legend([series()], number()) -> iodata().
legend(Lines, Y0) ->
    {Out, _} = lists:foldl(
                 fun({Name, Colour, _}, {Acc, {X0, Y1}}) ->
                         Width = 28 + 7 * length(Name),
                         {X, Y} = case X0 + Width > ?W - ?RIGHT of
                                      true -> {?LEFT, Y1 + 16};
                                      false -> {X0, Y1}
                                  end,
                         Item = [rect(X, Y - 9, 14, 10, Colour),
                                 text(X + 18, Y, "start", Name, "#333")],
                         {[Acc, Item], {X + Width, Y}}
                 end, {[], {?LEFT, Y0}}, Lines),
    Out.

-spec frac(scale(), number(), number(), number()) -> float().
frac(linear, V, Min, Max) -> (V - Min) / (Max - Min);
frac(log, V, Min, Max) ->
    (math:log10(max(V, Min)) - math:log10(Min)) / (math:log10(Max) - math:log10(Min)).

-spec clamp(scale(), number(), number()) -> number().
clamp(log, V, Min) -> max(V, Min);
clamp(linear, V, _) -> V.

-spec yticks(scale(), number(), number()) -> [number()].
yticks(log, Min, Max) ->
    [math:pow(10, E) || E <- lists:seq(round(math:log10(Min)), round(math:log10(Max)))];
yticks(linear, _Min, Max) ->
    Step = Max / 5,
    [Step * I || I <- lists:seq(0, 5)].

%% A round number at or above `V', for the top of a linear axis.
-spec nice(number()) -> number().
nice(V) ->
    P = math:pow(10, floor(math:log10(max(V, 1)))),
    hd([M * P || M <- [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10], M * P >= V]).

-spec pow10_above(number()) -> number().
pow10_above(V) -> math:pow(10, max(1, ceil(math:log10(max(V, 1))))).

-spec xstep(pos_integer()) -> pos_integer().
xstep(XMax) when XMax =< 10 -> 1;
xstep(XMax) when XMax =< 30 -> 5;
xstep(_) -> 10.

-spec label(number()) -> string().
label(V) when V >= 1000000 -> float_to_list(V / 1000000, [{decimals, 1}, compact]) ++ "M";
label(V) when V >= 10000 -> integer_to_list(round(V / 1000)) ++ "k";
label(V) when is_float(V), V < 10, V =/= 0.0 -> float_to_list(V, [{decimals, 1}, compact]);
label(V) -> integer_to_list(round(V)).

-spec rect(number(), number(), number(), number(), string()) -> iodata().
rect(X, Y, W, H, Fill) ->
    ["<rect x=\"", num(X), "\" y=\"", num(Y), "\" width=\"", num(W), "\" height=\"", num(H),
     "\" fill=\"", Fill, "\"/>\n"].

-spec line(number(), number(), number(), number(), string()) -> iodata().
line(X1, Y1, X2, Y2, Stroke) ->
    ["<line x1=\"", num(X1), "\" y1=\"", num(Y1), "\" x2=\"", num(X2), "\" y2=\"", num(Y2),
     "\" stroke=\"", Stroke, "\" stroke-width=\"1\"/>\n"].

-spec text(number(), number(), string(), iodata(), string()) -> iodata().
text(X, Y, Anchor, Text, Fill) ->
    ["<text x=\"", num(X), "\" y=\"", num(Y), "\" text-anchor=\"", Anchor,
     "\" font-size=\"12\" fill=\"", Fill, "\">", esc(Text), "</text>\n"].

-spec num(number()) -> string().
num(N) when is_integer(N) -> integer_to_list(N);
num(N) -> float_to_list(float(N), [{decimals, 1}, compact]).

-spec esc(iodata()) -> iodata().
esc(Text) ->
    [case C of
         $& -> "&amp;";
         $< -> "&lt;";
         $> -> "&gt;";
         $" -> "&quot;";
         _ -> C
     end || C <- unicode:characters_to_list(Text)].

%%% HTML

-spec html([sluice_demo_service:result()], [string()]) -> iodata().
html(Results, Files) ->
    Mode = fun(F) -> lists:suffix("_protected.svg", F) end,
    Pairs = pairs([F || F <- Files, not Mode(F)], [F || F <- Files, Mode(F)]),
    [#{options := Opts} | _] = Results,
    ["<!DOCTYPE html>\n"
     "<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n"
     "<meta charset=\"utf-8\"/>\n<title>sluice demo: unprotected against protected</title>\n"
     "<style>body{font-family:sans-serif;margin:16px;color:#222}"
     "table{border-collapse:collapse;margin:8px 0 16px}"
     "td,th{border:1px solid #bbb;padding:3px 10px;text-align:right}"
     "th:first-child,td:first-child{text-align:left}"
     ".charts td{border:none;padding:2px}</style>\n</head>\n<body>\n"
     "<h1>sluice demo: a service under overload and an outage</h1>\n<p>",
     esc(scenario(Opts)), "</p>\n<h2>Summary</h2>\n<table>\n",
     "<tr><th></th>", [["<th>", esc(atom_to_list(M)), "</th>"] || #{mode := M} <- Results],
     "</tr>\n",
     [["<tr><td>", esc(Label), "</td>", [["<td>", esc(V), "</td>"] || V <- Vs], "</tr>\n"]
      || {Label, Vs} <- summary_rows(Results)],
     "</table>\n<h2>Over time (the outage shaded)</h2>\n<table class=\"charts\">\n",
     [["<tr>", [["<td><img src=\"", esc(F), "\" width=\"", num(?W), "\" height=\"", num(?H),
                 "\" alt=\"", esc(F), "\"/></td>"] || F <- Pair], "</tr>\n"]
      || Pair <- Pairs],
     "</table>\n</body>\n</html>\n"].

-spec pairs([string()], [string()]) -> [[string()]].
pairs([A | As], [B | Bs]) -> [[A, B] | pairs(As, Bs)];
pairs(As, Bs) -> [[F] || F <- As ++ Bs].

-spec scenario(sluice_demo_service:options()) -> string().
scenario(#{seconds := S, outage := {From, To}, clients := C, rate := R, hot_share := Hot,
           burst_factor := F, burst_ms := BMs, burst_every := Every, workers := W,
           connections := N, service_ms := Svc, hang_ms := Hang}) ->
    lists:flatten(
      io_lib:format("~b clients offer ~b requests/s (client 1 sends ~b %), ~s times as many "
                    "for ~b ms every ~b ms, to a front process and ~b workers; a fake database "
                    "has ~b connections and answers in ~b ms; from ~.1f s to ~.1f s it hangs "
                    "~b ms on every query and then fails. Each run lasts ~b s.",
                    [C, R, round(Hot * 100), label(F), BMs, Every, W, N, Svc, From / 1000,
                     To / 1000, Hang, S])).

%% @doc The rows of the summary table: a label and one cell per run.
-spec summary_rows([sluice_demo_service:result()]) -> [{string(), [string()]}].
summary_rows(Results) ->
    Int = fun(K) -> [integer_to_list(maps:get(K, R)) || R <- Results] end,
    Ms = fun(K) -> [case maps:get(K, R) of
                        null -> "-";
                        V -> float_to_list(V, [{decimals, 1}])
                    end || R <- Results] end,
    Mb = fun(K) -> [float_to_list(maps:get(K, R), [{decimals, 1}]) || R <- Results] end,
    Reasons = lists:usort(lists:append([maps:keys(Shed) || #{shed := Shed} <- Results])),
    [{"offered", Int(offered)}, {"served", Int(served)},
     {"served within 1 s", Int(served_in_1s)}]
        ++ [{"shed: " ++ atom_to_list(Reason),
             [integer_to_list(maps:get(Reason, maps:get(shed, R), 0)) || R <- Results]}
           || Reason <- Reasons]
        ++ [{"served + shed = offered",
             [case maps:get(served, R) + lists:sum(maps:values(maps:get(shed, R)))
                       =:= maps:get(offered, R) of
                  true -> "yes";
                  false -> "NO"
              end || R <- Results]},
            {"p50 latency of served (ms)", Ms(p50_ms)},
            {"p99 latency of served (ms)", Ms(p99_ms)},
            {"node memory at start (MB)", Mb(start_memory_mb)},
            {"peak node memory (MB)", Mb(peak_memory_mb)},
            {"largest mailbox (messages)", Int(peak_mailbox)}].
