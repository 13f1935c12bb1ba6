#!/bin/bash
# kvscope check on the H100, as run for sim/FIDELITY.md: calibrate llama-3.1-8b's step tables,
# then run the steps the replay schedules for the first 200 Mooncake conversation requests, all
# four methods, on the same machine. Run from a folder holding bin/kvscope (built with
# -DKVSCOPE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90) and lib/ with the shared libraries the GPU
# machine lacks; results land in $OUT (or ./out).
cd "$(dirname "$0")"
OUT=${OUT:-$PWD/out}; mkdir -p "$OUT"
export LD_LIBRARY_PATH=$PWD/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
T=${TRACE:-traces/mooncake/conversation_trace.jsonl}
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.max.sm --format=csv; nproc; } > "$OUT/env.txt" 2>&1
timeout 120 ./bin/kvscope calibrate --backend cuda --quick --model llama-3.1-8b --max-context 121213 \
    --out "$OUT/h100-llama-3.1-8b.json" > "$OUT/calibrate.log" 2>&1; echo "calibrate rc=$?"
timeout 250 ./bin/kvscope check "$T" --model llama-3.1-8b --profile "$OUT/h100-llama-3.1-8b.json" \
    --backend cuda --requests 200 --max-steps 200 --time-budget 200 --out "$OUT/check" \
    > "$OUT/check.log" 2>&1; echo "check rc=$?"
head -45 "$OUT/check/summary.txt" 2>/dev/null || tail -20 "$OUT/check.log"
