"""TensorFlow / Keras oracles for the softmax family, mirroring ``impls.classification`` by name.

Each function takes NumPy arrays and returns float64 NumPy values; TensorFlow is
imported inside the functions, never when this module is imported. ``compute_dtype``
is the dtype TensorFlow computes in: ``"float64"`` (default, an oracle) or
``"float32"`` (what a Keras user gets by default).

Trusted domains (also as the ``*_DOMAIN`` constants and the ``*_domain`` predicates):

- ``softmax_cross_entropy``, ``weighted_cross_entropy``: all finite logits.
  ``tf.nn.softmax_cross_entropy_with_logits`` computes ``-sum_c labels_c log_softmax_c``
  for *any* non-negative labels, so class weights and label smoothing are handed to
  it as the labels ``w_c q_c`` (``q`` the smoothed target, built in NumPy); index
  targets without weights or smoothing go through the sparse op untouched.
- ``softmax_focal``: ``keras.losses.CategoricalFocalCrossentropy(from_logits=True)``
  takes the softmax, then clips every probability to ``[1e-7, 1 - 1e-7]``
  (``keras.config.epsilon()``). Trusted where ``1e-7 <= p_t <= 1 - 1e-7``
  (:func:`softmax_focal_domain`): below, ``-log p_t`` is capped at 16.118; above, the
  value is about ``alpha_t 1e-7^(gamma + 1)`` instead of something smaller (an absolute
  error under 1e-7). Its ``alpha`` list is a per-class weight, as in the spec; a
  scalar alpha (Keras' default 0.25) would multiply every sample.
- ``kl_div``: ``keras.losses.KLDivergence`` works on probabilities, clipping both to
  ``[1e-7, 1]``: trusted per element where ``1e-7 <= t <= 1`` and
  ``log 1e-7 <= x <= 0`` (:func:`kl_div_domain`). A zero target probability becomes
  1e-7, an absolute error of at most ``1e-7 (16.12 + |x|)`` per element.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "KERAS_EPSILON",
    "KL_DIV_DOMAIN",
    "SOFTMAX_CROSS_ENTROPY_DOMAIN",
    "SOFTMAX_FOCAL_DOMAIN",
    "WEIGHTED_CROSS_ENTROPY_DOMAIN",
    "kl_div",
    "kl_div_domain",
    "softmax_cross_entropy",
    "softmax_focal",
    "softmax_focal_domain",
    "weighted_cross_entropy",
]

F64 = NDArray[np.float64]

KERAS_EPSILON = 1e-7
SOFTMAX_CROSS_ENTROPY_DOMAIN = "all finite logits, any weights, ignore_index and label smoothing; rounding of compute_dtype"
WEIGHTED_CROSS_ENTROPY_DOMAIN = "all finite logits; rounding of compute_dtype"
SOFTMAX_FOCAL_DOMAIN = "samples with 1e-7 <= p_t <= 1 - 1e-7 (Keras clips probabilities to [epsilon, 1 - epsilon])"
KL_DIV_DOMAIN = "elements with 1e-7 <= t <= 1 and log(1e-7) <= x <= 0 (Keras clips both distributions to [epsilon, 1])"


def _p_t(logits: ArrayLike, target: ArrayLike) -> F64:
    x = np.asarray(logits, dtype=np.float64)
    t = np.asarray(target).astype(np.int64).reshape(-1)
    if x.shape[0] == 0:
        return np.zeros(0)
    z = x - x.max(axis=1, keepdims=True)
    lp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return np.exp(lp[np.arange(x.shape[0]), t])


def softmax_focal_domain(logits: ArrayLike, target: ArrayLike) -> NDArray[np.bool_]:
    """(N,) mask of the samples where the Keras focal oracle is trusted: ``1e-7 <= p_t <= 1 - 1e-7``."""
    p = _p_t(logits, target)
    return (p >= KERAS_EPSILON) & (p <= 1 - KERAS_EPSILON)


def kl_div_domain(input: ArrayLike, target: ArrayLike, *, log_target: bool = False) -> NDArray[np.bool_]:
    """Elementwise mask where the Keras KL oracle is trusted (no clipping of either distribution)."""
    x = np.asarray(input, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    with np.errstate(over="ignore"):
        p = np.exp(t) if log_target else t
    return (p >= KERAS_EPSILON) & (p <= 1) & (x >= math.log(KERAS_EPSILON)) & (x <= 0)


def _reduce(per: F64, reduction: str, denominator: float) -> F64 | np.float64:
    if reduction == "none":
        return per
    if reduction == "sum":
        return np.float64(per.sum())
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.float64(per.sum()) / np.float64(denominator)
    raise ValueError(f"reduction must be one of ('none', 'mean', 'sum'), got {reduction!r}")


def softmax_cross_entropy(
    logits: ArrayLike,
    target: ArrayLike,
    *,
    weight: ArrayLike | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    compute_dtype: str = "float64",
) -> F64 | np.float64:
    """Cross-entropy with torch semantics through ``tf.nn.(sparse_)softmax_cross_entropy_with_logits``.

    Args:
        logits: (N, C) or (N, C, d1, ...); the class axis is moved last for TensorFlow.
        target: (N, d1, ...) integer indices, or floating probabilities shaped like ``logits``.
        weight: (C,) class weights or None.
        ignore_index: index target value to skip (loss 0, out of the mean's denominator).
        label_smoothing: eps in [0, 1].
        reduction: "none" | "mean" | "sum"; the mean divides by ``sum w[t]`` over
            non-ignored samples for index targets, by the sample count for probabilities.
        compute_dtype: "float64" or "float32".

    Returns:
        (N, d1, ...) float64 for "none", else a float64 scalar. Trusted: :data:`SOFTMAX_CROSS_ENTROPY_DOMAIN`.
    """
    from oracles.tf import tf

    t_mod = tf()
    x = np.asarray(logits, dtype=np.float64)
    tgt = np.asarray(target)
    n_cls = x.shape[1]
    out_shape = (x.shape[0], *x.shape[2:])
    rows = np.moveaxis(x, 1, -1).reshape(-1, n_cls).astype(compute_dtype)
    w = np.ones(n_cls) if weight is None else np.asarray(weight, dtype=np.float64)
    eps = float(label_smoothing)
    if rows.shape[0] == 0:
        return _reduce(np.zeros(out_shape), reduction, 0.0)
    if np.issubdtype(tgt.dtype, np.floating):
        q = np.moveaxis(tgt.astype(np.float64), 1, -1).reshape(-1, n_cls)
        labels = w * ((1 - eps) * q + eps / n_cls)
        per = t_mod.nn.softmax_cross_entropy_with_logits(labels=labels.astype(compute_dtype), logits=rows)
        per_np = np.asarray(per.numpy(), dtype=np.float64)
        return _reduce(per_np.reshape(out_shape), reduction, per_np.size)
    flat = tgt.reshape(-1).astype(np.int64)
    keep = flat != ignore_index
    safe = np.where(keep, flat, 0)
    if weight is None and eps == 0:
        per = t_mod.nn.sparse_softmax_cross_entropy_with_logits(labels=safe, logits=rows)
    else:
        q = np.full((flat.size, n_cls), eps / n_cls)
        q[np.arange(flat.size), safe] += 1 - eps
        per = t_mod.nn.softmax_cross_entropy_with_logits(labels=(w * q).astype(compute_dtype), logits=rows)
    per_np = np.where(keep, np.asarray(per.numpy(), dtype=np.float64), 0.0)
    return _reduce(per_np.reshape(out_shape), reduction, float(w[safe][keep].sum()))


def weighted_cross_entropy(
    logits: ArrayLike, target: ArrayLike, weights: ArrayLike, *, compute_dtype: str = "float64"
) -> F64:
    """OpenPCDet weighted CE: ``tf.nn.sparse_softmax_cross_entropy_with_logits(argmax(target)) * weights``.

    Args:
        logits: (B, A, C).
        target: (B, A, C) one-hot.
        weights: (B, A) anchor weights.
        compute_dtype: "float64" or "float32".

    Returns:
        (B, A) float64. Trusted: :data:`WEIGHTED_CROSS_ENTROPY_DOMAIN`.
    """
    from oracles.tf import tf

    x = np.asarray(logits, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if x.size == 0:
        return np.zeros(x.shape[:2])
    labels = np.argmax(np.asarray(target), axis=-1).astype(np.int64)
    per = tf().nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=x.astype(compute_dtype))
    return np.asarray(per.numpy(), dtype=np.float64) * w


def softmax_focal(
    logits: ArrayLike,
    target: ArrayLike,
    *,
    gamma: float = 2.0,
    alpha: ArrayLike | None = None,
    reduction: str = "mean",
    compute_dtype: str = "float64",
) -> F64 | np.float64:
    """Softmax focal loss through ``keras.losses.CategoricalFocalCrossentropy(from_logits=True)``.

    The class index is one-hot encoded for Keras; ``alpha=None`` is Keras' ``alpha=1.0``
    (not its default 0.25), a (C,) ``alpha`` is passed as Keras' per-class list.

    Args:
        logits: (N, C).
        target: (N,) integer indices.
        gamma: focusing parameter, >= 0.
        alpha: (C,) per-class weights or None.
        reduction: "none" | "mean" (over samples) | "sum".
        compute_dtype: "float64" or "float32".

    Returns:
        (N,) float64 for "none", else a float64 scalar. Trusted per sample: :func:`softmax_focal_domain`.
    """
    from oracles.tf import keras

    x = np.asarray(logits, dtype=np.float64)
    t = np.asarray(target).astype(np.int64).reshape(-1)
    if x.shape[0] == 0:
        return _reduce(np.zeros(0), reduction, 0.0)
    # An array, not a list: Keras turns a Python list into a float32 tensor, rounding the weights.
    a: Any = 1.0 if alpha is None else np.asarray(alpha, dtype=compute_dtype)
    loss = keras().losses.CategoricalFocalCrossentropy(
        alpha=a, gamma=float(gamma), from_logits=True, reduction=None, dtype=compute_dtype
    )
    one_hot = np.eye(x.shape[1], dtype=compute_dtype)[t]
    per = np.asarray(loss(one_hot, x.astype(compute_dtype)), dtype=np.float64)
    return _reduce(per, reduction, per.size)


def kl_div(
    input: ArrayLike,
    target: ArrayLike,
    *,
    reduction: str = "mean",
    log_target: bool = False,
    compute_dtype: str = "float64",
) -> F64 | np.float64:
    """KL divergence with torch's reductions through ``keras.losses.KLDivergence``, elementwise.

    Keras works on probabilities: ``y_pred = exp(input)`` and ``y_true = target`` (or
    ``exp(target)`` when ``log_target``), each element fed as its own row so that
    Keras' sum over the last axis is a single term ``t log(t / p)``.

    Args:
        input: (N, *) log-probabilities.
        target: same shape; probabilities, or log-probabilities if ``log_target``.
        reduction: "none" | "mean" (over elements) | "sum" | "batchmean" (sum / N).
        log_target: whether the target is in log space.
        compute_dtype: "float64" or "float32".

    Returns:
        Pointwise float64 for "none", else a float64 scalar. Trusted per element: :func:`kl_div_domain`.
    """
    from oracles.tf import keras

    x = np.asarray(input, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    if x.size == 0:
        point = np.zeros(x.shape)
    else:
        p_true = np.exp(t) if log_target else t
        loss = keras().losses.KLDivergence(reduction=None, dtype=compute_dtype)
        rows = loss(p_true.reshape(-1, 1).astype(compute_dtype), np.exp(x).reshape(-1, 1).astype(compute_dtype))
        point = np.asarray(rows, dtype=np.float64).reshape(x.shape)
    if reduction == "batchmean":
        if x.ndim == 0:
            return np.float64(point.sum())
        return _reduce(point, "mean", x.shape[0])
    return _reduce(point, reduction, point.size)
