%% Common Test suite of reckon_port (reckon's port functions): loopback TCP
%% and UDP sockets and a `cat' port move known amounts of data, and the
%% answers are checked value by value.
-module(reckon_port_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_testcase/2, end_per_testcase/2]).
-export([tcp_io/1, udp_io/1, listen_socket/1, other_owner/1, non_inet_port/1,
         lists_of_ports/1, port_types_counts/1, files_are_not_ports/1,
         term_to_port_forms/1, registered_port/1, closed_port/1, bad_keys/1,
         keys_and_categories/1, caps/1, facade/1]).

-define(PAYLOAD, binary:copy(<<"r">>, 1000)).
-define(PACKETS, 10).
-define(LOOPBACK, {127, 0, 0, 1}).

all() ->
    [tcp_io, udp_io, listen_socket, other_owner, non_inet_port, lists_of_ports,
     port_types_counts, files_are_not_ports, term_to_port_forms, registered_port,
     closed_port, bad_keys, keys_and_categories, caps, facade].

init_per_testcase(_Case, Config) ->
    Config.

end_per_testcase(_Case, _Config) ->
    ok.

%%% Helpers

%% A connected pair over loopback: {Listen, Client, Server}.
tcp_pair() ->
    {ok, Listen} = gen_tcp:listen(0, [{ip, ?LOOPBACK}, binary, {active, false}]),
    {ok, Port} = inet:port(Listen),
    {ok, Client} = gen_tcp:connect(?LOOPBACK, Port, [binary, {active, false}]),
    {ok, Server} = gen_tcp:accept(Listen, 5000),
    {Listen, Client, Server}.

udp_socket() ->
    {ok, Sock} = gen_udp:open(0, [{ip, ?LOOPBACK}, binary, {active, false}]),
    Sock.

close_all(Socks) ->
    lists:foreach(fun(S) -> ok = inet:close(S) end, Socks).

category(Category, Info) ->
    {Category, Values} = lists:keyfind(Category, 1, Info),
    Values.

%% What port_info(P, io) gave before the statistics moved to `type', as
%% recon has them: input and output, then each statistic.
io_stats(Port) ->
    {io, Io} = reckon_port:port_info(Port, io),
    {statistics, Stats} = reckon_port:port_info(Port, statistics),
    Io ++ Stats.

get(Key, Values) ->
    {Key, Value} = lists:keyfind(Key, 1, Values),
    Value.

port_number(Port) ->
    "#Port<0." ++ Rest = erlang:port_to_list(Port),
    list_to_integer(lists:droplast(Rest)).

type_count(Name) ->
    case lists:keyfind(Name, 1, reckon_port:port_types()) of
        {Name, Count} -> Count;
        false -> 0
    end.

badarg_message(Fun) ->
    try Fun() of
        Result -> ct:fail({no_badarg, Result})
    catch
        error:badarg:Stack -> reckon_lib:format_error(badarg, Stack)
    end.

%%% Cases

%% 10 sends of 1000 bytes: the sender counts them exactly; TCP may merge
%% segments, so the receiver's byte count is exact and its read count is not.
tcp_io(_Config) ->
    {Listen, Client, Server} = tcp_pair(),
    [ok = gen_tcp:send(Client, ?PAYLOAD) || _ <- lists:seq(1, ?PACKETS)],
    {ok, Got} = gen_tcp:recv(Server, ?PACKETS * 1000, 5000),
    ?assertEqual(?PACKETS * 1000, byte_size(Got)),

    ClientInfo = reckon_port:port_info(Client),
    Sent = category(io, ClientInfo) ++ get(statistics, category(type, ClientInfo)),
    ?assertEqual(10000, get(output, Sent)),
    ?assertEqual(10000, get(send_oct, Sent)),
    ?assertEqual(?PACKETS, get(send_cnt, Sent)),
    ?assertEqual(1000, get(send_max, Sent)),
    ?assertEqual(1000, get(send_avg, Sent)),
    ?assertEqual(0, get(recv_oct, Sent)),
    ?assertEqual(0, get(recv_cnt, Sent)),
    ?assertEqual([input, output, recv_oct, recv_cnt, recv_max, recv_avg, recv_dvi,
                  send_oct, send_cnt, send_max, send_avg, send_pend],
                 [K || {K, _} <- Sent]),

    Received = io_stats(Server),
    ?assertEqual(10000, get(recv_oct, Received)),
    RecvCnt = get(recv_cnt, Received),
    ?assert(RecvCnt >= 1 andalso RecvCnt =< ?PACKETS),
    ?assertEqual(0, get(send_oct, Received)),

    %% Addresses and options, both ends.
    {ok, ClientAddr} = inet:sockname(Client),
    {ok, ServerAddr} = inet:sockname(Server),
    {type, Specific} = reckon_port:port_info(Client, specific),
    ?assertEqual({type, Specific}, reckon_port:port_info(Client, type)),
    ?assertEqual([statistics, peername, sockname, options], [K || {K, _} <- Specific]),
    ?assertEqual(ServerAddr, get(peername, Specific)),
    ?assertEqual(ClientAddr, get(sockname, Specific)),
    Options = get(options, Specific),
    ?assertEqual(false, get(active, Options)),
    ?assertEqual(binary, get(mode, Options)),
    ?assertEqual(0, get(packet, Options)),
    ?assertEqual({peername, ClientAddr}, reckon_port:port_info(Server, peername)),

    %% The other categories.
    Info = reckon_port:port_info(Client),
    ?assertEqual([meta, signals, io, memory_used, type], [C || {C, _} <- Info]),
    Meta = category(meta, Info),
    ?assertEqual([id, name, os_pid], [K || {K, _} <- Meta]),
    ?assertEqual("tcp_inet", get(name, Meta)),
    ?assertEqual(undefined, get(os_pid, Meta)),
    {id, Id} = erlang:port_info(Client, id),
    ?assertEqual(Id, get(id, Meta)),
    Signals = category(signals, Info),
    ?assertEqual(self(), get(connected, Signals)),
    ?assertEqual([self()], get(links, Signals)),
    ?assertEqual([], get(monitors, Signals)),
    Memory = category(memory_used, Info),
    ?assert(get(memory, Memory) > 0),
    ?assertEqual(0, get(queue_size, Memory)),
    close_all([Client, Server, Listen]).

%% UDP datagrams are counted exactly on loopback (each one is read before the
%% next is sent, so none is dropped by a small receive buffer).
udp_io(_Config) ->
    Sender = udp_socket(),
    Receiver = udp_socket(),
    {ok, {_, ReceiverPort} = ReceiverAddr} = inet:sockname(Receiver),
    lists:foreach(
      fun(_) ->
              ok = gen_udp:send(Sender, ?LOOPBACK, ReceiverPort, ?PAYLOAD),
              {ok, {_, _, Data}} = gen_udp:recv(Receiver, 0, 5000),
              1000 = byte_size(Data)
      end, lists:seq(1, ?PACKETS)),
    Sent = io_stats(Sender),
    ?assertEqual(10000, get(send_oct, Sent)),
    ?assertEqual(?PACKETS, get(send_cnt, Sent)),
    ?assert(get(output, Sent) >= 10000),   % the driver also counts each address
    ?assertEqual(0, get(recv_cnt, Sent)),
    Received = io_stats(Receiver),
    ?assertEqual(10000, get(recv_oct, Received)),
    ?assertEqual(?PACKETS, get(recv_cnt, Received)),
    ?assertEqual(1000, get(recv_max, Received)),
    ?assertEqual(1000, get(recv_avg, Received)),
    ?assertEqual(0, get(recv_dvi, Received)),
    ?assertEqual(0, get(send_cnt, Received)),
    ?assertEqual([{recv_cnt, ?PACKETS}, {send_cnt, 0}],
                 reckon_port:port_info(Receiver, [recv_cnt, send_cnt])),
    %% An unconnected socket has no peer; UDP has no `nodelay'.
    {type, Specific} = reckon_port:port_info(Receiver, type),
    ?assertEqual(false, lists:keymember(peername, 1, Specific)),
    ?assertEqual(ReceiverAddr, get(sockname, Specific)),
    Options = get(options, Specific),
    ?assertEqual(false, lists:keymember(nodelay, 1, Options)),
    ?assertEqual(binary, get(mode, Options)),
    ?assertEqual("udp_inet", get(name, category(meta, reckon_port:port_info(Sender)))),
    close_all([Sender, Receiver]).

listen_socket(_Config) ->
    {ok, Listen} = gen_tcp:listen(0, [{ip, ?LOOPBACK}, binary, {active, false}]),
    {ok, Addr} = inet:sockname(Listen),
    ?assertEqual([{peername, undefined}, {sockname, Addr}],
                 reckon_port:port_info(Listen, [peername, sockname])),
    ?assertEqual({send_oct, 0}, reckon_port:port_info(Listen, send_oct)),
    ok = gen_tcp:close(Listen).

%% Sockets of another process are read as well, without its help.
other_owner(_Config) ->
    Self = self(),
    Owner = spawn_link(fun() ->
                               Sock = udp_socket(),
                               Self ! {sock, Sock},
                               receive stop -> ok end
                       end),
    Sock = receive {sock, S} -> S after 5000 -> ct:fail(no_socket) end,
    Sender = udp_socket(),
    {ok, {_, Port}} = inet:sockname(Sock),
    ok = gen_udp:send(Sender, ?LOOPBACK, Port, <<"abc">>),
    ?assertEqual({connected, Owner}, reckon_port:port_info(Sock, connected)),
    ?assertEqual({send_oct, 3}, reckon_port:port_info(Sender, send_oct)),
    Io = io_stats(Sock),
    ?assertEqual(0, get(send_cnt, Io)),
    Owner ! stop,
    ok = gen_udp:close(Sender).

%% A port of another driver: an OS process whose output comes back.
non_inet_port(_Config) ->
    Cat = os:find_executable("cat"),
    Port = open_port({spawn_executable, Cat}, [binary, stream]),
    true = port_command(Port, <<"hello reckon">>),
    ?assertEqual(<<"hello reckon">>, read_port(Port, 12, <<>>)),
    Info = reckon_port:port_info(Port),
    Meta = category(meta, Info),
    ?assertEqual(Cat, get(name, Meta)),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    ?assert(is_integer(OsPid)),
    ?assertEqual(OsPid, get(os_pid, Meta)),
    ?assertEqual([{input, 12}, {output, 12}], category(io, Info)),
    ?assertEqual([], category(type, Info)),
    ?assertEqual({type, []}, reckon_port:port_info(Port, specific)),
    ?assertEqual({type, []}, reckon_port:port_info(Port, type)),
    ?assertEqual({recv_oct, undefined}, reckon_port:port_info(Port, recv_oct)),
    ?assertEqual({options, undefined}, reckon_port:port_info(Port, options)),
    ?assertEqual(false, lists:member(Port, reckon_port:of_type(["tcp_inet", "udp_inet",
                                                                 "sctp_inet"]))),
    ?assertEqual([Port], reckon_port:of_type([Cat])),
    port_close(Port).

read_port(_Port, Want, Acc) when byte_size(Acc) >= Want ->
    Acc;
read_port(Port, Want, Acc) ->
    receive
        {Port, {data, Data}} -> read_port(Port, Want, <<Acc/binary, Data/binary>>)
    after 5000 -> ct:fail({no_echo, Acc})
    end.

lists_of_ports(_Config) ->
    TcpBefore = reckon_port:tcp(),
    UdpBefore = reckon_port:udp(),
    SctpBefore = reckon_port:sctp(),
    {Listen, Client, Server} = tcp_pair(),
    Udp1 = udp_socket(),
    Udp2 = udp_socket(),
    ?assertEqual(lists:sort([Listen, Client, Server]),
                 lists:sort(reckon_port:tcp() -- TcpBefore)),
    ?assertEqual(lists:sort([Udp1, Udp2]), lists:sort(reckon_port:udp() -- UdpBefore)),
    ?assertEqual(SctpBefore, reckon_port:sctp()),
    Inet = reckon_port:of_type(["tcp_inet", "udp_inet", "sctp_inet"]),
    ?assertEqual([], [Listen, Client, Server, Udp1, Udp2] -- Inet),
    ?assertEqual([], reckon_port:of_type([])),
    ?assertEqual([], reckon_port:of_type(["no such driver"])),
    close_all([Client, Udp1]),
    ?assertEqual(lists:sort([Listen, Server]), lists:sort(reckon_port:tcp() -- TcpBefore)),
    ?assertEqual([Udp2], reckon_port:udp() -- UdpBefore),
    close_all([Listen, Server, Udp2]),
    ?assertEqual([], reckon_port:tcp() -- TcpBefore),
    ?assertEqual([], reckon_port:udp() -- UdpBefore).

port_types_counts(_Config) ->
    Tcp = type_count("tcp_inet"),
    Udp = type_count("udp_inet"),
    {Listen, Client, Server} = tcp_pair(),
    Udps = [udp_socket() || _ <- lists:seq(1, 4)],
    ?assertEqual(Tcp + 3, type_count("tcp_inet")),
    ?assertEqual(Udp + 4, type_count("udp_inet")),
    Types = reckon_port:port_types(),
    Counts = [C || {_, C} <- Types],
    ?assertEqual(lists:reverse(lists:sort(Counts)), Counts),
    ?assert(lists:sum(Counts) >= 7),
    ?assert(lists:all(fun({Name, C}) -> is_list(Name) andalso C > 0 end, Types)),
    close_all([Listen, Client, Server | Udps]),
    ?assertEqual(Tcp, type_count("tcp_inet")),
    ?assertEqual(Udp, type_count("udp_inet")).

%% OTP 21 replaced the `efile' driver by NIFs: a file opened with
%% file:open/2 (not raw) is a process, and no port at all.
files_are_not_ports(Config) ->
    Path = filename:join(?config(priv_dir, Config), "reckon_port_file"),
    PortsBefore = erlang:ports(),
    {ok, File} = file:open(Path, [write]),
    ok = file:write(File, <<"data">>),
    ?assert(is_pid(File)),
    ?assertEqual([], reckon_port:files()),
    ?assertEqual(0, type_count("efile")),
    ?assertEqual([], erlang:ports() -- PortsBefore),
    ok = file:close(File).

term_to_port_forms(_Config) ->
    Sock = udp_socket(),
    N = port_number(Sock),
    Text = erlang:port_to_list(Sock),
    ?assertEqual(Sock, reckon_port:term_to_port(Sock)),
    ?assertEqual(Sock, reckon_port:term_to_port(Text)),
    ?assertEqual(Sock, reckon_port:term_to_port(list_to_binary(Text))),
    ?assertEqual(Sock, reckon_port:term_to_port(N)),
    ?assertEqual(Sock, reckon_port:term_to_port("#Port<0." ++ integer_to_list(N) ++ ">")),
    %% Every function taking a port takes every form.
    Id = erlang:port_info(Sock, id),
    [?assertEqual(Id, reckon_port:port_info(Form, id))
     || Form <- [Sock, Text, list_to_binary(Text), N]],
    ?assertEqual(reckon_port:port_info(Sock, meta), reckon_port:port_info(N, meta)),
    %% Atoms: only a port's registered name resolves.
    ?assertEqual(undefined, reckon_port:term_to_port(reckon_port_suite_nobody)),
    ?assertEqual(undefined, reckon_port:term_to_port(init)),   % a process
    ?assertEqual(undefined, reckon_port:port_info(init)),
    ?assertEqual(undefined, reckon_port:port_info(reckon_port_suite_nobody, io)),
    %% Malformed terms.
    Bad = ["#Port<0.x>", "#Port<0.1", "<0.1.0>", "", "reckon_port_suite_never_made",
           <<"reckon_port_suite_never_made">>, <<"#Port<0.>">>, [1, a],
           "#Port<0.18446744073709551616>", 1 bsl 64, 1 bsl 100,
           -1, 1.0, {0, 1}, self(), make_ref(), #{}],
    lists:foreach(
      fun(Term) ->
              ?assertError(badarg, reckon_port:term_to_port(Term)),
              ?assertError(badarg, reckon_port:port_info(Term)),
              ?assertError(badarg, reckon_port:port_info(Term, io))
      end, Bad),
    ?assertMatch(#{1 := "not of the form" ++ _},
                 badarg_message(fun() -> reckon_port:term_to_port("#Port<0.x>") end)),
    %% No atom was made from the input.
    ?assertError(badarg, list_to_existing_atom("reckon_port_suite_never_made")),
    ok = gen_udp:close(Sock).

registered_port(_Config) ->
    Name = reckon_port_suite_sock,
    Sock = udp_socket(),
    true = erlang:register(Name, Sock),
    ?assertEqual(Sock, reckon_port:term_to_port(Name)),
    {meta, Meta} = reckon_port:port_info(Name, meta),
    ?assertEqual([id, name, os_pid, registered_name], [K || {K, _} <- Meta]),
    ?assertEqual(Name, get(registered_name, Meta)),
    ?assertEqual({registered_name, Name}, reckon_port:port_info(Sock, registered_name)),
    ?assertEqual({send_cnt, 0}, reckon_port:port_info(Name, send_cnt)),
    ?assertEqual(erlang:port_info(Sock, id), reckon_port:port_info(Name, id)),
    true = erlang:unregister(Name),
    ?assertEqual({registered_name, undefined}, reckon_port:port_info(Sock, registered_name)),
    ?assertEqual([id, name, os_pid],
                 [K || {K, _} <- element(2, reckon_port:port_info(Sock, meta))]),
    ?assertEqual(undefined, reckon_port:term_to_port(Name)),
    ?assertEqual(undefined, reckon_port:port_info(Name)),
    %% Closing a port unregisters it.
    true = erlang:register(Name, Sock),
    ok = gen_udp:close(Sock),
    ?assertEqual(undefined, reckon_port:term_to_port(Name)).

closed_port(_Config) ->
    Sock = udp_socket(),
    N = port_number(Sock),
    ok = gen_udp:close(Sock),
    ?assertEqual(Sock, reckon_port:term_to_port(Sock)),
    ?assertEqual(undefined, reckon_port:port_info(Sock)),
    [?assertEqual(undefined, reckon_port:port_info(Sock, What))
     || What <- [meta, signals, io, memory_used, type, specific, id, name, recv_oct,
                 peername, options, registered_name, [id, send_oct], []]],
    ?assertEqual(undefined, reckon_port:port_info(N)),
    ?assertEqual(undefined, reckon_port:port_info(erlang:port_to_list(Sock), io)),
    ?assertEqual(false, lists:member(Sock, reckon_port:udp())),
    %% A key is checked before the port is.
    ?assertError(badarg, reckon_port:port_info(Sock, bogus)),
    %% A number nothing was opened under.
    Unused = 1 bsl 27 + 12345,
    ?assert(is_port(reckon_port:term_to_port(Unused))),
    ?assertEqual(undefined, reckon_port:port_info(Unused)).

bad_keys(_Config) ->
    Sock = udp_socket(),
    [?assertError(badarg, reckon_port:port_info(Sock, What))
     || What <- [bogus, stats, [bogus], [id, bogus], [id | name], [io], 42,
                 "id", {id}]],
    #{2 := Why} = badarg_message(fun() -> reckon_port:port_info(Sock, bogus) end),
    ?assertMatch("unknown category or key" ++ _, Why),
    ?assert(string:find(Why, "memory_used") =/= nomatch),
    #{2 := _} = badarg_message(fun() -> reckon_port:port_info(Sock, [id, bogus]) end),
    ?assertEqual(#{}, reckon_lib:format_error(badarg, [])),
    ok = gen_udp:close(Sock).

keys_and_categories(_Config) ->
    Cat = os:find_executable("cat"),
    Port = open_port({spawn_executable, Cat}, [binary]),
    Ref = erlang:monitor(port, Port),
    ?assertEqual({monitored_by, [self()]}, reckon_port:port_info(Port, monitored_by)),
    {parallelism, Par} = reckon_port:port_info(Port, parallelism),
    ?assert(is_boolean(Par)),
    {locking, _} = reckon_port:port_info(Port, locking),
    ?assertEqual([], reckon_port:port_info(Port, [])),
    ?assertEqual([{name, Cat}, {input, 0}, {id, element(2, erlang:port_info(Port, id))}],
                 reckon_port:port_info(Port, [name, input, id])),
    %% Each category of port_info/1 is port_info/2 of it.
    Info = reckon_port:port_info(Port),
    [?assertEqual(lists:keyfind(C, 1, Info), reckon_port:port_info(Port, C))
     || C <- [meta, signals, io, memory_used, type]],
    true = erlang:demonitor(Ref, [flush]),
    port_close(Port).

%% 1100 processes link to a socket and 1100 monitors watch it: the lists
%% answered stop at 1000.
caps(_Config) ->
    ?assertEqual(1000, reckon_port:cap()),
    Sock = udp_socket(),
    Self = self(),
    Linkers = [spawn(fun() -> link(Sock), Self ! {linked, self()},
                              receive stop -> ok end
                     end) || _ <- lists:seq(1, 1100)],
    [receive {linked, P} -> ok after 5000 -> ct:fail(not_linked) end || P <- Linkers],
    Refs = [erlang:monitor(port, Sock) || _ <- lists:seq(1, 1100)],
    {links, AllLinks} = erlang:port_info(Sock, links),
    ?assertEqual(1101, length(AllLinks)),
    {links, Links} = reckon_port:port_info(Sock, links),
    ?assertEqual(1000, length(Links)),
    ?assertEqual([], Links -- AllLinks),
    ?assertEqual(1000, length(get(links, category(signals, reckon_port:port_info(Sock))))),
    {monitored_by, By} = reckon_port:port_info(Sock, monitored_by),
    ?assertEqual(1000, length(By)),
    ?assert(length(get(options, category(type, reckon_port:port_info(Sock)))) =< 1000),
    [true = erlang:demonitor(R, [flush]) || R <- Refs],
    [P ! stop || P <- Linkers],
    ok = gen_udp:close(Sock).

%% The facade delegates here.
facade(_Config) ->
    {Listen, Client, Server} = tcp_pair(),
    ?assertEqual(reckon_port:port_info(Client, meta), reckon:port_info(Client, meta)),
    ?assertEqual([meta, signals, io, memory_used, type],
                 [C || {C, _} <- reckon:port_info(Client)]),
    ?assertEqual(reckon_port:tcp(), reckon:tcp()),
    ?assertEqual(reckon_port:udp(), reckon:udp()),
    ?assertEqual(reckon_port:sctp(), reckon:sctp()),
    ?assertEqual([], reckon:files()),
    ?assertEqual(Client, reckon:term_to_port(port_number(Client))),
    ?assert(lists:keymember("tcp_inet", 1, reckon:port_types())),
    close_all([Client, Server, Listen]),
    ?assertEqual(undefined, reckon:port_info(Client)).
