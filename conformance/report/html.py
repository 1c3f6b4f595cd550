"""Self-contained HTML rendering of a report (``conformance.html``).

Jinja2 with autoescaping renders the page, so every string that comes from a
target (names, messages, reprs) is escaped. Plots are drawn with matplotlib as
SVG and embedded as ``data:`` images: the page needs no network, and an image
cannot run script.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
from collections import defaultdict
from typing import Any

import jinja2

from conformance.report.model import FRAMEWORK_LABEL, columns, library_of, matrix

__all__ = ["render"]

LABELS = {"passed": "passed", "failed": "failed", "error": "errors", "skipped": "skipped", "xfailed": "known deviations", "xpassed": "stale deviations"}
SHORT = {"passed": "pass", "failed": "FAIL", "error": "ERROR", "skipped": "skip", "xfailed": "xfail", "xpassed": "XPASS"}


def _anchor(o: dict[str, Any]) -> str:
    return "o-" + re.sub(r"[^A-Za-z0-9_-]+", "-", f"{o['spec']}-{o['property']}-{o['target']}")


def _plots(outcomes: list[dict[str, Any]]) -> list[dict[str, str]]:
    charts: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for o in outcomes:
        for s in o.get("series") or []:
            charts[s["chart"]].append((o["target"], s))
    if not charts:
        return []
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    out = []
    for title in sorted(charts):
        fig, ax = plt.subplots(figsize=(6.4, 3.4))
        meta = charts[title][0][1]
        for target, s in charts[title]:
            xs = [x for x, y in zip(s["x"], s["y"]) if x is not None]
            ys = [float("nan") if y is None else y for x, y in zip(s["x"], s["y"]) if x is not None]
            if meta.get("yscale") == "log":
                ys = [max(y, 0.1) if y == y else y for y in ys]
            ax.plot(xs, ys, marker=".", markersize=3, linewidth=1, label=target)
        if meta.get("xscale") == "symlog":
            ax.set_xscale("symlog", linthresh=1e-3)
        if meta.get("yscale") == "log":
            ax.set_yscale("log")
        elif meta.get("yscale") == "symlog":
            ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_xlabel(meta.get("xlabel", ""))
        ax.set_ylabel(meta.get("ylabel", ""))
        ax.set_title(title, fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg")
        plt.close(fig)
        out.append({"title": title, "svg_b64": base64.b64encode(buf.getvalue().encode()).decode()})
    return out


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
        plots=_plots(outcomes),
        labels=LABELS,
        labels_short=SHORT,
        anchor=_anchor,
        finding_anchor=_finding_anchor,
        target_anchor=_target_anchor,
        library_of=library_of,
        diff_text=diff_text,
    )
