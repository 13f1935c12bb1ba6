#!/bin/bash
# The measurements behind kernels/BENCHMARKS.md and results/profiles/h100.json: the CUDA tests,
# the PyTorch peers (shared/bench/torch_peers.py), `kvscope calibrate`, the variant rows of the
# issue's targets, then the remaining variant comparisons, all on the same GPU in one session.
# (BENCHMARKS.md's current figures ran these parts in two calls, A and B, with the filters below.)
#   kernels/cuda/bench/measure.sh BUILD_DIR OUT_DIR [TORCH_PEERS_PY]
# BUILD_DIR: a build with KVSCOPE_CUDA=ON and CMAKE_CUDA_ARCHITECTURES=90a (sm_90a, H100/H200).
set -u
B=${1:?build dir}; OUT=${2:?out dir}; PEERS=${3:-shared/bench/torch_peers.py}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv; } > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
timeout 90 "$B/tests/test_kernels_cuda" > "$OUT/tests.log" 2>&1; echo "test_kernels_cuda rc=$?" | tee -a "$OUT/tests.log"
timeout 60 "$B/tests/test_kernels_backends" --gtest_filter='*cuda*:*RoundTrip*' >> "$OUT/tests.log" 2>&1
echo "test_kernels_backends rc=$?" | tee -a "$OUT/tests.log"
# The same table on the reference paths (cuFFT transforms, cuBLASLt for small rows).
KVSCOPE_CUDA_FOURIER=cufft KVSCOPE_CUDA_SMALL_GEMM=cublaslt timeout 60 \
  "$B/tests/test_kernels_backends" --gtest_filter='*cuda*:*RoundTrip*' >> "$OUT/tests.log" 2>&1
echo "test_kernels_backends (cufft, cublaslt) rc=$?" | tee -a "$OUT/tests.log"
timeout 150 python3 "$PEERS" > "$OUT/torch_peers.json" 2> "$OUT/torch_peers.err"; echo "torch_peers rc=$?"
timeout 240 "$B/sim/kvscope" calibrate --backend cuda --out "$OUT/h100.json" 2> "$OUT/calibrate.log"
echo "calibrate rc=$?"
# The shapes first (decode at batch 1 and 8, the compression/reconstruction issue layout,
# the N=1 GEMV with the memset and the read flush), so a time limit cannot cut them off.
V="$B/kernels/kvscope-cuda-variants"
TARGETS='decode/.*tokens:(4096|32768)/|fourier/cufft:0/f32:0/heads:64/tokens:32768/head_dim:128/|gemm/cublaslt:[01]/rows:1/|gemm_stream/'
timeout 240 "$V" --benchmark_filter="$TARGETS" --benchmark_out="$OUT/variants.json" \
  --benchmark_out_format=json > "$OUT/variants.txt" 2>&1; echo "variants (targets) rc=$?"
timeout 300 "$V" --benchmark_filter="-$TARGETS" --benchmark_out="$OUT/variants_rest.json" \
  --benchmark_out_format=json > "$OUT/variants_rest.txt" 2>&1; echo "variants (rest) rc=$?"
