%% @private
%% @doc Keeps sluice's name tables alive whatever server restarts.
%%
%% Two small processes do nothing but hold tables: the keeper
%% (`sluice_tables') owns every table sluice reads by name, and the heir
%% (`sluice_table_heir') is the heir of each. A server that restarts finds
%% its table as it left it, because no server owns one. If the keeper
%% dies, the VM hands every table to the heir, and the restarted keeper
%% takes them back; if the heir dies, the keeper names the new heir as soon
%% as it starts. Only the death of both within one restart loses the names.
%%
%% The tables are `public' so that the servers write them; nothing outside
%% sluice is meant to.
-module(sluice_tables).
-behaviour(gen_server).

-export([start_keeper/0, start_heir/0, tables/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, code_change/3]).

-define(KEEPER, sluice_tables).
-define(HEIR, sluice_table_heir).

%% @doc Every table kept, with its options (`named_table' and `public' are added).
-spec tables() -> [{atom(), [term()]}].
tables() ->
    [{sluice_drop_valves, [set, {read_concurrency, true}]},
     {sluice_box_names, [set, {read_concurrency, true}]},
     {sluice_box_watches, [set]},
     {sluice_lock_names, [set, {read_concurrency, true}]},
     {sluice_groups, [set, {read_concurrency, true}]},
     {sluice_breaker_subscribers, [set]},
     {sluice_locks, [set, {read_concurrency, true}]}].

-spec start_keeper() -> {ok, pid()} | ignore | {error, term()}.
start_keeper() ->
    gen_server:start_link({local, ?KEEPER}, ?MODULE, keeper, []).

-spec start_heir() -> {ok, pid()} | ignore | {error, term()}.
start_heir() ->
    gen_server:start_link({local, ?HEIR}, ?MODULE, heir, []).

-spec init(keeper | heir) -> {ok, keeper | heir}.
init(keeper) ->
    %% Tables the heir holds (the previous keeper died) come back first.
    _ = case whereis(?HEIR) of
            undefined -> ok;
            Old -> catch gen_server:call(Old, {give_back, self()}, 5000)
        end,
    Heir = whereis(?HEIR),
    _ = [ensure(Name, Opts, Heir) || {Name, Opts} <- tables()],
    {ok, keeper};
init(heir) ->
    gen_server:cast(?KEEPER, {heir, self()}),
    {ok, heir}.

%% Makes `Name' exist, owned by the caller, with `Heir' as its heir.
-spec ensure(atom(), [term()], pid() | undefined) -> ok.
ensure(Name, Opts, Heir) ->
    HeirOpt = case Heir of
                  undefined -> {heir, none};
                  _ -> {heir, Heir, keeper_died}
              end,
    _ = case ets:info(Name, owner) of
            undefined -> ets:new(Name, [named_table, public, HeirOpt | Opts]);
            _ -> true = ets:setopts(Name, [HeirOpt])
        end,
    ok.

-spec handle_call(term(), gen_server:from(), keeper | heir) ->
    {reply, ok | {error, unknown_call}, keeper | heir}.
handle_call({give_back, Pid}, _From, heir) ->
    Self = self(),
    _ = [ets:give_away(Name, Pid, returned)
         || {Name, _} <- tables(), ets:info(Name, owner) =:= Self],
    {reply, ok, heir};
handle_call(_Request, _From, Role) ->
    {reply, {error, unknown_call}, Role}.

-spec handle_cast(term(), keeper | heir) -> {noreply, keeper | heir}.
handle_cast({heir, Heir}, keeper) ->
    _ = [ensure(Name, Opts, Heir) || {Name, Opts} <- tables()],
    {noreply, keeper};
handle_cast(_Msg, Role) ->
    {noreply, Role}.

%% `ETS-TRANSFER' messages (tables handed over) need nothing more: the
%% table is ours as soon as the VM moves it.
-spec handle_info(term(), keeper | heir) -> {noreply, keeper | heir}.
handle_info(_Msg, Role) ->
    {noreply, Role}.

%% Release upgrades and downgrades (`{update, sluice_tables, {advanced, _}}' in an
%% appup): the state has the same shape in every version so far, and is kept
%% as it is in both directions (`OldVsn' is `{down, Vsn}' on the way down).
-spec code_change(term(), keeper | heir, term()) -> {ok, keeper | heir}.
code_change(_OldVsn, State, _Extra) ->
    {ok, State}.
