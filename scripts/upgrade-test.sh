#!/usr/bin/env bash
# `make upgrade-test`: hot upgrades of a running release under load.
#
# Builds release A (the tree, 0.2.0) and release B (a copy of the tree at
# 0.2.1: appups 0.2.0 <-> 0.2.1 written here, sluice_box and reckon_metrics
# marked with an attribute `upgrade_mark', the NIF libraries built with the
# cargo feature layout_b, which changes the layout of every resource kind),
# with a relup and a tarball for B. Starts A as a daemon (a name and cookie
# of its own, as scripts/check-release.sh does), loads
# scripts/sluice_upgrade_load.erl into it and starts its
# load, then runs `bin/sluice upgrade 0.2.1', `bin/sluice downgrade 0.2.0'
# and `bin/sluice upgrade 0.2.1' under that load. Around each step the load
# is paused and read (see the module's doc for what is checked exactly),
# and the node's log must hold no crash, supervisor or error report.
# Prints a table per step; exits non-zero on any mismatch.
#
# UPGRADE_TEST_KEEP_NIFS (for example `sluice_nif'): NIF stub modules that
# B's appups leave out, so their libraries are never reloaded and the old
# one never unloaded; a diagnostic aid for when a library cannot take its
# objects over yet. Unset (the default), every library is reloaded.
#
# Scratch files: _build/upgrade-test (build/: both releases, run/: the
# installed A, b/: the copy of the tree).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ -x "$HOME/.cargo/bin/cargo" ] && case ":$PATH:" in
    *":$HOME/.cargo/bin:"*) ;;
    *) PATH="$PATH:$HOME/.cargo/bin"; export PATH ;;
esac

A=0.2.0
B=0.2.1
keep=" $(echo "${UPGRADE_TEST_KEEP_NIFS:-}" | tr ',' ' ') "
keep_list="[$(echo ${UPGRADE_TEST_KEEP_NIFS:-} | tr ' ' ',')]"
scratch="$root/_build/upgrade-test"
build="$scratch/build"
run="$scratch/run"
copy="$scratch/b"
rm -rf "$build" "$run" "$scratch/ebin"
mkdir -p "$scratch/ebin"

say() { echo "upgrade-test: $*"; }

# --- Release A ------------------------------------------------------------
vsn=$(sed -n 's/.*{vsn, *"\([^"]*\)".*/\1/p' apps/sluice/src/sluice.app.src)
if [ "$vsn" != "$A" ]; then
    say "the tree is at $vsn; this test upgrades from $A (update A and B here)" >&2
    exit 1
fi
say "building release A ($A)"
rebar3 release -o "$build" >"$scratch/build-a.log" 2>&1 || { tail -n 30 "$scratch/build-a.log" >&2; exit 1; }
cp -a "$build/sluice" "$run"

# --- Release B: a copy of the tree at 0.2.1 ---------------------------------
say "building release B ($B, NIF_FEATURES=layout_b)"
mkdir -p "$copy"
find "$copy" -mindepth 1 -maxdepth 1 ! -name _build -exec rm -rf {} +
# (the copied files keep their times: the apps are compiled afresh, so that
# no module built from an older copy stays)
rm -rf "$copy"/_build/*/lib/sluice "$copy"/_build/*/lib/reckon
tar -C "$root" --exclude=./_build --exclude=./target --exclude=./.git \
    --exclude='./test/*/_build' -cf - . | tar -C "$copy" -xf -
sed -i "s/{vsn, \"$A\"}/{vsn, \"$B\"}/" "$copy"/apps/*/src/*.app.src
sed -i "s/{release, {sluice, \"$A\"}/{release, {sluice, \"$B\"}/" "$copy/rebar.config"
for f in apps/sluice/src/sluice_box.erl apps/reckon/src/reckon_metrics.erl; do
    sed -i 's/^-module(\([a-z_]*\))\./-module(\1).\n-upgrade_mark(b)./' "$copy/$f"
done
# The servers whose state may change between versions are updated (suspended,
# code_change/3 both ways); every other module is loaded. NIF stubs first up,
# last down; every purge soft.
servers=" sluice_tables sluice_box_keeper sluice_box_warden sluice_drop_server \
sluice_drop_regulator sluice_group_server sluice_breaker_server sluice_lock_watcher \
reckon_keeper reckon_metrics_sampler reckon_metrics_sysmon "
# instr MODULE: its instruction, with a trailing comma.
instr() {
    case "$keep" in *" $1 "*) return ;; esac
    case "$servers" in
        *" $1 "*) echo "   {update, $1, {advanced, []}, soft_purge, soft_purge, []}," ;;
        *) echo "   {load_module, $1, soft_purge, soft_purge, []}," ;;
    esac
}
appup() { # appup APP NIF...: writes B's src/APP.appup.src
    local app=$1 m mods up down
    shift
    mods=$(cd "$copy/apps/$app/src" && ls ./*.erl | sed 's|^\./||; s/\.erl$//')
    up=$(for m in "$@"; do instr "$m"; done
         for m in $mods; do case " $* " in *" $m "*) ;; *) instr "$m" ;; esac; done)
    down=$(for m in $mods; do case " $* " in *" $m "*) ;; *) instr "$m" ;; esac; done
           for m in "$@"; do instr "$m"; done)
    printf '{"%s",\n [{"%s", [\n%s]}],\n [{"%s", [\n%s]}]}.\n' \
        "$B" "$A" "${up%,}" "$A" "${down%,}" >"$copy/apps/$app/src/$app.appup.src"
}
appup sluice sluice_nif
appup reckon reckon_nif reckon_tracer
(
    cd "$copy"
    export NIF_FEATURES=layout_b CARGO_TARGET_DIR="$root/target"
    rebar3 release -o "$build" &&
        rebar3 relup -n sluice -v "$B" -u "$A" -o "$build" &&
        rebar3 tar -n sluice -v "$B" -o "$build"
) >"$scratch/build-b.log" 2>&1 || { tail -n 30 "$scratch/build-b.log" >&2; exit 1; }
tarball=$(ls "$build"/sluice/sluice-"$B".tar.gz 2>/dev/null || true)
if [ -z "$tarball" ]; then
    say "no sluice-$B.tar.gz in $build/sluice (see $scratch/build-b.log)" >&2
    exit 1
fi
cp "$tarball" "$run/releases/sluice-$B.tar.gz"

# --- Start A ----------------------------------------------------------------
erlc -o "$scratch/ebin" scripts/sluice_upgrade_load.erl
bin="$run/bin/sluice"
name="sluice_upg_$$"
cookie="sluice_upg_$$"
VMARGS_PATH="$scratch/vm.args"
export VMARGS_PATH
sed -e "s/^-sname .*/-sname $name/" -e "s/^-name .*/-sname $name/" \
    -e "s/^-setcookie .*/-setcookie $cookie/" "$run/releases/$A/vm.args" >"$VMARGS_PATH"
RELX_RPC_TIMEOUT=${RELX_RPC_TIMEOUT:-60}
export RELX_RPC_TIMEOUT
epmd=$(ls "$run"/erts-*/bin/epmd 2>/dev/null | head -n 1 || true)
epmd=${epmd:-epmd}
if "$epmd" -names >/dev/null 2>&1; then had_epmd=yes; else had_epmd=no; fi
stop() {
    "$bin" stop >/dev/null 2>&1 || true
    if [ "$had_epmd" = no ]; then "$epmd" -kill >/dev/null 2>&1 || true; fi
}
trap stop EXIT

say "starting A as $name"
"$bin" daemon
i=0
until "$bin" ping >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -ge 60 ]; then
        say "the node did not answer ping within 30 s" >&2
        tail -n 30 "$run"/log/* >&2 2>/dev/null || true
        exit 1
    fi
    sleep 0.5
done
node=$("$bin" eval 'node().' | tr -d "'")

drv() {
    erl -noshell -sname "upgrade_drv_$$_$1" -setcookie "$cookie" -pa "$scratch/ebin" \
        -run sluice_upgrade_load main "$@"
}

# The node's log must hold no crash, supervisor or error report.
logs_clean() {
    if grep -n -E 'CRASH REPORT|SUPERVISOR REPORT|ERROR REPORT|crash_report|supervisor_report' \
        "$run"/log/erlang.log.* >"$scratch/reports.txt" 2>/dev/null; then
        say "reports in the node's log:" >&2
        head -n 20 "$scratch/reports.txt" >&2
        return 1
    fi
}

drv load "$node"
sleep 2
failed=0
step() { # step NAME COMMAND VERSION EXPECTED_RELEASES
    local what=$1 cmd=$2 vsn=$3 expect=$4
    drv before "$node"
    say "$what: bin/sluice $cmd $vsn (under load)"
    if ! "$bin" "$cmd" "$vsn" 2>&1 | tee "$scratch/$what.out" | sed 's/^/    /'; then
        failed=1
    fi
    sleep 2
    if ! "$bin" ping >/dev/null 2>&1; then
        say "$what: the node is down (a VM crash leaves no report: see $run/log and the kernel log)" >&2
        exit 1
    fi
    drv after "$node" "$what" "$expect" "$keep_list" || failed=1
    if logs_clean; then
        printf '    %-44s %-5s %s\n' "node log" ok "no crash, supervisor or error report"
    else
        printf '    %-44s %-5s %s\n' "node log" FAIL "see above"
        failed=1
    fi
}
step upgrade-1 upgrade "$B" "[{\"$B\",permanent},{\"$A\",old}]"
step downgrade downgrade "$A" "[{\"$A\",permanent},{\"$B\",old}]"
step upgrade-2 upgrade "$B" "[{\"$B\",permanent},{\"$A\",old}]"
drv finish "$node" || failed=1

trap - EXIT
stop
if [ "$failed" -ne 0 ]; then
    say "FAILED (logs: $run/log, builds: $scratch/build-*.log)" >&2
    exit 1
fi
say "ok: $A -> $B -> $A -> $B under load, every check exact"
