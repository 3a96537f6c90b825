%% @doc Crash-dump analysis for {@link reckon:crashdump/1} and
%% {@link reckon:crashdump/2}: the Rust parser of the `reckon-dump' binary,
%% run on a dirty IO scheduler through the `reckon_nif' library.
%%
%% The dump is read once, line by line, in bounded memory (at most 64 KiB
%% of any line is held; every counter and top list is capped), so a dump of
%% gigabytes costs the node a few megabytes for the few seconds it takes.
%% The report is a map with the fields of the `reckon-dump --format json'
%% output (`docs/reckon-dump.schema.json'): keys are atoms of that fixed
%% schema, everything the dump names (processes, functions, tables) is a
%% binary, integers are integers, a missing value is `undefined'. No atom
%% is created from the dump's content.
-module(reckon_dump).

-export([analyze/2, arg_error/2]).
-export_type([report/0, opts/0, cause/0]).

-type report() :: #{format := binary(),
                    input := #{bytes := non_neg_integer(), lines := non_neg_integer(),
                               complete := boolean(),
                               stopped_at := undefined | #{line := non_neg_integer(),
                                                           byte := non_neg_integer(),
                                                           section := binary()}},
                    dump := #{version := binary(), time := binary(), slogan := binary(),
                              system_version := binary(), calling_thread := binary()},
                    memory := [#{type := binary(), bytes := non_neg_integer()}],
                    atoms := #{count := non_neg_integer() | undefined,
                               limit := non_neg_integer() | undefined},
                    processes := #{atom() => term()},
                    ports := #{atom() => term()},
                    ets := #{atom() => term()},
                    binaries := #{atom() => term()},
                    allocators := [#{atom() => term()}],
                    code := #{atom() => term()},
                    likely_causes := [cause()],
                    warnings := [binary()]}.
%% The whole report; see the README's crash-dump section and
%% `docs/reckon-dump.schema.json' for every field.
-type cause() :: #{cause := binary(), evidence := [binary()]}.
%% One verdict: `cause' is one of `<<"cannot_allocate">>',
%% `<<"too_many_atoms">>', `<<"too_many_processes">>', `<<"too_many_ports">>',
%% `<<"full_mailbox">>', `<<"binary_memory">>', `<<"ets_memory">>'.
-type opts() :: #{top => 1..1000, threshold => non_neg_integer()}.
%% `top' (default 10): entries of each top list; `threshold' (default 100):
%% smallest message queue counted in the queue-function section.

-define(DEFAULTS, #{top => 10, threshold => 100}).

%% @doc The report of the dump in `File'; `{error, Posix}' when it cannot
%% be opened. A truncated or corrupted dump gives a partial report whose
%% `warnings' say where reading stopped.
-spec analyze(File, Opts) -> {ok, report()} | {error, Posix}
              when File :: file:filename_all(), Opts :: opts(), Posix :: file:posix().
analyze(File, Opts) ->
    #{top := Top, threshold := Threshold} = maps:merge(?DEFAULTS, Opts),
    reckon_nif:dump_analyze(path(File), Top, Threshold).

%% @doc `ok' when `Args' (`[File]' or `[File, Opts]') are valid, else the
%% number of the first bad argument and what it must be.
-spec arg_error(Fun, Args) -> ok | {Index, Why}
              when Fun :: crashdump, Args :: [term()], Index :: pos_integer(), Why :: string().
arg_error(crashdump, [File]) ->
    file_error(File);
arg_error(crashdump, [File, Opts]) ->
    case file_error(File) of
        ok -> opts_error(Opts);
        Error -> Error
    end.

-spec file_error(term()) -> ok | {1, string()}.
file_error(File) ->
    try {proper(File), path(File)} of
        {false, _} -> {1, "not a file name: an improper list"};
        {true, <<>>} -> {1, "not a file name: empty"};
        _ -> ok
    catch
        error:_ -> {1, "not a file name (a string, binary or atom)"}
    end.

%% Whether `File' is a binary, an atom, or a proper deep list of
%% characters, atoms and binaries.
-spec proper(term()) -> boolean().
proper(File) when is_binary(File); is_atom(File) -> true;
proper(File) -> proper_list(File).

-spec proper_list(term()) -> boolean().
proper_list([]) -> true;
proper_list([H | T]) when is_integer(H); is_atom(H); is_binary(H) -> proper_list(T);
proper_list([H | T]) when is_list(H) -> proper_list(H) andalso proper_list(T);
proper_list(_) -> false.

-spec opts_error(term()) -> ok | {2, string()}.
opts_error(Opts) when is_map(Opts) ->
    Bad = [K || {K, V} <- maps:to_list(Opts), not good_opt(K, V)],
    case Bad of
        [] -> ok;
        _ -> {2, "not valid options: top => 1..1000, threshold => a non-negative integer"}
    end;
opts_error(_) ->
    {2, "not a map of options (top, threshold)"}.

-spec good_opt(term(), term()) -> boolean().
good_opt(top, N) -> is_integer(N) andalso N >= 1 andalso N =< 1000;
good_opt(threshold, N) -> is_integer(N) andalso N >= 0 andalso N < 1 bsl 62;
good_opt(_, _) -> false.

%% The file name as the bytes the OS sees.
-spec path(file:filename_all()) -> binary().
path(File) when is_binary(File) ->
    File;
path(File) when is_list(File); is_atom(File) ->
    case unicode:characters_to_binary(filename:flatten(File), unicode,
                                      file:native_name_encoding()) of
        Bin when is_binary(Bin) -> Bin;
        _ -> erlang:error(badarg)
    end;
path(_File) ->
    erlang:error(badarg).
