"""Correct CenterNet / CenterFusion implementations written another way than ``impls.centernet``.

Each follows the contract of its spec (``conformance.specs.centernet``) but computes differently:
boolean selection of the active entries instead of masking with ``where``, advanced indexing
instead of ``gather``, the seed's literal formulas (``log(1 - p)``, ``1 / (sigmoid(x) + 1e-6) - 1``),
torch's own BCE, float64 intermediates, other orders of summation. The suite must pass them all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from tests.soundness import Impl

_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_ORDER = ("hm", "wh", "reg", "ltrb", "hps", "hm_hp", "hp_offset", "dep", "dep_sec", "dim", "rot", "rot_sec",
          "amodel_offset", "ltrb_amodal", "tracking", "nuscenes_att", "velocity")


# --------------------------------------------------------------------------- validation (independent of impls)
def _float_map(name: str, t: Any, channels: int | None = None) -> None:
    if not isinstance(t, torch.Tensor) or t.dtype not in _FLOATS:
        raise ValueError(f"{name} must be a floating tensor")
    if t.dim() != 4 or (channels is not None and t.shape[1] != channels):
        raise ValueError(f"{name} must be (B, {channels or 'C'}, H, W), got {tuple(t.shape)}")


def _same(name: str, t: torch.Tensor, like: torch.Tensor, shape: tuple[int, ...] | Sequence[tuple[int, ...]]) -> None:
    shapes = [shape] if shape and isinstance(shape[0], int) else list(shape)  # type: ignore[list-item]
    if not isinstance(t, torch.Tensor) or tuple(t.shape) not in [tuple(s) for s in shapes]:
        raise ValueError(f"{name} must have shape {' or '.join(map(str, shapes))}")
    if t.dtype != like.dtype:
        raise ValueError(f"{name} must have the dtype {like.dtype}, got {t.dtype}")


def _index(name: str, t: Any, shape: tuple[int, ...], high: int | None) -> None:
    if not isinstance(t, torch.Tensor) or t.dtype != torch.int64:
        raise ValueError(f"{name} must be an int64 tensor")
    if tuple(t.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(t.shape)}")
    if high is not None and t.numel() and (int(t.min()) < 0 or int(t.max()) >= high):
        raise ValueError(f"{name} must lie in [0, {high})")


def _mask(name: str, t: Any, shapes: Sequence[tuple[int, ...]], dtype: torch.dtype) -> torch.Tensor:
    if not isinstance(t, torch.Tensor) or tuple(t.shape) not in [tuple(s) for s in shapes]:
        raise ValueError(f"{name} must have shape {' or '.join(map(str, shapes))}")
    m = t.to(dtype)
    if m.numel() and not bool(((m >= 0) & (m <= 1)).all()):
        raise ValueError(f"{name} must lie in [0, 1]")
    return m


def _real(name: str, v: Any, *, high: float | None = None) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (v >= 0) or (high is not None and not v < high):
        raise ValueError(f"{name} must be a real number in [0, {high if high is not None else 'inf'})")
    return float(v)


def _unit(name: str, t: torch.Tensor) -> None:
    if t.numel() and not bool(((t >= 0) & (t <= 1)).all()):
        raise ValueError(f"{name} must lie in [0, 1]")


# --------------------------------------------------------------------------- penalty_reduced_focal
def _focal_check(pred, gt, ind, mask, cat, alpha, beta, positive_threshold, positive_weight, negative_weight,  # type: ignore[no-untyped-def]
                 from_logits):
    _float_map("pred_prob", pred)
    _float_map("gt_heatmap", gt)
    _same("gt_heatmap", gt, pred, tuple(pred.shape))
    _unit("gt_heatmap", gt)
    if not isinstance(from_logits, bool):
        raise ValueError("from_logits must be a bool")
    if not from_logits:
        _unit("pred_prob", pred)
    elif bool(torch.isnan(pred).any()):
        raise ValueError("pred_prob must not be nan")
    for name, v in (("alpha", alpha), ("beta", beta), ("positive_weight", positive_weight), ("negative_weight", negative_weight)):
        _real(name, v)
    if positive_threshold is not None:
        _real("positive_threshold", positive_threshold, high=1.0)
    given = [x is not None for x in (ind, mask, cat)]
    if any(given) and not all(given):
        raise ValueError("ind, mask and cat go together")
    if all(given):
        b, c, h, w = pred.shape
        if not isinstance(ind, torch.Tensor) or ind.dim() != 2 or ind.shape[0] != b:
            raise ValueError("ind must be (B, M)")
        _index("ind", ind, tuple(ind.shape), h * w)
        _index("cat", cat, tuple(ind.shape), c)
        return _mask("mask", mask, [tuple(ind.shape)], pred.dtype)
    return None


def focal_float64_indexing(pred_prob, gt_heatmap, ind=None, mask=None, cat=None, *, alpha=2.0, beta=4.0,  # type: ignore[no-untyped-def]
                           positive_threshold=None, positive_weight=1.0, negative_weight=1.0, from_logits=False):
    """float64 throughout; the seed's log(1 - p) (exact in float64 where it matters); positives read by
    advanced indexing p[b, cat, y, x] of the active slots only; sums per image, then over images."""
    m = _focal_check(pred_prob, gt_heatmap, ind, mask, cat, alpha, beta, positive_threshold, positive_weight,
                     negative_weight, from_logits)
    x = pred_prob.double()
    p = torch.clamp(torch.sigmoid(x), 1e-4, 1 - 1e-4) if from_logits else x
    y = gt_heatmap.double()
    positive = y == 1 if positive_threshold is None else y > positive_threshold
    w = torch.where(positive, torch.zeros_like(y), (1 - y) ** beta)
    counted = w > 0
    # double where: the discarded branch sees a harmless p, so its gradient is 0, not nan.
    p_neg = torch.where(counted, p, torch.full_like(p, 0.5))
    neg_el = torch.where(counted, w * p_neg**alpha * -torch.log(1 - p_neg), torch.zeros_like(p))
    neg = neg_el.flatten(1).sum(1).sum()
    if m is None:
        p_pos = torch.where(positive, p, torch.full_like(p, 0.5))
        pos = torch.where(positive, (1 - p_pos) ** alpha * -torch.log(p_pos), torch.zeros_like(p)).flatten(1).sum(1).sum()
        n = positive.double().sum()
    else:
        w_ = p.shape[3]
        active = m > 0
        bi = torch.arange(p.shape[0]).unsqueeze(1).expand_as(ind)[active]
        pp = p[bi, cat[active], torch.div(ind[active], w_, rounding_mode="floor"), ind[active] % w_]
        pos = (m[active].double() * (1 - pp) ** alpha * -torch.log(pp)).sum()
        n = m.double().sum()
    neg = negative_weight * neg
    out = (positive_weight * pos + neg) / n if float(n) > 0 else neg
    return out.to(pred_prob.dtype)


def focal_seed_style(pred_prob, gt_heatmap, ind=None, mask=None, cat=None, *, alpha=2.0, beta=4.0,  # type: ignore[no-untyped-def]
                     positive_threshold=None, positive_weight=1.0, negative_weight=1.0, from_logits=False):
    """In the input's dtype, as CenterTrack writes FastFocalLoss: _tranpose_and_gather_feat (permute,
    view, gather) then gather on the class; log1p(-p) for the negatives; N == 0 by the seed's branch."""
    m = _focal_check(pred_prob, gt_heatmap, ind, mask, cat, alpha, beta, positive_threshold, positive_weight,
                     negative_weight, from_logits)
    p = torch.clamp(torch.sigmoid(pred_prob), 1e-4, 1 - 1e-4) if from_logits else pred_prob
    gt = gt_heatmap
    positive = gt.eq(1) if positive_threshold is None else gt.gt(positive_threshold)
    neg_w = torch.where(positive, torch.zeros_like(gt), torch.pow(1 - gt, beta))
    safe = torch.where(neg_w > 0, p, torch.zeros_like(p))
    neg_loss = torch.where(neg_w > 0, torch.log1p(-safe) * torch.pow(safe, alpha) * neg_w, torch.zeros_like(p)).sum()
    if m is None:
        safe_pos = torch.where(positive, p, torch.ones_like(p))
        pos_loss = torch.where(positive, torch.log(safe_pos) * torch.pow(1 - safe_pos, alpha), torch.zeros_like(p)).sum()
        num_pos = positive.to(p.dtype).sum()
    else:
        b, c, h, w = p.shape
        feat = p.permute(0, 2, 3, 1).contiguous().view(b, h * w, c)
        pix = feat.gather(1, ind.unsqueeze(2).expand(b, ind.shape[1], c))  # B x M x C
        pos_pred = pix.gather(2, cat.unsqueeze(2)).squeeze(2)  # B x M
        act = m > 0
        safe_pos = torch.where(act, pos_pred, torch.ones_like(pos_pred))
        pos_loss = torch.where(act, torch.log(safe_pos) * torch.pow(1 - safe_pos, alpha) * m, torch.zeros_like(m)).sum()
        num_pos = m.sum()
    if num_pos == 0:
        return -negative_weight * neg_loss
    return -(positive_weight * pos_loss + negative_weight * neg_loss) / num_pos


# --------------------------------------------------------------------------- gathered heads
def _gathered_check(output, mask, ind, target, *, unit_target=False):  # type: ignore[no-untyped-def]
    _float_map("output", output)
    b, d, h, w = output.shape
    if not isinstance(ind, torch.Tensor) or ind.dim() != 2 or ind.shape[0] != b:
        raise ValueError("ind must be (B, M)")
    _index("ind", ind, tuple(ind.shape), h * w)
    mm = ind.shape[1]
    _same("target", target, output, (b, mm, d))
    m = _mask("mask", mask, [(b, mm, d), (b, mm)], output.dtype)
    m = m.unsqueeze(2).expand(b, mm, d) if m.dim() == 2 else m
    if unit_target:
        _unit("target", target[m > 0])
    return m


def _read(output: torch.Tensor, ind: torch.Tensor) -> torch.Tensor:
    """(B, M, D) by advanced indexing of the (B, H*W, D) view."""
    b = output.shape[0]
    flat = output.flatten(2).transpose(1, 2)
    return flat[torch.arange(b).unsqueeze(1), ind]


def reg_boolean_selection(output, mask, ind, target):  # type: ignore[no-untyped-def]
    """Only the active entries are selected (boolean indexing), then |pred - target| weighted and summed."""
    m = _gathered_check(output, mask, ind, target)
    sel = m > 0
    pred = _read(output, ind)[sel]
    return (m[sel] * (pred - target[sel]).abs()).sum() / (m.sum() + 1e-4)


def reg_per_image_float64(output, mask, ind, target):  # type: ignore[no-untyped-def]
    """One image at a time with index_select, float64 sums, the result cast back."""
    m = _gathered_check(output, mask, ind, target)
    total = torch.zeros((), dtype=torch.float64)
    for i in range(output.shape[0]):
        pred = output[i].flatten(1).index_select(1, ind[i]).t().double()  # (M, D)
        sel = m[i] > 0
        total = total + (m[i][sel].double() * (pred[sel] - target[i][sel].double()).abs()).sum()
    return (total / (m.double().sum() + 1e-4)).to(output.dtype)


def bce_torch_builtin(output, mask, ind, target):  # type: ignore[no-untyped-def]
    """torch's binary_cross_entropy_with_logits on the active entries, the mask as its weight."""
    m = _gathered_check(output, mask, ind, target, unit_target=True)
    sel = m > 0
    loss = F.binary_cross_entropy_with_logits(_read(output, ind)[sel], target[sel], weight=m[sel], reduction="sum")
    return loss / (m.sum() + 1e-4)


def bce_logsigmoid_float64(output, mask, ind, target):  # type: ignore[no-untyped-def]
    """-(z logsigmoid(x) + (1 - z) logsigmoid(-x)) in float64 on the active entries."""
    m = _gathered_check(output, mask, ind, target, unit_target=True)
    sel = m > 0
    x, z = _read(output, ind)[sel].double(), target[sel].double()
    el = -(z * F.logsigmoid(x) + (1 - z) * F.logsigmoid(-x))
    return ((m[sel].double() * el).sum() / (m.double().sum() + 1e-4)).to(output.dtype)


# --------------------------------------------------------------------------- depth_l1
def _depth_check(output, target, ind, mask, cat):  # type: ignore[no-untyped-def]
    _float_map("output", output)
    b, c, h, w = output.shape
    if not isinstance(ind, torch.Tensor) or ind.dim() != 2 or ind.shape[0] != b:
        raise ValueError("ind must be (B, M)")
    _index("ind", ind, tuple(ind.shape), h * w)
    _index("cat", cat, tuple(ind.shape), c if c > 1 else None)
    mm = ind.shape[1]
    _same("target", target, output, [(b, mm), (b, mm, 1)])
    return _mask("mask", mask, [(b, mm), (b, mm, 1)], output.dtype).reshape(b, mm)


def depth_seed_literal(output, target, ind, mask, cat):  # type: ignore[no-untyped-def]
    """The seed's literal transform 1 / (sigmoid(x) + 1e-6) - 1 on the active slots' logits, in the dtype."""
    m = _depth_check(output, target, ind, mask, cat)
    b, c = output.shape[:2]
    sel = m > 0
    bi = torch.arange(b).unsqueeze(1).expand_as(ind)[sel]
    ch = cat[sel] if c > 1 else torch.zeros_like(ind[sel])
    x = output.flatten(2)[bi, ch, ind[sel]]
    dep = 1.0 / (torch.sigmoid(x) + 1e-6) - 1.0
    return (m[sel] * (dep - target.reshape(m.shape)[sel]).abs()).sum() / (m.sum() + 1e-4)


def depth_exp_form_float64(output, target, ind, mask, cat):  # type: ignore[no-untyped-def]
    """A loop over the active slots in float64, the transform through exp: with t = e^-x (x >= 0) the depth is
    (t - eps (1 + t)) / (1 + eps (1 + t)); with u = e^x (x < 0), (1 - eps (1 + u)) / (u + eps (1 + u))."""
    m = _depth_check(output, target, ind, mask, cat)
    b, c = output.shape[:2]
    sel = m > 0
    eps = 1e-6
    total = _connected_zero(output, target).double()
    for i, j in zip(*torch.nonzero(sel, as_tuple=True)):
        x = output[i, int(cat[i, j]) if c > 1 else 0].flatten()[ind[i, j]].double()
        t = torch.exp(-x.clamp(min=0))
        u = torch.exp(x.clamp(max=0))
        dep = torch.where(x >= 0, (t - eps * (1 + t)) / (1 + eps * (1 + t)), (1 - eps * (1 + u)) / (u + eps * (1 + u)))
        total = total + m[i, j].double() * (dep - target.reshape(m.shape)[i, j].double()).abs()
    return (total / (m.double().sum() + 1e-4)).to(output.dtype)


def _connected_zero(*ts: torch.Tensor) -> torch.Tensor:
    """0 attached to the graph of every input (a sum over no element: finite whatever the unread values hold), so
    that a batch without an active slot still back-propagates (zero gradients), as a training loss must."""
    return sum((t.flatten()[:0].sum() for t in ts[1:]), ts[0].flatten()[:0].sum())


# --------------------------------------------------------------------------- bin_rot
def _rot_check(output, mask, ind, rotbin, rotres):  # type: ignore[no-untyped-def]
    _float_map("output", output, channels=8)
    b, _, h, w = output.shape
    if not isinstance(ind, torch.Tensor) or ind.dim() != 2 or ind.shape[0] != b:
        raise ValueError("ind must be (B, M)")
    _index("ind", ind, tuple(ind.shape), h * w)
    mm = ind.shape[1]
    _index("rotbin", rotbin, (b, mm, 2), 2)
    _same("rotres", rotres, output, (b, mm, 2))
    return _mask("mask", mask, [(b, mm), (b, mm, 1)], output.dtype).reshape(b, mm)


def _smooth_l1(d: torch.Tensor) -> torch.Tensor:
    a = d.abs()
    return torch.where(a < 1, 0.5 * d * d, a - 0.5)


def rot_selected_cross_entropy(output, mask, ind, rotbin, rotres):  # type: ignore[no-untyped-def]
    """Active slots selected first; F.cross_entropy per bin; a hand-written smooth L1; bins summed in turn."""
    m = _rot_check(output, mask, ind, rotbin, rotres)
    sel = m > 0
    if not bool(sel.any()):
        return _connected_zero(output, rotres)
    pred, w, bins, res = _read(output, ind)[sel], m[sel], rotbin[sel], rotres[sel]
    total = output.new_zeros(())
    for k in (0, 1):
        total = total + (w * F.cross_entropy(pred[:, 4 * k : 4 * k + 2], bins[:, k], reduction="none")).sum() / w.sum()
    for k in (0, 1):
        on = bins[:, k] == 1
        if bool(on.any()):
            r = res[on, k]
            el = _smooth_l1(pred[on, 4 * k + 2] - torch.sin(r)) + _smooth_l1(pred[on, 4 * k + 3] - torch.cos(r))
            total = total + (w[on] * el).sum() / w[on].sum()
    return total


def rot_float64_logsumexp(output, mask, ind, rotbin, rotres):  # type: ignore[no-untyped-def]
    """float64; the bin cross-entropy as logsumexp minus the chosen logit; smooth L1 through F.smooth_l1_loss."""
    m = _rot_check(output, mask, ind, rotbin, rotres)
    sel = m > 0
    if not bool(sel.any()):
        return _connected_zero(output, rotres)
    pred, w, bins, res = _read(output, ind)[sel].double(), m[sel].double(), rotbin[sel], rotres[sel].double()
    ce = torch.zeros((), dtype=torch.float64)
    resid = torch.zeros((), dtype=torch.float64)
    for k in (0, 1):
        logits = pred[:, 4 * k : 4 * k + 2]
        ce = ce + (w * (torch.logsumexp(logits, 1) - logits.gather(1, bins[:, k : k + 1]).squeeze(1))).sum()
        on = bins[:, k] == 1
        if bool(on.any()):
            el = F.smooth_l1_loss(pred[on, 4 * k + 2], torch.sin(res[on, k]), reduction="none") + F.smooth_l1_loss(
                pred[on, 4 * k + 3], torch.cos(res[on, k]), reduction="none")
            resid = resid + (w[on] * el).sum() / w[on].sum()
    return (ce / w.sum() + resid).to(output.dtype)


# --------------------------------------------------------------------------- generic_loss
def _head(h: str, out: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor], sigmoid_dep_sec: bool) -> torch.Tensor:
    bt = batch
    if h in ("hm", "hm_hp"):
        keys = ("ind", "mask", "cat") if h == "hm" else ("hp_ind", "hm_hp_mask", "joint")
        return focal_float64_indexing(out[h], bt[h], *(bt[k] for k in keys), from_logits=True)
    if h in ("dep", "dep_sec"):
        if h == "dep" or sigmoid_dep_sec:
            return depth_seed_literal(out[h], bt["dep"], bt["ind"], bt["dep_mask"], bt["cat"])
        _depth_check(out[h], bt["dep"], bt["ind"], bt["dep_mask"], bt["cat"])
        m = bt["dep_mask"].to(out[h].dtype).reshape(bt["ind"].shape)
        c = out[h].shape[1]
        g = _read(out[h], bt["ind"])
        g = g.gather(2, bt["cat"].unsqueeze(2)) if c > 1 else g
        sel = m > 0
        return (m[sel] * (g.reshape(m.shape)[sel] - bt["dep"].reshape(m.shape)[sel]).abs()).sum() / (m.sum() + 1e-4)
    if h in ("rot", "rot_sec"):
        return rot_selected_cross_entropy(out[h], bt["rot_mask"], bt["ind"], bt["rotbin"], bt["rotres"])
    if h == "nuscenes_att":
        return bce_logsigmoid_float64(out[h], bt["nuscenes_att_mask"], bt["ind"], bt[h])
    ind = bt["hp_ind"] if h == "hp_offset" else bt["ind"]
    return reg_boolean_selection(out[h], bt[h + "_mask"], ind, bt[h])


def generic_stacked_heads(outputs, batch, *, weights, heads=_ORDER, sigmoid_dep_sec=False):  # type: ignore[no-untyped-def]
    """Each head's per-stack losses stacked and averaged with mean(); the total summed in sorted head order;
    every head through the alternatives above (the heatmap in float64 with the clamp applied inside)."""
    if isinstance(outputs, Mapping) or not isinstance(outputs, Sequence) or not outputs:
        raise ValueError("outputs must be a non-empty list of dicts")
    if not isinstance(weights, Mapping):
        raise ValueError("weights must be a dict")
    if any(h not in _ORDER for h in heads):
        raise ValueError("heads must be among the known heads")
    present = [h for h in heads if h in outputs[0] and (h != "hp_offset" or "hm_hp" in outputs[0])]
    for s, o in enumerate(outputs):
        if [h for h in heads if h in o] != [h for h in heads if h in outputs[0]]:
            raise ValueError(f"outputs[{s}] must carry the heads of outputs[0]")
    for h in present:
        if h not in weights:
            raise ValueError(f"weights has no entry for {h!r}")
        v = weights[h]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
            raise ValueError(f"weights[{h!r}] must be a real number")
    active = sorted(h for h in present if weights[h] != 0)
    per = {h: torch.stack([_head(h, o, batch, sigmoid_dep_sec) for o in outputs]).mean() for h in active}
    like = next(t for t in outputs[0].values() if isinstance(t, torch.Tensor))
    total = torch.zeros((), dtype=like.dtype)
    for h in active:
        total = total + float(weights[h]) * per[h]
    return total, per


IMPLEMENTATIONS = [
    Impl("float64_indexing", "penalty_reduced_focal", focal_float64_indexing,
         "float64 throughout, log(1 - p), positives by advanced indexing of the active slots, per-image sums"),
    Impl("seed_style", "penalty_reduced_focal", focal_seed_style,
         "CenterTrack's FastFocalLoss layout (permute + view + two gathers), log1p, in the input's dtype"),
    Impl("boolean_selection", "reg_weighted_l1", reg_boolean_selection, "active entries selected by boolean indexing"),
    Impl("per_image_float64", "reg_weighted_l1", reg_per_image_float64, "index_select per image, float64 sums"),
    Impl("torch_builtin", "weighted_bce", bce_torch_builtin, "F.binary_cross_entropy_with_logits with the mask as weight"),
    Impl("logsigmoid_float64", "weighted_bce", bce_logsigmoid_float64, "two logsigmoid terms in float64"),
    Impl("seed_literal", "depth_l1", depth_seed_literal, "the seed's 1 / (sigmoid(x) + 1e-6) - 1, in the dtype"),
    Impl("exp_form_float64", "depth_l1", depth_exp_form_float64, "a loop over the active slots, the transform through exp, float64"),
    Impl("selected_cross_entropy", "bin_rot", rot_selected_cross_entropy,
         "active slots selected first, F.cross_entropy, a hand-written smooth L1"),
    Impl("float64_logsumexp", "bin_rot", rot_float64_logsumexp, "float64, logsumexp minus the chosen logit"),
    Impl("stacked_heads", "generic_loss", generic_stacked_heads,
         "per-stack losses stacked and averaged, total in sorted head order, every head an alternative above"),
]
