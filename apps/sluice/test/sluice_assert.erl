%% Assertions the suites share.
-module(sluice_assert).

-include_lib("stdlib/include/assert.hrl").

-export([badarg/1, badarg/3]).

%% @doc `Fun()' raises `badarg' in the caller with sluice's error_info
%% message (see sluice_util:format_error/2).
-spec badarg(fun(() -> term())) -> ok.
badarg(Fun) ->
    try Fun() of
        Res -> error({no_badarg, Res})
    catch
        error:badarg:Stack ->
            [{_, _, _, Info} | _] = Stack,
            ?assertMatch(#{module := sluice_util, cause := {_, _}},
                         proplists:get_value(error_info, Info)),
            ok
    end.

%% @doc As {@link badarg/1}, the message naming argument `Index' being `Why'.
-spec badarg(fun(() -> term()), pos_integer(), string()) -> ok.
badarg(Fun, Index, Why) ->
    try Fun() of
        Res -> error({no_badarg, Res})
    catch
        error:badarg:Stack ->
            [{_, _, _, Info} | _] = Stack,
            ?assertMatch(#{module := sluice_util, cause := {Index, Why}},
                         proplists:get_value(error_info, Info)),
            ok
    end.
