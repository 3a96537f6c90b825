%% @private
%% @doc The sluice application: starts `sluice_sup'.
-module(sluice_app).
-behaviour(application).

-export([start/2, prep_stop/1, stop/1]).

-spec start(application:start_type(), term()) -> {ok, pid()} | {error, term()}.
start(_Type, _Args) ->
    sluice_sup:start_link().

%% @doc Before the supervisors stop: every lock made by `sluice_lock:new/1'
%% is closed, so its watchers hand their resources back as they stop.
-spec prep_stop(term()) -> term().
prep_stop(State) ->
    _ = catch sluice_lock_sup:closing(),
    State.

-spec stop(term()) -> ok.
stop(_State) ->
    ok.
