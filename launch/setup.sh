#!/usr/bin/env bash
# System packages Graft builds against (OpenBLAS, OpenMPI, libjpeg-turbo, libpng, zlib, FreeType, pkg-config), oneDNN's
# runtime (loaded at run time for fp32 matrix products when present), the Noto fonts the glyph data set is rendered
# from. Idempotent: when everything is already installed it only asks dpkg and returns at once; otherwise it runs
# `apt-get update` once and installs what is missing, non-interactively (root, or sudo without a password; no stdin
# needed).
set -euo pipefail

# Debian packages to ensure; Package.swift's systemLibrary targets find them through pkg-config.
GRAFT_APT_PACKAGES=${GRAFT_APT_PACKAGES:-"libopenblas-dev libdnnl2 libopenmpi-dev openmpi-bin libjpeg62-turbo-dev libfreetype-dev libpng-dev zlib1g-dev dataset-fashion-mnist fonts-noto-core pkg-config"}

read -r -a packages <<<"$GRAFT_APT_PACKAGES"

missing=()
for pkg in "${packages[@]}"; do
    # A removed-but-not-purged package is still known to dpkg, so ask for the status word, not just presence.
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [[ $status == installed ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
    echo "setup: system packages present (${packages[*]})"
    exit 0
fi

if ((EUID == 0)); then
    as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "setup: error: missing ${missing[*]}; run this script as root (or with passwordless sudo)" >&2
    exit 1
fi

echo "setup: installing ${missing[*]}"
# Keeps debconf from prompting; passed through sudo explicitly because sudo resets the environment.
export DEBIAN_FRONTEND=noninteractive
apt=("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y)
if ! "${apt[@]}" update </dev/null; then
    echo "setup: error: apt-get update failed (is a Debian mirror reachable?)" >&2
    exit 1
fi
if ! "${apt[@]}" install --no-install-recommends "${missing[@]}" </dev/null; then
    echo "setup: error: apt-get install ${missing[*]} failed" >&2
    exit 1
fi
echo "setup: installed ${missing[*]}"
