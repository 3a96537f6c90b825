%% @doc The in-node flight recorder: a sampler that records the node every
%% second into bounded series kept in Rust, and user metrics (counters,
%% gauges, histograms) that application code updates.
%%
%% <h3>Sampler</h3>
%% {@link start/1}, {@link stop/0}. Off by default; the reckon application
%% env `metrics_sampler' (`off', or an options map as for {@link start/1})
%% starts it at boot. Every second it records `{memory, Type}' for each type
%% of `erlang:memory/0' (`{memory, binary}' is the refc-binary memory),
%% `{count, T}' and `{limit, T}' for `T' in `process', `port', `atom', `ets',
%% `{run_queue, total}' and `{run_queue, I}' per normal scheduler (and
%% `dirty_cpu', `dirty_io'), `{scheduler_usage, total}' and
%% `{scheduler_usage, I}' (0.0 to 1.0), and per-second `reductions',
%% `gc_count', `gc_words_reclaimed', `io_in', `io_out' (bytes) and
%% `context_switches'; every `alloc_interval' s `{allocator, Type,
%% carriers_size | blocks_size}'; every `queue_interval' s (a full process
%% scan) `{message_queue, Rank}', the `queue_top' longest message queues;
%% and every user counter and gauge under `{user, Name, Labels}'. As the
%% node's system monitor (only when no other is set: see {@link info/0}) it
%% records the durations of `long_gc' and `long_schedule' events in the
%% histograms `long_gc_ms' and `long_schedule_ms' ({@link histogram/1}).
%%
%% <h3>Queries</h3>
%% {@link history/2}, {@link summary/0}, {@link series/0}, {@link info/0},
%% and {@link read_file/1} for the files the sampler writes (`file_dir').
%%
%% <h3>User metrics</h3>
%% {@link counter/1}, {@link counter/2}, {@link gauge/1}, {@link gauge/2},
%% {@link histogram/1}, {@link histogram/2}, {@link histogram/3} make (or
%% find) a metric and return its handle; {@link inc/1}, {@link inc/2}, {@link set/2},
%% {@link add/2}, {@link observe/2} update it, each one NIF call on the
%% caller's scheduler (counters and histograms are striped, so updaters on
%% different schedulers do not contend); {@link value/1},
%% {@link percentiles/1}, {@link encode/1} read it.
%%
%% <h3>Memory bound</h3>
%% A series holds at most 98 KB (3600 seconds of 8 bytes, 1440 minutes and
%% 720 hours of 32 bytes) and its key (at most 1 KB); the node holds at most
%% `metrics_max_series' series (default 512, so at most about 50 MB, and
%% about 5 MB for the 40 to 60 series the sampler records on a usual node);
%% a new series beyond the cap is refused and counted ({@link info/0}). A
%% histogram of the default bounds holds about 115 KB; the node holds at
%% most `metrics_max_metrics' user metrics (default 256).
-module(reckon_metrics).

-export([start/1, stop/0, endpoint/0, history/2, summary/0, series/0, info/0, read_file/1,
         prometheus_text/0]).
-export([counter/1, counter/2, gauge/1, gauge/2, histogram/1, histogram/2, histogram/3,
         inc/1, inc/2, set/2, add/2, observe/2, value/1, percentiles/1, encode/1]).

-export_type([metric/0, point/0, summary/0, window_summary/0, options/0,
              histogram_options/0]).

-include("reckon_error.hrl").

-define(MAX_WINDOW, 30 * 86400).
%% Runs `Expr' (a NIF call on a handle); its badarg is raised again from
%% the public function, naming argument `Index'.
-define(UPDATE(Args, Kinds, ValueWhy, HandleWhy, Expr),
        try Expr
        catch error:badarg ->
                {Index__, Why__} = bad_update(Args, Kinds, ValueWhy, HandleWhy),
                ?RECKON_BADARG(Args, Index__, Why__)
        end).
-define(CALL(Args, Index, Why, Expr),
        try Expr
        catch error:badarg -> ?RECKON_BADARG(Args, Index, Why)
        end).

-opaque metric() :: reference().
%% A user metric's handle.
-type point() :: #{t := non_neg_integer(), min := float(), max := float(),
                   mean := float(), count := pos_integer()}.
%% The values of one interval starting at second `t' (since the epoch): a
%% second, a minute or an hour, by the window asked.
-type window_summary() :: #{min := float(), max := float(), mean := float(),
                            count := pos_integer()}.
%% Min, max, mean and count of the points of a window.
-type summary() :: #{last := float() | undefined, minute := window_summary() | undefined,
                     hour := window_summary() | undefined, day := window_summary() | undefined}.
%% A series' newest value and its last minute, hour and day.
-type options() :: #{alloc_interval => 1..3600, queue_interval => 10..3600,
                     queue_top => 1..100, file_dir => file:filename_all() | undefined,
                     file_interval => 1..3600, file_keep => 1..100,
                     http_port => inet:port_number() | undefined,
                     http_ip => inet:ip_address(),
                     long_gc_ms => 1..60000 | off, long_schedule_ms => 1..60000 | off}.
%% The sampler's options: how often (s) allocators are read (10), how often
%% the message queues are scanned (10, at least 10) and how many are kept
%% (5); the directory of the crash-surviving files (`undefined': none), how
%% often (s) one is written (10: the most a crash loses) and how many are
%% kept (3); the port of the `/metrics' endpoint (`undefined': no
%% endpoint; 0: a port the OS picks, see {@link endpoint/0}) and the address
%% it listens on (`{127, 0, 0, 1}'); the thresholds (ms) of the system
%% monitor's `long_gc' and `long_schedule' events (50 and 50; `off': not
%% monitored), whose durations go to the histograms `long_gc_ms' and
%% `long_schedule_ms'.
-type histogram_options() :: #{highest => pos_integer(), sigfig => 1..3}.
%% Values tracked: 0 to `highest' (3 600 000 000, an hour in µs; larger
%% values count as `highest'), with `sigfig' significant digits (2).

%%% Sampler

%% @doc Starts (or restarts with new options) the sampler.
-spec start(Opts) -> ok | {error, Why} when
      Opts :: options(),
      Why :: {bad_option, term()} | options | not_started | {file, Text :: binary()}
           | {http, term()}.
start(Opts) ->
    case reckon_metrics_lib:validate(Opts) of
        {ok, Full} -> reckon_metrics_sampler:start_sampling(Full);
        Error -> Error
    end.

%% @doc Stops the sampler; the series stay.
-spec stop() -> ok | {error, not_started}.
stop() ->
    reckon_metrics_sampler:stop_sampling().

%% @doc Where the `/metrics' endpoint listens (`GET http://Ip:Port/metrics'
%% answers {@link prometheus_text/0}), or `off'.
-spec endpoint() -> #{ip := inet:ip_address(), port := inet:port_number()} | off.
endpoint() ->
    reckon_metrics_sampler:endpoint().

%% @doc The points of series `Series' over the last `Window' seconds,
%% oldest first: per second for a window up to an hour, per minute up to a
%% day, per hour beyond (at most 30 days). `[]' for an unknown series.
-spec history(Series, Window) -> [Point] when
      Series :: term(), Window :: pos_integer(), Point :: point().
history(Series, Window) when is_integer(Window), Window >= 1, Window =< ?MAX_WINDOW ->
    case reckon_metrics_lib:recorder() of
        undefined -> [];
        Rec -> history(Rec, Series, Window)
    end;
history(Series, Window) ->
    ?RECKON_BADARG([Series, Window], 2, "not a window in seconds, 1..2592000 (30 days)").

-spec history(reference(), term(), pos_integer()) -> [point()].
history(Rec, Series, Window) ->
    case reckon_nif:metrics_history(Rec, reckon_metrics_lib:key(Series), Window) of
        undefined -> [];
        Points -> Points
    end.

%% @doc Every series with its newest value and its last minute, hour and day.
-spec summary() -> [{Series, Summary}] when Series :: term(), Summary :: summary().
summary() ->
    case reckon_metrics_lib:recorder() of
        undefined -> [];
        Rec -> lists:sort([{reckon_metrics_lib:name(K), S} || {K, S} <- reckon_nif:metrics_summary(Rec)])
    end.

%% @doc Every series' name.
-spec series() -> [Series] when Series :: term().
series() ->
    case reckon_metrics_lib:recorder() of
        undefined -> [];
        Rec -> lists:sort([reckon_metrics_lib:name(K) || K <- reckon_nif:metrics_keys(Rec)])
    end.

%% @doc Series held and refused, the bytes held and their bound, user
%% metrics refused, and the system monitor: `on' (the sampler records
%% long_gc and long_schedule), `{taken, Pid}' (`Pid' held it when sampling
%% started, and keeps it) or `off' (not sampling, or both thresholds off).
-spec info() -> #{series := N, series_refused := N, bytes := N, bound_bytes := N,
                  metrics_refused := N, system_monitor := on | {taken, pid()} | off}
                | {error, not_started} when N :: non_neg_integer().
info() ->
    case reckon_metrics_lib:recorder() of
        undefined -> {error, not_started};
        Rec -> (reckon_nif:metrics_info(Rec))#{system_monitor => reckon_metrics_sysmon:status()}
    end.

%% @doc One file the sampler wrote (`<file_dir>/reckon_metrics.<N>.mpk',
%% the highest `N' the newest), as the recorder held it when the file was
%% written: every series' seconds, minutes and hours in the shapes of
%% {@link history/2}, and every user metric's value (a histogram's in its
%% {@link encode/1} form). Atoms this node does not know are not made.
-spec read_file(Path) -> {ok, #{taken_at := T, series := [{Series, Tiers}],
                                metrics := [{Metric, number() | binary()}]}}
                         | {error, {unreadable, Text :: binary()}} when
      Path :: file:filename_all(), T :: non_neg_integer(), Series :: term(),
      Tiers :: #{seconds | minutes | hours := [point()]}, Metric :: term().
read_file(Path) ->
    reckon_metrics_lib:read_file(Path).

%% @doc Every series' newest value and every user metric in the Prometheus
%% text format (0.0.4): sampler series as `erlang_vm_*' gauges with labels,
%% user counters as `<name>_total', histograms as Prometheus histograms;
%% a user metric whose name is not an atom, string or binary, or whose
%% labels are not a list of `{Key, Value}', is left out.
-spec prometheus_text() -> iodata().
prometheus_text() ->
    reckon_metrics_prom:render().

%%% User metrics

%% @doc `counter(Name, [])'.
-spec counter(Name) -> {ok, metric()} | {error, Why} when Name :: term(), Why :: make_error().
counter(Name) -> counter(Name, []).

%% @doc The counter `Name' with `Labels' (any terms), made at 0 if new.
-spec counter(Name, Labels) -> {ok, metric()} | {error, Why} when
      Name :: term(), Labels :: term(), Why :: make_error().
counter(Name, Labels) -> make(Name, Labels, counter, #{}).

%% @doc `gauge(Name, [])'.
-spec gauge(Name) -> {ok, metric()} | {error, Why} when Name :: term(), Why :: make_error().
gauge(Name) -> gauge(Name, []).

%% @doc The gauge `Name' with `Labels', made at 0.0 if new.
-spec gauge(Name, Labels) -> {ok, metric()} | {error, Why} when
      Name :: term(), Labels :: term(), Why :: make_error().
gauge(Name, Labels) -> make(Name, Labels, gauge, #{}).

%% @doc `histogram(Name, [], #{})'.
-spec histogram(Name) -> {ok, metric()} | {error, Why} when Name :: term(), Why :: make_error().
histogram(Name) -> histogram(Name, [], #{}).

%% @doc `histogram(Name, Labels, #{})'.
-spec histogram(Name, Labels) -> {ok, metric()} | {error, Why} when
      Name :: term(), Labels :: term(), Why :: make_error().
histogram(Name, Labels) -> histogram(Name, Labels, #{}).

%% @doc The histogram `Name' with `Labels', made empty if new (one already
%% made keeps its bounds).
-spec histogram(Name, Labels, Opts) -> {ok, metric()} | {error, Why} when
      Name :: term(), Labels :: term(), Opts :: histogram_options(), Why :: make_error().
histogram(Name, Labels, Opts) -> make(Name, Labels, histogram, Opts).

-type make_error() :: full | other_kind | key_too_long | bad_bounds | not_started
                      | {bad_option, term()}.
%% `full': `metrics_max_metrics' metrics exist; `other_kind': the name is
%% a metric of another kind; `key_too_long': name and labels encode to more
%% than 1 KB.

-spec make(term(), term(), counter | gauge | histogram, term()) ->
    {ok, metric()} | {error, make_error()}.
make(Name, Labels, Kind, Opts) ->
    case {reckon_metrics_lib:recorder(), hist_opts(Opts)} of
        {undefined, _} -> {error, not_started};
        {_, {error, _} = Error} -> Error;
        {Rec, {ok, Highest, Sigfig}} ->
            reckon_nif:metrics_metric(Rec, #{key => reckon_metrics_lib:user_key(Name, Labels),
                                             kind => Kind, highest => Highest, sigfig => Sigfig})
    end.

-spec hist_opts(term()) -> {ok, pos_integer(), 1..3} | {error, {bad_option, term()} | options}.
hist_opts(Opts) when is_map(Opts) ->
    case maps:keys(maps:without([highest, sigfig], Opts)) of
        [K | _] -> {error, {bad_option, K}};
        [] ->
            case {maps:get(highest, Opts, 3600000000), maps:get(sigfig, Opts, 2)} of
                {H, _} when not (is_integer(H) andalso H >= 2 andalso H < 1 bsl 62) ->
                    {error, {bad_option, highest}};
                {_, S} when S =/= 1, S =/= 2, S =/= 3 -> {error, {bad_option, sigfig}};
                {H, S} -> {ok, H, S}
            end
    end;
hist_opts(_) ->
    {error, options}.

%% @doc Adds 1 to a counter.
-spec inc(Counter) -> ok when Counter :: metric().
inc(Counter) ->
    ?UPDATE([Counter], [counter], "", "not a counter handle",
            reckon_metrics_lib:metric_add(Counter, 1)).

%% @doc Adds `N' to a counter (a non-negative integer) or a gauge (a number).
-spec inc(Metric, N) -> ok when Metric :: metric(), N :: number().
inc(Metric, N) ->
    ?UPDATE([Metric, N], [counter, gauge],
            "not a non-negative integer (counter) or number (gauge)",
            "not a counter or gauge handle", reckon_metrics_lib:metric_add(Metric, N)).

%% @doc Sets a gauge.
-spec set(Gauge, Value) -> ok when Gauge :: metric(), Value :: number().
set(Gauge, Value) ->
    ?UPDATE([Gauge, Value], [gauge], "not a number", "not a gauge handle",
            reckon_metrics_lib:metric_set(Gauge, Value)).

%% @doc Adds `Delta' (a number, negative to subtract) to a gauge.
-spec add(Gauge, Delta) -> ok when Gauge :: metric(), Delta :: number().
add(Gauge, Delta) ->
    ?UPDATE([Gauge, Delta], [gauge], "not a number", "not a gauge handle",
            reckon_metrics_lib:metric_add(Gauge, Delta)).

%% @doc Records `Value' (a non-negative integer) in a histogram.
-spec observe(Histogram, Value) -> ok when Histogram :: metric(), Value :: non_neg_integer().
observe(Histogram, Value) ->
    ?UPDATE([Histogram, Value], [histogram], "not a non-negative integer below 2^64",
            "not a histogram handle", reckon_metrics_lib:metric_observe(Histogram, Value)).

%% The argument an update refused: the value (argument 2) when the handle
%% is of a kind the update takes, else the handle.
-spec bad_update([term()], [counter | gauge | histogram], string(), string()) ->
    {1 | 2, string()}.
bad_update([Metric | _] = Args, Kinds, ValueWhy, HandleWhy) ->
    Kind = try reckon_nif:metric_value(Metric) of
               V when is_integer(V) -> counter;
               V when is_float(V) -> gauge;
               #{} -> histogram
           catch error:badarg -> none
           end,
    case lists:member(Kind, Kinds) andalso length(Args) =:= 2 of
        true -> {2, ValueWhy};
        false -> {1, HandleWhy}
    end.

%% @doc A counter's sum, a gauge's value, or a histogram's {@link percentiles/1}.
-spec value(Metric) -> number() | map() when Metric :: metric().
value(Metric) ->
    ?CALL([Metric], 1, "not a metric handle", reckon_nif:metric_value(Metric)).

%% @doc Count, min, max, mean and the 50th, 90th, 99th and 99.9th
%% percentiles of a histogram.
-spec percentiles(Histogram) -> #{count | min | max | p50 | p90 | p99 | p999 := non_neg_integer(),
                                  mean := float()} when Histogram :: metric().
percentiles(Histogram) ->
    case ?CALL([Histogram], 1, "not a histogram handle", reckon_nif:metric_value(Histogram)) of
        #{} = P -> P;
        _ -> ?RECKON_BADARG([Histogram], 1, "not a histogram handle")
    end.

%% @doc A histogram in HdrHistogram's standard compressed (V2, deflate)
%% encoding, base64: what HdrHistogram's `decodeFromCompressedByteBuffer',
%% HdrHistogram_py's `HdrHistogram.decode' and `HistogramLogReader' read.
-spec encode(Histogram) -> binary() when Histogram :: metric().
encode(Histogram) ->
    ?CALL([Histogram], 1, "not a histogram handle", reckon_nif:metric_encode(Histogram)).

%%% Internals

