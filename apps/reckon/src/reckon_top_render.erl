%% @private
%% @doc The frames of {@link reckon_top}, as pure functions of a snapshot
%% of the node (built by `reckon_top_gather', or by a test): a frame is a
%% list of lines, each at most `width' columns, with ANSI colours only when
%% asked. Nothing here reads the node.
%%
%% A line is built as a list of segments, plain strings or `{Style, Text}',
%% cut to the width on characters (not bytes), then turned into iodata with
%% or without the escape codes. The views' own lines are in
%% `reckon_top_views'.
-module(reckon_top_render).

-export([frame/2, to_string/2, help/1, title/1]).
-export([fit/2, pad/2, lpad/2, bytes/1, num/1, pct/1, duration/1, spark/3, term/2,
         mark/2, wrap/3]).

-export_type([snapshot/0, opts/0, line/0, segment/0, view/0]).

-type view() :: home | processes | ports | ets | alloc | sluice | {process, pid()}.
-type snapshot() :: #{view := view(), node := node(), time := calendar:time(),
                      interval := pos_integer(), sort := reckon_top:sort(),
                      data := sampling | map(), message => string()}.
%% What one frame shows: the view, the node, the local time of the
%% reading, the refresh interval (ms), the processes view's key, and the
%% view's data (`sampling' until the first reading of a view is in).
-type opts() :: #{width := pos_integer(), colour := boolean(), unicode := boolean(),
                  rows => pos_integer()}.
%% `rows': the terminal's height; a taller frame loses its blank lines,
%% then the end of its body, so that it fits with the prompt's line.
-type style() :: bold | reverse | red | yellow | green | dim.
-type segment() :: string() | {style(), string()}.
-type line() :: [segment()].

-define(MIN_WIDTH, 80).

%%% Frames

%% @doc The lines of a frame (iodata each, without newlines).
-spec frame(snapshot(), opts()) -> [iodata()].
frame(#{view := View, data := Data} = Snap, #{width := W0} = Opts) ->
    W = max(?MIN_WIDTH, W0),
    Body = case Data of
               sampling -> [[], [{dim, "  sampling the node over the interval..."}]];
               _ -> reckon_top_views:lines(View, Snap, Opts#{width := W})
           end,
    Message = case maps:get(message, Snap, "") of
                  "" -> [];
                  Text -> [[{yellow, Text}]]
              end,
    Lines = fit_rows([header(Snap, W) | Body], [[] | Message] ++ [[{reverse, help(W)}]],
                     maps:get(rows, Opts, infinity)),
    [emit(fit(L, W), maps:get(colour, Opts, false)) || L <- Lines].

%% The lines of a frame in at most `Rows - 1' lines: without blank lines
%% if need be, then without the end of the body (the foot stays).
-spec fit_rows([line()], [line()], pos_integer() | infinity) -> [line()].
fit_rows(Body, Foot, infinity) ->
    Body ++ Foot;
fit_rows(Body, Foot, Rows) when length(Body) + length(Foot) < Rows ->
    Body ++ Foot;
fit_rows(Body0, Foot0, Rows) ->
    Body = [L || L <- Body0, L =/= []],
    Foot = [L || L <- Foot0, L =/= []],
    lists:sublist(Body, max(1, Rows - 1 - length(Foot))) ++ Foot.

%% @doc A frame as one string, lines ended by newlines (for tests and logs).
-spec to_string(snapshot(), opts()) -> string().
to_string(Snap, Opts) ->
    unicode:characters_to_list([[L, $\n] || L <- frame(Snap, Opts)]).

-spec header(snapshot(), pos_integer()) -> line().
header(#{view := View, node := Node, time := {H, M, S}, interval := Ms} = Snap, W) ->
    Left = " reckon_top  " ++ atom_to_list(Node) ++ "  ",
    Right = io_lib:format("every ~s  ~2..0b:~2..0b:~2..0b ", [seconds(Ms), H, M, S]),
    Title = title(View) ++ sort_note(View, Snap),
    Gap = max(1, W - length(Left) - length(Title) - string:length(Right)),
    [{reverse, Left}, {bold, Title}, {reverse, lists:duplicate(Gap, $\s) ++ lists:flatten(Right)}].

-spec sort_note(view(), snapshot()) -> string().
sort_note(processes, #{sort := Sort}) -> " by " ++ sort_name(Sort);
sort_note(_, _) -> "".

-spec sort_name(reckon_top:sort()) -> string().
sort_name(reductions) -> "reductions";
sort_name(memory) -> "memory";
sort_name(message_queue_len) -> "message queue".

%% @doc The title of a view, as its header shows it.
-spec title(view()) -> string().
title(home) -> "Home";
title(processes) -> "Processes";
title(ports) -> "Ports";
title(ets) -> "ETS";
title(alloc) -> "Allocators";
title(sluice) -> "Sluice";
title({process, Pid}) -> "Process " ++ pid_to_list(Pid).

%% @doc The line of keys (OTP 25's shell reads lines: a key, then Enter).
-spec help(pos_integer()) -> string().
help(W) when W >= 116 ->
    "keys, then Enter: h home  p processes  n ports  e ETS  a alloc  s sluice"
        "  r m l sort  1-99 row  + - interval  q quit";
help(_W) ->
    "key+Enter: h home p procs n ports e ets a alloc s sluice r/m/l sort N row +/- q".

-spec seconds(pos_integer()) -> string().
seconds(Ms) when Ms rem 1000 =:= 0 -> integer_to_list(Ms div 1000) ++ " s";
seconds(Ms) -> float_to_list(Ms / 1000, [{decimals, 1}]) ++ " s".

%%% Lines

%% @doc Cuts a line to `W' characters.
-spec fit(line(), non_neg_integer()) -> line().
fit([], _W) -> [];
fit(_Segs, 0) -> [];
fit([Seg | Rest], W) ->
    {Style, Text} = case Seg of
                        {S, T} -> {S, T};
                        T -> {plain, T}
                    end,
    Chars = unicode:characters_to_list(Text),
    case length(Chars) of
        N when N =< W -> [restyle(Style, Chars) | fit(Rest, W - N)];
        _ -> [restyle(Style, lists:sublist(Chars, W))]
    end.

-spec restyle(plain | style(), string()) -> segment().
restyle(plain, Text) -> Text;
restyle(Style, Text) -> {Style, Text}.

-spec emit(line(), boolean()) -> iodata().
emit(Line, false) -> [Text || Seg <- Line, Text <- [text(Seg)]];
emit(Line, true) -> [coloured(Seg) || Seg <- Line].

-spec text(segment()) -> string().
text({_, T}) -> T;
text(T) -> T.

-spec coloured(segment()) -> iodata().
coloured({Style, T}) -> [<<"\e[">>, code(Style), $m, T, <<"\e[0m">>];
coloured(T) -> T.

-spec code(style()) -> string().
code(bold) -> "1";
code(reverse) -> "7";
code(red) -> "1;31";
code(yellow) -> "33";
code(green) -> "32";
code(dim) -> "2".

%% @doc `Text' padded with spaces (or cut) to `W' characters.
-spec pad(string(), non_neg_integer()) -> string().
pad(Text, W) ->
    Chars = unicode:characters_to_list(Text),
    case length(Chars) of
        N when N >= W -> lists:sublist(Chars, W);
        N -> Chars ++ lists:duplicate(W - N, $\s)
    end.

%% @doc `Text' right-aligned in `W' characters (never cut).
-spec lpad(string(), non_neg_integer()) -> string().
lpad(Text, W) ->
    Chars = unicode:characters_to_list(Text),
    lists:duplicate(max(0, W - length(Chars)), $\s) ++ Chars.

%% @doc Words (strings) wrapped into lines of at most `W' characters, the
%% lines after the first indented by `Indent' spaces.
-spec wrap([string()], pos_integer(), non_neg_integer()) -> [string()].
wrap(Words, W, Indent) ->
    wrap(Words, W, Indent, "", []).

-spec wrap([string()], pos_integer(), non_neg_integer(), string(), [string()]) -> [string()].
wrap([], _W, _Indent, "", Acc) -> lists:reverse(Acc);
wrap([], _W, _Indent, Line, Acc) -> lists:reverse([Line | Acc]);
wrap([Word | Rest], W, Indent, "", Acc) ->
    Prefix = case Acc of
                 [] -> "";
                 _ -> lists:duplicate(Indent, $\s)
             end,
    wrap(Rest, W, Indent, Prefix ++ Word, Acc);
wrap([Word | Rest] = Words, W, Indent, Line, Acc) ->
    case length(Line) + 2 + length(Word) =< W of
        true -> wrap(Rest, W, Indent, Line ++ "  " ++ Word, Acc);
        false -> wrap(Words, W, Indent, "", [Line | Acc])
    end.

%% @doc `Text' in red when `Hot', else plain.
-spec mark(boolean(), string()) -> segment().
mark(true, Text) -> {red, Text};
mark(false, Text) -> Text.

%%% Values

%% @doc A byte count, in B, KiB, MiB, GiB or TiB.
-spec bytes(number()) -> string().
bytes(N) when N < 1024 -> integer_to_list(round(N)) ++ " B";
bytes(N) -> scaled(N / 1024, ["KiB", "MiB", "GiB", "TiB"]).

-spec scaled(float(), [string()]) -> string().
scaled(V, [Unit]) -> one_decimal(V) ++ " " ++ Unit;
scaled(V, [Unit | _]) when V < 1024 -> one_decimal(V) ++ " " ++ Unit;
scaled(V, [_ | Units]) -> scaled(V / 1024, Units).

-spec one_decimal(float()) -> string().
one_decimal(V) -> float_to_list(V, [{decimals, 1}]).

%% @doc A count: below a million as it is, larger ones with M or G.
-spec num(number()) -> string().
num(N) when is_integer(N), abs(N) < 1000000 -> integer_to_list(N);
num(N) when is_float(N), abs(N) < 10 -> float_to_list(N, [{decimals, 2}]);
num(N) when abs(N) < 1000000 -> integer_to_list(round(N));
num(N) when abs(N) < 100000000000 -> one_decimal(N / 1000000) ++ "M";
num(N) -> one_decimal(N / 1000000000) ++ "G".

%% @doc A ratio (0.0 to 1.0) as a percentage.
-spec pct(number()) -> string().
pct(R) -> one_decimal(R * 100) ++ "%".

%% @doc A duration in ms as `Dd HH:MM:SS'.
-spec duration(non_neg_integer()) -> string().
duration(Ms) ->
    S = Ms div 1000,
    lists:flatten(io_lib:format("~bd ~2..0b:~2..0b:~2..0b",
                                [S div 86400, S rem 86400 div 3600, S rem 3600 div 60, S rem 60])).

%% @doc A sparkline of `Values' (oldest first) in at most `W' characters:
%% each character the mean of its share of the values, scaled between
%% their minimum and maximum; block characters, or ASCII when not `Unicode'.
-spec spark([number()], pos_integer(), boolean()) -> string().
spark([], _W, _Unicode) -> "";
spark(Values, W, Unicode) ->
    Means = squeeze(Values, W),
    Lo = lists:min(Means),
    Hi = lists:max(Means),
    Levels = case Unicode of
                 true -> [16#2581, 16#2582, 16#2583, 16#2584, 16#2585, 16#2586, 16#2587, 16#2588];
                 false -> "_.-~=+*#"
             end,
    [lists:nth(level(V, Lo, Hi, length(Levels)), Levels) || V <- Means].

-spec level(number(), number(), number(), pos_integer()) -> pos_integer().
level(_V, Lo, Hi, _N) when Hi =< Lo -> 1;
level(V, Lo, Hi, N) -> 1 + min(N - 1, trunc((V - Lo) / (Hi - Lo) * N)).

%% The values in at most `W' groups of consecutive values, each its mean.
-spec squeeze([number()], pos_integer()) -> [float()].
squeeze(Values, W) ->
    Per = (length(Values) + W - 1) div W,
    groups(Values, Per).

-spec groups([number()], pos_integer()) -> [float()].
groups([], _Per) -> [];
groups(Values, Per) when length(Values) =< Per -> [lists:sum(Values) / length(Values)];
groups(Values, Per) ->
    {Group, Rest} = lists:split(Per, Values),
    [lists:sum(Group) / Per | groups(Rest, Per)].

%% @doc A term printed on one line, in at most `W' characters.
-spec term(term(), pos_integer()) -> string().
term(T, W) ->
    Text = lists:flatten(io_lib:format("~0tp", [T])),
    case length(Text) > W of
        true -> lists:sublist(Text, max(1, W - 3)) ++ "...";
        false -> Text
    end.
