%% @private
%% @doc Inspection of one process: {@link info/1} and {@link info/2} (what
%% `erlang:process_info/2' knows of it, by category, never its mailbox),
%% {@link get_state/2} (`sys:get_state/2' with errors that say what
%% happened) and {@link term_to_pid/1}, which turns every form of
%% `reckon:pid_term()' into a pid.
%%
%% <h3>Categories of {@link info/1}</h3>
%% <ul>
%% <li>`meta': `registered_name', `dictionary', `group_leader', `status';</li>
%% <li>`signals': `links', `monitors', `monitored_by', `trap_exit';</li>
%% <li>`location': `initial_call', `current_stacktrace';</li>
%% <li>`memory_used': `memory', `message_queue_len', `heap_size',
%%     `total_heap_size', `garbage_collection';</li>
%% <li>`work': `reductions'.</li>
%% </ul>
%% {@link info/2} also takes the keys `binary' (the refc binaries a process
%% holds, at most 1000) and `binary_memory' (the sum of their sizes), as
%% recon does. Any other key, `messages' included, is refused with `badarg'.
%%
%% <h3>Caps</h3>
%% The lists `links', `monitors', `monitored_by', `dictionary' and
%% `current_stacktrace' hold at most 1000 elements each (the first 1000 the
%% runtime gives). A dictionary value whose flat size exceeds 10000 words is
%% replaced by `{reckon_truncated, Words}'.
%%
%% A pid of another node is asked with `erpc' (5 s); `erpc' errors are
%% raised as they come.
-module(reckon_proc).

-export([info/1, info/2, get_state/1, get_state/2, term_to_pid/1]).
-export([info_error/2, pid_term_error/1]).

-define(LIST_CAP, 1000).
-define(VALUE_WORDS_CAP, 10000).
-define(GET_STATE_TIMEOUT, 5000).
-define(REMOTE_TIMEOUT, 5000).
%% The longest text a pid is written with: "<NodeIndex.Number.Serial>".
-define(PID_TEXT_MAX, 64).

-type info_type() :: reckon:info_type().
-type info_key() :: reckon:info_key().

%%% Info

%% @doc Every category of a process, in the order meta, signals, location,
%% memory_used, work; `undefined' when the process is dead or the name is
%% unknown.
-spec info(reckon:pid_term()) -> [{info_type(), [{info_key(), term()}]}] | undefined.
info(PidTerm) ->
    Categories = categories(),
    Keys = lists:append([Keys || {_, Keys} <- Categories]),
    case fetch(term_to_pid(PidTerm), Keys) of
        undefined ->
            undefined;
        Props ->
            [{Category, [lists:keyfind(Key, 1, Props) || Key <- CategoryKeys]}
             || {Category, CategoryKeys} <- Categories]
    end.

%% @doc One category (`{Category, [{Key, Value}]}'), one key (`{Key, Value}')
%% or a list of keys (`[{Key, Value}]', in the order asked) of
%% {@link info/1}; `undefined' when the process is dead or the name is
%% unknown. Raises `badarg' for any other `What'.
-spec info(reckon:pid_term(), info_type() | info_key() | [info_key()]) ->
    {info_type(), [{info_key(), term()}]} | {info_key(), term()}
    | [{info_key(), term()}] | undefined.
info(PidTerm, What) ->
    Query = query(What),
    case fetch(term_to_pid(PidTerm), query_keys(Query)) of
        undefined -> undefined;
        Props -> answer(Query, Props)
    end.

-spec categories() -> [{info_type(), [info_key(), ...]}, ...].
categories() ->
    [{meta, [registered_name, dictionary, group_leader, status]},
     {signals, [links, monitors, monitored_by, trap_exit]},
     {location, [initial_call, current_stacktrace]},
     {memory_used, [memory, message_queue_len, heap_size, total_heap_size,
                    garbage_collection]},
     {work, [reductions]}].

-type query() :: {category, info_type(), [info_key()]}
               | {key, info_key()}
               | {keys, [info_key()]}.

-spec query(term()) -> query().
query(What) when is_atom(What) ->
    case lists:keyfind(What, 1, categories()) of
        {What, Keys} -> {category, What, Keys};
        false -> {key, valid_key(What)}
    end;
query(What) when is_list(What) ->
    {keys, valid_keys(What)};
query(_What) ->
    error(badarg).

-spec valid_keys(term()) -> [info_key()].
valid_keys([]) -> [];
valid_keys([Key | Rest]) -> [valid_key(Key) | valid_keys(Rest)];
valid_keys(_NotAProperList) -> error(badarg).

-spec valid_key(term()) -> info_key().
valid_key(Key) ->
    case is_key(Key) of
        true -> Key;
        false -> error(badarg)
    end.

-spec is_key(term()) -> boolean().
is_key(Key) ->
    lists:member(Key, extra_keys())
        orelse lists:any(fun({_, Keys}) -> lists:member(Key, Keys) end, categories()).

%% Keys of info/2 that belong to no category of info/1 (as in recon).
-spec extra_keys() -> [info_key(), ...].
extra_keys() -> [binary, binary_memory].

%% @doc `ok' when `What' is a valid second argument of {@link info/2},
%% else `{2, Why}' for the message of the public function's `badarg'.
-spec info_error(term(), term()) -> ok | {1 | 2, string()}.
info_error(PidTerm, What) ->
    case pid_term_error(PidTerm) of
        ok -> what_error(What);
        Error -> Error
    end.

-spec what_error(term()) -> ok | {2, string()}.
what_error(What) ->
    Ok = case What of
             _ when is_atom(What) ->
                 lists:keymember(What, 1, categories()) orelse is_key(What);
             _ when is_list(What) ->
                 try lists:all(fun is_key/1, What) catch error:_ -> false end;
             _ ->
                 false
         end,
    case Ok of
        true -> ok;
        false -> {2, "not a category, a key or a list of keys; categories: "
                  ++ names([C || {C, _} <- categories()]) ++ "; keys: "
                  ++ names(lists:append([Ks || {_, Ks} <- categories()]) ++ extra_keys())
                  ++ " (never messages)"}
    end.

%% @doc `ok' when `Term' is a well-formed `reckon:pid_term()', else `{1, Why}'.
-spec pid_term_error(term()) -> ok | {1, string()}.
pid_term_error(Term) ->
    try term_to_pid(Term) of
        _ -> ok
    catch
        error:badarg ->
            {1, "not a pid, \"<A.B.C>\", {A, B, C}, a registered name, "
             "{global, Name} or {via, Module, Name}"}
    end.

-spec names([atom()]) -> string().
names(Atoms) ->
    lists:flatten(lists:join(", ", [atom_to_list(A) || A <- Atoms])).

-spec query_keys(query()) -> [info_key()].
query_keys({category, _, Keys}) -> Keys;
query_keys({key, Key}) -> [Key];
query_keys({keys, Keys}) -> Keys.

-spec answer(query(), [{info_key(), term()}]) ->
    {info_type(), [{info_key(), term()}]} | {info_key(), term()} | [{info_key(), term()}].
answer({category, Category, _}, Props) -> {Category, Props};
answer({key, registered_name}, [{registered_name, []}]) -> [];
answer({key, _}, [Prop]) -> Prop;
answer({keys, _}, Props) -> Props.

%% The values of `Keys', in that order, capped; `undefined' for a dead process.
-spec fetch(pid() | undefined, [info_key()]) -> [{info_key(), term()}] | undefined.
fetch(undefined, _Keys) ->
    undefined;
fetch(Pid, Keys) ->
    case process_info_of(Pid, fetch_keys(Keys)) of
        undefined -> undefined;
        Props -> [{Key, value(Key, Props)} || Key <- Keys]
    end.

%% The initial call given by proc_lib lives in the dictionary;
%% `binary_memory' is the sum of the sizes in `binary'.
-spec fetch_keys([info_key()]) -> [info_key()].
fetch_keys(Keys) ->
    Fetched = [case Key of binary_memory -> binary; _ -> Key end || Key <- Keys],
    case lists:member(initial_call, Keys) of
        true -> lists:usort([dictionary | Fetched]);
        false -> lists:usort(Fetched)
    end.

-spec process_info_of(pid(), [info_key()]) -> [{info_key(), term()}] | undefined.
process_info_of(Pid, Keys) when node(Pid) =:= node() ->
    erlang:process_info(Pid, Keys);
process_info_of(Pid, Keys) ->
    erpc:call(node(Pid), erlang, process_info, [Pid, Keys], ?REMOTE_TIMEOUT).

-spec value(info_key(), [{info_key(), term()}]) -> term().
value(initial_call, Props) ->
    {dictionary, Dict} = lists:keyfind(dictionary, 1, Props),
    case lists:keyfind('$initial_call', 1, Dict) of
        {_, {M, F, A}} when is_atom(M), is_atom(F), is_integer(A) -> {M, F, A};
        _ -> element(2, lists:keyfind(initial_call, 1, Props))
    end;
value(binary_memory, Props) ->
    {binary, Bins} = lists:keyfind(binary, 1, Props),
    lists:foldl(fun({_, Size, _}, Sum) -> Sum + Size end, 0, Bins);
value(dictionary, Props) ->
    {dictionary, Dict} = lists:keyfind(dictionary, 1, Props),
    [{Key, cap_value(Value)} || {Key, Value} <- lists:sublist(Dict, ?LIST_CAP)];
value(Key, Props) ->
    {Key, Value} = lists:keyfind(Key, 1, Props),
    case is_capped_list(Key) of
        true -> lists:sublist(Value, ?LIST_CAP);
        false -> Value
    end.

-spec is_capped_list(info_key()) -> boolean().
is_capped_list(Key) ->
    lists:member(Key, [links, monitors, monitored_by, current_stacktrace, binary]).

-spec cap_value(term()) -> term().
cap_value(Value) ->
    case erts_debug:flat_size(Value) of
        Words when Words > ?VALUE_WORDS_CAP -> {reckon_truncated, Words};
        _ -> Value
    end.

%%% State

%% @doc `get_state(PidTerm, 5000)'.
-spec get_state(reckon:pid_term()) -> term().
get_state(PidTerm) ->
    get_state(PidTerm, ?GET_STATE_TIMEOUT).

%% @doc The state of a `sys'-compatible process, waiting at most `Timeout'
%% ms. Raises `error({noproc, PidTerm})' when the process is dead, the name
%% unknown or the process dies during the call, `error({timeout, PidTerm})'
%% when it does not answer in time (a process that does not handle system
%% messages never does), `error({nodedown, Node})' when its node is gone,
%% and `badarg' for a `Timeout' that is not a timeout().
-spec get_state(reckon:pid_term(), timeout()) -> term().
get_state(PidTerm, Timeout) when Timeout =:= infinity;
                                 is_integer(Timeout), Timeout >= 0 ->
    case term_to_pid(PidTerm) of
        undefined -> error({noproc, PidTerm});
        Pid -> sys_get_state(Pid, PidTerm, Timeout)
    end;
get_state(_PidTerm, _Timeout) ->
    error(badarg).

-spec sys_get_state(pid(), reckon:pid_term(), timeout()) -> term().
sys_get_state(Pid, PidTerm, Timeout) ->
    try
        sys:get_state(Pid, Timeout)
    catch
        exit:{Reason, {sys, get_state, _}} ->
            error(get_state_error(Reason, PidTerm))
    end.

-spec get_state_error(term(), reckon:pid_term()) ->
    {noproc | timeout, reckon:pid_term()} | {nodedown, node()}.
get_state_error(timeout, PidTerm) -> {timeout, PidTerm};
get_state_error({nodedown, Node}, _PidTerm) -> {nodedown, Node};
get_state_error(_DiedOrGone, PidTerm) -> {noproc, PidTerm}.

%%% Names

%% @doc The pid `Term' names: a pid is itself; `"<0.1.0>"' and
%% `<<"<0.1.0>">>' are read as pids (never as names, so no atom is
%% created); `{0,1,0}' is `c:pid(0,1,0)'; an atom is a registered name;
%% `{global, Name}' and `{via, Module, Name}' ask the registry. Returns
%% `undefined' for a name nobody holds; raises `badarg' for anything else.
-spec term_to_pid(reckon:pid_term()) -> pid() | undefined.
term_to_pid(Pid) when is_pid(Pid) ->
    Pid;
term_to_pid(Name) when is_atom(Name) ->
    whereis(Name);
term_to_pid(Text) when is_binary(Text), byte_size(Text) =< ?PID_TEXT_MAX ->
    text_to_pid(binary_to_list(Text));
term_to_pid(Text) when is_list(Text) ->
    text_to_pid(Text);
term_to_pid({A, B, C}) when is_integer(A), A >= 0, is_integer(B), B >= 0,
                            is_integer(C), C >= 0 ->
    c:pid(A, B, C);
term_to_pid({global, Name}) ->
    registry_answer(global:whereis_name(Name));
term_to_pid({via, Module, Name}) when is_atom(Module) ->
    via_whereis(Module, Name);
term_to_pid(_Term) ->
    error(badarg).

-spec text_to_pid(list()) -> pid().
text_to_pid(Text) ->
    try list_to_pid(Text)
    catch error:badarg -> error(badarg)
    end.

-spec via_whereis(module(), term()) -> pid() | undefined.
via_whereis(Module, Name) ->
    _ = code:ensure_loaded(Module),
    case erlang:function_exported(Module, whereis_name, 1) of
        true -> registry_answer(Module:whereis_name(Name));
        false -> error(badarg)
    end.

-spec registry_answer(term()) -> pid() | undefined.
registry_answer(Pid) when is_pid(Pid) -> Pid;
registry_answer(undefined) -> undefined;
registry_answer(_Other) -> error(badarg).
