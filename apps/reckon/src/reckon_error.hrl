%% Raises `badarg' for the current call (its arguments `Args') with a
%% message for argument number `Index', which the shell prints through
%% reckon_lib:format_error/2.
-define(RECKON_BADARG(Args, Index, Why),
        erlang:error(badarg, Args,
                     [{error_info, #{module => reckon_lib, cause => {Index, Why}}}])).
