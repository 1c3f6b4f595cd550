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
    give 0 (whatever their logits, with a zero gradient). ``"mean"`` divides the sum by
    ``sum_i w[t_i]`` over the non-ignored entries (their count without weights), the
    smoothing term included, as torch does. An all-ignored batch (or an empty one, or one
    whose target weights sum to 0) has an undefined ``"mean"``: nan, as in torch (even when
    smoothing makes the numerator positive); ``"sum"`` is then 0 and ``"none"`` all zeros.

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
        per = -(wq * torch.log_softmax(logits, dim=1)).sum(dim=1)
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
    # Ignored entries' logits are replaced before the log-softmax reads them, and its output
    # there once more: a non-finite ignored row must not turn into inf * 0 = nan, in the
    # value or in the gradient (which is exactly 0 there).
    keep = valid.unsqueeze(1)
    logp = torch.log_softmax(torch.where(keep, logits, torch.zeros_like(logits)), dim=1)
    lp = torch.where(keep, logp, torch.zeros_like(logp))
    nll = -lp.gather(1, safe.unsqueeze(1)).squeeze(1)
    w_t = valid.to(logits.dtype)
    if weight is not None:
        w_t = w_t * weight.to(logits.dtype)[safe]
    nll = torch.where(w_t == 0, torch.zeros_like(nll), nll) * w_t  # 0, not 0 * inf, where the nll overflowed
    if eps > 0:
        wlp = lp if w is None else lp * w
        per = (1 - eps) * nll + (eps / n_cls) * -wlp.sum(dim=1)
    else:
        per = nll
    if reduction == "none":
        return per
    if reduction == "sum":
        return per.sum()
    total, den = per.sum(), w_t.sum()
    # A zero denominator (all ignored, an empty batch, target weights summing to 0) leaves the
    # mean undefined: nan, as torch gives, even where label smoothing makes the numerator > 0.
    return torch.where(den != 0, total / den, torch.full_like(total, math.nan))


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
    w = weights.to(logits.dtype)
    return torch.where(w == 0, torch.zeros_like(nll), nll) * w  # 0, not 0 * inf, where the nll overflowed


def _alpha_vector(alpha: float | torch.Tensor | None, logits: torch.Tensor) -> torch.Tensor | None:
    """The per-class weights ``alpha_c`` as a (C,) tensor of the logits' dtype, or None for 1."""
    n_cls = logits.shape[1]
    if alpha is None:
        return None
    if isinstance(alpha, torch.Tensor):
        check_tensor("alpha", alpha, ndim=1)
        if alpha.shape[0] != n_cls:
            raise ValueError(f"alpha must have shape ({n_cls},) (one weight per class of logits), got {tuple(alpha.shape)}")
        return alpha.to(logits.dtype)
    a = check_real("alpha", alpha, low=0.0, high=1.0)
    # kornia's and monai's scalar alpha: class 0 is the background, weighted by 1 - alpha.
    vec = torch.full((n_cls,), a, dtype=logits.dtype, device=logits.device)
    vec[0] = 1 - a
    return vec


def _focal_terms(logits: torch.Tensor, gamma: float, index: torch.Tensor | None = None) -> torch.Tensor:
    """``(1 - p_c)^gamma (-log p_c)`` for every class c along dim 1, accurate on both sides of p_c = 1/2.

    Only the most likely class can have p_c > 1/2. For it, ``d = log((1 - p) / p)`` is the
    logsumexp of the other logits minus its own, ``-log p = log(1 + e^d)`` and
    ``log(1 - p) = -log(1 + e^-d)`` (no ``1 - p`` cancellation, no ``log(1 + tiny)`` rounding,
    a finite gradient for 0 < gamma < 1 where p rounds to 1). For the others p_c <= 1/2, so
    ``log_softmax`` is accurate and ``log(1 - p_c) = log1p(-p_c)`` is well conditioned.

    ``index`` (the target class, ``(N, 1, ...)``): only that class's term is formed. Another
    class's ``-log p_c`` may overflow to inf (a logit gap beyond the dtype's range), and the
    product's backward would meet its zero upstream gradient as 0 * inf = nan.
    """
    n_cls = logits.shape[1]
    if n_cls == 1:
        # p = 1 identically: the loss is the constant 0 (and a logsumexp over no other
        # class would have a nan gradient).
        return logits * 0
    lp = torch.log_softmax(logits, dim=1)
    top = logits.argmax(dim=1, keepdim=True)
    is_top = torch.zeros_like(logits, dtype=torch.bool).scatter(1, top, True)
    d = torch.logsumexp(logits.masked_fill(is_top, float("-inf")), dim=1, keepdim=True) - logits.gather(1, top)
    zero = torch.zeros_like(d)
    ce_top = torch.logaddexp(d, zero)
    # The top class's slot of the log1p branch holds a stand-in (p = 1/2), so neither branch's
    # gradient meets log1p(-1) = -inf where torch.where discards it.
    half = torch.full_like(lp, -math.log(2.0))
    ce = torch.where(is_top, ce_top.expand_as(lp), -lp)
    if gamma == 0:
        return ce if index is None else ce.gather(1, index)
    log1mp = torch.where(is_top, -torch.logaddexp(-d, zero).expand_as(lp),
                         torch.log1p(-torch.exp(torch.where(is_top, half, lp))))
    if index is not None:
        ce, log1mp = ce.gather(1, index), log1mp.gather(1, index)
    # Where -log p_c itself overflows (a logit gap beyond the dtype's range: p_c = 0, the factor
    # exactly 1) the term is ce; the product is formed on a finite stand-in there, so that its
    # backward does not meet d factor / d lp = 0 times ce = inf (nan, where the exact gradient
    # is about +-1).
    over = torch.isinf(ce)
    focal = torch.exp(gamma * log1mp) * torch.where(over, torch.zeros_like(ce), ce)
    return torch.where(over, ce, focal)


def softmax_focal(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    gamma: float = 2.0,
    alpha: float | torch.Tensor | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Softmax focal loss: per entry ``sum_c alpha_c q_c (1 - p_c)^gamma (-log p_c)``, then reduced.

    ``p`` is the softmax over the class axis (dim 1); ``q = (1 - eps) onehot(t) + eps / C``
    is the target distribution with label smoothing ``eps`` (Keras'
    ``CategoricalFocalCrossentropy``), so without smoothing the loss is
    ``alpha_t (1 - p_t)^gamma (-log p_t)`` (Lin et al.). Each term is computed accurately
    where ``p_c`` rounds to 1 (see :func:`_focal_terms`), with a finite gradient for every
    ``gamma >= 0``; ``gamma = 0`` is exactly the (alpha-weighted, smoothed) cross-entropy.

    ``alpha``: ``None`` weights every class by 1; a (C,) tensor weights class c by
    ``alpha[c]``; a number ``a`` in [0, 1] weights class 0 (the background) by ``1 - a`` and
    every other class by ``a`` (kornia's and monai's scalar alpha; with C = 2 the sigmoid
    focal loss's alpha of class 1). Entries whose target equals ``ignore_index`` give 0
    (whatever their logits, non-finite included) and leave the mean's denominator.
    ``"mean"`` averages over the non-ignored entries (N times the extra dims, not N x C,
    not weighted by alpha); with none left (an empty or all-ignored batch) it is nan (0 / 0),
    as in torch's cross-entropy.

    Args:
        logits: (N, C) or (N, C, d1, ..., dk) floating tensor, C >= 1 (with C = 1, p = 1 and the loss is 0).
        target: (N,) or (N, d1, ..., dk) integer class indices in [0, C), or ``ignore_index``.
        gamma: focusing parameter, finite and >= 0.
        alpha: None, a (C,) tensor of class weights (cast to the logits' dtype), or a number in [0, 1].
        ignore_index: target value whose entries are ignored, or None (nothing ignored).
        label_smoothing: ``eps`` in [0, 1].
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.

    Returns:
        (N,) or (N, d1, ..., dk) for ``"none"``, else a 0-d tensor; the logits' dtype and device.

    Raises:
        ValueError: naming the argument with a bad type, dtype, shape, class index or value.

    Reference: Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017;
    keras.losses.CategoricalFocalCrossentropy (label smoothing); kornia.losses.focal_loss (scalar alpha).
    """
    check_tensor("logits", logits, ndim=range(2, 10))
    check_tensor("target", target, dtypes=INT_DTYPES)
    g = check_real("gamma", gamma, low=0.0, high=math.inf, high_open=True)
    eps = check_real("label_smoothing", label_smoothing, low=0.0, high=1.0)
    check_reduction(reduction)
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
        raise ValueError(f"ignore_index must be an int or None, got {type(ignore_index).__name__}")
    n_cls = logits.shape[1]
    want = (logits.shape[0], *logits.shape[2:])
    if tuple(target.shape) != want:
        raise ValueError(
            f"target must have shape {want} (the logits' shape without the class axis), got {tuple(target.shape)}"
        )
    if n_cls == 0:
        raise ValueError(f"logits must have at least one class, got shape {tuple(logits.shape)}")
    _check_class_indices("target", target, n_cls, ignore_index)
    a = _alpha_vector(alpha, logits)
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
    safe = torch.where(valid, target, torch.zeros_like(target)).long().unsqueeze(1)
    # Ignored entries' logits are replaced before anything reads them: a non-finite ignored
    # entry must not turn into inf * 0 = nan, in the value or in the gradient.
    x = torch.where(valid.unsqueeze(1), logits, torch.zeros_like(logits))
    if eps > 0:
        terms = _focal_terms(x, g)
        if a is not None:
            terms = terms * a.view([1, n_cls] + [1] * (logits.dim() - 2))
        loss = (1 - eps) * terms.gather(1, safe).squeeze(1) + (eps / n_cls) * terms.sum(dim=1)
    else:
        # The target's term only (see _focal_terms: no 0 * inf from another class's overflowed CE).
        loss = _focal_terms(x, g, safe).squeeze(1)
        if a is not None:
            loss = loss * a[safe.squeeze(1)]
    loss = torch.where(valid, loss, torch.zeros_like(loss))
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / valid.sum().to(loss.dtype)


def seed_softmax_focal(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    gamma: float = 2.0,
    alpha: float | torch.Tensor | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Seed 002's ``FocalLoss``, kept as a named *variant*: it is **not** the focal loss.

    The seed computes the batch-mean cross-entropy first (``alpha`` as torch class
    weights, so a weighted mean; ``ignore_index`` and ``label_smoothing`` handed to the
    cross-entropy), then ``(1 - exp(-ce))^gamma * ce``: one focal factor for the whole
    batch, so easy samples are not down-weighted one by one. Every reduction returns that
    one number (``"none"`` repeats it per entry). It differs from :func:`softmax_focal`
    whenever gamma > 0 and the samples' p_t differ; an empty batch gives nan, and the
    plain power has a nan gradient for 0 < gamma < 1 at ce = 0.

    Args:
        logits: (N, C, *) floating tensor.
        target: (N, *) integer class indices.
        gamma: focusing parameter.
        alpha: (C,) class weights, a number (class 0 weighted by 1 - alpha), or None.
        ignore_index: target value to ignore, or None.
        label_smoothing: handed to the cross-entropy.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"``.

    Returns:
        The target's shape (the same value repeated) for ``"none"``, else a 0-d tensor.

    Reference: seed 002 (BEV losses note), ``FocalLoss.forward``.
    """
    check_reduction(reduction)
    check_tensor("logits", logits, ndim=range(2, 10))
    weight = _alpha_vector(alpha, logits)
    ce = softmax_cross_entropy(logits, target, weight=weight, label_smoothing=label_smoothing, reduction="mean",
                               ignore_index=-100 if ignore_index is None else ignore_index)
    p = torch.exp(-ce)
    loss = (1 - p) ** gamma * ce
    if reduction == "none":
        return loss.expand(target.shape)
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
