#!/usr/bin/env bash
# Sets up, builds a release kvscope and runs the main job: the bundled Mooncake conversation
# trace replayed with every method (kvscope replay), priced by the bundled calibration profile of
# llama-3.1-8b on an H200 (results/profiles/); tables land in build/demo-replay/. Extra
# arguments go to kvscope replay.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PATH:/usr/local/cuda/bin"
cmake --preset release >/dev/null
cmake --build --preset release -j2
exec build/release/sim/kvscope replay traces/mooncake/conversation_trace.jsonl --model llama-3.1-8b \
  --profile results/profiles/h200-llama-3.1-8b.json --out build/demo-replay "$@"
