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
%% When a holder dies its slot is emptied at once (its resource may be in a
%% bad state), its watcher runs `dead/1' then `checkout/2' and the slot
%% lends again. A watcher that crashes is restarted and refills its slot;
%% a loan out meanwhile stays valid and is handed back normally (the new
%% resource replaces the old one then), so a slot never stays busy because
%% of a watcher. The handle is the lock itself,
%% not a process: it stays valid across restarts of the watchers.
-module(sluice_lock).

-export([new/1, close/1, checkout/1, checkin/3, transaction/2, info/1, resize/2,
         child_spec/1, start_link/1, lookup/1]).
-export_type([lock/0, ref/0, options/0]).

-callback init(Args :: term()) -> {ok, State :: term()}.
-callback checkout(From :: none, State :: term()) ->
    {ok, Resource :: term(), State2 :: term()} | {error, term(), term()}
    | {stop, term(), term()}.
-callback checkin(Resource :: term(), State :: term()) -> {ok, State2 :: term()}.
-callback dead(State :: term()) -> {ok, State2 :: term()}.
-callback handle_info(Msg :: term(), State :: term()) -> {ok, State2 :: term()}.
-callback terminate(Reason :: term(), State :: term()) -> term().

-record(sluice_lock, {ref :: reference(), sup :: pid()}).

-opaque lock() :: #sluice_lock{}.
-opaque ref() :: {non_neg_integer(), pos_integer()}.
%% `resources' (mandatory): how many slots; `callback' (mandatory): `{Module,
%% Args}'; `max_resources' (default the larger of `resources' and 64, at
%% most 4096): how far {@link resize/2} may grow it; `name' (for
%% {@link start_link/1} only): the name to {@link lookup/1} it by; `maxr', `maxt'
%% (default 10 restarts in 60 s): the watchers' restart intensity.
-type options() :: #{resources := pos_integer(), callback := {module(), term()},
                     max_resources => pos_integer(), name => term(),
                     maxr => non_neg_integer(), maxt => pos_integer()}.

%% @doc Starts a lock and its watchers under sluice's supervisor.
-spec new(options()) -> {ok, lock()} | {error, term()}.
new(#{resources := N, callback := {Mod, _}} = Opts)
  when is_integer(N), N > 0, N =< 4096, is_atom(Mod) ->
    Ref = sluice_nif:lock_new(N, capacity(N, Opts)),
    case sluice_lock_sup:start_lock(Ref, Opts) of
        {ok, Sup} -> {ok, #sluice_lock{ref = Ref, sup = Sup}};
        {error, _} = Error -> Error
    end;
new(Opts) ->
    {error, {bad_option, case Opts of #{resources := _} -> callback; _ -> resources end}}.

%% @doc A child spec for the user's supervisor: the lock's supervisor (and
%% its watchers) run under it; `name' (any term) is mandatory, to
%% {@link lookup/1} the lock by.
-spec child_spec(options()) -> supervisor:child_spec().
child_spec(#{name := Name} = Opts) ->
    %% (started through sluice_lock_sup: a `{sluice_lock, F, A}' tuple
    %% would read as this module's opaque record)
    #{id => {sluice_lock, Name}, start => {sluice_lock_sup, start_named, [Opts]},
      type => supervisor};
child_spec(Opts) ->
    erlang:error(badarg, [Opts]).

%% @doc Starts a lock's supervisor linked to the caller and registers the
%% lock under option `name'.
-spec start_link(options()) -> {ok, pid()} | {error, term()}.
start_link(#{name := Name, resources := N, callback := {Mod, _}} = Opts)
  when is_integer(N), N > 0, N =< 4096, is_atom(Mod) ->
    Ref = sluice_nif:lock_new(N, capacity(N, Opts)),
    case sluice_lock_sup:start_link(Ref, Opts) of
        {ok, Sup} ->
            ok = sluice_lock_sup:register(Name, #sluice_lock{ref = Ref, sup = Sup}),
            {ok, Sup};
        Other ->
            Other
    end;
start_link(Opts) ->
    {error, {bad_option, case Opts of #{name := _} -> resources; _ -> name end}}.

%% @doc The lock started under `Name' by {@link start_link/1}, while its
%% supervisor runs.
-spec lookup(term()) -> {ok, lock()} | {error, not_found}.
lookup(Name) ->
    case sluice_lock_sup:registered(Name) of
        {ok, #sluice_lock{sup = Sup} = Lock} ->
            case is_process_alive(Sup) of
                true -> {ok, Lock};
                false -> {error, not_found}
            end;
        error ->
            {error, not_found}
    end.

-spec capacity(pos_integer(), map()) -> pos_integer().
capacity(N, Opts) ->
    max(N, min(maps:get(max_resources, Opts, max(N, 64)), 4096)).

%% @doc Stops the watchers (each hands its resource back through
%% `checkin/2'); loans out stay valid until checked in, and nothing more is
%% lent.
-spec close(lock()) -> ok.
close(#sluice_lock{ref = Ref, sup = Sup}) ->
    _ = sluice_nif:lock_resize(Ref, 0),
    sluice_lock_sup:stop_lock(Sup).

%% @doc Uses `N' resources: new slots get watchers; the watchers of slots
%% beyond `N' stop (handing their resource back through `checkin/2'), and
%% such a slot lent now stops lending when it comes back. `{error,
%% too_many}' beyond `max_resources'.
-spec resize(lock(), pos_integer()) -> ok | {error, too_many}.
resize(#sluice_lock{ref = Ref, sup = Sup}, N) when is_integer(N), N > 0 ->
    {_, _, _, _, _, _, Capacity} = sluice_nif:lock_info(Ref),
    case N =< Capacity of
        true ->
            _ = sluice_nif:lock_resize(Ref, N),
            sluice_lock_sup:set_watchers(Sup, Ref, N);
        false ->
            {error, too_many}
    end;
resize(Lock, N) ->
    erlang:error(badarg, [Lock, N]).

%% @doc Borrows a resource: `{ok, Ref, Resource}' or `{error, busy}'.
-spec checkout(lock()) -> {ok, ref(), term()} | {error, busy}.
checkout(#sluice_lock{ref = Ref}) ->
    sluice_nif:lock_checkout(Ref).

%% @doc Hands a loan back: `ok', or `{error, not_lent}' when `Ref' is not
%% out (handed back already, or its holder died).
-spec checkin(lock(), ref(), term()) -> ok | {error, not_lent}.
checkin(#sluice_lock{ref = Ref}, LoanRef, _Resource) ->
    sluice_nif:lock_checkin(Ref, LoanRef).

%% @doc Runs `Fun(Resource)' on a borrowed resource and hands it back, also
%% when `Fun' raises: `Fun''s result, or `{error, busy}'.
-spec transaction(lock(), fun((term()) -> Result)) -> Result | {error, busy}.
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
    end.

%% @doc Counters: checkouts, busy answers, holder deaths, loans out now,
%% peak loans out, slots.
-spec info(lock()) -> #{atom() => non_neg_integer()}.
info(#sluice_lock{ref = Ref}) ->
    {Checkouts, Busy, Deaths, InUse, Peak, Slots, _Capacity} = sluice_nif:lock_info(Ref),
    #{checkouts => Checkouts, busy => Busy, deaths => Deaths, in_use => InUse, peak => Peak,
      resources => Slots}.
