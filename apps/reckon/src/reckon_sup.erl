%% @private
%% @doc Top supervisor of reckon. The keeper owns the node-wide table of
%% settings and snapshots (`reckon_alloc''s unit and snapshot); the
%% metrics sampler (idle unless started) makes the node's recorder.
-module(reckon_sup).
-behaviour(supervisor).

-export([start_link/0, init/1]).

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    Flags = #{strategy => one_for_one, intensity => 10, period => 10},
    Children = [#{id => reckon_keeper, start => {reckon_keeper, start_link, []}},
                #{id => reckon_metrics_sampler, start => {reckon_metrics_sampler, start_link, []}}],
    {ok, {Flags, Children}}.
