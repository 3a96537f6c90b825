%% The plainest sluice_lock callback module, for suites that need locks
%% but not what their watchers do: each resource is `{res, WatcherPid}'.
-module(sluice_test_lock).
-behaviour(sluice_lock).

-export([init/1, checkout/2, checkin/2, dead/1, handle_info/2, terminate/2]).

init(Args) -> {ok, Args}.
checkout(none, S) -> {ok, {res, self()}, S}.
checkin(_Resource, S) -> {ok, S}.
dead(S) -> {ok, S}.
handle_info(_Msg, S) -> {ok, S}.
terminate(_Reason, _S) -> ok.
