#!/bin/sh
# Runs the benchmark suites (`make bench`): every suite, or only those named
# in BENCH_ONLY (comma- or space-separated: BENCH_ONLY=drop), in one node.
# Each case prints one line:
#   BENCH <suite>/<case> ours=<n> ref=<n> unit=<unit> better=<factor>
# Notes (starting with '#') go to standard error. Exits non-zero when the
# build fails or a suite crashes. See bench/bench.erl for how to add a suite.
set -eu
cd "$(dirname "$0")/.."
# Room for the reckon suite's node of 500 000 processes.
ERL_FLAGS="${ERL_FLAGS:-} +P 1048576"
export ERL_FLAGS
# bench.erl first: the suites name it as their behaviour.
exec sh scripts/run-erl.sh _build/bench 'bench:main()' bench/bench.erl bench/bench_*.erl
