#!/usr/bin/env bash
# Builds graft-rank-tests and runs it under mpirun once per world size in RANKS; exits non-zero if any run fails.
# Usage: launch/test-ranks.sh [extra graft-rank-tests options, e.g. --chunk-bytes 65536]
set -euo pipefail

# mpirun to launch with.
MPIRUN=${MPIRUN:-mpirun}
# World sizes to test, space-separated.
RANKS=${RANKS:-"2 3"}
# Cores the ranks may use; a run with more ranks than this gets --oversubscribe.
CORES=${CORES:-$(nproc)}
# Seconds after which mpirun kills a run (a rank stuck in a collective would otherwise hang the suite).
TIMEOUT=${TIMEOUT:-300}
# Extra flags for swift build, e.g. "--scratch-path .build-mpi".
SWIFT_BUILD_FLAGS=${SWIFT_BUILD_FLAGS:-}
# 1 skips the build and runs the existing binary.
GRAFT_SKIP_BUILD=${GRAFT_SKIP_BUILD:-0}
# The rank test binary; empty means where the release build puts it.
BIN=${BIN:-}
# Extra mpirun flags, e.g. "--mca btl self,vader".
MPIRUN_FLAGS=${MPIRUN_FLAGS:-}
# Exported to every rank: one BLAS thread per rank, or ranks fight over the cores.
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}

cd "$(dirname "$0")/.."

# shellcheck disable=SC2086  # flag lists are meant to split into words
if [[ "$GRAFT_SKIP_BUILD" != 1 ]]; then
    echo "== building graft-rank-tests (release)"
    swift build -c release --product graft-rank-tests $SWIFT_BUILD_FLAGS
fi
# shellcheck disable=SC2086
[[ -n "$BIN" ]] || BIN="$(swift build -c release --show-bin-path $SWIFT_BUILD_FLAGS)/graft-rank-tests"
[[ -x "$BIN" ]] || { echo "test-ranks: no executable at $BIN (build it, or set BIN)" >&2; exit 2; }

failed=()
for n in $RANKS; do
    flags=(--allow-run-as-root -np "$n" --timeout "$TIMEOUT" -x OPENBLAS_NUM_THREADS)
    if (( n > CORES )); then flags+=(--oversubscribe); fi
    # shellcheck disable=SC2206
    flags+=($MPIRUN_FLAGS)
    echo
    echo "== $n ranks: $MPIRUN ${flags[*]} $BIN $*"
    start=$SECONDS
    if "$MPIRUN" "${flags[@]}" "$BIN" "$@"; then
        echo "== $n ranks: ok ($((SECONDS - start)) s)"
    else
        echo "== $n ranks: FAILED ($((SECONDS - start)) s)"
        failed+=("$n")
    fi
done

echo
if (( ${#failed[@]} > 0 )); then
    echo "test-ranks: failed with ${failed[*]} ranks"
    exit 1
fi
echo "test-ranks: all runs passed (ranks: $RANKS)"

# graft train itself on 1, 2 and 3 ranks: same weights and metrics, mismatches and failures stop the job, resume.
echo
echo "== data-parallel graft train"
# shellcheck disable=SC2086
[[ "$GRAFT_SKIP_BUILD" == 1 ]] || swift build -c release --product graft $SWIFT_BUILD_FLAGS
# shellcheck disable=SC2086
MPIRUN=$MPIRUN MPIRUN_FLAGS=$MPIRUN_FLAGS bash Tests/DataParallel/run.sh "$(swift build -c release --show-bin-path $SWIFT_BUILD_FLAGS)/graft"
