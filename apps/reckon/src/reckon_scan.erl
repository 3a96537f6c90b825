%% @private
%% @doc Top-N and windows over every process (or inet port) of the node,
%% streamed: values are read a chunk of 1024 at a time and handed to
%% `reckon_nif', which keeps the top N in a bounded heap (`top_merge/3') or
%% the first sample of a window in a map (`window_*'). Names, current
%% functions and initial calls are read for the winners only.
%%
%% Every scan runs in a process of its own, so the list of processes and the
%% chunks never land on the caller's heap; that process and the caller are
%% left out of the ranking. On OTP 28 and later the processes are walked
%% with `erlang:processes_iterator/0', so not even their list is built.
-module(reckon_scan).

-export([proc_count/2, proc_window/3, proc_window/4, bin_leak/1,
         inet_count/2, inet_window/3, check_args/2, arg_error/2]).

%% The scan's process ends by exiting with its result.
-dialyzer({nowarn_function, isolated/1}).

%% Values handed to the library per call.
-define(CHUNK, 1024).
%% Most entries a top-N (or a list of born and died) may ask for.
-define(MAX_NUM, 10000).
%% Longest window, in ms (an hour: a longer one is likely a unit mistake).
-define(MAX_TIME, 3600000).
%% Attributes of proc_count/2, proc_window/3,4.
-define(PROC_ATTRS, [memory, reductions, message_queue_len, total_heap_size, heap_size,
                     stack_size, binary_memory]).
-define(INET_ATTRS, [recv_cnt, recv_oct, send_cnt, send_oct, cnt, oct]).
-define(INET_NAMES, ["tcp_inet", "udp_inet", "sctp_inet"]).

%%% Processes

%% @doc The `Num' processes with the largest `Attr'.
-spec proc_count(reckon:attr_name(), non_neg_integer()) -> [reckon:proc_attrs()].
proc_count(Attr, Num) ->
    check_args(proc_count, [Attr, Num]),
    isolated(fun(Skip) ->
                     Top = fold_procs(fun(P) -> keyed(P, proc_value(P, Attr)) end, Skip,
                                      top(Num), []),
                     with_details(Top)
             end).

%% @doc `proc_window/4' without the born and died.
-spec proc_window(reckon:attr_name(), non_neg_integer(), pos_integer()) ->
    [reckon:proc_attrs()].
proc_window(Attr, Num, Time) ->
    #{top := Top} = proc_window(Attr, Num, Time, #{list => 0}),
    Top.

%% @doc The `Num' processes whose `Attr' grew most over `Time' ms, alive at
%% both ends, with the processes born and died meanwhile.
-spec proc_window(reckon:attr_name(), non_neg_integer(), pos_integer(), reckon:window_opts()) ->
    reckon:window().
proc_window(Attr, Num, Time, Opts) ->
    check_args(proc_window, [Attr, Num, Time]),
    List = list_option(Opts),
    isolated(fun(Skip) ->
                     Entry = fun(P) -> keyed(P, proc_value(P, Attr)) end,
                     W = reckon_nif:window_new(#{kind => pid, n => Num, cap => List,
                                                 expected => erlang:system_info(process_count)}),
                     #{top := Top, born := Born} = Found =
                         window(W, Time, fun(Add) -> fold_procs(Entry, Skip, Add, ok) end),
                     Found#{top := with_details(Top), born := with_details(Born)}
             end).

%% @doc The `Num' processes that freed the most refc binaries when garbage
%% collected, each with minus the number it freed. Only processes holding
%% refc binaries are collected.
-spec bin_leak(non_neg_integer()) -> [reckon:proc_attrs()].
bin_leak(Num) ->
    check_args(bin_leak, [Num]),
    isolated(fun(Skip) ->
                     Top = fold_procs(fun(P) -> keyed(P, freed_binaries(P)) end, Skip,
                                      top(Num), []),
                     [{P, -Freed, Details} || {P, Freed, Details} <- with_details(Top)]
             end).

%%% Inet ports

%% @doc The `Num' inet ports with the largest `Attr'.
-spec inet_count(reckon:inet_attr_name(), non_neg_integer()) -> [reckon:inet_attrs()].
inet_count(Attr, Num) ->
    check_args(inet_count, [Attr, Num]),
    isolated(fun(_Skip) ->
                     Top = fold_chunks(reckon_port:of_type(?INET_NAMES),
                                       fun(P) -> keyed(P, inet_value(P, Attr)) end, top(Num), []),
                     [{P, V, inet_details(P, Attr)} || {P, V} <- Top]
             end).

%% @doc The `Num' inet ports whose `Attr' grew most over `Time' ms, open at
%% both ends of the window.
-spec inet_window(reckon:inet_attr_name(), non_neg_integer(), pos_integer()) ->
    [reckon:inet_attrs()].
inet_window(Attr, Num, Time) ->
    check_args(inet_window, [Attr, Num, Time]),
    isolated(fun(_Skip) ->
                     Entry = fun(P) -> inet_value_by_number(P, Attr) end,
                     W = reckon_nif:window_new(#{kind => integer, n => Num, cap => 0,
                                                 expected => length(erlang:ports())}),
                     Sample = fun(Add) ->
                                      fold_chunks(reckon_port:of_type(?INET_NAMES), Entry, Add, ok)
                              end,
                     #{top := Top} = window(W, Time, Sample),
                     [{Port, V, inet_details(Port, Attr)}
                      || {Number, V} <- Top, Port <- [reckon_port:term_to_port(Number)],
                         is_port(Port)]
             end).

%%% Streaming

%% Adds a chunk to the top `Num' (largest first).
-spec top(non_neg_integer()) ->
    fun(([{Key, integer()}], [{Key, integer()}]) -> [{Key, integer()}]).
top(Num) ->
    fun(Pairs, Acc) -> reckon_nif:top_merge(Num, Acc, Pairs) end.

%% Takes the two samples of window `W', `Time' ms apart: `Sample(Add)'
%% folds `Add' over every chunk of one sample. What the window found.
-spec window(reference(), pos_integer(), fun((fun((list(), ok) -> ok)) -> ok)) ->
    #{top := list(), born := list(), died := list(), born_count := non_neg_integer(),
      died_count := non_neg_integer()}.
window(W, Time, Sample) ->
    ok = Sample(fun(Pairs, ok) -> reckon_nif:window_add(W, first, Pairs) end),
    wait(Time),
    ok = Sample(fun(Pairs, ok) -> reckon_nif:window_add(W, second, Pairs) end),
    reckon_nif:window_finish(W).

%% Folds `Fun' over chunks of the `{Key, Value}' entries of every process
%% but those in `Skip' (and those that die before they are read).
-spec fold_procs(fun((pid()) -> entry(Key)), [pid()], fun(([{Key, integer()}], Acc) -> Acc),
                 Acc) -> Acc.
fold_procs(Entry, Skip, Fun, Acc) ->
    fold_chunks(processes_source(), fun(P) ->
                                            case lists:member(P, Skip) of
                                                true -> undefined;
                                                false -> Entry(P)
                                            end
                                    end, Fun, Acc).

-type source(Key) :: [Key] | {iterator, term()}.
%% What a process or port puts in a chunk: a keyed value, or nothing.
-type entry(Key) :: {Key, integer()} | undefined.

-spec processes_source() -> source(pid()).
processes_source() ->
    case erlang:function_exported(erlang, processes_iterator, 0) of
        true -> {iterator, apply(otp28(), processes_iterator, [])};
        false -> erlang:processes()
    end.

%% `erlang', named at run time: the process iterator of OTP 28 is unknown
%% to the xref and dialyzer of older releases, where it is never called.
-spec otp28() -> module().
otp28() -> binary_to_existing_atom(<<"erlang">>).

-spec next(source(Key)) -> {Key, source(Key)} | none.
next([Key | Rest]) -> {Key, Rest};
next([]) -> none;
next({iterator, Iter}) ->
    case apply(otp28(), processes_next, [Iter]) of
        {Pid, Next} -> {Pid, {iterator, Next}};
        none -> none
    end.

-spec fold_chunks(source(Item), fun((Item) -> entry(Key)),
                  fun(([{Key, integer()}], Acc) -> Acc), Acc) -> Acc.
fold_chunks(Source, Entry, Fun, Acc) ->
    case chunk(Source, Entry, ?CHUNK, []) of
        {[], done} -> Acc;
        {Pairs, done} -> Fun(Pairs, Acc);
        {Pairs, Rest} -> fold_chunks(Rest, Entry, Fun, Fun(Pairs, Acc))
    end.

-spec chunk(source(Item), fun((Item) -> entry(Key)), non_neg_integer(), [{Key, integer()}]) ->
    {[{Key, integer()}], source(Item) | done}.
chunk(Source, _Entry, 0, Pairs) ->
    {Pairs, Source};
chunk(Source, Entry, Left, Pairs) ->
    case next(Source) of
        none ->
            {Pairs, done};
        {Item, Rest} ->
            case Entry(Item) of
                undefined -> chunk(Rest, Entry, Left, Pairs);
                Pair -> chunk(Rest, Entry, Left - 1, [Pair | Pairs])
            end
    end.

-spec keyed(Key, integer() | undefined) -> entry(Key).
keyed(_Key, undefined) -> undefined;
keyed(Key, V) -> {Key, V}.

%%% Values

-spec proc_value(pid(), reckon:attr_name()) -> integer() | undefined.
proc_value(Pid, binary_memory) ->
    case erlang:process_info(Pid, binary) of
        {binary, Bins} -> lists:foldl(fun({_, Size, _}, Sum) -> Sum + Size end, 0, Bins);
        undefined -> undefined
    end;
proc_value(Pid, Attr) ->
    case erlang:process_info(Pid, Attr) of
        {Attr, V} -> V;
        undefined -> undefined
    end.

%% How many refc binaries a garbage collection of `Pid' let go of. A
%% process that holds none has none to free, and is not collected.
-spec freed_binaries(pid()) -> integer() | undefined.
freed_binaries(Pid) ->
    case erlang:process_info(Pid, binary) of
        {binary, []} ->
            0;
        {binary, Before} ->
            true = erlang:garbage_collect(Pid),
            case erlang:process_info(Pid, binary) of
                {binary, After} -> length(Before) - length(After);
                undefined -> undefined
            end;
        undefined ->
            undefined
    end.

-spec inet_value(port(), reckon:inet_attr_name()) -> integer() | undefined.
inet_value(Port, Attr) ->
    case inet_stats(Port, Attr) of
        undefined -> undefined;
        Stats -> lists:sum([V || {_, V} <- Stats])
    end.

%% The entry of a port in a window: keyed by its number, the `N' of
%% `#Port<0.N>' (which `reckon_port:term_to_port/1' turns back into the port).
-spec inet_value_by_number(port(), reckon:inet_attr_name()) -> entry(non_neg_integer()).
inet_value_by_number(Port, Attr) ->
    "#Port<0." ++ Number = erlang:port_to_list(Port),
    keyed(list_to_integer(lists:droplast(Number)), inet_value(Port, Attr)).

-spec inet_details(port(), reckon:inet_attr_name()) -> [{atom(), integer()}].
inet_details(Port, Attr) ->
    case inet_stats(Port, Attr) of
        undefined -> [];
        Stats -> Stats
    end.

-spec inet_stats(port(), reckon:inet_attr_name()) -> [{atom(), integer()}] | undefined.
inet_stats(Port, Attr) ->
    Keys = case Attr of
               cnt -> [recv_cnt, send_cnt];
               oct -> [recv_oct, send_oct];
               _ -> [Attr]
           end,
    try inet:getstat(Port, Keys) of
        {ok, Stats} -> Stats;
        {error, _} -> undefined
    catch
        _:_ -> undefined
    end.

%% Name, current function and initial call of the winners still alive.
-spec with_details([{pid(), integer()}]) -> [reckon:proc_attrs()].
with_details(Top) ->
    [{Pid, V, Details} || {Pid, V} <- Top, Details <- [details(Pid)], Details =/= undefined].

-spec details(pid()) -> [atom() | {current_function, mfa()} | {initial_call, mfa()}]
                        | undefined.
details(Pid) ->
    case erlang:process_info(Pid, [registered_name, current_function, initial_call]) of
        [{registered_name, Name}, Current, Initial] ->
            [Name || is_atom(Name), Name =/= []] ++ [Current, Initial];
        undefined ->
            undefined
    end.

%%% Isolation, arguments

%% Runs `Fun(Skip)' in a new process and returns its result; the process
%% stops if the caller goes away. `Skip': that process, the caller and,
%% when the caller is a shell's evaluator, that shell's server process.
-spec isolated(fun(([pid()]) -> Result)) -> Result.
isolated(Fun) ->
    Caller = self(),
    Skip = shell_servers(Caller),
    {Pid, Ref} = spawn_monitor(fun() ->
                                       put(reckon_caller, erlang:monitor(process, Caller)),
                                       exit({?MODULE, done, Fun([self(), Caller | Skip])})
                               end),
    receive
        {'DOWN', Ref, process, Pid, {?MODULE, done, Result}} -> Result;
        {'DOWN', Ref, process, Pid, Reason} -> erlang:error({reckon_scan_failed, Reason})
    end.

%% The shell server processes linked to `Evaluator' that run it: the
%% process of `shell' whose dictionary names `Evaluator' as its evaluator.
-spec shell_servers(pid()) -> [pid()].
shell_servers(Evaluator) ->
    {links, Links} = erlang:process_info(Evaluator, links),
    [P || P <- Links, is_pid(P), node(P) =:= node(), is_shell_server(P, Evaluator)].

-spec is_shell_server(pid(), pid()) -> boolean().
is_shell_server(Pid, Evaluator) ->
    case erlang:process_info(Pid, current_function) of
        {current_function, {shell, _, _}} ->
            case erlang:process_info(Pid, dictionary) of
                {dictionary, Dict} -> lists:member({evaluator, Evaluator}, Dict);
                undefined -> false
            end;
        _ ->
            false
    end.

%% Sleeps `Time' ms, or stops the scan if the caller went away meanwhile.
-spec wait(pos_integer()) -> ok.
wait(Time) ->
    CallerRef = get(reckon_caller),
    receive
        {'DOWN', CallerRef, process, _, _} -> exit(normal)
    after Time ->
            ok
    end.

%% @doc Raises `badarg' unless `Args' are valid arguments of the scan `Fun'
%% (`Num' at most 10 000, `Time' at most an hour).
-spec check_args(proc_count | proc_window | bin_leak | inet_count | inet_window, [term()]) -> ok.
check_args(Fun, Args) ->
    check(arg_error(Fun, Args) =:= ok).

%% @doc `ok' when `Args' are valid arguments of the scan `Fun', else the
%% number of the first bad argument and what it must be (for the message of
%% the public function's `badarg').
-spec arg_error(atom(), [term()]) -> ok | {pos_integer(), string()}.
arg_error(Fun, [Attr | Rest]) when Fun =:= proc_count; Fun =:= inet_count;
                                   Fun =:= proc_window; Fun =:= inet_window ->
    case lists:member(Attr, attrs(Fun)) of
        true -> rest_error(Rest, 2);
        false -> {1, "not an attribute; allowed: " ++ names(attrs(Fun))}
    end;
arg_error(bin_leak, [Num]) ->
    rest_error([Num], 1);
arg_error(_, _) ->
    {1, "not a valid call"}.

%% `Num', then `Time', then window options, from argument number `Index'.
-spec rest_error([term()], pos_integer()) -> ok | {pos_integer(), string()}.
rest_error([], _Index) ->
    ok;
rest_error([Num | Rest], Index) when Index =< 2 ->
    case is_num(Num) of
        true -> rest_error(Rest, Index + 1);
        false -> {Index, "not an integer from 0 to " ++ integer_to_list(?MAX_NUM)}
    end;
rest_error([Time | Rest], 3) ->
    case is_integer(Time) andalso Time > 0 andalso Time =< ?MAX_TIME of
        true -> rest_error(Rest, 4);
        false -> {3, "not a time in ms from 1 to " ++ integer_to_list(?MAX_TIME)}
    end;
rest_error([Opts], 4) ->
    case is_map(Opts) andalso is_list_option(maps:get(list, Opts, 10)) of
        true -> ok;
        false -> {4, "not a map #{list => N}, N an integer from 0 to "
                  ++ integer_to_list(?MAX_NUM)}
    end.

-spec names([atom()]) -> string().
names(Atoms) ->
    lists:flatten(lists:join(", ", [atom_to_list(A) || A <- Atoms])).

-spec attrs(atom()) -> [atom()].
attrs(Fun) when Fun =:= proc_count; Fun =:= proc_window -> ?PROC_ATTRS;
attrs(_) -> ?INET_ATTRS.

-spec is_num(term()) -> boolean().
is_num(Num) -> is_integer(Num) andalso Num >= 0 andalso Num =< ?MAX_NUM.

-spec is_list_option(term()) -> boolean().
is_list_option(List) -> is_integer(List) andalso List >= 0 andalso List =< ?MAX_NUM.

-spec list_option(term()) -> non_neg_integer().
list_option(Opts) when is_map(Opts) ->
    case maps:keys(maps:without([list], Opts)) of
        [] -> ok;
        [Key | _] -> erlang:error({bad_option, Key})
    end,
    List = maps:get(list, Opts, 10),
    check(is_list_option(List)),
    List;
list_option(_) ->
    erlang:error(badarg).

-spec check(boolean()) -> ok.
check(true) -> ok;
check(false) -> erlang:error(badarg).
