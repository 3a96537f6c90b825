#!/bin/sh
# Runs the demo (`make demo`): builds sluice, compiles demo/*.erl into
# _build/demo and runs sluice_demo:main/0 in one Erlang node. It floods a
# slow consumer twice, unprotected and through a regulated sluice_drop valve,
# prints one line per second and a summary, and ends by itself (about 35 s).
# DEMO_SECONDS=<n> sets the length of each phase (default 15).
set -eu

cd "$(dirname "$0")/.."

log=$(mktemp)
if ! rebar3 compile >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "demo: rebar3 compile failed" >&2
    exit 1
fi
rm -f "$log"

out=_build/demo
mkdir -p "$out"
rm -f "$out"/*.beam
erlc -Werror +warn_missing_spec +debug_info -o "$out" demo/*.erl

set --
for ebin in _build/default/lib/*/ebin; do
    set -- "$@" -pa "$ebin"
done

exec erl -noshell "$@" -pa "$out" -eval 'sluice_demo:main()'
