%% @doc Counter locks, dispcount's shape (Erlang in Anger, 3.2.2 and 3.3.5):
%% `N' resources, each lent to one caller at a time, with no process on the
%% path of a checkout or a checkin.
%%
%% == Checking out ==
%% {@link checkout/1} is one NIF call in the caller: a compare-and-swap
%% claims a free slot (starting at a random one and trying every slot, up to
%% 64), the caller is monitored, and the slot's resource is copied to it:
%% `{ok, Ref, Resource}', or `{error, busy}' at once when every slot is
%% lent: a denied request is told so, it does not queue. {@link checkin/3}
%% hands the loan back (one NIF call); {@link transaction/2} does both
%% around a fun, also when it raises.
%%
%% == Watchers and the callback module ==
%% Each slot has a watcher process (restarted independently by the lock's
%% supervisor) that makes its resource with a callback module, as
%% dispcount's:
%% <ul>
%% <li>`init(Args) -> {ok, State}';</li>
%% <li>`checkout(From, State) -> {ok, Resource, State2} | {error, Reason,
%%     State2} | {stop, Reason, State2}': makes the resource the slot lends.
%%     Unlike dispcount, the watcher calls it ahead of the loans (`From' is
%%     `none'): at start, and again after a holder died; callers never wait
%%     for it, and the same resource is lent loan after loan;</li>
%% <li>`checkin(Resource, State) -> {ok, State2}': the watcher takes its
%%     resource back for good (the lock closes or the slot goes);</li>
%% <li>`dead(State) -> {ok, State2}': a holder died with the resource;</li>
%% <li>`handle_info(Msg, State) -> {ok, State2}', `terminate(Reason,
%%     State)'.</li>
%% </ul>
%% `init/1' and `checkout/2' must be exported (`{error, {bad_option,
%% callback}}' otherwise); the others are optional. The watcher calls
%% `init/1' and `checkout/2' after its own start, never inside a call to a
%% node-wide process: a callback that blocks holds up its own lock only.
%% {@link new/1} (and {@link start_link/1}) wait in the caller until every
%% slot has its resource, at most `init_timeout' ms (default 5000), then
%% close the half-made lock and answer `{error, timeout}'.
%%
%% When a holder dies its slot is emptied at once (its resource may be in a
%% bad state), its watcher runs `dead/1' then `checkout/2' and the slot
%% lends again. A watcher that crashes is restarted and refills its slot
%% with a fresh resource; a loan out meanwhile stays valid and is handed
%% back normally (the new resource replaces the old one then), so a slot
%% never stays busy because of a watcher. The old resource is not handed
%% to `checkin/2' (it belonged to the watcher that died); `checkin/2' runs
%% only when a slot goes for good: {@link close/1}, a shrink by
%% {@link resize/2}, the application stopping, or the user's supervisor
%% stopping a {@link start_link/1} lock.
%%
%% == Restarts of the lock service ==
%% The handle is the lock itself, not a process: it stays valid across
%% restarts of the watchers and of `sluice_lock_sup'. Every lock made by
%% {@link new/1} is recorded (with its options) in a table that no restart
%% empties; when `sluice_lock_sup' starts again, it starts again a
%% supervisor and watchers for each, which refill every slot as above:
%% loans out stay valid, and no resource still lent is handed back.
%%
%% == Bad arguments ==
%% Options are checked by {@link new/1} and {@link start_link/1}:
%% `{error, {bad_option, Key}}'. Any other bad argument (a term that is not
%% a lock, a closed lock given to {@link checkout/1} or {@link resize/2}, a
%% loan reference of the wrong shape) raises `badarg' with a message naming
%% it. A closed lock still answers {@link info/1}, and its loans out still
%% come back through {@link checkin/3}.
-module(sluice_lock).

-export([new/1, close/1, checkout/1, checkout/2, checkin/3, transaction/2, info/1, resize/2,
         child_spec/1, start_link/1, lookup/1]).
-export_type([lock/0, ref/0, options/0]).

-include("sluice_error.hrl").

-callback init(Args :: term()) -> {ok, State :: term()}.
-callback checkout(From :: none, State :: term()) ->
    {ok, Resource :: term(), State2 :: term()} | {error, term(), term()}
    | {stop, term(), term()}.
-callback checkin(Resource :: term(), State :: term()) -> {ok, State2 :: term()}.
-callback dead(State :: term()) -> {ok, State2 :: term()}.
-callback handle_info(Msg :: term(), State :: term()) -> {ok, State2 :: term()}.
-callback terminate(Reason :: term(), State :: term()) -> term().
-optional_callbacks([checkin/2, dead/1, handle_info/2, terminate/2]).

-record(sluice_lock, {ref :: reference()}).

-define(MAX, 4096).
-define(NOT_A_LOCK, "not a lock (or a lock of another build)").
-define(CLOSED, "the lock is closed").

-opaque lock() :: #sluice_lock{}.
%% A handle on a lock, from {@link new/1} or {@link lookup/1}; it stays
%% valid across restarts of the lock's watchers and supervisors.
-opaque ref() :: {non_neg_integer(), pos_integer()}.
%% A loan: what {@link checkout/1} returns with the resource and
%% {@link checkin/3} takes back (the slot and the loan's number).
-type options() :: #{resources := pos_integer(), callback := {module(), term()},
                     max_resources => pos_integer(), name => term(),
                     maxr => non_neg_integer(), maxt => pos_integer(),
                     init_timeout => pos_integer()}.
%% `resources' (mandatory, at most 4096): how many slots; `callback'
%% (mandatory): `{Module, Args}'; `max_resources' (default the larger of
%% `resources' and 64, at most 4096, at least `resources'): how far
%% {@link resize/2} may grow it; `name' (mandatory for {@link start_link/1}
%% and {@link child_spec/1}): a term to {@link lookup/1} it by; `maxr',
%% `maxt' (default 10 restarts in 60 s): the watchers' restart intensity;
%% `init_timeout' (default 5000 ms): how long {@link new/1} waits for the
%% first resources.

%% @doc Starts a lock and its watchers under sluice's supervisor, once every
%% slot has its resource (see the module documentation).
-spec new(Opts) -> {ok, lock()} | {error, term()} when Opts :: options().
new(Opts) ->
    case options(Opts, false) of
        {ok, Full} -> opened(sluice_lock_sup:open(Full, new));
        {error, _} = Bad -> Bad
    end.

%% @doc A child spec for the user's supervisor: it starts, with
%% {@link start_link/1}, the lock of `Opts' (see {@link options()}): the
%% lock's own supervisor, under the user's, with one watcher per slot,
%% started once every slot has its resource. `name' (any term) is
%% mandatory: callers find the lock with {@link lookup/1} and then
%% {@link checkout/1} and {@link checkin/3} on it. When the user's
%% supervisor stops the child, each watcher hands its resource back
%% (`checkin/2' of the callback module) and the lock lends no more.
%% Raises `badarg' for bad options.
-spec child_spec(Opts) -> supervisor:child_spec() when Opts :: options().
child_spec(Opts) ->
    case options(Opts, true) of
        {ok, #{name := Name} = Full} ->
            %% (started through sluice_lock_sup: a `{sluice_lock, F, A}' tuple
            %% would read as this module's opaque record)
            #{id => {sluice_lock, Name}, start => {sluice_lock_sup, start_named, [Full]},
              type => supervisor};
        {error, {bad_option, Key}} ->
            ?BADARG([Opts], 1, lists:flatten(io_lib:format("bad option ~0p", [Key])))
    end.

%% @doc Starts a lock's supervisor linked to the caller and registers the
%% lock under option `name' (`{error, {already_started, Pid}}' while
%% another lock has it), once every slot has its resource.
-spec start_link(Opts) -> {ok, pid()} | {error, term()} when Opts :: options().
start_link(Opts) ->
    case options(Opts, true) of
        {ok, Full} ->
            case sluice_lock_sup:open(Full, {link, self()}) of
                {ok, _Ref, Sup} -> {ok, Sup};
                Error -> Error
            end;
        {error, _} = Bad ->
            Bad
    end.

%% @doc The lock registered under `Name' while it is open.
-spec lookup(Name) -> {ok, lock()} | {error, not_found} when Name :: term().
lookup(Name) ->
    case sluice_lock_sup:lookup(Name) of
        {ok, Ref} -> {ok, #sluice_lock{ref = Ref}};
        error -> {error, not_found}
    end.

%% @doc Stops lending, stops the lock's supervisor and watchers (each hands
%% its resource back through `checkin/2') and frees its name; loans out
%% stay valid until checked in. Waits for the lock's own watchers only.
-spec close(Lock) -> ok when Lock :: lock().
close(#sluice_lock{ref = Ref} = Lock) when is_reference(Ref) ->
    #{slots := Active} = nif(fun() -> sluice_nif:lock_info(Ref) end, [Lock], 1),
    case sluice_lock_sup:row(Ref) of
        {ok, _} -> sluice_lock_sup:close(Ref);
        error when Active =:= 0 -> ok;
        %% (the NIF object of a concurrency limit, retagged)
        error -> ?BADARG([Lock], 1, ?NOT_A_LOCK)
    end;
close(Lock) ->
    ?BADARG([Lock], 1, ?NOT_A_LOCK).

%% @doc Uses `N' resources: new slots get watchers; the watchers of slots
%% beyond `N' stop (handing their resource back through `checkin/2'), and
%% such a slot lent now stops lending when it comes back. `{error,
%% too_many}' beyond `max_resources'.
-spec resize(Lock, N) -> ok | {error, too_many} when Lock :: lock(), N :: pos_integer().
resize(#sluice_lock{ref = Ref} = Lock, N) when is_reference(Ref), is_integer(N), N > 0 ->
    #{slots := Active, capacity := Capacity} =
        nif(fun() -> sluice_nif:lock_info(Ref) end, [Lock, N], 1),
    Known = sluice_lock_sup:row(Ref) =/= error,
    if
        Active =:= 0 -> ?BADARG([Lock, N], 1, ?CLOSED);
        not Known -> ?BADARG([Lock, N], 1, ?NOT_A_LOCK);
        N > Capacity -> {error, too_many};
        true -> _ = sluice_nif:lock_resize(Ref, N), sluice_lock_sup:set_watchers(Ref, N)
    end;
resize(#sluice_lock{ref = Ref} = Lock, N) when is_reference(Ref) ->
    ?BADARG([Lock, N], 2, "must be a positive integer");
resize(Lock, N) ->
    ?BADARG([Lock, N], 1, ?NOT_A_LOCK).

%% @doc Borrows a resource: `{ok, Ref, Resource}' or `{error, busy}'.
-spec checkout(Lock) -> {ok, ref(), term()} | {error, busy} when Lock :: lock().
checkout(#sluice_lock{ref = Ref} = Lock) ->
    try sluice_nif:lock_checkout(Ref) of
        {error, closed} -> ?BADARG([Lock], 1, ?CLOSED);
        Answer -> Answer
    catch error:badarg -> ?BADARG([Lock], 1, ?NOT_A_LOCK)
    end;
checkout(Lock) ->
    ?BADARG([Lock], 1, ?NOT_A_LOCK).

%% @doc As {@link checkout/1}, but while every resource is lent it tries
%% again, in the caller (pauses of 1 ms doubling up to 50 ms; no process is
%% messaged), until `Timeout' ms (0 to 2^32-1) have passed, then answers
%% `{error, busy}'. dispcount's `checkout(Info, Timeout)'.
-spec checkout(Lock, Timeout) -> {ok, ref(), term()} | {error, busy} when
      Lock :: lock(),
      Timeout :: non_neg_integer().
checkout(#sluice_lock{ref = Ref} = Lock, Timeout)
  when is_integer(Timeout), Timeout >= 0, Timeout < 1 bsl 32 ->
    case wait(Ref, erlang:monotonic_time(millisecond) + Timeout, 1) of
        {error, closed} -> ?BADARG([Lock, Timeout], 1, ?CLOSED);
        badarg -> ?BADARG([Lock, Timeout], 1, ?NOT_A_LOCK);
        Answer -> Answer
    end;
checkout(#sluice_lock{} = Lock, Timeout) ->
    ?BADARG([Lock, Timeout], 2, "must be a timeout in ms, an integer from 0 to 2^32-1");
checkout(Lock, Timeout) ->
    ?BADARG([Lock, Timeout], 1, ?NOT_A_LOCK).

-spec wait(reference(), integer(), pos_integer()) ->
    {ok, ref(), term()} | {error, busy | closed} | badarg.
wait(Ref, Deadline, Pause) ->
    try sluice_nif:lock_checkout(Ref) of
        {error, busy} = Busy ->
            case Deadline - erlang:monotonic_time(millisecond) of
                Left when Left > 0 ->
                    timer:sleep(min(Left, Pause)),
                    wait(Ref, Deadline, min(2 * Pause, 50));
                _ ->
                    Busy
            end;
        Answer ->
            Answer
    catch
        error:badarg -> badarg
    end.

%% @doc Hands a loan back: `ok', or `{error, not_lent}' when `Ref' is not
%% out (handed back already, or its holder died).
-spec checkin(Lock, LoanRef, Resource) -> ok | {error, not_lent} when
      Lock :: lock(),
      LoanRef :: ref(),
      Resource :: term().
checkin(#sluice_lock{ref = Ref} = Lock, {I, G} = LoanRef, Resource)
  when is_integer(I), I >= 0, is_integer(G), G >= 0, I < 1 bsl 64, G < 1 bsl 64 ->
    try sluice_nif:lock_checkin(Ref, LoanRef)
    catch error:badarg -> ?BADARG([Lock, LoanRef, Resource], 1, ?NOT_A_LOCK)
    end;
checkin(#sluice_lock{} = Lock, LoanRef, Resource) ->
    ?BADARG([Lock, LoanRef, Resource], 2, "not a loan reference");
checkin(Lock, LoanRef, Resource) ->
    ?BADARG([Lock, LoanRef, Resource], 1, ?NOT_A_LOCK).

%% @doc Runs `Fun(Resource)' on a borrowed resource and hands it back, also
%% when `Fun' raises: `Fun''s result, or `{error, busy}'.
-spec transaction(Lock, Fun) -> Result | {error, busy} when
      Lock :: lock(),
      Fun :: fun((term()) -> Result).
transaction(Lock, Fun) when is_function(Fun, 1) ->
    case checkout(Lock) of
        {ok, LoanRef, Resource} ->
            try
                Fun(Resource)
            after
                _ = checkin(Lock, LoanRef, Resource)
            end;
        {error, busy} = Busy ->
            Busy
    end;
transaction(Lock, Fun) ->
    ?BADARG([Lock, Fun], 2, "must be a fun of one argument").

%% @doc Counters: checkouts, busy answers, holder deaths, loans out now,
%% peak loans out (never above the slots), slots in use (0 once closed).
-spec info(Lock) -> #{atom() => non_neg_integer()} when Lock :: lock().
info(#sluice_lock{ref = Ref} = Lock) ->
    #{slots := Slots} = Info = nif(fun() -> sluice_nif:lock_info(Ref) end, [Lock], 1),
    (maps:with([checkouts, busy, deaths, in_use, peak], Info))#{resources => Slots};
info(Lock) ->
    ?BADARG([Lock], 1, ?NOT_A_LOCK).

%%% Internals

%% Options checked and completed (`name' mandatory when `Named').
-spec options(term(), boolean()) -> {ok, map()} | {error, {bad_option, term()}}.
options(Opts, Named) ->
    Spec = [{resources, required, sluice_opts:pos_int_upto(?MAX)},
            {callback, required, fun callback/1},
            {max_resources, default,
             fun(V) -> V =:= default orelse (sluice_opts:pos_int_upto(?MAX))(V) end},
            {name, case Named of true -> required; false -> '$none' end, fun sluice_opts:any/1},
            {maxr, 10, fun sluice_opts:non_neg_int/1},
            {maxt, 60, fun sluice_opts:pos_int/1},
            {init_timeout, 5000, fun sluice_opts:ms/1}],
    case sluice_opts:validate(Opts, Spec) of
        {ok, #{resources := N, max_resources := default} = Full} ->
            {ok, named(Full#{max_resources := max(N, 64)})};
        {ok, #{resources := N, max_resources := Cap} = Full} when is_integer(Cap), Cap >= N ->
            {ok, named(Full)};
        {ok, _} ->
            {error, {bad_option, max_resources}};
        {error, _} = Bad ->
            Bad
    end.

-spec named(map()) -> map().
named(#{name := '$none'} = Full) -> maps:remove(name, Full);
named(Full) -> Full.

%% A callback module that can be loaded and exports init/1 and checkout/2.
-spec callback(term()) -> boolean().
callback({Mod, _Args}) when is_atom(Mod) ->
    code:ensure_loaded(Mod) =:= {module, Mod} andalso erlang:function_exported(Mod, init, 1)
        andalso erlang:function_exported(Mod, checkout, 2);
callback(_) ->
    false.

-spec opened({ok, reference(), pid()} | {error, term()}) -> {ok, lock()} | {error, term()}.
opened({ok, Ref, _Sup}) -> {ok, #sluice_lock{ref = Ref}};
opened({error, _} = Error) -> Error.

%% Runs a NIF on a handle: `badarg' from it (a forged or foreign handle)
%% becomes a message naming argument `Index'.
-spec nif(fun(() -> T), [term()], pos_integer()) -> T.
nif(Fun, Args, Index) ->
    try Fun()
    catch error:badarg -> ?BADARG(Args, Index, ?NOT_A_LOCK)
    end.
