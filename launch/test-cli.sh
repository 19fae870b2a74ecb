#!/usr/bin/env bash
# Checks the `graft` command line end to end: a release build, `graft inspect` on a file PyTorch wrote, and clear
# errors with a non-zero exit for a bad file and a bad option. Prints "N passed, M failed" and fails on any failure.
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
check "mlp rejects a bad option" 64 "--epochs and --batch-size must be positive" -- "$BIN" mlp --csv x.csv --epochs 0
printf '1,2,3\n4,5\n' >"$WORK/ragged.csv"
check "mlp names the bad CSV line" 1 "$WORK/ragged.csv:2" -- "$BIN" mlp --csv "$WORK/ragged.csv"

rm -rf "$WORK"
echo "$passed passed, $failed failed"
[[ $failed == 0 ]]
