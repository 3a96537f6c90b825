%% @private
%% @doc The sampler of {@link reckon_metrics}: a server under `reckon_sup'
%% that, while sampling, reads the node once a second and records it in the
%% node's recorder (`reckon_metrics_lib:ensure_recorder/0', which this
%% process makes at init, so the recorder outlives a restart of it).
%%
%% Ticks fall at the middle of each wall-clock second (the recorder keeps
%% one point per series per second and refuses a second point in the same
%% second). Counters of the VM (reductions, GC, IO, context switches) are
%% recorded as the increase since the previous tick (the first tick after a
%% start: since the start).
%%
%% Scheduler usage needs the `scheduler_wall_time' flag, which the VM
%% counts per process that set it: the sampler sets it while sampling and
%% clears its own setting when it stops, and the VM drops it if the
%% sampler dies, so the flag is as it was found (on if another process had
%% set it, as `reckon:scheduler_usage/1' does).
%%
%% With `file_dir' set, the recorder's file writer (a Rust thread) is
%% handed a write every `file_interval' ticks and when sampling stops.
%%
%% While sampling, a linked `reckon_metrics_sysmon' records long_gc and
%% long_schedule events (when no other system monitor is set).
%%
%% The server only reads the node: a caller's options are checked in
%% `reckon_metrics' before they come here.
-module(reckon_metrics_sampler).
-behaviour(gen_server).

-export([start_link/0, start_sampling/1, stop_sampling/0, endpoint/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2,
         code_change/3]).

-type name() :: term().

%% Most series keys the sampler caches (the recorder holds at most 100 000
%% series).
-define(MAX_CACHED_KEYS, 100000).
-type state() :: #{rec := reference(),
                   opts := reckon_metrics_lib:options() | off,
                   timer := reference() | undefined,
                   prev := #{atom() => term()},
                   ticks := non_neg_integer(),
                   http := {pid(), inet:ip_address(), inet:port_number()} | undefined,
                   keys := #{name() => binary()},
                   sysmon := pid() | undefined}.

%%% API

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc Starts sampling with `Opts' (checked, complete), or restarts with them.
-spec start_sampling(reckon_metrics_lib:options()) -> ok | {error, not_started}.
start_sampling(Opts) ->
    call({start, Opts}).

%% @doc Stops sampling.
-spec stop_sampling() -> ok | {error, not_started}.
stop_sampling() ->
    call(stop).

%% @doc The address and port the `/metrics' endpoint listens on, or `off'.
-spec endpoint() -> #{ip := inet:ip_address(), port := inet:port_number()} | off.
endpoint() ->
    case call(endpoint) of
        {error, not_started} -> off;
        Answer -> Answer
    end.

-spec call(term()) -> term().
call(Request) ->
    try gen_server:call(?MODULE, Request, 30000)
    catch exit:{noproc, _} -> {error, not_started}
    end.

%%% gen_server

-spec init([]) -> {ok, state()}.
init([]) ->
    process_flag(trap_exit, true),
    State = #{rec => reckon_metrics_lib:ensure_recorder(), opts => off, timer => undefined,
              prev => #{}, ticks => 0, keys => #{}, http => undefined, sysmon => undefined},
    case application:get_env(reckon, metrics_sampler, off) of
        off ->
            {ok, State};
        Opts ->
            case reckon_metrics_lib:validate(Opts) of
                {ok, Full} ->
                    case begin_sampling(Full, State) of
                        {ok, On} -> {ok, On};
                        {error, Why} -> warn(Opts, Why), {ok, State}
                    end;
                {error, Why} ->
                    warn(Opts, Why),
                    {ok, State}
            end
    end.

-spec warn(term(), term()) -> ok.
warn(Opts, Why) ->
    logger:warning("reckon: metrics_sampler = ~p is refused (~p); the sampler stays off",
                   [Opts, Why], #{domain => [reckon, metrics]}).

-spec handle_call(term(), gen_server:from(), state()) -> {reply, term(), state()}.
handle_call({start, Opts}, _From, State) ->
    Off = end_sampling(State),
    case begin_sampling(Opts, Off) of
        {ok, On} -> {reply, ok, On};
        {error, _} = Error -> {reply, Error, Off}
    end;
handle_call(stop, _From, State) ->
    {reply, ok, end_sampling(State)};
handle_call(endpoint, _From, #{http := {_Pid, Ip, Port}} = State) ->
    {reply, #{ip => Ip, port => Port}, State};
handle_call(endpoint, _From, State) ->
    {reply, off, State};
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

-spec handle_cast(term(), state()) -> {noreply, state()}.
handle_cast(_Msg, State) ->
    {noreply, State}.

-spec handle_info(term(), state()) -> {noreply, state()}.
handle_info({tick, Ref}, #{timer := Ref} = State) ->
    {noreply, schedule(tick(State))};
handle_info(_Msg, State) ->
    {noreply, State}.

-spec terminate(term(), state()) -> ok.
terminate(_Reason, State) ->
    _ = end_sampling(State),
    ok.

%%% Sampling on and off

%% Starts the `/metrics' endpoint (when `http_port' is set), the file
%% writer (when `file_dir' is set), then the ticks.
-spec begin_sampling(reckon_metrics_lib:options(), state()) ->
    {ok, state()} | {error, {file, binary()} | {http, term()}}.
begin_sampling(#{http_port := undefined} = Opts, State) ->
    begin_file(Opts, State);
begin_sampling(#{http_port := Port, http_ip := Ip} = Opts, State) ->
    case reckon_metrics_http:start(Ip, Port) of
        {ok, Pid, Bound} ->
            case begin_file(Opts, State#{http := {Pid, Ip, Bound}}) of
                {ok, _} = Ok -> Ok;
                Error -> ok = reckon_metrics_http:stop(Pid), Error
            end;
        {error, Why} ->
            {error, {http, Why}}
    end.

-spec begin_file(reckon_metrics_lib:options(), state()) ->
    {ok, state()} | {error, {file, binary()}}.
begin_file(#{file_dir := Dir, file_keep := Keep} = Opts, #{rec := Rec} = State) ->
    Started = case Dir of
                  undefined -> ok;
                  _ -> reckon_nif:metrics_file_start(Rec, #{dir => unicode:characters_to_binary(Dir),
                                                            keep => Keep})
              end,
    case Started of
        ok ->
            _ = erlang:system_flag(scheduler_wall_time, true),
            {ok, schedule(State#{opts := Opts, prev := counters(), ticks := 0,
                                 sysmon := sysmon(Opts)})};
        {error, Text} ->
            {error, {file, unicode:characters_to_binary(Text)}}
    end.

-spec end_sampling(state()) -> state().
end_sampling(#{opts := off} = State) ->
    State;
end_sampling(#{rec := Rec, opts := #{file_dir := Dir}, sysmon := Sysmon} = State) ->
    _ = Sysmon =/= undefined andalso reckon_metrics_sysmon:stop(Sysmon),
    _ = erlang:system_flag(scheduler_wall_time, false),
    _ = Dir =/= undefined andalso reckon_nif:metrics_flush(Rec),
    ok = reckon_nif:metrics_file_stop(Rec),
    _ = case State of
            #{http := {Pid, _, _}} -> reckon_metrics_http:stop(Pid);
            _ -> ok
        end,
    State#{opts := off, timer := undefined, prev := #{}, http := undefined, sysmon := undefined}.

%% The system-monitor handler (none when both thresholds are `off').
-spec sysmon(reckon_metrics_lib:options()) -> pid() | undefined.
sysmon(#{long_gc_ms := off, long_schedule_ms := off}) ->
    undefined;
sysmon(Opts) ->
    case reckon_metrics_sysmon:start_link(maps:with([long_gc_ms, long_schedule_ms], Opts)) of
        {ok, Pid} -> Pid;
        {error, _} -> undefined
    end.

%% The next tick, at the middle of the next wall-clock second.
%% (A tick of an earlier start that is still on its way carries another
%% reference and is ignored.)
-spec schedule(state()) -> state().
schedule(State) ->
    Now = erlang:system_time(millisecond),
    Delay = 1000 - ((Now - 500) rem 1000),
    Ref = make_ref(),
    _ = erlang:send_after(Delay, self(), {tick, Ref}),
    State#{timer := Ref}.

%%% One tick

-spec tick(state()) -> state().
tick(#{rec := Rec, opts := Opts, prev := Prev, ticks := Ticks, keys := Keys} = State) ->
    Start = erlang:monotonic_time(),
    Now = counters(),
    Every = fun(K) -> Ticks rem maps:get(K, Opts) =:= 0 end,
    {Tools, Totals} = reckon_metrics_tools:points(maps:get(tools, Prev, #{})),
    Points = lists:append([memory(), counts(), run_queues(), usage(Prev, Now),
                           deltas(Prev, Now), Tools,
                           if_due(Every(alloc_interval), fun allocators/0),
                           if_due(Every(queue_interval),
                                  fun() -> queues(maps:get(queue_top, Opts)) end)]),
    {Pairs, Keys1} = keyed(Points, Keys, []),
    Refused = reckon_nif:metrics_tick(Rec, Pairs),
    reckon_metrics_tools:telemetry([reckon, metrics, tick],
                                   #{duration => erlang:monotonic_time() - Start,
                                     points => length(Pairs), refused => Refused},
                                   #{tick => Ticks}),
    _ = maps:get(file_dir, Opts) =/= undefined
        andalso (Ticks + 1) rem maps:get(file_interval, Opts) =:= 0
        andalso reckon_nif:metrics_flush(Rec),
    State#{prev := Now#{tools => Totals}, ticks := Ticks + 1, keys := bounded(Keys1)}.

%% The key cache, emptied when it outgrows what the recorder can hold
%% (names of tools that came and went), so it never grows without bound.
-spec bounded(#{name() => binary()}) -> #{name() => binary()}.
bounded(Keys) when map_size(Keys) > ?MAX_CACHED_KEYS -> #{};
bounded(Keys) -> Keys.

-spec if_due(boolean(), fun(() -> [{name(), number()}])) -> [{name(), number()}].
if_due(true, Fun) -> Fun();
if_due(false, _Fun) -> [].

%% Each name's key, cached (term_to_binary once per series).
-spec keyed([{name(), number()}], #{name() => binary()}, [{binary(), number()}]) ->
    {[{binary(), number()}], #{name() => binary()}}.
keyed([], Keys, Acc) ->
    {Acc, Keys};
keyed([{Name, V} | Rest], Keys, Acc) ->
    case Keys of
        #{Name := Key} -> keyed(Rest, Keys, [{Key, V} | Acc]);
        _ ->
            Key = reckon_metrics_lib:key(Name),
            keyed(Rest, Keys#{Name => Key}, [{Key, V} | Acc])
    end.

-spec memory() -> [{name(), non_neg_integer()}].
memory() ->
    [{{memory, Type}, Bytes} || {Type, Bytes} <- erlang:memory()].

-spec counts() -> [{name(), non_neg_integer()}].
counts() ->
    lists:append(
      [[{{count, T}, erlang:system_info(C)}, {{limit, T}, erlang:system_info(L)}]
       || {T, C, L} <- [{process, process_count, process_limit},
                        {port, port_count, port_limit},
                        {atom, atom_count, atom_limit},
                        {ets, ets_count, ets_limit}]]).

-spec run_queues() -> [{name(), non_neg_integer()}].
run_queues() ->
    Lengths = erlang:statistics(run_queue_lengths_all),
    N = erlang:system_info(schedulers),
    {Normal, Dirty} = lists:split(min(N, length(Lengths)), Lengths),
    DirtyNamed = lists:zip(lists:sublist([dirty_cpu, dirty_io], length(Dirty)),
                           lists:sublist(Dirty, 2)),
    [{{run_queue, total}, lists:sum(Lengths)}]
        ++ [{{run_queue, I}, L} || {I, L} <- lists:zip(lists:seq(1, length(Normal)), Normal)]
        ++ [{{run_queue, D}, L} || {D, L} <- DirtyNamed].

%% The counters ticks are differences of.
-spec counters() -> #{atom() => term()}.
counters() ->
    {{input, In}, {output, Out}} = erlang:statistics(io),
    {GCs, Words, _} = erlang:statistics(garbage_collection),
    {Reds, _} = erlang:statistics(reductions),
    {Switches, _} = erlang:statistics(context_switches),
    Wall = case erlang:statistics(scheduler_wall_time) of
               undefined -> [];
               W -> lists:sort(W)
           end,
    #{io_in => In, io_out => Out, gc_count => GCs, gc_words_reclaimed => Words,
      reductions => Reds, context_switches => Switches, wall => Wall}.

-spec deltas(#{atom() => term()}, #{atom() => term()}) -> [{name(), integer()}].
deltas(Prev, Now) ->
    [{K, maps:get(K, Now) - V0}
     || K <- [io_in, io_out, gc_count, gc_words_reclaimed, reductions, context_switches],
        V0 <- [maps:get(K, Prev, undefined)], is_integer(V0)].

%% Usage of each normal scheduler since the previous tick, and their total.
-spec usage(#{atom() => term()}, #{atom() => term()}) -> [{name(), float()}].
usage(#{wall := [_ | _] = W0}, #{wall := [_ | _] = W1}) ->
    N = erlang:system_info(schedulers),
    Pairs = [{I, A1 - A0, T1 - T0}
             || {{I, A0, T0}, {I, A1, T1}} <- lists:zip(lists:sublist(W0, length(W1)),
                                                        lists:sublist(W1, length(W0))),
                I =< N],
    Busy = lists:sum([A || {_, A, _} <- Pairs]),
    Total = lists:sum([T || {_, _, T} <- Pairs]),
    [{{scheduler_usage, total}, ratio(Busy, Total)}
     | [{{scheduler_usage, I}, ratio(A, T)} || {I, A, T} <- Pairs]];
usage(_Prev, _Now) ->
    [].

-spec ratio(integer(), integer()) -> float().
ratio(_, T) when T =< 0 -> 0.0;
ratio(A, T) -> A / T.

%% Carrier and block bytes of each alloc_util allocator, summed over its
%% instances and carrier kinds.
-spec allocators() -> [{name(), non_neg_integer()}].
allocators() ->
    lists:append(
      [begin
           {Carriers, Blocks} = alloc_sizes(erlang:system_info({allocator_sizes, A})),
           [{{allocator, A, carriers_size}, Carriers}, {{allocator, A, blocks_size}, Blocks}]
       end || A <- erlang:system_info(alloc_util_allocators)]).

-spec alloc_sizes(term()) -> {non_neg_integer(), non_neg_integer()}.
alloc_sizes(Instances) when is_list(Instances) ->
    lists:foldl(fun({instance, _, Kinds}, Acc) when is_list(Kinds) ->
                        lists:foldl(fun kind_sizes/2, Acc, Kinds);
                   (_, Acc) -> Acc
                end, {0, 0}, Instances);
alloc_sizes(_) ->
    {0, 0}.

-spec kind_sizes(term(), {non_neg_integer(), non_neg_integer()}) ->
    {non_neg_integer(), non_neg_integer()}.
kind_sizes({_Kind, Props}, {C, B}) when is_list(Props) ->
    Carriers = case lists:keyfind(carriers_size, 1, Props) of
                   T when is_tuple(T), tuple_size(T) >= 2 -> element(2, T);
                   _ -> 0
               end,
    Blocks = case lists:keyfind(blocks, 1, Props) of
                 {blocks, Types} when is_list(Types) ->
                     lists:sum([element(2, S) || {_, Sizes} <- Types, is_list(Sizes),
                                                 S <- Sizes, is_tuple(S), tuple_size(S) >= 2,
                                                 element(1, S) =:= size]);
                 _ ->
                     case lists:keyfind(blocks_size, 1, Props) of
                         T2 when is_tuple(T2), tuple_size(T2) >= 2 -> element(2, T2);
                         _ -> 0
                     end
             end,
    {C + Carriers, B + Blocks};
kind_sizes(_, Acc) ->
    Acc.

%% The `Top' longest message queues (a full scan), by rank. The scan is
%% one `process_info/2' per process and keeps only a queue longer than the
%% shortest kept (most queues are empty), so it builds nothing per process:
%% measured with 100 000 processes, the cheapest of the ways tried (this
%% loop, reckon_scan's chunks into the library's top-N, a list of every
%% length sorted).
-spec queues(pos_integer()) -> [{name(), non_neg_integer()}].
queues(Top) ->
    Longest = longest(erlang:processes(), Top, 0, []),
    Padded = Longest ++ lists:duplicate(Top - length(Longest), 0),
    [{{message_queue, Rank}, Len} || {Rank, Len} <- lists:zip(lists:seq(1, Top), Padded)].

%% `Kept': the longest queues so far, longest first, at most `Top'; `Low':
%% the length a queue must exceed to be kept.
-spec longest([pid()], pos_integer(), non_neg_integer(), [pos_integer()]) -> [pos_integer()].
longest([], _Top, _Low, Kept) ->
    Kept;
longest([Pid | Pids], Top, Low, Kept) ->
    case erlang:process_info(Pid, message_queue_len) of
        {message_queue_len, Len} when Len > Low ->
            Kept1 = lists:sublist(lists:reverse(lists:sort([Len | Kept])), Top),
            Low1 = case length(Kept1) of
                       Top -> lists:last(Kept1);
                       _ -> 0
                   end,
            longest(Pids, Top, Low1, Kept1);
        _ ->
            longest(Pids, Top, Low, Kept)
    end.

%% Release upgrades and downgrades (`{update, reckon_metrics_sampler, {advanced, _}}' in an
%% appup): the state has the same shape in every version so far, and is kept
%% as it is in both directions (`OldVsn' is `{down, Vsn}' on the way down).
-spec code_change(term(), state(), term()) -> {ok, state()}.
code_change(_OldVsn, State, _Extra) ->
    {ok, State}.
