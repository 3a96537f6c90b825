%% Fuzzing every exported function of every public sluice module with
%% generated arguments: valid ones, wrong types, improper lists, huge
%% integers, handles of another kind, forged tuples shaped like handles,
%% remote-looking and dead pids, closed and deleted handles, option maps
%% with one bad key or value.
%%
%% For every call (each in a process of its own, killed afterwards, so
%% what it links to goes with it), the suite asserts that the reply matches
%% the function's `-spec' (see sluice_spec_check) or the call raised
%% `badarg' in the caller, that the call returned within 5 s, and that no
%% sluice server restarted. After all the calls, every tool still answers.
%% SLUICE_FUZZ_RUNS sets the number of calls (default 20 000).
-module(sluice_fuzz_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include_lib("proper/include/proper.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([every_function/1, survey/1]).

-define(MODULES, [sluice, sluice_drop, sluice_box, sluice_buckets, sluice_lock, sluice_limit,
                  sluice_group, sluice_breaker]).
%% Exported for sluice's own modules, not for users.
-define(INTERNAL, [{sluice_box, adopt, 5}]).
-define(CALL_TIMEOUT, 5000).

all() -> [every_function].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(sasl),
    {ok, _} = application:ensure_all_started(sluice),
    Config.

end_per_suite(_Config) ->
    ok.

%%% The case

every_function(_Config) ->
    Runs = case os:getenv("SLUICE_FUZZ_RUNS") of
               false -> 20000;
               N -> list_to_integer(N)
           end,
    {Pool, Funs, Specs, Tree, Tally} = setup(),
    Prop = ?FORALL(Call, call(Funs, Pool),
                   ?WHENFAIL(ct:pal("failing call: ~p", [Call]),
                             check(Call, Specs, Tree, Tally))),
    {Time, Result} = timer:tc(proper, quickcheck,
                              [Prop, [{numtests, Runs}, quiet, {max_size, 20}]]),
    Counts = lists:sort(ets:tab2list(Tally)),
    ct:pal("~p calls in ~.1f s; outcomes: ~p", [Runs, Time / 1.0e6, Counts]),
    ?assertEqual(true, Result),
    ?assertEqual(Tree, tree()),
    still_answers(),
    ok.

%% @doc For a developer's shell (the application started): `N' generated
%% calls without stopping at the first wrong one; the wrong outcomes by
%% function and kind, and how many calls each outcome had.
survey(N) ->
    {Pool, Funs, Specs, Tree, Tally} = setup(),
    put(quiet, true),
    {ok, Calls} = proper_gen:pick(vector(N, call(Funs, Pool)), 20),
    proper:global_state_erase(),
    Wrong = lists:foldl(
              fun({M, F, Args} = Call, Acc) ->
                      put(last_call, Call),
                      case check(Call, Specs, Tree, Tally) of
                          true -> Acc;
                          false -> maps:update_with({M, F, length(Args)}, fun(X) -> X + 1 end,
                                                    1, Acc)
                      end
              end, #{}, Calls),
    {lists:sort(maps:to_list(Wrong)), lists:sort(ets:tab2list(Tally))}.

%% The pool of values, the functions called, their specs, the servers'
%% pids now, and a table counting outcomes.
setup() ->
    Funs = [{M, F, A} || M <- ?MODULES, {F, A} <- M:module_info(exports),
                         F =/= module_info, F =/= behaviour_info,
                         not lists:member({M, F, A}, ?INTERNAL)],
    Specs = maps:from_list([{M, sluice_spec_check:specs(M)} || M <- ?MODULES]),
    {pool(), Funs, Specs, tree(), ets:new(fuzz_tally, [public, set])}.

%% Runs one call in a process of its own; true when its outcome is allowed.
check({M, F, Args}, Specs, Tree, Tally) ->
    Parent = self(),
    {Pid, Mon} = spawn_monitor(
                   fun() ->
                           Out = try {ok, apply(M, F, Args)}
                                 catch Class:Reason:Stack -> {raised, Class, Reason, Stack}
                                 end,
                           Parent ! {self(), Out},
                           receive stop -> ok end
                   end),
    Outcome = receive
                  {Pid, Out} -> Out;
                  {'DOWN', Mon, process, Pid, Why} -> {died, Why}
              after ?CALL_TIMEOUT ->
                      io:format(standard_error, "timeout: ~P~n", [{M, F, Args}, 20]),
                      timeout
              end,
    exit(Pid, kill),
    _ = case Outcome of
            {died, _} -> ok;
            _ -> receive {'DOWN', Mon, process, Pid, _} -> ok end
        end,
    Verdict = verdict(M, F, Args, Outcome, Specs),
    _ = ets:update_counter(Tally, Verdict, 1, {Verdict, 0}),
    Same = Tree =:= tree(),
    Same orelse report(restart, "a sluice server restarted after ~p:~p~p", [M, F, Args]),
    Allowed = Verdict =/= wrong,
    Allowed orelse report({M, F, length(Args)}, "~p:~p~p: ~P", [M, F, Args, Outcome, 30]),
    Allowed andalso Same.

%% Quiet (in a survey), only the first report of each kind is printed.
report(Kind, Format, Args) ->
    case get(quiet) =:= true andalso put({reported, Kind}, true) =:= true of
        true -> ok;
        false -> ct:pal(Format, Args)
    end.

%% `replied', `badarg' (with or without an error_info message) or `wrong'.
verdict(M, F, Args, {ok, Reply}, Specs) ->
    case sluice_spec_check:returns(maps:get(M, Specs), {F, length(Args)}, Reply) of
        true -> replied;
        false -> wrong
    end;
verdict(_M, _F, _Args, {raised, error, badarg, [{_, _, _, Info} | _]}, _Specs) ->
    case proplists:get_value(error_info, Info) of
        undefined -> bare_badarg;
        _ -> badarg
    end;
verdict(_M, _F, _Args, _Outcome, _Specs) ->
    wrong.

%% The pids of sluice's servers: their supervisors' children, except the
%% dynamic ones (each lock's supervisor, each valve's regulator).
tree() ->
    Children = fun(Sup) -> [{Id, Pid} || {Id, Pid, _, _} <- supervisor:which_children(Sup)] end,
    lists:sort(Children(sluice_sup) ++ Children(sluice_drop_sup)).

%% Fresh handles of every tool work, and the old servers answer.
still_answers() ->
    {ok, V} = sluice_drop:new({fuzz, after_valve}, #{}),
    ok = sluice_drop:ask(V),
    {ok, B} = sluice_box:new(#{max => 10}),
    ok = sluice_box:post(B, after_fuzz),
    {[after_fuzz], 1, 0} = sluice_box:take(B, 10),
    ok = sluice_box:close(B),
    {ok, Bu} = sluice_buckets:new(#{max => 10, width => 100}),
    ok = sluice_buckets:post(Bu, x),
    ok = sluice_buckets:close(Bu),
    {ok, L} = sluice_lock:new(#{resources => 1, callback => {sluice_test_lock, []}}),
    ok = wait_until(fun() -> element(1, sluice_lock:checkout(L)) =:= ok end),
    ok = sluice_lock:close(L),
    {ok, R} = sluice_limit:new_rate(#{limit => 10}),
    ok = sluice_limit:check(R, key),
    {ok, C} = sluice_limit:new_concurrency(#{max => 1}),
    ok = sluice_limit:run(C, fun() -> ok end),
    W = spawn(fun() -> receive stop -> ok end end),
    ok = sluice_group:join({fuzz, after_group}, W),
    {ok, W} = sluice_group:pick({fuzz, after_group}),
    ok = sluice_breaker:install({fuzz, after_breaker}, #{}),
    ok = sluice_breaker:ask({fuzz, after_breaker}, sync),
    ok = sluice_breaker:remove({fuzz, after_breaker}),
    ok = sluice_drop:delete({fuzz, after_valve}),
    W ! stop,
    ok.

wait_until(Fun) -> wait_until(Fun, 200).
wait_until(Fun, 0) -> true = Fun(), ok;
wait_until(Fun, N) ->
    case Fun() of
        true -> ok;
        false -> timer:sleep(10), wait_until(Fun, N - 1)
    end.

%%% Generators

call(Funs, Pool) ->
    ?LET({M, F, A}, elements(Funs), {M, F, vector(A, arg(Pool))}).

arg(#{values := Values, options := Options}) ->
    frequency([{6, elements(Values)},
               {3, elements(Options)},
               {2, ?LET({Base, Key, Value}, {elements(Options), elements(option_keys()),
                                             elements(Values)},
                        case is_map(Base) of
                            true -> Base#{Key => Value};
                            false -> Base
                        end)},
               {1, ?LET(L, list(elements(Values)), L)},
               {1, ?LET({L, T}, {non_empty(list(elements(Values))), elements(Values)},
                        improper(L, T))}]).

improper([Last], Tail) -> [Last | Tail];
improper([H | T], Tail) -> [H | improper(T, Tail)].

option_keys() ->
    [max, type, owner, heir, heir_data, max_bytes, name, max_age, codel, red_min, red_max,
     red_prob, clock, width, order, within, when_full, resources, callback, max_resources,
     maxr, maxt, init_timeout, limit, period, burst, global, max_keys, max_holders, rate,
     rates, regulate, signal, low, high, min_rate, interval, priorities, strategy, reset,
     probes, backoff, max_reset, jitter, slow, brust, resett, <<"max">>, {max}, 42].

%% Values the generators draw from: live, closed and deleted handles of
%% every kind, forgeries, and plain terms of every type.
pool() ->
    Self = self(),
    {ok, Valve} = sluice_drop:new({fuzz, valve}, #{rates => #{low => 0.5}}),
    {ok, Deleted} = sluice_drop:new({fuzz, deleted}, #{}),
    ok = sluice_drop:delete(Deleted),
    Worker = spawn(fun() -> receive stop -> ok end end),
    {ok, Box} = sluice_box:new(#{max => 50, owner => Worker}),
    {ok, Sized} = sluice_box:new(#{max => 50, max_bytes => 10000, owner => Worker}),
    {ok, Closed} = sluice_box:new(#{max => 5}),
    ok = sluice_box:close(Closed),
    {ok, Buckets} = sluice_buckets:new(#{max => 50, width => 10, owner => Worker}),
    {ok, Lock} = sluice_lock:new(#{resources => 2, callback => {sluice_test_lock, []}}),
    {ok, ClosedLock} = sluice_lock:new(#{resources => 1, callback => {sluice_test_lock, []}}),
    ok = sluice_lock:close(ClosedLock),
    {ok, Limiter} = sluice_limit:new_rate(#{limit => 100, max_keys => 64}),
    {ok, Limit} = sluice_limit:new_concurrency(#{max => 3}),
    {ok, Token} = sluice_limit:acquire(Limit),
    {ok, Sup} = sluice_test_sup:start_link([sluice_box:child_spec(#{name => {fuzz, kept},
                                                                    max => 10})]),
    unlink(Sup),
    ok = sluice_breaker:install({fuzz, breaker}, #{}),
    ok = sluice_breaker:install({fuzz, removed}, #{}),
    ok = sluice_breaker:remove({fuzz, removed}),
    ok = sluice_group:join({fuzz, group}, Worker),
    Dead = spawn(fun() -> ok end),
    Remote = remote_pid(),
    Ref = fun(H) -> element(2, H) end,
    Handles = [Valve, Deleted, Box, Sized, Closed, Buckets, Lock, ClosedLock, Limiter, Limit,
               Token],
    Forged = [{sluice_box, make_ref(), false}, {sluice_box, Ref(Valve), true},
              {sluice_box, Ref(Lock), false}, {sluice_box, Ref(Box), maybe}, {sluice_box},
              {sluice_valve, make_ref(), x, #{default => 0}, 0},
              {sluice_valve, Ref(Box), x, #{default => 0}, 0},
              {sluice_valve, Ref(Valve), x, #{default => 99}, 99},
              {sluice_valve, Ref(Valve), x, not_a_map, 0},
              {sluice_lock, make_ref(), Self}, {sluice_lock, Ref(Limiter), Dead},
              {sluice_lock, Ref(Lock), not_a_pid},
              {sluice_limiter, make_ref()}, {sluice_limiter, Ref(Lock)},
              {sluice_limit, make_ref()}, {sluice_limit, Ref(Limiter)},
              {Limit, {99, 99}}, {Limit, {0, 1 bsl 64}}, {Limit, x}, {{sluice_limit, make_ref()}, {0, 1}}],
    Names = [{fuzz, valve}, {fuzz, deleted}, {fuzz, kept}, {fuzz, breaker}, {fuzz, removed},
             {fuzz, group}, {fuzz, new}],
    Plain = [0, 1, 2, 5, 100, 4096, -1, 1 bsl 40, 1 bsl 64, -(1 bsl 64), 0.0, 0.5, 1.0, 1.5,
             -0.5, foo, undefined, infinity, manual, system, none, queue, stack, keep_old,
             sync, async_dirty, default, low, off, random, best_of_two, notify, active,
             true, false, ok, <<>>, <<"bin">>, binary:copy(<<1>>, 100), [], [a], "string",
             [1 | 2], {}, {a}, {standard, 1, 100}, {standard, -1, 0},
             {fault_injection, 0.5, 1, 100}, {failure_rate, 2.0, 1, 100}, {classify, foo},
             {classify, fun(_) -> melt end}, {sluice_test_lock, []}, {no_such_module, []},
             {lists, []}, make_ref(), Self, Worker, Dead, Remote,
             fun() -> ok end, fun() -> {error, x} end, fun(_) -> ok end,
             fun(M, S) -> {{ok, M}, S} end, fun(_, _) -> skip end, fun(_, _, _) -> ok end,
             #{}, #{a => 1}],
    Options = [#{}, #{rate => 0.5}, #{rates => #{low => 0.1}},
               #{regulate => #{signal => fun() -> 1 end, low => 1, high => 2}},
               #{signal => fun() -> 1 end, low => 1, high => 2, priorities => [default]},
               #{max => 5}, #{max => 5, type => stack, max_bytes => 1000},
               #{max => 5, max_age => 100, codel => #{}, red_min => 1, red_max => 3,
                 red_prob => 0.5},
               #{max => 5, name => {fuzz, new}}, #{max => 5, width => 10},
               #{max => 5, width => 10, order => oldest_first, within => fifo},
               #{resources => 1, callback => {sluice_test_lock, []}},
               #{resources => 1, callback => {sluice_test_lock, []}, name => {fuzz, new}},
               #{limit => 10}, #{limit => 10, period => 100, burst => 2},
               #{limit => 10, global => #{limit => 100}}, #{max => 2},
               #{strategy => {standard, 1, 100}, reset => 10},
               #{strategy => {failure_rate, 0.5, 10, 1000}, reset => manual, probes => 2}],
    #{values => Handles ++ Forged ++ Names ++ Plain, options => Options}.

%% A pid of a node that is not there.
remote_pid() ->
    <<131, 88, _/binary>> = term_to_binary(self()),
    Node = <<"fuzz@nowhere">>,
    binary_to_term(<<131, 88, 119, (byte_size(Node)), Node/binary, 1:32, 0:32, 1:32>>).
