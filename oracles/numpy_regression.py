"""NumPy float64 oracles for the regression family, mirroring ``impls.regression`` by name.

Written from the formulas, not from the references: smooth L1 in its Huber form
``m (|d| - m / 2) / beta`` with ``m = min(|d|, beta)`` (one expression, no branch), and
the OpenPCDet form as a loop over elements. Inputs are anything ``np.asarray`` takes;
outputs are float64 arrays.

Trusted domain: every finite input; the only error is float64 rounding of the
inputs' difference (relative 2^-53 of ``|x| + |y|``). See :data:`DOMAIN`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["DOMAIN", "L1_BETA", "l1", "mse", "reduce", "smooth_l1", "smooth_l1_grad", "weighted_smooth_l1"]

F64 = NDArray[np.float64]

L1_BETA = 1e-5
DOMAIN = "all finite inputs (float64; error: rounding of x - y, about 1.1e-16 * (|x| + |y|))"


def _f64(a: ArrayLike) -> F64:
    return np.asarray(a, dtype=np.float64)


def reduce(values: ArrayLike, reduction: str = "none", weight: ArrayLike | None = None) -> F64 | float:
    """``weight * values`` (broadcast), then 'none' keeps the elements, 'sum' adds them and
    'mean' divides the sum by the element count (an empty mean is nan)."""
    v = _f64(values)
    if weight is not None:
        with np.errstate(invalid="ignore"):
            v = v * _f64(weight)
    if reduction == "none":
        return v
    if reduction == "sum":
        return float(np.sum(v))
    if reduction == "mean":
        return float(np.sum(v) / v.size) if v.size else float("nan")
    raise ValueError(f"reduction must be one of ('none', 'mean', 'sum'), got {reduction!r}")


def smooth_l1(
    input: ArrayLike,
    target: ArrayLike,
    beta: float = 1.0,
    weight: ArrayLike | None = None,
    reduction: str = "none",
) -> F64 | float:
    """Smooth L1: ``0.5 d^2 / beta`` inside ``|d| < beta``, ``|d| - beta/2`` outside.

    Huber form: with ``n = |d|`` and ``m = min(n, beta)``, ``m (n - m / 2) / beta``;
    ``beta < 1e-5`` is ``|d|`` (OpenPCDet's convention).

    Args:
        input: (*) values.
        target: (*) values of the same shape.
        beta: transition point, >= 0.
        weight: values broadcastable to the input's shape, or None.
        reduction: 'none', 'mean' (over every element) or 'sum'.

    Returns:
        (*) float64 loss, or a float for 'mean' / 'sum'.
    """
    n = np.abs(_f64(input) - _f64(target))
    if beta < L1_BETA:
        return reduce(n, reduction, weight)
    m = np.minimum(n, beta)
    with np.errstate(invalid="ignore"):
        # n = inf (a difference beyond float64) gives beta * inf: inf, never inf - inf.
        return reduce(m * (n - 0.5 * m) / beta, reduction, weight)


def smooth_l1_grad(input: ArrayLike, target: ArrayLike, beta: float = 1.0) -> F64:
    """d smooth_l1 / d input: ``clip(d / beta, -1, 1)``; ``sign(d)`` (0 at d = 0) when beta < 1e-5.

    Args:
        input: (*) values.
        target: (*) values of the same shape.
        beta: transition point, >= 0.

    Returns:
        (*) float64 gradient, bounded by 1 in absolute value.
    """
    d = _f64(input) - _f64(target)
    if beta < L1_BETA:
        return np.sign(d)
    return np.clip(d / beta, -1.0, 1.0)


def weighted_smooth_l1(
    input: ArrayLike,
    target: ArrayLike,
    weights: ArrayLike | None = None,
    beta: float = 1.0 / 9.0,
    code_weights: ArrayLike | None = None,
) -> F64:
    """OpenPCDet ``WeightedSmoothL1Loss``, one element at a time.

    ``out[b, a, k] = weights[b, a] * smooth_l1(code_weights[k] * (x - y)[b, a, k])``, and 0
    where ``y`` is NaN.

    Args:
        input: (B, A, K) predictions.
        target: (B, A, K) targets; NaN means no target.
        weights: (B, A) anchor weights or None.
        beta: smooth L1 transition.
        code_weights: (K,) per-code weights or None.

    Returns:
        (B, A, K) float64 loss.
    """
    x, y = _f64(input), _f64(target)
    w = None if weights is None else _f64(weights)
    cw = None if code_weights is None else _f64(code_weights)
    out = np.zeros(x.shape, dtype=np.float64)
    for b, a, k in np.ndindex(*x.shape):
        if np.isnan(y[b, a, k]):
            continue
        d = x[b, a, k] - y[b, a, k]
        if cw is not None:
            d *= cw[k]
        val = abs(d) if beta < L1_BETA else (0.5 * d * d / beta if abs(d) < beta else abs(d) - 0.5 * beta)
        out[b, a, k] = val if w is None else val * w[b, a]
    return out


def l1(input: ArrayLike, target: ArrayLike, weight: ArrayLike | None = None, reduction: str = "none") -> F64 | float:
    """``|x - y|`` in float64, weighted and reduced as :func:`reduce` says.

    Args:
        input: (*) values.
        target: (*) values of the same shape.
        weight: values broadcastable to the input's shape, or None.
        reduction: 'none', 'mean' or 'sum'.

    Returns:
        (*) float64 loss, or a float for 'mean' / 'sum'.
    """
    return reduce(np.abs(_f64(input) - _f64(target)), reduction, weight)


def mse(input: ArrayLike, target: ArrayLike, weight: ArrayLike | None = None, reduction: str = "none") -> F64 | float:
    """``(x - y)^2`` in float64, weighted and reduced as :func:`reduce` says.

    Args:
        input: (*) values.
        target: (*) values of the same shape.
        weight: values broadcastable to the input's shape, or None.
        reduction: 'none', 'mean' or 'sum'.

    Returns:
        (*) float64 loss, or a float for 'mean' / 'sum'.
    """
    with np.errstate(over="ignore"):
        return reduce(np.square(_f64(input) - _f64(target)), reduction, weight)
