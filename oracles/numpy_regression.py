"""NumPy float64 oracles for the regression family (same names as ``impls.regression``)."""

from __future__ import annotations

import numpy as np

__all__ = ["smooth_l1", "smooth_l1_grad", "weighted_smooth_l1", "l1", "mse"]


def smooth_l1(x: np.ndarray, y: np.ndarray, beta: float = 1.0) -> np.ndarray:
    d = np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))
    if beta < 1e-5:
        return d
    out = np.empty_like(d)
    inner = d < beta
    out[inner] = 0.5 * d[inner] ** 2 / beta
    out[~inner] = d[~inner] - 0.5 * beta
    return out


def smooth_l1_grad(x: np.ndarray, y: np.ndarray, beta: float = 1.0) -> np.ndarray:
    """d/dx: clip((x - y) / beta, -1, 1); sign(x - y) when beta < 1e-5 (0 at x == y)."""
    d = np.asarray(x, np.float64) - np.asarray(y, np.float64)
    if beta < 1e-5:
        return np.sign(d)
    return np.clip(d / beta, -1.0, 1.0)


def weighted_smooth_l1(x, y, w=None, beta=1.0 / 9.0, code_weights=None):  # type: ignore[no-untyped-def]
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    out = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        if np.isnan(y[idx]):
            continue
        d = x[idx] - y[idx]
        if code_weights is not None:
            d *= float(np.asarray(code_weights, np.float64)[idx[-1]])
        out[idx] = smooth_l1(np.array(d), np.array(0.0), beta)
        if w is not None:
            out[idx] *= float(np.asarray(w, np.float64)[idx[:-1]])
    return out


def l1(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))


def mse(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (np.asarray(x, np.float64) - np.asarray(y, np.float64)) ** 2
