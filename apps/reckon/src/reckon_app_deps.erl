%% @private
%% @doc The application dependency graph of {@link reckon:app_deps/0}, as
%% DOT text: one node per loaded application (and per application a loaded
%% one names without being loaded), an edge from each application to each
%% of its `applications' (solid) and `included_applications' (dashed).
%% Library applications, those without a `mod' callback, are boxes; the
%% others ellipses; an application named but not loaded is dotted.
-module(reckon_app_deps).

-export([dot/0, dot/1]).

-type app_info() :: {App :: atom(), Mod :: boolean(), Deps :: [atom()], Included :: [atom()]}.

%% @doc The graph of the applications loaded in this node.
-spec dot() -> binary().
dot() ->
    dot([info(App) || {App, _, _} <- application:loaded_applications()]).

%% @doc The graph of `Apps'.
-spec dot([app_info()]) -> binary().
dot(Apps) ->
    Sorted = lists:keysort(1, Apps),
    Known = [A || {A, _, _, _} <- Sorted],
    Named = lists:usort(lists:append([D ++ I || {_, _, D, I} <- Sorted])) -- Known,
    Nodes = [node_line(A, Mod) || {A, Mod, _, _} <- Sorted]
        ++ [[$\s, $\s, quote(A), " [shape=box, style=dotted];\n"] || A <- Named],
    Edges = [[$\s, $\s, quote(A), " -> ", quote(D), Style, ";\n"]
             || {A, _, Deps, Incl} <- Sorted,
                {D, Style} <- [{D, ""} || D <- Deps] ++ [{D, " [style=dashed]"} || D <- Incl]],
    iolist_to_binary(["digraph app_deps {\n",
                      "  // box: library application (no mod); ellipse: started by its mod;",
                      " dashed edge: included application\n",
                      Nodes, Edges, "}\n"]).

-spec info(atom()) -> app_info().
info(App) ->
    Get = fun(Key, Default) ->
                  case application:get_key(App, Key) of
                      {ok, V} -> V;
                      undefined -> Default
                  end
          end,
    Mod = case Get(mod, []) of
              {_, _} -> true;
              _ -> false
          end,
    {App, Mod, Get(applications, []), Get(included_applications, [])}.

-spec node_line(atom(), boolean()) -> iolist().
node_line(App, true) -> ["  ", quote(App), " [shape=ellipse];\n"];
node_line(App, false) -> ["  ", quote(App), " [shape=box];\n"].

-spec quote(atom()) -> iolist().
quote(App) ->
    Name = atom_to_binary(App, utf8),
    [$", binary:replace(binary:replace(Name, <<"\\">>, <<"\\\\">>, [global]),
                        <<"\"">>, <<"\\\"">>, [global]), $"].
