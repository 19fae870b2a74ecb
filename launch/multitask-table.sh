#!/usr/bin/env bash
# Multi-task on UCI digits (recipes/digits-multitask.yaml): the digit alone, then digit + parity + digit ≥ 5 under each
# task weighting, at each training-set size and seed; then a table of test accuracy per task (mean ± standard
# deviation over the seeds). The single-task model's parity and ≥ 5 accuracies are those of its digit predictions
# (read from the confusion matrix `graft evaluate` prints), so every column compares like with like.
#
#   bash launch/multitask-table.sh [SEEDS] [SIZES]   # defaults "0 1 2" and "10 all" (data.train-per-class)
#
# Runs go to runs/multitask/<size>-<config>-<seed>.
set -euo pipefail
cd "$(dirname "$0")/.."
read -ra SEEDS <<<"${1:-0 1 2}"
read -ra SIZES <<<"${2:-10 all}"
export GRAFT_ASSETS=${GRAFT_ASSETS:-$PWD/.cache/assets}
OUT=${GRAFT_TABLE_OUTPUT:-runs/multitask}
RECIPE=recipes/digits-multitask.yaml
CONFIGS=(single uniform fixed uncertainty dwa)
declare -A OPTIONS=(
    [single]="--set tasks=null --set task-weighting=null"
    [uniform]="--set task-weighting=uniform"
    [fixed]="--set task-weighting=fixed"  # digit 1, parity and ≥ 5 0.5 each (the recipe's copy below)
    [uncertainty]="--set task-weighting=uncertainty"
    [dwa]="--set task-weighting=dwa"      # temperature 2
)

GRAFT=${GRAFT:-}
if [[ -z $GRAFT ]]; then
    bash launch/assets.sh sklearn >&2
    swift build -c release --product graft >&2
    GRAFT=$(swift build -c release --show-bin-path)/graft
fi
mkdir -p "$OUT"
# --set cannot reach into the tasks list: fixed weighting reads a copy of the recipe with the weights written in.
sed -e '/- name: parity/a\    weight: 0.5' -e '/- name: high/a\    weight: 0.5' "$RECIPE" >"$OUT/digits-multitask-fixed.yaml"
for size in "${SIZES[@]}"; do
    for config in "${CONFIGS[@]}"; do
        for seed in "${SEEDS[@]}"; do
            run=$OUT/$size-$config-$seed
            read -ra extra <<<"${OPTIONS[$config]}"
            per=()
            [[ $size != all ]] && per=(--set "data.train-per-class=$size")
            echo "== $size per class, $config, seed $seed" >&2
            recipe=$RECIPE
            [[ $config == fixed ]] && recipe=$OUT/digits-multitask-fixed.yaml
            "$GRAFT" train "$recipe" --set "seed=$seed" "${per[@]}" "${extra[@]}" --output "$run" --overwrite >"$run.log" 2>&1 \
                || { echo "multitask-table: $run failed:" >&2; tail -3 "$run.log" >&2; exit 1; }
            [[ $config == single ]] && "$GRAFT" evaluate "$run" >"$run/evaluate.txt"
        done
    done
done

python3 - "$OUT" "${SEEDS[*]}" "${SIZES[@]}" <<'PY'
import json, statistics, sys
out, seeds, sizes = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
configs = ["single", "uniform", "fixed", "uncertainty", "dwa"]
derived = {"parity": lambda d: d % 2, "high": lambda d: int(d >= 5)}

def single(run):
    """Digit, parity and ≥ 5 accuracy of a digit-only run, from the confusion matrix graft evaluate printed."""
    lines = open(f"{run}/evaluate.txt").read().splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("confusion")) + 2
    m = [[int(x) for x in l.split()[1:]] for l in lines[start:start + 10]]
    total = sum(map(sum, m))
    acc = {"digit": sum(m[i][i] for i in range(10)) / total}
    for task, f in derived.items():
        acc[task] = sum(m[t][p] for t in range(10) for p in range(10) if f(t) == f(p)) / total
    return acc

def multi(run):
    return {t["task"]: t["accuracy"] for t in json.load(open(f"{run}/results.json"))["test"]["tasks"]}

print(f"UCI digits, small CNN from scratch: test accuracy (%) per task, mean ± sd over seeds {', '.join(seeds)}\n")
print("| training rows per class | model | digit | parity | digit ≥ 5 | mean epoch time |")
print("|---|---|---|---|---|---|")
for size in sizes:
    for config in configs:
        runs = [f"{out}/{size}-{config}-{s}" for s in seeds]
        accs = [single(r) if config == "single" else multi(r) for r in runs]
        cells = []
        for task in ["digit", "parity", "high"]:
            v = [100 * a[task] for a in accs]
            cells.append(f"{statistics.mean(v):.2f} ± {statistics.stdev(v) if len(v) > 1 else 0:.2f}")
        seconds = [json.load(open(f"{r}/results.json"))["seconds"] / json.load(open(f"{r}/results.json"))["epochs"] for r in runs]
        name = "digit only (parity, ≥ 5 from its digit)" if config == "single" else f"3 heads, {config}"
        print(f"| {size} | {name} | {' | '.join(cells)} | {statistics.mean(seconds):.2f} s |")
PY
