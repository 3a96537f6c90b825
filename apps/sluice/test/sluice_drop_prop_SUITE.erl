%% PropEr state-machine model of a named valve, run inside Common Test.
%%
%% The model holds the rate of every priority and every answer the valve
%% gave. It checks:
%% R1. an ask at rate 1.0 is kept and an ask at rate 0.0 is dropped;
%% R2. per priority, info's asked/kept/dropped equal the answers given, and
%%     asked = kept + dropped;
%% R3. take_dropped returns exactly the drops answered since its previous call;
%% R4. a rate set is reported by info and applies to the very next ask;
%% R5. handles and names answer alike.
-module(sluice_drop_prop_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("proper/include/proper.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, valve_model/1]).
-export([initial_state/0, command/1, precondition/2, postcondition/3, next_state/3]).
-export([ask/2, set_rate/3, info/1, take_dropped/1]).

-define(VALVE, sluice_drop_prop_valve).
-define(PRIOS, [default, high, low]).

all() -> [valve_model].

init_per_suite(Config) ->
    {ok, _} = application:ensure_all_started(sluice),
    Config.

end_per_suite(_Config) ->
    ok.

valve_model(_Config) ->
    Prop = ?FORALL(Cmds, proper_statem:commands(?MODULE),
                   begin
                       {ok, _} = sluice_drop:new(?VALVE, #{rates => initial_rates()}),
                       {History, State, Result} = proper_statem:run_commands(?MODULE, Cmds),
                       ok = sluice_drop:delete(?VALVE),
                       ?WHENFAIL(ct:pal("history ~p~nstate ~p~nresult ~p", [History, State, Result]),
                                 aggregate(proper_statem:command_names(Cmds), Result =:= ok))
                   end),
    true = proper:quickcheck(Prop, [{numtests, 500}, {to_file, user}, noshrink]).

initial_rates() -> #{default => 1.0, high => 1.0, low => 0.0}.

%% Model state: current rates, answers given (newest first) and how many of
%% them had been given at the last take_dropped.
initial_state() ->
    #{rates => initial_rates(), answers => [], taken => 0}.

rate() -> oneof([0.0, 1.0, 0, 1, float(0.0, 1.0)]).

ref() -> oneof([name, handle]).

command(_State) ->
    frequency([{10, {call, ?MODULE, ask, [ref(), oneof(?PRIOS)]}},
               {2, {call, ?MODULE, set_rate, [ref(), oneof(?PRIOS), rate()]}},
               {1, {call, ?MODULE, info, [ref()]}},
               {1, {call, ?MODULE, take_dropped, [ref()]}}]).

precondition(_State, _Call) -> true.

next_state(#{answers := Answers} = S, Res, {call, _, ask, [_, Prio]}) ->
    S#{answers := [{Prio, Res} | Answers]};
next_state(#{rates := Rates} = S, _Res, {call, _, set_rate, [_, Prio, Rate]}) ->
    S#{rates := Rates#{Prio := float(Rate)}};
next_state(#{answers := Answers} = S, _Res, {call, _, take_dropped, _}) ->
    S#{taken := length(Answers)};
next_state(S, _Res, _Call) ->
    S.

postcondition(#{rates := Rates}, {call, _, ask, [_, Prio]}, Res) ->
    case maps:get(Prio, Rates) of
        1.0 -> Res =:= ok;
        0.0 -> Res =:= drop;
        _ -> Res =:= ok orelse Res =:= drop
    end;
postcondition(_S, {call, _, set_rate, _}, Res) ->
    Res =:= ok;
postcondition(#{rates := Rates, answers := Answers}, {call, _, info, _}, Info) ->
    #{priorities := Per, asked := Asked, kept := Kept, dropped := Dropped} = Info,
    PerOk = lists:all(
              fun(P) ->
                      Mine = [R || {Q, R} <- Answers, Q =:= P],
                      K = length([ok || ok <- Mine]),
                      D = length([drop || drop <- Mine]),
                      maps:get(P, Per) =:= #{asked => K + D, kept => K, dropped => D,
                                             rate => maps:get(P, Rates),
                                             effective_rate => maps:get(P, Rates)}
              end, ?PRIOS),
    PerOk andalso Asked =:= length(Answers) andalso Asked =:= Kept + Dropped;
postcondition(#{answers := Answers, taken := Taken}, {call, _, take_dropped, _}, Res) ->
    Since = lists:sublist(Answers, length(Answers) - Taken),
    Res =:= length([drop || {_, drop} <- Since]).

%% Commands, addressing the valve by name or by handle.

valve(name) -> ?VALVE;
valve(handle) -> {ok, V} = sluice_drop:lookup(?VALVE), V.

ask(Ref, Prio) -> sluice_drop:ask(valve(Ref), Prio).
set_rate(Ref, Prio, Rate) -> sluice_drop:set_rate(valve(Ref), Prio, Rate).
info(Ref) -> sluice_drop:info(valve(Ref)).
take_dropped(Ref) -> sluice_drop:take_dropped(valve(Ref)).
