%% Runs a PropEr property for the model suites: as many runs as the
%% environment variable says (else a default), commands up to a size, the
%% time taken logged.
-module(sluice_prop).

-export([check/4]).

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
