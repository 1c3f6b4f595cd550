"""Mutants of the regression family: mistakes seen in smooth L1 / L1 / MSE ports."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from impls import regression as ref
from impls._validate import check_reduction
from tests.mutants import Mutant


def sl1_keywords(core):  # type: ignore[no-untyped-def]
    """weight and reduction around an elementwise smooth L1 mutant ``core(input, target, beta=)``,
    applied as the reference does, so the mutant differs from it only in its planted defect."""

    @functools.wraps(core)
    def wrapped(input, target, *, beta=1.0, weight=None, reduction="none"):  # type: ignore[no-untyped-def]
        check_reduction(reduction)
        return ref._weighted_reduce(core(input, target, beta=beta), input, weight, reduction)

    return wrapped


def pair_keywords(core):  # type: ignore[no-untyped-def]
    """weight and reduction around an elementwise L1 / MSE mutant ``core(input, target)``."""

    @functools.wraps(core)
    def wrapped(input, target, *, weight=None, reduction="none"):  # type: ignore[no-untyped-def]
        check_reduction(reduction)
        return ref._weighted_reduce(core(input, target), input, weight, reduction)

    return wrapped


# ---------------------------------------------------------------------------
# smooth_l1
# ---------------------------------------------------------------------------


@sl1_keywords
def sl1_is_l1(input, target, *, beta=1.0):  # type: ignore[no-untyped-def]
    # Seed 001's listing: nn.L1Loss where the text says smooth L1.
    return (input - target).abs()


@sl1_keywords
def sl1_no_half(input, target, *, beta=1.0):  # type: ignore[no-untyped-def]
    n = (input - target).abs()
    if beta < 1e-5:
        return n
    return torch.where(n < beta, n.clamp(max=beta) ** 2 / beta, n - 0.5 * beta)


@sl1_keywords
def sl1_beta_not_divided(input, target, *, beta=1.0):  # type: ignore[no-untyped-def]
    n = (input - target).abs()
    if beta < 1e-5:
        return n
    return torch.where(n < beta, 0.5 * n.clamp(max=beta) ** 2, n - 0.5 * beta)


@sl1_keywords
def sl1_no_l1_fallback(input, target, *, beta=1.0):  # type: ignore[no-untyped-def]
    # torch's convention: L1 only at beta == 0 (and 0 / 0 in the untaken branch there).
    n = (input - target).abs()
    return torch.where(n < beta, 0.5 * n * n / beta, n - 0.5 * beta)


@sl1_keywords
def sl1_signed_outer(input, target, *, beta=1.0):  # type: ignore[no-untyped-def]
    d = input - target
    if beta < 1e-5:
        return d.abs()
    return torch.where(d.abs() < beta, 0.5 * d.clamp(-beta, beta) ** 2 / beta, d - 0.5 * beta)


@sl1_keywords
def sl1_quadratic_everywhere(input, target, *, beta=1.0):  # type: ignore[no-untyped-def]
    d = input - target
    return 0.5 * d * d / max(beta, 1e-5)


@sl1_keywords
def sl1_unguarded_where(input, target, *, beta=1.0):  # type: ignore[no-untyped-def]
    # fvcore's form: the untaken branch's backward forms 2 n, inf where |x - y| > max / 2; 0 * inf = nan.
    n = (input - target).abs()
    if beta < 1e-5:
        return n
    return torch.where(n < beta, 0.5 * n**2 / beta, n - 0.5 * beta)


@sl1_keywords
def sl1_huber(input, target, *, beta=1.0):  # type: ignore[no-untyped-def]
    # Huber (torch's huber_loss with delta = beta) where smooth L1 is meant: beta times too large.
    return beta * ref.smooth_l1(input, target, beta=beta) if beta >= 1e-5 else (input - target).abs()


@sl1_keywords
def sl1_float32_compute(input, target, *, beta=1.0):  # type: ignore[no-untyped-def]
    return ref.smooth_l1(input.float(), target.float(), beta=beta).to(input.dtype)


def sl1_returns_float32(input, target, *, beta=1.0, weight=None, reduction="none"):  # type: ignore[no-untyped-def]
    return ref.smooth_l1(input, target, beta=beta, weight=weight, reduction=reduction).float()


def sl1_subtracts_in_place(input, target, *, beta=1.0, weight=None, reduction="none"):  # type: ignore[no-untyped-def]
    d = input.sub_(target)  # reuses the caller's buffer for the difference
    out = ref.smooth_l1(d.clone(), torch.zeros_like(d), beta=beta, weight=weight, reduction=reduction)
    input.add_(target)
    return out


@sl1_keywords
def sl1_broadcasts(input, target, *, beta=1.0):  # type: ignore[no-untyped-def]
    return F.smooth_l1_loss(*torch.broadcast_tensors(input, target), beta=beta, reduction="none")


@sl1_keywords
def sl1_cpu_constant(input, target, *, beta=1.0):  # type: ignore[no-untyped-def]
    return ref.smooth_l1(input, target, beta=beta) * torch.ones(input.shape, dtype=input.dtype)


@sl1_keywords
def sl1_detached_inner(input, target, *, beta=1.0):  # type: ignore[no-untyped-def]
    # The quadratic branch computed from a detached difference: no gradient near 0.
    n = (input - target).abs()
    if beta < 1e-5:
        return n
    return torch.where(n < beta, 0.5 * n.detach().clamp(max=beta) ** 2 / beta, n - 0.5 * beta)


@sl1_keywords
def sl1_dropout(input, target, *, beta=1.0):  # type: ignore[no-untyped-def]
    return ref.smooth_l1(F.dropout(input, 0.2, training=True), target, beta=beta)


def sl1_no_beta_check(input, target, *, beta=1.0, weight=None, reduction="none"):  # type: ignore[no-untyped-def]
    # No domain check on beta: a negative one silently gives L1, nan a nan loss.
    check_reduction(reduction)
    return ref._weighted_reduce(ref._smooth_l1_of(input - target, beta), input, weight, reduction)


def sl1_unknown_reduction_is_none(input, target, *, beta=1.0, weight=None, reduction="none"):  # type: ignore[no-untyped-def]
    # fvcore's branch: anything but 'mean' or 'sum' falls through to the unreduced loss.
    return ref.smooth_l1(input, target, beta=beta, weight=weight, reduction=reduction if reduction in ("mean", "sum") else "none")


def sl1_empty_mean_is_zero(input, target, *, beta=1.0, weight=None, reduction="none"):  # type: ignore[no-untyped-def]
    # fvcore's convention: the mean of nothing is 0 instead of nan.
    out = ref.smooth_l1(input, target, beta=beta, weight=weight, reduction=reduction)
    return torch.nan_to_num(out, nan=0.0) if reduction == "mean" and input.numel() == 0 else out


def sl1_mean_over_weight_sum(input, target, *, beta=1.0, weight=None, reduction="none"):  # type: ignore[no-untyped-def]
    # A weighted mean (normalised by the weights, as torch's cross-entropy does) where the plain mean is meant.
    loss = ref.smooth_l1(input, target, beta=beta, weight=weight, reduction="none" if reduction == "mean" else reduction)
    if reduction != "mean":
        return loss
    return loss.sum() / (torch.broadcast_to(weight, input.shape).sum() if weight is not None else input.numel())


# ---------------------------------------------------------------------------
# weighted_smooth_l1
# ---------------------------------------------------------------------------


def _openpcdet_smooth_l1(diff, beta):  # type: ignore[no-untyped-def]
    # OpenPCDet's own formula (after fvcore's): the untaken branch's backward multiplies by n.
    n = torch.abs(diff)
    return n if beta < 1e-5 else torch.where(n < beta, 0.5 * n**2 / beta, n - 0.5 * beta)


def wsl1_nan_not_ignored(input, target, weights=None, *, beta=1.0 / 9.0, code_weights=None):  # type: ignore[no-untyped-def]
    diff = input - target
    if code_weights is not None:
        diff = diff * code_weights
    loss = _openpcdet_smooth_l1(diff, beta)
    return loss * weights.unsqueeze(-1) if weights is not None else loss


def wsl1_nan_zeroed_after(input, target, weights=None, *, beta=1.0 / 9.0, code_weights=None):  # type: ignore[no-untyped-def]
    # Zeroes the loss at NaN targets after the fact: value 0, gradient 0 * nan = nan.
    loss = wsl1_nan_not_ignored(input, target, weights, beta=beta, code_weights=code_weights)
    return torch.where(torch.isnan(target), torch.zeros_like(loss), loss)


def wsl1_code_weights_after(input, target, weights=None, *, beta=1.0 / 9.0, code_weights=None):  # type: ignore[no-untyped-def]
    loss = ref.weighted_smooth_l1(input, target, weights, beta=beta)
    return loss * code_weights if code_weights is not None else loss


def wsl1_fills_nan_in_place(input, target, weights=None, *, beta=1.0 / 9.0, code_weights=None):  # type: ignore[no-untyped-def]
    nan = torch.isnan(target)
    target[nan] = input.detach()[nan]
    return ref.weighted_smooth_l1(input, target, weights, beta=beta, code_weights=code_weights)


def wsl1_normalised_weights(input, target, weights=None, *, beta=1.0 / 9.0, code_weights=None):  # type: ignore[no-untyped-def]
    w = None if weights is None else weights / weights.sum().clamp_min(1e-12)
    return ref.weighted_smooth_l1(input, target, w, beta=beta, code_weights=code_weights)


def wsl1_upcasts(input, target, weights=None, *, beta=1.0 / 9.0, code_weights=None):  # type: ignore[no-untyped-def]
    return ref.weighted_smooth_l1(input.float(), target.float(), None if weights is None else weights.float(),
                                  beta=beta, code_weights=None if code_weights is None else code_weights.float())


def wsl1_cpu_constant(input, target, weights=None, *, beta=1.0 / 9.0, code_weights=None):  # type: ignore[no-untyped-def]
    out = ref.weighted_smooth_l1(input, target, weights, beta=beta, code_weights=code_weights)
    return out * torch.ones(input.shape, dtype=input.dtype)


def wsl1_dropout(input, target, weights=None, *, beta=1.0 / 9.0, code_weights=None):  # type: ignore[no-untyped-def]
    return ref.weighted_smooth_l1(F.dropout(input, 0.2, training=True), target, weights, beta=beta, code_weights=code_weights)


def wsl1_no_l1_fallback(input, target, weights=None, *, beta=1.0 / 9.0, code_weights=None):  # type: ignore[no-untyped-def]
    # Keeps the quadratic part for 0 < beta < 1e-5 (torch's convention, not OpenPCDet's).
    if not 0 < beta < 1e-5:
        return ref.weighted_smooth_l1(input, target, weights, beta=beta, code_weights=code_weights)
    n = ref.weighted_smooth_l1(input, target, None, beta=0.0, code_weights=code_weights)  # |cw d|, 0 at NaN targets
    out = torch.where(n < beta, 0.5 * n * n / beta, n - 0.5 * beta)
    return out if weights is None else out * weights.unsqueeze(-1)


def wsl1_no_shape_check(input, target, weights=None, *, beta=1.0 / 9.0, code_weights=None):  # type: ignore[no-untyped-def]
    # No shape checks: a (B, A, 1) target broadcasts over the K codes.
    target = torch.where(torch.isnan(target), input.detach(), target)
    diff = input - target
    if code_weights is not None:
        diff = diff * code_weights
    loss = ref._smooth_l1_of(diff, beta)
    return loss * weights.unsqueeze(-1) if weights is not None else loss


def wsl1_no_beta_check(input, target, weights=None, *, beta=1.0 / 9.0, code_weights=None):  # type: ignore[no-untyped-def]
    ref.weighted_smooth_l1(input, target, weights, beta=1.0, code_weights=code_weights)  # every check but beta's
    return wsl1_no_shape_check(input, target, weights, beta=beta, code_weights=code_weights)


# ---------------------------------------------------------------------------
# l1 and mse
# ---------------------------------------------------------------------------


@pair_keywords
def l1_is_mse(input, target):  # type: ignore[no-untyped-def]
    return (input - target) ** 2


def l1_mean_by_default(input, target, *, weight=None, reduction="mean"):  # type: ignore[no-untyped-def]
    return ref.l1(input, target, weight=weight, reduction=reduction)


@pair_keywords
def l1_signed(input, target):  # type: ignore[no-untyped-def]
    return input - target


@pair_keywords
def l1_sqrt_of_square(input, target):  # type: ignore[no-untyped-def]
    # sqrt(d^2): right value while d^2 is finite, nan gradient at d == 0 (0 / 0), inf for |d| > 1.8e19 in float32.
    return torch.sqrt((input - target) ** 2)


@pair_keywords
def l1_float32_compute(input, target):  # type: ignore[no-untyped-def]
    return ref.l1(input.float(), target.float()).to(input.dtype)


@pair_keywords
def l1_broadcasts(input, target):  # type: ignore[no-untyped-def]
    return F.l1_loss(*torch.broadcast_tensors(input, target), reduction="none")


def _no_dtype_check(elementwise, name):  # type: ignore[no-untyped-def]
    # Shapes and reduction checked, dtypes not: integer tensors are computed on (torch's own l1_loss does).
    def wrapped(input, target, *, weight=None, reduction="none"):  # type: ignore[no-untyped-def]
        check_reduction(reduction)
        if input.shape != target.shape:
            raise ValueError("target must have the input's shape")
        loss = elementwise(input - target)
        return loss if weight is None else ref._weighted_reduce(loss, input, weight, reduction)

    wrapped.__name__ = wrapped.__qualname__ = name
    return wrapped


l1_no_dtype_check = _no_dtype_check(torch.abs, "l1_no_dtype_check")
mse_no_dtype_check = _no_dtype_check(torch.square, "mse_no_dtype_check")


def l1_returns_float32(input, target, *, weight=None, reduction="none"):  # type: ignore[no-untyped-def]
    return ref.l1(input, target, weight=weight, reduction=reduction).float()


@pair_keywords
def l1_dropout(input, target):  # type: ignore[no-untyped-def]
    return ref.l1(F.dropout(input, 0.2, training=True), target)


@pair_keywords
def l1_cpu_constant(input, target):  # type: ignore[no-untyped-def]
    return ref.l1(input, target) * torch.ones(input.shape, dtype=input.dtype)


@pair_keywords
def mse_is_l1(input, target):  # type: ignore[no-untyped-def]
    return (input - target).abs()


@pair_keywords
def mse_halved(input, target):  # type: ignore[no-untyped-def]
    return 0.5 * (input - target) ** 2


@pair_keywords
def mse_signed_square(input, target):  # type: ignore[no-untyped-def]
    d = input - target
    return d * d.abs()


def mse_mean_by_default(input, target, *, weight=None, reduction="mean"):  # type: ignore[no-untyped-def]
    return ref.mse(input, target, weight=weight, reduction=reduction)


@pair_keywords
def mse_expanded(input, target):  # type: ignore[no-untyped-def]
    # x^2 - 2xy + y^2: the difference of large terms, all of it lost for near-equal pairs.
    return input * input - 2 * input * target + target * target


@pair_keywords
def mse_float32_compute(input, target):  # type: ignore[no-untyped-def]
    return ref.mse(input.float(), target.float()).to(input.dtype)


@pair_keywords
def mse_square_of_rms(input, target):  # type: ignore[no-untyped-def]
    # |d| as sqrt(d^2), then squared: the value survives, the gradient is 0 * 0 / 0 = nan at d == 0.
    return torch.sqrt((input - target) * (input - target)) ** 2


def mse_weight_inside(input, target, *, weight=None, reduction="none"):  # type: ignore[no-untyped-def]
    # Weights the residual instead of the loss: (w d)^2 = w^2 d^2.
    check_reduction(reduction)
    d = input - target
    if weight is not None:
        d = d * weight
    return ref._weighted_reduce(d * d, input, None, reduction)


@pair_keywords
def mse_broadcasts(input, target):  # type: ignore[no-untyped-def]
    return F.mse_loss(*torch.broadcast_tensors(input, target), reduction="none")


@pair_keywords
def mse_dropout(input, target):  # type: ignore[no-untyped-def]
    return ref.mse(F.dropout(input, 0.2, training=True), target)


@pair_keywords
def mse_cpu_constant(input, target):  # type: ignore[no-untyped-def]
    return ref.mse(input, target) * torch.ones(input.shape, dtype=input.dtype)


def mse_returns_float32(input, target, *, weight=None, reduction="none"):  # type: ignore[no-untyped-def]
    return ref.mse(input, target, weight=weight, reduction=reduction).float()


def _float32_when_compiled(reference):  # type: ignore[no-untyped-def]
    """The reference, except under torch.compile, where a "fast path" computes in float32 and casts back."""

    def wrapped(input, target, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not torch.compiler.is_compiling():
            return reference(input, target, *args, **kwargs)
        args = tuple(a.float() if isinstance(a, torch.Tensor) else a for a in args)
        kwargs = {k: v.float() if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
        return reference(input.float(), target.float(), *args, **kwargs).to(input.dtype)

    wrapped.__name__ = wrapped.__qualname__ = f"{reference.__name__}_float32_when_compiled"
    globals()[wrapped.__name__] = wrapped  # importable by name, for repro snippets
    return wrapped


S, W = "smooth_l1", "weighted_smooth_l1"
_DEVICE = ("cuda_matches_cpu", "mps_matches_cpu")

MUTANTS = [
    Mutant("l1_for_smooth_l1", S, sl1_is_l1, "L1 where smooth L1 is meant (seed 001's listing)",
           ("agrees_with_numpy", "agrees_with_keras", "gradient_matches_analytic", "continuous_at_beta", "honours_beta")),
    Mutant("no_half", S, sl1_no_half, "d^2 / beta without the 1/2: a jump at |d| = beta",
           ("agrees_with_numpy", "continuous_at_beta", "gradient_bounded_by_one")),
    Mutant("beta_not_divided", S, sl1_beta_not_divided, "0.5 d^2 without dividing by beta",
           ("agrees_with_numpy", "continuous_at_beta", "homogeneous")),
    Mutant("no_l1_fallback", S, sl1_no_l1_fallback, "no L1 branch for beta < 1e-5: a quadratic sliver, 0/0 at beta = 0",
           ("small_beta_is_l1", "honours_beta")),
    Mutant("signed_outer_branch", S, sl1_signed_outer, "d - beta/2 instead of |d| - beta/2 outside",
           ("symmetric_in_sign_of_difference", "between_l1_minus_half_beta_and_l1", "agrees_with_numpy")),
    Mutant("quadratic_everywhere", S, sl1_quadratic_everywhere, "0.5 d^2 / beta for every d (scaled MSE)",
           ("gradient_bounded_by_one", "between_l1_minus_half_beta_and_l1")),
    Mutant("unguarded_where", S, sl1_unguarded_where,
           "torch.where with an unguarded 0.5 n**2 branch: nan gradient where |x - y| > max / 2 (fvcore's form)",
           ("finite_gradients",)),
    Mutant("huber_for_smooth_l1", S, sl1_huber, "Huber (beta * smooth L1) where smooth L1 is meant",
           ("agrees_with_numpy", "homogeneous", "honours_beta")),
    Mutant("float32_compute", S, sl1_float32_compute, "computes a float64 input in float32", ("agrees_with_numpy",)),
    Mutant("returns_float32", S, sl1_returns_float32, "returns float32 whatever the input dtype",
           ("output_dtype_and_shape", "low_precision_matches_float32")),
    Mutant("subtracts_in_place", S, sl1_subtracts_in_place, "forms the difference in the caller's input buffer",
           ("inputs_not_modified",)),
    Mutant("broadcasts_targets", S, sl1_broadcasts, "silently broadcasts (N, 1) targets", ("rejects_shape_mismatch",)),
    Mutant("no_beta_check", S, sl1_no_beta_check, "accepts a negative or nan beta", ("rejects_invalid_inputs",)),
    Mutant("unknown_reduction_is_none", S, sl1_unknown_reduction_is_none, "an unknown reduction means 'none'",
           ("rejects_invalid_inputs",)),
    Mutant("empty_mean_is_zero", S, sl1_empty_mean_is_zero, "the mean of an empty input is 0, not nan",
           ("honours_reduction", "agrees_with_numpy")),
    Mutant("mean_over_weight_sum", S, sl1_mean_over_weight_sum, "the weighted mean divides by the sum of the weights",
           ("honours_weight",)),
    Mutant("cpu_constant", S, sl1_cpu_constant, "builds a tensor on the CPU", _DEVICE),
    Mutant("detached_quadratic", S, sl1_detached_inner, "quadratic branch computed from a detached difference",
           ("gradient_matches_analytic", "gradcheck_float64")),
    Mutant("dropout_left_on", S, sl1_dropout, "dropout in training mode", ("deterministic",)),
    Mutant("nan_not_ignored", W, wsl1_nan_not_ignored, "NaN targets propagate into the loss",
           ("agrees_with_numpy", "nan_targets_give_zero_loss_and_gradient")),
    Mutant("nan_zeroed_after", W, wsl1_nan_zeroed_after, "loss zeroed at NaN targets after the fact: nan gradient",
           ("nan_targets_give_zero_loss_and_gradient", "finite_gradients")),
    Mutant("code_weights_after", W, wsl1_code_weights_after, "code weights multiply the loss, not the difference",
           ("agrees_with_numpy", "honours_code_weights")),
    Mutant("fills_nan_in_place", W, wsl1_fills_nan_in_place, "writes the input into the caller's NaN targets",
           ("inputs_not_modified",)),
    Mutant("normalised_weights", W, wsl1_normalised_weights, "normalises anchor weights by their sum",
           ("linear_in_anchor_weights", "agrees_with_numpy")),
    Mutant("upcasts", W, wsl1_upcasts, "computes and returns float32 whatever the input dtype",
           ("output_dtype_and_shape", "low_precision_matches_float32")),
    Mutant("no_l1_fallback", W, wsl1_no_l1_fallback, "keeps the quadratic part for 0 < beta < 1e-5", ("honours_beta",)),
    Mutant("no_shape_check", W, wsl1_no_shape_check, "a (B, A, 1) target broadcasts over the codes",
           ("rejects_shape_mismatch",)),
    Mutant("no_beta_check", W, wsl1_no_beta_check, "accepts a negative or nan beta", ("rejects_invalid_inputs",)),
    Mutant("cpu_constant", W, wsl1_cpu_constant, "builds a tensor on the CPU", _DEVICE),
    Mutant("dropout_left_on", W, wsl1_dropout, "dropout in training mode", ("deterministic",)),
    Mutant("mse_for_l1", "l1", l1_is_mse, "squares the difference",
           ("agrees_with_numpy", "agrees_with_keras", "gradient_matches_analytic", "homogeneous")),
    Mutant("mean_by_default", "l1", l1_mean_by_default, "reduction='mean' by default",
           ("output_dtype_and_shape", "defaults_honoured")),
    Mutant("signed", "l1", l1_signed, "forgets the absolute value", ("symmetric_in_sign_of_difference", "agrees_with_numpy")),
    Mutant("sqrt_of_square", "l1", l1_sqrt_of_square, "sqrt(d^2): nan gradient at d == 0, inf once d^2 overflows",
           ("gradient_matches_analytic", "finite_gradients")),
    Mutant("float32_compute", "l1", l1_float32_compute, "computes a float64 input in float32", ("agrees_with_numpy",)),
    Mutant("broadcasts_targets", "l1", l1_broadcasts, "silently broadcasts (N, 1) targets", ("rejects_shape_mismatch",)),
    Mutant("no_dtype_check", "l1", l1_no_dtype_check, "computes on integer tensors", ("rejects_invalid_inputs",)),
    Mutant("returns_float32", "l1", l1_returns_float32, "returns float32 whatever the input dtype",
           ("output_dtype_and_shape", "low_precision_matches_float32")),
    Mutant("dropout_left_on", "l1", l1_dropout, "dropout in training mode", ("deterministic",)),
    Mutant("cpu_constant", "l1", l1_cpu_constant, "builds a tensor on the CPU", _DEVICE),
    Mutant("l1_for_mse", "mse", mse_is_l1, "absolute value instead of square",
           ("agrees_with_numpy", "agrees_with_keras", "gradient_matches_analytic", "homogeneous")),
    Mutant("halved", "mse", mse_halved, "0.5 d^2 (a gradient-friendly convention, not MSE)",
           ("agrees_with_numpy", "gradient_matches_analytic")),
    Mutant("signed_square", "mse", mse_signed_square, "d |d|: sign lost in the square", ("symmetric_in_sign_of_difference",)),
    Mutant("mean_by_default", "mse", mse_mean_by_default, "reduction='mean' by default",
           ("output_dtype_and_shape", "defaults_honoured")),
    Mutant("expanded_square", "mse", mse_expanded, "x^2 - 2xy + y^2: cancellation for near-equal inputs",
           ("agrees_with_numpy",)),
    Mutant("float32_compute", "mse", mse_float32_compute, "computes a float64 input in float32", ("agrees_with_numpy",)),
    Mutant("square_of_rms", "mse", mse_square_of_rms, "sqrt(d^2)^2: nan gradient at d == 0", ("finite_gradients",)),
    Mutant("weight_inside", "mse", mse_weight_inside, "weights the residual, (w d)^2, instead of the loss",
           ("honours_weight", "agrees_with_numpy")),
    Mutant("broadcasts_targets", "mse", mse_broadcasts, "silently broadcasts (N, 1) targets", ("rejects_shape_mismatch",)),
    Mutant("no_dtype_check", "mse", mse_no_dtype_check, "computes on integer tensors", ("rejects_invalid_inputs",)),
    Mutant("returns_float32", "mse", mse_returns_float32, "returns float32 whatever the input dtype",
           ("output_dtype_and_shape", "low_precision_matches_float32")),
    Mutant("dropout_left_on", "mse", mse_dropout, "dropout in training mode", ("deterministic",)),
    Mutant("cpu_constant", "mse", mse_cpu_constant, "builds a tensor on the CPU", _DEVICE),
    *(Mutant("float32_path_when_compiled", sid, _float32_when_compiled(fn),
             "computes in float32 only under torch.compile: float64 callers get float32 accuracy from the compiled model",
             ("compiled_matches_eager",))
      for sid, fn in ((S, ref.smooth_l1), (W, ref.weighted_smooth_l1), ("l1", ref.l1), ("mse", ref.mse))),
]
