"""Mutants of the regression family: mistakes seen in smooth L1 / L1 / MSE ports."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from impls import regression as ref
from tests.mutants import Mutant


def sl1_is_l1(input, target, *, beta=1.0):  # type: ignore[no-untyped-def]
    # Seed 001's listing: nn.L1Loss where the text says smooth L1.
    return (input - target).abs()


def sl1_no_half(input, target, *, beta=1.0):  # type: ignore[no-untyped-def]
    n = (input - target).abs()
    if beta < 1e-5:
        return n
    return torch.where(n < beta, n * n / beta, n - 0.5 * beta)


def sl1_beta_not_divided(input, target, *, beta=1.0):  # type: ignore[no-untyped-def]
    n = (input - target).abs()
    if beta < 1e-5:
        return n
    return torch.where(n < beta, 0.5 * n * n, n - 0.5 * beta)


def sl1_no_l1_fallback(input, target, *, beta=1.0):  # type: ignore[no-untyped-def]
    n = (input - target).abs()
    return torch.where(n < beta, 0.5 * n * n / beta, n - 0.5 * beta)


def sl1_signed_outer(input, target, *, beta=1.0):  # type: ignore[no-untyped-def]
    d = input - target
    if beta < 1e-5:
        return d.abs()
    return torch.where(d.abs() < beta, 0.5 * d * d / beta, d - 0.5 * beta)


def sl1_quadratic_everywhere(input, target, *, beta=1.0):  # type: ignore[no-untyped-def]
    d = input - target
    return 0.5 * d * d / max(beta, 1e-5)


def sl1_returns_float32(input, target, *, beta=1.0):  # type: ignore[no-untyped-def]
    return ref.smooth_l1(input, target, beta=beta).float()


def sl1_subtracts_in_place(input, target, *, beta=1.0):  # type: ignore[no-untyped-def]
    d = input.sub_(target)  # reuses the caller's buffer for the difference
    out = ref.smooth_l1(d, torch.zeros_like(d), beta=beta)
    input.add_(target)
    return out


def sl1_broadcasts(input, target, *, beta=1.0):  # type: ignore[no-untyped-def]
    return F.smooth_l1_loss(*torch.broadcast_tensors(input, target), beta=beta, reduction="none")


def sl1_cpu_constant(input, target, *, beta=1.0):  # type: ignore[no-untyped-def]
    return ref.smooth_l1(input, target, beta=beta) * torch.ones(input.shape, dtype=input.dtype)


def sl1_detached_inner(input, target, *, beta=1.0):  # type: ignore[no-untyped-def]
    # The quadratic branch computed from a detached difference: no gradient near 0.
    d = input - target
    n = d.abs()
    if beta < 1e-5:
        return n
    return torch.where(n < beta, 0.5 * n.detach() ** 2 / beta, n - 0.5 * beta)


def wsl1_nan_not_ignored(input, target, weights=None, *, beta=1.0 / 9.0, code_weights=None):  # type: ignore[no-untyped-def]
    diff = input - target
    if code_weights is not None:
        diff = diff * code_weights
    loss = ref.smooth_l1(diff, torch.zeros_like(diff), beta=beta)
    return loss * weights.unsqueeze(-1) if weights is not None else loss


def wsl1_nan_zeroed_after(input, target, weights=None, *, beta=1.0 / 9.0, code_weights=None):  # type: ignore[no-untyped-def]
    # Zeroes the loss at NaN targets after the fact: value 0, gradient nan.
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


def wsl1_half_precision_upcast(input, target, weights=None, *, beta=1.0 / 9.0, code_weights=None):  # type: ignore[no-untyped-def]
    return ref.weighted_smooth_l1(input.float(), target.float(), None if weights is None else weights.float(),
                                  beta=beta, code_weights=None if code_weights is None else code_weights.float())


def wsl1_cpu_constant(input, target, weights=None, *, beta=1.0 / 9.0, code_weights=None):  # type: ignore[no-untyped-def]
    return ref.weighted_smooth_l1(input, target, weights, beta=beta, code_weights=code_weights) * torch.ones(input.shape, dtype=input.dtype)


def wsl1_dropout(input, target, weights=None, *, beta=1.0 / 9.0, code_weights=None):  # type: ignore[no-untyped-def]
    return ref.weighted_smooth_l1(F.dropout(input, 0.2, training=True), target, weights, beta=beta, code_weights=code_weights)


def l1_is_mse(input, target):  # type: ignore[no-untyped-def]
    return (input - target) ** 2


def l1_mean_reduced(input, target):  # type: ignore[no-untyped-def]
    return (input - target).abs().mean()


def l1_signed(input, target):  # type: ignore[no-untyped-def]
    return input - target


def l1_sqrt_of_square(input, target):  # type: ignore[no-untyped-def]
    # sqrt(d^2): right value, nan gradient at d == 0 (0 / 0), overflow for |d| > 1.8e19 in float32.
    return torch.sqrt((input - target) ** 2)


def mse_is_l1(input, target):  # type: ignore[no-untyped-def]
    return (input - target).abs()


def mse_halved(input, target):  # type: ignore[no-untyped-def]
    return 0.5 * (input - target) ** 2


def mse_signed_cube(input, target):  # type: ignore[no-untyped-def]
    d = input - target
    return d * d.abs() if d.dim() else d * d


def mse_mean_reduced(input, target):  # type: ignore[no-untyped-def]
    return ((input - target) ** 2).mean()


S, W = "smooth_l1", "weighted_smooth_l1"
_DEVICE = ("cuda_matches_cpu", "mps_matches_cpu")

MUTANTS = [
    Mutant("l1_for_smooth_l1", S, sl1_is_l1, "L1 where smooth L1 is meant (seed 001's listing)",
           ("agrees_with_numpy", "agrees_with_torch", "agrees_with_keras_huber", "gradient_matches_analytic", "continuous_at_beta")),
    Mutant("no_half", S, sl1_no_half, "d^2 / beta without the 1/2: a jump at |d| = beta",
           ("agrees_with_numpy", "continuous_at_beta", "gradient_bounded_by_one")),
    Mutant("beta_not_divided", S, sl1_beta_not_divided, "0.5 d^2 without dividing by beta",
           ("agrees_with_numpy", "continuous_at_beta")),
    Mutant("no_l1_fallback", S, sl1_no_l1_fallback, "no L1 branch for beta < 1e-5: 0/0 at beta = 0",
           ("small_beta_is_l1",)),
    Mutant("signed_outer_branch", S, sl1_signed_outer, "d - beta/2 instead of |d| - beta/2 outside",
           ("symmetric_in_sign_of_difference", "between_l1_minus_half_beta_and_l1", "agrees_with_numpy")),
    Mutant("quadratic_everywhere", S, sl1_quadratic_everywhere, "0.5 d^2 / beta for every d (scaled MSE)",
           ("gradient_bounded_by_one", "between_l1_minus_half_beta_and_l1")),
    Mutant("returns_float32", S, sl1_returns_float32, "returns float32 whatever the input dtype",
           ("output_dtype_and_shape", "low_precision_matches_float32")),
    Mutant("subtracts_in_place", S, sl1_subtracts_in_place, "forms the difference in the caller's input buffer",
           ("inputs_not_modified",)),
    Mutant("broadcasts_targets", S, sl1_broadcasts, "silently broadcasts (N, 1) targets", ("rejects_shape_mismatch",)),
    Mutant("cpu_constant", S, sl1_cpu_constant, "builds a tensor on the CPU", _DEVICE),
    Mutant("detached_quadratic", S, sl1_detached_inner, "quadratic branch computed from a detached difference",
           ("gradient_matches_analytic",)),
    Mutant("dropout_left_on", S, lambda input, target, *, beta=1.0: ref.smooth_l1(F.dropout(input, 0.2, training=True), target, beta=beta),
           "dropout in training mode", ("compiled_matches_eager",)),
    Mutant("nan_not_ignored", W, wsl1_nan_not_ignored, "NaN targets propagate into the loss",
           ("agrees_with_numpy", "nan_targets_give_zero_loss_and_gradient")),
    Mutant("nan_zeroed_after", W, wsl1_nan_zeroed_after, "loss zeroed at NaN targets after the fact: nan gradient",
           ("nan_targets_give_zero_loss_and_gradient",)),
    Mutant("code_weights_after", W, wsl1_code_weights_after, "code weights multiply the loss, not the difference",
           ("agrees_with_numpy",)),
    Mutant("fills_nan_in_place", W, wsl1_fills_nan_in_place, "writes the input into the caller's NaN targets",
           ("inputs_not_modified",)),
    Mutant("normalised_weights", W, wsl1_normalised_weights, "normalises anchor weights by their sum",
           ("linear_in_anchor_weights", "agrees_with_numpy")),
    Mutant("upcasts", W, wsl1_half_precision_upcast, "computes and returns float32 whatever the input dtype",
           ("output_dtype_and_shape", "low_precision_matches_float32")),
    Mutant("cpu_constant", W, wsl1_cpu_constant, "builds a tensor on the CPU", _DEVICE),
    Mutant("dropout_left_on", W, wsl1_dropout, "dropout in training mode", ("compiled_matches_eager",)),
    Mutant("mse_for_l1", "l1", l1_is_mse, "squares the difference", ("agrees_with_numpy", "gradient_matches_analytic")),
    Mutant("mean_reduced", "l1", l1_mean_reduced, "reduces to the mean", ("output_dtype_and_shape",)),
    Mutant("signed", "l1", l1_signed, "forgets the absolute value", ("symmetric_in_sign_of_difference", "agrees_with_numpy")),
    Mutant("sqrt_of_square", "l1", l1_sqrt_of_square, "sqrt(d^2): nan gradient at d == 0", ("gradient_matches_analytic",)),
    Mutant("l1_for_mse", "mse", mse_is_l1, "absolute value instead of square", ("agrees_with_numpy", "gradient_matches_analytic")),
    Mutant("halved", "mse", mse_halved, "0.5 d^2 (a gradient-friendly convention, not MSE)", ("agrees_with_numpy", "gradient_matches_analytic")),
    Mutant("signed_square", "mse", mse_signed_cube, "d |d|: sign lost in the square", ("symmetric_in_sign_of_difference",)),
    Mutant("mean_reduced", "mse", mse_mean_reduced, "reduces to the mean", ("output_dtype_and_shape",)),
]
