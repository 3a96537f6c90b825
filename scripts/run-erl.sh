#!/bin/sh
# run-erl.sh OUT EXPR SOURCE...: builds sluice (rebar3 compile, output shown
# only on failure), compiles SOURCE... in order into OUT, and replaces itself
# with an Erlang node that has every umbrella app and OUT on its code path
# and evaluates EXPR. Used by scripts/bench.sh.
set -eu

cd "$(dirname "$0")/.."
out=$1
expr=$2
shift 2

log=$(mktemp)
if ! rebar3 compile >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "$0: rebar3 compile failed" >&2
    exit 1
fi
rm -f "$log"

mkdir -p "$out"
rm -f "$out"/*.beam
for src in "$@"; do
    erlc -Werror +warn_missing_spec +debug_info -pa "$out" -o "$out" "$src"
done

set --
for ebin in _build/default/lib/*/ebin; do
    set -- "$@" -pa "$ebin"
done
exec erl -noshell "$@" -pa "$out" -eval "$expr"
