%% A stand-in for OTP 27's `trace' module (sessions), on the VM's one
%% global trace: it lets reckon_trace_SUITE run reckon_trace's session path
%% on OTP 25. A session is an agent process that remembers how to undo what
%% was set through it; destroying the session undoes all of it.
-module(reckon_trace_fake_session).

-export([session_create/3, function/4, process/4, session_destroy/1]).

session_create(Name, {Mod, State}, []) when is_atom(Name) ->
    persistent_term:put({?MODULE, created}, persistent_term:get({?MODULE, created}, 0) + 1),
    {fake_session, spawn(fun() -> agent([]) end), {Mod, State}}.

function({fake_session, Agent, _}, MFA, MS, Flags) ->
    N = erlang:trace_pattern(MFA, MS, Flags),
    Agent ! {undo, fun() -> erlang:trace_pattern(MFA, false, Flags) end},
    N.

process({fake_session, Agent, {Mod, State}}, Who, true, Flags) ->
    N = erlang:trace(Who, true, [{tracer, Mod, State} | Flags]),
    Agent ! {undo, fun() -> catch erlang:trace(Who, false, Flags) end},
    N.

session_destroy({fake_session, Agent, _}) ->
    Agent ! {destroy, self()},
    receive {destroyed, Agent} -> ok end.

agent(Undo) ->
    receive
        {undo, F} -> agent([F | Undo]);
        {destroy, From} -> _ = [F() || F <- Undo], From ! {destroyed, self()}
    end.
