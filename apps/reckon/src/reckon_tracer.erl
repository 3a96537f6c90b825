%% @private
%% @doc The `erl_tracer' module of {@link reckon_trace}: stub of the NIF
%% library `reckon_tracer' (Rust, `native/reckon_tracer'), loaded from this
%% application's `priv' directory when the module is loaded.
%%
%% A trace set by `reckon_trace' names `{tracer, reckon_tracer, State}',
%% where `State' (from {@link new/1}) is a resource of the library holding
%% the trace's limit. `enabled/3' discards an event over the limit by an
%% atomic check, before the VM builds any term of it; `trace/5' takes the
%% event's place in the limit and sends an accepted event to the trace's
%% pump process as `{reckon_trace_event, Tag, Tracee, Term, Opts, TimeUs}'
%% (after `{reckon_trace_suppressed, Count}' when earlier windows of a
%% throttle suppressed events). The event that uses the limit up (or trips
%% a stop) sends `{reckon_trace_limit, State}' to the trace's owner. The
%% pump's mailbox is bounded too: at most `cap' events wait there
%% unacknowledged ({@link ack/1}); beyond, events are dropped and counted.
-module(reckon_tracer).

-on_load(init/0).

-define(NIFS, [enabled/3, trace/5, new/1, take_suppressed/2, close/1, accepted/1, ack/1,
               take_dropped/1, lib_info/0]).

-export(?NIFS).
-nifs(?NIFS).
-export_type([state/0, opts/0]).

-type state() :: reference().
%% A tracer state: the limit of one trace.
-type opts() :: #{n := pos_integer(), window := non_neg_integer(), mode := stop | throttle,
                  pump := pid(), owner := pid(), cap := pos_integer()}.
%% `n' events in all (`window' 0) or per `window' milliseconds; at most
%% `cap' events sent to the pump and not acknowledged ({@link ack/1}).

-spec init() -> ok | {error, term()}.
init() ->
    erlang:load_nif(reckon_lib:nif_path("reckon_tracer"), 0).

-spec enabled(atom(), state(), pid() | port() | undefined) -> trace | discard | remove.
enabled(_Tag, _State, _Tracee) -> erlang:nif_error(nif_not_loaded).

-spec trace(atom(), state(), pid() | port() | undefined, term(), map()) -> ok.
trace(_Tag, _State, _Tracee, _Term, _Opts) -> erlang:nif_error(nif_not_loaded).

%% A tracer state for one trace.
-spec new(opts()) -> state().
new(_Opts) -> erlang:nif_error(nif_not_loaded).

%% Suppressed events not reported yet: of the windows that ended
%% (`window'), or of all of them (`all').
-spec take_suppressed(state(), window | all) -> non_neg_integer().
take_suppressed(_State, _Which) -> erlang:nif_error(nif_not_loaded).

%% Ends the trace: every later event is discarded, and the VM removes the
%% tracer from a process the next time it asks (`trace_status'). True the
%% first time.
-spec close(state()) -> boolean().
close(_State) -> erlang:nif_error(nif_not_loaded).

%% The pump took one event.
-spec ack(state()) -> ok.
ack(_State) -> erlang:nif_error(nif_not_loaded).

%% The events dropped (not sent) because `cap' were waiting for the pump,
%% since the last answer.
-spec take_dropped(state()) -> non_neg_integer().
take_dropped(_State) -> erlang:nif_error(nif_not_loaded).

%% Events accepted, in all or in the running window.
-spec accepted(state()) -> non_neg_integer().
accepted(_State) -> erlang:nif_error(nif_not_loaded).

%% How many library instances attached so far, how many are loaded now, and
%% the live tracer states.
-spec lib_info() -> #{generation := pos_integer(), instances := pos_integer(),
                      tracer := non_neg_integer()}.
lib_info() -> erlang:nif_error(nif_not_loaded).
