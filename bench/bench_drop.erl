%% @doc Benchmark suite `drop': `sluice_drop' against the book's random drop,
%% `rand:uniform() =< Rate' (Erlang in Anger, 3.3.1), in the same run.
%%
%% Cases (unit `ns_per_op', less is better):
%% <ul>
%% <li>`random_p1', `random_p2': `sluice_drop:random(0.5)'.</li>
%% <li>`ask_p1', `ask_p2': `sluice_drop:ask(Valve)' on the handle of a valve
%%     with keep rate 0.5; unlike the reference it also counts every answer.</li>
%% <li>`ask_prio_p1': `sluice_drop:ask(Valve, low)', a valve with two
%%     priorities (the priority is looked up in the handle on every call).</li>
%% <li>`valve_bytes' (`bytes', less is better): what an idle valve costs the
%%     node (its handle held by a process, its name row, the NIF resource),
%%     measured with {@link bench:memory_delta/1} over 10 000 valves made by
%%     `sluice_drop:new/2'. The reference is the same valve the way sluice
%%     made it before stripes were allocated when first used: a resource of
%%     the first layout (`sluice_valve.v1', 16 counter stripes inline) with
%%     the same handle and the same row, in a table of its own.</li>
%% </ul>
%% `_p1' runs one process, `_p2' two concurrent processes. `ns_per_op' is the
%% wall time of a round divided by the operations each process performs (see
%% {@link bench:compare/3}): for `_p2' that is the time per operation as one
%% of two concurrent callers sees it, equal to `_p1' when nothing is shared.
%% The reference draws from `rand''s per-process state, seeded in each process
%% before timing starts; ours and the reference run in loops of the same
%% shape, each calling its operation directly.
-module(bench_drop).
-behaviour(bench).

-export([cases/0]).

-define(RATE, 0.5).
-define(OPS, 1000000).
-define(ROUNDS, 7).

%% @doc The cases of this suite (see the module documentation).
-spec cases() -> [{atom(), fun(() -> bench:result())}].
cases() ->
    [{random_p1, fun() -> random(1) end},
     {random_p2, fun() -> random(2) end},
     {ask_p1, fun() -> ask(1) end},
     {ask_p2, fun() -> ask(2) end},
     {ask_prio_p1, fun ask_prio/0},
     {valve_bytes, fun valve_bytes/0}].

-define(VALVES, 10000).

-spec valve_bytes() -> bench:result().
valve_bytes() ->
    Names = [{?MODULE, idle, I} || I <- lists:seq(1, ?VALVES)],
    Ours = bench:memory_delta(
             fun() -> [element(2, {ok, _} = sluice_drop:new(N, #{})) || N <- Names] end),
    _ = [ok = sluice_drop:delete(N) || N <- Names],
    Tab = ets:new(bench_drop_v1_valves, [public, set, {read_concurrency, true}]),
    Ref = bench:memory_delta(fun() -> [v1_valve(Tab, N) || N <- Names] end),
    true = ets:delete(Tab),
    {Ours / ?VALVES, Ref / ?VALVES, bytes}.

%% A valve of the first layout, its handle shaped as sluice_drop's and its
%% row as sluice_drop_server's.
-spec v1_valve(ets:tid(), term()) -> tuple().
v1_valve(Tab, Name) ->
    Handle = {sluice_valve, sluice_nif:drop_new_v1([1.0]), Name, #{default => 0}, 0},
    true = ets:insert(Tab, {Name, Handle, none, make_ref()}),
    Handle.

-spec random(pos_integer()) -> bench:result().
random(Procs) ->
    bench:compare(fun(N) -> random_loop(N, ?RATE, 0) end,
                  fun(N) -> rand_loop(N, ?RATE, 0) end,
                  opts(Procs)).

-spec ask(pos_integer()) -> bench:result().
ask(Procs) ->
    with_valve(#{rate => ?RATE},
               fun(Valve) ->
                       bench:compare(fun(N) -> ask_loop(N, Valve, 0) end,
                                     fun(N) -> rand_loop(N, ?RATE, 0) end,
                                     opts(Procs))
               end).

-spec ask_prio() -> bench:result().
ask_prio() ->
    with_valve(#{rates => #{default => 1.0, low => ?RATE}},
               fun(Valve) ->
                       bench:compare(fun(N) -> ask_prio_loop(N, Valve, low, 0) end,
                                     fun(N) -> rand_loop(N, ?RATE, 0) end,
                                     opts(1))
               end).

-spec opts(pos_integer()) -> bench:compare_opts().
opts(Procs) ->
    #{ops => ?OPS, rounds => ?ROUNDS, procs => Procs}.

-spec with_valve(sluice_drop:options(), fun((sluice_drop:valve()) -> Result)) -> Result.
with_valve(Opts, Fun) ->
    Name = {?MODULE, make_ref()},
    {ok, Valve} = sluice_drop:new(Name, Opts),
    try
        Fun(Valve)
    after
        ok = sluice_drop:delete(Name)
    end.

%% The loops: same shape, one direct call per operation, counting keeps.

-spec random_loop(non_neg_integer(), float(), non_neg_integer()) -> non_neg_integer().
random_loop(0, _Rate, Kept) ->
    Kept;
random_loop(N, Rate, Kept) ->
    case sluice_drop:random(Rate) of
        true -> random_loop(N - 1, Rate, Kept + 1);
        false -> random_loop(N - 1, Rate, Kept)
    end.

-spec rand_loop(non_neg_integer(), float(), non_neg_integer()) -> non_neg_integer().
rand_loop(0, _Rate, Kept) ->
    Kept;
rand_loop(N, Rate, Kept) ->
    case rand:uniform() =< Rate of
        true -> rand_loop(N - 1, Rate, Kept + 1);
        false -> rand_loop(N - 1, Rate, Kept)
    end.

-spec ask_loop(non_neg_integer(), sluice_drop:valve(), non_neg_integer()) -> non_neg_integer().
ask_loop(0, _Valve, Kept) ->
    Kept;
ask_loop(N, Valve, Kept) ->
    case sluice_drop:ask(Valve) of
        ok -> ask_loop(N - 1, Valve, Kept + 1);
        drop -> ask_loop(N - 1, Valve, Kept)
    end.

-spec ask_prio_loop(non_neg_integer(), sluice_drop:valve(), sluice_drop:priority(),
                    non_neg_integer()) -> non_neg_integer().
ask_prio_loop(0, _Valve, _Prio, Kept) ->
    Kept;
ask_prio_loop(N, Valve, Prio, Kept) ->
    case sluice_drop:ask(Valve, Prio) of
        ok -> ask_prio_loop(N - 1, Valve, Prio, Kept + 1);
        drop -> ask_prio_loop(N - 1, Valve, Prio, Kept)
    end.
