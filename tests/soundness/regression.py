"""Correct regression-family implementations written another way than ``impls.regression``."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from tests.soundness import Impl

_REDUCTIONS = ("none", "mean", "sum")


def _check(input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None, reduction: str) -> None:
    if not input.is_floating_point() or target.dtype != input.dtype:
        raise TypeError(f"input and target must share a floating dtype, got {input.dtype} and {target.dtype}")
    if target.shape != input.shape:
        raise ValueError(f"target {tuple(target.shape)} must have the input's shape {tuple(input.shape)}")
    if weight is not None and (weight.dtype != input.dtype or torch.broadcast_shapes(weight.shape, input.shape) != input.shape):
        raise ValueError(f"weight {tuple(weight.shape)} must broadcast to the input's shape {tuple(input.shape)}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _check_beta(beta: float) -> None:
    if not (0 <= beta < math.inf):
        raise ValueError(f"beta must be finite and >= 0, got {beta!r}")


def _finish(loss: torch.Tensor, weight: torch.Tensor | None, reduction: str) -> torch.Tensor:
    if weight is not None:
        loss = loss * weight
    return loss if reduction == "none" else (loss.sum() if reduction == "sum" else loss.mean())


def sl1_torch_builtin(input, target, *, beta=1.0, weight=None, reduction="none"):  # type: ignore[no-untyped-def]
    """torch's own kernels: smooth_l1_loss from 1e-5 on, l1_loss below (OpenPCDet's switch), torch's reduction."""
    _check(input, target, weight, reduction)
    _check_beta(beta)
    r = reduction if weight is None else "none"
    loss = F.l1_loss(input, target, reduction=r) if beta < 1e-5 else F.smooth_l1_loss(input, target, beta=beta, reduction=r)
    return loss if weight is None else _finish(loss, weight, reduction)


def sl1_huber_split_float64(input, target, *, beta=1.0, weight=None, reduction="none"):  # type: ignore[no-untyped-def]
    """The quadratic part of the clamped error plus the linear excess, 0.5 q^2 / beta + (|d| - q) with
    q = min(|d|, beta), no branch; in float64 whatever the input (weight and sum too), cast back."""
    _check(input, target, weight, reduction)
    _check_beta(beta)
    n = (input.double() - target.double()).abs()
    if beta < 1e-5:
        loss = n
    else:
        q = n.clamp(max=beta)
        loss = 0.5 * q * q / beta + (n - q)
    return _finish(loss, None if weight is None else weight.double(), reduction).to(input.dtype)


def l1_maximum(input, target, *, weight=None, reduction="none"):  # type: ignore[no-untyped-def]
    """max(x - y, y - x): no abs; at a tie autograd splits the gradient, 1/2 - 1/2 = 0."""
    _check(input, target, weight, reduction)
    return _finish(torch.maximum(input - target, target - input), weight, reduction)


def l1_torch_builtin(input, target, *, weight=None, reduction="none"):  # type: ignore[no-untyped-def]
    """torch's l1_loss and its reduction."""
    _check(input, target, weight, reduction)
    if weight is None:
        return F.l1_loss(input, target, reduction=reduction)
    return _finish(F.l1_loss(input, target, reduction="none"), weight, reduction)


def mse_torch_builtin(input, target, *, weight=None, reduction="none"):  # type: ignore[no-untyped-def]
    """torch's mse_loss and its reduction."""
    _check(input, target, weight, reduction)
    if weight is None:
        return F.mse_loss(input, target, reduction=reduction)
    return _finish(F.mse_loss(input, target, reduction="none"), weight, reduction)


def mse_pow_float64(input, target, *, weight=None, reduction="none"):  # type: ignore[no-untyped-def]
    """(x - y).pow(2) in float64 (no overflow of d^2 before the cast back), weighted and reduced in float64."""
    _check(input, target, weight, reduction)
    loss = (input.double() - target.double()).pow(2)
    return _finish(loss, None if weight is None else weight.double(), reduction).to(input.dtype)


def _check_weighted(input, target, weights, beta, code_weights):  # type: ignore[no-untyped-def]
    if input.dim() != 3 or target.shape != input.shape or not input.is_floating_point() or target.dtype != input.dtype:
        raise ValueError("input and target must be (B, A, K) tensors of one floating dtype")
    if weights is not None and tuple(weights.shape) != tuple(input.shape[:2]):
        raise ValueError(f"weights must have shape {tuple(input.shape[:2])}")
    if code_weights is not None and tuple(code_weights.shape) != (input.shape[-1],):
        raise ValueError(f"code_weights must have shape ({input.shape[-1]},)")
    _check_beta(beta)


def wsl1_masked_builtin(input, target, weights=None, *, beta=1.0 / 9.0, code_weights=None):  # type: ignore[no-untyped-def]
    """NaN slots masked to a zero difference with torch.where (the target's NaN zeroed first), then torch's
    smooth_l1_loss against 0 (l1 below 1e-5), anchor weights last."""
    _check_weighted(input, target, weights, beta, code_weights)
    ignored = torch.isnan(target)
    d = torch.where(ignored, torch.zeros_like(input), input - torch.nan_to_num(target, nan=0.0))
    if code_weights is not None:
        d = d * code_weights
    zero = torch.zeros_like(d)
    loss = F.l1_loss(d, zero, reduction="none") if beta < 1e-5 else F.smooth_l1_loss(d, zero, beta=beta, reduction="none")
    return loss if weights is None else loss * weights[..., None]


def wsl1_huber_split_float64(input, target, weights=None, *, beta=1.0 / 9.0, code_weights=None):  # type: ignore[no-untyped-def]
    """float64 throughout: masked_fill of the ignored differences, 0.5 q^2 / beta + (n - q), cast back."""
    _check_weighted(input, target, weights, beta, code_weights)
    d = (input.double() - target.double()).masked_fill(torch.isnan(target), 0.0)
    if code_weights is not None:
        d = d * code_weights.double()
    n = d.abs()
    if beta < 1e-5:
        loss = n
    else:
        q = n.clamp(max=beta)
        loss = 0.5 * q * q / beta + (n - q)
    if weights is not None:
        loss = loss * weights.double()[..., None]
    return loss.to(input.dtype)


IMPLEMENTATIONS = [
    Impl("torch_builtin", "smooth_l1", sl1_torch_builtin, "torch's smooth_l1_loss / l1_loss kernels and reduction"),
    Impl("huber_split_float64", "smooth_l1", sl1_huber_split_float64,
         "0.5 q^2 / beta + (|d| - q) without a branch, all in float64"),
    Impl("maximum", "l1", l1_maximum, "max(x - y, y - x), gradient split at ties"),
    Impl("torch_builtin", "l1", l1_torch_builtin, "torch's l1_loss and reduction"),
    Impl("torch_builtin", "mse", mse_torch_builtin, "torch's mse_loss and reduction"),
    Impl("pow_float64", "mse", mse_pow_float64, "(x - y).pow(2) in float64, summed in float64"),
    Impl("masked_builtin", "weighted_smooth_l1", wsl1_masked_builtin,
         "ignored slots masked with torch.where, torch's smooth_l1_loss against 0"),
    Impl("huber_split_float64", "weighted_smooth_l1", wsl1_huber_split_float64,
         "masked_fill and the branch-free Huber split, in float64"),
]
