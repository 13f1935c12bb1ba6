#!/usr/bin/env bash
# Builds the trace readers' libFuzzer targets with clang (AddressSanitizer + UBSan, coverage on
# the whole library) and runs each for a while from the seeds in sim/fuzz/seeds/.
# Usage: scripts/fuzz.sh [seconds per target, default 20]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
build=build/fuzz
sanitize="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKVSCOPE_WERROR=ON -DKVSCOPE_FUZZ=ON \
  -DKVSCOPE_GUI=OFF -DKVSCOPE_CUDA=OFF -DKVSCOPE_BENCH=OFF \
  -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link $sanitize" \
  -DCMAKE_EXE_LINKER_FLAGS="$sanitize" >/dev/null
targets=(fuzz_mooncake fuzz_azure fuzz_kvscope)
cmake --build "$build" -j2 --target "${targets[@]}"
mkdir -p "$build/artifacts"
for t in "${targets[@]}"; do
  reader="${t#fuzz_}"
  corpus="$build/corpus/$reader"  # grows across runs; the seeds stay as they are
  mkdir -p "$corpus"
  echo "== $t: ${seconds}s =="
  "$build/sim/$t" -max_total_time="$seconds" -max_len=8192 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build/artifacts/$t-" "$corpus" "sim/fuzz/seeds/$reader" 2>&1 | tail -n 12
  # libFuzzer exits non-zero on a crash; set -o pipefail makes that fail this script.
done
echo "fuzz: all targets ran ${seconds}s without a crash"
