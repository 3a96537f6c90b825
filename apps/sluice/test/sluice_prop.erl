%% Runs a PropEr property for the model suites: as many runs as the
%% environment variable says (else a default), commands up to a size, the
%% time taken logged.
-module(sluice_prop).
-include_lib("proper/include/proper.hrl").

-export([check/4, verdict/4]).

%% @doc Quickchecks `Prop' `$RunsVar' times (default `Default') with
%% sizes up to `MaxSize'; `true', or a badmatch when a run failed.
-spec check(term(), string(), pos_integer(), pos_integer()) -> true.
check(Prop, RunsVar, Default, MaxSize) ->
    Runs = case os:getenv(RunsVar) of
               false -> Default;
               N -> list_to_integer(N)
           end,
    Opts = [{numtests, Runs}, {max_size, MaxSize}, {to_file, user}],
    {Time, Result} = timer:tc(proper, quickcheck, [Prop, Opts]),
    ct:pal("~s: ~p runs in ~.1f s", [RunsVar, Runs, Time / 1.0e6]),
    true = Result.

%% @doc The verdict on one run of a `proper_statem' model: it passes when
%% the run ended `ok' and `Holds' (a further check of the suite); commands
%% are aggregated by name. On failure the commands, the run and `Extra'
%% (`[{Label, Term}]': the configuration, other observations) are printed.
-spec verdict(list(), {term(), term(), term()}, [{string(), term()}], boolean()) ->
    proper:test().
verdict(Cmds, {History, State, Result}, Extra, Holds) ->
    Lines = [{"commands", Cmds}, {"history", History}, {"state", State}, {"result", Result}
             | Extra],
    ?WHENFAIL(ct:pal(lists:append([Label ++ " ~p~n" || {Label, _} <- Lines]),
                     [Term || {_, Term} <- Lines]),
              aggregate(proper_statem:command_names(Cmds), Result =:= ok andalso Holds)).
