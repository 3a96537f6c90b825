#!/bin/sh
# Builds the Rust NIF library of the application whose directory it runs in
# (apps/<app> builds native/<app>_nif, release profile) and installs it as
# priv/<app>_nif.so. Runs from the app directory as a rebar3 pre-compile hook
# (apps/reckon's hook runs this same script). An argument names another
# library of the app instead (apps/reckon also builds reckon_tracer).
#
# The crates live at the root of the repository (native/). When an app is a
# `git_subdir` dependency, rebar3 checks out only apps/<app>; the crates are
# then added to that checkout from its own git history, offline.
#
# A loaded .so is never overwritten in place: the new file is copied under a
# temporary name in priv/ and renamed over the old one, so a running VM keeps
# its mapping of the old file.
set -eu

app_dir=$(pwd)
root=$(cd ../.. && pwd)
lib=${1:-$(basename "$app_dir")_nif}

if [ ! -f "$root/native/$lib/Cargo.toml" ] && [ -d "$root/.git" ]; then
    echo "$lib: adding native/ to the sparse dependency checkout in $root"
    git -C "$root" sparse-checkout add /native /Cargo.toml /Cargo.lock 2>/dev/null ||
        git -C "$root" checkout HEAD -- native Cargo.toml Cargo.lock
fi
if [ ! -f "$root/native/$lib/Cargo.toml" ]; then
    echo "$lib: cannot find $root/native/$lib/Cargo.toml (is this a full checkout?)" >&2
    exit 1
fi
if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] && PATH="$HOME/.cargo/bin:$PATH" && export PATH
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "$lib: cargo not found: install a stable Rust toolchain (https://rustup.rs) to build the NIFs" >&2
    exit 1
fi

# NIF_FEATURES (for the upgrade tests: layout_b) adds cargo features; such a
# build goes to a target directory of its own.
features=${NIF_FEATURES:-}
target_dir=${CARGO_TARGET_DIR:-$root/target}
if [ -n "$features" ]; then
    target_dir="$target_dir/features-$(echo "$features" | tr -c 'a-z0-9_\n' '_')"
    cargo build --quiet --release --locked --manifest-path "$root/Cargo.toml" -p "$lib" \
        --target-dir "$target_dir" --features "$lib/$features"
else
    cargo build --quiet --release --locked --manifest-path "$root/Cargo.toml" -p "$lib" --target-dir "$target_dir"
fi

case $(uname -s) in
    Darwin) built="$target_dir/release/lib$lib.dylib" ;;
    *) built="$target_dir/release/lib$lib.so" ;;
esac
mkdir -p "$app_dir/priv"
dest="$app_dir/priv/$lib.so"
if [ -f "$dest" ] && cmp -s "$built" "$dest"; then
    exit 0
fi
tmp="$app_dir/priv/.$lib.so.$$"
cp "$built" "$tmp"
mv -f "$tmp" "$dest"
