#!/usr/bin/env bash
# Sets up, builds a release kvscope and runs the main job: the bundled Mooncake conversation
# trace replayed with every method (kvscope replay); tables land in build/demo-replay/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PATH:/usr/local/cuda/bin"
cmake --preset release >/dev/null
cmake --build --preset release -j2
exec build/release/sim/kvscope replay traces/mooncake/conversation_trace.jsonl --model llama-3.1-8b \
  --out build/demo-replay "$@"
