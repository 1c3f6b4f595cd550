"""Shared views of a report document for the renderers."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

__all__ = ["matrix", "by_spec"]


def matrix(outcomes: list[dict[str, Any]]) -> tuple[list[str], list[tuple[str, str]], dict[tuple[str, str, str], dict[str, Any]]]:
    """(targets, (spec, property) rows, cell lookup) for the target x property matrix."""
    targets = sorted({o["target"] for o in outcomes}, key=lambda t: (t != "reference", t))
    rows = sorted({(o["spec"], o["property"]) for o in outcomes})
    cells = {(o["spec"], o["property"], o["target"]): o for o in outcomes}
    return targets, rows, cells


def by_spec(rows: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for s, p in rows:
        out[s].append(p)
    return out
