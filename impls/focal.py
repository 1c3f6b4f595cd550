"""Sigmoid binary cross-entropy and sigmoid focal losses (elementwise).

The formulations are chosen so that every term is non-negative before it is
added (no cancellation, hence a small *relative* error over the whole float
range, soft targets included), and so that autograd's gradient is the analytic
one everywhere, ``x == 0`` and saturated logits included.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
from torch.autograd.function import once_differentiable

from impls._validate import (
    check_real,
    check_reduction,
    check_same_dtype,
    check_same_shape,
    check_tensor,
    check_values_in,
)

__all__ = ["sigmoid_bce", "sigmoid_focal", "sigmoid_focal_compiled", "weighted_sigmoid_focal", "ultralytics_focal_loss"]


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
    # The weights multiply the coefficients, not the softplus terms: a softplus is finite
    # for every finite logit, but pos_weight * softplus(-x) can overflow where the weighted
    # loss does not (weight 0 must give 0, not 0 * inf = nan).
    c_pos, c_neg = targets, 1 - targets
    if pos_weight is not None:
        _check_broadcastable("pos_weight", pos_weight, logits)
        check_values_in("pos_weight", pos_weight, 0.0, float("inf"))
        c_pos = pos_weight * c_pos
    if weight is not None:
        _check_broadcastable("weight", weight, logits)
        c_pos, c_neg = weight * c_pos, weight * c_neg
    loss = c_neg * _softplus(logits) + c_pos * _softplus(-logits)
    return _reduce(loss, reduction)


def _log_one_minus_pt(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    # 1 - p_t = z (1 - p) + (1 - z) p, as a log-sum-exp of two log terms, so it is
    # accurate when it is tiny and its gradient never meets 0 ** (gamma - 1).
    log_p = torch.nn.functional.logsigmoid(logits)
    log_1mp = torch.nn.functional.logsigmoid(-logits)
    return torch.logaddexp(torch.log(targets) + log_1mp, torch.log1p(-targets) + log_p)


def _focal_terms(
    logits: torch.Tensor, targets: torch.Tensor, gamma: float, gamma_low: float, alpha: float | None, need_grad: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The focal loss (times ``alpha_t``) and, when asked, its derivative in the logits.

    With ``e = exp(-|x|)``, ``u = 1 - z`` where ``x >= 0`` else ``z``:

    - ``BCE = u |x| + log1p(e)`` (both terms non-negative: no cancellation);
    - ``1 - p_t = (u + (1 - u) e) / (1 + e)``: non-negative terms again, so it keeps its
      relative accuracy when it is tiny, and the modulating factor is a plain ``pow``
      (``exp(gamma * log(1 - p_t))`` rounds ``gamma log(1 - p_t)``, which costs
      ``gamma |log(1 - p_t)|`` ulp: ~300 where ``1 - p_t`` is tiny);
    - ``dFL/dx = alpha_t (1 - p_t)^gamma [(p - z) + gamma (1 - 2z) BCE r]`` with
      ``r = p (1 - p) / (1 - p_t) = e / ((u + (1 - u) e)(1 + e))`` in [0, 1]. Written so,
      ``(1 - p_t)^(gamma - 1)`` is never formed (it overflows for ``gamma < 1`` where
      ``1 - p_t`` underflows), and ``BCE r`` is formed before ``gamma (1 - 2z)``: where
      ``BCE`` is near the float maximum (``|x| ~ 3e38``), ``r`` is 0 and the product stays
      finite. ``r`` is 0/0 only where ``e`` and ``u`` both vanish; its limit there is 1.

    Eager, every line is a pass over memory, so the count is kept low (about 18 passes for
    the loss, 11 more for the derivative, against ~40 for autograd through torchvision's
    formula) and in-place where a buffer is free. Under ``torch.compile`` the whole body
    fuses into one kernel that reads ``x, z`` and writes the loss and its derivative.
    """
    a = logits.abs()
    e = a.neg().exp_()
    omz = 1 - targets
    # The sign bit decides, not x >= 0, so that -0.0 takes the same branch as copysign below.
    # Inductor's CPU backend has no vector signbit / isnan (it falls back to a scalar loop
    # per element, which halved the fused kernel's speed); compiled, the same predicates are
    # spelled with vectorised ops: copysign(1, x) < 0 is signbit(x), and m == 0 is exactly
    # where r below is 0/0 (m >= e: r is never inf, and NaN logits make d NaN either way).
    compiling = torch.compiler.is_compiling()
    neg = torch.ones_like(logits).copysign_(logits) < 0 if compiling else torch.signbit(logits)
    u = torch.where(neg, targets, omz)
    bce = torch.log1p(e).addcmul_(u, a)
    m = (1 - u).mul_(e).add_(u)  # (1 - p_t)(1 + e)
    ope = e + 1
    w = torch.div(m, ope)  # 1 - p_t
    if gamma_low:
        # torch rounds a scalar exponent to the tensor's dtype: w ** fl(gamma) is off by
        # (gamma - fl(gamma)) |log w| relative, ~60 ulp where w is tiny in float32.
        # w ** gamma_low = 1 + gamma_low log w (|gamma_low log w| < 1e-5: the dropped
        # square is far below an ulp) puts it back; log 0 = -inf is clamped so that 0 stays 0.
        factor = w.pow(gamma)
        factor.addcmul_(factor, w.log_().clamp_min_(-1e4), value=gamma_low)
    else:
        factor = w.pow_(gamma)
    if alpha is not None:
        # alpha z + (1 - alpha)(1 - z): two non-negative terms, accurate for any alpha.
        factor.mul_(torch.add(targets * alpha, omz, alpha=1 - alpha))
    loss = factor * bce
    if not need_grad:
        return loss, None
    # In a = |x| and u the loss is G(a, u); dL/dx = sign(x) alpha_t dG/da, with
    # dG/da = (1 - p_t)^gamma [(u - s) + gamma (2u - 1) BCE r] and s = sigmoid(-|x|):
    # sign(x) (u - s) is p - z without its cancellation at saturated logits.
    d = torch.sub(u, torch.div(e, ope))
    if gamma != 0:
        if compiling:
            r = torch.where(m == 0, 1.0, e / (m * ope)).mul_(bce)
        else:
            r = e.div_(m.mul_(ope)).nan_to_num_(nan=1.0).mul_(bce)
        d.addcmul_(r, u.mul_(2 * gamma).sub_(gamma))
    return loss, d.mul_(factor.copysign_(logits))  # factor >= 0: copysign gives factor sign(x)


def _float32_residual(gamma: float, dtype: torch.dtype) -> float:
    """``gamma - fl32(gamma)`` for float32 tensors (see :func:`_focal_terms`), else 0."""
    if dtype != torch.float32 or gamma > 3.4028234663852886e38:
        # Beyond float32's range torch's exponent is inf, and so is fl32(gamma): w ** inf
        # is already what w ** gamma rounds to (0 for w < 1, 1 at w = 1).
        return 0.0
    # Round the significand to float32's 24 bits (round() is half-to-even on the exact
    # m * 2**24, as IEEE rounding is). Plain math, not struct.pack: torch.compile traces
    # this function, and its struct polyfill recursed without end.
    if gamma < 2.0**-126:  # float32's subnormals: a fixed step of 2**-149
        return gamma - round(gamma * 2.0**149) * 2.0**-149
    m, exp = math.frexp(gamma)
    return gamma - math.ldexp(round(m * 2**24), exp - 24)


class _FocalWithLogits(torch.autograd.Function):
    """Focal loss whose derivative is formed in the forward (:func:`_focal_terms`).

    Autograd through ``exp(gamma * log(1 - p_t)) * BCE`` forms ``BCE * gamma`` before
    multiplying by ``d log(1 - p_t)/dx``, which is 0 for saturated logits: at
    ``|x| ~ 1e38`` in float32 that is ``inf * 0 = nan``; the closed form never forms the
    overflowing product. Forming it in the forward shares the forward's intermediates and
    keeps one tensor for the backward instead of five.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor, gamma: float, gamma_low: float, alpha: float | None) -> torch.Tensor:  # type: ignore[override]
        loss, d = _focal_terms(logits, targets, gamma, gamma_low, alpha, need_grad=True)
        ctx.save_for_backward(d)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None, None, None]:  # type: ignore[override]
        (d,) = ctx.saved_tensors
        return grad * d, None, None, None, None


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
    (``alpha=None``: ``alpha_t = 1``). ``1 - p_t`` is formed from non-negative terms
    (accurate where it is tiny) and the derivative in the logits is formed in closed
    form in the forward (:func:`_focal_terms`), so that the gradient stays finite for
    ``gamma`` in (0, 1) where ``1 - p_t`` underflows and at saturated logits. When the
    targets require grad (soft-label distillation) plain autograd runs through
    ``exp(gamma * log(1 - p_t)) * BCE`` instead.

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
    if targets.requires_grad:
        # Soft-label distillation differentiates through the targets too: plain autograd.
        loss = (1 - targets) * _softplus(logits) + targets * _softplus(-logits)
        if gamma != 0:
            loss = torch.exp(gamma * _log_one_minus_pt(logits, targets)) * loss
        if alpha is not None:
            loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    else:
        g = float(gamma)
        a = None if alpha is None else float(alpha)
        if torch.is_grad_enabled() and logits.requires_grad:
            loss = _FocalWithLogits.apply(logits, targets, g, _float32_residual(g, logits.dtype), a)
        else:
            loss = _focal_terms(logits, targets, g, _float32_residual(g, logits.dtype), a, need_grad=False)[0]
    return _reduce(loss, reduction)


@functools.cache
def _compiled_sigmoid_focal() -> Callable[..., torch.Tensor]:
    return torch.compile(sigmoid_focal)


def sigmoid_focal_compiled(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    reduction: str = "none",
) -> torch.Tensor:
    """:func:`sigmoid_focal` through ``torch.compile``: the same values, checks and gradient.

    The validation stays eager (its ``.item()`` is a graph break, and costs one fused
    min/max pass over the targets); the loss and its derivative compile into one kernel
    that reads the logits and targets once, and the backward is one multiply. The first
    call for a shape, dtype, device or value of ``alpha`` / ``gamma`` compiles (seconds);
    a second shape recompiles with dynamic shapes. Equivalent to
    ``torch.compile(sigmoid_focal)(logits, targets, ...)`` with the compiled function
    kept for the process.
    """
    return _compiled_sigmoid_focal()(logits, targets, alpha=alpha, gamma=gamma, reduction=reduction)


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
