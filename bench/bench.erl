%% @doc Benchmark runner and helpers shared by the `bench_<suite>' modules.
%%
%% == Running ==
%% `scripts/bench.sh' (`make bench') compiles `bench/*.erl' into
%% `_build/bench' and calls {@link main/0} in one `erl -noshell'. `main/0'
%% starts the `sluice' application, finds every module `bench_<suite>' next to
%% this one, runs each suite (or only those named, comma- or space-separated,
%% in the environment variable `BENCH_ONLY') and halts with status 0, or 1 when
%% a case crashed (or ran longer than three minutes), or 2 when `BENCH_ONLY'
%% names no known suite.
%%
%% == Writing a suite ==
%% A suite is a module `bench_<suite>' (the suite is named after the public
%% module without its `sluice_' prefix: `drop', `box', `lock', ...) with
%% `-behaviour(bench)' and one callback:
%% ```
%% -spec cases() -> [{Case :: atom(), fun(() -> bench:result())}].
%% '''
%% The runner calls each case's fun in order and prints its one line as soon
%% as it returns, so a long suite shows progress and a crash in one case does
%% not hide the others:
%% ```
%% BENCH <suite>/<case> ours=<number> ref=<number> unit=<unit> better=<factor>
%% '''
%% `better' is how many times ours is better than the reference: `ref/ours'
%% for units where less is better (`ns_per_op', `bytes', `words', `ms',
%% `s', `msgs', `percent'), `ours/ref' for `ops_per_s'. Anything else the runner prints starts
%% with `#' and goes to standard error, so `grep ^BENCH' sees only results.
%%
%% == Helpers ==
%% {@link compare/3} times two loops (ours and the reference) in interleaved
%% rounds, optionally in several concurrent processes, and returns the medians;
%% {@link memory_delta/1} measures what building a structure costs the node.
%% A loop is a fun of the number of operations to perform that does exactly
%% that many: write it as a tight tail-recursive function calling the
%% operation directly (no fun call per operation), with the same shape for
%% ours and the reference, so the loop overhead is the same on both sides.
%% Every suite must finish in well under three minutes on two cores.
-module(bench).

-export([main/0, compare/3, time_ns/1, median/1, memory_delta/1, settled_memory/0, better/3,
         format_line/5]).
-export_type([result/0, unit/0, loop/0, compare_opts/0]).

%% What both figures of a case measure.
-type unit() :: ns_per_op | ops_per_s | bytes | words | ms | s | msgs | percent.
%% One case's outcome: ours, the reference, and their unit.
-type result() :: {Ours :: number(), Ref :: number(), unit()}.
%% Performs exactly `N' operations.
-type loop() :: fun((N :: pos_integer()) -> term()).
%% `ops' (default 1 000 000): operations per process per round; `rounds'
%% (default 7): timed rounds of each side, interleaved, after one untimed
%% warm-up round of each; `procs' (default 1): concurrent processes per round;
%% `min_heap_size' (default 10 000 words): of every timed process.
-type compare_opts() :: #{ops => pos_integer(), rounds => pos_integer(),
                          procs => pos_integer(), min_heap_size => pos_integer()}.

-callback cases() -> [{Case :: atom(), fun(() -> result())}].

-define(EXIT_CRASH, 1).
-define(EXIT_USAGE, 2).
%% A case that runs longer than this is killed and counted as crashed.
-define(CASE_TIMEOUT, 180000).

%%% Runner

%% @doc Runs the suites selected by `BENCH_ONLY' (all when unset or empty) and halts.
-spec main() -> no_return().
main() ->
    Status = try run_selected()
             catch Class:Reason:Stack -> crashed("bench", Class, Reason, Stack), ?EXIT_CRASH
             end,
    halt(Status).

-spec run_selected() -> 0 | ?EXIT_CRASH | ?EXIT_USAGE.
run_selected() ->
    {ok, _} = application:ensure_all_started(sluice),
    Known = suites(),
    case select(os:getenv("BENCH_ONLY"), Known) of
        {ok, Suites} ->
            note("~s, ~b schedulers online", [system_line(), erlang:system_info(schedulers_online)]),
            case lists:append([run_suite(S) || S <- Suites]) of
                [] -> 0;
                Failed -> note("crashed: ~s", [lists:join(", ", Failed)]), ?EXIT_CRASH
            end;
        {error, Unknown} ->
            note("unknown suite(s) in BENCH_ONLY: ~s; known: ~s",
                 [lists:join(", ", Unknown), lists:join(", ", Known)]),
            ?EXIT_USAGE
    end.

-spec suites() -> [string()].
suites() ->
    Dir = filename:dirname(code:which(?MODULE)),
    lists:sort([Suite || F <- filelib:wildcard("bench_*.beam", Dir),
                         "bench_" ++ Suite <- [filename:basename(F, ".beam")]]).

-spec select(string() | false, [string()]) -> {ok, [string()]} | {error, [string()]}.
select(Only, Known) when Only =:= false; Only =:= "" ->
    {ok, Known};
select(Only, Known) ->
    Wanted = string:lexemes(Only, ", "),
    case [W || W <- Wanted, not lists:member(W, Known)] of
        [] -> {ok, Wanted};
        Unknown -> {error, Unknown}
    end.

%% Runs one suite; returns the names of the cases that crashed (or the suite).
-spec run_suite(string()) -> [string()].
run_suite(Suite) ->
    Module = list_to_atom("bench_" ++ Suite),
    T0 = erlang:monotonic_time(millisecond),
    Failed = try Module:cases() of
                 Cases -> lists:append([run_case(Suite, C) || C <- Cases])
             catch
                 Class:Reason:Stack ->
                     crashed(Suite, Class, Reason, Stack),
                     [Suite]
             end,
    Took = (erlang:monotonic_time(millisecond) - T0) / 1000,
    Over = if Took > 180 -> " (over its three-minute budget)"; true -> "" end,
    note("suite ~s took ~.1f s~s", [Suite, Took, Over]),
    Failed.

%% Runs one case in a process of its own, so a case that hangs is stopped
%% after ?CASE_TIMEOUT and reported like a crash.
-spec run_case(string(), {atom(), fun(() -> result())}) -> [string()].
run_case(Suite, {Case, Fun}) ->
    Name = Suite ++ "/" ++ atom_to_list(Case),
    Parent = self(),
    {Pid, MRef} = spawn_monitor(fun() -> Parent ! {self(), attempt(Fun)} end),
    Outcome = receive
                  {Pid, Done} -> Done;
                  {'DOWN', MRef, process, Pid, Reason} -> {crash, exit, Reason, []}
              after ?CASE_TIMEOUT ->
                  exit(Pid, kill),
                  {crash, exit, {timeout, ?CASE_TIMEOUT}, []}
              end,
    demonitor(MRef, [flush]),
    case Outcome of
        {ok, {Ours, Ref, Unit}} ->
            io:put_chars(format_line(Name, Ours, Ref, Unit, better(Ours, Ref, Unit))),
            [];
        {crash, Class, Why, Stack} ->
            crashed(Name, Class, Why, Stack),
            [Name]
    end.

-spec attempt(fun(() -> result())) ->
    {ok, result()} | {crash, error | exit | throw, term(), list()}.
attempt(Fun) ->
    try
        {Ours, Ref, Unit} = Result = Fun(),
        true = is_number(Ours) andalso is_number(Ref),
        _ = better(Ours, Ref, Unit),
        {ok, Result}
    catch
        Class:Reason:Stack -> {crash, Class, Reason, Stack}
    end.

-spec crashed(string(), error | exit | throw, term(), list()) -> ok.
crashed(Name, Class, Reason, Stack) ->
    note("~s crashed: ~p:~0p~n#   ~0p", [Name, Class, Reason, Stack]).

-spec system_line() -> string().
system_line() ->
    "OTP " ++ erlang:system_info(otp_release) ++ ", erts " ++ erlang:system_info(version).

-spec note(io:format(), [term()]) -> ok.
note(Format, Args) ->
    io:format(standard_error, "# " ++ Format ++ "~n", Args).

%%% Printing

%% @doc The `BENCH' line of one case.
-spec format_line(Name :: string(), Ours :: number(), Ref :: number(), unit(),
                  Better :: float()) -> iolist().
format_line(Name, Ours, Ref, Unit, Better) ->
    io_lib:format("BENCH ~s ours=~s ref=~s unit=~s better=~s~n",
                  [Name, num(Ours), num(Ref), Unit, num(Better)]).

-spec num(number()) -> string().
num(N) when is_integer(N) -> integer_to_list(N);
num(F) when abs(F) >= 100.0 -> float_to_list(F, [{decimals, 1}, compact]);
num(F) -> float_to_list(F, [{decimals, 3}, compact]).

%% @doc How many times `Ours' is better than `Ref' in `Unit' (above 1.0: a win).
-spec better(Ours :: number(), Ref :: number(), unit()) -> float().
better(Ours, Ref, ops_per_s) -> ratio(Ours, Ref);
better(Ours, Ref, Unit) when Unit =:= ns_per_op; Unit =:= bytes; Unit =:= words;
                             Unit =:= ms; Unit =:= s; Unit =:= msgs; Unit =:= percent ->
    ratio(Ref, Ours).

-spec ratio(number(), number()) -> float().
ratio(_, Den) when Den == 0 -> 0.0;
ratio(Num, Den) -> Num / Den.

%%% Timing

%% @doc Times `Ours' and `Ref' (each a {@link loop()}) and returns the median
%% nanoseconds per operation of each.
%%
%% Each round spawns `procs' fresh processes per side; each one first runs the
%% loop for a tenth of `ops' untimed (this also seeds per-process state such as
%% `rand''s), waits for a common start signal, then runs `ops' operations.
%% A round's figure is its wall time, from the first process starting to the
%% last one finishing, divided by `ops' (operations per process): with two
%% processes on two schedulers and no contention it equals the one-process
%% figure, and it grows with whatever the processes contend on. Rounds of the
%% two sides alternate, so drift on a shared machine hits both alike.
%%
%% The timed processes start with a heap of `min_heap_size' words, as a
%% long-lived producer's would be: at a fresh process's 233 words, a loop that
%% allocates (as `rand:uniform/0' does, on every call) spends much of its time
%% in minor collections, which would flatter a non-allocating side.
-spec compare(Ours :: loop(), Ref :: loop(), compare_opts()) -> result().
compare(Ours, Ref, Opts) ->
    Ops = maps:get(ops, Opts, 1000000),
    Rounds = maps:get(rounds, Opts, 7),
    Procs = maps:get(procs, Opts, 1),
    Spawn = [monitor, {min_heap_size, maps:get(min_heap_size, Opts, 10000)}],
    _ = [round_ns(L, Ops, Procs, Spawn) || L <- [Ours, Ref]],
    Pairs = [{round_ns(Ours, Ops, Procs, Spawn), round_ns(Ref, Ops, Procs, Spawn)}
             || _ <- lists:seq(1, Rounds)],
    {OursNs, RefNs} = lists:unzip(Pairs),
    {median(OursNs) / Ops, median(RefNs) / Ops, ns_per_op}.

%% Wall-clock nanoseconds of one round of `Procs' processes running `Loop(Ops)'.
-spec round_ns(loop(), pos_integer(), pos_integer(), [erlang:spawn_opt_option()]) ->
    integer().
round_ns(Loop, Ops, Procs, Spawn) ->
    Parent = self(),
    Warm = max(1, Ops div 10),
    Workers = [spawn_opt(fun() -> worker(Parent, Loop, Warm, Ops) end, Spawn)
               || _ <- lists:seq(1, Procs)],
    _ = [receive {ready, Pid} -> ok end || {Pid, _} <- Workers],
    _ = [Pid ! go || {Pid, _} <- Workers],
    Spans = [receive
                 {done, Pid, Span} -> demonitor(MRef, [flush]), Span;
                 {'DOWN', MRef, process, Pid, Reason} -> exit({bench_worker, Reason})
             end || {Pid, MRef} <- Workers],
    {Starts, Ends} = lists:unzip(Spans),
    lists:max(Ends) - lists:min(Starts).

-spec worker(pid(), loop(), pos_integer(), pos_integer()) -> ok.
worker(Parent, Loop, Warm, Ops) ->
    _ = Loop(Warm),
    Parent ! {ready, self()},
    receive go -> ok end,
    T0 = erlang:monotonic_time(nanosecond),
    _ = Loop(Ops),
    T1 = erlang:monotonic_time(nanosecond),
    Parent ! {done, self(), {T0, T1}},
    ok.

%% @doc Wall-clock nanoseconds `Fun' takes, and its result.
-spec time_ns(fun(() -> Result)) -> {integer(), Result}.
time_ns(Fun) ->
    T0 = erlang:monotonic_time(nanosecond),
    Result = Fun(),
    {erlang:monotonic_time(nanosecond) - T0, Result}.

%% @doc The median of a non-empty list (the mean of the middle two when even).
-spec median([number(), ...]) -> number().
median(Xs) ->
    Sorted = lists:sort(Xs),
    Len = length(Sorted),
    case Len rem 2 of
        1 -> lists:nth(Len div 2 + 1, Sorted);
        0 -> (lists:nth(Len div 2, Sorted) + lists:nth(Len div 2 + 1, Sorted)) / 2
    end.

%%% Memory

%% @doc Bytes the node holds more after `Build' than before, while a process
%% keeps what `Build' returned alive (process heap, ETS, binaries, NIF
%% allocations all count). `Build' runs in a fresh process that is stopped
%% afterwards, so whatever that process owns (its heap, its ETS tables) is
%% freed with it; anything else `Build' makes is the caller's to clean up.
-spec memory_delta(Build :: fun(() -> term())) -> integer().
memory_delta(Build) ->
    Parent = self(),
    Before = settled_memory(),
    {Pid, MRef} = spawn_monitor(
                    fun() ->
                            Kept = Build(),
                            garbage_collect(),
                            Parent ! {built, self()},
                            receive stop -> Kept end
                    end),
    receive
        {built, Pid} -> ok;
        {'DOWN', MRef, process, Pid, Reason} -> exit({bench_build, Reason})
    end,
    After = settled_memory(),
    Pid ! stop,
    receive {'DOWN', MRef, process, Pid, _} -> ok end,
    After - Before.

%% @doc `erlang:memory(total)' once it stops moving (a process killed with a
%% long mailbox is still being freed for a while), after collecting the
%% caller's garbage.
-spec settled_memory() -> non_neg_integer().
settled_memory() ->
    garbage_collect(),
    settle_memory(erlang:memory(total), 50).

-spec settle_memory(non_neg_integer(), non_neg_integer()) -> non_neg_integer().
settle_memory(Prev, 0) ->
    Prev;
settle_memory(Prev, Tries) ->
    receive after 20 -> ok end,
    case erlang:memory(total) of
        Mem when abs(Mem - Prev) < 65536 -> Mem;
        Mem -> settle_memory(Mem, Tries - 1)
    end.
