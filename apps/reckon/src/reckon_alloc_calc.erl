%% @private
%% @doc The computations behind {@link reckon_alloc}: reading and normalising
%% `erlang:system_info({allocator, A})', and every figure derived from it.
%%
%% Every function here is pure over an allocator list (`[allocdata(term())]')
%% except {@link read/0}, so the facade reads once (or takes the held
%% snapshot) and passes the same data to every step of one answer.
%%
%% Invariants kept here (the facade documents them for operators):
%% <ul>
%%   <li>in each carrier container (`mbcs' with its pool share, `sbcs') of
%%       each instance, the bytes counted as used are capped at the carrier
%%       bytes of the same container, so any sum of used is at most the sum
%%       of allocated over the same containers;</li>
%%   <li>every ratio goes through {@link ratio/2}: `0/0' is 1.0 and the
%%       result is clamped to `[0.0, 1.0]'.</li>
%% </ul>
-module(reckon_alloc_calc).

-export([read/0, read_allocs/0, normalize/1, encode_file/1, decode_file/1]).
-export([memory/4, fragmentation/3, cache_hit_rates/1,
         average_block_sizes/3, sbcs_to_mbcs/2, by_type/1, convert/2, ratio/2]).

-type allocdata() :: {{atom(), non_neg_integer()}, [tuple()]}.
-type moment() :: current | max.
-type factor() :: pos_integer().
-type memory_list() :: [{atom(), non_neg_integer()}].
-type snapshot() :: {memory_list(), [allocdata()]}.
-type decode_error() :: not_a_term_file | unsafe_or_corrupt | {bad_shape, term()}.
-type size() :: number().

%% Sizes that are bytes, wherever they appear inside a container list.
-define(SIZE_KEYS, [blocks_size, carriers_size, mseg_alloc_carriers_size,
                    sys_alloc_carriers_size, segments_size, size]).
%% Sub-lists that hold settings or counters, never bytes to convert.
-define(FILE_TAG, reckon_alloc_snapshot).
-define(FILE_VSN, 1).
-define(OPAQUE_KEYS, [options, versions, version, calls, fix_types, name]).
%% Sub-lists that are settings: merging instances keeps the last one's.
-define(SETTING_KEYS, [options, versions, version, name]).

%%%===================================================================
%%% Reading and normalising
%%%===================================================================

%% @doc One read of the node: `erlang:memory()' and every instance of
%% `sys_alloc', `mseg_alloc' and the alloc_util allocators, normalised.
-spec read() -> {[{atom(), non_neg_integer()}], [allocdata()]}.
read() ->
    Memory = try erlang:memory() catch error:notsup -> [] end,
    {Memory, read_allocs()}.

%% @doc One read of every allocator instance, normalised (no `erlang:memory()').
-spec read_allocs() -> [allocdata()].
read_allocs() ->
    Names = [sys_alloc, mseg_alloc | erlang:system_info(alloc_util_allocators)],
    [{{A, N}, normalize_props(A, Props)} || A <- Names, {instance, N, Props} <- instances(A)].

-spec instances(atom()) -> [{instance, non_neg_integer(), list()}].
instances(A) ->
    case erlang:system_info({allocator, A}) of
        L when is_list(L) -> L;
        _ -> []
    end.

%% @doc Normalises a list of `{{Alloc, N}, Props}'; idempotent, so snapshots
%% saved by this module or by hand (raw `system_info' lists) both pass.
%% Raises `error' on a shape it cannot read (the caller reports it).
-spec normalize([{{atom(), non_neg_integer()}, list()}]) -> [allocdata()].
normalize(Allocs) ->
    [{{A, N}, normalize_props(A, Props)} || {{A, N}, Props} <- Allocs].

-spec normalize_props(atom(), list()) -> [tuple()].
normalize_props(A, Props) when is_list(Props) ->
    lists:sort([normalize_entry(A, E) || E <- Props, not is_versions(E)]).

-spec is_versions(tuple()) -> boolean().
is_versions(E) -> element(1, E) =:= versions.

-spec normalize_entry(atom(), tuple()) -> tuple().
normalize_entry(A, {Key, L}) when is_list(L), (Key =:= mbcs orelse Key =:= sbcs
                                               orelse Key =:= mbcs_pool) ->
    Width = case Key of mbcs_pool -> 1; _ -> 3 end,
    {Key, lists:flatmap(fun(E) -> merge_blocks(A, Width, E) end, L)};
normalize_entry(_A, E) when is_tuple(E), tuple_size(E) >= 1 ->
    E.

%% Since OTP 23 `blocks' is a list per allocator type (carriers can hold
%% blocks of other types after migrating). Folds it into totals
%% `{blocks, Cur, LastMax, Max}' and `{blocks_size, ...}' (one value in the
%% pool), keeping the original list as `raw_blocks' and the other types'
%% share as `foreign_blocks'.
-spec merge_blocks(atom(), 1 | 3, tuple()) -> [tuple()].
merge_blocks(A, Width, {blocks, PerType}) when is_list(PerType) ->
    Foreign = [T || {Type, _} = T <- PerType, Type =/= A],
    [list_to_tuple([blocks | sum_field(count, Width, PerType)]),
     list_to_tuple([blocks_size | sum_field(size, Width, PerType)]),
     {foreign_blocks, Foreign},
     {raw_blocks, PerType}];
merge_blocks(_A, _Width, E) when is_tuple(E) ->
    [E].

-spec sum_field(count | size, 1 | 3, list()) -> [non_neg_integer()].
sum_field(Field, Width, PerType) ->
    Zero = lists:duplicate(Width, 0),
    lists:foldl(fun({_Type, Stats}, Acc) ->
                        {Field, Vals} = field_values(Field, Width, Stats),
                        lists:zipwith(fun erlang:'+'/2, Acc, Vals);
                   (_Other, Acc) ->
                        Acc
                end, Zero, PerType).

%% The `Width' figures of `Field' in one type's stats; a tuple of another
%% width is fitted (truncated, or padded with its last figure) and anything
%% that is not a non-negative integer counts as 0, so a format change in a
%% later OTP release degrades the figures rather than crashing the read.
-spec field_values(atom(), 1 | 3, term()) -> {atom(), [non_neg_integer()]}.
field_values(Field, Width, Stats) when is_list(Stats) ->
    case lists:keyfind(Field, 1, Stats) of
        T when is_tuple(T), tuple_size(T) >= 2 ->
            Vals = [clean(V) || V <- tl(tuple_to_list(T))],
            Padded = Vals ++ lists:duplicate(Width, lists:last(Vals)),
            {Field, lists:sublist(Padded, Width)};
        _ ->
            {Field, lists:duplicate(Width, 0)}
    end;
field_values(Field, Width, _Stats) ->
    {Field, lists:duplicate(Width, 0)}.

-spec clean(term()) -> non_neg_integer().
clean(V) when is_integer(V), V >= 0 -> V;
clean(_) -> 0.

%%%===================================================================
%%% Snapshot files
%%%===================================================================

%% @doc The bytes {@link reckon_alloc:snapshot_save/1} writes.
-spec encode_file(snapshot()) -> binary().
encode_file(Snapshot) ->
    term_to_binary({?FILE_TAG, ?FILE_VSN, Snapshot}, [compressed]).

%% @doc The snapshot in a file's bytes. `binary_to_term/2' with `safe'
%% refuses to create atoms, so a file naming an atom this node does not
%% know fails as `unsafe_or_corrupt' and leaves the atom table untouched.
-spec decode_file(binary()) -> {ok, snapshot()} | {error, decode_error()}.
decode_file(<<131, _/binary>> = Bin) ->
    try binary_to_term(Bin, [safe]) of
        Term -> validate(Term)
    catch
        error:badarg -> {error, unsafe_or_corrupt}
    end;
decode_file(Bin) ->
    decode_text(Bin).

%% A text file as recon's `snapshot_save/1' writes it (`~p.' of the
%% snapshot, read back with `file:consult/1'). Scanning text creates the
%% atoms it names, so every atom of the text is first looked up with
%% `list_to_existing_atom/1': a file naming an atom this node does not know
%% is refused as `unsafe_or_corrupt' before anything is scanned.
-spec decode_text(binary()) -> {ok, snapshot()} | {error, decode_error()}.
decode_text(Bin) ->
    case unicode:characters_to_list(Bin) of
        Text when is_list(Text) ->
            case known_atoms(Text) of
                true -> parse_text(Text);
                false -> {error, unsafe_or_corrupt};
                not_text -> {error, not_a_term_file}
            end;
        _ ->
            {error, not_a_term_file}
    end.

-spec parse_text(string()) -> {ok, snapshot()} | {error, decode_error()}.
parse_text(Text) ->
    case erl_scan:string(Text) of
        {ok, Tokens, _} ->
            case erl_parse:parse_term(Tokens) of
                {ok, Term} -> validate(Term);
                {error, _} -> {error, not_a_term_file}
            end;
        _ ->
            {error, not_a_term_file}
    end.

%% `true' when every atom the text names already exists; `not_text' for
%% what no Erlang term text holds (an unterminated quote, an escape in a
%% quoted atom).
-spec known_atoms(string()) -> boolean() | not_text.
known_atoms([]) ->
    true;
known_atoms([$" | Rest]) ->
    skip_string(Rest);
known_atoms([$$, _ | Rest]) ->
    known_atoms(Rest);
known_atoms([$% | Rest]) ->
    known_atoms(lists:dropwhile(fun(C) -> C =/= $\n end, Rest));
known_atoms([$' | Rest]) ->
    case lists:splitwith(fun(C) -> C =/= $' andalso C =/= $\\ end, Rest) of
        {Name, [$' | After]} -> existing(Name) andalso known_atoms(After);
        _ -> not_text
    end;
known_atoms([C | Rest]) when C >= $a, C =< $z ->
    {Name, After} = lists:splitwith(fun is_name_char/1, [C | Rest]),
    existing(Name) andalso known_atoms(After);
known_atoms([C | Rest]) when C >= $0, C =< $9 ->
    %% A number, with its base (16#ff) and exponent (1.0e10) letters.
    known_atoms(lists:dropwhile(fun(X) -> is_name_char(X) orelse X =:= $# end, Rest));
known_atoms([C | Rest]) when C >= $A, C =< $Z; C =:= $_ ->
    {_Variable, After} = lists:splitwith(fun is_name_char/1, Rest),
    known_atoms(After);
known_atoms([_ | Rest]) ->
    known_atoms(Rest).

-spec skip_string(string()) -> boolean() | not_text.
skip_string([$\\, _ | Rest]) -> skip_string(Rest);
skip_string([$" | Rest]) -> known_atoms(Rest);
skip_string([_ | Rest]) -> skip_string(Rest);
skip_string([]) -> not_text.

-spec is_name_char(char()) -> boolean().
is_name_char(C) ->
    (C >= $a andalso C =< $z) orelse (C >= $A andalso C =< $Z)
        orelse (C >= $0 andalso C =< $9) orelse C =:= $_ orelse C =:= $@.

-spec existing(string()) -> boolean().
existing(Name) ->
    try list_to_existing_atom(Name) of
        _ -> true
    catch
        error:badarg -> false
    end.

%% Accepts the file wrapper, a bare snapshot, or the raw
%% `[{Allocator, system_info({allocator, Allocator})}]' form.
-spec validate(term()) -> {ok, snapshot()} | {error, {bad_shape, term()}}.
validate({?FILE_TAG, ?FILE_VSN, Snapshot}) ->
    validate(Snapshot);
validate({?FILE_TAG, Vsn, _}) ->
    {error, {bad_shape, {unknown_version, Vsn}}};
validate({Memory, [_ | _] = Allocs}) when is_list(Memory) ->
    case lists:all(fun is_memory_entry/1, Memory) of
        true -> validate_allocs(Memory, Allocs);
        false -> {error, {bad_shape, memory}}
    end;
validate(_) ->
    {error, {bad_shape, not_a_snapshot}}.

-spec is_memory_entry(term()) -> boolean().
is_memory_entry({K, V}) -> is_atom(K) andalso is_integer(V) andalso V >= 0;
is_memory_entry(_) -> false.

-spec validate_allocs(memory_list(), list()) ->
          {ok, snapshot()} | {error, {bad_shape, term()}}.
validate_allocs(Memory, Allocs) ->
    case flatten_raw(Allocs) of
        {ok, Instances} -> normalize_all(Memory, Instances, []);
        {error, _} = Error -> Error
    end.

-spec flatten_raw(list()) -> {ok, list()} | {error, {bad_shape, term()}}.
flatten_raw(Allocs) ->
    try
        {ok, lists:flatmap(fun raw_instances/1, Allocs)}
    catch
        throw:{bad_allocator, Entry} -> {error, {bad_shape, {allocator, Entry}}}
    end.

-spec raw_instances(term()) -> [{{atom(), non_neg_integer()}, list()}].
raw_instances({{A, N}, Props} = E) when is_atom(A), is_integer(N), N >= 0,
                                        is_list(Props) ->
    [E];
raw_instances({A, false}) when is_atom(A) ->
    [];
raw_instances({A, Instances}) when is_atom(A), is_list(Instances) ->
    [case I of
         {instance, N, Props} when is_integer(N), N >= 0, is_list(Props) -> {{A, N}, Props};
         _ -> throw({bad_allocator, A})
     end || I <- Instances];
raw_instances({Id, _}) ->
    throw({bad_allocator, Id});
raw_instances(_) ->
    throw({bad_allocator, unknown}).

-spec normalize_all(memory_list(), list(), list()) ->
          {ok, snapshot()} | {error, {bad_shape, term()}}.
normalize_all(Memory, [], Acc) ->
    {ok, {Memory, lists:reverse(Acc)}};
normalize_all(Memory, [{Id, _} = Instance | Rest], Acc) ->
    try normalize([Instance]) of
        [Normal] -> normalize_all(Memory, Rest, [Normal | Acc])
    catch
        error:_ -> {error, {bad_shape, {allocator, Id}}}
    end.

%%%===================================================================
%%% Extraction
%%%===================================================================

%% Util allocator instances are the ones with carrier containers.
-spec util([allocdata()]) -> [allocdata()].
util(Allocs) ->
    [AD || {_, Props} = AD <- Allocs, is_container(mbcs, Props),
           is_container(sbcs, Props)].

-spec is_container(atom(), list()) -> boolean().
is_container(Key, Props) ->
    case lists:keyfind(Key, 1, Props) of
        {Key, L} when is_list(L) -> true;
        _ -> false
    end.

%% One value of a container: the current or peak figure of `Key'. The
%% pool contributes to `mbcs' for current values only (it has no peaks).
-spec value([tuple()], moment(), mbcs | sbcs, atom()) -> non_neg_integer().
value(Props, current, mbcs, Key) ->
    raw_value(Props, 2, mbcs, Key) + raw_value(Props, 2, mbcs_pool, Key);
value(Props, Moment, Container, Key) ->
    raw_value(Props, pos(Moment), Container, Key).

-spec raw_value([tuple()], 2 | 4, atom(), atom()) -> non_neg_integer().
raw_value(Props, Pos, Container, Key) ->
    case lists:keyfind(Container, 1, Props) of
        {Container, L} when is_list(L) -> tuple_value(lists:keyfind(Key, 1, L), Pos);
        _ -> 0
    end.

-spec tuple_value(tuple() | false, 2 | 4) -> non_neg_integer().
tuple_value(T, Pos) when is_tuple(T), tuple_size(T) >= Pos ->
    case element(Pos, T) of
        V when is_integer(V), V >= 0 -> V;
        _ -> 0
    end;
tuple_value(_, _) ->
    0.

-spec pos(moment()) -> 2 | 4.
pos(current) -> 2;
pos(max) -> 4.

%% `{Used, Allocated}' bytes of one container, used capped at allocated.
-spec usage_pair([tuple()], moment(), mbcs | sbcs) ->
          {non_neg_integer(), non_neg_integer()}.
usage_pair(Props, Moment, Container) ->
    Carriers = value(Props, Moment, Container, carriers_size),
    Blocks = value(Props, Moment, Container, blocks_size),
    {min(Blocks, Carriers), Carriers}.

-spec instance_pair([tuple()], moment()) -> {non_neg_integer(), non_neg_integer()}.
instance_pair(Props, Moment) ->
    {MU, MA} = usage_pair(Props, Moment, mbcs),
    {SU, SA} = usage_pair(Props, Moment, sbcs),
    {MU + SU, MA + SA}.

%%%===================================================================
%%% Figures
%%%===================================================================

%% @doc `Used/Allocated' clamped to `[0.0, 1.0]'; `0/0' is 1.0 (nothing
%% reserved, nothing wasted).
-spec ratio(number(), number()) -> float().
ratio(Part, Whole) when Whole =< 0 ->
    case Part =< 0 of
        true -> 1.0;
        false -> 0.0
    end;
ratio(Part, Whole) ->
    max(0.0, min(1.0, Part / Whole)).

-spec memory(used | allocated | unused | usage | allocated_types
             | allocated_instances, moment(), [allocdata()], factor()) ->
          size() | [{atom() | non_neg_integer(), size()}].
memory(allocated_types, Moment, Allocs, F) ->
    grouped(fun({A, _N}) -> A end, Moment, Allocs, F);
memory(allocated_instances, Moment, Allocs, F) ->
    grouped(fun({_A, N}) -> N end, Moment, Allocs, F);
memory(Key, Moment, Allocs, F) ->
    Pairs = [instance_pair(Props, Moment) || {_, Props} <- util(Allocs)],
    Used = lists:sum([U || {U, _} <- Pairs]),
    Allocated = lists:sum([A || {_, A} <- Pairs]),
    case Key of
        used -> scale(Used, F);
        allocated -> scale(Allocated, F);
        unused -> scale(Allocated - Used, F);
        usage -> ratio(Used, Allocated)
    end.

-spec grouped(fun(({atom(), non_neg_integer()}) -> term()), moment(),
              [allocdata()], factor()) -> [{term(), size()}].
grouped(KeyFun, Moment, Allocs, F) ->
    Sums = lists:foldl(fun({Id, Props}, Acc) ->
                               {_, Allocated} = instance_pair(Props, Moment),
                               orddict:update_counter(KeyFun(Id), Allocated, Acc)
                       end, orddict:new(), util(Allocs)),
    [{K, scale(V, F)} || {K, V} <- Sums].

-spec fragmentation(moment(), [allocdata()], factor()) ->
          [{{atom(), non_neg_integer()}, [{atom(), number()}]}].
fragmentation(Moment, Allocs, F) ->
    Weighed = [fragment(Id, Props, Moment, F) || {Id, Props} <- util(Allocs)],
    [{Id, Vals} || {_Weight, Id, Vals} <- lists:reverse(lists:sort(Weighed))].

-spec fragment({atom(), non_neg_integer()}, [tuple()], moment(), factor()) ->
          {float(), {atom(), non_neg_integer()}, [{atom(), number()}]}.
fragment(Id, Props, Moment, F) ->
    {SB, SC} = usage_pair(Props, Moment, sbcs),
    {MB, MC} = usage_pair(Props, Moment, mbcs),
    SU = ratio(SB, SC),
    MU = ratio(MB, MC),
    Weight = (1.0 - SU) * SC + (1.0 - MU) * MC,
    {Weight, Id, [{sbcs_usage, SU}, {mbcs_usage, MU},
                  {sbcs_block_size, scale(SB, F)}, {sbcs_carriers_size, scale(SC, F)},
                  {mbcs_block_size, scale(MB, F)}, {mbcs_carriers_size, scale(MC, F)}]}.

-spec cache_hit_rates([allocdata()]) ->
          [{{instance, non_neg_integer()}, [{hit_rate | hits | calls, number()}]}].
cache_hit_rates(Allocs) ->
    Weighed = [cache_rate(N, Props) || {{mseg_alloc, N}, Props} <- Allocs],
    [{Id, Vals} || {_Weight, Id, Vals} <- lists:reverse(lists:sort(Weighed))].

-spec cache_rate(non_neg_integer(), [tuple()]) ->
          {float(), {instance, non_neg_integer()}, [{hit_rate | hits | calls, number()}]}.
cache_rate(N, Props) ->
    MemKind = sublist(memkind, Props),
    Hits = tuple_value(lists:keyfind(cache_hits, 1, sublist(status, MemKind)), 2),
    Calls = case lists:keyfind(mseg_alloc, 1, sublist(calls, MemKind)) of
                {mseg_alloc, Giga, Ones} when is_integer(Giga), is_integer(Ones) ->
                    Giga * 1000000000 + Ones;
                _ ->
                    0
            end,
    Rate = ratio(Hits, Calls),
    {(1.0 - Rate) * Calls, {instance, N}, [{hit_rate, Rate}, {hits, Hits}, {calls, Calls}]}.

-spec sublist(atom(), list()) -> list().
sublist(Key, Props) ->
    case lists:keyfind(Key, 1, Props) of
        {Key, L} when is_list(L) -> L;
        _ -> []
    end.

-spec average_block_sizes(moment(), [allocdata()], factor()) ->
          [{atom(), [{mbcs | sbcs, float()}]}].
average_block_sizes(Moment, Allocs, F) ->
    Totals = lists:foldl(fun({{A, _N}, Props}, Acc) ->
                                 add_blocks(A, Props, Moment, Acc)
                         end, orddict:new(), util(Allocs)),
    [{A, [{mbcs, average(MS, MC, F)}, {sbcs, average(SS, SC, F)}]}
     || {A, {MC, MS, SC, SS}} <- Totals].

-spec add_blocks(atom(), [tuple()], moment(), Acc) -> Acc when
      Acc :: orddict:orddict(atom(), {number(), number(), number(), number()}).
add_blocks(A, Props, Moment, Acc) ->
    New = {value(Props, Moment, mbcs, blocks), value(Props, Moment, mbcs, blocks_size),
           value(Props, Moment, sbcs, blocks), value(Props, Moment, sbcs, blocks_size)},
    orddict:update(A, fun({A1, B1, C1, D1}) ->
                              {A2, B2, C2, D2} = New,
                              {A1 + A2, B1 + B2, C1 + C2, D1 + D2}
                      end, New, Acc).

-spec average(number(), number(), factor()) -> float().
average(_Size, 0, _F) -> 0.0;
average(Size, Count, F) -> Size / Count / F.

-spec sbcs_to_mbcs(moment(), [allocdata()]) ->
          [{{atom(), non_neg_integer()}, float() | infinity}].
sbcs_to_mbcs(Moment, Allocs) ->
    Weighed = [{carrier_ratio(value(Props, Moment, sbcs, blocks),
                              value(Props, Moment, mbcs, blocks)), Id}
               || {Id, Props} <- util(Allocs)],
    [{Id, Ratio} || {Ratio, Id} <- lists:reverse(lists:sort(Weighed))].

-spec carrier_ratio(non_neg_integer(), non_neg_integer()) -> float() | infinity.
carrier_ratio(0, 0) -> 0.0;
carrier_ratio(_Sbcs, 0) -> infinity;
carrier_ratio(Sbcs, Mbcs) -> Sbcs / Mbcs.

%%%===================================================================
%%% Grouping by type and unit conversion
%%%===================================================================

%% @doc Merges the instances of each allocator type: counters and sizes are
%% summed, `segments_watermark' takes the highest, settings (`options', names)
%% are those of the highest-numbered instance.
-spec by_type([allocdata()]) -> [{{atom(), [non_neg_integer()]}, [tuple()]}].
by_type(Allocs) ->
    Grouped = lists:foldl(fun({{A, N}, Props}, Acc) ->
                                  orddict:update(A, fun({Ns, Old}) ->
                                                            {[N | Ns], merge(Old, Props, A)}
                                                    end, {[N], Props}, Acc)
                          end, orddict:new(), lists:sort(Allocs)),
    [{{A, lists:reverse(Ns)}, Props} || {A, {Ns, Props}} <- Grouped].

-spec merge([tuple()], [tuple()], atom()) -> [tuple()].
merge(Old, New, Parent) ->
    Keys = lists:usort([element(1, E) || E <- Old ++ New]),
    [merge_key(K, lists:keyfind(K, 1, Old), lists:keyfind(K, 1, New), Parent) || K <- Keys].

-spec merge_key(term(), tuple() | false, tuple() | false, term()) -> tuple().
merge_key(_K, false, E, _Parent) -> E;
merge_key(_K, E, false, _Parent) -> E;
merge_key(K, {K, L1}, {K, L2} = E, _Parent) when is_list(L1), is_list(L2) ->
    case lists:member(K, ?SETTING_KEYS) orelse
        not (is_proplist(L1) andalso is_proplist(L2)) of
        true -> E;
        false -> {K, merge(L1, L2, K)}
    end;
merge_key(segments_watermark, {K, V1}, {K, V2}, _Parent) ->
    {K, max(V1, V2)};
merge_key(K, {K, G1, O1}, {K, G2, O2}, calls) ->
    Total = (G1 + G2) * 1000000000 + O1 + O2,
    {K, Total div 1000000000, Total rem 1000000000};
merge_key(_K, T1, T2, _Parent) ->
    case numeric(T1) andalso numeric(T2) andalso tuple_size(T1) =:= tuple_size(T2) of
        true -> list_to_tuple([element(1, T1) | lists:zipwith(fun erlang:'+'/2,
                                                               tl(tuple_to_list(T1)),
                                                               tl(tuple_to_list(T2)))]);
        false -> T2
    end.

-spec is_proplist(list()) -> boolean().
is_proplist(L) ->
    lists:all(fun(E) -> is_tuple(E) andalso tuple_size(E) >= 1 end, L).

-spec numeric(tuple()) -> boolean().
numeric(T) ->
    tuple_size(T) >= 2 andalso lists:all(fun is_number/1, tl(tuple_to_list(T))).

%% @doc Divides every byte figure of an allocator listing by `F' (see
%% `SIZE_KEYS'); settings and counters are left alone.
-spec convert([{term(), [tuple()]}], factor()) -> [{term(), [tuple()]}].
convert(Allocs, 1) ->
    Allocs;
convert(Allocs, F) ->
    [{Id, convert_props(Props, F)} || {Id, Props} <- Allocs].

-spec convert_props(list(), factor()) -> list().
convert_props(Props, F) ->
    [convert_entry(E, F) || E <- Props].

-spec convert_entry(term(), factor()) -> term().
convert_entry({K, L}, F) when is_list(L) ->
    case lists:member(K, ?OPAQUE_KEYS) orelse not is_proplist(L) of
        true -> {K, L};
        false -> {K, convert_props(L, F)}
    end;
convert_entry(T, F) when is_tuple(T), tuple_size(T) >= 2 ->
    case lists:member(element(1, T), ?SIZE_KEYS) andalso numeric(T) of
        true -> list_to_tuple([element(1, T) | [V / F || V <- tl(tuple_to_list(T))]]);
        false -> T
    end;
convert_entry(E, _F) ->
    E.

-spec scale(non_neg_integer(), factor()) -> size().
scale(Bytes, 1) -> Bytes;
scale(Bytes, F) -> Bytes / F.
