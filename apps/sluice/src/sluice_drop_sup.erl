%% @private
%% @doc Supervisor of the valves: the registry (`sluice_drop_server') and
%% the regulators' supervisor, each restarted on its own: the table of
%% valves outlives both (see `sluice_tables'), and a restarted regulators'
%% supervisor starts again the regulator of every regulated valve.
-module(sluice_drop_sup).
-behaviour(supervisor).

-export([start_link/0, init/1]).

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    Flags = #{strategy => one_for_one, intensity => 10, period => 10},
    Children = [
        #{id => sluice_drop_server, start => {sluice_drop_server, start_link, []}},
        #{id => sluice_drop_regulator_sup, start => {sluice_drop_regulator_sup, start_link, []},
          type => supervisor}
    ],
    {ok, {Flags, Children}}.
