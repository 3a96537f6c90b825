%% Common Test suite of reckon_rec: record definitions imported from a
%% module's debug info, listed, forgotten, kept node-wide (a crash of the
%% importing process loses nothing), and used by the trace formatter.
-module(reckon_rec_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2, end_per_testcase/2]).
-export([import_list_clear/1, same_name_from_two_modules/1, survives_the_importer/1,
         formatted_by_name/1, no_debug_info/1, bad_arguments/1]).

-record(point, {x :: term(), y = 0 :: term()}).
-record(empty, {}).

all() ->
    [import_list_clear, same_name_from_two_modules, survives_the_importer, formatted_by_name,
     no_debug_info, bad_arguments].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(reckon),
    Config.

end_per_suite(_Config) ->
    ok.

init_per_testcase(_Case, Config) ->
    ok = reckon_rec:clear(),
    Config.

end_per_testcase(_Case, _Config) ->
    ok = reckon_rec:clear().

import_list_clear(_Config) ->
    _ = #point{}, _ = #empty{},
    ?assertEqual([{imported, ?MODULE, point, 3}, {imported, ?MODULE, empty, 1}],
                 reckon_rec:import(?MODULE)),
    ?assertEqual([{{empty, 1}, ?MODULE, []}, {{point, 3}, ?MODULE, [x, y]}],
                 reckon_rec:get_list()),
    ok = reckon_rec:clear(other_module),
    ?assertEqual(2, length(reckon_rec:get_list())),
    ok = reckon_rec:clear(?MODULE),
    ?assertEqual([], reckon_rec:get_list()),
    _ = reckon_rec:import([?MODULE]),
    ok = reckon_rec:clear(),
    ?assertEqual([], reckon_rec:get_list()).

%% reckon_trace_SUITE has a `point' record of the same size: the first one
%% imported is kept.
same_name_from_two_modules(_Config) ->
    [_, _] = reckon_rec:import(?MODULE),
    ?assertEqual([{ignored, reckon_trace_SUITE, point, 3, ?MODULE}],
                 reckon_rec:import(reckon_trace_SUITE)),
    ?assertEqual([{{empty, 1}, ?MODULE, []}, {{point, 3}, ?MODULE, [x, y]}],
                 reckon_rec:get_list()).

survives_the_importer(_Config) ->
    {Pid, Ref} = spawn_monitor(fun() -> _ = reckon_rec:import(?MODULE), exit(crash) end),
    receive {'DOWN', Ref, process, Pid, crash} -> ok end,
    ?assertEqual(2, length(reckon_rec:get_list())).

formatted_by_name(_Config) ->
    Msg = {trace, self(), call, {m, f, [#point{x = 1, y = 2}, #empty{}, {point, 1}]}},
    Line = fun() ->
                   Out = iolist_to_binary(reckon_trace:format(Msg)),
                   {match, [Rest]} = re:run(Out, "^\\S+ \\S+ (.*)\n$", [{capture, all_but_first, binary}]),
                   Rest
           end,
    Before = Line(),
    _ = reckon_rec:import(?MODULE),
    ?assertEqual(<<"m:f({point,1,2}, {empty}, {point,1})">>, Before),
    ?assertEqual(<<"m:f(#point{x = 1,y = 2}, #empty{}, {point,1})">>, Line()).

no_debug_info(_Config) ->
    %% A preloaded module has no beam file to read: nothing is imported.
    ?assertEqual([], reckon_rec:import(erlang)),
    ?assertEqual([], reckon_rec:import(no_such_module_at_all)).

bad_arguments(_Config) ->
    ?assertError(badarg, reckon_rec:import("mod")),
    ?assertError(badarg, reckon_rec:import([a, "b"])),
    ?assertError(badarg, reckon_rec:clear("mod")).
