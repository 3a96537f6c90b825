%% @private
%% @doc Telemetry events without a dependency on telemetry: {@link
%% execute/3} calls `telemetry:execute/3' when a module `telemetry' is
%% loaded and exports it, and does nothing otherwise. It never loads the
%% module (`erlang:function_exported/3' only looks), so a node without
%% telemetry pays one BIF call per event. It never raises into its caller:
%% telemetry itself detaches a handler that crashes; anything else going
%% wrong is dropped here.
%%
%% sluice's servers call it on the state changes they already handle, never
%% on a hot path (see the README for the events).
-module(sluice_telemetry).

-export([execute/3]).

%% Called through a variable, so that neither xref nor dialyzer look for a
%% module sluice does not depend on.
-define(TELEMETRY, telemetry).

%% @doc Emits the event `Event' when telemetry is loaded.
-spec execute([atom(), ...], #{atom() => number()}, map()) -> ok.
execute(Event, Measurements, Metadata) ->
    emit(?TELEMETRY, Event, Measurements, Metadata).

-spec emit(module(), [atom(), ...], #{atom() => number()}, map()) -> ok.
emit(Mod, Event, Measurements, Metadata) ->
    case erlang:function_exported(Mod, execute, 3) of
        true ->
            try Mod:execute(Event, Measurements, Metadata) of
                _ -> ok
            catch
                _:_ -> ok
            end;
        false ->
            ok
    end.
