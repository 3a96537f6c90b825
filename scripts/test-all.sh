#!/usr/bin/env bash
# Runs every check and test of the project (`make test`) and ends with one
# line "N passed, M failed"; exits non-zero if anything failed.
#
# Counting: each Rust test, eunit test and Common Test case counts as one
# (cargo's "test result:" lines, rebar3's eunit and ct summaries, the consumer
# project's ct summary, the Mix consumer's ExUnit summary); fmt, clippy,
# xref, dialyzer, edoc, the check of edoc's type descriptions, the release
# check and the upgrade test count as one test each. A step
# that fails without a test summary (a crash, a suite that does not compile)
# counts as one failure. Every step runs even after a failure, except that a
# failed `rebar3 compile` stops the run. Each step's output is kept in
# _build/test-all/<step>.log.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ -x "$HOME/.cargo/bin/cargo" ] && case ":$PATH:" in
    *":$HOME/.cargo/bin:"*) ;;
    *) PATH="$PATH:$HOME/.cargo/bin"; export PATH ;;
esac

logs="$root/_build/test-all"
mkdir -p "$logs"
passed=0
failed=0
failures=()
timings=()

# run STEP CMD...: runs CMD with its output shown and kept in $logs/STEP.log;
# sets $rc and $out (the output without colour codes).
run() {
    step=$1
    shift
    echo
    echo "==> $step: $*"
    step_start=$(date +%s)
    step_passed=$passed
    step_failed=$failed
    set +e
    "$@" 2>&1 | tee "$logs/$step.log"
    rc=${PIPESTATUS[0]}
    set -e
    step_secs=$(($(date +%s) - step_start))
    out=$(sed 's/\x1b\[[0-9;]*[A-Za-z]//g' "$logs/$step.log")
}

# record: adds the step just counted to the timings table.
record() {
    timings+=("$(printf '%-11s %4ss  %-16s %s passed, %s failed' "$step" "$step_secs" \
        "$([ "$rc" -eq 0 ] && echo ok || echo "exit $rc")" \
        $((passed - step_passed)) $((failed - step_failed)))")
}

pass() { passed=$((passed + $1)); }
fail() { failed=$((failed + $1)); failures+=("$2"); }

# check STEP CMD...: a step that counts as one test.
check() {
    local step=$1
    run "$@"
    if [ "$rc" -eq 0 ]; then pass 1; else fail 1 "$step"; fi
    record
}

# Adds the counts of a rebar3 ct run: "All N tests passed." or
# "Failed F tests. Skipped S (U, A) tests. Passed P tests." Auto-skipped
# cases (a failed init_per_*) count as failed, user-skipped ones not at all.
count_ct() {
    local step=$1 logdir=$2 p=0 f=0 a=0 line
    line=$(grep -E '^(All [0-9]+ tests passed\.|(Failed|Skipped|Passed) [0-9]+ )' <<<"$out" | tail -n 1 || true)
    if [[ $line =~ All\ ([0-9]+)\ tests\ passed ]]; then p=${BASH_REMATCH[1]}; fi
    if [[ $line =~ Passed\ ([0-9]+)\ tests ]]; then p=${BASH_REMATCH[1]}; fi
    if [[ $line =~ Failed\ ([0-9]+)\ tests ]]; then f=${BASH_REMATCH[1]}; fi
    if [[ $line =~ Skipped\ [0-9]+\ \([0-9]+,\ ([0-9]+)\)\ tests ]]; then a=${BASH_REMATCH[1]}; fi
    pass "$p"
    if [ $((f + a)) -gt 0 ]; then
        fail $((f + a)) "$step ($f failed, $a auto-skipped)"
    elif [ "$rc" -ne 0 ]; then
        fail 1 "$step (exit $rc, no test summary)"
    fi
    if [ "$rc" -ne 0 ] || [ $((f + a)) -gt 0 ]; then
        echo "$step: Common Test logs: $logdir/index.html"
        # Name each failed case and its reason in the closing summary too,
        # since only the end of a long run may be kept.
        while read -r line; do
            failures+=("  ${line:0:400}")
        done < <(grep -A1 -E '^%%% [A-Za-z0-9_]+ ==> .*(FAILED|auto_skipped)' <<<"$out" | grep -v '^--$' | head -n 20 || true)
    fi
    record
}

# --- Rust -----------------------------------------------------------------
check fmt cargo fmt --all --check
check clippy cargo clippy --workspace --all-targets --release --locked -- -D warnings

# cargo_counts STEP: counts the "test result:" lines of the step just run.
cargo_counts() {
    local step=$1 p=0 f=0 line
    while read -r line; do
        if [[ $line =~ ([0-9]+)\ passed\;\ ([0-9]+)\ failed ]]; then
            p=$((p + BASH_REMATCH[1]))
            f=$((f + BASH_REMATCH[2]))
        fi
    done < <(grep '^test result:' <<<"$out" || true)
    pass "$p"
    if [ "$f" -gt 0 ]; then
        fail "$f" "$step"
    elif [ "$rc" -ne 0 ]; then
        fail 1 "$step (exit $rc, no test summary)"
    fi
    record
}

run cargo-test cargo test --workspace --locked
cargo_counts cargo-test
# loom explores every interleaving of the tests built with --cfg loom.
run loom env RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
    cargo test -p sluice_core --release --locked loom
cargo_counts loom

# --- Erlang ---------------------------------------------------------------
run compile rebar3 compile
if [ "$rc" -ne 0 ]; then
    fail 1 "compile (the remaining steps were not run)"
    record
else
    record
    check xref rebar3 xref
    check dialyzer rebar3 dialyzer

    # edoc must build without any warning.
    run edoc rebar3 edoc
    if [ "$rc" -eq 0 ] && ! grep -qi warning <<<"$out"; then
        pass 1
    else
        fail 1 "edoc"
    fi
    record
    # Every type of every public module has its own description in that
    # HTML, and the options types name their keys and defaults.
    check edoc-types escript scripts/check-edoc-types.escript

    # eunit prints "T tests, F failures[, S skipped][, C cancelled]" (T counts
    # all four) or "0 tests".
    run eunit rebar3 eunit
    line=$(grep -E '^[0-9]+ tests' <<<"$out" | tail -n 1 || true)
    t=0 f=0 s=0 c=0
    if [[ $line =~ ^([0-9]+)\ tests ]]; then t=${BASH_REMATCH[1]}; fi
    if [[ $line =~ ([0-9]+)\ failures ]]; then f=${BASH_REMATCH[1]}; fi
    if [[ $line =~ ([0-9]+)\ skipped ]]; then s=${BASH_REMATCH[1]}; fi
    if [[ $line =~ ([0-9]+)\ cancelled ]]; then c=${BASH_REMATCH[1]}; fi
    pass $((t - f - s - c))
    if [ $((f + c)) -gt 0 ]; then
        fail $((f + c)) "eunit ($f failed, $c cancelled)"
    elif [ "$rc" -ne 0 ]; then
        fail 1 "eunit (exit $rc, no test summary)"
    fi
    record

    # The layout_b builds of every NIF library, which the migration suites
    # load over the default ones, and the wire_b build reckon_migrate_SUITE
    # must refuse (the suites run the same commands, which do nothing once
    # they are up to date).
    check layout-b sh -c "cargo build --quiet --release --locked -p sluice_nif -p reckon_nif -p reckon_tracer \
        --features sluice_nif/layout_b,reckon_nif/layout_b,reckon_tracer/layout_b --target-dir target/features-layout_b &&
        cargo build --quiet --release --locked -p reckon_nif --features reckon_nif/wire_b \
        --target-dir target/features-wire_b"

    # apps/*/test and the umbrella's test/ (rebar3 3.19 runs both by default).
    # Every suite must have run (a config change could silently drop one).
    run ct rebar3 ct
    for suite in apps/*/test/*_SUITE.erl test/*_SUITE.erl; do
        [ -f "$suite" ] || continue
        name=$(basename "$suite" .erl)
        if [ "$rc" -eq 0 ] && ! grep -q "^%%% $name:" <<<"$out"; then
            fail 1 "ct: $suite did not run"
        fi
    done
    count_ct ct "$root/_build/test/logs"

    run consumer sh scripts/test-consumer.sh
    count_ct consumer "$root/_build/consumer/_build/test/logs"

    # ExUnit prints "T tests, F failures[, E excluded][, S skipped][, I invalid]"
    # (T counts all of them).
    run mix-consumer sh scripts/test-mix-consumer.sh
    line=$(grep -E '[0-9]+ tests?, [0-9]+ failures?' <<<"$out" | tail -n 1 || true)
    t=0 f=0 e=0 s=0 i=0
    if [[ $line =~ ([0-9]+)\ tests? ]]; then t=${BASH_REMATCH[1]}; fi
    if [[ $line =~ ([0-9]+)\ failures? ]]; then f=${BASH_REMATCH[1]}; fi
    if [[ $line =~ ([0-9]+)\ excluded ]]; then e=${BASH_REMATCH[1]}; fi
    if [[ $line =~ ([0-9]+)\ skipped ]]; then s=${BASH_REMATCH[1]}; fi
    if [[ $line =~ ([0-9]+)\ invalid ]]; then i=${BASH_REMATCH[1]}; fi
    pass $((t - f - e - s - i))
    if [ $((f + i)) -gt 0 ]; then
        fail $((f + i)) "mix-consumer ($f failed, $i invalid)"
    elif [ "$rc" -ne 0 ] || [ "$t" -eq 0 ]; then
        fail 1 "mix-consumer (exit $rc, no test summary)"
    fi
    record

    check release sh scripts/check-release.sh
    # A -> B -> A -> B hot upgrades of a running release under load.
    check upgrade bash scripts/upgrade-test.sh
fi

echo
echo "Steps (wall time, exit status, tests counted):"
printf '  %s\n' "${timings[@]}"
if [ "${#failures[@]}" -gt 0 ]; then
    echo "Failed:"
    printf '  %s\n' "${failures[@]}"
    echo "Logs: $logs/<step>.log"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
