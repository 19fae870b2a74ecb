#!/usr/bin/env bash
# Graft's main job, end to end on a fresh machine: system packages, assets, a release build, then fine-tuning.
# The job is recipes/bbc-minilm.yaml: BBC News topics (real data) from the pretrained MiniLM-L6 encoder (real
# weights), frozen, with its features cached and a new linear head trained on them. It prints one line per epoch,
# then the test accuracy and per-class scores, and writes checkpoints and metrics under runs/bbc-minilm.
# Extra arguments go to `graft train` (e.g. --set training.epochs=5, --output DIR, or another recipe's options).
# GRAFT_RANKS=N trains data-parallel on N MPI ranks of this machine (mpirun); the recipe's batch size stays global.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

# Where launch/assets.sh keeps the data and weights (the recipe reads it too).
export GRAFT_ASSETS=${GRAFT_ASSETS:-$repo/.cache/assets}
# The recipe to run.
RECIPE=${RECIPE:-recipes/bbc-minilm.yaml}
# MPI ranks (processes) to train with; 1 runs graft directly, without mpirun.
GRAFT_RANKS=${GRAFT_RANKS:-1}
# mpirun to launch the ranks with (OpenMPI's, which Graft is built against).
MPIRUN=${MPIRUN:-mpirun}
# Extra mpirun flags, split on spaces: e.g. "--mca btl_tcp_if_include eth0" or "--hostfile hosts".
MPIRUN_FLAGS=${MPIRUN_FLAGS:-}
# Hardware threads this job may use; each rank gets an equal share.
CPUS=${CPUS:-$(nproc)}
# Physical cores among them (fewer with SMT): ranks are bound to whole cores, and more ranks than cores oversubscribe.
CORES=${CORES:-$((CPUS / $(lscpu | awk -F: '/^Thread\(s\) per core/ {n = $2 + 0} END {print (n > 0 ? n : 1)}')))}
# 1 prints the commands (setup, assets, build, training) instead of running them.
GRAFT_DRY_RUN=${GRAFT_DRY_RUN:-0}

die() {
    echo "run: error: $*" >&2
    exit 1
}

# Runs a command, or with GRAFT_DRY_RUN=1 prints it, shell-quoted.
run() {
    if [[ $GRAFT_DRY_RUN == 1 ]]; then
        printf '%q ' "$@" | sed 's/ $//'
        echo
    else
        "$@"
    fi
}

[[ $GRAFT_RANKS =~ ^[1-9][0-9]*$ ]] || die "GRAFT_RANKS must be a positive whole number, got '$GRAFT_RANKS'"
((CORES >= 1)) || CORES=1

run bash launch/setup.sh
run bash launch/assets.sh minilm bbc mnist
run swift build -c release --product graft
# --overwrite: running the main job again replaces its own previous run directory (unless it resumes one, with
# --resume DIR, which takes no --overwrite).
overwrite=(--overwrite)
for arg in "$@"; do
    if [[ $arg == --resume || $arg == --resume=* ]]; then overwrite=(); fi
done
train=(.build/release/graft train "$RECIPE" "${overwrite[@]}" "$@")

if ((GRAFT_RANKS == 1)); then
    run "${train[@]}"
    exit
fi

# Each rank gets an equal share of the hardware threads, for OpenBLAS and Graft's kernels alike, unless they are set:
# ranks × threads beyond the cores makes ranks fight over them, and every rank waits for the slowest one.
threads=$((CPUS / GRAFT_RANKS > 1 ? CPUS / GRAFT_RANKS : 1))
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-$threads}
export GRAFT_NUM_THREADS=${GRAFT_NUM_THREADS:-$threads}

flags=(--allow-run-as-root -np "$GRAFT_RANKS")
if ((GRAFT_RANKS > CORES)); then
    # More ranks than cores: mpirun refuses unless told to oversubscribe, and binding would pile ranks on a core.
    flags+=(--oversubscribe --bind-to none)
else
    # Each rank pinned to its own cores (PE: cores per rank), so its threads and memory stay put.
    flags+=(--map-by "slot:PE=$((CORES / GRAFT_RANKS))" --bind-to core)
fi
# -x sends a variable to every rank (needed on other hosts; mpirun warns about any that is not set).
for name in OPENBLAS_NUM_THREADS GRAFT_NUM_THREADS GRAFT_ASSETS OPENBLAS_THREAD_TIMEOUT; do
    if [[ -n ${!name+set} ]]; then flags+=(-x "$name"); fi
done
# shellcheck disable=SC2206  # MPIRUN_FLAGS is a list of words
flags+=($MPIRUN_FLAGS)

echo "run: $GRAFT_RANKS ranks; threads per rank: OpenBLAS $OPENBLAS_NUM_THREADS, Graft $GRAFT_NUM_THREADS" \
    "($CPUS hardware threads, $CORES cores)" >&2
run "$MPIRUN" "${flags[@]}" "${train[@]}"
