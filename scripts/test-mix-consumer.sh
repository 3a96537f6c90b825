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

root=$(cd "$(dirname "$0")/.." && pwd)
src="$root/test/mix_consumer"
scratch="$root/_build/mix_consumer"
url="file://$root"
ref=$(git -C "$root" rev-parse HEAD)

for cmd in mix rebar3; do
    if ! command -v "$cmd" >/dev/null 2>&1; then
        echo "mix_consumer: $cmd not found (scripts/ensure-deps.sh installs it)" >&2
        exit 1
    fi
done
if ! git -C "$root" diff --quiet HEAD -- apps native Cargo.toml Cargo.lock; then
    echo "mix_consumer: note: uncommitted changes in apps/ or native/ are not part of this test (it fetches $ref)"
fi

rm -rf "$scratch"
mkdir -p "$scratch"
cp -R "$src/lib" "$src/test" "$scratch/"
sed -e "s|@SLUICE_URL@|$url|" -e "s|@SLUICE_REF@|$ref|" \
    "$src/mix.exs.template" >"$scratch/mix.exs"

# Cargo's build cache of its own, as for the rebar3 consumer (see
# scripts/test-consumer.sh for why it is not target/ itself).
CARGO_TARGET_DIR="$root/target/consumer"
MIX_REBAR3=$(command -v rebar3)
MIX_ENV=test
export CARGO_TARGET_DIR MIX_REBAR3 MIX_ENV
[ -x "$HOME/.cargo/bin/cargo" ] && PATH="$PATH:$HOME/.cargo/bin" && export PATH

echo "mix_consumer: sluice and reckon from $url at $ref (apps/sluice, apps/reckon)"
cd "$scratch"
# git's progress lines are kept out of the output unless the fetch fails.
if ! mix deps.get >deps.log 2>&1; then
    cat deps.log >&2
    exit 1
fi
[ $# -gt 0 ] || set -- test
mix "$@"
