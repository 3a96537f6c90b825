%% Raises `badarg' for the current call (arguments `Args'), with a message for
%% argument number `Index' that the shell prints (see sluice_util:format_error/2).
-define(BADARG(Args, Index, Why),
        erlang:error(badarg, Args, [{error_info, #{module => sluice_util, cause => {Index, Why}}}])).
