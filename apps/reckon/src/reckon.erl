%% @doc Inspection of a live node from a release's remote shell, with the
%% functions and argument shapes of recon: replace `recon:' by `reckon:'.
%%
%% <h3>Processes</h3>
%% {@link info/1}, {@link info/2}, {@link info/3}, {@link info/4},
%% {@link proc_count/2}, {@link proc_window/3},
%% {@link proc_window/4}, {@link bin_leak/1}, {@link get_state/1},
%% {@link get_state/2}, {@link term_to_pid/1}.
%%
%% <h3>Node</h3>
%% {@link node_stats/4}, {@link node_stats_list/2}, {@link node_stats_print/2},
%% {@link scheduler_usage/1}.
%%
%% <h3>Ports</h3>
%% {@link port_types/0}, {@link port_info/1}, {@link port_info/2},
%% {@link inet_count/2}, {@link inet_window/3}, {@link tcp/0}, {@link udp/0},
%% {@link sctp/0}, {@link files/0}, {@link term_to_port/1}.
%%
%% <h3>Code and cluster</h3>
%% {@link source/1}, {@link remote_load/1}, {@link remote_load/2},
%% {@link rpc/1}, {@link rpc/2}, {@link rpc/3}, {@link named_rpc/1},
%% {@link named_rpc/2}, {@link named_rpc/3}, and the cluster-wide top-N:
%% {@link cluster_proc_count/2}, {@link cluster_proc_window/3},
%% {@link cluster_bin_leak/1}, {@link cluster_inet_count/2},
%% {@link cluster_inet_window/3}.
%%
%% <h3>After a crash</h3>
%% {@link crashdump/1}, {@link crashdump/2} (the `reckon-dump' parser) and
%% {@link app_deps/0}.
%%
%% <h3>How it stays light</h3>
%% Top-N and windows stream: values go to the `reckon_nif' library in
%% chunks, a bounded heap keeps the top N, and names, current functions and
%% initial calls are fetched for the winners only. Memory is O(N + chunk)
%% beside the list of processes (a window also keeps its first sample, a few
%% words per process, in the library). The calling process (and the server of
%% its shell, when it is a shell's evaluator) is skipped; no
%% function reads a mailbox; lists and terms returned are capped.
%%
%% Unlike recon, {@link proc_window/3} and {@link inet_window/3} rank only
%% processes (ports) alive at both ends of the window: one born during the
%% window is never ranked by its absolute value. {@link proc_window/4} also
%% says who was born and who died.
-module(reckon).

-export([info/1, info/2, info/3, info/4, proc_count/2, proc_window/3, proc_window/4, bin_leak/1,
         get_state/1, get_state/2, term_to_pid/1]).
-export([node_stats/4, node_stats_list/2, node_stats_print/2, scheduler_usage/1]).
-export([port_types/0, port_info/1, port_info/2, inet_count/2, inet_window/3,
         tcp/0, udp/0, sctp/0, files/0, term_to_port/1]).
-export([source/1, remote_load/1, remote_load/2, rpc/1, rpc/2, rpc/3,
         named_rpc/1, named_rpc/2, named_rpc/3]).
-export([crashdump/1, crashdump/2, app_deps/0]).
-export([cluster_proc_count/2, cluster_proc_window/3, cluster_bin_leak/1,
         cluster_inet_count/2, cluster_inet_window/3]).

-include("reckon_error.hrl").

%% Raises, from the calling public function, `badarg' with a message naming
%% the bad argument, when `Check' is `{Index, Why}'.
-define(CHECK(Check, Args),
        case Check of
            ok -> ok;
            {Index__, Why__} -> ?RECKON_BADARG(Args, Index__, Why__)
        end).
-define(MODULE_WHY, "not a module name (an atom)").
-define(NODES_WHY, "not a node name or a list of node names").
-define(FUN_WHY, "not a fun of arity 0").
-define(SCAN_CHECK(Fun, Args), ?CHECK(reckon_scan:arg_error(Fun, Args), Args)).
%% Runs `Expr'; a `badarg' it raises with a reckon message is raised again
%% from the calling public function, with the same message.
-define(RELAY(Args, Expr),
        try Expr
        catch
            error:badarg:St__ ->
                case reckon_args:reckon_error_info(St__) of
                    #{} = ErrorInfo__ -> erlang:error(badarg, Args, [{error_info, ErrorInfo__}]);
                    none -> erlang:raise(error, badarg, St__)
                end
        end).

-export_type([pid_term/0, port_term/0, proc_attrs/0, inet_attrs/0, attr_name/0,
              inet_attr_name/0, window_opts/0, window/0, info_type/0, info_key/0,
              port_info_type/0, port_info_key/0, stats/0]).

-type pid_term() :: pid() | atom() | string() | binary()
                  | {global, term()} | {via, module(), term()}
                  | {non_neg_integer(), non_neg_integer(), non_neg_integer()}.
%% What names a process: a pid, `"<0.1.0>"', `<<"<0.1.0>">>', `{0,1,0}', a
%% registered name, `{global, Name}' or `{via, Module, Name}'.
-type port_term() :: port() | string() | binary() | atom() | non_neg_integer().
%% What names a port: a port, `"#Port<0.7>"', `<<"#Port<0.7>">>', its number
%% (`7'), or a registered name.
-type attr_name() :: atom().
%% A `process_info/2' item with an integer value: `memory', `reductions',
%% `message_queue_len', `total_heap_size', `heap_size', `stack_size', ...
-type inet_attr_name() :: recv_cnt | recv_oct | send_cnt | send_oct | cnt | oct.
%% An `inet:getstat/1' counter to rank ports by: bytes (`_oct') or packets
%% (`_cnt') received, sent, or both (`oct', `cnt').
-type proc_attrs() :: {pid(), Value :: integer(),
                       [Name :: atom() | {current_function, mfa()} | {initial_call, mfa()}]}.
%% A ranked process: its pid, the value it was ranked by, and its
%% registered name (if any), current function and initial call.
-type inet_attrs() :: {port(), Value :: integer(), [{atom(), term()}]}.
%% A ranked port: the port, the value it was ranked by, and the counters
%% that make it up (`recv_oct', `send_oct', ...).
-type window_opts() :: #{list => non_neg_integer()}.
%% `list': how many born and died processes {@link proc_window/4} lists
%% (default 10; they are all counted).
-type window() :: #{top := [proc_attrs()],
                    born := [proc_attrs()], died := [{pid(), Value :: integer()}],
                    born_count := non_neg_integer(), died_count := non_neg_integer()}.
%% `top': by growth, largest first, alive at both ends. `born': processes
%% that appeared during the window, with their value at its end. `died':
%% processes gone by its end, with their value at its start, largest first.
-type info_type() :: meta | signals | location | memory_used | work.
%% A category of {@link info/1}: `meta', `signals', `location',
%% `memory_used' or `work', as recon's.
-type info_key() :: atom().
%% A `process_info/2' key of one of those categories (`memory',
%% `current_stacktrace', ...; never `messages').
-type port_info_type() :: meta | signals | io | memory_used | type | specific.
%% A category of {@link port_info/1}; `specific' is recon's name for
%% `type'.
-type port_info_key() :: atom().
%% An `erlang:port_info/2' key, or a statistic of a socket (`recv_oct',
%% ...), as {@link port_info/2} takes.
-type stats() :: {[{atom(), term()}], [{atom(), term()}]}.
%% `{Absolutes, Increments}' of one {@link node_stats/4} interval.

%%% Processes

%% @doc What is known of a process, by category (never its mailbox);
%% `undefined' when it is dead or the name unknown. Lists (links, monitors,
%% monitored_by, dictionary, current_stacktrace) hold at most 1000 elements;
%% a dictionary value over 10000 words becomes `{reckon_truncated, Words}'.
-spec info(PidTerm) -> [{info_type(), [{info_key(), term()}]}] | undefined when
      PidTerm :: pid_term().
info(PidTerm) ->
    ?CHECK(reckon_proc:pid_term_error(PidTerm), [PidTerm]),
    reckon_proc:info(PidTerm).

%% @doc One category, one key or a list of keys of {@link info/1}; any
%% other key, `messages' included, raises `badarg'.
-spec info(PidTerm, What) ->
    {info_type(), [{info_key(), term()}]} | {info_key(), term()} | [{info_key(), term()}]
    | undefined when
      PidTerm :: pid_term(),
      What :: info_type() | info_key() | [info_key()].
info(PidTerm, What) ->
    ?CHECK(reckon_proc:info_error(PidTerm, What), [PidTerm, What]),
    reckon_proc:info(PidTerm, What).

%% @doc {@link info/1} of the pid `<A.B.C>' (recon's `info/3').
-spec info(A, B, C) -> [{info_type(), [{info_key(), term()}]}] | undefined when
      A :: non_neg_integer(),
      B :: non_neg_integer(),
      C :: non_neg_integer().
info(A, B, C) ->
    ?CHECK(reckon_args:triple_error(A, B, C), [A, B, C]),
    reckon_proc:info({A, B, C}).

%% @doc {@link info/2} of the pid `<A.B.C>' (recon's `info/4').
-spec info(A, B, C, What) ->
    {info_type(), [{info_key(), term()}]} | {info_key(), term()} | [{info_key(), term()}]
    | undefined when
      A :: non_neg_integer(),
      B :: non_neg_integer(),
      C :: non_neg_integer(),
      What :: info_type() | info_key() | [info_key()].
info(A, B, C, What) ->
    ?CHECK(case reckon_args:triple_error(A, B, C) of
               ok -> case reckon_proc:info_error({A, B, C}, What) of
                         {2, Why} -> {4, Why};
                         Other -> Other
                     end;
               Error -> Error
           end, [A, B, C, What]),
    reckon_proc:info({A, B, C}, What).

%% @doc The `Num' processes with the largest `Attr', largest first.
-spec proc_count(Attr, Num) -> [proc_attrs()] when
      Attr :: attr_name(),
      Num :: non_neg_integer().
proc_count(Attr, Num) ->
    ?SCAN_CHECK(proc_count, [Attr, Num]),
    reckon_scan:proc_count(Attr, Num).

%% @doc The `Num' processes whose `Attr' grew most over `Time' ms, among
%% those alive at both ends of the window.
-spec proc_window(Attr, Num, Time) -> [proc_attrs()] when
      Attr :: attr_name(),
      Num :: non_neg_integer(),
      Time :: pos_integer().
proc_window(Attr, Num, Time) ->
    ?SCAN_CHECK(proc_window, [Attr, Num, Time]),
    reckon_scan:proc_window(Attr, Num, Time).

%% @doc {@link proc_window/3}, also listing the processes born and died
%% during the window; see {@type window()}.
-spec proc_window(Attr, Num, Time, Opts) -> window() when
      Attr :: attr_name(),
      Num :: non_neg_integer(),
      Time :: pos_integer(),
      Opts :: window_opts().
proc_window(Attr, Num, Time, Opts) ->
    ?SCAN_CHECK(proc_window, [Attr, Num, Time, Opts]),
    reckon_scan:proc_window(Attr, Num, Time, Opts).

%% @doc The `Num' processes that let go of the most refc binaries when
%% garbage collected (a leak's suspects); the value is the change in their
%% count of refc binaries (negative: freed).
-spec bin_leak(Num) -> [proc_attrs()] when Num :: non_neg_integer().
bin_leak(Num) ->
    ?SCAN_CHECK(bin_leak, [Num]),
    reckon_scan:bin_leak(Num).

%% @doc The state of a `sys'-compatible process (5 s timeout); see
%% {@link get_state/2} for its errors.
-spec get_state(PidTerm) -> term() when PidTerm :: pid_term().
get_state(PidTerm) ->
    ?CHECK(reckon_proc:pid_term_error(PidTerm), [PidTerm]),
    reckon_proc:get_state(PidTerm).

%% @doc The state of a `sys'-compatible process, waiting `Timeout' ms.
%% Raises `error({noproc, PidTerm})' for a dead or unknown process,
%% `error({timeout, PidTerm})' when it does not answer in time and
%% `error({nodedown, Node})' when its node is gone.
-spec get_state(PidTerm, Timeout) -> term() when
      PidTerm :: pid_term(),
      Timeout :: timeout().
get_state(PidTerm, Timeout) ->
    ?CHECK(case reckon_proc:pid_term_error(PidTerm) of
               ok when Timeout =:= infinity; is_integer(Timeout), Timeout >= 0 -> ok;
               ok -> {2, "not a timeout: infinity or an integer >= 0 (ms)"};
               Error -> Error
           end, [PidTerm, Timeout]),
    reckon_proc:get_state(PidTerm, Timeout).

%% @doc The pid a {@type pid_term()} names; `badarg' for a malformed term,
%% `undefined' for an unknown name.
-spec term_to_pid(Term) -> pid() | undefined when Term :: pid_term().
term_to_pid(Term) ->
    ?CHECK(reckon_proc:pid_term_error(Term), [Term]),
    reckon_proc:term_to_pid(Term).

%%% Node

%% @doc Folds `Fun' over `N' samples of node statistics taken `Interval' ms
%% apart, first to last. Each sample is `{Absolutes, Increments}':
%% `Absolutes' at the end of the interval are `process_count', `run_queue',
%% `memory_total', `memory_procs', `memory_atoms', `memory_bin',
%% `memory_ets' (no `error_logger_queue_len', as recon on OTP 21 and
%% later); `Increments' over the interval are `bytes_in', `bytes_out',
%% `gc_count', `gc_words_reclaimed', `reductions' and `scheduler_usage' (as
%% {@link scheduler_usage/1}).
%% `Interval' is at most 3600000 (an hour); `badarg' otherwise, or when `N'
%% is not a non-negative integer or `Fun' not of arity 2.
-spec node_stats(N, Interval, Fun, Acc) -> Acc when
      N :: non_neg_integer(), Interval :: pos_integer(), Fun :: fun((stats(), Acc) -> Acc).
node_stats(N, Interval, Fun, Acc) ->
    ?RELAY([N, Interval, Fun, Acc], reckon_node:node_stats(N, Interval, Fun, Acc)).

%% @doc The `N' samples of {@link node_stats/4}, `Interval' ms apart, first to last.
-spec node_stats_list(N, Interval) -> [stats()] when
      N :: non_neg_integer(), Interval :: pos_integer().
node_stats_list(N, Interval) ->
    ?RELAY([N, Interval], reckon_node:node_stats_list(N, Interval)).

%% @doc Prints the `N' samples of {@link node_stats/4}, `Interval' ms apart,
%% each as it is taken.
-spec node_stats_print(N, Interval) -> ok when
      N :: non_neg_integer(), Interval :: pos_integer().
node_stats_print(N, Interval) ->
    ?RELAY([N, Interval], reckon_node:node_stats_print(N, Interval)).

%% @doc How busy each scheduler was over the next `Interval' ms (at most an
%% hour): `ActiveTime / TotalTime' from 0.0 to 1.0, sorted by id. Normal
%% schedulers are ids 1 to `erlang:system_info(schedulers)'; dirty CPU
%% schedulers follow them, as in recon. The `scheduler_wall_time' system
%% flag is set only for the call and left as it was, also if the call dies.
-spec scheduler_usage(Interval) -> [{SchedulerId, Usage}] when
      Interval :: pos_integer(), SchedulerId :: pos_integer(), Usage :: float().
scheduler_usage(Interval) ->
    ?RELAY([Interval], reckon_node:scheduler_usage(Interval)).

%%% Ports

%% @doc How many ports of each type are open, most first.
-spec port_types() -> [{Type :: string(), Count :: non_neg_integer()}].
port_types() -> reckon_port:port_types().

%% @doc What is known of a port, by category: `meta' (`id', `name',
%% `os_pid', `registered_name' if any), `signals' (`connected', `links',
%% `monitors'), `io' (`input', `output'), `memory_used' (`memory',
%% `queue_size') and `type' (`statistics' (`inet:getstat/1'), `peername',
%% `sockname' and `options' of a socket, those it can answer; `[]'
%% otherwise), as recon. Lists hold at most 1000 elements. `undefined' for
%% a closed port or an unknown name.
-spec port_info(PortTerm) -> [{port_info_type(), [{port_info_key(), term()}]}] | undefined when
      PortTerm :: port_term().
port_info(PortTerm) ->
    ?RELAY([PortTerm], reckon_port:port_info(PortTerm)).

%% @doc One category, one key or a list of keys of {@link port_info/1}
%% (also `monitored_by', `parallelism', `locking', and each statistic alone:
%% `recv_oct', ...); `specific', as in recon, answers `{type, _}'; `badarg' for an unknown
%% one, `undefined' for a closed port or an unknown name.
-spec port_info(PortTerm, What) ->
    {port_info_type() | port_info_key(), term()} | [{port_info_key(), term()}] | undefined when
      PortTerm :: port_term(),
      What :: port_info_type() | port_info_key() | [port_info_key()].
port_info(PortTerm, What) ->
    ?RELAY([PortTerm, What], reckon_port:port_info(PortTerm, What)).

%% @doc The `Num' inet ports with the largest `Attr' (`cnt': `recv_cnt +
%% send_cnt'; `oct': `recv_oct + send_oct').
-spec inet_count(Attr, Num) -> [inet_attrs()] when
      Attr :: inet_attr_name(),
      Num :: non_neg_integer().
inet_count(Attr, Num) ->
    ?SCAN_CHECK(inet_count, [Attr, Num]),
    reckon_scan:inet_count(Attr, Num).

%% @doc The `Num' inet ports whose `Attr' grew most over `Time' ms, among
%% those open at both ends of the window.
-spec inet_window(Attr, Num, Time) -> [inet_attrs()] when
      Attr :: inet_attr_name(),
      Num :: non_neg_integer(),
      Time :: pos_integer().
inet_window(Attr, Num, Time) ->
    ?SCAN_CHECK(inet_window, [Attr, Num, Time]),
    reckon_scan:inet_window(Attr, Num, Time).

%% @doc Open TCP ports (`tcp_inet'; sockets of the `socket' backend are not ports).
-spec tcp() -> [port()].
tcp() -> reckon_port:tcp().

%% @doc Open UDP ports (`udp_inet').
-spec udp() -> [port()].
udp() -> reckon_port:udp().

%% @doc Open SCTP ports (`sctp_inet').
-spec sctp() -> [port()].
sctp() -> reckon_port:sctp().

%% @doc Open file ports (`efile'). Always `[]' since OTP 21, whose files are
%% NIF-based; kept for recon's callers.
-spec files() -> [port()].
files() -> reckon_port:files().

%% @doc The port a {@type port_term()} names; `badarg' for a malformed term,
%% `undefined' for a name not registered by a port. A number `N' is the
%% local `#Port<0.N>', open or not.
-spec term_to_port(Term) -> port() | undefined when Term :: port_term().
term_to_port(Term) ->
    ?RELAY([Term], reckon_port:term_to_port(Term)).

%%% Code and cluster

%% @doc The source of a module, as compiled (from its debug info), as
%% UTF-8 text (print it with the `~ts' control sequence). `{error, Reason}'
%% names the problem: `{no_beam, M}', `{no_debug_info, M}',
%% `{stale_beam, M, Path}' (the file is not the loaded version), ...
-spec source(Module) -> binary() | {error, term()} when Module :: module().
source(Module) ->
    ?CHECK(reckon_args:first_bad([{1, is_atom(Module), ?MODULE_WHY}]), [Module]),
    reckon_code:source(Module).

%% @doc Loads the local object code of `Module' on every connected node;
%% see {@link remote_load/2}.
-spec remote_load(Module) -> [{node(), term()}] when Module :: module().
remote_load(Module) ->
    ?CHECK(reckon_args:first_bad([{1, is_atom(Module), ?MODULE_WHY}]), [Module]),
    reckon_code:remote_load(Module).

%% @doc Loads the local object code of `Module' on `Nodes', from memory.
%% For each node: `{module, Module}', `{error, What}' or `{badrpc, Reason}'.
-spec remote_load(Nodes, Module) -> [{node(), term()}] when
      Nodes :: node() | [node()],
      Module :: module().
remote_load(Nodes, Module) ->
    ?CHECK(reckon_args:first_bad([{1, reckon_args:is_nodes(Nodes), ?NODES_WHY},
                                  {2, is_atom(Module), ?MODULE_WHY}]),
           [Nodes, Module]),
    reckon_code:remote_load(Nodes, Module).

%% @doc Runs `Fun' on every connected node and this one, waiting at most a
%% minute (recon waits for ever); `{Results, BadNodes}' as `rpc:multicall/5'.
-spec rpc(Fun) -> {[term()], [node()]} when Fun :: fun(() -> term()).
rpc(Fun) ->
    ?CHECK(reckon_args:first_bad([{1, is_function(Fun, 0), ?FUN_WHY}]), [Fun]),
    reckon_code:rpc(Fun).

%% @doc Runs `Fun' on `Nodes', waiting for every node (no timeout).
-spec rpc(Nodes, Fun) -> {[term()], [node()]} when
      Nodes :: node() | [node()],
      Fun :: fun(() -> term()).
rpc(Nodes, Fun) ->
    ?CHECK(reckon_args:first_bad(reckon_args:rpc_checks(Nodes, Fun)), [Nodes, Fun]),
    reckon_code:rpc(Nodes, Fun).

%% @doc Runs `Fun' on `Nodes', waiting `Timeout' ms.
-spec rpc(Nodes, Fun, Timeout) -> {[term()], [node()]} when
      Nodes :: node() | [node()],
      Fun :: fun(() -> term()),
      Timeout :: timeout().
rpc(Nodes, Fun, Timeout) ->
    ?CHECK(reckon_args:first_bad(reckon_args:rpc_checks(Nodes, Fun, Timeout)),
           [Nodes, Fun, Timeout]),
    reckon_code:rpc(Nodes, Fun, Timeout).

%% @doc {@link rpc/1}, each result paired with the node that computed it:
%% `{[{Node, Result}], BadNodes}'.
-spec named_rpc(Fun) -> {[{node(), term()}], [node()]} when Fun :: fun(() -> term()).
named_rpc(Fun) ->
    ?CHECK(reckon_args:first_bad([{1, is_function(Fun, 0), ?FUN_WHY}]), [Fun]),
    reckon_code:named_rpc(Fun).

%% @doc {@link rpc/2}, each result paired with the node that computed it.
-spec named_rpc(Nodes, Fun) -> {[{node(), term()}], [node()]} when
      Nodes :: node() | [node()],
      Fun :: fun(() -> term()).
named_rpc(Nodes, Fun) ->
    ?CHECK(reckon_args:first_bad(reckon_args:rpc_checks(Nodes, Fun)), [Nodes, Fun]),
    reckon_code:named_rpc(Nodes, Fun).

%% @doc {@link rpc/3}, each result paired with the node that computed it.
-spec named_rpc(Nodes, Fun, Timeout) -> {[{node(), term()}], [node()]} when
      Nodes :: node() | [node()],
      Fun :: fun(() -> term()),
      Timeout :: timeout().
named_rpc(Nodes, Fun, Timeout) ->
    ?CHECK(reckon_args:first_bad(reckon_args:rpc_checks(Nodes, Fun, Timeout)),
           [Nodes, Fun, Timeout]),
    reckon_code:named_rpc(Nodes, Fun, Timeout).

%% @doc {@link proc_count/2} over this node and every connected node, merged.
-spec cluster_proc_count(Attr, Num) -> [proc_attrs()] when
      Attr :: attr_name(),
      Num :: non_neg_integer().
cluster_proc_count(Attr, Num) ->
    ?SCAN_CHECK(proc_count, [Attr, Num]),
    reckon_cluster:proc_count(Attr, Num).

%% @doc {@link proc_window/3} over this node and every connected node, merged.
-spec cluster_proc_window(Attr, Num, Time) -> [proc_attrs()] when
      Attr :: attr_name(),
      Num :: non_neg_integer(),
      Time :: pos_integer().
cluster_proc_window(Attr, Num, Time) ->
    ?SCAN_CHECK(proc_window, [Attr, Num, Time]),
    reckon_cluster:proc_window(Attr, Num, Time).

%% @doc {@link bin_leak/1} over this node and every connected node, merged.
-spec cluster_bin_leak(Num) -> [proc_attrs()] when Num :: non_neg_integer().
cluster_bin_leak(Num) ->
    ?SCAN_CHECK(bin_leak, [Num]),
    reckon_cluster:bin_leak(Num).

%% @doc {@link inet_count/2} over this node and every connected node, merged.
-spec cluster_inet_count(Attr, Num) -> [inet_attrs()] when
      Attr :: inet_attr_name(),
      Num :: non_neg_integer().
cluster_inet_count(Attr, Num) ->
    ?SCAN_CHECK(inet_count, [Attr, Num]),
    reckon_cluster:inet_count(Attr, Num).

%% @doc {@link inet_window/3} over this node and every connected node, merged.
-spec cluster_inet_window(Attr, Num, Time) -> [inet_attrs()] when
      Attr :: inet_attr_name(),
      Num :: non_neg_integer(),
      Time :: pos_integer().
cluster_inet_window(Attr, Num, Time) ->
    ?SCAN_CHECK(inet_window, [Attr, Num, Time]),
    reckon_cluster:inet_window(Attr, Num, Time).


%%% After a crash

%% @doc {@link crashdump/2} with the default options.
-spec crashdump(File) -> {ok, Report} | {error, Posix}
              when File :: file:filename_all(), Report :: reckon_dump:report(),
                   Posix :: file:posix().
crashdump(File) ->
    ?CHECK(reckon_dump:arg_error(crashdump, [File]), [File]),
    reckon_dump:analyze(File, #{}).

%% @doc What the crash dump in `File' says, and the likely cause of the
%% crash, read in bounded memory on a dirty IO scheduler by the parser of the
%% `reckon-dump' binary (the same figures as its JSON); see
%% {@link reckon_dump} for the report and {@type reckon_dump:opts()}.
-spec crashdump(File, Opts) -> {ok, Report} | {error, Posix}
              when File :: file:filename_all(), Opts :: reckon_dump:opts(),
                   Report :: reckon_dump:report(), Posix :: file:posix().
crashdump(File, Opts) ->
    ?CHECK(reckon_dump:arg_error(crashdump, [File, Opts]), [File, Opts]),
    reckon_dump:analyze(File, Opts).

%% @doc The dependency graph of the loaded applications as DOT text (render
%% it with `dot -Tsvg'): library applications (no `mod') are boxes.
-spec app_deps() -> Dot when Dot :: binary().
app_deps() ->
    reckon_app_deps:dot().
