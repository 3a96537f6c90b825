#!/bin/sh
# Runs the benchmark suites (`make bench`): builds sluice, compiles bench/*.erl
# into _build/bench and runs every suite, or only those named in BENCH_ONLY
# (comma- or space-separated: BENCH_ONLY=drop), in one Erlang node.
# Each case prints one line:
#   BENCH <suite>/<case> ours=<n> ref=<n> unit=<unit> better=<factor>
# Notes (starting with '#') go to standard error. Exits non-zero when the
# build fails or a suite crashes. See bench/bench.erl for how to add a suite.
set -eu

cd "$(dirname "$0")/.."

log=$(mktemp)
if ! rebar3 compile >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "bench: rebar3 compile failed" >&2
    exit 1
fi
rm -f "$log"

out=_build/bench
mkdir -p "$out"
rm -f "$out"/*.beam
flags="-Werror +warn_missing_spec +debug_info -pa $out -o $out"
# bench.erl first: the suites name it as their behaviour.
erlc $flags bench/bench.erl
for src in bench/bench_*.erl; do
    erlc $flags "$src"
done

# -pa: every app of the umbrella (and its deps) plus the bench modules.
set --
for ebin in _build/default/lib/*/ebin; do
    set -- "$@" -pa "$ebin"
done

exec erl -noshell "$@" -pa "$out" -eval 'bench:main()'
