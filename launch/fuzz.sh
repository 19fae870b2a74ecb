#!/usr/bin/env bash
# libFuzzer targets for Graft's input readers (Tests/Fuzz/): builds them (idempotent) and runs each for SECONDS.
#
#   bash launch/fuzz.sh [SECONDS] [TARGET...]      # SECONDS defaults to 600; TARGETs default to all:
#       safetensors recipe csv textfolder wordpiece jpeg
#
# How the targets are built: SwiftPM compiles the library modules once into a scratch folder (GRAFT_FUZZ_BUILD,
# default .build-fuzz), in the debug configuration (so -enable-testing is on, and Package.swift's release-only
# -Ounchecked is not: traps on overflow and out-of-range indices stay in) but optimised with -O, and instrumented
# with `-sanitize=fuzzer,address` (one comma-separated flag: a second -sanitize= flag replaces the first, which
# silently drops the coverage instrumentation). Compiling with -sanitize=fuzzer does not link libFuzzer, so the
# library builds as usual; each target is then linked by swiftc -sanitize=fuzzer,address from Tests/Fuzz/Common.swift,
# Tests/Fuzz/<target>.swift and the modules' object files (the C decoder's too, and those of the Yams package and the
# libyaml inside it, which GraftIO reads YAML with: instrumented like Graft's own), with OpenBLAS, FreeType, libjpeg
# (and MPI for the recipe target).
#
# Runs: the corpus grows in $GRAFT_FUZZ_BUILD/work/<target>/corpus; the committed seeds in Tests/Fuzz/corpus/<target>
# are read, never written. Crashes, timeouts and out-of-memory inputs are saved under Tests/Fuzz/crashes/<target>/.
# Targets run GRAFT_FUZZ_JOBS at a time (default: the number of cores). GRAFT_FUZZ_SANITIZE=fuzzer drops ASan.
# Reproduce a crash:  $GRAFT_FUZZ_BUILD/fuzzers/<target> Tests/Fuzz/crashes/<target>/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SECONDS_EACH=${1:-600}
shift || true
ALL=(safetensors recipe csv textfolder wordpiece jpeg)
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL[@]}")
BUILD=${GRAFT_FUZZ_BUILD:-$ROOT/.build-fuzz}
SANITIZE=${GRAFT_FUZZ_SANITIZE:-fuzzer,address}
JOBS=${GRAFT_FUZZ_JOBS:-$(nproc)}
export GRAFT_VOCAB=${GRAFT_VOCAB:-${GRAFT_ASSETS:-$ROOT/.cache/assets}/minilm/vocab.txt}

modules() {  # the library modules a target links, dependencies first
    case $1 in
        safetensors) echo CYaml Yams GraftCore GraftIO ;;
        recipe) echo CJPEGDecode CYaml Yams GraftCore GraftNN GraftIO GraftOptim GraftData GraftDistributed GraftTrain GraftMeta GraftRecipe ;;
        csv|textfolder|wordpiece|jpeg) echo CJPEGDecode GraftCore GraftData ;;
        *) echo "fuzz.sh: unknown target $1 (known: ${ALL[*]})" >&2; exit 2 ;;
    esac
}
max_len() {
    case $1 in
        safetensors) echo 4096 ;; recipe) echo 4096 ;; csv) echo 2048 ;; textfolder) echo 2048 ;;
        wordpiece) echo 1024 ;; jpeg) echo 8192 ;;
    esac
}
for t in "${TARGETS[@]}"; do modules "$t" >/dev/null; done
if [ "$(basename "$GRAFT_VOCAB")" = vocab.txt ] && [ ! -f "$GRAFT_VOCAB" ] && [[ " ${TARGETS[*]} " == *" wordpiece "* ]]; then
    echo "fuzz.sh: $GRAFT_VOCAB is missing (bash launch/assets.sh minilm, or set GRAFT_VOCAB)" >&2; exit 2
fi

# ---- build the library modules (SwiftPM is incremental: a second run compiles nothing) ----
mkdir -p "$BUILD/fuzzers"
# Reuse the main build's dependency checkouts so an offline machine needs no fetch.
if [ ! -d "$BUILD/checkouts" ] && [ -d .build/checkouts ]; then
    cp -r .build/checkouts .build/repositories "$BUILD/" 2>/dev/null || true
    cp .build/workspace-state.json "$BUILD/" 2>/dev/null || true
fi
SWIFTPM=(swift build -c debug --scratch-path "$BUILD" -Xswiftc "-sanitize=$SANITIZE" -Xswiftc -O
         -Xcc "-fsanitize=${SANITIZE/fuzzer/fuzzer-no-link}" -Xcc -O2)
needed=$(for t in "${TARGETS[@]}"; do modules "$t"; done | tr ' ' '\n' | sort -u)
top=()   # building these builds every other needed module (one --target per swift build: a second one replaces it)
grep -qx GraftRecipe <<<"$needed" && top+=(GraftRecipe)
grep -qx GraftRecipe <<<"$needed" || { grep -qx GraftData <<<"$needed" && top+=(GraftData); }
grep -qx GraftRecipe <<<"$needed" || { grep -qx GraftIO <<<"$needed" && top+=(GraftIO); }
for m in "${top[@]}"; do
    echo "== swift build --target $m (-sanitize=$SANITIZE)"
    "${SWIFTPM[@]}" --target "$m" 2>&1 | grep -v '^\[' || true
    [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "fuzz.sh: building $m failed" >&2; exit 1; }
done

# ---- link each target ----
OBJ=$BUILD/debug
CFLAGS=()
for m in CBLAS CSystem CMPI CFreeType; do CFLAGS+=(-Xcc "-fmodule-map-file=$ROOT/Sources/$m/module.modulemap"); done
CFLAGS+=(-Xcc "-fmodule-map-file=$OBJ/CJPEGDecode.build/module.modulemap")
# Yams' C module; a module that imports GraftIO needs it found, though nothing here calls libyaml directly.
CFLAGS+=(-Xcc "-fmodule-map-file=$BUILD/checkouts/Yams/Sources/CYaml/include/module.modulemap")
for f in $(pkg-config --cflags openblas ompi-c freetype2 2>/dev/null); do CFLAGS+=(-Xcc "$f"); done
read -ra LIBS <<<"$(pkg-config --libs openblas freetype2) -ljpeg"
for t in "${TARGETS[@]}"; do
    objs=()
    for m in $(modules "$t"); do mapfile -t -O "${#objs[@]}" objs < <(find "$OBJ/$m.build" -name '*.o' | sort); done
    libs=("${LIBS[@]}")
    if [ "$t" = recipe ]; then read -ra mpi <<<"$(pkg-config --libs ompi-c)"; libs+=("${mpi[@]}"); fi
    out=$BUILD/fuzzers/$t
    if [ -x "$out" ] && [ -z "$(find Tests/Fuzz/Common.swift "Tests/Fuzz/$t.swift" "${objs[@]}" -newer "$out" 2>/dev/null)" ]; then
        continue
    fi
    echo "== link $t"
    swiftc "-sanitize=$SANITIZE" -parse-as-library -O -use-ld=lld -I "$OBJ/Modules" "${CFLAGS[@]}" \
        Tests/Fuzz/Common.swift "Tests/Fuzz/$t.swift" "${objs[@]}" "${libs[@]}" -o "$out"
done

# ---- run ----
run() {
    local t=$1 work=$BUILD/work/$1
    mkdir -p "$work/corpus" "Tests/Fuzz/crashes/$t"
    local extra=()
    [ -f "Tests/Fuzz/$t.dict" ] && extra+=("-dict=Tests/Fuzz/$t.dict")
    # Fork mode with -ignore_*: a crash is saved and fuzzing goes on, so one known bug does not end the run.
    [ "${GRAFT_FUZZ_STOP_AT_CRASH:-0}" = 1 ] || extra+=(-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1)
    local status=0
    run_env "$BUILD/fuzzers/$t" "$work/corpus" "Tests/Fuzz/corpus/$t" \
        -max_total_time="$SECONDS_EACH" -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=4096 \
        -artifact_prefix="Tests/Fuzz/crashes/$t/" -print_final_stats=1 "${extra[@]}" >"$work/log" 2>&1 || status=$?
    echo $status >"$work/status"
}
# detect_leaks=0: the Swift runtime's caches read as leaks at exit; the targets check memory errors, not leaks.
# SWIFT_BACKTRACE=enable=no: Swift's own crash handler would catch a trap first and then trip ASan itself.
run_env() { ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0} SWIFT_BACKTRACE=enable=no "$@"; }
START=$(date +%s)
running=0
for t in "${TARGETS[@]}"; do
    echo "== fuzz $t for ${SECONDS_EACH}s (log: $BUILD/work/$t/log)"
    run "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then wait -n || true; running=$((running - 1)); fi
done
wait || true

# ---- summary ----
printf '\n%-12s %12s %8s %8s %10s  %s\n' target executions cov ft corpus crashes
failed=0
for t in "${TARGETS[@]}"; do
    log=$BUILD/work/$t/log
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    [ -n "$execs" ] || execs=$(grep -oE '^#[0-9]+' <<<"$last" | tr -d '#' || true)
    cov=$(grep -o 'cov: [0-9]*' <<<"$last" | grep -o '[0-9]*' || true)
    ft=$(grep -o 'ft: [0-9]*' <<<"$last" | grep -o '[0-9]*' || true)
    corp=$(grep -oE 'corp: [0-9]+(/[0-9a-zA-Z]+)?' <<<"$last" | cut -d' ' -f2 || true)
    new=$(find "Tests/Fuzz/crashes/$t" -type f -newermt "@$START" 2>/dev/null | sort)
    status=$(cat "$BUILD/work/$t/status" 2>/dev/null || echo '?')
    printf '%-12s %12s %8s %8s %10s  %s\n' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" \
        "$( [ -n "$new" ] && echo "$(wc -l <<<"$new") (exit $status)" || echo "0 (exit $status)")"
    if [ -n "$new" ] || [ "$status" != 0 ]; then
        failed=1
        # Replay each saved input for its cause and the first frames in Graft's sources (or the target's).
        while read -r crash; do
            [ -n "$crash" ] || continue
            echo "    $crash:"
            run_env timeout 60 "$BUILD/fuzzers/$t" "$crash" 2>&1 | grep -v 'Cannot export' |
                grep -E 'FUZZ CHECK|Fatal error|runtime failure|graft: error|ERROR: (libFuzzer|AddressSanitizer)|/work/|Sources/|Tests/Fuzz/' |
                grep -v 'Running:\|compiler-rt' | head -8 | sed 's/^/        /' || true
        done <<<"$new"
    fi
done
exit $failed
