%% @private
%% @doc Trace sessions (`trace:session_create/3', OTP 27 and later), used
%% by {@link reckon_trace_owner} when the VM has them: a session has its
%% own patterns and flags, so a trace shares nothing with other tracers,
%% and destroying the session removes everything it set.
%%
%% The `trace' module does not exist on OTP 25, where this project is
%% built and tested, so it is called through a module name read at run
%% time (`trace', unless the persistent term `{reckon_trace_session,
%% module}' names another): xref and dialyzer on OTP 25 cannot know it.
%% On OTP 25, reckon_trace_SUITE runs this path through a stand-in module
%% on the global trace; it has not been run against a real OTP 27.
-module(reckon_trace_session).

-export([available/0, create/1, function/4, process/4, destroy/1]).
-export_type([session/0]).

-type session() :: term().
%% A trace session handle.

%% @doc Whether the VM has trace sessions.
-spec available() -> boolean().
available() ->
    Mod = trace_module(),
    _ = code:ensure_loaded(Mod),
    erlang:function_exported(Mod, session_create, 3).

%% @doc A session whose tracer is the `reckon_tracer' module with `State'.
-spec create(reckon_tracer:state()) -> session().
create(State) ->
    Mod = trace_module(),
    Mod:session_create(reckon_trace, {reckon_tracer, State}, []).

%% @doc Sets `MatchSpec' on `MFA' in the session; the number of functions.
-spec function(session(), mfa(), [tuple()], global | local) -> non_neg_integer().
function(Session, MFA, MatchSpec, Scope) ->
    Mod = trace_module(),
    Mod:function(Session, MFA, MatchSpec, [Scope]).

%% @doc Sets `Flags' on `Procs' in the session; the number of processes.
-spec process(session(), pid() | new, boolean(), [atom()]) -> non_neg_integer().
process(Session, Procs, How, Flags) ->
    Mod = trace_module(),
    try Mod:process(Session, Procs, How, Flags)
    catch error:badarg -> 0
    end.

%% @doc Removes every pattern and flag of the session.
-spec destroy(session()) -> ok.
destroy(Session) ->
    Mod = trace_module(),
    _ = Mod:session_destroy(Session),
    ok.

-spec trace_module() -> module().
trace_module() ->
    persistent_term:get({?MODULE, module}, trace).
