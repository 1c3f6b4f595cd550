"""Exact values with mpmath (60 significant digits), rounded once to float64.

The inputs are binary floats, converted to mpf exactly; every formula is a sum
of non-negative terms, so 60 digits leave the float64 result correctly rounded
in practice. Slow (a Python loop per element): used for accuracy figures and as
the arbiter, on small generated tensors.
"""

from __future__ import annotations

import numpy as np
from mpmath import mp, mpf

__all__ = ["sigmoid_bce", "sigmoid_focal", "DIGITS"]

DIGITS = 60


def _softplus(x: mpf) -> mpf:
    # log(1 + e^x) without forming e^x for large x
    if x > 0:
        return x + mp.log1p(mp.exp(-x))
    return mp.log1p(mp.exp(x))


def _sigmoid(x: mpf) -> mpf:
    return 1 / (1 + mp.exp(-x))


def _bce(x: mpf, z: mpf) -> mpf:
    return (1 - z) * _softplus(x) + z * _softplus(-x)


def _focal(x: mpf, z: mpf, alpha: float | None, gamma: float) -> mpf:
    one_minus_pt = z * _sigmoid(-x) + (1 - z) * _sigmoid(x)
    g = mpf(gamma)
    factor = mpf(1) if g == 0 else (mpf(0) if one_minus_pt == 0 else mp.power(one_minus_pt, g))
    at = mpf(1) if alpha is None else mpf(alpha) * z + (1 - mpf(alpha)) * (1 - z)
    return at * factor * _bce(x, z)


def _elementwise(fn, *arrays: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    arrs = np.broadcast_arrays(*[np.asarray(a, dtype=np.float64) for a in arrays])
    out = np.empty(arrs[0].shape, dtype=np.float64)
    with mp.workdps(DIGITS):
        for idx in np.ndindex(out.shape):
            out[idx] = float(fn(*[mpf(float(a[idx])) for a in arrs]))
    return out


def sigmoid_bce(x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Exact BCE with logits, rounded to float64."""
    return _elementwise(_bce, x, z)


def sigmoid_focal(x: np.ndarray, z: np.ndarray, alpha: float | None = 0.25, gamma: float = 2.0) -> np.ndarray:
    """Exact sigmoid focal loss, rounded to float64."""
    return _elementwise(lambda a, b: _focal(a, b, alpha, gamma), x, z)
