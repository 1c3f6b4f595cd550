"""CenterNet / CenterFusion losses: penalty-reduced focal loss (dense and gather forms),
the gathered regression heads, the two-bin rotation loss, and the weighted multi-head sum.

Conventions shared by every function here (they follow seed 003, CenterFusion's
``GenericLoss``; where the seed's code has a quirk, the reference implements the
intent and the quirk is a named ``seed_*`` variant):

* Feature maps are (B, D, H, W); ``ind`` (B, M) int64 holds flat indices
  ``y * W + x`` into H*W, one slot per object, padded slots flagged by ``mask == 0``.
  Gathering reads ``output[b, :, ind[b, m]]`` into (B, M, D) (the seed's
  ``_tranpose_and_gather_feat``).
* Masks may be float, bool or integer, with values in [0, 1]; fractional values act
  as weights. Masked-out slots never reach the loss, not even as ``0 * inf``: their
  predictions and targets may hold anything finite or not.
* Float targets must have the prediction's dtype (no silent promotion); the result
  has the prediction's dtype and device.
* The heatmap loss takes *probabilities* and applies no clamp of its own: the seed
  clamps in ``_sigmoid`` (here ``clamped_sigmoid``), before the loss, and
  ``generic_loss`` does the same; ``from_logits=True`` applies that clamped sigmoid
  inside. ``penalty_reduced_focal_logits`` is the clamp-free form on logits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import torch
import torch.nn.functional as F

from impls._validate import FLOATING, check_real, check_same_dtype, check_same_shape, check_tensor, check_values_in

__all__ = [
    "BIN_CENTRES",
    "DEPTH_EPS",
    "LOSS_ORDER",
    "NORM_EPS",
    "REGRESSION_HEADS",
    "SIGMOID_CLAMP",
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
    "reg_weighted_l1",
    "seed_bin_rot",
    "seed_generic_loss",
    "weighted_bce",
]

SIGMOID_CLAMP = 1e-4  # _sigmoid clamps to [1e-4, 1 - 1e-4]
DEPTH_EPS = 1e-6  # depth = 1 / (sigmoid(x) + 1e-6) - 1
NORM_EPS = 1e-4  # the gathered heads divide by mask.sum() + 1e-4

# The seed's trainer lists the heads in this order; totals are summed in it.
LOSS_ORDER: tuple[str, ...] = (
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
REGRESSION_HEADS: tuple[str, ...] = (
    "reg",
    "wh",
    "tracking",
    "ltrb",
    "ltrb_amodal",
    "hps",
    "dim",
    "amodel_offset",
    "velocity",
)
# Bin 1 is centred at -pi/2, bin 2 at +pi/2; each spans +-(pi/2 + pi/6) around its centre.
BIN_CENTRES: tuple[float, float] = (-0.5 * math.pi, 0.5 * math.pi)

_T = TypeVar("_T")

INDEX_DTYPES = (torch.int64,)
MASK_DTYPES = FLOATING + (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


# --------------------------------------------------------------------------- helpers


def _check_map(name: str, value: torch.Tensor) -> torch.Tensor:
    return check_tensor(name, value, ndim=4)


def _check_ind(ind: torch.Tensor, batch: int, hw: int, *, name: str = "ind") -> None:
    check_tensor(name, ind, floating=False, dtypes=INDEX_DTYPES, ndim=2)
    if ind.shape[0] != batch:
        raise ValueError(f"{name} must have shape (B, M) with B={batch} (the output's batch), got {tuple(ind.shape)}")
    check_values_in(name, ind, 0, hw - 1)


def _check_cat(cat: torch.Tensor, ind: torch.Tensor, n_cls: int | None, *, name: str = "cat") -> None:
    check_tensor(name, cat, floating=False, dtypes=INDEX_DTYPES, ndim=2)
    if cat.shape != ind.shape:
        raise ValueError(f"{name} must have the shape of ind {tuple(ind.shape)}, got {tuple(cat.shape)}")
    if n_cls is not None:
        check_values_in(name, cat, 0, n_cls - 1)


def _mask_as(name: str, mask: torch.Tensor, shapes: Sequence[tuple[int, ...]], dtype: torch.dtype) -> torch.Tensor:
    """Validate a 0/1 (or [0, 1]-weight) mask of one of ``shapes``; return it in ``dtype``."""
    check_tensor(name, mask, floating=False, dtypes=MASK_DTYPES)
    if tuple(mask.shape) not in [tuple(s) for s in shapes]:
        want = " or ".join(str(tuple(s)) for s in shapes)
        raise ValueError(f"{name} must have shape {want}, got {tuple(mask.shape)}")
    m = mask.to(dtype)
    check_values_in(name, m, 0.0, 1.0)
    return m


def _gather_feat(feat: torch.Tensor, ind: torch.Tensor) -> torch.Tensor:
    # Gathering on the flattened spatial axis reads only B*D*M values; the seed's
    # permute + contiguous copies the whole map first, with the same result.
    b, d, h, w = feat.shape
    idx = ind.unsqueeze(1).expand(b, d, ind.shape[1])
    # H * W spelled out: with an empty batch, reshape(b, d, -1) is ambiguous.
    return feat.reshape(b, d, h * w).gather(2, idx).transpose(1, 2)


def _safe_div(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """``num / den`` where ``den > 0``, else 0 (``num`` is 0 there: every weight was 0)."""
    pos = den > 0
    return torch.where(pos, num / torch.where(pos, den, torch.ones_like(den)), torch.zeros_like(num))


def _neg_weight(gt: torch.Tensor, beta: float, positive: torch.Tensor) -> torch.Tensor:
    # Positive pixels are never negatives: excluding them explicitly keeps 0 * log(0)
    # out of the sum when a peak is predicted with p == 1.
    return torch.where(positive, torch.zeros_like(gt), torch.pow(1 - gt, beta))


def _neg_sum(pred: torch.Tensor, gt: torch.Tensor, positive: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    w = _neg_weight(gt, beta, positive)
    active = w > 0
    # Inactive pixels get p = 0 before the log so that their (discarded) branch has a
    # finite gradient: where() alone would pass 0 * inf = nan back to p == 1 pixels.
    p = torch.where(active, pred, torch.zeros_like(pred))
    term = w * torch.pow(p, alpha) * -torch.log1p(-p)
    return torch.where(active, term, torch.zeros_like(term)).sum()


def _pos_term(p: torch.Tensor, alpha: float) -> torch.Tensor:
    return torch.pow(1 - p, alpha) * -torch.log(p)


def _check_heatmap_pair(pred: torch.Tensor, gt: torch.Tensor, pred_name: str) -> None:
    _check_map(pred_name, pred)
    check_tensor("gt_heatmap", gt, ndim=4)
    check_same_shape(pred_name, pred, "gt_heatmap", gt)
    check_same_dtype(pred_name, pred, "gt_heatmap", gt)
    check_values_in("gt_heatmap", gt, 0.0, 1.0)


# --------------------------------------------------------------------------- output transforms


def clamped_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """The seed's ``_sigmoid``: ``clamp(sigmoid(x), 1e-4, 1 - 1e-4)``.

    The clamp keeps ``log p`` and ``log(1 - p)`` of the focal loss finite; its
    gradient is 0 outside the clamp (``|x| > log(9999) ~ 9.21``), so saturated
    heatmap logits stop learning, as in the seed. The bounds are rounded to the
    dtype: in float16 and bfloat16, ``1 - 1e-4`` rounds to 1 and the upper clamp
    no longer protects ``log(1 - p)``. Unlike CenterNet's ``sigmoid_``, the input is
    not modified.

    Args:
        x: (*) float tensor of logits.

    Returns:
        (*) probabilities in [1e-4, 1 - 1e-4], same dtype.

    Reference: Zhou et al., "Objects as Points", 2019 (CenterNet ``_sigmoid``).
    """
    check_tensor("x", x)
    return torch.clamp(torch.sigmoid(x), min=SIGMOID_CLAMP, max=1 - SIGMOID_CLAMP)


def depth_transform(x: torch.Tensor) -> torch.Tensor:
    """The seed's depth output transform ``1 / (sigmoid(x) + 1e-6) - 1``.

    Evaluated as the equal ``(sigmoid(-x) - 1e-6) / (sigmoid(x) + 1e-6)``, which has
    no cancellation where the result is small (large ``x``). It is ``exp(-x)`` bounded
    by the eps: about ``1e6 - 1`` as ``x -> -inf`` and ``-1e-6`` (slightly negative)
    as ``x -> +inf``.

    Args:
        x: (*) float tensor of raw depth logits.

    Returns:
        (*) depths, same dtype.

    Reference: Zhou et al., "Objects as Points", 2019 (depth head); Nabati & Qi, CenterFusion, 2021.
    """
    check_tensor("x", x)
    return (torch.sigmoid(-x) - DEPTH_EPS) / (torch.sigmoid(x) + DEPTH_EPS)


# --------------------------------------------------------------------------- heatmap focal loss


def _check_slots(
    ind: torch.Tensor | None, mask: torch.Tensor | None, cat: torch.Tensor | None, shape: torch.Size, dtype: torch.dtype
) -> torch.Tensor | None:
    """Validate the gather form's slots; return the mask in ``dtype`` (None for the dense form)."""
    given = {"ind": ind is not None, "mask": mask is not None, "cat": cat is not None}
    if not all(given.values()):
        if any(given.values()):
            missing = [k for k, v in given.items() if not v]
            raise ValueError(
                f"ind, mask and cat must be given together (gather form) or all omitted (dense form); "
                f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing"
            )
        return None
    assert ind is not None and mask is not None and cat is not None
    b, c, h, w = shape
    _check_ind(ind, b, h * w)
    _check_cat(cat, ind, c)
    return _mask_as("mask", mask, [tuple(ind.shape)], dtype)


def penalty_reduced_focal(
    pred_prob: torch.Tensor,
    gt_heatmap: torch.Tensor,
    ind: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    cat: torch.Tensor | None = None,
    *,
    alpha: float = 2.0,
    beta: float = 4.0,
    positive_threshold: float | None = None,
    positive_weight: float = 1.0,
    negative_weight: float = 1.0,
    from_logits: bool = False,
) -> torch.Tensor:
    """Penalty-reduced pixel-wise focal loss (CornerNet / CenterNet), gather or dense form.

    With ``p`` the predicted probability and ``y`` the Gaussian-splatted target, a pixel
    is *positive* when ``y == 1`` exactly (``y > positive_threshold`` when a threshold is
    given). Every non-positive pixel is a negative and contributes
    ``-(1 - y)^beta p^alpha log(1 - p)``, summed densely. The positive term
    ``-(1 - p)^alpha log p`` is taken

    * in the **gather form** (``ind``, ``mask``, ``cat`` given: CenterTrack / CenterFusion
      ``FastFocalLoss``) at ``p[b, cat[b, m], ind[b, m]]`` for each slot, weighted by
      ``mask[b, m]``, with ``N = mask.sum()``;
    * in the **dense form** (all three omitted: CornerNet ``_neg_loss``, keras-cv's
      elementwise loss) at every positive pixel, with ``N`` the number of positives.

    The loss is ``(positive_weight * pos + negative_weight * neg) / N``, and
    ``negative_weight * neg`` undivided when ``N == 0`` (the seed's branch: the loss jumps
    when the first positive appears). The two forms agree exactly when the slots with
    ``mask == 1`` list each positive pixel once. Otherwise the gather form differs by
    design: a positive pixel no slot lists (CenterTrack's "ignore" regions, set to 1) is
    neither positive nor negative, and a peak listed twice counts twice in the sum and in N.

    Without ``from_logits`` no clamp is applied: ``pred_prob`` is used as given (the seed
    clamps in ``_sigmoid`` before the loss). ``p == 0`` at a positive or ``p == 1`` at a
    negative give ``+inf``, the formula's value (and a weight of 0 times it is nan). With
    ``from_logits`` the input holds logits and ``p = clamped_sigmoid(x)`` (the seed's
    ``_sigmoid``, keras-cv's ``from_logits=True``): the loss is finite for every logit.

    Args:
        pred_prob: (B, C, H, W) float probabilities in [0, 1], or logits (any non-nan value)
            with ``from_logits``.
        gt_heatmap: (B, C, H, W) target heatmap in [0, 1], same dtype.
        ind: (B, M) int64 flat spatial index ``y * W + x`` of each slot, in [0, H*W).
        mask: (B, M) slot weights in [0, 1] (float, bool or int); 0 marks padding.
        cat: (B, M) int64 class of each slot, in [0, C).
        alpha: focusing exponent, >= 0 (CornerNet: 2).
        beta: penalty-reduction exponent on ``1 - y``, >= 0 (CornerNet: 4).
        positive_threshold: None (positives are ``y == 1``) or a value in [0, 1): positives
            are ``y > positive_threshold`` (keras-cv's, 0.99 there).
        positive_weight: factor on the positive sum, >= 0 (keras-cv, mmdet ``pos_weight``).
        negative_weight: factor on the negative sum, >= 0 (keras-cv, mmdet ``neg_weight``).
        from_logits: ``pred_prob`` holds logits; the clamped sigmoid is applied first.

    Returns:
        0-d tensor of the input's dtype.

    Reference: Law & Deng, "CornerNet", ECCV 2018; Zhou et al., "Objects as Points", 2019 and
    "Tracking Objects as Points", 2020; Nabati & Qi, "CenterFusion", WACV 2021.
    """
    _check_heatmap_pair(pred_prob, gt_heatmap, "pred_prob")
    if not isinstance(from_logits, bool):
        raise ValueError(f"from_logits must be True or False, got {from_logits!r}")
    if from_logits:
        if bool(torch.isnan(pred_prob).any()):
            raise ValueError("pred_prob must hold logits without nan (from_logits=True), found nan")
        p = clamped_sigmoid(pred_prob)
    else:
        check_values_in("pred_prob", pred_prob, 0.0, 1.0)
        p = pred_prob
    alpha = check_real("alpha", alpha, low=0.0)
    beta = check_real("beta", beta, low=0.0)
    pw = check_real("positive_weight", positive_weight, low=0.0)
    nw = check_real("negative_weight", negative_weight, low=0.0)
    if positive_threshold is None:
        positive = gt_heatmap == 1
    else:
        # The threshold meets the heatmap in the heatmap's dtype (torch's scalar promotion).
        positive = gt_heatmap > check_real("positive_threshold", positive_threshold, low=0.0, high=1.0, high_open=True)
    m = _check_slots(ind, mask, cat, pred_prob.shape, pred_prob.dtype)
    neg_sum = _neg_sum(p, gt_heatmap, positive, alpha, beta)
    if m is None:
        p_pos = torch.where(positive, p, torch.ones_like(p))
        pos_sum = torch.where(positive, _pos_term(p_pos, alpha), torch.zeros_like(p)).sum()
        num_pos = positive.sum().to(p.dtype)
    else:
        assert ind is not None and cat is not None
        b, c, h, w = p.shape
        # One flat index per slot over C*H*W picks (cat, ind) in a single gather.
        flat = p.reshape(b, c * h * w).gather(1, cat * (h * w) + ind)
        active = m > 0
        p_pos = torch.where(active, flat, torch.ones_like(flat))
        pos_sum = torch.where(active, m * _pos_term(p_pos, alpha), torch.zeros_like(flat)).sum()
        num_pos = m.sum()
    neg = nw * neg_sum
    has_pos = num_pos > 0
    return torch.where(has_pos, (pw * pos_sum + neg) / torch.where(has_pos, num_pos, torch.ones_like(num_pos)), neg)


class _PenaltyReducedFocalLogits(torch.autograd.Function):
    """Elementwise penalty-reduced focal loss on logits with its analytic gradient.

    Autograd through ``exp(alpha * logsigmoid(x)) * softplus(x)`` multiplies the
    upstream gradient by ``softplus(x)`` (up to 3e38 in float32) before the
    vanishing ``sigmoid(-x)``: ``inf * 0 = nan`` at saturated logits. The closed forms
    ``d/dx [p^a sp(x)] = p^a (a (1-p) sp(x) + p)`` and
    ``d/dx [(1-p)^a sp(-x)] = -(1-p)^a (a p sp(-x) + (1-p))`` multiply the vanishing
    factor first and stay bounded by ``1 + a/2``.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, gt: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:  # type: ignore[override]
        pos = gt == 1
        w = _neg_weight(gt, beta, pos)
        log_p = F.logsigmoid(logits)
        log_q = F.logsigmoid(-logits)
        pos_el = torch.exp(alpha * log_q) * -log_p
        neg_el = w * torch.exp(alpha * log_p) * -log_q
        ctx.save_for_backward(logits, gt)
        ctx.alpha, ctx.beta = alpha, beta
        return torch.where(pos, pos_el, neg_el)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None, None]:  # type: ignore[override]
        logits, gt = ctx.saved_tensors
        a = ctx.alpha
        pos = gt == 1
        w = _neg_weight(gt, ctx.beta, pos)
        log_p = F.logsigmoid(logits)
        log_q = F.logsigmoid(-logits)
        p = torch.sigmoid(logits)
        q = torch.sigmoid(-logits)
        d_pos = -torch.exp(a * log_q) * ((a * p) * -log_p + q)
        d_neg = w * torch.exp(a * log_p) * ((a * q) * -log_q + p)
        return grad * torch.where(pos, d_pos, d_neg), None, None, None


def penalty_reduced_focal_logits(
    logits: torch.Tensor,
    gt_heatmap: torch.Tensor,
    *,
    alpha: float = 2.0,
    beta: float = 4.0,
) -> torch.Tensor:
    """Penalty-reduced focal loss on logits, dense form, with no clamp.

    Equal to ``penalty_reduced_focal(sigmoid(logits), gt_heatmap)`` wherever that is
    finite, computed with ``log p = logsigmoid(x)``, ``log(1 - p) = logsigmoid(-x)``,
    ``p^alpha = exp(alpha logsigmoid(x))``: every per-pixel value and gradient is
    finite for every finite logit, and so is the loss wherever its exact value is
    representable (terms are divided by N before they are summed). It is *not* the seed's clamped loss: for
    ``|x| > ~9.2`` the seed's value saturates and its gradient is 0.

    Args:
        logits: (B, C, H, W) float tensor of raw heatmap scores.
        gt_heatmap: (B, C, H, W) target heatmap in [0, 1], same dtype; peaks are exactly 1.
        alpha: focusing exponent, >= 0.
        beta: penalty-reduction exponent, >= 0.

    Returns:
        0-d tensor of the input's dtype.

    Reference: Law & Deng, "CornerNet", ECCV 2018; Zhou et al., "Objects as Points", 2019.
    """
    _check_heatmap_pair(logits, gt_heatmap, "logits")
    alpha = check_real("alpha", alpha, low=0.0)
    beta = check_real("beta", beta, low=0.0)
    elem = _PenaltyReducedFocalLogits.apply(logits, gt_heatmap, alpha, beta)
    num_pos = (gt_heatmap == 1).sum().to(logits.dtype).clamp(min=1)
    # Dividing before summing: terms near the dtype's maximum (|x| ~ 1e38 in float32)
    # would overflow the sum although the mean is representable.
    return (elem / num_pos).sum()


# The seed's name for the gather form (CenterTrack / CenterFusion ``FastFocalLoss``):
# the same function, called with ind, mask and cat.
fast_focal = penalty_reduced_focal


# --------------------------------------------------------------------------- gathered regression heads


def _masked_l1_mean(pred: torch.Tensor, target: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    active = m > 0
    diff = torch.where(active, pred, torch.zeros_like(pred)) - torch.where(active, target, torch.zeros_like(target))
    return torch.where(active, m * diff.abs(), torch.zeros_like(diff)).sum() / (m.sum() + NORM_EPS)


def reg_weighted_l1(
    output: torch.Tensor,
    mask: torch.Tensor,
    ind: torch.Tensor,
    target: torch.Tensor,
) -> torch.Tensor:
    """The seed's ``RegWeightedL1Loss``: gathered L1, summed over masked elements.

    ``sum_{b,m,d} mask[b,m,d] |output[b,d,ind[b,m]] - target[b,m,d]| / (sum mask + 1e-4)``.
    The mask is per *element* (CenterFusion's ``<head>_mask`` is (M, D)), so the
    normaliser counts coordinates, not objects. A (B, M) mask is expanded to
    (B, M, D) first (CenterNet's ``RegL1Loss``): the normaliser is then D per object.
    Argument order is the seed's: ``(output, mask, ind, target)``.

    Args:
        output: (B, D, H, W) float feature map of the head.
        mask: (B, M, D) or (B, M) weights in [0, 1].
        ind: (B, M) int64 flat spatial indices in [0, H*W).
        target: (B, M, D) targets, same dtype as ``output``.

    Returns:
        0-d tensor of the output's dtype; 0 when the mask is all zero.

    Reference: Zhou et al., "Objects as Points", 2019; Nabati & Qi, "CenterFusion", WACV 2021.
    """
    _check_map("output", output)
    b, d, h, w = output.shape
    _check_ind(ind, b, h * w)
    mm = ind.shape[1]
    check_tensor("target", target, ndim=3)
    if tuple(target.shape) != (b, mm, d):
        raise ValueError(f"target must have shape (B, M, D) = {(b, mm, d)}, got {tuple(target.shape)}")
    check_same_dtype("output", output, "target", target)
    m = _mask_as("mask", mask, [(b, mm, d), (b, mm)], output.dtype)
    if m.dim() == 2:
        m = m.unsqueeze(2).expand(b, mm, d)
    return _masked_l1_mean(_gather_feat(output, ind), target, m)


def _depth_l1_of(
    depth: torch.Tensor,
    target: torch.Tensor,
    ind: torch.Tensor,
    mask: torch.Tensor,
    cat: torch.Tensor,
    *,
    transform: bool = False,
) -> torch.Tensor:
    """DepthLoss on a depth map (the seed's call inside GenericLoss), or on raw depth logits
    with ``transform`` (the transform is then applied to the gathered active values only:
    what masked slots and unread pixels hold reaches neither the loss nor its gradient)."""
    _check_map("output", depth)
    b, c, h, w = depth.shape
    _check_ind(ind, b, h * w)
    mm = ind.shape[1]
    # Per-class depth gathers the slot's class channel; a single channel ignores cat.
    _check_cat(cat, ind, c if c > 1 else None)
    check_tensor("target", target, ndim=(2, 3))
    if tuple(target.shape) not in ((b, mm), (b, mm, 1)):
        raise ValueError(f"target must have shape {(b, mm)} or {(b, mm, 1)}, got {tuple(target.shape)}")
    check_same_dtype("output", depth, "target", target)
    m = _mask_as("mask", mask, [(b, mm), (b, mm, 1)], depth.dtype).reshape(b, mm)
    pred = _gather_feat(depth, ind)
    pred = (pred.gather(2, cat.unsqueeze(2)) if c > 1 else pred).reshape(b, mm)
    if transform:
        pred = depth_transform(torch.where(m > 0, pred, torch.zeros_like(pred)))
    return _masked_l1_mean(pred, target.reshape(b, mm), m)


def depth_l1(
    output: torch.Tensor,
    target: torch.Tensor,
    ind: torch.Tensor,
    mask: torch.Tensor,
    cat: torch.Tensor,
) -> torch.Tensor:
    """The seed's ``DepthLoss`` on raw depth logits, with the depth transform applied inside.

    ``depth = depth_transform(output) = 1 / (sigmoid(output) + 1e-6) - 1`` (the seed
    applies it in ``GenericLoss._sigmoid_output``); the slot's depth is read at
    ``ind`` and, for a per-class head (C > 1), at channel ``cat``; the loss is
    ``sum mask |depth - target| / (sum mask + 1e-4)``. Argument order is the seed's:
    ``(output, target, ind, mask, cat)``. ``mask`` and ``target`` may be (B, M) or
    (B, M, 1) (CenterFusion's ``dep_mask`` and ``dep`` are (M, 1)); both mean the same.

    Args:
        output: (B, C, H, W) raw depth logits (before the transform), C = 1 or one per class.
        target: (B, M) or (B, M, 1) metric depths, same dtype.
        ind: (B, M) int64 flat spatial indices.
        mask: (B, M) or (B, M, 1) weights in [0, 1].
        cat: (B, M) int64 classes, in [0, C) when C > 1 (ignored when C == 1).

    Returns:
        0-d tensor of the output's dtype; 0 when the mask is all zero.

    Reference: Zhou et al., "Objects as Points", 2019; Nabati & Qi, "CenterFusion", WACV 2021.
    """
    return _depth_l1_of(output, target, ind, mask, cat, transform=True)


def _bce_with_logits(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    # (1 - z) softplus(x) + z softplus(-x): two non-negative terms, no cancellation.
    zero = torch.zeros_like(x)
    return (1 - z) * torch.logaddexp(zero, x) + z * torch.logaddexp(zero, -x)


def weighted_bce(
    output: torch.Tensor,
    mask: torch.Tensor,
    ind: torch.Tensor,
    target: torch.Tensor,
) -> torch.Tensor:
    """The seed's ``WeightedBCELoss`` (nuScenes attribute head): gathered, masked BCE with logits.

    ``sum mask * BCE(output[b, :, ind[b, m]], target) / (sum mask + 1e-4)`` with the
    mask per element (CenterFusion's ``nuscenes_att_mask`` is (M, F): only the
    attributes of the object's class group are trained). A (B, M) mask is expanded to
    (B, M, F). Argument order is the seed's: ``(output, mask, ind, target)``.

    Args:
        output: (B, F, H, W) float attribute logits.
        mask: (B, M, F) or (B, M) weights in [0, 1].
        ind: (B, M) int64 flat spatial indices.
        target: (B, M, F) targets in [0, 1], same dtype.

    Returns:
        0-d tensor of the output's dtype; 0 when the mask is all zero.

    Reference: Nabati & Qi, "CenterFusion", WACV 2021 (``WeightedBCELoss``).
    """
    _check_map("output", output)
    b, f, h, w = output.shape
    _check_ind(ind, b, h * w)
    mm = ind.shape[1]
    check_tensor("target", target, ndim=3)
    if tuple(target.shape) != (b, mm, f):
        raise ValueError(f"target must have shape (B, M, F) = {(b, mm, f)}, got {tuple(target.shape)}")
    check_same_dtype("output", output, "target", target)
    m = _mask_as("mask", mask, [(b, mm, f), (b, mm)], output.dtype)
    if m.dim() == 2:
        m = m.unsqueeze(2).expand(b, mm, f)
    active = m > 0
    check_values_in("target", torch.where(active, target, torch.zeros_like(target)), 0.0, 1.0)
    pred = torch.where(active, _gather_feat(output, ind), torch.zeros_like(target))
    z = torch.where(active, target, torch.zeros_like(target))
    loss = torch.where(active, m * _bce_with_logits(pred, z), torch.zeros_like(z))
    return loss.sum() / (m.sum() + NORM_EPS)


# --------------------------------------------------------------------------- rotation bins


def _check_rot_args(
    output: torch.Tensor, mask: torch.Tensor, ind: torch.Tensor, rotbin: torch.Tensor, rotres: torch.Tensor
) -> torch.Tensor:
    _check_map("output", output)
    b, ch, h, w = output.shape
    if ch != 8:
        raise ValueError(
            "output must have 8 channels [bin1 logit0, bin1 logit1, bin1 sin, bin1 cos, "
            f"bin2 logit0, bin2 logit1, bin2 sin, bin2 cos], got shape {tuple(output.shape)}"
        )
    _check_ind(ind, b, h * w)
    mm = ind.shape[1]
    check_tensor("rotbin", rotbin, floating=False, dtypes=INDEX_DTYPES, ndim=3)
    if tuple(rotbin.shape) != (b, mm, 2):
        raise ValueError(f"rotbin must have shape (B, M, 2) = {(b, mm, 2)}, got {tuple(rotbin.shape)}")
    check_values_in("rotbin", rotbin, 0, 1)
    check_tensor("rotres", rotres, ndim=3)
    if tuple(rotres.shape) != (b, mm, 2):
        raise ValueError(f"rotres must have shape (B, M, 2) = {(b, mm, 2)}, got {tuple(rotres.shape)}")
    check_same_dtype("output", output, "rotres", rotres)
    return _mask_as("mask", mask, [(b, mm), (b, mm, 1)], output.dtype).reshape(b, mm)


def _bin_parts(pred: torch.Tensor, rotbin: torch.Tensor, rotres: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-slot, per-bin cross-entropy (B, M, 2) and sin + cos smooth L1 (B, M, 2)."""
    b, mm = pred.shape[:2]
    per_bin = pred.reshape(b, mm, 2, 4)  # [logit0, logit1, sin, cos] for each bin
    ce = -torch.log_softmax(per_bin[..., 0:2], dim=-1).gather(-1, rotbin.unsqueeze(-1)).squeeze(-1)
    want = torch.stack((torch.sin(rotres), torch.cos(rotres)), dim=-1)
    res = F.smooth_l1_loss(per_bin[..., 2:4], want, reduction="none", beta=1.0).sum(-1)
    return ce, res


def bin_rot(
    output: torch.Tensor,
    mask: torch.Tensor,
    ind: torch.Tensor,
    rotbin: torch.Tensor,
    rotres: torch.Tensor,
) -> torch.Tensor:
    """Two-bin observation-angle loss of CenterNet 3D (``BinRotLoss``), masked as intended.

    Channel layout of ``output`` (the seed's, kept exactly):
    ``[bin1 logit0, bin1 logit1, bin1 sin, bin1 cos, bin2 logit0, bin2 logit1, bin2 sin, bin2 cos]``;
    ``logit1`` scores "the angle is in this bin" (``rotbin == 1``). Bin 1 is centred at
    ``-pi/2`` and bin 2 at ``+pi/2`` (see ``encode_alpha_to_bins``).

    With ``m`` the slot mask and, per bin k,
    ``CE_k = sum m * CE(logits_k, rotbin_k) / sum m`` and
    ``R_k = sum m rotbin_k (SL1(sin_k - sin res_k) + SL1(cos_k - cos res_k)) / sum m rotbin_k``
    (smooth L1 with beta = 1; 0 when a denominator is 0), the loss is
    ``CE_1 + CE_2 + R_1 + R_2``. This is the seed's loss when every slot is unmasked;
    the seed itself zeroes masked logits and still averages their ``log 2`` over all
    B*M slots, and selects residual slots by ``rotbin`` alone (``seed_bin_rot``).

    Args:
        output: (B, 8, H, W) float rotation head.
        mask: (B, M) or (B, M, 1) weights in [0, 1] (``rot_mask``).
        ind: (B, M) int64 flat spatial indices.
        rotbin: (B, M, 2) int64 in {0, 1}: is the angle in bin 1 / bin 2.
        rotres: (B, M, 2) residual angle to each bin centre, same dtype as ``output``.

    Returns:
        0-d tensor of the output's dtype; 0 when the mask is all zero.

    Reference: Zhou et al., "Objects as Points", 2019 (appendix: 8-scalar orientation);
    Mousavian et al., "3D Bounding Box Estimation Using Deep Learning and Geometry", CVPR 2017 (MultiBin).
    """
    m = _check_rot_args(output, mask, ind, rotbin, rotres)
    active = m > 0
    pred = torch.where(
        active.unsqueeze(-1), _gather_feat(output, ind), torch.zeros(1, dtype=output.dtype, device=output.device)
    )
    res_t = torch.where(active.unsqueeze(-1), rotres, torch.zeros_like(rotres))
    ce, res = _bin_parts(pred, rotbin, res_t)
    ce_loss = _safe_div((m.unsqueeze(-1) * ce).sum(), m.sum())
    w = m.unsqueeze(-1) * rotbin.to(m.dtype)
    res_loss = _safe_div((w * res).sum((0, 1)), w.sum((0, 1))).sum()
    return ce_loss + res_loss


def seed_bin_rot(
    output: torch.Tensor,
    mask: torch.Tensor,
    ind: torch.Tensor,
    rotbin: torch.Tensor,
    rotres: torch.Tensor,
) -> torch.Tensor:
    """The seed's ``BinRotLoss`` as written (``compute_rot_loss``), quirks included.

    Differs from ``bin_rot`` where some slot is masked:
    * bin classification multiplies the logits by the mask and averages the
      cross-entropy over *all* B*M slots, so every masked slot adds ``log 2`` (two zero
      logits) to the sum and the mean is diluted by padding;
    * residual slots are chosen by ``rotbin == 1`` alone, ignoring the mask (harmless
      only when padding slots have ``rotbin == 0``, as the seed's dataset writes them).
    With no slots at all (M == 0) the seed's mean is 0/0 = nan; so is this.

    Args:
        output: (B, 8, H, W) float rotation head (layout as in ``bin_rot``).
        mask: (B, M) or (B, M, 1) weights in [0, 1].
        ind: (B, M) int64 flat spatial indices.
        rotbin: (B, M, 2) int64 in {0, 1}.
        rotres: (B, M, 2) residuals, same dtype as ``output``.

    Returns:
        0-d tensor of the output's dtype.

    Reference: Nabati & Qi, CenterFusion ``src/lib/model/losses.py`` (seed 003).
    """
    m = _check_rot_args(output, mask, ind, rotbin, rotres)
    pred = _gather_feat(output, ind)
    logits = pred.reshape(*pred.shape[:2], 2, 4)[..., 0:2] * m[..., None, None]
    zeroed = torch.cat((logits[..., 0, :], pred[..., 2:4], logits[..., 1, :], pred[..., 6:8]), dim=-1)
    ce, res = _bin_parts(zeroed, rotbin, rotres)
    ce_loss = ce.mean(dim=(0, 1)).sum()
    sel = rotbin.to(pred.dtype)
    res_loss = _safe_div((sel * res).sum((0, 1)), sel.sum((0, 1))).sum()
    return ce_loss + res_loss


def encode_alpha_to_bins(alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """CenterNet 3D / CenterFusion bin targets of an observation angle (``_add_rot``).

    ``alpha`` is first wrapped into [-pi, pi) (the seed assumes it lies in [-pi, pi];
    in-range values are unchanged, and ``pi`` maps to ``-pi``, which has the same bins).
    Then, as in the seed's dataset:
    * bin 1 (centre -pi/2) is active iff ``alpha < pi/6 or alpha > 5pi/6``, residual ``alpha + pi/2``;
    * bin 2 (centre +pi/2) is active iff ``alpha > -pi/6 or alpha < -5pi/6``, residual ``alpha - pi/2``.
    Each bin spans ``pi/2 + pi/6 = 2pi/3`` either side of its centre; they overlap on
    (-pi/6, pi/6) and on |alpha| > 5pi/6, and every angle is in at least one bin.
    The residual is not wrapped (up to 3pi/2 in magnitude); only its sin and cos are
    learned. An inactive bin has rotbin 0 and residual 0.

    Args:
        alpha: (*) float tensor of angles in radians.

    Returns:
        rotbin: (*, 2) int64 in {0, 1}; rotres: (*, 2) residuals, alpha's dtype.

    Reference: Zhou et al., "Objects as Points", 2019 (CenterNet ``ddd`` dataset); Nabati & Qi, CenterFusion, 2021.
    """
    check_tensor("alpha", alpha)
    two_pi = 2 * math.pi
    outside = (alpha < -math.pi) | (alpha >= math.pi)
    a = torch.where(outside, alpha - two_pi * torch.floor((alpha + math.pi) / two_pi), alpha)
    in1 = (a < math.pi / 6) | (a > 5 * math.pi / 6)
    in2 = (a > -math.pi / 6) | (a < -5 * math.pi / 6)
    rotbin = torch.stack((in1, in2), dim=-1).to(torch.int64)
    zero = torch.zeros_like(a)
    rotres = torch.stack(
        (torch.where(in1, a - BIN_CENTRES[0], zero), torch.where(in2, a - BIN_CENTRES[1], zero)), dim=-1
    )
    return rotbin, rotres


def decode_alpha_from_bins(rot: torch.Tensor) -> torch.Tensor:
    """Observation angle from an 8-channel rotation prediction (CenterNet's ``get_alpha``).

    The bin whose "in this bin" logit is larger wins (``rot[..., 1] > rot[..., 5]``
    chooses bin 1; ties go to bin 2); the angle is ``atan2(sin, cos)`` of that bin plus
    its centre, wrapped into [-pi, pi).

    Args:
        rot: (*, 8) float tensor in the ``bin_rot`` channel layout.

    Returns:
        (*) angles in [-pi, pi), rot's dtype.

    Reference: Zhou et al., "Objects as Points", 2019 (``ddd_utils.get_alpha``).
    """
    check_tensor("rot", rot)
    if rot.dim() < 1 or rot.shape[-1] != 8:
        raise ValueError(f"rot must have shape (*, 8), got {tuple(rot.shape)}")
    a1 = torch.atan2(rot[..., 2], rot[..., 3]) + BIN_CENTRES[0]
    a2 = torch.atan2(rot[..., 6], rot[..., 7]) + BIN_CENTRES[1]
    a = torch.where(rot[..., 1] > rot[..., 5], a1, a2)
    two_pi = 2 * math.pi
    return a - two_pi * torch.floor((a + math.pi) / two_pi)


# --------------------------------------------------------------------------- GenericLoss


def _need(batch: Mapping[str, torch.Tensor], key: str, head: str) -> torch.Tensor:
    if key not in batch:
        raise ValueError(f"batch must contain {key!r} for head {head!r}")
    return batch[key]


def _transform_stack(output: Mapping[str, torch.Tensor], sigmoid_dep_sec: bool) -> dict[str, torch.Tensor]:
    """The seed's ``_sigmoid_output``, on a copy: heatmaps to clamped probabilities, depth logits to depths."""
    out = dict(output)
    for key in ("hm", "hm_hp"):
        if key in out:
            out[key] = clamped_sigmoid(out[key])
    if "dep" in out:
        out["dep"] = depth_transform(out["dep"])
    if "dep_sec" in out and sigmoid_dep_sec:
        out["dep_sec"] = depth_transform(out["dep_sec"])
    return out


def _head_loss(
    head: str,
    out: Mapping[str, torch.Tensor],
    batch: Mapping[str, torch.Tensor],
    rot_loss: Callable[..., torch.Tensor],
) -> torch.Tensor:
    """One head's loss on one transformed stack, with the seed's batch keys."""
    if head == "hm":
        return fast_focal(
            out["hm"],
            _need(batch, "hm", head),
            _need(batch, "ind", head),
            _need(batch, "mask", head),
            _need(batch, "cat", head),
        )
    if head == "hm_hp":
        return fast_focal(
            out["hm_hp"],
            _need(batch, "hm_hp", head),
            _need(batch, "hp_ind", head),
            _need(batch, "hm_hp_mask", head),
            _need(batch, "joint", head),
        )
    if head == "hp_offset":
        return reg_weighted_l1(
            out["hp_offset"],
            _need(batch, "hp_offset_mask", head),
            _need(batch, "hp_ind", head),
            _need(batch, "hp_offset", head),
        )
    if head in ("dep", "dep_sec"):
        return _depth_l1_of(
            out[head],
            _need(batch, "dep", head),
            _need(batch, "ind", head),
            _need(batch, "dep_mask", head),
            _need(batch, "cat", head),
        )
    if head in ("rot", "rot_sec"):
        return rot_loss(
            out[head],
            _need(batch, "rot_mask", head),
            _need(batch, "ind", head),
            _need(batch, "rotbin", head),
            _need(batch, "rotres", head),
        )
    if head == "nuscenes_att":
        return weighted_bce(
            out[head], _need(batch, "nuscenes_att_mask", head), _need(batch, "ind", head), _need(batch, head, head)
        )
    return reg_weighted_l1(
        out[head], _need(batch, head + "_mask", head), _need(batch, "ind", head), _need(batch, head, head)
    )


def _named_errors(where: str, compute: Callable[[], _T]) -> _T:
    """``compute()``, with a ValueError prefixed by the head or stack it concerns (the inner
    losses name their own arguments, ``output`` / ``target``, not the batch keys)."""
    try:
        return compute()
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _check_generic_args(
    outputs: Sequence[Mapping[str, torch.Tensor]],
    batch: Mapping[str, torch.Tensor],
    weights: Mapping[str, float],
    heads: Sequence[str],
) -> list[str]:
    """Validate the call; return the heads present in the outputs, in ``heads`` order."""
    if isinstance(outputs, Mapping) or not isinstance(outputs, Sequence) or len(outputs) == 0:
        raise ValueError("outputs must be a non-empty list with one dict of head tensors per stack")
    if not all(isinstance(o, Mapping) for o in outputs):
        raise ValueError("outputs must hold one dict (head name -> tensor) per stack")
    if not isinstance(batch, Mapping):
        raise ValueError(f"batch must be a dict of tensors, got {type(batch).__name__}")
    if not isinstance(weights, Mapping):
        raise ValueError(f"weights must be a dict (head name -> float), got {type(weights).__name__}")
    unknown = [h for h in heads if h not in LOSS_ORDER]
    if unknown:
        raise ValueError(f"heads must be among {LOSS_ORDER}, got unknown {unknown}")
    present = [h for h in heads if h in outputs[0]]
    for s, o in enumerate(outputs[1:], start=1):
        other = [h for h in heads if h in o]
        if other != present:
            raise ValueError(f"outputs[{s}] must have the heads of outputs[0] {present}, got {other}")
    # hp_offset is trained only alongside the keypoint heatmap, as in the seed.
    present = [h for h in present if h != "hp_offset" or "hm_hp" in outputs[0]]
    missing = [h for h in present if h not in weights]
    if missing:
        raise ValueError(f"weights must have an entry for every head in the outputs; missing {missing}")
    for h in present:
        check_real(f"weights[{h!r}]", weights[h])
    return present


def generic_loss(
    outputs: Sequence[Mapping[str, torch.Tensor]],
    batch: Mapping[str, torch.Tensor],
    *,
    weights: Mapping[str, float],
    heads: Sequence[str] = LOSS_ORDER,
    sigmoid_dep_sec: bool = False,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """CenterFusion's ``GenericLoss``: per-head losses averaged over stacks, weighted and summed.

    For each stack ``s`` the raw outputs are transformed as the seed does at the top of
    its loop (on a copy; the caller's dicts are not modified): ``hm`` and ``hm_hp`` by
    ``clamped_sigmoid``, ``dep`` by ``depth_transform`` (``dep_sec`` too when
    ``sigmoid_dep_sec``). Head ``h``'s loss is ``sum_s loss_h(stack s) / S``; the total is
    ``sum_h weights[h] * loss_h`` in ``heads`` order. Heads absent from the outputs and
    heads with weight 0 are skipped (not computed, not in the per-head dict). Every
    stack must carry the same heads.

    Batch keys (the seed's), per head:
    * ``hm``: ``fast_focal`` with ``hm``, ``ind``, ``mask``, ``cat``.
    * ``hm_hp``: ``fast_focal`` with ``hm_hp``, ``hp_ind``, ``hm_hp_mask``, ``joint``.
    * ``hp_offset`` (only when ``hm_hp`` is an output): ``reg_weighted_l1`` with
      ``hp_offset_mask``, ``hp_ind``, ``hp_offset``.
    * ``dep``, ``dep_sec``: depth L1 with ``dep``, ``ind``, ``dep_mask``, ``cat``.
    * ``reg``, ``wh``, ``tracking``, ``ltrb``, ``ltrb_amodal``, ``hps``, ``dim``,
      ``amodel_offset``, ``velocity``: ``reg_weighted_l1`` with ``<head>_mask``, ``ind``, ``<head>``.
    * ``rot``, ``rot_sec``: ``bin_rot`` with ``rot_mask``, ``ind``, ``rotbin``, ``rotres``.
    * ``nuscenes_att``: ``weighted_bce`` with ``nuscenes_att_mask``, ``ind``, ``nuscenes_att``.

    Args:
        outputs: one dict per stack, head name -> raw (B, D_h, H, W) head output.
        batch: the targets, keyed as above.
        weights: head name -> weight (the seed's ``opt.weights``); every head present
            in the outputs needs one.
        heads: the configured heads (the seed's ``opt.heads``), a subset of ``LOSS_ORDER``;
            output keys outside it are ignored.
        sigmoid_dep_sec: apply the depth transform to ``dep_sec`` (the seed's option, off by default).

    Returns:
        ``(total, per_head)``: a 0-d tensor and a dict head -> 0-d stack-averaged loss.

    Reference: Nabati & Qi, "CenterFusion", WACV 2021 (``trainer.GenericLoss``); Zhou et al., 2019/2020.
    """
    present = _check_generic_args(outputs, batch, weights, heads)
    active = [h for h in present if float(weights[h]) != 0.0]
    n_stacks = len(outputs)
    per_head: dict[str, torch.Tensor] = {}
    for s, output in enumerate(outputs):
        view = _named_errors(f"outputs[{s}]", lambda: _transform_stack(output, sigmoid_dep_sec))
        for h in active:
            term = _named_errors(f"head {h!r} (outputs[{s}][{h!r}] and its batch entries)",
                                 lambda: _head_loss(h, view, batch, bin_rot)) / n_stacks
            per_head[h] = term if h not in per_head else per_head[h] + term
    if not active:
        like = next((t for t in outputs[0].values() if isinstance(t, torch.Tensor)), None)
        zero = torch.zeros((), dtype=like.dtype, device=like.device) if like is not None else torch.zeros(())
        return zero, per_head
    total = sum((float(weights[h]) * per_head[h] for h in active[1:]), float(weights[active[0]]) * per_head[active[0]])
    return total, per_head


def seed_generic_loss(
    outputs: Sequence[dict[str, torch.Tensor]],
    batch: Mapping[str, torch.Tensor],
    *,
    weights: Mapping[str, float],
    heads: Sequence[str] = LOSS_ORDER,
    sigmoid_dep_sec: bool = False,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The seed's ``GenericLoss.forward`` as written, quirks included.

    Same keys and arithmetic as ``generic_loss``, except:
    * ``_sigmoid_output`` assigns into ``outputs[s]``: after the call the caller's dicts
      hold probabilities and depths instead of logits, and a second call on the same
      outputs applies the sigmoid (and the depth transform) twice;
    * rotation heads use ``seed_bin_rot`` (masked slots leak ``log 2`` into the bin loss);
    * heads with weight 0 are still computed and enter the total as ``0 * loss``
      (a nan head loss makes the total nan).

    Args:
        outputs: one mutable dict per stack (modified in place).
        batch: as in ``generic_loss``.
        weights: as in ``generic_loss``.
        heads: as in ``generic_loss``.
        sigmoid_dep_sec: as in ``generic_loss``.

    Returns:
        ``(total, per_head)`` as in ``generic_loss``, weight-0 heads included in ``per_head``.

    Reference: Nabati & Qi, CenterFusion ``src/lib/trainer.py`` (seed 003).
    """
    present = _check_generic_args(outputs, batch, weights, heads)
    n_stacks = len(outputs)
    per_head: dict[str, torch.Tensor] = {}
    for output in outputs:
        output.update(_transform_stack(output, sigmoid_dep_sec))
        for h in present:
            term = _head_loss(h, output, batch, seed_bin_rot) / n_stacks
            per_head[h] = term if h not in per_head else per_head[h] + term
    if not present:
        like = next((t for t in outputs[0].values() if isinstance(t, torch.Tensor)), None)
        zero = torch.zeros((), dtype=like.dtype, device=like.device) if like is not None else torch.zeros(())
        return zero, per_head
    total = sum(
        (float(weights[h]) * per_head[h] for h in present[1:]), float(weights[present[0]]) * per_head[present[0]]
    )
    return total, per_head
