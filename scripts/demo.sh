#!/usr/bin/env bash
# Sets up, builds a release kvscope and runs the main job on the bundled sample.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PATH:/usr/local/cuda/bin"
cmake --preset release >/dev/null
cmake --build --preset release -j2
exec build/release/sim/kvscope model --model llama-2-7b --n 1k,4k,16k,32k,128k "$@"
