"""NumPy float64 oracles for the IoU family: one pair at a time, from the papers' definitions."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["iou_loss", "giou_loss", "diou_loss", "ciou_loss", "iou"]


def _pair(a: np.ndarray, b: np.ndarray, eps: float) -> dict[str, float]:
    x1, y1, x2, y2 = (float(v) for v in a)
    u1, v1, u2, v2 = (float(v) for v in b)
    inter = max(0.0, min(x2, u2) - max(x1, u1)) * max(0.0, min(y2, v2) - max(y1, v1))
    union = (x2 - x1) * (y2 - y1) + (u2 - u1) * (v2 - v1) - inter
    cw, ch = max(x2, u2) - min(x1, u1), max(y2, v2) - min(y1, v1)
    return {
        "iou": inter / (union + eps), "union": union, "area_c": cw * ch, "c2": cw * cw + ch * ch,
        "rho2": ((x1 + x2) / 2 - (u1 + u2) / 2) ** 2 + ((y1 + y2) / 2 - (v1 + v2) / 2) ** 2,
        "v": 4 / math.pi**2 * (math.atan((u2 - u1) / ((v2 - v1) + eps)) - math.atan((x2 - x1) / ((y2 - y1) + eps))) ** 2,
    }


def _map(fn, b1: np.ndarray, b2: np.ndarray, eps: float) -> np.ndarray:  # type: ignore[no-untyped-def]
    b1 = np.asarray(b1, np.float64)
    b2 = np.asarray(b2, np.float64)
    out = np.empty(b1.shape[:-1])
    for idx in np.ndindex(out.shape):
        out[idx] = fn(_pair(b1[idx], b2[idx], eps))
    return out


def iou(b1: np.ndarray, b2: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    return _map(lambda p: p["iou"], b1, b2, eps)


def iou_loss(b1: np.ndarray, b2: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    return _map(lambda p: 1 - p["iou"], b1, b2, eps)


def giou_loss(b1: np.ndarray, b2: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    return _map(lambda p: 1 - (p["iou"] - (p["area_c"] - p["union"]) / (p["area_c"] + eps)), b1, b2, eps)


def diou_loss(b1: np.ndarray, b2: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    return _map(lambda p: 1 - p["iou"] + p["rho2"] / (p["c2"] + eps), b1, b2, eps)


def ciou_loss(b1: np.ndarray, b2: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    def f(p: dict[str, float]) -> float:
        alpha = p["v"] / (1 - p["iou"] + p["v"] + eps)
        return 1 - p["iou"] + p["rho2"] / (p["c2"] + eps) + alpha * p["v"]

    return _map(f, b1, b2, eps)
