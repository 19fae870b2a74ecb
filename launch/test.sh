#!/usr/bin/env bash
# The whole test suite on a fresh machine: system packages, assets, unit tests (`swift test`), then the
# multi-rank tests under mpirun with 2 and 3 ranks. Exits non-zero on the first failure.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

# Where launch/assets.sh keeps the data and weights the tests read.
export GRAFT_ASSETS=${GRAFT_ASSETS:-$repo/.cache/assets}

bash launch/setup.sh
bash launch/assets.sh
swift test
bash launch/test-ranks.sh
