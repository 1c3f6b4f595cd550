"""NumPy float64 oracles for the softmax family, mirroring ``impls.classification`` by name.

Written sample by sample from the definitions, not from the references:

- cross-entropy with class-index targets is the cross-entropy against the explicit
  smoothed distribution ``q = (1 - eps) onehot(t) + eps / C``, weighted per class:
  ``-sum_c w_c q_c log p_c`` (algebraically torch's two-term formula);
- the focal factor uses ``1 - p_t`` as the sum of the *other* classes' probabilities;
- KL is a loop over elements with ``0 log 0 = 0`` spelled out.

Trusted domain: finite logits (float64 throughout; log-softmax shifted by the row
maximum, with ``log1p`` for the dominant class, so no overflow and no ``log(1 + tiny)``
rounding). Relative error is a few float64 ulps except where ``1 - p_t`` underflows to
0 (logit gaps beyond ~745), where the focal loss is below 1e-300 and its absolute error
is negligible. See :data:`DOMAIN`.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "DOMAIN",
    "focal_alpha",
    "kl_div",
    "log_softmax",
    "softmax_cross_entropy",
    "softmax_focal",
    "weighted_cross_entropy",
]

F64 = NDArray[np.float64]

DOMAIN = "finite logits, float64; the focal factor is exact to a few ulps unless 1 - p_t underflows (loss < 1e-300)"


def log_softmax(x: ArrayLike, axis: int = 1) -> F64:
    """``z - log1p(sum of exp(z) over all but one maximum)`` along ``axis``, ``z = x - max``, in float64.

    ``log1p`` of the non-maximal terms keeps the relative accuracy of ``log p`` for the
    dominant class (where ``log(sum exp z)`` would round ``1 + tiny`` to 1).
    """
    a = np.asarray(x, dtype=np.float64)
    if a.size == 0:
        return a.copy()
    m = np.max(a, axis=axis, keepdims=True)
    z = a - m
    e = np.exp(z)
    first_max = np.zeros(a.shape, dtype=bool)
    np.put_along_axis(first_max, np.expand_dims(np.argmax(a, axis=axis), axis), True, axis=axis)
    rest = np.sum(np.where(first_max, 0.0, e), axis=axis, keepdims=True)
    return z - np.log1p(rest)


def _rows(x: F64) -> F64:
    """(N, C, d1, ...) -> (N * d1 * ..., C), rows in the order of the target's flattening."""
    return np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])


def _reduce(per: F64, reduction: str, denominator: float) -> F64 | np.float64:
    if reduction == "none":
        return per
    if reduction == "sum":
        return np.float64(per.sum())
    # A zero denominator leaves the mean undefined: nan (torch's), whatever the numerator.
    return np.float64(per.sum()) / np.float64(denominator) if denominator != 0 else np.float64(np.nan)


def softmax_cross_entropy(
    logits: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> F64 | np.float64:
    """Cross-entropy with torch semantics, one sample at a time.

    Index targets: ``-sum_c w_c q_c log p_c`` with ``q = (1 - eps) onehot(t) + eps / C``,
    0 for ignored samples; ``"mean"`` divides by ``sum w[t]`` over non-ignored samples
    (nan when that is 0). Probability targets: the same with ``q = (1 - eps) t + eps / C``;
    ``"mean"`` divides by the number of samples.

    Args:
        logits: (N, C) or (N, C, d1, ...).
        target: (N, d1, ...) integer indices, or floating probabilities shaped like ``logits``.
        weight: (C,) class weights or None.
        ignore_index: index target value to skip.
        label_smoothing: eps in [0, 1].
        reduction: "none" | "mean" | "sum".

    Returns:
        (N, d1, ...) float64 for "none", else a float64 scalar.
    """
    x = np.asarray(logits, dtype=np.float64)
    t = np.asarray(target)
    n_cls = x.shape[1]
    w = np.ones(n_cls) if weight is None else np.asarray(weight, dtype=np.float64)
    eps = float(label_smoothing)
    rows = _rows(x)
    out_shape = (x.shape[0], *x.shape[2:])
    per = np.zeros(rows.shape[0], dtype=np.float64)
    if np.issubdtype(t.dtype, np.floating):
        probs = _rows(t.astype(np.float64))
        for i in range(rows.shape[0]):
            lp = log_softmax(rows[i], axis=0)
            q = (1 - eps) * probs[i] + eps / n_cls
            per[i] = -float(np.sum(w * q * lp))
        return _reduce(per.reshape(out_shape), reduction, per.size)
    flat = t.reshape(-1)
    denominator = 0.0
    for i in range(rows.shape[0]):
        k = int(flat[i])
        if k == ignore_index:
            continue
        lp = log_softmax(rows[i], axis=0)
        q = np.full(n_cls, eps / n_cls)
        q[k] += 1 - eps
        per[i] = -float(np.sum(w * q * lp))
        denominator += w[k]
    return _reduce(per.reshape(out_shape), reduction, denominator)


def weighted_cross_entropy(logits: ArrayLike, target: ArrayLike, weights: ArrayLike) -> F64:
    """OpenPCDet weighted CE: ``w[b, a] * -log p[b, a, argmax target[b, a]]`` per anchor.

    Args:
        logits: (B, A, C).
        target: (B, A, C) one-hot (its argmax, first maximum on ties, is the class).
        weights: (B, A).

    Returns:
        (B, A) float64 loss.
    """
    x = np.asarray(logits, dtype=np.float64)
    t = np.asarray(target)
    w = np.asarray(weights, dtype=np.float64)
    out = np.zeros(x.shape[:2], dtype=np.float64)
    for b, a in np.ndindex(*x.shape[:2]):
        k = int(np.argmax(t[b, a]))
        out[b, a] = -w[b, a] * float(log_softmax(x[b, a], axis=0)[k])
    return out


def focal_alpha(alpha: ArrayLike | float | None, n_cls: int) -> F64:
    """The per-class weights of a focal ``alpha``: 1 for None, the array itself, or for a
    number ``a`` the background convention ``[1 - a, a, ..., a]`` (class 0 weighted by 1 - a)."""
    if alpha is None:
        return np.ones(n_cls)
    if np.ndim(alpha) == 0:
        a = float(alpha)  # type: ignore[arg-type]
        return np.array([1.0 - a] + [a] * (n_cls - 1))
    return np.asarray(alpha, dtype=np.float64)


def _focal_row(x: F64, gamma: float) -> F64:
    """``(1 - p_c)^gamma (-log p_c)`` for every class of one row of logits.

    ``1 - p_c`` is the sum of the *other* classes' probabilities (no cancellation) and
    ``-log p_c = log1p(others / e_c)``; ``0^0 = 1``, so gamma = 0 is the cross-entropy."""
    z = x - np.max(x)
    e = np.exp(z)
    out = np.zeros(x.size, dtype=np.float64)
    for c in range(x.size):
        others = float(np.sum(np.delete(e, c)))
        neg_log_p = math.log1p(others * math.exp(-z[c])) if z[c] > -700 else math.log(others + e[c]) - float(z[c])
        one_minus_p = others / (others + float(e[c]))
        out[c] = (1.0 if gamma == 0 else one_minus_p**gamma) * neg_log_p
    return out


def softmax_focal(
    logits: ArrayLike,
    target: ArrayLike,
    gamma: float = 2.0,
    alpha: ArrayLike | float | None = None,
    reduction: str = "mean",
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
) -> F64 | np.float64:
    """Softmax focal loss per entry: ``sum_c alpha_c q_c (1 - p_c)^gamma (-log p_c)``, reduced.

    ``q = (1 - eps) onehot(t) + eps / C`` (so ``alpha_t (1 - p_t)^gamma (-log p_t)`` without
    smoothing); ``alpha`` as :func:`focal_alpha`. Entries whose target is ``ignore_index``
    give 0 and leave the mean's denominator (nan when none is left).

    Args:
        logits: (N, C) or (N, C, d1, ...).
        target: (N,) or (N, d1, ...) integer indices.
        gamma: >= 0.
        alpha: None, (C,) class weights, or a number in [0, 1] (background convention).
        reduction: "none" | "mean" (over non-ignored entries) | "sum".
        ignore_index: target value to skip, or None.
        label_smoothing: eps in [0, 1].

    Returns:
        (N, d1, ...) float64 for "none", else a float64 scalar.
    """
    x = np.asarray(logits, dtype=np.float64)
    t = np.asarray(target).reshape(-1)
    n_cls = x.shape[1]
    a = focal_alpha(alpha, n_cls)
    eps = float(label_smoothing)
    rows = _rows(x)
    per = np.zeros(rows.shape[0], dtype=np.float64)
    count = 0
    for i in range(rows.shape[0]):
        k = int(t[i])
        if ignore_index is not None and k == ignore_index:
            continue
        count += 1
        q = np.full(n_cls, eps / n_cls)
        q[k] += 1 - eps
        per[i] = float(np.sum(a * q * _focal_row(rows[i], gamma)))
    return _reduce(per.reshape((x.shape[0], *x.shape[2:])), reduction, count)


def kl_div(
    input: ArrayLike,
    target: ArrayLike,
    reduction: str = "mean",
    log_target: bool = False,
) -> F64 | np.float64:
    """KL divergence with torch semantics, element by element: ``t (log t - x)``, 0 where t = 0.

    With ``log_target`` the target is ``log t`` (``-inf`` is a zero probability, giving 0).
    ``"batchmean"`` divides the sum by ``input.shape[0]``, ``"mean"`` by the element count.

    Args:
        input: (N, *) log-probabilities.
        target: same shape; probabilities, or log-probabilities if ``log_target``.
        reduction: "none" | "mean" | "sum" | "batchmean".
        log_target: whether the target is in log space.

    Returns:
        Pointwise float64 array for "none", else a float64 scalar.
    """
    x = np.asarray(input, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    point = np.zeros(x.shape, dtype=np.float64)
    for idx in np.ndindex(*x.shape):
        if log_target:
            lt = float(t[idx])
            point[idx] = 0.0 if lt == -math.inf else math.exp(lt) * (lt - float(x[idx]))
        else:
            p = float(t[idx])
            # A negative or nan "probability" has no KL term: nan, as torch's xlogy gives.
            point[idx] = 0.0 if p == 0.0 else (p * (math.log(p) - float(x[idx])) if p > 0 else math.nan)
    if reduction == "batchmean":
        if x.ndim == 0:
            return np.float64(point.sum())
        return _reduce(point, "mean", x.shape[0])
    return _reduce(point, reduction, point.size)
