#!/usr/bin/env bash
# Take a headless-Chromium screenshot of a run's report.html, to see what a reader sees.
#   scripts/screenshot_report.sh runs/demo            # -> runs/demo/report.png
# Needs Debian's chromium (apt-get install chromium); nothing is fetched from the network.
set -euo pipefail
run_dir=${1:?usage: scripts/screenshot_report.sh RUN_DIR [HEIGHT]}
height=${2:-4200}
page="$(cd "$run_dir" && pwd)/report.html"
[ -f "$page" ] || { echo "no report.html in $run_dir: run bump-profiles report $run_dir" >&2; exit 2; }
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "chromium not found: apt-get install chromium" >&2; exit 2; }
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --hide-scrollbars --window-size=1100,"$height" \
  --screenshot="$run_dir/report.png" "file://$page" 2>/dev/null
echo "wrote $run_dir/report.png"
