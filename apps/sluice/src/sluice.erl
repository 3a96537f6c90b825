%% @doc sluice: overload protection for Erlang/OTP nodes (Erlang in Anger,
%% chapter 3), with its hot paths in Rust NIFs. This module is the front
%% page: it lists the capability modules and lists every live tool.
%%
%% == Capabilities ==
%% <ul>
%% <li>`sluice_drop': random-drop valves, stateless or named, with
%%     per-priority keep rates and regulation by a load signal.</li>
%% <li>`sluice_box': bounded `queue', `stack' and `keep_old' buffers with
%%     pobox's delivery shapes and no buffer process.</li>
%% <li>`sluice_buckets': time-bucketed buffers, dropped a bucket at a time
%%     once too old.</li>
%% <li>`sluice_lock': dispcount-style counter locks.</li>
%% <li>`sluice_limit': concurrency limits and per-key rate limits.</li>
%% <li>`sluice_group': worker groups, a member picked in the caller.</li>
%% <li>`sluice_breaker': fuse-style circuit breakers.</li>
%% </ul>
%%
%% == Every live tool ==
%% {@link tools/0} lists every tool alive on the node, named or not, with
%% its counters, levels and histograms (see {@link tool()}), for a metrics
%% recorder to sample. It sends no message: it reads sluice's name tables
%% and calls the NIF library (one call per valve, and one dirty call that
%% walks the library's registries of boxes, locks, limiters and
%% breakers), so its cost follows the number of tools, not how busy their
%% servers are. At most 10 000 tools are listed per call (valves
%% first); {@link tools/1} takes a lower `limit'. A tool that is
%% gone (a box closed or no longer referenced, a lock closed, a valve
%% deleted, a breaker removed) is not listed. Not listed: worker groups
%% (they count nothing) and the stateless {@link sluice_drop:random/1}.
%%
%% Counters are cumulative since the tool was made, histograms too: a
%% reader takes differences between two readings (bucket bounds never
%% change). Ids are unique on the node for its life, whatever the kind,
%% so an anonymous box has a stable series name.
%%
%% == Telemetry ==
%% When a module `telemetry' is loaded, sluice emits telemetry events on
%% its state changes (breakers blown and healed, drop notices of boxes,
%% deaths of lock holders); sluice does not depend on telemetry. The
%% events are listed in the README.
-module(sluice).

-export([tools/0, tools/1]).
-export_type([tool/0, kind/0, hist/0, tools_options/0]).

-define(MAX_TOOLS, 10000).

-type kind() :: drop | box | buckets | lock | limit | breaker.
%% What a tool is: a named valve (`drop'), a box, a buffer of buckets, a
%% lock, a limit (a concurrency limit or a rate limiter) or a breaker.
-type hist() :: #{count := non_neg_integer(), sum := non_neg_integer(),
                  buckets := [{UpperBound :: pos_integer(), Count :: pos_integer()}]}.
%% A histogram, in nanoseconds: how many values, their sum, and its
%% non-empty buckets, lowest first, each with its inclusive upper bound and
%% how many values it holds (not cumulative). A bucket is at most 1/32 of
%% its bound wide (values below 64 ns have one each); the last bucket,
%% bounded by 2^35 - 1 ns (34 s), also holds every larger value.
-type tool() :: #{kind := kind(), id := pos_integer(), name := term() | undefined,
                  counters := #{atom() => non_neg_integer()},
                  gauges := #{atom() => number()},
                  histograms => #{atom() => hist()},
                  priorities => #{term() => #{kept | dropped := non_neg_integer(),
                                              rate | effective_rate := float()}}}.
%% One live tool. `name' is the valve's, the breaker's, the name a box
%% was started under ({@link sluice_box:start_link/1}) or a lock's option
%% `name'; `undefined' for anonymous tools. By kind:
%% <ul>
%% <li>`drop': counters `asked', `kept', `dropped' (all priorities);
%%     gauges `rate' and `effective_rate' (of priority `default') and
%%     `priorities'; `priorities' holds each priority's `kept', `dropped',
%%     `rate' and `effective_rate'.</li>
%% <li>`box' and `buckets': counters `posted', `delivered' and
%%     `dropped_overflow', `dropped_resize', `dropped_filter',
%%     `dropped_closed', `dropped_expired', `dropped_early'; gauges `size',
%%     `max', `peak', `bytes' (and `max_bytes' with a byte budget);
%%     histogram `sojourn' (time from post to delivery).</li>
%% <li>`lock': counters `checkouts', `busy' (refused), `deaths' (holders
%%     that died holding a slot); gauges `in_use', `peak', `slots',
%%     `capacity'.</li>
%% <li>`limit', a concurrency limit: counters `acquired', `refused',
%%     `deaths'; gauges `held', `peak', `max', `max_holders'. A rate
%%     limiter: counters `allowed', `refused', `evicted'; gauges `keys',
%%     `overrides'.</li>
%% <li>`breaker': counters `asks', `ok', `blown', `injected', `melts',
%%     `trips', `probes'; gauge `state' (0 closed, 1 open, 2 half-open, 3
%%     disabled); histogram `run' (how long the funs of
%%     {@link sluice_breaker:run/3} took, exceptions included).</li>
%% </ul>
-type tools_options() :: #{limit => non_neg_integer()}.
%% `limit': most tools listed (default and at most 10 000).

%% @doc Every live tool with its counters, at most 10 000 of them.
-spec tools() -> [tool()].
tools() ->
    sluice_tools:list(?MAX_TOOLS).

%% @doc As {@link tools/0}, with options (see {@link tools_options()}):
%% `{error, {bad_option, Key}}' for an unknown key or a bad value.
-spec tools(Opts) -> [tool()] | {error, {bad_option, term()}} when Opts :: tools_options().
tools(Opts) ->
    Spec = [{limit, ?MAX_TOOLS, fun(V) -> sluice_opts:non_neg_int(V) andalso V =< ?MAX_TOOLS end}],
    case sluice_opts:validate(Opts, Spec) of
        {ok, #{limit := Limit}} -> sluice_tools:list(Limit);
        {error, _} = Bad -> Bad
    end.
