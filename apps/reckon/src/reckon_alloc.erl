%% @doc Allocator analysis for a live node, typed in a release's remote
%% shell: how much memory the VM has reserved from the OS, how much of it
%% holds live data, which allocators are fragmented, and whether the segment
%% cache works. Same functions and return shapes as `recon_alloc'.
%%
%% == Vocabulary ==
%% The VM does not hand each allocation to `malloc'. Each alloc_util
%% allocator type (`eheap_alloc' for process heaps, `binary_alloc' for
%% off-heap binaries, `ets_alloc', `driver_alloc', `temp_alloc', `sl_alloc',
%% `ll_alloc', `fix_alloc', `std_alloc', `literal_alloc') runs one
%% instance per scheduler plus instance 0 for non-scheduler threads. An
%% instance obtains <em>carriers</em> (large areas of memory) from
%% `mseg_alloc' (mmap, with a cache of segments) or `sys_alloc' (malloc),
%% and cuts them into <em>blocks</em>, one per allocation.
%% <ul>
%%   <li>`mbcs': multiblock carriers, shared by many small blocks. Carriers
%%       abandoned by one instance wait in the `mbcs_pool' for another.</li>
%%   <li>`sbcs': single-block carriers, one per block larger than the
%%       threshold `sbct'. Each costs a call to the OS.</li>
%%   <li>`lmbcs' / `smbcs': largest / smallest multiblock carrier size.</li>
%% </ul>
%%
%% == Memory ==
%% <ul>
%%   <li>{@link memory/1}, {@link memory/2}: `used', `allocated', `unused',
%%       `usage', and `allocated_types' / `allocated_instances' (allocated
%%       bytes per allocator type / per instance number).</li>
%% </ul>
%% `allocated' should be close to what the OS reports for the process; a
%% large gap means memory taken outside the VM's allocators (a NIF or driver
%% calling `malloc'), cached `mseg_alloc' segments, or the literal super
%% carrier. A low `usage' means the VM holds memory it cannot reuse well:
%% look at {@link fragmentation/1}.
%%
%% == Fragmentation and carriers ==
%% <ul>
%%   <li>{@link fragmentation/1}: block bytes against carrier bytes per
%%       instance, worst (most bytes wasted) first.</li>
%%   <li>{@link average_block_sizes/1}: mean block size in `mbcs' and `sbcs'
%%       per allocator type, to compare with `lmbcs', `smbcs' and `sbct'.</li>
%%   <li>{@link sbcs_to_mbcs/1}: how many blocks went to single-block
%%       carriers for each one in multiblock carriers, highest first.</li>
%% </ul>
%% `current' asks for the present figures, `max' for the peaks since the
%% node started; a node far below its peak with low usage kept its carriers
%% after a spike.
%%
%% == Segment cache ==
%% <ul>
%%   <li>{@link cache_hit_rates/0}: `mseg_alloc' cache hits per instance,
%%       worst first. Below about 0.8 outside of bursts, raise `+MMmcs'
%%       (cached segments, default 10, at most 30), then `+MMrmcbf' /
%%       `+MMamcbf' (largest cacheable segment, relative / absolute).</li>
%% </ul>
%%
%% == Raw data ==
%% <ul>
%%   <li>{@link allocators/0}: every instance of `sys_alloc', `mseg_alloc'
%%       and the alloc_util allocators, as `{{Allocator, Instance}, Props}'
%%       with `Props' sorted and `versions' dropped. The per-type `blocks'
%%       list of `mbcs', `sbcs' and `mbcs_pool' is summed into
%%       `{blocks, Cur, LastMax, Max}' and `{blocks_size, ...}' (single values
%%       in the pool); the original list stays under `raw_blocks' and the
%%       other types' share under `foreign_blocks'.</li>
%%   <li>{@link allocators/1} (`types'): the same merged per allocator type:
%%       `{{Allocator, [Instance]}, Props}' with counters and sizes summed,
%%       `segments_watermark' the highest, `options' those of the
%%       highest-numbered instance.</li>
%% </ul>
%%
%% == Snapshots ==
%% {@link snapshot/0} freezes one read of all allocators; while a snapshot
%% is held, <em>every</em> function above (including {@link allocators/0})
%% answers from it, so successive questions see the same data.
%% {@link snapshot_clear/0} returns to live data. {@link snapshot_get/0},
%% {@link snapshot_print/0}, {@link snapshot_save/1} and
%% {@link snapshot_load/1} move it around, for instance to analyse a
%% production node's figures on a laptop:
%% ```
%% prod> reckon_alloc:snapshot(), reckon_alloc:snapshot_save("/tmp/alloc.snap").
%% ok
%% laptop> reckon_alloc:snapshot_load("/tmp/alloc.snap"), reckon_alloc:fragmentation(current).
%% '''
%%
%% == Units ==
%% Sizes are bytes (integers) until {@link set_unit/1} picks `kilobyte',
%% `megabyte' or `gigabyte' (powers of 1024); sizes are then floats, the
%% byte figures divided by the unit. Ratios and counts never change. The
%% unit also converts the byte fields of {@link allocators/0} and
%% {@link allocators/1} (`blocks_size', `carriers_size', `mseg_alloc_carriers_size',
%% `sys_alloc_carriers_size', `segments_size', and `size' in `raw_blocks'),
%% but never a held snapshot itself: {@link snapshot_get/0} is always bytes.
%%
%% == Where the unit and snapshot live ==
%% They are node-wide: kept in the `reckon' application's table (see
%% `reckon_keeper'), not in the calling process, so a unit or snapshot set
%% from one remote shell is seen by every shell and survives the shell
%% process. Without the `reckon' application running, reads use the
%% defaults (bytes, live data) and {@link set_unit/1}, {@link snapshot/0},
%% {@link snapshot_clear/0} and {@link snapshot_load/1} return
%% `{error, not_started}': run `application:ensure_all_started(reckon)'.
%%
%% == How the figures are defined ==
%% Every answer is computed from one set of allocator data: the held
%% snapshot, or a single fresh read of all instances (each instance reports
%% its blocks and carriers together). `erlang:memory()' is never mixed in;
%% it is stored in snapshots for reference only.
%% <ul>
%%   <li>A container is `mbcs' (with the instance's `mbcs_pool' share for
%%       `current'; the pool has no peak) or `sbcs' of one instance. Its
%%       <em>used</em> bytes are its `blocks_size' capped at its
%%       `carriers_size', its <em>allocated</em> bytes its `carriers_size'.
%%       Peak block and carrier figures can come from different moments,
%%       hence the cap.</li>
%%   <li>`memory(used)' and `memory(allocated)' sum these over all
%%       containers of all alloc_util instances; `unused' is
%%       `allocated - used' (never negative); `usage' is `used / allocated'.</li>
%%   <li>`mbcs_usage' / `sbcs_usage' in {@link fragmentation/1}: used over
%%       allocated of that container. Weight for the order:
%%       `(1 - usage) * carriers_size', summed over both containers.</li>
%%   <li>`hit_rate' in {@link cache_hit_rates/0}: `cache_hits' over
%%       `mseg_alloc' calls of that instance; weight `(1 - hit_rate) * calls'.</li>
%%   <li>Every ratio is clamped to `[0.0, 1.0]', and `0 / 0' is `1.0'
%%       (nothing reserved, nothing wasted). Hence `usage' never exceeds
%%       1.0 and `allocated >= used' always.</li>
%%   <li>{@link sbcs_to_mbcs/1} is not a share: `sbcs' blocks over `mbcs'
%%       blocks, `0.0' when both are 0 and `infinity' when only `mbcs' is.</li>
%% </ul>
%%
%% == Snapshot file format ==
%% {@link snapshot_save/1} writes
%% `term_to_binary({reckon_alloc_snapshot, 1, Snapshot}, [compressed])'.
%% {@link snapshot_load/1} decodes with `binary_to_term(Bin, [safe])', so a
%% file can never create atoms on the node (a file naming an atom the node
%% does not know is refused), then checks the shape. It also accepts a bare
%% `{erlang:memory(), allocators()}' term and the raw form
%% `{erlang:memory(), [{Allocator, erlang:system_info({allocator, Allocator})}]}',
%% both written with `term_to_binary'. It also reads recon's text files
%% (`~p.' of the snapshot, as `file:consult/1' reads them): every atom the
%% text names is looked up with `list_to_existing_atom/1' first, and a file
%% naming an atom the node does not know is refused (`unsafe_or_corrupt')
%% before the text is scanned, so no atom is created.
%%
%% == Differences from recon_alloc ==
%% Unit and snapshot are node-wide (above) rather than in the process
%% dictionary; {@link allocators/0} follows the held snapshot and the unit;
%% the snapshot file is binary (text files are read too);
%% {@link snapshot_save/1} returns
%% `{error, Reason}' instead of raising; {@link set_unit/1} returns `ok'.
%% Unknown arguments raise `badarg'.
-module(reckon_alloc).

-export([memory/1, memory/2, fragmentation/1, cache_hit_rates/0,
         average_block_sizes/1, sbcs_to_mbcs/1, allocators/0, allocators/1]).
-export([snapshot/0, snapshot_clear/0, snapshot_print/0, snapshot_get/0,
         snapshot_save/1, snapshot_load/1]).
-export([set_unit/1]).

-type allocator() :: atom().
%% An allocator type such as `binary_alloc', `eheap_alloc' or `mseg_alloc'.
-type instance() :: non_neg_integer().
%% Instance number: 0 serves non-scheduler threads, N scheduler N.
-type allocdata(T) :: {{allocator(), instance()}, T}.
%% A value `T' of one instance of an allocator.
-type allocdata_types(T) :: {{allocator(), [instance()]}, T}.
%% A value `T' of an allocator type, summed over the instances listed.
-type moment() :: current | max.
%% `current': the present figures; `max': the peaks since the node started.
-type unit() :: byte | kilobyte | megabyte | gigabyte.
%% The unit of sizes, set by {@link set_unit/1} for the whole node
%% (default `byte').
-type size() :: non_neg_integer() | float().
%% Bytes (integer) or bytes divided by the unit set with {@link set_unit/1}.
-type memory() :: [{atom(), non_neg_integer()}].
%% The value of `erlang:memory()' when the snapshot was taken.
-type snapshot() :: {memory(), [allocdata(term())]}.
%% `{erlang:memory(), allocators()}' taken together, in bytes.
-type load_error() :: not_started | not_a_term_file | unsafe_or_corrupt
                    | {bad_shape, term()} | file:posix() | badarg | terminated
                    | system_limit.
%% Why {@link snapshot_load/1} refused a file: `not_a_term_file' (neither
%% written by `term_to_binary' nor the text of one term), `unsafe_or_corrupt' (truncated, or naming
%% atoms this node does not know), `{bad_shape, What}' (decoded, but not a
%% snapshot), a file error, or `not_started'.

-export_type([allocator/0, instance/0, allocdata/1, allocdata_types/1,
              moment/0, unit/0, size/0, memory/0, snapshot/0, load_error/0]).

-define(UNIT_KEY, {reckon_alloc, unit}).
-define(SNAPSHOT_KEY, {reckon_alloc, snapshot}).
-include("reckon_error.hrl").
%% Raises, from the calling public function, a `badarg' whose message
%% names argument `Index' unless `Ok'.
-define(CHECK(Ok, Args, Index, Why),
        case Ok of
            true -> ok;
            false -> ?RECKON_BADARG(Args, Index, Why)
        end).
-define(MOMENT_WHY, "not a moment: current (a fresh read, or the held snapshot) or max").
-define(KEYS, [used, allocated, unused, usage, allocated_types, allocated_instances]).

%%%===================================================================
%%% Memory
%%%===================================================================

%% @doc Same as `memory(Key, current)'.
-spec memory(used | allocated | unused) -> size();
            (usage) -> float();
            (allocated_types) -> [{allocator(), size()}];
            (allocated_instances) -> [{instance(), size()}].
memory(Key) ->
    ?CHECK(lists:member(Key, ?KEYS), [Key], 1, key_why()),
    memory(Key, current).

%% @doc Node-wide memory figure `Key' at `Moment' (see the module doc for
%% the definitions): `used' (bytes in blocks), `allocated' (bytes in
%% carriers), `unused' (`allocated - used'), `usage' (`used / allocated',
%% 0.0 to 1.0), `allocated_types' (`[{Allocator, Size}]' sorted by type),
%% `allocated_instances' (`[{Instance, Size}]' summed over types, sorted).
-spec memory(used | allocated | unused, Moment) -> size() when Moment :: moment();
            (usage, Moment) -> float() when Moment :: moment();
            (allocated_types, Moment) -> [{allocator(), size()}] when Moment :: moment();
            (allocated_instances, Moment) -> [{instance(), size()}] when Moment :: moment().
memory(Key, Moment) ->
    ?CHECK(lists:member(Key, ?KEYS), [Key, Moment], 1, key_why()),
    ?CHECK(is_moment(Moment), [Key, Moment], 2, ?MOMENT_WHY),
    reckon_alloc_calc:memory(Key, Moment, allocs(), factor()).

%%%===================================================================
%%% Fragmentation and carriers
%%%===================================================================

%% @doc Block bytes against carrier bytes of every alloc_util instance,
%% most wasted bytes first: `sbcs_usage' and `mbcs_usage' (0.0 to 1.0),
%% `sbcs_block_size', `sbcs_carriers_size', `mbcs_block_size',
%% `mbcs_carriers_size' (sizes in the unit).
-spec fragmentation(Moment) -> [allocdata([{Key, Value}])] when
      Moment :: moment(),
      Key :: sbcs_usage | mbcs_usage | sbcs_block_size | sbcs_carriers_size
           | mbcs_block_size | mbcs_carriers_size,
      Value :: size().
fragmentation(Moment) ->
    ?CHECK(is_moment(Moment), [Moment], 1, ?MOMENT_WHY),
    reckon_alloc_calc:fragmentation(Moment, allocs(), factor()).

%% @doc Mean block size in multiblock and single-block carriers per
%% allocator type (summed over its instances), sorted by type; 0.0 where a
%% carrier kind holds no block.
-spec average_block_sizes(Moment) -> [{allocator(), [{mbcs | sbcs, float()}]}] when
      Moment :: moment().
average_block_sizes(Moment) ->
    ?CHECK(is_moment(Moment), [Moment], 1, ?MOMENT_WHY),
    reckon_alloc_calc:average_block_sizes(Moment, allocs(), factor()).

%% @doc Blocks in single-block carriers per block in multiblock carriers, for
%% every alloc_util instance, highest first. Blocks above `sbct' get their own
%% carrier from the OS; a high ratio says to raise `sbct' and `lmbcs'.
-spec sbcs_to_mbcs(Moment) -> [allocdata(Ratio)] when
      Moment :: moment(),
      Ratio :: float() | infinity.
sbcs_to_mbcs(Moment) ->
    ?CHECK(is_moment(Moment), [Moment], 1, ?MOMENT_WHY),
    reckon_alloc_calc:sbcs_to_mbcs(Moment, allocs()).

%%%===================================================================
%%% Segment cache
%%%===================================================================

%% @doc `mseg_alloc' cache hit rate of each instance, worst first, with the
%% hits and calls it comes from.
-spec cache_hit_rates() -> [{{instance, instance()}, [{Key, Value}]}] when
      Key :: hit_rate | hits | calls,
      Value :: number().
cache_hit_rates() ->
    reckon_alloc_calc:cache_hit_rates(allocs()).

%%%===================================================================
%%% Raw data
%%%===================================================================

%% @doc Settings and figures of every allocator instance (see "Raw data").
-spec allocators() -> [allocdata(Props)] when Props :: [tuple()].
allocators() ->
    reckon_alloc_calc:convert(allocs(), factor()).

%% @doc `types': the data of {@link allocators/0} merged per allocator type.
-spec allocators(types) -> [allocdata_types(Props)] when Props :: [tuple()].
allocators(types) ->
    reckon_alloc_calc:convert(reckon_alloc_calc:by_type(allocs()), factor());
allocators(Other) ->
    ?RECKON_BADARG([Other], 1, "not types (the only argument allocators/1 takes)").

%%%===================================================================
%%% Snapshots
%%%===================================================================

%% @doc Takes a snapshot of the allocators, holds it node-wide, and returns
%% the one it replaces (`undefined' if none).
-spec snapshot() -> Previous | {error, not_started} when
      Previous :: snapshot() | undefined.
snapshot() ->
    swap_snapshot(reckon_alloc_calc:read()).

%% @doc Drops the held snapshot (back to live data) and returns it.
-spec snapshot_clear() -> Previous | {error, not_started} when
      Previous :: snapshot() | undefined.
snapshot_clear() ->
    swap_snapshot(undefined).

%% @doc Prints the held snapshot (`undefined' if none) as an Erlang term.
-spec snapshot_print() -> ok.
snapshot_print() ->
    io:format("~p.~n", [snapshot_get()]).

%% @doc The held snapshot, in bytes, or `undefined'.
-spec snapshot_get() -> snapshot() | undefined.
snapshot_get() ->
    case reckon_keeper:get(?SNAPSHOT_KEY, undefined) of
        {Memory, Allocs} = Snapshot when is_list(Memory), is_list(Allocs) -> Snapshot;
        _ -> undefined
    end.

%% @doc Writes the held snapshot, or a fresh one if none is held, to
%% `Filename' (format in the module doc).
-spec snapshot_save(Filename) -> ok | {error, Reason} when
      Filename :: file:name_all(),
      Reason :: file:posix() | badarg | terminated | system_limit.
snapshot_save(Filename) ->
    Snapshot = case snapshot_get() of
                   undefined -> reckon_alloc_calc:read();
                   Held -> Held
               end,
    file:write_file(Filename, reckon_alloc_calc:encode_file(Snapshot)).

%% @doc Reads a snapshot saved by {@link snapshot_save/1} and holds it like
%% {@link snapshot/0}; returns the snapshot it replaces, or
%% `{error, Reason}' (see {@link load_error()}) leaving the held one alone.
%% Never creates atoms.
-spec snapshot_load(Filename) -> Previous | {error, Reason} when
      Filename :: file:name_all(),
      Previous :: snapshot() | undefined,
      Reason :: load_error().
snapshot_load(Filename) ->
    case file:read_file(Filename) of
        {ok, Bin} -> hold_loaded(reckon_alloc_calc:decode_file(Bin));
        {error, _} = Error -> Error
    end.

-spec hold_loaded({ok, snapshot()} | {error, load_error()}) ->
          snapshot() | undefined | {error, load_error()}.
hold_loaded({ok, Snapshot}) -> swap_snapshot(Snapshot);
hold_loaded({error, _} = Error) -> Error.

%%%===================================================================
%%% Units
%%%===================================================================

%% @doc Sets, node-wide, the unit of every size returned from now on.
-spec set_unit(Unit) -> ok | {error, not_started} when Unit :: unit().
set_unit(Unit) ->
    ?CHECK(lists:member(Unit, [byte, kilobyte, megabyte, gigabyte]), [Unit], 1,
           "not a unit: byte, kilobyte, megabyte or gigabyte"),
    reckon_keeper:put(?UNIT_KEY, Unit).

%%%===================================================================
%%% Internal
%%%===================================================================

%% The allocator data every answer is computed from: the held snapshot, or
%% one fresh read.
-spec allocs() -> [allocdata([tuple()])].
allocs() ->
    case snapshot_get() of
        undefined -> reckon_alloc_calc:read_allocs();
        {_Memory, Allocs} -> Allocs
    end.

-spec factor() -> pos_integer().
factor() ->
    try unit_factor(reckon_keeper:get(?UNIT_KEY, byte))
    catch error:badarg -> 1
    end.

-spec unit_factor(unit()) -> pos_integer().
unit_factor(byte) -> 1;
unit_factor(kilobyte) -> 1024;
unit_factor(megabyte) -> 1024 * 1024;
unit_factor(gigabyte) -> 1024 * 1024 * 1024;
unit_factor(Other) -> erlang:error(badarg, [Other]).

-spec swap_snapshot(snapshot() | undefined) ->
          snapshot() | undefined | {error, not_started}.
swap_snapshot(New) ->
    Previous = snapshot_get(),
    case reckon_keeper:put(?SNAPSHOT_KEY, New) of
        ok -> Previous;
        {error, not_started} = Error -> Error
    end.

-spec is_moment(term()) -> boolean().
is_moment(Moment) -> Moment =:= current orelse Moment =:= max.

-spec key_why() -> string().
key_why() ->
    "not a memory key; allowed: "
        ++ lists:flatten(lists:join(", ", [atom_to_list(K) || K <- ?KEYS])).
