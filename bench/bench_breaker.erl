%% @doc Benchmark suite `breaker': `sluice_breaker' against a breaker built
%% as fuse builds it, in the same run.
%%
%% == The reference ==
%% The breaker's state (`ok' or `blown') in a public ETS table
%% (`read_concurrency') that an ask reads (fuse's `async_dirty' ask), then
%% counts the answer in a stats table (`write_concurrency', one
%% `ets:update_counter/3' per ask, as fuse's ETS stats plugin does; ours
%% counts too); a melt is a call to a server process that keeps the melt
%% times within the window in a list, drops the older ones at every melt,
%% and writes `blown' when more than `MaxR' are left.
%%
%% == Cases ==
%% <ul>
%% <li>`ask_closed_p1', `ask_closed_p2' (`ns_per_op'): asks of a closed
%%     breaker by 1 or 2 processes. Both breakers are named by an atom, as
%%     fuse's must be.</li>
%% <li>`ask_blown' (`ns_per_op'): asks of a blown breaker.</li>
%% <li>`melt_1k', `melt_10k' (`ns_per_op'): 1 000 or 10 000 consecutive
%%     melts into a fresh breaker whose window keeps them all
%%     (`{standard, 1000000, 60000}'), mean time per melt.</li>
%% <li>`run_overhead' (`ns_per_op'): `run/3' around a fun returning `ok',
%%     against the reference's ask followed by the fun.</li>
%% <li>`run_timed_overhead' (`ns_per_op'): the same for a breaker that
%%     records its run times (`run_times => true'): two clock reads
%%     more.</li>
%% <li>`remove_200k' (`ns_per_op'): `remove/1' of one of 200 000 installed
%%     breakers (1000 removes, each timed alone, median), against
%%     `persistent_term:erase/1' of one of 200 000 persistent terms holding
%%     a breaker's `{Ref, Slow}' (how breakers were named before: every
%%     erase makes the VM scan every process for literals of the old term).
%%     The reference runs in a fresh VM of its own (`erl -noshell'), so its
%%     200 000 terms never slow down the rest of the run; 20 erases.</li>
%% </ul>
-module(bench_breaker).
-behaviour(bench).

-export([cases/0]).

-define(ROUNDS, 5).

%% @doc The cases of this suite (see the module documentation).
-spec cases() -> [{atom(), fun(() -> bench:result())}].
cases() ->
    [{ask_closed_p1, fun() -> ask(1, closed) end},
     {ask_closed_p2, fun() -> ask(2, closed) end},
     {ask_blown, fun() -> ask(1, blown) end},
     {melt_1k, fun() -> melts(1000) end},
     {melt_10k, fun() -> melts(10000) end},
     {run_overhead, fun() -> run(#{}) end},
     {run_timed_overhead, fun() -> run(#{run_times => true}) end},
     {remove_200k, fun remove_200k/0}].

%%% Asks

-spec ask(pos_integer(), closed | blown) -> bench:result().
ask(Procs, State) ->
    Name = bench_breaker_ask,
    ok = sluice_breaker:install(Name, #{strategy => {standard, 0, 60000}, reset => 600000}),
    Ref = ref_new(),
    _ = [begin ok = sluice_breaker:melt(Name), ref_melt(Ref, 0, 60000) end || State =:= blown],
    Want = case State of closed -> ok; blown -> blown end,
    Result = bench:compare(fun(N) -> ask_loop(N, Name, Want) end,
                           fun(N) -> ref_ask_loop(N, Ref, Want) end,
                           #{ops => 1000000, procs => Procs}),
    ok = sluice_breaker:remove(Name),
    ref_stop(Ref),
    Result.

-spec ask_loop(non_neg_integer(), term(), ok | blown) -> ok.
ask_loop(0, _Name, _Want) ->
    ok;
ask_loop(N, Name, Want) ->
    Want = sluice_breaker:ask(Name, async_dirty),
    ask_loop(N - 1, Name, Want).

-spec ref_ask_loop(non_neg_integer(), {ets:tid(), pid()}, ok | blown) -> ok.
ref_ask_loop(0, _Ref, _Want) ->
    ok;
ref_ask_loop(N, Ref, Want) ->
    Want = ref_ask(Ref),
    ref_ask_loop(N - 1, Ref, Want).

%%% Melts

-spec melts(pos_integer()) -> bench:result().
melts(Count) ->
    Rounds = [{ours_melts(Count), ref_melts(Count)} || _ <- lists:seq(1, ?ROUNDS)],
    {Ours, Ref} = lists:unzip(Rounds),
    {bench:median(Ours) / Count, bench:median(Ref) / Count, ns_per_op}.

-spec ours_melts(pos_integer()) -> integer().
ours_melts(Count) ->
    Name = {bench, erlang:unique_integer()},
    ok = sluice_breaker:install(Name, #{strategy => {standard, 1000000, 60000}}),
    {Ns, ok} = bench:time_ns(fun() -> melt_loop(Count, Name) end),
    ok = sluice_breaker:remove(Name),
    Ns.

-spec melt_loop(non_neg_integer(), term()) -> ok.
melt_loop(0, _Name) ->
    ok;
melt_loop(N, Name) ->
    ok = sluice_breaker:melt(Name),
    melt_loop(N - 1, Name).

-spec ref_melts(pos_integer()) -> integer().
ref_melts(Count) ->
    Ref = ref_new(),
    {Ns, ok} = bench:time_ns(fun() -> ref_melt_loop(Count, Ref) end),
    ref_stop(Ref),
    Ns.

-spec ref_melt_loop(non_neg_integer(), {ets:tid(), pid()}) -> ok.
ref_melt_loop(0, _Ref) ->
    ok;
ref_melt_loop(N, Ref) ->
    ok = ref_melt(Ref, 1000000, 60000),
    ref_melt_loop(N - 1, Ref).

%%% run/3

-spec run(sluice_breaker:options()) -> bench:result().
run(Opts) ->
    Name = {bench, erlang:unique_integer()},
    ok = sluice_breaker:install(Name, Opts),
    Ref = ref_new(),
    Fun = fun() -> ok end,
    Result = bench:compare(fun(N) -> run_loop(N, Name, Fun) end,
                           fun(N) -> ref_run_loop(N, Ref, Fun) end,
                           #{ops => 500000}),
    ok = sluice_breaker:remove(Name),
    ref_stop(Ref),
    Result.

-spec run_loop(non_neg_integer(), term(), fun(() -> ok)) -> ok.
run_loop(0, _Name, _Fun) ->
    ok;
run_loop(N, Name, Fun) ->
    ok = sluice_breaker:run(Name, Fun, sync),
    run_loop(N - 1, Name, Fun).

-spec ref_run_loop(non_neg_integer(), {ets:tid(), pid()}, fun(() -> ok)) -> ok.
ref_run_loop(0, _Ref, _Fun) ->
    ok;
ref_run_loop(N, Ref, Fun) ->
    ok = ref_ask(Ref),
    ok = Fun(),
    ref_run_loop(N - 1, Ref, Fun).

%%% Removes among 200 000

-define(INSTALLED, 200000).

-spec remove_200k() -> bench:result().
remove_200k() ->
    Opts = #{strategy => {standard, 5, 1000}},
    _ = [ok = sluice_breaker:install({bench, many, I}, Opts) || I <- lists:seq(1, ?INSTALLED)],
    Times = [begin
                 Name = {bench, many, I},
                 {Ns, ok} = bench:time_ns(fun() -> sluice_breaker:remove(Name) end),
                 ok = sluice_breaker:install(Name, Opts),
                 Ns
             end || I <- lists:seq(1, ?INSTALLED, ?INSTALLED div 1000)],
    _ = [ok = sluice_breaker:remove({bench, many, I}) || I <- lists:seq(1, ?INSTALLED)],
    {bench:median(Times), ref_erase_200k(), ns_per_op}.

%% The median time of 20 persistent_term:erase/1 calls among 200 000
%% terms, in a VM of its own.
-spec ref_erase_200k() -> number().
ref_erase_200k() ->
    Erl = filename:join([code:root_dir(), "bin", "erl"]),
    Script = "N = 200000, "
             "[persistent_term:put({ref, I}, {make_ref(), infinity}) || I <- lists:seq(1, N)], "
             "Ts = lists:sort([begin T0 = erlang:monotonic_time(nanosecond), "
             "true = persistent_term:erase({ref, I}), "
             "erlang:monotonic_time(nanosecond) - T0 end || I <- lists:seq(1, 20)]), "
             "io:format(\"~p~n\", [lists:nth(10, Ts)]), halt().",
    Out = os:cmd(Erl ++ " -noshell -eval '" ++ Script ++ "'"),
    list_to_integer(string:trim(Out)).

%%% The reference breaker

-spec ref_new() -> {ets:tid(), pid()}.
ref_new() ->
    Tab = ets:new(ref_fuse, [public, set, {read_concurrency, true}]),
    true = ets:insert(Tab, {fuse, ok}),
    Stats = ets:new(ref_fuse_stats, [public, set, {write_concurrency, true}]),
    true = ets:insert(Stats, [{ok, 0}, {blown, 0}]),
    true = ets:insert(Tab, {stats, Stats}),
    Server = spawn(fun() -> ref_server(Tab, []) end),
    {Tab, Server}.

-spec ref_stop({ets:tid(), pid()}) -> ok.
ref_stop({Tab, Server}) ->
    exit(Server, kill),
    true = ets:delete(stats_of(Tab)),
    true = ets:delete(Tab),
    ok.

-spec ref_ask({ets:tid(), pid()}) -> ok | blown.
ref_ask({Tab, _}) ->
    [{fuse, State}] = ets:lookup(Tab, fuse),
    _ = ets:update_counter(stats_of(Tab), State, 1),
    State.

%% The stats table of a reference breaker (named in its state table).
-spec stats_of(ets:tid()) -> ets:tid().
stats_of(Tab) ->
    ets:lookup_element(Tab, stats, 2).

%% A call to the server: melt now, with `MaxR' melts in `MaxT' ms tolerated.
-spec ref_melt({ets:tid(), pid()}, non_neg_integer(), pos_integer()) -> ok.
ref_melt({_, Server}, MaxR, MaxT) ->
    Mon = monitor(process, Server),
    Server ! {melt, self(), Mon, erlang:monotonic_time(millisecond), MaxR, MaxT},
    receive {Mon, ok} -> demonitor(Mon, [flush]), ok end.

-spec ref_server(ets:tid(), [integer()]) -> no_return().
ref_server(Tab, Melts) ->
    receive
        {melt, From, Tag, Now, MaxR, MaxT} ->
            Kept = [T || T <- [Now | Melts], Now - T < MaxT],
            _ = [ets:insert(Tab, {fuse, blown}) || length(Kept) > MaxR],
            From ! {Tag, ok},
            ref_server(Tab, Kept)
    end.
