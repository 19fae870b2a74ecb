#!/usr/bin/env bash
# Graft's main job, end to end on a fresh machine: system packages, assets, a release build, then training.
# For now the job is the MLP demo on MNIST-5k (real data), printing loss and accuracy per epoch.
# Extra arguments go to `graft mlp` (e.g. --epochs 3).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

# Where launch/assets.sh keeps the data and weights.
export GRAFT_ASSETS=${GRAFT_ASSETS:-$repo/.cache/assets}
# Training epochs of the demo.
EPOCHS=${EPOCHS:-8}

bash launch/setup.sh
bash launch/assets.sh mnist
swift build -c release --product graft
.build/release/graft mlp --csv "$GRAFT_ASSETS/mnist_5k.csv" --epochs "$EPOCHS" "$@"
