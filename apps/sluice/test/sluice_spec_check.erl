%% Checks a value against the return type of a function's `-spec', read
%% from the module's debug info: the fuzz suite's test that a reply has a
%% documented shape.
%%
%% Types of sluice's own modules (local, remote and opaque) are followed;
%% types of other applications, type variables and forms this checker does
%% not know accept any value. Records and maps are checked for being
%% tuples and maps only.
-module(sluice_spec_check).

-export([returns/3, specs/1]).

-type form() :: term().
-type types() :: #{{module(), atom(), arity()} | '$module' => {[atom()], form()} | module()}.

%% @doc The `-spec' return types of `Module''s functions, and the type
%% definitions of every sluice module, for {@link returns/3}.
-spec specs(module()) -> {#{{atom(), arity()} => [form()]}, types()}.
specs(Module) ->
    Specs = maps:from_list([{FA, [return_type(T) || T <- Types]}
                            || {attribute, _, spec, {FA, Types}} <- forms(Module)]),
    {Specs, (types())#{'$module' => Module}}.

%% @doc Whether `Value' matches one of the return types of `Function'
%% (`{Name, Arity}') in `Specs' (from {@link specs/1}); a function without
%% a spec matches anything.
-spec returns({#{{atom(), arity()} => [form()]}, types()}, {atom(), arity()}, term()) ->
    boolean().
returns({Specs, Types}, FA, Value) ->
    case Specs of
        #{FA := Returns} -> lists:any(fun(T) -> is(Value, T, Types, 8) end, Returns);
        #{} -> true
    end.

forms(Module) ->
    {ok, {_, [{abstract_code, {raw_abstract_v1, Forms}}]}} =
        beam_lib:chunks(code:which(Module), [abstract_code]),
    Forms.

%% A `when' clause's variables are replaced by their types (`-spec f(X) ->
%% R when R :: ok | full' checks `ok | full'); unconstrained variables
%% accept any value.
return_type({type, _, bounded_fun, [Fun, Constraints]}) ->
    Bounds = maps:from_list([{V, T} || {type, _, constraint, [{atom, _, is_subtype}, [{var, _, V}, T]]}
                                           <- Constraints]),
    bind(return_type(Fun), Bounds, 4);
return_type({type, _, 'fun', [_Args, Return]}) -> Return.

bind({var, _, V} = Var, Bounds, Depth) when Depth > 0 ->
    case Bounds of
        #{V := T} -> bind(T, Bounds, Depth - 1);
        #{} -> Var
    end;
bind({type, A, Name, Args}, Bounds, Depth) when is_list(Args) ->
    {type, A, Name, [bind(T, Bounds, Depth) || T <- Args]};
bind({ann_type, A, [Var, T]}, Bounds, Depth) ->
    {ann_type, A, [Var, bind(T, Bounds, Depth)]};
bind({paren_type, A, [T]}, Bounds, Depth) ->
    {paren_type, A, [bind(T, Bounds, Depth)]};
bind(T, _Bounds, _Depth) ->
    T.

types() ->
    {ok, Mods} = application:get_key(sluice, modules),
    maps:from_list([{{M, Name, length(Vars)}, {[V || {var, _, V} <- Vars], Def}}
                    || M <- Mods,
                       {attribute, _, Kind, {Name, Def, Vars}} <- forms(M),
                       Kind =:= type orelse Kind =:= opaque]).

-spec is(term(), form(), types(), non_neg_integer()) -> boolean().
is(_V, _T, _Types, 0) -> true;
is(V, {ann_type, _, [_Var, T]}, Types, D) -> is(V, T, Types, D);
is(V, {paren_type, _, [T]}, Types, D) -> is(V, T, Types, D);
is(V, {atom, _, A}, _, _) -> V =:= A;
is(V, {integer, _, I}, _, _) -> V =:= I;
is(V, {op, _, '-', {integer, _, I}}, _, _) -> V =:= -I;
is(_V, {var, _, _}, _, _) -> true;
is(V, {type, _, union, Ts}, Types, D) -> lists:any(fun(T) -> is(V, T, Types, D) end, Ts);
is(V, {type, _, tuple, any}, _, _) -> is_tuple(V);
is(V, {type, _, tuple, Ts}, Types, D) ->
    is_tuple(V) andalso tuple_size(V) =:= length(Ts)
        andalso lists:all(fun({E, T}) -> is(E, T, Types, D - 1) end,
                          lists:zip(tuple_to_list(V), Ts));
is(V, {type, _, range, [Lo, Hi]}, _, _) ->
    is_integer(V) andalso bound(Lo, V, fun erlang:'>='/2) andalso bound(Hi, V, fun erlang:'=<'/2);
is(V, {type, _, list, []}, _, _) -> is_list(V);
is(V, {type, _, list, [T]}, Types, D) ->
    is_list(V) andalso lists:all(fun(E) -> is(E, T, Types, D - 1) end, V);
is(V, {type, _, nonempty_list, Ts}, Types, D) ->
    V =/= [] andalso is(V, {type, 0, list, Ts}, Types, D);
is(V, {type, _, nil, []}, _, _) -> V =:= [];
is(V, {type, _, map, _}, _, _) -> is_map(V);
is(V, {type, _, record, _}, _, _) -> is_tuple(V);
is(V, {type, _, 'fun', _}, _, _) -> is_function(V);
is(V, {type, _, Name, []}, _, _) when is_atom(Name) -> builtin(Name, V);
is(V, {user_type, _, Name, Args}, #{'$module' := M} = Types, D) ->
    is(V, {remote_type, 0, [{atom, 0, M}, {atom, 0, Name}, Args]}, Types, D);
is(V, {remote_type, _, [{atom, _, M}, {atom, _, Name}, Args]}, Types, D) ->
    case Types of
        #{{M, Name, length(Args)} := {_Vars, Def}} -> is(V, Def, Types#{'$module' := M}, D - 1);
        #{} -> true
    end;
is(_V, _Form, _Types, _D) ->
    true.

bound({integer, _, I}, V, Cmp) -> Cmp(V, I);
bound({op, _, '-', {integer, _, I}}, V, Cmp) -> Cmp(V, -I);
bound(_, _V, _Cmp) -> true.

builtin(term, _) -> true;
builtin(any, _) -> true;
builtin(atom, V) -> is_atom(V);
builtin(boolean, V) -> is_boolean(V);
builtin(integer, V) -> is_integer(V);
builtin(non_neg_integer, V) -> is_integer(V) andalso V >= 0;
builtin(pos_integer, V) -> is_integer(V) andalso V > 0;
builtin(neg_integer, V) -> is_integer(V) andalso V < 0;
builtin(float, V) -> is_float(V);
builtin(number, V) -> is_number(V);
builtin(pid, V) -> is_pid(V);
builtin(port, V) -> is_port(V);
builtin(reference, V) -> is_reference(V);
builtin(binary, V) -> is_binary(V);
builtin(bitstring, V) -> is_bitstring(V);
builtin(list, V) -> is_list(V);
builtin(map, V) -> is_map(V);
builtin(tuple, V) -> is_tuple(V);
builtin(function, V) -> is_function(V);
builtin(module, V) -> is_atom(V);
builtin(no_return, _) -> false;
builtin(none, _) -> false;
builtin(_, _) -> true.
