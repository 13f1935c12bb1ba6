#!/bin/bash
# kvscope check on the H200, as run for sim/FIDELITY.md: the CUDA tests, then llama-3.1-8b's step
# tables (kvscope calibrate --model), then the steps the replay schedules for the first 200
# Mooncake conversation requests, all four methods, on the same GPU.
#   results/fidelity/h200-llama-3.1-8b/run.sh BIN_DIR [OUT_DIR]
# BIN_DIR holds bin/kvscope, bin/test_kernels_cuda and bin/test_kernels_backends (a build with
# -DKVSCOPE_CUDA=ON -DKVSCOPE_GUI=OFF -DKVSCOPE_PDF=OFF -DCMAKE_CUDA_ARCHITECTURES=90a) and lib/
# with the shared libraries the GPU machine lacks (Boost.Program_options, Google Benchmark,
# libgomp). Run from the repository root: the trace is read from traces/.
B=$(cd "${1:?bin dir}" && pwd); OUT=${2:-${OUT:-$PWD/out}}; mkdir -p "$OUT"
export LD_LIBRARY_PATH=$B/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
T=traces/mooncake/conversation_trace.jsonl
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.max.sm --format=csv; nproc; } > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
{ timeout 150 "$B/bin/test_kernels_cuda"; echo "test_kernels_cuda rc=$?";
  timeout 60 "$B/bin/test_kernels_backends" --gtest_filter='*cuda*:*RoundTrip*'; echo "test_kernels_backends rc=$?"; } > "$OUT/tests.log" 2>&1
grep -E "rc=|PASSED|FAILED|SKIPPED" "$OUT/tests.log"
timeout 200 "$B/bin/kvscope" calibrate --backend cuda --quick --model llama-3.1-8b --max-context 121213 \
    --out "$OUT/h200-llama-3.1-8b.json" > "$OUT/calibrate.log" 2>&1; echo "calibrate rc=$?"
timeout 240 "$B/bin/kvscope" check "$T" --model llama-3.1-8b --profile "$OUT/h200-llama-3.1-8b.json" \
    --backend cuda --requests 200 --max-steps 200 --time-budget 180 --out "$OUT/check" \
    > "$OUT/check.log" 2>&1; echo "check rc=$?"
head -45 "$OUT/check/summary.txt" 2>/dev/null || tail -20 "$OUT/check.log"
