%% @private
%% @doc Argument checks of the facade `reckon': each answers `ok' or
%% `{Index, Why}', which `reckon' raises as a `badarg' of the public call
%% (reckon_error.hrl), and the `error_info' of a reckon `badarg' raised
%% deeper, for the facade to raise again from the public function.
-module(reckon_args).

-define(NODES_WHY, "not a node name or a list of node names").
-define(FUN_WHY, "not a fun of arity 0").

-export([first_bad/1, rpc_checks/2, rpc_checks/3, is_nodes/1, triple_error/3,
         reckon_error_info/1]).

%% The `error_info' of a badarg raised with a reckon message, `none' for
%% any other badarg.
-spec reckon_error_info(erlang:stacktrace()) -> map() | none.
reckon_error_info([{_, _, _, Info} | _]) ->
    case proplists:get_value(error_info, Info) of
        #{module := reckon_lib} = ErrorInfo -> ErrorInfo;
        _ -> none
    end;
reckon_error_info(_Stack) ->
    none.

-spec first_bad([{pos_integer(), boolean(), string()}]) -> ok | {pos_integer(), string()}.
first_bad([]) -> ok;
first_bad([{_, true, _} | Rest]) -> first_bad(Rest);
first_bad([{Index, false, Why} | _]) -> {Index, Why}.

-spec rpc_checks(term(), term()) -> [{pos_integer(), boolean(), string()}].
rpc_checks(Nodes, Fun) ->
    [{1, is_nodes(Nodes), ?NODES_WHY}, {2, is_function(Fun, 0), ?FUN_WHY}].

-spec rpc_checks(term(), term(), term()) -> [{pos_integer(), boolean(), string()}].
rpc_checks(Nodes, Fun, Timeout) ->
    rpc_checks(Nodes, Fun)
        ++ [{3, Timeout =:= infinity orelse (is_integer(Timeout) andalso Timeout >= 0
                                             andalso Timeout =< 4294967295),
             "not a timeout: infinity or an integer from 0 to 4294967295 (ms)"}].

-spec is_nodes(term()) -> boolean().
is_nodes(Node) when is_atom(Node) -> true;
is_nodes(Nodes) ->
    try lists:all(fun erlang:is_atom/1, Nodes) catch error:_ -> false end.

-spec triple_error(term(), term(), term()) -> ok | {1..3, string()}.
triple_error(A, B, C) ->
    Bad = [I || {I, X} <- [{1, A}, {2, B}, {3, C}], not (is_integer(X) andalso X >= 0)],
    case Bad of
        [] -> ok;
        [I | _] -> {I, "not a non-negative integer (the pid <A.B.C>)"}
    end.
