%% @private
%% @doc The body lines of each view of {@link reckon_top}, from the data
%% `reckon_top_gather' reads (see its types for each view's map). Pure
%% functions: a test builds the data and reads the lines.
-module(reckon_top_views).

-export([lines/3, breaker_state/1]).

-import(reckon_top_render, [pad/2, lpad/2, bytes/1, num/1, pct/1, mark/2, spark/3, wrap/3]).

%% A count past this share of its limit is shown in red (or marked `!').
-define(HOT, 0.85).

%% @doc The body of view `View' (lines between the header and the keys).
-spec lines(reckon_top_render:view(), reckon_top_render:snapshot(),
            reckon_top_render:opts()) -> [reckon_top_render:line()].
lines(home, #{data := D}, Opts) -> home(D, Opts);
lines(processes, #{data := D, sort := Sort, interval := Ms}, Opts) -> processes(D, Sort, Ms, Opts);
lines(ports, #{data := D, interval := Ms}, Opts) -> ports(D, Ms, Opts);
lines(ets, #{data := D}, Opts) -> ets(D, Opts);
lines(alloc, #{data := D}, Opts) -> alloc(D, Opts);
lines(sluice, #{data := D, interval := Ms}, Opts) -> sluice(D, Ms, Opts);
lines({process, Pid}, #{data := D}, Opts) -> process(Pid, D, Opts).

%%% Home

-spec home(map(), reckon_top_render:opts()) -> [reckon_top_render:line()].
home(#{otp := Otp, erts := Erts, uptime := Up, schedulers := {Scheds, Online},
       memory := Memory, limits := Limits, run_queues := RunQ} = D, #{width := W} = Opts) ->
    [[],
     [{bold, " node "}, atom_to_list(maps:get(node, D, node())), "   OTP ", Otp, " (erts ", Erts,
      ")   uptime ", reckon_top_render:duration(Up), "   schedulers ", integer_to_list(Scheds),
      " (", integer_to_list(Online), " online)"],
     []]
        ++ memory_lines(Memory, W)
        ++ [[], [{bold, pad(" counts", 12) ++ lpad("used", 12) ++ lpad("limit", 14)
                  ++ lpad("share", 9)}]]
        ++ [limit_line(L) || L <- Limits]
        ++ [[], run_queue_line(RunQ, maps:get(reductions, D, undefined))]
        ++ usage_lines(maps:get(scheduler_usage, D, undefined), Scheds, W)
        ++ [[] | history_lines(maps:get(history, D, not_running), Opts)].

-spec memory_lines([{atom(), non_neg_integer()}], pos_integer()) -> [reckon_top_render:line()].
memory_lines(Memory, W) ->
    Order = [total, processes, processes_used, system, atom, atom_used, binary, code, ets],
    Items = [atom_to_list(K) ++ " " ++ bytes(V)
             || K <- Order, {K0, V} <- Memory, K0 =:= K],
    [First | Rest] = wrap(Items, W - 9, 9) ++ [""],
    [[{bold, " memory  "}, First] | [[L] || L <- Rest, L =/= ""]].

-spec limit_line({atom(), non_neg_integer(), pos_integer()}) -> reckon_top_render:line().
limit_line({Name, Count, Limit}) ->
    Share = Count / max(1, Limit),
    Hot = Share > ?HOT,
    [" " ++ pad(atom_to_list(Name), 11), lpad(integer_to_list(Count), 12),
     lpad(integer_to_list(Limit), 14), mark(Hot, lpad(pct(Share), 9)), mark(Hot, hot(Hot))].

-spec hot(boolean()) -> string().
hot(true) -> " ! past 85%";
hot(false) -> "".

-spec run_queue_line(map(), number() | undefined) -> reckon_top_render:line().
run_queue_line(#{total := Total, normal := Normal, dirty_cpu := Cpu, dirty_io := Io}, Reds) ->
    [{bold, " run queue "}, integer_to_list(Total), "  (schedulers ",
     string:join([integer_to_list(Q) || Q <- Normal], " "), ", dirty cpu ",
     integer_to_list(Cpu), ", dirty io ", integer_to_list(Io), ")",
     case Reds of
         undefined -> "";
         _ -> "   reductions " ++ num(Reds) ++ "/s"
     end].

-spec usage_lines([{pos_integer(), float()}] | undefined, pos_integer(), pos_integer()) ->
    [reckon_top_render:line()].
usage_lines(undefined, _Scheds, _W) ->
    [[{bold, " scheduler use "}, "(after the first interval)"]];
usage_lines(Usage, Scheds, W) ->
    Cells = [lpad(sched_id(Id, Scheds), 4) ++ " " ++ bar(U, 10) ++ lpad(pct(U), 7)
             || {Id, U} <- Usage],
    [[{bold, " scheduler use over the interval"}, " (dN: dirty CPU scheduler N)"]
     | [[L] || L <- wrap(Cells, W - 2, 0)]].

-spec sched_id(pos_integer(), pos_integer()) -> string().
sched_id(Id, Scheds) when Id > Scheds -> "d" ++ integer_to_list(Id - Scheds);
sched_id(Id, _Scheds) -> integer_to_list(Id).

-spec bar(float(), pos_integer()) -> string().
bar(U, N) ->
    Full = min(N, round(U * N)),
    "[" ++ lists:duplicate(Full, $#) ++ lists:duplicate(N - Full, $\s) ++ "]".

-spec history_lines(not_running | [{string(), bytes | count | ratio, [number()]}],
                    reckon_top_render:opts()) -> [reckon_top_render:line()].
history_lines(not_running, _Opts) ->
    [[{bold, " history "}, "recorder not running (reckon_metrics:start(#{}) records the last"
      " hour)"]];
history_lines({Window, Series}, #{width := W, unicode := Unicode}) ->
    [[{bold, " history, last " ++ integer_to_list(Window div 60) ++ " min"}]
     | [history_line(S, W, Unicode) || S <- Series]].

-spec history_line({string(), bytes | count | ratio, [number()]}, pos_integer(), boolean()) ->
    reckon_top_render:line().
history_line({Label, _Kind, []}, _W, _Unicode) ->
    ["  " ++ pad(Label, 16), {dim, "no points yet"}];
history_line({Label, Kind, Values}, W, Unicode) ->
    Right = "now " ++ value(Kind, lists:last(Values)) ++ "  max " ++ value(Kind, lists:max(Values)),
    SparkW = max(10, W - 20 - length(Right)),
    ["  " ++ pad(Label, 16), {green, pad(spark(Values, SparkW, Unicode), SparkW)}, " ", Right].

-spec value(bytes | count | ratio, number()) -> string().
value(bytes, V) -> bytes(V);
value(count, V) -> num(V);
value(ratio, V) -> pct(V).

%%% Processes

-spec processes(map(), reckon_top:sort(), pos_integer(), reckon_top_render:opts()) ->
    [reckon_top_render:line()].
processes(#{count := Count, rows := Rows}, Sort, Ms, #{width := W}) ->
    Reds = case Sort of
               reductions -> "REDS/" ++ integer_to_list(max(1, Ms div 1000)) ++ "s";
               _ -> "REDS"
           end,
    Head = [{bold, lpad("#", 3) ++ " " ++ pad("PID", 14) ++ pad("NAME OR INITIAL CALL", 30)
             ++ lpad(sorted(reductions, Sort) ++ Reds, 11) ++ lpad(sorted(memory, Sort) ++ "MEMORY", 11)
             ++ lpad(sorted(message_queue_len, Sort) ++ "MSGQ", 8) ++ "  CURRENT FUNCTION"}],
    Note = case Sort of
               reductions -> "top by reductions over the last interval (alive at both ends)";
               memory -> "top by memory now";
               message_queue_len -> "top by message queue length now"
           end,
    [[" " ++ integer_to_list(Count) ++ " processes; " ++ Note], [], Head
     | [process_row(I, Row, W) || {I, Row} <- lists:zip(lists:seq(1, length(Rows)), Rows)]].

-spec sorted(reckon_top:sort(), reckon_top:sort()) -> string().
sorted(Sort, Sort) -> "*";
sorted(_, _) -> "".

-spec process_row(pos_integer(), map(), pos_integer()) -> reckon_top_render:line().
process_row(I, #{pid := Pid} = Row, W) ->
    Name = case maps:get(name, Row, undefined) of
               undefined -> mfa(maps:get(initial_call, Row, undefined));
               N -> reckon_top_render:term(N, 29)
           end,
    Fixed = 3 + 1 + 14 + 30 + 11 + 11 + 8 + 2,
    [lpad(integer_to_list(I), 3) ++ " " ++ pad(pid_to_list(Pid), 14) ++ pad(Name, 30)
     ++ lpad(count(maps:get(reductions, Row, undefined)), 11)
     ++ lpad(sz(maps:get(memory, Row, undefined)), 11)
     ++ lpad(count(maps:get(message_queue_len, Row, undefined)), 8) ++ "  "
     ++ pad(mfa(maps:get(current_function, Row, undefined)), max(1, W - Fixed))].

-spec mfa(term()) -> string().
mfa({M, F, A}) when is_atom(M), is_atom(F), is_integer(A) ->
    atom_to_list(M) ++ ":" ++ atom_to_list(F) ++ "/" ++ integer_to_list(A);
mfa(undefined) -> "-";
mfa(Other) -> reckon_top_render:term(Other, 29).

-spec count(number() | undefined) -> string().
count(undefined) -> "-";
count(N) -> num(N).

-spec sz(number() | undefined) -> string().
sz(undefined) -> "-";
sz(N) -> bytes(N).

%%% Process details

-spec process(pid(), map(), reckon_top_render:opts()) -> [reckon_top_render:line()].
process(Pid, #{info := undefined}, _Opts) ->
    [[], [" " ++ pid_to_list(Pid) ++ " is gone"]];
process(_Pid, #{info := Info}, #{width := W}) ->
    lists:append(
      [[[], [{bold, " " ++ atom_to_list(Type)}]]
       ++ [["   " ++ pad(atom_to_list(K), 22) ++ reckon_top_render:term(V, max(10, W - 26))]
           || {K, V} <- Pairs]
       || {Type, Pairs} <- Info]).

%%% Ports

-spec ports(map(), pos_integer(), reckon_top_render:opts()) -> [reckon_top_render:line()].
ports(#{count := Count, types := Types, rows := Rows}, Ms, #{width := W}) ->
    TypeWords = [T ++ " " ++ integer_to_list(N) || {T, N} <- Types],
    [[" " ++ integer_to_list(Count) ++ " ports; inet ports top by bytes over the last "
      ++ integer_to_list(max(1, Ms div 1000)) ++ " s"]]
        ++ [[L] || L <- wrap(["types:" | TypeWords], W - 2, 8)]
        ++ [[], [{bold, lpad("#", 3) ++ " " ++ pad("PORT", 16) ++ pad("TYPE", 10)
                  ++ lpad("BYTES", 10) ++ lpad("RECV", 10) ++ lpad("SENT", 10) ++ "  "
                  ++ pad("PEER", 22) ++ "OWNER"}]]
        ++ [port_row(I, R) || {I, R} <- lists:zip(lists:seq(1, length(Rows)), Rows)].

-spec port_row(pos_integer(), map()) -> reckon_top_render:line().
port_row(I, #{port := Port, value := V} = R) ->
    [lpad(integer_to_list(I), 3) ++ " " ++ pad(erlang:port_to_list(Port), 16)
     ++ pad(maps:get(type, R, "-"), 10) ++ lpad(bytes(V), 10)
     ++ lpad(sz(maps:get(recv_oct, R, undefined)), 10)
     ++ lpad(sz(maps:get(send_oct, R, undefined)), 10) ++ "  "
     ++ pad(peer(maps:get(peer, R, undefined)), 22) ++ owner(maps:get(owner, R, undefined))].

-spec peer(term()) -> string().
peer({Ip, Port}) when is_tuple(Ip), is_integer(Port) -> inet:ntoa(Ip) ++ ":" ++ integer_to_list(Port);
peer(_) -> "-".

-spec owner(term()) -> string().
owner(Pid) when is_pid(Pid) -> pid_to_list(Pid);
owner(_) -> "-".

%%% ETS

-spec ets(map(), reckon_top_render:opts()) -> [reckon_top_render:line()].
ets(#{count := Count, memory := Total, rows := Rows}, #{width := W}) ->
    [[" " ++ integer_to_list(Count) ++ " tables, " ++ bytes(Total) ++ "; largest by memory"], [],
     [{bold, lpad("#", 3) ++ " " ++ pad("TABLE", 28) ++ lpad("MEMORY", 11) ++ lpad("SIZE", 10)
       ++ "  " ++ pad("TYPE", 12) ++ pad("ACCESS", 10) ++ "OWNER"}]
     | [ets_row(I, R, W) || {I, R} <- lists:zip(lists:seq(1, length(Rows)), Rows)]].

-spec ets_row(pos_integer(), map(), pos_integer()) -> reckon_top_render:line().
ets_row(I, #{name := Name, memory := Mem, size := Size, type := Type, protection := Prot,
             owner := Owner} = R, W) ->
    OwnerName = case maps:get(owner_name, R, undefined) of
                    undefined -> owner(Owner);
                    N -> owner(Owner) ++ " " ++ atom_to_list(N)
                end,
    [lpad(integer_to_list(I), 3) ++ " " ++ pad(reckon_top_render:term(Name, 27), 28)
     ++ lpad(bytes(Mem), 11) ++ lpad(num(Size), 10) ++ "  " ++ pad(atom_to_list(Type), 12)
     ++ pad(atom_to_list(Prot), 10) ++ pad(OwnerName, max(1, W - 76))].

%%% Allocators

-spec alloc(map(), reckon_top_render:opts()) -> [reckon_top_render:line()].
alloc(#{used := Used, allocated := Alloc, usage := Usage, types := Types, frag := Frag,
        cache := Cache}, #{width := W}) ->
    [[" allocated " ++ bytes(Alloc) ++ "   used " ++ bytes(Used) ++ "   usage ",
      mark(Usage < 0.5, pct(Usage))]]
        ++ [[L] || L <- wrap(["by type:" | [short(A) ++ " " ++ bytes(B) || {A, B} <- Types]],
                             W - 2, 9)]
        ++ [[], [{bold, lpad("#", 3) ++ " " ++ pad("INSTANCE", 20) ++ lpad("MBCS USE", 10)
                  ++ lpad("SBCS USE", 10) ++ lpad("MBCS CARRIERS", 15) ++ lpad("WASTED", 12)}]]
        ++ [frag_row(I, F) || {I, F} <- lists:zip(lists:seq(1, length(Frag)), Frag)]
        ++ [[] | [[L] || L <- wrap(["mseg cache hit rates:"
                                    | [integer_to_list(N) ++ " " ++ pct(R) || {N, R} <- Cache]],
                                   W - 2, 4)]].

-spec short(atom()) -> string().
short(Alloc) ->
    lists:flatten(string:replace(atom_to_list(Alloc), "_alloc", "", trailing)).

-spec frag_row(pos_integer(), map()) -> reckon_top_render:line().
frag_row(I, #{alloc := A, instance := N, mbcs_usage := MU, sbcs_usage := SU,
              mbcs_carriers := MC, wasted := Wasted}) ->
    [lpad(integer_to_list(I), 3) ++ " " ++ pad(atom_to_list(A) ++ " " ++ integer_to_list(N), 20),
     mark(MU < 0.5, lpad(pct(MU), 10)), lpad(pct(SU), 10) ++ lpad(bytes(MC), 15)
     ++ lpad(bytes(Wasted), 12)].

%%% Sluice

-spec sluice(not_running | map(), pos_integer(), reckon_top_render:opts()) ->
    [reckon_top_render:line()].
sluice(not_running, _Ms, _Opts) ->
    [[], [" sluice is not running on this node"]];
sluice(#{tools := []}, _Ms, _Opts) ->
    [[], [" sluice runs, with no live tool"]];
sluice(#{tools := Tools}, Ms, #{width := W}) ->
    Kinds = lists:usort([K || #{kind := K} <- Tools]),
    ByKind = [atom_to_list(K) ++ " " ++ integer_to_list(length([T || #{kind := K0} = T <- Tools,
                                                                  K0 =:= K]))
              || K <- Kinds],
    Blown = length([T || #{kind := breaker} = T <- Tools, breaker_state(T) =:= "BLOWN"]),
    Dropped = lists:sum([D || T <- Tools, {C, D} <- maps:to_list(maps:get(deltas, T, #{})),
                              is_drop(C)]),
    Secs = integer_to_list(max(1, Ms div 1000)),
    [[" " ++ integer_to_list(length(Tools)) ++ " tools (" ++ string:join(ByKind, ", ") ++ ")   ",
      mark(Blown > 0, integer_to_list(Blown) ++ " breakers blown"),
      "   dropped/refused over " ++ Secs ++ " s: ", mark(Dropped > 0, num(Dropped))],
     [],
     [{bold, pad("KIND", 9) ++ pad("NAME", 22) ++ pad("STATE, LEVELS", 30)
       ++ "| OVER " ++ Secs ++ " s"}]
     | lists:append([tool_lines(T, W) || T <- Tools])].

-spec tool_lines(map(), pos_integer()) -> [reckon_top_render:line()].
tool_lines(#{kind := Kind, id := Id} = T, W) ->
    Name = case maps:get(name, T, undefined) of
               undefined -> "#" ++ integer_to_list(Id);
               N -> reckon_top_render:term(N, 20)
           end,
    Gauges = maps:get(gauges, T, #{}),
    {State, Levels} = case Kind of
                          breaker -> {breaker_state(T), maps:remove(state, Gauges)};
                          _ -> {"", Gauges}
                      end,
    LevelWords = [atom_to_list(K) ++ " " ++ num(V)
                  || {K, V} <- lists:sort(maps:to_list(Levels)), is_number(V)],
    Deltas = lists:sort(maps:to_list(maps:get(deltas, T, #{}))),
    Moves = case [delta_word(C, D) || {C, D} <- Deltas, D =/= 0] of
                [] -> ["| idle"];
                [M | Ms] -> ["| " ++ M | Ms]
            end,
    Hot = State =:= "BLOWN" orelse lists:any(fun({C, D}) -> D > 0 andalso is_drop(C) end,
                                               Deltas),
    %% The state (if any) leads the first line; the wrap keeps its place.
    [First | Rest] = wrap([State || State =/= ""] ++ LevelWords ++ Moves, max(20, W - 31), 0),
    FirstRest = lists:nthtail(length(State), First),
    [[pad(atom_to_list(Kind), 9) ++ pad(Name, 22), mark(State =:= "BLOWN", State),
      mark(Hot andalso State =/= "BLOWN", FirstRest)]
     | [[lists:duplicate(31, $\s), mark(Hot, L)] || L <- Rest]].

%% @doc A breaker's state, from its gauge `state' (0 closed, 1 open: blown,
%% 2 half-open, 3 disabled).
-spec breaker_state(map()) -> string().
breaker_state(#{gauges := #{state := S}}) when S == 1 -> "BLOWN";
breaker_state(#{gauges := #{state := S}}) when S == 2 -> "half-open";
breaker_state(#{gauges := #{state := S}}) when S == 3 -> "disabled";
breaker_state(#{gauges := #{state := S}}) when S == 0 -> "closed";
breaker_state(_) -> "?".

-spec delta_word(atom(), integer()) -> string().
delta_word(C, D) ->
    Name = case atom_to_list(C) of
               "dropped_" ++ Why -> "drop:" ++ Why;
               Other -> Other
           end,
    Name ++ " +" ++ num(D).

%% Counters that count work shed or refused.
-spec is_drop(atom()) -> boolean().
is_drop(C) ->
    lists:member(C, [dropped, busy, refused, blown, evicted])
        orelse lists:prefix("dropped_", atom_to_list(C)).
