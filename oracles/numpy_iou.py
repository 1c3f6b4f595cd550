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

__all__ = ["DOMAIN", "ciou_loss", "diou_loss", "giou_loss", "iou", "iou_loss"]

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


def iou_loss(boxes1: ArrayLike, boxes2: ArrayLike, eps: float = 1e-7, reduction: str = "none") -> F64:
    """``1 - IoU`` per pair (reduction "none" | "mean" (0 when empty) | "sum")."""
    return _map(lambda p, e: 1 - p.iou, boxes1, boxes2, eps, reduction)


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
