%% @private
%% @doc The listing behind `sluice:tools/0,1': every live tool with its
%% counters, read from the NIF library and sluice's name tables, without a
%% message to any process.
%%
%% Valves come from their name table (every valve is named) and one
%% `drop_counters/1' call each; boxes, buffers of buckets, locks,
%% concurrency limits, rate limiters and breakers from one dirty NIF call
%% (`tools_list/1'), which walks the library's weak registries of objects
%% (so anonymous ones are there too) and its breaker names. Box and lock
%% names are joined from their tables by id. A lock object that is in no
%% row of `sluice_locks' is a concurrency limit, or a closed lock (no slot
%% in use) which is left out, as are closed boxes.
-module(sluice_tools).

-export([list/1]).

-include("sluice_drop.hrl").

%% `sluice_box:info/1''s drop reasons, and the counter each becomes.
-define(DROPS, [{overflow, dropped_overflow}, {resize, dropped_resize},
                {filter, dropped_filter}, {closed, dropped_closed},
                {expired, dropped_expired}, {early, dropped_early}]).

%% @doc At most `Limit' tools, valves first.
-spec list(non_neg_integer()) -> [sluice:tool()].
list(Limit) ->
    Valves = valves(Limit),
    Rows = sluice_nif:tools_list(Limit - length(Valves)),
    BoxNames = by_id(sluice_box_names,
                     fun({Name, Box, _Keeper}) -> {sluice_nif:box_id(Box), Name} end),
    Locks = by_id(sluice_locks,
                  fun({Ref, _Kind, Opts, _Sup}) ->
                          {sluice_nif:lock_id(Ref), maps:get(name, Opts, undefined)}
                  end),
    Valves ++ [T || Row <- Rows, T <- tool(Row, BoxNames, Locks)].

%% `#{Id => Name}' from the rows of a name table (none when sluice is not
%% running: then its tables do not exist).
-spec by_id(atom(), fun((tuple()) -> {pos_integer() | false, term()})) -> #{term() => term()}.
by_id(Table, Fun) ->
    case ets:whereis(Table) of
        undefined -> #{};
        _ -> maps:from_list([Fun(Row) || Row <- ets:tab2list(Table)])
    end.

-spec valves(non_neg_integer()) -> [sluice:tool()].
valves(Limit) ->
    case ets:whereis(sluice_drop_valves) of
        undefined ->
            [];
        _ ->
            Rows = ets:tab2list(sluice_drop_valves),
            [T || {_, Valve, _, _} <- lists:sublist(Rows, Limit), T <- valve(Valve)]
    end.

-spec valve(#sluice_valve{}) -> [sluice:tool()].
valve(#sluice_valve{ref = Ref, name = Name, priorities = Prios, default = Default}) ->
    case sluice_nif:drop_counters(Ref) of
        {error, not_found} ->
            [];
        Rows ->
            Row = fun(I) -> lists:nth(I + 1, Rows) end,
            PerPrio = maps:map(fun(_, I) ->
                                       #{rate := R, factor := F, kept := K, dropped := D} = Row(I),
                                       #{kept => K, dropped => D, rate => R,
                                         effective_rate => R * F}
                               end, Prios),
            Kept = lists:sum([K || #{kept := K} <- Rows]),
            Dropped = lists:sum([D || #{dropped := D} <- Rows]),
            #{rate := Rate, factor := Factor} = Row(Default),
            [#{kind => drop, id => sluice_nif:drop_id(Ref), name => Name,
               counters => #{asked => Kept + Dropped, kept => Kept, dropped => Dropped},
               gauges => #{rate => Rate, effective_rate => Rate * Factor,
                           priorities => map_size(Prios)},
               priorities => PerPrio}]
    end.

%% One row of the NIF's walk as a tool (none for a closed lock).
-spec tool(sluice_nif:tool_row(), #{term() => term()}, #{term() => term()}) -> [sluice:tool()].
tool(#{kind := box, id := Id, info := Info, hist := Hist}, BoxNames, _Locks) ->
    #{type := Type, posted := Posted, delivered := Delivered, dropped := Dropped, size := Size,
      max := Max, peak := Peak, bytes := Bytes, max_bytes := MaxBytes} = Info,
    Counters = maps:from_list([{Key, maps:get(R, Dropped)} || {R, Key} <- ?DROPS]),
    Budget = case MaxBytes of infinity -> #{}; _ -> #{max_bytes => MaxBytes} end,
    [#{kind => case Type of buckets -> buckets; _ -> box end,
       id => Id, name => maps:get(Id, BoxNames, undefined),
       counters => Counters#{posted => Posted, delivered => Delivered},
       gauges => Budget#{size => Size, max => Max, peak => Peak, bytes => Bytes},
       histograms => #{sojourn => Hist}}];
tool(#{kind := lock, id := Id, info := Info}, _BoxNames, Locks) ->
    #{checkouts := Checkouts, busy := Busy, deaths := Deaths, in_use := InUse, peak := Peak,
      slots := Slots, capacity := Capacity} = Info,
    case Locks of
        #{Id := Name} ->
            [#{kind => lock, id => Id, name => Name,
               counters => #{checkouts => Checkouts, busy => Busy, deaths => Deaths},
               gauges => #{in_use => InUse, peak => Peak, slots => Slots,
                           capacity => Capacity}}];
        #{} when Slots =:= 0 ->
            [];
        #{} ->
            [#{kind => limit, id => Id, name => undefined,
               counters => #{acquired => Checkouts, refused => Busy, deaths => Deaths},
               gauges => #{held => InUse, peak => Peak, max => Slots,
                           max_holders => Capacity}}]
    end;
tool(#{kind := limiter, id := Id, info := Info}, _BoxNames, _Locks) ->
    #{allowed := Allowed, refused := Refused, evicted := Evicted, keys := Keys,
      overrides := Overrides} = Info,
    [#{kind => limit, id => Id, name => undefined,
       counters => #{allowed => Allowed, refused => Refused, evicted => Evicted},
       gauges => #{keys => Keys, overrides => Overrides}}];
tool(#{kind := breaker, id := Id, name := Name, info := Info, hist := Hist}, _BoxNames,
     _Locks) ->
    #{state := State} = Info,
    [#{kind => breaker, id => Id, name => Name,
       counters => maps:with([asks, ok, blown, injected, melts, trips, probes], Info),
       gauges => #{state => state_gauge(State)},
       histograms => #{run => Hist}}].

%% A breaker's state as a level: 0 closed, 1 open, 2 half-open, 3 disabled.
-spec state_gauge(closed | open | half_open | disabled) -> 0..3.
state_gauge(closed) -> 0;
state_gauge(open) -> 1;
state_gauge(half_open) -> 2;
state_gauge(disabled) -> 3.
