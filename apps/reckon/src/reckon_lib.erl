%% @private
%% @doc What reckon's modules share: the shell's message for an argument
%% refused with `?RECKON_BADARG' (reckon_error.hrl), and where reckon's NIF
%% libraries are.
-module(reckon_lib).

-export([format_error/2, nif_path/1]).

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

%% @doc The path (without extension) of reckon's NIF library `Lib', in
%% reckon's priv directory, or beside the ebin directory of this module when
%% reckon is not an application the code server knows.
-spec nif_path(string()) -> file:filename().
nif_path(Lib) ->
    Priv = case code:priv_dir(reckon) of
               {error, bad_name} ->
                   filename:join(filename:dirname(filename:dirname(code:which(?MODULE))), "priv");
               Dir ->
                   Dir
           end,
    filename:join(Priv, Lib).
