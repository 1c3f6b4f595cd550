"""Correct IoU-family implementations written another way than ``impls.iou``.

- ``inclusion_exclusion_float64``: the overlap as ``w1 + w2 - cw`` (``min(a, b) = a + b -
  max(a, b)``), GIoU as ``2 - IoU - (U + eps) / (C + eps)``, centre offsets formed from
  differences, CIoU's angle difference as one ``atan2`` of the cross and dot products of the
  vectors (h + eps, w), everything in float64 whatever the input (more precise
  intermediates), returned in the input's dtype;
  other subgradients at ties than the reference's.
- ``masked_in_dtype``: torchvision's layout (the overlap's area written where both sides
  are positive, a zero gradient at touching boxes), midpoints subtracted, in the input's
  dtype, alpha under ``torch.no_grad``.
"""

from __future__ import annotations

import math

import torch

from tests.soundness import Impl

Tensor = torch.Tensor
_MODES = ("linear", "quadratic", "log")


def _validate(boxes1: Tensor, boxes2: Tensor, reduction: str, eps: float, mode: str = "linear") -> None:
    for name, b in (("boxes1", boxes1), ("boxes2", boxes2)):
        if not isinstance(b, torch.Tensor) or not b.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor")
        if b.dim() == 0 or b.shape[-1] != 4:
            raise ValueError(f"{name} must end in an axis of 4 coordinates, got {tuple(b.shape)}")
    if boxes1.shape != boxes2.shape:
        raise ValueError(f"boxes2 {tuple(boxes2.shape)} must have the shape of boxes1 {tuple(boxes1.shape)}")
    for name, b in (("boxes1", boxes1), ("boxes2", boxes2)):
        if bool(((b[..., 2] < b[..., 0]) | (b[..., 3] < b[..., 1])).any()):
            raise ValueError(f"{name} holds an inverted box")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"reduction {reduction!r} is not none, mean or sum")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not (math.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
    if mode not in _MODES:
        raise ValueError(f"mode {mode!r} is not one of {_MODES}")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    total = loss.sum()
    return total if reduction == "sum" else total / max(loss.numel(), 1)


def _neg_log(iou: Tensor) -> Tensor:
    zero = iou == 0
    return (-torch.log(iou.masked_fill(zero, 1.0))).masked_fill(zero, math.inf)


# ---------------------------------------------------------------------------
# Inclusion-exclusion, float64
# ---------------------------------------------------------------------------


def _ie_terms(boxes1: Tensor, boxes2: Tensor, eps: float) -> dict[str, Tensor]:
    x1, y1, x2, y2 = boxes1.double().unbind(-1)
    u1, v1, u2, v2 = boxes2.double().unbind(-1)
    w1, h1, w2, h2 = x2 - x1, y2 - y1, u2 - u1, v2 - v1
    cw = torch.maximum(x2, u2) - torch.minimum(x1, u1)
    ch = torch.maximum(y2, v2) - torch.minimum(y1, v1)
    inter = (w1 + w2 - cw).clamp(min=0) * (h1 + h2 - ch).clamp(min=0)
    union = w1 * h1 + w2 * h2 - inter
    dx, dy = ((x1 - u1) + (x2 - u2)) / 2, ((y1 - v1) + (y2 - v2)) / 2
    return {"iou": inter / (union + eps), "union": union, "area_c": cw * ch, "c2": cw * cw + ch * ch,
            "rho2": dx * dx + dy * dy, "w1": w1, "h1": h1, "w2": w2, "h2": h2}


def _ie_diou(t: dict[str, Tensor], eps: float) -> Tensor:
    return 1 - t["iou"] + t["rho2"] / (t["c2"] + eps)


def ie_iou(boxes1, boxes2, *, mode="linear", reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
    _validate(boxes1, boxes2, reduction, eps, mode)
    iou = _ie_terms(boxes1, boxes2, eps)["iou"]
    loss = {"linear": lambda: 1 - iou, "quadratic": lambda: (1 - iou) * (1 + iou), "log": lambda: _neg_log(iou)}[mode]()
    return _reduce(loss, reduction).to(boxes1.dtype)


def ie_giou(boxes1, boxes2, *, reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
    _validate(boxes1, boxes2, reduction, eps)
    t = _ie_terms(boxes1, boxes2, eps)
    return _reduce(2 - t["iou"] - (t["union"] + eps) / (t["area_c"] + eps), reduction).to(boxes1.dtype)


def ie_diou(boxes1, boxes2, *, reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
    _validate(boxes1, boxes2, reduction, eps)
    return _reduce(_ie_diou(_ie_terms(boxes1, boxes2, eps), eps), reduction).to(boxes1.dtype)


def ie_ciou(boxes1, boxes2, *, reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
    _validate(boxes1, boxes2, reduction, eps)
    t = _ie_terms(boxes1, boxes2, eps)
    # atan(w2 / c2) - atan(w1 / c1) (c = h + eps) as the angle between the vectors (c1, w1) and (c2, w2):
    # atan2 of their cross and dot products (the dot is > 0: both angles lie in [0, pi/2)), each vector
    # scaled by its larger side first so that no product overflows and no quotient w / c is formed.
    w1, c1, w2, c2 = t["w1"], t["h1"] + eps, t["w2"], t["h2"] + eps
    m1, m2 = torch.maximum(w1, c1), torch.maximum(w2, c2)
    w1, c1, w2, c2 = w1 / m1, c1 / m1, w2 / m2, c2 / m2
    v = 4 / math.pi**2 * torch.atan2(w2 * c1 - w1 * c2, c1 * c2 + w1 * w2) ** 2
    alpha = (v / (1 - t["iou"] + v + eps)).detach()
    return _reduce(_ie_diou(t, eps) + alpha * v, reduction).to(boxes1.dtype)


# ---------------------------------------------------------------------------
# Masked overlap, in the input's dtype
# ---------------------------------------------------------------------------


def _masked_terms(boxes1: Tensor, boxes2: Tensor, eps: float) -> dict[str, Tensor]:
    x1, y1, x2, y2 = boxes1.unbind(-1)
    u1, v1, u2, v2 = boxes2.unbind(-1)
    left, right = torch.max(x1, u1), torch.min(x2, u2)
    bottom, top = torch.max(y1, v1), torch.min(y2, v2)
    overlap = (right > left) & (top > bottom)
    inter = torch.where(overlap, (right - left) * (top - bottom), torch.zeros_like(x1))
    union = (x2 - x1) * (y2 - y1) + (u2 - u1) * (v2 - v1) - inter
    cw = torch.max(x2, u2) - torch.min(x1, u1)
    ch = torch.max(y2, v2) - torch.min(y1, v1)
    dx = (x1 + x2) / 2 - (u1 + u2) / 2
    dy = (y1 + y2) / 2 - (v1 + v2) / 2
    return {"iou": inter / (union + eps), "union": union, "area_c": cw * ch, "c2": cw**2 + ch**2 + eps,
            "rho2": dx**2 + dy**2, "t1": _angle(x2 - x1, y2 - y1 + eps), "t2": _angle(u2 - u1, v2 - v1 + eps)}


def _angle(w: Tensor, c: Tensor) -> Tensor:
    """atan(w / c) for w >= 0, c > 0, as atan(w / c) where w <= c and pi/2 - atan(c / w) elsewhere: each
    quotient is at most 1, so neither it nor its derivative overflows (each branch sees safe inputs
    where the other is taken, so the discarded branch's gradient is 0, not 0 * inf)."""
    small = w <= c
    w_lo = torch.where(small, w, torch.zeros_like(w))
    w_hi = torch.where(small, torch.ones_like(w), w)
    return torch.where(small, torch.atan(w_lo / c), math.pi / 2 - torch.atan(c / w_hi))


def masked_iou(boxes1, boxes2, *, mode="linear", reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
    _validate(boxes1, boxes2, reduction, eps, mode)
    iou = _masked_terms(boxes1, boxes2, eps)["iou"]
    loss = {"linear": lambda: 1 - iou, "quadratic": lambda: 1 - iou.pow(2), "log": lambda: _neg_log(iou)}[mode]()
    return _reduce(loss, reduction)


def masked_giou(boxes1, boxes2, *, reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
    _validate(boxes1, boxes2, reduction, eps)
    t = _masked_terms(boxes1, boxes2, eps)
    return _reduce(1 - (t["iou"] - (t["area_c"] - t["union"]) / (t["area_c"] + eps)), reduction)


def masked_diou(boxes1, boxes2, *, reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
    _validate(boxes1, boxes2, reduction, eps)
    t = _masked_terms(boxes1, boxes2, eps)
    return _reduce(1 - t["iou"] + t["rho2"] / t["c2"], reduction)


def masked_ciou(boxes1, boxes2, *, reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
    _validate(boxes1, boxes2, reduction, eps)
    t = _masked_terms(boxes1, boxes2, eps)
    v = (4 / math.pi**2) * torch.pow(t["t2"] - t["t1"], 2)
    with torch.no_grad():
        alpha = v / (1 - t["iou"] + v + eps)
    return _reduce(1 - t["iou"] + t["rho2"] / t["c2"] + alpha * v, reduction)


_IE = "overlap as w1 + w2 - cw, centres from differences, float64 intermediates"
_MASKED = "torchvision's masked overlap (zero gradient when touching), midpoints subtracted, in the input dtype"
IMPLEMENTATIONS = [
    Impl("inclusion_exclusion_float64", "iou_loss", ie_iou, _IE + "; 1 - IoU^2 as (1 - IoU)(1 + IoU)"),
    Impl("masked_in_dtype", "iou_loss", masked_iou, _MASKED),
    Impl("inclusion_exclusion_float64", "giou_loss", ie_giou, _IE + "; GIoU loss as 2 - IoU - (U + eps) / (C + eps)"),
    Impl("masked_in_dtype", "giou_loss", masked_giou, _MASKED),
    Impl("inclusion_exclusion_float64", "diou_loss", ie_diou, _IE),
    Impl("masked_in_dtype", "diou_loss", masked_diou, _MASKED),
    Impl("inclusion_exclusion_float64", "ciou_loss", ie_ciou, _IE + "; atan a - atan b as the atan2 of (h + eps, w)'s cross and dot products"),
    Impl("masked_in_dtype", "ciou_loss", masked_ciou, _MASKED + "; alpha under no_grad; angles by the branch on w <= h"),
]
