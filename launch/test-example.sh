#!/usr/bin/env bash
# Builds examples/FineTune from a copy outside the repository, as another package depending on Graft by path would,
# and with RUN=1 also runs it (fine-tunes MiniLM's head on BBC News; assets from launch/assets.sh).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d /tmp/graft-example.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -r "$repo/examples/FineTune" "$work/"
sed -i "s|path: \"../..\"|path: \"$repo\"|" "$work/FineTune/Package.swift"
cd "$work/FineTune"
# The repository's resolved dependencies, so that no fetch is needed.
[ -f "$repo/Package.resolved" ] && cp "$repo/Package.resolved" .
swift build -c release 2>&1 | grep -v '^\[' || true
[ -x .build/release/FineTune ] || { echo "test-example: the example did not build" >&2; exit 1; }
echo "ok: examples/FineTune builds against Graft as a path dependency"
if [[ ${RUN:-0} == 1 ]]; then GRAFT_ASSETS=${GRAFT_ASSETS:-$repo/.cache/assets} .build/release/FineTune; fi
