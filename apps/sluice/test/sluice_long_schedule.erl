%% The suites' `long_schedule' monitor: runs a fun while a collector
%% process receives the VM's long_schedule reports, and returns them.
%% Scheduler holds are counted this way, with a generous threshold,
%% never by timing a call.
-module(sluice_long_schedule).

-export([during/2]).

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
