"""Softmax classification losses: cross-entropy (torch semantics), OpenPCDet's weighted
cross-entropy, the softmax focal loss (and seed 002's variant of it), and KL divergence
(torch semantics).

Empty inputs follow torch: ``"none"`` gives an empty tensor, ``"sum"`` gives 0 and
``"mean"`` gives nan (0 / 0), for cross-entropy, focal loss and KL divergence alike.
"""

from __future__ import annotations

import math

import torch

from impls._validate import check_choice, check_real, check_reduction, check_tensor

__all__ = ["kl_div", "seed_softmax_focal", "softmax_cross_entropy", "softmax_focal", "weighted_cross_entropy"]

INT_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)
KL_REDUCTIONS = ("none", "mean", "sum", "batchmean")


def _check_class_indices(name: str, t: torch.Tensor, n_cls: int, ignore_index: int | None = None) -> None:
    """Out-of-range indices would gather garbage (or crash on CUDA); name the first bad one."""
    valid = t != ignore_index if ignore_index is not None else torch.ones_like(t, dtype=torch.bool)
    bad = valid & ((t < 0) | (t >= n_cls))
    if bool(bad.any()):
        found = t[bad].flatten()[0].item()
        extra = f" or ignore_index={ignore_index}" if ignore_index is not None else ""
        raise ValueError(f"{name} must hold class indices in [0, {n_cls - 1}]{extra}, found {found}")


def softmax_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Cross-entropy on logits with the semantics of ``torch.nn.functional.cross_entropy``.

    Write ``lp = log_softmax(logits)`` over the class axis, ``eps = label_smoothing``,
    ``C`` the number of classes and ``w`` the class weights (1 when None).

    Class-index targets (integer dtype): per non-ignored entry
    ``l_i = (1 - eps) w[t_i] (-lp_i[t_i]) + (eps / C) sum_c w_c (-lp_ic)``; ignored entries
    give 0. ``"mean"`` divides the sum by ``sum_i w[t_i]`` over the non-ignored entries
    (their count without weights), the smoothing term included, as torch does. An
    all-ignored batch (or an empty one, or one whose target weights sum to 0) has a
    ``"mean"`` of 0 / 0 = nan, as in torch; ``"sum"`` is 0 and ``"none"`` all zeros.

    Probability targets (floating dtype, the logits' shape): with
    ``q = (1 - eps) t + eps / C``, ``l_i = -sum_c w_c q_ic lp_ic``; ``ignore_index`` does not
    apply and ``"mean"`` divides by the number of entries (N times the extra dims), not by
    a weight sum. A one-hot ``t`` gives the same values as the index target.

    Args:
        logits: (N, C) or (N, C, d1, ..., dk) floating tensor.
        target: (N,) or (N, d1, ..., dk) integer class indices in [0, C) or ``ignore_index``;
            or a floating tensor of probabilities shaped like ``logits`` (cast to its dtype).
        weight: (C,) class weights or None.
        ignore_index: index-target value that contributes neither to the loss nor to the normaliser.
        label_smoothing: ``eps`` in [0, 1], mixing the target with the uniform distribution.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.

    Returns:
        (N,) or (N, d1, ..., dk) for ``"none"``, else a 0-d tensor; the logits' dtype and device.

    Raises:
        ValueError: naming the argument with a bad type, dtype, rank, shape, class index or value.

    Reference: torch.nn.functional.cross_entropy; Szegedy et al., "Rethinking the Inception
    Architecture for Computer Vision", CVPR 2016 (label smoothing).
    """
    check_tensor("logits", logits, ndim=range(2, 10))
    check_reduction(reduction)
    eps = check_real("label_smoothing", label_smoothing, low=0.0, high=1.0)
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise ValueError(f"ignore_index must be an int, got {type(ignore_index).__name__}")
    n_cls = logits.shape[1]
    if weight is not None:
        check_tensor("weight", weight, ndim=1)
        if weight.shape[0] != n_cls:
            raise ValueError(f"weight must have shape ({n_cls},) (one per class of logits), got {tuple(weight.shape)}")
    if not isinstance(target, torch.Tensor):
        raise ValueError(f"target must be a torch.Tensor, got {type(target).__name__}")
    logp = torch.log_softmax(logits, dim=1)
    class_view = [1, n_cls] + [1] * (logits.dim() - 2)
    w = None if weight is None else weight.to(logits.dtype).view(class_view)

    if target.is_floating_point():
        if target.shape != logits.shape:
            raise ValueError(
                f"target of probabilities must have the logits' shape {tuple(logits.shape)}, got {tuple(target.shape)}"
            )
        q = target.to(logits.dtype)
        if eps > 0:
            q = (1 - eps) * q + eps / n_cls
        wq = q if w is None else q * w
        per = -(wq * logp).sum(dim=1)
        if reduction == "none":
            return per
        if reduction == "sum":
            return per.sum()
        return per.mean()

    check_tensor("target", target, dtypes=INT_DTYPES)
    want = (logits.shape[0], *logits.shape[2:])
    if tuple(target.shape) != want:
        raise ValueError(
            f"target of class indices must have shape {want} (the logits' shape without the class axis), "
            f"got {tuple(target.shape)}"
        )
    _check_class_indices("target", target, n_cls, ignore_index)
    valid = target != ignore_index
    safe = torch.where(valid, target, torch.zeros_like(target)).long()
    # Ignored entries' logits are replaced before the log-softmax is read: a non-finite
    # ignored row must not turn into inf * 0 = nan, in the value or in the gradient.
    lp = torch.where(valid.unsqueeze(1), logp, torch.zeros_like(logp))
    nll = -lp.gather(1, safe.unsqueeze(1)).squeeze(1)
    w_t = valid.to(logits.dtype)
    if weight is not None:
        w_t = w_t * weight.to(logits.dtype)[safe]
    nll = nll * w_t
    if eps > 0:
        wlp = lp if w is None else lp * w
        per = (1 - eps) * nll + (eps / n_cls) * -wlp.sum(dim=1)
    else:
        per = nll
    if reduction == "none":
        return per
    if reduction == "sum":
        return per.sum()
    return per.sum() / w_t.sum()


def weighted_cross_entropy(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """OpenPCDet ``WeightedCrossEntropyLoss``: per-anchor cross-entropy against the argmax of a one-hot target.

    ``loss[b, a] = weights[b, a] * -log_softmax(logits[b, a])[argmax_c target[b, a, c]]``.
    Only the argmax of ``target`` matters (ties go to the lowest class, as ``torch.argmax``),
    so a soft target is read as its most likely class, exactly as OpenPCDet does.

    Args:
        logits: (B, A, C) floating tensor, C >= 1.
        target: (B, A, C) one-hot (or any floating/integer) class scores.
        weights: (B, A) anchor weights, cast to the logits' dtype.

    Returns:
        (B, A) loss, never reduced; the logits' dtype and device.

    Raises:
        ValueError: naming the argument with a bad type, rank or shape.

    Reference: Shi et al., OpenPCDet ``pcdet/utils/loss_utils.py``.
    """
    check_tensor("logits", logits, ndim=3)
    check_tensor("target", target, floating=False, ndim=3)
    check_tensor("weights", weights, ndim=2)
    if target.shape != logits.shape:
        raise ValueError(f"target must have the logits' shape {tuple(logits.shape)}, got {tuple(target.shape)}")
    if tuple(weights.shape) != tuple(logits.shape[:2]):
        raise ValueError(f"weights must have shape {tuple(logits.shape[:2])} (the logits' (B, A)), got {tuple(weights.shape)}")
    if logits.shape[-1] == 0:
        raise ValueError(f"logits must have at least one class, got shape {tuple(logits.shape)}")
    idx = target.argmax(dim=-1, keepdim=True)
    nll = -torch.log_softmax(logits, dim=-1).gather(-1, idx).squeeze(-1)
    return nll * weights.to(logits.dtype)


def softmax_focal(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    gamma: float = 2.0,
    alpha: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Softmax focal loss: per sample ``alpha[t] (1 - p_t)^gamma (-log p_t)``, then reduced.

    ``p_t`` is the softmax probability of the target class. With
    ``d = logsumexp(logits of the other classes) - logit of the target = log((1 - p_t) / p_t)``,
    ``-log p_t = log(1 + e^d)`` and ``log(1 - p_t) = -log(1 + e^-d)``, and the factor is
    ``exp(gamma * log(1 - p_t))``. This is accurate in relative terms where ``p_t`` rounds
    to 1 (no ``1 - p`` cancellation, no ``log(1 + tiny)`` rounding) and has a finite
    gradient for every ``gamma >= 0``, including ``0 < gamma < 1`` where a plain power
    would give ``0 ** (gamma - 1) * 0 = nan``. ``gamma = 0`` is exactly the
    (alpha-weighted) cross-entropy. ``"mean"`` is over samples (not weighted by alpha,
    not over N x C); an empty batch's mean is nan.

    Args:
        logits: (N, C) floating tensor, C >= 1 (with C = 1, p_t = 1 and the loss is 0).
        target: (N,) integer class indices in [0, C).
        gamma: focusing parameter, finite and >= 0.
        alpha: (C,) per-class weights (cast to the logits' dtype), or None for 1.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.

    Returns:
        (N,) for ``"none"``, else a 0-d tensor; the logits' dtype and device.

    Raises:
        ValueError: naming the argument with a bad type, dtype, shape, class index or value.

    Reference: Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017.
    """
    check_tensor("logits", logits, ndim=2)
    check_tensor("target", target, dtypes=INT_DTYPES, ndim=1)
    g = check_real("gamma", gamma, low=0.0, high=math.inf, high_open=True)
    check_reduction(reduction)
    n, n_cls = logits.shape
    if target.shape[0] != n:
        raise ValueError(f"target must have shape ({n},) (one class index per row of logits), got {tuple(target.shape)}")
    if n_cls == 0:
        raise ValueError(f"logits must have at least one class, got shape {tuple(logits.shape)}")
    _check_class_indices("target", target, n_cls)
    if alpha is not None:
        check_tensor("alpha", alpha, ndim=1)
        if alpha.shape[0] != n_cls:
            raise ValueError(f"alpha must have shape ({n_cls},) (one weight per class of logits), got {tuple(alpha.shape)}")
    t = target.long().unsqueeze(1)
    if n_cls == 1:
        # p_t is identically 1, so the loss is the constant 0 (the logsumexp over the
        # other classes below would be over nothing, with a nan gradient).
        loss = logits[:, 0] * 0
    else:
        is_target = torch.zeros_like(logits, dtype=torch.bool).scatter(1, t, True)
        others = logits.masked_fill(is_target, float("-inf"))
        # d = log((1 - p_t) / p_t): -log p_t = log(1 + e^d) and log(1 - p_t) = -log(1 + e^-d),
        # both by logaddexp, accurate on either side of p_t = 1/2 and with exact gradients.
        d = torch.logsumexp(others, dim=1) - logits.gather(1, t).squeeze(1)
        zero = torch.zeros_like(d)
        ce = torch.logaddexp(d, zero)
        loss = ce if g == 0 else torch.exp(-g * torch.logaddexp(-d, zero)) * ce
    if alpha is not None:
        loss = alpha.to(logits.dtype)[target.long()] * loss
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.mean()


def seed_softmax_focal(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    gamma: float = 2.0,
    alpha: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Seed 002's ``FocalLoss``, kept as a named *variant*: it is **not** the focal loss.

    The seed computes the batch-mean cross-entropy first (``alpha`` as torch class
    weights, so a weighted mean), then ``(1 - exp(-ce))^gamma * ce``: one focal factor
    for the whole batch, so easy samples are not down-weighted one by one. Every
    reduction returns that one number (``"none"`` repeats it per sample). It differs
    from :func:`softmax_focal` whenever gamma > 0 and the samples' p_t differ; an empty
    batch gives nan, and the plain power has a nan gradient for 0 < gamma < 1 at ce = 0.

    Args:
        logits: (N, C) floating tensor.
        target: (N,) integer class indices.
        gamma: focusing parameter.
        alpha: (C,) class weights or None.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.

    Returns:
        (N,) (the same value repeated) for ``"none"``, else a 0-d tensor.

    Reference: seed 002 (BEV losses note), ``FocalLoss.forward``.
    """
    check_reduction(reduction)
    ce = softmax_cross_entropy(logits, target, weight=alpha, reduction="mean")
    p = torch.exp(-ce)
    loss = (1 - p) ** gamma * ce
    if reduction == "none":
        return loss.expand(logits.shape[0])
    # "sum" and "mean" alike: the seed returns ``loss.mean()`` of an already reduced scalar.
    return loss


def kl_div(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    reduction: str = "mean",
    log_target: bool = False,
) -> torch.Tensor:
    """KL divergence with the semantics of ``torch.nn.functional.kl_div`` (input in log space).

    Pointwise ``t (log t - x)`` with ``0 log 0 = 0`` or, when ``log_target``,
    ``exp(t) (t - x)``. A zero target probability (``t = 0``, or ``t = -inf`` in log space)
    contributes exactly 0 whatever ``x`` is (even ``x = -inf``), and its gradient with
    respect to both ``input`` and ``target`` is 0. torch agrees on the value and on the
    input's gradient for finite ``x`` and ``t = 0``; it returns nan for ``t = -inf`` in log
    space and for ``x = -inf``, and a nan target gradient at ``t = 0`` (where the one-sided
    derivative ``log t + 1 - x`` diverges): those are the deliberate deviations.

    Reductions: ``"sum"``; ``"batchmean"`` divides the sum by ``input.shape[0]`` (the
    mathematical KL per sample when the class axis is the last); ``"mean"`` divides by
    the number of elements (torch's default, *not* the KL); ``"none"`` is pointwise.
    Empty input: ``"mean"`` and ``"batchmean"`` give nan (0 / 0), ``"sum"`` gives 0.

    Args:
        input: (N, *) log-probabilities (floating).
        target: same shape and dtype; probabilities, or log-probabilities if ``log_target``.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"`` | ``"batchmean"``.
        log_target: whether ``target`` is given in log space.

    Returns:
        ``input``'s shape for ``"none"``, else a 0-d tensor; the input's dtype and device.

    Raises:
        ValueError: naming the argument with a bad type, dtype, shape or value.

    Reference: torch.nn.functional.kl_div; Kullback and Leibler, "On Information and
    Sufficiency", Ann. Math. Statist. 1951.
    """
    check_tensor("input", input)
    check_tensor("target", target)
    check_choice("reduction", reduction, KL_REDUCTIONS)
    if not isinstance(log_target, bool):
        raise ValueError(f"log_target must be a bool, got {type(log_target).__name__}")
    if target.shape != input.shape:
        raise ValueError(f"target must have the input's shape {tuple(input.shape)}, got {tuple(target.shape)}")
    if target.dtype != input.dtype:
        raise ValueError(f"target must have the input's dtype {input.dtype}, got {target.dtype}")
    # Where the target probability is 0 a finite stand-in enters the formula and torch.where
    # discards it, so neither the value nor either gradient ever forms 0 * inf or 0 / 0.
    if log_target:
        zero = torch.isneginf(target)
        t_safe = torch.where(zero, torch.zeros_like(target), target)
        x_safe = torch.where(zero, torch.zeros_like(input), input)
        point = torch.where(zero, torch.zeros_like(input), torch.exp(t_safe) * (t_safe - x_safe))
    else:
        zero = target == 0
        t_safe = torch.where(zero, torch.ones_like(target), target)
        x_safe = torch.where(zero, torch.zeros_like(input), input)
        point = torch.where(zero, torch.zeros_like(input), t_safe * (torch.log(t_safe) - x_safe))
    if reduction == "none":
        return point
    if reduction == "sum":
        return point.sum()
    if reduction == "batchmean":
        return point.sum() / input.shape[0] if input.dim() > 0 else point.sum()
    return point.mean()
