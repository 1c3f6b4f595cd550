"""Session summary of the mutant tests: how long each property took to kill its mutant.

The figures come from ``record_property("conformance_mutant", ...)`` in tests/test_mutants.py,
which travels back from xdist workers with each report. Timing is reported, never asserted.
"""

from __future__ import annotations

import statistics
from typing import Any

import pytest

_KILL_TIMES: list[tuple[float, str]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call":
        return
    for key, value in report.user_properties:
        if key == "conformance_mutant" and isinstance(value, dict) and "seconds" in value:
            _KILL_TIMES.append((float(value["seconds"]), f"{value['mutant']} by {value['property']}"))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _KILL_TIMES:
        return
    times = sorted(_KILL_TIMES, reverse=True)
    secs = [t for t, _ in times]
    tr = terminalreporter
    tr.write_sep("-", "time to kill each planted mutant")
    tr.write_line(
        f"{len(secs)} mutant x property cases: median {statistics.median(secs):.2f} s, "
        f"90th percentile {secs[len(secs) // 10]:.2f} s, max {secs[0]:.2f} s, total {sum(secs):.0f} s"
    )
    for t, what in times[:8]:
        tr.write_line(f"  {t:7.2f} s  {what}")
