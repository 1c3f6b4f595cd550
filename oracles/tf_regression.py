"""TensorFlow / Keras oracles for the regression family, mirroring ``impls.regression`` by name.

Each function takes NumPy arrays, runs the Keras loss, and returns a float64 NumPy
array. TensorFlow is imported inside the functions (it costs seconds), never when
this module is imported.

Keras losses average over the last axis, so every element is fed as its own row of
shape (1,) and ``reduction=None`` keeps one value per element. ``compute_dtype``
picks the Keras loss dtype: ``"float64"`` (default, an oracle) or ``"float32"``
(what a Keras user gets by default; then compare with a float32 tolerance).

Trusted domains (also as the ``*_DOMAIN`` constants and :func:`smooth_l1_domain`):

- ``huber``, ``l1``, ``mse``: every finite input, rounding of ``compute_dtype`` only.
- ``smooth_l1`` (``Huber(delta=beta) / beta``): only ``beta >= 1e-5``. Huber has no L1
  limit: ``beta = 0`` gives 0 / 0 = nan, and ``0 < beta < 1e-5`` gives ``|d| - beta/2``
  where the spec (OpenPCDet) switches to ``|d|``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "HUBER_DOMAIN",
    "L1_DOMAIN",
    "MSE_DOMAIN",
    "SMOOTH_L1_DOMAIN",
    "SMOOTH_L1_MIN_BETA",
    "huber",
    "l1",
    "mse",
    "smooth_l1",
    "smooth_l1_domain",
]

F64 = NDArray[np.float64]

SMOOTH_L1_MIN_BETA = 1e-5
HUBER_DOMAIN = "all finite inputs and delta > 0; rounding of compute_dtype (float64 by default)"
SMOOTH_L1_DOMAIN = "beta >= 1e-5 only (Huber / beta has no L1 limit: nan at beta = 0); rounding of compute_dtype"
L1_DOMAIN = "all finite inputs; rounding of compute_dtype"
MSE_DOMAIN = "all finite inputs; rounding of compute_dtype"


def smooth_l1_domain(beta: float) -> bool:
    """Whether ``Huber(delta=beta) / beta`` may be trusted as smooth L1 for this ``beta``."""
    return beta >= SMOOTH_L1_MIN_BETA


def _elementwise(loss: Any, input: ArrayLike, target: ArrayLike, dtype: str) -> F64:
    """Apply a Keras loss to every element (rows of length 1), back in the input's shape."""
    x = np.asarray(input, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"target must have the input's shape {x.shape}, got {y.shape}")
    if x.size == 0:
        return np.zeros(x.shape, dtype=np.float64)
    rows_x = x.reshape(-1, 1).astype(dtype)
    rows_y = y.reshape(-1, 1).astype(dtype)
    out = np.asarray(loss(rows_y, rows_x), dtype=np.float64)
    return out.reshape(x.shape)


def huber(input: ArrayLike, target: ArrayLike, *, delta: float = 1.0, compute_dtype: str = "float64") -> F64:
    """``keras.losses.Huber(delta)`` elementwise: ``0.5 d^2`` for ``|d| <= delta``, else ``delta (|d| - delta/2)``.

    Args:
        input: (*) predictions.
        target: (*) targets, same shape.
        delta: Huber transition, > 0.
        compute_dtype: Keras loss dtype, "float64" or "float32".

    Returns:
        (*) float64 array. Trusted: :data:`HUBER_DOMAIN`.
    """
    from oracles.tf import keras

    loss = keras().losses.Huber(delta=float(delta), reduction=None, dtype=compute_dtype)
    return _elementwise(loss, input, target, compute_dtype)


def smooth_l1(input: ArrayLike, target: ArrayLike, *, beta: float = 1.0, compute_dtype: str = "float64") -> F64:
    """Smooth L1 as ``keras.losses.Huber(delta=beta) / beta``, elementwise.

    Args:
        input: (*) predictions.
        target: (*) targets, same shape.
        beta: smooth L1 transition; trusted only for ``beta >= 1e-5`` (:func:`smooth_l1_domain`).
        compute_dtype: Keras loss dtype, "float64" or "float32".

    Returns:
        (*) float64 array (nan for beta = 0). Trusted: :data:`SMOOTH_L1_DOMAIN`.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        return huber(input, target, delta=beta, compute_dtype=compute_dtype) / np.float64(beta)


def l1(input: ArrayLike, target: ArrayLike, *, compute_dtype: str = "float64") -> F64:
    """``keras.losses.MeanAbsoluteError`` elementwise: ``|x - y|``.

    Args:
        input: (*) predictions.
        target: (*) targets, same shape.
        compute_dtype: Keras loss dtype, "float64" or "float32".

    Returns:
        (*) float64 array. Trusted: :data:`L1_DOMAIN`.
    """
    from oracles.tf import keras

    loss = keras().losses.MeanAbsoluteError(reduction=None, dtype=compute_dtype)
    return _elementwise(loss, input, target, compute_dtype)


def mse(input: ArrayLike, target: ArrayLike, *, compute_dtype: str = "float64") -> F64:
    """``keras.losses.MeanSquaredError`` elementwise: ``(x - y)^2``.

    Args:
        input: (*) predictions.
        target: (*) targets, same shape.
        compute_dtype: Keras loss dtype, "float64" or "float32".

    Returns:
        (*) float64 array. Trusted: :data:`MSE_DOMAIN`.
    """
    from oracles.tf import keras

    loss = keras().losses.MeanSquaredError(reduction=None, dtype=compute_dtype)
    return _elementwise(loss, input, target, compute_dtype)
