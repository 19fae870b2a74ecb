#!/usr/bin/env bash
# Domain adaptation from MNIST-5k to UCI digits (recipes/mnist-to-digits.yaml): every method over several seeds, then
# a table of the target test accuracy (mean ± standard deviation over the seeds) and the share of the gap between
# the source-only and the target-trained baselines that each method closes.
#
#   bash launch/adaptation-table.sh [SEEDS]      # SEEDS defaults to "0 1 2"; runs go to runs/adaptation/<method>-<seed>
#
# A method's options beyond the recipe are in OPTIONS below, so the table states everything it ran.
set -euo pipefail
cd "$(dirname "$0")/.."
read -ra SEEDS <<<"${1:-0 1 2}"
export GRAFT_ASSETS=${GRAFT_ASSETS:-$PWD/.cache/assets}
OUT=${GRAFT_TABLE_OUTPUT:-runs/adaptation}
RECIPE=recipes/mnist-to-digits.yaml
METHODS=(source-only target-only dann mmd coral pseudo-label)
declare -A OPTIONS=(
    [dann]="--set adaptation.weight=0.3"
    [mmd]="--set adaptation.weight=1"
    [coral]="--set adaptation.weight=1"
    [pseudo-label]="--set adaptation.threshold=0.95 --set adaptation.warmup-epochs=3"
)

source launch/graft-bin.sh
bash launch/assets.sh mnist sklearn >&2
mkdir -p "$OUT"
for method in "${METHODS[@]}"; do
    for seed in "${SEEDS[@]}"; do
        run=$OUT/$method-$seed
        read -ra extra <<<"${OPTIONS[$method]:-}"
        echo "== $method, seed $seed: graft train $RECIPE --set seed=$seed --set adaptation.method=$method ${extra[*]}" >&2
        "$GRAFT" train "$RECIPE" --set "seed=$seed" --set "adaptation.method=$method" "${extra[@]}" \
            --output "$run" --overwrite >"$run.log" 2>&1 || { echo "adaptation-table: $run failed:" >&2; tail -3 "$run.log" >&2; exit 1; }
    done
done

python3 - "$OUT" "${SEEDS[@]}" <<'PY'
import json, statistics, sys
out, seeds = sys.argv[1], sys.argv[2:]
methods = ["source-only", "target-only", "dann", "mmd", "coral", "pseudo-label"]
acc = {m: [100 * json.load(open(f"{out}/{m}-{s}/results.json"))["adaptation"]["target_test"]["accuracy"] for s in seeds]
       for m in methods}
mean = {m: statistics.mean(v) for m, v in acc.items()}
low, high = mean["source-only"], mean["target-only"]
print(f"MNIST-5k → UCI digits, target test accuracy over seeds {', '.join(seeds)} (weights chosen on source validation)\n")
print("| method | target accuracy | per seed | gap closed |")
print("|---|---|---|---|")
for m in methods:
    spread = statistics.stdev(acc[m]) if len(acc[m]) > 1 else 0.0
    closed = "" if m in ("source-only", "target-only") else f"{100 * (mean[m] - low) / (high - low):.0f} %"
    print(f"| {m} | {mean[m]:.1f} ± {spread:.1f} % | {' / '.join(f'{a:.1f}' for a in acc[m])} | {closed} |")
PY
