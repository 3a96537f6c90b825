%% @private
%% @doc Stub module of the `reckon_nif' NIF library (Rust, `native/reckon_nif').
%%
%% The library is loaded from this application's `priv' directory when the
%% module is loaded. Loading a newer version of this module runs the
%% library's `upgrade' callback; it takes over windows in flight, recorders
%% and metric handles, converting the state of each to its own layout when
%% it is another build's (docs/nif-upgrade.md), and refuses the upgrade
%% (the old code keeps running) only while an object lives whose state it
%% cannot convert. An update of a metric answers `moved' when it met the
%% metric in the middle of such a conversion: nothing was applied, and the
%% same call made again (through this module, as now loaded) applies it
%% (`reckon_metrics_lib:metric_add/2' and the others do).
-module(reckon_nif).

-on_load(init/0).

%% Every function the library implements: exported, and declared as NIFs.
-define(NIFS, [top_merge/3, window_new/1, window_add/3, window_finish/1,
               dump_analyze/3,
               metrics_new/1, metrics_tick/2, metrics_record/4, metrics_metric/2,
               metric_add/2, metric_set/2, metric_observe/2, metric_observe_n/2, metric_value/1,
               metric_encode/1, metrics_history/3, metrics_keys/1, metrics_summary/1,
               metrics_info/1, metrics_file_start/2, metrics_file_stop/1, metrics_flush/1,
               metrics_file_stats/1, metrics_read_file/1, metrics_user/1, lib_info/0]).

-type window_opts() :: #{kind := pid | integer, n := non_neg_integer(),
                         cap := non_neg_integer(), expected := non_neg_integer()}.
-type window_found() :: #{top := [{term(), integer()}], born := [{term(), integer()}],
                          died := [{term(), integer()}], born_count := non_neg_integer(),
                          died_count := non_neg_integer()}.

-export(?NIFS).
-nifs(?NIFS).

-spec init() -> ok | {error, term()}.
init() ->
    erlang:load_nif(reckon_lib:nif_path("reckon_nif"), 0).

%% The `N' largest of `Top' (a previous answer) and `Pairs' (at most 4096),
%% largest first.
-spec top_merge(non_neg_integer(), [{term(), integer()}], [{term(), integer()}]) ->
    [{term(), integer()}].
top_merge(_N, _Top, _Pairs) -> erlang:nif_error(nif_not_loaded).

%% A window keyed by pids or port numbers (`kind'), ranking `n', listing
%% `cap' born and died, with room for `expected' keys.
-spec window_new(window_opts()) -> reference().
window_new(_Opts) -> erlang:nif_error(nif_not_loaded).

-spec window_add(reference(), first | second, [{pid() | non_neg_integer(), integer()}]) -> ok.
window_add(_Window, _Phase, _Pairs) -> erlang:nif_error(nif_not_loaded).

-spec window_finish(reference()) -> window_found().
window_finish(_Window) -> erlang:nif_error(nif_not_loaded).

%% The report of the crash dump at `Path' (dirty IO scheduler); see reckon_dump.
-spec dump_analyze(binary(), 1..1000, non_neg_integer()) ->
    {ok, reckon_dump:report()} | {error, file:posix()}.
dump_analyze(_Path, _Top, _Threshold) -> erlang:nif_error(nif_not_loaded).

%% The flight recorder (reckon_metrics, native/reckon_nif/src/metrics.rs).
%% Keys are binaries (term_to_binary of a series or metric name).

-type point() :: #{t := non_neg_integer(), min := float(), max := float(),
                   mean := float(), count := pos_integer()}.
-type agg() :: #{min := float(), max := float(), mean := float(), count := pos_integer()}
             | undefined.
-type percentiles() :: #{count | min | max | p50 | p90 | p99 | p999 := non_neg_integer(),
                         mean := float()}.

-spec metrics_new(#{max_series := 0..100000, max_metrics := 0..100000}) -> reference().
metrics_new(_Opts) -> erlang:nif_error(nif_not_loaded).

-spec metrics_tick(reference(), [{binary(), number()}]) -> non_neg_integer().
metrics_tick(_Recorder, _Points) -> erlang:nif_error(nif_not_loaded).

-spec metrics_record(reference(), binary(), non_neg_integer(), number()) ->
    ok | {error, late | not_finite | key_too_long | full}.
metrics_record(_Recorder, _Key, _T, _Value) -> erlang:nif_error(nif_not_loaded).

-spec metrics_metric(reference(), #{key := binary(), kind := counter | gauge | histogram,
                                    highest := non_neg_integer(), sigfig := 0..255}) ->
    {ok, reference()} | {error, full | other_kind | key_too_long | bad_bounds}.
metrics_metric(_Recorder, _Opts) -> erlang:nif_error(nif_not_loaded).

-spec metric_add(reference(), number()) ->ok | moved.
metric_add(_Metric, _N) -> erlang:nif_error(nif_not_loaded).

-spec metric_set(reference(), number()) ->ok | moved.
metric_set(_Metric, _V) -> erlang:nif_error(nif_not_loaded).

-spec metric_observe(reference(), non_neg_integer()) ->ok | moved.
metric_observe(_Metric, _V) -> erlang:nif_error(nif_not_loaded).

-spec metric_observe_n(reference(), [{non_neg_integer(), non_neg_integer()}]) ->ok | moved.
metric_observe_n(_Metric, _Pairs) -> erlang:nif_error(nif_not_loaded).

-spec metric_value(reference()) -> non_neg_integer() | float() | percentiles().
metric_value(_Metric) -> erlang:nif_error(nif_not_loaded).

-spec metric_encode(reference()) -> binary().
metric_encode(_Metric) -> erlang:nif_error(nif_not_loaded).

-spec metrics_history(reference(), binary(), non_neg_integer()) -> [point()] | undefined.
metrics_history(_Recorder, _Key, _Window) -> erlang:nif_error(nif_not_loaded).

-spec metrics_keys(reference()) -> [binary()].
metrics_keys(_Recorder) -> erlang:nif_error(nif_not_loaded).

-spec metrics_summary(reference()) ->
    [{binary(), #{last := float() | undefined, minute := agg(), hour := agg(), day := agg()}}].
metrics_summary(_Recorder) -> erlang:nif_error(nif_not_loaded).

-spec metrics_info(reference()) ->
    #{series | series_refused | bytes | bound_bytes | metrics_refused := non_neg_integer()}.
metrics_info(_Recorder) -> erlang:nif_error(nif_not_loaded).

-spec metrics_file_start(reference(), #{dir := binary(), keep := 1..100}) ->
    ok | {error, string()}.
metrics_file_start(_Recorder, _Opts) -> erlang:nif_error(nif_not_loaded).

-spec metrics_file_stop(reference()) -> ok.
metrics_file_stop(_Recorder) -> erlang:nif_error(nif_not_loaded).

-spec metrics_flush(reference()) -> ok | {error, no_writer}.
metrics_flush(_Recorder) -> erlang:nif_error(nif_not_loaded).

-spec metrics_file_stats(reference()) ->
    #{written := non_neg_integer(), failed := non_neg_integer(), last := binary() | undefined}
    | undefined.
metrics_file_stats(_Recorder) -> erlang:nif_error(nif_not_loaded).

-spec metrics_read_file(binary()) ->
    {ok, #{taken_at := non_neg_integer(),
           series := [{binary(), #{seconds | minutes | hours := [point()]}}],
           metrics := [{binary(), number() | binary()}]}} | {error, string()}.
metrics_read_file(_Path) -> erlang:nif_error(nif_not_loaded).

-spec metrics_user(reference()) ->
    [#{key := binary(), kind := counter | gauge | histogram,
       value := number() | #{count := non_neg_integer(), sum := float(),
                             buckets := [{pos_integer(), non_neg_integer()}]}}].
metrics_user(_Recorder) -> erlang:nif_error(nif_not_loaded).

%% How many library instances attached so far, how many are loaded now, and
%% the live objects of each kind.
-spec lib_info() -> #{generation := pos_integer(), instances := pos_integer(),
                      window := non_neg_integer(), recorder := non_neg_integer(),
                      metric := non_neg_integer()}.
lib_info() -> erlang:nif_error(nif_not_loaded).
