%% @private
%% @doc What reckon's modules share: the shell's message for an argument
%% refused with `?RECKON_BADARG' (reckon_error.hrl).
-module(reckon_lib).

-export([format_error/2]).

%% @doc Turns the `error_info' cause of a `badarg' into the shell's message
%% for the faulty argument.
-spec format_error(term(), erlang:stacktrace()) -> #{pos_integer() => unicode:chardata()}.
format_error(_Reason, [{_M, _F, _As, Info} | _]) ->
    case proplists:get_value(error_info, Info, #{}) of
        #{cause := {Index, Why}} -> #{Index => Why};
        _ -> #{}
    end;
format_error(_Reason, _Stack) ->
    #{}.
