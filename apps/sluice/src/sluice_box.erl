%% @doc Bounded buffers with pobox's `queue', `stack' and `keep_old'
%% policies (Erlang in Anger, 3.3.2 and 3.3.3), without a buffer process.
%%
%% == Posting ==
%% {@link post/2} is one NIF call in the producer: it stores the message (a
%% copy, packed with others in shared storage), drops what the policy says
%% to drop, counts it, and returns `ok', or `full' when something was
%% dropped. There is no mailbox to overflow: memory is bounded by `max' (and
%% `max_bytes') whatever the flood. `queue' delivers oldest first and drops
%% the oldest when full; `stack' delivers newest first and also drops the
%% oldest (its bottom), so the newest are kept (pobox's stack replaces its
%% top instead); `keep_old' delivers oldest first and drops the new message.
%%
%% == Delivery (owner only, each one-shot, with pobox's shapes) ==
%% <ul>
%% <li>{@link take/2}: `{Msgs, Count, Dropped}' returned directly, where
%%     `Dropped' counts the messages dropped (overflow, resize) since the
%%     previous delivery.</li>
%% <li>{@link notify/1}: the owner gets `{mail, Box, new_data}' once, now if
%%     the box holds messages, else from the first post.</li>
%% <li>{@link active/1}: the owner gets `{mail, Box, Msgs, Count, Dropped}'
%%     once: now with everything held, else from the first post (sent by
%%     that post's NIF call).</li>
%% <li>{@link active/3}: as `active/1' through a filter that runs in the
%%     owner's process, never in a producer's call: `Filter(Msg, State)'
%%     returns `{{ok, NewMsg}, State2}' (deliver), `{{drop, Msg}, State2}' or
%%     `{drop, State2}' (counted as dropped by `filter', and in the mail's `Dropped'
%%     as pobox does), or `skip' (stop;
%%     this and later messages stay in the box). If the box is empty when
%%     `active/3' is called there is nothing to filter yet: the owner gets
%%     `{mail, Box, new_data}' from the first post and calls `active/3'
%%     again.</li>
%% </ul>
%% No NIF call holds a normal scheduler for long: one call hands out at most
%% 1000 messages and stops after 0.5 ms; `take/2' and `active' loop over
%% such calls in Erlang, between which the owner can be scheduled out.
%% {@link resize/2} and {@link close/1}, which may free a whole box, run on
%% a dirty scheduler. A post walks its message first, with a budget of
%% 8192 cells (about 64 KB of heap; a normal message costs a few cells):
%% a larger message is copied on a dirty scheduler instead of the caller's
%% (with `max_bytes', it is measured there too, by its encoded size), and
%% stored marked as large. Large messages are copied on dirty schedulers
%% both ways: a delivery ({@link take/2}, `active', or a post sending an
%% owner armed `active' its mail) stops before a large message on the
%% caller's scheduler and goes on, in the same call, on a dirty CPU
%% scheduler, which copies it (and a filter's skipped large messages are
%% put back there too). Shapes, order and counters are the same either way.
%% A delivery sent by a post to an owner that has just died is put back
%% into the box, for the heir or the next owner: `delivered' counts only
%% what was sent to a live owner.
%%
%% == Memory ==
%% An idle box (never posted into) costs about 1.5 to 2.5 KB, its
%% counters and locks (`BENCH box/idle_bytes'; an idle buffer process
%% costs about 2.8 KB). Its lanes (a few KB), message storage and sojourn histogram
%% (8 KB) are made when first used. A full `queue' or `stack' box frees
%% the messages it drops in batches per lane, of at most 64 messages or,
%% sooner, 1 MB of messages kept meanwhile (a message of 64 KB or more is
%% stored on its own and freed as soon as it is dropped). With `max_bytes',
%% a sub-binary keeping a binary of more than 64 bytes and more than twice
%% its size alive (the message, or an element of a message that is a tuple
%% or a list of at most 64 elements) is copied before it is stored, so the
%% budget counts what the box keeps alive; deeper sub-binaries are not.
%%
%% == Age and early drop ==
%% Options beyond the bound, all off by default:
%% <ul>
%% <li>`max_age' (ms): a message older than this when its turn to be
%%     delivered comes is dropped instead, counted as `expired'.</li>
%% <li>`codel': a sojourn-time controller in the CoDel style. While the time
%%     messages spend in the box stays above `target' ms for longer than
%%     `interval' ms, the message at the head is dropped at delivery
%%     (counted as `expired'), at a rate rising as `interval/sqrt(count)',
%%     until a message comes out below `target'. It fights standing queues,
%%     not bursts: a burst drained within `interval' loses nothing. It
%%     needs an owner that keeps taking, and suits `queue' and `keep_old'
%%     (a `stack' delivers its freshest messages first).</li>
%% <li>`red_min', `red_max', `red_prob': random early drop. A post finding
%%     between `red_min' and `red_max' messages held is refused with a
%%     probability rising linearly from 0 to `red_prob' (`red_prob' from
%%     `red_max' on), counted as `early', answered `full' and not copied:
%%     producers feel the pressure before the box is full.</li>
%% </ul>
%% The drops of every reason but `filter' and `closed' are reported with
%% the next delivery (the `Dropped' of a take or mail). An owner that wants
%% to tell its users about drops can also ask for summaries:
%% {@link drop_notices/2} sends `{sluice_dropped, Box, Reason, Count}' at
%% most once per interval and reason, only when there were drops.
%%
%% == Ownership ==
%% Only the owner takes, arms ({@link notify/1}, `active'), hands over
%% ({@link give_away/3}) and {@link close/1}s the box; other callers get
%% `{error, not_owner}'. Anybody may post, {@link resize/2} (an operator in
%% a remote shell, say) and read {@link usage/1} and {@link info/1}. When
%% the owner dies the box passes to its heir, who gets
%% `{sluice_transfer, Box, PreviousOwner, HeirData, Reason}', or, without a
%% live heir, is closed and its memory freed. A box no process holds a
%% handle to any more (no name, no heir) is freed even while its owner
%% lives: sluice keeps a handle only of a box with a heir or drop notices,
%% which is reachable by design. Under a supervisor, use
%% {@link child_spec/1}: a supervised process keeps the box under a name,
%% and consumers {@link claim/1} it.
%%
%% == Errors ==
%% A value that is not a box handle, or a bad argument, raises `badarg'
%% with a message naming it (see `sluice_util'), in the caller: nothing
%% that reaches sluice's own processes can crash them.
-module(sluice_box).

-export([new/1, post/2, take/2, notify/1, active/1, active/3, resize/2, usage/1,
         info/1, give_away/3, close/1, child_spec/1, start_link/1, lookup/1, claim/1,
         set_time/2, drop_notices/2]).
-export([adopt/5, check/2]).
-export_type([box/0, type/0, options/0, filter/0, info/0, heir/0]).

-include("sluice_box.hrl").
-include("sluice_error.hrl").

-define(NOT_A_BOX, "must be a box handle").

-opaque box() :: #sluice_box{}.
%% A handle on a box (or a buffer of buckets), from {@link new/1},
%% {@link start_link/1} or {@link lookup/1}. It is a term: any process may
%% post to it; only the owner takes.
-type type() :: queue | stack | keep_old.
%% What a full box does and in which order it delivers: `queue' (oldest
%% first; a post to a full box drops the oldest), `stack' (newest first; a
%% post to a full box drops the oldest) or `keep_old' (oldest first; a post
%% to a full box is dropped).
-type options() :: #{max := pos_integer(), type => type(), owner => pid(),
                     heir => heir(), heir_data => term(),
                     initial_state => passive | notify,
                     max_bytes => pos_integer() | infinity, name => term(),
                     max_age => pos_integer() | infinity,
                     codel => none | #{target => pos_integer(), interval => pos_integer()},
                     red_min => non_neg_integer(), red_max => non_neg_integer(),
                     red_prob => float(), clock => system | manual}.
%% `max' (mandatory): most messages held; `type' (default `queue');
%% `owner' (default: the caller); `heir' (default `none') and `heir_data'
%% (default `undefined'); `max_bytes' (default `infinity'): most bytes held,
%% counted as the messages' `erlang:external_size/1'; `name' (for
%% {@link start_link/1} only): the name to {@link lookup/1} the box by.
%% Drop policies besides the bound (see "Age and early drop" above):
%% `max_age' (ms, default `infinity'), `codel' (`#{target => Ms, interval
%% => Ms}', defaults 5 and 100, or `none', the default), `red_min',
%% `red_max' (messages held) and `red_prob' (0.0 to 1.0, default 0.0: off);
%% `clock' (`system', the default, or `manual': see {@link set_time/2});
%% `initial_state' (pobox's `start_link/3' state): `passive' (the default:
%% nothing is sent until the owner arms the box, so a box made before its
%% owner is ready to receive sends nothing unasked), or `notify' (armed at
%% creation: the owner gets `{mail, Box, new_data}' from the first post, as
%% after {@link notify/1}). A `heir' may be a pid or a name resolved when
%% the owner dies: a registered name, `{global, Name}' or `{via, Mod,
%% Name}'; a name that resolves to no live local process means no heir
%% (the box is closed).
-type heir() :: pid() | atom() | {global, term()} | {via, module(), term()}.
%% Who gets the box when its owner dies: a pid, or a name resolved then
%% (registered, `{global, Name}', `{via, Mod, Name}').
-type filter() :: fun((Msg :: term(), State :: term()) ->
                          {{ok, term()}, term()} | {{drop, term()}, term()}
                          | {drop, term()} | skip).
%% The filter of {@link active/3}, run in the owner: called with each
%% message and the filter's state, it delivers `NewMsg' (`{{ok, NewMsg},
%% State2}'), drops the message, counted as `filter' (`{{drop, Msg},
%% State2}' or `{drop, State2}'), or stops (`skip': this and later messages
%% stay in the box).
-type info() :: #{type := type() | buckets, posted := non_neg_integer(),
                  delivered := non_neg_integer(),
                  dropped := #{overflow | resize | filter | closed | expired | early
                               => non_neg_integer()},
                  size := non_neg_integer(), max := pos_integer(),
                  peak := non_neg_integer(), bytes := non_neg_integer(),
                  max_bytes := pos_integer() | infinity, owner := pid(),
                  closed := boolean(),
                  sojourn := #{p50 | p99 | max => non_neg_integer()}}.
%% Counters since creation; sojourn times (time from post to delivery) in
%% microseconds.

%% @doc Creates a box (see {@link options()}).
-spec new(Opts) -> {ok, box()} | {error, {bad_option, term()}} when Opts :: options().
new(Opts) ->
    case sluice_box_opts:box(Opts) of
        {ok, #{max_bytes := MaxBytes, owner := Owner, heir := Heir,
               heir_data := HeirData} = Full} ->
            case sluice_box_opts:made(sluice_nif:box_new(sluice_box_opts:nif_box(Full))) of
                {ok, Ref} -> {ok, adopt(Ref, MaxBytes =/= infinity, Owner, Heir, HeirData)};
                {error, _} = Refused -> Refused
            end;
        {error, _} = Error ->
            Error
    end.

%% @doc Moves the clock of a box made with `clock => manual' to `Ms'
%% milliseconds (it starts at 0 and never goes back; a box on the system
%% clock ignores this). For tests and simulations of `max_age', `codel'
%% and the sojourn times in {@link info/1}.
-spec set_time(Box, Ms) -> ok when Box :: box(), Ms :: non_neg_integer().
set_time(Box, Ms) when is_integer(Ms), Ms >= 0, Ms < 1 bsl 64 ->
    try sluice_nif:box_set_time(Box, Ms) catch error:badarg -> ?BADARG([Box, Ms], 1, ?NOT_A_BOX) end;
set_time(Box, Ms) ->
    ?BADARG([Box, Ms], 2, "must be a non-negative integer").

%% @private
%% @doc A handle for the buffer `Ref' made by the NIF library, watched like
%% a box (`sluice_buckets' makes its buffers this way).
-spec adopt(Ref, Sized, Owner, Heir, HeirData) -> box() when
      Ref :: reference(),
      Sized :: boolean(),
      Owner :: pid(),
      Heir :: heir(),
      HeirData :: term().
adopt(Ref, Sized, Owner, Heir, HeirData) ->
    Box = #sluice_box{ref = Ref, sized = Sized},
    ok = sluice_box_warden:watch(Box, Owner, Heir, HeirData),
    Box.

%% @private
%% @doc Raises `badarg' for argument 1 of the current call (`Args') unless
%% `Box' is a box handle.
-spec check(Box, Args) -> ok when Box :: term(), Args :: [term()].
check(Box, Args) ->
    case sluice_nif:box_id(Box) of
        false -> ?BADARG(Args, 1, ?NOT_A_BOX);
        _ -> ok
    end.

%% @doc Offers `Msg': `ok' (stored), `full' (a message was dropped to keep
%% the bound: an old one, or this one for `keep_old'), `{error, closed}'.
-spec post(Box, Msg) -> ok | full | {error, closed} when Box :: box(), Msg :: term().
post(#sluice_box{sized = true} = Box, Msg0) ->
    Msg = sluice_box_deliver:unshare(Msg0),
    %% A large message is measured and copied on a dirty scheduler.
    try sluice_nif:box_small(Msg)
            andalso sluice_nif:box_post(Box, Msg, erlang:external_size(Msg)) of
        false -> sluice_nif:box_post_dirty(Box, Msg);
        large -> sluice_nif:box_post_dirty(Box, Msg);
        Answer -> Answer
    catch
        error:badarg -> ?BADARG([Box, Msg0], 1, ?NOT_A_BOX)
    end;
post(Box, Msg) ->
    try sluice_nif:box_post(Box, Msg) of
        large -> sluice_nif:box_post_dirty(Box, Msg);
        Answer -> Answer
    catch
        error:badarg -> ?BADARG([Box, Msg], 1, ?NOT_A_BOX)
    end.

%% @doc Takes up to `N' messages, in delivery order.
-spec take(Box, N) ->
    {[term()], non_neg_integer(), non_neg_integer()} | {error, not_owner | closed} when
      Box :: box(),
      N :: pos_integer().
take(Box, N) when is_integer(N), N > 0 ->
    ok = check(Box, [Box, N]),
    sluice_box_deliver:take(Box, N);
take(Box, N) ->
    ?BADARG([Box, N], 2, "must be a positive integer").

%% @doc Asks for `{mail, Box, new_data}' once messages are there.
-spec notify(Box) -> ok | {error, not_owner | closed} when Box :: box().
notify(Box) ->
    ok = check(Box, [Box]),
    sluice_box_deliver:arm(Box, notify).

%% @doc Asks for `{mail, Box, Msgs, Count, Dropped}' once, with every message.
-spec active(Box) -> ok | {error, not_owner | closed} when Box :: box().
active(Box) ->
    ok = check(Box, [Box]),
    sluice_box_deliver:arm(Box, active).

%% @doc As {@link active/1}, through `Filter' (see the module documentation).
-spec active(Box, Filter, FilterState) -> ok | {error, not_owner | closed} when
      Box :: box(),
      Filter :: filter(),
      FilterState :: term().
active(Box, Filter, FilterState) when is_function(Filter, 2) ->
    ok = check(Box, [Box, Filter, FilterState]),
    sluice_box_deliver:active(Box, Box#sluice_box.sized, Filter, FilterState);
active(Box, Filter, FilterState) ->
    ?BADARG([Box, Filter, FilterState], 2, "must be a fun of arity 2").

%% @doc Changes `max'; shrinking drops per type (counted as `resize').
-spec resize(Box, Max) -> ok | {error, closed} when Box :: box(), Max :: pos_integer().
resize(Box, Max) when is_integer(Max), Max > 0, Max < 1 bsl 40 ->
    try sluice_nif:box_resize(Box, Max) catch error:badarg -> ?BADARG([Box, Max], 1, ?NOT_A_BOX) end;
resize(Box, Max) ->
    ?BADARG([Box, Max], 2, "must be a positive integer below 2^40").

%% @doc `{Size, Max}'.
-spec usage(Box) -> {non_neg_integer(), pos_integer()} when Box :: box().
usage(Box) ->
    try sluice_nif:box_usage(Box) catch error:badarg -> ?BADARG([Box], 1, ?NOT_A_BOX) end.

%% @doc Counters and sojourn-time percentiles (see {@link info()}).
-spec info(Box) -> info() when Box :: box().
info(Box) ->
    #{sojourn := Ns} = Info =
        try sluice_nif:box_info(Box) catch error:badarg -> ?BADARG([Box], 1, ?NOT_A_BOX) end,
    Us = fun(_, T) -> erlang:convert_time_unit(T, nanosecond, microsecond) end,
    maps:remove(regions, Info#{sojourn := maps:map(Us, Ns)}).

%% @doc Every `Interval' ms, sends the box's owner (whoever it is then)
%% `{sluice_dropped, Box, Reason, Count}' for each reason (`overflow',
%% `resize', `expired', `early') with `Count' drops since the previous
%% summary, if any; `off' stops. Owner only. The summaries come from a
%% timer in sluice's own process, never from a post. While notices are on,
%% sluice keeps a handle to the box (it is not freed until they stop).
-spec drop_notices(Box, Interval) -> ok | {error, not_owner | closed} when
      Box :: box(),
      Interval :: pos_integer() | off.
drop_notices(Box, Interval) when Interval =:= off; is_integer(Interval), Interval > 0,
                                                   Interval < 1 bsl 32 ->
    ok = check(Box, [Box, Interval]),
    sluice_box_warden:notices(Box, self(), Interval);
drop_notices(Box, Interval) ->
    ?BADARG([Box, Interval], 2, "must be a positive number of milliseconds or off").

%% @doc Makes `NewOwner' (a live local process) the owner; it gets
%% `{sluice_transfer, Box, self(), Data, give_away}'. To a dead process
%% the answer is `{error, noproc}' and to a process of another node
%% `{error, not_local}': the caller keeps the box and every message.
-spec give_away(Box, NewOwner, Data) -> ok | {error, not_owner | closed | noproc | not_local} when
      Box :: box(),
      NewOwner :: pid(),
      Data :: term().
give_away(Box, NewOwner, Data) when is_pid(NewOwner) ->
    ok = check(Box, [Box, NewOwner, Data]),
    case node(NewOwner) =:= node() of
        true -> sluice_box_warden:give_away(Box, self(), NewOwner, Data);
        false -> {error, not_local}
    end;
give_away(Box, NewOwner, Data) ->
    ?BADARG([Box, NewOwner, Data], 2, "must be a pid").

%% @doc Closes the box: held messages are dropped (`closed') and freed,
%% later posts get `{error, closed}'.
-spec close(Box) -> ok | {error, not_owner} when Box :: box().
close(Box) ->
    ok = check(Box, [Box]),
    sluice_box_warden:close(Box, self()).

%% @doc A child spec for the user's supervisor: it starts, with
%% {@link start_link/1}, a process that makes the box of `Opts' (see
%% {@link options()}; `name' is mandatory) and keeps it under that name.
%% Producers find the box with {@link lookup/1}. Unless `owner' is given
%% the keeping process owns the box, and unless `heir' is given it is the
%% heir: a consumer becomes the owner with {@link claim/1}, and when that
%% consumer dies the box (with what it holds) returns to the keeping
%% process until the restarted consumer claims it again. When the
%% supervisor stops the child, the box is closed and its name freed.
%% Raises `badarg' for options without a name.
-spec child_spec(Opts) -> supervisor:child_spec() when Opts :: options().
child_spec(#{name := Name} = Opts) ->
    #{id => {sluice_box, Name}, start => {?MODULE, start_link, [Opts]}};
child_spec(Opts) ->
    ?BADARG([Opts], 1, "options must be a map with a name").

%% @doc Starts the process keeping the box named by option `name'.
-spec start_link(Opts) -> {ok, pid()} | {error, term()} when Opts :: options().
start_link(Opts) ->
    sluice_box_keeper:start_link(Opts).

%% @doc The box started under `Name' by {@link start_link/1}.
-spec lookup(Name) -> {ok, box()} | {error, not_found} when Name :: term().
lookup(Name) ->
    sluice_box_keeper:lookup(Name).

%% @doc Makes the caller the owner of the box kept under `Name', when its
%% keeper owns it (at start, and after an owner died): the caller gets
%% `{sluice_transfer, Box, Keeper, Name, give_away}'.
-spec claim(Name) -> {ok, box()} | {error, not_found | {owned_by, pid()}} when
      Name :: term().
claim(Name) ->
    sluice_box_keeper:claim(Name).
