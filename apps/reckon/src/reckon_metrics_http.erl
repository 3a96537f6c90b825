%% @private
%% @doc The `/metrics' endpoint of {@link reckon_metrics}: an inets httpd
%% server whose one module answers `GET /metrics' (and `HEAD') with
%% {@link reckon_metrics:prometheus_text/0} in the Prometheus text format
%% 0.0.4, and everything else with 404 (405 for other methods on
%% `/metrics'). The sampler starts it when its `http_port' option is set
%% and stops it when sampling stops; it serves no file.
-module(reckon_metrics_http).

-export([start/2, stop/1, do/1]).

%% Fields of httpd's `#mod{}' request record (inets/include/httpd.hrl),
%% read by position: the header declares the record without types, which
%% this project's `warn_untyped_record' refuses.
-define(MOD_METHOD, 7).
-define(MOD_REQUEST_URI, 9).

-define(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8").

%% @doc Starts a server on `Ip':`Port' (port 0: one the OS picks), with
%% inets started if it was not; the server's pid and its port.
-spec start(inet:ip_address(), inet:port_number()) ->
    {ok, pid(), inet:port_number()} | {error, term()}.
start(Ip, Port) ->
    %% httpd wants an existing server and document root; nothing is
    %% served from it.
    Root = code:priv_dir(reckon),
    Config = [{port, Port}, {bind_address, Ip}, {ipfamily, family(Ip)},
              {server_name, "reckon"}, {server_root, Root}, {document_root, Root},
              {modules, [?MODULE]}, {keep_alive, true}, {max_clients, 16}],
    case application:ensure_all_started(inets) of
        {ok, _} ->
            case inets:start(httpd, Config) of
                {ok, Pid} ->
                    case httpd:info(Pid, [port]) of
                        [{port, Bound}] -> {ok, Pid, Bound};
                        Other -> _ = stop(Pid), {error, {no_port, Other}}
                    end;
                {error, _} = Error ->
                    Error
            end;
        {error, _} = Error ->
            Error
    end.

-spec family(inet:ip_address()) -> inet | inet6.
family(Ip) when tuple_size(Ip) =:= 8 -> inet6;
family(_Ip) -> inet.

%% @doc Stops the server `Pid'.
-spec stop(pid()) -> ok.
stop(Pid) ->
    _ = inets:stop(httpd, Pid),
    ok.

%% @doc The httpd module callback: answers `/metrics', refuses the rest.
-spec do(tuple()) -> {proceed, list()}.
do(Mod) ->
    Method = element(?MOD_METHOD, Mod),
    Uri = element(?MOD_REQUEST_URI, Mod),
    Path = hd(string:split(Uri, "?")),
    {Code, Body} = case {Path, Method} of
                       {"/metrics", "GET"} -> {200, metrics()};
                       {"/metrics", "HEAD"} -> {200, metrics()};
                       {"/metrics", _} -> {405, <<"only GET and HEAD\n">>};
                       _ -> {404, <<"not found: the metrics are at /metrics\n">>}
                   end,
    Sent = case Method of
               "HEAD" -> <<>>;
               _ -> Body
           end,
    Headers = [{code, Code}, {content_type, ?CONTENT_TYPE},
               {content_length, integer_to_list(iolist_size(Body))}],
    {proceed, [{response, {response, Headers, Sent}}]}.

-spec metrics() -> binary().
metrics() ->
    iolist_to_binary(reckon_metrics:prometheus_text()).
