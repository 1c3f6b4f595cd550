"""Elementwise regression losses: smooth L1 (OpenPCDet and torch forms), L1, MSE."""

from __future__ import annotations

import torch

from impls._validate import check_real, check_same_dtype, check_same_shape, check_tensor

__all__ = ["smooth_l1", "weighted_smooth_l1", "l1", "mse"]

L1_BETA = 1e-5  # below this beta, smooth L1 is plain L1 (OpenPCDet's convention)


def _pair(input: torch.Tensor, target: torch.Tensor) -> None:
    check_tensor("input", input)
    check_tensor("target", target)
    check_same_shape("input", input, "target", target)
    check_same_dtype("input", input, "target", target)


def _smooth_l1_of(diff: torch.Tensor, beta: float) -> torch.Tensor:
    n = diff.abs()
    if beta < L1_BETA:
        return n
    # 0.5 n^2 / beta inside, n - beta/2 outside: value and first derivative continuous at n = beta.
    return torch.where(n < beta, 0.5 * n * n / beta, n - 0.5 * beta)


def smooth_l1(input: torch.Tensor, target: torch.Tensor, *, beta: float = 1.0) -> torch.Tensor:
    """Smooth L1 (Huber divided by beta), elementwise.

    ``0.5 d^2 / beta`` for ``|d| < beta``, else ``|d| - beta / 2``, with ``d = input - target``;
    ``beta < 1e-5`` is plain L1 (avoids dividing by a vanishing beta).

    Args:
        input: (*) float tensor.
        target: (*) tensor of the same shape and dtype.
        beta: transition point, ``beta >= 0``.

    Returns:
        (*) loss per element, same dtype.

    Reference: Girshick, "Fast R-CNN", ICCV 2015.
    """
    _pair(input, target)
    check_real("beta", beta, low=0.0)
    return _smooth_l1_of(input - target, float(beta))


def weighted_smooth_l1(
    input: torch.Tensor,
    target: torch.Tensor,
    weights: torch.Tensor | None = None,
    *,
    beta: float = 1.0 / 9.0,
    code_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """OpenPCDet ``WeightedSmoothL1Loss``: code weights, anchor weights, NaN targets ignored.

    NaN entries of ``target`` are replaced by the input (zero loss and zero gradient
    there); ``code_weights`` (K,) multiply the difference before the smooth L1;
    ``weights`` (B, A) multiply the loss of every code of an anchor.

    Args:
        input: (B, A, K) float tensor of encoded box predictions.
        target: (B, A, K) regression targets, same dtype; NaN means "no target".
        weights: (B, A) anchor-wise weights or None.
        beta: smooth L1 transition (OpenPCDet default 1/9); ``< 1e-5`` is L1.
        code_weights: (K,) per-code weights or None.

    Returns:
        (B, A, K) loss, never reduced.

    Reference: OpenPCDet ``pcdet/utils/loss_utils.py``.
    """
    check_tensor("input", input, ndim=3)
    check_tensor("target", target, ndim=3)
    check_same_shape("input", input, "target", target)
    check_same_dtype("input", input, "target", target)
    check_real("beta", beta, low=0.0)
    target = torch.where(torch.isnan(target), input.detach(), target)
    diff = input - target
    if code_weights is not None:
        check_tensor("code_weights", code_weights, ndim=1)
        if code_weights.shape[0] != input.shape[-1]:
            raise ValueError(f"code_weights must have shape ({input.shape[-1]},), got {tuple(code_weights.shape)}")
        diff = diff * code_weights.to(diff.dtype)
    loss = _smooth_l1_of(diff, float(beta))
    if weights is not None:
        check_tensor("weights", weights, ndim=2)
        if tuple(weights.shape) != tuple(input.shape[:2]):
            raise ValueError(f"weights must have shape {tuple(input.shape[:2])}, got {tuple(weights.shape)}")
        loss = loss * weights.unsqueeze(-1)
    return loss


def l1(input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """|input - target| elementwise (same shape and dtype)."""
    _pair(input, target)
    return (input - target).abs()


def mse(input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(input - target)^2 elementwise (same shape and dtype)."""
    _pair(input, target)
    d = input - target
    return d * d
