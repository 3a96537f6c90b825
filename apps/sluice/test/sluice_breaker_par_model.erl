%% The model of sluice_breaker_prop_SUITE's parallel runs: a standard
%% breaker with manual reset, asked and melted by several processes; it is
%% blown exactly after its MaxR+1-th melt (in whatever order the calls are
%% linearized).
-module(sluice_breaker_par_model).

-include_lib("proper/include/proper.hrl").

-export([name/0, initial_state/1, command/1, precondition/2, postcondition/3,
         next_state/3, ask/0, melt/0]).

-spec name() -> term().
name() -> {?MODULE, breaker}.

-spec initial_state(non_neg_integer()) -> map().
initial_state(MaxR) -> #{max_r => MaxR, melts => 0}.

-spec command(map()) -> proper_types:type().
command(_S) ->
    oneof([{call, ?MODULE, ask, []}, {call, ?MODULE, melt, []}]).

-spec precondition(map(), tuple()) -> true.
precondition(_S, _Call) -> true.

-spec next_state(map(), term(), tuple()) -> map().
next_state(#{melts := M} = S, _Res, {call, _, melt, []}) -> S#{melts := M + 1};
next_state(S, _Res, _Call) -> S.

-spec postcondition(map(), tuple(), term()) -> boolean().
postcondition(#{max_r := R, melts := M}, {call, _, ask, []}, Res) ->
    Res =:= (case M > R of true -> blown; false -> ok end);
postcondition(_S, {call, _, melt, []}, Res) ->
    Res =:= ok.

-spec ask() -> ok | blown | {error, not_found}.
ask() -> sluice_breaker:ask(name(), sync).

-spec melt() -> ok | {error, not_found}.
melt() -> sluice_breaker:melt(name()).
