%% @private
%% @doc Watches the owners of every `sluice_box': option validation, box
%% creation, hand-overs, heirs, closing.
%%
%% Only slow paths come here (new, give_away, close, an owner's death);
%% posts and takes never do. The warden monitors each box's owner and holds
%% the box's handle while it is open. When an owner dies the box passes to
%% its heir, if that is a live process other than the dead owner, with
%% `{sluice_transfer, Box, DeadOwner, HeirData, Reason}' (the heir stays heir);
%% otherwise the box is closed, its messages dropped (`closed') and freed.
%%
%% If the warden itself restarts it has lost its monitors and heirs: boxes
%% made before stay usable, and are watched again (without heir) from the
%% next give_away or close.
-module(sluice_box_warden).
-behaviour(gen_server).

-export([start_link/0, validate/1, watch/4, give_away/4, close/2, discard/1, notices/3]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, code_change/3]).

-record(watch, {owner :: pid(), monitor :: reference(), heir :: pid() | none,
                heir_data :: term()}).
%% A box's drop notices: every `interval' ms, the drops counted since the
%% last notice (`seen' holds the counts then), per reason.
-record(notice, {interval :: pos_integer(), seen :: #{atom() => non_neg_integer()},
                 timer :: reference()}).
-record(state, {boxes = #{} :: #{sluice_box:box() => #watch{}},
                monitors = #{} :: #{reference() => sluice_box:box()},
                notices = #{} :: #{sluice_box:box() => #notice{}}}).

%% The reasons drop notices report (filter drops are the owner's own doing;
%% closed drops end the box).
-define(NOTICED, [overflow, resize, expired, early]).

-define(DEFAULTS, #{type => queue, owner => undefined, heir => none,
                    heir_data => undefined, max_bytes => infinity, max_age => infinity,
                    codel => none, red_min => 0, red_max => 0, red_prob => 0.0,
                    clock => system}).

%%% API

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc Checks `sluice_box:new/1' options and fills in the defaults (the
%% owner defaults to the caller).
-spec validate(term()) -> {ok, map()} | {error, {bad_option, term()}}.
validate(#{max := _} = Opts) ->
    Full = maps:merge(?DEFAULTS#{owner => self()}, maps:remove(name, Opts)),
    case [K || {K, V} <- maps:to_list(Full), not valid(K, V)] of
        [] when map_get(red_min, Full) > map_get(red_max, Full) -> {error, {bad_option, red_max}};
        [] -> {ok, Full};
        [Bad | _] -> {error, {bad_option, Bad}}
    end;
validate(_) ->
    {error, {bad_option, max}}.

-spec valid(term(), term()) -> boolean().
valid(max, V) -> is_integer(V) andalso V > 0;
valid(type, V) -> lists:member(V, [queue, stack, keep_old]);
valid(owner, V) -> is_pid(V) andalso node(V) =:= node();
valid(heir, V) -> V =:= none orelse (is_pid(V) andalso node(V) =:= node());
valid(heir_data, _) -> true;
valid(max_bytes, V) -> V =:= infinity orelse (is_integer(V) andalso V > 0);
valid(max_age, V) -> V =:= infinity orelse ms(V);
valid(codel, none) -> true;
valid(codel, #{} = V) -> maps:size(maps:without([target, interval], V)) =:= 0
                             andalso lists:all(fun ms/1, maps:values(V));
valid(red_min, V) -> is_integer(V) andalso V >= 0;
valid(red_max, V) -> is_integer(V) andalso V >= 0;
valid(red_prob, V) -> is_number(V) andalso V >= 0 andalso V =< 1;
valid(clock, V) -> V =:= system orelse V =:= manual;
valid(_, _) -> false.

%% A positive number of milliseconds the NIF can hold in nanoseconds.
-spec ms(term()) -> boolean().
ms(V) -> is_integer(V) andalso V > 0 andalso V < 1 bsl 40.

%% @doc Starts watching the owner of a new box.
-spec watch(sluice_box:box(), pid(), pid() | none, term()) -> ok.
watch(Box, Owner, Heir, HeirData) ->
    gen_server:call(?MODULE, {watch, Box, Owner, Heir, HeirData}).

%% @doc Hands `Box' from `From' (who must own it) to `To'.
-spec give_away(sluice_box:box(), pid(), pid(), term()) -> ok | {error, not_owner | closed}.
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

-spec init([]) -> {ok, #state{}}.
init([]) ->
    {ok, #state{}}.

-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, term(), #state{}}.
handle_call({watch, Box, Owner, Heir, HeirData}, _From, S) ->
    W = #watch{owner = Owner, monitor = monitor(process, Owner), heir = Heir,
               heir_data = HeirData},
    {reply, ok, store(Box, W, S)};
handle_call({give_away, Box, From, To, Data}, _From, S) ->
    case watch_of(Box, S) of
        {#watch{owner = From} = W, S1} ->
            S2 = hand_over(Box, W, To, S1),
            To ! {sluice_transfer, Box, From, Data, give_away},
            {reply, ok, S2};
        {#watch{}, S1} ->
            {reply, {error, not_owner}, S1};
        closed ->
            {reply, {error, closed}, S}
    end;
handle_call({close, Box, From}, _From, S) ->
    case watch_of(Box, S) of
        {#watch{owner = From} = W, S1} -> {reply, ok, shut(Box, W, S1)};
        {#watch{}, S1} -> {reply, {error, not_owner}, S1};
        closed -> {reply, ok, S}
    end;
handle_call({notices, Box, From, Interval}, _From, S) ->
    case watch_of(Box, S) of
        {#watch{owner = From}, S1} -> {reply, ok, set_notices(Box, Interval, S1)};
        {#watch{}, S1} -> {reply, {error, not_owner}, S1};
        closed -> {reply, {error, closed}, S}
    end;
handle_call({discard, Box}, _From, S) ->
    case watch_of(Box, S) of
        {W, S1} -> {reply, ok, shut(Box, W, S1)};
        closed -> {reply, ok, S}
    end;
handle_call(_Other, _From, S) ->
    {reply, {error, unknown_call}, S}.

-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast(_Msg, S) ->
    {noreply, S}.

-spec handle_info(term(), #state{}) -> {noreply, #state{}}.
handle_info({'DOWN', Mon, process, Dead, Reason}, #state{monitors = Mons, boxes = Boxes} = S) ->
    case Mons of
        #{Mon := Box} ->
            W = maps:get(Box, Boxes),
            case W#watch.heir of
                Heir when is_pid(Heir), Heir =/= Dead ->
                    S2 = hand_over(Box, W, Heir, S),
                    Heir ! {sluice_transfer, Box, Dead, W#watch.heir_data, Reason},
                    {noreply, S2};
                _ ->
                    {noreply, shut(Box, W, S)}
            end;
        #{} ->
            {noreply, S}
    end;
handle_info({timeout, Timer, {notices, Box}}, #state{notices = Notices} = S) ->
    case Notices of
        #{Box := #notice{timer = Timer} = N} -> {noreply, notify(Box, N, S)};
        #{} -> {noreply, S}
    end;
handle_info(_Other, S) ->
    {noreply, S}.

%% A state from before drop notices is extended with none.
-spec code_change(term(), #state{} | tuple(), term()) -> {ok, #state{}}.
code_change(_OldVsn, {state, Boxes, Monitors}, _Extra) ->
    {ok, #state{boxes = Boxes, monitors = Monitors}};
code_change(_OldVsn, S, _Extra) ->
    {ok, S}.

%%% Internals

-spec store(sluice_box:box(), #watch{}, #state{}) -> #state{}.
store(Box, #watch{monitor = Mon} = W, #state{boxes = Boxes, monitors = Mons} = S) ->
    S#state{boxes = Boxes#{Box => W}, monitors = Mons#{Mon => Box}}.

-spec forget(sluice_box:box(), #watch{}, #state{}) -> #state{}.
forget(Box, #watch{monitor = Mon}, #state{boxes = Boxes, monitors = Mons} = S) ->
    demonitor(Mon, [flush]),
    S#state{boxes = maps:remove(Box, Boxes), monitors = maps:remove(Mon, Mons)}.

%% The owner changes in the NIF first, so the old owner can no longer take.
-spec hand_over(sluice_box:box(), #watch{}, pid(), #state{}) -> #state{}.
hand_over(Box, W, To, S) ->
    ok = sluice_nif:box_set_owner(Box, To),
    S1 = forget(Box, W, S),
    store(Box, W#watch{owner = To, monitor = monitor(process, To)}, S1).

-spec shut(sluice_box:box(), #watch{}, #state{}) -> #state{}.
shut(Box, W, S) ->
    ok = sluice_nif:box_close(Box),
    forget(Box, W, set_notices(Box, off, S)).

-spec set_notices(sluice_box:box(), pos_integer() | off, #state{}) -> #state{}.
set_notices(Box, Interval, #state{notices = Notices} = S) ->
    _ = case Notices of
            #{Box := #notice{timer = Old}} -> erlang:cancel_timer(Old);
            #{} -> ok
        end,
    case Interval of
        off ->
            S#state{notices = maps:remove(Box, Notices)};
        _ ->
            N = #notice{interval = Interval, seen = dropped(sluice_box:info(Box)),
                        timer = erlang:start_timer(Interval, self(), {notices, Box})},
            S#state{notices = Notices#{Box => N}}
    end.

%% Expires what is too old (so an idle box's expiries are told too), sends
%% the owner one `{sluice_dropped, Box, Reason, Count}' per reason with
%% drops since the last notice, and schedules the next.
-spec notify(sluice_box:box(), #notice{}, #state{}) -> #state{}.
notify(Box, #notice{interval = Interval, seen = Seen} = N, #state{notices = Notices} = S) ->
    ok = sluice_nif:box_expire(Box),
    case sluice_box:info(Box) of
        #{closed := true} ->
            S#state{notices = maps:remove(Box, Notices)};
        #{owner := Owner} = Info ->
            Now = dropped(Info),
            _ = [Owner ! {sluice_dropped, Box, R, C - maps:get(R, Seen)}
                 || {R, C} <- maps:to_list(Now), C > maps:get(R, Seen)],
            Timer = erlang:start_timer(Interval, self(), {notices, Box}),
            S#state{notices = Notices#{Box => N#notice{seen = Now, timer = Timer}}}
    end.

-spec dropped(sluice_box:info()) -> #{atom() => non_neg_integer()}.
dropped(#{dropped := Dropped}) ->
    maps:with(?NOTICED, Dropped).

%% The watch of an open box. A box the warden does not know is closed, or
%% was made before the warden restarted: that one is watched from now on.
-spec watch_of(sluice_box:box(), #state{}) -> {#watch{}, #state{}} | closed.
watch_of(Box, #state{boxes = Boxes} = S) ->
    case Boxes of
        #{Box := W} ->
            {W, S};
        #{} ->
            case sluice_nif:box_info(Box) of
                {_, {_, _, _, _, _, true}} ->
                    closed;
                {_, {_, _, _, _, Owner, false}} ->
                    W = #watch{owner = Owner, monitor = monitor(process, Owner), heir = none},
                    {W, store(Box, W, S)}
            end
    end.
