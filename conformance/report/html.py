"""Self-contained HTML rendering of a report (``conformance.html``).

Jinja2 with autoescaping renders the page, so every string that comes from a
target (names, messages, reprs) is escaped. Plots are inline SVG drawn by
``conformance.report.plots`` (every text in them escaped): the page needs no
network and no plotting library.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from typing import Any

import jinja2
import markupsafe

from conformance.report import plots
from conformance.report.model import FRAMEWORK_LABEL, columns, library_of, matrix

__all__ = ["render"]

LABELS = {"passed": "passed", "failed": "failed", "error": "errors", "skipped": "skipped", "xfailed": "known deviations", "xpassed": "stale deviations"}
SHORT = {"passed": "pass", "failed": "FAIL", "error": "ERROR", "skipped": "skip", "xfailed": "xfail", "xpassed": "XPASS"}


def _anchor(o: dict[str, Any]) -> str:
    return "o-" + re.sub(r"[^A-Za-z0-9_-]+", "-", f"{o['spec']}-{o['property']}-{o['target']}")


def _finding_anchor(fid: str) -> str:
    return "f-" + hashlib.sha1(fid.encode("utf-8", "backslashreplace")).hexdigest()[:12]


def _target_anchor(target: str) -> str:
    return "t-" + re.sub(r"[^A-Za-z0-9_-]+", "-", target)


def _spans(cols: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """(framework label, number of adjacent columns) for the grouped header row."""
    out: list[tuple[str, int]] = []
    for c in cols:
        label = FRAMEWORK_LABEL.get(c["framework"], c["framework"])
        if out and out[-1][0] == label:
            out[-1] = (label, out[-1][1] + 1)
        else:
            out.append((label, 1))
    return out


def render(data: dict[str, Any]) -> str:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("conformance.report", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
    )
    outcomes = data["outcomes"]
    targets, rows, cells = matrix(outcomes)
    cols = columns(outcomes)
    framework_of = {c["target"]: c["framework"] for c in cols}
    skipped: dict[str, list[str]] = defaultdict(list)
    for o in outcomes:
        if o["status"] == "skipped":
            skipped[o["message"]].append(f"{o['spec']}::{o['property']}[{o['target']}]")
    found = data.get("findings") or []
    by_target: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in found:
        by_target[f["target"]].append(f)
    libs = {lib["library"]: lib for lib in data.get("libraries") or []}
    diff_text = None
    if data.get("diff") is not None:
        from conformance.report.diff import render as render_diff

        diff_text = render_diff(data["diff"])
    return env.get_template("report.html.j2").render(
        data=data,
        targets=targets,
        cols=cols,
        spans=_spans(cols),
        grid_spans=_spans((data.get("grid") or {}).get("columns") or []),
        framework_of=framework_of,
        framework_label=FRAMEWORK_LABEL,
        rows=rows,
        cells=cells,
        grid=data.get("grid") or {"columns": [], "rows": []},
        findings_by_target=dict(by_target),
        libs=libs,
        summaries={(o["spec"], o["property"]): o["summary"] for o in outcomes},
        categories={(o["spec"], o["property"]): o["category"] for o in outcomes},
        specs=sorted({o["spec"] for o in outcomes}),
        skipped=dict(skipped),
        plots=[{"title": c["title"], "svg": markupsafe.Markup(c["svg"])} for c in plots.charts(outcomes)],
        labels=LABELS,
        labels_short=SHORT,
        anchor=_anchor,
        finding_anchor=_finding_anchor,
        target_anchor=_target_anchor,
        library_of=library_of,
        diff_text=diff_text,
    )
