%% @private
%% @doc Regulator of one valve: samples the load signal every `interval' ms
%% and sets the regulation factor of the regulated priorities (see the
%% curve in {@link sluice_drop}). It stops by itself when its valve is
%% deleted or its regulation replaced (the table row no longer carries its
%% token).
-module(sluice_drop_regulator).
-behaviour(gen_server).

-export([start_link/2, factor/2]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, code_change/3]).

-include_lib("kernel/include/logger.hrl").
-include("sluice_drop.hrl").

-record(state, {name :: term(), token :: reference(), failing = false :: boolean()}).

-spec start_link(sluice_drop:name(), reference()) -> {ok, pid()}.
start_link(Name, Token) ->
    gen_server:start_link(?MODULE, {Name, Token}, []).

%% @doc The regulation factor for load `Load': 1.0 up to `low', falling
%% linearly to `min_rate' at `high', `min_rate' beyond.
-spec factor(number(), #{low := number(), high := number(), min_rate := float(), _ => _}) -> float().
factor(Load, #{low := Low}) when Load =< Low ->
    1.0;
factor(Load, #{high := High, min_rate := Min}) when Load >= High ->
    Min;
factor(Load, #{low := Low, high := High, min_rate := Min}) ->
    1.0 - (1.0 - Min) * (Load - Low) / (High - Low).

-spec init({term(), reference()}) -> {ok, #state{}}.
init({Name, Token}) ->
    self() ! tick,
    {ok, #state{name = Name, token = Token}}.

-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, ok, #state{}}.
handle_call(_Request, _From, State) ->
    {reply, ok, State}.

-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast(_Msg, State) ->
    {noreply, State}.

-spec handle_info(term(), #state{}) -> {noreply, #state{}} | {stop, normal, #state{}}.
handle_info(tick, #state{name = Name, token = Token} = State) ->
    case sluice_drop_server:row(Name) of
        {_, Valve, #{interval := Interval} = Reg, Token} ->
            NewState = sample(Valve, Reg, State),
            erlang:send_after(Interval, self(), tick),
            {noreply, NewState};
        _ ->
            {stop, normal, State}
    end;
handle_info(_Msg, State) ->
    {noreply, State}.

-spec sample(valve_handle(), map(), #state{}) -> #state{}.
sample(#sluice_valve{ref = Ref, priorities = Prios}, #{signal := Signal} = Reg, State) ->
    try Signal() of
        Load when is_number(Load) -> apply_load(Ref, Prios, Load, Reg, State);
        Other -> failing(State, {not_a_number, Other})
    catch
        Class:Reason -> failing(State, {Class, Reason})
    end.

%% Sets the factor for `Load' (a number too large for a float fails too).
-spec apply_load(reference(), map(), number(), map(), #state{}) -> #state{}.
apply_load(Ref, Prios, Load, Reg, State) ->
    try factor(Load, Reg) of
        F ->
            Regulated = maps:get(priorities, Reg, maps:keys(Prios)),
            _ = [sluice_nif:drop_set(Ref, maps:get(P, Prios), factor, F) || P <- Regulated],
            State#state{failing = false}
    catch
        Class:Reason -> failing(State, {Class, Reason})
    end.

-spec failing(#state{}, term()) -> #state{}.
failing(#state{failing = true} = State, _Why) ->
    State;
failing(#state{name = Name} = State, Why) ->
    ?LOG_WARNING(#{what => valve_signal_failed, valve => Name, why => Why,
                   effect => "regulation factor left unchanged until the signal recovers"},
                 #{domain => [sluice, drop]}),
    State#state{failing = true}.

%% Release upgrades and downgrades (`{update, sluice_drop_regulator, {advanced, _}}' in an
%% appup): the state has the same shape in every version so far, and is kept
%% as it is in both directions (`OldVsn' is `{down, Vsn}' on the way down).
-spec code_change(term(), #state{}, term()) -> {ok, #state{}}.
code_change(_OldVsn, State, _Extra) ->
    {ok, State}.
