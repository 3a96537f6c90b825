#!/bin/sh
# Builds the `sluice` release and checks that it boots and answers
# sluice_drop:random(0.5) and a reckon top-N (whose NIF library must load
# from the release) through `bin/sluice eval`. In the relx of rebar3
# 3.19 `eval` talks to a running node (through erl_call, so the expression
# ends with a dot): the release is started as a daemon first and stopped
# afterwards.
#
# The node runs under a name and cookie of its own (a copy of the release's
# vm.args, passed through VMARGS_PATH) so that it cannot meet another
# `sluice` node on this machine.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ -x "$HOME/.cargo/bin/cargo" ] && PATH="$PATH:$HOME/.cargo/bin" && export PATH

rebar3 release

rel="$root/_build/default/rel/sluice"
bin="$rel/bin/sluice"
vsn=$(awk '{print $2}' "$rel/releases/start_erl.data")
scratch="$root/_build/release-check"
mkdir -p "$scratch"
VMARGS_PATH="$scratch/vm.args"
export VMARGS_PATH
sed -e "s/^-sname .*/-sname sluice_check_$$/" -e "s/^-name .*/-sname sluice_check_$$/" \
    -e "s/^-setcookie .*/-setcookie sluice_check_$$/" \
    "$rel/releases/$vsn/vm.args" >"$VMARGS_PATH"
RELX_RPC_TIMEOUT=${RELX_RPC_TIMEOUT:-30}
export RELX_RPC_TIMEOUT

# The daemon starts epmd if none runs; stop it again afterwards in that case
# (epmd refuses -kill while other nodes are registered with it).
epmd=$(ls "$rel"/erts-*/bin/epmd 2>/dev/null | head -n 1)
epmd=${epmd:-epmd}
if "$epmd" -names >/dev/null 2>&1; then had_epmd=yes; else had_epmd=no; fi

stop() {
    "$bin" stop >/dev/null 2>&1 || true
    if [ "$had_epmd" = no ]; then
        "$epmd" -kill >/dev/null 2>&1 || true
    fi
}
trap stop EXIT

echo "release: starting $bin as sluice_check_$$"
"$bin" daemon
# Wait up to 30 s for the node to answer.
i=0
until "$bin" ping >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -ge 60 ]; then
        echo "release: the node did not answer ping within 30 s; its logs:" >&2
        tail -n 30 "$rel"/log/* >&2 2>/dev/null || true
        exit 1
    fi
    sleep 0.5
done

answer=$("$bin" eval 'sluice_drop:random(0.5).')
echo "release: sluice_drop:random(0.5) -> $answer"
case $answer in
    true | false) ;;
    *) echo "release: expected true or false" >&2; exit 1 ;;
esac

answer=$("$bin" eval 'length(reckon:proc_count(memory, 3)).')
echo "release: length(reckon:proc_count(memory, 3)) -> $answer"
if [ "$answer" != 3 ]; then
    echo "release: expected 3" >&2
    exit 1
fi

trap - EXIT
if ! "$bin" stop >/dev/null; then
    echo "release: bin/sluice stop failed" >&2
    exit 1
fi
[ "$had_epmd" = no ] && { "$epmd" -kill >/dev/null 2>&1 || true; }
echo "release: ok"
