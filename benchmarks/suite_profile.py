"""Where the test command's time goes: per test file, target, spec, property and spec x target.

Reads the JUnit XML of a pytest run (each test's own duration, summed over workers, so the
figures are CPU seconds of test time, not wall time) and prints the largest items:

    CI=true python3 -m pytest -n auto --junitxml=/tmp/junit.xml
    python3 benchmarks/suite_profile.py /tmp/junit.xml [--top 15]

It also prints the planted mutants' time to be killed (median, 90th percentile, maximum),
which ``tests/test_mutants.py`` records per case as the ``conformance_mutant`` property.
"""

from __future__ import annotations

import argparse
import ast
import collections
import re
import statistics
import sys
import xml.etree.ElementTree as ET

_CONFORMANCE = re.compile(r"(?P<prop>\w+)\[(?P<target>.*)\]$")


def _target_group(name: str) -> str:
    """``variant:seed_x`` -> ``variants``; ``timm[target_threshold=0.5]`` -> ``timm``."""
    return "variants" if name.startswith("variant:") else name.split("[")[0]


def profile(path: str) -> dict[str, collections.Counter[str]]:
    by: dict[str, collections.Counter[str]] = {k: collections.Counter() for k in
                                               ("file", "target", "spec", "property", "spec x target")}
    mutant_seconds: list[float] = []
    for tc in ET.parse(path).iter("testcase"):
        seconds = float(tc.get("time") or 0.0)
        classname = tc.get("classname") or ""
        parts = classname.split(".")
        by["file"][parts[1] if len(parts) > 1 else classname] += seconds
        for p in tc.iter("property"):
            if p.get("name") == "conformance_mutant":
                mutant_seconds.append(float(ast.literal_eval(p.get("value") or "{}").get("seconds", 0.0)))
        if ".test_conformance.test_conformance." in classname:
            m = _CONFORMANCE.match(tc.get("name") or "")
            if m is None:
                continue
            spec, target = parts[-1], _target_group(m["target"])
            by["target"][target] += seconds
            by["spec"][spec] += seconds
            by["property"][m["prop"]] += seconds
            by["spec x target"][f"{spec} x {target}"] += seconds
    by["_mutants"] = collections.Counter({str(i): s for i, s in enumerate(mutant_seconds)})
    return by


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("junit", help="JUnit XML written by pytest --junitxml")
    ap.add_argument("--top", type=int, default=15, help="items to print per table (default 15)")
    args = ap.parse_args(argv)
    try:
        by = profile(args.junit)
    except (OSError, ET.ParseError) as exc:
        print(f"cannot read {args.junit!r} as JUnit XML: {exc}", file=sys.stderr)
        return 2
    total = sum(by["file"].values())
    print(f"test time {total:.0f} s (summed over workers)")
    for table in ("file", "target", "spec", "property", "spec x target"):
        print(f"\nby {table}:")
        for name, seconds in by[table].most_common(args.top):
            print(f"  {seconds:8.1f} s  {100 * seconds / total:5.1f}%  {name}")
    kills = sorted(by["_mutants"].values())
    if kills:
        print(f"\nmutant kills: {len(kills)} cases, median {statistics.median(kills):.3f} s, "
              f"90th percentile {kills[int(0.9 * (len(kills) - 1))]:.3f} s, max {kills[-1]:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
