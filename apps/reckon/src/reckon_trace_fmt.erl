%% @private
%% @doc The output side of {@link reckon_trace}: the formatter process, which
%% owns the bounded box the pump posts events into, and the formatting of
%% one event (recon_trace's lines, capped in depth and bytes, records by
%% name once imported with {@link reckon_rec:import/1}).
%%
%% The box (`sluice_box', `queue': drops the oldest when full) is the only
%% buffer between the tracer and the io server. The formatter takes it in
%% active mode, writes each event with one io request, and arms the box
%% again; while a slow io server keeps it waiting, the box fills and drops,
%% and the next delivery's `Dropped' (with the events the tracer dropped
%% because the pump was behind, `reckon_tracer:take_dropped/1') is printed
%% as `N events dropped (output too slow)' (a note of the trace dropped by
%% the box counts as one). Its mailbox holds one mail at a time.
%%
%% Hot upgrades: the formatter starts from an exported function and its
%% loop calls itself fully qualified (an idle one every second), so it goes
%% on in a newly loaded version of this module and the old code is purged
%% without killing it.
-module(reckon_trace_fmt).

-export([start/1, format/1, format/2, event_to_msg/2, default_caps/0]).
%% The formatter's entry point and loop (called fully qualified).
-export([init/2, loop/2]).
-export_type([caps/0, fmt/0]).

-type caps() :: #{max_depth := pos_integer(), max_bytes := pos_integer()}.
-type fmt() :: #{state => reckon_tracer:state(), io_server := pid(), formatter := default | fun((tuple()) -> iodata()),
                 timestamp := formatter | trace, max_depth := pos_integer(),
                 max_bytes := pos_integer(), buffer := pos_integer(), atom() => term()}.

-define(DEFAULT_DEPTH, 20).
-define(DEFAULT_BYTES, 4096).
%% The longest an idle formatter stays in the code of an old version.
-define(HOP_MS, 1000).

%% @doc The default caps of one formatted event: terms printed to depth 20
%% (`~P': deeper terms, and list and map elements past that count, show as
%% `...'), and at most 4096 bytes per event (cut, ending in
%% `...(N bytes cut)').
-spec default_caps() -> caps().
default_caps() ->
    #{max_depth => ?DEFAULT_DEPTH, max_bytes => ?DEFAULT_BYTES}.

%% @doc Starts the formatter (linked to the caller), which makes its box of
%% `buffer' events and answers `{ok, Pid, Box}'.
-spec start(fmt()) -> {ok, pid(), sluice_box:box()} | {error, term()}.
start(#{buffer := _} = Fmt) ->
    Pid = spawn_link(?MODULE, init, [self(), Fmt]),
    receive
        {Pid, {ok, Box}} -> {ok, Pid, Box};
        {Pid, {error, _} = Error} -> Error
    end.

%% The formatter: makes its box, waits for the tracer state, then formats.
-spec init(pid(), fmt()) -> ok.
init(Parent, #{buffer := Max} = Fmt) ->
    case sluice_box:new(#{max => Max, type => queue}) of
        {ok, Box} ->
            Parent ! {self(), {ok, Box}},
            State = receive {state, S} -> S end,
            ok = sluice_box:active(Box),
            ?MODULE:loop(Box, Fmt#{state => State});
        {error, _} = Error ->
            Parent ! {self(), Error},
            ok
    end.

-spec loop(sluice_box:box(), fmt()) -> ok.
loop(Box, Fmt) ->
    receive
        {mail, Box, Msgs, _Count, BoxDropped} ->
            Dropped = BoxDropped + reckon_tracer:take_dropped(maps:get(state, Fmt)),
            _ = Dropped > 0 andalso
                write(Fmt, io_lib:format("~b events dropped (output too slow)~n", [Dropped])),
            case write_all(Msgs, Fmt) of
                continue ->
                    _ = sluice_box:active(Box),
                    ?MODULE:loop(Box, Fmt);
                done ->
                    _ = sluice_box:close(Box),
                    ok
            end
    after ?HOP_MS ->
            ?MODULE:loop(Box, Fmt)
    end.

-spec write_all([term()], fmt()) -> continue | done.
write_all([], _Fmt) ->
    continue;
write_all([reckon_trace_end | _], _Fmt) ->
    done;
write_all([Msg | Rest], Fmt) ->
    _ = write(Fmt, line(Msg, Fmt)),
    write_all(Rest, Fmt).

-spec line(term(), fmt()) -> iodata().
line({reckon_trace_suppressed, K}, _Fmt) ->
    io_lib:format("~b events suppressed~n", [K]);
line({reckon_trace_note, Text}, _Fmt) ->
    [Text, $\n];
line({reckon_trace_event, _, _, _, _, _} = Event, #{formatter := Formatter} = Fmt) ->
    Msg = event_to_msg(Event, maps:get(timestamp, Fmt)),
    case Formatter of
        default -> format(Msg, Fmt);
        Fun -> try Fun(Msg)
               catch Class:Reason -> io_lib:format("formatter failed: ~p:~P~n", [Class, Reason, 10])
               end
    end.

-spec write(fmt(), iodata()) -> ok | {error, term()}.
write(#{io_server := Io}, Chars) ->
    try io:put_chars(Io, Chars)
    catch _:Reason -> {error, Reason}
    end.

%% @doc The trace message recon's formatter expects (`{trace, Pid, Tag, ...}'
%% or, with `{timestamp, trace}', `{trace_ts, Pid, Tag, ..., Timestamp}' in
%% `erlang:timestamp()' form) of an event from the tracer.
-spec event_to_msg(tuple(), formatter | trace) -> tuple().
event_to_msg({reckon_trace_event, Tag, Pid, Term, Opts, TimeUs}, Stamp) ->
    Extra = case {Tag, Opts} of
                {call, #{match_spec_result := R}} when R =/= true, R =/= false -> [R];
                {call, _} -> [];
                {_, #{extra := X}} -> [X];
                _ -> []
            end,
    Base = [Pid, Tag, Term | Extra],
    case Stamp of
        formatter -> list_to_tuple([trace | Base]);
        trace -> list_to_tuple([trace_ts | Base] ++ [us_to_timestamp(TimeUs)])
    end.

-spec us_to_timestamp(non_neg_integer()) -> erlang:timestamp().
us_to_timestamp(Us) ->
    {Us div 1000000000000, Us div 1000000 rem 1000000, Us rem 1000000}.

%% @doc recon_trace's line for a trace message (`{trace, ...}' or
%% `{trace_ts, ...}'), with the default caps.
-spec format(tuple()) -> iodata().
format(Msg) ->
    format(Msg, default_caps()).

%% @doc As {@link format/1} with the caps of `Caps' (`max_depth',
%% `max_bytes').
-spec format(tuple(), #{max_depth := pos_integer(), max_bytes := pos_integer(), _ => _}) ->
    iodata().
format(Msg, #{max_depth := Depth, max_bytes := Bytes}) ->
    {Type, Pid, Time, Info} = extract(Msg),
    {Hour, Min, Sec} = Time,
    {Str, Args} = body(Type, Info, Depth),
    Line = io_lib:format("~2..0b:~2..0b:~9.6.0f ~p " ++ Str ++ "~n",
                         [Hour, Min, Sec, Pid | Args]),
    cap(unicode:characters_to_binary(Line), Bytes).

-spec extract(tuple()) -> {atom(), term(), {0..23, 0..59, float()}, [term()]}.
extract(Msg) ->
    case tuple_to_list(Msg) of
        [trace_ts, Pid, Type | Info] ->
            {Rest, [Stamp]} = lists:split(length(Info) - 1, Info),
            {Type, Pid, to_hms(Stamp), Rest};
        [trace, Pid, Type | Info] ->
            {Type, Pid, to_hms(os:timestamp()), Info}
    end.

-spec to_hms(erlang:timestamp()) -> {0..23, 0..59, float()}.
to_hms({_, _, Micro} = Stamp) ->
    {_, {H, M, S}} = calendar:now_to_local_time(Stamp),
    {H, M, S + Micro / 1000000}.

-spec body(atom(), [term()], pos_integer()) -> {string(), [term()]}.
body('receive', [Msg], D) -> {"< ~s", [term(Msg, D)]};
body(send, [Msg, To], D) -> {" > ~p: ~s", [To, term(Msg, D)]};
body(send_to_non_existing_process, [Msg, To], D) -> {" > (non_existent) ~p: ~s", [To, term(Msg, D)]};
body(call, [{M, F, Args}], D) -> {"~p:~p~s", [M, F, args(Args, D)]};
body(call, [{M, F, Args}, Msg], D) -> {"~p:~p~s ~s", [M, F, args(Args, D), term(Msg, D)]};
body(return_to, [{M, F, A}], _D) -> {" '--> ~p:~p/~p", [M, F, A]};
body(return_from, [{M, F, A}, Ret], D) -> {"~p:~p/~p --> ~s", [M, F, A, term(Ret, D)]};
body(exception_from, [{M, F, A}, {Class, Val}], D) -> {"~p:~p/~p ~p ~s", [M, F, A, Class, term(Val, D)]};
body(Type, Info, D) -> {"unknown trace type ~p -- ~s", [Type, term(Info, D)]}.

-spec args(non_neg_integer() | [term()], pos_integer()) -> iodata().
args(Arity, _D) when is_integer(Arity) ->
    [$/, integer_to_list(Arity)];
args(Args, D) when is_list(Args) ->
    [$(, lists:join(", ", [term(A, D) || A <- Args]), $)].

%% A term to depth `D', records by name (those imported with reckon_rec).
-spec term(term(), pos_integer()) -> iodata().
term(Term, D) ->
    io_lib_pretty:print(Term, [{depth, D}, {column, 1}, {line_length, 1 bsl 20},
                               {record_print_fun, reckon_rec:print_fun()},
                               {encoding, unicode}]).

-spec cap(binary(), pos_integer()) -> iodata().
cap(Line, Bytes) when byte_size(Line) =< Bytes ->
    Line;
cap(Line, Bytes) ->
    Keep = keep_utf8(Line, Bytes),
    <<Head:Keep/binary, _/binary>> = Line,
    [Head, io_lib:format("...(~b bytes cut)~n", [byte_size(Line) - Keep])].

%% The longest prefix of at most `Bytes' bytes that ends on a character boundary.
-spec keep_utf8(binary(), non_neg_integer()) -> non_neg_integer().
keep_utf8(_Line, 0) ->
    0;
keep_utf8(Line, Bytes) ->
    case binary:at(Line, Bytes) of
        C when C band 16#C0 =:= 16#80 -> keep_utf8(Line, Bytes - 1);
        _ -> Bytes
    end.
