%% @private
%% @doc Supervisors of `sluice_lock': the top one (under `sluice_sup') keeps
%% one supervisor per lock, which keeps that lock's watchers, each restarted
%% on its own.
-module(sluice_lock_sup).
-behaviour(supervisor).

-export([start_link/0, start_lock/2, stop_lock/1, start_link/2, set_watchers/3, init/1,
         register/2, registered/1, start_named/1]).

-define(NAMES, sluice_lock_names).

%% @doc The top supervisor.
-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, top).

%% @doc Starts the supervisor of a new lock and its watchers.
-spec start_lock(reference(), map()) -> {ok, pid()} | {error, term()}.
start_lock(Lock, Opts) ->
    supervisor:start_child(?MODULE, [Lock, Opts]).

%% @doc Stops a lock's supervisor (and its watchers).
-spec stop_lock(pid()) -> ok.
stop_lock(Sup) ->
    _ = supervisor:terminate_child(?MODULE, Sup),
    ok.

%% @doc Makes the lock supervisor `Sup' keep watchers `0..N-1' only.
-spec set_watchers(pid(), reference(), pos_integer()) -> ok.
set_watchers(Sup, Lock, N) ->
    Ids = [Id || {Id, _, _, _} <- supervisor:which_children(Sup)],
    Callback = callback(Sup),
    _ = [begin
             ok = supervisor:terminate_child(Sup, I),
             ok = supervisor:delete_child(Sup, I)
         end || I <- Ids, I >= N],
    _ = [{ok, _} = supervisor:start_child(Sup, watcher(Lock, I, Callback))
         || I <- lists:seq(0, N - 1), not lists:member(I, Ids)],
    ok.

%% The callback of a lock's watchers, from the spec of any of them.
-spec callback(pid()) -> {module(), term()}.
callback(Sup) ->
    [I | _] = [Id || {Id, _, _, _} <- supervisor:which_children(Sup)],
    {ok, #{start := {_, _, [_, _, Callback]}}} = supervisor:get_childspec(Sup, I),
    Callback.

-spec watcher(reference(), non_neg_integer(), {module(), term()}) -> supervisor:child_spec().
watcher(Lock, I, Callback) ->
    #{id => I, start => {sluice_lock_watcher, start_link, [Lock, I, Callback]}}.

%% @doc The supervisor of one lock.
-spec start_link(reference(), map()) -> {ok, pid()} | ignore | {error, term()}.
start_link(Lock, Opts) ->
    supervisor:start_link(?MODULE, {lock, Lock, Opts}).

%% @doc `sluice_lock:start_link/1', for child specs.
-spec start_named(map()) -> {ok, pid()} | {error, term()}.
start_named(Opts) ->
    sluice_lock:start_link(Opts).

%% @doc Registers a lock started under a user's supervisor.
-spec register(term(), term()) -> ok.
register(Name, Lock) ->
    true = ets:insert(?NAMES, {Name, Lock}),
    ok.

%% @doc The lock registered under `Name'.
-spec registered(term()) -> {ok, term()} | error.
registered(Name) ->
    case ets:lookup(?NAMES, Name) of
        [{_, Lock}] -> {ok, Lock};
        [] -> error
    end.

-spec init(top | {lock, reference(), map()}) ->
    {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init(top) ->
    Flags = #{strategy => simple_one_for_one, intensity => 10, period => 10},
    Child = #{id => lock, start => {?MODULE, start_link, []}, restart => temporary,
              type => supervisor},
    {ok, {Flags, [Child]}};
init({lock, Lock, #{resources := N, callback := Callback} = Opts}) ->
    Flags = #{strategy => one_for_one, intensity => maps:get(maxr, Opts, 10),
              period => maps:get(maxt, Opts, 60)},
    Children = [watcher(Lock, I, Callback) || I <- lists:seq(0, N - 1)],
    {ok, {Flags, Children}}.
