%% @private
%% @doc Owns `reckon_keeper', a public ETS table of node-wide settings and
%% snapshots, so that they do not live in the dictionary of whichever shell
%% process set them. Reads and writes go to the table directly; the process
%% only keeps it alive.
-module(reckon_keeper).
-behaviour(gen_server).

-export([start_link/0, get/2, put/2]).
-export([init/1, handle_call/3, handle_cast/2, code_change/3]).

-define(TABLE, ?MODULE).

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc The value kept under `Key', or `Default' (also when reckon is not running).
-spec get(term(), Default) -> term() | Default.
get(Key, Default) ->
    try ets:lookup(?TABLE, Key) of
        [{_, Value}] -> Value;
        [] -> Default
    catch
        error:badarg -> Default
    end.

%% @doc Keeps `Value' under `Key'; `{error, not_started}' when the reckon
%% application is not running (`application:ensure_started(reckon)').
-spec put(term(), term()) -> ok | {error, not_started}.
put(Key, Value) ->
    try ets:insert(?TABLE, {Key, Value}) of
        true -> ok
    catch
        error:badarg -> {error, not_started}
    end.

-spec init([]) -> {ok, undefined}.
init([]) ->
    _ = ets:new(?TABLE, [named_table, public, set, {read_concurrency, true}]),
    {ok, undefined}.

-spec handle_call(term(), gen_server:from(), State) -> {reply, {error, unknown_call}, State}.
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

-spec handle_cast(term(), State) -> {noreply, State}.
handle_cast(_Msg, State) ->
    {noreply, State}.

%% Release upgrades and downgrades (`{update, reckon_keeper, {advanced, _}}' in an
%% appup): the state has the same shape in every version so far, and is kept
%% as it is in both directions (`OldVsn' is `{down, Vsn}' on the way down).
-spec code_change(term(), undefined, term()) -> {ok, undefined}.
code_change(_OldVsn, State, _Extra) ->
    {ok, State}.
