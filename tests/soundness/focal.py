"""Correct sigmoid-family implementations written another way than ``impls.focal``."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tests.soundness import Impl


def _check(logits: torch.Tensor, targets: torch.Tensor, reduction: str) -> None:
    if not logits.is_floating_point():
        raise TypeError(f"logits must be floating, got {logits.dtype}")
    if targets.shape != logits.shape:
        raise ValueError(f"targets {tuple(targets.shape)} must have the logits' shape {tuple(logits.shape)}")
    if targets.numel() and not bool(((targets >= 0) & (targets <= 1)).all()):
        raise ValueError("targets must lie in [0, 1]")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    return loss if reduction == "none" else (loss.sum() if reduction == "sum" else loss.mean())


def bce_logsigmoid(logits, targets, *, weight=None, pos_weight=None, reduction="none"):  # type: ignore[no-untyped-def]
    """-(pw z logsigmoid(x) + (1 - z) logsigmoid(-x)), summed left to right by torch.sum."""
    _check(logits, targets, reduction)
    pos = -targets * F.logsigmoid(logits)
    if pos_weight is not None:
        if torch.broadcast_shapes(pos_weight.shape, logits.shape) != logits.shape or (pos_weight < 0).any():
            raise ValueError("pos_weight must broadcast to the logits and be >= 0")
        pos = pos * pos_weight
    loss = pos - (1 - targets) * F.logsigmoid(-logits)
    if weight is not None:
        if torch.broadcast_shapes(weight.shape, logits.shape) != logits.shape:
            raise ValueError("weight must broadcast to the logits")
        loss = loss * weight
    return _reduce(loss, reduction)


def focal_double_where(logits, targets, *, alpha=0.25, gamma=2.0, reduction="none"):  # type: ignore[no-untyped-def]
    """1 - p_t as z sigmoid(-x) + (1 - z) sigmoid(x) (no cancellation), a plain power guarded by the
    double-where trick so its gradient is finite where 1 - p_t is 0, BCE from two logsigmoid terms; computed
    in float64 whatever the input (intermediates more precise, and wide enough that BCE * gamma in the
    backward pass never overflows at |x| ~ 1e38), returned in the input's dtype."""
    _check(logits, targets, reduction)
    if not (gamma >= 0) or (alpha is not None and not (0 <= alpha <= 1)):
        raise ValueError("gamma must be >= 0 and alpha in [0, 1] or None")
    dtype = logits.dtype
    logits, targets = logits.double(), targets.double()
    return _focal64(logits, targets, alpha, gamma, reduction).to(dtype)


def _focal64(logits, targets, alpha, gamma, reduction):  # type: ignore[no-untyped-def]
    omp = targets * torch.sigmoid(-logits) + (1 - targets) * torch.sigmoid(logits)
    positive = omp > 0
    safe = torch.where(positive, omp, torch.ones_like(omp))
    factor = torch.where(positive, safe**gamma, torch.zeros_like(omp)) if gamma > 0 else torch.ones_like(omp)
    ce = -(targets * F.logsigmoid(logits) + (1 - targets) * F.logsigmoid(-logits))
    loss = factor * ce
    if alpha is not None:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return _reduce(loss, reduction)


def weighted_focal_in_dtype(logits, targets, weights, *, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    """OpenPCDet's layout, written another way: every intermediate in the input's dtype (no float64), 1 - p_t
    from two sigmoids, the power guarded by the double-where trick, BCE from two logsigmoids, alpha_t and the
    anchor weight (unsqueezed over the class axis) applied last."""
    _check(logits, targets, "none")
    if weights.shape != logits.shape[:-1]:
        raise ValueError(f"weights {tuple(weights.shape)} must be the logits' shape without the class axis "
                         f"{tuple(logits.shape[:-1])}")
    if not (gamma >= 0) or (alpha is not None and not (0 <= alpha <= 1)):
        raise ValueError("gamma must be >= 0 and alpha in [0, 1] or None")
    omp = targets * torch.sigmoid(-logits) + (1 - targets) * torch.sigmoid(logits)
    if gamma > 0:
        positive = omp > 0
        factor = torch.where(positive, torch.where(positive, omp, torch.ones_like(omp)) ** gamma, torch.zeros_like(omp))
    else:
        factor = torch.ones_like(omp)
    loss = factor * -(targets * F.logsigmoid(logits) + (1 - targets) * F.logsigmoid(-logits))
    if alpha is not None:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss * weights.unsqueeze(-1)


IMPLEMENTATIONS = [
    Impl("logsigmoid", "sigmoid_bce", bce_logsigmoid, "two logsigmoid terms, pos_weight and weight applied after"),
    Impl("double_where_power", "sigmoid_focal", focal_double_where,
         "plain power of 1 - p_t from two sigmoids, guarded by the double-where trick; BCE from two logsigmoids; "
         "computed in float64"),
    Impl("in_dtype_guarded_power", "weighted_sigmoid_focal", weighted_focal_in_dtype,
         "every intermediate in the input's dtype; 1 - p_t from two sigmoids, guarded power, two logsigmoids, "
         "the anchor weight applied last"),
]
