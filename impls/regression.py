"""Regression losses: smooth L1 (torch and OpenPCDet forms), L1, MSE.

``smooth_l1``, ``l1`` and ``mse`` are elementwise with torch's options: an optional
``weight`` broadcast to the input's shape multiplies each element's loss, and
``reduction`` is ``"none"`` (the default here: the loss per element), ``"mean"``
over every element (the weighted losses summed and divided by the element count,
as torch, Keras' ``sample_weight`` and effdet's ``weights`` do; an empty mean is
nan, as torch gives) or ``"sum"``. :func:`weighted_smooth_l1` is OpenPCDet's form
and never reduces. An empty input gives an empty output of the same shape.
"""

from __future__ import annotations

import math

import torch

from impls._validate import check_real, check_reduction, check_same_dtype, check_same_shape, check_tensor

__all__ = ["L1_BETA", "l1", "mse", "smooth_l1", "weighted_smooth_l1"]

L1_BETA = 1e-5
"""Below this ``beta`` smooth L1 is plain L1 (OpenPCDet's convention; torch only switches at beta == 0)."""


def _check_pair(input: torch.Tensor, target: torch.Tensor) -> None:
    check_tensor("input", input)
    check_tensor("target", target)
    check_same_shape("input", input, "target", target)
    check_same_dtype("input", input, "target", target)


def _check_beta(beta: float) -> float:
    # An infinite beta would make every element quadratic with a zero coefficient: a silent 0 loss.
    return check_real("beta", beta, low=0.0, high=math.inf, high_open=True)


def _check_weight(weight: torch.Tensor, input: torch.Tensor) -> None:
    check_tensor("weight", weight)
    check_same_dtype("input", input, "weight", weight)
    try:
        shape = torch.broadcast_shapes(weight.shape, input.shape)
    except RuntimeError:
        shape = None
    if shape != input.shape:
        raise ValueError(f"weight must broadcast to the input's shape {tuple(input.shape)}, got {tuple(weight.shape)}")


def _weighted_reduce(loss: torch.Tensor, input: torch.Tensor, weight: torch.Tensor | None, reduction: str) -> torch.Tensor:
    if weight is not None:
        _check_weight(weight, input)
        # A zero weight removes the element, also where its loss overflowed (0 * inf is nan).
        loss = torch.where(weight == 0, torch.zeros_like(loss), loss) * weight
    # An empty input's mean is nan (0/0), as torch's own losses give; its sum is 0.
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()


def _smooth_l1_of(diff: torch.Tensor, beta: float) -> torch.Tensor:
    n = diff.abs()
    if beta < L1_BETA:
        # 0.5 n^2 / beta with a vanishing beta only amplifies rounding; the limit is |d|.
        return n
    # torch.where sends a zero gradient into the branch it does not take, and 0 * inf is nan:
    # the quadratic branch sees |d| clamped to beta, so it stays finite where |d| overflowed
    # to inf; and 0.5 q (q / beta) never overflows where q * q would (q / beta <= 1).
    q = n.clamp(max=beta)
    return torch.where(n < beta, 0.5 * q * (q / beta), n - 0.5 * beta)


def smooth_l1(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    beta: float = 1.0,
    weight: torch.Tensor | None = None,
    reduction: str = "none",
) -> torch.Tensor:
    """Smooth L1 loss (Huber loss divided by ``beta``).

    With ``d = input - target``: ``0.5 d^2 / beta`` for ``|d| < beta``, else
    ``|d| - beta / 2``. Value and first derivative are continuous at ``|d| = beta``
    and ``|d loss / d input| <= 1``. ``beta < 1e-5`` (:data:`L1_BETA`) is plain L1,
    as in OpenPCDet, fvcore and effdet; torch's ``F.smooth_l1_loss`` switches to L1
    only at ``beta == 0``, so for ``0 < beta < 1e-5`` the two differ by at most ``beta / 2``.
    ``beta * smooth_l1`` is torch's ``huber_loss(delta=beta)``.

    Args:
        input: (*) floating tensor.
        target: (*) tensor of the same shape and dtype.
        beta: transition point, finite and ``>= 0``.
        weight: a tensor of the input's dtype broadcastable to its shape, multiplying
            each element's loss, or ``None``.
        reduction: ``"none"`` (the loss per element), ``"mean"`` of the (weighted)
            losses over every element, or ``"sum"``.

    Returns:
        (*) loss per element for ``"none"``, else a 0-d tensor; dtype and device of ``input``.

    Raises:
        ValueError: on a non-tensor, a non-floating dtype, mismatched shapes or dtypes,
            a weight that does not broadcast, an unknown reduction, or a ``beta`` that is
            negative, infinite or nan.

    Reference: Girshick, "Fast R-CNN", ICCV 2015.
    """
    _check_pair(input, target)
    check_reduction(reduction)
    b = _check_beta(beta)
    return _weighted_reduce(_smooth_l1_of(input - target, b), input, weight, reduction)


def weighted_smooth_l1(
    input: torch.Tensor,
    target: torch.Tensor,
    weights: torch.Tensor | None = None,
    *,
    beta: float = 1.0 / 9.0,
    code_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """OpenPCDet ``WeightedSmoothL1Loss``: code-wise and anchor-wise weighted smooth L1.

    ``loss[b, a, k] = weights[b, a] * smooth_l1(code_weights[k] * (input - target)[b, a, k]; beta)``.
    A NaN in ``target`` means "no regression target": it is replaced by the input, so
    that element has zero loss and zero gradient. Code weights scale the difference
    *before* the smooth L1 (as OpenPCDet does), so they also move the quadratic/linear
    transition; anchor weights scale the loss after it.

    Args:
        input: (B, A, K) floating tensor of encoded box predictions.
        target: (B, A, K) regression targets, same dtype; NaN entries are ignored.
        weights: (B, A) anchor weights (cast to ``input``'s dtype), or None for 1.
        beta: smooth L1 transition, finite and ``>= 0`` (OpenPCDet default 1/9); ``< 1e-5`` is L1.
        code_weights: (K,) per-code weights (cast to ``input``'s dtype and device), or None for 1.

    Returns:
        (B, A, K) loss, never reduced; same dtype and device as ``input``.

    Raises:
        ValueError: naming the argument whose type, dtype, rank or shape is wrong, or a bad ``beta``.

    Reference: Shi et al., OpenPCDet ``pcdet/utils/loss_utils.py`` (after fvcore's smooth_l1_loss).
    """
    check_tensor("input", input, ndim=3)
    check_tensor("target", target, ndim=3)
    check_same_shape("input", input, "target", target)
    check_same_dtype("input", input, "target", target)
    b = _check_beta(beta)
    if code_weights is not None:
        check_tensor("code_weights", code_weights, ndim=1)
        if code_weights.shape[0] != input.shape[-1]:
            raise ValueError(
                f"code_weights must have shape ({input.shape[-1]},) (one weight per code of input), "
                f"got {tuple(code_weights.shape)}"
            )
    if weights is not None:
        check_tensor("weights", weights, ndim=2)
        if tuple(weights.shape) != tuple(input.shape[:2]):
            raise ValueError(
                f"weights must have shape {tuple(input.shape[:2])} (the input's (B, A)), got {tuple(weights.shape)}"
            )
    # Detached, so the ignored element is a constant 0 difference: no gradient path through it at all.
    target = torch.where(torch.isnan(target), input.detach(), target)
    diff = input - target
    if code_weights is not None:
        diff = diff * code_weights.to(dtype=input.dtype, device=input.device)
    loss = _smooth_l1_of(diff, b)
    if weights is not None:
        w = weights.to(dtype=input.dtype).unsqueeze(-1)
        loss = torch.where(w == 0, torch.zeros_like(loss), loss) * w  # 0, not 0 * inf, where the loss overflowed
    return loss


def l1(
    input: torch.Tensor, target: torch.Tensor, *, weight: torch.Tensor | None = None, reduction: str = "none"
) -> torch.Tensor:
    """Absolute error ``|input - target|``.

    Args:
        input: (*) floating tensor.
        target: (*) tensor of the same shape and dtype.
        weight: a tensor of the input's dtype broadcastable to its shape, or ``None``.
        reduction: ``"none"``, ``"mean"`` over every element, or ``"sum"``.

    Returns:
        (*) loss per element for ``"none"``, else a 0-d tensor; the gradient at
        ``input == target`` is 0.

    Raises:
        ValueError: as :func:`smooth_l1` (without beta).

    Reference: torch.nn.L1Loss.
    """
    _check_pair(input, target)
    check_reduction(reduction)
    return _weighted_reduce((input - target).abs(), input, weight, reduction)


def mse(
    input: torch.Tensor, target: torch.Tensor, *, weight: torch.Tensor | None = None, reduction: str = "none"
) -> torch.Tensor:
    """Squared error ``(input - target)^2``.

    The difference is formed first (never ``x^2 - 2xy + y^2``, which cancels for
    near-equal inputs); where it exceeds the square root of the dtype's maximum the
    square is inf, the correctly rounded value.

    Args:
        input: (*) floating tensor.
        target: (*) tensor of the same shape and dtype.
        weight: a tensor of the input's dtype broadcastable to its shape, or ``None``.
        reduction: ``"none"``, ``"mean"`` over every element, or ``"sum"``.

    Returns:
        (*) loss per element for ``"none"``, else a 0-d tensor.

    Raises:
        ValueError: as :func:`smooth_l1` (without beta).

    Reference: torch.nn.MSELoss.
    """
    _check_pair(input, target)
    check_reduction(reduction)
    d = input - target
    return _weighted_reduce(d * d, input, weight, reduction)
