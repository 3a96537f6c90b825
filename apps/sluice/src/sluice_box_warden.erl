%% @private
%% @doc Watches the owners of every `sluice_box': hand-overs, heirs, closing,
%% drop notices.
%%
%% Only slow paths come here (new, give_away, close, an owner's death);
%% posts and takes never do. Everything that reaches the warden was checked
%% by the facade; a NIF that still refuses a handle gives an error reply,
%% never a crash.
%%
%% == What is kept, and where ==
%% The warden's records live in the ETS table `sluice_box_watches' (kept by
%% `sluice_tables', so a warden restart loses none), one per open box, keyed
%% by the box's id (`sluice_nif:box_id/1'): `{Id, Owner, Heir, HeirData,
%% Handle, Notices}'. A restarted warden monitors every owner again (an
%% owner that died meanwhile is handled as a death) and restarts the notice
%% timers.
%%
%% The warden holds a box's handle (`Handle') only while the box has a heir
%% or drop notices: then the box is reachable by design (the heir is to get
%% it). Otherwise the record holds `undefined', and a box nobody else holds
%% a handle to is freed by the VM; when its owner dies, the warden closes
%% it by id (`sluice_nif:box_close_id/1'), which finds nothing for a box
%% already freed. Records of freed boxes whose owners live on are swept
%% every ?SWEEP_EVERY new boxes.
%%
%% When an owner dies the box passes to its heir, if that is a local process
%% other than the dead owner (a heir given by name, registered, `global' or
%% `via', is resolved then; a `via' module's `whereis_name/1' runs here, in
%% a try), with `{sluice_transfer, Box, DeadOwner, HeirData,
%% Reason}' (the heir stays heir); otherwise the box is closed, its messages
%% dropped (`closed') and freed.
-module(sluice_box_warden).
-behaviour(gen_server).

-export([start_link/0, watch/4, give_away/4, close/2, discard/1, notices/3]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, code_change/3]).

-define(TABLE, sluice_box_watches).
%% New boxes between two sweeps of the records of freed boxes.
-define(SWEEP_EVERY, 1024).
%% Ids asked about per NIF call of a sweep.
-define(SWEEP_CHUNK, 1000).

%% A record of the table.
-type watch() :: {Id :: pos_integer(), Owner :: pid(), Heir :: sluice_box:heir() | none,
                  HeirData :: term(), Handle :: sluice_box:box() | undefined,
                  Notices :: pos_integer() | off}.
%% A box's drop notices: every `interval' ms, the drops counted since the
%% last notice (`seen' holds the counts then), per reason.
-record(notice, {interval :: pos_integer(), seen :: #{atom() => non_neg_integer()},
                 timer :: reference()}).
-record(state, {monitors = #{} :: #{reference() => pos_integer()},
                by_id = #{} :: #{pos_integer() => reference()},
                notices = #{} :: #{pos_integer() => #notice{}},
                added = 0 :: non_neg_integer()}).

%% The reasons drop notices report (filter drops are the owner's own doing;
%% closed drops end the box).
-define(NOTICED, [overflow, resize, expired, early]).

%%% API

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc Starts watching the owner of a new box.
-spec watch(sluice_box:box(), pid(), sluice_box:heir() | none, term()) -> ok.
watch(Box, Owner, Heir, HeirData) ->
    gen_server:call(?MODULE, {watch, Box, Owner, Heir, HeirData}).

%% @doc Hands `Box' from `From' (who must own it) to `To' (a local pid).
-spec give_away(sluice_box:box(), pid(), pid(), term()) ->
    ok | {error, not_owner | closed | noproc}.
give_away(Box, From, To, Data) ->
    gen_server:call(?MODULE, {give_away, Box, From, To, Data}).

%% @doc Closes `Box' for `From' (who must own it).
-spec close(sluice_box:box(), pid()) -> ok | {error, not_owner}.
close(Box, From) ->
    gen_server:call(?MODULE, {close, Box, From}).

%% @doc Closes `Box' whoever owns it (its keeper is stopping).
-spec discard(sluice_box:box()) -> ok.
discard(Box) ->
    gen_server:call(?MODULE, {discard, Box}).

%% @doc Starts (`Interval' ms) or stops (`off') the drop notices of `Box'
%% for `From' (who must own it).
-spec notices(sluice_box:box(), pid(), pos_integer() | off) -> ok | {error, not_owner | closed}.
notices(Box, From, Interval) ->
    gen_server:call(?MODULE, {notices, Box, From, Interval}).

%%% gen_server

%% Every owner recorded is monitored again (a dead one answers with a
%% `DOWN' at once, handled as any death), every notice timer restarted.
-spec init([]) -> {ok, #state{}}.
init([]) ->
    S = ets:foldl(fun({Id, Owner, _, _, Handle, Notices}, Acc) ->
                          Acc1 = monitor_owner(Id, Owner, Acc),
                          case Notices of
                              off -> Acc1;
                              _ -> start_notices(Id, Handle, Notices, Acc1)
                          end
                  end, #state{}, ?TABLE),
    {ok, S}.

-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, term(), #state{}}.
handle_call({watch, Box, Owner, Heir, HeirData}, _From, S)
  when is_pid(Owner), node(Owner) =:= node(),
       is_pid(Heir) orelse is_atom(Heir) orelse element(1, Heir) =:= global
       orelse element(1, Heir) =:= via ->
    case sluice_nif:box_id(Box) of
        false ->
            {reply, ok, S};
        Id ->
            S1 = put_watch({Id, Owner, Heir, HeirData, Box, off}, monitor_owner(Id, Owner, S)),
            {reply, ok, sweep(S1#state{added = S1#state.added + 1})}
    end;
handle_call({give_away, Box, From, To, Data}, _From, S)
  when is_pid(To), node(To) =:= node() ->
    case watch_of(Box, S) of
        {{_, From, _, _, _, _} = W, S1} ->
            case is_process_alive(To) of
                true ->
                    case hand_over(W, Box, To, S1) of
                        {ok, S2} ->
                            To ! {sluice_transfer, Box, From, Data, give_away},
                            {reply, ok, S2};
                        error ->
                            {reply, {error, closed}, S1}
                    end;
                false ->
                    {reply, {error, noproc}, S1}
            end;
        {_, S1} ->
            {reply, {error, not_owner}, S1};
        closed ->
            {reply, {error, closed}, S}
    end;
handle_call({close, Box, From}, _From, S) ->
    case watch_of(Box, S) of
        {{_, From, _, _, _, _} = W, S1} -> {reply, ok, shut(W, Box, S1)};
        {_, S1} -> {reply, {error, not_owner}, S1};
        closed -> {reply, ok, S}
    end;
handle_call({notices, Box, From, Interval}, _From, S)
  when Interval =:= off; is_integer(Interval), Interval > 0, Interval < 1 bsl 32 ->
    case watch_of(Box, S) of
        {{_, From, _, _, _, _} = W, S1} ->
            {reply, ok, set_notices(W, Box, Interval, S1)};
        {_, S1} ->
            {reply, {error, not_owner}, S1};
        closed ->
            {reply, {error, closed}, S}
    end;
handle_call({discard, Box}, _From, S) ->
    case watch_of(Box, S) of
        {W, S1} -> {reply, ok, shut(W, Box, S1)};
        closed -> {reply, ok, S}
    end;
%% Anything else (sent around the facade) is refused, never a crash.
handle_call(_Other, _From, S) ->
    {reply, {error, unknown_call}, S}.

-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast(_Msg, S) ->
    {noreply, S}.

-spec handle_info(term(), #state{}) -> {noreply, #state{}}.
handle_info({'DOWN', Mon, process, Dead, Reason}, #state{monitors = Mons} = S) ->
    case Mons of
        #{Mon := Id} ->
            S1 = S#state{monitors = maps:remove(Mon, Mons),
                         by_id = maps:remove(Id, S#state.by_id)},
            {noreply, owner_died(Id, Dead, Reason, S1)};
        #{} ->
            {noreply, S}
    end;
handle_info({timeout, Timer, {notices, Id}}, #state{notices = Notices} = S) ->
    case Notices of
        #{Id := #notice{timer = Timer} = N} -> {noreply, notify(Id, N, S)};
        #{} -> {noreply, S}
    end;
handle_info(_Other, S) ->
    {noreply, S}.

%% A state from before the table had its boxes in the state: they are
%% watched again from their next give_away or close.
-spec code_change(term(), #state{} | tuple(), term()) -> {ok, #state{}}.
code_change(_OldVsn, #state{} = S, _Extra) ->
    {ok, S};
code_change(_OldVsn, _Old, _Extra) ->
    init([]).

%%% Internals

-spec lookup(pos_integer()) -> watch() | none.
lookup(Id) ->
    case ets:lookup(?TABLE, Id) of
        [W] -> W;
        [] -> none
    end.

%% Stores a record; the handle is kept only while the box has a heir or
%% drop notices (see the module documentation).
-spec put_watch(watch(), #state{}) -> #state{}.
put_watch({Id, Owner, Heir, HeirData, Handle, Notices}, S) ->
    Keep = case Heir =/= none orelse Notices =/= off of
               true -> Handle;
               false -> undefined
           end,
    true = ets:insert(?TABLE, {Id, Owner, Heir, HeirData, Keep, Notices}),
    S.

-spec monitor_owner(pos_integer(), pid(), #state{}) -> #state{}.
monitor_owner(Id, Owner, S) ->
    #state{monitors = Mons, by_id = ById} = S1 = demonitor_owner(Id, S),
    Mon = monitor(process, Owner),
    S1#state{monitors = Mons#{Mon => Id}, by_id = ById#{Id => Mon}}.

-spec demonitor_owner(pos_integer(), #state{}) -> #state{}.
demonitor_owner(Id, #state{monitors = Mons, by_id = ById} = S) ->
    case ById of
        #{Id := Mon} ->
            demonitor(Mon, [flush]),
            S#state{monitors = maps:remove(Mon, Mons), by_id = maps:remove(Id, ById)};
        #{} ->
            S
    end.

%% Forgets box `Id' (closed, or freed).
-spec forget(pos_integer(), #state{}) -> #state{}.
forget(Id, S) ->
    true = ets:delete(?TABLE, Id),
    stop_notices(Id, demonitor_owner(Id, S)).

%% The owner of box `Id' died: the box passes to its heir (a name is
%% resolved now), or is closed.
-spec owner_died(pos_integer(), pid(), term(), #state{}) -> #state{}.
owner_died(Id, Dead, Reason, S) ->
    case lookup(Id) of
        {Id, Dead, Name, HeirData, Box, _} = W when Name =/= none, Box =/= undefined ->
            case resolve(Name) of
                To when is_pid(To), To =/= Dead, node(To) =:= node() ->
                    pass(W, Box, To, Dead, HeirData, Reason, S);
                _ ->
                    shut(W, Box, S)
            end;
        {Id, _, _, _, Box, _} = W ->
            shut(W, Box, S);
        none ->
            S
    end.

%% The heir's pid: `undefined' for a name no process has. A `via' module
%% that raises (or answers anything but a pid) names no heir.
-spec resolve(sluice_box:heir()) -> pid() | undefined.
resolve(Pid) when is_pid(Pid) -> Pid;
resolve(Name) when is_atom(Name) -> whereis(Name);
resolve({global, Name}) -> global:whereis_name(Name);
resolve({via, Mod, Name}) ->
    try Mod:whereis_name(Name) of
        Pid when is_pid(Pid) -> Pid;
        _ -> undefined
    catch
        _:_ -> undefined
    end.

-spec pass(watch(), sluice_box:box(), pid(), pid(), term(), term(), #state{}) -> #state{}.
pass({Id, _, _, _, _, _} = W, Box, Heir, Dead, HeirData, Reason, S) ->
    case hand_over(W, Box, Heir, S) of
        {ok, S1} ->
            Heir ! {sluice_transfer, Box, Dead, HeirData, Reason},
            S1;
        error ->
            forget(Id, S)
    end.

%% The owner changes in the NIF first, so the old owner can no longer take.
-spec hand_over(watch(), sluice_box:box(), pid(), #state{}) -> {ok, #state{}} | error.
hand_over({Id, _, Heir, HeirData, _, Notices}, Box, To, S) ->
    try sluice_nif:box_set_owner(Box, To) of
        ok -> {ok, put_watch({Id, To, Heir, HeirData, Box, Notices}, monitor_owner(Id, To, S))}
    catch
        error:badarg -> error
    end.

%% Closes the box (by its handle when there is one, else by id: a box
%% already freed is simply gone) and forgets it.
-spec shut(watch(), sluice_box:box() | undefined, #state{}) -> #state{}.
shut({Id, _, _, _, _, _}, Box, S) ->
    _ = try
            case Box of
                undefined -> sluice_nif:box_close_id(Id);
                _ -> sluice_nif:box_close(Box)
            end
        catch
            error:badarg -> error
        end,
    forget(Id, S).

-spec set_notices(watch(), sluice_box:box(), pos_integer() | off, #state{}) -> #state{}.
set_notices({Id, Owner, Heir, HeirData, _, _}, Box, Interval, S) ->
    S1 = put_watch({Id, Owner, Heir, HeirData, Box, Interval}, stop_notices(Id, S)),
    case Interval of
        off -> S1;
        _ -> start_notices(Id, Box, Interval, S1)
    end.

-spec start_notices(pos_integer(), sluice_box:box(), pos_integer(), #state{}) -> #state{}.
start_notices(Id, Box, Interval, #state{notices = Notices} = S) ->
    case info(Box) of
        #{closed := false} = Info ->
            N = #notice{interval = Interval, seen = dropped(Info),
                        timer = erlang:start_timer(Interval, self(), {notices, Id})},
            S#state{notices = Notices#{Id => N}};
        _ ->
            S
    end.

-spec stop_notices(pos_integer(), #state{}) -> #state{}.
stop_notices(Id, #state{notices = Notices} = S) ->
    case Notices of
        #{Id := #notice{timer = Old}} ->
            _ = erlang:cancel_timer(Old),
            S#state{notices = maps:remove(Id, Notices)};
        #{} ->
            S
    end.

%% Expires what is too old (so an idle box's expiries are told too), sends
%% the owner one `{sluice_dropped, Box, Reason, Count}' per reason with
%% drops since the last notice, and schedules the next.
-spec notify(pos_integer(), #notice{}, #state{}) -> #state{}.
notify(Id, #notice{interval = Interval, seen = Seen} = N, #state{notices = Notices} = S) ->
    Box = case lookup(Id) of
              {Id, _, _, _, Handle, _} -> Handle;
              none -> undefined
          end,
    _ = (catch sluice_nif:box_expire(Box)),
    case info(Box) of
        #{closed := false, owner := Owner} = Info ->
            Now = dropped(Info),
            _ = [tell(Owner, Box, Id, R, C - maps:get(R, Seen))
                 || {R, C} <- maps:to_list(Now), C > maps:get(R, Seen)],
            Timer = erlang:start_timer(Interval, self(), {notices, Id}),
            S#state{notices = Notices#{Id => N#notice{seen = Now, timer = Timer}}};
        _ ->
            S#state{notices = maps:remove(Id, Notices)}
    end.

%% One drop notice: to the owner, and as the telemetry event `[sluice,
%% box, dropped]' (when telemetry is loaded).
-spec tell(pid(), sluice_box:box(), pos_integer(), atom(), pos_integer()) -> ok.
tell(Owner, Box, Id, Reason, Count) ->
    Owner ! {sluice_dropped, Box, Reason, Count},
    sluice_telemetry:execute([sluice, box, dropped], #{count => Count},
                             #{box => Box, id => Id, reason => Reason, owner => Owner}).

%% The box's info, or `error' for a handle the NIF refuses.
-spec info(sluice_box:box() | undefined) -> sluice_box:info() | error.
info(undefined) ->
    error;
info(Box) ->
    try sluice_box:info(Box) catch error:badarg -> error end.

-spec dropped(sluice_box:info()) -> #{atom() => non_neg_integer()}.
dropped(#{dropped := Dropped}) ->
    maps:with(?NOTICED, Dropped).

%% The record of an open box. A box the warden does not know is closed, or
%% was made before the warden kept records: that one is watched from now
%% on (without heir).
-spec watch_of(sluice_box:box(), #state{}) -> {watch(), #state{}} | closed.
watch_of(Box, S) ->
    case sluice_nif:box_id(Box) of
        false ->
            closed;
        Id ->
            case lookup(Id) of
                none ->
                    try sluice_nif:box_info(Box) of
                        #{closed := true} ->
                            closed;
                        #{owner := Owner, closed := false} ->
                            W = {Id, Owner, none, undefined, Box, off},
                            {W, put_watch(W, monitor_owner(Id, Owner, S))}
                    catch
                        error:badarg -> closed
                    end;
                W ->
                    {W, S}
            end
    end.

%% Every ?SWEEP_EVERY new records, forgets those of boxes already freed
%% (handle-less records whose owners live on), ?SWEEP_CHUNK ids a NIF call.
-spec sweep(#state{}) -> #state{}.
sweep(#state{added = Added} = S) when Added < ?SWEEP_EVERY ->
    S;
sweep(S) ->
    Ids = ets:select(?TABLE, [{{'$1', '_', '_', '_', undefined, '_'}, [], ['$1']}]),
    sweep_ids(Ids, S#state{added = 0}).

-spec sweep_ids([pos_integer()], #state{}) -> #state{}.
sweep_ids([], S) ->
    S;
sweep_ids(Ids, S) ->
    {Chunk, Rest} = case length(Ids) > ?SWEEP_CHUNK of
                        true -> lists:split(?SWEEP_CHUNK, Ids);
                        false -> {Ids, []}
                    end,
    Alive = sluice_nif:box_alive_ids(Chunk),
    Gone = ordsets:subtract(lists:sort(Chunk), lists:sort(Alive)),
    sweep_ids(Rest, lists:foldl(fun forget/2, S, Gone)).
