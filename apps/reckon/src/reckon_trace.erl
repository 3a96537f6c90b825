%% @doc Production-safe tracing with recon_trace's shapes: replace
%% `recon_trace:' by `reckon_trace:'. Its limit acts in a Rust `erl_tracer'
%% module, before the VM builds a trace message.
%%
%% <h3>Calls and messages</h3>
%% {@link calls/2}, {@link calls/3} trace function calls of
%% `{Module, Function, Arity | '_' | MatchSpec | ShellFun | return_trace}'
%% specs (shell funs become match specs as with `dbg:fun2ms/1'; their
%% `return_trace()' and `exception_trace()' work); {@link messages/3}
%% traces what chosen processes send and receive. {@link clear/0} ends the
%% trace; {@link format/1} is recon_trace's formatter.
%%
%% <h3>Limits</h3>
%% `Max' is a count `N' or a rate `{N, Ms}'. The option `{limit, stop}'
%% (the default, recon's meaning made exact) delivers `N' events (with
%% `{N, Ms}': as long as no `Ms' window holds more than `N'), then ends the
%% trace and removes everything it set. `{limit, throttle}' (with `{N, Ms}'
%% only) keeps tracing at `N' events per window, and prints
%% `K events suppressed' once per window that suppressed some. Every event
%% counts: a call, and also its `return_from' or `exception_from' (a
%% `return_trace' spec with `Max' 10 prints 10 lines, 5 calls and their 5
%% returns when they do not interleave), a `return_to', a send, a receive.
%%
%% The limit is checked by the tracer's `enabled/3' with one atomic load:
%% an event over it is discarded before any term of it exists, so a hot
%% traced function costs its process little and sends nothing. Accepted
%% events go through a bounded `sluice_box' (1000 events, `{buffer, N}')
%% to the formatter: a slow io server makes the box drop the oldest, and
%% the next line says `K events dropped (output too slow)'; nothing grows.
%%
%% <h3>Cleanup and isolation</h3>
%% One trace per node; a new call replaces it. It ends (everything it set
%% removed, patterns and flags, and a last line saying why) when its limit
%% trips in stop mode, on {@link clear/0}, and when the process that
%% started it (the shell) dies. It never takes over someone else's trace:
%% on OTP 25, without trace sessions, a function that already has a trace
%% pattern is left alone (not counted in the returned number), a process
%% that already has a tracer is skipped, and {@link clear/0} removes only
%% what this trace set.
%%
%% <h3>Output</h3>
%% Lines as recon_trace prints them, each capped: terms to depth 20
%% (`{max_depth, D}'; deeper terms, long lists and big maps end in `...')
%% and 4096 bytes (`{max_bytes, B}'; cut, ending in `...(N bytes cut)').
%% Records print by name once imported with {@link reckon_rec:import/1}.
%%
%% reckon_trace needs the `sluice' application (an optional application
%% of reckon): it is started when needed, and without it every call
%% returns `{error, {sluice_not_available, Reason}}'.
-module(reckon_trace).

-export([calls/2, calls/3, messages/3, clear/0, format/1]).
-export_type([tspec/0, max/0, options/0, pid_spec/0]).

-include("reckon_error.hrl").

-type tspec() :: {module() | '_', atom() | '_',
                  arity() | '_' | return_trace | [tuple()] | fun()}.
%% A module (`'_'': every loaded one, only with a named function), a
%% function (`'_'': every one) and an arity, `'_'', `return_trace', a match
%% spec or a fun typed in the shell (turned into a match spec).
-type max() :: pos_integer() | {pos_integer(), pos_integer()}.
%% `N' events, or `{N, Ms}': N per Ms milliseconds.
-type pid_spec() :: all | existing | new | pid_term() | [pid_term()].
%% The processes to trace.
-type pid_term() :: pid() | atom() | {global, term()} | {via, module(), term()}
                  | {0, non_neg_integer(), non_neg_integer()} | string().
%% A process: a pid, a name, `{0, B, C}' or `"<0.B.C>"'.
-type options() :: [{pid, pid_spec()} | {timestamp, formatter | trace} | {args, args | arity}
                    | {scope, global | local} | {io_server, pid()}
                    | {formatter, fun((tuple()) -> iodata())} | return_to | {return_to, boolean()}
                    | {limit, stop | throttle} | {max_depth, pos_integer()}
                    | {max_bytes, pos_integer()} | {buffer, pos_integer()}].
%% recon_trace's options (defaults: `{pid, all}', `{timestamp, formatter}',
%% `{args, args}', `{scope, global}', the caller's group leader as
%% `io_server', recon's format as `formatter'), plus `{limit, stop |
%% throttle}' (default `stop'), `max_depth' (20), `max_bytes' (4096) and
%% `buffer' (1000 events between tracer and formatter).

-define(SPEC_WHY, "not a trace spec {Module, Function, Arity | MatchSpec | ShellFun} or a list of them").

%% @doc Traces calls of `TSpecs', `Max' events, with the default options.
%% See {@link calls/3}.
-spec calls(TSpecs, Max) -> non_neg_integer() | {error, term()} when
      TSpecs :: tspec() | [tspec()], Max :: max().
calls(TSpecs, Max) ->
    calls(TSpecs, Max, []).

%% @doc Traces calls of `TSpecs' in the processes of `{pid, Spec}' and
%% prints them to the `io_server'; returns the number of functions traced
%% (functions already traced by someone else are left out), or
%% `{error, {dangerous_spec, TSpec, Why}}' for a spec refused because it
%% would trace too much or the tracer itself: `'_'' modules with `'_''
%% functions; reckon_trace's own modules and the io path; every function
%% (`'_'') of `erlang', `lists', `io', `io_lib', `maps', `ets', `gen',
%% `gen_server', `proc_lib'. Bad options: `{error, {bad_option, Key}}';
%% `{limit, throttle}' with a count `N' is `{bad_option, limit}'. A
%% malformed spec or limit raises `badarg'.
-spec calls(TSpecs, Max, Opts) -> non_neg_integer() | {error, term()} when
      TSpecs :: tspec() | [tspec()], Max :: max(), Opts :: options().
calls(TSpecs, Max, Opts) ->
    Args = [TSpecs, Max, Opts],
    Patterns = case reckon_trace_spec:tspecs(TSpecs) of
                   {badarg, Why} -> ?RECKON_BADARG(Args, 1, Why);
                   Checked -> Checked
               end,
    Limit = limit(Max, Args),
    with_sluice(fun() ->
                        case {Patterns, reckon_trace_spec:options(Opts, calls)} of
                            {{error, _} = Error, _} -> Error;
                            {_, {error, _} = Error} -> Error;
                            {{ok, Ps}, {ok, Full}} ->
                                start(calls, Ps, reckon_trace_spec:pids(maps:get(pid, Full)),
                                      Limit, Full)
                        end
                end).

%% @doc Traces what the processes of `PidSpec' send and receive, `Max'
%% events, with the options of {@link calls/3} but `pid', `scope', `args'
%% and `return_to'. Returns the number of processes traced (processes
%% with a tracer already are skipped).
-spec messages(PidSpec, Max, Opts) -> non_neg_integer() | {error, term()} when
      PidSpec :: pid_spec(), Max :: max(), Opts :: options().
messages(PidSpec, Max, Opts) ->
    Args = [PidSpec, Max, Opts],
    Pids = case reckon_trace_spec:pids(PidSpec) of
               error -> ?RECKON_BADARG(Args, 1, "not all, existing, new, a process or a list of them");
               Ok -> Ok
           end,
    Limit = limit(Max, Args),
    with_sluice(fun() ->
                        case reckon_trace_spec:options(Opts, messages) of
                            {ok, Full} -> start(messages, [], Pids, Limit, Full);
                            {error, _} = Error -> Error
                        end
                end).

%% @doc Ends the trace, if any: removes every pattern and flag it set (and
%% nothing else), prints the suppressed count of the last window (throttle
%% mode) and `reckon_trace: cleared, tracing stopped'.
-spec clear() -> ok.
clear() ->
    reckon_trace_owner:stop().

%% @doc recon_trace's line for a trace message `{trace, Pid, Tag, ...}' or
%% `{trace_ts, Pid, Tag, ..., Timestamp}', with the default caps: use it in
%% a `formatter' fun that adds to the default output.
-spec format(TraceMsg) -> iodata() when TraceMsg :: tuple().
format(TraceMsg) when is_tuple(TraceMsg), tuple_size(TraceMsg) >= 4 ->
    try reckon_trace_fmt:format(TraceMsg)
    catch error:_ -> ?RECKON_BADARG([TraceMsg], 1, "not a trace message")
    end;
format(Other) ->
    ?RECKON_BADARG([Other], 1, "not a trace message").

-spec limit(term(), [term()]) -> reckon_trace_spec:limit().
limit(Max, Args) ->
    case reckon_trace_spec:max(Max) of
        {ok, Limit} -> Limit;
        {badarg, Why} -> ?RECKON_BADARG(Args, 2, Why)
    end.

-spec start(calls | messages, [reckon_trace_spec:pattern()], term(),
            reckon_trace_spec:limit(), reckon_trace_spec:opts()) ->
    non_neg_integer() | {error, term()}.
start(_Kind, _Patterns, _Pids, #{window := 0}, #{limit := throttle}) ->
    {error, {bad_option, limit}};
start(Kind, Patterns, Pids, Limit, Opts) ->
    reckon_trace_owner:start(#{kind => Kind, patterns => Patterns, pids => Pids,
                               limit => Limit, opts => Opts, caller => self()}).

%% Runs `Fun' once the sluice and reckon applications run.
-spec with_sluice(fun(() -> Result)) -> Result | {error, {sluice_not_available, term()}}.
with_sluice(Fun) ->
    case application:ensure_all_started(sluice) of
        {ok, _} ->
            {ok, _} = application:ensure_all_started(reckon),
            Fun();
        {error, Reason} ->
            {error, {sluice_not_available, Reason}}
    end.
