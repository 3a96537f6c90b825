%% @doc Benchmark suite `reckon': `reckon:proc_count/2', `proc_window/3' and
%% `bin_leak/1' against a straightforward Erlang implementation of what
%% recon does (in this module): `process_info/2' of every process with its
%% details (registered name, current function, initial call), then a sort;
%% a window keeps both samples and diffs them in a `dict'.
%%
%% == Cases ==
%% For each node size S in 10k, 100k and 500k processes (idle processes
%% waiting in `receive', a few of them holding refc binary garbage, plus a
%% handful doing a little work every few ms), and each function F:
%% <ul>
%% <li>`F_S_time' (`ms'): wall time of one call (median of 3 calls at 10k,
%%     one call above), the call `proc_count(memory, 10)',
%%     `proc_count(reductions, 10)', `proc_window(reductions, 10, 100)' or
%%     `bin_leak(10)'. Reading a process's `memory' costs a signal round trip
%%     to it (OTP makes `process_info/2' ask the process itself), for both
%%     sides alike; its `reductions' are read directly.</li>
%% <li>`F_S_mem' (`bytes'): how far `erlang:memory(total)' rose above its
%%     level before the call while the call ran (sampled every ms by a
%%     process of high priority). Both sides run in a fresh process, so this
%%     is what the call itself holds: heaps, the library's allocations (which
%%     go through the VM's allocator), binaries.</li>
%% </ul>
%% The node runs with `+P 1048576' (see `scripts/bench.sh').
-module(bench_reckon).
-behaviour(bench).

-export([cases/0]).

-define(TABLE, bench_reckon).
-define(SIZES, [{"10k", 10000}, {"100k", 100000}, {"500k", 500000}]).
-define(NUM, 10).
-define(WINDOW_MS, 100).

%% @doc The cases of this suite (see the module documentation).
-spec cases() -> [{atom(), fun(() -> bench:result())}].
cases() ->
    lists:append(
      [[{list_to_atom(F ++ "_" ++ Label ++ "_time"), fun() -> measured(F, Size, time) end},
        {list_to_atom(F ++ "_" ++ Label ++ "_mem"), fun() -> measured(F, Size, mem) end}]
       || {Label, Size} <- ?SIZES,
          F <- ["proc_count", "proc_count_reductions", "proc_window", "bin_leak"]]).

%% The `time' case of a function measures both figures; the `mem' case
%% that follows reads the second.
-spec measured(string(), pos_integer(), time | mem) -> bench:result().
measured(F, Size, time) ->
    population(Size),
    Calls = if Size =< 10000 -> 3; true -> 1 end,
    Ours = [measure(ours(F)) || _ <- lists:seq(1, Calls)],
    Ref = [measure(ref(F)) || _ <- lists:seq(1, Calls)],
    true = ets:insert(?TABLE, {{F, Size}, {bench:median([M || {_, M} <- Ours]),
                                            bench:median([M || {_, M} <- Ref])}}),
    {bench:median([T || {T, _} <- Ours]), bench:median([T || {T, _} <- Ref]), ms};
measured(F, Size, mem) ->
    [{_, {OursMem, RefMem}}] = ets:lookup(?TABLE, {F, Size}),
    {_, Last} = lists:last(?SIZES),
    F =:= "bin_leak" andalso Size =:= Last andalso stop_population(),
    {OursMem, RefMem, bytes}.

-spec ours(string()) -> fun(() -> term()).
ours("proc_count") -> fun() -> reckon:proc_count(memory, ?NUM) end;
ours("proc_count_reductions") -> fun() -> reckon:proc_count(reductions, ?NUM) end;
ours("proc_window") -> fun() -> reckon:proc_window(reductions, ?NUM, ?WINDOW_MS) end;
ours("bin_leak") -> fun() -> reckon:bin_leak(?NUM) end.

-spec ref(string()) -> fun(() -> term()).
ref("proc_count") -> fun() -> ref_proc_count(memory, ?NUM) end;
ref("proc_count_reductions") -> fun() -> ref_proc_count(reductions, ?NUM) end;
ref("proc_window") -> fun() -> ref_proc_window(reductions, ?NUM, ?WINDOW_MS) end;
ref("bin_leak") -> fun() -> ref_bin_leak(?NUM) end.

%%% Measuring

%% Runs `Call' in a fresh process; its wall time in ms and the peak rise of
%% `erlang:memory(total)' meanwhile, in bytes.
-spec measure(fun(() -> term())) -> {float(), non_neg_integer()}.
measure(Call) ->
    Base = bench:settled_memory(),
    Poller = spawn_opt(fun() -> poll(Base, 0) end, [{priority, high}]),
    Parent = self(),
    T0 = erlang:monotonic_time(microsecond),
    {Pid, MRef} = spawn_monitor(fun() -> Parent ! {done, self(), length(Call())} end),
    receive
        {done, Pid, N} when N =< ?NUM -> ok;
        {'DOWN', MRef, process, Pid, Reason} -> exit({bench_reckon_call, Reason})
    end,
    Ms = (erlang:monotonic_time(microsecond) - T0) / 1000,
    demonitor(MRef, [flush]),
    Poller ! {stop, self()},
    receive {peak, Poller, Peak} -> {Ms, Peak} end.

-spec poll(non_neg_integer(), non_neg_integer()) -> ok.
poll(Base, Peak) ->
    receive
        {stop, From} -> From ! {peak, self(), Peak}, ok
    after 1 ->
            poll(Base, max(Peak, erlang:memory(total) - Base))
    end.

%%% The node's processes

%% Grows the population to `Size' processes (in all, counting the node's own).
-spec population(pos_integer()) -> ok.
population(Size) ->
    case ets:whereis(?TABLE) of
        undefined -> start_holder();
        _ -> ok
    end,
    [{_, Holder}] = ets:lookup(?TABLE, holder),
    Holder ! {grow, Size, self()},
    receive {grown, Holder} -> ok end,
    %% every process has run to its receive and been read once, so neither
    %% side pays for the first touch of the new ones
    _ = [erlang:process_info(P, memory) || P <- erlang:processes()],
    ok.

-spec start_holder() -> ok.
start_holder() ->
    Parent = self(),
    spawn(fun() ->
                  _ = ets:new(?TABLE, [named_table, public]),
                  true = ets:insert(?TABLE, {holder, self()}),
                  Workers = [spawn(fun worker/0) || _ <- lists:seq(1, 4)],
                  Parent ! {started, self()},
                  hold(Workers)
          end),
    receive {started, _} -> ok end.

-spec hold([pid()]) -> ok.
hold(Pids) ->
    receive
        {grow, Size, From} ->
            More = max(0, Size - erlang:system_info(process_count)),
            New = [spawn(fun idle/0) || _ <- lists:seq(1, More div 100)]
                ++ [spawn(fun leaky/0) || _ <- lists:seq(1, More - More div 100)],
            From ! {grown, self()},
            hold(New ++ Pids);
        {stop, From} ->
            [exit(P, kill) || P <- Pids],
            From ! {stopped, self()},
            ok
    end.

-spec idle() -> ok.
idle() ->
    receive stop -> ok end.

%% Made refc binaries and dropped them; they go at its next collection.
-spec leaky() -> ok.
leaky() ->
    _ = [binary:copy(<<1:8>>, 100) || _ <- lists:seq(1, 5)],
    receive stop -> ok end.

-spec worker() -> ok.
worker() ->
    _ = lists:sum(lists:seq(1, 200)),
    receive stop -> ok after 5 -> worker() end.

%% Stops every process of the population (after the last case).
-spec stop_population() -> boolean().
stop_population() ->
    [{_, Holder}] = ets:lookup(?TABLE, holder),
    Holder ! {stop, self()},
    receive {stopped, Holder} -> true end.

%%% The reference: what recon does, written plainly

-spec ref_proc_count(atom(), pos_integer()) -> list().
ref_proc_count(Attr, Num) ->
    top(ref_attrs(Attr), Num).

-spec ref_proc_window(atom(), pos_integer(), pos_integer()) -> list().
ref_proc_window(Attr, Num, Time) ->
    First = ref_attrs(Attr),
    timer:sleep(Time),
    Last = ref_attrs(Attr),
    Start = dict:from_list([{Pid, {-V, Info}} || {Pid, V, Info} <- First]),
    Diff = lists:foldl(fun({Pid, V, Info}, D) ->
                               dict:update(Pid, fun({Neg, _}) -> {V + Neg, Info} end, {V, Info}, D)
                       end, Start, Last),
    top([{Pid, V, Info} || {Pid, {V, Info}} <- dict:to_list(Diff)], Num).

-spec ref_bin_leak(pos_integer()) -> list().
ref_bin_leak(Num) ->
    Self = self(),
    Freed = [begin
                 {_, Before, Info} = Attrs,
                 true = erlang:garbage_collect(Pid),
                 case erlang:process_info(Pid, binary) of
                     {binary, After} -> {Pid, length(Before) - length(After), Info};
                     undefined -> {Pid, 0, Info}
                 end
             end || Pid <- erlang:processes(), Pid =/= Self,
                    Attrs <- [ref_attr(binary, Pid)], Attrs =/= undefined],
    [{Pid, -V, Info} || {Pid, V, Info} <- top(Freed, Num)].

-spec ref_attrs(atom()) -> list().
ref_attrs(Attr) ->
    Self = self(),
    [A || Pid <- erlang:processes(), Pid =/= Self, A <- [ref_attr(Attr, Pid)], A =/= undefined].

-spec ref_attr(atom(), pid()) -> tuple() | undefined.
ref_attr(Attr, Pid) ->
    case erlang:process_info(Pid, [Attr, registered_name, current_function, initial_call]) of
        [{Attr, V}, {registered_name, Name}, Current, Initial] ->
            {Pid, V, [Name || is_atom(Name), Name =/= []] ++ [Current, Initial]};
        undefined ->
            undefined
    end.

-spec top(list(), pos_integer()) -> list().
top(Attrs, Num) ->
    lists:sublist(lists:reverse(lists:keysort(2, Attrs)), Num).
