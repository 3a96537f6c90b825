%% @private
%% @doc Stub module of the `sluice_nif' NIF library (Rust, `native/sluice_nif').
%%
%% The library is loaded from this application's `priv' directory when the
%% module is loaded. Loading a newer version of this module while the old one
%% is in use runs the library's `upgrade' callback, which takes over every
%% live resource (see `docs/nif-upgrade.md').
-module(sluice_nif).

-on_load(init/0).

-export([drop_random/1, drop_new/1, drop_ask/2, drop_set/4, drop_counters/1,
         drop_take_dropped/1, drop_delete/1, lib_info/0, induce_panic/0]).

-nifs([drop_random/1, drop_new/1, drop_ask/2, drop_set/4, drop_counters/1,
       drop_take_dropped/1, drop_delete/1, lib_info/0, induce_panic/0]).

-spec init() -> ok | {error, term()}.
init() ->
    erlang:load_nif(filename:join(priv_dir(), "sluice_nif"), 0).

-spec priv_dir() -> file:filename().
priv_dir() ->
    case code:priv_dir(sluice) of
        {error, bad_name} ->
            filename:join(filename:dirname(filename:dirname(code:which(?MODULE))), "priv");
        Dir ->
            Dir
    end.

-spec drop_random(float()) -> boolean().
drop_random(_Rate) -> erlang:nif_error(nif_not_loaded).

-spec drop_new([float()]) -> reference().
drop_new(_Rates) -> erlang:nif_error(nif_not_loaded).

-spec drop_ask(reference(), non_neg_integer()) -> ok | drop | {error, not_found}.
drop_ask(_Valve, _Priority) -> erlang:nif_error(nif_not_loaded).

-spec drop_set(reference(), non_neg_integer(), boolean(), float()) -> ok | {error, not_found}.
drop_set(_Valve, _Priority, _IsFactor, _Value) -> erlang:nif_error(nif_not_loaded).

-spec drop_counters(reference()) ->
    [{float(), float(), non_neg_integer(), non_neg_integer()}] | {error, not_found}.
drop_counters(_Valve) -> erlang:nif_error(nif_not_loaded).

-spec drop_take_dropped(reference()) -> non_neg_integer().
drop_take_dropped(_Valve) -> erlang:nif_error(nif_not_loaded).

-spec drop_delete(reference()) -> ok.
drop_delete(_Valve) -> erlang:nif_error(nif_not_loaded).

-spec lib_info() -> [{generation | instances | instance, non_neg_integer()}
                    | {live, [{atom(), integer()}]}].
lib_info() -> erlang:nif_error(nif_not_loaded).

-spec induce_panic() -> no_return().
induce_panic() -> erlang:nif_error(nif_not_loaded).
