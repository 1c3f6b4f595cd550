"""NumPy float64 oracles for the CenterNet / CenterFusion family (same names as ``impls.centernet``).

Written from the formulas, not from ``impls``: heatmap losses are dense sums over
pixels, gathered heads are explicit loops over (batch, slot) that index the map at
``(y, x) = divmod(ind, W)``, rotation bins are scalar ``if`` chains. Masked-out slots
are skipped by the loops, so nothing a padding slot holds reaches the sum.
Trusted for finite inputs in the stated domains; the logits form for every finite
float64 logit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = [
    "bin_rot",
    "clamped_sigmoid",
    "decode_alpha_from_bins",
    "depth_l1",
    "depth_transform",
    "encode_alpha_to_bins",
    "fast_focal",
    "generic_loss",
    "penalty_reduced_focal",
    "penalty_reduced_focal_logits",
    "penalty_reduced_focal_logits_grad",
    "reg_weighted_l1",
    "seed_bin_rot",
    "seed_generic_loss",
    "sigmoid",
    "weighted_bce",
]

_CLAMP = 1e-4
_DEP_EPS = 1e-6
_NORM_EPS = 1e-4
_LOSS_ORDER = (
    "hm",
    "wh",
    "reg",
    "ltrb",
    "hps",
    "hm_hp",
    "hp_offset",
    "dep",
    "dep_sec",
    "dim",
    "rot",
    "rot_sec",
    "amodel_offset",
    "ltrb_amodal",
    "tracking",
    "nuscenes_att",
    "velocity",
)


def _f64(a: object) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def sigmoid(x: np.ndarray) -> np.ndarray:
    x = _f64(x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def clamped_sigmoid(x: np.ndarray) -> np.ndarray:
    """min(max(sigmoid(x), 1e-4), 1 - 1e-4)."""
    return np.clip(sigmoid(x), _CLAMP, 1.0 - _CLAMP)


def depth_transform(x: np.ndarray) -> np.ndarray:
    """1 / (sigmoid(x) + 1e-6) - 1, evaluated literally (float64 absolute error ~1e-16)."""
    return 1.0 / (sigmoid(x) + _DEP_EPS) - 1.0


def _softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + e^x) = -log(1 - sigmoid(x))."""
    return np.logaddexp(0.0, _f64(x))


def _neg_term(pv: float, yv: float, alpha: float, beta: float) -> float:
    """-(1 - y)^b p^a log(1 - p) for a negative pixel (+inf at p == 1 with a nonzero weight)."""
    w = (1.0 - yv) ** beta
    if pv == 1.0:
        return math.inf if w > 0 else 0.0
    return w * pv**alpha * -math.log1p(-pv)


def _pos_term(pv: float, alpha: float) -> float:
    """-(1 - p)^a log p for a positive (+inf at p == 0)."""
    return math.inf if pv == 0.0 else (1.0 - pv) ** alpha * -math.log(pv)


def penalty_reduced_focal(
    pred: np.ndarray,
    gt: np.ndarray,
    ind: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    cat: np.ndarray | None = None,
    alpha: float = 2.0,
    beta: float = 4.0,
    positive_threshold: float | None = None,
    positive_weight: float = 1.0,
    negative_weight: float = 1.0,
    from_logits: bool = False,
) -> float:
    """(pw * pos + nw * neg) / N, nw * neg when N == 0.

    A pixel is positive when y == 1 (y > positive_threshold when given); every other
    pixel adds -(1-y)^b p^a log(1-p) to neg. Gather form (ind, mask, cat): pos adds
    mask * -(1-p)^a log p at p[b, cat, ind] per slot, N = sum mask. Dense form: pos adds
    that term at every positive pixel, N = their count. With ``from_logits``,
    p = min(max(sigmoid(x), 1e-4), 1 - 1e-4). Sums are correctly rounded (math.fsum).
    """
    p = clamped_sigmoid(pred) if from_logits else _f64(pred)
    y = _f64(gt)
    neg_terms: list[float] = []
    pos_terms: list[float] = []
    n = 0.0
    for idx in np.ndindex(p.shape):
        pv, yv = float(p[idx]), float(y[idx])
        positive = yv == 1.0 if positive_threshold is None else yv > positive_threshold
        if not positive:
            neg_terms.append(_neg_term(pv, yv, alpha, beta))
        elif ind is None:
            pos_terms.append(_pos_term(pv, alpha))
            n += 1.0
    if ind is not None:
        assert mask is not None and cat is not None
        ind_a, cat_a, mask_a = np.asarray(ind), np.asarray(cat), _f64(mask)
        width = p.shape[3]
        for b in range(ind_a.shape[0]):
            for j in range(ind_a.shape[1]):
                m = float(mask_a[b, j])
                if m == 0.0:
                    continue
                row, col = divmod(int(ind_a[b, j]), width)
                pos_terms.append(m * _pos_term(float(p[b, int(cat_a[b, j]), row, col]), alpha))
                n += m
    neg = negative_weight * _sum(neg_terms)
    if n == 0.0:
        return neg
    return (positive_weight * _sum(pos_terms) + neg) / n


def _sum(terms: list[float]) -> float:
    """The correctly rounded sum; fsum raises on inf, which the plain sum carries."""
    return math.fsum(terms) if all(math.isfinite(t) for t in terms) else float(sum(terms))


def fast_focal(
    pred: np.ndarray,
    gt: np.ndarray,
    ind: np.ndarray,
    mask: np.ndarray,
    cat: np.ndarray,
    alpha: float = 2.0,
    beta: float = 4.0,
) -> float:
    """The gather form with the seed's defaults (GenericLoss's heatmap heads)."""
    return penalty_reduced_focal(pred, gt, ind, mask, cat, alpha, beta)


def penalty_reduced_focal_logits(x: np.ndarray, gt: np.ndarray, alpha: float = 2.0, beta: float = 4.0) -> float:
    """The dense loss at p = sigmoid(x): -log p = softplus(-x), -log(1-p) = softplus(x), p^a = exp(-a softplus(-x))."""
    x = _f64(x)
    y = _f64(gt)
    pos = y == 1.0
    sp_neg = _softplus(-x)  # -log p
    sp_pos = _softplus(x)  # -log(1 - p)
    with np.errstate(invalid="ignore"):
        pos_el = np.exp(-alpha * sp_pos) * sp_neg
        neg_el = np.power(1.0 - y, beta) * np.exp(-alpha * sp_neg) * sp_pos
    n = max(int(pos.sum()), 1)
    # Scaled before the (correctly rounded) sum, so that terms near the float64 maximum do not overflow it.
    return math.fsum(np.concatenate([pos_el[pos] / n, neg_el[~pos] / n]).tolist())


def penalty_reduced_focal_logits_grad(
    x: np.ndarray, gt: np.ndarray, alpha: float = 2.0, beta: float = 4.0
) -> np.ndarray:
    """d loss / dx elementwise, from the product rule written with p = sigmoid(x), q = 1 - p:

    positives: -[a q^a p softplus(-x) + q^(a+1)] / N; negatives: (1-y)^b [a p^a q softplus(x) + p^(a+1)] / N,
    with N = max(#positives, 1). ``q^a p softplus(-x)`` is formed as
    ``exp(a log q + log p + log softplus(-x))`` so that no factor overflows.
    """
    x = _f64(x)
    y = _f64(gt)
    pos = y == 1.0
    n = max(int(pos.sum()), 1)
    log_p = -_softplus(-x)
    log_q = -_softplus(x)
    with np.errstate(divide="ignore"):
        sp_n = _softplus(-x)
        sp_p = _softplus(x)
        g_pos = -(alpha * np.exp(alpha * log_q + log_p + np.log(sp_n)) + np.exp((alpha + 1.0) * log_q))
        g_neg = np.power(1.0 - y, beta) * (
            alpha * np.exp(alpha * log_p + log_q + np.log(sp_p)) + np.exp((alpha + 1.0) * log_p)
        )
    return np.where(pos, g_pos, np.where(y < 1.0, g_neg, 0.0)) / n


def _expand_mask(mask: np.ndarray, dim: int) -> np.ndarray:
    mask = _f64(mask)
    return np.repeat(mask[:, :, None], dim, axis=2) if mask.ndim == 2 else mask


def reg_weighted_l1(output: np.ndarray, mask: np.ndarray, ind: np.ndarray, target: np.ndarray) -> float:
    """sum mask |output[b, d, y, x] - target[b, m, d]| / (sum mask + 1e-4), (B, M) masks repeated over D."""
    out = _f64(output)
    tgt = _f64(target)
    ind = np.asarray(ind)
    dim, width = out.shape[1], out.shape[3]
    m3 = _expand_mask(mask, dim)
    total = 0.0
    for b in range(ind.shape[0]):
        for j in range(ind.shape[1]):
            row, col = divmod(int(ind[b, j]), width)
            for d in range(dim):
                if m3[b, j, d] != 0.0:
                    total += m3[b, j, d] * abs(out[b, d, row, col] - tgt[b, j, d])
    return total / (m3.sum() + _NORM_EPS)


def depth_l1(output: np.ndarray, target: np.ndarray, ind: np.ndarray, mask: np.ndarray, cat: np.ndarray) -> float:
    """sum mask |depth_transform(output)[b, c, y, x] - target| / (sum mask + 1e-4); c = cat if C > 1 else 0."""
    dep = depth_transform(output)
    ind = np.asarray(ind)
    cat = np.asarray(cat)
    b_, m_ = ind.shape
    tgt = _f64(target).reshape(b_, m_)
    msk = _f64(mask).reshape(b_, m_)
    n_cls, width = dep.shape[1], dep.shape[3]
    total = 0.0
    for b in range(b_):
        for j in range(m_):
            if msk[b, j] == 0.0:
                continue
            row, col = divmod(int(ind[b, j]), width)
            c = int(cat[b, j]) if n_cls > 1 else 0
            total += msk[b, j] * abs(dep[b, c, row, col] - tgt[b, j])
    return total / (msk.sum() + _NORM_EPS)


def _bce_logits(x: float, z: float) -> float:
    # max(x, 0) - x z + log(1 + e^-|x|): the TensorFlow form, exact enough in float64 here.
    return max(x, 0.0) - x * z + math.log1p(math.exp(-abs(x)))


def weighted_bce(output: np.ndarray, mask: np.ndarray, ind: np.ndarray, target: np.ndarray) -> float:
    """sum mask BCE_logits(output[b, f, y, x], target[b, m, f]) / (sum mask + 1e-4)."""
    out = _f64(output)
    tgt = _f64(target)
    ind = np.asarray(ind)
    nf, width = out.shape[1], out.shape[3]
    m3 = _expand_mask(mask, nf)
    total = 0.0
    for b in range(ind.shape[0]):
        for j in range(ind.shape[1]):
            row, col = divmod(int(ind[b, j]), width)
            for f in range(nf):
                if m3[b, j, f] != 0.0:
                    total += m3[b, j, f] * _bce_logits(float(out[b, f, row, col]), float(tgt[b, j, f]))
    return total / (m3.sum() + _NORM_EPS)


def _ce2(l0: float, l1: float, t: int) -> float:
    top = max(l0, l1)
    lse = top + math.log(math.exp(l0 - top) + math.exp(l1 - top))
    return lse - (l1 if t == 1 else l0)


def _sl1(d: float) -> float:
    a = abs(d)
    return 0.5 * a * a if a < 1.0 else a - 0.5


def _slot_rot_terms(v: np.ndarray, bins: np.ndarray, res: np.ndarray) -> tuple[list[float], list[float]]:
    """Per bin k: CE of (v[4k], v[4k+1]) against bins[k], and SL1(sin) + SL1(cos) of the residual."""
    ce, rr = [], []
    for k in range(2):
        base = 4 * k
        ce.append(_ce2(float(v[base]), float(v[base + 1]), int(bins[k])))
        r = float(res[k])
        rr.append(_sl1(float(v[base + 2]) - math.sin(r)) + _sl1(float(v[base + 3]) - math.cos(r)))
    return ce, rr


def bin_rot(output: np.ndarray, mask: np.ndarray, ind: np.ndarray, rotbin: np.ndarray, rotres: np.ndarray) -> float:
    """CE_1 + CE_2 (mask-weighted means) + R_1 + R_2 (means over masked slots whose bin is active)."""
    out = _f64(output)
    ind = np.asarray(ind)
    rotbin = np.asarray(rotbin)
    rotres = _f64(rotres)
    b_, m_ = ind.shape
    msk = _f64(mask).reshape(b_, m_)
    width = out.shape[3]
    ce_sum, n = 0.0, 0.0
    res_sum, res_n = [0.0, 0.0], [0.0, 0.0]
    for b in range(b_):
        for j in range(m_):
            m = float(msk[b, j])
            if m == 0.0:
                continue
            row, col = divmod(int(ind[b, j]), width)
            ce, rr = _slot_rot_terms(out[b, :, row, col], rotbin[b, j], rotres[b, j])
            ce_sum += m * (ce[0] + ce[1])
            n += m
            for k in range(2):
                if rotbin[b, j, k] == 1:
                    res_sum[k] += m * rr[k]
                    res_n[k] += m
    total = ce_sum / n if n > 0 else 0.0
    for k in range(2):
        total += res_sum[k] / res_n[k] if res_n[k] > 0 else 0.0
    return total


def seed_bin_rot(
    output: np.ndarray, mask: np.ndarray, ind: np.ndarray, rotbin: np.ndarray, rotres: np.ndarray
) -> float:
    """Seed 003's compute_rot_loss: logits times mask, CE mean over all B*M slots, residuals where rotbin == 1."""
    out = _f64(output)
    ind = np.asarray(ind)
    rotbin = np.asarray(rotbin)
    rotres = _f64(rotres)
    b_, m_ = ind.shape
    msk = _f64(mask).reshape(b_, m_)
    width = out.shape[3]
    ce_sum = [0.0, 0.0]
    res_sum, res_n = [0.0, 0.0], [0, 0]
    for b in range(b_):
        for j in range(m_):
            row, col = divmod(int(ind[b, j]), width)
            v = out[b, :, row, col].copy()
            m = float(msk[b, j])
            for k in (0, 1, 4, 5):
                v[k] *= m
            ce, rr = _slot_rot_terms(v, rotbin[b, j], rotres[b, j])
            for k in range(2):
                ce_sum[k] += ce[k]
                if rotbin[b, j, k] != 0:
                    res_sum[k] += rr[k]
                    res_n[k] += 1
    slots = b_ * m_
    total = (ce_sum[0] + ce_sum[1]) / slots if slots > 0 else math.nan
    for k in range(2):
        total += res_sum[k] / res_n[k] if res_n[k] > 0 else 0.0
    return total


def encode_alpha_to_bins(alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Seed's _add_rot per angle, after wrapping out-of-range angles into [-pi, pi)."""
    a_in = _f64(alpha)
    rotbin = np.zeros(a_in.shape + (2,), dtype=np.int64)
    rotres = np.zeros(a_in.shape + (2,), dtype=np.float64)
    for idx in np.ndindex(a_in.shape):
        a = float(a_in[idx])
        if not (-math.pi <= a < math.pi):
            a = a - 2.0 * math.pi * math.floor((a + math.pi) / (2.0 * math.pi))
        if a < math.pi / 6.0 or a > 5.0 * math.pi / 6.0:
            rotbin[idx + (0,)] = 1
            rotres[idx + (0,)] = a - (-0.5 * math.pi)
        if a > -math.pi / 6.0 or a < -5.0 * math.pi / 6.0:
            rotbin[idx + (1,)] = 1
            rotres[idx + (1,)] = a - 0.5 * math.pi
    return rotbin, rotres


def decode_alpha_from_bins(rot: np.ndarray) -> np.ndarray:
    """atan2(sin, cos) + centre of the bin with the larger 'in bin' logit (ties: bin 2), wrapped to [-pi, pi)."""
    r = _f64(rot)
    out = np.zeros(r.shape[:-1], dtype=np.float64)
    for idx in np.ndindex(out.shape):
        v = r[idx]
        if v[1] > v[5]:
            a = math.atan2(v[2], v[3]) - 0.5 * math.pi
        else:
            a = math.atan2(v[6], v[7]) + 0.5 * math.pi
        out[idx] = (a + math.pi) % (2.0 * math.pi) - math.pi
    return out


_REG_HEADS = ("reg", "wh", "tracking", "ltrb", "ltrb_amodal", "hps", "dim", "amodel_offset", "velocity")


def _head(head: str, out: Mapping[str, np.ndarray], batch: Mapping[str, np.ndarray], rot_fn) -> float:  # type: ignore[no-untyped-def]
    if head == "hm":
        return fast_focal(out["hm"], batch["hm"], batch["ind"], batch["mask"], batch["cat"])
    if head == "hm_hp":
        return fast_focal(out["hm_hp"], batch["hm_hp"], batch["hp_ind"], batch["hm_hp_mask"], batch["joint"])
    if head == "hp_offset":
        return reg_weighted_l1(out["hp_offset"], batch["hp_offset_mask"], batch["hp_ind"], batch["hp_offset"])
    if head in ("rot", "rot_sec"):
        return rot_fn(out[head], batch["rot_mask"], batch["ind"], batch["rotbin"], batch["rotres"])
    if head == "nuscenes_att":
        return weighted_bce(out[head], batch["nuscenes_att_mask"], batch["ind"], batch["nuscenes_att"])
    if head in _REG_HEADS:
        return reg_weighted_l1(out[head], batch[head + "_mask"], batch["ind"], batch[head])
    raise KeyError(head)


def _depth_head(raw: np.ndarray, batch: Mapping[str, np.ndarray], transform: bool) -> float:
    """Depth L1 with the batch's keys; without the transform (dep_sec by default) the raw map is the depth."""
    if transform:
        return depth_l1(raw, batch["dep"], batch["ind"], batch["dep_mask"], batch["cat"])
    ind = np.asarray(batch["ind"])
    cat = np.asarray(batch["cat"])
    b_, m_ = ind.shape
    dep = _f64(raw)
    tgt = _f64(batch["dep"]).reshape(b_, m_)
    msk = _f64(batch["dep_mask"]).reshape(b_, m_)
    total = 0.0
    for b in range(b_):
        for j in range(m_):
            if msk[b, j] != 0.0:
                row, col = divmod(int(ind[b, j]), dep.shape[3])
                c = int(cat[b, j]) if dep.shape[1] > 1 else 0
                total += msk[b, j] * abs(dep[b, c, row, col] - tgt[b, j])
    return total / (msk.sum() + _NORM_EPS)


def _generic(outputs, batch, weights, heads, sigmoid_dep_sec, rot_fn, skip_zero):  # type: ignore[no-untyped-def]
    s_count = len(outputs)
    present = [h for h in heads if h in outputs[0] and (h != "hp_offset" or "hm_hp" in outputs[0])]
    active = [h for h in present if not (skip_zero and weights[h] == 0)]
    per_head = {h: 0.0 for h in active}
    for out in outputs:
        probs = dict(out)
        for key in ("hm", "hm_hp"):
            if key in probs:
                probs[key] = clamped_sigmoid(probs[key])
        for h in active:
            if h == "dep":
                val = _depth_head(out[h], batch, True)
            elif h == "dep_sec":
                val = _depth_head(out[h], batch, sigmoid_dep_sec)
            else:
                val = _head(h, probs, batch, rot_fn)
            per_head[h] += val / s_count
    total = 0.0
    for h in active:
        total += weights[h] * per_head[h]
    return total, per_head


def generic_loss(
    outputs: Sequence[Mapping[str, np.ndarray]],
    batch: Mapping[str, np.ndarray],
    weights: Mapping[str, float],
    heads: Sequence[str] = _LOSS_ORDER,
    sigmoid_dep_sec: bool = False,
) -> tuple[float, dict[str, float]]:
    """sum_h w_h * (1/S) sum_s loss_h(stack s); absent and weight-0 heads skipped; rotation by ``bin_rot``."""
    return _generic(outputs, batch, weights, heads, sigmoid_dep_sec, bin_rot, True)


def seed_generic_loss(
    outputs: Sequence[Mapping[str, np.ndarray]],
    batch: Mapping[str, np.ndarray],
    weights: Mapping[str, float],
    heads: Sequence[str] = _LOSS_ORDER,
    sigmoid_dep_sec: bool = False,
) -> tuple[float, dict[str, float]]:
    """The seed's value on a first call: weight-0 heads computed, rotation by ``seed_bin_rot`` (no mutation here)."""
    return _generic(outputs, batch, weights, heads, sigmoid_dep_sec, seed_bin_rot, False)
