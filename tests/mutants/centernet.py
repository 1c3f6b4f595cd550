"""Mutants of the CenterNet / CenterFusion family: the slips seed 003's readers make.

Each is a small, plain implementation with one mistake (named in its ``why``).
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


# --------------------------------------------------------------------------- focal (gather form)
def _focal(pred, gt, ind, mask, cat, alpha=2.0, beta=4.0, *, norm="pos", guard=True, use_cat=True, transposed=False,
           swap=False, use_mask=True, inverted=False, half=False, detach_pos=False, check=True):  # type: ignore[no-untyped-def]
    if check:
        b, c, h, w = pred.shape
        if bool((ind >= h * w).any()) or bool((cat >= c).any()):
            raise ValueError("index out of range")
    if swap:
        alpha, beta = beta, alpha
    p = pred.half().float() if half else pred
    m = mask.to(pred.dtype) if use_mask else torch.ones(ind.shape, dtype=pred.dtype)
    wneg = gt.pow(beta) if inverted else (1 - gt).pow(beta)
    neg = torch.where(gt < 1, wneg * p.pow(alpha) * -torch.log(1 - p), torch.zeros_like(p)).sum()
    b, c, h, w = pred.shape
    src = p.transpose(2, 3) if transposed else p
    flat = src.reshape(b, c * h * w)
    idx = (cat if use_cat else torch.zeros_like(cat)) * (h * w) + ind
    pp = flat.gather(1, idx)
    pos_el = (1 - pp).pow(alpha) * -torch.log(pp)
    if detach_pos:
        pos_el = pos_el.detach()
    pos = (m * pos_el).sum()
    n = m.sum()
    if norm == "batch":
        out = (pos + neg) / b
    elif not guard:
        out = (pos + neg) / n
    else:
        out = (pos + neg) / n if float(n) > 0 else neg
    return out.to(pred.dtype)


def _focal_mutant(**cfg):  # type: ignore[no-untyped-def]
    def f(pred_prob, gt_heatmap, ind, mask, cat, *, alpha=2.0, beta=4.0):  # type: ignore[no-untyped-def]
        return _focal(pred_prob, gt_heatmap, ind, mask, cat, alpha, beta, **cfg)

    return f


def focal_clamps_in_place(pred_prob, gt_heatmap, ind, mask, cat, *, alpha=2.0, beta=4.0):  # type: ignore[no-untyped-def]
    pred_prob.clamp_(1e-4, 1 - 1e-4)  # CenterNet's sigmoid_ habit, applied to the caller's tensor
    return ref.fast_focal(pred_prob, gt_heatmap, ind, mask, cat, alpha=alpha, beta=beta)


# --------------------------------------------------------------------------- gathered heads
def _reg(output, mask, ind, target, *, kind="l1", expand=True, eps=1e-4, norm="mask", transposed=False, leak=False,
         check=True, naive=False):  # type: ignore[no-untyped-def]
    _b, _d, h, w = output.shape
    if check and ind.numel() and bool((ind >= h * w).any()):
        raise ValueError("ind out of range")
    ind = ind % (h * w)
    pred = _gather(output, ind, transposed=transposed)
    m = mask.to(output.dtype)
    if m.dim() == 2:
        m = m.unsqueeze(2).expand_as(pred) if expand else m.unsqueeze(2)
    if kind == "l1":
        el = (pred - target).abs()
    elif kind == "l2":
        el = (pred - target) ** 2
    else:  # bce
        el = -(target * torch.log(torch.sigmoid(pred)) + (1 - target) * torch.log(1 - torch.sigmoid(pred))) if naive else \
            F.binary_cross_entropy_with_logits(pred, target, reduction="none")
    weight = torch.ones_like(el) if leak else m.expand_as(el)
    num = (weight * el).sum()
    if norm == "all":
        return num / max(el.numel(), 1)
    return num / (m.sum() + eps)


def _reg_mutant(**cfg):  # type: ignore[no-untyped-def]
    def f(output, mask, ind, target):  # type: ignore[no-untyped-def]
        return _reg(output, mask, ind, target, **cfg)

    return f


def reg_in_place(output, mask, ind, target):  # type: ignore[no-untyped-def]
    output.mul_(1.0)  # a no-op write: the version counter moves
    return ref.reg_weighted_l1(output, mask, ind, target)


def bce_in_place(output, mask, ind, target):  # type: ignore[no-untyped-def]
    output.sigmoid_().logit_()
    return ref.weighted_bce(output, mask, ind, target)


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


def _depth(output, target, ind, mask, cat, *, transform="seed", use_cat=True, leak=False, eps=1e-4, norm="mask",
           bcast=False):  # type: ignore[no-untyped-def]
    if bcast:
        target = target.expand(ind.shape)
    if transform == "seed":
        dep = ref.depth_transform(output)
    elif transform == "no_chain_rule":
        dep = _DepthNoChainRule.apply(output)
    elif transform == "no_eps":
        dep = 1 / torch.sigmoid(output) - 1
    else:
        dep = output
    _b, c, _h, _w = output.shape
    pred = _gather(dep, ind)  # (B, M, C)
    if c > 1:
        pred = pred.gather(2, (cat if use_cat else torch.zeros_like(cat)).unsqueeze(2))
    pred = pred.reshape(target.shape)
    m = mask.to(output.dtype).reshape(target.shape)
    weight = torch.ones_like(m) if leak else m
    num = (weight * (pred - target).abs()).sum()
    if norm == "all":
        return num / max(m.numel(), 1)
    return num / (m.sum() + eps)


def _depth_mutant(**cfg):  # type: ignore[no-untyped-def]
    def f(output, target, ind, mask, cat):  # type: ignore[no-untyped-def]
        return _depth(output, target, ind, mask, cat, **cfg)

    return f


def depth_sigmoid_in_place(output, target, ind, mask, cat):  # type: ignore[no-untyped-def]
    x = output.clone()
    output.sigmoid_()  # the seed's _sigmoid_output writes into the caller's dict
    output.copy_(x)
    return ref.depth_l1(output, target, ind, mask, cat)


# --------------------------------------------------------------------------- bin_rot
def _rot(output, mask, ind, rotbin, rotres, *, leak=False, raw_angle=False, all_bins=False, offsets=(0, 4),
         overlap=None, detach_bins=False):  # type: ignore[no-untyped-def]
    pred = _gather(output, ind)  # (B, M, 8)
    m = mask.to(output.dtype).reshape(ind.shape)
    bins = rotbin
    if overlap is not None:  # re-derives the active bins from the residuals, with a wrong overlap
        bins = (rotres.abs() <= overlap).to(torch.int64)
    total = output.new_zeros(())
    for k, o in enumerate(offsets):
        logits = pred[..., o : o + 2].detach() if detach_bins else pred[..., o : o + 2]
        ce = F.cross_entropy(logits.reshape(-1, 2), bins[..., k].reshape(-1), reduction="none").reshape(m.shape)
        wm = torch.ones_like(m) if leak else m
        total = total + (wm * ce).sum() / max(float(wm.sum()), 1e-12) if float(wm.sum()) > 0 else total
        sin_p, cos_p = pred[..., o + 2], pred[..., o + 3]
        if raw_angle:
            res = F.smooth_l1_loss(sin_p, rotres[..., k], reduction="none") + F.smooth_l1_loss(cos_p, torch.zeros_like(cos_p), reduction="none")
        else:
            res = F.smooth_l1_loss(sin_p, torch.sin(rotres[..., k]), reduction="none") + \
                F.smooth_l1_loss(cos_p, torch.cos(rotres[..., k]), reduction="none")
        sel = (torch.ones_like(m) if leak else m) * (torch.ones_like(m) if all_bins else bins[..., k].to(m.dtype))
        if float(sel.sum()) > 0:
            total = total + (sel * res).sum() / sel.sum()
    return total


def _rot_mutant(**cfg):  # type: ignore[no-untyped-def]
    def f(output, mask, ind, rotbin, rotres):  # type: ignore[no-untyped-def]
        return _rot(output, mask, ind, rotbin, rotres, **cfg)

    return f


def rot_in_place(output, mask, ind, rotbin, rotres):  # type: ignore[no-untyped-def]
    rotres.remainder_(2 * math.pi)  # "normalises" the caller's residuals in place
    return ref.bin_rot(output, mask, ind, rotbin, rotres)


# --------------------------------------------------------------------------- generic_loss
def _generic(outputs, batch, *, weights, heads=ref.LOSS_ORDER, sigmoid_dep_sec=False, stacks="mean", clamp=True,
             skip_zero=True, in_place=False, weighted=True, default_weight=False, depth=True, float32=False):  # type: ignore[no-untyped-def]
    if default_weight:
        weights = {h: weights.get(h, 1.0) for h in outputs[0]}
    present = [h for h in heads if h in outputs[0]]
    active = [h for h in present if not (skip_zero and weights[h] == 0)]
    per: dict[str, torch.Tensor] = {}
    for out in outputs:
        view = out if in_place else dict(out)
        if "hm" in view:
            view["hm"] = ref.clamped_sigmoid(view["hm"]) if clamp else torch.sigmoid(view["hm"])
        if "dep" in view and depth:
            view["dep"] = ref.depth_transform(view["dep"])
        for h in active:
            if h == "hm":
                v = ref.fast_focal(view["hm"], batch["hm"], batch["ind"], batch["mask"], batch["cat"])
            elif h == "dep":
                v = ref._depth_l1_of(view["dep"], batch["dep"], batch["ind"], batch["dep_mask"], batch["cat"])
            elif h == "rot":
                v = ref.bin_rot(view["rot"], batch["rot_mask"], batch["ind"], batch["rotbin"], batch["rotres"])
            elif h == "nuscenes_att":
                v = ref.weighted_bce(view[h], batch["nuscenes_att_mask"], batch["ind"], batch[h])
            else:
                v = ref.reg_weighted_l1(view[h], batch[h + "_mask"], batch["ind"], batch[h])
            v = v if stacks == "sum" else v / len(outputs)
            per[h] = v if h not in per else per[h] + v
    total = sum(((weights[h] if weighted else 1.0) * per[h] for h in active), torch.zeros(()))
    if float32:
        total = total.float()
    else:
        total = total.to(next(iter(outputs[0].values())).dtype)
    return total, per


def _generic_mutant(**cfg):  # type: ignore[no-untyped-def]
    def f(outputs, batch, *, weights, heads=ref.LOSS_ORDER, sigmoid_dep_sec=False):  # type: ignore[no-untyped-def]
        return _generic(outputs, batch, weights=weights, heads=heads, sigmoid_dep_sec=sigmoid_dep_sec, **cfg)

    return f


def focal_heatmap_broadcast(pred_prob, gt_heatmap, ind, mask, cat, *, alpha=2.0, beta=4.0):  # type: ignore[no-untyped-def]
    return ref.fast_focal(pred_prob, gt_heatmap.expand_as(pred_prob), ind, mask, cat, alpha=alpha, beta=beta)


def reg_target_broadcast(output, mask, ind, target):  # type: ignore[no-untyped-def]
    return ref.reg_weighted_l1(output, mask, ind, target.expand(ind.shape[0], ind.shape[1], output.shape[1]))


def bce_target_broadcast(output, mask, ind, target):  # type: ignore[no-untyped-def]
    return ref.weighted_bce(output, mask, ind, target.expand(ind.shape[0], ind.shape[1], output.shape[1]))


def rot_residual_broadcast(output, mask, ind, rotbin, rotres):  # type: ignore[no-untyped-def]
    return ref.bin_rot(output, mask, ind, rotbin, rotres.expand(rotbin.shape))


def generic_dropout(outputs, batch, *, weights, heads=ref.LOSS_ORDER, sigmoid_dep_sec=False):  # type: ignore[no-untyped-def]
    outs = [{**o, "hm": F.dropout(o["hm"], 0.3, training=True)} for o in outputs]
    return ref.generic_loss(outs, batch, weights=weights, heads=heads, sigmoid_dep_sec=sigmoid_dep_sec)


def _cpu_constant(fn):  # type: ignore[no-untyped-def]
    def f(*args, **kwargs):  # type: ignore[no-untyped-def]
        out = fn(*args, **kwargs)
        return out + torch.zeros((), dtype=out.dtype)

    return f


def _dropout(fn, key):  # type: ignore[no-untyped-def]
    def f(*args, **kwargs):  # type: ignore[no-untyped-def]
        args = list(args)
        args[key] = F.dropout(args[key], 0.3, training=True) * 0.7
        return fn(*args, **kwargs)

    return f


def _float32(fn):  # type: ignore[no-untyped-def]
    def f(*args, **kwargs):  # type: ignore[no-untyped-def]
        return fn(*args, **kwargs).float()

    return f


_DEVICE = ("cuda_matches_cpu", "mps_matches_cpu")
PF, RG, DP, BC, RT, GN = "penalty_reduced_focal", "reg_weighted_l1", "depth_l1", "weighted_bce", "bin_rot", "generic_loss"

MUTANTS = [
    # --- penalty-reduced focal, gather form -----------------------------------------------
    Mutant("batch_size_normaliser", PF, _focal_mutant(norm="batch"), "divides by the batch size, not the number of peaks",
           ("agrees_with_numpy", "normalised_by_the_number_of_peaks")),
    Mutant("zero_division_without_peaks", PF, _focal_mutant(guard=False), "divides by num_pos even when it is 0",
           ("no_peak_gives_the_negative_sum",)),
    Mutant("cat_ignored", PF, _focal_mutant(use_cat=False), "reads the positives in channel 0 whatever their class",
           ("agrees_with_numpy", "gather_form_equals_dense_form")),
    Mutant("gather_on_the_wrong_axis", PF, _focal_mutant(transposed=True), "reads ind as x * H + y (H and W swapped)",
           ("agrees_with_numpy", "gather_form_equals_dense_form")),
    Mutant("alpha_beta_swapped", PF, _focal_mutant(swap=True), "alpha and beta exchanged",
           ("agrees_with_numpy", "agrees_with_the_logits_form_where_the_clamp_is_inactive")),
    Mutant("mask_ignored", PF, _focal_mutant(use_mask=False), "padding slots counted as positives",
           ("masked_slots_do_not_matter", "agrees_with_numpy")),
    Mutant("penalty_inverted", PF, _focal_mutant(inverted=True), "y^beta where the weight is (1 - y)^beta",
           ("penalty_reduced_near_peaks", "agrees_with_numpy", "agrees_with_the_logits_form_where_the_clamp_is_inactive")),
    Mutant("computes_in_float16", PF, _focal_mutant(half=True), "autocast: 1 - 1e-4 rounds to 1, log(1 - p) = -inf",
           ("finite_under_the_seed_clamp",)),
    Mutant("positives_detached", PF, _focal_mutant(detach_pos=True), "the positive term carries no gradient",
           ("gradcheck_float64",)),
    Mutant("returns_float32", PF, _float32(ref.fast_focal), "returns float32", ("output_dtype_and_shape",)),
    Mutant("clamps_in_place", PF, focal_clamps_in_place, "clamps the caller's probabilities in place", ("does_not_modify_inputs",)),
    Mutant("dropout_left_on", PF, _dropout(ref.fast_focal, 0), "dropout in training mode", ("deterministic", "compiled_matches_eager")),
    Mutant("wraps_indices", PF, _focal_mutant(check=False), "no range check: an index past H*W reads another channel or fails late",
           ("rejects_out_of_range_indices",)),
    Mutant("cpu_constant", PF, _cpu_constant(ref.fast_focal), "builds a tensor on the CPU", _DEVICE),
    Mutant("heatmap_broadcast_over_batch", PF, focal_heatmap_broadcast, "one image's (C, H, W) heatmap broadcast over the batch",
           ("rejects_shape_mismatch",)),
    # --- reg_weighted_l1 ---------------------------------------------------------------------
    Mutant("mask_not_expanded", RG, _reg_mutant(expand=False), "a (B, M) mask counts objects, not coordinates, in the normaliser",
           ("object_mask_is_expanded",)),
    Mutant("no_eps", RG, _reg_mutant(eps=0.0), "divides by sum(mask) without the 1e-4", ("agrees_with_numpy", "normalised_by_the_mask_sum")),
    Mutant("mean_over_everything", RG, _reg_mutant(norm="all"), "divides by B * M * D", ("agrees_with_numpy", "normalised_by_the_mask_sum")),
    Mutant("gather_on_the_wrong_axis", RG, _reg_mutant(transposed=True), "reads ind as x * H + y",
           ("agrees_with_numpy", "zero_for_perfect_predictions")),
    Mutant("masked_entries_leak", RG, _reg_mutant(leak=True), "every slot enters the sum; the mask only normalises",
           ("masked_entries_do_not_matter", "agrees_with_numpy")),
    Mutant("squared_error", RG, _reg_mutant(kind="l2"), "L2 where the head is L1", ("agrees_with_numpy",)),
    Mutant("returns_float32", RG, _float32(ref.reg_weighted_l1), "returns float32", ("output_dtype_and_shape", "low_precision_matches_float32")),
    Mutant("writes_into_output", RG, reg_in_place, "writes into the caller's map in place", ("does_not_modify_inputs",)),
    Mutant("wraps_indices", RG, _reg_mutant(check=False), "indices taken modulo H*W", ("rejects_out_of_range_indices",)),
    Mutant("dropout_left_on", RG, _dropout(ref.reg_weighted_l1, 0), "dropout in training mode", ("deterministic", "compiled_matches_eager")),
    Mutant("target_broadcast", RG, reg_target_broadcast, "broadcasts a target of the wrong shape over the slots",
           ("rejects_shape_mismatch",)),
    Mutant("cpu_constant", RG, _cpu_constant(ref.reg_weighted_l1), "builds a tensor on the CPU", _DEVICE),
    # --- weighted_bce ---------------------------------------------------------------------------
    Mutant("log_of_sigmoid", BC, _reg_mutant(kind="bce", naive=True), "log(sigmoid(x)): -inf and nan gradients at large |x|",
           ("finite_for_extreme_logits",)),
    Mutant("mask_not_expanded", BC, _reg_mutant(kind="bce", expand=False), "a (B, M) mask counts objects in the normaliser",
           ("object_mask_is_expanded",)),
    Mutant("masked_entries_leak", BC, _reg_mutant(kind="bce", leak=True), "every slot enters the sum",
           ("masked_entries_do_not_matter", "agrees_with_numpy")),
    Mutant("mean_over_everything", BC, _reg_mutant(kind="bce", norm="all"), "divides by B * M * F",
           ("agrees_with_numpy", "normalised_by_the_mask_sum")),
    Mutant("returns_float32", BC, _float32(ref.weighted_bce), "returns float32", ("output_dtype_and_shape", "low_precision_matches_float32")),
    Mutant("sigmoid_in_place", BC, bce_in_place, "applies sigmoid_ (and back) to the caller's logits", ("does_not_modify_inputs",)),
    Mutant("wraps_indices", BC, _reg_mutant(kind="bce", check=False), "indices taken modulo H*W", ("rejects_out_of_range_indices",)),
    Mutant("dropout_left_on", BC, _dropout(ref.weighted_bce, 0), "dropout in training mode", ("deterministic", "compiled_matches_eager")),
    Mutant("target_broadcast", BC, bce_target_broadcast, "broadcasts a target of the wrong shape over the slots",
           ("rejects_shape_mismatch",)),
    Mutant("cpu_constant", BC, _cpu_constant(ref.weighted_bce), "builds a tensor on the CPU", _DEVICE),
    # --- depth_l1 ---------------------------------------------------------------------------------
    Mutant("depth_transform_missing", DP, _depth_mutant(transform="none"), "the raw logits compared with metric depths",
           ("agrees_with_numpy", "zero_for_perfect_predictions")),
    Mutant("transform_without_eps", DP, _depth_mutant(transform="no_eps"), "1 / sigmoid(x) - 1: inf for very negative logits",
           ("finite_gradients",)),
    Mutant("cat_ignored", DP, _depth_mutant(use_cat=False), "reads channel 0 of a per-class depth head",
           ("other_classes_and_masked_slots_do_not_matter", "agrees_with_numpy")),
    Mutant("masked_slots_leak", DP, _depth_mutant(leak=True), "every slot enters the sum",
           ("other_classes_and_masked_slots_do_not_matter",)),
    Mutant("returns_float32", DP, _float32(ref.depth_l1), "returns float32", ("output_dtype_and_shape",)),
    Mutant("sigmoid_in_place", DP, depth_sigmoid_in_place, "sigmoid_ on the caller's map (restored, version moved)",
           ("does_not_modify_inputs",)),
    Mutant("dropout_left_on", DP, _dropout(ref.depth_l1, 0), "dropout in training mode", ("deterministic", "compiled_matches_eager")),
    Mutant("no_eps", DP, _depth_mutant(eps=0.0), "divides by sum(mask) without the 1e-4",
           ("normalised_by_the_mask_sum", "agrees_with_numpy")),
    Mutant("mean_over_everything", DP, _depth_mutant(norm="all"), "divides by B * M, masked slots included",
           ("normalised_by_the_mask_sum", "agrees_with_numpy")),
    Mutant("transform_backward_without_chain_rule", DP, _depth_mutant(transform="no_chain_rule"),
           "hand-written backward of the depth transform forgets sigmoid'(x)", ("gradcheck_float64",)),
    Mutant("target_broadcast", DP, _depth_mutant(bcast=True), "broadcasts one depth over every slot",
           ("rejects_shape_mismatch",)),
    Mutant("cpu_constant", DP, _cpu_constant(ref.depth_l1), "builds a tensor on the CPU", _DEVICE),
    # --- bin_rot -----------------------------------------------------------------------------------
    Mutant("masked_slots_leak", RT, _rot_mutant(leak=True), "masked slots enter the bin and residual averages (the seed's BinRot)",
           ("masked_slots_do_not_matter", "agrees_with_numpy")),
    Mutant("residual_not_in_sin_cos", RT, _rot_mutant(raw_angle=True), "smooth L1 on the raw residual angle, not its sin and cos",
           ("residual_angle_periodic", "exact_residuals_leave_bin_classification_only", "agrees_with_numpy")),
    Mutant("residual_on_every_bin", RT, _rot_mutant(all_bins=True), "residual loss on both bins of every slot",
           ("residual_only_on_active_bins",)),
    Mutant("bin_two_channels_shifted", RT, _rot_mutant(offsets=(0, 3)), "bin 2 read from channels 3..6 instead of 4..7",
           ("exact_residuals_leave_bin_classification_only", "agrees_with_numpy")),
    Mutant("bins_without_overlap", RT, _rot_mutant(overlap=math.pi / 2), "active bins re-derived with a half-width of pi/2: no overlap",
           ("agrees_with_numpy",)),
    Mutant("returns_float32", RT, _float32(ref.bin_rot), "returns float32", ("output_dtype_and_shape", "low_precision_matches_float32")),
    Mutant("wraps_residuals_in_place", RT, rot_in_place, "wraps the caller's residuals in place", ("does_not_modify_inputs",)),
    Mutant("dropout_left_on", RT, _dropout(ref.bin_rot, 0), "dropout in training mode", ("deterministic", "compiled_matches_eager")),
    Mutant("bin_logits_detached", RT, _rot_mutant(detach_bins=True), "the bin classification carries no gradient",
           ("gradcheck_float64",)),
    Mutant("residual_broadcast", RT, rot_residual_broadcast, "one residual broadcast over both bins",
           ("rejects_shape_mismatch",)),
    Mutant("cpu_constant", RT, _cpu_constant(ref.bin_rot), "builds a tensor on the CPU", _DEVICE),
    # --- generic_loss ---------------------------------------------------------------------------------
    Mutant("stacks_summed", GN, _generic_mutant(stacks="sum"), "sums the stacks instead of averaging them",
           ("stacks_are_averaged", "agrees_with_numpy")),
    Mutant("no_clamp_before_log", GN, _generic_mutant(clamp=False), "plain sigmoid: log(1 - p) = -inf at large heatmap logits",
           ("finite_for_extreme_heatmap_logits",)),
    Mutant("weight_zero_heads_computed", GN, _generic_mutant(skip_zero=False), "computes weight-0 heads (0 * nan = nan)",
           ("weight_zero_and_absent_heads_are_skipped",)),
    Mutant("transforms_outputs_in_place", GN, _generic_mutant(in_place=True), "writes the sigmoid into the caller's dicts",
           ("does_not_modify_outputs",)),
    Mutant("total_unweighted", GN, _generic_mutant(weighted=False), "the total ignores the head weights",
           ("total_is_the_weighted_sum", "agrees_with_numpy")),
    Mutant("missing_weight_defaults_to_one", GN, _generic_mutant(default_weight=True), "a head without a weight gets 1",
           ("rejects_a_head_without_a_weight",)),
    Mutant("dropout_left_on", GN, generic_dropout, "dropout on the heatmap logits in training mode", ("deterministic",)),
    Mutant("total_in_float32", GN, _generic_mutant(float32=True), "the total accumulates in float32", ("output_dtype_and_shape",)),
    Mutant("depth_transform_missing", GN, _generic_mutant(depth=False), "the depth head compares raw logits with depths",
           ("agrees_with_numpy",)),
]
