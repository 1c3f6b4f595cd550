"""Mutants of the SSD family: the mistakes seed 001's readers and real ports make.

Each mutant is the plain (per-image, dense) SSD algorithm below with one thing
changed; ``_Cfg`` names the change. The algorithm is written here on purpose,
not taken from ``impls.ssd``, so that a mutant is one clear edit away from a
correct implementation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F

from impls import ssd as ref
from tests.mutants import Mutant


@dataclass(frozen=True)
class _Cfg:
    principle_one: bool = True
    principle_two_last: bool = False  # threshold applied after principle 1, undoing it
    later_wins: bool = False  # seed: a contested prior goes to the later ground truth
    strict: bool = False  # IoU > threshold instead of >=
    ignore_mask: bool = False
    first_image_gts: bool = False  # every image matched against image 0's ground truths
    union_no_inter: bool = False  # union = area_a + area_b
    priors_as_corners: bool = False
    pixel_plus_one: bool = False  # VOC's "+1" in widths and heights
    threshold_complement: bool = False
    sort_gts_by_area: bool = False  # sorts ground truths, forgets to map the indices back
    sort_priors: bool = False  # sorts the priors by area, forgets to put the columns back
    gt_order_greedy: bool = False  # principle 1 in ground-truth order: each takes its best free prior
    force_near_best: bool = False  # principle 1 forces every prior within 80 % of the best
    int32: bool = False
    clamp_in_place: bool = False
    random_ties: bool = False
    lenient_shapes: bool = False
    no_threshold_check: bool = False
    cpu_constant: bool = False
    compiled_skips_principle_one: bool = False


def _iou(a: torch.Tensor, pr_xy: torch.Tensor, cfg: _Cfg) -> torch.Tensor:
    one = 1.0 if cfg.pixel_plus_one else 0.0
    iw = (torch.minimum(a[:, None, 2], pr_xy[None, :, 2]) - torch.maximum(a[:, None, 0], pr_xy[None, :, 0]) + one).clamp(min=0)
    ih = (torch.minimum(a[:, None, 3], pr_xy[None, :, 3]) - torch.maximum(a[:, None, 1], pr_xy[None, :, 1]) + one).clamp(min=0)
    inter = iw * ih
    aa = ((a[:, 2] - a[:, 0] + one) * (a[:, 3] - a[:, 1] + one))[:, None]
    ab = ((pr_xy[:, 2] - pr_xy[:, 0] + one) * (pr_xy[:, 3] - pr_xy[:, 1] + one))[None, :]
    union = aa + ab if cfg.union_no_inter else aa + ab - inter
    return torch.where(union > 0, inter / torch.where(union > 0, union, torch.ones_like(union)), torch.zeros_like(inter))


def _match(gt_boxes: torch.Tensor, gt_mask: torch.Tensor | None, priors: torch.Tensor, threshold: float, cfg: _Cfg) -> torch.Tensor:
    if not cfg.lenient_shapes:
        ref._check_boxes(gt_boxes, None if cfg.ignore_mask else gt_mask, priors, strict=False)
    else:
        gt_boxes = gt_boxes[..., :4]
    if not cfg.no_threshold_check:
        ref.check_real("threshold", threshold, low=0.0, high=1.0)
    b, g = gt_boxes.shape[:2]
    if gt_mask is None or cfg.ignore_mask:
        gt_mask = torch.ones(b, g, dtype=torch.bool)
    gt_mask = gt_mask[:, :g]
    if cfg.clamp_in_place:
        gt_boxes.clamp_(0, 1)
    if cfg.threshold_complement:
        threshold = 1.0 - threshold
    if cfg.sort_priors:
        priors = priors[torch.argsort(priors[:, 2] * priors[:, 3], stable=True)]
    pr_xy = priors.to(gt_boxes.dtype) if cfg.priors_as_corners else ref.cxcywh_to_xyxy(priors.to(gt_boxes.dtype))
    p = priors.shape[0]
    out = torch.full((b, p), -1, dtype=torch.int32 if cfg.int32 else torch.long)
    for i in range(b):
        src = 0 if cfg.first_image_gts else i
        real = gt_mask[src].nonzero().squeeze(1)
        if cfg.sort_gts_by_area and real.numel():
            bx = gt_boxes[src, real]
            real = real[torch.argsort((bx[:, 2] - bx[:, 0]) * (bx[:, 3] - bx[:, 1]), stable=True)]
        n = real.numel()
        if n == 0 or p == 0:
            continue
        iou = _iou(gt_boxes[src, real], pr_xy, cfg)  # (n, P)
        if cfg.random_ties:
            iou = iou + 1e-3 * torch.rand_like(iou)
        best, who = iou.max(dim=0)
        pos = best > threshold if cfg.strict else best >= threshold
        m = torch.where(pos, who, torch.full_like(who, -1))
        if cfg.principle_one:
            forced: dict[int, int] = {}
            if cfg.later_wins:
                for j in range(n):
                    forced[int(iou[j].argmax())] = j
            elif cfg.gt_order_greedy:
                taken: set[int] = set()
                for j in range(n):
                    row = iou[j].clone()
                    if taken:
                        row[list(taken)] = -1.0
                    q = int(row.argmax())
                    if row[q] >= 0:
                        forced[q] = j
                        taken.add(q)
            else:
                val = iou.clone()
                for _ in range(min(n, p)):
                    flat = int(val.argmax())
                    j, q = divmod(flat, p)
                    if val[j, q] < 0:
                        break
                    forced[q] = j
                    val[j, :] = -1.0
                    val[:, q] = -1.0
                if cfg.force_near_best:
                    for j in range(n):
                        for q in (iou[j] >= 0.8 * iou[j].max()).nonzero().squeeze(1).tolist():
                            forced.setdefault(q, j)
            for q, j in forced.items():
                m[q] = j
            if cfg.principle_two_last:
                m = torch.where(best >= threshold, m, torch.full_like(m, -1))
        idx = torch.where(m >= 0, real[m.clamp(min=0)] if cfg.sort_gts_by_area is False else m, torch.full_like(m, -1))
        out[i] = idx.to(out.dtype)
    if cfg.cpu_constant:
        out = out + torch.zeros(out.shape, dtype=out.dtype)
    return out


def _matcher(cfg: _Cfg) -> Any:
    # The compiled path is chosen first thing in the traced frame, before any graph break.
    compiled = replace(cfg, principle_one=False) if cfg.compiled_skips_principle_one else cfg

    def f(gt_boxes, gt_mask, priors, *, threshold=0.5):  # type: ignore[no-untyped-def]
        return _match(gt_boxes, gt_mask, priors, threshold, compiled if torch.compiler.is_compiling() else cfg)

    return f


# ---------------------------------------------------------------------------
# hard negative mining
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _MineCfg:
    include_positives: bool = False
    off_by_one: int = 0
    uncapped: bool = False
    lowest: bool = False
    batch_wide: bool = False
    ratio_fixed: bool = False
    absolute_cut: bool = False
    float_mask: bool = False
    zero_in_place: bool = False
    random_ties: bool = False
    no_validation: bool = False
    cpu_constant: bool = False
    first_by_index: bool = False
    minus_inf_topk: bool = False  # positives masked with -inf, then top-k: ties with negatives of loss -inf
    compiled_lowest: bool = False
    float32_ranking: bool = False  # a float64 loss ranked in float32 ("topk is faster in float32")
    rounded_count: bool = False  # round(ratio * P) negatives instead of floor(ratio * P)


def _count(n_pos: int, ratio: float, cfg: _MineCfg) -> int:
    return math.floor(n_pos * ratio + 0.5) if cfg.rounded_count else math.floor(n_pos * ratio)


def _mine(conf_loss: torch.Tensor, positive: torch.Tensor, ratio: float, cfg: _MineCfg) -> torch.Tensor:
    if not cfg.no_validation:
        ref.check_tensor("conf_loss", conf_loss, ndim=2)
        ref.check_tensor("positive", positive, floating=False, dtypes=(torch.bool,), ndim=2)
        ref.check_real("neg_pos_ratio", ratio, low=0.0)
        if positive.shape != conf_loss.shape:
            raise ValueError("positive must have the shape of conf_loss")
        if bool(torch.isnan(conf_loss).any()):
            raise ValueError("conf_loss must not contain NaN")
    elif positive.shape != conf_loss.shape:
        positive = positive[..., : conf_loss.shape[-1]]
    if cfg.ratio_fixed:
        ratio = 3
    loss = conf_loss
    if cfg.zero_in_place:
        loss[positive] = 0.0  # the seed's clone forgotten
        loss = loss.clone()
    else:
        loss = loss.clone()
    if cfg.random_ties:
        loss = loss + 1e-6 * torch.rand_like(loss)
    if cfg.float32_ranking:
        loss = loss.float()
    b, p = loss.shape
    out = torch.zeros(b, p, dtype=torch.bool)
    if cfg.batch_wide:
        n_pos = int(positive.sum())
        k = min(_count(n_pos, ratio, cfg) + cfg.off_by_one, int((~positive).sum()))
        flat = loss.flatten().masked_fill(positive.flatten(), -math.inf)
        if k > 0:
            out.view(-1)[flat.topk(k).indices] = True
        return out
    for i in range(b):
        n_pos = int(positive[i].sum())
        k = max(_count(n_pos, ratio, cfg) + cfg.off_by_one, 0)
        if not cfg.uncapped:
            k = min(k, int((~positive[i]).sum()))
        row = loss[i] if cfg.include_positives else loss[i].masked_fill(positive[i], -math.inf if not cfg.lowest else math.inf)
        if cfg.absolute_cut:
            row = torch.where(row >= 1.0, row, torch.full_like(row, -math.inf))
        if cfg.first_by_index:
            cand = (~positive[i]).nonzero().squeeze(1)[:k]
            out[i, cand] = True
            continue
        if cfg.minus_inf_topk:
            if k > 0:
                out[i, loss[i].masked_fill(positive[i], -math.inf).topk(min(k, p)).indices] = True
            continue
        k = min(k, p)
        if k > 0:
            idx = torch.sort(row, descending=not cfg.lowest, stable=True).indices
            if not cfg.include_positives:  # negatives first: a negative of loss -inf ties with the masked positives
                idx = idx[torch.sort(positive[i][idx].to(torch.uint8), stable=True).indices]
            idx = idx[:k]
            if cfg.absolute_cut:
                idx = idx[torch.isfinite(row[idx])]
            out[i, idx] = True
    if cfg.cpu_constant:
        out = out | torch.zeros(out.shape, dtype=torch.bool)
    return out.float() if cfg.float_mask else out


def _miner(cfg: _MineCfg) -> Any:
    compiled = replace(cfg, lowest=True) if cfg.compiled_lowest else cfg

    def f(conf_loss, positive, *, neg_pos_ratio=3):  # type: ignore[no-untyped-def]
        return _mine(conf_loss, positive, neg_pos_ratio, compiled if torch.compiler.is_compiling() else cfg)

    return f


# ---------------------------------------------------------------------------
# multibox loss
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _LossCfg:
    match: _Cfg = _Cfg()
    mine: _MineCfg = _MineCfg()
    loc: str = "smooth_l1"  # or "l1", "l1_mean"
    per_image_norm: bool = False
    nan_without_objects: bool = False
    variances: tuple[float, float] = (0.1, 0.2)
    corner_encoding: bool = False
    alpha_on_conf: bool = False
    alpha_squared: bool = False
    no_mining: bool = False
    label_shift: bool = False
    detach_conf: bool = False
    float32_out: bool = False
    naive_softmax: bool = False
    modify_scores: bool = False
    no_label_check: bool = False
    lenient_shapes: bool = False  # predictions for more priors are cut to P
    cpu_constant: bool = False
    random: bool = False
    float32_compute: bool = False  # float64 inputs computed in float32, returned as float64
    rank_by_background_logit: bool = False  # hard negatives: lowest background logit, not highest cross-entropy
    rank_by_probability: bool = False  # hard negatives: highest 1 - softmax[0] (saturates at 1: ties)
    normalise_by_selected: bool = False  # N counts the mined negatives too
    compiled_l1: bool = False


def _loss(pred_locs, pred_scores, gt_boxes, gt_labels, gt_mask, priors, threshold, ratio, alpha, cfg: _LossCfg):  # type: ignore[no-untyped-def]
    if cfg.float32_compute and pred_locs.dtype == torch.float64:
        out = _loss(pred_locs.float(), pred_scores.float(), gt_boxes.float(), gt_labels, gt_mask, priors.float(), threshold,
                    ratio, alpha, replace(cfg, float32_compute=False))
        return out.double()
    if cfg.lenient_shapes:
        p = priors.shape[0]
        pred_locs, pred_scores = pred_locs[:, :p], pred_scores[:, :p]
        gt_labels = gt_labels[:, : gt_boxes.shape[1]]
    elif cfg.no_label_check:
        gt_labels = gt_labels.clamp(min=0)
    else:
        ref._check_loss_inputs(pred_locs, pred_scores, gt_boxes, gt_labels, gt_mask, priors)
        for name, v, high in (("threshold", threshold, 1.0), ("neg_pos_ratio", ratio, None), ("alpha", alpha, None)):
            ref.check_real(name, v, low=0.0, high=high)
    if cfg.random:
        pred_scores = F.dropout(pred_scores, 0.1, training=True)
    b, p, c = pred_scores.shape
    matched = _match(gt_boxes, gt_mask, priors, threshold, cfg.match)
    pos = matched >= 0
    safe = matched.clamp(min=0).long()
    lab = torch.where(pos, torch.gather(gt_labels.long(), 1, safe) if gt_labels.shape[1] else safe, 0)
    if cfg.label_shift:
        lab = torch.where(pos, lab - 1, lab)
    if cfg.naive_softmax:
        logp = torch.log(torch.softmax(pred_scores, -1))
        ce = -torch.gather(logp, 2, lab.unsqueeze(-1)).squeeze(-1)
    else:
        ce = F.cross_entropy(pred_scores.reshape(-1, c), lab.reshape(-1), reduction="none").reshape(b, p)
    if cfg.detach_conf:
        ce = ce.detach()
    if cfg.no_mining:
        hard = ~pos
    elif cfg.rank_by_background_logit:
        hard = _mine(-pred_scores[..., 0].detach(), pos, ratio, cfg.mine)
    elif cfg.rank_by_probability:
        hard = _mine(1 - torch.softmax(pred_scores.detach(), dim=-1)[..., 0], pos, ratio, cfg.mine)
    else:
        hard = _mine(ce.detach(), pos, ratio, cfg.mine)
    if cfg.modify_scores:
        pred_scores.data[..., 0].clamp_(max=50.0)
    conf_i = (ce * (pos | hard)).sum(dim=1)
    gt_for = torch.gather(gt_boxes, 1, safe.unsqueeze(-1).expand(b, p, 4)) if gt_boxes.shape[1] else torch.ones(b, p, 4)
    pr = priors.to(gt_boxes.dtype)
    if cfg.corner_encoding:
        tgt = (gt_for - ref.cxcywh_to_xyxy(pr)) / (cfg.variances[0] * pr[:, 2:].repeat(1, 2))
    else:
        tgt = ref.encode(ref.xyxy_to_cxcywh(gt_for), pr, cfg.variances)
    tgt = torch.where(pos.unsqueeze(-1), tgt, torch.zeros_like(tgt)).to(pred_locs.dtype)
    d = (pred_locs - tgt) * pos.unsqueeze(-1)
    if cfg.loc == "smooth_l1":
        loc_i = F.smooth_l1_loss(d, torch.zeros_like(d), reduction="none").sum(dim=(1, 2))
    else:
        loc_i = d.abs().sum(dim=(1, 2))
    n_i = pos.sum(dim=1).to(pred_locs.dtype)
    n = n_i.sum()
    a = alpha * alpha if cfg.alpha_squared else alpha
    if cfg.loc == "l1_mean":
        loc_total = loc_i.sum() / (4 * n).clamp(min=1) * n  # the seed's nn.L1Loss() mean, rescaled into the N-normalised sum
    else:
        loc_total = loc_i.sum()
    if cfg.per_image_norm:
        per = (conf_i + a * loc_i) / n_i.clamp(min=1)
        out = per.mean()
    elif cfg.alpha_on_conf:
        out = (a * conf_i.sum() + loc_total) / n.clamp(min=1)
    elif cfg.normalise_by_selected:
        out = (conf_i.sum() + a * loc_total) / (pos | hard).sum().clamp(min=1).to(pred_locs.dtype)
    else:
        out = (conf_i.sum() + a * loc_total) / (n if cfg.nan_without_objects else n.clamp(min=1))
    if cfg.cpu_constant:
        out = out + torch.zeros((), dtype=out.dtype)
    return out.float() if cfg.float32_out else out


def _lossfn(cfg: _LossCfg) -> Any:
    compiled = replace(cfg, loc="l1") if cfg.compiled_l1 else cfg

    def f(pred_locs, pred_scores, gt_boxes, gt_labels, gt_mask, priors, *, threshold=0.5, neg_pos_ratio=3, alpha=1.0):  # type: ignore[no-untyped-def]
        c = compiled if torch.compiler.is_compiling() else cfg
        return _loss(pred_locs, pred_scores, gt_boxes, gt_labels, gt_mask, priors, threshold, neg_pos_ratio, alpha, c)

    return f


_DEVICE = ("cuda_matches_cpu", "mps_matches_cpu")
M, H, L = "ssd_matching", "hard_negative_mining", "multibox_loss"
_C, _H, _L = _Cfg(), _MineCfg(), _LossCfg()


def _chunked_matcher(gt_boxes, gt_mask, priors, *, threshold=0.5):  # type: ignore[no-untyped-def]
    b = gt_boxes.shape[0]
    if b <= 4:
        return ref.ssd_matching(gt_boxes, gt_mask, priors, threshold=threshold)
    mask = gt_mask if gt_mask is not None else torch.ones(gt_boxes.shape[:2], dtype=torch.bool)
    return torch.cat([ref.ssd_matching(gt_boxes[s:s + 4], mask[: min(4, b - s)], priors, threshold=threshold)
                      for s in range(0, b, 4)])


def _in_evaluation(train: Any, evaluation: Any, name: str) -> Any:
    """``train`` while autograd records, ``evaluation`` under torch.no_grad() (an evaluation loop)."""

    def f(*args: Any, **kwargs: Any) -> Any:
        return (train if torch.is_grad_enabled() else evaluation)(*args, **kwargs)

    f.__name__ = f.__qualname__ = name
    globals()[name] = f
    return f


_RSM, _RII = "rejects_shape_mismatch", "rejects_invalid_inputs"

MUTANTS = [
    # --- matching -------------------------------------------------------------------
    Mutant("no_principle_one", M, _matcher(replace(_C, principle_one=False)),
           "threshold only: a ground truth whose priors all overlap it less than the threshold gets none",
           ("every_ground_truth_has_a_prior", "best_prior_kept_without_collision", "agrees_with_numpy")),
    Mutant("principle_two_after_one", M, _matcher(replace(_C, principle_two_last=True)),
           "the threshold applied after principle 1 turns its forced priors below the threshold back to background",
           ("every_ground_truth_has_a_prior", "best_prior_kept_without_collision")),
    Mutant("strict_threshold", M, _matcher(replace(_C, strict=True)), "IoU > threshold where the rule is >=",
           ("above_threshold_is_positive",)),
    Mutant("later_wins", M, _matcher(replace(_C, later_wins=True)),
           "seed 001: the later of two ground truths sharing a best prior takes it",
           ("highest_iou_pair_is_matched", "every_ground_truth_has_a_prior", "agrees_with_numpy")),
    Mutant("mask_ignored", M, _matcher(replace(_C, ignore_mask=True)), "padded slots matched like real ground truths",
           ("padding_is_never_matched", "extra_padding_changes_nothing", _RSM)),
    Mutant("first_image_for_all", M, _matcher(replace(_C, first_image_gts=True)),
           "every image matched against the first image's ground truths (a batch index slip)",
           ("images_are_independent", "agrees_with_numpy")),
    Mutant("union_without_intersection", M, _matcher(replace(_C, union_no_inter=True)),
           "union = area_a + area_b: the intersection counted twice",
           ("agrees_with_numpy", "above_threshold_is_positive", "honours_threshold")),
    Mutant("priors_read_as_corners", M, _matcher(replace(_C, priors_as_corners=True)),
           "centre-size priors used as corners", ("agrees_with_numpy",)),
    Mutant("pixel_plus_one", M, _matcher(replace(_C, pixel_plus_one=True)),
           "VOC's '+1' in widths and heights: not scale invariant", ("translation_and_scale_invariant", "agrees_with_numpy")),
    Mutant("threshold_complement", M, _matcher(replace(_C, threshold_complement=True)),
           "compares with 1 - threshold (a background-overlap threshold taken for a foreground one)",
           ("higher_threshold_fewer_positives", "honours_threshold")),
    Mutant("sorted_indices_leak", M, _matcher(replace(_C, sort_gts_by_area=True)),
           "sorts the ground truths by area and returns indices into the sorted order",
           ("ground_truth_permutation_equivariant", "agrees_with_numpy")),
    Mutant("priors_sorted_by_area", M, _matcher(replace(_C, sort_priors=True)),
           "sorts the priors by area and returns the columns in sorted order", ("prior_permutation_equivariant", "agrees_with_numpy")),
    Mutant("ground_truth_order_greedy", M, _matcher(replace(_C, gt_order_greedy=True)),
           "principle 1 in ground-truth order (each takes its best free prior), not by highest IoU first",
           ("highest_iou_pair_is_matched", "ground_truth_permutation_equivariant")),
    Mutant("forces_near_best", M, _matcher(replace(_C, force_near_best=True)),
           "principle 1 forces every prior within 80 % of a ground truth's best IoU", ("best_ground_truth_unless_forced",)),
    Mutant("int32_output", M, _matcher(replace(_C, int32=True)), "returns int32 indices", ("output_dtype_and_shape",)),
    Mutant("clamps_boxes_in_place", M, _matcher(replace(_C, clamp_in_place=True)), "clamps the caller's boxes to [0, 1] in place",
           ("inputs_not_modified",)),
    Mutant("lenient_shapes", M, _matcher(replace(_C, lenient_shapes=True)),
           "cuts gt_boxes to 4 columns and gt_mask to G slots instead of rejecting them", (_RSM,)),
    Mutant("threshold_unchecked", M, _matcher(replace(_C, no_threshold_check=True)),
           "accepts a threshold outside [0, 1] (1.5 silently means 'principle 1 only')", (_RII,)),
    Mutant("random_tie_break", M, _matcher(replace(_C, random_ties=True)), "breaks near-ties with random noise",
           ("deterministic",)),
    Mutant("skips_principle_one_when_compiled", M, _matcher(replace(_C, compiled_skips_principle_one=True)),
           "a compiled fast path without the greedy rounds", ("compiled_matches_eager",)),
    Mutant("cpu_constant", M, _matcher(replace(_C, cpu_constant=True)), "builds a tensor on the CPU", _DEVICE),
    # --- hard negative mining ------------------------------------------------------------
    Mutant("matched_in_chunks_of_four", M, _chunked_matcher,
           "images matched in chunks of 4 to bound memory, each chunk reading the first chunk's mask rows",
           ("agrees_with_numpy",)),
    Mutant("ranks_in_float32", H, _miner(replace(_H, float32_ranking=True)),
           "a float64 loss ranked in float32: losses distinct only in float64 tie, and go by index",
           ("only_the_order_matters", "honours_neg_pos_ratio")),
    Mutant("skips_principle_one_in_evaluation", M,
           _in_evaluation(_matcher(_C), _matcher(replace(_C, principle_one=False)), "match_skips_p1_in_eval"),
           "under torch.no_grad() (an evaluation loop) the bipartite step is skipped: a ground truth whose best prior "
           "is below the threshold goes unmatched there only", ("autograd_state_independent",)),
    Mutant("positives_ranked_in_evaluation", H,
           _in_evaluation(_miner(_H), _miner(replace(_H, include_positives=True)), "mine_ranks_positives_in_eval"),
           "under torch.no_grad() positives enter the ranking (the evaluation path forgets to exclude them)",
           ("autograd_state_independent",)),
    Mutant("positives_ranked_too", H, _miner(replace(_H, include_positives=True)),
           "ranks all priors, positives included (counted twice)", ("never_selects_positives", "agrees_with_numpy")),
    Mutant("rounded_count", H, _miner(replace(_H, rounded_count=True)),
           "round(ratio * P) negatives, not floor: one too many for a fractional ratio",
           ("count_is_ratio_times_positives", "agrees_with_numpy")),
    Mutant("one_negative_too_many", H, _miner(replace(_H, off_by_one=1)), "ratio * P + 1 negatives",
           ("count_is_ratio_times_positives", "agrees_with_numpy")),
    Mutant("not_capped_by_negatives", H, _miner(replace(_H, uncapped=True, include_positives=True)),
           "ratio * P not capped by the number of negatives: positives fill the rest",
           ("count_is_ratio_times_positives", "never_selects_positives")),
    Mutant("easiest_negatives", H, _miner(replace(_H, lowest=True)), "sorted ascending: the easiest negatives",
           ("selects_the_hardest", "agrees_with_numpy")),
    Mutant("batch_wide_top_k", H, _miner(replace(_H, batch_wide=True)), "one top-k over the whole batch, not per image",
           ("images_are_independent",)),
    Mutant("ratio_ignored", H, _miner(replace(_H, ratio_fixed=True)), "always 3 negatives per positive",
           ("count_is_ratio_times_positives", "honours_neg_pos_ratio")),
    Mutant("absolute_cut", H, _miner(replace(_H, absolute_cut=True)), "only negatives with loss >= 1 are eligible",
           ("only_the_order_matters",)),
    Mutant("minus_inf_topk", H, _miner(replace(_H, minus_inf_topk=True)),
           "positives masked with -inf then top-k: a negative of loss -inf ties with them and a positive is taken",
           ("never_selects_positives",)),
    Mutant("float_mask", H, _miner(replace(_H, float_mask=True)), "returns a float mask", ("output_dtype_and_shape",)),
    Mutant("zeroes_positives_in_place", H, _miner(replace(_H, zero_in_place=True)),
           "seed 001's conf_loss_neg[positive_priors] = 0 without the clone", ("inputs_not_modified",)),
    Mutant("random_tie_break", H, _miner(replace(_H, random_ties=True)), "breaks ties with random noise",
           ("deterministic",)),
    Mutant("easiest_when_compiled", H, _miner(replace(_H, compiled_lowest=True)),
           "a compiled fast path that sorts ascending", ("compiled_matches_eager",)),
    Mutant("no_validation", H, _miner(replace(_H, no_validation=True)),
           "accepts a negative ratio, NaN losses, a non-bool or mis-shaped mask", (_RSM, _RII)),
    Mutant("cpu_constant", H, _miner(replace(_H, cpu_constant=True)), "builds a tensor on the CPU", _DEVICE),
    # --- multibox loss ---------------------------------------------------------------------
    Mutant("l1_for_smooth_l1", L, _lossfn(replace(_L, loc="l1")), "seed 001: L1 where the text says smooth L1",
           ("localisation_is_smooth_l1_over_positives", "agrees_with_numpy", "gradient_matches_analytic")),
    Mutant("l1_mean", L, _lossfn(replace(_L, loc="l1_mean")), "seed 001's nn.L1Loss(): the mean over 4 N offsets",
           ("localisation_is_smooth_l1_over_positives", "agrees_with_numpy")),
    Mutant("nan_without_objects", L, _lossfn(replace(_L, nan_without_objects=True)), "seed 001's / n_positives.sum(): 0/0",
           ("no_object_gives_zero_and_finite_gradients", "finite_gradients")),
    Mutant("per_image_normalisation", L, _lossfn(replace(_L, per_image_norm=True)), "mean over images of loss_i / N_i",
           ("normalised_by_the_batch_positives",)),
    Mutant("normalised_by_selected", L, _lossfn(replace(_L, normalise_by_selected=True)),
           "N counts the mined negatives with the positives", ("agrees_with_numpy", "honours_neg_pos_ratio")),
    Mutant("variances_swapped", L, _lossfn(replace(_L, variances=(0.2, 0.1))), "variances (0.2, 0.1)",
           ("perfect_offsets_leave_confidence_only", "agrees_with_numpy")),
    Mutant("corner_offsets", L, _lossfn(replace(_L, corner_encoding=True)), "encodes corner offsets, not centre-size",
           ("perfect_offsets_leave_confidence_only",)),
    Mutant("alpha_on_confidence", L, _lossfn(replace(_L, alpha_on_conf=True)), "alpha weights the confidence term",
           ("localisation_is_smooth_l1_over_positives", "honours_alpha")),
    Mutant("alpha_applied_twice", L, _lossfn(replace(_L, alpha_squared=True)), "alpha applied twice (alpha^2 L_loc)",
           ("linear_in_alpha",)),
    Mutant("every_negative", L, _lossfn(replace(_L, no_mining=True)), "no hard negative mining: every negative enters",
           ("easy_negatives_do_not_matter", "agrees_with_numpy")),
    Mutant("ranked_by_background_logit", L, _lossfn(replace(_L, rank_by_background_logit=True)),
           "hard negatives ranked by their lowest background logit, not their highest cross-entropy",
           ("agrees_with_numpy", "easy_negatives_do_not_matter")),
    Mutant("ranked_by_one_minus_background_probability", L, _lossfn(replace(_L, rank_by_probability=True)),
           "hard negatives ranked by 1 - softmax[0] (the same order as the cross-entropy until it saturates at 1 "
           "for confident mistakes; the saturated ones tie and go by index)", ("honours_threshold", "honours_neg_pos_ratio")),
    Mutant("mining_counts_positives", L, _lossfn(replace(_L, mine=replace(_H, include_positives=True))),
           "positives ranked with the negatives (counted twice)", ("agrees_with_numpy",)),
    Mutant("batch_wide_mining", L, _lossfn(replace(_L, mine=replace(_H, batch_wide=True))), "hard negatives over the batch",
           ("normalised_by_the_batch_positives",)),
    Mutant("one_negative_too_many", L, _lossfn(replace(_L, mine=replace(_H, off_by_one=1))), "ratio * P + 1 negatives",
           ("agrees_with_numpy", "gradient_matches_analytic")),
    Mutant("first_negatives_by_index", L, _lossfn(replace(_L, mine=replace(_H, first_by_index=True))),
           "takes the first negatives in prior order, not the hardest", ("permutation_invariant", "agrees_with_numpy")),
    Mutant("no_principle_one", L, _lossfn(replace(_L, match=replace(_C, principle_one=False))), "matching without principle 1",
           ("agrees_with_numpy",)),
    Mutant("padding_matched", L, _lossfn(replace(_L, match=replace(_C, ignore_mask=True))), "padded ground truths matched",
           ("padding_is_ignored",)),
    Mutant("labels_shifted", L, _lossfn(replace(_L, label_shift=True)), "labels shifted down by one (1-based vs 0-based)",
           ("agrees_with_numpy",)),
    Mutant("confidence_detached", L, _lossfn(replace(_L, detach_conf=True)), "confidence loss computed without a graph",
           ("gradient_matches_analytic", "gradcheck_float64")),
    Mutant("float32_compute", L, _lossfn(replace(_L, float32_compute=True)),
           "computes a float64 batch in float32 and returns it as float64", ("agrees_with_numpy",)),
    Mutant("float32_output", L, _lossfn(replace(_L, float32_out=True)), "returns float32",
           ("output_dtype_and_shape", "low_precision_matches_float32")),
    Mutant("log_of_softmax", L, _lossfn(replace(_L, naive_softmax=True)), "log(softmax(x)): -inf at extreme logits",
           ("finite_gradients",)),
    Mutant("clamps_scores_in_place", L, _lossfn(replace(_L, modify_scores=True)), "clamps the caller's scores in place",
           ("inputs_not_modified",)),
    Mutant("no_label_check", L, _lossfn(replace(_L, no_label_check=True)), "a real ground truth labelled 0 passes silently",
           (_RII,)),
    Mutant("lenient_shapes", L, _lossfn(replace(_L, lenient_shapes=True)),
           "predictions for more priors (and labels for more slots) are cut to fit instead of rejected", (_RSM,)),
    Mutant("dropout_left_on", L, _lossfn(replace(_L, random=True)), "dropout in training mode", ("deterministic",)),
    Mutant("l1_when_compiled", L, _lossfn(replace(_L, compiled_l1=True)), "a compiled fast path with L1 for smooth L1",
           ("compiled_matches_eager",)),
    Mutant("cpu_constant", L, _lossfn(replace(_L, cpu_constant=True)), "builds a tensor on the CPU", _DEVICE),
]
