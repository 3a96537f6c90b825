%% A supervisor of the given children, standing for a user's supervisor in
%% the suites.
-module(sluice_test_sup).
-behaviour(supervisor).

-export([start_link/1, init/1]).

-spec start_link([supervisor:child_spec()]) -> {ok, pid()}.
start_link(Children) ->
    supervisor:start_link(?MODULE, Children).

-spec init([supervisor:child_spec()]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init(Children) ->
    {ok, {#{strategy => one_for_one, intensity => 0, period => 1}, Children}}.
