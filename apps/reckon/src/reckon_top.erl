%% @doc A terminal dashboard of the node, for a release's remote shell
%% (`erl -remsh', `bin/app remote_console') or a local one: what
%% observer_cli shows, with the last minutes of the flight recorder
%% ({@link reckon_metrics}) as sparklines and sluice's tools on screen.
%%
%% == Views ==
%% <ul>
%% <li>`home' (key `h'): node, uptime, OTP release, memory by type, the
%%     counts of processes, ports, atoms and ETS tables against their limits
%%     (past 85 % in red, or marked `!' without colours), run queues,
%%     reductions per second, scheduler use per scheduler over the interval,
%%     and sparklines of the last 5 minutes of memory, run queue, reductions
%%     and scheduler use from the recorder ("recorder not running" when it
%%     is not).</li>
%% <li>`processes' (`p'): the top processes by reductions over the last
%%     interval (`r', {@link reckon:proc_window/3}), by memory (`m') or by
%%     message queue length (`l') now ({@link reckon:proc_count/2}): streamed
%%     scans, never a sort of every process. A row's number, then Enter,
%%     shows {@link reckon:info/1} of that process.</li>
%% <li>`ports' (`n'): inet ports by bytes over the interval
%%     ({@link reckon:inet_window/3}), and the count of each port type.</li>
%% <li>`ets' (`e'): the largest tables by memory, with their owners.</li>
%% <li>`alloc' (`a'): {@link reckon_alloc} usage, allocated bytes per type,
%%     the most fragmented instances and the segment cache's hit rates.</li>
%% <li>`sluice' (`s'): every live sluice tool with its levels and what its
%%     counters did over the interval (drops per reason, refusals, ...),
%%     breakers' states (`BLOWN' in red).</li>
%% </ul>
%%
%% == Keys ==
%% The shell of OTP 25 reads whole lines: type a key, then Enter. `h p n e
%% a s' switch views, `r m l' sort the processes, a row's number shows a
%% process, `+' and `-' change the interval by a second (at least 1 s), `q'
%% quits. The help line at the bottom lists them.
%%
%% == What it leaves behind ==
%% Nothing: {@link start/1} returns when `q' is read (or input ends), after
%% every process it started is gone; it sets no timer it does not cancel,
%% no trace flag, and no system flag (scheduler use is measured through
%% {@link reckon:scheduler_usage/1}, which puts the flag back as it was).
%%
%% == Terminal ==
%% It writes through the calling process's group leader (the io protocol),
%% so it works over distribution with no terminal on the node. The width
%% follows `io:columns/0' (at least 80); the screen is cleared between
%% frames when `io:columns/0' answers; colours are used when it answers and
%% `TERM' (on the shell's node) is not `dumb', or as option `colour' says.
-module(reckon_top).

-export([start/0, start/1]).
-export_type([options/0, view/0, sort/0]).

-type view() :: home | processes | ports | ets | alloc | sluice.
%% A view of the dashboard.
-type sort() :: reductions | memory | message_queue_len.
%% What the processes view ranks by.
-type options() :: #{interval => pos_integer(), view => view(), sort => sort(),
                     colour => auto | boolean()}.
%% `interval': ms between refreshes, at least 1000 (default 2000); `view':
%% the first view (`home'); `sort': the processes view's key
%% (`reductions'); `colour': `auto' (default: when the terminal has them),
%% `true' or `false'.

-define(MAX_INTERVAL, 3600000).

%% @doc {@link start/1} with the default options.
-spec start() -> ok | {error, {bad_option, term()}}.
start() ->
    start(#{}).

%% @doc Runs the dashboard in the calling process until `q' (see the keys
%% above); `{error, {bad_option, Key}}' for an unknown key or a bad value.
-spec start(Opts) -> ok | {error, {bad_option, term()}} when Opts :: options().
start(Opts) ->
    case validate(Opts) of
        {ok, Full} -> reckon_top_loop:run(Full);
        Error -> Error
    end.

-spec validate(term()) -> {ok, map()} | {error, {bad_option, term()}}.
validate(Opts) when is_map(Opts) ->
    Spec = [{interval, 2000, fun(I) -> is_integer(I) andalso I >= 1000 andalso I =< ?MAX_INTERVAL end},
            {view, home, fun(V) -> lists:member(V, [home, processes, ports, ets, alloc, sluice]) end},
            {sort, reductions, fun(S) -> lists:member(S, [reductions, memory, message_queue_len]) end},
            {colour, auto, fun(C) -> lists:member(C, [auto, true, false]) end}],
    case maps:keys(maps:without([K || {K, _, _} <- Spec], Opts)) of
        [Unknown | _] ->
            {error, {bad_option, Unknown}};
        [] ->
            case [K || {K, _, Check} <- Spec, maps:is_key(K, Opts), not Check(maps:get(K, Opts))] of
                [Bad | _] -> {error, {bad_option, Bad}};
                [] -> {ok, maps:merge(maps:from_list([{K, D} || {K, D, _} <- Spec]), Opts)}
            end
    end;
validate(_) ->
    {error, {bad_option, options}}.
