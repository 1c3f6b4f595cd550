"""NumPy float64 oracles for the sigmoid BCE / focal family.

Written from the formulas, not from ``impls``: the split is by the sign of the
logit (each branch a sum of non-negative terms), and the focal factor is a
plain power of ``1 - p_t`` built from two sigmoids that never cancel.
Trusted for all finite float64 inputs.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "sigmoid",
    "reduce",
    "sigmoid_bce",
    "sigmoid_bce_grad",
    "sigmoid_focal",
    "sigmoid_focal_grad",
    "weighted_sigmoid_focal",
]


def sigmoid(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)


def sigmoid_bce(
    x: np.ndarray, z: np.ndarray, weight: np.ndarray | None = None, pos_weight: np.ndarray | None = None
) -> np.ndarray:
    """-w [pw z log p + (1-z) log(1-p)], p = sigmoid(x) (w = pw = 1 when absent)."""
    x = np.asarray(x, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    if pos_weight is None:
        tail = np.log1p(np.exp(-np.abs(x)))
        out = np.where(x >= 0, (1.0 - z) * x + tail, -z * x + tail)
    else:
        # -log p = log1p(exp(-x)) and -log(1-p) = log1p(exp(x)), each evaluated without overflow.
        neg_log_p = np.logaddexp(0.0, -x)
        neg_log_1mp = np.logaddexp(0.0, x)
        out = np.asarray(pos_weight, dtype=np.float64) * z * neg_log_p + (1.0 - z) * neg_log_1mp
    return out if weight is None else np.asarray(weight, dtype=np.float64) * out


def reduce(values: np.ndarray, reduction: str) -> np.ndarray | float:
    """'none' keeps the elements, 'sum' adds them, 'mean' averages them (an empty mean is nan)."""
    if reduction == "none":
        return values
    if reduction == "sum":
        return float(np.sum(values))
    return float(np.mean(values)) if np.size(values) else float("nan")


def sigmoid_bce_grad(x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """d BCE / dx = sigmoid(x) - z."""
    return sigmoid(x) - np.asarray(z, dtype=np.float64)


def _one_minus_pt(x: np.ndarray, z: np.ndarray) -> np.ndarray:
    return z * sigmoid(-x) + (1.0 - z) * sigmoid(x)


def _alpha_t(z: np.ndarray, alpha: float | None) -> np.ndarray | float:
    return 1.0 if alpha is None else alpha * z + (1.0 - alpha) * (1.0 - z)


def sigmoid_focal(x: np.ndarray, z: np.ndarray, alpha: float | None = 0.25, gamma: float = 2.0) -> np.ndarray:
    """alpha_t (1 - p_t)^gamma BCE(x, z)."""
    x = np.asarray(x, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    with np.errstate(divide="ignore"):
        factor = np.power(_one_minus_pt(x, z), gamma)
    return _alpha_t(z, alpha) * factor * sigmoid_bce(x, z)


def sigmoid_focal_grad(x: np.ndarray, z: np.ndarray, alpha: float | None = 0.25, gamma: float = 2.0) -> np.ndarray:
    """dFL/dx = alpha_t [ F (p - z) + gamma BCE (1-p_t)^(gamma-1) p (1-p) (1 - 2z) ].

    The second term is evaluated in log space: (1-p_t)^(gamma-1) p (1-p) is finite
    (it tends to 0) even where 1 - p_t underflows and gamma < 1.
    """
    x = np.asarray(x, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    omp = _one_minus_pt(x, z)
    with np.errstate(divide="ignore"):
        log_omp = np.logaddexp(np.log(z) + _log_sigmoid(-x), np.log1p(-z) + _log_sigmoid(x))
        factor = np.power(omp, gamma)
    second = np.exp((gamma - 1.0) * log_omp + _log_sigmoid(x) + _log_sigmoid(-x))
    second = np.where(gamma == 0.0, 0.0, second)
    bce = sigmoid_bce(x, z)
    return _alpha_t(z, alpha) * (factor * (sigmoid(x) - z) + gamma * bce * second * (1.0 - 2.0 * z))


def weighted_sigmoid_focal(
    x: np.ndarray, z: np.ndarray, w: np.ndarray, alpha: float | None = 0.25, gamma: float = 2.0
) -> np.ndarray:
    """OpenPCDet module form: focal per element times the anchor weight, broadcast over classes."""
    return sigmoid_focal(x, z, alpha, gamma) * np.asarray(w, dtype=np.float64)[..., None]
