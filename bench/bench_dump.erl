%% @doc Benchmark suite `dump': `reckon-dump analyze' on a generated crash
%% dump of about 1 GB, against a reference in this module that reads the
%% dump line by line in Erlang (`file:read_line/1', raw with read-ahead) and
%% computes the same main figures: slogan, memory by type, process count,
%% distinct message-queue lengths with counts, the top processes by memory,
%% ports by type, ETS words, binary count and bytes.
%%
%% == Fixture ==
%% The suite makes a real dump first: a node with a process holding 20 000
%% messages, 300 idle processes, two 4 MiB refc binaries and an ETS table
%% halts with a slogan. The fixture is that dump with its process sections
%% (`=proc', `=proc_dictionary', `=proc_messages', `=proc_stack',
%% `=proc_heap') and binary sections copied again and again (pids renamed
%% `<K.N.0>' per copy) until it passes 1 GiB, then its `=atoms' and `=end'.
%% It is written under `_build/bench', and deleted afterwards.
%%
%% == Cases ==
%% <ul>
%% <li>`analyze_1g_time' (`s'): wall time of one run of each, as OS
%%     processes (`reckon-dump analyze --format json FILE' and
%%     `erl -noshell' running the reference), same fixture, same run.</li>
%% <li>`analyze_1g_rss' (`bytes'): the peak resident set of each of those
%%     processes (GNU time's "maximum resident set size").</li>
%% </ul>
-module(bench_dump).
-behaviour(bench).

-export([cases/0, ref_main/1, ref/1]).

-define(TARGET_BYTES, (1 bsl 30)).
-define(RESULTS, {?MODULE, results}).

%% @doc The cases of this suite (see the module documentation).
-spec cases() -> [{atom(), fun(() -> bench:result())}].
cases() ->
    [{analyze_1g_time, fun() -> {O, R} = results(time), {O, R, s} end},
     {analyze_1g_rss, fun() -> {O, R} = results(rss), {O, R, bytes} end}].

-spec results(time | rss) -> {number(), number()}.
results(What) ->
    #{What := Result} = case persistent_term:get(?RESULTS, undefined) of
                            undefined -> Rs = measure(), persistent_term:put(?RESULTS, Rs), Rs;
                            Rs -> Rs
                        end,
    Result.

-spec measure() -> #{time := {float(), float()}, rss := {integer(), integer()}}.
measure() ->
    {ok, Root} = file:get_cwd(),
    Dir = filename:join([Root, "_build", "bench", "dump"]),
    ok = filelib:ensure_path(Dir),
    Cli = build_cli(Root),
    Small = filename:join(Dir, "small.dump"),
    Big = filename:join(Dir, "big.dump"),
    try
        make_real_dump(Small),
        Bytes = make_fixture(Small, Big),
        io:format(standard_error, "# dump: fixture of ~b bytes from a real dump of ~b~n",
                  [Bytes, filelib:file_size(Small)]),
        %% The fixture's pages written back before either side reads it.
        _ = os:cmd("sync"),
        {OursS, OursKb} = timed(Cli ++ " analyze --format json " ++ Big ++ " > /dev/null"),
        Ebin = filename:dirname(code:which(?MODULE)),
        {RefS, RefKb} = timed("erl -noshell -noinput -pa " ++ Ebin
                              ++ " -eval 'bench_dump:ref_main(\"" ++ Big ++ "\")'"),
        #{time => {OursS, RefS}, rss => {OursKb * 1024, RefKb * 1024}}
    after
        _ = file:delete(Big),
        _ = file:delete(Small)
    end.

-spec build_cli(string()) -> string().
build_cli(Root) ->
    Target = case os:getenv("CARGO_TARGET_DIR") of
                 false -> filename:join(Root, "target");
                 T -> T
             end,
    Out = os:cmd("cargo build --quiet --release --locked -p reckon_cli --target-dir "
                 ++ Target ++ " 2>&1; echo rc=$?"),
    case lists:suffix("rc=0\n", Out) of
        true -> filename:join([Target, "release", "reckon-dump"]);
        false -> error({cargo_build_failed, Out})
    end.

%% Runs `Cmd' under GNU time: wall seconds and peak RSS in KiB.
-spec timed(string()) -> {float(), integer()}.
timed(Cmd) ->
    Stats = filename:join("/tmp", "bench_dump_time." ++ os:getpid()),
    T0 = erlang:monotonic_time(millisecond),
    Out = os:cmd("/usr/bin/time -f '%M' -o " ++ Stats ++ " sh -c '" ++ escape(Cmd) ++ "' 2>&1"),
    Secs = (erlang:monotonic_time(millisecond) - T0) / 1000,
    {ok, Bin} = file:read_file(Stats),
    _ = file:delete(Stats),
    case string:to_integer(string:trim(lists:last(string:lexemes(binary_to_list(Bin), "\n")))) of
        {Kb, _} when is_integer(Kb) -> {Secs, Kb};
        _ -> error({no_rss, Cmd, Out, Bin})
    end.

-spec escape(string()) -> string().
escape(Cmd) -> lists:flatten(string:replace(Cmd, "'", "'\\''", all)).

-spec make_real_dump(string()) -> ok.
make_real_dump(File) ->
    Eval = "P = spawn(fun() -> receive never -> ok end end), register(bigbox, P), "
        "[P ! {msg, N, <<\"payload\">>} || N <- lists:seq(1, 20000)], "
        "[spawn(fun() -> receive never -> ok end end) || _ <- lists:seq(1, 300)], "
        "T = ets:new(tab, [named_table, public]), ets:insert(T, [{N, N} || N <- lists:seq(1, 5000)]), "
        "put(keep, [binary:copy(<<I>>, 4194304) || I <- [1, 2]]), "
        "erlang:halt(\"bench dump\")",
    _ = os:cmd("env -u ERL_FLAGS ERL_CRASH_DUMP=" ++ File ++ " erl -noshell -noinput -eval '"
               ++ Eval ++ "' 2>&1"),
    true = filelib:is_regular(File),
    ok.

%% Writes the fixture; returns its size.
-spec make_fixture(string(), string()) -> non_neg_integer().
make_fixture(Small, Big) ->
    {ok, Dump} = file:read_file(Small),
    [First | Rest] = binary:split(Dump, <<"\n=">>, [global]),
    Sections = [<<"=", S/binary, "\n">> || S <- Rest],
    {Head, Tail} = lists:partition(fun(S) -> not is_tail(S) end, Sections),
    Replicated = [S || S <- Head, is_replicated(S)],
    Parts = binary:split(iolist_to_binary(Replicated), <<"<0.">>, [global]),
    Block = iolist_size(Replicated),
    {ok, F} = file:open(Big, [write, raw, binary, {delayed_write, 4 bsl 20, 2000}]),
    Start = [First, "\n" | Head],
    ok = file:write(F, Start),
    Copies = max(1, (?TARGET_BYTES - iolist_size(Start)) div max(1, Block) + 1),
    _ = [ok = file:write(F, lists:join(["<", integer_to_list(K), "."], Parts))
         || K <- lists:seq(1, Copies)],
    ok = file:write(F, Tail),
    ok = file:close(F),
    filelib:file_size(Big).

-spec is_tail(binary()) -> boolean().
is_tail(<<"=atoms", _/binary>>) -> true;
is_tail(<<"=end", _/binary>>) -> true;
is_tail(_) -> false.

-spec is_replicated(binary()) -> boolean().
is_replicated(<<"=proc", _/binary>>) -> true;
is_replicated(<<"=binary:", _/binary>>) -> true;
is_replicated(_) -> false.

%%% The reference

%% @doc Runs {@link ref/1} on `File', prints a summary and halts.
-spec ref_main(string()) -> no_return().
ref_main(File) ->
    R = ref(File),
    io:format("~p~n", [maps:without([queues], R)]),
    halt(0).

-type ref_state() :: #{sec := atom(), procs := non_neg_integer(),
                       queues := #{non_neg_integer() => pos_integer()},
                       top := [{non_neg_integer(), binary()}], cur := map(),
                       memory := [{binary(), integer()}], ports := #{binary() => integer()},
                       ets_words := non_neg_integer(), bins := non_neg_integer(),
                       bin_bytes := non_neg_integer(), slogan := binary()}.

%% @doc The reference's figures of the dump in `File', read line by line.
-spec ref(string()) -> ref_state().
ref(File) ->
    {ok, F} = file:open(File, [read, raw, binary, {read_ahead, 1 bsl 20}]),
    S0 = #{sec => none, procs => 0, queues => #{}, top => [], cur => #{}, memory => [],
           ports => #{}, ets_words => 0, bins => 0, bin_bytes => 0, slogan => <<>>},
    S = loop(F, S0),
    ok = file:close(F),
    close(S).

-spec loop(file:io_device(), ref_state()) -> ref_state().
loop(F, S) ->
    case file:read_line(F) of
        {ok, Line} -> loop(F, line(binary:part(Line, 0, byte_size(Line) - 1), S));
        eof -> S
    end.

-spec line(binary(), ref_state()) -> ref_state().
line(<<"=", Header/binary>>, S) ->
    S1 = close(S),
    Tag = hd(binary:split(Header, <<":">>)),
    S1#{sec := case Tag of
                   <<"proc">> -> proc;
                   <<"memory">> -> memory;
                   <<"port">> -> port;
                   <<"ets">> -> ets;
                   <<"binary">> -> binary;
                   <<"erl_crash_dump">> -> preamble;
                   _ -> skip
               end,
        cur := #{}};
line(Line, #{sec := binary} = S) ->
    [Hex | _] = binary:split(Line, <<":">>),
    #{bins := N, bin_bytes := B} = S,
    S#{bins := N + 1, bin_bytes := B + binary_to_integer(Hex, 16), sec := skip};
line(_Line, #{sec := Sec} = S) when Sec =:= skip; Sec =:= none ->
    S;
line(Line, #{sec := Sec, cur := Cur} = S) ->
    case binary:split(Line, <<": ">>) of
        [K, V] ->
            case {Sec, K} of
                {preamble, <<"Slogan">>} -> S#{slogan := V};
                {memory, _} -> S#{memory := [{K, binary_to_integer(V)} | maps:get(memory, S)]};
                {proc, <<"Message queue length">>} -> S#{cur := Cur#{queue => binary_to_integer(V)}};
                {proc, <<"Memory">>} -> S#{cur := Cur#{memory => binary_to_integer(V)}};
                {proc, <<"Name">>} -> S#{cur := Cur#{name => V}};
                {port, <<"Port controls linked-in driver">>} -> S#{cur := Cur#{type => V}};
                {ets, <<"Words">>} -> S#{cur := Cur#{words => binary_to_integer(V)}};
                _ -> S
            end;
        _ ->
            S
    end.

%% Closes the record in progress.
-spec close(ref_state()) -> ref_state().
close(#{sec := proc, cur := Cur, procs := N, queues := Qs, top := Top} = S) ->
    Q = maps:get(queue, Cur, 0),
    Mem = maps:get(memory, Cur, 0),
    Top1 = lists:sublist(lists:reverse(lists:sort([{Mem, maps:get(name, Cur, <<>>)} | Top])), 10),
    S#{procs := N + 1, queues := maps:update_with(Q, fun(C) -> C + 1 end, 1, Qs), top := Top1,
       cur := #{}, sec := skip};
close(#{sec := port, cur := Cur, ports := Ps} = S) ->
    T = maps:get(type, Cur, <<"other">>),
    S#{ports := maps:update_with(T, fun(C) -> C + 1 end, 1, Ps), cur := #{}, sec := skip};
close(#{sec := ets, cur := Cur, ets_words := W} = S) ->
    S#{ets_words := W + maps:get(words, Cur, 0), cur := #{}, sec := skip};
close(S) ->
    S.
