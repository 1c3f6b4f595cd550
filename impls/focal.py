"""Sigmoid binary cross-entropy and sigmoid focal losses (elementwise).

The formulations are chosen so that every term is non-negative before it is
added (no cancellation, hence a small *relative* error over the whole float
range, soft targets included), and so that autograd's gradient is the analytic
one everywhere, ``x == 0`` and saturated logits included.
"""

from __future__ import annotations

import torch

from impls._validate import (
    check_real,
    check_reduction,
    check_same_dtype,
    check_same_shape,
    check_tensor,
    check_values_in,
)

__all__ = ["sigmoid_bce", "sigmoid_focal", "weighted_sigmoid_focal", "ultralytics_focal_loss"]


def _softplus(x: torch.Tensor) -> torch.Tensor:
    # logaddexp(0, x) = log(1 + e^x), accurate for all x; its derivative is sigmoid(x)
    # exactly, where F.softplus switches to the identity above its threshold.
    return torch.logaddexp(torch.zeros_like(x), x)


def _check_pair(logits: torch.Tensor, targets: torch.Tensor) -> None:
    check_tensor("logits", logits)
    check_tensor("targets", targets)
    check_same_shape("logits", logits, "targets", targets)
    check_same_dtype("logits", logits, "targets", targets)
    check_values_in("targets", targets, 0.0, 1.0)


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    # An empty input's mean is nan (0/0), as torch's own losses give; its sum is 0.
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()


def _check_broadcastable(name: str, w: torch.Tensor, logits: torch.Tensor) -> None:
    check_tensor(name, w)
    check_same_dtype("logits", logits, name, w)
    try:
        shape = torch.broadcast_shapes(w.shape, logits.shape)
    except RuntimeError:
        shape = None
    if shape != logits.shape:
        raise ValueError(f"{name} must broadcast to the logits' shape {tuple(logits.shape)}, got {tuple(w.shape)}")


def sigmoid_bce(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    weight: torch.Tensor | None = None,
    pos_weight: torch.Tensor | None = None,
    reduction: str = "none",
) -> torch.Tensor:
    """Binary cross-entropy on logits, elementwise, soft targets allowed.

    ``BCE(x, z) = -w [pw z log(sigmoid(x)) + (1 - z) log(1 - sigmoid(x))]``
    computed as ``w [(1 - z) softplus(x) + pw z softplus(-x)]``: both terms are
    non-negative, so there is no cancellation (the TensorFlow form
    ``max(x, 0) - x z + log1p(exp(-|x|))`` loses ``ulp(x)`` when ``z`` is near 1).

    Args:
        logits: (*) float tensor of raw scores.
        targets: (*) tensor of the same shape and dtype, values in [0, 1].
        weight: a tensor broadcastable to the logits' shape, multiplying each
            element's loss (torch's ``weight``), or ``None``.
        pos_weight: a tensor broadcastable to the logits' shape (usually one value
            per class, on the last axis), multiplying the positive term, or ``None``.
        reduction: ``"none"`` (the default: the loss per element), ``"mean"`` over
            every element, or ``"sum"``.

    Returns:
        (*) tensor of the same dtype for ``"none"``, else a 0-d tensor.

    Reference: ``torch.nn.functional.binary_cross_entropy_with_logits``,
    ``tf.nn.sigmoid_cross_entropy_with_logits``; OpenPCDet ``loss_utils``.
    """
    _check_pair(logits, targets)
    check_reduction(reduction)
    positive = targets * _softplus(-logits)
    if pos_weight is not None:
        _check_broadcastable("pos_weight", pos_weight, logits)
        check_values_in("pos_weight", pos_weight, 0.0, float("inf"))
        positive = pos_weight * positive
    loss = (1 - targets) * _softplus(logits) + positive
    if weight is not None:
        _check_broadcastable("weight", weight, logits)
        loss = weight * loss
    return _reduce(loss, reduction)


def _log_one_minus_pt(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    # 1 - p_t = z (1 - p) + (1 - z) p, as a log-sum-exp of two log terms, so it is
    # accurate when it is tiny and its gradient never meets 0 ** (gamma - 1).
    log_p = torch.nn.functional.logsigmoid(logits)
    log_1mp = torch.nn.functional.logsigmoid(-logits)
    return torch.logaddexp(torch.log(targets) + log_1mp, torch.log1p(-targets) + log_p)


class _FocalWithLogits(torch.autograd.Function):
    """Focal loss with its analytic gradient in log space.

    Autograd through ``exp(gamma * log(1 - p_t)) * BCE`` forms ``BCE * gamma``
    before multiplying by ``d log(1 - p_t)/dx``, which is 0 for saturated logits:
    at ``|x| ~ 1e38`` in float32 that is ``inf * 0 = nan``. The closed form
    ``alpha_t [F (p - z) + gamma BCE (1 - 2z) exp((gamma-1) log(1-p_t) + log p + log(1-p))]``
    never forms the overflowing product.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor, gamma: float) -> torch.Tensor:  # type: ignore[override]
        bce = (1 - targets) * _softplus(logits) + targets * _softplus(-logits)
        log_omp = _log_one_minus_pt(logits, targets)
        factor = torch.exp(gamma * log_omp)
        ctx.save_for_backward(logits, targets, bce, log_omp, factor)
        ctx.gamma = gamma
        return factor * bce

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:  # type: ignore[override]
        logits, targets, bce, log_omp, factor = ctx.saved_tensors
        g = ctx.gamma
        log_p = torch.nn.functional.logsigmoid(logits)
        log_1mp = torch.nn.functional.logsigmoid(-logits)
        second = torch.exp((g - 1) * log_omp + log_p + log_1mp)
        # bce * second first: it is 0 where bce is near the float maximum.
        d = factor * (torch.sigmoid(logits) - targets) + (bce * second) * (g * (1 - 2 * targets))
        return grad * d, None, None


def sigmoid_focal(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    reduction: str = "none",
) -> torch.Tensor:
    """Sigmoid focal loss, elementwise, soft targets allowed.

    ``FL = alpha_t * (1 - p_t) ** gamma * BCE(x, z)`` with ``p = sigmoid(x)``,
    ``p_t = p z + (1 - p)(1 - z)`` and ``alpha_t = alpha z + (1 - alpha)(1 - z)``
    (``alpha=None``: ``alpha_t = 1``). The modulating factor is evaluated as
    ``exp(gamma * log(1 - p_t))`` so that its gradient stays finite for
    ``gamma`` in (0, 1) where ``1 - p_t`` underflows.

    Args:
        logits: (*) float tensor of raw scores.
        targets: (*) tensor of the same shape and dtype, values in [0, 1].
        alpha: weight of the positive class in [0, 1], or ``None`` for no weighting.
        gamma: focusing parameter, ``gamma >= 0``; ``gamma = 0`` gives (weighted) BCE.
        reduction: ``"none"`` (the default: the loss per element), ``"mean"`` over
            every element (torchvision's), or ``"sum"``.

    Returns:
        (*) tensor of the same dtype for ``"none"``, else a 0-d tensor.

    Reference: Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017.
    """
    _check_pair(logits, targets)
    check_reduction(reduction)
    if alpha is not None:
        check_real("alpha", alpha, low=0.0, high=1.0)
    check_real("gamma", gamma, low=0.0)
    if gamma == 0:
        loss = (1 - targets) * _softplus(logits) + targets * _softplus(-logits)
    elif targets.requires_grad:
        # Soft-label distillation differentiates through the targets too: plain autograd.
        bce = (1 - targets) * _softplus(logits) + targets * _softplus(-logits)
        loss = torch.exp(gamma * _log_one_minus_pt(logits, targets)) * bce
    else:
        loss = _FocalWithLogits.apply(logits, targets, float(gamma))
    if alpha is not None:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return _reduce(loss, reduction)


def weighted_sigmoid_focal(
    logits: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor,
    *,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
) -> torch.Tensor:
    """OpenPCDet's ``SigmoidFocalClassificationLoss``: focal loss times anchor weights.

    Args:
        logits: (B, A, C) float tensor of raw scores (or (A, C)).
        targets: (B, A, C) one-hot (or soft) targets, same dtype (or (A, C)).
        weights: (B, A) anchor-wise weights (or (A,)), same dtype, broadcast over C.
        alpha: as in :func:`sigmoid_focal`.
        gamma: as in :func:`sigmoid_focal`.

    Returns:
        (B, A, C) weighted loss, never reduced.

    Reference: OpenPCDet ``pcdet/utils/loss_utils.py``.
    """
    check_tensor("logits", logits, ndim=(2, 3))
    check_tensor("weights", weights, ndim=logits.dim() - 1)
    if tuple(weights.shape) != tuple(logits.shape[:-1]):
        raise ValueError(
            f"weights must have shape {tuple(logits.shape[:-1])} (logits without the class axis), "
            f"got {tuple(weights.shape)}"
        )
    check_same_dtype("logits", logits, "weights", weights)
    return sigmoid_focal(logits, targets, alpha=alpha, gamma=gamma) * weights.unsqueeze(-1)


def ultralytics_focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, *, alpha: float | None = 0.25, gamma: float = 1.5
) -> torch.Tensor:
    """The ultralytics ``FocalLoss`` reduction: elementwise focal, then ``mean(1).sum()``.

    Args:
        logits: (N, C, ...) float tensor.
        targets: same shape and dtype, values in [0, 1].
        alpha: ``None`` or ``alpha <= 0`` disables weighting, as in ultralytics.
        gamma: focusing parameter (ultralytics default 1.5).

    Returns:
        0-d tensor.
    """
    check_tensor("logits", logits, ndim=range(2, 8))
    a = None if alpha is None or alpha <= 0 else alpha
    return sigmoid_focal(logits, targets, alpha=a, gamma=gamma).mean(1).sum()
