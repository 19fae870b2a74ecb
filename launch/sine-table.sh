#!/usr/bin/env bash
# The MAML paper's sinusoid experiment (recipes/sine-maml.yaml): MAML, first-order MAML, Reptile and the baseline
# pretrained on all tasks, each meta-trained, then meta-tested on 600 new sinusoids at 5 shots after 1, 5 and 10
# gradient steps (mean MSE and 95 % interval), as the paper's figure reports them.
#
#   bash launch/sine-table.sh [META_STEPS]       # default: the recipe's; runs go to runs/sine/<algorithm>
#   ALGORITHMS="maml reptile" bash launch/sine-table.sh 70000
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${GRAFT_TABLE_OUTPUT:-runs/sine}
steps=()
[ $# -gt 0 ] && steps=(--set "meta.meta-steps=$1")
declare -A OPTIONS=(
    [maml]=""
    [first-order-maml]="--set meta.algorithm=first-order-maml"
    [reptile]="--set meta.algorithm=reptile --set meta.inner-steps=5 --set meta.inner-lr=0.02 --set meta.meta-batch=5 --set meta.outer-lr=0.1 --set meta.outer-schedule=linear"
    [pretrain]="--set meta.algorithm=pretrain"
)
source launch/graft-bin.sh
mkdir -p "$OUT"
for algorithm in ${ALGORITHMS:-maml first-order-maml reptile pretrain}; do
    read -ra extra <<<"${OPTIONS[$algorithm]}"
    echo "== $algorithm: graft meta-train recipes/sine-maml.yaml ${extra[*]} ${steps[*]}" >&2
    "$GRAFT" meta-train recipes/sine-maml.yaml "${extra[@]}" "${steps[@]}" --output "$OUT/$algorithm" --overwrite \
        >"$OUT/$algorithm.log" 2>&1 || { echo "sine-table: $algorithm failed:" >&2; tail -3 "$OUT/$algorithm.log" >&2; exit 1; }
    "$GRAFT" meta-test "$OUT/$algorithm" --set tasks.shots=5 --steps 1,5,10 --episodes 600
done
