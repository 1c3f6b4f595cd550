"""Mutants of the sigmoid family: mistakes seen in real ports of BCE and focal loss."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from impls import focal as ref
from impls._validate import check_reduction
from tests.mutants import Mutant


def bce_keywords(core):  # type: ignore[no-untyped-def]
    """The canonical keywords around an elementwise BCE mutant ``core(x, z)``, applied as the
    reference does, so the mutant differs from the reference only in its planted defect.

    BCE is linear in z, so pos_weight splits it as (1 - z) core(x, 0) + pw z core(x, 1)."""

    @functools.wraps(core)
    def wrapped(logits, targets, *, weight=None, pos_weight=None, reduction="none"):  # type: ignore[no-untyped-def]
        check_reduction(reduction)
        if pos_weight is None:
            loss = core(logits, targets)
        else:
            loss = (1 - targets) * core(logits, torch.zeros_like(targets)) + pos_weight * targets * core(
                logits, torch.ones_like(targets))
        if weight is not None:
            loss = weight * loss
        return ref._reduce(loss, reduction)

    return wrapped


def focal_keywords(core):  # type: ignore[no-untyped-def]
    """``reduction`` around an elementwise focal mutant ``core(x, z, alpha=, gamma=)``."""

    @functools.wraps(core)
    def wrapped(logits, targets, *, alpha=0.25, gamma=2.0, reduction="none"):  # type: ignore[no-untyped-def]
        check_reduction(reduction)
        return ref._reduce(core(logits, targets, alpha=alpha, gamma=gamma), reduction)

    return wrapped


def _bce_naive(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    # log(1 + exp(x)) overflows to inf for x > 88 (float32) / 709 (float64).
    return torch.log(1 + torch.exp(x)) - x * z


@bce_keywords
def bce_naive_softplus(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return _bce_naive(logits, targets)


@bce_keywords
def bce_tf_formula(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    # The TF/OpenPCDet formula through autograd: clamp passes gradient 1 at x == 0
    # and |x|' is 0 there, so d/dx at 0 is 1 - z instead of 1/2 - z.
    return torch.clamp(logits, min=0) - logits * targets + torch.log1p(torch.exp(-torch.abs(logits)))


@bce_keywords
def bce_clipped_probs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    p = torch.sigmoid(logits).clamp(1e-7, 1 - 1e-7)
    return -(targets * torch.log(p) + (1 - targets) * torch.log(1 - p))


@bce_keywords
def bce_float32_compute(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return ref.sigmoid_bce(logits.float(), targets.float()).to(logits.dtype)


@bce_keywords
def bce_returns_float32(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return ref.sigmoid_bce(logits, targets).float()


@bce_keywords
def bce_clamps_logits_in_place(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    logits.clamp_(-80.0, 80.0)  # "avoid overflow" -- on the caller's tensor
    return ref.sigmoid_bce(logits, targets)


@bce_keywords
def bce_broadcasts_targets(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    x, z = torch.broadcast_tensors(logits, targets) if logits.shape != targets.shape else (logits, targets)
    return (1 - z) * F.softplus(x) + z * F.softplus(-x) if x.dim() else ref.sigmoid_bce(x, z)


@bce_keywords
def bce_dropout_left_on(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    # A dropout on the logits left in training mode: random output for a fixed input.
    return ref.sigmoid_bce(F.dropout(logits, p=0.2, training=True), targets)


@focal_keywords
def focal_alpha_wrong_class(logits, targets, *, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    flipped = None if alpha is None else 1 - alpha
    return ref.sigmoid_focal(logits, targets, alpha=flipped, gamma=gamma) if alpha is not None else ref.sigmoid_focal(logits, targets, alpha=None, gamma=gamma)


@focal_keywords
def focal_torchvision_style(logits, targets, *, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    # The common port: (1 - p_t) ** gamma by subtraction and a plain pow. Forward is
    # fine; for gamma < 1 the gradient is 0 ** (gamma - 1) * 0 = nan where p_t == 1.
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha is not None:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss


@focal_keywords
def focal_factor_from_mean(logits, targets, *, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    # Seed 002's pattern: the focal factor computed from the reduced (mean) loss.
    ce = ref.sigmoid_bce(logits, targets)
    p_t = torch.exp(-ce.mean()) if ce.numel() else ce.new_ones(())
    loss = (1 - p_t) ** gamma * ce
    if alpha is not None:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss


@focal_keywords
def focal_pt_power(logits, targets, *, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    p = torch.sigmoid(logits)
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = p_t**gamma * ref.sigmoid_bce(logits, targets)
    if alpha is not None:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss


@focal_keywords
def focal_alpha_none_as_default(logits, targets, *, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    return ref.sigmoid_focal(logits, targets, alpha=0.25 if alpha is None else alpha, gamma=gamma)


@focal_keywords
def focal_detached_factor(logits, targets, *, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    factor = ref.sigmoid_focal(logits, targets, alpha=None, gamma=gamma) / ref.sigmoid_bce(logits, targets).clamp_min(1e-300)
    loss = factor.detach() * ref.sigmoid_bce(logits, targets)
    if alpha is not None:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss


@focal_keywords
def focal_hard_threshold_targets(logits, targets, *, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    # Treats soft targets as labels for p_t and alpha_t (z > 0.5), keeping BCE soft.
    hard = (targets > 0.5).to(logits.dtype)
    p = torch.sigmoid(logits)
    p_t = p * hard + (1 - p) * (1 - hard)
    loss = ref.sigmoid_bce(logits, targets) * (1 - p_t) ** gamma
    if alpha is not None:
        loss = (alpha * hard + (1 - alpha) * (1 - hard)) * loss
    return loss


@focal_keywords
def focal_float32_compute(logits, targets, *, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    return ref.sigmoid_focal(logits.float(), targets.float(), alpha=alpha, gamma=gamma).to(logits.dtype)


@focal_keywords
def focal_smooths_targets_in_place(logits, targets, *, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    targets.clamp_(0.0, 1.0)  # "sanitise" the labels, writing into the caller's tensor
    return ref.sigmoid_focal(logits, targets, alpha=alpha, gamma=gamma)


@focal_keywords
def focal_gamma_ignored_when_alpha_none(logits, targets, *, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    # A branch for "no alpha" that forgets the focal factor (plain BCE).
    if alpha is None:
        return ref.sigmoid_bce(logits, targets)
    return ref.sigmoid_focal(logits, targets, alpha=alpha, gamma=gamma)


@focal_keywords
def focal_gamma_floor(logits, targets, *, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    # "non-zero power for gradient stability": 1.000001 - p_t, as in a commented-out ultralytics line.
    p = torch.sigmoid(logits)
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ref.sigmoid_bce(logits, targets) * (1.000001 - p_t) ** gamma
    if alpha is not None:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss


@focal_keywords
def focal_gamma0_shortcut(logits, targets, *, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    if gamma == 0:
        return ref.sigmoid_bce(logits, targets)
    return ref.sigmoid_focal(logits, targets, alpha=alpha, gamma=gamma)


def focal_mean_reduced(logits, targets, *, alpha=0.25, gamma=2.0, reduction="mean"):  # type: ignore[no-untyped-def]
    # reduction="mean" by default, as many ports have it: a scalar instead of elementwise values.
    return ref.sigmoid_focal(logits, targets, alpha=alpha, gamma=gamma, reduction=reduction)


@focal_keywords
def focal_one_sided_clamp(logits, targets, *, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    # Guards log(p) against 0 but forgets log(1 - p): asymmetric in the two classes.
    p = torch.sigmoid(logits)
    ce = -(targets * torch.log(p.clamp(min=1e-12)) + (1 - targets) * torch.log(1 - p))
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha is not None:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss


@focal_keywords
def focal_dropout(logits, targets, *, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    return ref.sigmoid_focal(F.dropout(logits, p=0.2, training=True), targets, alpha=alpha, gamma=gamma)


def weighted_normalised(logits, targets, weights, *, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    # Normalises the anchor weights by their sum inside the loss (callers already do).
    w = weights / weights.sum().clamp_min(1e-12)
    return ref.sigmoid_focal(logits, targets, alpha=alpha, gamma=gamma) * w.unsqueeze(-1)


def weighted_squared(logits, targets, weights, *, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    # The weight applied twice: in the focal weight and again on the loss.
    return ref.weighted_sigmoid_focal(logits, targets, weights, alpha=alpha, gamma=gamma) * weights.unsqueeze(-1)


def weighted_unweighted_2d(logits, targets, weights, *, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    # Only handles the (B, A, C) layout; the 1-D weights of an (A, C) input are dropped.
    out = ref.sigmoid_focal(logits, targets, alpha=alpha, gamma=gamma)
    return out * weights.unsqueeze(-1) if weights.dim() == 2 else out


def weighted_mutates_weights(logits, targets, weights, *, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    weights.unsqueeze_(-1)  # in-place reshape of the caller's tensor
    out = ref.sigmoid_focal(logits, targets, alpha=alpha, gamma=gamma) * weights
    weights.squeeze_(-1)
    return out


def weighted_naive_pow(logits, targets, weights, *, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    return focal_torchvision_style(logits, targets, alpha=alpha, gamma=gamma) * weights.unsqueeze(-1)


@bce_keywords
def bce_cpu_constant(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    # A helper tensor built without device=: fine on the CPU, a device mismatch on CUDA/MPS.
    one = torch.ones(logits.shape, dtype=logits.dtype)
    return ref.sigmoid_bce(logits, targets) * one


@focal_keywords
def focal_cpu_constant(logits, targets, *, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    one = torch.ones(logits.shape, dtype=logits.dtype)
    return ref.sigmoid_focal(logits, targets, alpha=alpha, gamma=gamma) * one


def weighted_cpu_constant(logits, targets, weights, *, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    one = torch.ones(logits.shape, dtype=logits.dtype)
    return ref.weighted_sigmoid_focal(logits, targets, weights, alpha=alpha, gamma=gamma) * one


def weighted_dropout(logits, targets, weights, *, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    return ref.weighted_sigmoid_focal(F.dropout(logits, p=0.2, training=True), targets, weights, alpha=alpha, gamma=gamma)


def weighted_returns_float32(logits, targets, weights, *, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    return ref.weighted_sigmoid_focal(logits, targets, weights, alpha=alpha, gamma=gamma).float()


@focal_keywords
def focal_broadcasts_targets(logits, targets, *, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    return ref.sigmoid_focal(*torch.broadcast_tensors(logits, targets), alpha=alpha, gamma=gamma)


@bce_keywords
def bce_unchecked_targets(logits, targets):  # type: ignore[no-untyped-def]
    # The stable formula without the domain check: targets outside [0, 1] give a value.
    return (1 - targets) * F.softplus(logits) + targets * F.softplus(-logits)


@focal_keywords
def focal_unchecked_targets(logits, targets, *, alpha=0.25, gamma=2.0):  # type: ignore[no-untyped-def]
    # The plain formula without the domain checks: targets outside [0, 1] give a value.
    ce = (1 - targets) * F.softplus(logits) + targets * F.softplus(-logits)
    p = torch.sigmoid(logits)
    loss = ce * (p + targets - 2 * p * targets).abs() ** gamma
    if alpha is not None:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss


def weighted_broadcasts_weights(logits, targets, weights, **kwargs):  # type: ignore[no-untyped-def]
    # Expands weights of another broadcastable shape to the anchors' instead of rejecting them.
    try:
        weights = weights.expand(logits.shape[:-1])
    except RuntimeError:
        pass
    return ref.weighted_sigmoid_focal(logits, targets, weights, **kwargs)


def bce_pos_weight_on_whole_loss(logits, targets, *, weight=None, pos_weight=None, reduction="none"):  # type: ignore[no-untyped-def]
    # pos_weight scales the whole BCE of an element by pw z + (1 - z), not its positive term: the same
    # for hard targets, wrong for soft ones (label smoothing, distillation).
    loss = ref.sigmoid_bce(logits, targets, weight=weight, reduction="none")
    if pos_weight is not None:
        loss = loss * (pos_weight * targets + (1 - targets))
    check_reduction(reduction)
    return ref._reduce(loss, reduction)


def focal_integer_gamma(logits, targets, *, alpha=0.25, gamma=2.0, reduction="none"):  # type: ignore[no-untyped-def]
    # The focal factor as a product of int(gamma) copies of 1 - p_t: a non-integer gamma is truncated.
    return ref.sigmoid_focal(logits, targets, alpha=alpha, gamma=float(int(gamma)), reduction=reduction)


B, F_, W = "sigmoid_bce", "sigmoid_focal", "weighted_sigmoid_focal"
_DEVICE = ("cuda_matches_cpu", "mps_matches_cpu")

MUTANTS = [
    Mutant("pos_weight_on_whole_loss", B, bce_pos_weight_on_whole_loss,
           "pos_weight scales the whole loss by pw z + 1 - z: right for hard targets, wrong for soft ones",
           ("agrees_with_numpy", "honours_pos_weight")),
    Mutant("unchecked_targets", B, bce_unchecked_targets, "accepts targets outside [0, 1]", ("rejects_invalid_inputs",)),
    Mutant("unchecked_targets", F_, focal_unchecked_targets, "accepts targets outside [0, 1]", ("rejects_invalid_inputs",)),
    Mutant("broadcasts_weights", W, weighted_broadcasts_weights, "silently broadcasts weights of another shape",
           ("rejects_shape_mismatch",)),
    Mutant("naive_softplus", B, bce_naive_softplus, "log(1 + exp(x)) overflows for large logits",
           ("agrees_with_numpy", "agrees_with_exact", "agrees_with_tensorflow", "finite_gradients", "label_flip_symmetry",
            "error_profile", "low_precision_matches_float32")),
    Mutant("cpu_constant", B, bce_cpu_constant, "builds a tensor on the CPU whatever the input's device", _DEVICE),
    Mutant("tf_formula_autograd", B, bce_tf_formula, "autograd through max(x,0) and |x| is wrong at x == 0",
           ("gradient_matches_analytic", "gradcheck_float64")),
    Mutant("clipped_probs", B, bce_clipped_probs, "probabilities clipped to [1e-7, 1-1e-7] cap the loss at 16.1",
           ("agrees_with_numpy", "agrees_with_exact")),
    Mutant("float32_compute", B, bce_float32_compute, "computes a float64 input in float32", ("agrees_with_exact",)),
    Mutant("returns_float32", B, bce_returns_float32, "returns float32 for float64 input", ("output_dtype_and_shape",)),
    Mutant("clamps_logits_in_place", B, bce_clamps_logits_in_place, "clamps the caller's logits in place",
           ("inputs_not_modified",)),
    Mutant("broadcasts_targets", B, bce_broadcasts_targets, "silently broadcasts mismatched targets",
           ("rejects_shape_mismatch",)),
    Mutant("dropout_left_on", B, bce_dropout_left_on, "dropout in training mode makes it random",
           ("deterministic",)),
    Mutant("alpha_wrong_class", F_, focal_alpha_wrong_class, "alpha weights the negatives",
           ("agrees_with_numpy", "agrees_with_exact", "agrees_with_keras", "seed_004_worked_table")),
    Mutant("naive_pow_gradient", F_, focal_torchvision_style, "0 ** (gamma - 1) * 0 = nan in the gradient for gamma < 1",
           ("finite_gradients",)),
    Mutant("factor_from_mean", F_, focal_factor_from_mean, "focal factor computed from the mean loss (seed 002)",
           ("agrees_with_numpy", "ultralytics_mean1_sum")),
    Mutant("pt_power", F_, focal_pt_power, "p_t ** gamma instead of (1 - p_t) ** gamma",
           ("agrees_with_numpy", "seed_004_worked_table")),
    Mutant("alpha_none_as_default", F_, focal_alpha_none_as_default, "alpha=None silently means 0.25",
           ("gamma0_no_alpha_is_bce", "bounded_by_weighted_bce")),
    Mutant("detached_factor", F_, focal_detached_factor, "the focal factor is detached from the graph",
           ("gradient_matches_analytic", "gradcheck_float64")),
    Mutant("hard_threshold_targets", F_, focal_hard_threshold_targets, "soft targets thresholded at 0.5 for p_t and alpha_t",
           ("agrees_with_numpy", "agrees_with_exact")),
    Mutant("float32_compute", F_, focal_float32_compute, "computes a float64 input in float32",
           ("agrees_with_exact",)),
    Mutant("clamps_targets_in_place", F_, focal_smooths_targets_in_place, "writes into the caller's targets",
           ("inputs_not_modified",)),
    Mutant("gamma_ignored_without_alpha", F_, focal_gamma_ignored_when_alpha_none, "alpha=None branch drops the focal factor",
           ("agrees_with_numpy",)),
    Mutant("epsilon_in_factor", F_, focal_gamma_floor, "(1.000001 - p_t) ** gamma exceeds 1 when p_t < 1e-6",
           ("agrees_with_numpy", "agrees_with_exact", "nonincreasing_in_gamma", "bounded_by_weighted_bce", "error_profile")),
    Mutant("gamma0_shortcut", F_, focal_gamma0_shortcut, "gamma == 0 short-cut returns plain BCE, dropping alpha",
           ("gamma0_alpha_half_is_half_bce", "agrees_with_numpy")),
    Mutant("mean_reduced", F_, focal_mean_reduced, "reduces to the mean by default instead of elementwise",
           ("output_dtype_and_shape", "agrees_with_numpy", "defaults_honoured")),
    Mutant("one_sided_clamp", F_, focal_one_sided_clamp, "clamps p before log(p) but not 1 - p before log(1 - p)",
           ("label_flip_symmetry", "agrees_with_numpy", "low_precision_matches_float32")),
    Mutant("dropout_left_on", F_, focal_dropout, "dropout in training mode makes it random",
           ("deterministic",)),
    Mutant("cpu_constant", F_, focal_cpu_constant, "builds a tensor on the CPU whatever the input's device", _DEVICE),
    Mutant("broadcasts_targets", F_, focal_broadcasts_targets, "silently broadcasts mismatched targets",
           ("rejects_shape_mismatch",)),
    Mutant("integer_gamma", F_, focal_integer_gamma, "a non-integer gamma truncated to an integer power",
           ("agrees_with_numpy", "honours_gamma")),
    Mutant("normalised_weights", W, weighted_normalised, "normalises the anchor weights by their sum",
           ("agrees_with_numpy", "anchor_weight_broadcast", "linear_in_weights")),
    Mutant("squared_weights", W, weighted_squared, "anchor weight applied twice", ("agrees_with_numpy", "linear_in_weights")),
    Mutant("drops_1d_weights", W, weighted_unweighted_2d, "ignores weights for (A, C) inputs",
           ("agrees_with_numpy", "anchor_weight_broadcast")),
    Mutant("mutates_weights", W, weighted_mutates_weights, "reshapes the caller's weights in place", ("inputs_not_modified",)),
    Mutant("naive_pow_gradient", W, weighted_naive_pow, "0 ** (gamma - 1) * 0 = nan in the gradient", ("finite_gradients",)),
    Mutant("returns_float32", W, weighted_returns_float32, "returns float32 whatever the input dtype",
           ("output_dtype_and_shape", "low_precision_matches_float32")),
    Mutant("dropout_left_on", W, weighted_dropout, "dropout in training mode makes it random", ("deterministic",)),
    Mutant("cpu_constant", W, weighted_cpu_constant, "builds a tensor on the CPU whatever the input's device", _DEVICE),
]
