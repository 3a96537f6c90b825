%% @private
%% @doc Port inspection behind the port functions of `reckon': what a port
%% is, what it talks to, how much it moved, what it costs, and, for sockets,
%% their statistics, addresses and options.
%%
%% <h3>Naming a port</h3>
%% Every function taking a port accepts what {@link term_to_port/1} does: a
%% port, `"#Port<0.7>"', `<<"#Port<0.7>">>', its number `7', or a name it
%% was registered under with `erlang:register/2'. A number or text names a
%% port whether it is open or not. A malformed term raises `badarg' (the
%% shell prints what was wrong), and so does a text the port would not print
%% back as is (`"#Port<0.007>"', or a number of 2^64 or more, which
%% `erlang:list_to_port/1' wraps around); a name nobody registered, or one
%% registered by a process, is `undefined'. No atom is ever created.
%%
%% <h3>Listing ports</h3>
%% {@link port_types/0} counts open ports by driver name, most first.
%% {@link tcp/0}, {@link udp/0}, {@link sctp/0} and {@link files/0} list the
%% ports of the `tcp_inet', `udp_inet', `sctp_inet' and `efile' drivers;
%% {@link of_type/1} lists the ports of any set of driver names. These lists
%% are filtered from `erlang:ports()' and, like it, not capped: `reckon_scan'
%% ranks every inet port from them. Since OTP 21 files are NIF-based and no
%% `efile' port exists, so {@link files/0} is `[]' on OTP 25; it stays for
%% recon's callers.
%%
%% <h3>Describing a port</h3>
%% {@link port_info/1} answers `[{Category, [{Key, Value}]}]' with these
%% categories, in this order:
%% <ul>
%% <li>`meta': `id', `name', `os_pid', and `registered_name' when the port
%%     is registered;</li>
%% <li>`signals': `connected', `links', `monitors';</li>
%% <li>`io': `input', `output';</li>
%% <li>`memory_used': `memory', `queue_size';</li>
%% <li>`type' (recon's): for inet ports `statistics' (the ten statistics of
%%     `inet:getstat/1': `recv_oct', `recv_cnt', `recv_max', `recv_avg',
%%     `recv_dvi', `send_oct', `send_cnt', `send_max', `send_avg',
%%     `send_pend'), `peername', `sockname' and `options' (`inet:getopts/2'
%%     of the options in {@link inet_options/0} that the socket supports),
%%     each left out when the socket cannot answer it (the `peername' of a
%%     listening socket); `[]' for other ports.</li>
%% </ul>
%% {@link port_info/2} answers one category (`{Category, [{Key, Value}]}';
%% `specific', recon's name for the call, answers `{type, _}'),
%% one key (`{Key, Value}') or a list of keys (`[{Key, Value}]'). Keys are
%% those above, each statistic alone (`recv_oct', ...) and the other items
%% of `erlang:port_info/2' (`monitored_by', `parallelism', `locking'). An inet key of a port that
%% is not a socket, or one the socket cannot answer (the `peername' of a
%% listening socket), is `undefined'. An unknown key or category raises
%% `badarg'.
%%
%% A closed port, an unknown port number and an unregistered name give
%% `undefined', also when the port closes while it is being described. A
%% port of another node raises `badarg': ask that node (`reckon:rpc/2').
%%
%% <h3>Bounds</h3>
%% Every list inside an answer (`links', `monitors', `monitored_by',
%% `options') holds at most 1000 elements ({@link cap/0}); so does
%% {@link port_types/0}. Statistics, addresses and options are read with
%% `inet:getstat/1', `inet:peername/1', `inet:sockname/1' and
%% `inet:getopts/2', which are synchronous controls of the inet driver: they
%% never wait for the socket's owner, work on sockets owned by any process,
%% are only made on ports whose driver is an inet one, and any error they
%% raise (a port closing meanwhile) is caught.
-module(reckon_port).

-export([port_types/0, port_info/1, port_info/2, tcp/0, udp/0, sctp/0, files/0,
         of_type/1, term_to_port/1]).
-export([cap/0, inet_options/0]).

-export_type([category/0, key/0, info/0]).

-type category() :: meta | signals | io | memory_used | type | specific.
-type key() :: atom().
-type info() :: [{category(), [{key(), term()}]}].

-define(CAP, 1000).
-define(REMOTE, "a port of another node; ask that node with reckon:rpc/2").
-include("reckon_error.hrl").
-define(BADARG(Args, Index, Why), ?RECKON_BADARG(Args, Index, Why)).
-define(INET_NAMES, ["tcp_inet", "udp_inet", "sctp_inet"]).
-define(CATEGORIES, [meta, signals, io, memory_used, type]).
%% Categories port_info/2 takes: `specific' is recon's call for `type'.
-define(ASKABLE, [specific | ?CATEGORIES]).
%% Items of `erlang:port_info/2' this module answers.
-define(PORT_KEYS, [id, name, os_pid, registered_name, connected, links, monitors,
                    monitored_by, input, output, memory, queue_size, parallelism,
                    locking]).
-define(STAT_KEYS, [recv_oct, recv_cnt, recv_max, recv_avg, recv_dvi,
                    send_oct, send_cnt, send_max, send_avg, send_pend]).
-define(SOCKET_KEYS, [statistics, peername, sockname, options]).
%% Items whose value is a list that can grow without bound.
-define(LIST_KEYS, [links, monitors, monitored_by]).

%%% Listing ports

%% @doc How many ports of each driver name are open, most first (equal
%% counts by name), at most {@link cap/0} names.
-spec port_types() -> [{Type :: string(), Count :: pos_integer()}].
port_types() ->
    Counts = lists:foldl(fun count_name/2, #{}, erlang:ports()),
    Sorted = lists:sort(fun by_count/2, maps:to_list(Counts)),
    lists:sublist(Sorted, ?CAP).

-spec count_name(port(), #{string() => pos_integer()}) -> #{string() => pos_integer()}.
count_name(Port, Counts) ->
    case erlang:port_info(Port, name) of
        {name, Name} -> maps:update_with(Name, fun(N) -> N + 1 end, 1, Counts);
        undefined -> Counts
    end.

-spec by_count({string(), pos_integer()}, {string(), pos_integer()}) -> boolean().
by_count({NameA, CountA}, {NameB, CountB}) ->
    {-CountA, NameA} =< {-CountB, NameB}.

%% @doc Open ports of the `tcp_inet' driver.
-spec tcp() -> [port()].
tcp() -> of_type(["tcp_inet"]).

%% @doc Open ports of the `udp_inet' driver.
-spec udp() -> [port()].
udp() -> of_type(["udp_inet"]).

%% @doc Open ports of the `sctp_inet' driver.
-spec sctp() -> [port()].
sctp() -> of_type(["sctp_inet"]).

%% @doc Open ports of the `efile' driver; `[]' since OTP 21, whose files
%% are NIF-based.
-spec files() -> [port()].
files() -> of_type(["efile"]).

%% @doc Open ports whose driver name is one of `Names', in the order of
%% `erlang:ports()'; not capped.
-spec of_type([string()]) -> [port()].
of_type(Names) when is_list(Names) ->
    [Port || Port <- erlang:ports(), lists:member(port_name(Port), Names)].

-spec port_name(port()) -> string() | undefined.
port_name(Port) ->
    case erlang:port_info(Port, name) of
        {name, Name} -> Name;
        undefined -> undefined
    end.

%%% Naming a port

%% @doc The port `Term' names: a port is itself; `"#Port<0.7>"',
%% `<<"#Port<0.7>">>' and `7' are `#Port<0.7>' (open or not); an atom is
%% the port registered under it, or `undefined'. Anything else, or a
%% malformed string, raises `badarg'.
-spec term_to_port(reckon:port_term()) -> port() | undefined.
term_to_port(Port) when is_port(Port) ->
    Port;
term_to_port(Name) when is_atom(Name) ->
    case whereis(Name) of
        Port when is_port(Port) -> Port;
        _ -> undefined
    end;
term_to_port(Number) when is_integer(Number), Number >= 0 ->
    case parse("#Port<0." ++ integer_to_list(Number) ++ ">") of
        {ok, Port} -> Port;
        error -> ?BADARG([Number], 1, "a port number too large for this node")
    end;
term_to_port(Text) when is_binary(Text); is_list(Text) ->
    case parse(Text) of
        {ok, Port} -> Port;
        error -> ?BADARG([Text], 1, "not of the form \"#Port<0.N>\"")
    end;
term_to_port(Term) ->
    ?BADARG([Term], 1, "not a port, \"#Port<0.N>\", a port number or a registered name").

-spec parse(binary() | list()) -> {ok, port()} | error.
parse(Bin) when is_binary(Bin) ->
    parse(binary_to_list(Bin));
parse(List) ->
    try erlang:list_to_port(List) of
        Port -> same_text(Port, List)
    catch
        error:badarg -> error
    end.

%% `erlang:list_to_port/1' wraps numbers of 2^64 and more around: only a
%% text that the port prints back as is names it.
-spec same_text(port(), list()) -> {ok, port()} | error.
same_text(Port, List) ->
    case erlang:port_to_list(Port) =:= List of
        true -> {ok, Port};
        false -> error
    end.

%%% Describing a port

%% @doc Everything known of a port, by category (see the module's doc);
%% `undefined' when it is closed or no port has that name.
-spec port_info(reckon:port_term()) -> info() | undefined.
port_info(PortTerm) ->
    case resolve(PortTerm) of
        {ok, Port} -> unless_closed(Port, fun() -> categories(Port) end);
        undefined -> undefined;
        remote -> ?BADARG([PortTerm], 1, ?REMOTE)
    end.

-spec categories(port()) -> info().
categories(Port) ->
    [category(Port, C) || C <- ?CATEGORIES].

%% @doc One category, one key or a list of keys of {@link port_info/1};
%% `undefined' when the port is closed or no port has that name.
-spec port_info(reckon:port_term(), category() | key() | [key()]) ->
    {category() | key(), term()} | [{key(), term()}] | undefined.
port_info(PortTerm, What) ->
    case {check_what(What), resolve(PortTerm)} of
        {{error, Why}, _} -> ?BADARG([PortTerm, What], 2, Why);
        {ok, {ok, Port}} -> unless_closed(Port, fun() -> answer(Port, What) end);
        {ok, undefined} -> undefined;
        {ok, remote} -> ?BADARG([PortTerm, What], 1, ?REMOTE)
    end.

%% The open local port `PortTerm' names.
-spec resolve(reckon:port_term()) -> {ok, port()} | undefined | remote.
resolve(PortTerm) ->
    case term_to_port(PortTerm) of
        undefined -> undefined;
        Port when node(Port) =/= node() -> remote;
        Port ->
            case is_open(Port) of
                true -> {ok, Port};
                false -> undefined
            end
    end.

%% `Fun()', or `undefined' if the port closed before it was done (`Fun'
%% throws `closed' when a value says so).
-spec unless_closed(port(), fun(() -> Answer)) -> Answer | undefined.
unless_closed(Port, Fun) ->
    try Fun() of
        Answer ->
            case is_open(Port) of
                true -> Answer;
                false -> undefined
            end
    catch
        throw:closed -> undefined
    end.

-spec is_open(port()) -> boolean().
is_open(Port) ->
    erlang:port_info(Port, id) =/= undefined.

-spec check_what(term()) -> ok | {error, string()}.
check_what(What) when is_atom(What) ->
    case lists:member(What, ?ASKABLE) orelse is_key(What) of
        true -> ok;
        false -> {error, "unknown category or key; categories: " ++ names(?ASKABLE)
                         ++ "; keys: " ++ names(all_keys())}
    end;
check_what(Keys) when is_list(Keys) ->
    case are_keys(Keys) of
        true -> ok;
        false -> {error, "not a proper list of keys; keys: " ++ names(all_keys())}
    end;
check_what(_) ->
    {error, "not a category, a key or a list of keys"}.

-spec are_keys(term()) -> boolean().
are_keys([]) -> true;
are_keys([Key | Keys]) -> is_key(Key) andalso are_keys(Keys);
are_keys(_) -> false.

-spec is_key(term()) -> boolean().
is_key(Key) -> lists:member(Key, all_keys()).

-spec all_keys() -> [key(), ...].
all_keys() -> ?PORT_KEYS ++ ?STAT_KEYS ++ ?SOCKET_KEYS.

-spec names([atom()]) -> string().
names(Atoms) -> lists:flatten(lists:join(", ", [atom_to_list(A) || A <- Atoms])).

-spec answer(port(), category() | key() | [key()]) ->
    {category() | key(), term()} | [{key(), term()}].
answer(Port, Keys) when is_list(Keys) ->
    values(Port, Keys);
answer(Port, What) ->
    case lists:member(What, ?ASKABLE) of
        true -> category(Port, What);
        false -> hd(values(Port, [What]))
    end.

-spec category(port(), category()) -> {category(), [{key(), term()}]}.
category(Port, meta) ->
    Meta = values(Port, [id, name, os_pid]),
    case value(Port, registered_name, []) of
        undefined -> {meta, Meta};
        Name -> {meta, Meta ++ [{registered_name, Name}]}
    end;
category(Port, signals) ->
    {signals, values(Port, [connected, links, monitors])};
category(Port, io) ->
    {io, values(Port, [input, output])};
category(Port, memory_used) ->
    {memory_used, values(Port, [memory, queue_size])};
category(Port, specific) ->
    category(Port, type);
category(Port, type) ->
    {type, [KV || {_, V} = KV <- values(Port, inet_keys(Port, ?SOCKET_KEYS)), V =/= undefined]}.

-spec inet_keys(port(), [key()]) -> [key()].
inet_keys(Port, Keys) ->
    case is_inet(Port) of
        true -> Keys;
        false -> []
    end.

%% The values of `Keys', reading the statistics once if one is asked for.
-spec values(port(), [key()]) -> [{key(), term()}].
values(Port, Keys) ->
    Stats = case lists:any(fun(K) -> lists:member(K, ?STAT_KEYS) end, Keys) of
                true -> stats(Port);
                false -> []
            end,
    [{Key, value(Port, Key, Stats)} || Key <- Keys].

-spec value(port(), key(), [{atom(), integer()}]) -> term().
value(Port, Key, Stats) ->
    case lists:member(Key, ?STAT_KEYS) of
        true -> proplists:get_value(Key, Stats);
        false -> value(Port, Key)
    end.

-spec value(port(), key()) -> term().
value(Port, statistics) ->
    case stats(Port) of
        [] -> undefined;
        Stats -> [{Key, proplists:get_value(Key, Stats)} || Key <- ?STAT_KEYS]
    end;
value(Port, peername) -> socket_call(Port, fun inet:peername/1);
value(Port, sockname) -> socket_call(Port, fun inet:sockname/1);
value(Port, options) ->
    case socket_call(Port, fun(P) -> inet:getopts(P, inet_options()) end) of
        undefined -> undefined;
        Opts -> lists:sublist(Opts, ?CAP)
    end;
value(Port, registered_name) ->
    case erlang:port_info(Port, registered_name) of
        undefined -> throw(closed);
        {registered_name, Name} -> Name;
        [] -> undefined
    end;
value(Port, Key) ->
    case erlang:port_info(Port, Key) of
        undefined -> throw(closed);
        {Key, List} when is_list(List) -> cap_list(Key, List);
        {Key, Value} -> Value
    end.

-spec cap_list(key(), list()) -> list().
cap_list(Key, List) ->
    case lists:member(Key, ?LIST_KEYS) of
        true -> lists:sublist(List, ?CAP);
        false -> List
    end.

%% The ten statistics of an inet port; `[]' for other ports or on error.
-spec stats(port()) -> [{atom(), integer()}].
stats(Port) ->
    case socket_call(Port, fun inet:getstat/1) of
        undefined -> [];
        Stats -> Stats
    end.

%% `Fun(Port)' for an inet port, `undefined' for another port, an error or
%% an exception (the port closed meanwhile).
-spec socket_call(port(), fun((port()) -> {ok, Value} | {error, term()})) -> Value | undefined.
socket_call(Port, Fun) ->
    case is_inet(Port) of
        true ->
            try Fun(Port) of
                {ok, Value} -> Value;
                {error, _} -> undefined
            catch
                _:_ -> undefined
            end;
        false ->
            undefined
    end.

-spec is_inet(port()) -> boolean().
is_inet(Port) ->
    lists:member(port_name(Port), ?INET_NAMES).

%%% Bounds and errors

%% @doc The most elements any list in an answer holds: 1000.
-spec cap() -> pos_integer().
cap() -> ?CAP.

%% @doc The options {@link port_info/1} reads from a socket, in this order;
%% those a socket does not support (`nodelay' of a UDP socket) are left out.
-spec inet_options() -> [atom(), ...].
inet_options() ->
    [active, broadcast, buffer, delay_send, dontroute, exit_on_close, header,
     high_watermark, keepalive, linger, low_watermark, mode, nodelay, packet,
     packet_size, priority, read_packets, recbuf, reuseaddr, send_timeout, sndbuf, tos].
