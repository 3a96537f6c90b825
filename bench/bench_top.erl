%% @doc Benchmark suite `top': the node-side cost of one refresh of
%% `reckon_top''s processes view, against the way observer_cli computes its
%% process list, in the same run.
%%
%% == Cases ==
%% <ul>
%% <li>`refresh_100k' (`ms'): with 100 000 processes (idle ones waiting in
%%     `receive', and four doing a little work every 5 ms), the wall time of
%%     one reading of the processes view by reductions over a window of
%%     100 ms, minus those 100 ms: `reckon_top_gather:gather(processes, ...)'
%%     (`reckon:proc_window/3' streams the values to the library's window,
%%     a bounded heap keeps the top 20; memory, queue and reductions are
%%     read for the winners only) against observer_cli's way (as
%%     `recon:proc_window/3' does it: `process_info/2' of every process with
%%     its name, current function and initial call at both ends of the
%%     window, the two samples diffed in a `dict', a sort of every process,
%%     the top 20, then the same reads of the winners). Median of 3 of each,
%%     interleaved, each in a fresh process.</li>
%% </ul>
-module(bench_top).
-behaviour(bench).

-export([cases/0]).

-define(SIZE, 100000).
-define(ROWS, 20).
-define(WINDOW_MS, 100).
-define(ROUNDS, 3).

%% @doc The cases of this suite (see the module documentation).
-spec cases() -> [{atom(), fun(() -> bench:result())}].
cases() ->
    [{refresh_100k, fun refresh/0}].

-spec refresh() -> bench:result().
refresh() ->
    Pids = population(?SIZE),
    try
        Ctx = #{sort => reductions, rows => ?ROWS, interval => ?WINDOW_MS},
        Ours = fun() -> #{rows := Rows} = reckon_top_gather:gather(processes, Ctx), Rows end,
        Ref = fun() -> observer_cli_way(?ROWS, ?WINDOW_MS) end,
        _ = {timed(Ours), timed(Ref)},
        Times = [{timed(Ours), timed(Ref)} || _ <- lists:seq(1, ?ROUNDS)],
        {bench:median([O || {O, _} <- Times]), bench:median([R || {_, R} <- Times]), ms}
    after
        [exit(P, kill) || P <- Pids]
    end.

%% The wall time of `Fun()' in a fresh process, in ms, less the window.
-spec timed(fun(() -> list())) -> float().
timed(Fun) ->
    Parent = self(),
    T0 = erlang:monotonic_time(microsecond),
    {Pid, MRef} = spawn_monitor(fun() -> Parent ! {done, self(), length(Fun())} end),
    receive
        {done, Pid, N} when N =< ?ROWS -> ok;
        {'DOWN', MRef, process, Pid, Reason} -> exit({bench_top_call, Reason})
    end,
    Ms = (erlang:monotonic_time(microsecond) - T0) / 1000,
    demonitor(MRef, [flush]),
    max(0.001, Ms - ?WINDOW_MS).

%%% The reference: observer_cli's process list, as recon computes it

-spec observer_cli_way(pos_integer(), pos_integer()) -> [map()].
observer_cli_way(Rows, Window) ->
    First = attrs(),
    timer:sleep(Window),
    Last = attrs(),
    Start = dict:from_list([{Pid, {-V, Info}} || {Pid, V, Info} <- First]),
    Diff = lists:foldl(fun({Pid, V, Info}, D) ->
                               dict:update(Pid, fun({Neg, _}) -> {V + Neg, Info} end, {V, Info}, D)
                       end, Start, Last),
    Sorted = lists:sort(fun({_, A, _}, {_, B, _}) -> A >= B end,
                        [{Pid, V, Info} || {Pid, {V, Info}} <- dict:to_list(Diff)]),
    [maps:from_list([{pid, Pid}, {value, V}, {details, Info} | Details])
     || {Pid, V, Info} <- lists:sublist(Sorted, Rows),
        Details <- [erlang:process_info(Pid, [memory, message_queue_len, reductions])],
        Details =/= undefined].

-spec attrs() -> [{pid(), integer(), list()}].
attrs() ->
    Self = self(),
    [{Pid, V, [Name || is_atom(Name), Name =/= []] ++ [Current, Initial]}
     || Pid <- erlang:processes(), Pid =/= Self,
        [{reductions, V}, {registered_name, Name}, Current, Initial]
            <- [erlang:process_info(Pid, [reductions, registered_name, current_function,
                                          initial_call])]].

%%% The node's processes

%% Grows the node to `Size' processes: idle ones, and four workers.
-spec population(pos_integer()) -> [pid()].
population(Size) ->
    Workers = [spawn(fun worker/0) || _ <- lists:seq(1, 4)],
    More = max(0, Size - erlang:system_info(process_count)),
    Idle = [spawn(fun idle/0) || _ <- lists:seq(1, More)],
    %% every process has run to its receive once
    _ = [erlang:process_info(P, reductions) || P <- erlang:processes()],
    Workers ++ Idle.

-spec idle() -> ok.
idle() ->
    receive stop -> ok end.

-spec worker() -> ok.
worker() ->
    _ = lists:sum(lists:seq(1, 200)),
    receive stop -> ok after 5 -> worker() end.
