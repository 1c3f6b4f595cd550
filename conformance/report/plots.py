"""Line charts as inline SVG, written directly (no plotting library).

The report's charts are a few curves per figure (loss, gradient or error in ULP
against the logit, one curve per target) on linear, log or symlog axes. Drawing
them here keeps a report of hundreds of curves fast to write and the page
self-contained: no image decoding, no script, every text escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Any

__all__ = ["chart"]

W, H = 560, 300
LEFT, RIGHT, TOP, BOTTOM = 62, 12, 26, 44
PALETTE = ("#0969da", "#cf222e", "#1a7f37", "#8250df", "#bf8700", "#e16f24", "#57606a", "#bc4c00", "#0550ae", "#a40e26")
LINTHRESH = 1e-3  # symlog: linear within +-1e-3, logarithmic beyond


def _fwd(v: float, scale: str) -> float | None:
    if v is None or not math.isfinite(v):
        return None
    if scale == "log":
        return math.log10(max(v, 0.1))  # the error axis: 0 ULP is drawn at 0.1
    if scale == "symlog":
        return math.copysign(math.log10(1.0 + abs(v) / LINTHRESH), v)
    return v


def _ticks(lo: float, hi: float, scale: str) -> list[tuple[float, str]]:
    """(transformed position, label) of the ticks inside [lo, hi] (transformed coordinates)."""
    if scale in ("log", "symlog"):
        if scale == "log":
            cands = [(float(k), f"1e{k}" if abs(k) > 2 else f"{10.0 ** k:g}") for k in range(math.floor(lo), math.ceil(hi) + 1)]
        else:
            cands = [(0.0, "0")]
            for k in range(-3, 40):
                for sign in (1, -1):
                    v = sign * 10.0**k
                    cands.append((_fwd(v, "symlog") or 0.0, f"{'-' if sign < 0 else ''}1e{k}" if abs(k) > 2 else f"{v:g}"))
        inside = sorted(c for c in cands if lo - 1e-9 <= c[0] <= hi + 1e-9)
        step = max(1, math.ceil(len(inside) / 7))
        return inside[::step]
    span = hi - lo or 1.0
    raw = span / 5
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    out, v = [], first
    while v <= hi + 1e-12 * span:
        out.append((v, f"{v:.4g}"))
        v += step
    return out


def chart(title: str, series: Sequence[tuple[str, Sequence[float | None], Sequence[float | None]]], *,
          xscale: str = "linear", yscale: str = "linear", xlabel: str = "", ylabel: str = "") -> str:
    """An SVG line chart of ``series`` ((label, xs, ys), None for a missing point)."""
    pts: list[list[tuple[float, float] | None]] = []
    for _, xs, ys in series:
        line: list[tuple[float, float] | None] = []
        for x, y in zip(xs, ys):
            tx, ty = _fwd(x, xscale) if x is not None else None, _fwd(y, yscale) if y is not None else None
            line.append(None if tx is None or ty is None else (tx, ty))
        pts.append(line)
    flat = [p for line in pts for p in line if p is not None]
    x0, x1 = (min(p[0] for p in flat), max(p[0] for p in flat)) if flat else (0.0, 1.0)
    y0, y1 = (min(p[1] for p in flat), max(p[1] for p in flat)) if flat else (0.0, 1.0)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y0, y1 = y0 - 1, y1 + 1
    pad = 0.04 * (y1 - y0)
    y0, y1 = y0 - pad, y1 + pad
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def sx(v: float) -> float:
        return LEFT + (v - x0) / (x1 - x0) * pw

    def sy(v: float) -> float:
        return TOP + (1 - (v - y0) / (y1 - y0)) * ph

    out = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
           f'role="img" aria-label="{escape(title)}">',
           f'<text x="{W / 2}" y="15" text-anchor="middle" font-size="11">{escape(title)}</text>',
           f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#8c959f"/>']
    for v, label in _ticks(x0, x1, xscale):
        X = sx(v)
        out.append(f'<line x1="{X:.1f}" y1="{TOP}" x2="{X:.1f}" y2="{TOP + ph}" stroke="#d0d7de" stroke-width="0.5"/>')
        out.append(f'<text x="{X:.1f}" y="{TOP + ph + 13}" text-anchor="middle" font-size="9">{escape(label)}</text>')
    for v, label in _ticks(y0, y1, yscale):
        Y = sy(v)
        out.append(f'<line x1="{LEFT}" y1="{Y:.1f}" x2="{LEFT + pw}" y2="{Y:.1f}" stroke="#d0d7de" stroke-width="0.5"/>')
        out.append(f'<text x="{LEFT - 4}" y="{Y + 3:.1f}" text-anchor="end" font-size="9">{escape(label)}</text>')
    out.append(f'<text x="{LEFT + pw / 2}" y="{H - 8}" text-anchor="middle" font-size="10">{escape(xlabel)}</text>')
    out.append(f'<text transform="translate(12 {TOP + ph / 2}) rotate(-90)" text-anchor="middle" font-size="10">'
               f'{escape(ylabel)}</text>')
    for i, ((label, _, _), line) in enumerate(zip(series, pts)):
        colour = PALETTE[i % len(PALETTE)]
        d: list[str] = []
        pen = False
        for p in line:
            if p is None:
                pen = False
                continue
            d.append(f"{'L' if pen else 'M'}{sx(p[0]):.1f} {sy(p[1]):.1f}")
            pen = True
        if d:
            out.append(f'<path class="series" d="{" ".join(d)}" fill="none" stroke="{colour}" stroke-width="1.3">'
                       f'<title>{escape(label)}</title></path>')
        out.append(f'<rect x="{LEFT + 6}" y="{TOP + 6 + 12 * i}" width="10" height="3" fill="{colour}"/>'
                   f'<text x="{LEFT + 20}" y="{TOP + 10 + 12 * i}" font-size="9">{escape(label)}</text>')
    out.append("</svg>")
    return "".join(out)


def charts(outcomes: list[dict[str, Any]]) -> list[dict[str, str]]:
    """One chart per chart title in the outcomes' series, one curve per target."""
    by_title: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for o in outcomes:
        for s in o.get("series") or []:
            by_title.setdefault(s["chart"], []).append((o["target"], s))
    out = []
    for title in sorted(by_title):
        meta = by_title[title][0][1]
        series = [(target + (f" {s['label']}" if s.get("label") else ""), s["x"], s["y"]) for target, s in by_title[title]]
        out.append({"title": title, "svg": chart(title, series, xscale=meta.get("xscale", "linear"),
                                                  yscale=meta.get("yscale", "linear"), xlabel=meta.get("xlabel", ""),
                                                  ylabel=meta.get("ylabel", ""))})
    return out
