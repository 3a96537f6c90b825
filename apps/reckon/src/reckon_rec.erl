%% @doc Record definitions for {@link reckon_trace}'s output, as recon_rec
%% does for recon_trace: once a module's records are imported, a traced
%% tuple `{Name, ...}' of a known record name and size prints as
%% `#Name{field = Value, ...}'.
%%
%% {@link import/1} reads the definitions from the module's debug info
%% (`abstract_code'; a module compiled without `debug_info' has none);
%% {@link clear/0} and {@link clear/1} forget them; {@link list/0} prints
%% and {@link get_list/0} returns what is imported. Definitions are kept in
%% reckon's node-wide table (`reckon_keeper'), not in the shell process, so
%% they survive a crash of the shell that imported them; they are lost when
%% the reckon application stops. A record name and size imported from two
%% modules keeps the first (the second is reported as `ignored').
-module(reckon_rec).

-export([import/1, clear/0, clear/1, list/0, get_list/0, print_fun/0]).
-export_type([import_result/0, record_info/0]).

-include("reckon_error.hrl").

-type import_result() :: {imported, module(), atom(), arity()}
                       | {ignored, module(), atom(), arity(), module()}.
%% For each record of the module: imported, or ignored because a record of
%% the same name and size is already imported from another module.
-type record_info() :: {{Name :: atom(), Size :: arity()}, module(), [atom()]}.
%% A record known to the formatter: name and size (fields + 1), the module
%% it was imported from, its field names.

-define(KEY, {reckon_rec, records}).

%% @doc Imports the records of `Module' (or of each module of a list).
%% `{error, not_started}' when the reckon application is not running;
%% `badarg' when `Module' is not an atom or a list of atoms.
-spec import(Modules) -> [import_result()] | {error, not_started} when
      Modules :: module() | [module()].
import(Modules) when is_list(Modules) ->
    case lists:all(fun is_atom/1, Modules) of
        true -> store(lists:append([import_one(M) || M <- Modules]));
        false -> ?RECKON_BADARG([Modules], 1, "not a module name or a list of them")
    end;
import(Module) when is_atom(Module) ->
    store(import_one(Module));
import(Other) ->
    ?RECKON_BADARG([Other], 1, "not a module name or a list of them").

%% @doc Forgets every imported record.
-spec clear() -> ok.
clear() ->
    _ = reckon_keeper:put(?KEY, #{}),
    ok.

%% @doc Forgets the records imported from `Module'.
-spec clear(Module) -> ok when Module :: module().
clear(Module) when is_atom(Module) ->
    Kept = maps:filter(fun(_, {M, _}) -> M =/= Module end, records()),
    _ = reckon_keeper:put(?KEY, Kept),
    ok;
clear(Other) ->
    ?RECKON_BADARG([Other], 1, "not a module name").

%% @doc Prints the imported records, one a line: `Module: #name{f1, f2}'.
-spec list() -> ok.
list() ->
    lists:foreach(fun({{Name, _}, Mod, Fields}) ->
                          io:format("~p: #~p{~s}~n",
                                    [Mod, Name, lists:join(", ", [atom_to_list(F) || F <- Fields])])
                  end, get_list()).

%% @doc The imported records, sorted by name and size.
-spec get_list() -> [record_info()].
get_list() ->
    lists:sort([{Key, Mod, Fields} || {Key, {Mod, Fields}} <- maps:to_list(records())]).

%% @private The `record_print_fun' of io_lib_pretty: the field names of an
%% imported record of that name and size (fields only: `NoFields').
-spec print_fun() -> fun((atom(), non_neg_integer()) -> no | [atom()]).
print_fun() ->
    Records = records(),
    fun(Name, NoFields) ->
            case Records of
                #{{Name, NoFields + 1} := {_, Fields}} -> Fields;
                _ -> no
            end
    end.

-spec records() -> #{{atom(), arity()} => {module(), [atom()]}}.
records() ->
    reckon_keeper:get(?KEY, #{}).

-spec import_one(module()) -> [{{atom(), arity()}, module(), [atom()]}].
import_one(Module) ->
    [{{Name, length(Fields) + 1}, Module, Fields} || {Name, Fields} <- definitions(Module)].

-spec store([{{atom(), arity()}, module(), [atom()]}]) ->
    [import_result()] | {error, not_started}.
store(New) ->
    {Results, Records} =
        lists:foldl(fun({{Name, Size} = Key, Mod, Fields}, {Acc, Recs}) ->
                            case Recs of
                                #{Key := {Other, _}} when Other =/= Mod ->
                                    {[{ignored, Mod, Name, Size, Other} | Acc], Recs};
                                _ ->
                                    {[{imported, Mod, Name, Size} | Acc], Recs#{Key => {Mod, Fields}}}
                            end
                    end, {[], records()}, New),
    case reckon_keeper:put(?KEY, Records) of
        ok -> lists:reverse(Results);
        {error, not_started} = Error -> Error
    end.

%% The records of a module's abstract code: `[{Name, [Field]}]'.
-spec definitions(module()) -> [{atom(), [atom()]}].
definitions(Module) ->
    Beam = case code:which(Module) of
               Path when is_list(Path) -> Path;
               _ -> none
           end,
    case Beam =/= none andalso beam_lib:chunks(Beam, [abstract_code]) of
        {ok, {_, [{abstract_code, {_, Forms}}]}} ->
            [{Name, [field_name(F) || F <- Fields]}
             || {attribute, _, record, {Name, Fields}} <- Forms];
        _ ->
            []
    end.

-spec field_name(tuple()) -> atom().
field_name({typed_record_field, Field, _Type}) -> field_name(Field);
field_name({record_field, _, {atom, _, Name}}) -> Name;
field_name({record_field, _, {atom, _, Name}, _Default}) -> Name.
