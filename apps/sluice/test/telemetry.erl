%% A stand-in for the `telemetry' library (hex is not reachable here), for
%% the suites that check sluice's telemetry events: `execute/3' sends
%% `{telemetry, Event, Measurements, Metadata}' to the process registered
%% as `sluice_telemetry_test', if any, and raises when the metadata asks
%% for it (`#{crash := true}'), as a crashing handler would. Loaded only
%% by the tests that want it (sluice calls it only when it is loaded).
-module(telemetry).

-export([execute/3]).

-spec execute([atom()], map(), map()) -> ok.
execute(_Event, _Measurements, #{crash := true}) ->
    error(handler_crashed);
execute(Event, Measurements, Metadata) ->
    case whereis(sluice_telemetry_test) of
        undefined -> ok;
        Pid -> Pid ! {telemetry, Event, Measurements, Metadata}, ok
    end.
