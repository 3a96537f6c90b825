%% @private
%% @doc Helpers shared by sluice's public modules: argument errors that say
%% what is wrong (raised with `?BADARG' from sluice_error.hrl, explained by
%% `format_error/2').
-module(sluice_util).

-export([format_error/2, rate/1]).

%% @doc Turns the `error_info' cause into the shell's per-argument messages.
-spec format_error(term(), erlang:stacktrace()) -> #{pos_integer() => string()}.
format_error(_Reason, [{_M, _F, _As, Info} | _]) ->
    case proplists:get_value(error_info, Info) of
        #{cause := {Index, Why}} -> #{Index => Why};
        _ -> #{}
    end;
format_error(_Reason, _Stack) ->
    #{}.

%% @doc A rate as a float, if it is a number in [0, 1].
-spec rate(term()) -> {ok, float()} | error.
rate(R) when is_number(R), R >= 0, R =< 1 -> {ok, float(R)};
rate(_) -> error.
