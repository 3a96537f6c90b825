%% @private
%% @doc Stub module of the `sluice_nif' NIF library (Rust, `native/sluice_nif').
%%
%% The library is loaded from this application's `priv' directory when the
%% module is loaded. Loading a newer version of this module while the old one
%% is in use runs the library's `upgrade' callback, which takes over every
%% live resource (see `docs/nif-upgrade.md').
-module(sluice_nif).

-on_load(init/0).

%% Every function the library implements: exported, and declared as NIFs.
-define(NIFS, [breaker_new/1, breaker_ask/1, breaker_melt/1, breaker_succeed/1, breaker_trips/0,
               breaker_control/2, breaker_set_time/2, breaker_info/1,
               rate_new/1, rate_check/3, rate_override/3, rate_set_time/2, rate_sweep/1,
               rate_info/1,
               lock_new/2, lock_fill/4, lock_checkout/1, lock_checkin/2, lock_slot/2,
               lock_resize/2, lock_info/1, lock_empty/1,
               buckets_new/1, box_set_time/2, box_expire/1,
               box_new/1, box_post/2, box_post/3, box_take/2, box_arm/2, box_restore/3,
               box_filtered/2, box_resize/2, box_usage/1, box_info/1, box_set_owner/2,
               box_close/1, drop_random/1, drop_new/1, drop_ask/2, drop_set/4,
               drop_counters/1, drop_take_dropped/1, drop_delete/1, lib_info/0,
               induce_panic/0,
               breaker_install/3, breaker_remove/1, breaker_lookup/1, breaker_ask_name/1,
               breaker_melt_name/1, breaker_changes/0, breaker_blown/0, breaker_count/0,
               breaker_queued/0, drop_new_v1/1, breaker_ask_to_run/1,
               breaker_succeed_name/1,
               box_id/1, box_close_id/1, box_alive_ids/1, box_post_dirty/2, box_small/1,
               box_restore_dirty/3, breaker_report_name/3, tools_list/1, lock_id/1,
               rate_id/1, drop_id/1]).

-export(?NIFS).
-export_type([tool_row/0]).
-nifs(?NIFS).

-spec init() -> ok | {error, term()}.
init() ->
    erlang:load_nif(filename:join(priv_dir(), "sluice_nif"), 0).

-spec priv_dir() -> file:filename().
priv_dir() ->
    case code:priv_dir(sluice) of
        {error, bad_name} ->
            filename:join(filename:dirname(filename:dirname(code:which(?MODULE))), "priv");
        Dir ->
            Dir
    end.

%% Every shape that crosses the library's boundary is an atom, a tuple of
%% at most three fields or a map with atom keys; a semantic refusal is
%% `{error, Reason}' (`badarg' means a handle of another kind or a term of
%% the wrong type). The one exception is the public mail of an `active'
%% box, `{mail, Box, Msgs, Count, Dropped}' (pobox's shape).

-type breaker_state() :: closed | open | half_open | disabled.
%% Times in ms; `delay' 0: reset by hand only.
-type breaker_opts() :: #{strategy := breaker_strategy(), delay := non_neg_integer(),
                          probes := pos_integer(), backoff := float(),
                          max_delay := non_neg_integer(), jitter := float(),
                          manual_clock := boolean()}.
-type breaker_strategy() ::
        #{type := standard, max_r := non_neg_integer(), max_t := non_neg_integer()}
      | #{type := fault_injection, rate := float(), max_r := non_neg_integer(),
          max_t := non_neg_integer()}
      | #{type := failure_rate, ratio := float(), min_calls := non_neg_integer(),
          window := non_neg_integer()}.
-type breaker_info() :: #{state := breaker_state(), asks | ok | blown | injected | melts | trips
                                                    | probes := non_neg_integer()}.

-spec breaker_new(breaker_opts()) -> reference().
breaker_new(_Opts) -> erlang:nif_error(nif_not_loaded).

-spec breaker_ask(reference()) -> ok | blown.
breaker_ask(_Breaker) -> erlang:nif_error(nif_not_loaded).

-spec breaker_melt(reference()) -> breaker_state().
breaker_melt(_Breaker) -> erlang:nif_error(nif_not_loaded).

-spec breaker_trips() -> non_neg_integer().
breaker_trips() -> erlang:nif_error(nif_not_loaded).

-spec breaker_succeed(reference()) -> breaker_state().
breaker_succeed(_Breaker) -> erlang:nif_error(nif_not_loaded).

-spec breaker_control(reference(), reset | disable | enable) -> ok.
breaker_control(_Breaker, _What) -> erlang:nif_error(nif_not_loaded).

-spec breaker_set_time(reference(), non_neg_integer()) -> ok | {error, system_clock}.
breaker_set_time(_Breaker, _Ms) -> erlang:nif_error(nif_not_loaded).

-spec breaker_info(reference()) -> breaker_info().
breaker_info(_Breaker) -> erlang:nif_error(nif_not_loaded).

-spec breaker_install(term(), reference(), non_neg_integer()) -> ok.
breaker_install(_Name, _Breaker, _SlowMs) -> erlang:nif_error(nif_not_loaded).

-spec breaker_remove(term()) -> boolean().
breaker_remove(_Name) -> erlang:nif_error(nif_not_loaded).

-spec breaker_lookup(term()) -> {reference(), non_neg_integer()} | undefined.
breaker_lookup(_Name) -> erlang:nif_error(nif_not_loaded).

-spec breaker_ask_name(term()) -> ok | blown | {error, not_found}.
breaker_ask_name(_Name) -> erlang:nif_error(nif_not_loaded).

-spec breaker_melt_name(term()) -> ok | {error, not_found}.
breaker_melt_name(_Name) -> erlang:nif_error(nif_not_loaded).

-spec breaker_changes() -> [{term(), breaker_state() | removed}].
breaker_changes() -> erlang:nif_error(nif_not_loaded).

-spec breaker_blown() -> [term()].
breaker_blown() -> erlang:nif_error(nif_not_loaded).

-spec breaker_count() -> non_neg_integer().
breaker_count() -> erlang:nif_error(nif_not_loaded).

-spec breaker_queued() -> non_neg_integer().
breaker_queued() -> erlang:nif_error(nif_not_loaded).

-spec breaker_ask_to_run(term()) -> non_neg_integer() | blown | {error, not_found}.
breaker_ask_to_run(_Name) -> erlang:nif_error(nif_not_loaded).

-spec breaker_succeed_name(term()) -> ok | {error, not_found}.
breaker_succeed_name(_Name) -> erlang:nif_error(nif_not_loaded).

-spec breaker_report_name(term(), boolean(), non_neg_integer()) -> ok | {error, not_found}.
breaker_report_name(_Name, _Melt, _Ns) -> erlang:nif_error(nif_not_loaded).

-spec drop_new_v1([float()]) -> reference() | {error, valve_refusal()}.
drop_new_v1(_Rates) -> erlang:nif_error(nif_not_loaded).

%% `{Limit, PeriodMs, Burst}'.
-type rate_spec() :: {pos_integer(), pos_integer(), pos_integer()}.
-type rate_opts() :: #{per_key := rate_spec(), global := rate_spec() | none,
                       max_keys := pos_integer(), max_overrides := non_neg_integer(),
                       manual_clock := boolean()}.

-spec rate_new(rate_opts()) -> reference() | {error, too_fine}.
rate_new(_Opts) -> erlang:nif_error(nif_not_loaded).

-spec rate_check(reference(), term(), pos_integer()) ->
    ok | {error, {retry_after | exceeds_burst, non_neg_integer()}}.
rate_check(_Limiter, _Key, _Cost) -> erlang:nif_error(nif_not_loaded).

-spec rate_override(reference(), term(), rate_spec() | none) ->
    ok | {error, too_many_overrides | too_fine}.
rate_override(_Limiter, _Key, _Spec) -> erlang:nif_error(nif_not_loaded).

-spec rate_set_time(reference(), non_neg_integer()) -> ok | {error, system_clock}.
rate_set_time(_Limiter, _Ms) -> erlang:nif_error(nif_not_loaded).

-spec rate_sweep(reference()) -> non_neg_integer().
rate_sweep(_Limiter) -> erlang:nif_error(nif_not_loaded).

-spec rate_info(reference()) ->
    #{allowed | refused | evicted | keys | overrides := non_neg_integer()}.
rate_info(_Limiter) -> erlang:nif_error(nif_not_loaded).

-spec lock_new(non_neg_integer(), pos_integer()) -> reference().
lock_new(_N, _Capacity) -> erlang:nif_error(nif_not_loaded).

-spec lock_fill(reference(), non_neg_integer(), term(), {pid(), pos_integer()} | none) ->
    ok | {error, no_slot}.
lock_fill(_Lock, _Index, _Resource, _Watcher) -> erlang:nif_error(nif_not_loaded).

-spec lock_checkout(reference()) ->
    {ok, {non_neg_integer(), pos_integer()}, term()} | {error, busy | closed}.
lock_checkout(_Lock) -> erlang:nif_error(nif_not_loaded).

-spec lock_checkin(reference(), {non_neg_integer(), pos_integer()}) -> ok | {error, not_lent}.
lock_checkin(_Lock, _Ref) -> erlang:nif_error(nif_not_loaded).

-spec lock_slot(reference(), non_neg_integer()) -> empty | free | lent | {error, no_slot}.
lock_slot(_Lock, _Index) -> erlang:nif_error(nif_not_loaded).

-spec lock_resize(reference(), non_neg_integer()) -> non_neg_integer() | {error, over_capacity}.
lock_resize(_Lock, _N) -> erlang:nif_error(nif_not_loaded).

%% `slots': the slots in use (0 once closed).
-spec lock_info(reference()) ->
    #{checkouts | busy | deaths | in_use | peak | slots | capacity := non_neg_integer()}.
lock_info(_Lock) -> erlang:nif_error(nif_not_loaded).

-spec lock_empty(reference()) -> non_neg_integer().
lock_empty(_Lock) -> erlang:nif_error(nif_not_loaded).

-spec drop_random(float()) -> boolean().
drop_random(_Rate) -> erlang:nif_error(nif_not_loaded).

-type valve_refusal() :: no_priorities | too_many_priorities | bad_rate.

-spec drop_new([float()]) -> reference() | {error, valve_refusal()}.
drop_new(_Rates) -> erlang:nif_error(nif_not_loaded).

-spec drop_ask(reference(), non_neg_integer()) ->
    ok | drop | {error, not_found | unknown_priority}.
drop_ask(_Valve, _Priority) -> erlang:nif_error(nif_not_loaded).

-spec drop_set(reference(), non_neg_integer(), rate | factor, float()) ->
    ok | {error, not_found | unknown_priority | bad_rate}.
drop_set(_Valve, _Priority, _What, _Value) -> erlang:nif_error(nif_not_loaded).

-spec drop_counters(reference()) ->
    [#{rate | factor := float(), kept | dropped := non_neg_integer()}] | {error, not_found}.
drop_counters(_Valve) -> erlang:nif_error(nif_not_loaded).

-spec drop_take_dropped(reference()) -> non_neg_integer().
drop_take_dropped(_Valve) -> erlang:nif_error(nif_not_loaded).

-spec drop_delete(reference()) -> ok.
drop_delete(_Valve) -> erlang:nif_error(nif_not_loaded).

-spec lib_info() -> [{generation | instances | instance, non_neg_integer()}
                    | {live, [{atom(), integer()}]}].
lib_info() -> erlang:nif_error(nif_not_loaded).

-spec induce_panic() -> no_return().
induce_panic() -> erlang:nif_error(nif_not_loaded).

%% Times in ms, `max_age' 0: none; `notify': armed for `{mail, Box,
%% new_data}' to the owner from the first post.
-type buckets_opts() :: #{max := pos_integer(), width := pos_integer(),
                          max_age := non_neg_integer(), order := newest_first | oldest_first,
                          within := lifo | fifo, when_full := drop_oldest | drop_new,
                          manual_clock := boolean(), owner := pid(), notify := boolean()}.

-spec buckets_new(buckets_opts()) -> reference() | {error, zero_max}.
buckets_new(_Opts) -> erlang:nif_error(nif_not_loaded).

-spec box_expire(sluice_box:box()) -> ok.
box_expire(_Box) -> erlang:nif_error(nif_not_loaded).

-spec box_set_time(sluice_box:box(), non_neg_integer()) -> ok.
box_set_time(_Box, _Ms) -> erlang:nif_error(nif_not_loaded).

%% Times in ms, 0 turning a limit or a policy off; `notify' as for
%% `buckets_new/1'.
-type box_opts() :: #{type := queue | stack | keep_old, max := pos_integer(),
                      max_bytes := non_neg_integer(), owner := pid(), notify := boolean(),
                      max_age := non_neg_integer(), codel_target := non_neg_integer(),
                      codel_interval := non_neg_integer(), red_min := non_neg_integer(),
                      red_max := non_neg_integer(), red_prob := float(),
                      manual_clock := boolean()}.
%% Sojourn times in ns.
-type box_info() :: #{type := queue | stack | keep_old | buckets,
                      posted | delivered | size | max | peak | bytes | regions
                      := non_neg_integer(),
                      dropped := #{overflow | resize | filter | closed | expired | early
                                   := non_neg_integer()},
                      sojourn := #{p50 | p99 | max := non_neg_integer()},
                      max_bytes := pos_integer() | infinity, owner := pid(),
                      closed := boolean()}.

-spec box_new(box_opts()) -> reference() | {error, zero_max}.
box_new(_Opts) -> erlang:nif_error(nif_not_loaded).

-spec box_post_dirty(sluice_box:box(), term()) -> ok | full | {error, closed}.
box_post_dirty(_Box, _Msg) -> erlang:nif_error(nif_not_loaded).

-spec box_small(term()) -> boolean().
box_small(_Msg) -> erlang:nif_error(nif_not_loaded).

-spec box_post(sluice_box:box(), term()) -> ok | full | {error, closed} | large.
box_post(_Box, _Msg) -> erlang:nif_error(nif_not_loaded).

-spec box_post(sluice_box:box(), term(), non_neg_integer()) -> ok | full | {error, closed} | large.
box_post(_Box, _Msg, _Bytes) -> erlang:nif_error(nif_not_loaded).

-spec box_take(sluice_box:box(), pos_integer()) ->
    {[term()], non_neg_integer(), non_neg_integer()} | {error, not_owner | closed}.
box_take(_Box, _N) -> erlang:nif_error(nif_not_loaded).

-spec box_arm(sluice_box:box(), notify | active) ->
    armed | new_data | {[term()], non_neg_integer(), non_neg_integer()}
    | {error, not_owner | closed}.
box_arm(_Box, _Mode) -> erlang:nif_error(nif_not_loaded).

-spec box_restore(sluice_box:box(), [term()], [non_neg_integer()]) ->
    ok | large | {error, not_owner | closed | not_delivered | sizes_mismatch}.
box_restore(_Box, _Msgs, _Sizes) -> erlang:nif_error(nif_not_loaded).

-spec box_restore_dirty(sluice_box:box(), [term()], [non_neg_integer()]) ->
    ok | {error, not_owner | closed | not_delivered | sizes_mismatch}.
box_restore_dirty(_Box, _Msgs, _Sizes) -> erlang:nif_error(nif_not_loaded).

-spec box_filtered(sluice_box:box(), non_neg_integer()) ->
    ok | {error, not_owner | closed | not_delivered}.
box_filtered(_Box, _N) -> erlang:nif_error(nif_not_loaded).

-spec box_resize(sluice_box:box(), pos_integer()) -> ok | {error, closed | zero_max}.
box_resize(_Box, _Max) -> erlang:nif_error(nif_not_loaded).

-spec box_usage(sluice_box:box()) -> {non_neg_integer(), pos_integer()}.
box_usage(_Box) -> erlang:nif_error(nif_not_loaded).

-spec box_info(sluice_box:box()) -> box_info().
box_info(_Box) -> erlang:nif_error(nif_not_loaded).

-spec box_id(term()) -> pos_integer() | false.
box_id(_Term) -> erlang:nif_error(nif_not_loaded).

-spec box_close_id(pos_integer()) -> ok | gone.
box_close_id(_Id) -> erlang:nif_error(nif_not_loaded).

-spec box_alive_ids([pos_integer()]) -> [pos_integer()].
box_alive_ids(_Ids) -> erlang:nif_error(nif_not_loaded).

-spec box_set_owner(sluice_box:box(), pid()) -> ok.
box_set_owner(_Box, _Owner) -> erlang:nif_error(nif_not_loaded).

-spec box_close(sluice_box:box()) -> ok.
box_close(_Box) -> erlang:nif_error(nif_not_loaded).

%% `sluice_tools': every live box, lock, rate limiter and installed
%% breaker, with its info map; histograms in nanoseconds.
-type tool_hist() :: #{count := non_neg_integer(), sum := non_neg_integer(),
                       buckets := [{pos_integer(), pos_integer()}]}.
-type tool_row() :: #{kind := box | lock | limiter | breaker, id := pos_integer(),
                      info := map(), name => term(), hist => tool_hist()}.

-spec tools_list(non_neg_integer()) -> [tool_row()].
tools_list(_Limit) -> erlang:nif_error(nif_not_loaded).

-spec lock_id(reference()) -> pos_integer().
lock_id(_Lock) -> erlang:nif_error(nif_not_loaded).

-spec rate_id(reference()) -> pos_integer().
rate_id(_Limiter) -> erlang:nif_error(nif_not_loaded).

-spec drop_id(reference()) -> pos_integer().
drop_id(_Valve) -> erlang:nif_error(nif_not_loaded).
