"""NumPy float64 oracles for the classification family: per-sample loops from the formulas."""

from __future__ import annotations

import numpy as np

__all__ = ["log_softmax", "softmax_cross_entropy", "weighted_cross_entropy", "softmax_focal", "kl_div"]


def log_softmax(x: np.ndarray, axis: int = 1) -> np.ndarray:
    x = np.asarray(x, np.float64)
    m = np.max(x, axis=axis, keepdims=True)
    return x - m - np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


def _move_classes_last(x: np.ndarray) -> np.ndarray:
    return np.moveaxis(np.asarray(x, np.float64), 1, -1).reshape(-1, x.shape[1])


def softmax_cross_entropy(x, t, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):  # type: ignore[no-untyped-def]
    """torch semantics, sample by sample."""
    x = np.asarray(x, np.float64)
    c = x.shape[1]
    rows = _move_classes_last(x)
    w = np.ones(c) if weight is None else np.asarray(weight, np.float64)
    eps = label_smoothing
    out = np.zeros(rows.shape[0])
    if np.issubdtype(np.asarray(t).dtype, np.floating):
        q = _move_classes_last(np.asarray(t, np.float64))
        for i, r in enumerate(rows):
            lp = log_softmax(r[None], 1)[0]
            qi = q[i] * (1 - eps) + eps / c
            out[i] = -sum(w[k] * qi[k] * lp[k] for k in range(c))
        shaped = out.reshape((x.shape[0],) + x.shape[2:])
        if reduction == "none":
            return shaped
        return out.sum() if reduction == "sum" else out.sum() / out.size if out.size else np.nan
    tt = np.asarray(t).reshape(-1)
    total_w = 0.0
    nll_sum = 0.0
    smooth_sum = 0.0
    for i, r in enumerate(rows):
        if tt[i] == ignore_index:
            continue
        lp = log_softmax(r[None], 1)[0]
        wi = w[int(tt[i])]
        nll = -wi * lp[int(tt[i])]
        smooth = -sum(w[k] * lp[k] for k in range(c))
        out[i] = (1 - eps) * nll + eps / c * smooth
        total_w += wi
        nll_sum += nll
        smooth_sum += smooth
    if reduction == "none":
        return out.reshape((x.shape[0],) + x.shape[2:])
    if reduction == "sum":
        return np.float64(out.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.float64((1 - eps) * nll_sum + eps / c * smooth_sum) / np.float64(total_w)


def weighted_cross_entropy(x, onehot, w):  # type: ignore[no-untyped-def]
    x = np.asarray(x, np.float64)
    out = np.zeros(x.shape[:2])
    for b in range(x.shape[0]):
        for a in range(x.shape[1]):
            k = int(np.argmax(onehot[b, a]))
            out[b, a] = -log_softmax(x[b, a][None], 1)[0][k] * float(w[b, a])
    return out


def softmax_focal(x, t, gamma=2.0, alpha=None, reduction="mean"):  # type: ignore[no-untyped-def]
    x = np.asarray(x, np.float64)
    out = np.zeros(x.shape[0])
    for i in range(x.shape[0]):
        lp = log_softmax(x[i][None], 1)[0][int(t[i])]
        pt = np.exp(lp)
        # 1 - p_t from the other classes' probabilities: no cancellation near p_t = 1.
        others = np.exp(log_softmax(x[i][None], 1)[0])
        one_minus = float(np.sum(np.delete(others, int(t[i]))))
        out[i] = (one_minus**gamma if gamma else 1.0) * -lp
        if alpha is not None:
            out[i] *= float(alpha[int(t[i])])
        del pt
    if reduction == "none":
        return out
    return np.float64(out.sum() if reduction == "sum" else (out.mean() if out.size else np.nan))


def kl_div(x, t, reduction="mean", log_target=False):  # type: ignore[no-untyped-def]
    x = np.asarray(x, np.float64)
    t = np.asarray(t, np.float64)
    if log_target:
        point = np.exp(t) * (t - x)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            point = np.where(t > 0, t * (np.log(np.where(t > 0, t, 1.0)) - x), 0.0 * x)
    if reduction == "none":
        return point
    if reduction == "sum":
        return np.float64(point.sum())
    if reduction == "batchmean":
        return np.float64(point.sum() / (x.shape[0] if x.ndim else 1))
    return np.float64(point.mean() if point.size else np.nan)
