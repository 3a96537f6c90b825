#!/bin/sh
# Runs the demo (`make demo`): floods a slow consumer three times, unprotected,
# through a regulated sluice_drop valve and through a bounded sluice_box,
# prints one line per second and a summary, and ends by itself (about 35 s).
# DEMO_SECONDS=<n> sets the length of each phase (default 10).
set -eu
cd "$(dirname "$0")/.."
exec sh scripts/run-erl.sh _build/demo 'sluice_demo:main()' demo/*.erl
