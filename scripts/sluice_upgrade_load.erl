%% @doc Load and checks of `make upgrade-test' (scripts/upgrade-test.sh),
%% loaded into the release's node over distribution (`code:load_binary/3'
%% by {@link main/1}); never part of an application.
%%
%% In the node, one controller process (registered as this module) makes
%% the tools and starts the load: producers posting `{Producer, Seq}' to two
%% boxes and a buffer of buckets while each buffer's owner takes, a breaker
%% melting and healing, a lock checked out and in, a rate limiter checking,
%% a valve asking, a counter of the flight recorder counted, and a throttled
%% `reckon_trace' of a function the workers call. Each worker counts what it
%% did and what it was told. Other tools are "frozen": filled once and not
%% touched again (an open and a closed breaker, a lock with a holder, a
%% limiter with exhausted keys, a valve, a box holding 50 messages).
%%
%% `before' pauses every worker (each stops at the end of an operation and
%% hands over its counts), reads the frozen tools, then resumes; `after'
%% pauses again and checks exactly: each buffer's posted = delivered +
%% dropped + still buffered, the counts of the tool equal to the workers'
%% ones, no message twice, each producer's order kept; the frozen tools
%% equal to what `before' read; the same worker, owner, trace and server
%% processes, alive; the release versions and the marked modules as
%% expected. The workers call sluice and reckon fully qualified and run in
%% this module, which no upgrade replaces.
-module(sluice_upgrade_load).

-export([main/1]).
%% In the node.
-export([start/0, before/0, 'after'/3, finish/0, controller/1, worker/2, collector/1]).
%% sluice_lock callback.
-export([init/1, checkout/2, checkin/2, dead/1, handle_info/2, terminate/2]).
%% Traced by the throttled trace.
-export([traced/1]).

-define(BATCH, 20).
-define(CALL_TIMEOUT, 60000).

%%% Command line (erl -s ... -extra): main([Command, Node | Args])

-spec main([string()]) -> no_return().
main([Command, NodeStr | Args]) ->
    Node = list_to_atom(NodeStr),
    Result = try run(Command, Node, Args)
             catch C:W:St -> {error, {C, W, St}}
             end,
    case Result of
        ok -> halt(0);
        {error, Why} -> io:format("upgrade-test: ~s failed: ~p~n", [Command, Why]), halt(1)
    end.

run("load", Node, []) ->
    true = net_kernel:connect_node(Node),
    {Mod, Bin, File} = code:get_object_code(?MODULE),
    {module, Mod} = rpc:call(Node, code, load_binary, [Mod, File, Bin]),
    call(Node, start, []);
run("before", Node, []) ->
    call(Node, before, []);
run("after", Node, [Step, Releases, Kept]) ->
    case call(Node, 'after', [Step, parse(Releases), parse(Kept)]) of
        {error, _} = Error -> Error;
        {Rows, []} -> table(Step, Rows), ok;
        {Rows, Bad} -> table(Step, Rows), {error, Bad}
    end;
run("finish", Node, []) ->
    call(Node, finish, []).

call(Node, F, A) ->
    case rpc:call(Node, ?MODULE, F, A, ?CALL_TIMEOUT) of
        {badrpc, _} = Bad -> {error, Bad};
        Other -> Other
    end.

parse(S) ->
    {ok, Tokens, _} = erl_scan:string(S ++ "."),
    {ok, Term} = erl_parse:parse_term(Tokens),
    Term.

table(Step, Rows) ->
    io:format("~n  after ~s~n", [Step]),
    [io:format("    ~-44s ~-5s ~s~n", [What, case Ok of true -> "ok"; false -> "FAIL" end, Detail])
     || {What, Ok, Detail} <- Rows],
    ok.

%%% In the node: the controller

-spec start() -> ok.
start() ->
    Self = self(),
    Pid = spawn(?MODULE, controller, [{init, Self}]),
    receive {Pid, started} -> ok after ?CALL_TIMEOUT -> {error, no_start} end.

-spec before() -> ok.
before() -> ask(before).

%% `Kept': the NIF stubs the releases' appups leave out (see
%% UPGRADE_TEST_KEEP_NIFS in scripts/upgrade-test.sh), loaded from A's lib.
-spec 'after'(string(), [{string(), atom()}], [module()]) -> {list(), list()}.
'after'(Step, Releases, Kept) -> ask({'after', Step, Releases, Kept}).

-spec finish() -> ok | {error, term()}.
finish() -> ask(finish).

ask(Req) ->
    Ref = monitor(process, ?MODULE),
    ?MODULE ! {Req, self(), Ref},
    receive
        {Ref, Answer} -> demonitor(Ref, [flush]), Answer;
        {'DOWN', Ref, _, _, Why} -> {error, {controller_down, Why}}
    after ?CALL_TIMEOUT -> {error, timeout}
    end.

controller({init, From}) ->
    register(?MODULE, self()),
    S = setup(),
    From ! {self(), started},
    ?MODULE:controller(S);
controller(S) ->
    receive
        {before, From, Ref} ->
            Tallies = pause(S),
            Frozen = frozen(S),
            resume(S),
            From ! {Ref, ok},
            ?MODULE:controller(S#{frozen => Frozen, tallies => Tallies,
                                  lines => lines(S), series => reckon_metrics:series()});
        {{'after', Step, Releases, Kept}, From, Ref} ->
            Purged = purge(),
            Tallies = pause(S),
            Rows = [Purged | checks(Step, Releases, Kept, Tallies, S)],
            resume(S),
            From ! {Ref, {Rows, [R || {_, false, _} = R <- Rows]}},
            ?MODULE:controller(S);
        {finish, From, Ref} ->
            From ! {Ref, teardown(S)}
    end.

setup() ->
    {ok, _} = application:ensure_all_started(reckon),
    Buffers = [box(queue_box, fun() -> sluice_box:new(#{max => 100, type => queue}) end),
               box(stack_box, fun() -> sluice_box:new(#{max => 100, type => keep_old}) end),
               box(buckets, fun() -> sluice_buckets:new(#{max => 100, width => 20,
                                                          max_age => 5000,
                                                          order => oldest_first,
                                                          within => fifo}) end)],
    ok = sluice_breaker:install(upgrade_live, #{strategy => {standard, 3, 1000}, reset => 100}),
    {ok, Lock} = sluice_lock:new(#{resources => 1, callback => {?MODULE, live}}),
    {ok, Limiter} = sluice_limit:new_rate(#{limit => 200, period => 1000, burst => 5}),
    {ok, Valve} = sluice_drop:new(upgrade_live, #{rate => 0.5}),
    {ok, Counter} = reckon_metrics:counter(upgrade_test_ops),
    ok = reckon_metrics:start(#{}),
    Workers = [spawn_worker(breaker, upgrade_live), spawn_worker(lock, Lock),
               spawn_worker(lock, Lock), spawn_worker(limiter, Limiter),
               spawn_worker(valve, Valve), spawn_worker(counter, Counter)],
    Producers = [{Name, spawn_worker(producer, {Name, Box, N})}
                 || {Name, Box, _} <- Buffers, N <- [1, 2, 3]],
    Collector = spawn(?MODULE, collector, [0]),
    Traced = reckon_trace:calls({?MODULE, traced, '_'}, {5, 100},
                                [{limit, throttle}, {io_server, Collector}]),
    1 = Traced,
    #{buffers => Buffers, workers => Workers, producers => Producers, lock => Lock,
      limiter => Limiter, valve => Valve, counter => Counter, collector => Collector,
      trace_owner => whereis(reckon_trace_owner), servers => servers(),
      frozen_tools => frozen_setup()}.

%% A buffer and its owner (which makes it, so that it owns it).
box(Name, New) ->
    Self = self(),
    Owner = spawn(fun() ->
                          {ok, Box} = New(),
                          Self ! {self(), Box},
                          receive go -> ok end,
                          ?MODULE:worker(owner, {Box, #{}, 0, []})
                  end),
    receive {Owner, Box} -> Owner ! go, {Name, Box, Owner} end.

frozen_setup() ->
    ok = sluice_breaker:install(upgrade_open, #{strategy => {standard, 1, 60000},
                                                reset => 3600000}),
    ok = sluice_breaker:install(upgrade_closed, #{strategy => {standard, 5, 3600000},
                                                  reset => 3600000}),
    [ok = sluice_breaker:melt(upgrade_open) || _ <- [1, 2, 3]],
    blown = sluice_breaker:ask(upgrade_open, sync),
    ok = sluice_breaker:ask(upgrade_closed, sync),
    ok = sluice_breaker:melt(upgrade_closed),
    {ok, Lock} = sluice_lock:new(#{resources => 2, callback => {?MODULE, frozen}}),
    Self = self(),
    Holder = spawn(fun() ->
                           {ok, Ref, Res} = sluice_lock:checkout(Lock),
                           Self ! {self(), Ref, Res},
                           receive {checkin, From} -> From ! {self(), sluice_lock:checkin(Lock, Ref, Res)} end
                   end),
    Loan = receive {Holder, R, Res} -> {R, Res} end,
    {ok, Limiter} = sluice_limit:new_rate(#{limit => 5, period => 1000, burst => 2,
                                            clock => manual}),
    Keys = [{key, I} || I <- lists:seq(1, 5)],
    _ = [sluice_limit:check(Limiter, K) || K <- Keys, _ <- [1, 2, 3]],
    {ok, Valve} = sluice_drop:new(upgrade_frozen, #{rate => 0.3}),
    _ = [sluice_drop:ask(Valve) || _ <- lists:seq(1, 100)],
    {ok, Box} = sluice_box:new(#{max => 100, type => queue}),
    [ok = sluice_box:post(Box, {frozen, I}) || I <- lists:seq(1, 50)],
    #{lock => Lock, holder => Holder, loan => Loan, limiter => Limiter, keys => Keys,
      valve => Valve, box => Box}.

%% What the frozen tools say (each read leaves them as they were, but for
%% the refused checks of exhausted keys, which are read after the info).
frozen(#{frozen_tools := #{lock := Lock, limiter := Limiter, keys := Keys, valve := Valve,
                           box := Box}}) ->
    LimitInfo = sluice_limit:info(Limiter),
    #{breaker_open => sluice_breaker:info(upgrade_open),
      breaker_closed => sluice_breaker:info(upgrade_closed),
      lock => sluice_lock:info(Lock),
      limiter => LimitInfo,
      decisions => [sluice_limit:check(Limiter, K) || K <- Keys],
      limiter_after_decisions => sluice_limit:info(Limiter),
      valve => sluice_drop:info(Valve),
      box => maps:without([sojourn], sluice_box:info(Box))}.

%% Under load, a while after the step: no process runs the old code of any
%% module of sluice or reckon any more (each loop went on in the new code),
%% so a soft purge of each succeeds, unloading the old NIF libraries.
purge() ->
    Mods = [M || App <- [sluice, reckon], {ok, Ms} <- [application:get_key(App, modules)],
                 M <- Ms],
    Old = [M || M <- Mods, erlang:check_old_code(M)],
    Kept = [M || M <- Old, not code:soft_purge(M)],
    {"old code purged softly, under load", Kept =:= [],
     io_lib:format("had old code: ~0p, still used: ~0p", [Old, Kept])}.

%% The NIF stubs loaded are those of the release's version, from its lib dir.
nif_row(Releases, Kept) ->
    [Vsn] = [V || {V, permanent} <- Releases],
    First = lists:min([V || {V, _} <- Releases]),
    Paths = [{M, code:which(M)} || M <- [sluice_nif, reckon_nif, reckon_tracer]],
    Ok = lists:all(fun({M, P}) ->
                           App = case M of sluice_nif -> "sluice"; _ -> "reckon" end,
                           V = case lists:member(M, Kept) of true -> First; false -> Vsn end,
                           string:find(P, "/lib/" ++ App ++ "-" ++ V ++ "/ebin/") =/= nomatch
                   end, Paths),
    {"NIF stubs of the release loaded", Ok,
     io_lib:format("lib/*-~s (kept: ~0p), sluice_nif:lib_info() ~0p",
                   [Vsn, Kept, sluice_nif:lib_info()])}.

servers() ->
    lists:sort([{N, whereis(N)} || App <- [sluice, reckon],
                                   {ok, Names} <- [application:get_key(App, registered)],
                                   N <- Names, whereis(N) =/= undefined]).

pause(#{workers := Workers, producers := Producers, buffers := Buffers}) ->
    %% Producers first, then the owners drain nothing more: each stops at
    %% the end of an operation and hands over its counts.
    Pids = [P || {_, P} <- Producers] ++ Workers ++ [O || {_, _, O} <- Buffers],
    [P ! {pause, self()} || P <- Pids],
    maps:from_list([receive {paused, P, Tally} -> {P, Tally}
                    after ?CALL_TIMEOUT -> {P, no_answer}
                    end || P <- Pids]).

resume(#{workers := Workers, producers := Producers, buffers := Buffers}) ->
    [P ! resume || P <- [P || {_, P} <- Producers] ++ Workers ++ [O || {_, _, O} <- Buffers]],
    ok.

lines(#{collector := C}) ->
    C ! {lines, self()},
    receive {C, N} -> N after 5000 -> timeout end.

%%% The checks after a step

checks(Step, Releases, Kept, Tallies, S) ->
    #{buffers := Buffers, producers := Producers, workers := Workers} = S,
    BufferRows = [buffer_row(Name, Box, Owner, [P || {N, P} <- Producers, N =:= Name], Tallies)
                  || {Name, Box, Owner} <- Buffers],
    [Breaker, Lock1, Lock2, Limiter, Valve, Counter] = Workers,
    T = fun(P) -> maps:get(P, Tallies) end,
    Frozen = frozen(S),
    Before = maps:get(frozen, S),
    Lines = lines(S),
    AllPids = [P || {_, P} <- Producers] ++ Workers ++ [O || {_, _, O} <- Buffers]
        ++ [maps:get(collector, S), maps:get(trace_owner, S), maps:get(holder, maps:get(frozen_tools, S))],
    Mark = case Step of "downgrade" ++ _ -> undefined; _ -> [b] end,
    BufferRows ++
        [breaker_row(T(Breaker)),
         lock_row(maps:get(lock, S), [T(Lock1), T(Lock2)]),
         limiter_row(maps:get(limiter, S), T(Limiter)),
         valve_row(maps:get(valve, S), T(Valve)),
         counter_row(maps:get(counter, S), T(Counter)),
         frozen_row(Before, Frozen),
         {"load, owner and trace pids alive", lists:all(fun erlang:is_process_alive/1, AllPids),
          io_lib:format("~b processes", [length(AllPids)])},
         {"server pids unchanged", servers() =:= maps:get(servers, S),
          io_lib:format("~b servers", [length(servers())])},
         {"trace owner unchanged", whereis(reckon_trace_owner) =:= maps:get(trace_owner, S), ""},
         {"trace still writing", is_integer(Lines) andalso Lines > maps:get(lines, S),
          io_lib:format("~p lines (~p before)", [Lines, maps:get(lines, S)])},
         {"recorder series kept", maps:get(series, S) -- reckon_metrics:series() =:= [],
          io_lib:format("~b series", [length(reckon_metrics:series())])},
         which_releases_row(Releases),
         nif_row(Releases, Kept),
         {"marked modules (sluice_box, reckon_metrics)",
          mark(sluice_box) =:= Mark andalso mark(reckon_metrics) =:= Mark,
          io_lib:format("~p ~p", [mark(sluice_box), mark(reckon_metrics)])}].

%% The reads of the frozen limiter's exhausted keys each add one refusal
%% per key: the limiter is compared with what it said after the decisions
%% read before the step.
frozen_row(Before, After) ->
    Expect = Before#{limiter := maps:get(limiter_after_decisions, Before),
                     limiter_after_decisions := maps:get(limiter_after_decisions, After)},
    {"frozen tools as before the step", After =:= Expect, diff(Expect, After)}.

diff(Before, After) ->
    case [K || K <- maps:keys(Before), maps:get(K, Before) =/= maps:get(K, After, none)] of
        [] -> io_lib:format("~b tools", [map_size(Before)]);
        Keys -> io_lib:format("differ: ~p", [[{K, maps:get(K, Before), maps:get(K, After)} || K <- Keys]])
    end.

mark(Mod) ->
    proplists:get_value(upgrade_mark, Mod:module_info(attributes)).

buffer_row(Name, Box, Owner, Producers, Tallies) ->
    Info = sluice_box:info(Box),
    #{posted := Posted, delivered := Delivered, dropped := Dropped, size := Size} = Info,
    {_, _, Received, Errors} = maps:get(Owner, Tallies),
    Sent = lists:sum([maps:get(P, Tallies) || P <- Producers]),
    Drops = lists:sum(maps:values(Dropped)),
    Ok = Posted =:= Sent andalso Delivered =:= Received andalso Errors =:= []
        andalso Posted =:= Delivered + Drops + Size,
    {io_lib:format("~s: posted = taken + dropped + held", [Name]), Ok,
     io_lib:format("~b = ~b + ~b + ~b (producers ~b, owner took ~b, order errors ~p)",
                   [Posted, Delivered, Drops, Size, Sent, Received, Errors])}.

breaker_row({Asks, Oks, Blown, Melts}) ->
    #{asks := A, ok := O, blown := B, melts := M} = sluice_breaker:info(upgrade_live),
    {"breaker: asks, ok, blown, melts", {A, O, B, M} =:= {Asks, Oks, Blown, Melts},
     io_lib:format("~p (workers ~p)", [{A, O, B, M}, {Asks, Oks, Blown, Melts}])}.

lock_row(Lock, Tallies) ->
    Outs = lists:sum([O || {O, _} <- Tallies]),
    Busy = lists:sum([B || {_, B} <- Tallies]),
    #{checkouts := C, busy := B, in_use := U} = sluice_lock:info(Lock),
    {"lock: checkouts, busy, in use", {C, B, U} =:= {Outs, Busy, 0},
     io_lib:format("~p (workers ~p)", [{C, B, U}, {Outs, Busy, 0}])}.

limiter_row(L, {Allowed, Refused}) ->
    #{allowed := A, refused := R} = sluice_limit:info(L),
    {"limiter: allowed, refused", {A, R} =:= {Allowed, Refused},
     io_lib:format("~p (worker ~p)", [{A, R}, {Allowed, Refused}])}.

valve_row(V, {Kept, Dropped}) ->
    #{kept := K, dropped := D} = sluice_drop:info(V),
    {"valve: kept, dropped", {K, D} =:= {Kept, Dropped},
     io_lib:format("~p (worker ~p)", [{K, D}, {Kept, Dropped}])}.

counter_row(C, N) ->
    V = reckon_metrics:value(C),
    {"recorder counter", V =:= N, io_lib:format("~p (worker ~p)", [V, N])}.

which_releases_row(Expected) ->
    Got = lists:sort([{V, St} || {_, V, _, St} <- release_handler:which_releases()]),
    {"release_handler:which_releases()", Got =:= lists:sort(Expected), io_lib:format("~p", [Got])}.

teardown(#{frozen_tools := #{holder := Holder, box := Box}} = S) ->
    _ = pause(S),
    Holder ! {checkin, self()},
    Checkin = receive {Holder, R} -> R after 5000 -> timeout end,
    {Msgs, 50, _} = sluice_box:take(Box, 100),
    ok = reckon_trace:clear(),
    case {Checkin, Msgs =:= [{frozen, I} || I <- lists:seq(1, 50)]} of
        {ok, true} -> ok;
        Other -> {error, {frozen_lock_or_box, Other}}
    end.

%%% Workers: one operation at a time; `{pause, From}' answers the counts
%%% and waits for `resume'.

spawn_worker(Kind, Arg) ->
    spawn(?MODULE, worker, [Kind, init(Kind, Arg)]).

init(producer, {_Name, Box, N}) -> {Box, N, 0};
init(breaker, Name) -> {Name, {0, 0, 0, 0}};
init(lock, Lock) -> {Lock, {0, 0}};
init(limiter, L) -> {L, {0, 0}};
init(valve, V) -> {V, {0, 0}};
init(counter, C) -> {C, 0}.

worker(Kind, State) ->
    receive
        {pause, From} ->
            From ! {paused, self(), tally(Kind, State)},
            receive resume -> ok end,
            ?MODULE:worker(Kind, State)
    after 1 ->
            ?MODULE:traced(Kind),
            ?MODULE:worker(Kind, batch(Kind, State, ?BATCH))
    end.

batch(_Kind, State, 0) -> State;
batch(Kind, State, N) -> batch(Kind, op(Kind, State), N - 1).

tally(producer, {_, _, Sent}) -> Sent;
tally(owner, Owner) -> Owner;
tally(_, {_, T}) -> T.

op(producer, {Box, N, Seq}) ->
    _ = sluice_box:post(Box, {N, Seq + 1}),
    {Box, N, Seq + 1};
op(owner, {Box, Last, Received, Errors}) ->
    {Msgs, _, _} = sluice_box:take(Box, 10),
    {Last1, Errors1} = lists:foldl(fun seen/2, {Last, Errors}, Msgs),
    {Box, Last1, Received + length(Msgs), Errors1};
op(breaker, {Name, {Asks, Oks, Blown, Melts}}) ->
    case sluice_breaker:ask(Name, sync) of
        ok ->
            case rand:uniform(4) of
                1 -> ok = sluice_breaker:melt(Name), {Name, {Asks + 1, Oks + 1, Blown, Melts + 1}};
                _ -> {Name, {Asks + 1, Oks + 1, Blown, Melts}}
            end;
        blown ->
            {Name, {Asks + 1, Oks, Blown + 1, Melts}}
    end;
op(lock, {Lock, {Outs, Busy}}) ->
    case sluice_lock:checkout(Lock) of
        {ok, Ref, Res} -> ok = sluice_lock:checkin(Lock, Ref, Res), {Lock, {Outs + 1, Busy}};
        {error, busy} -> {Lock, {Outs, Busy + 1}}
    end;
op(limiter, {L, {Allowed, Refused}}) ->
    case sluice_limit:check(L, {user, rand:uniform(10)}) of
        ok -> {L, {Allowed + 1, Refused}};
        {error, _} -> {L, {Allowed, Refused + 1}}
    end;
op(valve, {V, {Kept, Dropped}}) ->
    case sluice_drop:ask(V) of
        ok -> {V, {Kept + 1, Dropped}};
        drop -> {V, {Kept, Dropped + 1}}
    end;
op(counter, {C, N}) ->
    ok = reckon_metrics:inc(C),
    {C, N + 1}.

%% An owner's check of one message: each producer's numbers rise.
seen({frozen, _} = M, {Last, Errors}) ->
    {Last, [{unexpected, M} | Errors]};
seen({N, Seq}, {Last, Errors}) ->
    case maps:get(N, Last, 0) of
        Prev when Seq > Prev -> {Last#{N => Seq}, Errors};
        Prev -> {Last, lists:sublist([{N, Prev, Seq} | Errors], 10)}
    end.

-spec traced(atom()) -> ok.
traced(_Kind) -> ok.

%% The trace's io server: counts the lines written.
collector(N) ->
    receive
        {io_request, From, ReplyAs, _Req} ->
            From ! {io_reply, ReplyAs, ok},
            ?MODULE:collector(N + 1);
        {lines, From} ->
            From ! {self(), N},
            ?MODULE:collector(N)
    end.

%%% sluice_lock callback (resources of both locks)

init(Kind) -> {ok, Kind}.
checkout(none, Kind) -> {ok, {resource, Kind}, Kind}.
checkin(_Res, Kind) -> {ok, Kind}.
dead(Kind) -> {ok, Kind}.
handle_info(_Msg, Kind) -> {ok, Kind}.
terminate(_Reason, _Kind) -> ok.
