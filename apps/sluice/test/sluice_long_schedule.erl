%% The suites' `long_schedule' monitor: runs a fun while a collector
%% process receives the VM's long_schedule reports, and returns them.
%% Scheduler holds are counted this way, with a generous threshold,
%% never by timing a call.
%%
%% A hold that sluice causes happens on every run of the same work; a
%% long schedule the OS causes (it stopped a scheduler thread on a loaded
%% machine) does not repeat. {@link quiet/2} runs the work again when a run
%% saw events, so a test fails only when every run saw them.
-module(sluice_long_schedule).

-export([during/2, quiet/2]).

%% @doc Runs `Attempt(I)' for I = 1, 2, ... up to `Tries' times, until a run
%% returns no events (each run returns the long_schedule events it saw, the
%% ones the test counts); returns the events of the last run: `[]' if any
%% run was quiet. The events of each noisy run are logged.
-spec quiet(pos_integer(), fun((pos_integer()) -> [term()])) -> [term()].
quiet(Tries, Attempt) ->
    quiet(1, Tries, Attempt).

quiet(I, Tries, Attempt) ->
    case Attempt(I) of
        [] ->
            [];
        Events when I >= Tries ->
            Events;
        Events ->
            ct:pal("run ~p of ~p saw long_schedule events, running it again: ~p", [I, Tries, Events]),
            quiet(I + 1, Tries, Attempt)
    end.

%% @doc Runs `Fun' under a long_schedule monitor of `Ms' ms: the events
%% seen, `{Pid, Info}' for each (`Pid' the process, or port, held up).
-spec during(pos_integer(), fun(() -> term())) -> [{pid() | port(), list()}].
during(Ms, Fun) ->
    Self = self(),
    Collector = spawn_link(fun() -> collect(Self, []) end),
    Old = erlang:system_monitor(Collector, [{long_schedule, Ms}]),
    try
        Fun()
    after
        _ = case Old of
                undefined -> erlang:system_monitor(undefined);
                {OldPid, OldOpts} -> erlang:system_monitor(OldPid, OldOpts)
            end
    end,
    Collector ! {done, Self},
    receive {long_schedules, Collector, Events} -> Events after 5000 -> error(no_collector) end.

collect(Parent, Acc) ->
    receive
        {monitor, Who, long_schedule, Info} -> collect(Parent, [{Who, Info} | Acc]);
        {done, Parent} -> Parent ! {long_schedules, self(), lists:reverse(Acc)}
    end.
