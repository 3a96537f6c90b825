%% @private
%% @doc What each view of {@link reckon_top} reads from the node, for
%% `reckon_top_render' to draw. Windowed views take the length of the
%% interval to answer (their figures are over it): processes by reductions
%% (`reckon:proc_window/3'), ports (`reckon:inet_window/3'), home
%% (`reckon:scheduler_usage/1' and the reductions over the interval) and
%% sluice (two readings of its tools' counters). The others read at once.
%%
%% Processes and ports are ranked by reckon's streamed scans (a bounded
%% heap in `reckon_nif', never a sort of every process), in processes of
%% their own; the details (memory, queue, reductions) are read for the
%% winners only.
-module(reckon_top_gather).

-export([gather/2, windowed/2]).

-type ctx() :: #{interval := pos_integer(), sort := reckon_top:sort(), rows := pos_integer()}.
-export_type([ctx/0]).

%% How far back the home view's sparklines look, in seconds.
-define(HISTORY_S, 300).
-define(ALLOC_ROWS, 8).

%% @doc Whether a reading of `View' takes the interval.
-spec windowed(reckon_top_render:view(), reckon_top:sort()) -> boolean().
windowed(processes, reductions) -> true;
windowed(View, _Sort) -> lists:member(View, [home, ports, sluice]).

%% @doc The data of `View' (see `reckon_top_views' for what it draws).
-spec gather(reckon_top_render:view(), ctx()) -> map() | not_running.
gather(home, #{interval := Ms}) -> home(Ms);
gather(processes, #{sort := Sort, rows := N, interval := Ms}) -> processes(Sort, N, Ms);
gather(ports, #{rows := N, interval := Ms}) -> ports(N, Ms);
gather(ets, #{rows := N}) -> ets(N);
gather(alloc, _Ctx) -> alloc();
gather(sluice, #{interval := Ms}) -> sluice(Ms);
gather({process, Pid}, _Ctx) -> #{info => reckon:info(Pid)}.

%%% Home

-spec home(pos_integer()) -> map().
home(Ms) ->
    {Reds0, _} = erlang:statistics(reductions),
    Usage = reckon:scheduler_usage(Ms),
    {Reds1, _} = erlang:statistics(reductions),
    Lengths = erlang:statistics(run_queue_lengths_all),
    Scheds = erlang:system_info(schedulers),
    {Normal, [Cpu, Io]} = lists:split(Scheds, Lengths),
    #{node => node(),
      otp => erlang:system_info(otp_release),
      erts => erlang:system_info(version),
      uptime => element(1, erlang:statistics(wall_clock)),
      schedulers => {Scheds, erlang:system_info(schedulers_online)},
      memory => erlang:memory(),
      limits => [{processes, erlang:system_info(process_count), erlang:system_info(process_limit)},
                 {ports, erlang:system_info(port_count), erlang:system_info(port_limit)},
                 {atoms, erlang:system_info(atom_count), erlang:system_info(atom_limit)},
                 {ets, erlang:system_info(ets_count), erlang:system_info(ets_limit)}],
      run_queues => #{total => lists:sum(Lengths), normal => Normal, dirty_cpu => Cpu,
                      dirty_io => Io},
      reductions => (Reds1 - Reds0) * 1000 / Ms,
      scheduler_usage => Usage,
      history => history()}.

%% The recorder's last minutes of a few series, or `not_running'.
-spec history() -> not_running | {pos_integer(), [{string(), bytes | count | ratio, [float()]}]}.
history() ->
    Series = [{"memory total", bytes, {memory, total}},
              {"run queue", count, {run_queue, total}},
              {"reductions/s", count, reductions},
              {"scheduler use", ratio, {scheduler_usage, total}}],
    Lines = [{Label, Kind, [Mean || #{mean := Mean} <- reckon_metrics:history(Key, ?HISTORY_S)]}
             || {Label, Kind, Key} <- Series],
    case [V || {_, _, [_ | _] = V} <- Lines] of
        [] -> not_running;
        _ -> {?HISTORY_S, Lines}
    end.

%%% Processes

-spec processes(reckon_top:sort(), pos_integer(), pos_integer()) -> map().
processes(Sort, N, Ms) ->
    Top = case Sort of
              reductions -> reckon:proc_window(reductions, N, Ms);
              _ -> reckon:proc_count(Sort, N)
          end,
    #{count => erlang:system_info(process_count),
      rows => [Row || {Pid, V, Details} <- Top, Row <- [process_row(Sort, Pid, V, Details)],
                      Row =/= gone]}.

-spec process_row(reckon_top:sort(), pid(), integer(), list()) -> map() | gone.
process_row(Sort, Pid, V, Details) ->
    case erlang:process_info(Pid, [memory, message_queue_len, reductions]) of
        undefined ->
            gone;
        Info ->
            Row = maps:from_list(Info),
            Name = case [A || A <- Details, is_atom(A)] of
                       [A | _] -> A;
                       [] -> undefined
                   end,
            Row#{pid => Pid, value => V, name => Name, Sort => V,
                 current_function => proplists:get_value(current_function, Details),
                 initial_call => proplists:get_value(initial_call, Details)}
    end.

%%% Ports

-spec ports(pos_integer(), pos_integer()) -> map().
ports(N, Ms) ->
    Top = reckon:inet_window(oct, N, Ms),
    #{count => erlang:system_info(port_count),
      types => reckon:port_types(),
      rows => [port_row(Port, V, Stats) || {Port, V, Stats} <- Top]}.

-spec port_row(port(), integer(), [{atom(), integer()}]) -> map().
port_row(Port, V, Stats) ->
    Type = case erlang:port_info(Port, name) of
               {name, Name} -> Name;
               undefined -> "-"
           end,
    Peer = try inet:peername(Port) of
               {ok, P} -> P;
               _ -> undefined
           catch _:_ -> undefined
           end,
    Owner = case erlang:port_info(Port, connected) of
                {connected, Pid} -> Pid;
                undefined -> undefined
            end,
    Row = maps:from_list(Stats),
    Row#{port => Port, value => V, type => Type, peer => Peer, owner => Owner}.

%%% ETS

-spec ets(pos_integer()) -> map().
ets(N) ->
    Word = erlang:system_info(wordsize),
    Tables = [T || Tab <- ets:all(), T <- [table(Tab, Word)], T =/= gone],
    Largest = lists:sublist(lists:reverse(lists:sort([{Mem, T} || #{memory := Mem} = T <- Tables])),
                            N),
    #{count => length(Tables),
      memory => lists:sum([M || #{memory := M} <- Tables]),
      rows => [T || {_, T} <- Largest]}.

-spec table(ets:table(), pos_integer()) -> map() | gone.
table(Tab, Word) ->
    Keys = [name, memory, size, type, protection, owner, named_table],
    case [ets:info(Tab, K) || K <- Keys] of
        [Name, Mem, Size, Type, Prot, Owner, Named] when is_integer(Mem) ->
            OwnerName = case erlang:process_info(Owner, registered_name) of
                            {registered_name, R} -> R;
                            _ -> undefined
                        end,
            #{name => case Named of
                          true -> Name;
                          false -> Tab
                      end,
              memory => Mem * Word, size => Size, type => Type, protection => Prot,
              owner => Owner, owner_name => OwnerName};
        _ ->
            gone
    end.

%%% Allocators

-spec alloc() -> map().
alloc() ->
    F = unit_factor(),
    Frag = [frag(A, I, maps:from_list(Props), F)
            || {{A, I}, Props} <- lists:sublist(reckon_alloc:fragmentation(current), ?ALLOC_ROWS)],
    #{used => reckon_alloc:memory(used) * F,
      allocated => reckon_alloc:memory(allocated) * F,
      usage => reckon_alloc:memory(usage),
      types => lists:reverse(lists:keysort(2, [{A, B * F}
                                              || {A, B} <- reckon_alloc:memory(allocated_types)])),
      frag => Frag,
      cache => [{I, proplists:get_value(hit_rate, Props, 0.0)}
                || {{instance, I}, Props} <- reckon_alloc:cache_hit_rates()]}.

-spec frag(atom(), non_neg_integer(), map(), pos_integer()) -> map().
frag(A, I, P, F) ->
    Carriers = fun(K) -> maps:get(K, P, 0) * F end,
    Used = fun(K) -> maps:get(K, P, 0) * F end,
    #{alloc => A, instance => I,
      mbcs_usage => maps:get(mbcs_usage, P, 1.0), sbcs_usage => maps:get(sbcs_usage, P, 1.0),
      mbcs_carriers => Carriers(mbcs_carriers_size),
      wasted => max(0, Carriers(mbcs_carriers_size) - Used(mbcs_block_size))
                + max(0, Carriers(sbcs_carriers_size) - Used(sbcs_block_size))}.

%% reckon_alloc answers in the unit set with `reckon_alloc:set_unit/1';
%% the view shows bytes.
-spec unit_factor() -> pos_integer().
unit_factor() ->
    try reckon_keeper:get({reckon_alloc, unit}, byte) of
        kilobyte -> 1024;
        megabyte -> 1024 * 1024;
        gigabyte -> 1024 * 1024 * 1024;
        _ -> 1
    catch _:_ -> 1
    end.

%%% Sluice

-spec sluice(pos_integer()) -> map() | not_running.
sluice(Ms) ->
    case whereis(sluice_sup) of
        undefined ->
            not_running;
        _ ->
            Before = maps:from_list([{{K, Id}, C}
                                     || #{kind := K, id := Id, counters := C}
                                            <- reckon_metrics_tools:tools()]),
            timer:sleep(Ms),
            #{tools => [T#{deltas => deltas(maps:get({K, Id}, Before, #{}), C)}
                        || #{kind := K, id := Id, counters := C} = T
                               <- reckon_metrics_tools:tools()]}
    end.

%% Each counter's increase since `Before' (all of it for a tool first seen).
-spec deltas(map(), map()) -> map().
deltas(Before, After) ->
    maps:map(fun(C, V) -> V - maps:get(C, Before, 0) end, After).
