#!/usr/bin/env bash
# Sets up, builds (warnings as errors) and runs every test. Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PATH:/usr/local/cuda/bin"
cmake --preset default
cmake --build --preset default -j2
ctest --preset default
