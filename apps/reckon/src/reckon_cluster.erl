%% @private
%% @doc The cluster-wide top-N of `reckon': each node (this one and every
%% connected one) runs the local function at once, over the distribution,
%% and the answers are merged into one top-N. Windows run concurrently, so
%% they cover the same stretch of time on every node.
%%
%% A node that does not answer within the time the function needs plus 30 s,
%% or where reckon is not loaded, is left out of the answer.
-module(reckon_cluster).

-export([proc_count/2, proc_window/3, bin_leak/1, inet_count/2, inet_window/3]).

%% Slack for one node's answer beyond the window, in ms.
-define(SLACK, 30000).

-spec proc_count(reckon:attr_name(), non_neg_integer()) -> [reckon:proc_attrs()].
proc_count(Attr, Num) ->
    merge(call(proc_count, [Attr, Num], ?SLACK), Num, desc).

-spec proc_window(reckon:attr_name(), non_neg_integer(), pos_integer()) ->
    [reckon:proc_attrs()].
proc_window(Attr, Num, Time) ->
    merge(call(proc_window, [Attr, Num, Time], timeout(Time)), Num, desc).

%% Values are minus the binaries freed: the most negative come first.
-spec bin_leak(non_neg_integer()) -> [reckon:proc_attrs()].
bin_leak(Num) ->
    merge(call(bin_leak, [Num], ?SLACK), Num, asc).

-spec inet_count(reckon:inet_attr_name(), non_neg_integer()) -> [reckon:inet_attrs()].
inet_count(Attr, Num) ->
    merge(call(inet_count, [Attr, Num], ?SLACK), Num, desc).

-spec inet_window(reckon:inet_attr_name(), non_neg_integer(), pos_integer()) ->
    [reckon:inet_attrs()].
inet_window(Attr, Num, Time) ->
    merge(call(inet_window, [Attr, Num, Time], timeout(Time)), Num, desc).

%% A window's time plus the slack (a bad `Time' is refused by the check).
-spec timeout(term()) -> timeout().
timeout(Time) when is_integer(Time) -> Time + ?SLACK;
timeout(_) -> ?SLACK.

%% Runs reckon:Fun(Args) on every node; the lists of those that answered.
%% The arguments are checked here first, so a bad one raises `badarg' in
%% the caller rather than on every node.
-spec call(atom(), [term()], timeout()) -> [[tuple()]].
call(Fun, Args, Timeout) ->
    ok = reckon_scan:check_args(Fun, Args),
    Results = erpc:multicall([node() | nodes()], reckon, Fun, Args, Timeout),
    [List || {ok, List} <- Results, is_list(List)].

-spec merge([[tuple()]], non_neg_integer(), asc | desc) -> [tuple()].
merge(Lists, Num, Order) ->
    Sorted = lists:sort(fun(A, B) -> before(element(2, A), element(2, B), Order) end,
                        lists:append(Lists)),
    lists:sublist(Sorted, Num).

-spec before(integer(), integer(), asc | desc) -> boolean().
before(A, B, desc) -> A >= B;
before(A, B, asc) -> A =< B.
