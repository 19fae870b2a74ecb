#!/usr/bin/env bash
# Graft's main job, end to end on a fresh machine: system packages, assets, a release build, then fine-tuning.
# The job is recipes/bbc-minilm.yaml: BBC News topics (real data) from the pretrained MiniLM-L6 encoder (real
# weights), frozen, with its features cached and a new linear head trained on them. It prints one line per epoch,
# then the test accuracy and per-class scores, and writes checkpoints and metrics under runs/bbc-minilm.
# Extra arguments go to `graft train` (e.g. --set training.epochs=5, --output DIR, or another recipe's options).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

# Where launch/assets.sh keeps the data and weights (the recipe reads it too).
export GRAFT_ASSETS=${GRAFT_ASSETS:-$repo/.cache/assets}
# The recipe to run.
RECIPE=${RECIPE:-recipes/bbc-minilm.yaml}

bash launch/setup.sh
bash launch/assets.sh minilm bbc mnist
swift build -c release --product graft
# --overwrite: running the main job again replaces its own previous run directory.
.build/release/graft train "$RECIPE" --overwrite "$@"
