%% @doc Benchmark suite `buckets': `sluice_buckets' against `sluice_box'
%% (the cost of slicing by time) and against scanning a list by age (the
%% cost of expiry), in the same run.
%%
%% == Cases ==
%% <ul>
%% <li>`post_take' (`ns_per_op'): one process posts `{event, I, <<0:128>>}'
%%     and takes what it posted in batches of 100, into a buffer of max 1000
%%     it made for the round: ours a buffer of buckets (width 10 ms, max_age
%%     1 s, newest bucket first, LIFO), the reference a `queue' box. One
%%     operation is one post and a hundredth of a take.</li>
%% <li>`post_p2' (`ns_per_op'): two processes post into one shared buffer of
%%     max 1000 that nobody drains (so most posts drop the oldest): the same
%%     two buffers.</li>
%% <li>`expire_100k' (`ns_per_op', one operation = expiring 100 000
%%     messages): ours, a buffer of buckets on a manual clock holding 100 000
%%     messages posted at 0 ms (one bucket), its clock moved past max_age,
%%     then the one `take/2' that finds the bucket expired and drops it
%%     (answering `{[], 0, 100000}'); its storage is freed a few regions per
%%     later call, which a `#' note measures (the calls and time until every
%%     region is gone). The reference scans an Erlang list of the same
%%     100 000 messages tagged with their arrival time and keeps those young
%%     enough (`lists:filter/2'), as a process-backed buffer without buckets
%%     would. 7 rounds each, medians.</li>
%% </ul>
-module(bench_buckets).
-behaviour(bench).

-export([cases/0]).

-define(MAX, 1000).
-define(BATCH, 100).
-define(EXPIRE_N, 100000).
-define(ROUNDS, 7).

%% @doc The cases of this suite (see the module documentation).
-spec cases() -> [{atom(), fun(() -> bench:result())}].
cases() ->
    [{post_take, fun post_take/0},
     {post_p2, fun post_p2/0},
     {expire_100k, fun expire/0}].

%%% Post and take

-spec post_take() -> bench:result().
post_take() ->
    bench:compare(fun(N) -> with_own(fun new_buckets/0, N) end,
                  fun(N) -> with_own(fun new_box/0, N) end,
                  #{ops => 500000}).

%% Makes a buffer owned by the calling process, posts and takes `N'.
-spec with_own(fun(() -> sluice_box:box()), pos_integer()) -> ok.
with_own(New, N) ->
    Buf = New(),
    ok = post_take_loop(N, Buf),
    sluice_box:close(Buf).

-spec post_take_loop(non_neg_integer(), sluice_box:box()) -> ok.
post_take_loop(0, _Buf) ->
    ok;
post_take_loop(N, Buf) ->
    _ = sluice_box:post(Buf, {event, N, <<0:128>>}),
    _ = case N rem ?BATCH of
            0 -> sluice_box:take(Buf, ?BATCH);
            _ -> ok
        end,
    post_take_loop(N - 1, Buf).

-spec post_p2() -> bench:result().
post_p2() ->
    Buckets = new_buckets(),
    Box = new_box(),
    Result = bench:compare(fun(N) -> post_loop(N, Buckets) end,
                           fun(N) -> post_loop(N, Box) end,
                           #{ops => 500000, procs => 2}),
    ok = sluice_box:close(Buckets),
    ok = sluice_box:close(Box),
    Result.

-spec post_loop(non_neg_integer(), sluice_box:box()) -> ok.
post_loop(0, _Buf) ->
    ok;
post_loop(N, Buf) ->
    _ = sluice_box:post(Buf, {event, N, <<0:128>>}),
    post_loop(N - 1, Buf).

-spec new_buckets() -> sluice_box:box().
new_buckets() ->
    {ok, B} = sluice_buckets:new(#{max => ?MAX, width => 10, max_age => 1000}),
    B.

-spec new_box() -> sluice_box:box().
new_box() ->
    {ok, B} = sluice_box:new(#{max => ?MAX, type => queue}),
    B.

%%% Expiry

-spec expire() -> bench:result().
expire() ->
    Msgs = [{event, I, <<I:128>>} || I <- lists:seq(1, ?EXPIRE_N)],
    Rounds = [{expire_ours(Msgs), expire_ref(Msgs)} || _ <- lists:seq(1, ?ROUNDS)],
    {Ours, Refs} = lists:unzip([{Ns, Ref} || {{Ns, _Reap}, Ref} <- Rounds]),
    Reaps = [Reap || {{_, Reap}, _} <- Rounds],
    {Calls, ReapNs} = lists:unzip(Reaps),
    note("buckets/expire_100k: storage freed over ~b later calls taking ~.1f us in all "
         "(medians)", [round(bench:median(Calls)), bench:median(ReapNs) / 1000]),
    {bench:median(Ours), bench:median(Refs), ns_per_op}.

%% Nanoseconds of the take that expires the bucket, and the calls and
%% nanoseconds it then takes to free its storage.
-spec expire_ours([term()]) -> {integer(), {non_neg_integer(), integer()}}.
expire_ours(Msgs) ->
    {ok, B} = sluice_buckets:new(#{max => 2 * ?EXPIRE_N, width => 10, max_age => 5,
                                   clock => manual}),
    _ = [ok = sluice_buckets:post(B, M) || M <- Msgs],
    ok = sluice_buckets:set_time(B, 100),
    garbage_collect(),
    {Ns, {[], 0, ?EXPIRE_N}} = bench:time_ns(fun() -> sluice_buckets:take(B, 1) end),
    Reap = reap(B, 0, 0),
    ok = sluice_buckets:close(B),
    {Ns, Reap}.

%% Calls (empty takes) until the expired bucket's storage is all freed.
-spec reap(sluice_box:box(), non_neg_integer(), integer()) -> {non_neg_integer(), integer()}.
reap(B, Calls, Ns) ->
    case regions(B) of
        0 ->
            {Calls, Ns};
        _ ->
            {T, _} = bench:time_ns(fun() -> sluice_box:post(B, x) end),
            {[x], 1, 0} = sluice_box:take(B, 1),
            reap(B, Calls + 1, Ns + T)
    end.

-spec regions(sluice_box:box()) -> non_neg_integer().
regions(B) ->
    #{regions := Regions} = sluice_nif:box_info(B),
    Regions.

%% Nanoseconds to keep the messages young enough out of a list of 100 000
%% tagged with their arrival time (none is).
-spec expire_ref([term()]) -> integer().
expire_ref(Msgs) ->
    Tagged = [{0, M} || M <- Msgs],
    Now = 100,
    MaxAge = 5,
    garbage_collect(),
    Young = fun({At, _}) -> Now - At =< MaxAge end,
    {Ns, []} = bench:time_ns(fun() -> lists:filter(Young, Tagged) end),
    Ns.

-spec note(io:format(), [term()]) -> ok.
note(Format, Args) ->
    io:format(standard_error, "# " ++ Format ++ "~n", Args).
