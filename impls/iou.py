"""IoU-family box losses on pairs of xyxy boxes (elementwise over matching rows)."""

from __future__ import annotations

import math

import torch

from impls._validate import check_choice, check_real, check_same_dtype, check_same_shape, check_tensor

__all__ = ["iou_loss", "giou_loss", "diou_loss", "ciou_loss"]


def _check(boxes1: torch.Tensor, boxes2: torch.Tensor, reduction: str, eps: float) -> None:
    for name, b in (("boxes1", boxes1), ("boxes2", boxes2)):
        check_tensor(name, b)
        if b.dim() == 0 or b.shape[-1] != 4:
            raise ValueError(f"{name} must have shape (..., 4) in (x1, y1, x2, y2) order, got {tuple(b.shape)}")
        # Policy for inverted boxes: a clear error, never a silent 0.
        bad = (b[..., 2] < b[..., 0]) | (b[..., 3] < b[..., 1])
        if bool(bad.any()):
            row = b[bad][0].tolist()
            raise ValueError(f"{name} must satisfy x2 >= x1 and y2 >= y1 (xyxy boxes), found {row}")
    check_same_shape("boxes1", boxes1, "boxes2", boxes2)
    check_same_dtype("boxes1", boxes1, "boxes2", boxes2)
    check_choice("reduction", reduction, ("none", "mean", "sum"))
    check_real("eps", eps, low=0.0, low_open=True)


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    # An empty input's mean stays differentiable (0 * sum) instead of nan.
    return loss.mean() if loss.numel() > 0 else 0.0 * loss.sum()


def _parts(b1: torch.Tensor, b2: torch.Tensor, eps: float) -> dict[str, torch.Tensor]:
    x1, y1, x2, y2 = b1.unbind(-1)
    u1, v1, u2, v2 = b2.unbind(-1)
    area1 = (x2 - x1) * (y2 - y1)
    area2 = (u2 - u1) * (v2 - v1)
    iw = (torch.minimum(x2, u2) - torch.maximum(x1, u1)).clamp(min=0)
    ih = (torch.minimum(y2, v2) - torch.maximum(y1, v1)).clamp(min=0)
    inter = iw * ih
    union = area1 + area2 - inter
    iou = inter / (union + eps)
    cw = torch.maximum(x2, u2) - torch.minimum(x1, u1)
    ch = torch.maximum(y2, v2) - torch.minimum(y1, v1)
    return {"iou": iou, "union": union, "cw": cw, "ch": ch,
            "w1": x2 - x1, "h1": y2 - y1, "w2": u2 - u1, "h2": v2 - v1,
            "dx": (x1 + x2 - u1 - u2) / 2, "dy": (y1 + y2 - v1 - v2) / 2}


def iou_loss(boxes1: torch.Tensor, boxes2: torch.Tensor, *, reduction: str = "none", eps: float = 1e-7) -> torch.Tensor:
    """``1 - IoU`` per pair, ``IoU = inter / (union + eps)``.

    Args:
        boxes1: (..., 4) xyxy boxes with x2 >= x1, y2 >= y1 (else ValueError).
        boxes2: same shape and dtype.
        reduction: "none" | "mean" | "sum" (an empty mean is 0).
        eps: > 0, keeps degenerate boxes (zero area) finite in value and gradient.

    Returns:
        (...) loss per pair, or 0-d.
    """
    _check(boxes1, boxes2, reduction, eps)
    return _reduce(1 - _parts(boxes1, boxes2, eps)["iou"], reduction)


def giou_loss(boxes1: torch.Tensor, boxes2: torch.Tensor, *, reduction: str = "none", eps: float = 1e-7) -> torch.Tensor:
    """``1 - GIoU``, ``GIoU = IoU - (C - union) / (C + eps)`` with C the enclosing box's area.

    Reference: Rezatofighi et al., "Generalized Intersection over Union", CVPR 2019.
    """
    _check(boxes1, boxes2, reduction, eps)
    p = _parts(boxes1, boxes2, eps)
    area_c = p["cw"] * p["ch"]
    giou = p["iou"] - (area_c - p["union"]) / (area_c + eps)
    return _reduce(1 - giou, reduction)


def diou_loss(boxes1: torch.Tensor, boxes2: torch.Tensor, *, reduction: str = "none", eps: float = 1e-7) -> torch.Tensor:
    """``1 - IoU + rho^2 / (c^2 + eps)``: rho the centre distance, c the enclosing box's diagonal.

    Reference: Zheng et al., "Distance-IoU Loss", AAAI 2020.
    """
    _check(boxes1, boxes2, reduction, eps)
    p = _parts(boxes1, boxes2, eps)
    c2 = p["cw"] ** 2 + p["ch"] ** 2
    rho2 = p["dx"] ** 2 + p["dy"] ** 2
    return _reduce(1 - p["iou"] + rho2 / (c2 + eps), reduction)


def ciou_loss(boxes1: torch.Tensor, boxes2: torch.Tensor, *, reduction: str = "none", eps: float = 1e-7) -> torch.Tensor:
    """DIoU loss plus ``alpha v``, ``v = 4/pi^2 (atan(w2/h2) - atan(w1/h1))^2``, ``alpha = v / (1 - IoU + v + eps)``.

    ``alpha`` is a weight, not differentiated (as in the paper's gradient analysis).
    Aspect ratios use ``w / (h + eps)`` so zero-height boxes stay finite.

    Reference: Zheng et al., "Distance-IoU Loss", AAAI 2020.
    """
    _check(boxes1, boxes2, reduction, eps)
    p = _parts(boxes1, boxes2, eps)
    c2 = p["cw"] ** 2 + p["ch"] ** 2
    rho2 = p["dx"] ** 2 + p["dy"] ** 2
    v = (4 / math.pi**2) * (torch.atan(p["w2"] / (p["h2"] + eps)) - torch.atan(p["w1"] / (p["h1"] + eps))) ** 2
    with torch.no_grad():
        alpha = v / (1 - p["iou"] + v + eps)
    return _reduce(1 - p["iou"] + rho2 / (c2 + eps) + alpha * v, reduction)
