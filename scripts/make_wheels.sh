#!/usr/bin/env bash
# Prepare .whl/: the wheels scripts/device_check.sh installs on a CUDA machine that has torch
# but no network (the suite's pure-Python and small compiled dependencies, without torch).
# Run here, with network; .whl/ is git-ignored and travels with the working tree.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .whl && mkdir -p .whl
python3 -m pip download -q --disable-pip-version-check --only-binary=:all: -d .whl \
    "hypothesis>=6.100" "mpmath>=1.3" "pytest>=8" "pytest-xdist>=3.5" "jinja2>=3.1" "numpy>=1.24"
du -sh .whl
