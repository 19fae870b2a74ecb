#!/usr/bin/env bash
# A Python venv with CPU-only PyTorch and numpy, for side-by-side benchmarks (`graft bench core`) and fixture
# scripts. It is kept out of the build and the default test path. Idempotent: an existing venv that already imports
# the pinned torch is left alone. Progress goes to stderr; stdout is only the venv's python path, so callers can do
#   PY=$(launch/torch-env.sh)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Where the venv lives; `graft bench core` looks for <repo>/.cache/torch-venv/bin/python by default.
GRAFT_TORCH_VENV=${GRAFT_TORCH_VENV:-$repo/.cache/torch-venv}
# Python the venv is made from; must be CPython 3.11 for the cp311 wheel in pip's find-links folder (/opt/wheels).
GRAFT_TORCH_BASE_PYTHON=${GRAFT_TORCH_BASE_PYTHON:-python3}
# Exact torch requirement: the CPU-only build (192 MB), not PyPI's default torch with CUDA libraries (~2.8 GB).
GRAFT_TORCH_SPEC=${GRAFT_TORCH_SPEC:-torch==2.13.0+cpu}
# Other packages the benchmark and fixture scripts import.
GRAFT_TORCH_EXTRA=${GRAFT_TORCH_EXTRA:-numpy safetensors transformers pillow}

python=$GRAFT_TORCH_VENV/bin/python
# Only an exact pin can be checked against torch.__version__; any other requirement is trusted as installed.
want_version=""
if [[ $GRAFT_TORCH_SPEC == torch==* ]]; then want_version=${GRAFT_TORCH_SPEC#torch==}; fi
read -r -a extra <<<"$GRAFT_TORCH_EXTRA"

die() {
    echo "torch-env: error: $*" >&2
    exit 1
}

ready() {
    # Checking the version too means a venv built from another pin is reinstalled rather than silently reused.
    [[ -x $python ]] && "$python" - "$want_version" "${extra[@]}" <<'EOF' >/dev/null 2>&1
import importlib, re, sys
import torch
if sys.argv[1] and torch.__version__ != sys.argv[1]:
    sys.exit(1)
import_names = {"pillow": "PIL"}  # distributions whose module is named differently
for requirement in sys.argv[2:]:
    name = re.split(r"[<>=!~\[; ]", requirement)[0]
    importlib.import_module(import_names.get(name.lower(), name))
EOF
}

if ready; then
    echo "torch-env: ok (cached) at $GRAFT_TORCH_VENV" >&2
    echo "$python"
    exit 0
fi

# A venv whose interpreter no longer runs (base Python moved or upgraded) cannot be repaired by pip: rebuild it.
if [[ -f $GRAFT_TORCH_VENV/pyvenv.cfg ]] && ! "$python" -c '' 2>/dev/null; then
    echo "torch-env: rebuilding broken venv at $GRAFT_TORCH_VENV" >&2
    rm -rf "$GRAFT_TORCH_VENV"
fi
if [[ ! -x $python ]]; then
    echo "torch-env: creating venv at $GRAFT_TORCH_VENV" >&2
    mkdir -p "$(dirname "$GRAFT_TORCH_VENV")"
    "$GRAFT_TORCH_BASE_PYTHON" -m venv "$GRAFT_TORCH_VENV" >&2 \
        || die "cannot create a venv with $GRAFT_TORCH_BASE_PYTHON (on Debian: apt-get install python3-venv)"
fi

echo "torch-env: installing $GRAFT_TORCH_SPEC $GRAFT_TORCH_EXTRA (about a minute the first time)" >&2
if ! "$python" -m pip install --quiet --no-input --disable-pip-version-check "$GRAFT_TORCH_SPEC" "${extra[@]}" >&2; then
    die "pip install $GRAFT_TORCH_SPEC ${extra[*]} failed. The CPU-only wheel is found through pip's find-links \
(pip config list; /opt/wheels here) and needs CPython 3.11 ($("$python" -V 2>&1)); elsewhere set \
GRAFT_TORCH_SPEC=torch to use PyPI's default build."
fi
ready || die "$python still cannot import $GRAFT_TORCH_SPEC and $GRAFT_TORCH_EXTRA after installing"

echo "torch-env: ready: torch $("$python" -c 'import torch; print(torch.__version__)') at $GRAFT_TORCH_VENV" >&2
echo "$python"
