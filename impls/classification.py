"""Softmax classification losses: cross-entropy (torch semantics), OpenPCDet's weighted
cross-entropy, softmax focal loss, and KL divergence (torch semantics)."""

from __future__ import annotations

import torch

from impls._validate import check_choice, check_real, check_tensor

__all__ = ["softmax_cross_entropy", "weighted_cross_entropy", "softmax_focal", "seed_softmax_focal", "kl_div"]

INT_DTYPES = (torch.int64, torch.int32, torch.int16, torch.uint8)


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.mean()


def softmax_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Cross-entropy on logits with ``torch.nn.functional.cross_entropy`` semantics.

    Class-index targets (N, *) (int): ``l_i = w[t_i] (-(1-eps) log p_i[t_i]) + eps/C sum_c w_c (-log p_ic)``
    on non-ignored entries; ``mean`` divides the first part by ``sum_i w[t_i]`` and the
    smoothing part by the same sum (by the count of non-ignored entries without weights);
    an all-ignored batch's mean is 0/0 = nan, as in torch.
    Probability targets (N, C, *) (float): ``l_i = -sum_c w_c q_ic log p_ic`` with
    ``q = (1 - eps) t + eps / C``; ``mean`` divides by the number of samples.

    Args:
        logits: (N, C) or (N, C, d1, ...) float tensor.
        target: (N,) / (N, d1, ...) class indices, or probabilities shaped like ``logits``.
        weight: (C,) class weights or None.
        ignore_index: index target value excluded from loss and normaliser.
        label_smoothing: eps in [0, 1].
        reduction: "none" | "mean" | "sum".

    Returns:
        (N, d1, ...) for "none", else a 0-d tensor.

    Reference: torch.nn.functional.cross_entropy; Szegedy et al. 2016 (label smoothing).
    """
    check_tensor("logits", logits, ndim=range(2, 9))
    check_choice("reduction", reduction, ("none", "mean", "sum"))
    eps = check_real("label_smoothing", label_smoothing, low=0.0, high=1.0)
    n_cls = logits.shape[1]
    if weight is not None:
        check_tensor("weight", weight, ndim=1)
        if weight.shape[0] != n_cls:
            raise ValueError(f"weight must have shape ({n_cls},) (one per class), got {tuple(weight.shape)}")
    logp = torch.log_softmax(logits, dim=1)
    cshape = [1, n_cls] + [1] * (logits.dim() - 2)
    w = None if weight is None else weight.to(logits.dtype).view(cshape)
    if target.is_floating_point():
        if target.shape != logits.shape:
            raise ValueError(f"probability target must have the logits' shape {tuple(logits.shape)}, got {tuple(target.shape)}")
        q = target * (1 - eps) + eps / n_cls if eps > 0 else target
        per = -(q * logp if w is None else q * logp * w).sum(1)
        return _reduce(per, reduction)
    check_tensor("target", target, floating=False, dtypes=INT_DTYPES)
    want = (logits.shape[0],) + tuple(logits.shape[2:])
    if tuple(target.shape) != want:
        raise ValueError(f"class-index target must have shape {want} (logits without the class axis), got {tuple(target.shape)}")
    valid = target != ignore_index
    t = torch.where(valid, target, torch.zeros_like(target)).long()
    if bool(((t < 0) | (t >= n_cls)).any()):
        bad = t[(t < 0) | (t >= n_cls)][0].item()
        raise ValueError(f"target must hold class indices in [0, {n_cls - 1}] or ignore_index={ignore_index}, found {bad}")
    nll = -logp.gather(1, t.unsqueeze(1)).squeeze(1)
    wt = torch.ones_like(nll) if weight is None else weight.to(logits.dtype)[t]
    wt = wt * valid
    nll = nll * wt
    smooth = torch.zeros_like(nll)
    if eps > 0:
        smooth = -(logp if w is None else logp * w).sum(1) * valid
    if reduction == "none":
        return (1 - eps) * nll + (eps / n_cls) * smooth
    if reduction == "sum":
        return (1 - eps) * nll.sum() + (eps / n_cls) * smooth.sum()
    denom = wt.sum()
    return (1 - eps) * nll.sum() / denom + (eps / n_cls) * smooth.sum() / denom


def weighted_cross_entropy(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """OpenPCDet ``WeightedCrossEntropyLoss``: CE against ``argmax`` of a one-hot target, times anchor weights.

    Args:
        logits: (B, A, C) float tensor.
        target: (B, A, C) one-hot (argmax taken; ties go to the lowest class).
        weights: (B, A) anchor weights.

    Returns:
        (B, A) loss, never reduced.

    Reference: OpenPCDet ``pcdet/utils/loss_utils.py``.
    """
    check_tensor("logits", logits, ndim=3)
    check_tensor("target", target, ndim=3)
    check_tensor("weights", weights, ndim=2)
    if target.shape != logits.shape:
        raise ValueError(f"target must have the logits' shape {tuple(logits.shape)}, got {tuple(target.shape)}")
    if tuple(weights.shape) != tuple(logits.shape[:2]):
        raise ValueError(f"weights must have shape {tuple(logits.shape[:2])}, got {tuple(weights.shape)}")
    idx = target.argmax(dim=-1)
    nll = -torch.log_softmax(logits, dim=-1).gather(-1, idx.unsqueeze(-1)).squeeze(-1)
    return nll * weights


def softmax_focal(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    gamma: float = 2.0,
    alpha: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Softmax focal loss: per sample ``alpha[t] (1 - p_t)^gamma CE``, then reduced.

    ``p_t`` is the softmax probability of the target class; ``(1 - p_t)^gamma`` is
    ``exp(gamma * (logsumexp(other classes) - logsumexp(all)))``: accurate and with a
    finite gradient for gamma in (0, 1) where ``p_t`` rounds to 1.

    Args:
        logits: (N, C) float tensor.
        target: (N,) int class indices.
        gamma: focusing parameter, >= 0; 0 gives (alpha-weighted) CE.
        alpha: (C,) per-class weights or None.
        reduction: "none" | "mean" (over samples) | "sum".

    Returns:
        (N,) for "none", else a 0-d tensor.

    Reference: Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017.
    """
    check_tensor("logits", logits, ndim=2)
    check_tensor("target", target, floating=False, dtypes=INT_DTYPES, ndim=1)
    check_real("gamma", gamma, low=0.0)
    check_choice("reduction", reduction, ("none", "mean", "sum"))
    if target.shape[0] != logits.shape[0]:
        raise ValueError(f"target must have shape ({logits.shape[0]},), got {tuple(target.shape)}")
    n_cls = logits.shape[1]
    if target.numel() and bool(((target < 0) | (target >= n_cls)).any()):
        raise ValueError(f"target must hold class indices in [0, {n_cls - 1}]")
    t = target.long().unsqueeze(1)
    lse = torch.logsumexp(logits, dim=1)
    log_pt = logits.gather(1, t).squeeze(1) - lse
    ce = -log_pt
    if gamma == 0:
        loss = ce
    else:
        # log(1 - p_t) as the log-sum-exp of the *other* classes: exact where p_t rounds
        # to 1, and its gradient (softmax weights) is finite, so no 0 ** (gamma - 1).
        others = logits.masked_fill(torch.zeros_like(logits, dtype=torch.bool).scatter(1, t, True), float("-inf"))
        log_1m_pt = torch.logsumexp(others, dim=1) - lse
        loss = torch.exp(gamma * log_1m_pt) * ce
    if alpha is not None:
        check_tensor("alpha", alpha, ndim=1)
        if alpha.shape[0] != n_cls:
            raise ValueError(f"alpha must have shape ({n_cls},) (one weight per class), got {tuple(alpha.shape)}")
        loss = alpha.to(logits.dtype)[target.long()] * loss
    return _reduce(loss, reduction)


def seed_softmax_focal(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    gamma: float = 2.0,
    alpha: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Seed 002's FocalLoss, kept as a named *variant*: the focal factor is applied to the mean CE.

    ``ce = mean CE; p = exp(-ce); loss = (1 - p)^gamma ce``: one factor for the whole batch,
    so easy examples are not down-weighted individually. Not the focal loss.
    """
    ce = torch.nn.functional.cross_entropy(logits, target.long(), weight=alpha, reduction="mean")
    p = torch.exp(-ce)
    loss = (1 - p) ** gamma * ce
    return loss if reduction != "none" else loss.expand(logits.shape[0])


def kl_div(
    input: torch.Tensor,
    target: torch.Tensor,
    *,
    reduction: str = "mean",
    log_target: bool = False,
) -> torch.Tensor:
    """KL divergence with ``torch.nn.functional.kl_div`` semantics (input in log space).

    Pointwise ``t (log t - x)`` with ``0 log 0 = 0`` (value and gradient), or
    ``e^t (t - x)`` when ``log_target``. ``mean`` divides by the number of
    elements, ``batchmean`` by the batch size (the mathematically right KL).

    Args:
        input: (N, *) log-probabilities.
        target: same shape; probabilities, or log-probabilities if ``log_target``.
        reduction: "none" | "mean" | "sum" | "batchmean".
        log_target: whether ``target`` is in log space.

    Returns:
        Same shape as ``input`` for "none", else a 0-d tensor.

    Reference: torch.nn.functional.kl_div; Kullback & Leibler 1951.
    """
    check_tensor("input", input)
    check_tensor("target", target)
    check_choice("reduction", reduction, ("none", "mean", "sum", "batchmean"))
    if target.shape != input.shape:
        raise ValueError(f"target must have the input's shape {tuple(input.shape)}, got {tuple(target.shape)}")
    if log_target:
        point = torch.exp(target) * (target - input)
    else:
        point = torch.xlogy(target, target) - target * input
    if reduction == "none":
        return point
    if reduction == "sum":
        return point.sum()
    if reduction == "batchmean":
        return point.sum() / (input.shape[0] if input.dim() else 1)
    return point.mean()
