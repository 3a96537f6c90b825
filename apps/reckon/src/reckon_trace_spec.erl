%% @private
%% @doc The checks of {@link reckon_trace}, run in the caller before any
%% process or NIF sees an argument: trace specs (shell funs turned into
%% match specs, dangerous specs refused with a reason), the limit, the
%% options, and the expansion of a spec into the functions it names.
-module(reckon_trace_spec).

-export([tspecs/1, max/1, options/2, expand/2, pids/1]).
-export_type([pattern/0, limit/0, opts/0]).

-type pattern() :: {module() | '_', atom() | '_', arity() | '_', [tuple()]}.
-type limit() :: #{n := pos_integer(), window := non_neg_integer()}.
-type opts() :: #{atom() => term()}.

%% Refused whatever the function: the tracer's own path (a trace of it
%% would trace its own output) and the io machinery.
-define(OWN, [reckon_trace, reckon_trace_spec, reckon_trace_owner, reckon_trace_fmt,
              reckon_tracer, reckon_rec, reckon_keeper, sluice_box, sluice_box_deliver,
              sluice_nif, erl_tracer, group, user_drv, user, prim_tty, standard_error,
              io_lib_format, io_lib_pretty, erl_scan, unicode]).
%% Refused with `'_'' as the function: called by nearly everything.
-define(HOT, [erlang, lists, io, io_lib, maps, ets, gen_server, gen, proc_lib]).
-define(MAX_N, 4294967294).
-define(MAX_WINDOW, 86400000).

%% @doc `{ok, Patterns}' (each `{M, F, A, MatchSpec}'), `{error, Reason}' for
%% a dangerous spec, or `{badarg, Why}' for a malformed one.
-spec tspecs(term()) -> {ok, [pattern()]} | {error, term()} | {badarg, string()}.
tspecs(TSpecs) when is_list(TSpecs), TSpecs =/= [] ->
    tspecs(TSpecs, []);
tspecs(TSpec) when is_tuple(TSpec) ->
    tspecs([TSpec], []);
tspecs(_) ->
    {badarg, "not a trace spec {Module, Function, Arity | MatchSpec | ShellFun} or a list of them"}.

-spec tspecs([term()], [pattern()]) -> {ok, [pattern()]} | {error, term()} | {badarg, string()}.
tspecs([], Acc) ->
    {ok, lists:reverse(Acc)};
tspecs([{M, F, A} = TSpec | Rest], Acc) when is_atom(M), is_atom(F) ->
    case ms(A) of
        {ok, Arity, MS} ->
            case danger(M, F) of
                ok -> tspecs(Rest, [{M, F, Arity, MS} | Acc]);
                {dangerous, Why} -> {error, {dangerous_spec, TSpec, Why}}
            end;
        {badarg, _} = Bad ->
            Bad
    end;
tspecs(_, _) ->
    {badarg, "not a trace spec {Module, Function, Arity | MatchSpec | ShellFun} or a list of them"}.

-spec danger(atom(), atom()) -> ok | {dangerous, string()}.
danger('_', '_') ->
    {dangerous, "every function of every module"};
danger(M, F) ->
    case {lists:member(M, ?OWN), lists:member(M, ?HOT) andalso F =:= '_'} of
        {true, _} -> {dangerous, "the tracer's own output path (tracing, formatting, io)"};
        {_, true} -> {dangerous, "every function of a module nearly every process calls: name the function"};
        _ -> ok
    end.

%% The arity pattern and the match spec of the third element of a spec.
-spec ms(term()) -> {ok, arity() | '_', [tuple()]} | {badarg, string()}.
ms('_') ->
    {ok, '_', [{'_', [], []}]};
ms(Arity) when is_integer(Arity), Arity >= 0, Arity =< 255 ->
    {ok, Arity, [{'_', [], []}]};
ms(return_trace) ->
    {ok, '_', [{'_', [], [{return_trace}]}]};
ms(Fun) when is_function(Fun) ->
    case fun_ms(Fun) of
        {ok, MS} -> ms(MS);
        {badarg, _} = Bad -> Bad
    end;
ms(MS) when is_list(MS), MS =/= [] ->
    case catch erlang:match_spec_test([], MS, trace) of
        {ok, _, _, _} -> {ok, '_', MS};
        _ -> {badarg, "not a valid match spec for tracing"}
    end;
ms(_) ->
    {badarg, "the third element must be an arity, '_', return_trace, a match spec or a fun typed in the shell"}.

%% A fun typed in the shell as a match spec, as dbg:fun2ms/1 makes it.
-spec fun_ms(function()) -> {ok, term()} | {badarg, string()}.
fun_ms(Fun) ->
    case erl_eval:fun_data(Fun) of
        {fun_data, Bindings, Clauses} ->
            case ms_transform:transform_from_shell(dbg, Clauses, Bindings) of
                {error, [{_, [{_, _, Code} | _]} | _], _} ->
                    {badarg, "shell fun is not a match spec: " ++
                         lists:flatten(ms_transform:format_error(Code))};
                MS when is_list(MS) ->
                    {ok, MS};
                _ ->
                    {badarg, "shell fun is not a match spec"}
            end;
        _ ->
            {badarg, "only funs typed in the shell become match specs; give a match spec"}
    end.

%% @doc The limit: `N' events, or `{N, Ms}' (N per Ms milliseconds).
-spec max(term()) -> {ok, limit()} | {badarg, string()}.
max(N) when is_integer(N), N > 0, N =< ?MAX_N ->
    {ok, #{n => N, window => 0}};
max({N, Ms}) when is_integer(N), N > 0, N =< ?MAX_N, is_integer(Ms), Ms > 0, Ms =< ?MAX_WINDOW ->
    {ok, #{n => N, window => Ms}};
max(_) ->
    {badarg, "not a limit: a positive integer N or {N, Milliseconds}"}.

%% @doc The options (a recon_trace property list) as a map with defaults,
%% for `calls' or `messages'.
-spec options(term(), calls | messages) -> {ok, opts()} | {error, {bad_option, term()}}.
options(Opts, Kind) when is_list(Opts) ->
    case lists:all(fun(O) -> is_atom(O) orelse (is_tuple(O) andalso tuple_size(O) =:= 2) end, Opts) of
        true ->
            Map = maps:from_list(lists:reverse(proplists:unfold(Opts))),
            sluice_opts:validate(Map, spec(Kind));
        false ->
            {error, {bad_option, options}}
    end;
options(_, _) ->
    {error, {bad_option, options}}.

-spec spec(calls | messages) -> [{atom(), term(), fun((term()) -> boolean())}].
spec(Kind) ->
    Common = [{timestamp, formatter, sluice_opts:one_of([formatter, trace])},
              {io_server, group_leader(), fun(P) -> is_pid(P) end},
              {formatter, default, fun(F) -> F =:= default orelse is_function(F, 1) end},
              {limit, stop, sluice_opts:one_of([stop, throttle])},
              {max_depth, 20, sluice_opts:pos_int_upto(1000)},
              {max_bytes, 4096, sluice_opts:pos_int_upto(1 bsl 20)},
              {buffer, 1000, sluice_opts:pos_int_upto(1000000)}],
    case Kind of
        calls ->
            [{pid, all, fun(P) -> pids(P) =/= error end},
             {scope, global, sluice_opts:one_of([global, local])},
             {args, args, sluice_opts:one_of([args, arity])},
             {return_to, false, fun is_boolean/1} | Common];
        messages ->
            Common
    end.

%% @doc The processes a `pid' option or a `messages/3' spec names:
%% `all', `existing', `new', or a list of local pids (names resolved now;
%% a name of no process is left out).
-spec pids(term()) -> all | existing | new | [pid()] | error.
pids(Spec) when Spec =:= all; Spec =:= existing; Spec =:= new ->
    Spec;
pids(List) when is_list(List), List =/= [] ->
    case io_lib:printable_latin1_list(List) of
        true -> pids([List]);
        false ->
            Pids = [to_pid(P) || P <- List],
            case lists:member(error, Pids) of
                true -> error;
                false -> [P || P <- Pids, P =/= undefined]
            end
    end;
pids(One) ->
    case to_pid(One) of
        error -> error;
        undefined -> [];
        Pid -> [Pid]
    end.

-spec to_pid(term()) -> pid() | undefined | error.
to_pid(Pid) when is_pid(Pid), node(Pid) =:= node() -> Pid;
to_pid(Name) when is_atom(Name) -> whereis(Name);
to_pid({global, Name}) -> live(global:whereis_name(Name));
to_pid({via, Mod, Name}) when is_atom(Mod) -> live(catch Mod:whereis_name(Name));
to_pid({0, B, C}) when is_integer(B), is_integer(C) -> to_pid("<0." ++ integer_to_list(B) ++ "." ++ integer_to_list(C) ++ ">");
to_pid([$< | _] = Str) -> try list_to_pid(Str) of P -> to_pid(P) catch _:_ -> error end;
to_pid(_) -> error.

-spec live(term()) -> pid() | undefined.
live(Pid) when is_pid(Pid), node(Pid) =:= node() -> Pid;
live(_) -> undefined.

%% @doc The functions a pattern names, with the scope: `{M, F, A}' of
%% loaded (or loadable) modules; global patterns name exported functions.
-spec expand(pattern(), global | local) -> [mfa()].
expand({'_', F, A, _MS}, Scope) ->
    lists:append([expand({M, F, A, []}, Scope) || {M, _} <- code:all_loaded(),
                                                   not lists:member(M, ?OWN)]);
expand({M, F, A, _MS}, Scope) ->
    case code:ensure_loaded(M) of
        {module, M} ->
            Key = case Scope of global -> exports; local -> functions end,
            [{M, Fun, Ar} || {Fun, Ar} <- M:module_info(Key),
                             F =:= '_' orelse Fun =:= F,
                             A =:= '_' orelse Ar =:= A,
                             hd(atom_to_list(Fun)) =/= $-];
        _ ->
            []
    end.
