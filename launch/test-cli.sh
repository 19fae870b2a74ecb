#!/usr/bin/env bash
# Checks the `graft` command line end to end: a release build, `graft inspect` on a file PyTorch wrote, short
# `graft train` runs of the shipped recipes (assets from launch/assets.sh), and clear errors with a non-zero exit for
# bad files, recipes and options. Prints "N passed, M failed" and fails on any failure.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

# The binary under test; built here unless GRAFT_SKIP_BUILD=1.
BIN=${BIN:-$repo/.build/release/graft}
# Scratch directory for the bad input files.
WORK=${WORK:-$(mktemp -d)}

[[ ${GRAFT_SKIP_BUILD:-0} == 1 ]] || swift build -c release --product graft || exit 1

passed=0 failed=0
check() { # NAME EXPECTED-EXIT EXPECTED-TEXT -- COMMAND...
    local name=$1 want_exit=$2 want_text=$3
    shift 4
    local out code
    out=$("$@" 2>&1)
    code=$?
    if [[ $code == "$want_exit" && $out == *"$want_text"* ]]; then
        passed=$((passed + 1)); echo "ok    $name"
    else
        failed=$((failed + 1)); echo "FAIL  $name (exit $code, want $want_exit; output: ${out:0:300})"
    fi
}

fixture=Tests/GraftIOTests/Fixtures/torch_written.safetensors
check "inspect lists tensors" 0 "layer.0.weight  F32      [2, 3, 4]" -- "$BIN" inspect "$fixture"
check "inspect totals" 0 "15 tensors, 99 parameters" -- "$BIN" inspect "$fixture"
printf 'abc' >"$WORK/short.safetensors"
check "inspect names a truncated file" 1 "$WORK/short.safetensors" -- "$BIN" inspect "$WORK/short.safetensors"
check "inspect names a missing file" 1 "$WORK/none.safetensors" -- "$BIN" inspect "$WORK/none.safetensors"
check "an unknown GRAFT_GEMM is one line" 2 "error: GRAFT_GEMM=mkl: expected one of openblas, onednn" -- \
    env GRAFT_GEMM=mkl "$BIN" inspect "$fixture"
check "GRAFT_GEMM=openblas runs" 0 "15 tensors, 99 parameters" -- env GRAFT_GEMM=openblas "$BIN" inspect "$fixture"

# graft train: a small real run, then the ways a recipe or its data can be wrong.
runs=$WORK/runs
check "train runs a recipe" 0 "test (weights of epoch 1)" -- \
    "$BIN" train recipes/mnist-mlp.yaml --set training.epochs=1 --output "$runs/mnist"
check "train draws its learning curves" 0 "" -- bash -c "grep -q '<circle' '$runs/mnist/curves.svg' && grep -q '>Loss<' '$runs/mnist/curves.svg'"
# bf16 matrix products (hardware or emulated) train as well as fp32: test loss within 3 %, accuracy within 1.5 points.
check "train in bf16 matches fp32" 0 "bf16 parity" -- bash -c "
    '$BIN' train recipes/mnist-mlp.yaml --set training.epochs=3 --output '$runs/fp32' --overwrite >'$WORK/fp32.log' 2>&1 &&
    '$BIN' train recipes/mnist-mlp.yaml --set training.epochs=3 --set training.precision=bf16 --output '$runs/bf16' \
        --overwrite >'$WORK/bf16.log' 2>&1 && grep -q 'matrix products in bf16' '$WORK/bf16.log' &&
    awk '/^test \(weights/ { loss[FILENAME] = \$7; acc[FILENAME] = \$9 + 0 }
         END { a = loss[ARGV[1]]; b = loss[ARGV[2]]; d = acc[ARGV[1]] - acc[ARGV[2]]
               if (a > 0 && b > 0 && (a - b) / a < 0.03 && (b - a) / a < 0.03 && d < 1.5 && d > -1.5) print \"bf16 parity\"
               else { print \"fp32\", a, acc[ARGV[1]], \"bf16\", b, acc[ARGV[2]]; exit 1 } }' '$WORK/fp32.log' '$WORK/bf16.log'"
check "train keeps an earlier run" 1 "choose another output, pass --overwrite, or --resume $runs/mnist" -- \
    "$BIN" train recipes/mnist-mlp.yaml --set training.epochs=1 --output "$runs/mnist"
check "train overwrites when asked" 0 "wrote $runs/mnist/best" -- \
    "$BIN" train recipes/mnist-mlp.yaml --set training.epochs=1 --output "$runs/mnist" --overwrite
check "train caches MiniLM features for BBC News" 0 "strategy: feature extraction" -- \
    "$BIN" train recipes/bbc-minilm.yaml --set data.limit-per-class=12 --set data.max-tokens=32 \
    --set training.epochs=2 --output "$runs/bbc"
check "train runs two-stage, unfreezing the top blocks" 0 "strategy: two-stage (head for 2 epochs" -- \
    "$BIN" train recipes/bbc-minilm-two-stage.yaml --set data.limit-per-class=8 --set data.max-tokens=24 \
    --set training.epochs=4 --set schedule.warmup-steps=1 --output "$runs/two-stage"
# Distillation from that run into a 1-layer student on the same rows; a teacher that split the data otherwise is refused.
distill=(--set "distillation.teacher=$runs/two-stage" --set data.limit-per-class=8 --set data.max-tokens=24
         --set data.train-per-class=null --set model.layers=1 --set training.epochs=1 --set schedule.warmup-steps=1)
check "train distils a 1-layer student from a run" 0 "its lower 1 of 6 layers" -- \
    "$BIN" train recipes/bbc-distill.yaml "${distill[@]}" --output "$runs/distill"
check "train refuses a teacher that split the data otherwise" 1 "distillation.teacher: $runs/two-stage was trained with data.test 0.2, this recipe has 0.3" -- \
    "$BIN" train recipes/bbc-distill.yaml "${distill[@]}" --set data.test=0.3 --output "$runs/distill-bad"
# Images: an image folder of two classes made of the PNG fixtures (every colour type), augmented; predict on a file.
pngs=Tests/GraftDataTests/Fixtures/images imgs=$WORK/imgs
mkdir -p "$imgs/boots" "$imgs/shirts"
for f in rgb8 grey8 palette rgba16; do cp "$pngs/$f.png" "$imgs/boots/"; done
for f in grey16 rgb16 grey_alpha8 rgba8; do cp "$pngs/$f.png" "$imgs/shirts/"; done
cat >"$WORK/images.yaml" <<EOF
data:
  format: image-folder
  path: $imgs
  size: 12
  validation: 0.25
  test: 0.25
  transforms:
    train: [horizontal-flip, {random-resized-crop: {size: 12, scale: [0.6, 1]}}]
  normalize: imagenet
model: {architecture: small-cnn}
strategy: {name: full, lr: 0.01}
training: {epochs: 2, batch-size: 4}
EOF
check "train runs on an augmented image folder" 0 "test (weights of epoch" -- \
    "$BIN" train "$WORK/images.yaml" --output "$runs/images"
check "predict classifies an image file" 0 "$pngs/rgb8.png" -- "$BIN" predict "$runs/images" "$pngs/rgb8.png"
check "evaluate reads an image folder" 0 "every row of $imgs: 8 rows" -- "$BIN" evaluate "$runs/images" --data "$imgs"
cp "$pngs/truncated.png" "$imgs/boots/broken.png"
check "train names an image it cannot decode" 1 "broken.png: not a readable PNG" -- \
    "$BIN" train "$WORK/images.yaml" --output "$runs/images-broken"
check "train names a bad transform field" 1 "data.transforms.train.1.random-resized-crop.scale: must be [low, high]" -- \
    "$BIN" train "$WORK/images.yaml" --set 'data.transforms.train=[horizontal-flip, {random-resized-crop: {size: 12, scale: [2, 1]}}]' --output "$runs/x"

# Progress: a bar redrawn in place on a terminal (a pseudo-terminal from script(1)), plain lines in a log.
check "train shows a moving progress bar on a terminal" 0 "" -- bash -c "
    script -qec \"'$BIN' train recipes/bbc-minilm.yaml --set data.limit-per-class=200 --set data.max-tokens=64 \
        --set training.epochs=1 --output '$runs/pty'\" '$WORK/pty.log' >/dev/null &&
    (( \$(grep -a -o \$'\\r\\e\\[2Kcaching features' '$WORK/pty.log' | wc -l) >= 2 ))"
check "train writes plain progress lines to a log" 0 "" -- bash -c "
    '$BIN' train recipes/bbc-minilm.yaml --set data.limit-per-class=200 --set data.max-tokens=64 --set training.epochs=1 \
        --output '$runs/log' >'$WORK/plain.log' 2>&1 &&
    grep -q '^caching features: [0-9]*/[0-9]* rows' '$WORK/plain.log' && ! grep -q \$'\\r' '$WORK/plain.log'"

check "compare runs each strategy on one split and draws them" 0 "" -- bash -c "
    out=\$('$BIN' compare Tests/DataParallel/digits.yaml --strategies scratch,feature-extraction,full,gradual-unfreezing \
        --set training.epochs=2 --output '$runs/compare' 2>&1) &&
    [[ \$(grep -c -E '^\\| (scratch|feature-extraction|full|gradual-unfreezing) \\| [0-9.]+ %' <<<\"\$out\") == 4 ]] &&
    [[ \$(grep -c '<polyline' '$runs/compare/compare.svg') == 4 ]]"
check "compare names an unknown strategy" 64 "unknown strategy 'everything'" -- \
    "$BIN" compare Tests/DataParallel/digits.yaml --strategies full,everything
check "data-efficiency trains each size and strategy, then tables and draws them" 0 "" -- bash -c "
    out=\$('$BIN' data-efficiency Tests/DataParallel/digits.yaml --per-class 5,all --seeds 1 \
        --set training.epochs=1 --output '$runs/data-efficiency' 2>&1) &&
    [[ \$(grep -c -E '^(scratch|transfer) (5|all) per class, seed 7: test accuracy' <<<\"\$out\") == 4 ]] &&
    grep -q -E '^\\| 5 \\| 50 \\| [0-9.]+ ± 0.0 % \\(1 seed\\) \\| [0-9.]+ ± 0.0 % \\(1 seed\\) \\|' <<<\"\$out\" &&
    grep -q -E '^\\| all \\| [0-9]+ \\| ' <<<\"\$out\" &&
    [[ \$(grep -c '<polyline' '$runs/data-efficiency/data-efficiency.svg') == 2 ]] &&
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert len(r[\"runs\"]) == 4, r' '$runs/data-efficiency/data-efficiency.json' &&
    test -s '$runs/data-efficiency/transfer-5-seed0/results.json'"
check "data-efficiency names a bad size" 64 "--per-class: 'some' is neither" -- \
    "$BIN" data-efficiency Tests/DataParallel/digits.yaml --per-class 5,some

# graft evaluate and graft predict on those runs.
# The output is read whole before grep looks at it: grep -q in a pipe may exit first and end evaluate by SIGPIPE.
check "evaluate gives the run's own test figures" 0 "" -- bash -c "
    acc=\$(python3 -c 'import json,sys; print(\"%.2f%%\" % (100 * json.load(open(sys.argv[1]))[\"test\"][\"accuracy\"]))' '$runs/mnist/results.json')
    out=\$('$BIN' evaluate '$runs/mnist' --svg '$WORK/confusion.svg') && grep -q \"accuracy \$acc\" <<<\"\$out\" &&
    python3 -c 'import sys, xml.dom.minidom as m; m.parse(sys.argv[1])' '$WORK/confusion.svg'"
check "evaluate reads other data as the recipe does" 0 "on every row of" -- \
    "$BIN" evaluate "$runs/mnist" --data "${GRAFT_ASSETS:-.cache/assets}/mnist_5k.csv"
check "evaluate names a directory without a checkpoint" 1 "$WORK/none/last/state.json" -- "$BIN" evaluate "$WORK/none"
check "predict classifies CSV rows from stdin" 0 "" -- bash -c "
    [[ \$(head -3 '${GRAFT_ASSETS:-.cache/assets}/mnist_5k.csv' | '$BIN' predict '$runs/mnist' --format json | grep -c '\"label\"') == 3 ]]"
check "predict names a row of the wrong width" 1 "stdin:2: has 3 values; the run's rows have 784" -- \
    bash -c "printf '%s\n1,2,3\n' \"\$(head -1 '${GRAFT_ASSETS:-.cache/assets}/mnist_5k.csv')\" | '$BIN' predict '$runs/mnist'"
check "predict classifies sentences from stdin with a fine-tuned BBC run" 0 "" -- bash -c "
    out=\$(printf 'The striker scored twice as the club won the cup final.\nShares fell after the bank reported lower profits.\n' |
          '$BIN' predict '$runs/bbc' --top 2); echo \"\$out\";
    [[ \$(grep -c -E '^(business|entertainment|politics|sports|tech)\s' <<<\"\$out\") == 2 ]]"
# Multi-task: three heads on one body; evaluate and predict report every task.
check "train runs a multi-task recipe" 0 "task high: loss" -- \
    "$BIN" train Tests/DataParallel/multitask.yaml --set training.epochs=1 --output "$runs/multitask"
check "evaluate reports every task with the run's figures" 0 "" -- bash -c "
    acc=\$(python3 -c 'import json,sys; print(\"%.2f%%\" % (100 * json.load(open(sys.argv[1]))[\"test\"][\"tasks\"][1][\"accuracy\"]))' '$runs/multitask/results.json')
    out=\$('$BIN' evaluate '$runs/multitask'); grep -q \"^task parity: loss [0-9.]*  accuracy \$acc\" <<<\"\$out\" && grep -q '^task high: ' <<<\"\$out\""
check "predict gives every task's label" 0 "" -- bash -c "
    [[ \$(head -3 '${GRAFT_ASSETS:-.cache/assets}/digits/digits.csv' | '$BIN' predict '$runs/multitask' | grep -c -E '^digit: [0-9] .*  parity: (even|odd) .*  high: (low|high) ') == 3 ]]"
check "train names an unknown task weighting and its line" 1 "multitask.yaml:18: task-weighting: 'softmax' is not one of" -- \
    "$BIN" train Tests/DataParallel/multitask.yaml --set task-weighting=softmax --output "$runs/x"
check "train names an unknown field and its line" 1 "recipes/mnist-mlp.yaml: training.epoch: unknown field (from --set)" -- \
    "$BIN" train recipes/mnist-mlp.yaml --set training.epoch=3 --output "$runs/x"
check "train names a missing recipe" 1 "$WORK/none.yaml" -- "$BIN" train "$WORK/none.yaml"
# Contrastive pre-training: a short run of the shipped recipe, then a probe recipe loading its body without the
# projection head; a bad contrastive field named with its line.
check "train pre-trains contrastively (SimCLR)" 0 "test (weights of epoch 1): NT-Xent" -- \
    "$BIN" train recipes/mnist-simclr.yaml --set training.epochs=1 --set data.limit-per-class=30 --set data.test=0.2 \
    --set training.batch-size=32 --output "$runs/simclr"
check "a probe loads the contrastive body, projection left out" 0 "its projection left out" -- \
    "$BIN" train recipes/digits-simclr-probe.yaml --set "model.weights=$runs/simclr/best/model.safetensors" \
    --set training.epochs=1 --output "$runs/simclr-probe"
check "evaluate refuses a contrastive run (no trained classifier)" 1 "is a contrastive pre-training run" -- \
    "$BIN" evaluate "$runs/simclr"
check "train names a bad contrastive field and its line" 1 "simclr.yaml:24: contrastive.temperature: must be > 0" -- \
    bash -c "sed 's/temperature: 0.5/temperature: -1/' recipes/mnist-simclr.yaml >'$WORK/simclr.yaml'; '$BIN' train '$WORK/simclr.yaml'"
printf '1,2,3\n4,5\n' >"$WORK/ragged.csv"
check "train names the bad CSV line" 1 "$WORK/ragged.csv:2" -- \
    "$BIN" train recipes/mnist-mlp.yaml --set "data.path=$WORK/ragged.csv" --output "$runs/ragged"
check "train names a misspelt field and its line" 1 "$WORK/bad.yaml:19: trainig: unknown field" -- \
    bash -c "sed 's/^training:/trainig:/' recipes/mnist-mlp.yaml >'$WORK/bad.yaml'; '$BIN' train '$WORK/bad.yaml'"
check "train rejects a bad option" 64 "--threads must be ≥ 1" -- "$BIN" train recipes/mnist-mlp.yaml --threads 0
check "train stops at a non-finite gradient" 1 "non-finite gradient of layers.0.weight at step 2 (epoch 1)" -- \
    "$BIN" train recipes/mnist-mlp.yaml --set training.epochs=1 --set strategy.lr=1e30 --output "$runs/diverged"
check "train skips non-finite steps when asked" 0 "steps skipped: non-finite gradient" -- \
    "$BIN" train recipes/mnist-mlp.yaml --set training.epochs=1 --set strategy.lr=1e30 \
    --set training.on-non-finite=skip-step --output "$runs/skipped"
check "train keeps the earlier run when an overwriting run fails" 0 "" -- bash -c "
    cp '$runs/mnist/best/model.safetensors' '$WORK/best-before' &&
    ! '$BIN' train recipes/mnist-mlp.yaml --set training.epochs=1 --set strategy.lr=1e30 --output '$runs/mnist' --overwrite &&
    cmp '$WORK/best-before' '$runs/mnist/best/model.safetensors' && test -s '$runs/mnist/results.json'"
check "train starts over where a run failed before its first checkpoint" 0 "wrote $runs/diverged/best" -- \
    "$BIN" train recipes/mnist-mlp.yaml --set training.epochs=1 --output "$runs/diverged"
check "train refuses an empty --output" 64 "--output is empty" -- "$BIN" train recipes/mnist-mlp.yaml --output ""
check "train says when nothing is saved" 0 "output: none, so nothing is saved" -- \
    "$BIN" train recipes/mnist-mlp.yaml --set training.epochs=1 --set "output=~"
check "train resumes a run killed between last/ and best/" 0 "resumed $runs/between after epoch 2" -- bash -c "
    '$BIN' train recipes/mnist-mlp.yaml --set training.epochs=2 --output '$runs/between' >/dev/null &&
    rm -r '$runs/between/best' '$runs/between/results.json' &&
    '$BIN' train recipes/mnist-mlp.yaml --set training.epochs=3 --resume '$runs/between' && test -s '$runs/between/best/model.safetensors'"
# A real full disk: a 2 MB tmpfs (root only) holds the recipe copy and metrics but not a checkpoint.
if mkdir -p "$WORK/full" && mount -t tmpfs -o size=2M tmpfs "$WORK/full" 2>/dev/null; then
    check "train stops on a full disk, with one message and nothing half-written" 0 "" -- bash -c "
        out=\$('$BIN' train recipes/mnist-mlp.yaml --set training.epochs=2 --output '$WORK/full/run' 2>&1); code=\$?
        [[ \$code == 1 && \$out == *'No space left on device'* && \$out != *wrote* ]] &&
        [[ \$(grep -c error: <<<\"\$out\") == 1 ]] && ! ls '$WORK/full/run' | grep -q -e .tmp- -e .old-"
    umount "$WORK/full"
else
    echo "skip  full-disk test: cannot mount a tmpfs here (needs root)"
fi
check "train resumes a run where it is" 64 "--resume continues a run where it is" -- \
    "$BIN" train recipes/mnist-mlp.yaml --resume "$runs/mnist" --output "$runs/elsewhere"
check "train refuses to resume a finished run" 1 "holds a finished run (results.json); nothing to resume" -- \
    "$BIN" train recipes/mnist-mlp.yaml --set training.epochs=1 --resume "$runs/mnist"
check "train names a directory without a checkpoint" 1 "$WORK/none/last/state.json: cannot read" -- \
    "$BIN" train recipes/mnist-mlp.yaml --resume "$WORK/none"

# graft continual: two short permuted-MNIST tasks with EWC, and its refusals.
check "continual prints the accuracy matrix" 0 "backward transfer" -- \
    "$BIN" continual recipes/permuted-mnist.yaml --set "continual={count: 2, method: ewc, lambda: 100}" \
    --set training.epochs=1 --output "$runs/continual"
check "continual needs a continual section" 1 "recipes/mnist-mlp.yaml: continual: is required by graft continual" -- \
    "$BIN" continual recipes/mnist-mlp.yaml --output "$runs/no-continual"
check "continual names a field of another method" 1 "permuted-mnist.yaml: continual.alpha: unknown field (from --set)" -- \
    "$BIN" continual recipes/permuted-mnist.yaml --set continual.alpha=0.1 --output "$runs/bad-continual"
check "train refuses l2-sp without pretrained weights" 1 "regularization.method: l2-sp pulls the body towards its pretrained weights" -- \
    "$BIN" train recipes/mnist-mlp.yaml --set "regularization={method: l2-sp, body: 0.01}" --output "$runs/no-anchor"
# graft bench compare: one quick round of a small workload (a check that it runs, not a measurement), and a bad key.
check "bench compare prints its table" 0 "MLP 784-512-512-10 b128 SGD step" -- \
    "$BIN" bench compare --threads 1 --only mlp --quick --no-torch
check "bench compare names an unknown workload" 64 "unknown workload resnet-50" -- \
    "$BIN" bench compare --only mlp,resnet-50

rm -rf "$WORK"
echo "$passed passed, $failed failed"
[[ $failed == 0 ]]
