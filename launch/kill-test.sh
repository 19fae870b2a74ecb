#!/usr/bin/env bash
# Kills a MiniLM feature-extraction run with SIGKILL at random moments, again and again (in the feature pass, mid-
# epoch, while a 90 MB checkpoint is being written), and each time resumes it with --resume. Checks that every resume
# finds a complete last/ that loads, and that no half-written directory from a killed run is left beside last/ and
# best/ once the next run has started. Prints the counts; exits non-zero on any failure.
# Usage: launch/kill-test.sh [KILLS]   (assets from launch/assets.sh minilm bbc; a release build of graft)
set -euo pipefail

KILLS=${1:-100}
# The graft binary.
GRAFT=${GRAFT:-.build/release/graft}
# Where the run goes.
WORK=${WORK:-$(mktemp -d /tmp/graft-kill.XXXXXX)}
# Longest wait before a kill, in tenths of a second (a run's feature pass takes about a second here).
MAX_WAIT=${MAX_WAIT:-40}
export GRAFT_ASSETS=${GRAFT_ASSETS:-$(pwd)/.cache/assets}

cd "$(dirname "$0")/.."
out=$WORK/run
options=(--set data.limit-per-class=20 --set data.max-tokens=32 --set training.epochs=100000 --set training.patience=100000)
kills=0 resumed=0 fresh=0 failures=0 leftovers=0
while (( kills < KILLS )); do
    if [[ -d $out/last ]]; then
        cmd=("$GRAFT" train recipes/bbc-minilm.yaml --resume "$out" "${options[@]}")
    else
        cmd=("$GRAFT" train recipes/bbc-minilm.yaml --output "$out" --overwrite "${options[@]}")
    fi
    "${cmd[@]}" >"$WORK/log" 2>&1 &
    pid=$!
    sleep "$(( RANDOM % MAX_WAIT / 10 )).$(( RANDOM % 10 ))"
    # After the start-up cleaning (some 0.3 s in): nothing of a killed writer may be left beside last/ and best/.
    for name in "$out"/*.tmp-* "$out"/*.old-*; do
        [[ -e $name && ${name##*-} != "$pid" ]] || continue
        grep -q "^model:" "$WORK/log" || continue
        echo "leftover after the next start: $name"; leftovers=$((leftovers + 1))
    done
    if ! kill -9 "$pid" 2>/dev/null; then
        wait "$pid" || { echo "run failed: $(grep error: "$WORK/log")"; failures=$((failures + 1)); rm -rf "$out"; }
        continue
    fi
    wait "$pid" 2>/dev/null || true
    kills=$((kills + 1))
    if grep -q "^resumed" "$WORK/log"; then resumed=$((resumed + 1)); fi
    if grep -q "error:" "$WORK/log"; then echo "error before the kill: $(grep error: "$WORK/log")"; failures=$((failures + 1)); fi
    [[ ${cmd[*]} == *--resume* ]] || fresh=$((fresh + 1))
done
echo "kill-test: $kills SIGKILLs; $fresh runs started fresh, $resumed resumed from last/ before the next kill;" \
    "$failures failures, $leftovers leftovers (work in $WORK)"
(( failures == 0 && leftovers == 0 ))
