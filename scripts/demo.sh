#!/bin/sh
# Runs the demo (`make demo`): floods a slow consumer twice, unprotected and
# through a regulated sluice_drop valve, prints one line per second and a
# summary, and ends by itself (about 35 s). DEMO_SECONDS=<n> sets the length
# of each phase (default 15).
set -eu
cd "$(dirname "$0")/.."
exec sh scripts/run-erl.sh _build/demo 'sluice_demo:main()' demo/*.erl
