# Sourced by scripts/test-consumer.sh and scripts/test-mix-consumer.sh.
#
# consumer_setup NAME TEMPLATE OUT DIR...: recreates _build/NAME from
# test/NAME (its DIRs copied, OUT written from TEMPLATE with @SLUICE_URL@ =
# file://<repository root> and @SLUICE_REF@ = the HEAD commit), and sets
# root, url, ref and scratch, CARGO_TARGET_DIR and PATH for the build.
# The dependencies are the committed tree: it says so if apps/ or native/
# differ from it.
consumer_setup() {
    name=$1 template=$2 out=$3
    shift 3
    root=$(cd "$(dirname "$0")/.." && pwd)
    url="file://$root"
    ref=$(git -C "$root" rev-parse HEAD)
    src="$root/test/$name"
    scratch="$root/_build/$name"
    if ! git -C "$root" diff --quiet HEAD -- apps native Cargo.toml Cargo.lock; then
        echo "$name: note: uncommitted changes in apps/ or native/ are not part of this test (it fetches $ref)"
    fi
    rm -rf "$scratch"
    mkdir -p "$scratch"
    for dir in "$@"; do
        cp -R "$src/$dir" "$scratch/"
    done
    sed -e "s|@SLUICE_URL@|$url|" -e "s|@SLUICE_REF@|$ref|" "$src/$template" >"$scratch/$out"
    # A cargo target directory of its own, kept under target/ across runs
    # (the hooks honour CARGO_TARGET_DIR). Not target/ itself: a cdylib's
    # output name has no hash, so the dependency's build (of HEAD) would
    # replace target/release/libsluice_nif.so, and cargo, finding this
    # tree's build still fresh, would then install that file into
    # apps/sluice/priv.
    CARGO_TARGET_DIR="$root/target/consumer"
    export CARGO_TARGET_DIR
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        PATH="$PATH:$HOME/.cargo/bin"
        export PATH
    fi
    echo "$name: sluice and reckon from $url at $ref (apps/sluice, apps/reckon)"
}
