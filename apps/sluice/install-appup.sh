#!/bin/sh
# Installs src/<app>.appup.src as ebin/<app>.appup (rebar3 does not), so
# that `rebar3 relup' and a release's release_handler find the upgrade
# instructions. Runs from the app directory as a rebar3 post-compile hook
# (apps/reckon has a copy of this script: a `git_subdir' dependency checks
# out only its own app). The file is read with file:consult/1 first, so a
# syntax error fails the build rather than a later upgrade.
set -eu

app=$(basename "$(pwd)")
src="src/$app.appup.src"
# Where rebar3 writes this app's ebin: its output directory under `rebar3
# bare compile' (how Mix builds a rebar3 dependency), else under the
# profile's lib directory.
if [ -n "${REBAR_BARE_COMPILER_OUTPUT_DIR:-}" ]; then
    ebin="$REBAR_BARE_COMPILER_OUTPUT_DIR/ebin"
elif [ -n "${REBAR_DEPS_DIR:-}" ]; then
    ebin="$REBAR_DEPS_DIR/$app/ebin"
else
    echo "$app: install-appup.sh runs as a rebar3 hook (no REBAR_DEPS_DIR): $src not installed" >&2
    exit 0
fi
[ -f "$src" ] || exit 0
erl -noshell -eval '
    [Src, Vsn] = init:get_plain_arguments(),
    case file:consult(Src) of
        {ok, [{Vsn, Up, Down}]} when is_list(Up), is_list(Down) -> halt(0);
        {ok, Other} -> io:format(standard_error, "~s: not {\"~s\", Up, Down}: ~P~n",
                                 [Src, Vsn, Other, 6]), halt(1);
        {error, Why} -> io:format(standard_error, "~s: ~s~n",
                                  [Src, file:format_error(Why)]), halt(1)
    end.' -extra "$src" "$(sed -n 's/.*{vsn, *"\([^"]*\)".*/\1/p' "src/$app.app.src")"
mkdir -p "$ebin"
cp "$src" "$ebin/$app.appup"
