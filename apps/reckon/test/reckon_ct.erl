%% Helpers of reckon's Common Test suites: a distributed test node, peers
%% that run reckon, and a wait for a condition.
-module(reckon_ct).
-include_lib("common_test/include/ct.hrl").

-export([distribute/2, undistribute/1, start_peer/1, wait_until/1, wait_until/2]).

%% Makes this node distributed (a short name from `Prefix'), unless it is
%% already; notes in `Config' whether it did.
distribute(Prefix, Config) ->
    case node() of
        nonode@nohost ->
            _ = os:cmd("epmd -daemon"),
            Name = list_to_atom(Prefix ++ integer_to_list(erlang:unique_integer([positive]))),
            {ok, _} = net_kernel:start([Name, shortnames]),
            [{started_distribution, true} | Config];
        _ ->
            [{started_distribution, false} | Config]
    end.

%% Stops the distribution if distribute/2 started it.
undistribute(Config) ->
    case ?config(started_distribution, Config) of
        true -> _ = net_kernel:stop(), ok;
        false -> ok
    end.

%% A peer with this node's code paths (reckon, the suites), except OTP's own:
%% `{Peer, Node}'.
start_peer(Prefix) ->
    OtpLib = code:lib_dir(),
    Paths = [Dir || Dir <- code:get_path(), not lists:prefix(OtpLib, Dir)],
    {ok, Peer, Node} = peer:start(#{name => peer:random_name(Prefix), args => ["-pa" | Paths]}),
    {Peer, Node}.

%% Polls `Fun' every 100 ms (at most 100 times, or `Left') until it
%% returns a non-empty list; returns its first element.
wait_until(Fun) -> wait_until(Fun, 100).

wait_until(Fun, 0) -> ct:fail({timeout, Fun()});
wait_until(Fun, Left) ->
    case Fun() of
        [First | _] -> First;
        [] -> timer:sleep(100), wait_until(Fun, Left - 1)
    end.
