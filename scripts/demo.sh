#!/bin/sh
# Runs the demo (`make demo`): builds the `sluice` release, then a driver
# node (demo/sluice_demo.erl) runs a service with a bounded database pool,
# bursts and an outage twice, unprotected and protected by sluice, each in
# a node started from the release under a name and cookie of its own; it
# prints one line per second and a summary, and writes the report
# _build/demo/report/index.html (rendered to report.png beside it when
# headless Chromium is installed). Ends by itself in about 100 s.
#
# DEMO_KEEP=1 (make demo KEEP=1) keeps the protected node running and
# prints how to attach a remote shell to it; DEMO_SECONDS=<n> sets the
# length of each run (default 30).
set -eu
cd "$(dirname "$0")/.."
[ -x "$HOME/.cargo/bin/cargo" ] && PATH="$PATH:$HOME/.cargo/bin" && export PATH

out=_build/demo
log=$(mktemp)
echo "demo: building the release (rebar3 release; a first build compiles the NIFs: minutes)"
if ! rebar3 release >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "$0: rebar3 release failed" >&2
    exit 1
fi
rm -f "$log"

mkdir -p "$out/ebin"
rm -f "$out"/ebin/*.beam
for src in demo/*.erl; do
    erlc -Werror +warn_missing_spec +debug_info -pa "$out/ebin" -o "$out/ebin" "$src"
done

DEMO_REL=$(pwd)/_build/default/rel/sluice
DEMO_OUT=$out
DEMO_ID=$$
export DEMO_REL DEMO_OUT DEMO_ID
# Interrupted, stop the nodes the driver started (a normal end leaves only
# the KEEP=1 node running).
rel_bin="$DEMO_REL/bin/sluice"
stop_nodes() {
    for args in "$out"/vm.args.*_"$DEMO_ID"; do
        [ -f "$args" ] || continue
        VMARGS_PATH=$(pwd)/$args "$rel_bin" stop >/dev/null 2>&1 || true
    done
    exit 130
}
trap stop_nodes INT TERM

set --
for ebin in _build/default/lib/*/ebin; do
    set -- "$@" -pa "$ebin"
done
erl +B -noshell -sname "sluice_demo_driver_$$" -setcookie "sluice_demo_driver_$$" \
    "$@" -pa "$out/ebin" -eval 'sluice_demo:main()'
trap - INT TERM

if command -v chromium >/dev/null 2>&1; then
    sh scripts/render-report.sh "$out/report/index.html" "$out/report/report.png" >/dev/null 2>&1 \
        && echo "report, rendered: $(pwd)/$out/report/report.png"
fi
