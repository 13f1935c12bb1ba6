#!/usr/bin/env bash
# The figures kvscope printed on the bundled data before a refactor, and a check that it still
# prints them: replay (the bundled H200 profile, as scripts/demo.sh runs it, and the default
# roofline), check --reprice of each shipped fidelity check, and a small plan.
#
#   tests/golden/golden.sh record KVSCOPE            writes tests/golden/expected/
#   tests/golden/golden.sh compare KVSCOPE COMPARE WORK_DIR
#                                                    writes WORK_DIR, then COMPARE (the
#                                                    kvscope-golden-compare tool) holds every
#                                                    file to tests/golden/expected/
#
# Outputs are normalised before they are kept or compared: dates, wall-clock times and the
# folders the outputs and the shipped data live in are replaced by placeholders, so the files
# hold what kvscope computed and not when or where it ran. Integers must match exactly, other
# numbers to 1e-12 relative, all other text exactly (see tests/golden_compare.cpp).
set -euo pipefail
mode=${1:?usage: golden.sh record KVSCOPE | compare KVSCOPE COMPARE WORK_DIR}
kvscope=$(realpath "${2:?the kvscope binary}")
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."  # the repository root: the shipped data is named relative to it

case "$mode" in
  record) out="$here/expected" ;;
  compare)
    compare=$(realpath "${3:?the kvscope-golden-compare binary}")
    out=${4:?the work folder}
    ;;
  *)
    echo "golden.sh: unknown mode '$mode'" >&2
    exit 2
    ;;
esac
rm -rf "$out"
mkdir -p "$out"
out=$(realpath "$out")
raw="$out/.raw"
mkdir -p "$raw"

# Where the shipped data lives.
profiles=results/profiles
fidelity=results/fidelity
trace=traces/mooncake/conversation_trace.jsonl

# Copies $raw/FILE to $out/NAME with run-dependent text replaced.
keep() {
  local from=$1 to=$2
  mkdir -p "$(dirname "$out/$to")"
  sed -E \
    -e "s#$raw#<out>#g" \
    -e "s#$profiles/#<profiles>/#g" \
    -e "s#$fidelity/#<fidelity>/#g" \
    -e 's#"date": "[^"]*"#"date": "<date>"#g' \
    -e 's#[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} UTC#<date>#g' \
    -e 's#replays in [0-9.]+ s#replays in <wall> s#g' \
    "$raw/$from" >"$out/$to"
}

run() {  # run OUTPUT_FILE ARGS...: kvscope ARGS with stdout into $raw/OUTPUT_FILE
  local to=$1
  shift
  mkdir -p "$(dirname "$raw/$to")"
  "$kvscope" "$@" >"$raw/$to"
}

# kvscope replay: the whole trace, every method.
run replay-h200.json replay "$trace" --model llama-3.1-8b --profile "$profiles/h200-llama-3.1-8b.json" \
  --json --quiet
keep replay-h200.json replay-h200/summary.json
run replay-roofline.json replay "$trace" --model llama-3.1-8b --json --quiet
keep replay-roofline.json replay-roofline/summary.json
# The printed table and the CSV tables (their number text), on the first 12 requests.
run replay-12/stdout.txt replay "$trace" --model llama-3.1-8b \
  --profile "$profiles/h200-llama-3.1-8b.json" --max-requests 12 --quiet --out "$raw/replay-12"
for f in stdout.txt summary.csv hit_rate.csv requests.csv; do
  keep "replay-12/$f" "replay-h200-12/$f"
done

# kvscope check --reprice: the shipped checks' measured steps, priced by the shipped profiles.
check_outputs="summary.txt check.json steps.csv"
for gpu in h100 h200; do
  run "check-$gpu/stdout.txt" check "$trace" --model llama-3.1-8b \
    --profile "$profiles/$gpu-llama-3.1-8b.json" \
    --reprice "$fidelity/$gpu-llama-3.1-8b/steps.jsonl" --out "$raw/check-$gpu"
  for f in stdout.txt $check_outputs; do keep "check-$gpu/$f" "check-$gpu/$f"; done
done
# The CPU check, with the options it was run with (sim/FIDELITY.md).
run check-cpu/stdout.txt check "$trace" --model kvscope-tiny --l-eff 2 --fourier-m 32 \
  --ccv-budget 16MiB --gpu-mem 64MiB --token-budget 256 --max-batch 16 --length-scale 0.03125 \
  --profile "$profiles/cpu-2core-kvscope-tiny.json" \
  --reprice "$fidelity/cpu-kvscope-tiny/steps.jsonl" --out "$raw/check-cpu"
for f in stdout.txt $check_outputs; do keep "check-cpu/$f" "check-cpu/$f"; done

# kvscope plan: a small search and sweep on the first 100 requests (Markdown, CSVs, SVG charts).
mkdir -p "$raw/plan"
run plan/stdout.txt plan --model llama-3.1-8b --trace "$trace" --max-requests 100 \
  --contexts 4k,32k --sweep-thresholds 0.7 --sweep-fourier-m 128 --sweep-l-eff 6 \
  --rate-tolerance 0.1 --jobs 2 --quiet --out "$raw/plan/plan.md"
for f in "$raw"/plan/*; do keep "plan/$(basename "$f")" "plan/$(basename "$f")"; done
rm -rf "$raw"

if [ "$mode" = record ]; then
  echo "golden.sh: recorded $(find "$out" -type f | wc -l) files in $out"
  exit 0
fi
# Every expected file must be there and equal; no file may appear that was not recorded.
status=0
expected="$here/expected"
while IFS= read -r f; do
  rel=${f#"$expected"/}
  if [ ! -f "$out/$rel" ]; then
    echo "golden: $rel: not written" >&2
    status=1
  elif ! "$compare" "$f" "$out/$rel"; then
    status=1
  fi
done < <(find "$expected" -type f | sort)
while IFS= read -r f; do
  rel=${f#"$out"/}
  [ -f "$expected/$rel" ] || { echo "golden: $rel: not in tests/golden/expected" >&2; status=1; }
done < <(find "$out" -type f | sort)
[ $status -eq 0 ] && echo "golden: $(find "$expected" -type f | wc -l) files as recorded"
exit $status
