%% @private
%% @doc The interactive loop of {@link reckon_top}, run in the calling
%% process (a shell's evaluator): it draws frames through the caller's
%% group leader, reads keys in a reader process and reads the node in a
%% gatherer process, one reading at a time.
%%
%% Processes: the reader (linked) asks the group leader for one line at a
%% time and ends by itself after reading `q' (or the end of input), so no
%% read is left pending on the shell. The gatherer (linked, and monitored)
%% catches whatever its reading raises and sends it back; it is unlinked
%% and killed when the view changes or the loop ends, and the loop then
%% waits for it and for the helpers that monitor it (the scan's process of
%% `reckon_scan', the flag holder of `reckon:scheduler_usage/1'), which
%% end on its death. The caller's exit handling is left as it is: it does
%% not trap exits, so if it is killed, the reader and the gatherer die
%% with it.
-module(reckon_top_loop).

-export([run/1, terminal/2]).

-define(PROMPT, "reckon_top> ").
%% How long the loop waits for a killed gatherer's helpers (they end on
%% its death; one may first finish the sample it is reading).
-define(HELPER_WAIT, 10000).

-type term_info() :: #{width := pos_integer(), rows := pos_integer(), colour := boolean(),
                       unicode := boolean(), ansi := boolean()}.
-type state() :: #{gl := pid(), term := term_info(), reader := pid(),
                   view := reckon_top_render:view(), interval := pos_integer(),
                   sort := reckon_top:sort(), last := reckon_top_render:snapshot() | undefined,
                   gatherer := {pid(), reference(), reference()} | undefined,
                   timer := reference() | undefined, message := string()}.

%% @doc Runs the dashboard until `q', the end of input, or output that
%% fails (the shell went away); `Opts' are validated and complete.
-spec run(map()) -> ok.
run(#{interval := Interval, view := View, sort := Sort, colour := Colour}) ->
    GL = group_leader(),
    Term = terminal(GL, Colour),
    Self = self(),
    Reader = spawn_link(fun() -> read_keys(Self, GL) end),
    ReaderRef = erlang:monitor(process, Reader),
    S0 = #{gl => GL, term => Term, reader => Reader, view => View, interval => Interval,
           sort => Sort, last => undefined, gatherer => undefined, timer => undefined,
           message => ""},
    {S, Wait} = try {loop(start_view(S0)), ?HELPER_WAIT}
                catch
                    throw:{?MODULE, output_failed, S1} -> {S1, 0};
                    Class:Why:Stack ->
                        stop_reading(Reader, ReaderRef, 0),
                        erlang:raise(Class, Why, Stack)
                end,
    _ = stop(S),
    stop_reading(Reader, ReaderRef, Wait),
    _ = catch io:put_chars(GL, "reckon_top: stopped\n"),
    ok.

%% @doc What the terminal behind group leader `GL' can do: its width (at
%% least 80) and height, colours (`auto': when `io:columns/1' answers and
%% `TERM' on the group leader's node is not `dumb'), Unicode output, and
%% whether frames may clear the screen (when `io:columns/1' answers).
-spec terminal(pid(), auto | boolean()) -> term_info().
terminal(GL, Colour) ->
    Columns = io:columns(GL),
    Ansi = element(1, Columns) =:= ok,
    Width = case Columns of
                {ok, W} -> max(80, W);
                _ -> 80
            end,
    Rows = case io:rows(GL) of
               {ok, R} -> max(10, R);
               _ -> 24
           end,
    Unicode = case io:getopts(GL) of
                  Opts when is_list(Opts) -> proplists:get_value(encoding, Opts) =:= unicode;
                  _ -> false
              end,
    Coloured = case Colour of
                   auto -> Ansi andalso term_env(node(GL)) =/= "dumb";
                   C -> C
               end,
    #{width => Width, rows => Rows, colour => Coloured, unicode => Unicode, ansi => Ansi}.

-spec term_env(node()) -> string() | false.
term_env(Node) when Node =:= node() ->
    os:getenv("TERM");
term_env(Node) ->
    try erpc:call(Node, os, getenv, ["TERM"], 2000)
    catch _:_ -> false
    end.

%%% Loop

-spec loop(state()) -> state().
loop(#{reader := Reader, gatherer := Gatherer, timer := Timer} = S) ->
    receive
        {Reader, key, Line} ->
            case key(Line, S) of
                {quit, S1} -> S1;
                {ok, S1} -> loop(S1)
            end;
        {Tag, gathered, Result} when element(3, Gatherer) =:= Tag ->
            {G, MRef, Tag} = Gatherer,
            unlink(G),
            receive {'DOWN', MRef, process, G, _} -> ok end,
            loop(gathered(Result, S#{gatherer := undefined}));
        {'DOWN', MRef, process, _, Why} when element(2, Gatherer) =:= MRef ->
            loop(gathered({error, exit, Why}, S#{gatherer := undefined}));
        {timeout, Timer, refresh} ->
            loop(gather(S#{timer := undefined}))
    end.

%% A reading arrived: draw it and start the next (now for a windowed view,
%% after the interval otherwise).
-spec gathered({ok, map() | not_running} | {error, atom(), term()}, state()) -> state().
gathered(Result, #{view := View, sort := Sort} = S) ->
    case Result of
        {ok, Data} ->
            S1 = draw(S#{last := snapshot(S, Data)}),
            %% A message is shown on one frame.
            next(reckon_top_gather:windowed(View, Sort), S1#{message := ""});
        {error, Class, Why} ->
            Msg = lists:flatten(io_lib:format("reading the node failed: ~0tP",
                                              [{Class, Why}, 12])),
            %% Tried again after the interval, never at once.
            next(false, redraw(S#{message := Msg}))
    end.

%% Starts the next reading: now (windowed), or after the interval.
-spec next(boolean(), state()) -> state().
next(true, S) ->
    gather(S);
next(false, #{interval := Ms} = S) ->
    S#{timer := erlang:start_timer(Ms, self(), refresh)}.

-spec snapshot(state(), term()) -> reckon_top_render:snapshot().
snapshot(#{view := View, interval := Ms, sort := Sort, message := Msg}, Data) ->
    #{view => View, node => node(), time => time(), interval => Ms, sort => Sort,
      data => Data, message => Msg}.

%% Starts a reading of the current view.
-spec gather(state()) -> state().
gather(#{view := View, interval := Ms, sort := Sort, term := #{rows := Rows}} = S) ->
    Self = self(),
    Ctx = #{interval => Ms, sort => Sort, rows => max(5, min(99, Rows - 10))},
    Tag = make_ref(),
    {G, MRef} = spawn_opt(fun() ->
                                  Result = try {ok, reckon_top_gather:gather(View, Ctx)}
                                           catch C:W -> {error, C, W}
                                           end,
                                  Self ! {Tag, gathered, Result}
                          end, [link, monitor]),
    S#{gatherer := {G, MRef, Tag}}.

%% Switches to the current view: stops any reading, draws the view
%% (sampling, for a windowed one) and starts reading.
-spec start_view(state()) -> state().
start_view(#{view := View, sort := Sort} = S) ->
    S1 = stop(S),
    S2 = S1#{last := snapshot(S1, sampling)},
    S3 = case reckon_top_gather:windowed(View, Sort) of
             true -> draw(S2);
             false -> S2
         end,
    gather(S3).

%%% Keys

-spec key(string() | eof, state()) -> {ok | quit, state()}.
key(eof, S) ->
    {quit, S};
key(Line, S) ->
    case string:trim(Line) of
        "q" -> {quit, S};
        "" -> {ok, redraw(S#{message := ""})};
        Key -> {ok, key1(Key, S#{message := ""})}
    end.

-spec key1(string(), state()) -> state().
key1(Key, #{interval := Ms} = S) ->
    Views = #{"h" => home, "p" => processes, "n" => ports, "e" => ets, "a" => alloc,
              "s" => sluice},
    Sorts = #{"r" => reductions, "m" => memory, "l" => message_queue_len},
    case {Views, Sorts} of
        {#{Key := View}, _} -> start_view(S#{view := View});
        {_, #{Key := Sort}} -> start_view(S#{view := processes, sort := Sort});
        _ when Key =:= "+" -> redraw(S#{interval := min(3600000, Ms + 1000)});
        _ when Key =:= "-" -> redraw(S#{interval := max(1000, Ms - 1000)});
        _ -> row(Key, S)
    end.

%% A row number in the processes view shows that process.
-spec row(string(), state()) -> state().
row(Key, #{last := Last} = S) ->
    case {string:to_integer(Key), Last} of
        {{N, ""}, #{view := processes, data := #{rows := Rows}}} when N >= 1, N =< length(Rows) ->
            #{pid := Pid} = lists:nth(N, Rows),
            start_view(S#{view := {process, Pid}});
        _ ->
            redraw(S#{message := "unknown key: " ++ reckon_top_render:term(Key, 20)
                      ++ " (keys below, each then Enter)"})
    end.

%%% Drawing

-spec redraw(state()) -> state().
redraw(#{last := Last, interval := Ms, message := Msg, sort := Sort} = S) ->
    draw(S#{last := Last#{interval := Ms, message => Msg, sort := Sort}}).

-spec draw(state()) -> state().
draw(#{gl := GL, term := #{ansi := Ansi} = T0, last := Snap} = S) ->
    %% The terminal may have been resized since the last frame.
    T = resized(GL, T0),
    Lines = reckon_top_render:frame(Snap, maps:with([width, rows, colour, unicode], T)),
    Clear = case Ansi of
                true -> <<"\e[H\e[2J">>;
                false -> <<"\n">>
            end,
    case catch io:put_chars(GL, [Clear, lists:join($\n, Lines), $\n]) of
        ok -> S#{term := T};
        %% The shell went away (a remote shell closed): stop, cleanly.
        _ -> throw({?MODULE, output_failed, S})
    end.

-spec resized(pid(), term_info()) -> term_info().
resized(GL, #{ansi := true} = T) ->
    case {io:columns(GL), io:rows(GL)} of
        {{ok, W}, {ok, R}} -> T#{width := max(80, W), rows := max(10, R)};
        _ -> T
    end;
resized(_GL, T) ->
    T.

%%% Reader

%% Reads lines from `GL' and sends them to `Loop' until `q' or the end.
-spec read_keys(pid(), pid()) -> ok.
read_keys(Loop, GL) ->
    case io:get_line(GL, ?PROMPT) of
        Line when is_list(Line) ->
            Loop ! {self(), key, Line},
            case string:trim(Line) of
                "q" -> ok;
                _ -> read_keys(Loop, GL)
            end;
        Line when is_binary(Line) ->
            read_keys_bin(Loop, GL, unicode:characters_to_list(Line));
        _EofOrError ->
            Loop ! {self(), key, eof},
            ok
    end.

-spec read_keys_bin(pid(), pid(), string()) -> ok.
read_keys_bin(Loop, GL, Line) ->
    Loop ! {self(), key, Line},
    case string:trim(Line) of
        "q" -> ok;
        _ -> read_keys(Loop, GL)
    end.

%%% Stopping

%% Stops the reading in progress and the refresh timer; waits for the
%% gatherer and its helpers to be gone.
-spec stop(state()) -> state().
stop(#{gatherer := Gatherer, timer := Timer} = S) ->
    case Timer of
        undefined -> ok;
        _ -> _ = erlang:cancel_timer(Timer),
             receive {timeout, Timer, refresh} -> ok after 0 -> ok end
    end,
    case Gatherer of
        undefined -> ok;
        {G, MRef, Tag} -> kill_gatherer(G, MRef, Tag)
    end,
    S#{gatherer := undefined, timer := undefined}.

-spec kill_gatherer(pid(), reference(), reference()) -> ok.
kill_gatherer(G, MRef, Tag) ->
    Helpers = case erlang:process_info(G, monitored_by) of
                  {monitored_by, Ps} -> [P || P <- Ps, is_pid(P), P =/= self()];
                  undefined -> []
              end,
    unlink(G),
    exit(G, kill),
    receive {'DOWN', MRef, process, G, _} -> ok end,
    receive {Tag, gathered, _} -> ok after 0 -> ok end,
    Refs = [{P, erlang:monitor(process, P)} || P <- Helpers],
    [receive {'DOWN', R, process, P, _} -> ok
     after ?HELPER_WAIT -> erlang:demonitor(R, [flush])
     end || {P, R} <- Refs],
    ok.

%% Waits up to `Wait' ms for the reader to end (it ends after `q' or the
%% end of input), then stops it.
-spec stop_reading(pid(), reference(), non_neg_integer()) -> ok.
stop_reading(Reader, Ref, Wait) ->
    receive
        {'DOWN', Ref, process, Reader, _} -> ok
    after Wait ->
            unlink(Reader),
            exit(Reader, kill),
            receive {'DOWN', Ref, process, Reader, _} -> ok end
    end,
    flush_keys(Reader).

-spec flush_keys(pid()) -> ok.
flush_keys(Reader) ->
    receive {Reader, key, _} -> flush_keys(Reader)
    after 0 -> ok
    end.
