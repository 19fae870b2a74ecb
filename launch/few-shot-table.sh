#!/usr/bin/env bash
# Few-shot episodes on real data, meta-learning on top of transfer: UCI digits over the small CNN of
# recipes/mnist-to-digits.yaml (trained on MNIST-5k, frozen), against a conv-4 meta-trained from scratch; BBC News
# topics over frozen all-MiniLM-L6-v2 sentence embeddings. Each run is meta-trained at 1 shot and meta-tested on 600
# episodes of held-out classes at 1 and 5 shots (mean accuracy, 95 % interval).
#
#   bash launch/few-shot-table.sh          # runs go to runs/few-shot/<name>
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${GRAFT_TABLE_OUTPUT:-runs/few-shot}
source launch/graft-bin.sh
bash launch/assets.sh >&2
export GRAFT_ASSETS=${GRAFT_ASSETS:-$PWD/.cache/assets}
[ -f runs/mnist-to-digits/best/state.json ] || "$GRAFT" train recipes/mnist-to-digits.yaml >&2
declare -A RUNS=(
    [digits-protonet-conv4]="recipes/digits-protonet.yaml --set model.body=null --set model.hidden=null --set model.architecture=conv4"
    [digits-protonet-mnist-body]="recipes/digits-protonet.yaml"
    [digits-maml-mnist-body]="recipes/digits-protonet.yaml --set meta.algorithm=maml --set meta.inner-lr=0.05 --set meta.inner-steps=5 --set meta.test-inner-steps=10"
    [bbc-protonet-minilm]="recipes/bbc-protonet.yaml"
    [bbc-protonet-minilm-5-steps]="recipes/bbc-protonet.yaml --set meta.meta-steps=5 --set meta.validate-every=5"
    [bbc-maml-minilm]="recipes/bbc-protonet.yaml --set meta.algorithm=maml --set model.hidden=[] --set meta.inner-lr=1 --set meta.inner-steps=5 --set meta.test-inner-steps=10 --set meta.meta-steps=300"
)
mkdir -p "$OUT"
for name in ${NAMES:-digits-protonet-conv4 digits-protonet-mnist-body digits-maml-mnist-body bbc-protonet-minilm bbc-protonet-minilm-5-steps bbc-maml-minilm}; do
    read -ra args <<<"${RUNS[$name]}"
    echo "== $name: graft meta-train ${args[*]}" >&2
    start=$(date +%s)
    "$GRAFT" meta-train "${args[@]}" --output "$OUT/$name" --overwrite >"$OUT/$name.log" 2>&1 \
        || { echo "few-shot-table: $name failed:" >&2; tail -3 "$OUT/$name.log" >&2; exit 1; }
    echo "meta-training took $(( $(date +%s) - start )) s" | tee -a "$OUT/$name.log"
    for shots in 1 5; do "$GRAFT" meta-test "$OUT/$name" --episodes 600 --set "tasks.shots=$shots"; done | tee "$OUT/$name.test"
done
