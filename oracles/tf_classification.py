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
  (``keras.config.epsilon()``). Trusted where every class the (smoothed) target weighs
  has ``1e-7 <= p_c <= 1 - 1e-7`` (:func:`softmax_focal_domain`): below, ``-log p_c`` is
  capped at 16.118; above, the value is about ``alpha_c 1e-7^(gamma + 1)`` instead of
  something smaller (an absolute error under 1e-7). Its ``alpha`` array is a per-class
  weight, as in the spec; a scalar alpha (Keras' default 0.25) would multiply every class.
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
SOFTMAX_FOCAL_DOMAIN = "entries whose weighed classes have 1e-7 <= p_c <= 1 - 1e-7 (Keras clips probabilities to [epsilon, 1 - epsilon])"
KL_DIV_DOMAIN = "elements with 1e-7 <= t <= 1 and log(1e-7) <= x <= 0 (Keras clips both distributions to [epsilon, 1])"


def softmax_focal_domain(
    logits: ArrayLike, target: ArrayLike, *, ignore_index: int | None = None, label_smoothing: float = 0.0
) -> NDArray[np.bool_]:
    """(N, d1, ...) mask of the entries where the Keras focal oracle is trusted: Keras clips every
    probability to ``[1e-7, 1 - 1e-7]``, so each class the smoothed target weighs (only the
    target class without smoothing) must lie inside; ignored entries are trusted (they give 0)."""
    x = np.asarray(logits, dtype=np.float64)
    t = np.asarray(target).astype(np.int64)
    n_cls = x.shape[1]
    rows = np.moveaxis(x, 1, -1).reshape(-1, n_cls)
    flat = t.reshape(-1)
    keep = np.ones(flat.shape, dtype=bool) if ignore_index is None else flat != ignore_index
    if rows.shape[0] == 0:
        return np.ones(t.shape, dtype=bool)
    with np.errstate(invalid="ignore", over="ignore"):
        z = rows - rows.max(axis=1, keepdims=True)
        p = np.exp(z - np.log(np.exp(z).sum(axis=1, keepdims=True)))
        inside = (p >= KERAS_EPSILON) & (p <= 1 - KERAS_EPSILON)
    weighed = np.ones_like(inside) if label_smoothing > 0 else np.eye(n_cls, dtype=bool)[np.where(keep, flat, 0)]
    ok = np.all(inside | ~weighed, axis=1) | ~keep
    return ok.reshape(t.shape)


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
        # A zero denominator leaves the mean undefined: nan (torch's), whatever the numerator.
        return np.float64(per.sum()) / np.float64(denominator) if denominator != 0 else np.float64(np.nan)
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
    alpha: ArrayLike | float | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    compute_dtype: str = "float64",
) -> F64 | np.float64:
    """Softmax focal loss through ``keras.losses.CategoricalFocalCrossentropy(from_logits=True)``.

    The class axis is moved last and the class index one-hot encoded for Keras, which
    smooths the labels itself (``label_smoothing``). ``alpha=None`` is Keras' ``alpha=1.0``
    (not its default 0.25); a (C,) ``alpha`` is passed as Keras' per-class array; a number
    ``a`` is the background convention ``[1 - a, a, ..., a]`` as an array (Keras' own scalar
    alpha would weight every class alike). Ignored entries are 0 and leave the mean's
    denominator.

    Args:
        logits: (N, C) or (N, C, d1, ...).
        target: (N,) or (N, d1, ...) integer indices.
        gamma: focusing parameter, >= 0.
        alpha: None, (C,) per-class weights, or a number in [0, 1].
        ignore_index: target value to skip, or None.
        label_smoothing: eps in [0, 1].
        reduction: "none" | "mean" (over non-ignored entries) | "sum".
        compute_dtype: "float64" or "float32".

    Returns:
        (N, d1, ...) float64 for "none", else a float64 scalar. Trusted per entry: :func:`softmax_focal_domain`.
    """
    from oracles.tf import keras

    x = np.asarray(logits, dtype=np.float64)
    t = np.asarray(target).astype(np.int64).reshape(-1)
    n_cls = x.shape[1]
    out_shape = (x.shape[0], *x.shape[2:])
    keep = np.ones(t.shape, dtype=bool) if ignore_index is None else t != ignore_index
    if not keep.any():
        return _reduce(np.zeros(out_shape), reduction, 0.0)
    rows = np.moveaxis(x, 1, -1).reshape(-1, n_cls)[keep]
    if alpha is None:
        a: Any = 1.0
    else:
        # An array, not a list: Keras turns a Python list into a float32 tensor, rounding the weights.
        vec = [1.0 - float(alpha)] + [float(alpha)] * (n_cls - 1) if np.ndim(alpha) == 0 else alpha  # type: ignore[arg-type]
        a = np.asarray(vec, dtype=compute_dtype)
    loss = keras().losses.CategoricalFocalCrossentropy(
        alpha=a, gamma=float(gamma), from_logits=True, label_smoothing=float(label_smoothing), reduction=None,
        dtype=compute_dtype,
    )
    one_hot = np.eye(n_cls, dtype=compute_dtype)[t[keep]]
    per = np.zeros(t.shape, dtype=np.float64)
    per[keep] = np.asarray(loss(one_hot, rows.astype(compute_dtype)), dtype=np.float64)
    return _reduce(per.reshape(out_shape), reduction, float(keep.sum()))


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
