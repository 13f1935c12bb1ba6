#!/bin/bash
# kvscope check on the H100: calibrate llama-3.1-8b's step tables, then run the steps the replay
# schedules for the first 200 Mooncake conversation requests, all four methods; then a small
# per-part breakdown run. Everything lands in $OUT/res.tar.gz.
cd "$(dirname "$0")"
export LD_LIBRARY_PATH=$PWD/lib:/usr/local/cuda/lib64:/usr/local/cuda/lib:${LD_LIBRARY_PATH:-}
R=/tmp/res; mkdir -p $R
T=conversation_trace.jsonl
M="--model llama-3.1-8b"
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.max.sm --format=csv; nproc; ldd bin/kvscope | grep -E "not found|cuda|cublas|cufft"; } > $R/env.txt 2>&1
cat $R/env.txt
finish() { tar czf $OUT/res.tar.gz -C /tmp res; cp $R/*.txt $OUT/ 2>/dev/null; }
trap finish EXIT
timeout 190 ./bin/kvscope calibrate --backend cuda --quick $M --max-context 121213 --out $R/h100-llama-3.1-8b.json > $R/calibrate.log 2>&1; echo "calibrate rc=$?"
grep -A45 "^fits of" $R/calibrate.log | cut -c1-110
P="--profile $R/h100-llama-3.1-8b.json"; [ -f $R/h100-llama-3.1-8b.json ] || P="--gpu h100-sxm"
timeout 270 ./bin/kvscope check $T $M $P --backend cuda --requests 200 --max-steps 120 --time-budget 200 --out $R/check > $R/check.log 2>&1; echo "check rc=$?"
cp $R/check/summary.txt $R/summary.txt 2>/dev/null; head -45 $R/summary.txt 2>/dev/null || tail -20 $R/check.log
timeout 75 ./bin/kvscope check $T $M $P --backend cuda --requests 200 --method baseline,fourier --max-steps 12 --time-budget 40 --breakdown --out $R/breakdown > $R/breakdown.log 2>&1; echo "breakdown rc=$?"
tail -5 $R/breakdown.log
