%% @private
%% @doc Top supervisor of sluice: `one_for_one' over one subtree per tool,
%% so a crash of one tool's server never disturbs another tool.
%%
%% The first two children keep the name tables (see `sluice_tables'): no
%% other server owns a table, so none of their restarts empties one. Then,
%% one per tool: valves (`sluice_drop_sup': the valve registry and the
%% regulators), the box warden (owners, heirs, drop notices), the lock
%% supervisor (every lock's watchers), the group server (members'
%% monitors) and the breaker server (alarms and events).
-module(sluice_sup).
-behaviour(supervisor).

-export([start_link/0, init/1]).

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    Flags = #{strategy => one_for_one, intensity => 10, period => 10},
    Children = [
        #{id => sluice_table_heir, start => {sluice_tables, start_heir, []}},
        #{id => sluice_tables, start => {sluice_tables, start_keeper, []}},
        #{id => sluice_drop_sup, start => {sluice_drop_sup, start_link, []},
          type => supervisor},
        #{id => sluice_box_warden, start => {sluice_box_warden, start_link, []}},
        #{id => sluice_lock_sup, start => {sluice_lock_sup, start_link, []},
          type => supervisor},
        #{id => sluice_group_server, start => {sluice_group_server, start_link, []}},
        #{id => sluice_breaker_server, start => {sluice_breaker_server, start_link, []}}
    ],
    {ok, {Flags, Children}}.
