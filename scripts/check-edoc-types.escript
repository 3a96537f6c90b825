#!/usr/bin/env escript
%% -*- erlang -*-
%%! -noshell
%% Checks the HTML that `rebar3 edoc' wrote (apps/*/doc) against the
%% sources: every type of every public module (the modules edoc documented,
%% listed in apps/<app>/doc/edoc-info) is on its module's page with a
%% description of its own, and a few descriptions say what they must; no
%% page links to a page that is not there (a `@private' module's), and
%% each `child_spec/1' links to the public functions and types it starts
%% with.
%%
%% edoc attaches the plain `%%' comment that follows a `-type' or `-opaque'
%% to it; a comment written above a type lands under the type before it
%% (or nowhere), which is what this catches.
%%
%% Usage (from the umbrella's root, after `rebar3 edoc'):
%%   escript scripts/check-edoc-types.escript [AppDir...]
%% (default: every apps/*). Prints one line per problem; exits 1 if any.
-mode(compile).

main(Args) ->
    Apps = case Args of
               [] -> lists:sort(filelib:wildcard("apps/*"));
               _ -> Args
           end,
    Problems = lists:append([app(App) ++ links(App) || App <- Apps]) ++ facts()
        ++ child_specs(),
    _ = [io:format("~s~n", [P]) || P <- Problems],
    case Problems of
        [] ->
            io:format("edoc types: every type of ~b public modules has its own description; "
                      "links and child specs checked~n",
                      [length(lists:append([modules(App) || App <- Apps]))]);
        _ ->
            io:format("edoc types: ~b problems~n", [length(Problems)]),
            halt(1)
    end.

%% The problems of one application's pages.
app(App) ->
    case modules(App) of
        [] -> [App ++ ": no module in doc/edoc-info (run `rebar3 edoc' first)"];
        Mods -> lists:append([module(App, M) || M <- Mods])
    end.

%% The modules edoc documented (the @private ones are left out).
modules(App) ->
    case file:consult(filename:join([App, "doc", "edoc-info"])) of
        {ok, Terms} -> proplists:get_value(modules, Terms, []);
        {error, _} -> []
    end.

module(App, Mod) ->
    Src = filename:join([App, "src", atom_to_list(Mod) ++ ".erl"]),
    Html = filename:join([App, "doc", atom_to_list(Mod) ++ ".html"]),
    {Types, Exported} = types(App, Src),
    case file:read_file(Html) of
        {ok, Page} ->
            Shown = shown(Page),
            [io_lib:format("~s: exported type ~s/~b is not on the page", [Html, N, A])
             || {N, A} <- Exported, not lists:keymember(atom_to_list(N), 1, Shown)]
            ++ [io_lib:format("~s: type ~s() has no description of its own", [Html, N])
                || {N, Desc} <- Shown, Desc =:= "",
                   lists:keymember(list_to_atom(N), 1, Types)]
            ++ [io_lib:format("~s: type ~s() is on the page but not in ~s", [Html, N, Src])
                || {N, _} <- Shown, not lists:keymember(list_to_atom(N), 1, Types)];
        {error, Why} ->
            [io_lib:format("~s: ~p", [Html, Why])]
    end.

%% The types a source file defines ({Name, Arity}) and those it exports.
types(App, Src) ->
    Inc = [filename:join(App, "src"), filename:join(App, "include")],
    {ok, Forms} = epp:parse_file(Src, [{includes, Inc}]),
    Types = [{N, length(Vs)} || {attribute, _, K, {N, _, Vs}} <- Forms,
                                K =:= type orelse K =:= opaque],
    Exported = lists:append([L || {attribute, _, export_type, L} <- Forms]),
    {Types, Exported}.

%% Each type on a page, with the text of its description: edoc writes
%% `<h3 class="typedecl"><a name="type-NAME">', the declaration in a `<p>'
%% (`<tt>...</tt>', or `<b>abstract datatype</b>' for an opaque type),
%% then the description, up to the next heading.
shown(Page) ->
    Parts = tl(binary:split(Page, <<"<h3 class=\"typedecl\">">>, [global])),
    [begin
         {match, [Name]} = re:run(Part, "^<a name=\"type-([^\"]+)\">",
                                  [{capture, all_but_first, list}]),
         Body = hd(re:split(Part, "<h[23][ >]", [{return, binary}])),
         AfterDecl = case binary:split(Body, <<"</p>">>) of
                         [_Heading, Rest] -> Rest;
                         [_] -> <<>>
                     end,
         {Name, text(AfterDecl)}
     end || Part <- Parts].

%% The words of an HTML fragment, tags dropped, spaces squeezed.
text(Html) ->
    NoTags = re:replace(Html, "<[^>]*>", "", [global, {return, binary}]),
    string:trim(re:replace(NoTags, "\\s+", " ", [global, {return, list}])).

%% Links from the pages of public modules to other pages of the docs
%% (`{@link Module}' of a `@private' module makes a link to no page).
links(App) ->
    Dir = filename:join(App, "doc"),
    [io_lib:format("~s: links to ~s, which is not a page", [Page, Target])
     || M <- modules(App),
        Page <- [filename:join(Dir, atom_to_list(M) ++ ".html")],
        {ok, Bin} <- [file:read_file(Page)],
        {match, Hrefs} <- [re:run(Bin, "href=\"([^\"#:/]+\\.html)",
                                  [global, {capture, all_but_first, list}])],
        [Target] <- lists:usort(Hrefs),
        not filelib:is_regular(filename:join(Dir, Target))].

%% A public `child_spec/1' says what it starts: its description links to
%% `start_link/1', `lookup/1' and the `options()' type of its module.
child_specs() ->
    [io_lib:format("~s: child_spec/1 does not link to ~s", [Page, Anchor])
     || Page <- ["apps/sluice/doc/sluice_box.html", "apps/sluice/doc/sluice_lock.html"],
        Section <- [function(Page, "child_spec-1")],
        Anchor <- ["#start_link-1", "#lookup-1", "#type-options"],
        string:find(Section, "href=\"" ++ Anchor ++ "\"") =:= nomatch].

%% The HTML of one function's section.
function(Page, Anchor) ->
    case file:read_file(Page) of
        {ok, Bin} ->
            case binary:split(Bin, list_to_binary("<a name=\"" ++ Anchor ++ "\">")) of
                [_, Rest] -> binary_to_list(hd(binary:split(Rest, <<"<h3">>)));
                [_] -> ""
            end;
        {error, _} -> ""
    end.

%% What particular descriptions must say.
facts() ->
    [P || {Page, Type, Words} <- [{"apps/sluice/doc/sluice_breaker.html", "options",
                                   ["reset (default 10000)",
                                    "strategy (default {standard, 10, 10000})"]},
                                  {"apps/sluice/doc/sluice_box.html", "options",
                                   ["max (mandatory)", "max_bytes (default infinity)"]},
                                  {"apps/sluice/doc/sluice_lock.html", "options",
                                   ["resources (mandatory", "init_timeout (default 5000 ms)"]},
                                  {"apps/sluice/doc/sluice_limit.html", "rate_options",
                                   ["period ms (default 1000)"]},
                                  {"apps/sluice/doc/sluice_drop.html", "options",
                                   ["rate (default 1.0)"]}],
          P <- fact(Page, Type, Words)].

fact(Page, Type, Words) ->
    Desc = case file:read_file(Page) of
               {ok, Bin} -> proplists:get_value(Type, shown(Bin), "");
               {error, _} -> ""
           end,
    [io_lib:format("~s: the description of ~s() does not say \"~s\"", [Page, Type, W])
     || W <- Words, string:find(Desc, W) =:= nomatch].
