%% @doc The demo's service under overload and an outage, run once
%% `unprotected' and once `protected' by sluice, measured every second.
%%
%% == The service ==
%% `clients' producers (client ids 1..N; client 1 sends `hot_share' of the
%% traffic) offer `rate' requests per second in all, `burst_factor' times
%% as many for `burst_ms' every `burst_every' ms, each request a tuple with
%% a `payload'-byte binary. They send them to a front process, which hands
%% each to one of `workers' workers in turn. A worker borrows one of the
%% `connections' connections of a fake database ({@link sluice_demo_db}),
%% whose queries take `service_ms'; from `outage' (ms since the start, a
%% `{From, To}' pair) the database hangs for `hang_ms' on every query and
%% then fails, then recovers. The offered load is above what the pool can
%% serve, so something has to give.
%%
%% == unprotected ==
%% Requests go by message: producers to the front, the front to the
%% workers' mailboxes; a worker waits as long as it takes for a connection
%% from a pool process that queues its callers. Nothing is refused: the
%% mailboxes, the memory and the latency grow; failed queries count as
%% `db_error'.
%%
%% == protected ==
%% The same service with sluice's tools, each as its documentation
%% recommends, with its defaults wherever it has them:
%% <ul>
%% <li>a `sluice_limit' rate limit per client id (`client_limit' requests
%%     per second, the default burst), asked by the producer;</li>
%% <li>a `sluice_drop' valve regulated by load, asked next: its signal is
%%     how many requests the boxes hold, its keep rate falls from 1.0 when
%%     they are half full to 0.0 when they are full;</li>
%% <li>a `sluice_box' (`stack', `box_max' requests, `max_age' ms: a request
%%     older than its caller waits for is dropped) per worker between the
%%     front and the workers, owned by the worker: the front posts, the
%%     worker takes one request at a time, the freshest first;</li>
%% <li>a `sluice_lock' lending the `connections' connections: a worker
%%     waits at most `checkout_ms' for one, else the request is refused;</li>
%% <li>a `sluice_breaker' (default options) around the database calls
%%     (`run/3' on the borrowed connection): a failed query melts it, and
%%     while it is open requests are refused at once.</li>
%% </ul>
%%
%% == Accounting ==
%% Every offered request ends as `served' or shed with a reason:
%% `rate_limited', `valve', `box_<reason>' for each drop reason of the
%% boxes' own counters (`box_overflow': a full stack drops its oldest;
%% `box_expired': older than `max_age'),
%% `breaker_open', `pool_busy', `db_error', and `unfinished' for what the
%% mailboxes and boxes still hold when the run ends (the requests in a
%% worker's hands are finished first). At the end the producers stop, the
%% front passes on what it holds, then each worker finishes its request and
%% counts what it has left, so `offered = served + sum(shed)' is a count,
%% not a difference.
%%
%% Each second gives a point: offered, served and shed by reason over the
%% second, the p50 and p99 of the latency (offer to answer) of the
%% requests served in it (an HDR histogram of `reckon_metrics' per second,
%% and one for the whole run), node memory, the longest message queue of
%% the node (`reckon:proc_count/2'), and the breaker's state.
%%
%% This module prints to the terminal on purpose (unless `quiet'): it is a
%% shell-facing demo, not library code.
-module(sluice_demo_service).

-export([run/2, defaults/0, start_background/2, reasons/1]).
-export_type([mode/0, options/0, result/0, point/0]).

-type mode() :: unprotected | protected.
-type options() :: #{seconds => pos_integer(), outage => {non_neg_integer(), non_neg_integer()},
                     clients => pos_integer(), rate => pos_integer(), hot_share => float(),
                     burst_every => pos_integer(), burst_ms => non_neg_integer(),
                     burst_factor => number(), workers => pos_integer(),
                     connections => pos_integer(), service_ms => pos_integer(),
                     hang_ms => pos_integer(), payload => non_neg_integer(),
                     client_limit => pos_integer(), box_max => pos_integer(),
                     max_age => pos_integer(),
                     checkout_ms => non_neg_integer(), quiet => boolean()}.
%% See {@link defaults/0}.
-type point() :: #{t := pos_integer(), offered := non_neg_integer(),
                   served := non_neg_integer(), shed := #{atom() => non_neg_integer()},
                   p50_ms := float() | null, p99_ms := float() | null,
                   memory_mb := float(), mailbox := non_neg_integer(),
                   breaker := atom(), outage := boolean()}.
%% One second of a run.
-type result() :: #{mode := mode(), options := options(), series := [point()],
                    offered := non_neg_integer(), served := non_neg_integer(),
                    served_in_1s := non_neg_integer(), shed := #{atom() => non_neg_integer()},
                    p50_ms := float() | null, p99_ms := float() | null,
                    start_memory_mb := float(), peak_memory_mb := float(),
                    peak_mailbox := non_neg_integer()}.
%% A whole run: its series and exact totals (`served_in_1s': the served
%% requests answered within a second of their offer).

-define(OFFERED, 1).
-define(SERVED, 2).
-define(RATE_LIMITED, 3).
-define(VALVE, 4).
-define(BREAKER_OPEN, 5).
-define(POOL_BUSY, 6).
-define(DB_ERROR, 7).
-define(BOX_CLOSED, 8).
-define(IN_TIME, 9).      % served within ?IN_TIME_US
-define(IN_TIME_US, 1000000).
-define(STOP_PRODUCERS, 1).
-define(STOP_WORKERS, 2).
-define(HIGHEST_US, 120000000).
-define(MB, 1048576).
-define(ROW, "~-11s ~3s ~7s ~7s ~6s ~6s ~6s ~6s ~6s ~6s ~6s ~8s ~8s ~7s ~7s  ~-9s ~s~n").

%% @doc The scenario of `make demo': 30 s with the outage from 8 s to 16 s;
%% 8 clients offer 2000 req/s (client 1 sends 40 %), twice as many for
%% 1 s every 6 s; 16 workers, 8 connections, 5 ms per query, 1 s hangs;
%% 1 KB payloads; 400 req/s per client, boxes of 100 whose requests expire
%% after 1 s, 100 ms to wait for a connection.
-spec defaults() -> options().
defaults() ->
    #{seconds => 30, outage => {8000, 16000}, clients => 8, rate => 2000, hot_share => 0.4,
      burst_every => 6000, burst_ms => 1000, burst_factor => 2, workers => 16,
      connections => 8, service_ms => 5, hang_ms => 1000, payload => 1024,
      client_limit => 400, box_max => 100, max_age => 1000, checkout_ms => 100,
      quiet => false}.

%% @doc The shed reasons a mode can report, in the order they are shown.
-spec reasons(Mode) -> [atom()] when Mode :: mode().
reasons(unprotected) -> [db_error, unfinished];
reasons(protected) ->
    [rate_limited, valve, box_overflow, box_expired, breaker_open, pool_busy, db_error,
     unfinished].

%%% A measured run

%% @doc Runs the service in `Mode' for `seconds', printing a line a second
%% (unless `quiet'), and returns its series and totals.
-spec run(Mode, Opts) -> result() when Mode :: mode(), Opts :: options().
run(Mode, Opts0) when Mode =:= unprotected; Mode =:= protected ->
    Opts = maps:merge(defaults(), Opts0),
    {ok, _} = application:ensure_all_started(sluice),
    {ok, _} = application:ensure_all_started(reckon),
    Memory0 = erlang:memory(total),
    Ctx = start(Mode, Opts, #{}),
    print(Opts, "~s: ~s~n", [Mode, describe(Mode, Opts)]),
    print(Opts, ?ROW, [run, "s", offered, served, limit, valve, box, aged, open, busy, dberr,
                        "p50_ms", "p99_ms", "mem_MB", mailbox, breaker, ""]),
    Series = sample(Ctx, 1, maps:get(seconds, Opts), #{}, []),
    {Left, BoxDrops} = stop(Ctx),
    Totals = totals(Ctx, Left, BoxDrops),
    #{run_hist := RunHist} = Ctx,
    {P50, P99} = percentiles(RunHist),
    #{mode => Mode, options => Opts, series => Series,
      offered => maps:get(offered, Totals), served => maps:get(served, Totals),
      served_in_1s => counters:get(maps:get(c, Ctx), ?IN_TIME),
      shed => maps:without([offered, served], Totals),
      p50_ms => P50, p99_ms => P99,
      start_memory_mb => Memory0 / ?MB,
      peak_memory_mb => lists:max([Memory0 / ?MB | [M || #{memory_mb := M} <- Series]]),
      peak_mailbox => lists:max([0 | [B || #{mailbox := B} <- Series]])}.

%% @doc Starts the service in the background, unmeasured and silent, with
%% the outage coming back every `seconds': for a node to look at with
%% reckon. Returns the process that holds it (exit it to stop the service).
-spec start_background(Mode, Opts) -> pid() when Mode :: mode(), Opts :: options().
start_background(Mode, Opts0) ->
    Opts = maps:merge(defaults(), Opts0#{quiet => true}),
    Self = self(),
    Pid = spawn(fun() ->
                        group_leader(whereis(user), self()),
                        Ctx = start(Mode, Opts, #{cycle_ms => maps:get(seconds, Opts) * 1000}),
                        Self ! {self(), started},
                        receive stop -> _ = stop(Ctx), ok end
                end),
    receive {Pid, started} -> Pid end.

-spec describe(mode(), options()) -> string().
describe(unprotected, _) ->
    "requests go by message to the front and the workers; workers wait for a connection";
describe(protected, #{client_limit := L, box_max := B, max_age := A, checkout_ms := C}) ->
    lists:flatten(io_lib:format("limit ~b req/s per client, valve regulated by the boxes' fill, "
                                "stack boxes of ~b (max_age ~b ms),~n  lock (wait ~b ms), "
                                "breaker (defaults)", [L, B, A, C])).

%%% Starting and stopping

-spec start(mode(), options(), map()) -> map().
start(Mode, Opts, DbExtra) ->
    #{workers := W, connections := N, service_ms := Service, hang_ms := Hang,
      outage := Outage} = Opts,
    RunId = erlang:unique_integer([positive]),
    T0 = erlang:monotonic_time(millisecond),
    Db = DbExtra#{t0 => T0, service_ms => Service, hang_ms => Hang, outage => Outage},
    C = counters:new(9, [write_concurrency]),
    Flags = atomics:new(2, []),
    Tab = ets:new(sluice_demo_hist, [public, set, {read_concurrency, true}]),
    {ok, RunHist} = hist(RunId, run),
    ets:insert(Tab, {hist, none, RunHist}),
    Base = #{mode => Mode, opts => Opts, parent => self(), run_id => RunId, t0 => T0,
             db => Db, c => C, flags => Flags, tab => Tab, run_hist => RunHist},
    Ctx = case Mode of
              unprotected ->
                  Pool = sluice_demo_db:start_pool(N),
                  Env = Base#{pool => Pool},
                  Workers = [spawn_link(fun() -> uworker(Env) end) || _ <- lists:seq(1, W)],
                  Env#{workers => Workers, boxes => []};
              protected ->
                  Breaker = {sluice_demo, db, RunId},
                  ok = sluice_breaker:install(Breaker, #{}),
                  {ok, Lock} = sluice_lock:new(#{resources => N, callback => {sluice_demo_db, []}}),
                  {ok, Limiter} = sluice_limit:new_rate(#{limit => maps:get(client_limit, Opts)}),
                  Env = Base#{breaker => Breaker, lock => Lock, limiter => Limiter},
                  Self = self(),
                  Workers = [spawn_link(fun() -> pworker_start(Self, Env) end)
                             || _ <- lists:seq(1, W)],
                  Boxes = [receive {Pid, box, B} -> B end || Pid <- Workers],
                  Total = W * maps:get(box_max, Opts),
                  Signal = fun() -> lists:sum([element(1, sluice_box:usage(B)) || B <- Boxes]) end,
                  ValveName = {sluice_demo, valve, RunId},
                  {ok, Valve} = sluice_drop:new(ValveName,
                                                #{rate => 1.0,
                                                  regulate => #{signal => Signal,
                                                                low => Total div 2,
                                                                high => Total}}),
                  Env#{workers => Workers, boxes => Boxes, valve => Valve,
                       valve_name => ValveName}
          end,
    Front = spawn_link(fun() -> front(Ctx, 1) end),
    Ctx2 = Ctx#{front => Front},
    Producers = [spawn_link(fun() -> producer(Ctx2, Client) end)
                 || Client <- lists:seq(1, maps:get(clients, Opts))],
    Ctx2#{producers => Producers}.

%% Stops producers, then the front (which passes on what it holds), then the
%% workers (each finishes its request and counts what is left); returns
%% the requests left and the boxes' drop counters by reason.
-spec stop(map()) -> {non_neg_integer(), #{atom() => non_neg_integer()}}.
stop(#{flags := Flags, producers := Producers, front := Front, workers := Workers} = Ctx) ->
    atomics:put(Flags, ?STOP_PRODUCERS, 1),
    wait_down(Producers),
    Front ! {stop, self()},
    receive {Front, stopped} -> ok end,
    wait_down([Front]),
    atomics:put(Flags, ?STOP_WORKERS, 1),
    _ = [W ! wake || W <- Workers],
    Reports = [receive {W, left, N, Drops} -> {N, Drops} end || W <- Workers],
    wait_down(Workers),
    cleanup(Ctx),
    ets:delete(maps:get(tab, Ctx)),
    Left = lists:sum([N || {N, _} <- Reports]),
    BoxDrops = lists:foldl(fun({_, D}, Acc) -> add_maps(D, Acc) end, #{}, Reports),
    {Left, BoxDrops}.

-spec cleanup(map()) -> ok.
cleanup(#{mode := unprotected, pool := Pool}) ->
    sluice_demo_db:stop_pool(Pool);
cleanup(#{mode := protected, breaker := Breaker, lock := Lock, valve_name := Valve}) ->
    ok = sluice_drop:delete(Valve),
    ok = sluice_lock:close(Lock),
    ok = sluice_breaker:remove(Breaker).

-spec wait_down([pid()]) -> ok.
wait_down(Pids) ->
    Refs = [{monitor(process, P), P} || P <- Pids],
    _ = [receive {'DOWN', R, process, P, _} -> unlink(P) end || {R, P} <- Refs],
    ok.

-spec totals(map(), non_neg_integer(), #{atom() => non_neg_integer()}) ->
    #{atom() => non_neg_integer()}.
totals(#{mode := Mode, c := C}, Left, BoxDrops) ->
    Counted = counted(C),
    Base = maps:merge(maps:from_list([{R, 0} || R <- reasons(Mode)]),
                      Counted#{unfinished => Left}),
    Shed = case Mode of
               unprotected -> maps:with([offered, served, db_error, unfinished], Base);
               protected -> maps:merge(Base, box_reasons(BoxDrops))
           end,
    Shed.

%% The counters, by name (box_closed only when it happened).
-spec counted(counters:counters_ref()) -> #{atom() => non_neg_integer()}.
counted(C) ->
    M = #{offered => counters:get(C, ?OFFERED), served => counters:get(C, ?SERVED),
          rate_limited => counters:get(C, ?RATE_LIMITED), valve => counters:get(C, ?VALVE),
          breaker_open => counters:get(C, ?BREAKER_OPEN), pool_busy => counters:get(C, ?POOL_BUSY),
          db_error => counters:get(C, ?DB_ERROR)},
    case counters:get(C, ?BOX_CLOSED) of
        0 -> M;
        N -> M#{box_closed_at_post => N}
    end.

%% A box's drop counters as shed reasons: `box_overflow' and `box_expired' always, others
%% when they happened.
-spec box_reasons(#{atom() => non_neg_integer()}) -> #{atom() => non_neg_integer()}.
box_reasons(Drops) ->
    maps:fold(fun(overflow, N, Acc) -> Acc#{box_overflow => N};
                 (_, 0, Acc) -> Acc;
                 (R, N, Acc) -> Acc#{box_reason(R) => N}
              end, #{box_overflow => 0, box_expired => 0}, Drops).

-spec box_reason(atom()) -> atom().
box_reason(resize) -> box_resize;
box_reason(filter) -> box_filter;
box_reason(closed) -> box_closed;
box_reason(expired) -> box_expired;
box_reason(early) -> box_early;
box_reason(_) -> box_other.

-spec add_maps(#{atom() => non_neg_integer()}, #{atom() => non_neg_integer()}) ->
    #{atom() => non_neg_integer()}.
add_maps(A, B) ->
    maps:fold(fun(K, V, Acc) -> maps:update_with(K, fun(X) -> X + V end, V, Acc) end, B, A).

%%% Sampling, once a second

-spec sample(map(), pos_integer(), pos_integer(), map(), [point()]) -> [point()].
sample(_Ctx, S, Secs, _Last, Acc) when S > Secs ->
    lists:reverse(Acc);
sample(#{t0 := T0, tab := Tab, run_id := RunId, opts := Opts, db := Db} = Ctx, S, Secs, Last,
       Acc) ->
    Hist = case hist(RunId, S) of
               {ok, H} -> H;
               {error, _} -> none
           end,
    [{hist, _, RunHist}] = ets:lookup(Tab, hist),
    ets:insert(Tab, {hist, Hist, RunHist}),
    sleep_until(T0 + S * 1000),
    Now = cumulative(Ctx),
    {P50, P99} = percentiles(Hist),
    Memory = erlang:memory(total) / ?MB,
    Mailbox = case reckon:proc_count(message_queue_len, 1) of
                  [{_, N, _}] -> N;
                  _ -> 0
              end,
    Breaker = breaker_state(Ctx),
    Delta = maps:map(fun(K, V) -> V - maps:get(K, Last, 0) end, Now),
    #{offered := Offered, served := Served} = Delta,
    Point = #{t => S, offered => Offered, served => Served,
              shed => maps:without([offered, served], Delta),
              p50_ms => P50, p99_ms => P99, memory_mb => Memory, mailbox => Mailbox,
              breaker => Breaker,
              outage => sluice_demo_db:in_outage(Db, T0 + S * 1000 - 500)},
    print_point(maps:get(mode, Ctx), Opts, Point),
    sample(Ctx, S + 1, Secs, Now, [Point | Acc]).

%% The counters so far, with the boxes' drops (unfinished: what the boxes
%% and the workers' mailboxes hold now, for the lines only).
-spec cumulative(map()) -> #{atom() => non_neg_integer()}.
cumulative(#{mode := Mode, c := C, boxes := Boxes}) ->
    Counted = counted(C),
    Drops = lists:foldl(fun(B, Acc) -> add_maps(maps:get(dropped, sluice_box:info(B)), Acc) end,
                        #{}, Boxes),
    M = maps:merge(maps:from_list([{R, 0} || R <- reasons(Mode), R =/= unfinished]),
                   maps:merge(Counted, box_reasons(Drops))),
    case Mode of
        unprotected -> maps:with([offered, served, db_error], M);
        protected -> M
    end.

-spec breaker_state(map()) -> atom().
breaker_state(#{mode := unprotected}) ->
    none;
breaker_state(#{breaker := B}) ->
    case sluice_breaker:info(B) of
        #{state := State} -> State;
        _ -> none
    end.

-spec print_point(mode(), options(), point()) -> ok.
print_point(Mode, Opts, #{t := S, offered := O, served := Sv, shed := Shed, p50_ms := P50,
                          p99_ms := P99, memory_mb := Mem, mailbox := Box, breaker := Br,
                          outage := Out}) ->
    G = fun(K) -> case Shed of #{K := N} -> integer_to_list(N); #{} -> "-" end end,
    print(Opts, ?ROW, [Mode, integer_to_list(S), integer_to_list(O), integer_to_list(Sv),
                        G(rate_limited), G(valve), G(box_overflow), G(box_expired),
                        G(breaker_open),
                        G(pool_busy), G(db_error), ms(P50), ms(P99),
                        float_to_list(Mem, [{decimals, 1}]), integer_to_list(Box),
                        atom_to_list(Br), case Out of true -> "outage"; false -> "" end]).

-spec ms(float() | null) -> string().
ms(null) -> "-";
ms(V) when V >= 100 -> integer_to_list(round(V));
ms(V) -> float_to_list(V, [{decimals, 1}]).

-spec print(options(), string(), list()) -> ok.
print(#{quiet := true}, _, _) -> ok;
print(_, Fmt, Args) -> io:format(Fmt, Args).

%%% Latency histograms

-spec hist(pos_integer(), run | pos_integer()) -> {ok, reckon_metrics:metric()} | {error, term()}.
hist(RunId, Which) ->
    reckon_metrics:histogram({sluice_demo, latency_us}, [{run, RunId}, {second, Which}],
                             #{highest => ?HIGHEST_US, sigfig => 2}).

%% p50 and p99 in ms, `null' when nothing was recorded.
-spec percentiles(reckon_metrics:metric() | none) -> {float() | null, float() | null}.
percentiles(none) ->
    {null, null};
percentiles(H) ->
    case reckon_metrics:percentiles(H) of
        #{count := 0} -> {null, null};
        #{p50 := P50, p99 := P99} -> {P50 / 1000, P99 / 1000}
    end.

%% Counts a served request and records its latency.
-spec served(map(), integer()) -> ok.
served(#{tab := Tab, c := C}, SentUs) ->
    Us = min(?HIGHEST_US, max(0, erlang:monotonic_time(microsecond) - SentUs)),
    _ = case ets:lookup(Tab, hist) of
            [{hist, H, RunHist}] ->
                ok = reckon_metrics:observe(RunHist, Us),
                H =:= none orelse reckon_metrics:observe(H, Us);
            [] ->
                ok
        end,
    Us =< ?IN_TIME_US andalso counters:add(C, ?IN_TIME, 1),
    counters:add(C, ?SERVED, 1).

%%% Producers and the front

-spec producer(map(), pos_integer()) -> ok.
producer(#{opts := Opts} = Ctx, Client) ->
    #{clients := N, rate := Rate, hot_share := Hot} = Opts,
    Share = case {Client, N} of
                {_, 1} -> 1.0;
                {1, _} -> Hot;
                _ -> (1.0 - Hot) / (N - 1)
            end,
    produce(Ctx, Client, Rate * Share, erlang:monotonic_time(microsecond), 0.0).

-spec produce(map(), pos_integer(), float(), integer(), float()) -> ok.
produce(#{flags := Flags, t0 := T0, opts := Opts} = Ctx, Client, Rate, Last, Acc) ->
    case atomics:get(Flags, ?STOP_PRODUCERS) of
        1 ->
            ok;
        0 ->
            Now = erlang:monotonic_time(microsecond),
            #{burst_every := Every, burst_ms := Len, burst_factor := F} = Opts,
            InBurst = (Now div 1000 - T0) rem Every >= Every - Len,
            R = case InBurst of true -> Rate * F; false -> Rate end,
            Due = Acc + R * (Now - Last) / 1.0e6,
            N = trunc(Due),
            offer(Ctx, Client, N),
            receive after 1 -> ok end,
            produce(Ctx, Client, Rate, Now, Due - N)
    end.

-spec offer(map(), pos_integer(), non_neg_integer()) -> ok.
offer(_Ctx, _Client, 0) ->
    ok;
offer(#{c := C, front := Front, opts := #{payload := Size}} = Ctx, Client, N) ->
    counters:add(C, ?OFFERED, 1),
    Req = {req, Client, erlang:monotonic_time(microsecond), binary:copy(<<0>>, Size)},
    _ = case Ctx of
            #{mode := unprotected} ->
                Front ! Req;
            #{limiter := L, valve := V} ->
                case sluice_limit:check(L, Client) of
                    ok ->
                        case sluice_drop:ask(V) of
                            ok -> Front ! Req;
                            _ -> counters:add(C, ?VALVE, 1)
                        end;
                    {error, _} ->
                        counters:add(C, ?RATE_LIMITED, 1)
                end
        end,
    offer(Ctx, Client, N - 1).

%% Hands each request to the next worker (or its box) in turn; on `stop',
%% after what came before it, answers and ends.
-spec front(map(), pos_integer()) -> ok.
front(#{workers := Workers} = Ctx, I) ->
    receive
        {req, _, _, _} = Req ->
            _ = case Ctx of
                    #{mode := unprotected} ->
                        lists:nth(I, Workers) ! Req;
                    #{boxes := Boxes, c := C} ->
                        case sluice_box:post(lists:nth(I, Boxes), Req) of
                            {error, closed} -> counters:add(C, ?BOX_CLOSED, 1);
                            _OkOrFull -> ok
                        end
                end,
            front(Ctx, I rem length(Workers) + 1);
        {stop, From} ->
            From ! {self(), stopped},
            ok
    end.

%%% Workers

-spec stopping(map()) -> boolean().
stopping(#{flags := Flags}) ->
    atomics:get(Flags, ?STOP_WORKERS) =:= 1.

%% Unprotected: requests from the mailbox, a connection from the pool,
%% however long either takes.
-spec uworker(map()) -> ok.
uworker(#{pool := Pool, db := Db, c := C} = Ctx) ->
    case stopping(Ctx) of
        true ->
            report_left(Ctx, drain(0), #{});
        false ->
            receive
                {req, _Client, SentUs, _} ->
                    Conn = sluice_demo_db:pool_checkout(Pool),
                    Result = sluice_demo_db:query(Conn, Db),
                    ok = sluice_demo_db:pool_checkin(Pool, Conn),
                    case Result of
                        ok -> served(Ctx, SentUs);
                        {error, _} -> counters:add(C, ?DB_ERROR, 1)
                    end;
                wake ->
                    ok
            end,
            uworker(Ctx)
    end.

%% Protected: the worker owns its box.
-spec pworker_start(pid(), map()) -> ok.
pworker_start(Parent, #{opts := #{box_max := Max, max_age := Age}} = Ctx) ->
    {ok, Box} = sluice_box:new(#{type => stack, max => Max, max_age => Age}),
    Parent ! {self(), box, Box},
    pworker(Box, Ctx).

-spec pworker(sluice_box:box(), map()) -> ok.
pworker(Box, Ctx) ->
    case stopping(Ctx) of
        true ->
            #{size := Size, dropped := Drops} = sluice_box:info(Box),
            _ = drain(0),
            report_left(Ctx, Size, Drops);
        false ->
            case sluice_box:take(Box, 1) of
                {[{req, _, _, _} = Req], 1, _} ->
                    handle(Req, Ctx);
                {[], 0, _} ->
                    ok = sluice_box:notify(Box),
                    receive
                        {mail, Box, new_data} -> ok;
                        wake -> ok
                    end
            end,
            pworker(Box, Ctx)
    end.

-spec handle(tuple(), map()) -> ok.
handle({req, _Client, SentUs, _}, #{breaker := B, lock := Lock, db := Db, c := C,
                                    opts := #{checkout_ms := Wait}} = Ctx) ->
    case sluice_lock:checkout(Lock, Wait) of
        {ok, Ref, Conn} ->
            %% run/3 melts the breaker on {error, _}, and a good run is a
            %% half-open breaker's successful probe.
            Result = sluice_breaker:run(B, fun() -> sluice_demo_db:query(Conn, Db) end, sync),
            ok = sluice_lock:checkin(Lock, Ref, Conn),
            case Result of
                ok -> served(Ctx, SentUs);
                {error, timeout} -> counters:add(C, ?DB_ERROR, 1);
                _Blown -> counters:add(C, ?BREAKER_OPEN, 1)
            end;
        {error, busy} ->
            counters:add(C, ?POOL_BUSY, 1)
    end.

%% Empties the mailbox; returns how many requests it held.
-spec drain(non_neg_integer()) -> non_neg_integer().
drain(N) ->
    receive
        {req, _, _, _} -> drain(N + 1);
        _ -> drain(N)
    after 0 ->
        N
    end.

-spec report_left(map(), non_neg_integer(), #{atom() => non_neg_integer()}) -> ok.
report_left(#{parent := Parent}, N, Drops) ->
    Parent ! {self(), left, N, Drops},
    ok.

-spec sleep_until(integer()) -> ok.
sleep_until(DeadlineMs) ->
    case DeadlineMs - erlang:monotonic_time(millisecond) of
        Ms when Ms > 0 -> receive after Ms -> ok end;
        _ -> ok
    end.
