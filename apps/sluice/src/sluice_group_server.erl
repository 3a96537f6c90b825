%% @private
%% @doc The server of `sluice_group': owns the table of groups (read by
%% callers directly), handles joins and leaves, monitors members.
%%
%% The table holds `{{group, Name}, MembersTuple}' (what a pick reads) and
%% `{{member, Pid}, Monitor, Names}' (what a member's death undoes).
-module(sluice_group_server).
-behaviour(gen_server).

-export([start_link/0, join/2, leave/2, members/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, code_change/3]).

-define(TAB, sluice_groups).

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

-spec join(term(), pid()) -> ok.
join(Name, Pid) ->
    gen_server:call(?MODULE, {join, Name, Pid}).

-spec leave(term(), pid()) -> ok.
leave(Name, Pid) ->
    gen_server:call(?MODULE, {leave, Name, Pid}).

%% @doc The members of `Name', read from the table in the caller.
-spec members(term()) -> tuple().
members(Name) ->
    case ets:lookup(?TAB, {group, Name}) of
        [{_, Members}] -> Members;
        [] -> {}
    end.

%% The table is kept by `sluice_tables' and outlives this server: after a
%% restart every member is monitored again (the old monitors went with the
%% old server), and members that died meanwhile leave their groups.
-spec init([]) -> {ok, #{}}.
init([]) ->
    Members = ets:select(?TAB, [{{{member, '$1'}, '_', '$2'}, [], [{{'$1', '$2'}}]}]),
    _ = [true = ets:insert(?TAB, {{member, Pid}, monitor(process, Pid), Ns})
         || {Pid, Ns} <- Members],
    {ok, #{}}.

-spec handle_call(term(), gen_server:from(), #{}) -> {reply, ok | {error, unknown_call}, #{}}.
handle_call({join, Name, Pid}, _From, S) ->
    {Mon, Ns} = case ets:lookup(?TAB, {member, Pid}) of
                    [{_, M, Joined}] -> {M, Joined};
                    [] -> {monitor(process, Pid), []}
                end,
    case lists:member(Name, Ns) of
        true ->
            ok;
        false ->
            true = ets:insert(?TAB, {{member, Pid}, Mon, [Name | Ns]}),
            set(Name, [Pid | tuple_to_list(members(Name))])
    end,
    {reply, ok, S};
handle_call({leave, Name, Pid}, _From, S) ->
    case ets:lookup(?TAB, {member, Pid}) of
        [{_, Mon, Ns}] ->
            case lists:delete(Name, Ns) of
                [] -> demonitor(Mon, [flush]), ets:delete(?TAB, {member, Pid});
                Rest -> ets:insert(?TAB, {{member, Pid}, Mon, Rest})
            end,
            set(Name, lists:delete(Pid, tuple_to_list(members(Name))));
        [] ->
            ok
    end,
    {reply, ok, S};
handle_call(_Req, _From, S) ->
    {reply, {error, unknown_call}, S}.

-spec handle_cast(term(), #{}) -> {noreply, #{}}.
handle_cast(_Msg, S) ->
    {noreply, S}.

-spec handle_info(term(), #{}) -> {noreply, #{}}.
handle_info({'DOWN', _Mon, process, Pid, _Reason}, S) ->
    _ = case ets:lookup(?TAB, {member, Pid}) of
            [{_, _, Ns}] ->
                true = ets:delete(?TAB, {member, Pid}),
                [set(N, lists:delete(Pid, tuple_to_list(members(N)))) || N <- Ns];
            [] ->
                ok
        end,
    {noreply, S};
handle_info(_Msg, S) ->
    {noreply, S}.

-spec set(term(), [pid()]) -> ok.
set(Name, []) ->
    true = ets:delete(?TAB, {group, Name}),
    ok;
set(Name, Members) ->
    true = ets:insert(?TAB, {{group, Name}, list_to_tuple(Members)}),
    ok.

%% Release upgrades and downgrades (`{update, sluice_group_server, {advanced, _}}' in an
%% appup): the state has the same shape in every version so far, and is kept
%% as it is in both directions (`OldVsn' is `{down, Vsn}' on the way down).
-spec code_change(term(), #{}, term()) -> {ok, #{}}.
code_change(_OldVsn, State, _Extra) ->
    {ok, State}.
