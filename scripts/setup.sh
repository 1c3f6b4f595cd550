#!/usr/bin/env bash
# One set-up for a fresh machine (Python 3.11), used by both README commands and .ci/run.
#
# torch is pinned first: PyPI's torchvision 0.29.1 loads only beside torch 2.14.1 (PyPI's CUDA
# build, which also runs on a CPU), and a plain `torch` requirement would pull the newest build.
# Then the project with every extra: dev (tests, benchmarks, report browser tests), tf (Keras
# oracles and adapters), jax (optax), libs (the thirteen-library matrix).
#
# Chromium drives the report's browser tests; it comes from Debian when apt is usable here and
# is optional: without it those tests skip, naming what to install.
#
# Lighter path, without torchvision's libraries:
#   CONFORMANCE_LIGHT=1 scripts/setup.sh   (torch 2.13.0 CPU build, extras dev,tf,jax,libs-light)
set -euo pipefail
cd "$(dirname "$0")/.."
PIP="python3 -m pip install -q --disable-pip-version-check"
if [[ "${CONFORMANCE_LIGHT:-}" == 1 ]]; then
    $PIP torch==2.13.0
    $PIP -e ".[dev,tf,jax,libs-light]"
else
    $PIP torch==2.14.1 torchvision==0.29.1
    $PIP -e ".[dev,tf,jax,libs]"
fi
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    SUDO=""
    if [[ "$(id -u)" != 0 ]] && command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi
    if command -v apt-get >/dev/null 2>&1; then
        { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null; } \
            || echo "setup: chromium not installed (no apt access); the report's browser tests will skip" >&2
    fi
fi
