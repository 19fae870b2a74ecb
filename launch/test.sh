#!/usr/bin/env bash
# The whole test suite on a fresh machine: system packages, assets, the unit tests twice (a debug build, which
# traps on overflow and out-of-bounds access, then the shipping -Ounchecked build, where the shape checks must still
# stop with their messages), the command-line checks, a package outside the repository built against Graft, then the
# multi-rank tests under mpirun with 2 and 3 ranks.
# Stops at the first failure.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

# Where launch/assets.sh keeps the data and weights the tests read.
export GRAFT_ASSETS=${GRAFT_ASSETS:-$repo/.cache/assets}

bash launch/setup.sh
bash launch/assets.sh
# Swift Testing runs tests on several threads at once, and OpenBLAS's threaded server is not safe to enter from two
# threads concurrently (a run was seen to hang in exec_blas); with one BLAS thread each call runs on its caller.
# Graft itself calls BLAS from one thread only, so the command-line and rank tests keep the default.
OPENBLAS_NUM_THREADS=1 swift test
# The release suite runs on the kernels OpenBLAS picks for the CPU, as `graft` does where an inherited
# OPENBLAS_CORETYPE would hold an AVX-512 CPU to AVX2 kernels (BLASKernels); the debug suite keeps the inherited
# environment, so where the two differ every parity fixture checks both kernel sets.
env -u OPENBLAS_CORETYPE OPENBLAS_NUM_THREADS=1 swift test -c release -Xswiftc -enable-testing
bash launch/test-cli.sh
bash launch/test-example.sh
bash launch/test-ranks.sh
