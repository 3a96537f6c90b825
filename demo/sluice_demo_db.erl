%% @doc The fake database of the demo's service: a query takes a fixed
%% service time on one of `N' connections, and during the outage it hangs
%% for `hang_ms' and then fails.
%%
%% == Connections ==
%% The connections are plain tokens `{conn, I}'; what bounds the database
%% is the pool that lends them. Two pools:
%% <ul>
%% <li>{@link start_pool/1}: a process that lends connections and queues
%%     every caller while all are out, as a naive pool does: the callers
%%     wait, without limit, in the order they asked.</li>
%% <li>a `sluice_lock' with this module as its callback ({@link init/1},
%%     {@link checkout/2}, ...): `checkout' answers `{error, busy}' instead
%%     of queueing.</li>
%% </ul>
%%
%% == Time ==
%% {@link query/2} takes the database's description, {@link db()}: the
%% run's start (`erlang:monotonic_time(millisecond)'), and the outage as
%% milliseconds since then.
-module(sluice_demo_db).

-export([query/2, in_outage/2, start_pool/1, pool_checkout/1, pool_checkin/2, stop_pool/1]).
%% sluice_lock callbacks
-export([init/1, checkout/2, checkin/2, dead/1, handle_info/2, terminate/2]).
-export_type([db/0, conn/0]).

-type db() :: #{t0 := integer(), service_ms := pos_integer(), hang_ms := pos_integer(),
                outage := {non_neg_integer(), non_neg_integer()} | none,
                cycle_ms => pos_integer()}.
%% `outage' `{From, To}' in ms since `t0' (`none': no outage); with
%% `cycle_ms' the outage comes back every `cycle_ms' ms.
-type conn() :: {conn, pos_integer()}.

%%% Queries

%% @doc One query on `Conn': `ok' after the service time, or, during the
%% outage, `{error, timeout}' after `hang_ms'.
-spec query(Conn, Db) -> ok | {error, timeout} when Conn :: conn(), Db :: db().
query({conn, _}, #{service_ms := Service, hang_ms := Hang} = Db) ->
    case in_outage(Db, erlang:monotonic_time(millisecond)) of
        true ->
            receive after Hang -> {error, timeout} end;
        false ->
            receive after Service -> ok end
    end.

%% @doc Whether the database is down at monotonic time `Now' (ms).
-spec in_outage(Db, Now) -> boolean() when Db :: db(), Now :: integer().
in_outage(#{outage := none}, _Now) ->
    false;
in_outage(#{t0 := T0, outage := {From, To}} = Db, Now) ->
    T = case Db of
            #{cycle_ms := Cycle} -> (Now - T0) rem Cycle;
            #{} -> Now - T0
        end,
    T >= From andalso T < To.

%%% A naive pool: a process with an unbounded queue of waiting callers

%% @doc Starts a pool of `N' connections, linked to the caller.
-spec start_pool(N) -> pid() when N :: pos_integer().
start_pool(N) ->
    spawn_link(fun() -> pool([{conn, I} || I <- lists:seq(1, N)], queue:new()) end).

%% @doc Waits, as long as it takes, for a connection of the pool.
-spec pool_checkout(Pool) -> conn() when Pool :: pid().
pool_checkout(Pool) ->
    %% A reference made just before the send: the receive skips the
    %% messages that were queued before it (the caller's mailbox may be long).
    Ref = make_ref(),
    Pool ! {checkout, self(), Ref},
    receive {Ref, Conn} -> Conn end.

%% @doc Gives a connection back.
-spec pool_checkin(Pool, Conn) -> ok when Pool :: pid(), Conn :: conn().
pool_checkin(Pool, Conn) ->
    Pool ! {checkin, Conn},
    ok.

%% @doc Stops the pool.
-spec stop_pool(Pool) -> ok when Pool :: pid().
stop_pool(Pool) ->
    unlink(Pool),
    exit(Pool, kill),
    ok.

-spec pool([conn()], queue:queue({pid(), reference()})) -> no_return().
pool(Free, Waiting) ->
    receive
        {checkout, Pid, Ref} ->
            case Free of
                [Conn | Rest] ->
                    Pid ! {Ref, Conn},
                    pool(Rest, Waiting);
                [] ->
                    pool(Free, queue:in({Pid, Ref}, Waiting))
            end;
        {checkin, Conn} ->
            case queue:out(Waiting) of
                {{value, {Pid, Ref}}, Rest} ->
                    Pid ! {Ref, Conn},
                    pool(Free, Rest);
                {empty, _} ->
                    pool([Conn | Free], Waiting)
            end
    end.

%%% sluice_lock callbacks: each watcher makes one connection

%% @doc The watcher's state: the connection numbers it hands out.
-spec init(term()) -> {ok, pos_integer()}.
init(_Args) ->
    {ok, erlang:unique_integer([positive])}.

%% @doc The watcher's connection, made ahead of the loans.
-spec checkout(none | pid(), pos_integer()) -> {ok, conn(), pos_integer()}.
checkout(_From, I) ->
    {ok, {conn, I}, I}.

%% @doc A connection handed back for good.
-spec checkin(conn(), pos_integer()) -> {ok, pos_integer()}.
checkin(_Conn, I) ->
    {ok, I}.

%% @doc A holder died with the connection.
-spec dead(pos_integer()) -> {ok, pos_integer()}.
dead(I) ->
    {ok, I}.

%% @doc Other messages to the watcher.
-spec handle_info(term(), pos_integer()) -> {ok, pos_integer()}.
handle_info(_Msg, I) ->
    {ok, I}.

%% @doc The watcher stops.
-spec terminate(term(), pos_integer()) -> ok.
terminate(_Reason, _I) ->
    ok.
