%% @private
%% @doc Stub module of the `reckon_nif' NIF library (Rust, `native/reckon_nif').
%%
%% The library is loaded from this application's `priv' directory when the
%% module is loaded. Loading a newer version of this module runs the
%% library's `upgrade' callback; it takes over windows in flight when built
%% from the same sources, and refuses the upgrade (the old code keeps
%% running) while windows of another layout are in flight.
-module(reckon_nif).

-on_load(init/0).

%% Every function the library implements: exported, and declared as NIFs.
-define(NIFS, [top_merge/3, window_new/1, window_add/3, window_finish/1,
               dump_analyze/3]).

-type window_opts() :: #{kind := pid | integer, n := non_neg_integer(),
                         cap := non_neg_integer(), expected := non_neg_integer()}.
-type window_found() :: #{top := [{term(), integer()}], born := [{term(), integer()}],
                          died := [{term(), integer()}], born_count := non_neg_integer(),
                          died_count := non_neg_integer()}.

-export(?NIFS).
-nifs(?NIFS).

-spec init() -> ok | {error, term()}.
init() ->
    erlang:load_nif(filename:join(priv_dir(), "reckon_nif"), 0).

-spec priv_dir() -> file:filename().
priv_dir() ->
    case code:priv_dir(reckon) of
        {error, bad_name} ->
            filename:join(filename:dirname(filename:dirname(code:which(?MODULE))), "priv");
        Dir ->
            Dir
    end.

%% The `N' largest of `Top' (a previous answer) and `Pairs' (at most 4096),
%% largest first.
-spec top_merge(non_neg_integer(), [{term(), integer()}], [{term(), integer()}]) ->
    [{term(), integer()}].
top_merge(_N, _Top, _Pairs) -> erlang:nif_error(nif_not_loaded).

%% A window keyed by pids or port numbers (`kind'), ranking `n', listing
%% `cap' born and died, with room for `expected' keys.
-spec window_new(window_opts()) -> reference().
window_new(_Opts) -> erlang:nif_error(nif_not_loaded).

-spec window_add(reference(), first | second, [{pid() | non_neg_integer(), integer()}]) -> ok.
window_add(_Window, _Phase, _Pairs) -> erlang:nif_error(nif_not_loaded).

-spec window_finish(reference()) -> window_found().
window_finish(_Window) -> erlang:nif_error(nif_not_loaded).

%% The report of the crash dump at `Path' (dirty IO scheduler); see reckon_dump.
-spec dump_analyze(binary(), 1..1000, non_neg_integer()) ->
    {ok, reckon_dump:report()} | {error, file:posix()}.
dump_analyze(_Path, _Top, _Threshold) -> erlang:nif_error(nif_not_loaded).
