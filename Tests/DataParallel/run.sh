#!/usr/bin/env bash
# shellcheck disable=SC2016  # the bash -c scripts expand their variables in the ranks, hence single quotes
# Data-parallel `graft train` under real mpirun: N ranks must give what 1 rank gives. Each case trains the recipe
# Tests/DataParallel/digits.yaml on 1 rank and on N, then compares the final weights (per tensor, relative 1e-5) and
# every epoch's validation figures with compare_runs.py; domain adaptation trains Tests/DataParallel/adaptation.yaml.
# Also: a rank that trains other parameters stops the job
# with the mismatch named; a file missing on one rank stops it at start-up; a 2-rank run killed with SIGKILL and
# resumed ends bit-identical to one never stopped. Exits non-zero at the first failure.
# Usage: Tests/DataParallel/run.sh GRAFT_BINARY
set -euo pipefail

GRAFT=${1:?usage: run.sh GRAFT_BINARY}
# mpirun to launch with, and extra flags for it.
MPIRUN=${MPIRUN:-mpirun}
MPIRUN_FLAGS=${MPIRUN_FLAGS:-}
# Seconds after which a run counts as hung.
TIMEOUT=${TIMEOUT:-300}
# Where the runs go.
WORK=${WORK:-$(mktemp -d /tmp/graft-dp.XXXXXX)}
# One BLAS thread per rank: ranks would fight over the cores, and one thread keeps runs deterministic.
export OPENBLAS_NUM_THREADS=1 GRAFT_NUM_THREADS=1
export GRAFT_ASSETS=${GRAFT_ASSETS:-$(pwd)/.cache/assets}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
recipe=$here/digits.yaml
compare=(python3 "$here/compare_runs.py")

# launch N [graft train options…]: `graft train` of the recipe on N ranks (1: a plain process), output to stdout.
launch() {
    local n=$1; shift
    if (( n == 1 )); then
        timeout "$TIMEOUT" "$GRAFT" train "$recipe" "$@"
    else
        # shellcheck disable=SC2086
        timeout "$TIMEOUT" "$MPIRUN" --allow-run-as-root --oversubscribe -np "$n" --bind-to none \
            -x OPENBLAS_NUM_THREADS -x GRAFT_NUM_THREADS -x GRAFT_ASSETS $MPIRUN_FLAGS "$GRAFT" train "$recipe" "$@"
    fi
}

# wait_for_epoch E METRICS: until epoch E (0-based) is in the metrics log (at most 30 s).
wait_for_epoch() {
    for _ in $(seq 600); do
        grep -q "\"epoch\":$1" "$2" 2>/dev/null && return
        sleep 0.05
    done
}

# train N OUTPUT [graft train options…]: the recipe on N ranks into a fresh OUTPUT, logged to OUTPUT.log.
train() {
    local n=$1 out=$2; shift 2
    launch "$n" --output "$out" --overwrite "$@" >"$out.log" 2>&1 \
        || { echo "FAIL: $n rank(s) $*: exit $? (log $out.log)"; tail -5 "$out.log"; exit 1; }
}

# same NAME RANKS… -- OPTIONS: trains on 1 rank and on each of RANKS, and compares each with the 1-rank run.
same() {
    local name=$1; shift
    local ranks=()
    while [[ $1 != -- ]]; do ranks+=("$1"); shift; done
    shift
    train 1 "$WORK/$name-1" "$@"
    for n in "${ranks[@]}"; do
        train "$n" "$WORK/$name-$n" "$@"
        "${compare[@]}" --rtol "${rtol:-1e-5}" "$WORK/$name-$n" "$WORK/$name-1" \
            || { echo "FAIL: $name on $n ranks differs from 1 rank"; exit 1; }
        echo "ok: $name, $n ranks = 1 rank"
    done
}

# (a) frozen groups + SGD momentum; discriminative rates + AdamW; a last batch of one row (batch 34), which leaves
# ranks with no rows in that step.
partial=(--set strategy.name=partial --set strategy.top-blocks=2 --set optimizer.momentum=0.9)
same sgd-partial 2 3 -- "${partial[@]}"
adamw=(--set strategy.lowest-lr=0.002 --set strategy.lr=0.01 --set optimizer.name=adamw)
same adamw-discriminative 2 3 -- "${adamw[@]}"
same empty-rank 2 3 -- "${partial[@]}" --set training.batch-size=34
# (b) the trainable set changes between epochs: the reducer's plan is rebuilt.
same gradual-unfreezing 2 -- --set strategy.name=gradual-unfreezing --set strategy.every=1 --set strategy.lowest-lr=0.01 \
    --set training.epochs=3
two_stage=(--set strategy.name=two-stage --set strategy.head-epochs=1 --set strategy.head-lr=0.1 --set strategy.top-blocks=2
           --set training.epochs=3)
same two-stage 2 -- "${two_stage[@]}" --set strategy.cached-head=false
# (e) cached body features, computed in shares and assembled on every rank.
same feature-extraction 2 3 -- --set strategy.name=feature-extraction --set strategy.lr=0.1
same two-stage-cached 2 -- "${two_stage[@]}"
# Synchronised batch norm: N ranks normalise over the global batch as 1 rank does (a short last batch is dropped).
same sync-batch-norm 2 3 -- --set model.architecture=small-cnn --set "data.image=[1, 8, 8]" \
    --set training.sync-batch-norm=true --set strategy.lr=0.02 --set training.epochs=1
# Domain adaptation: DANN's per-row domain loss, and MMD and CORAL over the global batch's gathered features; pseudo-
# labels decided from every rank's share of the target rows.
for method in dann mmd coral; do
    recipe=$here/adaptation.yaml same "adaptation-$method" 2 3 -- --set adaptation.method=$method
done
recipe=$here/adaptation.yaml same adaptation-pseudo-label 2 -- --set adaptation.method=pseudo-label \
    --set adaptation.threshold=0.6 --set training.epochs=3
# Knowledge distillation: each rank runs the frozen teacher (a digits run) on its own rows, and the label, soft-target
# and feature terms are means over rows, so N ranks equal 1; the feature projection is summed and compared too.
"$GRAFT" train "$recipe" --output "$WORK/distill-teacher" --overwrite >"$WORK/distill-teacher.log" 2>&1 \
    || { echo "FAIL: training the distillation teacher"; tail -3 "$WORK/distill-teacher.log"; exit 1; }
same distillation 2 3 -- --set "model.hidden=[32]" \
    --set "distillation={teacher: $WORK/distill-teacher, temperature: 3, alpha: 0.6, features: {weight: 0.5}}"
# Multi-task heads (digit, parity, digit ≥ 5): uncertainty weighting's log-variances are summed like any gradient,
# DWA's epoch losses per task over every rank, so every rank weighs the third epoch alike.
for weighting in uncertainty dwa; do
    recipe=$here/multitask.yaml same "multitask-$weighting" 2 3 -- --set task-weighting=$weighting
done
# Contrastive pre-training (SimCLR): NT-Xent over the views of the whole global batch, gathered from every rank; a small
# CNN with synchronised batch norm, and an MLP at batch 53 of 160 rows, whose last step (1 row) leaves ranks without rows.
# The CNN's random crops, ReLUs and max pooling make its two epochs chaotic: where a rounding difference between the
# ranks' partial sums and one process's flips a pooling choice, the weights move apart by up to 1e-3 (1 rank against
# 3, seeds 3–6: 4–7e-6 through OpenBLAS; 5e-6, 9e-6, 2e-4 and 7e-4 through oneDNN, each run bit-identical when
# repeated). A rank that lost or doubled views would be off by far more.
rtol=1e-3 recipe=$here/contrastive.yaml same contrastive-cnn 2 3 --
recipe=$here/contrastive.yaml same contrastive-mlp 2 3 -- --set "model={architecture: mlp, hidden: [32]}" \
    --set training.batch-size=53
# Meta-training: each rank adapts to its share of every meta-batch (7 tasks: uneven over 2 and 3 ranks), rank 0
# applies the outer step; the meta-parameters equal one process's. Second-order MAML on sinusoids, prototypical
# networks on rendered glyphs.
meta_same() {
    local name=$1; shift
    "$GRAFT" meta-train "$@" --output "$WORK/$name-1" --overwrite >"$WORK/$name-1.log" 2>&1 \
        || { echo "FAIL: meta-train $name on 1 rank"; tail -3 "$WORK/$name-1.log"; exit 1; }
    for n in 2 3; do
        timeout "$TIMEOUT" "$MPIRUN" --allow-run-as-root --oversubscribe -np "$n" --bind-to none -x OPENBLAS_NUM_THREADS \
            -x GRAFT_NUM_THREADS -x GRAFT_ASSETS "$GRAFT" meta-train "$@" --output "$WORK/$name-$n" --overwrite >"$WORK/$name-$n.log" 2>&1 \
            || { echo "FAIL: meta-train $name on $n ranks"; tail -3 "$WORK/$name-$n.log"; exit 1; }
        "${compare[@]}" "$WORK/$name-$n" "$WORK/$name-1" || { echo "FAIL: meta-train $name on $n ranks differs from 1 rank"; exit 1; }
        echo "ok: meta-train $name, $n ranks = 1 rank"
    done
}
meta_same sine-maml "$here/../../recipes/sine-maml.yaml" --set meta.meta-steps=30 --set meta.meta-batch=7 \
    --set meta.validate-every=10 --set meta.validation-tasks=5
meta_same glyph-protonet "$here/../../recipes/glyphs-protonet.yaml" --set meta.meta-steps=6 --set meta.meta-batch=7 \
    --set meta.validate-every=3 --set meta.validation-tasks=4 --set tasks.characters-per-script=5 \
    --set tasks.samples-per-class=4 --set tasks.shots=1 --set tasks.queries=2 --set model.filters=8
# Meta-learning on top of transfer: the body of a digits run, unfrozen at its own outer rate.
"$GRAFT" train "$recipe" --set training.epochs=1 --output "$WORK/meta-body-run" --overwrite >"$WORK/meta-body-run.log" 2>&1 \
    || { echo "FAIL: training the body for meta-body"; tail -3 "$WORK/meta-body-run.log"; exit 1; }
meta_same meta-body "$here/meta-body.yaml" --set "model.body.run=$WORK/meta-body-run"

# Continual learning (graft continual), 3 permuted tasks: EWC's Fisher from every rank's share of the rows, L2-SP
# towards the previous task; each penalty's gradient joins the summed gradient once. Weights after the last task and
# every epoch's figures compared, and the accuracy matrices of results.json.
continual_same() {
    local name=$1; shift
    for n in 1 2 3; do
        local how=("$GRAFT")
        (( n > 1 )) && how=("$MPIRUN" --allow-run-as-root --oversubscribe -np "$n" --bind-to none -x OPENBLAS_NUM_THREADS
                            -x GRAFT_NUM_THREADS -x GRAFT_ASSETS "$GRAFT")
        timeout "$TIMEOUT" "${how[@]}" continual "$recipe" "$@" --output "$WORK/$name-$n" --overwrite >"$WORK/$name-$n.log" 2>&1 \
            || { echo "FAIL: continual $name on $n ranks"; tail -3 "$WORK/$name-$n.log"; exit 1; }
        (( n == 1 )) && continue
        "${compare[@]}" "$WORK/$name-$n" "$WORK/$name-1" || { echo "FAIL: continual $name on $n ranks differs from 1 rank"; exit 1; }
        python3 -c 'import json, sys; a, b = (json.load(open(f"{d}/results.json"))["accuracy"] for d in sys.argv[1:]); sys.exit(a != b)' \
            "$WORK/$name-$n" "$WORK/$name-1" || { echo "FAIL: continual $name: accuracy matrix on $n ranks differs"; exit 1; }
        echo "ok: continual $name, $n ranks = 1 rank"
    done
}
continual_same ewc --set "continual={count: 3, method: ewc, lambda: 100}"
continual_same l2-sp --set "continual={count: 3, method: l2-sp, alpha: 0.5}"
# Dropout keyed on (seed, epoch, row): pretrained MiniLM's top blocks fine-tuned with dropout on, 2 ranks = 1 rank.
recipe=$here/bbc.yaml same bert-dropout 2 --
# LoRA adapters on MiniLM (PEFT's defaults, query and value, with adapter dropout keyed on the rows), 2 epochs: only
# adapter and head gradients are summed, and checkpoints hold them alone (compared: last/adapters.safetensors).
recipe=$here/bbc.yaml same bert-lora 2 3 -- --set "adapters={method: lora, dropout: 0.1}" \
    --set "strategy={name: full, lr: 0.05}" --set training.epochs=2
# (f) the transport of a multi-node job.
MPIRUN_FLAGS="$MPIRUN_FLAGS --mca btl tcp,self" same tcp-sgd-partial 2 3 -- "${partial[@]}"
MPIRUN_FLAGS="$MPIRUN_FLAGS --mca btl tcp,self" same tcp-adamw-discriminative 2 3 -- "${adamw[@]}"

# fails NAME PATTERN COMMAND…: the command must exit non-zero without timing out, with exactly one "error:" line,
# which matches PATTERN, and without claiming to have written results.
fails() {
    local name=$1 pattern=$2 status=0
    shift 2
    timeout 60 "$@" >"$WORK/$name.log" 2>&1 || status=$?
    if (( status == 0 || status == 124 )) || [[ $(grep -c "error:" "$WORK/$name.log") != 1 ]] \
        || ! grep -q -- "$pattern" "$WORK/$name.log" || grep -q "^wrote" "$WORK/$name.log"; then
        echo "FAIL: $name: exit $status:"; cat "$WORK/$name.log"; exit 1
    fi
    echo "ok: $name stops every rank: $(grep error: "$WORK/$name.log")"
}
two=("$MPIRUN" --allow-run-as-root --oversubscribe -np 2 -x OPENBLAS_NUM_THREADS -x GRAFT_ASSETS)

# (c) rank 1 freezes another block: every rank stops within seconds, the first differing parameter named.
fails mismatch "disagree on the trainable parameters at position 0: rank 0 has layers.2.weight (group layers.2, shape \[10, 256\]), rank 1 has layers.0.weight" \
    "${two[@]}" bash -c '"$0" train "$1" --output "$2" --overwrite --set strategy.name=partial --set strategy.top-blocks=$((OMPI_COMM_WORLD_RANK + 1))' \
    "$GRAFT" "$recipe" "$WORK/mismatch"
# A data file missing on rank 1 only.
fails missing-file "^\[rank 1/2\] graft train: error: /nonexistent/digits/digits.csv" \
    "${two[@]}" bash -c 'if (( OMPI_COMM_WORLD_RANK == 1 )); then GRAFT_ASSETS=/nonexistent; fi; "$0" train "$1" --output "$2" --overwrite' \
    "$GRAFT" "$recipe" "$WORK/missing"
# Rank 0 cannot write its checkpoint (here `last` is a plain file): every rank stops after that epoch.
mkdir -p "$WORK/unwritable" && echo "not a directory" >"$WORK/unwritable/last"
fails unwritable-checkpoint "unwritable/last: exists and is not a directory" \
    "${two[@]}" "$GRAFT" train "$recipe" --output "$WORK/unwritable" --overwrite
# Contrastive pre-training with per-rank batch norm would not equal 1 rank: refused, naming the field.
fails contrastive-per-rank-bn "training.sync-batch-norm: contrastive pre-training on several ranks" \
    "${two[@]}" "$GRAFT" train "$here/contrastive.yaml" --output "$WORK/contrastive-bn" --set training.sync-batch-norm=false
# A bad recipe field: every rank finds it, rank 0 reports it.
fails bad-recipe "training.bogus: unknown field" "${two[@]}" "$GRAFT" train "$recipe" --output "$WORK/bad" --set training.bogus=1

# A rank killed outright (kill -9 of rank 2 of 3): mpirun ends the whole job within seconds, naming the rank, and no
# process is left behind.
launch 3 --output "$WORK/dead-rank" --overwrite --set training.epochs=200 >"$WORK/dead-rank.log" 2>&1 &
launcher=$!
wait_for_epoch 0 "$WORK/dead-rank/metrics.jsonl"
start=$SECONDS
pkill -9 -f -n -- "--output $WORK/dead-rank" || { echo "FAIL: no rank to kill"; exit 1; }
status=0
wait "$launcher" || status=$?
sleep 1
if (( status == 0 || status == 124 )) || ! grep -q "process rank [0-9] .* exited on signal 9" "$WORK/dead-rank.log" \
    || pgrep -f -- "--output $WORK/dead-rank" >/dev/null; then
    echo "FAIL: a killed rank gave exit $status"; tail -5 "$WORK/dead-rank.log"; pgrep -af -- "--output $WORK/dead-rank"; exit 1
fi
echo "ok: a rank killed with SIGKILL ends the job in $((SECONDS - start)) s: $(grep -o "process rank [0-9] .* exited on signal 9" "$WORK/dead-rank.log")"

# A rank that hangs (SIGSTOP): the others' watchdog ends the job after training.step-timeout, naming the step.
launch 2 --output "$WORK/stuck-rank" --overwrite --set training.epochs=200 --set training.step-timeout=3 \
    >"$WORK/stuck-rank.log" 2>&1 &
launcher=$!
wait_for_epoch 0 "$WORK/stuck-rank/metrics.jsonl"
start=$SECONDS
pkill -STOP -f -n -- "--output $WORK/stuck-rank" || { echo "FAIL: no rank to stop"; exit 1; }
status=0
wait "$launcher" || status=$?
sleep 1
if (( status == 0 || status == 124 || SECONDS - start > 30 )) || ! grep -q "has not finished in 3 s (training.step-timeout)" "$WORK/stuck-rank.log" \
    || pgrep -f -- "--output $WORK/stuck-rank" >/dev/null; then
    echo "FAIL: a stuck rank gave exit $status after $((SECONDS - start)) s"; tail -5 "$WORK/stuck-rank.log"
    pkill -9 -f -- "--output $WORK/stuck-rank"; exit 1
fi
echo "ok: a stuck rank ends the job in $((SECONDS - start)) s: $(grep -m1 -o "step [0-9]* of epoch [0-9]* has not finished in 3 s" "$WORK/stuck-rank.log")"

# (d) SIGKILL mid-run, then --resume: bit-identical to a run never stopped.
epochs=10
long=(--set "training.epochs=$epochs" --set training.batch-size=4 --set optimizer.name=adamw --set training.patience=8
      --set schedule.name=cosine)
train 2 "$WORK/straight" "${long[@]}"
setsid "$MPIRUN" --allow-run-as-root -np 2 -x OPENBLAS_NUM_THREADS -x GRAFT_NUM_THREADS -x GRAFT_ASSETS \
    "$GRAFT" train "$recipe" --output "$WORK/killed" --overwrite "${long[@]}" >"$WORK/killed.log" 2>&1 &
launcher=$!
wait_for_epoch 2 "$WORK/killed/metrics.jsonl"
sleep 0.1  # into the next epoch
kill -9 -- "-$launcher" 2>/dev/null || true
pkill -9 -f -- "--output $WORK/killed" || true
wait "$launcher" 2>/dev/null || true
epochs_done=$(wc -l <"$WORK/killed/metrics.jsonl")
cp -r "$WORK/killed" "$WORK/killed-3"
(( epochs_done < epochs )) || { echo "FAIL: the run finished before it could be killed"; exit 1; }
timeout "$TIMEOUT" "$MPIRUN" --allow-run-as-root -np 2 -x OPENBLAS_NUM_THREADS -x GRAFT_NUM_THREADS -x GRAFT_ASSETS \
    "$GRAFT" train "$recipe" --resume "$WORK/killed" "${long[@]}" >"$WORK/resumed.log" 2>&1 \
    || { echo "FAIL: --resume exited $?"; tail -5 "$WORK/resumed.log"; exit 1; }
"${compare[@]}" --exact "$WORK/killed" "$WORK/straight" || { echo "FAIL: the resumed run differs"; exit 1; }
cmp -s "$WORK/killed/best/model.safetensors" "$WORK/straight/best/model.safetensors" \
    || { echo "FAIL: best/ differs after resume"; exit 1; }
echo "ok: killed after $epochs_done epochs, resumed ($(grep -m1 resumed "$WORK/resumed.log")): bit-identical"
# Resumed on another number of ranks: it says so and ends within float tolerance of the uninterrupted run.
timeout "$TIMEOUT" "$MPIRUN" --allow-run-as-root --oversubscribe -np 3 -x OPENBLAS_NUM_THREADS -x GRAFT_NUM_THREADS -x GRAFT_ASSETS \
    "$GRAFT" train "$recipe" --resume "$WORK/killed-3" "${long[@]}" >"$WORK/resumed-3.log" 2>&1 \
    || { echo "FAIL: --resume on 3 ranks exited $?"; tail -5 "$WORK/resumed-3.log"; exit 1; }
grep -q "written by 2 ranks, now 3" "$WORK/resumed-3.log" || { echo "FAIL: no note of the new rank count"; exit 1; }
# Sixteen more epochs of AdamW at batch 4 let rounding differences grow: a looser tolerance than for 2 epochs.
"${compare[@]}" --rtol 1e-3 --metrics-tol 1e-2 "$WORK/killed-3" "$WORK/straight" || { echo "FAIL: resumed on 3 ranks differs"; exit 1; }
echo "ok: resumed on 3 ranks: $(grep -m1 resumed "$WORK/resumed-3.log")"

# SIGUSR1 (a scheduler's warning) to mpirun, and SIGTERM to a single process: every rank finishes its step, rank 0
# saves the position inside the epoch, exit status 75; --resume then ends bit-identical to a run never stopped.
signalled=(--set training.epochs=12 --set training.batch-size=4 --set optimizer.name=adamw --set training.patience=30
           --set schedule.name=cosine)
for n in 2 1; do
    train "$n" "$WORK/signal-straight-$n" "${signalled[@]}"
    if (( n == 1 )); then
        "$GRAFT" train "$recipe" --output "$WORK/signalled-$n" "${signalled[@]}" >"$WORK/signalled-$n.log" 2>&1 &
        signal=TERM
    else
        "$MPIRUN" --quiet --allow-run-as-root -np 2 -x OPENBLAS_NUM_THREADS -x GRAFT_NUM_THREADS -x GRAFT_ASSETS \
            "$GRAFT" train "$recipe" --output "$WORK/signalled-$n" "${signalled[@]}" >"$WORK/signalled-$n.log" 2>&1 &
        signal=USR1
    fi
    launcher=$!
    wait_for_epoch 1 "$WORK/signalled-$n/metrics.jsonl"
    sleep 0.2  # into the next epoch
    kill "-$signal" "$launcher"
    status=0
    wait "$launcher" || status=$?
    if (( status != 75 )) || ! grep -q "^stopped after step .*; wrote .*/last, continue with --resume" "$WORK/signalled-$n.log"; then
        echo "FAIL: SIG$signal on $n rank(s) gave exit $status"; tail -3 "$WORK/signalled-$n.log"; exit 1
    fi
    launch "$n" --resume "$WORK/signalled-$n" "${signalled[@]}" >"$WORK/resumed-$n.log" 2>&1 \
        || { echo "FAIL: --resume after SIG$signal exited $?"; tail -3 "$WORK/resumed-$n.log"; exit 1; }
    "${compare[@]}" --exact "$WORK/signalled-$n" "$WORK/signal-straight-$n" || { echo "FAIL: resumed after SIG$signal differs"; exit 1; }
    echo "ok: SIG$signal on $n rank(s): $(grep ^stopped "$WORK/signalled-$n.log"); $(grep -m1 resumed "$WORK/resumed-$n.log")"
done

# Resuming with a changed recipe is refused, naming the field.
if "$GRAFT" train "$recipe" --resume "$WORK/straight" "${long[@]}" --set optimizer.weight-decay=0.5 >"$WORK/changed.log" 2>&1 \
    || ! grep -q "finished run" "$WORK/changed.log"; then
    echo "FAIL: resuming a finished run was not refused"; cat "$WORK/changed.log"; exit 1
fi
rm "$WORK/killed/results.json"
if "$GRAFT" train "$recipe" --resume "$WORK/killed" "${long[@]}" --set optimizer.weight-decay=0.5 >"$WORK/changed.log" 2>&1 \
    || ! grep -q "optimizer.weight-decay (absent) → 0.5" "$WORK/changed.log"; then
    echo "FAIL: resuming with a changed recipe was not refused with the field named"; cat "$WORK/changed.log"; exit 1
fi
echo "ok: resume refuses a finished run and a changed recipe: $(cat "$WORK/changed.log")"
echo "data-parallel tests passed ($WORK)"
