%% Handle of a box: the NIF resource, and whether the box has a byte budget
%% (then every post also passes the message's external size). The NIF reads
%% the reference out of this record, so its shape is part of the NIF's API.
-record(sluice_box, {
    ref :: reference(),
    sized :: boolean()
}).
