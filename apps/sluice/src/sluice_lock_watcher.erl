%% @private
%% @doc The watcher of one slot of a `sluice_lock': makes the slot's
%% resource with the callback module and puts it in the slot; after a
%% holder's death (`{sluice_lock, dead, Index}' from the NIF) runs `dead/1'
%% and makes it again. Never on the path of a checkout or a checkin.
-module(sluice_lock_watcher).
-behaviour(gen_server).

-export([start_link/3]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-record(w, {lock :: reference(), index :: non_neg_integer(), mod :: module(),
            state :: term(), resource :: term()}).

-spec start_link(reference(), non_neg_integer(), {module(), term()}) ->
    {ok, pid()} | ignore | {error, term()}.
start_link(Lock, Index, Callback) ->
    gen_server:start_link(?MODULE, {Lock, Index, Callback}, []).

-spec init({reference(), non_neg_integer(), {module(), term()}}) -> {ok, #w{}} | {stop, term()}.
init({Lock, Index, {Mod, Args}}) ->
    process_flag(trap_exit, true),
    case Mod:init(Args) of
        {ok, State} -> prepare(#w{lock = Lock, index = Index, mod = Mod, state = State});
        Other -> {stop, {bad_init, Other}}
    end.

%% Makes the resource and puts it in the slot.
-spec prepare(#w{}) -> {ok, #w{}} | {stop, term()}.
prepare(#w{mod = Mod, state = State} = W) ->
    case Mod:checkout(none, State) of
        {ok, Resource, State2} -> {ok, fill(W#w{state = State2, resource = Resource})};
        {error, Reason, _State2} -> {stop, {checkout, Reason}};
        {stop, Reason, _State2} -> {stop, Reason}
    end.

%% A slot lent now (this watcher restarted) takes the resource when the
%% loan comes back.
-spec fill(#w{}) -> #w{}.
fill(#w{lock = Lock, index = I, resource = Resource} = W) ->
    ok = sluice_nif:lock_fill(Lock, I, Resource, self()),
    W.

-spec handle_call(term(), gen_server:from(), #w{}) -> {reply, {error, unknown_call}, #w{}}.
handle_call(_Req, _From, W) ->
    {reply, {error, unknown_call}, W}.

-spec handle_cast(term(), #w{}) -> {noreply, #w{}}.
handle_cast(_Msg, W) ->
    {noreply, W}.

-spec handle_info(term(), #w{}) -> {noreply, #w{}} | {stop, term(), #w{}}.
handle_info({sluice_lock, dead, I}, #w{index = I, mod = Mod, state = State} = W) ->
    {ok, State2} = Mod:dead(State),
    case prepare(W#w{state = State2}) of
        {ok, W2} -> {noreply, W2};
        {stop, Reason} -> {stop, Reason, W#w{state = State2}}
    end;
handle_info({'EXIT', _Parent, Reason}, W) ->
    {stop, Reason, W};
handle_info(Msg, #w{mod = Mod, state = State} = W) ->
    {ok, State2} = Mod:handle_info(Msg, State),
    {noreply, W#w{state = State2}}.

-spec terminate(term(), #w{}) -> term().
terminate(Reason, #w{mod = Mod, state = State, resource = Resource}) ->
    {ok, State2} = Mod:checkin(Resource, State),
    Mod:terminate(Reason, State2).
