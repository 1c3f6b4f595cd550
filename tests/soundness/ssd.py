"""Correct SSD implementations written another way than ``impls.ssd``: the suite must pass them.

They differ from the reference where the contract leaves room: ties between equal IoUs and
equal losses go the other way (the highest index wins), matching runs image by image with
the greedy rounds written as a scan over the pairs sorted by IoU, mining is a stable sort
(or a threshold at the k-th value) instead of a top-k, the confidence loss is
logsumexp - logit (not log_softmax), offsets are log(w) - log(pw), and one of each computes
in float64 whatever the input.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from tests.soundness import Impl

_FLOATING = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _need(cond: bool, message: str) -> None:
    if not cond:
        raise ValueError(message)


def _real(x: object, name: str, low: float, high: float = math.inf) -> float:
    _need(isinstance(x, (int, float)) and not isinstance(x, bool), f"{name} must be a real number")
    v = float(x)  # type: ignore[arg-type]
    _need(low <= v <= high, f"{name} must lie in [{low}, {high}], got {x!r}")
    return v


def _geometry(gt_boxes: torch.Tensor, gt_mask: torch.Tensor | None, priors: torch.Tensor, *, strict: bool) -> torch.Tensor:
    for name, t in (("gt_boxes", gt_boxes), ("priors", priors)):
        _need(isinstance(t, torch.Tensor) and t.dtype in _FLOATING, f"{name} must be a floating tensor")
    _need(gt_boxes.dim() == 3 and gt_boxes.shape[2] == 4, "gt_boxes must be (B, G, 4)")
    _need(priors.dim() == 2 and priors.shape[1] == 4, "priors must be (P, 4)")
    if gt_mask is None:
        gt_mask = torch.ones(gt_boxes.shape[:2], dtype=torch.bool, device=gt_boxes.device)
    _need(gt_mask.dtype == torch.bool and gt_mask.shape == gt_boxes.shape[:2], "gt_mask must be a (B, G) bool tensor")
    _need(bool(torch.isfinite(priors).all()) and bool((priors[:, 2:] > 0).all()), "priors must be finite with w, h > 0")
    real = gt_boxes[gt_mask]
    _need(bool(torch.isfinite(real).all()), "real gt_boxes must be finite")
    w, h = real[:, 2] - real[:, 0], real[:, 3] - real[:, 1]
    _need(bool(((w > 0) & (h > 0)).all()) if strict else bool(((w >= 0) & (h >= 0)).all()),
          "real gt_boxes must have x2 > x1, y2 > y1" if strict else "real gt_boxes must have x2 >= x1, y2 >= y1")
    return gt_mask


def _iou64(boxes: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """(n, P) IoU in float64 (exact intermediates on the suite's grid), from the priors' corners."""
    b, p = boxes.double(), priors.double()
    px1, py1 = p[:, 0] - p[:, 2] / 2, p[:, 1] - p[:, 3] / 2
    px2, py2 = p[:, 0] + p[:, 2] / 2, p[:, 1] + p[:, 3] / 2
    iw = (torch.minimum(b[:, None, 2], px2) - torch.maximum(b[:, None, 0], px1)).clamp(min=0)
    ih = (torch.minimum(b[:, None, 3], py2) - torch.maximum(b[:, None, 1], py1)).clamp(min=0)
    inter = iw * ih
    union = ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))[:, None] + p[:, 2] * p[:, 3] - inter
    return inter / union


def _match_image(iou: torch.Tensor, threshold: float) -> torch.Tensor:
    """One image, ``iou`` (n, P) over its real ground truths: the greedy rounds as one scan over the pairs
    sorted by IoU (ties: the later ground truth and the later prior first), then the threshold (ties: the
    later ground truth)."""
    n, p = iou.shape
    out = torch.full((p,), -1, dtype=torch.long)
    if n == 0 or p == 0:
        return out
    best, who = iou.flip(0).max(dim=0)  # flipped: the last of equal maxima
    out = torch.where(best >= threshold, n - 1 - who, out)
    flat = iou.flatten().numpy()
    order = np.lexsort((-np.arange(flat.size), -flat))  # IoU descending, then index descending
    free_g, free_p = set(range(n)), set(range(p))
    for k in order.tolist():
        g, q = divmod(k, p)
        if g in free_g and q in free_p:
            out[q] = g
            free_g.discard(g)
            free_p.discard(q)
            if not free_g or not free_p:
                break
    return out


def matching_scan(gt_boxes, gt_mask, priors, *, threshold=0.5):  # type: ignore[no-untyped-def]
    """Per image, float64 IoUs, greedy bipartite as a scan over sorted pairs, reverse tie-breaking."""
    gt_mask = _geometry(gt_boxes, gt_mask, priors, strict=False)
    t = _real(threshold, "threshold", 0.0, 1.0)
    b, p = gt_boxes.shape[0], priors.shape[0]
    out = torch.full((b, p), -1, dtype=torch.long)
    for i in range(b):
        real = gt_mask[i].cpu().nonzero().squeeze(1)
        if real.numel() and p:
            m = _match_image(_iou64(gt_boxes[i].cpu()[real], priors.cpu()), t)
            out[i] = torch.where(m >= 0, real[m.clamp(min=0)], m)
    return out.to(gt_boxes.device)


def matching_hungarian_rounds(gt_boxes, gt_mask, priors, *, threshold=0.5):  # type: ignore[no-untyped-def]
    """Batched in the input's dtype: IoUs from centre-size arithmetic, padding set to -inf, rounds that each take
    the batch's best free pair per image (ties: the lowest flattened prior-major index), threshold after."""
    gt_mask = _geometry(gt_boxes, gt_mask, priors, strict=False)
    t = _real(threshold, "threshold", 0.0, 1.0)
    b, g = gt_boxes.shape[:2]
    p = priors.shape[0]
    dev = gt_boxes.device
    if b * g * p == 0:
        return torch.full((b, p), -1, dtype=torch.long, device=dev)
    boxes = torch.where(gt_mask[..., None], gt_boxes, torch.zeros((), dtype=gt_boxes.dtype, device=dev))
    pr = priors.to(gt_boxes.dtype)
    lo = torch.maximum(boxes[:, :, None, :2], pr[None, None, :, :2] - pr[None, None, :, 2:] / 2)
    hi = torch.minimum(boxes[:, :, None, 2:], pr[None, None, :, :2] + pr[None, None, :, 2:] / 2)
    inter = (hi - lo).clamp(min=0).prod(-1)
    area = (boxes[..., 2:] - boxes[..., :2]).prod(-1)
    iou = inter / (area[..., None] + (pr[:, 2] * pr[:, 3])[None, None] - inter)
    iou = iou.masked_fill(~gt_mask[..., None], -math.inf)
    best, who = iou.max(dim=1)  # (B, P): first of equal maxima
    has_real = gt_mask.any(dim=1, keepdim=True)
    out = torch.where((best >= t) & has_real, who, torch.full_like(who, -1))
    # Prior-major order: transposing makes argmax's first-of-equal prefer the lower prior, then the lower ground truth.
    val = iou.transpose(1, 2).clone()  # (B, P, G)
    for _ in range(min(g, p)):
        flat = val.flatten(1)
        top, k = flat.max(dim=1)
        live = torch.isfinite(top) & (top > -1)
        q, j = k // g, k % g
        rows = live.nonzero().squeeze(1)
        out[rows, q[rows]] = j[rows]
        val[rows, q[rows], :] = -2.0
        val[rows, :, j[rows]] = -2.0
    return out


def mining_stable_sort(conf_loss, positive, *, neg_pos_ratio=3):  # type: ignore[no-untyped-def]
    """Image by image: the negatives sorted by (loss descending, index descending) with a stable sort, the first k."""
    _need(isinstance(conf_loss, torch.Tensor) and conf_loss.dtype in _FLOATING and conf_loss.dim() == 2,
          "conf_loss must be a (B, P) floating tensor")
    _need(isinstance(positive, torch.Tensor) and positive.dtype == torch.bool and positive.shape == conf_loss.shape,
          "positive must be a bool tensor of conf_loss's shape")
    r = _real(neg_pos_ratio, "neg_pos_ratio", 0.0)
    _need(not bool(torch.isnan(conf_loss).any()), "conf_loss must not contain NaN")
    out = torch.zeros_like(positive)
    for i in range(conf_loss.shape[0]):
        negs = (~positive[i]).nonzero().squeeze(1).flip(0)  # later index first among equals
        k = min(math.floor(int(positive[i].sum()) * r), negs.numel())
        if k:
            order = torch.sort(conf_loss[i, negs].double(), descending=True, stable=True).indices
            out[i, negs[order[:k]]] = True
    return out


def mining_kth_value(conf_loss, positive, *, neg_pos_ratio=3):  # type: ignore[no-untyped-def]
    """Batched threshold at each image's k-th largest negative loss: everything above it, then as many of the
    losses equal to it as the count needs (the lowest indices), no sort of the whole row."""
    _need(isinstance(conf_loss, torch.Tensor) and conf_loss.dtype in _FLOATING and conf_loss.dim() == 2,
          "conf_loss must be a (B, P) floating tensor")
    _need(isinstance(positive, torch.Tensor) and positive.dtype == torch.bool and positive.shape == conf_loss.shape,
          "positive must be a bool tensor of conf_loss's shape")
    r = _real(neg_pos_ratio, "neg_pos_ratio", 0.0)
    _need(not bool(torch.isnan(conf_loss).any()), "conf_loss must not contain NaN")
    b, p = conf_loss.shape
    out = torch.zeros_like(positive)
    for i in range(b):
        neg = ~positive[i]
        k = min(math.floor(int(positive[i].sum()) * r), int(neg.sum()))
        if k == 0:
            continue
        vals = conf_loss[i][neg]
        cut = torch.kthvalue(vals.double(), vals.numel() - k + 1).values.to(conf_loss.dtype)
        above = neg & (conf_loss[i] > cut)
        equal = (neg & (conf_loss[i] == cut)).nonzero().squeeze(1)
        out[i] = above
        out[i, equal[: k - int(above.sum())]] = True
    return out


def _loss_checks(pred_locs, pred_scores, gt_boxes, gt_labels, gt_mask, priors, threshold, ratio, alpha):  # type: ignore[no-untyped-def]
    for name, t in (("pred_locs", pred_locs), ("pred_scores", pred_scores)):
        _need(isinstance(t, torch.Tensor) and t.dtype in _FLOATING and t.dim() == 3, f"{name} must be a 3-d floating tensor")
    _need(pred_scores.dtype == pred_locs.dtype, "pred_scores must have pred_locs' dtype")
    gt_mask = _geometry(gt_boxes, gt_mask, priors, strict=True)
    b, g = gt_boxes.shape[:2]
    p = priors.shape[0]
    _need(pred_locs.shape == (b, p, 4), "pred_locs must be (B, P, 4)")
    _need(pred_scores.shape[:2] == (b, p) and pred_scores.shape[2] >= 2, "pred_scores must be (B, P, C >= 2)")
    _need(isinstance(gt_labels, torch.Tensor) and gt_labels.dtype in (torch.int64, torch.int32) and gt_labels.shape == (b, g),
          "gt_labels must be a (B, G) integer tensor")
    real = gt_labels[gt_mask]
    _need(bool(((real >= 1) & (real < pred_scores.shape[2])).all()), "gt_labels must lie in [1, C - 1] where real")
    return (gt_mask, _real(threshold, "threshold", 0.0, 1.0), _real(ratio, "neg_pos_ratio", 0.0),
            _real(alpha, "alpha", 0.0))


def _smooth_l1(d: torch.Tensor) -> torch.Tensor:
    a = d.abs()
    return torch.where(a < 1, 0.5 * d * d, a - 0.5)


def multibox_loop64(pred_locs, pred_scores, gt_boxes, gt_labels, gt_mask, priors, *, threshold=0.5, neg_pos_ratio=3,
                    alpha=1.0):  # type: ignore[no-untyped-def]
    """Image by image in float64 (returned in the input's dtype): the scan matcher (reverse ties), CE as
    logsumexp - logit, hard negatives by a stable sort of their CE (later index first), offsets as
    log(w) - log(pw), one division by N at the end."""
    gt_mask, t, r, a = _loss_checks(pred_locs, pred_scores, gt_boxes, gt_labels, gt_mask, priors, threshold,
                                    neg_pos_ratio, alpha)
    dtype = pred_locs.dtype
    locs, scores = pred_locs.double(), pred_scores.double()
    boxes, pr = gt_boxes.double(), priors.double()
    matched = matching_scan(gt_boxes, gt_mask, priors, threshold=t)
    total = locs.sum() * 0 + scores.sum() * 0
    n = 0
    for i in range(locs.shape[0]):
        pos = matched[i] >= 0
        lab = torch.where(pos, gt_labels[i].long()[matched[i].clamp(min=0)] if gt_labels.shape[1] else matched[i], 0)
        ce = torch.logsumexp(scores[i], dim=1) - scores[i].gather(1, lab[:, None]).squeeze(1)
        hard = mining_stable_sort(ce.detach()[None], pos[None], neg_pos_ratio=r)[0]
        total = total + ce[pos | hard].sum()
        if pos.any():
            gt = boxes[i, matched[i][pos]]
            q = pr[pos]
            wh = gt[:, 2:] - gt[:, :2]
            centre = (gt[:, :2] + gt[:, 2:]) / 2
            target = torch.cat([(centre - q[:, :2]) / q[:, 2:] * 10, (wh.log() - q[:, 2:].log()) * 5], 1)
            total = total + a * _smooth_l1(locs[i][pos] - target).sum()
        n += int(pos.sum())
    return (total / max(n, 1)).to(dtype)


def multibox_batched(pred_locs, pred_scores, gt_boxes, gt_labels, gt_mask, priors, *, threshold=0.5, neg_pos_ratio=3,
                     alpha=1.0):  # type: ignore[no-untyped-def]
    """Batched in the input's dtype: the round-based matcher, CE by logsumexp - gather, hard negatives by the
    k-th value threshold, the localisation loss summed over a dense masked tensor."""
    gt_mask, t, r, a = _loss_checks(pred_locs, pred_scores, gt_boxes, gt_labels, gt_mask, priors, threshold,
                                    neg_pos_ratio, alpha)
    b, p, c = pred_scores.shape
    matched = matching_hungarian_rounds(gt_boxes, gt_mask, priors, threshold=t)
    pos = matched >= 0
    safe = matched.clamp(min=0)
    lab = torch.where(pos, torch.gather(gt_labels.long(), 1, safe) if gt_labels.shape[1] else safe, 0)
    ce = torch.logsumexp(pred_scores, dim=2) - pred_scores.gather(2, lab[..., None]).squeeze(2)
    hard = mining_kth_value(ce.detach(), pos, neg_pos_ratio=r)
    conf = (ce * (pos | hard)).sum()
    if gt_boxes.shape[1]:
        gt = torch.gather(gt_boxes, 1, safe[..., None].expand(b, p, 4)).to(pred_locs.dtype)
    else:
        gt = torch.ones(b, p, 4, dtype=pred_locs.dtype)
    gt = torch.where(pos[..., None], gt, torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=gt.dtype))  # a harmless box elsewhere
    pr = priors.to(pred_locs.dtype).expand(b, p, 4)
    centre, wh = (gt[..., :2] + gt[..., 2:]) / 2, gt[..., 2:] - gt[..., :2]
    target = torch.cat([(centre - pr[..., :2]) / (0.1 * pr[..., 2:]), torch.log(wh / pr[..., 2:]) / 0.2], -1)
    loc = torch.where(pos[..., None], _smooth_l1(pred_locs - target), torch.zeros((), dtype=pred_locs.dtype)).sum()
    return (conf + a * loc) / pos.sum().clamp(min=1).to(pred_locs.dtype)


IMPLEMENTATIONS = [
    Impl("scan_reverse_ties", "ssd_matching", matching_scan,
         "image by image, float64 IoUs, greedy rounds as a scan over sorted pairs; equal IoUs go to the later index"),
    Impl("batched_rounds", "ssd_matching", matching_hungarian_rounds,
         "batched rounds over a prior-major (B, P, G) IoU tensor in the input's dtype; -inf padding"),
    Impl("stable_sort_reverse_ties", "hard_negative_mining", mining_stable_sort,
         "a stable sort of each image's negatives, later index first among equal losses (issue #16's miner)"),
    Impl("kth_value_threshold", "hard_negative_mining", mining_kth_value,
         "everything above the k-th largest negative loss, then the lowest-index equals; no top-k"),
    Impl("loop_float64", "multibox_loss", multibox_loop64,
         "per-image loop in float64, logsumexp - logit, stable-sort mining, log(w) - log(pw) offsets, reverse ties"),
    Impl("batched_logsumexp", "multibox_loss", multibox_batched,
         "batched in the input's dtype, round-based matcher, k-th value mining, dense masked smooth L1"),
]
