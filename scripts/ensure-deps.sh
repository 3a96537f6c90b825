#!/bin/sh
# Checks that everything sluice needs to build and test is installed:
# Erlang/OTP >= 25 with the applications the tests use, rebar3, git, make,
# a C linker, a Rust toolchain with rustfmt and clippy, Elixir's mix (for
# the Mix consumer test), python3 (its json module checks reckon-dump's
# JSON in the crash-dump suite), GNU time (the crash-dump bench reads
# peak memory through /usr/bin/time), Prometheus (promtool and the
# server, for the reckon_metrics tests), PyPI's hdrhistogram for python3
# (pip; it decodes reckon_metrics' encoded histograms in a test), tmux
# (the reckon_top suite drives a remote shell in it) and Chromium (the demo's
# report is rendered headless to a PNG, in make demo and in a test).
#
# On Debian/Ubuntu (apt-get present) missing Erlang pieces are installed from
# the distribution's erlang-* packages (with sudo when not root). Elsewhere,
# or for Rust, it prints what to install and exits non-zero. When all is
# present it only checks, in well under a second or two.
set -eu

# Debian packages that provide everything below (no hex.pm needed).
apt_packages="erlang-nox erlang-dev rebar3 erlang-common-test erlang-dialyzer
erlang-proper erlang-proper-dev erlang-eunit erlang-tools erlang-runtime-tools
erlang-reltool git make gcc libc6-dev elixir python3 time prometheus tmux chromium"
# OTP applications the build, tests, docs and release use.
otp_apps="common_test dialyzer proper eunit tools runtime_tools reltool edoc xmerl sasl"
min_otp=25

# The Rust toolchain may live only in ~/.cargo/bin.
case ":$PATH:" in
    *":$HOME/.cargo/bin:"*) ;;
    *) [ -d "$HOME/.cargo/bin" ] && PATH="$PATH:$HOME/.cargo/bin" && export PATH ;;
esac

# Prints what is missing on the Erlang side, one item per line.
missing_erlang() {
    for cmd in erl rebar3 git make cc mix python3 promtool prometheus tmux chromium; do
        command -v "$cmd" >/dev/null 2>&1 || echo "$cmd"
    done
    [ -x /usr/bin/time ] || echo /usr/bin/time
    command -v erl >/dev/null 2>&1 || return 0
    # One VM start checks the OTP release, each application and the headers
    # erlang-dev and erlang-proper-dev provide.
    erl -noshell -noinput -eval '
        [Min | Apps] = init:get_plain_arguments(),
        Rel = list_to_integer(erlang:system_info(otp_release)),
        Rel >= list_to_integer(Min) orelse io:format("otp>=~s (found ~p)~n", [Min, Rel]),
        [io:format("~s~n", [A]) || A <- Apps, code:lib_dir(list_to_atom(A)) =:= {error, bad_name}],
        Nif = filename:join([code:root_dir(), "usr", "include", "erl_nif.h"]),
        filelib:is_regular(Nif) orelse io:format("erl_nif.h~n"),
        case code:lib_dir(proper) of
            {error, _} -> ok;
            P -> filelib:is_regular(filename:join([P, "include", "proper.hrl"]))
                     orelse io:format("proper.hrl~n")
        end,
        halt().' -extra "$min_otp" $otp_apps
}

missing=$(missing_erlang | tr '\n' ' ')
if [ -n "$missing" ]; then
    echo "ensure-deps: missing: $missing"
    if ! command -v apt-get >/dev/null 2>&1; then
        cat >&2 <<EOF
ensure-deps: no apt-get here; please install:
  - Erlang/OTP >= $min_otp with common_test, dialyzer, eunit, tools, runtime_tools,
    reltool, edoc, xmerl, sasl and the erl_nif.h headers
    (e.g. from https://www.erlang.org/downloads, kerl, asdf, or your package manager)
  - PropEr for OTP (https://github.com/proper-testing/proper) on the code path
  - rebar3 >= 3.19 (https://rebar3.org/docs/getting-started/)
  - git, make and a C compiler/linker (cc)
  - Elixir >= 1.14 with mix (only for the Mix consumer test in make test)
  - python3 (for the crash-dump suite) and GNU time as /usr/bin/time (for make bench)
  - Prometheus (promtool and the prometheus server, for the reckon_metrics tests)
  - then: python3 -m pip install hdrhistogram (for the reckon_metrics tests)
  - tmux (for the reckon_top tests)
  - Chromium as chromium (headless, for the demo's report and its test)
EOF
        exit 1
    fi
    if [ "$(id -u)" -eq 0 ]; then
        sudo=
    elif command -v sudo >/dev/null 2>&1; then
        sudo=sudo
    else
        echo "ensure-deps: not root and no sudo: as root, run: apt-get update && apt-get install -y" $apt_packages >&2
        exit 1
    fi
    echo "ensure-deps: installing Debian packages:" $apt_packages
    DEBIAN_FRONTEND=noninteractive
    export DEBIAN_FRONTEND
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
    # No recommends: rebar3 recommends the full `erlang` package (X11, wx).
    # shellcheck disable=SC2086
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $apt_packages
    missing=$(missing_erlang | tr '\n' ' ')
    if [ -n "$missing" ]; then
        echo "ensure-deps: still missing after apt-get install: $missing" >&2
        if echo "$missing" | grep -q "otp>="; then
            echo "ensure-deps: this distribution's Erlang is too old; install OTP >= $min_otp (https://www.erlang.org/downloads)" >&2
        fi
        exit 1
    fi
fi

# The hdrhistogram package of PyPI (HdrHistogram_py), through pip: the
# independent decoder reckon_metrics_SUITE checks reckon_metrics:encode/1
# against (scripts/check-hdr.py). Installed for the python3 on PATH, the
# one the tests run; pip itself from Debian's python3-pip when missing.
if ! python3 -c 'import hdrh.histogram' >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then sudo=; else sudo=sudo; fi
    if ! python3 -m pip --version >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
        echo "ensure-deps: installing python3-pip"
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-pip
    fi
    echo "ensure-deps: installing hdrhistogram (pip)"
    # Debian's python3 refuses pip installs outside a venv unless told (PEP 668);
    # an older pip knows no such flag.
    $sudo python3 -m pip install -q --root-user-action=ignore --break-system-packages hdrhistogram \
        || $sudo python3 -m pip install -q hdrhistogram \
        || { echo "ensure-deps: pip install hdrhistogram failed; install it for $(command -v python3)" >&2; exit 1; }
    python3 -c 'import hdrh.histogram' || { echo "ensure-deps: hdrhistogram still missing" >&2; exit 1; }
fi

# Rust: never installed here (rustup changes the user's environment).
rust_missing=
command -v cargo >/dev/null 2>&1 || rust_missing="cargo "
cargo fmt --version >/dev/null 2>&1 || rust_missing="${rust_missing}rustfmt "
cargo clippy --version >/dev/null 2>&1 || rust_missing="${rust_missing}clippy "
if [ -n "$rust_missing" ]; then
    echo "ensure-deps: missing Rust tools: $rust_missing" >&2
    if command -v rustup >/dev/null 2>&1; then
        echo "ensure-deps: run: rustup component add rustfmt clippy" >&2
    else
        echo "ensure-deps: install Rust stable with rustup (https://rustup.rs), then: rustup component add rustfmt clippy" >&2
    fi
    exit 1
fi

echo "ensure-deps: ok ($(erl -noshell -eval 'io:format("OTP ~s", [erlang:system_info(otp_release)]), halt().'), $(rebar3 version | awk '{print "rebar3", $2}'), $(cargo --version | awk '{print "cargo", $2}'))"
