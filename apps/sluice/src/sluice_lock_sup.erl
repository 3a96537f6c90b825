%% @private
%% @doc Supervisors of `sluice_lock', and the registry that lets a lock
%% outlive them.
%%
%% The top one (under `sluice_sup') keeps one supervisor per lock made by
%% `sluice_lock:new/1'; a lock started by `sluice_lock:start_link/1' has
%% its supervisor in the user's tree. A lock's supervisor keeps its
%% watchers, each restarted on its own.
%%
%% == The registry ==
%% Table `sluice_locks' (kept by `sluice_tables', so no restart here
%% empties it) holds `{Ref, Kind, Opts, Sup}' for every open lock: `Kind'
%% is `new', `{child, Parent}' (started by a user's supervisor from
%% `child_spec/1') or `{link, Parent}' (a direct `start_link/1'); `Sup' is
%% the lock's supervisor now (each incarnation writes itself there in its
%% `init/1'). When the top supervisor starts again, it starts a supervisor
%% again for every `new' lock of the table: the lock itself (the NIF
%% object, its slots and loans) never stopped. Table `sluice_lock_names'
%% holds `{Name, Ref}'.
%%
%% Each incarnation of a lock's supervisor gives its watchers a number
%% larger than any before (`Epoch'): a watcher of an older incarnation,
%% still finishing while the new one starts, cannot put its resource in a
%% slot any more (see `sluice_lock_watcher').
-module(sluice_lock_sup).
-behaviour(supervisor).

-export([start_link/0, start_link/1, init/1, start_named/1]).
-export([open/2, close/1, set_watchers/2, lookup/1, row/1, closing/0]).

-define(LOCKS, sluice_locks).
-define(NAMES, sluice_lock_names).

-type kind() :: new | {child | link, pid()}.
-export_type([kind/0]).

%% @doc The top supervisor; then a supervisor again for each lock of the
%% registry made by `new/1' (after a restart).
-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    case supervisor:start_link({local, ?MODULE}, ?MODULE, top) of
        {ok, Top} ->
            _ = [supervisor:start_child(Top, [Ref])
                 || {Ref, new, _, _} <- ets:tab2list(?LOCKS)],
            {ok, Top};
        Other ->
            Other
    end.

%% @doc The supervisor of the lock `Ref' (registered already).
-spec start_link(reference()) -> {ok, pid()} | ignore | {error, term()}.
start_link(Ref) ->
    supervisor:start_link(?MODULE, {lock, Ref}).

%% @doc `sluice_lock:start_link/1' from a child spec: the caller is the
%% user's supervisor.
-spec start_named(map()) -> {ok, pid()} | {error, term()}.
start_named(Opts) ->
    case open(Opts, {child, self()}) of
        {ok, _Ref, Sup} -> {ok, Sup};
        {error, _} = Error -> Error
    end.

%% @doc Registers a new lock (`Ref') of validated options `Opts', claims
%% its name, and starts its supervisor: under the top one (`new') or
%% linked to the caller. Waits (in the caller) until every slot has its
%% resource, at most `init_timeout' ms; on a timeout, or when the watchers
%% fail, the half-made lock is closed. Returns the lock and its supervisor.
-spec open(map(), kind()) -> {ok, reference(), pid()} | {error, term()}.
open(#{resources := N, max_resources := Cap} = Opts, Kind) ->
    Ref = sluice_nif:lock_new(N, Cap),
    true = ets:insert(?LOCKS, {Ref, Kind, Opts, self()}),
    case claim(Opts, Ref) of
        ok ->
            Started = case Kind of
                          new -> supervisor:start_child(?MODULE, [Ref]);
                          _ -> start_link(Ref)
                      end,
            case Started of
                {ok, Sup} when is_pid(Sup) -> filled(Ref, Sup, Opts);
                {ok, undefined} -> forget(Ref), {error, closed};
                Other -> forget(Ref), Other
            end;
        {error, _} = Taken ->
            _ = sluice_nif:lock_resize(Ref, 0),
            true = ets:delete(?LOCKS, Ref),
            Taken
    end.

-spec filled(reference(), pid(), map()) -> {ok, reference(), pid()} | {error, term()}.
filled(Ref, Sup, #{init_timeout := Timeout}) ->
    Mon = monitor(process, Sup),
    Deadline = erlang:monotonic_time(millisecond) + Timeout,
    Result = wait_filled(Ref, Mon, Deadline, 1),
    demonitor(Mon, [flush]),
    case Result of
        ok ->
            {ok, Ref, Sup};
        {error, _} = Error ->
            %% (the watchers may be stuck in the callback: they are stopped
            %% by their supervisor, killed after their shutdown time, while
            %% the caller goes on)
            ok = forget(Ref),
            _ = spawn(fun() -> stop(Sup) end),
            Error
    end.

-spec wait_filled(reference(), reference(), integer(), pos_integer()) -> ok | {error, term()}.
wait_filled(Ref, Mon, Deadline, Sleep) ->
    case sluice_nif:lock_empty(Ref) of
        0 ->
            ok;
        _ ->
            Left = Deadline - erlang:monotonic_time(millisecond),
            receive
                {'DOWN', Mon, process, _, Reason} -> {error, {watchers_failed, Reason}}
            after min(Sleep, max(Left, 0)) ->
                case Left =< 0 of
                    true -> {error, timeout};
                    false -> wait_filled(Ref, Mon, Deadline, min(Sleep * 2, 20))
                end
            end
    end.

%% Claims option `name' (if any) for `Ref': a name whose lock runs is
%% taken; one whose `start_link' lock stopped is free again.
-spec claim(map(), reference()) -> ok | {error, {already_started, pid()}}.
claim(#{name := Name}, Ref) ->
    case ets:insert_new(?NAMES, {Name, Ref}) of
        true ->
            ok;
        false ->
            case ets:lookup(?NAMES, Name) of
                [{_, Old} = Entry] ->
                    case row(Old) of
                        {ok, {_, Kind, _, Sup}} when Kind =:= new -> {error, {already_started, Sup}};
                        {ok, {_, _, _, Sup}} ->
                            case is_process_alive(Sup) of
                                true -> {error, {already_started, Sup}};
                                false -> ets:delete(?LOCKS, Old), retry(Entry, Name, Ref)
                            end;
                        error ->
                            retry(Entry, Name, Ref)
                    end;
                [] ->
                    claim(#{name => Name}, Ref)
            end
    end;
claim(#{}, _Ref) ->
    ok.

-spec retry({term(), reference()}, term(), reference()) -> ok | {error, {already_started, pid()}}.
retry(Entry, Name, Ref) ->
    true = ets:delete_object(?NAMES, Entry),
    claim(#{name => Name}, Ref).

%% Forgets lock `Ref': no more lending, out of the registry, name freed.
-spec forget(reference()) -> ok.
forget(Ref) ->
    _ = sluice_nif:lock_resize(Ref, 0),
    case ets:take(?LOCKS, Ref) of
        [{_, _, #{name := Name}, _}] -> _ = ets:delete_object(?NAMES, {Name, Ref}), ok;
        _ -> ok
    end.

%% @doc Closes lock `Ref': it lends no more, its row and name go, and its
%% supervisor stops (its watchers hand their resources back through
%% `checkin/2'). Waits for the lock's own supervisor only, never for a
%% node-wide process; a lock started from a child spec is taken out of
%% the user's supervisor.
-spec close(reference()) -> ok.
close(Ref) ->
    Row = row(Ref),
    ok = forget(Ref),
    case Row of
        {ok, {_, {child, Parent}, #{name := Name}, Sup}} ->
            Id = {sluice_lock, Name},
            case catch supervisor:terminate_child(Parent, Id) of
                ok -> _ = catch supervisor:delete_child(Parent, Id), ok;
                _ -> _ = catch supervisor:terminate_child(Parent, Sup), stop(Sup)
            end;
        {ok, {_, _, _, Sup}} ->
            stop(Sup);
        error ->
            ok
    end.

-spec stop(pid()) -> ok.
stop(Sup) ->
    _ = catch proc_lib:stop(Sup, normal, infinity),
    ok.

%% @doc Called as the application stops: every lock of `new/1' is closed,
%% so that its watchers hand their resources back as they stop.
-spec closing() -> ok.
closing() ->
    _ = [forget(Ref) || {Ref, new, _, _} <- ets:tab2list(?LOCKS)],
    ok.

%% @doc The registry row of lock `Ref'.
-spec row(reference()) -> {ok, {reference(), kind(), map(), pid()}} | error.
row(Ref) ->
    case ets:lookup(?LOCKS, Ref) of
        [Row] -> {ok, Row};
        [] -> error
    end.

%% @doc The lock registered under `Name', while it is open (and its
%% supervisor runs, or, for a `new/1' lock, is being started again).
-spec lookup(term()) -> {ok, reference()} | error.
lookup(Name) ->
    case ets:lookup(?NAMES, Name) of
        [{_, Ref}] ->
            case row(Ref) of
                {ok, {_, new, _, _}} -> {ok, Ref};
                {ok, {_, _, _, Sup}} ->
                    case is_process_alive(Sup) of
                        true -> {ok, Ref};
                        false -> error
                    end;
                error -> error
            end;
        [] ->
            error
    end.

%% @doc Makes the supervisor of lock `Ref' keep watchers `0..N-1' only,
%% and records `N' for its next incarnation.
-spec set_watchers(reference(), pos_integer()) -> ok.
set_watchers(Ref, N) ->
    case row(Ref) of
        {ok, {_, Kind, Opts, Sup}} ->
            true = ets:insert(?LOCKS, {Ref, Kind, Opts#{resources := N}, Sup}),
            Children = supervisor:which_children(Sup),
            Ids = [Id || {Id, _, _, _} <- Children],
            _ = [begin
                     _ = supervisor:terminate_child(Sup, I),
                     supervisor:delete_child(Sup, I)
                 end || I <- Ids, I >= N],
            [Spec | _] = [S || I <- Ids, {ok, S} <- [supervisor:get_childspec(Sup, I)]],
            #{start := {M, F, [_, _ | Rest]}} = Spec,
            _ = [supervisor:start_child(Sup, Spec#{id => I, start => {M, F, [Ref, I | Rest]}})
                 || I <- lists:seq(0, N - 1), not lists:member(I, Ids)],
            ok;
        error ->
            ok
    end.

-spec watcher(reference(), non_neg_integer(), {module(), term()}, pos_integer(), kind()) ->
    supervisor:child_spec().
watcher(Ref, I, Callback, Epoch, Kind) ->
    #{id => I, start => {sluice_lock_watcher, start_link, [Ref, I, Callback, Epoch, Kind]}}.

-spec init(top | {lock, reference()}) ->
    {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}} | ignore.
init(top) ->
    Flags = #{strategy => simple_one_for_one, intensity => 10, period => 10},
    Child = #{id => lock, start => {?MODULE, start_link, []}, restart => temporary,
              type => supervisor},
    {ok, {Flags, [Child]}};
init({lock, Ref}) ->
    case ets:update_element(?LOCKS, Ref, {4, self()}) andalso row(Ref) of
        {ok, {_, Kind, #{callback := Callback, maxr := MaxR, maxt := MaxT}, _}} ->
            Flags = #{strategy => one_for_one, intensity => MaxR, period => MaxT},
            #{slots := N} = sluice_nif:lock_info(Ref),
            Epoch = erlang:unique_integer([monotonic, positive]),
            {ok, {Flags, [watcher(Ref, I, Callback, Epoch, Kind) || I <- lists:seq(0, N - 1)]}};
        _ ->
            ignore
    end.
