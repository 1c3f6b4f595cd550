"""Flakiness check: run the suite N times with the derandomised ``ci`` profile and
compare every outcome (status of each target x spec x property, and each planted
mutant's kill) across the runs.

    python scripts/flakiness.py --runs 5                 # the whole suite, 5 times
    python scripts/flakiness.py --runs 2 -- -k sigmoid_bce   # extra pytest arguments after --

Exit status 0 when every run gives the same outcomes, 1 otherwise (the differing
outcomes are listed), 2 when a run wrote no report.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def outcomes(report: dict[str, Any]) -> dict[str, str]:
    """``target|spec|property`` -> status, and ``mutant|id`` -> the properties that killed it and those it survived."""
    out = {f"{o['target']}|{o['spec']}|{o['property']}": o["status"] for o in report.get("outcomes", [])}
    for m in (report.get("mutants") or {}).get("mutants", []):
        out[f"mutant|{m['mutant']}"] = f"killed by {sorted(m['killed_by'])}, survived {sorted(m['survived'])}"
    return out


def compare(runs: list[dict[str, str]]) -> list[str]:
    """The keys whose value differs between runs (or that are missing from some), described."""
    keys = sorted(set().union(*runs)) if runs else []
    diffs = []
    for k in keys:
        vals = [r.get(k, "<absent>") for r in runs]
        if len(set(vals)) > 1:
            diffs.append(f"{k}: " + ", ".join(f"run {i + 1} {v}" for i, v in enumerate(vals)))
    return diffs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("-n", default="auto", help="pytest-xdist workers per run (default auto)")
    ap.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    args = ap.parse_args(argv)
    env = dict(os.environ, CI="true")  # the ci profile: derandomised, no example database
    runs: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="flakiness-") as tmp:
        for i in range(args.runs):
            rd = Path(tmp) / f"run{i + 1}"
            cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", str(args.n), "--report-dir", str(rd),
                   *args.pytest_args]
            t = time.perf_counter()
            res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
            last = (res.stdout.strip().splitlines() or [""])[-1]
            print(f"run {i + 1}/{args.runs}: exit {res.returncode} in {time.perf_counter() - t:.0f} s; {last}", flush=True)
            path = rd / "conformance.json"
            if not path.exists():
                print(f"run {i + 1} wrote no report:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}", file=sys.stderr)
                return 2
            runs.append(outcomes(json.loads(path.read_text())))
    diffs = compare(runs)
    n = len(runs[0]) if runs else 0
    if diffs:
        print(f"{len(diffs)} of {n} outcomes differ between runs:")
        for d in diffs:
            print("  " + d)
        return 1
    print(f"all {args.runs} runs agree on all {n} outcomes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
