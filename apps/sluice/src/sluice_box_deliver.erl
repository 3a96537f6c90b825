%% @private
%% @doc Delivery of `sluice_box', run in the owner's process: takes looped
%% over capped NIF calls, arming, and filters.
%%
%% Every NIF call hands out at most 1000 messages (and stops after 0.5 ms),
%% so a large take is several calls with the owner schedulable in between.
%% A delivery that empties the box takes at most the number of messages held
%% when it started: producers cannot keep it looping.
-module(sluice_box_deliver).

-export([take/2, arm/2, active/4, unshare/1]).

-define(CALL_CAP, 1000).
%% Elements of a tuple or list message looked at for shared sub-binaries.
-define(UNSHARE_MAX, 64).

-type batch() :: {[term()], non_neg_integer(), non_neg_integer()}.

%% @doc Up to `N' messages, over as many NIF calls as needed.
-spec take(sluice_box:box(), pos_integer()) -> batch() | {error, not_owner | closed}.
take(Box, N) ->
    case sluice_nif:box_take(Box, min(N, ?CALL_CAP)) of
        {Msgs, Count, Dropped} when Count > 0, Count < N ->
            more(Box, N - Count, [Msgs], Count, Dropped);
        Result ->
            Result
    end.

-spec more(sluice_box:box(), non_neg_integer(), [[term()]], non_neg_integer(),
           non_neg_integer()) -> batch().
more(Box, Left, Acc, Count, Dropped) when Left > 0 ->
    case sluice_nif:box_take(Box, min(Left, ?CALL_CAP)) of
        {[], 0, D} ->
            done(Acc, Count, Dropped + D);
        {Msgs, C, D} ->
            more(Box, Left - C, [Msgs | Acc], Count + C, Dropped + D);
        {error, _} ->
            done(Acc, Count, Dropped)
    end;
more(_Box, _Left, Acc, Count, Dropped) ->
    done(Acc, Count, Dropped).

-spec done([[term()]], non_neg_integer(), non_neg_integer()) -> batch().
done(Acc, Count, Dropped) ->
    {lists:append(lists:reverse(Acc)), Count, Dropped}.

%% @doc Arms `notify' or `active'; delivers at once when messages are held.
-spec arm(sluice_box:box(), notify | active) -> ok | {error, not_owner | closed}.
arm(Box, Mode) ->
    case sluice_nif:box_arm(Box, Mode) of
        armed ->
            ok;
        new_data ->
            self() ! {mail, Box, new_data},
            ok;
        {Msgs, Count, Dropped} ->
            {Size, _} = sluice_nif:box_usage(Box),
            {All, Total, D} = more(Box, Size, [Msgs], Count, Dropped),
            self() ! {mail, Box, All, Total, D},
            ok;
        {error, _} = Error ->
            Error
    end.

%% @doc `active/3': filters what is held now, or arms `notify' when empty.
%% The mail's `Dropped' counts the messages the filter dropped as well as
%% the box's own drops since the last take, as pobox does.
%% `Sized': whether the box has a byte budget (skipped messages put back
%% are measured again).
-spec active(sluice_box:box(), boolean(), sluice_box:filter(), term()) ->
    ok | {error, not_owner | closed}.
active(Box, Sized, Filter, FilterState) ->
    case sluice_nif:box_arm(Box, notify) of
        armed ->
            ok;
        new_data ->
            {Size, _} = sluice_nif:box_usage(Box),
            {Msgs, Count, Dropped} = filter({Box, Sized}, Filter, FilterState, Size, [], 0, 0),
            self() ! {mail, Box, Msgs, Count, Dropped},
            ok;
        {error, _} = Error ->
            Error
    end.

-spec filter({sluice_box:box(), boolean()}, sluice_box:filter(), term(), non_neg_integer(), [term()],
             non_neg_integer(), non_neg_integer()) -> batch().
filter({Box, _} = Target, Filter, State, Left, Acc, Count, Dropped) when Left > 0 ->
    case sluice_nif:box_take(Box, min(Left, ?CALL_CAP)) of
        {[], 0, D} ->
            {lists:reverse(Acc), Count, Dropped + D};
        {Msgs, C, D} ->
            case apply_filter(Msgs, Filter, State, Acc, Count, 0) of
                {continue, State2, Acc2, Count2, Filtered} ->
                    _ = filtered(Box, Filtered),
                    filter(Target, Filter, State2, Left - C, Acc2, Count2,
                           Dropped + D + Filtered);
                {skip, Rest, Acc2, Count2, Filtered} ->
                    _ = filtered(Box, Filtered),
                    _ = restore(Target, Rest),
                    {lists:reverse(Acc2), Count2, Dropped + D + Filtered}
            end;
        {error, _} ->
            {lists:reverse(Acc), Count, Dropped}
    end;
filter(_Box, _Filter, _State, _Left, Acc, Count, Dropped) ->
    {lists:reverse(Acc), Count, Dropped}.

-spec apply_filter([term()], sluice_box:filter(), term(), [term()], non_neg_integer(),
                   non_neg_integer()) ->
    {continue, term(), [term()], non_neg_integer(), non_neg_integer()}
    | {skip, [term()], [term()], non_neg_integer(), non_neg_integer()}.
apply_filter([], _Filter, State, Acc, Count, Filtered) ->
    {continue, State, Acc, Count, Filtered};
apply_filter([Msg | Rest] = Msgs, Filter, State, Acc, Count, Filtered) ->
    case Filter(Msg, State) of
        {{ok, Out}, State2} -> apply_filter(Rest, Filter, State2, [Out | Acc], Count + 1, Filtered);
        {{drop, _}, State2} -> apply_filter(Rest, Filter, State2, Acc, Count, Filtered + 1);
        {drop, State2} -> apply_filter(Rest, Filter, State2, Acc, Count, Filtered + 1);
        skip -> {skip, Msgs, Acc, Count, Filtered}
    end.

-spec filtered(sluice_box:box(), non_neg_integer()) -> term().
filtered(_Box, 0) -> ok;
filtered(Box, N) -> sluice_nif:box_filtered(Box, N).

%% A box closed meanwhile refuses them: they were dropped with it. Large
%% messages are copied back on a dirty scheduler.
-spec restore({sluice_box:box(), boolean()}, [term()]) -> ok | {error, not_owner | closed}.
restore({Box, false}, Msgs) ->
    restore(Box, Msgs, []);
restore({Box, true}, Msgs) ->
    restore(Box, Msgs, [erlang:external_size(M) || M <- Msgs]).

-spec restore(sluice_box:box(), [term()], [non_neg_integer()]) ->
    ok | {error, not_owner | closed}.
restore(Box, Msgs, Sizes) ->
    case sluice_nif:box_restore(Box, Msgs, Sizes) of
        large -> sluice_nif:box_restore_dirty(Box, Msgs, Sizes);
        Answer -> Answer
    end.

%% @doc `Msg' with every sub-binary that keeps a much larger binary alive
%% copied (for a box with a byte budget, which counts a message by its
%% `erlang:external_size/1'): the message itself, or an element of a
%% message that is a tuple or a list of at most ?UNSHARE_MAX elements, when
%% it refers to a binary of more than 64 bytes and more than twice its own
%% size. Deeper sub-binaries are stored as they are.
-spec unshare(term()) -> term().
unshare(Bin) when is_binary(Bin) ->
    unshare_bin(Bin);
unshare(Tuple) when is_tuple(Tuple), tuple_size(Tuple) =< ?UNSHARE_MAX ->
    case lists:any(fun shared/1, tuple_to_list(Tuple)) of
        true -> list_to_tuple([unshare_bin(E) || E <- tuple_to_list(Tuple)]);
        false -> Tuple
    end;
unshare(List) when is_list(List) ->
    case short_shared(List, ?UNSHARE_MAX) of
        true -> [unshare_bin(E) || E <- List];
        false -> List
    end;
unshare(Msg) ->
    Msg.

%% Whether a proper list of at most `Left' elements holds a shared sub-binary.
-spec short_shared(term(), non_neg_integer()) -> boolean().
short_shared([], _Left) -> false;
short_shared(_, 0) -> false;
short_shared([E | Rest], Left) -> shared(E) orelse short_shared(Rest, Left - 1);
short_shared(_Tail, _Left) -> false.

-spec shared(term()) -> boolean().
shared(Bin) when is_binary(Bin) ->
    Ref = binary:referenced_byte_size(Bin),
    Ref > 64 andalso Ref > 2 * byte_size(Bin);
shared(_) ->
    false.

-spec unshare_bin(term()) -> term().
unshare_bin(Bin) ->
    case shared(Bin) of
        true -> binary:copy(Bin);
        false -> Bin
    end.
