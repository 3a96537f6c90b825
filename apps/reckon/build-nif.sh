#!/bin/sh
# Builds reckon's NIF libraries (native/reckon_nif, and native/reckon_tracer,
# the erl_tracer module of reckon_trace, which needs a library of its own) with the script sluice's
# own build uses (apps/sluice/build-nif.sh, which names the library after
# the directory it runs in). When reckon is a `git_subdir` dependency,
# rebar3 checks out only apps/reckon: the script is then added to that
# checkout from its own git history, offline, as the script itself adds
# native/.
set -eu

root=$(cd ../.. && pwd)
script="$root/apps/sluice/build-nif.sh"
if [ ! -f "$script" ] && [ -d "$root/.git" ]; then
    echo "reckon_nif: adding apps/sluice/build-nif.sh to the sparse dependency checkout in $root"
    git -C "$root" sparse-checkout add /apps/sluice/build-nif.sh 2>/dev/null ||
        git -C "$root" checkout HEAD -- apps/sluice/build-nif.sh
fi
sh "$script"
exec sh "$script" reckon_tracer
