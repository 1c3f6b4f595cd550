#!/usr/bin/env bash
# The GPU check, one prepared command for a CUDA machine that has torch but no network:
#
#   scripts/device_check.sh OUT_DIR
#
# 1. installs what the suite lacks from .whl/ (made by scripts/make_wheels.sh), offline;
# 2. runs the `device` category of every spec on the references (CUDA vs CPU in float32 and
#    float64, float16 / bfloat16 vs float32, torch.compile vs eager) in the `ci` profile, and
#    writes the conformance report (JSON, Markdown, HTML) to OUT_DIR;
#    compile agreement runs in the thorough profile, its report in OUT_DIR/compile;
# 3. runs the focal and SSD benchmarks on the GPU, their ratios to OUT_DIR/bench_*.txt.
# On a machine without CUDA it still runs: the CUDA properties skip with the reason in the
# report and the benchmarks run on the CPU. Each step has its own time limit; a suite step that reaches
# it gets SIGINT and writes the outcomes it completed, its report marked interrupted.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${1:?usage: scripts/device_check.sh OUT_DIR}"
mkdir -p "$OUT"
export CI=true PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if ! python3 -c "import hypothesis, mpmath, pytest, xdist, jinja2, numpy" 2>/dev/null; then
    if [[ -d .whl ]]; then
        python3 -m pip install -q --disable-pip-version-check --no-index --find-links .whl \
            hypothesis mpmath pytest pytest-xdist jinja2 numpy
    else
        echo "device_check: the suite's dependencies are missing and there is no .whl/ (run scripts/make_wheels.sh where there is network)" >&2
        exit 2
    fi
fi
DEVICE=cpu
python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" && DEVICE=cuda
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" | tee "$OUT/environment.txt"
rc=0
timeout -s INT -k 30 300 python3 -m conformance.cli run --target reference --profile ci -n 0 \
    --report-dir "$OUT" -- -m category_device -q -p no:cacheprovider 2>&1 | tail -40 | tee "$OUT/suite.txt"
rc=${PIPESTATUS[0]}
# torch.compile agreement runs only in the thorough profile (each example compiles): its own report.
timeout -s INT -k 30 180 python3 -m conformance.cli run --target reference --profile thorough --seed 0 -n 0 \
    --report-dir "$OUT/compile" -k compiled_matches_eager -- -q -p no:cacheprovider 2>&1 | tail -20 | tee "$OUT/compile.txt"
rc_compile=${PIPESTATUS[0]}
[[ $rc == 0 ]] && rc=$rc_compile
timeout 90 python3 benchmarks/bench_focal.py --device "$DEVICE" --rounds 10 2>&1 | tee "$OUT/bench_focal.txt"
timeout 60 python3 benchmarks/bench_ssd.py --device "$DEVICE" --rounds 10 2>&1 | tee "$OUT/bench_ssd.txt"
echo "device_check: suite exit status $rc; report in $OUT" | tee -a "$OUT/suite.txt"
exit "$rc"
