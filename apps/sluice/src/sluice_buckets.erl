%% @doc Time-bucketed buffers (Erlang in Anger, 3.3.4): messages are kept in
%% buckets of `width' milliseconds of arrival time, and a bucket whose newest
%% message is older than `max_age' is dropped whole, counted as `expired',
%% without looking at its messages one by one.
%%
%% A buffer of buckets is used exactly like a {@link sluice_box}: the same
%% handle type, owner, heir, delivery (`take', `notify', `active' with
%% pobox's message shapes) and `info'; this module only makes one and
%% posts into it, and forwards the rest to `sluice_box', so an owner can
%% swap one for the other.
%%
%% == Options ==
%% <ul>
%% <li>`max' (mandatory): most messages held. A post into a full buffer
%%     drops the oldest message held (`when_full => drop_oldest', the
%%     default) or the new one (`drop_new'), counted as `overflow'.</li>
%% <li>`width' (mandatory): milliseconds of arrival time per bucket.</li>
%% <li>`max_age' (default `infinity'): milliseconds after which a bucket
%%     with no newer message is dropped whole.</li>
%% <li>`order' (default `newest_first'): deliver the newest bucket first, as
%%     the book suggests for consumers that want fresh data, or
%%     `oldest_first'.</li>
%% <li>`within' (default `lifo'): inside a bucket, newest first (a stack per
%%     slice of time) or `fifo'.</li>
%% <li>`owner', `heir', `heir_data': as for `sluice_box'.</li>
%% <li>`clock' (default `system'): `manual' makes the buffer ignore the
%%     system clock; its time (ms, starting at 0) moves only by
%%     {@link set_time/2}. For tests and simulations.</li>
%% </ul>
%%
%% == Cost ==
%% Expiry runs on the path of a post or a take, before anything else, and
%% costs O(1) per expired bucket: the expired buckets are the oldest ones,
%% each removed whole. Their storage is freed a few regions per later call
%% (and at close), never in one long call. Expiry is lazy: a buffer nobody
%% posts into or takes from keeps its expired buckets (counted in `size')
%% until the next call, unless its owner asked for drop notices
%% ({@link drop_notices/2}), whose timer expires them first.
-module(sluice_buckets).

-export([new/1, post/2, set_time/2, take/2, notify/1, active/1, active/3, resize/2,
         usage/1, info/1, give_away/3, close/1, drop_notices/2]).
-export_type([buckets/0, options/0]).

-type buckets() :: sluice_box:box().
%% A buffer of buckets: a {@link sluice_box:box()} handle, used with this
%% module's functions or with `sluice_box''s.
-type options() :: #{max := pos_integer(), width := pos_integer(),
                     max_age => pos_integer() | infinity,
                     order => newest_first | oldest_first, within => lifo | fifo,
                     when_full => drop_oldest | drop_new, owner => pid(),
                     heir => sluice_box:heir(), heir_data => term(),
                     clock => system | manual, initial_state => passive | notify}.
%% `max' and `width' (mandatory), `max_age' (default `infinity'), `order'
%% (default `newest_first'), `within' (default `lifo'), `when_full'
%% (default `drop_oldest'), `owner', `heir', `heir_data', `initial_state'
%% (as for {@link sluice_box:options()}) and `clock' (default `system'):
%% see "Options" above.


%% @doc Creates a buffer of buckets (see the module documentation).
-spec new(Opts) -> {ok, buckets()} | {error, {bad_option, term()}} when Opts :: options().
new(Opts) ->
    case sluice_box_opts:buckets(Opts) of
        {ok, #{owner := Owner, heir := Heir, heir_data := HeirData} = Full} ->
            case sluice_box_opts:made(sluice_nif:buckets_new(sluice_box_opts:nif_buckets(Full))) of
                {ok, Ref} -> {ok, sluice_box:adopt(Ref, false, Owner, Heir, HeirData)};
                {error, _} = Refused -> Refused
            end;
        {error, _} = Error ->
            Error
    end.

%% @doc Offers `Msg': `ok' (stored), `full' (a message was dropped to keep
%% the bound), `{error, closed}'. Expired buckets go first.
-spec post(Buckets, Msg) -> ok | full | {error, closed} when
      Buckets :: buckets(),
      Msg :: term().
post(Buckets, Msg) ->
    sluice_box:post(Buckets, Msg).

%% @doc As {@link sluice_box:set_time/2}: moves a manual clock.
-spec set_time(Buckets, Ms) -> ok when Buckets :: buckets(), Ms :: non_neg_integer().
set_time(Buckets, Ms) ->
    sluice_box:set_time(Buckets, Ms).

%% @doc As {@link sluice_box:take/2}.
-spec take(Buckets, N) ->
    {[term()], non_neg_integer(), non_neg_integer()} | {error, not_owner | closed} when
      Buckets :: buckets(),
      N :: pos_integer().
take(Buckets, N) ->
    sluice_box:take(Buckets, N).

%% @doc As {@link sluice_box:notify/1}.
-spec notify(Buckets) -> ok | {error, not_owner | closed} when Buckets :: buckets().
notify(Buckets) ->
    sluice_box:notify(Buckets).

%% @doc As {@link sluice_box:active/1}.
-spec active(Buckets) -> ok | {error, not_owner | closed} when Buckets :: buckets().
active(Buckets) ->
    sluice_box:active(Buckets).

%% @doc As {@link sluice_box:active/3}.
-spec active(Buckets, Filter, FilterState) -> ok | {error, not_owner | closed} when
      Buckets :: buckets(),
      Filter :: sluice_box:filter(),
      FilterState :: term().
active(Buckets, Filter, FilterState) ->
    sluice_box:active(Buckets, Filter, FilterState).

%% @doc As {@link sluice_box:resize/2}.
-spec resize(Buckets, Max) -> ok | {error, closed} when
      Buckets :: buckets(),
      Max :: pos_integer().
resize(Buckets, Max) ->
    sluice_box:resize(Buckets, Max).

%% @doc As {@link sluice_box:usage/1}.
-spec usage(Buckets) -> {non_neg_integer(), pos_integer()} when Buckets :: buckets().
usage(Buckets) ->
    sluice_box:usage(Buckets).

%% @doc As {@link sluice_box:info/1}; `type' is `buckets'.
-spec info(Buckets) -> sluice_box:info() when Buckets :: buckets().
info(Buckets) ->
    sluice_box:info(Buckets).

%% @doc As {@link sluice_box:give_away/3}.
-spec give_away(Buckets, NewOwner, Data) ->
    ok | {error, not_owner | closed | noproc | not_local} when
      Buckets :: buckets(),
      NewOwner :: pid(),
      Data :: term().
give_away(Buckets, NewOwner, Data) ->
    sluice_box:give_away(Buckets, NewOwner, Data).

%% @doc As {@link sluice_box:drop_notices/2}.
-spec drop_notices(Buckets, Interval) -> ok | {error, not_owner | closed} when
      Buckets :: buckets(),
      Interval :: pos_integer() | off.
drop_notices(Buckets, Interval) ->
    sluice_box:drop_notices(Buckets, Interval).

%% @doc As {@link sluice_box:close/1}.
-spec close(Buckets) -> ok | {error, not_owner} when Buckets :: buckets().
close(Buckets) ->
    sluice_box:close(Buckets).
