"""SSD MultiBox: box utilities, prior generation, matching, hard negative mining, loss.

Everything is batched: ground truths come padded to ``(B, G, 4)`` with a boolean
``gt_mask`` (``True`` = a real object), or as a list of ``(G_i, 4)`` tensors
(:func:`pad_ground_truths`). There is no per-image Python loop; the only loop
is principle 1's greedy bipartite matching, over ground-truth rounds (at most
``G``), run on the images whose ground truths collide on a best prior.

Conventions (those of the SSD paper and of seed 001's listing):

- ground-truth boxes are corners ``(x1, y1, x2, y2)``, priors are centre-size
  ``(cx, cy, w, h)``, both in the same (usually normalised) units;
- label 0 is background, object labels are ``1 .. C - 1``;
- offsets are encoded with variances ``(0.1, 0.2)``:
  ``((gx - px) / (0.1 pw), (gy - py) / (0.1 ph), log(gw / pw) / 0.2, log(gh / ph) / 0.2)``.

Matching policy (:func:`ssd_matching`), the documented intent of seed 001:

1. *Principle 1*: every ground truth gets a prior of its own, by greedy
   bipartite matching as in the original SSD: repeatedly take the (ground
   truth, prior) pair of highest IoU among the ground truths and priors not
   yet taken, and pair them. When the ground truths' best priors are all
   distinct this is simply "each ground truth takes its best prior"; when two
   share one, the pair of higher IoU keeps it and the other ground truth takes
   its best remaining prior (seed 001 instead lets the later ground truth
   silently steal it). Ties go to the lower index.
2. *Principle 2*: every other prior is matched to the ground truth of highest
   IoU with it when that IoU is ``>= threshold``; below, it is background.

Principle 1 wins over principle 2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from impls._validate import check_real, check_tensor

__all__ = [
    "xyxy_to_cxcywh",
    "cxcywh_to_xyxy",
    "encode",
    "decode",
    "jaccard",
    "ssd300_priors",
    "pad_ground_truths",
    "ssd_matching",
    "hard_negative_mining",
    "multibox_loss",
    "seed_ssd_matching",
    "seed_multibox_loss",
]

VARIANCES = (0.1, 0.2)


# --------------------------------------------------------------------------- boxes
def xyxy_to_cxcywh(boxes: torch.Tensor) -> torch.Tensor:
    """Corners ``(x1, y1, x2, y2)`` to centre-size ``(cx, cy, w, h)``; any leading shape."""
    xy1, xy2 = boxes[..., :2], boxes[..., 2:]
    return torch.cat(((xy1 + xy2) / 2, xy2 - xy1), dim=-1)


def cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """Centre-size ``(cx, cy, w, h)`` to corners ``(x1, y1, x2, y2)``; any leading shape."""
    c, wh = boxes[..., :2], boxes[..., 2:]
    return torch.cat((c - wh / 2, c + wh / 2), dim=-1)


def encode(boxes: torch.Tensor, priors: torch.Tensor, variances: Sequence[float] = VARIANCES) -> torch.Tensor:
    """SSD offsets of centre-size ``boxes`` w.r.t. centre-size ``priors`` (broadcast).

    ``g = ((cx - pcx) / (v0 pw), (cy - pcy) / (v0 ph), log(w / pw) / v1, log(h / ph) / v1)``.
    """
    v0, v1 = float(variances[0]), float(variances[1])
    return torch.cat(
        (
            (boxes[..., :2] - priors[..., :2]) / (v0 * priors[..., 2:]),
            torch.log(boxes[..., 2:] / priors[..., 2:]) / v1,
        ),
        dim=-1,
    )


def decode(offsets: torch.Tensor, priors: torch.Tensor, variances: Sequence[float] = VARIANCES) -> torch.Tensor:
    """Inverse of :func:`encode`: centre-size boxes from SSD offsets."""
    v0, v1 = float(variances[0]), float(variances[1])
    return torch.cat(
        (
            priors[..., :2] + offsets[..., :2] * v0 * priors[..., 2:],
            priors[..., 2:] * torch.exp(offsets[..., 2:] * v1),
        ),
        dim=-1,
    )


def jaccard(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of every box of ``a`` (``(..., N, 4)`` corners) with every box of ``b`` (``(..., M, 4)``).

    Returns ``(..., N, M)``. Two boxes whose union has zero area (both degenerate)
    have IoU 0, not 0/0.
    """
    a_ = a.unsqueeze(-2)  # (..., N, 1, 4)
    b_ = b.unsqueeze(-3)  # (..., 1, M, 4)
    iw = (torch.minimum(a_[..., 2], b_[..., 2]) - torch.maximum(a_[..., 0], b_[..., 0])).clamp_(min=0)
    ih = (torch.minimum(a_[..., 3], b_[..., 3]) - torch.maximum(a_[..., 1], b_[..., 1])).clamp_(min=0)
    inter = iw.mul_(ih)
    area_a = ((a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])).unsqueeze(-1)
    area_b = ((b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])).unsqueeze(-2)
    union = (area_a + area_b) - inter
    return torch.where(union > 0, inter / torch.where(union > 0, union, torch.ones_like(union)), torch.zeros_like(inter))


def ssd300_priors(dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> torch.Tensor:
    """The 8732 SSD300 priors, centre-size, normalised to [0, 1] and clipped there.

    Feature maps 38, 19, 10, 5, 3, 1 with scales 0.1, 0.2, 0.375, 0.55, 0.725, 0.9
    and aspect ratios {1, 2, 1/2} (+ {3, 1/3} on maps 19, 10, 5), plus one extra
    square prior of scale sqrt(s_k s_{k+1}) per cell (s = 1 after the last map):
    38²·4 + 19²·6 + 10²·6 + 5²·6 + 3²·4 + 1·4 = 8732, ordered map by map, row by
    row, cell by cell, as in the SSD300 of the tutorial seed 001 comes from.
    """
    fmaps = (38, 19, 10, 5, 3, 1)
    scales = (0.1, 0.2, 0.375, 0.55, 0.725, 0.9)
    ratios = ((1.0, 2.0, 0.5), (1.0, 2.0, 3.0, 0.5, 1 / 3), (1.0, 2.0, 3.0, 0.5, 1 / 3),
              (1.0, 2.0, 3.0, 0.5, 1 / 3), (1.0, 2.0, 0.5), (1.0, 2.0, 0.5))
    out = []
    for k, f in enumerate(fmaps):
        s = scales[k]
        extra = math.sqrt(s * scales[k + 1]) if k + 1 < len(fmaps) else 1.0
        shapes = [(s * math.sqrt(r), s / math.sqrt(r)) for r in ratios[k]]
        shapes.insert(1, (extra, extra))  # after the ratio-1 prior, as in the tutorial
        wh = torch.tensor(shapes, dtype=torch.float64)  # (A, 2)
        c = (torch.arange(f, dtype=torch.float64) + 0.5) / f
        cy, cx = torch.meshgrid(c, c, indexing="ij")
        centres = torch.stack((cx, cy), -1).reshape(-1, 1, 2).expand(-1, len(shapes), 2)
        out.append(torch.cat((centres, wh.expand(f * f, -1, -1)), -1).reshape(-1, 4))
    priors = torch.cat(out).clamp_(0, 1)
    return priors.to(dtype=dtype, device=device)


def pad_ground_truths(
    boxes: Sequence[torch.Tensor], labels: Sequence[torch.Tensor] | None = None
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """A list of per-image ``(G_i, 4)`` boxes (and ``(G_i,)`` labels) to padded tensors.

    Returns ``(boxes (B, G, 4), labels (B, G) or None, mask (B, G))`` with
    ``G = max G_i``; padded slots hold zeros and ``mask`` False.
    """
    if not isinstance(boxes, (list, tuple)):
        raise ValueError(f"boxes must be a list of (G_i, 4) tensors, got {type(boxes).__name__}")
    if labels is not None and (not isinstance(labels, (list, tuple)) or len(labels) != len(boxes)):
        raise ValueError(f"labels must be a list of {len(boxes)} (G_i,) tensors, one per image, like boxes")
    for i, b in enumerate(boxes):
        check_tensor(f"boxes[{i}]", b, ndim=2)
        if b.shape[-1] != 4:
            raise ValueError(f"boxes[{i}] must have shape (G_i, 4), got {tuple(b.shape)}")
        if labels is not None:
            check_tensor(f"labels[{i}]", labels[i], floating=False, dtypes=(torch.int64, torch.int32), ndim=1)
            if labels[i].shape[0] != b.shape[0]:
                raise ValueError(f"labels[{i}] must have {b.shape[0]} entries (one per box), got {labels[i].shape[0]}")
    n = len(boxes)
    g = max((b.shape[0] for b in boxes), default=0)
    dtype = boxes[0].dtype if n else torch.float32
    device = boxes[0].device if n else None
    out = torch.zeros((n, g, 4), dtype=dtype, device=device)
    mask = torch.zeros((n, g), dtype=torch.bool, device=device)
    lab = torch.zeros((n, g), dtype=torch.int64, device=device) if labels is not None else None
    for i, b in enumerate(boxes):  # packing only: O(B) copies, no per-image computation
        out[i, : b.shape[0]] = b
        mask[i, : b.shape[0]] = True
        if lab is not None:
            lab[i, : b.shape[0]] = labels[i]  # type: ignore[index]
    return out, lab, mask


# --------------------------------------------------------------------------- validation
def _check_boxes(gt_boxes: torch.Tensor, gt_mask: torch.Tensor | None, priors: torch.Tensor, *, strict: bool) -> torch.Tensor:
    check_tensor("gt_boxes", gt_boxes, ndim=3)
    if gt_boxes.shape[-1] != 4:
        raise ValueError(f"gt_boxes must have shape (B, G, 4) (corners x1, y1, x2, y2), got {tuple(gt_boxes.shape)}")
    check_tensor("priors", priors, ndim=2)
    if priors.shape[-1] != 4:
        raise ValueError(f"priors must have shape (P, 4) (centre-size cx, cy, w, h), got {tuple(priors.shape)}")
    if gt_mask is None:
        gt_mask = torch.ones(gt_boxes.shape[:2], dtype=torch.bool, device=gt_boxes.device)
    check_tensor("gt_mask", gt_mask, floating=False, dtypes=(torch.bool,), ndim=2)
    if gt_mask.shape != gt_boxes.shape[:2]:
        raise ValueError(f"gt_mask must have shape (B, G) = {tuple(gt_boxes.shape[:2])} like gt_boxes, got {tuple(gt_mask.shape)}")
    if priors.numel() and not bool((torch.isfinite(priors).all() & (priors[:, 2:] > 0).all())):
        raise ValueError("priors must be finite with positive widths and heights (cx, cy, w, h)")
    real = gt_boxes[gt_mask]
    if real.numel():
        if not bool(torch.isfinite(real).all()):
            raise ValueError("gt_boxes must be finite where gt_mask is True")
        w, h = real[:, 2] - real[:, 0], real[:, 3] - real[:, 1]
        if strict and not bool(((w > 0) & (h > 0)).all()):
            raise ValueError("gt_boxes must have x2 > x1 and y2 > y1 where gt_mask is True (the log-size offsets of an empty box are -inf)")
        if not bool(((w >= 0) & (h >= 0)).all()):
            raise ValueError("gt_boxes must have x2 >= x1 and y2 >= y1 where gt_mask is True (corners x1, y1, x2, y2)")
    return gt_mask


# --------------------------------------------------------------------------- matching
# Elements of the IoU matrix computed per block: the blocks' temporaries stay in
# the CPU's cache (a (B, G, P) broadcast of a whole SSD300 batch is ~22 MB per
# temporary and runs at memory speed), and peak memory does not grow with B.
_BLOCK = 1 << 18


class _Priors:
    """Prior corners as contiguous columns (strided views slow broadcasting down ~3x)."""

    def __init__(self, priors: torch.Tensor, dtype: torch.dtype) -> None:
        xy = cxcywh_to_xyxy(priors.to(dtype))
        self.x1, self.y1, self.x2, self.y2 = (xy[:, i].contiguous() for i in range(4))
        self.w, self.h = self.x2 - self.x1, self.y2 - self.y1
        self.area = self.w * self.h
        self.n = priors.shape[0]


def _block_iou(gt: torch.Tensor, pr: _Priors) -> torch.Tensor:
    """IoU of ``gt`` (``(b, g, 4)`` corners) with every prior: ``(b, g, P)``.

    The intersection width is ``min(ax2, bx2) - max(ax1, bx1)`` clamped at 0;
    the union is positive because every prior has positive area.
    """
    ax1, ay1, ax2, ay2 = (gt[..., i : i + 1] for i in range(4))
    iw = torch.minimum(ax2, pr.x2)
    iw -= torch.maximum(ax1, pr.x1)
    iw.clamp_(min=0)
    ih = torch.minimum(ay2, pr.y2)
    ih -= torch.maximum(ay1, pr.y1)
    ih.clamp_(min=0)
    inter = iw.mul_(ih)
    union = torch.add((ax2 - ax1) * (ay2 - ay1), pr.area)
    union -= inter
    return inter.div_(union)


def _blocks(extent: list[int], p: int) -> list[tuple[int, int, int]]:
    """Runs ``[i, j)`` of images (sorted by extent) whose IoU block fits ``_BLOCK`` elements."""
    out, i, b = [], 0, len(extent)
    while i < b:
        j = i + 1
        while j < b and (j + 1 - i) * max(extent[j], 1) * p <= _BLOCK:
            j += 1
        out.append((i, j, max(extent[j - 1], 1)))
        i = j
    return out


def _greedy_bipartite(val: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
    """Principle 1 on images whose ground truths collide on a best prior.

    ``val``/``cand``: ``(b, G, k)`` IoUs and prior indices of each ground truth's
    ``k = min(G, P)`` best priors, best first; padding rows hold -1. Returns
    ``(b, G)`` prior indices (-1: none left). Each round pairs the free (gt, prior)
    of highest IoU. A ground truth's pick always lies among its ``G`` best priors
    (the others take fewer than ``G`` first), so the rounds need those only.
    """
    b, g, k = val.shape
    val = val.clone()
    taken = torch.full((b, g), -1, dtype=torch.long, device=val.device)
    slots = torch.arange(g, device=val.device).view(1, g, 1)
    rounds = int((val[:, :, 0] >= 0).sum(dim=1).max()) if b else 0  # real ground truths of the fullest image
    for _ in range(rounds):
        best, flat = val.flatten(1).max(dim=1)  # (b,)
        live = best >= 0  # a free real ground truth with a free candidate remains
        gi = flat // k
        pi = cand.flatten(1).gather(1, flat.unsqueeze(1))  # (b, 1)
        taken.scatter_(1, gi.unsqueeze(1), torch.where(live.unsqueeze(1), pi, torch.gather(taken, 1, gi.unsqueeze(1))))
        # the pair's ground truth and prior are no longer free
        gone = (slots == gi.view(b, 1, 1)) | (cand == pi.view(b, 1, 1))
        val.masked_fill_(gone & live.view(b, 1, 1), -2.0)
    return taken


def _match(gt_boxes: torch.Tensor, gt_mask: torch.Tensor, priors: torch.Tensor, threshold: float) -> torch.Tensor:
    b, g, _ = gt_boxes.shape
    pr = _Priors(priors, gt_boxes.dtype)
    p = pr.n
    dev = gt_boxes.device
    # Padding becomes the empty box (0, 0, 0, 0): IoU 0 with every prior, never
    # above a real ground truth's; where it could tie (IoU 0), the mask decides.
    gt_boxes = torch.where(gt_mask.unsqueeze(-1), gt_boxes, torch.zeros((), dtype=gt_boxes.dtype, device=dev))
    # Images sorted by the extent of their real ground truths (last real slot + 1),
    # so that a block of images pads little.
    extent = (gt_mask * torch.arange(1, g + 1, device=dev)).amax(dim=1)
    order = torch.argsort(extent, stable=True)
    matched = torch.full((b, p), -1, dtype=torch.long, device=dev)
    forced = torch.full((b, g), -1, dtype=torch.long, device=dev)
    k = min(g, p)
    clash_img, clash_val, clash_cand = [], [], []
    for i, j, e in _blocks(extent[order].tolist(), p):
        idx = order[i:j]
        m = gt_mask[idx, :e]
        iou = _block_iou(gt_boxes[idx, :e], pr)  # (b', e, P)
        # Principle 2: each prior's best IoU; its ground truth only where it passes.
        v = iou.amax(dim=1).masked_fill_(~m.any(dim=1, keepdim=True), -1.0)  # no real ground truth: background
        bi, pi = (v >= threshold).nonzero(as_tuple=True)
        if bi.numel():
            col = iou[bi, :, pi].masked_fill_(~m[bi], -1.0)  # (n, e)
            matched[idx[bi], pi] = col.argmax(dim=1)
        # Principle 1: each real ground truth's best prior ...
        bp = torch.where(m, iou.argmax(dim=2), -1 - torch.arange(e, device=dev))
        forced[idx, :e] = bp.clamp(min=-1)
        # ... unless two share one (or the priors run out): keep their candidates.
        srt = bp.sort(dim=1).values
        clash = (srt[:, 1:] == srt[:, :-1]).any(dim=1) if e > 1 else torch.zeros_like(m[:, 0])
        if bool(clash.any()):
            ci = clash.nonzero().squeeze(1)
            val, cand = iou[ci].topk(min(e, p), dim=2)
            val.masked_fill_(~m[ci].unsqueeze(-1), -1.0)
            pad = k - val.shape[2], g - e
            clash_val.append(F.pad(val, (0, pad[0], 0, pad[1]), value=-1.0))
            clash_cand.append(F.pad(cand, (0, pad[0], 0, pad[1]), value=0))
            clash_img.append(idx[ci])
    if clash_img:
        ci = torch.cat(clash_img)
        forced[ci] = _greedy_bipartite(torch.cat(clash_val), torch.cat(clash_cand))
    ok = forced >= 0
    img = torch.arange(b, device=dev).unsqueeze(1).expand(b, g)
    gts = torch.arange(g, device=dev).expand(b, g)
    matched[img[ok], forced[ok]] = gts[ok]  # forced priors are distinct within an image
    return matched


def ssd_matching(
    gt_boxes: torch.Tensor,
    gt_mask: torch.Tensor | None,
    priors: torch.Tensor,
    *,
    threshold: float = 0.5,
) -> torch.Tensor:
    """Match priors to ground truths by SSD's two principles (see the module docstring).

    Args:
        gt_boxes: ``(B, G, 4)`` corners ``(x1, y1, x2, y2)``, padded.
        gt_mask: ``(B, G)`` bool, True for real ground truths (None: all real).
        priors: ``(P, 4)`` centre-size ``(cx, cy, w, h)`` with positive sizes.
        threshold: principle 2's IoU threshold, in [0, 1]; a prior is positive when IoU >= threshold.

    Returns:
        ``(B, P)`` int64: the index (into G) of each prior's ground truth, -1 for background.
        Ties between equal IoUs are broken deterministically (lowest index where the
        order is defined); which of two tied candidates wins is not part of the contract.
    """
    gt_mask = _check_boxes(gt_boxes, gt_mask, priors, strict=False)
    threshold = check_real("threshold", threshold, low=0.0, high=1.0)
    b, g, _ = gt_boxes.shape
    p = priors.shape[0]
    if b == 0 or g == 0 or p == 0:
        return torch.full((b, p), -1, dtype=torch.long, device=gt_boxes.device)
    with torch.no_grad():
        return _match(gt_boxes.detach(), gt_mask, priors.detach(), threshold)


# --------------------------------------------------------------------------- mining
def hard_negative_mining(conf_loss: torch.Tensor, positive: torch.Tensor, *, neg_pos_ratio: float = 3) -> torch.Tensor:
    """The hard negatives of each image: its ``min(floor(ratio * P_i), N_i)`` negatives of highest loss.

    Args:
        conf_loss: ``(B, P)`` per-prior confidence loss (only its order matters), no NaN.
        positive: ``(B, P)`` bool, the positive priors (never selected).
        neg_pos_ratio: negatives per positive, >= 0.

    Returns:
        ``(B, P)`` bool mask of the selected negatives. Which of several negatives
        of equal loss at the cut is taken is not part of the contract.
    """
    check_tensor("conf_loss", conf_loss, ndim=2)
    check_tensor("positive", positive, floating=False, dtypes=(torch.bool,), ndim=2)
    if positive.shape != conf_loss.shape:
        raise ValueError(f"positive must have the shape of conf_loss {tuple(conf_loss.shape)}, got {tuple(positive.shape)}")
    ratio = check_real("neg_pos_ratio", neg_pos_ratio, low=0.0)
    if conf_loss.numel() and bool(torch.isnan(conf_loss).any()):
        raise ValueError("conf_loss must not contain NaN (the order of the negatives is undefined)")
    return _mine(conf_loss.detach(), positive, ratio)


def _mine(conf_loss: torch.Tensor, positive: torch.Tensor, ratio: float, *, log_prob: bool = False) -> torch.Tensor:
    """``log_prob``: ``conf_loss`` holds background log-probabilities instead (the
    hardest negative has the lowest; never +inf, so no tie with the masked positives)."""
    if log_prob:
        b, p = conf_loss.shape
        with torch.no_grad():
            n_pos = positive.sum(dim=1)
            n_hard = torch.minimum(torch.floor(n_pos.to(torch.float64) * ratio).to(torch.long), p - n_pos)
            k = int(n_hard.max()) if b else 0
            out = torch.zeros_like(positive)
            if k == 0:
                return out
            idx = conf_loss.masked_fill(positive, math.inf).topk(k, dim=1, largest=False).indices
            keep = torch.arange(k, device=conf_loss.device).expand(b, k) < n_hard.unsqueeze(1)
            return out.scatter_(1, idx, keep)
    b, p = conf_loss.shape
    with torch.no_grad():
        n_pos = positive.sum(dim=1)
        n_hard = torch.minimum(torch.floor(n_pos.to(torch.float64) * ratio).to(torch.long), p - n_pos)
        k = int(n_hard.max()) if b else 0
        out = torch.zeros_like(positive)
        if k == 0:
            return out
        neg = conf_loss.masked_fill(positive, -math.inf)
        if bool(torch.isneginf(conf_loss).any()):
            # A negative of loss -inf would tie with the masked positives: rank by
            # (negative first, loss descending) with two stable sorts instead.
            order = torch.sort(neg, dim=1, descending=True, stable=True).indices
            order = torch.gather(order, 1, torch.sort(torch.gather(positive, 1, order).to(torch.uint8), dim=1, stable=True).indices)
            idx = order[:, :k]
        else:
            idx = neg.topk(k, dim=1).indices  # (B, k), the k highest first
        keep = torch.arange(k, device=conf_loss.device).expand(b, k) < n_hard.unsqueeze(1)
        return out.scatter_(1, idx, keep)


# --------------------------------------------------------------------------- loss
def _check_loss_inputs(
    pred_locs: torch.Tensor, pred_scores: torch.Tensor, gt_boxes: torch.Tensor, gt_labels: torch.Tensor,
    gt_mask: torch.Tensor | None, priors: torch.Tensor,
) -> torch.Tensor:
    check_tensor("pred_locs", pred_locs, ndim=3)
    check_tensor("pred_scores", pred_scores, ndim=3)
    if pred_locs.dtype != pred_scores.dtype:
        raise ValueError(f"pred_scores must have the dtype of pred_locs ({pred_locs.dtype}), got {pred_scores.dtype}")
    gt_mask = _check_boxes(gt_boxes, gt_mask, priors, strict=True)
    b, g = gt_boxes.shape[:2]
    p = priors.shape[0]
    if pred_locs.shape != (b, p, 4):
        raise ValueError(f"pred_locs must have shape (B, P, 4) = ({b}, {p}, 4) (B from gt_boxes, P from priors), got {tuple(pred_locs.shape)}")
    if pred_scores.shape[:2] != (b, p) or pred_scores.shape[2] < 2:
        raise ValueError(f"pred_scores must have shape (B, P, C) = ({b}, {p}, C) with C >= 2 (class 0 is background), got {tuple(pred_scores.shape)}")
    check_tensor("gt_labels", gt_labels, floating=False, dtypes=(torch.int64, torch.int32), ndim=2)
    if gt_labels.shape != (b, g):
        raise ValueError(f"gt_labels must have shape (B, G) = ({b}, {g}) like gt_boxes, got {tuple(gt_labels.shape)}")
    c = pred_scores.shape[2]
    real = gt_labels[gt_mask]
    if real.numel() and not bool(((real >= 1) & (real < c)).all()):
        bad = real[(real < 1) | (real >= c)][0].item()
        raise ValueError(f"gt_labels must lie in [1, {c - 1}] where gt_mask is True (0 is background, C = {c}), found {bad}")
    return gt_mask


def multibox_loss(
    pred_locs: torch.Tensor,
    pred_scores: torch.Tensor,
    gt_boxes: torch.Tensor,
    gt_labels: torch.Tensor,
    gt_mask: torch.Tensor | None,
    priors: torch.Tensor,
    *,
    threshold: float = 0.5,
    neg_pos_ratio: float = 3,
    alpha: float = 1.0,
) -> torch.Tensor:
    """SSD MultiBox loss over a batch: ``(L_conf + alpha L_loc) / N``.

    - matching by :func:`ssd_matching` (principle 1 then 2);
    - ``L_loc``: smooth L1 (beta = 1), summed over the 4 offsets of every
      positive prior, against the :func:`encode`\\ d offsets (variances 0.1, 0.2);
    - ``L_conf``: softmax cross-entropy summed over the positives and, per
      image, the ``min(3 P_i, N_i)`` negatives of highest cross-entropy
      (:func:`hard_negative_mining`, chosen among negatives only);
    - ``N``: the number of positives in the whole batch; when it is 0 the loss
      is 0, with zero (finite) gradients.

    Args:
        pred_locs: ``(B, P, 4)`` predicted offsets.
        pred_scores: ``(B, P, C)`` class logits, class 0 background.
        gt_boxes: ``(B, G, 4)`` corners, padded; real boxes must have positive area.
        gt_labels: ``(B, G)`` int64 labels in ``[1, C - 1]`` where real.
        gt_mask: ``(B, G)`` bool, True for real ground truths (None: all real).
        priors: ``(P, 4)`` centre-size priors.

    Returns:
        A 0-d tensor of ``pred_locs``' dtype.
    """
    gt_mask = _check_loss_inputs(pred_locs, pred_scores, gt_boxes, gt_labels, gt_mask, priors)
    threshold = check_real("threshold", threshold, low=0.0, high=1.0)
    ratio = check_real("neg_pos_ratio", neg_pos_ratio, low=0.0)
    alpha = check_real("alpha", alpha, low=0.0)
    b, p, c = pred_scores.shape
    if b == 0 or p == 0:
        return (pred_locs.sum() + pred_scores.sum()) * 0
    matched = ssd_matching(gt_boxes, gt_mask, priors, threshold=threshold)  # (B, P)
    pos = matched >= 0
    safe = matched.clamp(min=0)
    labels = torch.where(pos, torch.gather(gt_labels.long(), 1, safe) if gt_labels.shape[1] else safe, 0)

    # Localisation: smooth L1 on the positives' offsets only.
    pos_idx = pos.nonzero(as_tuple=True)
    gt_pos = gt_boxes[pos_idx[0], safe[pos_idx]]  # (N, 4) corners
    target = encode(xyxy_to_cxcywh(gt_pos), priors.to(gt_boxes.dtype)[pos_idx[1]]).to(pred_locs.dtype)
    loc = F.smooth_l1_loss(pred_locs[pos_idx], target, reduction="sum", beta=1.0)

    # Confidence. Mining needs every negative's cross-entropy (minus the background
    # log-softmax, no graph: ranked by it directly); the loss and its gradient only the selected priors'.
    with torch.no_grad():
        bg_logp = F.log_softmax(pred_scores.detach(), dim=-1)[..., 0]  # CE of the background label, negated
    hard = _mine(bg_logp, pos, ratio, log_prob=True)
    sel = (pos | hard).nonzero(as_tuple=True)
    conf = F.cross_entropy(pred_scores[sel], labels[sel], reduction="sum")

    n = pos.sum()
    return (conf + alpha * loc) / n.clamp(min=1).to(pred_locs.dtype)


# --------------------------------------------------------------------------- seed 001
def seed_ssd_matching(
    gt_boxes: torch.Tensor, gt_mask: torch.Tensor | None, priors: torch.Tensor, *, threshold: float = 0.5
) -> torch.Tensor:
    """Seed 001's matching, per image: ``object_for_each_prior[prior_for_each_object] = range(n)``.

    When two ground truths share a best prior the later one takes it (an index
    put with a repeated index keeps the last write) and the earlier one is left
    with no prior unless principle 2 gives it one.
    """
    gt_mask = _check_boxes(gt_boxes, gt_mask, priors, strict=False)
    b, p = gt_boxes.shape[0], priors.shape[0]
    out = torch.full((b, p), -1, dtype=torch.long, device=gt_boxes.device)
    priors_xy = cxcywh_to_xyxy(priors.to(gt_boxes.dtype))
    for i in range(b):
        real = gt_mask[i].nonzero().squeeze(1)
        n = real.numel()
        if n == 0 or p == 0:
            continue
        overlap = jaccard(gt_boxes[i, real], priors_xy)  # (n, P)
        overlap_for_each_prior, object_for_each_prior = overlap.max(dim=0)
        _, prior_for_each_object = overlap.max(dim=1)
        for j in range(n):  # the listing's index put, with its last-write-wins order made explicit
            object_for_each_prior[prior_for_each_object[j]] = j
            overlap_for_each_prior[prior_for_each_object[j]] = 1.0
        m = real[object_for_each_prior]
        out[i] = torch.where(overlap_for_each_prior < threshold, torch.full_like(m, -1), m)
    return out


def seed_multibox_loss(
    pred_locs: torch.Tensor,
    pred_scores: torch.Tensor,
    gt_boxes: torch.Tensor,
    gt_labels: torch.Tensor,
    gt_mask: torch.Tensor | None,
    priors: torch.Tensor,
    *,
    threshold: float = 0.5,
    neg_pos_ratio: float = 3,
    alpha: float = 1.0,
) -> torch.Tensor:
    """Seed 001's ``MultiBoxLoss.forward`` as listed, on the canonical signature.

    Per-image Python loop; later-wins collisions (:func:`seed_ssd_matching`);
    ``nn.L1Loss()`` (mean over the 4 N offsets) where the text says smooth L1;
    ``n_hard_negatives = neg_pos_ratio * n_positives`` (the listing uses it
    before defining it); ``/ n_positives.sum()``, which is 0/0 = nan with no
    positives.
    """
    gt_mask = _check_loss_inputs(pred_locs, pred_scores, gt_boxes, gt_labels, gt_mask, priors)
    b, p, c = pred_scores.shape
    matched = seed_ssd_matching(gt_boxes, gt_mask, priors, threshold=threshold)
    true_classes = torch.zeros((b, p), dtype=torch.long, device=pred_locs.device)
    true_locs = torch.zeros((b, p, 4), dtype=pred_locs.dtype, device=pred_locs.device)
    for i in range(b):
        m = matched[i]
        obj = m.clamp(min=0)
        if gt_boxes.shape[1]:
            true_classes[i] = torch.where(m >= 0, gt_labels[i].long()[obj], 0)
            true_locs[i] = encode(xyxy_to_cxcywh(gt_boxes[i][obj]), priors.to(gt_boxes.dtype)).to(pred_locs.dtype)
    positive_priors = true_classes != 0
    loc_loss = F.l1_loss(pred_locs[positive_priors], true_locs[positive_priors])
    n_positives = positive_priors.sum(dim=1)
    n_hard_negatives = neg_pos_ratio * n_positives
    conf_loss_all = F.cross_entropy(pred_scores.reshape(-1, c), true_classes.reshape(-1), reduction="none").reshape(b, p)
    conf_loss_pos = conf_loss_all[positive_priors]
    conf_loss_neg = conf_loss_all.clone()
    conf_loss_neg[positive_priors] = 0.0
    conf_loss_neg, _ = conf_loss_neg.sort(dim=1, descending=True)
    hardness_ranks = torch.arange(p, device=pred_locs.device).unsqueeze(0).expand_as(conf_loss_neg)
    hard_negatives = hardness_ranks < n_hard_negatives.unsqueeze(1)
    conf_loss_hard_neg = conf_loss_neg[hard_negatives]
    conf_loss = (conf_loss_hard_neg.sum() + conf_loss_pos.sum()) / n_positives.sum().to(pred_locs.dtype)
    return conf_loss + alpha * loc_loss
