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

root=$(cd "$(dirname "$0")/.." && pwd)
src="$root/test/consumer"
scratch="$root/_build/consumer"
url="file://$root"
ref=$(git -C "$root" rev-parse HEAD)

# The dependency is the committed tree: say so if apps/ or native/ differ.
if ! git -C "$root" diff --quiet HEAD -- apps native Cargo.toml Cargo.lock; then
    echo "consumer: note: uncommitted changes in apps/ or native/ are not part of this test (it fetches $ref)"
fi

rm -rf "$scratch"
mkdir -p "$scratch"
cp -R "$src/src" "$src/test" "$scratch/"
sed -e "s|@SLUICE_URL@|$url|" -e "s|@SLUICE_REF@|$ref|" \
    "$src/rebar.config.template" >"$scratch/rebar.config"

# A cargo target directory of its own, kept under target/ across runs (the
# hook honours CARGO_TARGET_DIR). Not target/ itself: a cdylib's output name
# has no hash, so the dependency's build (of HEAD) would replace
# target/release/libsluice_nif.so, and cargo, finding this tree's build still
# fresh, would then install that file into apps/sluice/priv.
CARGO_TARGET_DIR="$root/target/consumer"
export CARGO_TARGET_DIR
[ -x "$HOME/.cargo/bin/cargo" ] && PATH="$PATH:$HOME/.cargo/bin" && export PATH

echo "consumer: sluice and reckon from $url at $ref (apps/sluice, apps/reckon)"
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
