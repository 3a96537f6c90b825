%% @private
%% @doc Internals of {@link reckon_metrics}: the node's recorder (a
%% `reckon_nif' resource kept in `persistent_term', made once by the
%% sampler), the binary keys of series and metrics, the sampler's options
%% and the shapes returned to the shell.
%%
%% Keys are `term_to_binary/1' of a series name, or of `{user, Name,
%% Labels}' for a user metric, so names are kept as terms and no atom is
%% ever made from input. Names are read back with `binary_to_term(_,
%% [safe])'; a key naming an atom this node does not know (a file written by
%% another node) is returned as `{undecodable, Binary}'.
-module(reckon_metrics_lib).

-export([recorder/0, ensure_recorder/0, key/1, name/1, user_key/2,
         validate/1, defaults/0, read_file/1,
         metric_add/2, metric_set/2, metric_observe/2, metric_observe_n/2]).

-export_type([options/0]).

-define(RECORDER_KEY, {reckon_metrics, recorder}).
%% Most series or user metrics a recorder may be asked to hold.
-define(MAX_CAP, 100000).

-type options() :: #{alloc_interval := pos_integer(),
                     queue_interval := pos_integer(),
                     queue_top := pos_integer(),
                     file_dir := file:filename_all() | undefined,
                     file_interval := pos_integer(),
                     file_keep := pos_integer(),
                     http_port := inet:port_number() | undefined,
                     http_ip := inet:ip_address(),
                     long_gc_ms := pos_integer() | off,
                     long_schedule_ms := pos_integer() | off}.
%% The sampler's options, with their defaults filled in.

%% @doc The node's recorder, or `undefined' before the sampler first started.
-spec recorder() -> reference() | undefined.
recorder() ->
    persistent_term:get(?RECORDER_KEY, undefined).

%% @doc The node's recorder, made (with the bounds of the reckon application
%% env `metrics_max_series' and `metrics_max_metrics') if there is none.
%% Called by the sampler only, so only one process ever makes it.
-spec ensure_recorder() -> reference().
ensure_recorder() ->
    case recorder() of
        undefined ->
            Rec = reckon_nif:metrics_new(#{max_series => env_cap(metrics_max_series, 512),
                                           max_metrics => env_cap(metrics_max_metrics, 256)}),
            persistent_term:put(?RECORDER_KEY, Rec),
            Rec;
        Rec ->
            Rec
    end.

-spec env_cap(atom(), pos_integer()) -> pos_integer().
env_cap(Key, Default) ->
    case application:get_env(reckon, Key, Default) of
        N when is_integer(N), N >= 1, N =< ?MAX_CAP -> N;
        Bad ->
            logger:warning("reckon: ~p = ~p is not an integer in 1..~p; using ~p",
                           [Key, Bad, ?MAX_CAP, Default], #{domain => [reckon, metrics]}),
            Default
    end.

%% @doc The key of series `Name'.
-spec key(term()) -> binary().
key(Name) ->
    term_to_binary(Name).

%% @doc The key of user metric `Name' with `Labels'.
-spec user_key(term(), term()) -> binary().
user_key(Name, Labels) ->
    term_to_binary({user, Name, Labels}).

%% @doc The series name of a key.
-spec name(binary()) -> term().
name(Key) ->
    try binary_to_term(Key, [safe])
    catch error:badarg -> {undecodable, Key}
    end.

%% @doc The sampler's default options.
-spec defaults() -> options().
defaults() ->
    #{alloc_interval => 10, queue_interval => 10, queue_top => 5,
      file_dir => undefined, file_interval => 10, file_keep => 3,
      http_port => undefined, http_ip => {127, 0, 0, 1},
      long_gc_ms => 50, long_schedule_ms => 50}.

%% @doc `Opts' checked and completed with the defaults, or the first bad
%% key: unknown keys first, then bad values.
-spec validate(term()) -> {ok, options()} | {error, {bad_option, term()}} | {error, options}.
validate(Opts) when is_map(Opts) ->
    Checks = #{alloc_interval => fun(V) -> in(V, 1, 3600) end,
               queue_interval => fun(V) -> in(V, 10, 3600) end,
               queue_top => fun(V) -> in(V, 1, 100) end,
               file_dir => fun(V) -> V =:= undefined orelse is_dir_name(V) end,
               file_interval => fun(V) -> in(V, 1, 3600) end,
               file_keep => fun(V) -> in(V, 1, 100) end,
               http_port => fun(V) -> V =:= undefined orelse in(V, 0, 65535) end,
               http_ip => fun(V) -> inet:is_ip_address(V) end,
               long_gc_ms => fun(V) -> V =:= off orelse in(V, 1, 60000) end,
               long_schedule_ms => fun(V) -> V =:= off orelse in(V, 1, 60000) end},
    case [K || K <- lists:sort(maps:keys(Opts)), not maps:is_key(K, Checks)] of
        [K | _] ->
            {error, {bad_option, K}};
        [] ->
            Full = maps:merge(defaults(), Opts),
            case [K || K <- lists:sort(maps:keys(Full)), not (maps:get(K, Checks))(maps:get(K, Full))] of
                [K | _] -> {error, {bad_option, K}};
                [] -> {ok, Full}
            end
    end;
validate(_Opts) ->
    {error, options}.

-spec is_dir_name(term()) -> boolean().
is_dir_name(V) when is_binary(V) -> byte_size(V) > 0 andalso is_list(unicode:characters_to_list(V));
is_dir_name(V) -> V =/= [] andalso io_lib:printable_unicode_list(V).

-spec in(term(), integer(), integer()) -> boolean().
in(V, Low, High) -> is_integer(V) andalso V >= Low andalso V =< High.

%% @doc One file of the sampler's writer, in the shapes of
%% `reckon_metrics:history/2'.
-spec read_file(file:filename_all()) -> {ok, map()} | {error, term()}.
read_file(Path) ->
    case reckon_nif:metrics_read_file(unicode:characters_to_binary(Path)) of
        {ok, #{series := Series, metrics := Metrics} = File} ->
            {ok, File#{series := lists:sort([{name(K), Tiers} || {K, Tiers} <- Series]),
                       metrics := lists:sort([{name(K), V} || {K, V} <- Metrics])}};
        {error, Text} ->
            {error, {unreadable, unicode:characters_to_binary(Text)}}
    end.

%% The updates of a user metric. `reckon_nif' answers `moved' for an update
%% that met its metric while a library of another build took the recorder
%% over (nothing was applied): the call is made again, remotely, so it
%% reaches the library now loaded, which converts the handle and applies it.

%% @doc Adds `N' to a counter or a gauge.
-spec metric_add(reference(), number()) -> ok.
metric_add(Metric, N) ->
    case reckon_nif:metric_add(Metric, N) of
        ok -> ok;
        moved -> ?MODULE:metric_add(Metric, N)
    end.

%% @doc Sets a gauge.
-spec metric_set(reference(), number()) -> ok.
metric_set(Metric, V) ->
    case reckon_nif:metric_set(Metric, V) of
        ok -> ok;
        moved -> ?MODULE:metric_set(Metric, V)
    end.

%% @doc Records `V' in a histogram.
-spec metric_observe(reference(), non_neg_integer()) -> ok.
metric_observe(Metric, V) ->
    case reckon_nif:metric_observe(Metric, V) of
        ok -> ok;
        moved -> ?MODULE:metric_observe(Metric, V)
    end.

%% @doc Records each `{V, N}' in a histogram (all of one chunk or none).
-spec metric_observe_n(reference(), [{non_neg_integer(), non_neg_integer()}]) -> ok.
metric_observe_n(Metric, Pairs) ->
    case reckon_nif:metric_observe_n(Metric, Pairs) of
        ok -> ok;
        moved -> ?MODULE:metric_observe_n(Metric, Pairs)
    end.
