%% The demo's scenario, short: both runs of demo/sluice_demo_service.erl
%% in this node, a few seconds each, and the direction of the result
%% asserted from their measured series; then the report, parsed by an XML
%% parser (Python's xml.etree) and rendered by headless Chromium to a PNG
%% that is looked at.
-module(demo_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, groups/0, init_per_suite/1, end_per_suite/1, init_per_group/2,
         end_per_group/2]).
-export([every_request_accounted_for/1, protected_bounded/1, unprotected_grows/1,
         protected_p99_lower/1, report_is_valid_xml/1, report_rendered/1]).

%% The bounds of the protected run: the longest message queue of the node,
%% and how far node memory may rise above its value at the run's start.
-define(PROTECTED_MAX_MAILBOX, 200).
-define(PROTECTED_MAX_GROWTH_MB, 24.0).
%% The short scenario: the outage from 2 s to 4.5 s.
-define(SHORT, #{seconds => 8, outage => {2000, 4500}, quiet => true}).
-define(WINDOW, "1220,1960").

all() -> [{group, scenario}].

groups() ->
    [{scenario, [sequence],
      [every_request_accounted_for, protected_bounded, unprotected_grows, protected_p99_lower,
       report_is_valid_xml, report_rendered]}].

init_per_suite(Config) ->
    %% The demo's modules are compiled from the project's demo/ into the
    %% suite's private directory (rebar3 may run a copy of this suite
    %% under _build: the project is the first directory above with demo/).
    Src = proplists:get_value(source, ?MODULE:module_info(compile)),
    Demo = demo_dir(filename:dirname(Src)),
    Priv = ?config(priv_dir, Config),
    Ebin = filename:join(Priv, "ebin"),
    ok = filelib:ensure_dir(filename:join(Ebin, "x")),
    Mods = [sluice_demo_db, sluice_demo_service, sluice_demo_report],
    _ = [{ok, M} = compile:file(filename:join(Demo, atom_to_list(M)),
                                [debug_info, {outdir, Ebin}, return_errors])
         || M <- Mods],
    true = code:add_patha(Ebin),
    _ = [begin code:purge(M), {module, M} = code:load_file(M) end || M <- Mods],
    {ok, _} = application:ensure_all_started(sluice),
    {ok, _} = application:ensure_all_started(reckon),
    Config.

demo_dir("/") ->
    ct:fail("no demo/sluice_demo_service.erl above this suite");
demo_dir(Dir) ->
    Demo = filename:join(Dir, "demo"),
    case filelib:is_regular(filename:join(Demo, "sluice_demo_service.erl")) of
        true -> Demo;
        false -> demo_dir(filename:dirname(Dir))
    end.

end_per_suite(_Config) ->
    ok.

init_per_group(scenario, Config) ->
    %% Protected first, so that the unprotected run's garbage cannot weigh
    %% on the protected run's memory.
    Protected = sluice_demo_service:run(protected, ?SHORT),
    erlang:garbage_collect(),
    Unprotected = sluice_demo_service:run(unprotected, ?SHORT),
    [ct:pal("~s: ~p", [M, maps:without([series, options], R)])
     || #{mode := M} = R <- [Unprotected, Protected]],
    [{unprotected, Unprotected}, {protected, Protected} | Config].

end_per_group(_, _Config) ->
    ok.

%%% The measured series

every_request_accounted_for(Config) ->
    Known = #{unprotected => [db_error, unfinished],
              protected => [rate_limited, valve, box_overflow, box_expired, breaker_open,
                            pool_busy, db_error, unfinished]},
    lists:foreach(
      fun(Mode) ->
              #{offered := Offered, served := Served, shed := Shed} = ?config(Mode, Config),
              ?assert(Offered > 1000),
              ?assert(Served > 0),
              ?assertEqual(Offered, Served + lists:sum(maps:values(Shed))),
              ?assertEqual(lists:sort(maps:get(Mode, Known)), lists:sort(maps:keys(Shed)))
      end, [unprotected, protected]),
    %% Unprotected, nothing is refused: what is not served failed or waits.
    #{shed := #{unfinished := Waiting}} = ?config(unprotected, Config),
    ?assert(Waiting > 0),
    %% Protected, the tools shed: at the door, at the boxes, at the breaker.
    #{shed := PShed} = ?config(protected, Config),
    ?assert(maps:get(rate_limited, PShed) > 0),
    ?assert(maps:get(valve, PShed) + maps:get(box_overflow, PShed) > 0),
    ?assert(maps:get(breaker_open, PShed) > 0).

protected_bounded(Config) ->
    #{series := Series, start_memory_mb := Start, peak_memory_mb := Peak,
      peak_mailbox := Mailbox} = ?config(protected, Config),
    ?assertEqual(8, length(Series)),
    ?assert(Mailbox =< ?PROTECTED_MAX_MAILBOX),
    ?assert(Peak - Start =< ?PROTECTED_MAX_GROWTH_MB).

unprotected_grows(Config) ->
    #{series := Series, start_memory_mb := Start, peak_memory_mb := Peak,
      peak_mailbox := Mailbox} = ?config(unprotected, Config),
    #{start_memory_mb := PStart, peak_memory_mb := PPeak} = ?config(protected, Config),
    [#{mailbox := First, memory_mb := FirstMb} | _] = Series,
    #{mailbox := Last, memory_mb := LastMb} = lists:last(Series),
    ?assert(Mailbox > ?PROTECTED_MAX_MAILBOX),
    ?assert(Last > 2 * First),
    ?assert(LastMb > FirstMb),
    ?assert(Peak - Start > PPeak - PStart).

protected_p99_lower(Config) ->
    #{p99_ms := U} = ?config(unprotected, Config),
    #{p99_ms := P} = ?config(protected, Config),
    ?assert(is_float(U) andalso is_float(P)),
    ?assert(P < U).

%%% The report

report_is_valid_xml(Config) ->
    Dir = filename:join(?config(priv_dir, Config), "report"),
    {ok, Index} = sluice_demo_report:write(Dir, [?config(unprotected, Config),
                                                 ?config(protected, Config)]),
    Svgs = filelib:wildcard(filename:join(Dir, "*.svg")),
    ?assertEqual(8, length(Svgs)),
    %% Every file parses; the page shows every chart, each chart draws lines,
    %% axes and a legend, and the outage band is there.
    Check = "import sys, os, xml.etree.ElementTree as ET\n"
            "S = '{http://www.w3.org/2000/svg}'\n"
            "H = '{http://www.w3.org/1999/xhtml}'\n"
            "page = ET.parse(sys.argv[1]).getroot()\n"
            "assert page.tag == H + 'html', page.tag\n"
            "imgs = [i.get('src') for i in page.iter(H + 'img')]\n"
            "assert sorted(imgs) == sorted(os.path.basename(f) for f in sys.argv[2:]), imgs\n"
            "assert len(list(page.iter(H + 'tr'))) > 10\n"
            "for f in sys.argv[2:]:\n"
            "    svg = ET.parse(f).getroot()\n"
            "    assert svg.tag == S + 'svg', f\n"
            "    assert list(svg.iter(S + 'polyline')), f + ': no line'\n"
            "    texts = [t.text for t in svg.iter(S + 'text')]\n"
            "    assert 'time since the start (s)' in texts, f\n"
            "    assert 'outage' in texts, f\n"
            "print('ok', len(imgs))\n",
    {0, Out} = run(python3(), ["-c", Check, Index | Svgs]),
    ?assertEqual("ok 8", string:trim(Out)).

report_rendered(Config) ->
    Priv = ?config(priv_dir, Config),
    Index = filename:join([Priv, "report", "index.html"]),
    ?assert(filelib:is_regular(Index)),
    Chromium = case os:find_executable("chromium") of
                   false -> ct:fail("chromium is not installed (ensure-deps.sh installs it)");
                   C -> C
               end,
    Blank = filename:join(Priv, "blank.html"),
    ok = file:write_file(Blank, "<!DOCTYPE html><html><body></body></html>"),
    Png = render(Chromium, Index, filename:join(Priv, "report.png")),
    BlankPng = render(Chromium, Blank, filename:join(Priv, "blank.png")),
    ct:pal("report.png: ~b bytes, blank.png: ~b bytes", [byte_size(Png), byte_size(BlankPng)]),
    <<137, "PNG", 13, 10, 26, 10, _:4/binary, "IHDR", W:32, H:32, _/binary>> = Png,
    ?assertEqual({1220, 1960}, {W, H}),
    %% Charts and text compress far worse than an empty page.
    ?assert(byte_size(Png) > 5 * byte_size(BlankPng)).

render(Chromium, Html, Png) ->
    Profile = filename:join(filename:dirname(Png), "chromium-profile"),
    {Status, Out} = run(Chromium, ["--headless", "--disable-gpu", "--no-sandbox",
                                   "--hide-scrollbars", "--user-data-dir=" ++ Profile,
                                   "--window-size=" ++ ?WINDOW, "--screenshot=" ++ Png,
                                   "file://" ++ Html]),
    case file:read_file(Png) of
        {ok, Bin} -> Bin;
        {error, Why} -> ct:fail("chromium (exit ~p) wrote no ~s (~p): ~s", [Status, Png, Why, Out])
    end.

python3() ->
    case os:find_executable("python3") of
        false -> ct:fail("python3 is not installed");
        P -> P
    end.

%% Runs an executable; its exit status and output.
run(Exe, Args) ->
    Port = open_port({spawn_executable, Exe},
                     [{args, Args}, exit_status, stderr_to_stdout, binary, hide]),
    collect(Port, []).

collect(Port, Acc) ->
    receive
        {Port, {data, D}} -> collect(Port, [D | Acc]);
        {Port, {exit_status, S}} -> {S, binary_to_list(iolist_to_binary(lists:reverse(Acc)))}
    after 120000 ->
        ct:fail("no answer from a command within 120 s")
    end.
