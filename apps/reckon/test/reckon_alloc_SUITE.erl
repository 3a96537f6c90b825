%% Common Test suite of reckon_alloc: value invariants over live and frozen
%% data, units, node-wide state, snapshot files (and that loading one never
%% creates atoms), growth of binary_alloc, and argument validation.
-module(reckon_alloc_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([memory_invariants/1, frozen_memory_is_consistent/1,
         fragmentation_ranges/1, cache_hit_rates_ranges/1,
         average_block_sizes_shape/1, sbcs_to_mbcs_order/1,
         allocators_by_type_sums/1, units_divide/1, state_is_node_wide/1,
         snapshot_get_returns_it/1, save_load_round_trip/1,
         load_raw_system_info/1, load_never_creates_atoms/1,
         load_rejects_bad_files/1, binary_alloc_grows/1,
         snapshot_clear_returns_to_live/1, bad_arguments/1, not_started/1]).

-define(MB, (1024 * 1024)).
-define(ROUNDS, 50).

all() ->
    [memory_invariants, frozen_memory_is_consistent, fragmentation_ranges,
     cache_hit_rates_ranges, average_block_sizes_shape, sbcs_to_mbcs_order,
     allocators_by_type_sums, units_divide, state_is_node_wide,
     snapshot_get_returns_it, save_load_round_trip, load_raw_system_info,
     load_never_creates_atoms, load_rejects_bad_files, binary_alloc_grows,
     snapshot_clear_returns_to_live, bad_arguments, not_started].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(reckon),
    Config.

end_per_suite(_Config) ->
    ok.

init_per_testcase(_Case, Config) ->
    {ok, _} = application:ensure_all_started(reckon),
    _ = reckon_alloc:snapshot_clear(),
    ok = reckon_alloc:set_unit(byte),
    Config.

end_per_testcase(_Case, _Config) ->
    {ok, _} = application:ensure_all_started(reckon),
    _ = reckon_alloc:snapshot_clear(),
    ok = reckon_alloc:set_unit(byte),
    ok.

%%%===================================================================
%%% Invariants
%%%===================================================================

%% Live reads while another process churns memory: every single answer is
%% in range.
memory_invariants(_Config) ->
    with_churn(fun() ->
        lists:foreach(fun(_) ->
            [begin
                 Usage = reckon_alloc:memory(usage, M),
                 ?assert(is_float(Usage) andalso Usage >= 0.0 andalso Usage =< 1.0),
                 Unused = reckon_alloc:memory(unused, M),
                 ?assert(is_integer(Unused) andalso Unused >= 0),
                 ?assert(reckon_alloc:memory(allocated, M) > 0),
                 ?assert(reckon_alloc:memory(used, M) > 0)
             end || M <- [current, max]]
        end, lists:seq(1, ?ROUNDS))
    end).

%% Frozen data (many snapshots taken during churn): used, allocated, unused
%% and usage agree exactly.
frozen_memory_is_consistent(_Config) ->
    with_churn(fun() ->
        lists:foreach(fun(_) ->
            _ = reckon_alloc:snapshot(),
            [begin
                 Used = reckon_alloc:memory(used, M),
                 Alloc = reckon_alloc:memory(allocated, M),
                 ?assert(Alloc >= Used),
                 ?assertEqual(Alloc - Used, reckon_alloc:memory(unused, M)),
                 Usage = reckon_alloc:memory(usage, M),
                 ?assert(Usage >= 0.0 andalso Usage =< 1.0),
                 ?assertEqual(Used / Alloc, Usage),
                 Types = reckon_alloc:memory(allocated_types, M),
                 Instances = reckon_alloc:memory(allocated_instances, M),
                 ?assertEqual(Alloc, lists:sum([V || {_, V} <- Types])),
                 ?assertEqual(Alloc, lists:sum([V || {_, V} <- Instances])),
                 ?assertEqual(lists:sort(Types), Types),
                 ?assert(lists:keymember(binary_alloc, 1, Types))
             end || M <- [current, max]]
        end, lists:seq(1, ?ROUNDS))
    end).

fragmentation_ranges(_Config) ->
    with_churn(fun() ->
        lists:foreach(fun(_) ->
            [check_fragmentation(reckon_alloc:fragmentation(M)) || M <- [current, max]]
        end, lists:seq(1, ?ROUNDS))
    end).

check_fragmentation(Frag) ->
    ?assert(length(Frag) > 0),
    Weights = [begin
                   SU = proplists:get_value(sbcs_usage, Vals),
                   MU = proplists:get_value(mbcs_usage, Vals),
                   ?assert(SU >= 0.0 andalso SU =< 1.0),
                   ?assert(MU >= 0.0 andalso MU =< 1.0),
                   SB = proplists:get_value(sbcs_block_size, Vals),
                   SC = proplists:get_value(sbcs_carriers_size, Vals),
                   MB = proplists:get_value(mbcs_block_size, Vals),
                   MC = proplists:get_value(mbcs_carriers_size, Vals),
                   ?assert(SB =< SC andalso MB =< MC),
                   ?assert(is_atom(A) andalso is_integer(N)),
                   (1.0 - SU) * SC + (1.0 - MU) * MC
               end || {{A, N}, Vals} <- Frag],
    ?assertEqual(lists:reverse(lists:sort(Weights)), Weights).

cache_hit_rates_ranges(_Config) ->
    lists:foreach(fun(_) ->
        Rates = reckon_alloc:cache_hit_rates(),
        ?assert(length(Rates) > 0),
        [begin
             Rate = proplists:get_value(hit_rate, Vals),
             Hits = proplists:get_value(hits, Vals),
             Calls = proplists:get_value(calls, Vals),
             ?assert(is_integer(N)),
             ?assert(Rate >= 0.0 andalso Rate =< 1.0),
             ?assert(is_integer(Hits) andalso is_integer(Calls)),
             case Calls > 0 andalso Hits =< Calls of
                 true -> ?assertEqual(Hits / Calls, Rate);
                 false -> ok
             end
         end || {{instance, N}, Vals} <- Rates]
    end, lists:seq(1, ?ROUNDS)).

average_block_sizes_shape(_Config) ->
    [begin
         Avgs = reckon_alloc:average_block_sizes(M),
         ?assert(lists:keymember(eheap_alloc, 1, Avgs)),
         ?assertEqual(lists:sort(Avgs), Avgs),
         [?assert(is_float(Mbcs) andalso Mbcs >= 0.0 andalso
                  is_float(Sbcs) andalso Sbcs >= 0.0)
          || {_, [{mbcs, Mbcs}, {sbcs, Sbcs}]} <- Avgs],
         ?assertEqual(length(Avgs), length([ok || {_, [{mbcs, _}, {sbcs, _}]} <- Avgs]))
     end || M <- [current, max]],
    %% A block held in a single-block carrier raises the sbcs average.
    Bin = binary:copy(<<7>>, 4 * ?MB),
    {binary_alloc, [_, {sbcs, Sbcs}]} =
        lists:keyfind(binary_alloc, 1, reckon_alloc:average_block_sizes(current)),
    ?assert(Sbcs >= ?MB),
    ?assertEqual(4 * ?MB, byte_size(Bin)).

sbcs_to_mbcs_order(_Config) ->
    Bins = [binary:copy(<<1>>, ?MB) || _ <- lists:seq(1, 4)],
    [begin
         Ratios = reckon_alloc:sbcs_to_mbcs(M),
         Values = [R || {{_, _}, R} <- Ratios],
         ?assertEqual(length(Ratios), length(Values)),
         [?assert(R =:= infinity orelse (is_float(R) andalso R >= 0.0)) || R <- Values],
         ?assertEqual(lists:reverse(lists:sort(Values)), Values)
     end || M <- [current, max]],
    ?assertEqual(4, length(Bins)).

allocators_by_type_sums(_Config) ->
    _ = reckon_alloc:snapshot(),
    All = reckon_alloc:allocators(),
    ?assert(lists:keymember({mseg_alloc, 0}, 1, All)),
    ?assert(lists:keymember({sys_alloc, 0}, 1, All)),
    Types = reckon_alloc:allocators(types),
    [{{binary_alloc, Ns}, Merged}] = [T || {{binary_alloc, _}, _} = T <- Types],
    ?assertEqual(lists:sort([N || {{binary_alloc, N}, _} <- All]), Ns),
    Sum = lists:sum([element(2, lists:keyfind(carriers_size, 1, proplists:get_value(mbcs, P)))
                     || {{binary_alloc, _}, P} <- All]),
    MergedMbcs = proplists:get_value(mbcs, Merged),
    ?assertEqual(Sum, element(2, lists:keyfind(carriers_size, 1, MergedMbcs))),
    %% Sizes in the raw data follow the unit.
    ok = reckon_alloc:set_unit(kilobyte),
    SumK = lists:sum([element(2, lists:keyfind(carriers_size, 1, proplists:get_value(mbcs, P)))
                      || {{binary_alloc, _}, P} <- reckon_alloc:allocators()]),
    ?assertEqual(Sum / 1024, SumK).

%%%===================================================================
%%% Units and node-wide state
%%%===================================================================

units_divide(_Config) ->
    _ = reckon_alloc:snapshot(),
    Queries = [fun() -> reckon_alloc:memory(used) end,
               fun() -> reckon_alloc:memory(allocated, max) end,
               fun() -> reckon_alloc:memory(unused) end],
    Bytes = [Q() || Q <- Queries],
    [?assert(is_integer(B)) || B <- Bytes],
    Usage = reckon_alloc:memory(usage),
    TypesB = reckon_alloc:memory(allocated_types),
    FragB = reckon_alloc:fragmentation(current),
    AvgB = reckon_alloc:average_block_sizes(current),
    Units = [{kilobyte, 1024}, {megabyte, ?MB}, {gigabyte, 1024 * ?MB}],
    [begin
         ok = reckon_alloc:set_unit(Unit),
         ?assertEqual([B / Div || B <- Bytes], [Q() || Q <- Queries]),
         ?assertEqual(Usage, reckon_alloc:memory(usage)),
         ?assertEqual([{T, V / Div} || {T, V} <- TypesB], reckon_alloc:memory(allocated_types)),
         ?assertEqual(scale_frag(FragB, Div), reckon_alloc:fragmentation(current)),
         ?assertEqual([{A, [{K, V / Div} || {K, V} <- KVs]} || {A, KVs} <- AvgB],
                      reckon_alloc:average_block_sizes(current))
     end || {Unit, Div} <- Units],
    ok = reckon_alloc:set_unit(byte),
    ?assertEqual(Bytes, [Q() || Q <- Queries]).

scale_frag(Frag, Div) ->
    [{Id, [case K of
               sbcs_usage -> {K, V};
               mbcs_usage -> {K, V};
               _ -> {K, V / Div}
           end || {K, V} <- Vals]} || {Id, Vals} <- Frag].

state_is_node_wide(_Config) ->
    Self = self(),
    {Pid, Ref} = spawn_monitor(fun() ->
                                       ok = reckon_alloc:set_unit(kilobyte),
                                       undefined = reckon_alloc:snapshot(),
                                       Self ! {taken, reckon_alloc:snapshot_get(),
                                               reckon_alloc:memory(used)}
                               end),
    {Snapshot, UsedK} = receive {taken, S, U} -> {S, U} after 5000 -> error(timeout) end,
    receive {'DOWN', Ref, process, Pid, normal} -> ok after 5000 -> error(no_exit) end,
    %% The setting process is gone; its unit and snapshot remain.
    ?assertMatch({_, _}, Snapshot),
    ?assertEqual(Snapshot, reckon_alloc:snapshot_get()),
    ?assertEqual(UsedK, reckon_alloc:memory(used)),
    ?assert(is_float(UsedK)),
    ok = reckon_alloc:set_unit(byte),
    ?assertEqual(UsedK * 1024, float(reckon_alloc:memory(used))),
    %% Cleared here, cleared for another process too.
    ?assertEqual(Snapshot, reckon_alloc:snapshot_clear()),
    ?assertEqual(undefined, call_in_other_process(fun reckon_alloc:snapshot_get/0)).

call_in_other_process(Fun) ->
    Self = self(),
    Pid = spawn(fun() -> Self ! {self(), Fun()} end),
    receive {Pid, Result} -> Result after 5000 -> error(timeout) end.

%%%===================================================================
%%% Snapshots and files
%%%===================================================================

snapshot_get_returns_it(_Config) ->
    ?assertEqual(undefined, reckon_alloc:snapshot_get()),
    ?assertEqual(undefined, reckon_alloc:snapshot()),
    {Memory, Allocs} = First = reckon_alloc:snapshot_get(),
    ?assert(proplists:get_value(total, Memory) > 0),
    ?assert(lists:keymember({binary_alloc, 0}, 1, Allocs)),
    ?assertEqual(Allocs, reckon_alloc:allocators()),
    ?assertEqual(First, reckon_alloc:snapshot()),
    Second = reckon_alloc:snapshot_get(),
    ?assertEqual(Second, reckon_alloc:snapshot_clear()),
    ?assertEqual(undefined, reckon_alloc:snapshot_get()),
    ok = reckon_alloc:snapshot_print().

save_load_round_trip(Config) ->
    File = filename:join(?config(priv_dir, Config), "alloc.snap"),
    _ = reckon_alloc:snapshot(),
    Snapshot = reckon_alloc:snapshot_get(),
    Frag = reckon_alloc:fragmentation(max),
    ok = reckon_alloc:snapshot_save(File),
    ?assertEqual(Snapshot, reckon_alloc:snapshot_clear()),
    ?assertEqual(undefined, reckon_alloc:snapshot_load(File)),
    ?assertEqual(Snapshot, reckon_alloc:snapshot_get()),
    ?assertEqual(Frag, reckon_alloc:fragmentation(max)),
    %% Without a held snapshot, saving writes a fresh one.
    _ = reckon_alloc:snapshot_clear(),
    Fresh = filename:join(?config(priv_dir, Config), "fresh.snap"),
    ok = reckon_alloc:snapshot_save(Fresh),
    ?assertEqual(undefined, reckon_alloc:snapshot_get()),
    ?assertEqual(undefined, reckon_alloc:snapshot_load(Fresh)),
    ?assertMatch({[_ | _], [_ | _]}, reckon_alloc:snapshot_get()),
    Missing = filename:join([?config(priv_dir, Config), "no", "such.snap"]),
    ?assertEqual({error, enoent}, reckon_alloc:snapshot_save(Missing)).

load_raw_system_info(Config) ->
    File = filename:join(?config(priv_dir, Config), "raw.snap"),
    Names = [sys_alloc, mseg_alloc | erlang:system_info(alloc_util_allocators)],
    Raw = {erlang:memory(), [{A, erlang:system_info({allocator, A})} || A <- Names]},
    ok = file:write_file(File, term_to_binary(Raw)),
    ?assertEqual(undefined, reckon_alloc:snapshot_load(File)),
    Used = reckon_alloc:memory(used),
    Alloc = reckon_alloc:memory(allocated),
    ?assert(Used > 0 andalso Alloc >= Used),
    ?assert(lists:keymember({eheap_alloc, 1}, 1, reckon_alloc:allocators())).

%% A file naming an atom the node does not know is refused, and the atom
%% still does not exist afterwards.
load_never_creates_atoms(Config) ->
    Name = "reckon_alloc_nope_" ++ integer_to_list(erlang:unique_integer([positive]))
        ++ "_" ++ integer_to_list(rand:uniform(1 bsl 40)),
    ?assertError(badarg, list_to_existing_atom(Name)),
    Dir = ?config(priv_dir, Config),
    %% 1. a bare atom in the external term format, written by hand
    Bare = filename:join(Dir, "atom.snap"),
    ok = file:write_file(Bare, <<131, 119, (length(Name)), (list_to_binary(Name))/binary>>),
    %% 2. a well-formed snapshot whose allocator name is that atom: encode a
    %% placeholder of the same length and swap the name bytes.
    Placeholder = lists:duplicate(length(Name), $x),
    Term = {reckon_alloc_snapshot, 1,
            {[{total, 1}], [{{list_to_atom(Placeholder), 0}, [{mbcs, []}, {sbcs, []}]}]}},
    Bin = binary:replace(term_to_binary(Term), list_to_binary(Placeholder),
                         list_to_binary(Name)),
    Nested = filename:join(Dir, "nested.snap"),
    ok = file:write_file(Nested, Bin),
    _ = reckon_alloc:snapshot(),
    Held = reckon_alloc:snapshot_get(),
    ?assertEqual({error, unsafe_or_corrupt}, reckon_alloc:snapshot_load(Bare)),
    ?assertEqual({error, unsafe_or_corrupt}, reckon_alloc:snapshot_load(Nested)),
    ?assertError(badarg, list_to_existing_atom(Name)),
    %% A failed load leaves the held snapshot alone.
    ?assertEqual(Held, reckon_alloc:snapshot_get()).

load_rejects_bad_files(Config) ->
    Dir = ?config(priv_dir, Config),
    Write = fun(Name, Bytes) ->
                    F = filename:join(Dir, Name),
                    ok = file:write_file(F, Bytes),
                    F
            end,
    %% Text is read as recon writes it: a term of the wrong shape, or no term.
    ?assertEqual({error, {bad_shape, not_a_snapshot}},
                 reckon_alloc:snapshot_load(Write("text.snap", "{[], []}.\n"))),
    ?assertEqual({error, not_a_term_file},
                 reckon_alloc:snapshot_load(Write("broken.snap", "{[1, 2}.\n"))),
    Full = term_to_binary({reckon_alloc_snapshot, 1, reckon_alloc_calc:read()}),
    ?assertEqual({error, unsafe_or_corrupt},
                 reckon_alloc:snapshot_load(Write("cut.snap", binary:part(Full, 0, 100)))),
    ?assertMatch({error, {bad_shape, _}},
                 reckon_alloc:snapshot_load(Write("shape.snap", term_to_binary(#{a => 1})))),
    ?assertMatch({error, {bad_shape, {unknown_version, 99}}},
                 reckon_alloc:snapshot_load(
                   Write("vsn.snap", term_to_binary({reckon_alloc_snapshot, 99, x})))),
    ?assertMatch({error, {bad_shape, memory}},
                 reckon_alloc:snapshot_load(
                   Write("mem.snap",
                         term_to_binary({[{total, -1}], [{{binary_alloc, 0}, []}]})))),
    ?assertMatch({error, {bad_shape, {allocator, _}}},
                 reckon_alloc:snapshot_load(
                   Write("alloc.snap", term_to_binary({[], [{{binary_alloc, 0}, [nope]}]})))),
    ?assertMatch({error, {bad_shape, {allocator, _}}},
                 reckon_alloc:snapshot_load(
                   Write("alloc2.snap", term_to_binary({[], [{"binary_alloc", 0}]})))),
    ?assertEqual({error, enoent},
                 reckon_alloc:snapshot_load(filename:join(Dir, "missing.snap"))),
    ?assertEqual(undefined, reckon_alloc:snapshot_get()).

%%%===================================================================
%%% Live data
%%%===================================================================

binary_alloc_grows(_Config) ->
    Before = binary_allocated(),
    UsedBefore = reckon_alloc:memory(used),
    Bins = [binary:copy(<<N:8>>, ?MB) || N <- lists:seq(1, 100)],
    After = binary_allocated(),
    UsedAfter = reckon_alloc:memory(used),
    ct:pal("binary_alloc allocated: ~p -> ~p bytes", [Before, After]),
    ?assert(After - Before >= 90 * ?MB),
    ?assert(UsedAfter - UsedBefore >= 90 * ?MB),
    ?assertEqual(100 * ?MB, iolist_size(Bins)).

binary_allocated() ->
    {binary_alloc, Bytes} = lists:keyfind(binary_alloc, 1,
                                          reckon_alloc:memory(allocated_types, current)),
    Bytes.

snapshot_clear_returns_to_live(_Config) ->
    _ = reckon_alloc:snapshot(),
    Frozen = reckon_alloc:memory(allocated),
    Bins = [binary:copy(<<N:8>>, ?MB) || N <- lists:seq(1, 60)],
    ?assertEqual(Frozen, reckon_alloc:memory(allocated)),
    ?assertMatch({_, _}, reckon_alloc:snapshot_clear()),
    Live = reckon_alloc:memory(allocated),
    ?assert(Live - Frozen >= 50 * ?MB),
    ?assertEqual(60 * ?MB, iolist_size(Bins)).

%%%===================================================================
%%% Errors
%%%===================================================================

bad_arguments(_Config) ->
    Calls = [{memory, [total]}, {memory, [used, now]}, {memory, [nope, current]},
             {fragmentation, [peak]}, {average_block_sizes, [min]},
             {sbcs_to_mbcs, ["current"]}, {allocators, [instances]},
             {set_unit, [bit]}, {set_unit, [1024]}],
    [?assertError(badarg, erlang:apply(reckon_alloc, F, Args)) || {F, Args} <- Calls],
    %% A rejected unit leaves the current one in place.
    ?assert(is_integer(reckon_alloc:memory(used))).

not_started(_Config) ->
    _ = reckon_alloc:snapshot(),
    ok = application:stop(reckon),
    ?assertEqual({error, not_started}, reckon_alloc:set_unit(kilobyte)),
    ?assertEqual({error, not_started}, reckon_alloc:snapshot()),
    ?assertEqual({error, not_started}, reckon_alloc:snapshot_clear()),
    ?assertEqual(undefined, reckon_alloc:snapshot_get()),
    ?assert(is_integer(reckon_alloc:memory(used))),
    Usage = reckon_alloc:memory(usage),
    ?assert(Usage >= 0.0 andalso Usage =< 1.0),
    {ok, _} = application:ensure_all_started(reckon),
    ?assertEqual(undefined, reckon_alloc:snapshot_get()).

%%%===================================================================
%%% Helpers
%%%===================================================================

%% Runs Fun while a process allocates and frees binaries and heap data.
with_churn(Fun) ->
    Churn = spawn_link(fun() -> churn([]) end),
    try Fun()
    after
        unlink(Churn),
        exit(Churn, kill)
    end.

churn(Held) when length(Held) > 40 ->
    erlang:garbage_collect(),
    churn([]);
churn(Held) ->
    Size = rand:uniform(2 * ?MB),
    Bin = binary:copy(<<0>>, Size),
    List = lists:seq(1, rand:uniform(5000)),
    churn([{Bin, List} | Held]).
