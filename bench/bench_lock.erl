%% @doc Benchmark suite `lock': `sluice_lock' against a counter lock built
%% as dispcount builds it, in the same run.
%%
%% == The reference ==
%% One ETS table of `{Slot, Busy}' counters (`write_concurrency') and one
%% watcher process per slot holding its resource. A checkout picks one slot
%% at random and claims it with `ets:update_counter/3' (a counter capped at
%% 1: busy when it already was); a claimed checkout then asks the slot's
%% watcher for the resource with a call, and the watcher monitors the
%% caller. A checkin casts the resource back; the watcher drops the monitor
%% and resets the counter. `busy' means the one slot tried was lent.
%%
%% == Cases ==
%% <ul>
%% <li>`pair_c1', `pair_c2', `pair_c8', `pair_c64' (`ops_per_s'): 1, 2, 8 or
%%     64 callers loop checkout then checkin on a lock of 10 resources for
%%     `ROUND_MS' ms, retrying at once when told busy; the figure is
%%     successful pairs per second, the median of 3 rounds per side
%%     (alternating sides).</li>
%% <li>`denied' (`ns_per_op'): one caller's checkout on a lock whose every
%%     resource is lent.</li>
%% </ul>
-module(bench_lock).
-behaviour(bench).

-export([cases/0]).
-export([init/1, checkout/2, checkin/2, dead/1, handle_info/2, terminate/2]).

-define(SLOTS, 10).
-define(ROUND_MS, 1000).
-define(ROUNDS, 3).

%% @doc The cases of this suite (see the module documentation).
-spec cases() -> [{atom(), fun(() -> bench:result())}].
cases() ->
    [{pair_c1, fun() -> pairs(1) end},
     {pair_c2, fun() -> pairs(2) end},
     {pair_c8, fun() -> pairs(8) end},
     {pair_c64, fun() -> pairs(64) end},
     {denied, fun denied/0}].

%%% sluice_lock callbacks: the resource is a tuple naming its watcher.

-spec init(term()) -> {ok, term()}.
init(_) -> {ok, none}.
-spec checkout(none, term()) -> {ok, term(), term()}.
checkout(none, S) -> {ok, {conn, self()}, S}.
-spec checkin(term(), term()) -> {ok, term()}.
checkin(_Resource, S) -> {ok, S}.
-spec dead(term()) -> {ok, term()}.
dead(S) -> {ok, S}.
-spec handle_info(term(), term()) -> {ok, term()}.
handle_info(_Msg, S) -> {ok, S}.
-spec terminate(term(), term()) -> ok.
terminate(_Reason, _S) -> ok.

%%% Pairs

-spec pairs(pos_integer()) -> bench:result().
pairs(Callers) ->
    Ours = new_ours(),
    Ref = new_ref(),
    _ = [round(Side, Callers) || Side <- [{ours, Ours}, {ref, Ref}]],
    Rounds = [{round({ours, Ours}, Callers), round({ref, Ref}, Callers)}
              || _ <- lists:seq(1, ?ROUNDS)],
    {O, R} = lists:unzip(Rounds),
    ok = sluice_lock:close(Ours),
    stop_ref(Ref),
    {bench:median(O) * 1000 / ?ROUND_MS, bench:median(R) * 1000 / ?ROUND_MS, ops_per_s}.

%% Successful pairs in one round of `Callers' processes.
-spec round({ours | ref, term()}, pos_integer()) -> non_neg_integer().
round(Side, Callers) ->
    Parent = self(),
    Pids = [spawn_link(fun() -> caller(Parent, Side) end) || _ <- lists:seq(1, Callers)],
    _ = [receive {ready, P} -> ok end || P <- Pids],
    Deadline = erlang:monotonic_time(millisecond) + ?ROUND_MS,
    _ = [P ! {go, Deadline} || P <- Pids],
    lists:sum([receive {pairs, P, N} -> N end || P <- Pids]).

-spec caller(pid(), {ours | ref, term()}) -> ok.
caller(Parent, Side) ->
    Parent ! {ready, self()},
    receive {go, Deadline} -> ok end,
    Parent ! {pairs, self(), loop(Side, Deadline, 0, 0)},
    ok.

%% Pairs until `Deadline', looking at the clock every 64 attempts.
-spec loop({ours | ref, term()}, integer(), non_neg_integer(), non_neg_integer()) ->
    non_neg_integer().
loop(Side, Deadline, Tries, Pairs) when Tries band 63 =:= 0 ->
    case erlang:monotonic_time(millisecond) >= Deadline of
        true -> Pairs;
        false -> loop(Side, Deadline, Tries + 1, Pairs + pair(Side))
    end;
loop(Side, Deadline, Tries, Pairs) ->
    loop(Side, Deadline, Tries + 1, Pairs + pair(Side)).

-spec pair({ours | ref, term()}) -> 0 | 1.
pair({ours, Lock}) ->
    case sluice_lock:checkout(Lock) of
        {ok, R, X} -> ok = sluice_lock:checkin(Lock, R, X), 1;
        {error, busy} -> 0
    end;
pair({ref, Ref}) ->
    case ref_checkout(Ref) of
        {ok, Slot, X} -> ref_checkin(Ref, Slot, X), 1;
        busy -> 0
    end.

%%% Denied checkouts

-spec denied() -> bench:result().
denied() ->
    Ours = new_ours(),
    Ref = new_ref(),
    Loans = take_all_ours(Ours, []),
    RefLoans = [ref_claim_all(Ref, S) || S <- lists:seq(1, ?SLOTS)],
    Result = bench:compare(fun(N) -> denied_loop(N, {ours, Ours}) end,
                           fun(N) -> denied_loop(N, {ref, Ref}) end,
                           #{ops => 200000}),
    _ = [sluice_lock:checkin(Ours, R, X) || {R, X} <- Loans],
    _ = RefLoans,
    ok = sluice_lock:close(Ours),
    stop_ref(Ref),
    Result.

-spec denied_loop(non_neg_integer(), {ours | ref, term()}) -> ok.
denied_loop(0, _Side) ->
    ok;
denied_loop(N, Side) ->
    0 = pair(Side),
    denied_loop(N - 1, Side).

-spec take_all_ours(sluice_lock:lock(), list()) -> list().
take_all_ours(Lock, Acc) ->
    case sluice_lock:checkout(Lock) of
        {ok, R, X} -> take_all_ours(Lock, [{R, X} | Acc]);
        {error, busy} -> Acc
    end.

-spec new_ours() -> sluice_lock:lock().
new_ours() ->
    {ok, Lock} = sluice_lock:new(#{resources => ?SLOTS, callback => {?MODULE, []}}),
    wait_ready(Lock, 100),
    Lock.

-spec wait_ready(sluice_lock:lock(), non_neg_integer()) -> ok.
wait_ready(Lock, Tries) ->
    Loans = take_all_ours(Lock, []),
    _ = [sluice_lock:checkin(Lock, R, X) || {R, X} <- Loans],
    case length(Loans) of
        ?SLOTS -> ok;
        _ when Tries > 0 -> timer:sleep(10), wait_ready(Lock, Tries - 1)
    end.

%%% The reference lock

-spec new_ref() -> {ets:tid(), tuple()}.
new_ref() ->
    Tab = ets:new(ref_lock, [public, set, {write_concurrency, true}]),
    Watchers = [begin
                    true = ets:insert(Tab, {S, 0}),
                    spawn(fun() -> watcher(Tab, S, {conn, S}, none) end)
                end || S <- lists:seq(1, ?SLOTS)],
    {Tab, list_to_tuple(Watchers)}.

-spec stop_ref({ets:tid(), tuple()}) -> ok.
stop_ref({Tab, Watchers}) ->
    _ = [exit(W, kill) || W <- tuple_to_list(Watchers)],
    true = ets:delete(Tab),
    ok.

-spec ref_checkout({ets:tid(), tuple()}) -> {ok, pos_integer(), term()} | busy.
ref_checkout({Tab, Watchers}) ->
    Slot = rand:uniform(?SLOTS),
    case ets:update_counter(Tab, Slot, {2, 1}) of
        1 ->
            W = element(Slot, Watchers),
            Mon = monitor(process, W),
            W ! {get, self(), Mon},
            receive
                {Mon, X} -> demonitor(Mon, [flush]), {ok, Slot, X}
            end;
        _ ->
            busy
    end.

-spec ref_checkin({ets:tid(), tuple()}, pos_integer(), term()) -> ok.
ref_checkin({_Tab, Watchers}, Slot, X) ->
    element(Slot, Watchers) ! {done, self(), X},
    ok.

%% Claims slot `S' for good (for the denied case).
-spec ref_claim_all({ets:tid(), tuple()}, pos_integer()) -> ok.
ref_claim_all({Tab, _}, S) ->
    true = ets:insert(Tab, {S, 1}),
    ok.

%% The watcher of slot `S': lends its resource to the caller that claimed
%% the slot, monitoring it; the checkin (or the holder's death) resets the
%% counter.
-spec watcher(ets:tid(), pos_integer(), term(), none | {pid(), reference()}) -> no_return().
watcher(Tab, S, X, Holder) ->
    receive
        {get, From, Tag} ->
            Mon = monitor(process, From),
            From ! {Tag, X},
            watcher(Tab, S, X, {From, Mon});
        {done, From, _X} when element(1, Holder) =:= From ->
            demonitor(element(2, Holder), [flush]),
            true = ets:insert(Tab, {S, 0}),
            watcher(Tab, S, X, none);
        {'DOWN', Mon, process, _, _} when element(2, Holder) =:= Mon ->
            true = ets:insert(Tab, {S, 0}),
            watcher(Tab, S, X, none);
        _ ->
            watcher(Tab, S, X, Holder)
    end.
