%% @doc Worker groups (Erlang in Anger, 3.3.5: spread the work over many
%% processes): processes join a group under a name (any term; no atom is
%% made), and a caller picks one without messaging a central process.
%%
%% {@link pick/1} draws a member at random; {@link pick/2} with
%% `best_of_two' draws two different members and takes the one with the
%% shorter message queue, which keeps queues even under load at the cost
%% of two `process_info/2' calls. A pick is an ETS read in the caller. The
%% group server (`sluice_group_server') only handles joins and leaves and
%% monitors the members: a member that dies leaves every group it was in.
-module(sluice_group).

-export([join/2, leave/2, members/1, pick/1, pick/2]).

-include("sluice_error.hrl").

%% @doc Adds `Pid' (a local process) to group `Name'; joining twice is the
%% same as once.
-spec join(Name, Pid) -> ok when Name :: term(), Pid :: pid().
join(Name, Pid) when is_pid(Pid), node(Pid) =:= node() ->
    sluice_group_server:join(Name, Pid);
join(Name, Pid) ->
    ?BADARG([Name, Pid], 2, "must be the pid of a process of this node").

%% @doc Removes `Pid' from group `Name'.
-spec leave(Name, Pid) -> ok when Name :: term(), Pid :: pid().
leave(Name, Pid) when is_pid(Pid) ->
    sluice_group_server:leave(Name, Pid);
leave(Name, Pid) ->
    ?BADARG([Name, Pid], 2, "must be a pid").

%% @doc The members of group `Name'.
-spec members(Name) -> [pid()] when Name :: term().
members(Name) ->
    tuple_to_list(sluice_group_server:members(Name)).

%% @doc A member drawn at random: `{ok, Pid}' or `{error, empty}'.
-spec pick(Name) -> {ok, pid()} | {error, empty} when Name :: term().
pick(Name) ->
    pick(Name, random).

%% @doc A member drawn at random (`random'), or the one with the shorter
%% message queue of two drawn at random (`best_of_two').
-spec pick(Name, How) -> {ok, pid()} | {error, empty} when
      Name :: term(),
      How :: random | best_of_two.
pick(Name, How) when How =/= random, How =/= best_of_two ->
    ?BADARG([Name, How], 2, "must be random or best_of_two");
pick(Name, How) ->
    Members = sluice_group_server:members(Name),
    case {tuple_size(Members), How} of
        {0, _} ->
            {error, empty};
        {1, _} ->
            {ok, element(1, Members)};
        {N, random} ->
            {ok, element(rand:uniform(N), Members)};
        {N, best_of_two} ->
            I = rand:uniform(N),
            J = (I + rand:uniform(N - 1) - 1) rem N + 1,
            {ok, shorter(element(I, Members), element(J, Members))}
    end.

%% The one of two processes with the shorter queue (a dead one loses).
-spec shorter(pid(), pid()) -> pid().
shorter(A, B) ->
    case {queue_len(A), queue_len(B)} of
        {LA, LB} when LA =< LB -> A;
        _ -> B
    end.

-spec queue_len(pid()) -> non_neg_integer() | infinity.
queue_len(Pid) ->
    case erlang:process_info(Pid, message_queue_len) of
        {message_queue_len, Len} -> Len;
        undefined -> infinity
    end.
