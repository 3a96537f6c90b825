%% @private
%% @doc Top supervisor of sluice.
%%
%% `rest_for_one': the valve registry owns the table of named valves; when it
%% restarts the table is new and the regulators of the old valves go with it.
%% The box warden watches box owners and owns the table of named boxes.
%% The lock supervisor keeps the watchers of every lock; the group server
%% owns the table of worker groups; the breaker server raises alarms and
%% tells subscribers when breakers blow and heal.
-module(sluice_sup).
-behaviour(supervisor).

-export([start_link/0, init/1]).

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    Flags = #{strategy => rest_for_one, intensity => 10, period => 10},
    Children = [
        #{id => sluice_drop_server,
          start => {sluice_drop_server, start_link, []}},
        #{id => sluice_drop_regulator_sup,
          start => {sluice_drop_regulator_sup, start_link, []},
          type => supervisor},
        #{id => sluice_box_warden,
          start => {sluice_box_warden, start_link, []}},
        #{id => sluice_lock_sup,
          start => {sluice_lock_sup, start_link, []},
          type => supervisor},
        #{id => sluice_group_server,
          start => {sluice_group_server, start_link, []}},
        #{id => sluice_breaker_server,
          start => {sluice_breaker_server, start_link, []}}
    ],
    {ok, {Flags, Children}}.
