"""IoU-family box losses on pairs of xyxy boxes, elementwise over matching rows.

``boxes1[..., i, :]`` is compared with ``boxes2[..., i, :]`` only (no pairwise matrix).

Policies shared by every loss here:

- **Inverted boxes** (``x2 < x1`` or ``y2 < y1`` anywhere) raise ``ValueError`` naming
  the argument (``boxes1`` / ``boxes2``) and showing the first offending box. Their
  "area" would be negative and the loss silently meaningless (often 0, or above 2).
- **Degenerate boxes** (zero width or height, a point, two identical degenerate boxes)
  are valid: ``eps`` in every denominator keeps value and gradient finite. Two identical
  points have IoU 0 (0 / eps), so ``iou_loss`` is 1 there.
- **Empty input**: ``"none"`` gives an empty tensor, ``"sum"`` 0 and ``"mean"`` 0 (not
  nan), kept differentiable (``0 * sum``) as torchvision does for its box losses.
- **Box format**: xyxy only. Other formats (xywh, centre-size, keras-cv's ``rel_*``) are
  a convention that an adapter translates before the call, never a keyword here.
- **IoU loss modes** (keras-cv's ``IoULoss(mode=...)``): ``"linear"`` ``1 - IoU``,
  ``"quadratic"`` ``1 - IoU^2``, ``"log"`` ``-ln IoU``; the log loss is ``+inf`` where
  IoU is 0 (disjoint or zero-area pairs) with a zero gradient there, as ``1 - IoU`` has.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from impls._validate import check_choice, check_real, check_reduction, check_same_dtype, check_same_shape, check_tensor

__all__ = ["IOU_MODES", "ciou_loss", "diou_loss", "giou_loss", "iou_loss"]

IOU_MODES = ("linear", "quadratic", "log")


class _Geometry(NamedTuple):
    iou: torch.Tensor
    union: torch.Tensor
    enclose_w: torch.Tensor
    enclose_h: torch.Tensor
    w1: torch.Tensor
    h1: torch.Tensor
    w2: torch.Tensor
    h2: torch.Tensor
    centre_dist2: torch.Tensor


def _check_boxes(name: str, b: torch.Tensor) -> None:
    check_tensor(name, b)
    if b.dim() == 0 or b.shape[-1] != 4:
        raise ValueError(f"{name} must have shape (..., 4) in (x1, y1, x2, y2) order, got {tuple(b.shape)}")
    bad = (b[..., 2] < b[..., 0]) | (b[..., 3] < b[..., 1])
    if bool(bad.any()):
        row = b[bad][0].tolist()
        raise ValueError(f"{name} must satisfy x2 >= x1 and y2 >= y1 (xyxy boxes), found inverted box {row}")


def _check(boxes1: torch.Tensor, boxes2: torch.Tensor, reduction: str, eps: float) -> None:
    _check_boxes("boxes1", boxes1)
    _check_boxes("boxes2", boxes2)
    check_same_shape("boxes1", boxes1, "boxes2", boxes2)
    check_same_dtype("boxes1", boxes1, "boxes2", boxes2)
    check_reduction(reduction)
    check_real("eps", eps, low=0.0, low_open=True, high=math.inf, high_open=True)


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    # An empty mean is 0 and stays attached to the graph, instead of nan (0 / 0).
    return loss.mean() if loss.numel() > 0 else 0.0 * loss.sum()


def _apply_mode(iou: torch.Tensor, mode: str) -> torch.Tensor:
    if mode == "linear":
        return 1 - iou
    if mode == "quadratic":
        return 1 - iou * iou
    # -ln IoU is +inf where IoU is 0; the double where keeps that row's gradient 0
    # (log's backward would otherwise multiply -1/0 by the zero gradient of IoU: nan).
    overlap = iou > 0
    safe = torch.where(overlap, iou, torch.ones_like(iou))
    return torch.where(overlap, -torch.log(safe), torch.full_like(iou, math.inf))


def _geometry(b1: torch.Tensor, b2: torch.Tensor, eps: float) -> _Geometry:
    x1, y1, x2, y2 = b1.unbind(-1)
    u1, v1, u2, v2 = b2.unbind(-1)
    w1, h1, w2, h2 = x2 - x1, y2 - y1, u2 - u1, v2 - v1
    inter_w = (torch.minimum(x2, u2) - torch.maximum(x1, u1)).clamp(min=0)
    inter_h = (torch.minimum(y2, v2) - torch.maximum(y1, v1)).clamp(min=0)
    inter = inter_w * inter_h
    union = w1 * h1 + w2 * h2 - inter
    dx = (x1 + x2 - u1 - u2) / 2
    dy = (y1 + y2 - v1 - v2) / 2
    return _Geometry(
        iou=inter / (union + eps),
        union=union,
        enclose_w=torch.maximum(x2, u2) - torch.minimum(x1, u1),
        enclose_h=torch.maximum(y2, v2) - torch.minimum(y1, v1),
        w1=w1,
        h1=h1,
        w2=w2,
        h2=h2,
        centre_dist2=dx * dx + dy * dy,
    )


def iou_loss(
    boxes1: torch.Tensor,
    boxes2: torch.Tensor,
    *,
    mode: str = "linear",
    reduction: str = "none",
    eps: float = 1e-7,
) -> torch.Tensor:
    """IoU loss per pair of boxes, ``IoU = inter / (union + eps)``: ``1 - IoU`` by default.

    Linear and quadratic losses lie in [0, 1] and are 1 (with zero gradient) for every pair
    that does not overlap; the log loss lies in [0, +inf] and is +inf (zero gradient) there.

    Args:
        boxes1: (..., 4) floating xyxy boxes, ``x2 >= x1`` and ``y2 >= y1`` (else ValueError).
        boxes2: (..., 4) boxes of the same shape and dtype.
        mode: ``"linear"`` (``1 - IoU``) | ``"quadratic"`` (``1 - IoU^2``) | ``"log"``
            (``-ln IoU``), keras-cv's ``IoULoss`` modes.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"`` (an empty mean is 0).
        eps: finite, > 0; keeps degenerate (zero-area) pairs finite in value and gradient.

    Returns:
        (...) loss per pair for ``"none"``, else a 0-d tensor; the boxes' dtype and device.

    Raises:
        ValueError: naming the argument with a bad type, dtype, shape, inverted box or value.

    Reference: Yu et al., "UnitBox: An Advanced Object Detection Network", ACM MM 2016.
    """
    _check(boxes1, boxes2, reduction, eps)
    check_choice("mode", mode, IOU_MODES)
    g = _geometry(boxes1, boxes2, eps)
    return _reduce(_apply_mode(g.iou, mode), reduction)


def giou_loss(
    boxes1: torch.Tensor, boxes2: torch.Tensor, *, reduction: str = "none", eps: float = 1e-7
) -> torch.Tensor:
    """Generalized IoU loss ``1 - GIoU``, ``GIoU = IoU - (C - union) / (C + eps)``.

    ``C`` is the area of the smallest box enclosing both. Lies in [0, 2]; unlike the IoU
    loss it keeps decreasing as disjoint boxes approach, and ``GIoU <= IoU``.

    Args:
        boxes1: (..., 4) floating xyxy boxes, ``x2 >= x1`` and ``y2 >= y1`` (else ValueError).
        boxes2: (..., 4) boxes of the same shape and dtype.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"`` (an empty mean is 0).
        eps: finite, > 0; keeps degenerate pairs finite in value and gradient.

    Returns:
        (...) loss per pair for ``"none"``, else a 0-d tensor; the boxes' dtype and device.

    Raises:
        ValueError: naming the argument with a bad type, dtype, shape, inverted box or value.

    Reference: Rezatofighi et al., "Generalized Intersection over Union", CVPR 2019.
    """
    _check(boxes1, boxes2, reduction, eps)
    g = _geometry(boxes1, boxes2, eps)
    area_c = g.enclose_w * g.enclose_h
    giou = g.iou - (area_c - g.union) / (area_c + eps)
    return _reduce(1 - giou, reduction)


def diou_loss(
    boxes1: torch.Tensor, boxes2: torch.Tensor, *, reduction: str = "none", eps: float = 1e-7
) -> torch.Tensor:
    """Distance-IoU loss ``1 - IoU + rho^2 / (c^2 + eps)``.

    ``rho`` is the distance between the boxes' centres, ``c`` the diagonal of the smallest
    enclosing box. Lies in [0, 2).

    Args:
        boxes1: (..., 4) floating xyxy boxes, ``x2 >= x1`` and ``y2 >= y1`` (else ValueError).
        boxes2: (..., 4) boxes of the same shape and dtype.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"`` (an empty mean is 0).
        eps: finite, > 0; keeps degenerate pairs finite in value and gradient.

    Returns:
        (...) loss per pair for ``"none"``, else a 0-d tensor; the boxes' dtype and device.

    Raises:
        ValueError: naming the argument with a bad type, dtype, shape, inverted box or value.

    Reference: Zheng et al., "Distance-IoU Loss: Faster and Better Learning for Bounding
    Box Regression", AAAI 2020.
    """
    _check(boxes1, boxes2, reduction, eps)
    g = _geometry(boxes1, boxes2, eps)
    c2 = g.enclose_w * g.enclose_w + g.enclose_h * g.enclose_h
    return _reduce(1 - g.iou + g.centre_dist2 / (c2 + eps), reduction)


def ciou_loss(
    boxes1: torch.Tensor, boxes2: torch.Tensor, *, reduction: str = "none", eps: float = 1e-7
) -> torch.Tensor:
    """Complete-IoU loss: the DIoU loss plus ``alpha * v``.

    ``v = 4 / pi^2 (atan(w2 / (h2 + eps)) - atan(w1 / (h1 + eps)))^2`` measures the
    aspect-ratio mismatch and ``alpha = v / (1 - IoU + v + eps)`` is its trade-off
    weight, treated as a constant in the backward pass (the paper's gradient analysis;
    torchvision does the same). ``+ eps`` in the ratios keeps zero-height boxes finite; the angles are
    computed by ``atan2`` so that the gradient stays finite where ``w / (h + eps)`` overflows.

    Args:
        boxes1: (..., 4) floating xyxy boxes, ``x2 >= x1`` and ``y2 >= y1`` (else ValueError).
        boxes2: (..., 4) boxes of the same shape and dtype.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"`` (an empty mean is 0).
        eps: finite, > 0; keeps degenerate pairs finite in value and gradient.

    Returns:
        (...) loss per pair for ``"none"``, else a 0-d tensor; the boxes' dtype and device.

    Raises:
        ValueError: naming the argument with a bad type, dtype, shape, inverted box or value.

    Reference: Zheng et al., "Distance-IoU Loss: Faster and Better Learning for Bounding
    Box Regression", AAAI 2020.
    """
    _check(boxes1, boxes2, reduction, eps)
    g = _geometry(boxes1, boxes2, eps)
    c2 = g.enclose_w * g.enclose_w + g.enclose_h * g.enclose_h
    # atan2(w, h + eps) is atan(w / (h + eps)) for h + eps > 0; its backward, (h + eps, -w) / (w^2 + (h + eps)^2),
    # stays finite where the quotient's chain rule, atan'(w / c) * (-(w / c) / c), meets 0 * inf (w / c
    # overflowing for a zero-height box of huge width: the true derivative is ~ -1 / w there).
    dtheta = torch.atan2(g.w2, g.h2 + eps) - torch.atan2(g.w1, g.h1 + eps)
    v = (4 / math.pi**2) * dtheta * dtheta
    with torch.no_grad():
        alpha = v / (1 - g.iou + v + eps)
    return _reduce(1 - g.iou + g.centre_dist2 / (c2 + eps) + alpha * v, reduction)
