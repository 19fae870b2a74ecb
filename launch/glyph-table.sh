#!/usr/bin/env bash
# Few-shot classification of rendered glyphs (recipes/glyphs-protonet.yaml, the stand-in for Omniglot): prototypical
# networks, MAML, first-order MAML and Reptile, each meta-trained at 5-way 1-shot and at 5-way 5-shot on the
# meta-training scripts, then meta-tested on 600 episodes of the held-out scripts (mean accuracy and 95 % interval).
# Settings follow the papers' Omniglot ones where the 2-core budget allows (fewer meta-steps, smaller meta-batches):
# MAML α 0.4, one inner step, three at test; Reptile 5 inner steps on 10-image tasks, ε 1 annealed to 0, 50 steps at
# test.
#
#   bash launch/glyph-table.sh                    # all four, both shot counts; runs go to runs/glyphs/<algorithm>-<K>shot
#   ALGORITHMS="maml reptile" SHOTS=1 TEST_SHOTS="1 5" bash launch/glyph-table.sh   # trained at 1 shot, tested at 1 and 5
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${GRAFT_TABLE_OUTPUT:-runs/glyphs}
declare -A OPTIONS=(
    [protonet]="--set meta.algorithm=protonet --set meta.meta-steps=1000"
    [maml]="--set meta.algorithm=maml --set meta.inner-lr=0.4 --set meta.test-inner-steps=3 --set meta.meta-steps=1000"
    [first-order-maml]="--set meta.algorithm=first-order-maml --set meta.inner-lr=0.4 --set meta.test-inner-steps=3 --set meta.meta-steps=1000"
    [reptile]="--set meta.algorithm=reptile --set meta.inner-steps=5 --set meta.inner-lr=0.1 --set meta.meta-batch=5 --set meta.outer-lr=1 --set meta.outer-schedule=linear --set meta.test-inner-steps=50 --set tasks.queries=1 --set meta.meta-steps=1000"
)
source launch/graft-bin.sh
mkdir -p "$OUT"
for algorithm in ${ALGORITHMS:-protonet maml first-order-maml reptile}; do
    for shots in ${SHOTS:-1 5}; do
        read -ra extra <<<"${OPTIONS[$algorithm]}"
        run="$OUT/$algorithm-${shots}shot"
        echo "== $algorithm, $shots-shot: graft meta-train recipes/glyphs-protonet.yaml ${extra[*]} --set tasks.shots=$shots" >&2
        start=$(date +%s)
        "$GRAFT" meta-train recipes/glyphs-protonet.yaml "${extra[@]}" --set "tasks.shots=$shots" --output "$run" \
            --overwrite >"$run.log" 2>&1 || { echo "glyph-table: $algorithm failed:" >&2; tail -3 "$run.log" >&2; exit 1; }
        echo "meta-training took $(( $(date +%s) - start )) s" | tee -a "$run.log"
        for test_shots in ${TEST_SHOTS:-$shots}; do
            "$GRAFT" meta-test "$run" --episodes 600 --set tasks.queries=15 --set "tasks.shots=$test_shots"
        done | tee "$run.test"
    done
done
