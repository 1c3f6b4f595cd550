"""NumPy float64 oracles for the IoU family, mirroring ``impls.iou`` by name.

One pair at a time in plain Python floats, from the papers' definitions: the
intersection as the product of the two interval overlaps, the enclosing box from the
coordinate extremes, the centres from the midpoints. ``eps`` enters exactly where the
spec puts it (IoU, GIoU and DIoU denominators, CIoU's aspect ratios and alpha).

Trusted domain: finite, non-inverted boxes (the oracle does not validate; an
inverted box gives a meaningless number, as the spec forbids it). Error: float64
rounding, relative ~1e-15 of the coordinates' magnitude. See :data:`DOMAIN`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["DOMAIN", "ciou_loss", "diou_loss", "giou_loss", "grad_l1_bound", "iou", "iou_loss"]

F64 = NDArray[np.float64]

DOMAIN = "finite boxes with x2 >= x1 and y2 >= y1 (not checked here), float64"


class _Pair(NamedTuple):
    iou: float
    union: float
    enclosing_area: float
    enclosing_diag2: float
    centre_dist2: float
    v: float


def _overlap(a1: float, a2: float, b1: float, b2: float) -> float:
    """Length of the intersection of the intervals [a1, a2] and [b1, b2] (0 if disjoint)."""
    return max(0.0, min(a2, b2) - max(a1, b1))


def _pair(box1: F64, box2: F64, eps: float) -> _Pair:
    x1, y1, x2, y2 = (float(c) for c in box1)
    u1, v1, u2, v2 = (float(c) for c in box2)
    w1, h1, w2, h2 = x2 - x1, y2 - y1, u2 - u1, v2 - v1
    inter = _overlap(x1, x2, u1, u2) * _overlap(y1, y2, v1, v2)
    union = w1 * h1 + w2 * h2 - inter
    ew = max(x2, u2) - min(x1, u1)
    eh = max(y2, v2) - min(y1, v1)
    cx1, cy1 = (x1 + x2) / 2, (y1 + y2) / 2
    cx2, cy2 = (u1 + u2) / 2, (v1 + v2) / 2
    v = 4 / math.pi**2 * (math.atan(w2 / (h2 + eps)) - math.atan(w1 / (h1 + eps))) ** 2
    return _Pair(
        iou=inter / (union + eps),
        union=union,
        enclosing_area=ew * eh,
        enclosing_diag2=ew**2 + eh**2,
        centre_dist2=(cx1 - cx2) ** 2 + (cy1 - cy2) ** 2,
        v=v,
    )


def _map(fn: Callable[[_Pair, float], float], boxes1: ArrayLike, boxes2: ArrayLike, eps: float, reduction: str) -> F64:
    b1 = np.asarray(boxes1, dtype=np.float64)
    b2 = np.asarray(boxes2, dtype=np.float64)
    out = np.empty(b1.shape[:-1], dtype=np.float64)
    for idx in np.ndindex(*out.shape):
        out[idx] = fn(_pair(b1[idx], b2[idx], eps), eps)
    if reduction == "none":
        return out
    if reduction == "sum":
        return np.asarray(out.sum())
    return np.asarray(out.mean() if out.size else 0.0)


def iou(boxes1: ArrayLike, boxes2: ArrayLike, eps: float = 1e-7) -> F64:
    """IoU ``inter / (union + eps)`` per pair, shape (...)."""
    return _map(lambda p, e: p.iou, boxes1, boxes2, eps, "none")


def _iou_mode(iou: float, mode: str) -> float:
    if mode == "linear":
        return 1 - iou
    if mode == "quadratic":
        return 1 - iou * iou
    return -math.log(iou) if iou > 0 else math.inf


def iou_loss(
    boxes1: ArrayLike, boxes2: ArrayLike, eps: float = 1e-7, reduction: str = "none", mode: str = "linear"
) -> F64:
    """``1 - IoU`` (mode "linear"), ``1 - IoU^2`` ("quadratic") or ``-ln IoU`` ("log", +inf
    where IoU is 0) per pair; reduction "none" | "mean" (0 when empty) | "sum"."""
    return _map(lambda p, e: _iou_mode(p.iou, mode), boxes1, boxes2, eps, reduction)


def giou_loss(boxes1: ArrayLike, boxes2: ArrayLike, eps: float = 1e-7, reduction: str = "none") -> F64:
    """``1 - IoU + (C - union) / (C + eps)`` per pair, C the enclosing box's area."""
    return _map(lambda p, e: 1 - p.iou + (p.enclosing_area - p.union) / (p.enclosing_area + e), boxes1, boxes2, eps, reduction)


def diou_loss(boxes1: ArrayLike, boxes2: ArrayLike, eps: float = 1e-7, reduction: str = "none") -> F64:
    """``1 - IoU + rho^2 / (c^2 + eps)`` per pair: centre distance over the enclosing diagonal."""
    return _map(lambda p, e: 1 - p.iou + p.centre_dist2 / (p.enclosing_diag2 + e), boxes1, boxes2, eps, reduction)


def ciou_loss(boxes1: ArrayLike, boxes2: ArrayLike, eps: float = 1e-7, reduction: str = "none") -> F64:
    """DIoU loss ``+ alpha v``, ``alpha = v / (1 - IoU + v + eps)``, per pair."""

    def f(p: _Pair, e: float) -> float:
        alpha = p.v / (1 - p.iou + p.v + e)
        return 1 - p.iou + p.centre_dist2 / (p.enclosing_diag2 + e) + alpha * p.v

    return _map(f, boxes1, boxes2, eps, reduction)


def grad_l1_bound(boxes1: ArrayLike, boxes2: ArrayLike, loss: str, eps: float = 1e-7, mode: str = "linear") -> F64:
    """An upper bound on ``sum |d loss / d c|`` over the 8 coordinates of each pair, shape (...).

    It holds for every choice of subgradient at ties of min / max and at the clamp of the
    overlap (the choices autograd may make), so any correct implementation stays under it.
    Notation: ``iw, ih`` the overlap's sides, ``I = iw ih``, ``U`` the union, ``cw, ch``
    the enclosing box's sides, ``C = cw ch``, ``c2 = cw^2 + ch^2``, ``dx, dy`` the offset
    of the centres, ``rho2 = dx^2 + dy^2``, ``D = rho2 / (c2 + eps)``.

    - IoU ``f = I / (U + eps)``: ``df = dI (1 + f) / (U + eps) - f (dA1 + dA2) / (U + eps)``.
      Over the coordinates, ``sum |dI| <= 2 (iw + ih)`` (each side of the overlap moves with
      at most two coordinates, weights summing to 1 at a tie, times the clamp's 0 or 1), so
      the first term is at most ``4 (iw + ih) / (U + eps)``; ``sum |dA1| = 2 (w1 + h1)``, and
      ``I h1 = ih (iw h1) <= ih U`` (``iw h1 <= A1 <= U``; likewise for h2, w1, w2) bounds the
      second by ``4 (iw + ih) / (U + eps)``. Hence ``|grad IoU|_1 <= 8 (iw + ih) / (U + eps)``, which is ``<= 8 (1 / max(w1, w2) +
      1 / max(h1, h2))`` as soon as one box has positive area (``ih <= min(h1, h2)`` and
      ``U >= max(A1, A2)``). For two zero-area boxes overlapping along a segment
      (collinear segments) it is ``8 ih / eps``: there the loss itself moves by O(1)
      within eps of area, and no length scale bounds its slope.
      Mode "quadratic" multiplies by ``2 IoU``; mode "log" divides by IoU, giving
      ``8 (1 / iw + 1 / ih)`` (0 where IoU is 0: the contract's zero gradient).
    - GIoU adds ``P = (C - U) / (C + eps)``, ``dP = dC (U + eps) / (C + eps)^2 - dU / (C + eps)``
      with ``U <= C``: ``|grad P|_1 <= 2 (cw + ch + w1 + h1 + w2 + h2 + iw + ih) / (C + eps)
      <= 8 (1 / cw + 1 / ch)``.
    - DIoU adds ``D``: ``dD = (d rho2 - D d c2) / (c2 + eps)``, ``sum |d rho2| <= 4 (|dx| +
      |dy|)``, ``sum |d c2| <= 4 (cw + ch)``: ``|grad D|_1 <= 4 (|dx| + |dy| + D (cw + ch)) /
      (c2 + eps) <= 8 sqrt(2) / sqrt(c2)`` (``|dx| <= cw``, ``D <= 1``).
    - CIoU adds ``alpha v`` with alpha constant in the backward pass (the contract):
      ``|grad v|_1 <= (8 / pi^2) |t2 - t1| (g1 + g2)``, ``t = atan(w / (h + eps))``,
      ``g = 2 (w + h + eps) / (w^2 + (h + eps)^2) <= 2 sqrt(2) / r``, ``r`` the box's
      (eps-padded) diagonal; for a point box ``r = eps``, where the aspect ratio is undefined.
    """
    b1 = np.asarray(boxes1, dtype=np.float64)
    b2 = np.asarray(boxes2, dtype=np.float64)
    x1, y1, x2, y2 = np.moveaxis(b1, -1, 0)
    u1, v1, u2, v2 = np.moveaxis(b2, -1, 0)
    w1, h1, w2, h2 = x2 - x1, y2 - y1, u2 - u1, v2 - v1
    iw = np.maximum(0.0, np.minimum(x2, u2) - np.maximum(x1, u1))
    ih = np.maximum(0.0, np.minimum(y2, v2) - np.maximum(y1, v1))
    inter = iw * ih
    union = w1 * h1 + w2 * h2 - inter
    cw = np.maximum(x2, u2) - np.minimum(x1, u1)
    ch = np.maximum(y2, v2) - np.minimum(y1, v1)
    iou = inter / (union + eps)
    bound = 8 * (iw + ih) / (union + eps)
    if loss == "iou_loss":
        if mode == "quadratic":
            return 2 * iou * bound
        if mode == "log":
            return np.where(inter > 0, 8 * (iw + ih) / np.where(inter > 0, inter, 1.0), 0.0)
        return bound
    if loss == "giou_loss":
        return bound + 2 * (cw + ch + w1 + h1 + w2 + h2 + iw + ih) / (cw * ch + eps)
    c2 = cw * cw + ch * ch
    dx, dy = (x1 + x2 - u1 - u2) / 2, (y1 + y2 - v1 - v2) / 2
    d = (dx * dx + dy * dy) / (c2 + eps)
    bound = bound + 4 * (np.abs(dx) + np.abs(dy) + d * (cw + ch)) / (c2 + eps)
    if loss == "diou_loss":
        return bound
    t1, t2 = np.arctan(w1 / (h1 + eps)), np.arctan(w2 / (h2 + eps))
    v = 4 / math.pi**2 * (t2 - t1) ** 2
    alpha = v / (1 - iou + v + eps)

    def g(w: F64, h: F64) -> F64:
        return 2 * (w + h + eps) / (w * w + (h + eps) ** 2)

    return bound + alpha * (8 / math.pi**2) * np.abs(t2 - t1) * (g(w1, h1) + g(w2, h2))
