#!/bin/bash
# The one device call behind kernels/BENCHMARKS.md and kernels/profiles/h100.json: the CUDA
# tests, the PyTorch peers (shared/bench/torch_peers.py), `kvscope calibrate` and the CUDA
# variant comparisons, all on the same GPU in the same session.
#   kernels/cuda/bench/measure.sh BUILD_DIR OUT_DIR [TORCH_PEERS_PY]
# BUILD_DIR: a build with KVSCOPE_CUDA=ON and CMAKE_CUDA_ARCHITECTURES=90 (sm_90, H100/H200).
set -u
B=${1:?build dir}; OUT=${2:?out dir}; PEERS=${3:-shared/bench/torch_peers.py}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv; } > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
timeout 90 "$B/tests/test_kernels_cuda" > "$OUT/tests.log" 2>&1; echo "test_kernels_cuda rc=$?" | tee -a "$OUT/tests.log"
timeout 60 "$B/tests/test_kernels_backends" --gtest_filter='*cuda*:*RoundTrip*' >> "$OUT/tests.log" 2>&1
echo "test_kernels_backends rc=$?" | tee -a "$OUT/tests.log"
timeout 150 python3 "$PEERS" > "$OUT/torch_peers.json" 2> "$OUT/torch_peers.err"; echo "torch_peers rc=$?"
timeout 240 "$B/sim/kvscope" calibrate --backend cuda --out "$OUT/h100.json" 2> "$OUT/calibrate.log"
echo "calibrate rc=$?"
timeout 150 "$B/kernels/kvscope-cuda-variants" --benchmark_out="$OUT/variants.json" \
  --benchmark_out_format=json > "$OUT/variants.txt" 2>&1; echo "variants rc=$?"
