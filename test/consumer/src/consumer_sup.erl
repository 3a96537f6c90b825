%% @doc Supervises {@link consumer_server}.
-module(consumer_sup).
-behaviour(supervisor).

-export([start_link/0, init/1]).

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    {ok, Rate} = application:get_env(consumer, rate),
    Child = #{id => consumer_server, start => {consumer_server, start_link, [Rate]}},
    {ok, {#{strategy => one_for_one, intensity => 5, period => 10}, [Child]}}.
