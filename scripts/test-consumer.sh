#!/bin/sh
# Builds and tests test/consumer, a separate rebar3 project that depends on
# sluice and reckon the way users add them: git_subdir dependencies on
# apps/sluice and apps/reckon of this repository, fetched through a file://
# URL at the current HEAD commit. Each NIF is built by its app's own compile
# hook inside its dependency checkout.
#
# The project is copied to _build/consumer (recreated on every run, so the
# dependency is always fetched afresh) and its rebar.config is generated from
# rebar.config.template, because the repository path differs per machine.
#
# Usage: sh scripts/test-consumer.sh [rebar3 command, default: ct]
set -eu

. "$(dirname "$0")/consumer-setup.sh"
consumer_setup consumer rebar.config.template rebar.config src test
cd "$scratch"
[ $# -gt 0 ] || set -- ct
rebar3 "$@"

# Each library must come from its dependency's own hook, not from this tree.
# (rebar3 3.19 keeps the whole sparse checkout in lib/<app>, the app in
# lib/<app>/apps/<app>.)
for app in sluice reckon; do
    dep="$scratch/_build/default/lib/$app"
    if [ ! -f "$dep/apps/$app/priv/${app}_nif.so" ] && [ ! -f "$dep/priv/${app}_nif.so" ]; then
        echo "consumer: no priv/${app}_nif.so in $dep: the dependency's compile hook did not build it" >&2
        exit 1
    fi
done
