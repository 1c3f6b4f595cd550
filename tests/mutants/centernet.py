"""Mutants of the CenterNet / CenterFusion family: the slips seed 003's readers make.

Each is a small, plain implementation with one mistake (named in its ``why``); around it, the
canonical keywords are applied as the reference applies them, so that a mutant differs from
the reference only in its planted defect. ``tests/mutants/generic.py`` adds the ignored-keyword,
changed-default (generic ``defaults_honoured`` only), in-place-write and detached-input mutants.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from impls import centernet as ref
from tests.mutants import Mutant


def _gather(feat: torch.Tensor, ind: torch.Tensor, *, transposed: bool = False) -> torch.Tensor:
    """(B, D, H, W) read at flat indices -> (B, M, D); ``transposed`` reads ind as x * H + y."""
    b, d, h, w = feat.shape
    if transposed:
        feat = feat.transpose(2, 3)
    flat = feat.reshape(b, d, h * w)
    return flat.gather(2, ind.unsqueeze(1).expand(b, d, ind.shape[1])).transpose(1, 2)


# --------------------------------------------------------------------------- penalty-reduced focal
def _focal(pred, gt, ind=None, mask=None, cat=None, *, alpha=2.0, beta=4.0, positive_threshold=None,  # type: ignore[no-untyped-def]
           positive_weight=1.0, negative_weight=1.0, from_logits=False, norm="pos", guard=True, use_cat=True,
           transposed=False, swap=False, use_mask=True, inverted=False, half=False, detach_pos=False, check=True,
           inclusive=False, weights_swapped=False, weight_in_norm=False, clamp=True, dense_threshold=None):
    """The contract with one planted defect chosen by the keyword-only flags after from_logits."""
    if check:  # the reference's own validation, so that only the planted defect differs
        ref._check_heatmap_pair(pred, gt, "pred_prob")
        ref._check_slots(ind, mask, cat, pred.shape, pred.dtype)
        if not isinstance(from_logits, bool):
            raise ValueError("from_logits must be a bool")
        if not from_logits and pred.numel() and not bool(((pred >= 0) & (pred <= 1)).all()):
            raise ValueError("pred_prob must have values in [0, 1]")
        for name, v in (("alpha", alpha), ("beta", beta), ("positive_weight", positive_weight),
                        ("negative_weight", negative_weight)):
            ref.check_real(name, v, low=0.0)
        if positive_threshold is not None:
            ref.check_real("positive_threshold", positive_threshold, low=0.0, high=1.0, high_open=True)
    if swap:
        alpha, beta = beta, alpha
    if weights_swapped:
        positive_weight, negative_weight = negative_weight, positive_weight
    p = (ref.clamped_sigmoid(pred) if clamp else torch.sigmoid(pred)) if from_logits else pred
    if half:
        p = p.half().to(pred.dtype)
    thr = dense_threshold if positive_threshold is None else positive_threshold
    positive = (gt == 1) if thr is None else ((gt >= thr) if inclusive else (gt > thr))
    wneg = torch.where(positive, torch.zeros_like(gt), gt.pow(beta) if inverted else (1 - gt).pow(beta))
    active = wneg > 0
    pn = torch.where(active, p, torch.zeros_like(p))
    neg = torch.where(active, wneg * pn.pow(alpha) * -torch.log1p(-pn), torch.zeros_like(p)).sum()
    b, c, h, w = pred.shape
    if ind is None:
        pp = torch.where(positive, p, torch.ones_like(p))
        pos_el = torch.where(positive, (1 - pp).pow(alpha) * -torch.log(pp), torch.zeros_like(p))
        n = positive.sum().to(p.dtype)
        m = None
    else:
        m = mask.to(pred.dtype) if use_mask else torch.ones(ind.shape, dtype=pred.dtype)
        src = p.transpose(2, 3) if transposed else p
        flat = src.reshape(b, c * h * w)
        idx = (cat if use_cat else torch.zeros_like(cat)) * (h * w) + (ind if check else ind % (h * w))
        pp = torch.where(m > 0, flat.gather(1, idx), torch.ones(idx.shape, dtype=p.dtype))
        pos_el = torch.where(m > 0, m * (1 - pp).pow(alpha) * -torch.log(pp), torch.zeros_like(pp))
        n = m.sum()
    if detach_pos:
        pos_el = pos_el.detach()
    pos = pos_el.sum()
    if weight_in_norm:
        n = n * positive_weight
    total = positive_weight * pos + negative_weight * neg
    if norm == "batch":
        out = total / max(b, 1)
    elif not guard or float(n) > 0:
        out = total / n
    else:
        out = negative_weight * neg
    return out.to(pred.dtype)


def _focal_mutant(**cfg):  # type: ignore[no-untyped-def]
    def f(pred_prob, gt_heatmap, ind=None, mask=None, cat=None, *, alpha=2.0, beta=4.0, positive_threshold=None,  # type: ignore[no-untyped-def]
          positive_weight=1.0, negative_weight=1.0, from_logits=False):
        return _focal(pred_prob, gt_heatmap, ind, mask, cat, alpha=alpha, beta=beta, positive_threshold=positive_threshold,
                      positive_weight=positive_weight, negative_weight=negative_weight, from_logits=from_logits, **cfg)

    return f


def _focal_default_changed(name: str, alt: object):  # type: ignore[no-untyped-def]
    def f(pred_prob, gt_heatmap, ind=None, mask=None, cat=None, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault(name, alt)
        return ref.penalty_reduced_focal(pred_prob, gt_heatmap, ind, mask, cat, **kwargs)

    return f


def focal_clamps_in_place(pred_prob, gt_heatmap, ind=None, mask=None, cat=None, **kwargs):  # type: ignore[no-untyped-def]
    if not kwargs.get("from_logits", False):
        pred_prob.clamp_(1e-4, 1 - 1e-4)  # CenterNet's sigmoid_ habit, applied to the caller's tensor
    return ref.penalty_reduced_focal(pred_prob, gt_heatmap, ind, mask, cat, **kwargs)


def focal_heatmap_broadcast(pred_prob, gt_heatmap, ind=None, mask=None, cat=None, **kwargs):  # type: ignore[no-untyped-def]
    return ref.penalty_reduced_focal(pred_prob, gt_heatmap.expand_as(pred_prob), ind, mask, cat, **kwargs)


def focal_slots_broadcast(pred_prob, gt_heatmap, ind=None, mask=None, cat=None, **kwargs):  # type: ignore[no-untyped-def]
    # A mask or cat of another slot count is cut or padded to ind's instead of rejected.
    if ind is not None:
        mask = torch.nn.functional.pad(mask.to(pred_prob.dtype), (0, max(0, ind.shape[1] - mask.shape[1])))[:, : ind.shape[1]]
        cat = torch.nn.functional.pad(cat, (0, max(0, ind.shape[1] - cat.shape[1])))[:, : ind.shape[1]]
        if ind.shape[0] != pred_prob.shape[0]:
            ind, mask, cat = ind[: pred_prob.shape[0]], mask[: pred_prob.shape[0]], cat[: pred_prob.shape[0]]
    return ref.penalty_reduced_focal(pred_prob, gt_heatmap, ind, mask, cat, **kwargs)


def focal_probabilities_kept_off_the_ends(pred_prob, gt_heatmap, ind=None, mask=None, cat=None, **kwargs):  # type: ignore[no-untyped-def]
    # p in {0, 1} moved to the nearest representable interior value: every term finite, no other p changed.
    if not kwargs.get("from_logits", False) and pred_prob.is_floating_point():
        info = torch.finfo(pred_prob.dtype)
        pred_prob = pred_prob.clamp(info.tiny, 1 - info.eps / 2)
    return ref.penalty_reduced_focal(pred_prob, gt_heatmap, ind, mask, cat, **kwargs)


# --------------------------------------------------------------------------- gathered heads
def _reg(output, mask, ind, target, *, kind="l1", expand=True, eps=1e-4, norm="mask", transposed=False, leak=False,  # type: ignore[no-untyped-def]
         check=True, naive=False, seed_product=False):
    _b, _d, h, w = output.shape
    if check:  # the reference's validation, so that only the planted defect differs
        (ref.reg_weighted_l1 if kind != "bce" else ref.weighted_bce)(output.detach(), mask, ind, target.detach())
    ind = ind % (h * w)
    pred = _gather(output, ind, transposed=transposed)
    m = mask.to(output.dtype)
    if m.dim() == 2:
        m = m.unsqueeze(2).expand_as(pred) if expand else m.unsqueeze(2)
    weight = torch.ones_like(pred) if leak else m.expand_as(pred)
    if seed_product:  # the seed's own form: mask * pred against mask * target (0 * nan = nan in padding)
        return F.l1_loss(pred * weight, target * weight, reduction="sum") / (m.sum() + eps)
    active = weight > 0
    pred = torch.where(active, pred, torch.zeros_like(pred))
    tz = torch.where(active, target, torch.zeros_like(target))
    if kind == "l1":
        el = (pred - tz).abs()
    elif kind == "l2":
        el = (pred - tz) ** 2
    else:  # bce
        el = -(tz * torch.log(torch.sigmoid(pred)) + (1 - tz) * torch.log(1 - torch.sigmoid(pred))) if naive else \
            F.binary_cross_entropy_with_logits(pred, tz, reduction="none")
    num = torch.where(active, weight * el, torch.zeros_like(el)).sum()
    if norm == "all":
        return num / max(el.numel(), 1)
    return num / (m.sum() + eps)


def _reg_mutant(**cfg):  # type: ignore[no-untyped-def]
    def f(output, mask, ind, target):  # type: ignore[no-untyped-def]
        return _reg(output, mask, ind, target, **cfg)

    return f


def reg_abs_via_sqrt(output, mask, ind, target):  # type: ignore[no-untyped-def]
    # |d| as sqrt(d^2): the same value, but the gradient at d = 0 is 0 * inf = nan.
    ref.reg_weighted_l1(output.detach(), mask, ind, target.detach())
    _b, _d, h, w = output.shape
    pred = _gather(output, ind)
    m = mask.to(output.dtype)
    m = m.unsqueeze(2).expand_as(pred) if m.dim() == 2 else m
    d = torch.where(m > 0, pred - target, torch.zeros_like(pred))
    return (m * torch.sqrt(d * d)).sum() / (m.sum() + 1e-4)


def reg_in_place(output, mask, ind, target):  # type: ignore[no-untyped-def]
    output.mul_(1.0)  # a no-op write: the version counter moves
    return ref.reg_weighted_l1(output, mask, ind, target)


def bce_in_place(output, mask, ind, target):  # type: ignore[no-untyped-def]
    with torch.no_grad():
        output.sigmoid_().logit_()
    return ref.weighted_bce(output, mask, ind, target)


def reg_target_broadcast(output, mask, ind, target):  # type: ignore[no-untyped-def]
    return ref.reg_weighted_l1(output, mask, ind, target.expand(ind.shape[0], ind.shape[1], output.shape[1]))


def bce_target_broadcast(output, mask, ind, target):  # type: ignore[no-untyped-def]
    return ref.weighted_bce(output, mask, ind, target.expand(ind.shape[0], ind.shape[1], output.shape[1]))


def bce_no_target_check(output, mask, ind, target):  # type: ignore[no-untyped-def]
    # Soft targets outside [0, 1] go through the formula unchecked.
    m = mask.to(output.dtype)
    m = m.unsqueeze(2).expand(*ind.shape, output.shape[1]) if m.dim() == 2 else m
    pred = _gather(output, ind)
    active = m > 0
    z = torch.where(active, target, torch.zeros_like(target))
    el = F.binary_cross_entropy_with_logits(torch.where(active, pred, torch.zeros_like(pred)), z, reduction="none")
    return torch.where(active, m * el, torch.zeros_like(el)).sum() / (m.sum() + 1e-4)


class _DepthNoChainRule(torch.autograd.Function):
    """1 / (sigmoid(x) + 1e-6) - 1 with a hand-written backward that forgets sigmoid'(x)."""

    @staticmethod
    def forward(ctx, x):  # type: ignore[no-untyped-def]
        s = torch.sigmoid(x)
        ctx.save_for_backward(s)
        return 1 / (s + 1e-6) - 1

    @staticmethod
    def backward(ctx, g):  # type: ignore[no-untyped-def]
        (s,) = ctx.saved_tensors
        return -g / (s + 1e-6) ** 2  # d/ds only: the factor s (1 - s) is missing


def _depth(output, target, ind, mask, cat, *, transform="seed", use_cat=True, leak=False, eps=1e-4, norm="mask",  # type: ignore[no-untyped-def]
           bcast=False, clamp_cat=False):
    if bcast:
        target = target.expand(ind.shape)
    elif clamp_cat:
        cat = cat.clamp(0, output.shape[1] - 1)
    else:
        ref.depth_l1(output.detach(), target.detach(), ind, mask, cat)  # the reference's validation
    _b, c, _h, _w = output.shape
    pred = _gather(output, ind)  # (B, M, C)
    if c > 1:
        pred = pred.gather(2, (cat if use_cat else torch.zeros_like(cat)).unsqueeze(2))
    pred = pred.reshape(ind.shape)
    m = mask.to(output.dtype).reshape(ind.shape)
    weight = torch.ones_like(m) if leak else m
    active = weight > 0
    raw = torch.where(active, pred, torch.zeros_like(pred))
    if transform == "seed":
        dep = ref.depth_transform(raw)
    elif transform == "no_chain_rule":
        dep = _DepthNoChainRule.apply(raw)
    elif transform == "no_eps":
        dep = 1 / torch.sigmoid(raw) - 1
    else:
        dep = raw
    t = torch.where(active, target.reshape(ind.shape), torch.zeros_like(m))
    num = torch.where(active, weight * (dep - t).abs(), torch.zeros_like(m)).sum()
    if norm == "all":
        return num / max(m.numel(), 1)
    return num / (m.sum() + eps)


def _depth_mutant(**cfg):  # type: ignore[no-untyped-def]
    def f(output, target, ind, mask, cat):  # type: ignore[no-untyped-def]
        return _depth(output, target, ind, mask, cat, **cfg)

    return f


def depth_sigmoid_in_place(output, target, ind, mask, cat):  # type: ignore[no-untyped-def]
    with torch.no_grad():
        x = output.clone()
        output.sigmoid_()  # the seed's _sigmoid_output writes into the caller's dict
        output.copy_(x)
    return ref.depth_l1(output, target, ind, mask, cat)


def depth_whole_map_transform(output, target, ind, mask, cat):  # type: ignore[no-untyped-def]
    # The transform on the whole map before the gather: 0 * nan in the backward of unread nan pixels.
    return ref._depth_l1_of(ref.depth_transform(output), target, ind, mask, cat)


# --------------------------------------------------------------------------- bin_rot
def _rot(output, mask, ind, rotbin, rotres, *, leak=False, raw_angle=False, all_bins=False, offsets=(0, 4),  # type: ignore[no-untyped-def]
         overlap=None, detach_bins=False, check=True):
    if check:
        ref.bin_rot(output.detach(), mask, ind, rotbin, rotres.detach())  # the reference's validation
    pred = _gather(output, ind)  # (B, M, 8)
    m = mask.to(output.dtype).reshape(ind.shape)
    bins = rotbin
    if overlap is not None:  # re-derives the active bins from the residuals, with a wrong overlap
        bins = (rotres.abs() <= overlap).to(torch.int64)
    wm = torch.ones_like(m) if leak else m
    act = wm > 0
    total = output.new_zeros(())
    for k, o in enumerate(offsets):
        logits = torch.where(act.unsqueeze(-1), pred[..., o : o + 2], torch.zeros_like(pred[..., o : o + 2]))
        logits = logits.detach() if detach_bins else logits
        ce = F.cross_entropy(logits.reshape(-1, 2), bins[..., k].reshape(-1).clamp(0, 1), reduction="none").reshape(m.shape)
        if float(wm.sum()) > 0:
            total = total + torch.where(act, wm * ce, torch.zeros_like(ce)).sum() / wm.sum()
        sin_p = torch.where(act, pred[..., o + 2], torch.zeros_like(m))
        cos_p = torch.where(act, pred[..., o + 3], torch.zeros_like(m))
        r = torch.where(act, rotres[..., k], torch.zeros_like(m))
        if raw_angle:
            res = F.smooth_l1_loss(sin_p, r, reduction="none") + F.smooth_l1_loss(cos_p, torch.zeros_like(cos_p), reduction="none")
        else:
            res = F.smooth_l1_loss(sin_p, torch.sin(r), reduction="none") + \
                F.smooth_l1_loss(cos_p, torch.cos(r), reduction="none")
        sel = wm * (torch.ones_like(m) if all_bins else bins[..., k].to(m.dtype))
        if float(sel.sum()) > 0:
            total = total + torch.where(sel > 0, sel * res, torch.zeros_like(res)).sum() / sel.sum()
    return total


def _rot_mutant(**cfg):  # type: ignore[no-untyped-def]
    def f(output, mask, ind, rotbin, rotres):  # type: ignore[no-untyped-def]
        return _rot(output, mask, ind, rotbin, rotres, **cfg)

    return f


def rot_in_place(output, mask, ind, rotbin, rotres):  # type: ignore[no-untyped-def]
    with torch.no_grad():
        rotres.remainder_(2 * math.pi)  # "normalises" the caller's residuals in place
    return ref.bin_rot(output, mask, ind, rotbin, rotres)


def rot_residual_broadcast(output, mask, ind, rotbin, rotres):  # type: ignore[no-untyped-def]
    return ref.bin_rot(output, mask, ind, rotbin, rotres.expand(rotbin.shape))


# --------------------------------------------------------------------------- generic_loss
def _generic(outputs, batch, *, weights, heads=ref.LOSS_ORDER, sigmoid_dep_sec=False, stacks="mean", clamp=True,  # type: ignore[no-untyped-def]
             skip_zero=True, in_place=False, weighted=True, default_weight=False, depth=True, float32=False,
             detach_hm=False, dep_sec_always=False):
    """The reference's GenericLoss with one planted defect; its argument checks are the reference's."""
    if not default_weight:
        ref._check_generic_args(outputs, batch, weights, heads)
    else:
        weights = {h: weights.get(h, 1.0) for h in outputs[0]}
    present = [h for h in heads if h in outputs[0] and (h != "hp_offset" or "hm_hp" in outputs[0])]
    active = [h for h in present if not (skip_zero and weights[h] == 0)]
    per: dict[str, torch.Tensor] = {}
    for out in outputs:
        view = out if in_place else dict(out)
        for key in ("hm", "hm_hp"):
            if key in view:
                x = view[key].detach() if detach_hm else view[key]
                view[key] = ref.clamped_sigmoid(x) if clamp else torch.sigmoid(x)
        if "dep" in view and depth:
            view["dep"] = ref.depth_transform(view["dep"])
        if "dep_sec" in view and (sigmoid_dep_sec or dep_sec_always):
            view["dep_sec"] = ref.depth_transform(view["dep_sec"])
        for h in active:
            v = ref._head_loss(h, view, batch, ref.bin_rot)
            v = v if stacks == "sum" else v / len(outputs)
            per[h] = v if h not in per else per[h] + v
    like = next(iter(outputs[0].values()))
    total = sum(((weights[h] if weighted else 1.0) * per[h] for h in active), torch.zeros((), dtype=like.dtype))
    if float32:
        total = total.float()
    return total, per


def _generic_mutant(**cfg):  # type: ignore[no-untyped-def]
    def f(outputs, batch, *, weights, heads=ref.LOSS_ORDER, sigmoid_dep_sec=False):  # type: ignore[no-untyped-def]
        return _generic(outputs, batch, weights=weights, heads=heads, sigmoid_dep_sec=sigmoid_dep_sec, **cfg)

    return f


def generic_heatmap_cut_to_fit(outputs, batch, *, weights, heads=ref.LOSS_ORDER, sigmoid_dep_sec=False):  # type: ignore[no-untyped-def]
    # A batch heatmap with more classes than the head is cut to the head's instead of rejected.
    if outputs and "hm" in outputs[0] and "hm" in batch:
        batch = {**batch, "hm": batch["hm"][:, : outputs[0]["hm"].shape[1]]}
    return ref.generic_loss(outputs, batch, weights=weights, heads=heads, sigmoid_dep_sec=sigmoid_dep_sec)


def generic_dropout(outputs, batch, *, weights, heads=ref.LOSS_ORDER, sigmoid_dep_sec=False):  # type: ignore[no-untyped-def]
    outs = [{**o, **({"hm": F.dropout(o["hm"], 0.3, training=True)} if "hm" in o else {})} for o in outputs]
    if not any("hm" in o for o in outputs):
        outs = [{k: F.dropout(v, 0.3, training=True) for k, v in o.items()} for o in outputs]
    return ref.generic_loss(outs, batch, weights=weights, heads=heads, sigmoid_dep_sec=sigmoid_dep_sec)


def generic_returns_float32(outputs, batch, *, weights, heads=ref.LOSS_ORDER, sigmoid_dep_sec=False):  # type: ignore[no-untyped-def]
    total, per = ref.generic_loss(outputs, batch, weights=weights, heads=heads, sigmoid_dep_sec=sigmoid_dep_sec)
    return total.float(), {h: v.float() for h, v in per.items()}


def generic_casts_masks_in_the_callers_batch(outputs, batch, *, weights, heads=ref.LOSS_ORDER, sigmoid_dep_sec=False):  # type: ignore[no-untyped-def]
    # "Normalises" the masks to the heads' dtype by writing the cast tensors back into the caller's
    # batch: the same values, but bool or integer masks the caller holds are replaced.
    dtype = next(iter(outputs[0].values())).dtype
    for k in [k for k in batch if k.endswith("mask")]:
        batch[k] = batch[k].to(dtype)
    return ref.generic_loss(outputs, batch, weights=weights, heads=heads, sigmoid_dep_sec=sigmoid_dep_sec)


def generic_cpu_constant(outputs, batch, *, weights, heads=ref.LOSS_ORDER, sigmoid_dep_sec=False):  # type: ignore[no-untyped-def]
    total, per = ref.generic_loss(outputs, batch, weights=weights, heads=heads, sigmoid_dep_sec=sigmoid_dep_sec)
    return total + torch.zeros((), dtype=total.dtype), per


def _cpu_constant(fn):  # type: ignore[no-untyped-def]
    def f(*args, **kwargs):  # type: ignore[no-untyped-def]
        out = fn(*args, **kwargs)
        return out + torch.zeros((), dtype=out.dtype)

    return f


def _dropout(fn):  # type: ignore[no-untyped-def]
    def f(first, *args, **kwargs):  # type: ignore[no-untyped-def]
        if first.is_floating_point() and not kwargs.get("from_logits", False):
            # A probability map: dropout keeps it in [0, 1] (kept values scaled back down).
            return fn(F.dropout(first, 0.3, training=True) * 0.7, *args, **kwargs)
        return fn(F.dropout(first, 0.3, training=True), *args, **kwargs)

    return f


def _float32(fn):  # type: ignore[no-untyped-def]
    def f(*args, **kwargs):  # type: ignore[no-untyped-def]
        return fn(*args, **kwargs).float()

    return f


_DEVICE = ("cuda_matches_cpu", "mps_matches_cpu")
def reg_normalised_by_active_count(output, mask, ind, target):  # type: ignore[no-untyped-def]
    # Divides by the number of active entries instead of the sum of their weights: the same for a 0/1
    # mask, wrong for fractional slot weights.
    ref.reg_weighted_l1(output, mask, ind, target)  # the reference's input checks
    b, d = output.shape[:2]
    m = mask.to(output.dtype)
    if m.dim() == 2:
        m = m.unsqueeze(2).expand(b, m.shape[1], d)
    pred = ref._gather_feat(output, ind)
    active = m > 0
    diff = torch.where(active, pred, torch.zeros_like(pred)) - torch.where(active, target, torch.zeros_like(target))
    num = torch.where(active, m * diff.abs(), torch.zeros_like(diff)).sum()
    return num / (active.sum().to(output.dtype) + ref.NORM_EPS)


def focal_fractional_mask_binarised(pred_prob, gt_heatmap, ind=None, mask=None, cat=None, **kw):  # type: ignore[no-untyped-def]
    # mask.bool() on slot weights: a fractional weight counts as a whole positive.
    if mask is not None and mask.is_floating_point():
        mask = (mask > 0).to(mask.dtype)
    return ref.penalty_reduced_focal(pred_prob, gt_heatmap, ind, mask, cat, **kw)


def depth_squeezes_singleton_axes(output, target, ind, mask, cat):  # type: ignore[no-untyped-def]
    # (B, M, 1) target and mask flattened with .squeeze(): with M = 1 they become (B,) and broadcast
    # against the (B, 1) predictions into a B x B table of every slot against every target.
    ref.depth_l1(output, target, ind, mask, cat)  # the reference's input checks
    b, c = output.shape[:2]
    mm = ind.shape[1]
    m2 = mask.to(output.dtype).reshape(b, mm)
    pred = ref._gather_feat(output, ind)
    pred = (pred.gather(2, cat.unsqueeze(2)) if c > 1 else pred).reshape(b, mm)
    pred = ref.depth_transform(torch.where(m2 > 0, pred, torch.zeros_like(pred)))
    t = target.squeeze() if target.dim() == 3 else target
    mk = mask.to(output.dtype)
    mk = mk.squeeze() if mk.dim() == 3 else mk
    diff = pred - t
    w = mk * torch.ones_like(diff)
    active = w > 0
    term = torch.where(active, w * torch.where(active, diff, torch.zeros_like(diff)).abs(), torch.zeros_like(diff))
    return term.sum() / (mk.sum() + ref.NORM_EPS)


PF, RG, DP, BC, RT, GN = "penalty_reduced_focal", "reg_weighted_l1", "depth_l1", "weighted_bce", "bin_rot", "generic_loss"
_PF_DEFAULTS = (("alpha", 1.0), ("beta", 2.0), ("positive_threshold", 0.5), ("positive_weight", 0.5),
                ("negative_weight", 0.5), ("from_logits", True))

MUTANTS = [
    # --- penalty-reduced focal ------------------------------------------------------------------
    Mutant("batch_size_normaliser", PF, _focal_mutant(norm="batch"), "divides by the batch size, not the number of peaks",
           ("agrees_with_numpy", "normalised_by_the_number_of_peaks")),
    Mutant("zero_division_without_peaks", PF, _focal_mutant(guard=False), "divides by N even when it is 0",
           ("no_peak_gives_the_negative_sum",)),
    Mutant("cat_ignored", PF, _focal_mutant(use_cat=False), "reads the positives in channel 0 whatever their class",
           ("agrees_with_numpy", "gather_form_equals_dense_form")),
    Mutant("gather_on_the_wrong_axis", PF, _focal_mutant(transposed=True), "reads ind as x * H + y (H and W swapped)",
           ("agrees_with_numpy", "gather_form_equals_dense_form")),
    Mutant("alpha_beta_swapped", PF, _focal_mutant(swap=True), "alpha and beta exchanged",
           ("agrees_with_numpy", "agrees_with_the_logits_form_where_the_clamp_is_inactive")),
    Mutant("fractional_mask_binarised", PF, focal_fractional_mask_binarised,
           "fractional slot weights binarised (mask.bool()): each counts as a whole positive", ("agrees_with_numpy",)),
    Mutant("mask_ignored", PF, _focal_mutant(use_mask=False), "padding slots counted as positives",
           ("masked_slots_do_not_matter", "agrees_with_numpy")),
    Mutant("penalty_inverted", PF, _focal_mutant(inverted=True), "y^beta where the weight is (1 - y)^beta",
           ("penalty_reduced_near_peaks", "agrees_with_numpy", "agrees_with_the_logits_form_where_the_clamp_is_inactive")),
    Mutant("computes_in_float16", PF, _focal_mutant(half=True), "autocast: 1 - 1e-4 rounds to 1, log(1 - p) = -inf",
           ("finite_gradients", "agrees_with_numpy")),
    Mutant("positives_detached", PF, _focal_mutant(detach_pos=True), "the positive term carries no gradient",
           ("gradcheck_float64",)),
    Mutant("threshold_inclusive", PF, _focal_mutant(inclusive=True), "positives are y >= threshold, not y > threshold",
           ("honours_positive_threshold",)),
    Mutant("weights_swapped", PF, _focal_mutant(weights_swapped=True), "positive_weight scales the negatives and back",
           ("honours_positive_weight", "honours_negative_weight")),
    Mutant("positive_weight_in_normaliser", PF, _focal_mutant(weight_in_norm=True),
           "divides by positive_weight * N (a weighted average), not N", ("honours_positive_weight",)),
    Mutant("logits_without_clamp", PF, _focal_mutant(clamp=False), "from_logits uses the plain sigmoid: log(1 - 1) at x = 1e4",
           ("finite_gradients", "agrees_with_numpy")),
    Mutant("keras_threshold_by_default", PF, _focal_mutant(dense_threshold=0.99),
           "positives are y > 0.99 when no threshold is given (keras-cv's default), not y == 1",
           ("agrees_with_numpy", "gather_form_equals_dense_form")),
    *(Mutant(f"default_{k}_changed", PF, _focal_default_changed(k, alt), f"the default of {k} is {alt!r}",
             ("defaults_honoured",)) for k, alt in _PF_DEFAULTS),
    Mutant("returns_float32", PF, _float32(ref.penalty_reduced_focal), "returns float32",
           ("output_dtype_and_shape", "low_precision_matches_float32")),
    Mutant("clamps_in_place", PF, focal_clamps_in_place, "clamps the caller's probabilities in place", ("inputs_not_modified",)),
    Mutant("dropout_left_on", PF, _dropout(ref.penalty_reduced_focal), "dropout in training mode",
           ("deterministic",)),
    Mutant("wraps_indices", PF, _focal_mutant(check=False), "no validation: an index past H*W wraps, bad values pass",
           ("rejects_invalid_inputs",)),
    Mutant("cpu_constant", PF, _cpu_constant(ref.penalty_reduced_focal), "builds a tensor on the CPU", _DEVICE),
    Mutant("heatmap_broadcast_over_batch", PF, focal_heatmap_broadcast, "one image's (C, H, W) heatmap broadcast over the batch",
           ("rejects_shape_mismatch",)),
    Mutant("probabilities_kept_off_the_ends", PF, focal_probabilities_kept_off_the_ends,
           "p in {0, 1} moved to the nearest interior value (an eps by the back door): no infinite term",
           ("infinite_exactly_where_a_term_is",)),
    Mutant("slots_cut_to_fit", PF, focal_slots_broadcast, "a mask or cat of another slot count is cut or padded to ind's",
           ("rejects_shape_mismatch",)),
    # --- reg_weighted_l1 ----------------------------------------------------------------------------
    Mutant("normalised_by_active_count", RG, reg_normalised_by_active_count,
           "divides by the number of active entries, not the sum of their weights", ("agrees_with_numpy",)),
    Mutant("mask_not_expanded", RG, _reg_mutant(expand=False), "a (B, M) mask counts objects, not coordinates, in the normaliser",
           ("object_mask_is_expanded", "agrees_with_numpy")),
    Mutant("no_eps", RG, _reg_mutant(eps=0.0), "divides by sum(mask) without the 1e-4", ("normalised_by_the_mask_sum",)),
    Mutant("mean_over_everything", RG, _reg_mutant(norm="all"), "divides by B * M * D", ("agrees_with_numpy", "normalised_by_the_mask_sum")),
    Mutant("gather_on_the_wrong_axis", RG, _reg_mutant(transposed=True), "reads ind as x * H + y",
           ("agrees_with_numpy", "zero_for_perfect_predictions")),
    Mutant("masked_entries_leak", RG, _reg_mutant(leak=True), "every slot enters the sum; the mask only normalises",
           ("masked_entries_do_not_matter", "agrees_with_numpy")),
    Mutant("seed_mask_product", RG, _reg_mutant(seed_product=True),
           "the seed's l1(pred * mask, target * mask): 0 * nan = nan from padding", ("agrees_with_numpy",)),
    Mutant("abs_via_sqrt", RG, reg_abs_via_sqrt, "|d| as sqrt(d * d): a nan gradient where the prediction is exact",
           ("finite_gradients",)),
    Mutant("squared_error", RG, _reg_mutant(kind="l2"), "L2 where the head is L1", ("agrees_with_numpy",)),
    Mutant("returns_float32", RG, _float32(ref.reg_weighted_l1), "returns float32", ("output_dtype_and_shape", "low_precision_matches_float32")),
    Mutant("writes_into_output_in_place", RG, reg_in_place, "writes into the caller's map in place", ("inputs_not_modified",)),
    Mutant("wraps_indices", RG, _reg_mutant(check=False), "no validation: indices taken modulo H*W", ("rejects_invalid_inputs",)),
    Mutant("dropout_left_on", RG, _dropout(ref.reg_weighted_l1), "dropout in training mode", ("deterministic",)),
    Mutant("target_broadcast", RG, reg_target_broadcast, "broadcasts a target of the wrong shape over the slots",
           ("rejects_shape_mismatch",)),
    Mutant("cpu_constant", RG, _cpu_constant(ref.reg_weighted_l1), "builds a tensor on the CPU", _DEVICE),
    # --- weighted_bce ---------------------------------------------------------------------------------
    Mutant("log_of_sigmoid", BC, _reg_mutant(kind="bce", naive=True), "log(sigmoid(x)): -inf and nan gradients at large |x|",
           ("finite_gradients", "agrees_with_numpy")),
    Mutant("mask_not_expanded", BC, _reg_mutant(kind="bce", expand=False), "a (B, M) mask counts objects in the normaliser",
           ("object_mask_is_expanded",)),
    Mutant("masked_entries_leak", BC, _reg_mutant(kind="bce", leak=True), "every slot enters the sum",
           ("masked_entries_do_not_matter", "agrees_with_numpy")),
    Mutant("mean_over_everything", BC, _reg_mutant(kind="bce", norm="all"), "divides by B * M * F",
           ("agrees_with_numpy", "normalised_by_the_mask_sum")),
    Mutant("returns_float32", BC, _float32(ref.weighted_bce), "returns float32", ("output_dtype_and_shape", "low_precision_matches_float32")),
    Mutant("sigmoid_in_place", BC, bce_in_place, "applies sigmoid_ (and back) to the caller's logits", ("inputs_not_modified",)),
    Mutant("wraps_indices", BC, _reg_mutant(kind="bce", check=False), "no validation: indices taken modulo H*W",
           ("rejects_invalid_inputs",)),
    Mutant("targets_unchecked", BC, bce_no_target_check, "active targets outside [0, 1] go through unchecked",
           ("rejects_invalid_inputs",)),
    Mutant("dropout_left_on", BC, _dropout(ref.weighted_bce), "dropout in training mode", ("deterministic",)),
    Mutant("target_broadcast", BC, bce_target_broadcast, "broadcasts a target of the wrong shape over the slots",
           ("rejects_shape_mismatch",)),
    Mutant("cpu_constant", BC, _cpu_constant(ref.weighted_bce), "builds a tensor on the CPU", _DEVICE),
    # --- depth_l1 --------------------------------------------------------------------------------------
    Mutant("depth_transform_missing", DP, _depth_mutant(transform="none"), "the raw logits compared with metric depths",
           ("agrees_with_numpy", "zero_for_perfect_predictions")),
    Mutant("transform_without_eps", DP, _depth_mutant(transform="no_eps"), "1 / sigmoid(x) - 1: inf for very negative logits",
           ("finite_gradients", "agrees_with_numpy")),
    Mutant("squeezes_singleton_axes", DP, depth_squeezes_singleton_axes,
           "(B, M, 1) target and mask flattened with .squeeze(): with M = 1, a B x B table",
           ("normalised_by_the_mask_sum", "zero_for_perfect_predictions")),
    Mutant("cat_ignored", DP, _depth_mutant(use_cat=False), "reads channel 0 of a per-class depth head",
           ("other_classes_and_masked_slots_do_not_matter", "agrees_with_numpy")),
    Mutant("masked_slots_leak", DP, _depth_mutant(leak=True), "every slot enters the sum",
           ("other_classes_and_masked_slots_do_not_matter", "agrees_with_numpy")),
    Mutant("whole_map_transform", DP, depth_whole_map_transform,
           "transforms the whole map before the gather: nan pixels no slot reads poison the gradient", ("finite_gradients",)),
    Mutant("returns_float32", DP, _float32(ref.depth_l1), "returns float32", ("output_dtype_and_shape", "low_precision_matches_float32")),
    Mutant("sigmoid_in_place", DP, depth_sigmoid_in_place, "sigmoid_ on the caller's map (restored, version moved)",
           ("inputs_not_modified",)),
    Mutant("dropout_left_on", DP, _dropout(ref.depth_l1), "dropout in training mode", ("deterministic",)),
    Mutant("no_eps", DP, _depth_mutant(eps=0.0), "divides by sum(mask) without the 1e-4", ("normalised_by_the_mask_sum",)),
    Mutant("mean_over_everything", DP, _depth_mutant(norm="all"), "divides by B * M, masked slots included",
           ("normalised_by_the_mask_sum", "agrees_with_numpy")),
    Mutant("transform_backward_without_chain_rule", DP, _depth_mutant(transform="no_chain_rule"),
           "hand-written backward of the depth transform forgets sigmoid'(x)", ("gradcheck_float64",)),
    Mutant("target_broadcast", DP, _depth_mutant(bcast=True), "broadcasts one depth over every slot",
           ("rejects_shape_mismatch",)),
    Mutant("cat_unchecked", DP, _depth_mutant(clamp_cat=True), "no validation: a class outside [0, C) is clamped",
           ("rejects_invalid_inputs",)),
    Mutant("cpu_constant", DP, _cpu_constant(ref.depth_l1), "builds a tensor on the CPU", _DEVICE),
    # --- bin_rot -----------------------------------------------------------------------------------------
    Mutant("masked_slots_leak", RT, _rot_mutant(leak=True), "masked slots enter the bin and residual averages",
           ("masked_slots_do_not_matter", "agrees_with_numpy")),
    Mutant("residual_not_in_sin_cos", RT, _rot_mutant(raw_angle=True), "smooth L1 on the raw residual angle, not its sin and cos",
           ("residual_angle_periodic", "exact_residuals_leave_bin_classification_only", "agrees_with_numpy")),
    Mutant("residual_on_every_bin", RT, _rot_mutant(all_bins=True), "residual loss on both bins of every slot",
           ("residual_only_on_active_bins", "agrees_with_numpy")),
    Mutant("bin_two_channels_shifted", RT, _rot_mutant(offsets=(0, 3)), "bin 2 read from channels 3..6 instead of 4..7",
           ("exact_residuals_leave_bin_classification_only", "agrees_with_numpy")),
    Mutant("bins_without_overlap", RT, _rot_mutant(overlap=math.pi / 2), "active bins re-derived with a half-width of pi/2: no overlap",
           ("agrees_with_numpy",)),
    Mutant("returns_float32", RT, _float32(ref.bin_rot), "returns float32", ("output_dtype_and_shape", "low_precision_matches_float32")),
    Mutant("wraps_residuals_in_place", RT, rot_in_place, "wraps the caller's residuals in place", ("inputs_not_modified",)),
    Mutant("dropout_left_on", RT, _dropout(ref.bin_rot), "dropout in training mode", ("deterministic",)),
    Mutant("bin_logits_detached", RT, _rot_mutant(detach_bins=True), "the bin classification carries no gradient",
           ("gradcheck_float64",)),
    Mutant("rotbin_unchecked", RT, _rot_mutant(check=False), "no validation: rotbin outside {0, 1} is clamped",
           ("rejects_invalid_inputs",)),
    Mutant("residual_broadcast", RT, rot_residual_broadcast, "one residual broadcast over both bins",
           ("rejects_shape_mismatch",)),
    Mutant("cpu_constant", RT, _cpu_constant(ref.bin_rot), "builds a tensor on the CPU", _DEVICE),
    Mutant("seed_compute_rot_loss", RT, ref.seed_bin_rot,
           "the seed's masked bin logits times 0 (0 * nan = nan from padding) and a mean over all B*M slots",
           ("finite_gradients", "agrees_with_numpy")),
    # --- generic_loss ----------------------------------------------------------------------------------------
    Mutant("stacks_summed", GN, _generic_mutant(stacks="sum"), "sums the stacks instead of averaging them",
           ("stacks_are_averaged", "agrees_with_numpy")),
    Mutant("no_clamp_before_log", GN, _generic_mutant(clamp=False), "plain sigmoid: log(1 - p) = -inf at large heatmap logits",
           ("finite_gradients", "agrees_with_numpy")),
    Mutant("weight_zero_heads_computed", GN, _generic_mutant(skip_zero=False), "computes weight-0 heads (0 * nan = nan)",
           ("weight_zero_and_absent_heads_are_skipped", "output_dtype_and_shape")),
    Mutant("transforms_outputs_in_place", GN, _generic_mutant(in_place=True), "writes the sigmoid into the caller's dicts",
           ("inputs_not_modified", "deterministic")),
    Mutant("total_unweighted", GN, _generic_mutant(weighted=False), "the total ignores the head weights",
           ("total_is_the_weighted_sum", "agrees_with_numpy", "honours_weights")),
    Mutant("missing_weight_defaults_to_one", GN, _generic_mutant(default_weight=True), "a head without a weight gets 1",
           ("rejects_invalid_inputs",)),
    Mutant("heatmap_detached", GN, _generic_mutant(detach_hm=True), "the heatmap logits are detached before the sigmoid",
           ("gradcheck_float64",)),
    Mutant("dep_sec_always_transformed", GN, _generic_mutant(dep_sec_always=True),
           "dep_sec goes through the depth transform whatever sigmoid_dep_sec says", ("agrees_with_numpy",)),
    Mutant("casts_masks_in_the_callers_batch", GN, generic_casts_masks_in_the_callers_batch,
           "writes the masks, cast to the heads' dtype, back into the caller's batch dict", ("inputs_not_modified",)),
    Mutant("dropout_left_on", GN, generic_dropout, "dropout on the head outputs in training mode",
           ("deterministic",)),
    Mutant("total_in_float32", GN, _generic_mutant(float32=True), "the total accumulates in float32", ("output_dtype_and_shape",)),
    Mutant("returns_float32", GN, generic_returns_float32, "every loss returned in float32",
           ("output_dtype_and_shape", "low_precision_matches_float32")),
    Mutant("depth_transform_missing", GN, _generic_mutant(depth=False), "the depth head compares raw logits with depths",
           ("agrees_with_numpy",)),
    Mutant("cpu_constant", GN, generic_cpu_constant, "builds a tensor on the CPU", _DEVICE),
    Mutant("batch_heatmap_cut_to_fit", GN, generic_heatmap_cut_to_fit,
           "a batch heatmap with more classes than the head is cut to fit instead of rejected", ("rejects_shape_mismatch",)),
]
