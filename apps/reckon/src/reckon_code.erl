%% @private
%% @doc Code and cluster helpers of recon: the source of a module as it was
%% compiled ({@link source/1}), loading local object code on other nodes
%% ({@link remote_load/2}) and running a 0-arity fun on several nodes
%% ({@link rpc/3}, {@link named_rpc/3}).
%%
%% <h3>Results of rpc and named_rpc</h3>
%% As `rpc:multicall/5': `{Results, BadNodes}', where `BadNodes' are the
%% nodes that could not be reached or did not answer in time. A result is
%% the fun's value, the value it threw, or ``{badrpc, {'EXIT', Reason}}''
%% when it raised an error or exited. The funs run through `erpc', so a fun
%% written in a shell works on any node (it is interpreted there); a fun of a
%% compiled module needs the same version of that module on the other node
%% (see {@link remote_load/2}).
-module(reckon_code).

-export([source/1, remote_load/1, remote_load/2, rpc/1, rpc/2, rpc/3,
         named_rpc/1, named_rpc/2, named_rpc/3]).

%% How long remote_load waits for each node (in parallel).
-define(LOAD_TIMEOUT, 30000).
%% How long rpc/1,2 and named_rpc/1,2 wait (pass `infinity' to rpc/3 to
%% wait for ever).
-define(RPC_TIMEOUT, 60000).

-type nodes() :: node() | [node()].
-type rpc_result() :: term() | {badrpc, term()}.

%%% Source

%% @doc The source of `Module' as compiled, rebuilt from the debug info of
%% its object code and printed with `erl_pp', as UTF-8 text (print it with
%% the `~ts' control sequence). The object code is the file the loaded
%% module came from (`code:which/1'), else the one found in the code path.
%% Errors: `{error, {no_beam, Module}}' when no object code is found,
%% `{error, {no_debug_info, Module}}' when it was compiled without
%% `debug_info', `{error, {stale_beam, Module, Path}}' when the file on disk
%% is not the version loaded, `{error, {beam_lib, Reason}}' when it cannot
%% be read.
-spec source(module()) -> binary() | {error, term()}.
source(Module) when is_atom(Module) ->
    case object_code(Module) of
        {ok, Beam, File} -> check_loaded(Module, Beam, File);
        error -> {error, {no_beam, Module}}
    end;
source(_Module) ->
    error(badarg).

-spec check_loaded(module(), binary(), file:filename()) -> binary() | {error, term()}.
check_loaded(Module, Beam, File) ->
    case is_stale(Module, Beam) of
        true -> {error, {stale_beam, Module, File}};
        false -> pretty_print(Module, Beam)
    end.

%% A loaded module whose object code differs from `Beam'.
-spec is_stale(module(), binary()) -> boolean().
is_stale(Module, Beam) ->
    case {code:is_loaded(Module), beam_lib:md5(Beam)} of
        {{file, cover_compiled}, _} -> false;
        {{file, _}, {ok, {_, MD5}}} -> MD5 =/= Module:module_info(md5);
        _ -> false
    end.

-spec pretty_print(module(), binary()) -> binary() | {error, term()}.
pretty_print(Module, Beam) ->
    case beam_lib:chunks(Beam, [abstract_code]) of
        {ok, {_, [{abstract_code, {raw_abstract_v1, Forms}}]}} ->
            unicode:characters_to_binary([erl_pp:form(Form) || Form <- Forms]);
        {ok, {_, [{abstract_code, no_abstract_code}]}} ->
            {error, {no_debug_info, Module}};
        {ok, {_, [{abstract_code, {Version, _}}]}} ->
            {error, {unsupported_abstract_code, Version}};
        {error, beam_lib, Reason} ->
            {error, {beam_lib, Reason}}
    end.

%% The object code of `Module': from the file it was loaded from when that
%% file is still there, else from the code path.
-spec object_code(module()) -> {ok, binary(), file:filename()} | error.
object_code(Module) ->
    case loaded_file(Module) of
        {ok, Path} -> read_object_code(Module, Path);
        error -> path_object_code(Module)
    end.

-spec loaded_file(module()) -> {ok, file:filename()} | error.
loaded_file(Module) ->
    case code:which(Module) of
        Path when is_list(Path), Path =/= "" ->
            case filelib:is_regular(Path) of
                true -> {ok, Path};
                false -> error
            end;
        _ ->
            error
    end.

-spec read_object_code(module(), file:filename()) -> {ok, binary(), file:filename()} | error.
read_object_code(Module, Path) ->
    case file:read_file(Path) of
        {ok, Beam} -> {ok, Beam, Path};
        {error, _} -> path_object_code(Module)
    end.

-spec path_object_code(module()) -> {ok, binary(), file:filename()} | error.
path_object_code(Module) ->
    case code:get_object_code(Module) of
        {Module, Beam, File} -> {ok, Beam, File};
        error -> error
    end.

%%% Loading

%% @doc `remote_load(nodes(), Module)'.
-spec remote_load(module()) -> [{node(), term()}].
remote_load(Module) ->
    remote_load(nodes(), Module).

%% @doc Loads the local object code of `Module' on `Nodes' (a node or a
%% list), from memory: the other nodes need no file. Returns, for each node
%% in the order given, what `code:load_binary/3' answered there
%% (`{module, Module}' or `{error, What}'), or `{badrpc, nodedown}',
%% `{badrpc, timeout}' (30 s per node, in parallel) or
%% `{badrpc, {Class, Reason}}'. Raises `error({no_object_code, Module})'
%% when this node has no object code for `Module' (neither the file it was
%% loaded from nor one in its code path), and `badarg' for bad arguments.
-spec remote_load(nodes(), module()) -> [{node(), term()}].
remote_load(Nodes, Module) when is_atom(Module) ->
    NodeList = node_list(Nodes),
    case object_code(Module) of
        {ok, Beam, File} -> load_on(NodeList, Module, File, Beam);
        error -> error({no_object_code, Module})
    end;
remote_load(_Nodes, _Module) ->
    error(badarg).

-spec load_on([node()], module(), file:filename(), binary()) -> [{node(), term()}].
load_on(Nodes, Module, File, Beam) ->
    Answers = erpc:multicall(Nodes, code, load_binary, [Module, File, Beam], ?LOAD_TIMEOUT),
    lists:zip(Nodes, [load_answer(Answer) || Answer <- Answers]).

-spec load_answer(term()) -> term().
load_answer({ok, Loaded}) -> Loaded;
load_answer({error, {erpc, noconnection}}) -> {badrpc, nodedown};
load_answer({error, {erpc, timeout}}) -> {badrpc, timeout};
load_answer({Class, Reason}) -> {badrpc, {Class, Reason}}.

%%% Remote calls

%% @doc `rpc([node() | nodes()], Fun)'.
-spec rpc(fun(() -> term())) -> {[rpc_result()], [node()]}.
rpc(Fun) ->
    rpc([node() | nodes()], Fun).

%% @doc `rpc(Nodes, Fun, 60000)': a node that has not answered within a
%% minute is listed among the bad nodes (recon waits for ever).
-spec rpc(nodes(), fun(() -> term())) -> {[rpc_result()], [node()]}.
rpc(Nodes, Fun) ->
    rpc(Nodes, Fun, ?RPC_TIMEOUT).

%% @doc Runs `Fun' (arity 0) on `Nodes' (a node or a list), waiting at most
%% `Timeout' ms; `{Results, BadNodes}' as `rpc:multicall/5'. Raises
%% `badarg' for bad arguments.
-spec rpc(nodes(), fun(() -> term()), timeout()) -> {[rpc_result()], [node()]}.
rpc(Nodes, Fun, Timeout) ->
    {Answered, BadNodes} = call(Nodes, Fun, Timeout),
    {[Result || {_Node, Result} <- Answered], BadNodes}.

%% @doc `named_rpc([node() | nodes()], Fun)'.
-spec named_rpc(fun(() -> term())) -> {[{node(), rpc_result()}], [node()]}.
named_rpc(Fun) ->
    named_rpc([node() | nodes()], Fun).

%% @doc `named_rpc(Nodes, Fun, 60000)' (recon waits for ever).
-spec named_rpc(nodes(), fun(() -> term())) -> {[{node(), rpc_result()}], [node()]}.
named_rpc(Nodes, Fun) ->
    named_rpc(Nodes, Fun, ?RPC_TIMEOUT).

%% @doc {@link rpc/3}, each result paired with the node that computed it:
%% `{[{Node, Result}], BadNodes}', so a bad answer names its node (a
%% failed fun too: `{Node, {badrpc, ...}}').
-spec named_rpc(nodes(), fun(() -> term()), timeout()) ->
    {[{node(), rpc_result()}], [node()]}.
named_rpc(Nodes, Fun, Timeout) ->
    call(Nodes, Fun, Timeout).

-spec call(nodes(), fun(() -> term()), timeout()) -> {[{node(), rpc_result()}], [node()]}.
call(Nodes, Fun, Timeout) when is_function(Fun, 0) ->
    NodeList = node_list(Nodes),
    Answers = erpc:multicall(NodeList, erlang, apply, [Fun, []], valid_timeout(Timeout)),
    sort_answers(lists:zip(NodeList, Answers), [], []);
call(_Nodes, _Fun, _Timeout) ->
    error(badarg).

-spec sort_answers([{node(), term()}], [{node(), rpc_result()}], [node()]) ->
    {[{node(), rpc_result()}], [node()]}.
sort_answers([], Answered, BadNodes) ->
    {lists:reverse(Answered), lists:reverse(BadNodes)};
sort_answers([{Node, {error, {erpc, Unreachable}}} | Rest], Answered, BadNodes)
  when Unreachable =:= noconnection; Unreachable =:= timeout ->
    sort_answers(Rest, Answered, [Node | BadNodes]);
sort_answers([{Node, Answer} | Rest], Answered, BadNodes) ->
    sort_answers(Rest, [{Node, rpc_answer(Answer)} | Answered], BadNodes).

%% What `rpc:multicall/5' makes of an answer of `erpc:multicall/5'.
-spec rpc_answer(term()) -> rpc_result().
rpc_answer({ok, {'EXIT', _} = Exit}) -> {badrpc, Exit};
rpc_answer({ok, Value}) -> Value;
rpc_answer({throw, {'EXIT', _} = Exit}) -> {badrpc, Exit};
rpc_answer({throw, Value}) -> Value;
rpc_answer({exit, {exception, Reason}}) -> {badrpc, {'EXIT', Reason}};
rpc_answer({exit, {signal, Reason}}) -> {badrpc, {'EXIT', Reason}};
rpc_answer({error, {exception, Reason, Stack}}) -> {badrpc, {'EXIT', {Reason, Stack}}};
rpc_answer({error, {erpc, notsup}}) -> {badrpc, notsup};
rpc_answer({error, {erpc, Reason}}) -> {badrpc, {'EXIT', Reason}};
rpc_answer({Class, Reason}) -> {badrpc, {'EXIT', {Class, Reason}}}.

%%% Arguments

-spec node_list(term()) -> [node()].
node_list(Node) when is_atom(Node) ->
    [Node];
node_list(Nodes) when is_list(Nodes) ->
    case all_atoms(Nodes) of
        true -> Nodes;
        false -> error(badarg)
    end;
node_list(_Nodes) ->
    error(badarg).

-spec all_atoms(term()) -> boolean().
all_atoms([]) -> true;
all_atoms([Node | Rest]) when is_atom(Node) -> all_atoms(Rest);
all_atoms(_NotAProperListOfAtoms) -> false.

-spec valid_timeout(term()) -> timeout().
valid_timeout(infinity) -> infinity;
valid_timeout(Timeout) when is_integer(Timeout), Timeout >= 0, Timeout =< 4294967295 ->
    Timeout;
valid_timeout(_Timeout) ->
    error(badarg).
