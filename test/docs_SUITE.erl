%% The API documentation's shape, read from the compiled modules: every
%% exported function of a public module (one without `@private' in its
%% module comment) of sluice and reckon has a -spec naming its arguments
%% (recon's style: `-spec close(Box) -> ok when Box :: box().'), and the
%% fuzz suite's reader of specs (sluice_spec_check) follows `when'
%% constraints; docs/architecture.md and the README's layout name only
%% crates, modules and functions that exist, and every crate. That each
%% type's description sits under its own type in the HTML is checked by
%% scripts/check-edoc-types.escript after `rebar3 edoc'.
-module(docs_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([public_modules/1, public_specs_name_arguments/1, spec_check_reads_when/1,
         docs_name_what_exists/1]).

all() ->
    [public_modules, public_specs_name_arguments, spec_check_reads_when,
     docs_name_what_exists].

init_per_suite(Config) ->
    _ = [application:load(A) || A <- [sluice, reckon]],
    Config.

end_per_suite(_Config) ->
    ok.

%% The modules the README lists are the public ones.
public_modules(_Config) ->
    ?assertEqual(lists:sort([sluice, sluice_drop, sluice_box, sluice_buckets, sluice_lock,
                             sluice_limit, sluice_group, sluice_breaker, reckon, reckon_alloc,
                             reckon_dump, reckon_trace, reckon_rec, reckon_metrics, reckon_top]),
                 lists:sort(public())).

%% Each argument of each clause of each exported function's spec is a
%% variable (its type in the `when' clause, or a type variable), or an atom
%% (or a union of atoms) that picks the clause, as in
%% `reckon_alloc:memory(usage)'.
public_specs_name_arguments(_Config) ->
    Bad = [{M, F, A, Why} || M <- public(),
                             {F, A} <- M:module_info(exports),
                             F =/= module_info, F =/= behaviour_info, A > 0,
                             Why <- spec_problems(M, F, A)],
    ?assertEqual([], Bad).

%% A return type named in a `when' clause is checked as its type.
spec_check_reads_when(_Config) ->
    Specs = sluice_spec_check:specs(sluice_box),
    ?assert(sluice_spec_check:returns(Specs, {usage, 1}, {1, 2})),
    ?assertNot(sluice_spec_check:returns(Specs, {usage, 1}, {a, 2})),
    ?assert(sluice_spec_check:returns(Specs, {close, 1}, {error, not_owner})),
    ?assertNot(sluice_spec_check:returns(Specs, {close, 1}, {error, closed})).

%% Every `native/Crate' named in docs/architecture.md or the README is a
%% crate and every crate is named in both; every `Module:Function' of
%% sluice or reckon named in docs/architecture.md is an exported function.
docs_name_what_exists(_Config) ->
    Root = root(filename:dirname(proplists:get_value(source, ?MODULE:module_info(compile)))),
    Crates = lists:sort([filename:basename(D)
                         || D <- filelib:wildcard(filename:join(Root, "native/*")),
                            filelib:is_regular(filename:join(D, "Cargo.toml"))]),
    ?assertNotEqual([], Crates),
    {ok, Arch} = file:read_file(filename:join(Root, "docs/architecture.md")),
    {ok, Readme} = file:read_file(filename:join(Root, "README.md")),
    [_, Layout] = binary:split(Readme, <<"\n## Layout\n">>),
    _ = [?assertEqual({Doc, Crates}, {Doc, named_crates(Text)})
         || {Doc, Text} <- [{architecture, Arch}, {readme_layout, Layout}]],
    {match, Calls} = re:run(Arch, "\\b((?:sluice|reckon)[a-z_]*):([a-z_]+)(?:/([0-9]))?",
                            [global, {capture, all_but_first, list}]),
    ?assert(length(Calls) > 5),
    Missing = [C || [M, F | A] <- Calls, C <- [{M, F, A}], not exported(M, F, A)],
    ?assertEqual([], Missing).

%% The umbrella's directory: the first above `Dir' with native/ and docs/.
root(Dir) ->
    case lists:all(fun(D) -> filelib:is_dir(filename:join(Dir, D)) end, ["native", "docs"]) of
        true -> Dir;
        false when Dir =/= "/" -> root(filename:dirname(Dir))
    end.

named_crates(Text) ->
    {match, Names} = re:run(Text, "native/([a-z_]+)", [global, {capture, all_but_first, list}]),
    lists:usort(lists:append(Names)).

exported(M, F, A) ->
    Mod = list_to_atom(M),
    {module, Mod} =:= code:ensure_loaded(Mod) andalso
        lists:any(fun({F1, A1}) ->
                          atom_to_list(F1) =:= F
                              andalso (A =:= [] orelse [integer_to_list(A1)] =:= A)
                  end, Mod:module_info(exports)).

public() ->
    [M || App <- [sluice, reckon],
          {ok, Mods} <- [application:get_key(App, modules)],
          M <- Mods,
          not private(M)].

private(M) ->
    Src = proplists:get_value(source, M:module_info(compile)),
    {ok, Bin} = file:read_file(Src),
    [Head | _] = binary:split(Bin, <<"\n-module(">>),
    binary:match(Head, <<"@private">>) =/= nomatch.

spec_problems(M, F, A) ->
    case [Types || {attribute, _, spec, {{F1, A1}, Types}} <- forms(M), {F1, A1} =:= {F, A}] of
        [] -> [no_spec];
        [Types] -> [{unnamed_argument, N} || T <- Types, {N, Arg} <- args(T), not named(Arg)]
    end.

args({type, _, bounded_fun, [Fun, _]}) -> args(Fun);
args({type, _, 'fun', [{type, _, product, Args}, _]}) ->
    lists:zip(lists:seq(1, length(Args)), Args).

named({var, _, V}) -> V =/= '_';
named({atom, _, _}) -> true;
named({type, _, union, Ts}) -> lists:all(fun(T) -> element(1, T) =:= atom end, Ts);
named(_) -> false.

forms(M) ->
    {ok, {_, [{abstract_code, {raw_abstract_v1, Forms}}]}} =
        beam_lib:chunks(code:which(M), [abstract_code]),
    Forms.
