#!/bin/sh
# Builds and tests test/mix_consumer, a Mix project that depends on sluice
# and reckon the way Elixir users add them: git dependencies with `sparse:`
# (apps/sluice, apps/reckon) and `manager: :rebar3`, fetched through a
# file:// URL at the current HEAD commit. Each NIF is built by its app's own
# rebar3 compile hook inside Mix's dependency checkout.
#
# The project is copied to _build/mix_consumer (recreated on every run, so
# the dependencies are always fetched afresh) and its mix.exs is generated
# from mix.exs.template, because the repository path differs per machine.
# Mix is pointed at the system's rebar3 through MIX_REBAR3, so nothing is
# fetched from hex.pm.
#
# Usage: sh scripts/test-mix-consumer.sh [mix task, default: test]
set -eu

for cmd in mix rebar3; do
    if ! command -v "$cmd" >/dev/null 2>&1; then
        echo "mix_consumer: $cmd not found (scripts/ensure-deps.sh installs it)" >&2
        exit 1
    fi
done
. "$(dirname "$0")/consumer-setup.sh"
consumer_setup mix_consumer mix.exs.template mix.exs lib test
MIX_REBAR3=$(command -v rebar3)
MIX_ENV=test
export MIX_REBAR3 MIX_ENV
cd "$scratch"
# git's progress lines are kept out of the output unless the fetch fails.
if ! mix deps.get >deps.log 2>&1; then
    cat deps.log >&2
    exit 1
fi
[ $# -gt 0 ] || set -- test
mix "$@"
