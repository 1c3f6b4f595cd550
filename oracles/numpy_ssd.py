"""SSD MultiBox oracle: a plain NumPy loop, float64, written from seed 001's text.

Independent of ``impls.ssd`` on purpose: one image at a time, one ground truth
at a time, the greedy bipartite rounds spelled out, hard negatives chosen by
sorting each image's negatives, the loss summed term by term.

The text's rules:

- Principle 1: starting from the ground truths, each gets the prior of highest
  IoU, so that every ground truth has one; when two want the same prior the
  pair of higher IoU keeps it and the other takes its best free prior (greedy
  bipartite, as in the original SSD).
- Principle 2: every remaining prior whose IoU with some ground truth is at
  least the threshold is matched to the ground truth of highest IoU.
- Loss: (L_conf + alpha * L_loc) / N, N positives in the batch (0 if N = 0);
  L_loc smooth L1 over the encoded offsets of the positives; L_conf softmax
  cross-entropy over positives and the 3 P_i hardest negatives of each image.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "iou_matrix",
    "encode",
    "ssd_matching",
    "match_margins",
    "match_with_margins",
    "hard_negative_mining",
    "mining_open",
    "multibox_loss",
    "multibox_loss_and_grad",
    "cross_entropy",
]


def _np(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu()
        if x.dtype.is_floating_point:
            x = x.double()
        x = x.numpy()
    return np.asarray(x)


def _corners(priors: np.ndarray) -> np.ndarray:
    cx, cy, w, h = priors[:, 0], priors[:, 1], priors[:, 2], priors[:, 3]
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def iou_matrix(boxes: Any, others: Any) -> np.ndarray:
    """IoU of each box of ``boxes`` (corners, (n, 4)) with each of ``others`` ((m, 4)), float64."""
    a, b = _np(boxes).astype(np.float64).reshape(-1, 4), _np(others).astype(np.float64).reshape(-1, 4)
    out = np.zeros((a.shape[0], b.shape[0]))
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    for i in range(a.shape[0]):
        x1, y1, x2, y2 = a[i]
        iw = np.clip(np.minimum(x2, b[:, 2]) - np.maximum(x1, b[:, 0]), 0, None)
        ih = np.clip(np.minimum(y2, b[:, 3]) - np.maximum(y1, b[:, 1]), 0, None)
        inter = iw * ih
        union = (x2 - x1) * (y2 - y1) + area_b - inter
        out[i] = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    return out


def encode(boxes_xyxy: np.ndarray, priors_cxcywh: np.ndarray, variances: tuple[float, float] = (0.1, 0.2)) -> np.ndarray:
    """SSD offsets of corner boxes w.r.t. centre-size priors (row by row), float64."""
    b = np.asarray(boxes_xyxy, dtype=np.float64)
    p = np.asarray(priors_cxcywh, dtype=np.float64)
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    return np.stack(
        [
            (cx - p[:, 0]) / (variances[0] * p[:, 2]),
            (cy - p[:, 1]) / (variances[0] * p[:, 3]),
            np.log(w / p[:, 2]) / variances[1],
            np.log(h / p[:, 3]) / variances[1],
        ],
        axis=1,
    )


def _match_image(iou: np.ndarray, real: list[int], threshold: float, exact: bool = False) -> tuple[np.ndarray, float]:
    """One image: ``iou`` is (G, P) over all slots; returns (matched (P,), smallest decision margin).

    The margin is the smallest gap between a decision and the alternative that
    would change its outcome: in a greedy round, the chosen pair against the free
    pairs sharing its ground truth or its prior (a tie between two disjoint pairs
    is harmless: both are taken, in either order); for principle 2, a prior's best
    ground truth against the runner-up and, unless ``exact`` (IoUs and threshold
    computed exactly, e.g. on a dyadic grid with threshold 0.5), against the
    threshold (priors that principle 1 took do not depend on them).
    """
    n_p = iou.shape[1]
    matched = -np.ones(n_p, dtype=np.int64)
    margin = math.inf
    if not real or n_p == 0:
        return matched, margin
    # Principle 1, greedy rounds over the free pairs.
    forced: dict[int, int] = {}
    free_g, free_p = list(real), set(range(n_p))
    while free_g and free_p:
        v, g, p = max(((iou[g, p], g, p) for g in free_g for p in free_p), key=lambda t: (t[0], -t[1], -t[2]))
        rivals = [iou[g2, p2] for g2 in free_g for p2 in free_p if (g2 == g) != (p2 == p)]
        if rivals:
            margin = min(margin, v - max(rivals))
        forced[p] = g
        free_g.remove(g)
        free_p.discard(p)
    # Principle 2, prior by prior, for the priors principle 1 left.
    for p in range(n_p):
        if p in forced:
            matched[p] = forced[p]
            continue
        vals = sorted(((iou[g, p], g) for g in real), key=lambda t: (-t[0], t[1]))
        best, g_best = vals[0]
        if best >= threshold:
            matched[p] = g_best
            if len(vals) > 1:
                margin = min(margin, best - vals[1][0])
        if not exact:
            margin = min(margin, abs(best - threshold))
    return matched, margin


def _match_all(
    gt_boxes: Any, gt_mask: Any, priors: Any, threshold: float, exact: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    boxes = _np(gt_boxes).astype(np.float64)
    mask = _np(gt_mask).astype(bool) if gt_mask is not None else np.ones(boxes.shape[:2], dtype=bool)
    pr = _corners(_np(priors).astype(np.float64).reshape(-1, 4))
    n_b, n_p = boxes.shape[0], pr.shape[0]
    out = -np.ones((n_b, n_p), dtype=np.int64)
    margins = np.full(n_b, math.inf)
    for i in range(n_b):
        real = [g for g in range(boxes.shape[1]) if mask[i, g]]
        # Padding may hold anything (NaN included): only real rows are computed.
        iou = np.full((boxes.shape[1], n_p), -1.0)
        if real:
            iou[real] = iou_matrix(boxes[i, real], pr)
        out[i], margins[i] = _match_image(iou, real, threshold, exact)
    return out, margins


def ssd_matching(gt_boxes: Any, gt_mask: Any, priors: Any, threshold: float = 0.5) -> np.ndarray:
    """(B, P) index of each prior's ground truth, -1 for background."""
    return _match_all(gt_boxes, gt_mask, priors, threshold)[0]


def match_with_margins(
    gt_boxes: Any, gt_mask: Any, priors: Any, threshold: float = 0.5, exact: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The (B, P) matching and, per image, the smallest gap between a decision and its
    runner-up (or the threshold, unless ``exact``). Where an image's gap is ~0 its row
    depends on how ties (or rounding at the threshold) are broken, which the contract
    leaves open; the other images do not depend on it."""
    return _match_all(gt_boxes, gt_mask, priors, threshold, exact)


def match_margins(gt_boxes: Any, gt_mask: Any, priors: Any, threshold: float = 0.5, exact: bool = False) -> float:
    """The smallest gap between a matching decision and its runner-up (or the threshold), over the batch."""
    m = _match_all(gt_boxes, gt_mask, priors, threshold, exact)[1]
    return float(m.min()) if m.size else math.inf


def _mining_count(n_pos: int, n_neg: int, neg_pos_ratio: float) -> int:
    return min(int(math.floor(n_pos * neg_pos_ratio)), n_neg)


def hard_negative_mining(conf_loss: Any, positive: Any, neg_pos_ratio: float = 3) -> np.ndarray:
    """(B, P) bool: per image the min(floor(ratio P_i), N_i) negatives of highest loss (lower index first on ties)."""
    loss = _np(conf_loss).astype(np.float64)
    pos = _np(positive).astype(bool)
    out = np.zeros(loss.shape, dtype=bool)
    for i in range(loss.shape[0]):
        negs = [p for p in range(loss.shape[1]) if not pos[i, p]]
        k = _mining_count(int(pos[i].sum()), len(negs), neg_pos_ratio)
        for p in sorted(negs, key=lambda q: (-loss[i, q], q))[:k]:
            out[i, p] = True
    return out


def mining_open(conf_loss: Any, positive: Any, neg_pos_ratio: float = 3) -> np.ndarray:
    """(B, P) bool: the priors whose selection the contract leaves open.

    In an image whose cut falls between two negatives of equal loss (the last one
    taken and the first one left), every negative of that loss may be taken or left,
    as long as the count is right; every other prior's selection is determined. The
    losses are compared exactly, as a miner compares them (it only orders them)."""
    loss = _np(conf_loss).astype(np.float64)
    pos = _np(positive).astype(bool)
    out = np.zeros(loss.shape, dtype=bool)
    for i in range(loss.shape[0]):
        negs = sorted((p for p in range(loss.shape[1]) if not pos[i, p]), key=lambda q: -loss[i, q])
        k = _mining_count(int(pos[i].sum()), len(negs), neg_pos_ratio)
        if 0 < k < len(negs) and loss[i, negs[k - 1]] == loss[i, negs[k]]:
            cut = loss[i, negs[k - 1]]
            out[i] = ~pos[i] & (loss[i] == cut)
    return out


def cross_entropy(scores: np.ndarray, label: int) -> float:
    """Softmax cross-entropy of one row of logits, float64: log(sum exp(s - max)) - (s[label] - max),
    so that no large logit cancels against another (s[label] - max is exact when they are close)."""
    s = np.asarray(scores, dtype=np.float64)
    m = s.max()
    return float(math.log(np.exp(s - m).sum()) - (s[label] - m))


def _smooth_l1(d: np.ndarray) -> float:
    a = np.abs(d)
    return float(np.where(a < 1.0, 0.5 * a * a, a - 0.5).sum())


def _softmax(s: np.ndarray) -> np.ndarray:
    e = np.exp(s - s.max())
    return e / e.sum()


def multibox_loss_and_grad(
    pred_locs: Any,
    pred_scores: Any,
    gt_boxes: Any,
    gt_labels: Any,
    gt_mask: Any,
    priors: Any,
    threshold: float = 0.5,
    neg_pos_ratio: float = 3,
    alpha: float = 1.0,
    exact_threshold: bool = False,
) -> dict[str, Any]:
    """The batch loss, its analytic gradients, and the facts the properties need, float64.

    Returns ``loss``; ``grad_locs`` (B, P, 4) and ``grad_scores`` (B, P, C) (softmax minus
    one-hot over N on the positives and mined negatives; clip(d, -1, 1) alpha / N on
    the positives' offsets); ``matched``; ``mined`` (B, P) bool; ``n_pos`` per image;
    ``conf``/``loc`` sums per image; ``targets`` (B, P, 4) encoded offsets (0 where
    negative); per image ``match_margin`` (see :func:`match_with_margins`; ``exact_threshold``
    as its ``exact``), ``cut_gap`` (the confidence loss of the last mined negative minus
    the next one's, inf without a cut) and ``cut_scale`` (1 + the largest |logit| of those
    two rows: the magnitude a computed confidence loss is rounded relative to); ``kink``:
    the smallest distance of a positive's offset error |d| from smooth L1's kink at 1;
    and the conditioning of the result: ``scale`` (the loss), ``scale_locs`` and
    ``scale_scores`` (the gradients), the magnitudes of the terms that cancel in a stable
    evaluation (a logit row's largest |logit| in its cross-entropy, |pred| + |target| in
    an offset error), over N.
    """
    locs = _np(pred_locs).astype(np.float64)
    scores = _np(pred_scores).astype(np.float64)
    boxes = _np(gt_boxes).astype(np.float64)
    labels = _np(gt_labels).astype(np.int64)
    pr = _np(priors).astype(np.float64).reshape(-1, 4)
    matched, match_margin = _match_all(gt_boxes, gt_mask, priors, threshold, exact_threshold)
    n_b, n_p = matched.shape
    g_locs, g_scores = np.zeros(locs.shape), np.zeros(scores.shape)
    s_locs, s_scores = np.zeros(locs.shape), np.zeros(scores.shape)
    targets = np.zeros((n_b, n_p, 4))
    mined = np.zeros((n_b, n_p), dtype=bool)
    conf_i, loc_i, n_pos = np.zeros(n_b), np.zeros(n_b), np.zeros(n_b, dtype=np.int64)
    cut_gap, cut_scale = np.full(n_b, math.inf), np.ones(n_b)
    kink = math.inf
    scale = 0.0
    for i in range(n_b):
        pos = matched[i] >= 0
        lab = np.array([int(labels[i, matched[i, p]]) if pos[p] else 0 for p in range(n_p)], dtype=np.int64)
        ce = np.array([cross_entropy(scores[i, p], lab[p]) for p in range(n_p)])
        big = np.abs(scores[i]).max(axis=1) if n_p and scores.shape[2] else np.zeros(n_p)
        negs = sorted((p for p in range(n_p) if not pos[p]), key=lambda q: (-ce[q], q))
        k = _mining_count(int(pos.sum()), len(negs), neg_pos_ratio)
        if 0 < k < len(negs):
            a, b = negs[k - 1], negs[k]
            cut_gap[i] = ce[a] - ce[b]
            cut_scale[i] = 1.0 + max(big[a], big[b])
        for p in negs[:k]:
            mined[i, p] = True
        for p in range(n_p):
            if pos[p] or mined[i, p]:
                conf_i[i] += ce[p]
                sm = _softmax(scores[i, p])
                onehot = np.zeros_like(sm)
                onehot[lab[p]] = 1.0
                g_scores[i, p] = sm - onehot
                s_scores[i, p] = (sm + onehot) * (1.0 + big[p])
                scale += 2.0 * (1.0 + big[p])
            if pos[p]:
                targets[i, p] = encode(boxes[i, matched[i, p]][None], pr[p][None])[0]
                d = locs[i, p] - targets[i, p]
                loc_i[i] += _smooth_l1(d)
                g_locs[i, p] = alpha * np.clip(d, -1.0, 1.0)
                mag = 1.0 + np.abs(locs[i, p]) + np.abs(targets[i, p])
                s_locs[i, p] = alpha * mag
                scale += alpha * float(mag.sum())
                kink = min(kink, float(np.abs(np.abs(d) - 1.0).min()))
        n_pos[i] = int(pos.sum())
    n = int(n_pos.sum())
    loss = 0.0 if n == 0 else float((conf_i.sum() + alpha * loc_i.sum()) / n)
    inv = 1.0 / max(n, 1)
    return {
        "loss": loss,
        "grad_locs": g_locs * inv,
        "grad_scores": g_scores * inv,
        "matched": matched,
        "mined": mined,
        "n_pos": n_pos,
        "conf": conf_i,
        "loc": loc_i,
        "targets": targets,
        "match_margin": match_margin,
        "cut_gap": cut_gap,
        "cut_scale": cut_scale,
        "kink": kink,
        "scale": scale * inv,
        "scale_locs": s_locs * inv,
        "scale_scores": s_scores * inv,
    }


def multibox_loss(
    pred_locs: Any,
    pred_scores: Any,
    gt_boxes: Any,
    gt_labels: Any,
    gt_mask: Any,
    priors: Any,
    threshold: float = 0.5,
    neg_pos_ratio: float = 3,
    alpha: float = 1.0,
) -> float:
    """The batch loss, float64. Returns 0.0 when nothing matched."""
    return float(
        multibox_loss_and_grad(pred_locs, pred_scores, gt_boxes, gt_labels, gt_mask, priors, threshold, neg_pos_ratio, alpha)["loss"]
    )
