%% Handle of a named valve: the NIF resource, the valve's name, the index of
%% each priority in the resource, and the index of priority `default'.
-record(sluice_valve, {
    ref :: reference(),
    name :: term(),
    priorities :: #{term() => non_neg_integer()},
    default :: non_neg_integer()
}).

%% The handle seen from inside sluice (sluice_drop:valve() is its opaque name).
-type valve_handle() :: #sluice_valve{}.
