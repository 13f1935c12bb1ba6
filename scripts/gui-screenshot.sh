#!/usr/bin/env bash
# Starts kvscope-gui under a virtual X display (Xvfb), opens the bundled trace, runs a replay of
# all four methods and saves the window as a PNG in the build folder (the CI artifact).
# Usage: scripts/gui-screenshot.sh [BUILD_DIR] [OUT.png]   (defaults: build/default,
#        BUILD_DIR/kvscope-gui.png). Exits non-zero if the app, the replay or the save fails.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/default}
out=${2:-$build/kvscope-gui.png}
gui=$build/gui/kvscope-gui
trace=${KVSCOPE_SCREENSHOT_TRACE:-traces/mooncake/conversation_trace.jsonl}

[ -x "$gui" ] || { echo "gui-screenshot: $gui not built (needs Qt 6; see README)" >&2; exit 1; }
[ -f "$trace" ] || { echo "gui-screenshot: no trace at $trace" >&2; exit 1; }
command -v xvfb-run >/dev/null || { echo "gui-screenshot: xvfb-run missing (scripts/setup.sh)" >&2; exit 1; }

rm -f "$out"
# The window is 1500x940; the virtual screen leaves room around it.
timeout 600 xvfb-run -a -s "-screen 0 1680x1050x24" \
  "$gui" --run --view replay --screenshot "$out" "$trace"
[ -s "$out" ] || { echo "gui-screenshot: no screenshot written" >&2; exit 1; }
echo "gui-screenshot: $out"
