%% Tests of reckon_top: every view rendered to a string from a snapshot the
%% test builds (fixed width, no terminal); readings of the real node; the
%% loop driven through a group leader the test plays (keys in, frames out)
%% and what it leaves behind; and, as a person would, a remote shell in
%% tmux attached to an OS-level node.
-module(reckon_top_SUITE).
-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([home_view/1, home_without_recorder/1, processes_view/1, mailbox_first/1,
         ports_view/1, ets_view/1, alloc_view/1, sluice_view/1, sluice_view_off/1,
         sluice_view_real/1,
         process_view/1, widths_and_colours/1, every_view_read/1, bad_options/1,
         loop_keys_and_quit/1, output_gone_stops/1, tmux_remote_shell/1]).

all() ->
    [home_view, home_without_recorder, processes_view, mailbox_first, ports_view, ets_view,
     alloc_view, sluice_view, sluice_view_off, sluice_view_real, process_view, widths_and_colours,
     every_view_read, bad_options, loop_keys_and_quit, output_gone_stops, tmux_remote_shell].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(reckon),
    Config.

end_per_suite(_Config) ->
    ok.

-define(OPTS, #{width => 100, colour => false, unicode => false}).

%%% Rendering

snap(View, Data) ->
    #{view => View, node => 'shop@vm', time => {12, 3, 4}, interval => 2000,
      sort => reductions, data => Data}.

render(Snap) ->
    render(Snap, ?OPTS).

render(Snap, Opts) ->
    Text = reckon_top_render:to_string(Snap, Opts),
    ct:log("~ts", [Text]),
    Text.

has(Text, Part) ->
    case string:find(Text, Part) of
        nomatch -> ct:fail({missing, Part, Text});
        _ -> ok
    end.

lacks(Text, Part) ->
    ?assertEqual(nomatch, string:find(Text, Part)).

%% The line holding `Part'.
line_of(Text, Part) ->
    [L | _] = [L || L <- string:split(Text, "\n", all), string:find(L, Part) =/= nomatch],
    L.

home_data() ->
    #{node => 'shop@vm', otp => "25", erts => "13.1.5", uptime => 3723000,
      schedulers => {2, 2},
      memory => [{total, 47185920}, {processes, 12582912}, {processes_used, 12000000},
                 {system, 34603008}, {atom, 1048576}, {atom_used, 1000000},
                 {binary, 307200}, {code, 10485760}, {ets, 1153434}],
      limits => [{processes, 240000, 262144}, {ports, 6, 65536}, {atoms, 15000, 1048576},
                 {ets, 30, 8192}],
      run_queues => #{total => 7, normal => [3, 4], dirty_cpu => 0, dirty_io => 0},
      reductions => 123456.0,
      scheduler_usage => [{1, 0.45}, {2, 0.03}, {3, 0.0}],
      history => {300, [{"memory total", bytes, [1.0e6, 2.0e6, 4.0e6, 47185920.0]},
                        {"run queue", count, [0.0, 1.0, 7.0]},
                        {"reductions/s", count, []},
                        {"scheduler use", ratio, [0.1, 0.45]}]}}.

home_view(_Config) ->
    Text = render(snap(home, home_data())),
    has(Text, "reckon_top  shop@vm  Home"),
    has(Text, "every 2 s  12:03:04"),
    has(Text, "OTP 25 (erts 13.1.5)"),
    has(Text, "uptime 0d 01:02:03"),
    has(Text, "total 45.0 MiB"),
    has(Text, "code 10.0 MiB"),
    %% Processes at 91.6 % of the limit are marked, ports are not.
    has(line_of(Text, " processes  "), "91.6% ! past 85%"),
    lacks(line_of(Text, " ports  "), "!"),
    has(Text, "run queue 7  (schedulers 3 4, dirty cpu 0, dirty io 0)"),
    has(Text, "reductions 123456/s"),
    has(Text, "1 [#####     ]"),
    has(Text, "45.0%"),
    has(Text, "d1 ["),
    has(Text, "history, last 5 min"),
    %% ASCII sparklines (no Unicode here): lowest to highest.
    has(line_of(Text, "memory total  "), "_"),
    has(line_of(Text, "memory total  "), "#"),
    has(line_of(Text, "memory total  "), "now 45.0 MiB"),
    has(line_of(Text, "reductions/s"), "no points yet"),
    has(Text, "q").

home_without_recorder(_Config) ->
    Text = render(snap(home, (home_data())#{history => not_running})),
    has(Text, "recorder not running"),
    %% The live values still show.
    has(Text, "total 45.0 MiB"),
    %% A reading of the node while no recorder has run says so too.
    case reckon_metrics_lib:recorder() of
        undefined -> not_running = reckon_top_gather_history();
        _ -> ok
    end.

reckon_top_gather_history() ->
    #{history := H} = reckon_top_gather:gather(home, #{interval => 1000, sort => reductions,
                                                       rows => 5}),
    H.

proc_rows() ->
    P1 = list_to_pid("<0.200.0>"),
    P2 = list_to_pid("<0.201.0>"),
    [#{pid => P1, value => 5000, name => busy_worker, reductions => 5000, memory => 10240,
       message_queue_len => 0, current_function => {worker, loop, 1},
       initial_call => {proc_lib, init_p, 5}},
     #{pid => P2, value => 20, name => undefined, reductions => 20, memory => 2048,
       message_queue_len => 3, current_function => {gen_server, loop, 7},
       initial_call => {erlang, apply, 2}}].

processes_view(_Config) ->
    Text = render(snap(processes, #{count => 1234, rows => proc_rows()})),
    has(Text, "Processes by reductions"),
    has(Text, "1234 processes; top by reductions over the last interval"),
    has(Text, "*REDS/2s"),
    Row1 = line_of(Text, "<0.200.0>"),
    has(Row1, "  1 <0.200.0>"),
    has(Row1, "busy_worker"),
    has(Row1, "5000"),
    has(Row1, "10.0 KiB"),
    has(Row1, "worker:loop/1"),
    %% No name: the initial call.
    has(line_of(Text, "<0.201.0>"), "erlang:apply/2").

%% A process with a known mailbox is first in the message-queue view, as
%% read from the node and as drawn.
mailbox_first(_Config) ->
    Pid = spawn(fun() -> receive stop -> ok end end),
    [Pid ! {hello, N} || N <- lists:seq(1, 5000)],
    Data = reckon_top_gather:gather(processes, #{interval => 1000, sort => message_queue_len,
                                                 rows => 5}),
    #{rows := [#{pid := Pid, message_queue_len := Len} | _]} = Data,
    ?assert(Len >= 5000),
    Text = render((snap(processes, Data))#{sort := message_queue_len}),
    has(Text, "Processes by message queue"),
    has(Text, "*MSGQ"),
    has(line_of(Text, "  1 "), pid_to_list(Pid)),
    has(line_of(Text, "  1 "), "5000"),
    Pid ! stop.

ports_view(_Config) ->
    {ok, L} = gen_tcp:listen(0, [{ip, {127, 0, 0, 1}}]),
    {ok, Port} = inet:port(L),
    {ok, C} = gen_tcp:connect({127, 0, 0, 1}, Port, []),
    Rows = [#{port => C, value => 3072, recv_oct => 1024, send_oct => 2048, type => "tcp_inet",
              peer => {{127, 0, 0, 1}, Port}, owner => self()}],
    Text = render(snap(ports, #{count => 9, types => [{"tcp_inet", 2}, {"efile", 1}],
                                rows => Rows})),
    has(Text, "Ports"),
    has(Text, "9 ports; inet ports top by bytes over the last 2 s"),
    has(Text, "tcp_inet 2"),
    Row = line_of(Text, "  1 #Port"),
    has(Row, "3.0 KiB"),
    has(Row, "1.0 KiB"),
    has(Row, "127.0.0.1:" ++ integer_to_list(Port)),
    has(Row, pid_to_list(self())),
    gen_tcp:close(C),
    gen_tcp:close(L).

ets_view(_Config) ->
    Rows = [#{name => big_cache, memory => 8 * 1048576, size => 100000, type => set,
              protection => public, owner => self(), owner_name => cache_owner},
            #{name => small, memory => 2048, size => 3, type => ordered_set,
              protection => protected, owner => self(), owner_name => undefined}],
    Text = render(snap(ets, #{count => 42, memory => 9 * 1048576, rows => Rows})),
    has(Text, "ETS"),
    has(Text, "42 tables, 9.0 MiB; largest by memory"),
    Row = line_of(Text, "  1 "),
    has(Row, "big_cache"),
    has(Row, "8.0 MiB"),
    has(Row, "100000"),
    has(Row, "cache_owner"),
    has(line_of(Text, "  2 "), "ordered_set").

alloc_view(_Config) ->
    Data = #{used => 10 * 1048576, allocated => 40 * 1048576, usage => 0.25,
             types => [{eheap_alloc, 30 * 1048576}, {binary_alloc, 10 * 1048576}],
             frag => [#{alloc => binary_alloc, instance => 1, mbcs_usage => 0.1,
                        sbcs_usage => 1.0, mbcs_carriers => 10 * 1048576,
                        wasted => 9 * 1048576}],
             cache => [{0, 0.5}, {1, 0.95}]},
    Text = render(snap(alloc, Data)),
    has(Text, "Allocators"),
    has(Text, "allocated 40.0 MiB   used 10.0 MiB   usage 25.0%"),
    has(Text, "eheap 30.0 MiB"),
    Row = line_of(Text, "  1 binary_alloc 1"),
    has(Row, "10.0%"),
    has(Row, "9.0 MiB"),
    has(Text, "mseg cache hit rates:  0 50.0%  1 95.0%").

sluice_tools() ->
    [#{kind => breaker, id => 1, name => payments,
       counters => #{asks => 100, ok => 60, blown => 40, melts => 5, trips => 1},
       gauges => #{state => 1},
       deltas => #{asks => 12, ok => 0, blown => 12, melts => 0, trips => 1}},
     #{kind => breaker, id => 2, name => search, counters => #{asks => 10}, gauges => #{state => 0},
       deltas => #{asks => 10}},
     #{kind => box, id => 3, name => ingest,
       counters => #{posted => 5000, delivered => 4000, dropped_overflow => 1000},
       gauges => #{size => 1000, max => 1000, peak => 1000, bytes => 0},
       deltas => #{posted => 500, delivered => 400, dropped_overflow => 100}},
     #{kind => lock, id => 4, name => undefined, counters => #{checkouts => 0, busy => 0},
       gauges => #{in_use => 0, slots => 4}, deltas => #{checkouts => 0, busy => 0}}].

sluice_view(_Config) ->
    Text = render(snap(sluice, #{tools => sluice_tools()})),
    has(Text, "Sluice"),
    has(Text, "4 tools (box 1, breaker 2, lock 1)"),
    has(Text, "1 breakers blown"),
    has(Text, "dropped/refused over 2 s: 112"),
    Blown = line_of(Text, "payments"),
    has(Blown, "BLOWN"),
    has(Blown, "blown +12"),
    has(Blown, "trips +1"),
    has(line_of(Text, "search"), "closed"),
    lacks(line_of(Text, "search"), "BLOWN"),
    Box = line_of(Text, "ingest"),
    has(Box, "size 1000"),
    has(Text, "drop:overflow +100"),
    has(Text, "posted +500"),
    has(line_of(Text, "#4"), "idle"),
    %% With colours, the blown breaker is red.
    Coloured = render(snap(sluice, #{tools => sluice_tools()}), ?OPTS#{colour := true}),
    has(Coloured, "\e[1;31mBLOWN").

sluice_view_off(_Config) ->
    has(render(snap(sluice, not_running)), "sluice is not running on this node"),
    has(render(snap(sluice, #{tools => []})), "no live tool").

%% The sluice view of real tools (sluice:tools/0): a blown breaker shows
%% as blown, a box's drops over the interval by reason.
sluice_view_real(_Config) ->
    {ok, _} = application:ensure_all_started(sluice),
    Name = {reckon_top_SUITE, erlang:unique_integer([positive])},
    ok = sluice_breaker:install(Name, #{strategy => {standard, 1, 10000}, reset => 60000}),
    {ok, Box} = sluice_box:new(#{max => 2}),
    Self = self(),
    Pid = spawn_link(fun() ->
                             receive go -> ok end,
                             [sluice_box:post(Box, N) || N <- lists:seq(1, 10)],
                             ok = sluice_breaker:melt(Name),
                             ok = sluice_breaker:melt(Name),
                             blown = sluice_breaker:ask(Name, sync),
                             Self ! {self(), done}
                     end),
    %% The readings are a second apart: the work is done in between (once
    %% the reader sleeps between them).
    Reader = spawn_link(fun() ->
                                Self ! {self(), reckon_top_gather:gather(sluice, #{interval => 1000,
                                                                                   sort => reductions,
                                                                                   rows => 5})}
                        end),
    ok = await(fun() ->
                       erlang:process_info(Reader, current_function)
                           =:= {current_function, {timer, sleep, 1}}
               end),
    Pid ! go,
    receive {Pid, done} -> ok end,
    Data = receive {Reader, D} -> D end,
    #{tools := Tools} = Data,
    [Breaker] = [T || #{kind := breaker, name := N} = T <- Tools, N =:= Name],
    ?assertEqual("BLOWN", reckon_top_views:breaker_state(Breaker)),
    Text = render(snap(sluice, Data), #{width => 160, colour => false, unicode => false}),
    Line = line_of(Text, "reckon_top_SUITE"),
    has(Line, "BLOWN"),
    has(Line, "melts +2"),
    has(Text, "drop:overflow +8"),
    has(Text, "posted +10"),
    ok = sluice_breaker:remove(Name),
    _ = sluice_box:close(Box).

process_view(_Config) ->
    Pid = spawn(fun() -> receive stop -> ok end end),
    Text = render(snap({process, Pid}, #{info => reckon:info(Pid)})),
    has(Text, "Process " ++ pid_to_list(Pid)),
    has(Text, "memory_used"),
    has(Text, "message_queue_len     0"),
    Pid ! stop,
    has(render(snap({process, Pid}, #{info => undefined})), "is gone").

%% Every line of every view fits the width (80 and 132 columns), in
%% characters; colours only when asked.
widths_and_colours(_Config) ->
    Views = [snap(home, home_data()), snap(processes, #{count => 3, rows => proc_rows()}),
             snap(ets, #{count => 1, memory => 10, rows => []}),
             snap(sluice, #{tools => sluice_tools()}), snap(home, sampling)],
    [begin
         Lines = reckon_top_render:frame(S, #{width => W, colour => false, unicode => U}),
         [?assert(string:length(unicode:characters_to_list(L)) =< W) || L <- Lines],
         lacks(unicode:characters_to_list(Lines), "\e[")
     end || S <- Views, W <- [80, 132], U <- [true, false]],
    Coloured = unicode:characters_to_list(
                 reckon_top_render:frame(snap(home, home_data()),
                                         #{width => 80, colour => true, unicode => true})),
    has(Coloured, "\e[7m"),
    %% Unicode sparklines when the device takes Unicode.
    has(Coloured, [16#2588]),
    %% A frame taller than the terminal loses blank lines, then the end of
    %% its body; the header and the keys stay.
    Short = reckon_top_render:frame(snap(home, home_data()),
                                    #{width => 80, colour => false, unicode => false, rows => 12}),
    ?assertEqual(11, length(Short)),
    has(unicode:characters_to_list(hd(Short)), "Home"),
    has(unicode:characters_to_list(lists:last(Short)), "q"),
    ?assertNot(lists:member([], [unicode:characters_to_list(L) || L <- Short])),
    %% Narrower than 80 is drawn at 80.
    [?assert(string:length(unicode:characters_to_list(L)) =< 80)
     || L <- reckon_top_render:frame(snap(home, home_data()),
                                     #{width => 40, colour => false, unicode => false})],
    ok.

%%% Reading the node

every_view_read(_Config) ->
    Ctx = #{interval => 1000, sort => reductions, rows => 5},
    [begin
         Data = reckon_top_gather:gather(V, Ctx#{sort => S}),
         Text = render((snap(V, Data))#{sort := S}),
         has(Text, reckon_top_render:title(V))
     end || {V, S} <- [{home, reductions}, {processes, reductions}, {processes, memory},
                       {ports, reductions}, {ets, reductions}, {alloc, reductions},
                       {sluice, reductions}, {{process, self()}, reductions}]],
    ok.

bad_options(_Config) ->
    {error, {bad_option, interval}} = reckon_top:start(#{interval => 999}),
    {error, {bad_option, interval}} = reckon_top:start(#{interval => 2.5}),
    {error, {bad_option, view}} = reckon_top:start(#{view => nope}),
    {error, {bad_option, sort}} = reckon_top:start(#{sort => stack_size}),
    {error, {bad_option, colour}} = reckon_top:start(#{colour => maybe}),
    {error, {bad_option, foo}} = reckon_top:start(#{foo => 1}),
    {error, {bad_option, options}} = reckon_top:start([]).

%%% The loop, through a group leader the test plays

loop_keys_and_quit(_Config) ->
    Flags = fun() -> {erlang:statistics(scheduler_wall_time) =:= undefined,
                      erlang:trace_info(new, flags), erlang:trace_info(new_processes, flags),
                      erlang:system_monitor(), erlang:system_profile()}
            end,
    %% The recorder would hold the scheduler_wall_time flag: not running here.
    _ = reckon_metrics:stop(),
    FlagsBefore = Flags(),
    GL = spawn_link(fun() -> fake_gl(#{out => [], pending => undefined, lines => []}) end),
    Busy = spawn(fun() -> receive stop -> ok end end),
    [Busy ! x || _ <- lists:seq(1, 3000)],
    Self = self(),
    Table = ets:new(before, [public]),
    Before0 = fun() -> [{_, B}] = ets:lookup(Table, before), B end,
    Runner = spawn(fun() ->
                           group_leader(GL, self()),
                           Self ! {self(), started},
                           receive go -> ok end,
                           Result = reckon_top:start(#{interval => 1000, colour => false}),
                           Alive = [P || P <- erlang:processes() -- Before0(),
                                         is_process_alive(P)],
                           Self ! {self(), Result, Alive},
                           %% Longer than the interval: a timer left
                           %% running would have fired by now.
                           timer:sleep(3000),
                           {messages, Msgs} = erlang:process_info(self(), messages),
                           Self ! {self(), mailbox, Msgs}
                   end),
    receive {Runner, started} -> ok end,
    Before = erlang:processes() -- [Runner],
    true = ets:insert(Table, {before, [Runner | Before]}),
    Runner ! go,
    await_output(GL, "reckon_top  " ++ atom_to_list(node()) ++ "  Home"),
    await_output(GL, "scheduler use over the interval"),
    send_line(GL, "l"),
    await_output(GL, "Processes by message queue"),
    await_output(GL, "  1 " ++ pid_to_list(Busy)),
    send_line(GL, "1"),
    await_output(GL, "Process " ++ pid_to_list(Busy)),
    await_output(GL, "message_queue_len     3000"),
    [begin send_line(GL, K), await_output(GL, Title) end
     || {K, Title} <- [{"r", "Processes by reductions"}, {"n", "Ports"}, {"e", "ETS"},
                       {"a", "Allocators"}, {"s", "Sluice"}, {"h", "Home"}]],
    send_line(GL, "+"),
    await_output(GL, "every 2 s"),
    send_line(GL, "zz"),
    await_output(GL, "unknown key: \"zz\""),
    %% Quit from a view that reads at once (its refresh is a timer).
    send_line(GL, "e"),
    await_output(GL, "ETS"),
    send_line(GL, "q"),
    %% When start/1 returns, nothing it started is alive.
    receive {Runner, Result, Alive} -> ok = Result, ?assertEqual([], Alive) end,
    await_output(GL, "reckon_top: stopped"),
    receive {Runner, mailbox, Msgs} -> ?assertEqual([], Msgs) end,
    %% Nothing left: no process it started (the runner has ended too), no
    %% flag changed, and the runner's mailbox was empty at the end.
    ok = await(fun() -> erlang:processes() -- Before =:= [] end),
    ?assertEqual(FlagsBefore, Flags()),
    Busy ! stop,
    unlink(GL),
    exit(GL, kill).

%% Types a line; what was written before it is forgotten.
%% When output fails (the remote shell went away), start/1 returns and
%% leaves nothing running, its pending read of a key included.
output_gone_stops(_Config) ->
    GL = spawn_link(fun() -> fake_gl(#{out => [], pending => undefined, lines => []}) end),
    Self = self(),
    Runner = spawn(fun() ->
                           group_leader(GL, self()),
                           receive go -> ok end,
                           Self ! {self(), reckon_top:start(#{interval => 1000, view => ets})}
                   end),
    Before = erlang:processes() -- [Runner],
    Runner ! go,
    await_output(GL, "ETS"),
    GL ! fail_output,
    MRef = erlang:monitor(process, Runner),
    receive
        {Runner, Result} -> ok = Result;
        {'DOWN', MRef, process, Runner, Why} -> ct:fail({start_raised, Why})
    end,
    ok = await(fun() -> erlang:processes() -- Before =:= [] end),
    unlink(GL),
    exit(GL, kill).

send_line(GL, Line) ->
    GL ! clear,
    GL ! {line, Line ++ "\n"}.

%% Waits (up to a minute) until the frames written so far hold `Part'.
await_output(GL, Part) ->
    case await(fun() ->
                       GL ! {output, self()},
                       receive {output, Out} -> string:find(Out, Part) =/= nomatch end
               end) of
        ok -> ok;
        timeout ->
            GL ! {output, self()},
            receive {output, Out} -> ct:fail({not_shown, Part, Out}) end
    end.

await(Fun) -> await(Fun, 600).

await(_Fun, 0) -> timeout;
await(Fun, N) ->
    case Fun() of
        true -> ok;
        false -> timer:sleep(100), await(Fun, N - 1)
    end.

%% A group leader: keeps what is written (the last 200 000 characters),
%% answers a line the test sends to a pending get_line, says the terminal is
%% 120 x 30 and takes Unicode.
fake_gl(#{out := Out, pending := Pending} = S) ->
    receive
        {io_request, From, ReplyAs, Req} ->
            case request(Req, S) of
                {reply, Reply, S1} ->
                    From ! {io_reply, ReplyAs, Reply},
                    fake_gl(S1);
                {wait, S1} ->
                    fake_gl(S1#{pending := {From, ReplyAs}})
            end;
        {line, Line} when Pending =/= undefined ->
            {From, ReplyAs} = Pending,
            From ! {io_reply, ReplyAs, Line},
            fake_gl(S#{pending := undefined});
        {line, Line} ->
            %% No read pending yet: answer the next one.
            fake_gl(S#{lines := maps:get(lines, S) ++ [Line]});
        clear ->
            fake_gl(S#{out := []});
        fail_output ->
            fake_gl(S#{fail => true});
        {output, From} ->
            From ! {output, lists:flatten(lists:reverse(Out))},
            fake_gl(S)
    end.

request({put_chars, _Enc, _Chars}, #{fail := true} = S) ->
    {reply, {error, terminated}, S};
request({put_chars, Enc, Chars}, #{out := Out} = S) ->
    Text = unicode:characters_to_list(Chars, Enc),
    {reply, ok, S#{out := trim_out([Text | Out])}};
request({put_chars, Enc, M, F, A}, S) ->
    request({put_chars, Enc, apply(M, F, A)}, S);
request({get_line, _Enc, _Prompt}, #{lines := [Line | Rest]} = S) ->
    {reply, Line, S#{lines := Rest}};
request({get_line, _Enc, _Prompt}, S) ->
    {wait, S};
request({get_geometry, columns}, S) -> {reply, {ok, 120}, S};
request({get_geometry, rows}, S) -> {reply, {ok, 30}, S};
request(getopts, S) -> {reply, [{encoding, unicode}, {binary, false}], S};
request({requests, Reqs}, S) ->
    lists:foldl(fun(R, {reply, _, S1}) -> request(R, S1);
                   (_R, Other) -> Other
                end, {reply, ok, S}, Reqs);
request(_Other, S) ->
    {reply, {error, request}, S}.

trim_out(Out) when length(Out) > 400 -> lists:sublist(Out, 200);
trim_out(Out) -> Out.

%%% As a person would: a remote shell in tmux

tmux_remote_shell(Config) ->
    case os:find_executable("tmux") of
        false -> ct:fail("tmux is not installed (scripts/ensure-deps.sh installs it)");
        _ -> ok
    end,
    Config1 = reckon_ct:distribute("top_ct", Config),
    Id = integer_to_list(erlang:unique_integer([positive])),
    %% This node's cookie: the three nodes connect to each other (global).
    Cookie = atom_to_list(erlang:get_cookie()),
    {ok, Host} = inet:gethostname(),
    TargetName = "top_target_" ++ Id,
    Target = list_to_atom(TargetName ++ "@" ++ Host),
    Session = "reckon_top_" ++ Id,
    try
        tmux_run(Target, TargetName, Cookie, Session, Host)
    after
        os:cmd("tmux kill-session -t " ++ Session ++ " 2>/dev/null"),
        catch erpc:call(Target, erlang, halt, [], 5000),
        reckon_ct:undistribute(Config1)
    end.

tmux_run(Target, TargetName, Cookie, Session, Host) ->
    OtpLib = code:lib_dir(),
    Paths = [Dir || Dir <- code:get_path(), not lists:prefix(OtpLib, Dir), Dir =/= "."],
    Start = "erl -sname " ++ TargetName ++ " -setcookie " ++ Cookie ++ " -noinput -detached"
        ++ lists:append([" -pa " ++ P || P <- Paths])
        ++ " -eval 'application:ensure_all_started(reckon)'",
    ct:log("starting the node: ~s", [Start]),
    _ = os:cmd(Start),
    ok = await(fun() -> net_adm:ping(Target) =:= pong andalso
                            is_pid(erpc:call(Target, erlang, whereis, [reckon_sup])) end),
    Shell = "erl -sname top_shell_" ++ TargetName ++ " -setcookie " ++ Cookie
        ++ " -remsh " ++ atom_to_list(Target),
    tmux(["new-session", "-d", "-s", Session, "-x", "100", "-y", "24", Shell]),
    Prompt = "(" ++ atom_to_list(Target) ++ ")1>",
    screen_shows(Session, Prompt),
    %% The remote shell's processes are on the node: count after it is up.
    Count = erpc:call(Target, erlang, system_info, [process_count]),
    Procs = erpc:call(Target, erlang, processes, []),
    ct:log("~s: ~b processes before reckon_top", [Target, Count]),
    keys(Session, "reckon_top:start()."),
    screen_shows(Session, "reckon_top  " ++ atom_to_list(Target) ++ "  Home"),
    screen_shows(Session, "scheduler use over the interval"),
    [begin keys(Session, K), screen_shows(Session, Title) end
     || {K, Title} <- [{"p", "Processes by reductions"}, {"m", "Processes by memory"},
                       {"n", "Ports"}, {"e", "ETS"}, {"a", "Allocators"}, {"s", "Sluice"},
                       {"h", "Home"}]],
    keys(Session, "q"),
    screen_shows(Session, "reckon_top: stopped"),
    screen_shows(Session, "(" ++ atom_to_list(Target) ++ ")2>"),
    %% Back where it was (or below: a remote shell's set-up may leave a
    %% short-lived process in the first count; the shell's reader of the
    %% next command replaces the one of the first).
    case await(fun() -> erpc:call(Target, erlang, system_info, [process_count]) =< Count end) of
        ok ->
            ok;
        timeout ->
            Extra = [{P, erpc:call(Target, erlang, process_info,
                                   [P, [current_function, initial_call, dictionary, links]])}
                     || P <- erpc:call(Target, erlang, processes, []) -- Procs],
            ct:fail({left_running, Extra})
    end,
    %% And no process there runs any of reckon_top's code or its scans.
    Ours = [{P, St} || P <- erpc:call(Target, erlang, processes, []),
                       {current_stacktrace, St} <- [erpc:call(Target, erlang, process_info,
                                                              [P, current_stacktrace])],
                       lists:any(fun({M, _, _, _}) -> is_ours(M) end, St)],
    ?assertEqual([], Ours),
    _ = Host,
    ok.

is_ours(M) ->
    lists:member(M, [reckon_scan, reckon_node, reckon_metrics_tools])
        orelse lists:prefix("reckon_top", atom_to_list(M)).

tmux(Args) ->
    Cmd = string:join(["tmux" | [quote(A) || A <- Args]], " "),
    Out = os:cmd(Cmd),
    ct:log("~s~n~s", [Cmd, Out]),
    Out.

quote(A) -> "'" ++ A ++ "'".

keys(Session, Text) ->
    _ = tmux(["send-keys", "-t", Session, "-l", Text]),
    _ = tmux(["send-keys", "-t", Session, "Enter"]),
    ok.

screen(Session) ->
    os:cmd("tmux capture-pane -p -t " ++ quote(Session)).

screen_shows(Session, Part) ->
    case await(fun() -> string:find(screen(Session), Part) =/= nomatch end) of
        ok -> ct:log("screen:~n~ts", [screen(Session)]);
        timeout -> ct:fail({not_on_screen, Part, screen(Session)})
    end.
