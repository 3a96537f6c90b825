#!/bin/sh
# render-report.sh HTML PNG [WIDTH,HEIGHT]: renders a report page (the
# demo's index.html) with headless Chromium into a PNG, as a person would
# see it (default window 1220,1960).
set -eu
html=$1
png=$2
size=${3:-1220,1960}
command -v chromium >/dev/null 2>&1 || { echo "$0: chromium is not installed" >&2; exit 1; }
url="file://$(cd "$(dirname "$html")" && pwd)/$(basename "$html")"
case $png in /*) ;; *) png="$(pwd)/$png" ;; esac
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium --headless --disable-gpu --no-sandbox --hide-scrollbars \
    --user-data-dir="$profile" --window-size="$size" --screenshot="$png" "$url"
[ -s "$png" ] || { echo "$0: chromium wrote no $png" >&2; exit 1; }
