%% @private
%% @doc Supervisor of valve regulators, one `transient' child per regulated valve.
-module(sluice_drop_regulator_sup).
-behaviour(supervisor).

-export([start_link/0, start_regulator/2, init/1]).

%% @doc Starts the supervisor, then the regulator of every valve the table
%% says is regulated (after a restart, the same regulations go on).
-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    case supervisor:start_link({local, ?MODULE}, ?MODULE, []) of
        {ok, Pid} ->
            _ = [start_regulator(Name, Token) || {Name, Token} <- sluice_drop_server:regulated()],
            {ok, Pid};
        {error, {already_started, Old}} ->
            %% The previous one is still going down with its killed parent.
            Mon = monitor(process, Old),
            receive {'DOWN', Mon, process, Old, _} -> start_link()
            after 5000 -> demonitor(Mon, [flush]), {error, {already_started, Old}}
            end;
        Other ->
            Other
    end.

-spec start_regulator(sluice_drop:name(), reference()) -> {ok, pid()} | {error, term()}.
start_regulator(Name, Token) ->
    supervisor:start_child(?MODULE, [Name, Token]).

-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    Flags = #{strategy => simple_one_for_one, intensity => 10, period => 10},
    Child = #{id => sluice_drop_regulator,
              start => {sluice_drop_regulator, start_link, []},
              restart => transient},
    {ok, {Flags, [Child]}}.
