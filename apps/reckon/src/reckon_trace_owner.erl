%% @private
%% @doc The process that owns a trace of {@link reckon_trace}: one per node,
%% registered as `reckon_trace_owner', replaced by the next call.
%%
%% It makes the trace's pieces (the formatter and its box, the pump, the
%% tracer state), sets the patterns and flags, and remembers every one it
%% set. It removes exactly those (and closes the tracer state, so the VM
%% drops the tracer from any process it missed) when the limit trips (stop
%% mode), on `reckon_trace:clear/0', when the next trace replaces it, and
%% when the process that started the trace dies (it monitors it).
%%
%% Where the VM has trace sessions (OTP 27 and later,
%% `reckon_trace_session'), the trace is a session of its own: it shares
%% no pattern or flag with any other tracer, and destroying the session
%% removes all of it. Isolation without trace sessions (OTP 25): a function that already has a
%% call trace pattern (`erlang:trace_info(MFA, traced)') is left alone and
%% not counted, a process that already has a tracer is skipped, and the
%% default flags for new processes are only set when nobody set them. So a
%% trace by someone else is never taken over, and the cleanup removes only
%% what this trace set. What cannot be told apart: a pattern someone else
%% sets on one of our functions while our trace runs is removed with ours.
%%
%% The pump is a process that only posts what the tracer sends it into the
%% formatter's box (a NIF cannot post into another library's resource). Its
%% mailbox stays short: the tracer sends it only the events the limit
%% accepts, a post is one NIF call, and the tracer never lets more than
%% `buffer' events wait for it (the pump acknowledges each one; events
%% beyond are dropped in the tracer, counted, and printed by the formatter
%% with the box's drops).
%%
%% Hot upgrades: the three processes start from exported functions (no fun
%% of this module is kept), and each loop calls itself fully qualified, so
%% after a new version of this module is loaded each one goes on in it at its
%% next message; an idle one looks again every second (`?HOP_MS'), so the
%% old code is soon unused and purged without killing anyone. The state of
%% a loop keeps its shape across versions.
-module(reckon_trace_owner).

-export([start/1, stop/0]).
%% Entry points and loops of the owner and the pump (called fully qualified,
%% so that they move to a newly loaded version of this module).
-export([init/2, loop/1, pump_init/1, pump/2]).

-define(NAME, reckon_trace_owner).
%% What a live trace set, in reckon's node-wide table, so that the next
%% call removes it if the owner was killed before it could.
-define(LEFT, {reckon_trace, set}).
%% The longest an idle loop stays in the code of an old version.
-define(HOP_MS, 1000).

-type request() :: #{kind := calls | messages, patterns := [reckon_trace_spec:pattern()],
                     pids := all | existing | new | [pid()], limit := reckon_trace_spec:limit(),
                     opts := reckon_trace_spec:opts(), caller := pid()}.
-export_type([request/0]).

%% @doc Replaces the node's trace by the one `Req' describes; the number of
%% functions (calls) or processes (messages) it traces.
-spec start(request()) -> non_neg_integer() | {error, term()}.
start(Req) ->
    ok = stop(),
    Parent = self(),
    {Pid, Ref} = spawn_monitor(?MODULE, init, [Parent, Req]),
    receive
        {Pid, Answer} ->
            demonitor(Ref, [flush]),
            Answer;
        {'DOWN', Ref, process, Pid, Reason} ->
            {error, {tracer_failed, Reason}}
    end.

%% @doc Ends the node's trace, if any, once everything it set is removed.
-spec stop() -> ok.
stop() ->
    case whereis(?NAME) of
        undefined ->
            leftovers(reckon_keeper:get(?LEFT, none));
        Pid ->
            Ref = monitor(process, Pid),
            Pid ! {reckon_trace_stop, Ref},
            receive {'DOWN', Ref, process, Pid, _} -> ok end
    end.

-spec init(pid(), request()) -> ok.
init(Parent, #{caller := Caller, limit := Limit, opts := Opts} = Req) ->
    process_flag(trap_exit, true),
    try register(?NAME, self()) of
        true ->
            CallerRef = monitor(process, Caller),
            {ok, Fmt, Box} = reckon_trace_fmt:start(Opts),
            Pump = spawn_link(?MODULE, pump_init, [Box]),
            Mode = case Limit of #{window := 0} -> stop; _ -> maps:get(limit, Opts) end,
            State = reckon_tracer:new(Limit#{mode => Mode, pump => Pump, owner => self(),
                                             cap => maps:get(buffer, Opts)}),
            Pump ! {state, State},
            Fmt ! {state, State},
            Flags = flags(Req),
            Tracer = {tracer, reckon_tracer, State},
            Own = [self(), Fmt, Pump, maps:get(io_server, Opts)],
            Session = case reckon_trace_session:available() of
                          true -> reckon_trace_session:create(State);
                          false -> none
                      end,
            Set0 = #{state => State, flags => Flags, mfas => [], new => false, pump => Pump,
                     fmt => Fmt, caller => CallerRef, limit => Limit, mode => Mode,
                     session => Session},
            {Count, Set1} = patterns(Req, Set0),
            {Procs, Set} = processes(maps:get(pids, Req), [Tracer | Flags], Own, Set1),
            _ = Session =:= none andalso
                reckon_keeper:put(?LEFT, {maps:get(scope, Set, global), maps:get(mfas, Set),
                                          maps:get(new, Set), Flags}),
            Parent ! {self(), case maps:get(kind, Req) of calls -> Count; messages -> Procs end},
            _ = tick(Set),
            ?MODULE:loop(Set)
    catch
        error:badarg -> Parent ! {self(), {error, already_tracing}}, ok
    end.

-spec flags(request()) -> [atom()].
flags(#{kind := messages}) ->
    [send, 'receive'];
flags(#{kind := calls, opts := Opts}) ->
    [call] ++ [arity || maps:get(args, Opts) =:= arity]
        ++ [return_to || maps:get(return_to, Opts)].

%% Sets each pattern on the functions it names that nobody traces yet.
-spec patterns(request(), map()) -> {non_neg_integer(), map()}.
patterns(#{kind := messages}, Set) ->
    {0, Set};
patterns(#{patterns := Patterns, opts := #{scope := Scope}}, Set) ->
    MFAs = lists:append([[{MFA, MS} || MFA <- reckon_trace_spec:expand(P, Scope)]
                         || {_, _, _, MS} = P <- Patterns]),
    Mine = [MFA || {MFA, MS} <- lists:ukeysort(1, MFAs), set_pattern(MFA, MS, Scope, Set)],
    {length(Mine), Set#{mfas => Mine, scope => Scope}}.

-spec set_pattern(mfa(), [tuple()], global | local, map()) -> boolean().
set_pattern(MFA, MS, Scope, #{session := none}) ->
    erlang:trace_info(MFA, traced) =:= {traced, false}
        andalso erlang:trace_pattern(MFA, MS, [Scope]) > 0;
set_pattern(MFA, MS, Scope, #{session := Session}) ->
    reckon_trace_session:function(Session, MFA, MS, Scope) > 0.

%% Sets the flags on each process that has no tracer yet, and for new
%% processes when asked and nobody set them.
-spec processes(all | existing | new | [pid()], list(), [pid()], map()) ->
    {non_neg_integer(), map()}.
processes(Spec, TFlags, Own, Set) ->
    Existing = case Spec of
                   new -> [];
                   _ when Spec =:= all; Spec =:= existing -> erlang:processes() -- Own;
                   Pids -> Pids -- Own
               end,
    Traced = length([P || P <- Existing, set_flags(P, TFlags, Set)]),
    New = (Spec =:= all orelse Spec =:= new) andalso set_flags(new, TFlags, Set),
    {Traced, Set#{new => New}}.

%% In a session, flags are the session's own; without, only a process (or
%% the default for new processes) without a tracer gets ours.
-spec set_flags(pid() | new, list(), map()) -> boolean().
set_flags(Who, [_Tracer | Flags], #{session := Session}) when Session =/= none ->
    Expect = case Who of new -> 0; _ -> 1 end,
    reckon_trace_session:process(Session, Who, true, Flags) =:= Expect;
set_flags(Who, TFlags, _Set) ->
    Expect = case Who of new -> 0; _ -> 1 end,
    erlang:trace_info(Who, tracer) =:= {tracer, []}
        andalso (catch erlang:trace(Who, true, TFlags)) =:= Expect.

-spec loop(map()) -> ok.
loop(#{state := State, caller := CallerRef, pump := Pump, fmt := Fmt} = Set) ->
    receive
        {reckon_trace_limit, State} ->
            finish(Set, limit_note(Set));
        {reckon_trace_stop, _Ref} ->
            finish(Set, "reckon_trace: cleared, tracing stopped");
        {'DOWN', CallerRef, process, _, _} ->
            finish(Set, "reckon_trace: the process that started the trace exited, tracing stopped");
        {'EXIT', Who, Reason} when Who =:= Pump; Who =:= Fmt ->
            finish(Set, io_lib:format("reckon_trace: output process failed (~P), tracing stopped",
                                      [Reason, 8]));
        reckon_trace_tick ->
            report(reckon_tracer:take_suppressed(State, window), Pump),
            _ = tick(Set),
            ?MODULE:loop(Set);
        _ ->
            ?MODULE:loop(Set)
    after ?HOP_MS ->
            ?MODULE:loop(Set)
    end.

-spec limit_note(map()) -> string().
limit_note(#{limit := #{n := N, window := 0}}) ->
    io_lib:format("reckon_trace: limit of ~b events reached, tracing stopped", [N]);
limit_note(#{limit := #{n := N, window := Ms}}) ->
    io_lib:format("reckon_trace: more than ~b events in ~b ms, tracing stopped", [N, Ms]).

%% Throttle mode asks for the suppressed counts of ended windows once per
%% window, so a window after which no event came is reported too.
-spec tick(map()) -> reference() | none.
tick(#{mode := throttle, limit := #{window := Ms}}) ->
    erlang:send_after(Ms, self(), reckon_trace_tick);
tick(_) ->
    none.

-spec report(non_neg_integer(), pid()) -> ok.
report(0, _Pump) -> ok;
report(K, Pump) -> Pump ! {reckon_trace_suppressed, K}, ok.

%% Removes everything this trace set, then lets the output drain and end.
-spec finish(map(), iodata()) -> ok.
finish(#{state := State, flags := Flags, mfas := MFAs, new := New, pump := Pump,
         mode := Mode} = Set, Note) ->
    _ = reckon_tracer:close(State),
    case Set of
        #{session := none} ->
            _ = [erlang:trace_pattern(MFA, false, [maps:get(scope, Set)]) || MFA <- MFAs],
            ok = untrace({tracer, {reckon_tracer, State}}, New, Flags);
        #{session := Session} ->
            ok = reckon_trace_session:destroy(Session)
    end,
    _ = reckon_keeper:put(?LEFT, none),
    _ = Mode =:= throttle andalso report(reckon_tracer:take_suppressed(State, all), Pump),
    Pump ! {reckon_trace_note, Note},
    Pump ! reckon_trace_end,
    ok.

%% Removes the flags of every process whose tracer is this trace's (and
%% the flags for new processes, if this trace set them). For a tracer
%% module `erlang:trace_info(P, tracer)' answers `{tracer, {Module,
%% State}}', which OTP 25's spec of trace_info/2 does not admit (it says
%% `{tracer, Module, State}'), hence the dialyzer exception.
-dialyzer({nowarn_function, untrace/3}).
-spec untrace(term(), boolean(), [atom()]) -> ok.
untrace(Ours, New, Flags) ->
    _ = New andalso erlang:trace_info(new, tracer) =:= Ours
        andalso (catch erlang:trace(new, false, Flags)) =:= 0,
    _ = [catch erlang:trace(P, false, Flags)
         || P <- erlang:processes(), erlang:trace_info(P, tracer) =:= Ours],
    ok.

%% Removes what a killed owner had set: its patterns, and the flags of
%% every process (and for new processes) whose tracer is a reckon_tracer
%% state (there is one trace per node, and its owner is gone).
-dialyzer({nowarn_function, leftovers/1}).
-spec leftovers(none | {global | local, [mfa()], boolean(), [atom()]}) -> ok.
leftovers(none) ->
    ok;
leftovers({Scope, MFAs, New, Flags}) ->
    _ = [erlang:trace_pattern(MFA, false, [Scope]) || MFA <- MFAs],
    IsOurs = fun(Who) -> case erlang:trace_info(Who, tracer) of
                             {tracer, {reckon_tracer, _}} -> true;
                             _ -> false
                         end
             end,
    _ = New andalso IsOurs(new) andalso (catch erlang:trace(new, false, Flags)) =:= 0,
    _ = [catch erlang:trace(P, false, Flags) || P <- erlang:processes(), IsOurs(P)],
    _ = reckon_keeper:put(?LEFT, none),
    ok.

%% The pump waits for the tracer state, then pumps.
-spec pump_init(sluice_box:box()) -> ok.
pump_init(Box) ->
    receive {state, State} -> ?MODULE:pump(Box, State) end.

-spec pump(sluice_box:box(), reckon_tracer:state()) -> ok.
pump(Box, State) ->
    receive
        reckon_trace_end ->
            _ = sluice_box:post(Box, reckon_trace_end),
            ok;
        {reckon_trace_event, _, _, _, _, _} = Event ->
            ok = reckon_tracer:ack(State),
            _ = sluice_box:post(Box, Event),
            ?MODULE:pump(Box, State);
        Msg ->
            _ = sluice_box:post(Box, Msg),
            ?MODULE:pump(Box, State)
    after ?HOP_MS ->
            ?MODULE:pump(Box, State)
    end.
