%% @private
%% @doc The watcher of one slot of a `sluice_lock': makes the slot's
%% resource with the callback module and puts it in the slot; after a
%% holder's death (`{sluice_lock, dead, Index}' from the NIF) runs `dead/1'
%% and makes it again. Never on the path of a checkout or a checkin.
%%
%% The callback's `init/1' and `checkout/2' run after this process's own
%% `init/1' has returned (in `handle_continue/2'), so a callback that
%% blocks never blocks the supervisor that starts the watcher, nor any
%% process that waits on that supervisor.
%%
%% == Restarts ==
%% A watcher started again (it crashed, or its lock's supervisor was
%% started again) makes a fresh resource and puts it in its slot: a free
%% slot lends the new one at once; a slot lent now keeps its loan valid
%% and takes the new resource when the loan comes back; an empty one (its
%% holder died meanwhile) lends again. The old resource is not handed to
%% `checkin/2': it belonged to the watcher that is gone (a connection it
%% owned went with it).
%%
%% `checkin/2' runs as the watcher stops only when its slot goes for good:
%% the lock is closed or resized below the slot, the lock is out of the
%% registry (the application stops), or the lock's supervisor of a
%% `start_link/1' lock is stopped by its parent (the lock then lends no
%% more). A crash, or a restart of `sluice_lock_sup', is not for good.
%%
%% The callbacks `checkin/2', `dead/1', `handle_info/2' and `terminate/2'
%% are optional.
-module(sluice_lock_watcher).
-behaviour(gen_server).

-export([start_link/5]).
-export([init/1, handle_continue/2, handle_call/3, handle_cast/2, handle_info/2,
         terminate/2, code_change/3]).

-record(w, {lock :: reference(), index :: non_neg_integer(), mod :: module(),
            args :: term(), epoch :: pos_integer(), kind :: sluice_lock_sup:kind(),
            ready = false :: boolean(), state :: term(), resource :: term()}).

-spec start_link(reference(), non_neg_integer(), {module(), term()}, pos_integer(),
                 sluice_lock_sup:kind()) -> {ok, pid()} | ignore | {error, term()}.
start_link(Lock, Index, Callback, Epoch, Kind) ->
    gen_server:start_link(?MODULE, {Lock, Index, Callback, Epoch, Kind}, []).

-spec init({reference(), non_neg_integer(), {module(), term()}, pos_integer(),
            sluice_lock_sup:kind()}) -> {ok, #w{}, {continue, start}}.
init({Lock, Index, {Mod, Args}, Epoch, Kind}) ->
    process_flag(trap_exit, true),
    {ok, #w{lock = Lock, index = Index, mod = Mod, args = Args, epoch = Epoch, kind = Kind},
     {continue, start}}.

-spec handle_continue(start, #w{}) -> {noreply, #w{}} | {stop, term(), #w{}}.
handle_continue(start, #w{mod = Mod, args = Args} = W) ->
    case Mod:init(Args) of
        {ok, State} ->
            case prepare(W#w{state = State, ready = true}) of
                {ok, W2} -> {noreply, W2};
                {stop, Reason, W2} -> {stop, Reason, W2}
            end;
        Other ->
            {stop, {bad_init, Other}, W}
    end.

%% Makes the resource and puts it in the slot.
-spec prepare(#w{}) -> {ok, #w{}} | {stop, term(), #w{}}.
prepare(#w{mod = Mod, state = State} = W) ->
    case Mod:checkout(none, State) of
        {ok, Resource, State2} -> {ok, fill(W#w{state = State2, resource = Resource})};
        {error, Reason, State2} -> {stop, {checkout, Reason}, W#w{state = State2}};
        {stop, Reason, State2} -> {stop, Reason, W#w{state = State2}};
        Other -> {stop, {bad_checkout, Other}, W}
    end.

%% A slot lent now takes the resource when the loan comes back; a slot out
%% of use (the lock closed or shrank) takes nothing.
-spec fill(#w{}) -> #w{}.
fill(#w{lock = Lock, index = I, resource = Resource, epoch = Epoch} = W) ->
    _ = try sluice_nif:lock_fill(Lock, I, Resource, {self(), Epoch})
        catch error:badarg -> ok
        end,
    W.

-spec handle_call(term(), gen_server:from(), #w{}) -> {reply, {error, unknown_call}, #w{}}.
handle_call(_Req, _From, W) ->
    {reply, {error, unknown_call}, W}.

-spec handle_cast(term(), #w{}) -> {noreply, #w{}}.
handle_cast(_Msg, W) ->
    {noreply, W}.

-spec handle_info(term(), #w{}) -> {noreply, #w{}} | {stop, term(), #w{}}.
handle_info({sluice_lock, dead, I}, #w{index = I, state = State} = W) ->
    ok = holder_down(W),
    State2 = optional(W, dead, [State], State),
    case prepare(W#w{state = State2}) of
        {ok, W2} -> {noreply, W2};
        {stop, Reason, W2} -> {stop, Reason, W2}
    end;
handle_info({'EXIT', _Parent, Reason}, W) ->
    {stop, Reason, W};
handle_info(Msg, #w{state = State} = W) ->
    {noreply, W#w{state = optional(W, handle_info, [Msg, State], State)}}.

-spec terminate(term(), #w{}) -> term().
terminate(_Reason, #w{ready = false}) ->
    ok;
terminate(Reason, #w{state = State, resource = Resource} = W) ->
    State2 = case for_good(Reason, W) of
                 true -> optional(W, checkin, [Resource, State], State);
                 false -> State
             end,
    case erlang:function_exported(W#w.mod, terminate, 2) of
        true -> (W#w.mod):terminate(Reason, State2);
        false -> ok
    end.

%% The telemetry event `[sluice, lock, holder_down]' (when telemetry is
%% loaded): the lock's id (as in `sluice:tools/0'), its name and the slot.
-spec holder_down(#w{}) -> ok.
holder_down(#w{lock = Lock, index = I}) ->
    Name = case sluice_lock_sup:row(Lock) of
               {ok, {_, _, Opts, _}} -> maps:get(name, Opts, undefined);
               error -> undefined
           end,
    Id = try sluice_nif:lock_id(Lock) catch error:badarg -> undefined end,
    sluice_telemetry:execute([sluice, lock, holder_down], #{count => 1},
                             #{id => Id, name => Name, slot => I}).

%% Whether the slot goes for good (see the module documentation).
-spec for_good(term(), #w{}) -> boolean().
for_good(Reason, #w{lock = Lock, index = I, kind = Kind}) ->
    #{slots := Active} = sluice_nif:lock_info(Lock),
    I >= Active orelse
        case Kind of
            new ->
                not ets:member(sluice_locks, Lock);
            _ when Reason =:= shutdown; element(1, Reason) =:= shutdown ->
                %% a start_link lock whose supervisor stops: it lends no more
                _ = sluice_nif:lock_resize(Lock, 0),
                true;
            _ ->
                false
        end.

%% `Mod:F(Args)' when the callback module exports it: the new state from
%% `{ok, State2}'; `Default' when it does not.
-spec optional(#w{}, atom(), [term()], term()) -> term().
optional(#w{mod = Mod}, F, Args, Default) ->
    case erlang:function_exported(Mod, F, length(Args)) of
        true -> {ok, State2} = apply(Mod, F, Args), State2;
        false -> Default
    end.

%% Release upgrades and downgrades (`{update, sluice_lock_watcher, {advanced, _}}' in an
%% appup): the state has the same shape in every version so far, and is kept
%% as it is in both directions (`OldVsn' is `{down, Vsn}' on the way down).
-spec code_change(term(), #w{}, term()) -> {ok, #w{}}.
code_change(_OldVsn, State, _Extra) ->
    {ok, State}.
