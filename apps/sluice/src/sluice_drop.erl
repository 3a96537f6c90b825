%% @doc Random-drop valves (Erlang in Anger, 3.3.1): decide at the producer
%% whether a message is worth sending, so an overloaded consumer sees less.
%%
%% == Stateless ==
%% {@link random/1} is the book's `rand:uniform() =< Rate' as one NIF call on
%% a per-scheduler generator: `true' means send, `false' means drop.
%%
%% == Named valves ==
%% {@link new/2} creates a valve owned by the sluice application: it outlives
%% the process that created it and is found by name (any term; no atom is
%% ever made from it) without messaging a process. {@link ask/1} on the
%% returned handle is one NIF call: `ok' (send) or `drop'. Each valve has one
%% keep rate per priority; the priority `default' is the one {@link ask/1}
%% uses. Every answer is counted, per priority, in per-scheduler counters:
%% {@link info/1} shows them and {@link take_dropped/1} returns how many were
%% dropped since its last call, so the owner can log "N dropped".
%%
%% == Memory ==
%% A scheduler's counter stripe (256 bytes, cache-line aligned) is
%% allocated when that scheduler first asks: an idle valve costs about
%% 1 KB in all (its handle, its name row and a 408-byte resource), plus 384
%% bytes per scheduler that used it (`drop/valve_bytes' in `make bench';
%% about 5 KB when every stripe was allocated up front). A valve per client
%% is fine.
%%
%% == Regulation ==
%% A valve can follow a load signal: a fun returning a number (a mailbox
%% length, scheduler utilisation, ...), sampled every `interval' ms by a
%% supervised regulator process, never on the caller's path. The keep rate
%% of each regulated priority is multiplied by a factor that is 1.0 while the
%% signal is at or below `low', falls linearly to `min_rate' at `high', and
%% stays there above it:
%% ```
%% factor
%%  1.0 |-------.
%%      |        \
%%      |         \
%% min  |          `--------
%%      +-------+---+-------- signal
%%             low  high
%% '''
%% If the signal fun fails or returns something else than a number the
%% factor is left as it was and a warning is logged.
%%
%% == Errors ==
%% Wrong arguments raise `badarg' with a message naming the argument; unknown
%% options are returned as `{error, {bad_option, Key}}'. A name or handle of
%% a valve that does not exist (or was deleted) gives `{error, not_found}'.
-module(sluice_drop).

-export([random/1, new/2, delete/1, ask/1, ask/2, set_rate/2, set_rate/3,
         info/1, take_dropped/1, regulate/2, lookup/1]).
-export_type([valve/0, name/0, priority/0, rate/0, options/0, regulation/0]).

-include("sluice_drop.hrl").
-include("sluice_error.hrl").

-define(NOT_A_VALVE, "not a valve handle (or a handle of another kind)").

-opaque valve() :: #sluice_valve{}.
%% A handle on a named valve, from {@link new/2} or {@link lookup/1}; every
%% function also takes the valve's {@link name()}.
-type name() :: term().
%% The name of a valve: any term (no atom is made from it), unique on the
%% node.
-type priority() :: term().
%% A class of messages with its own keep rate (any term, `default' for
%% {@link ask/1}); at most 16 per valve.
-type rate() :: number().
%% A keep probability in [0.0, 1.0]; integers 0 and 1 are accepted too.
-type options() :: #{rate => rate(),
                     rates => #{priority() => rate()},
                     regulate => regulation()}.
%% `rate' (default 1.0) is the keep rate of priority `default'; `rates' sets
%% further priorities (at most 16 in all; its `default' entry wins over
%% `rate'); `regulate' starts a regulator, see {@link regulation()}.
-type regulation() :: #{signal := fun(() -> number()),
                        low := number(),
                        high := number(),
                        min_rate => rate(),
                        interval => pos_integer(),
                        priorities => [priority()]}.
%% `signal' (mandatory): a fun returning the load; `low' and `high'
%% (mandatory, `low' below `high'): where the factor starts falling and where it
%% reaches `min_rate' (default 0.0); `interval': sampling period in ms
%% (default 100); `priorities': which priorities follow the signal
%% (default: all).
-type valve_ref() :: valve() | name().
%% A valve's handle or its name.

%% @doc `true' with probability `Rate': send the message; `false': drop it.
-spec random(Rate) -> boolean() when Rate :: rate().
random(Rate) when is_float(Rate), Rate >= 0.0, Rate =< 1.0 ->
    sluice_nif:drop_random(Rate);
random(Rate) when Rate =:= 0; Rate =:= 1 ->
    sluice_nif:drop_random(float(Rate));
random(Rate) ->
    ?BADARG([Rate], 1, "rate must be a number in [0.0, 1.0]").

%% @doc Creates the valve `Name' (see {@link options()}).
-spec new(Name, Opts) -> {ok, valve()} | {error, already_exists | {bad_option, term()}} when
      Name :: name(),
      Opts :: options().
new(Name, Opts) when is_map(Opts) ->
    case sluice_drop_server:validate(Opts) of
        {ok, Rates, Regulation} -> sluice_drop_server:new(Name, Rates, Regulation);
        {error, _} = Error -> Error
    end;
new(Name, Opts) ->
    ?BADARG([Name, Opts], 2, "options must be a map").

%% @doc Deletes a valve: its handles answer `{error, not_found}' from now on.
-spec delete(Valve) -> ok | {error, not_found} when Valve :: valve_ref().
delete(Valve) ->
    sluice_drop_server:delete(name_of(Valve)).

%% @doc Asks the valve for priority `default': `ok' to send, `drop' to drop.
-spec ask(Valve) -> ok | drop | {error, not_found} when Valve :: valve_ref().
ask(#sluice_valve{ref = Ref, default = Index} = V) ->
    try sluice_nif:drop_ask(Ref, Index) of
        {error, unknown_priority} -> ?BADARG([V], 1, ?NOT_A_VALVE);
        Answer -> Answer
    catch error:badarg -> ?BADARG([V], 1, ?NOT_A_VALVE)
    end;
ask(Name) ->
    with(Name, fun ask/1).

%% @doc Asks the valve for priority `Priority'.
-spec ask(Valve, Priority) -> ok | drop | {error, not_found} when
      Valve :: valve_ref(),
      Priority :: priority().
ask(#sluice_valve{ref = Ref, priorities = Prios} = V, Priority) when is_map(Prios) ->
    case Prios of
        #{Priority := Index} ->
            try sluice_nif:drop_ask(Ref, Index) of
                {error, unknown_priority} -> ?BADARG([V, Priority], 1, ?NOT_A_VALVE);
                Answer -> Answer
            catch error:badarg -> ?BADARG([V, Priority], 1, ?NOT_A_VALVE)
            end;
        #{} ->
            ?BADARG([V, Priority], 2, "not a priority of this valve")
    end;
ask(#sluice_valve{} = V, Priority) ->
    ?BADARG([V, Priority], 1, ?NOT_A_VALVE);
ask(Name, Priority) ->
    with(Name, fun(V) -> ask(V, Priority) end).

%% @doc Sets the keep rate of priority `default'; every caller sees it at once.
-spec set_rate(Valve, Rate) -> ok | {error, not_found} when
      Valve :: valve_ref(),
      Rate :: rate().
set_rate(Valve, Rate) ->
    set_rate(Valve, default, Rate).

%% @doc Sets the keep rate of `Priority'.
-spec set_rate(Valve, Priority, Rate) -> ok | {error, not_found} when
      Valve :: valve_ref(),
      Priority :: priority(),
      Rate :: rate().
set_rate(#sluice_valve{ref = Ref, priorities = Prios} = V, Priority, Rate) when is_map(Prios) ->
    case {Prios, sluice_util:rate(Rate)} of
        {_, error} ->
            ?BADARG([V, Priority, Rate], 3, "rate must be a number in [0.0, 1.0]");
        {#{Priority := Index}, {ok, R}} ->
            try sluice_nif:drop_set(Ref, Index, rate, R) of
                {error, unknown_priority} -> ?BADARG([V, Priority, Rate], 1, ?NOT_A_VALVE);
                Answer -> Answer
            catch error:badarg -> ?BADARG([V, Priority, Rate], 1, ?NOT_A_VALVE)
            end;
        {#{}, _} ->
            ?BADARG([V, Priority, Rate], 2, "not a priority of this valve")
    end;
set_rate(#sluice_valve{} = V, Priority, Rate) ->
    ?BADARG([V, Priority, Rate], 1, ?NOT_A_VALVE);
set_rate(Name, Priority, Rate) ->
    with(Name, fun(V) -> set_rate(V, Priority, Rate) end).

%% @doc Counters and rates: totals and, per priority, the rate set, the
%% effective rate (after regulation), asked, kept and dropped.
-spec info(Valve) -> map() | {error, not_found} when Valve :: valve_ref().
info(#sluice_valve{} = V) ->
    try counters(V)
    catch error:_ -> ?BADARG([V], 1, ?NOT_A_VALVE)
    end;
info(Name) ->
    with(Name, fun info/1).

-spec counters(valve()) -> map() | {error, not_found}.
counters(#sluice_valve{ref = Ref, name = Name, priorities = Prios}) ->
    case sluice_nif:drop_counters(Ref) of
        {error, not_found} = Error ->
            Error;
        Rows ->
            PerPrio = maps:map(
                        fun(_, I) ->
                                #{rate := Rate, factor := Factor, kept := Kept,
                                  dropped := Dropped} = lists:nth(I + 1, Rows),
                                #{rate => Rate, effective_rate => Rate * Factor,
                                  asked => Kept + Dropped, kept => Kept, dropped => Dropped}
                        end, Prios),
            Sum = fun(K) -> lists:sum([maps:get(K, C) || C <- maps:values(PerPrio)]) end,
            #{name => Name, priorities => PerPrio,
              asked => Sum(asked), kept => Sum(kept), dropped => Sum(dropped),
              regulated => sluice_drop_server:regulated(Name)}
    end.

%% @doc How many asks were dropped since the previous call (all priorities).
-spec take_dropped(Valve) -> non_neg_integer() | {error, not_found} when
      Valve :: valve_ref().
take_dropped(#sluice_valve{ref = Ref} = V) ->
    try sluice_nif:drop_take_dropped(Ref)
    catch error:badarg -> ?BADARG([V], 1, ?NOT_A_VALVE)
    end;
take_dropped(Name) ->
    with(Name, fun take_dropped/1).

%% @doc Starts, replaces (a map) or stops (`none') the valve's regulator.
-spec regulate(Valve, Regulation) -> ok | {error, not_found | {bad_option, term()}} when
      Valve :: valve_ref(),
      Regulation :: regulation() | none.
regulate(Valve, Regulation) ->
    case sluice_drop_server:validate_regulation(Regulation) of
        {ok, Valid} -> sluice_drop_server:regulate(name_of(Valve), Valid);
        {error, _} = Error -> Error
    end.

%% @doc The handle of the valve named `Name'.
-spec lookup(Name) -> {ok, valve()} | {error, not_found} when Name :: name().
lookup(Name) ->
    sluice_drop_server:lookup(Name).

-spec with(name(), fun((valve()) -> Result)) -> Result | {error, not_found}.
with(Name, Fun) ->
    case sluice_drop_server:lookup(Name) of
        {ok, Valve} -> Fun(Valve);
        {error, not_found} = Error -> Error
    end.

-spec name_of(valve_ref()) -> name().
name_of(#sluice_valve{name = Name}) -> Name;
name_of(Name) -> Name.
