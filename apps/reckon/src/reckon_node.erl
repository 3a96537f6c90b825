%% @private
%% @doc Node-wide statistics behind {@link reckon:node_stats/4},
%% {@link reckon:node_stats_list/2}, {@link reckon:node_stats_print/2} and
%% {@link reckon:scheduler_usage/1}, with recon's shapes.
%%
%% <h3>Samples</h3>
%% A sample is `{Absolutes, Increments}', taken at the end of an interval:
%% <ul>
%% <li>`Absolutes': `process_count', `run_queue', `memory_total', `memory_procs' (`processes_used'), `memory_atoms'
%% (`atom_used'), `memory_bin', `memory_ets', in that order, as they are at
%% the end of the interval.</li>
%% <li>`Increments': `bytes_in', `bytes_out' (through all ports),
%% `gc_count', `gc_words_reclaimed', `reductions' and `scheduler_usage' (as
%% {@link scheduler_usage/1} returns it), in that order, over the
%% interval.</li>
%% </ul>
%% Sample `I' ends `I * Interval' ms after the call: the schedule does not
%% drift with the cost of sampling or of the fold.
%%
%% There is no `error_logger_queue_len', as in recon on OTP 21 and later:
%% `error_logger' is no longer a process that queues every log event.
%%
%% <h3>Scheduler usage</h3>
%% Usage is `ActiveTime / TotalTime' between two
%% `erlang:statistics(scheduler_wall_time)' readings, one entry per
%% scheduler sorted by id: normal schedulers have ids `1' to
%% `erlang:system_info(schedulers)', dirty CPU schedulers the ids after
%% them (as in OTP's `scheduler:utilization/1' and recon; dirty CPU
%% schedulers are where long NIF calls run). Offline schedulers are listed
%% with their (near zero) usage; dirty IO schedulers are not listed.
%%
%% The `scheduler_wall_time' system flag is counted per process that set
%% it. A short-lived holder process sets it for the duration of a call and
%% clears it when done; the holder monitors the caller and lets go when the
%% caller dies, and its own setting vanishes if it is killed. The node's
%% flag is therefore as it was before the call, also after a crash.
%%
%% <h3>Arguments</h3>
%% `N' is a non-negative integer, `Interval' an integer number of
%% milliseconds in `1..3600000' (one hour catches seconds given for
%% milliseconds), the fold function has arity 2. Anything else raises
%% `badarg', with the `error_info' the shell uses to say which argument is
%% wrong and why.
-module(reckon_node).

-export([node_stats/4, node_stats_list/2, node_stats_print/2, scheduler_usage/1]).

-export_type([stats/0, usage/0]).

-include("reckon_error.hrl").

-define(MAX_INTERVAL, 3600000).

-type usage() :: [{SchedulerId :: pos_integer(), Usage :: float()}].
-type absolutes() :: [{process_count | run_queue | memory_total
                       | memory_procs | memory_atoms | memory_bin | memory_ets,
                       non_neg_integer()}].
-type increments() :: [{bytes_in | bytes_out | gc_count | gc_words_reclaimed | reductions,
                        non_neg_integer()}
                       | {scheduler_usage, usage()}].
-type stats() :: {absolutes(), increments()}.
-type wall_time() :: [{pos_integer(), non_neg_integer(), non_neg_integer()}].
%% `erlang:statistics(scheduler_wall_time)', sorted by scheduler id.
-type counters() :: #{io := {non_neg_integer(), non_neg_integer()},
                      gc := {non_neg_integer(), non_neg_integer()},
                      reductions := non_neg_integer(),
                      wall := wall_time()}.
-type cause() :: {pos_integer(), unicode:chardata()}.

%%% API

%% @doc Folds `Fun' over `N' samples taken `Interval' ms apart, first to last.
-spec node_stats(N, Interval, Fun, Acc) -> Acc when
      N :: non_neg_integer(), Interval :: pos_integer(),
      Fun :: fun((stats(), Acc) -> Acc), Acc :: term().
node_stats(N, Interval, Fun, Acc) ->
    case check([{1, fun check_count/1, N}, {2, fun check_interval/1, Interval},
                {3, fun check_fold/1, Fun}]) of
        ok -> fold(N, Interval, Fun, Acc);
        {bad, {Pos, Text}} -> ?RECKON_BADARG([N, Interval, Fun, Acc], Pos, Text)
    end.

%% @doc The `N' samples of {@link node_stats/4}, first to last.
-spec node_stats_list(non_neg_integer(), pos_integer()) -> [stats()].
node_stats_list(N, Interval) ->
    case check([{1, fun check_count/1, N}, {2, fun check_interval/1, Interval}]) of
        ok -> lists:reverse(fold(N, Interval, fun(S, Acc) -> [S | Acc] end, []));
        {bad, {Pos, Text}} -> ?RECKON_BADARG([N, Interval], Pos, Text)
    end.

%% @doc Prints the `N' samples of {@link node_stats/4} as they are taken.
-spec node_stats_print(non_neg_integer(), pos_integer()) -> ok.
node_stats_print(N, Interval) ->
    case check([{1, fun check_count/1, N}, {2, fun check_interval/1, Interval}]) of
        ok -> fold(N, Interval, fun print/2, ok);
        {bad, {Pos, Text}} -> ?RECKON_BADARG([N, Interval], Pos, Text)
    end.

%% @doc How busy each scheduler was over the next `Interval' ms, sorted by id.
-spec scheduler_usage(pos_integer()) -> usage().
scheduler_usage(Interval) ->
    case check([{1, fun check_interval/1, Interval}]) of
        ok -> with_wall_time(fun() -> measure_usage(Interval) end);
        {bad, {Pos, Text}} -> ?RECKON_BADARG([Interval], Pos, Text)
    end.

%%% Arguments

-spec check([{pos_integer(), fun((term()) -> ok | unicode:chardata()), term()}]) ->
    ok | {bad, cause()}.
check([]) ->
    ok;
check([{Pos, Check, Arg} | Rest]) ->
    case Check(Arg) of
        ok -> check(Rest);
        Text -> {bad, {Pos, Text}}
    end.

-spec check_count(term()) -> ok | string().
check_count(N) when is_integer(N), N >= 0 -> ok;
check_count(_) -> "the number of samples must be a non-negative integer".

-spec check_interval(term()) -> ok | string().
check_interval(I) when is_integer(I), I >= 1, I =< ?MAX_INTERVAL -> ok;
check_interval(_) ->
    "the interval must be an integer number of milliseconds in 1..3600000".

-spec check_fold(term()) -> ok | string().
check_fold(Fun) when is_function(Fun, 2) -> ok;
check_fold(_) -> "the fold function must be a fun of arity 2: fun(Stats, Acc) -> Acc".

%%% Sampling

-spec fold(non_neg_integer(), pos_integer(), fun((stats(), Acc) -> Acc), Acc) -> Acc.
fold(0, _Interval, _Fun, Acc) ->
    Acc;
fold(N, Interval, Fun, Acc) ->
    with_wall_time(fun() ->
                           Start = erlang:monotonic_time(millisecond),
                           fold(1, N, Start, Interval, counters(), Fun, Acc)
                   end).

-spec fold(pos_integer(), pos_integer(), integer(), pos_integer(), counters(),
           fun((stats(), Acc) -> Acc), Acc) -> Acc.
fold(I, N, _Start, _Interval, _Before, _Fun, Acc) when I > N ->
    Acc;
fold(I, N, Start, Interval, Before, Fun, Acc) ->
    sleep_until(Start + I * Interval),
    After = counters(),
    Sample = {absolutes(), increments(Before, After)},
    fold(I + 1, N, Start, Interval, After, Fun, Fun(Sample, Acc)).

-spec sleep_until(integer()) -> ok.
sleep_until(Deadline) ->
    timer:sleep(max(0, Deadline - erlang:monotonic_time(millisecond))).

-spec absolutes() -> absolutes().
absolutes() ->
    [{total, Total}, {processes_used, Procs}, {atom_used, Atoms}, {binary, Bin}, {ets, Ets}] =
        erlang:memory([total, processes_used, atom_used, binary, ets]),
    [{process_count, erlang:system_info(process_count)},
     {run_queue, erlang:statistics(run_queue)},
     {memory_total, Total},
     {memory_procs, Procs},
     {memory_atoms, Atoms},
     {memory_bin, Bin},
     {memory_ets, Ets}].

-spec counters() -> counters().
counters() ->
    {{input, In}, {output, Out}} = erlang:statistics(io),
    {GCs, Words, _} = erlang:statistics(garbage_collection),
    {Reds, _} = erlang:statistics(reductions),
    #{io => {In, Out}, gc => {GCs, Words}, reductions => Reds, wall => wall_time()}.

-spec increments(counters(), counters()) -> increments().
increments(#{io := {In0, Out0}, gc := {GCs0, Words0}, reductions := Reds0, wall := Wall0},
           #{io := {In1, Out1}, gc := {GCs1, Words1}, reductions := Reds1, wall := Wall1}) ->
    [{bytes_in, In1 - In0},
     {bytes_out, Out1 - Out0},
     {gc_count, GCs1 - GCs0},
     {gc_words_reclaimed, Words1 - Words0},
     {reductions, Reds1 - Reds0},
     {scheduler_usage, usage(Wall0, Wall1)}].

%%% Scheduler usage

-spec measure_usage(pos_integer()) -> usage().
measure_usage(Interval) ->
    Before = wall_time(),
    timer:sleep(Interval),
    usage(Before, wall_time()).

%% Sorted by id; an error if another process cleared the flag under us.
-spec wall_time() -> wall_time().
wall_time() ->
    case erlang:statistics(scheduler_wall_time) of
        undefined -> error({scheduler_wall_time, disabled_during_sampling});
        Wall -> lists:sort(Wall)
    end.

-spec usage(wall_time(), wall_time()) -> usage().
usage(Before, After) ->
    [{Id, ratio(Active1 - Active0, Total1 - Total0)}
     || {{Id, Active0, Total0}, {Id, Active1, Total1}} <- lists:zip(Before, After)].

-spec ratio(integer(), integer()) -> float().
ratio(_Active, Total) when Total =< 0 -> 0.0;
ratio(Active, Total) -> min(1.0, max(0.0, Active / Total)).

%% Runs `Fun' in the caller while a holder process keeps the
%% `scheduler_wall_time' flag set; the holder clears its setting on the way
%% out, and when the caller dies.
-spec with_wall_time(fun(() -> Result)) -> Result.
with_wall_time(Fun) ->
    Caller = self(),
    Tag = make_ref(),
    {Holder, Ref} = spawn_monitor(fun() -> hold(Caller, Tag) end),
    receive
        {Tag, enabled} -> ok;
        {'DOWN', Ref, process, Holder, Reason} -> error({scheduler_wall_time_holder, Reason})
    end,
    try
        Fun()
    after
        release(Holder, Ref, Tag)
    end.

-spec hold(pid(), reference()) -> ok.
hold(Caller, Tag) ->
    CallerRef = erlang:monitor(process, Caller),
    _ = erlang:system_flag(scheduler_wall_time, true),
    Caller ! {Tag, enabled},
    receive
        {Tag, release} ->
            _ = erlang:system_flag(scheduler_wall_time, false),
            Caller ! {Tag, released},
            ok;
        {'DOWN', CallerRef, process, Caller, _} ->
            _ = erlang:system_flag(scheduler_wall_time, false),
            ok
    end.

-spec release(pid(), reference(), reference()) -> ok.
release(Holder, Ref, Tag) ->
    Holder ! {Tag, release},
    receive
        {Tag, released} ->
            erlang:demonitor(Ref, [flush]),
            ok;
        {'DOWN', Ref, process, Holder, _} ->
            ok
    end.

%%% Printing

-spec print(stats(), ok) -> ok.
print(Sample, ok) ->
    io:format("~p~n", [Sample]).
