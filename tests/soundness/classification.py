"""Correct softmax-family implementations written another way than ``impls.classification``."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from tests.soundness import Impl

_REDUCTIONS = ("none", "mean", "sum")


def _check_logits(logits: torch.Tensor, ndim: int | None = None) -> None:
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise TypeError("logits must be a floating tensor")
    if logits.dim() < 2 or (ndim is not None and logits.dim() != ndim):
        raise ValueError(f"logits must have a class axis (dim 1), got shape {tuple(logits.shape)}")


def _check_unit(name: str, v: float) -> None:
    if not (0.0 <= v <= 1.0):
        raise ValueError(f"{name} must lie in [0, 1], got {v!r}")


def _check_indices(logits: torch.Tensor, target: torch.Tensor, ignore_index: int | None) -> torch.Tensor:
    """The mask of valid entries; raises for a shape mismatch or an index outside [0, C)."""
    if target.is_floating_point() or target.dtype == torch.bool:
        raise TypeError("target must hold integer class indices")
    if tuple(target.shape) != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(f"target {tuple(target.shape)} does not fit logits {tuple(logits.shape)}")
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
    if bool((valid & ((target < 0) | (target >= logits.shape[1]))).any()):
        raise ValueError("target holds a class index outside [0, C)")
    return valid


def _mean(total: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    return total / den if bool(den != 0) else total * math.nan


# ---------------------------------------------------------------------------
# softmax_cross_entropy
# ---------------------------------------------------------------------------


def ce_torch_builtin(logits, target, *, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):  # type: ignore[no-untyped-def]
    """torch's own function (log_softmax + nll_loss, label smoothing as a second term), with the
    checks torch omits (label_smoothing below 0 or nan), without ignore_index for probability
    targets (where torch raises and the contract says it does not apply), and the ignored
    entries' logits replaced before torch reads them."""
    _check_logits(logits)
    _check_unit("label_smoothing", label_smoothing)
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}")
    if weight is not None and tuple(weight.shape) != (logits.shape[1],):
        raise ValueError("weight must have one entry per class")
    if target.is_floating_point():
        if target.shape != logits.shape:
            raise ValueError("probability targets must have the logits' shape")
        return F.cross_entropy(logits, target.to(logits.dtype), weight=weight, label_smoothing=label_smoothing,
                               reduction=reduction)
    _check_indices(logits, target, ignore_index)
    # torch forms the ignored rows' log-softmax before nll_loss drops them: a nan or inf logit there
    # would give the row a nan gradient (torch's registered defect), so those rows are zeroed first.
    ignored = (target == ignore_index).unsqueeze(1)
    logits = torch.where(ignored, torch.zeros((), dtype=logits.dtype), logits)
    return F.cross_entropy(logits, target.long(), weight=None if weight is None else weight.to(logits.dtype),
                           ignore_index=ignore_index, label_smoothing=label_smoothing, reduction=reduction)


def ce_explicit_distribution(logits, target, *, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):  # type: ignore[no-untyped-def]
    """-sum_c w_c q_c (x_c - logsumexp(x)) against the explicit smoothed distribution q (one
    formula for both target kinds), log p formed as x - logsumexp(x) rather than from x - max."""
    _check_logits(logits)
    _check_unit("label_smoothing", label_smoothing)
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}")
    c = logits.shape[1]
    w = torch.ones(c, dtype=logits.dtype) if weight is None else weight.to(logits.dtype)
    if w.shape != (c,):
        raise ValueError("weight must have one entry per class")
    w = w.view([1, c] + [1] * (logits.dim() - 2))
    if target.is_floating_point():
        if target.shape != logits.shape:
            raise ValueError("probability targets must have the logits' shape")
        q = target.to(logits.dtype)
        valid = None
    else:
        valid = _check_indices(logits, target, ignore_index)
        onehot = F.one_hot(torch.where(valid, target, 0).long(), c).movedim(-1, 1).to(logits.dtype)
        q = onehot * valid.unsqueeze(1).to(logits.dtype)
        logits = torch.where(valid.unsqueeze(1), logits, 0.0)
    q = (1 - label_smoothing) * q + label_smoothing / c * (1.0 if valid is None else valid.unsqueeze(1).to(logits.dtype))
    # Shifted by the row's max first: x - logsumexp(x) unshifted rounds logsumexp to ulp(|x|), which
    # at |x| = 1e4 in float32 is 1e-3 absolute in log p (and in the gradient), far from the accuracy a
    # stable softmax has (logits (1e4, 9987): p_0 - 1 = -2.3e-6 becomes 0).
    shifted = logits - logits.amax(dim=1, keepdim=True).detach() if logits.shape[1] else logits
    logp = shifted - torch.logsumexp(shifted, dim=1, keepdim=True)
    per = -(w * q * logp).sum(1)
    if reduction == "none":
        return per
    if reduction == "sum":
        return per.sum()
    if valid is None:
        return _mean(per.sum(), torch.tensor(per.numel()))  # an integer count keeps the dtype of the sum
    return _mean(per.sum(), (w.view(-1)[torch.where(valid, target, 0).long()] * valid).sum())


# ---------------------------------------------------------------------------
# weighted_cross_entropy
# ---------------------------------------------------------------------------


def _wce_check(logits, target, weights):  # type: ignore[no-untyped-def]
    _check_logits(logits, ndim=3)
    if target.shape != logits.shape or tuple(weights.shape) != tuple(logits.shape[:2]):
        raise ValueError("target must have the logits' shape and weights their (B, A)")


def wce_torch_builtin(logits, target, weights):  # type: ignore[no-untyped-def]
    """torch.nn.functional.cross_entropy on the (B, C, A) view against argmax(target), times the weights."""
    _wce_check(logits, target, weights)
    if logits.numel() == 0:
        return logits.sum(-1) * weights.to(logits.dtype)
    ce = F.cross_entropy(logits.permute(0, 2, 1), target.argmax(-1), reduction="none")
    return ce * weights.to(logits.dtype)


def wce_float64_logsumexp(logits, target, weights):  # type: ignore[no-untyped-def]
    """logsumexp(x) - x_t in float64 (intermediates more precise), cast back to the logits' dtype."""
    _wce_check(logits, target, weights)
    x = logits.double()
    k = target.argmax(-1, keepdim=True) if target.numel() else torch.zeros((*target.shape[:-1], 1), dtype=torch.long)
    nll = torch.logsumexp(x, -1) - x.gather(-1, k).squeeze(-1)
    return (nll * weights.double()).to(logits.dtype)


# ---------------------------------------------------------------------------
# softmax_focal
# ---------------------------------------------------------------------------


def _sf_prepare(logits, target, gamma, alpha, ignore_index, label_smoothing, reduction):  # type: ignore[no-untyped-def]
    _check_logits(logits)
    if not (gamma >= 0) or math.isinf(gamma):
        raise ValueError("gamma must be finite and >= 0")
    _check_unit("label_smoothing", label_smoothing)
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}")
    valid = _check_indices(logits, target, ignore_index)
    c = logits.shape[1]
    if alpha is None:
        a = torch.ones(c, dtype=torch.float64)
    elif isinstance(alpha, torch.Tensor):
        if alpha.shape != (c,):
            raise ValueError("alpha must have one entry per class")
        a = alpha.double()
    else:
        _check_unit("alpha", alpha)
        a = torch.tensor([1.0 - alpha] + [float(alpha)] * (c - 1), dtype=torch.float64)
    return valid, a


def _sf_finish(terms, target, valid, a, label_smoothing, reduction, dtype):  # type: ignore[no-untyped-def]
    c = terms.shape[1]
    q = F.one_hot(torch.where(valid, target, 0).long(), c).movedim(-1, 1).to(terms.dtype)
    q = (1 - label_smoothing) * q + label_smoothing / c
    per = (a.view([1, c] + [1] * (terms.dim() - 2)) * q * terms).sum(1)
    per = torch.where(valid, per, 0.0)
    if reduction == "none":
        return per.to(dtype)
    if reduction == "sum":
        return per.sum().to(dtype)
    return _mean(per.sum(), valid.sum().to(per.dtype)).to(dtype)


def sf_double_where_power(logits, target, *, gamma=2.0, alpha=None, ignore_index=None, label_smoothing=0.0, reduction="mean"):  # type: ignore[no-untyped-def]
    """In float64: 1 - p_c as the sum of the other classes' probabilities (no cancellation), a plain
    power guarded by the double-where trick so its gradient is finite where 1 - p_c is 0, -log p_c
    from log_softmax; alpha, smoothing and the reduction on the explicit distribution q."""
    valid, a = _sf_prepare(logits, target, gamma, alpha, ignore_index, label_smoothing, reduction)
    x = torch.where(valid.unsqueeze(1), logits, 0.0).double()
    p = torch.softmax(x, 1)
    # 1 - p_c as the sum of the others (1 - p would cancel for the dominant class).
    c = x.shape[1]
    eye = torch.eye(c, dtype=torch.bool).view([1, c, c] + [1] * (x.dim() - 2))
    omp = torch.where(eye, 0.0, p.unsqueeze(1)).sum(2)
    positive = omp > 0
    safe = torch.where(positive, omp, 1.0)
    factor = torch.where(positive, safe**gamma, 0.0) if gamma > 0 else torch.ones_like(omp)
    terms = factor * -torch.log_softmax(x, 1)
    return _sf_finish(terms, target, valid, a, label_smoothing, reduction, logits.dtype)


def sf_pairwise_logsumexp(logits, target, *, gamma=2.0, alpha=None, ignore_index=None, label_smoothing=0.0, reduction="mean"):  # type: ignore[no-untyped-def]
    """For every class c, d_c = logsumexp of the other logits - x_c (a C x C masked logsumexp), then
    -log p_c = softplus(d_c) and (1 - p_c)^gamma = exp(-gamma softplus(-d_c)), in the logits' dtype."""
    valid, a = _sf_prepare(logits, target, gamma, alpha, ignore_index, label_smoothing, reduction)
    x = torch.where(valid.unsqueeze(1), logits, 0.0)
    c = x.shape[1]
    if c == 1:
        terms = x * 0
    else:
        eye = torch.eye(c, dtype=torch.bool).view([1, c, c] + [1] * (x.dim() - 2))
        others = torch.logsumexp(x.unsqueeze(1).masked_fill(eye, -math.inf), dim=2)
        d = others - x
        ce = F.softplus(d)
        terms = ce if gamma == 0 else torch.exp(-gamma * F.softplus(-d)) * ce
    return _sf_finish(terms, target, valid, a.to(x.dtype), label_smoothing, reduction, logits.dtype)


# ---------------------------------------------------------------------------
# kl_div
# ---------------------------------------------------------------------------


def _kl_check(input, target, reduction, log_target):  # type: ignore[no-untyped-def]
    if not input.is_floating_point() or target.dtype != input.dtype:
        raise TypeError("input must be floating and target of the same dtype")
    if target.shape != input.shape:
        raise ValueError("target must have the input's shape")
    if reduction not in (*_REDUCTIONS, "batchmean"):
        raise ValueError("unknown reduction")
    if not isinstance(log_target, bool):
        raise TypeError("log_target must be a bool")


def _kl_reduce(point, reduction, input):  # type: ignore[no-untyped-def]
    if reduction == "none":
        return point
    if reduction == "sum":
        return point.sum()
    n = input.shape[0] if (reduction == "batchmean" and input.dim()) else (1 if reduction == "batchmean" else input.numel())
    return point.sum() / n


def kl_torch_masked(input, target, *, reduction="mean", log_target=False):  # type: ignore[no-untyped-def]
    """torch.nn.functional.kl_div (its xlogy form) on the entries with a non-zero target probability;
    the others are given finite stand-ins and then set to 0, so torch's nans there never form."""
    _kl_check(input, target, reduction, log_target)
    zero = torch.isneginf(target) if log_target else target == 0
    t = torch.where(zero, 0.0 if log_target else 1.0, target)
    x = torch.where(zero, 0.0, input)
    point = torch.where(zero, 0.0, F.kl_div(x, t, reduction="none", log_target=log_target))
    return _kl_reduce(point, reduction, input)


def kl_log_space_float64(input, target, *, reduction="mean", log_target=False):  # type: ignore[no-untyped-def]
    """In float64, everything through the log-space form exp(lt) (lt - x), lt = log t (-inf, a
    zero probability, gives 0); cast back to the input's dtype."""
    _kl_check(input, target, reduction, log_target)
    x = input.double()
    t = target.double()
    zero = torch.isneginf(t) if log_target else t == 0
    lt_safe = torch.where(zero, 0.0, t) if log_target else torch.log(torch.where(zero, 1.0, t))
    # The zero-probability entries are cut out of the graph before exp / log (torch.where passes a nan
    # gradient from the untaken branch through log t at t = 0): their value and target gradient are 0.
    point = torch.where(zero, 0.0, torch.exp(lt_safe) * (lt_safe - torch.where(zero, 0.0, x)))
    return _kl_reduce(point, reduction, input).to(input.dtype)


IMPLEMENTATIONS = [
    Impl("torch_builtin", "softmax_cross_entropy", ce_torch_builtin,
         "torch.nn.functional.cross_entropy, with the label_smoothing checks torch omits"),
    Impl("explicit_distribution", "softmax_cross_entropy", ce_explicit_distribution,
         "one formula over the explicit smoothed distribution, log p = x - logsumexp(x)"),
    Impl("torch_builtin", "weighted_cross_entropy", wce_torch_builtin, "torch's cross_entropy on the (B, C, A) view"),
    Impl("float64_logsumexp", "weighted_cross_entropy", wce_float64_logsumexp, "logsumexp - x_t in float64"),
    Impl("double_where_power", "softmax_focal", sf_double_where_power,
         "float64, 1 - p_c as the sum of the other probabilities, a guarded plain power"),
    Impl("pairwise_logsumexp", "softmax_focal", sf_pairwise_logsumexp,
         "a C x C masked logsumexp gives d_c for every class, softplus forms, the logits' dtype"),
    Impl("torch_masked", "kl_div", kl_torch_masked, "torch's kl_div with zero-probability entries masked"),
    Impl("log_space_float64", "kl_div", kl_log_space_float64, "the log-space form exp(lt) (lt - x) in float64"),
]
