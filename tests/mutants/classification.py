"""Mutants of the softmax family: cross-entropy, weighted CE, softmax focal, KL."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from impls import classification as ref
from tests.mutants import Mutant

CE, WCE, SF, KL = "softmax_cross_entropy", "weighted_cross_entropy", "softmax_focal", "kl_div"
_DEVICE = ("cuda_matches_cpu", "mps_matches_cpu")


def ce_weighted_mean_over_n(logits, target, *, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):  # type: ignore[no-untyped-def]
    # The common mistake: a weighted mean that divides by the number of samples.
    per = ref.softmax_cross_entropy(logits, target, weight=weight, ignore_index=ignore_index,
                                    label_smoothing=label_smoothing, reduction="none")
    if reduction == "none":
        return per
    return per.sum() if reduction == "sum" else per.mean()


def ce_ignored_in_denominator(logits, target, *, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):  # type: ignore[no-untyped-def]
    if target.is_floating_point() or reduction != "mean":
        return ref.softmax_cross_entropy(logits, target, weight=weight, ignore_index=ignore_index,
                                         label_smoothing=label_smoothing, reduction=reduction)
    per = ref.softmax_cross_entropy(logits, target, weight=weight, ignore_index=ignore_index,
                                    label_smoothing=label_smoothing, reduction="none")
    w = torch.ones_like(per) if weight is None else weight[target.clamp_min(0)]
    return per.sum() / w.sum()


def ce_all_ignored_zero(logits, target, *, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):  # type: ignore[no-untyped-def]
    out = ref.softmax_cross_entropy(logits, target, weight=weight, ignore_index=ignore_index,
                                    label_smoothing=label_smoothing, reduction=reduction)
    return torch.nan_to_num(out, nan=0.0)


def ce_smoothing_ignores_weights(logits, target, *, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):  # type: ignore[no-untyped-def]
    hard = ref.softmax_cross_entropy(logits, target, weight=weight, ignore_index=ignore_index, reduction=reduction)
    if label_smoothing == 0:
        return hard
    smooth = ref.softmax_cross_entropy(logits, target, ignore_index=ignore_index, label_smoothing=1.0, reduction=reduction)
    return (1 - label_smoothing) * hard + label_smoothing * smooth


def ce_smoothing_wrong_mass(logits, target, *, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):  # type: ignore[no-untyped-def]
    # eps / (C - 1) spread over the *other* classes (another convention), not eps / C over all.
    c = logits.shape[1]
    eps = label_smoothing * c / (c - 1) if c > 1 else label_smoothing
    return ref.softmax_cross_entropy(logits, target, weight=weight, ignore_index=ignore_index,
                                     label_smoothing=min(eps, 1.0), reduction=reduction)


def ce_naive_softmax(logits, target, *, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):  # type: ignore[no-untyped-def]
    # log(softmax(x)) without the max shift: exp overflows for logits > 88 (float32).
    p = torch.exp(logits) / torch.exp(logits).sum(1, keepdim=True)
    logp = torch.log(p)
    if target.is_floating_point():
        per = -(target * logp).sum(1)
        return per if reduction == "none" else (per.sum() if reduction == "sum" else per.mean())
    return F.nll_loss(logp, target, weight=weight, ignore_index=ignore_index, reduction=reduction)


def ce_detached_softmax(logits, target, *, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):  # type: ignore[no-untyped-def]
    lse = torch.logsumexp(logits, 1, keepdim=True).detach()
    logp = logits - lse
    if target.is_floating_point():
        per = -(target * logp).sum(1)
        return per if reduction == "none" else (per.sum() if reduction == "sum" else per.mean())
    return F.nll_loss(logp, target, weight=weight, ignore_index=ignore_index, reduction=reduction)


def ce_in_place_softmax(logits, target, *, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):  # type: ignore[no-untyped-def]
    logits.sub_(logits.amax(1, keepdim=True).detach())  # "stabilise" in the caller's tensor
    return ref.softmax_cross_entropy(logits, target, weight=weight, ignore_index=ignore_index,
                                     label_smoothing=label_smoothing, reduction=reduction)


def ce_ignored_as_class0(logits, target, *, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):  # type: ignore[no-untyped-def]
    if target.is_floating_point():
        return ref.softmax_cross_entropy(logits, target, weight=weight, label_smoothing=label_smoothing, reduction=reduction)
    valid = target != ignore_index
    t = target.clamp_min(0)
    per = ref.softmax_cross_entropy(logits, t, weight=weight, label_smoothing=label_smoothing, reduction="none")
    if reduction == "none":
        return per
    return per.sum() if reduction == "sum" else per.sum() / valid.sum()


def ce_float32(logits, target, *, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):  # type: ignore[no-untyped-def]
    return ref.softmax_cross_entropy(logits.float(), target, weight=None if weight is None else weight.float(),
                                     ignore_index=ignore_index, label_smoothing=label_smoothing, reduction=reduction)


def ce_cpu_constant(logits, target, **kw):  # type: ignore[no-untyped-def]
    out = ref.softmax_cross_entropy(logits, target, **kw)
    return out * torch.ones(out.shape, dtype=out.dtype)


def ce_dropout(logits, target, **kw):  # type: ignore[no-untyped-def]
    return ref.softmax_cross_entropy(F.dropout(logits, 0.2, training=True), target, **kw)


def wce_soft_argmax(logits, target, weights):  # type: ignore[no-untyped-def]
    # Soft CE against the one-hot rows *without* the weights' broadcast over classes.
    return -(torch.log_softmax(logits, -1) * target).sum(-1)


def wce_weights_squared(logits, target, weights):  # type: ignore[no-untyped-def]
    return ref.weighted_cross_entropy(logits, target, weights) * weights


def wce_no_logsoftmax(logits, target, weights):  # type: ignore[no-untyped-def]
    # Treats the logits as log-probabilities (a missing log_softmax).
    return -logits.gather(-1, target.argmax(-1, keepdim=True)).squeeze(-1) * weights


def wce_float32(logits, target, weights):  # type: ignore[no-untyped-def]
    return ref.weighted_cross_entropy(logits.float(), target.float(), weights.float())


def sf_naive_pow(logits, target, *, gamma=2.0, alpha=None, reduction="mean"):  # type: ignore[no-untyped-def]
    logp = torch.log_softmax(logits, 1).gather(1, target.unsqueeze(1)).squeeze(1)
    loss = (1 - logp.exp()) ** gamma * -logp
    if alpha is not None:
        loss = alpha[target] * loss
    return loss if reduction == "none" else (loss.sum() if reduction == "sum" else loss.mean())


def sf_pt_power(logits, target, *, gamma=2.0, alpha=None, reduction="mean"):  # type: ignore[no-untyped-def]
    logp = torch.log_softmax(logits, 1).gather(1, target.unsqueeze(1)).squeeze(1)
    loss = logp.exp() ** gamma * -logp
    if alpha is not None:
        loss = alpha[target] * loss
    return loss if reduction == "none" else (loss.sum() if reduction == "sum" else loss.mean())


def sf_gamma_one(logits, target, *, gamma=2.0, alpha=None, reduction="mean"):  # type: ignore[no-untyped-def]
    return ref.softmax_focal(logits, target, gamma=1.0, alpha=alpha, reduction=reduction)


def sf_epsilon_factor(logits, target, *, gamma=2.0, alpha=None, reduction="mean"):  # type: ignore[no-untyped-def]
    logp = torch.log_softmax(logits, 1).gather(1, target.unsqueeze(1)).squeeze(1)
    loss = (1.000001 - logp.exp()) ** gamma * -logp  # "non-zero base for stability": exceeds 1 when p_t < 1e-6
    if alpha is not None:
        loss = alpha[target] * loss
    return loss if reduction == "none" else (loss.sum() if reduction == "sum" else loss.mean())


def sf_alpha_on_all(logits, target, *, gamma=2.0, alpha=None, reduction="mean"):  # type: ignore[no-untyped-def]
    # alpha applied to the reduced loss as alpha.mean() (a scalar), not per target class.
    out = ref.softmax_focal(logits, target, gamma=gamma, alpha=None, reduction=reduction)
    return out * alpha.mean() if alpha is not None else out


def sf_float32(logits, target, *, gamma=2.0, alpha=None, reduction="mean"):  # type: ignore[no-untyped-def]
    return ref.softmax_focal(logits.float(), target, gamma=gamma, alpha=None if alpha is None else alpha.float(), reduction=reduction)


def sf_cpu_constant(logits, target, **kw):  # type: ignore[no-untyped-def]
    out = ref.softmax_focal(logits, target, **kw)
    return out * torch.ones(out.shape, dtype=out.dtype)


def sf_dropout(logits, target, **kw):  # type: ignore[no-untyped-def]
    return ref.softmax_focal(F.dropout(logits, 0.2, training=True), target, **kw)


def kl_plain_log(input, target, *, reduction="mean", log_target=False):  # type: ignore[no-untyped-def]
    # t * log(t) without xlogy: 0 * log 0 = nan at zero target probabilities.
    t = target.exp() if log_target else target
    point = t * (torch.log(t) - input)
    if reduction == "none":
        return point
    if reduction == "sum":
        return point.sum()
    return point.sum() / input.shape[0] if reduction == "batchmean" else point.mean()


def kl_batchmean_is_mean(input, target, *, reduction="mean", log_target=False):  # type: ignore[no-untyped-def]
    return ref.kl_div(input, target, reduction="mean" if reduction == "batchmean" else reduction, log_target=log_target)


def kl_swapped(input, target, *, reduction="mean", log_target=False):  # type: ignore[no-untyped-def]
    # KL(q || p) instead of KL(p || q): the arguments' roles swapped.
    q = input.exp()
    logt = target if log_target else torch.log(target.clamp_min(1e-30))
    point = q * (input - logt)
    if reduction == "none":
        return point
    if reduction == "sum":
        return point.sum()
    return point.sum() / input.shape[0] if reduction == "batchmean" else point.mean()


def kl_log_target_ignored(input, target, *, reduction="mean", log_target=False):  # type: ignore[no-untyped-def]
    return ref.kl_div(input, target, reduction=reduction, log_target=False)


def kl_float32(input, target, *, reduction="mean", log_target=False):  # type: ignore[no-untyped-def]
    return ref.kl_div(input.float(), target.float(), reduction=reduction, log_target=log_target)


def kl_cpu_constant(input, target, **kw):  # type: ignore[no-untyped-def]
    out = ref.kl_div(input, target, **kw)
    return out * torch.ones(out.shape, dtype=out.dtype)


def kl_dropout(input, target, **kw):  # type: ignore[no-untyped-def]
    return ref.kl_div(F.dropout(input, 0.2, training=True), target, **kw)


MUTANTS = [
    Mutant("weighted_mean_over_n", CE, ce_weighted_mean_over_n, "weighted mean divides by N, not by the sum of the targets' weights",
           ("agrees_with_numpy", "agrees_with_torch", "all_ignored_batch")),
    Mutant("ignored_in_denominator", CE, ce_ignored_in_denominator, "ignored entries still count in the mean's denominator",
           ("agrees_with_torch", "all_ignored_batch")),
    Mutant("all_ignored_gives_zero", CE, ce_all_ignored_zero, "an all-ignored mean returns 0 instead of torch's nan",
           ("all_ignored_batch",)),
    Mutant("smoothing_ignores_weights", CE, ce_smoothing_ignores_weights, "the label-smoothing term is unweighted",
           ("agrees_with_torch", "agrees_with_numpy")),
    Mutant("smoothing_over_other_classes", CE, ce_smoothing_wrong_mass, "eps spread over the C - 1 other classes",
           ("label_smoothing_formula", "agrees_with_numpy")),
    Mutant("naive_softmax", CE, ce_naive_softmax, "log(exp(x) / sum exp(x)) without the max shift",
           ("agrees_with_numpy", "shift_invariant_logits", "one_hot_probability_target_equals_index_target", "agrees_with_tensorflow",
            "low_precision_matches_float32")),
    Mutant("ignored_gathered_as_class0", CE, ce_ignored_as_class0, "ignore_index clamped to class 0 and never masked",
           ("ignored_entries_do_not_matter", "agrees_with_torch")),
    Mutant("detached_normaliser", CE, ce_detached_softmax, "logsumexp detached from the graph", ("gradient_is_softmax_minus_target",)),
    Mutant("shifts_logits_in_place", CE, ce_in_place_softmax, "subtracts the row max in the caller's tensor", ("inputs_not_modified",)),
    Mutant("float32", CE, ce_float32, "computes and returns float32", ("output_dtype_and_shape",)),
    Mutant("cpu_constant", CE, ce_cpu_constant, "builds a tensor on the CPU", _DEVICE),
    Mutant("dropout_left_on", CE, ce_dropout, "dropout in training mode", ("compiled_matches_eager",)),
    Mutant("soft_ce_unweighted", WCE, wce_soft_argmax, "anchor weights dropped", ("agrees_with_numpy", "linear_in_weights")),
    Mutant("weights_squared", WCE, wce_weights_squared, "anchor weight applied twice", ("linear_in_weights",)),
    Mutant("no_log_softmax", WCE, wce_no_logsoftmax, "logits used as log-probabilities",
           ("agrees_with_numpy", "gradient_is_softmax_minus_target")),
    Mutant("float32", WCE, wce_float32, "computes and returns float32", ("output_dtype_and_shape",)),
    Mutant("naive_pow", SF, sf_naive_pow, "(1 - exp(log p_t)) ** gamma: nan gradient for gamma < 1 where p_t rounds to 1",
           ("finite_gradients",)),
    Mutant("pt_power", SF, sf_pt_power, "p_t ** gamma instead of (1 - p_t) ** gamma",
           ("agrees_with_numpy",)),
    Mutant("epsilon_in_factor", SF, sf_epsilon_factor, "(1.000001 - p_t) ** gamma exceeds 1 for confident mistakes",
           ("never_above_cross_entropy",)),
    Mutant("gamma_fixed_at_one", SF, sf_gamma_one, "the focal exponent ignored (always 1)", ("agrees_with_numpy", "agrees_with_keras")),
    Mutant("alpha_as_scalar", SF, sf_alpha_on_all, "per-class alpha collapsed to its mean", ("agrees_with_numpy",)),
    Mutant("float32", SF, sf_float32, "computes and returns float32", ("output_dtype_and_shape", "low_precision_matches_float32")),
    Mutant("cpu_constant", SF, sf_cpu_constant, "builds a tensor on the CPU", _DEVICE),
    Mutant("dropout_left_on", SF, sf_dropout, "dropout in training mode", ("compiled_matches_eager",)),
    Mutant("seed_factor_after_mean", SF, ref.seed_softmax_focal, "focal factor applied to the mean CE (seed 002)",
           ("agrees_with_numpy", "gamma0_is_cross_entropy", "mean_is_mean_of_per_sample")),
    Mutant("plain_log", KL, kl_plain_log, "t * log t without xlogy: nan at zero target probabilities",
           ("agrees_with_numpy", "zero_target_probabilities_are_finite", "kl_of_a_distribution_with_itself_is_zero")),
    Mutant("batchmean_as_mean", KL, kl_batchmean_is_mean, "'batchmean' divides by numel", ("batchmean_is_sum_over_batch",)),
    Mutant("swapped_arguments", KL, kl_swapped, "KL(q || p) instead of KL(p || q)",
           ("agrees_with_numpy", "cross_entropy_minus_entropy")),
    Mutant("log_target_ignored", KL, kl_log_target_ignored, "log_target=True treated as probabilities", ("log_target_agrees",)),
    Mutant("float32", KL, kl_float32, "computes and returns float32", ("output_dtype_and_shape", "low_precision_matches_float32")),
    Mutant("cpu_constant", KL, kl_cpu_constant, "builds a tensor on the CPU", _DEVICE),
    Mutant("dropout_left_on", KL, kl_dropout, "dropout in training mode", ("compiled_matches_eager",)),
]
