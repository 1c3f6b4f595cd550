"""Mutants of the softmax family: cross-entropy, weighted CE, softmax focal, KL.

Each takes the spec's canonical keywords and differs from the reference only in its planted
defect; the generic ones (ignored keywords, changed defaults, writes into inputs, detached
inputs) come from ``tests.mutants.generic``.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from impls import classification as ref
from impls._validate import check_reduction
from tests.mutants import Mutant

CE, WCE, SF, KL = "softmax_cross_entropy", "weighted_cross_entropy", "softmax_focal", "kl_div"
_DEVICE = ("cuda_matches_cpu", "mps_matches_cpu")


def _reduce(per: torch.Tensor, reduction: str) -> torch.Tensor:
    return per if reduction == "none" else (per.sum() if reduction == "sum" else per.mean())


# ---------------------------------------------------------------------------
# softmax_cross_entropy
# ---------------------------------------------------------------------------


def ce_weighted_mean_over_n(logits, target, *, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):  # type: ignore[no-untyped-def]
    # The common mistake: a weighted mean that divides by the number of entries.
    per = ref.softmax_cross_entropy(logits, target, weight=weight, ignore_index=ignore_index,
                                    label_smoothing=label_smoothing, reduction="none")
    return _reduce(per, reduction)


def ce_ignored_in_denominator(logits, target, *, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):  # type: ignore[no-untyped-def]
    if target.is_floating_point() or reduction != "mean":
        return ref.softmax_cross_entropy(logits, target, weight=weight, ignore_index=ignore_index,
                                         label_smoothing=label_smoothing, reduction=reduction)
    per = ref.softmax_cross_entropy(logits, target, weight=weight, ignore_index=ignore_index,
                                    label_smoothing=label_smoothing, reduction="none")
    w = torch.ones_like(per) if weight is None else weight[target.clamp(0, logits.shape[1] - 1)]
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
        return _reduce(-(target * logp).sum(1), reduction)
    return F.nll_loss(logp, target, weight=weight, ignore_index=ignore_index, reduction=reduction)


def ce_detached_softmax(logits, target, *, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):  # type: ignore[no-untyped-def]
    lse = torch.logsumexp(logits, 1, keepdim=True).detach()
    logp = logits - lse
    if target.is_floating_point():
        return _reduce(-(target * logp).sum(1), reduction)
    return F.nll_loss(logp, target, weight=weight, ignore_index=ignore_index, reduction=reduction)


def ce_in_place_softmax(logits, target, *, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):  # type: ignore[no-untyped-def]
    logits.sub_(logits.amax(1, keepdim=True).detach())  # "stabilise" in the caller's tensor
    return ref.softmax_cross_entropy(logits, target, weight=weight, ignore_index=ignore_index,
                                     label_smoothing=label_smoothing, reduction=reduction)


def ce_ignored_as_class0(logits, target, *, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):  # type: ignore[no-untyped-def]
    if target.is_floating_point():
        return ref.softmax_cross_entropy(logits, target, weight=weight, label_smoothing=label_smoothing, reduction=reduction)
    valid = target != ignore_index
    t = torch.where(valid, target, torch.zeros_like(target))
    per = ref.softmax_cross_entropy(logits, t, weight=weight, label_smoothing=label_smoothing, reduction="none")
    if reduction == "none":
        return per
    return per.sum() if reduction == "sum" else per.sum() / valid.sum()


def ce_float32(logits, target, *, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):  # type: ignore[no-untyped-def]
    return ref.softmax_cross_entropy(logits.float(), target.float() if target.is_floating_point() else target,
                                     weight=None if weight is None else weight.float(), ignore_index=ignore_index,
                                     label_smoothing=label_smoothing, reduction=reduction)


def ce_fits_weight(logits, target, *, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):  # type: ignore[no-untyped-def]
    # A class weight of another length is cut or padded with ones to C instead of rejected.
    c = logits.shape[1] if logits.dim() > 1 else 0
    if weight is not None and weight.dim() == 1 and weight.numel() != c:
        weight = torch.cat([weight, torch.ones(max(c - weight.numel(), 0), dtype=weight.dtype)])[:c]
    return ref.softmax_cross_entropy(logits, target, weight=weight, ignore_index=ignore_index,
                                     label_smoothing=label_smoothing, reduction=reduction)


def ce_squeezes_target(logits, target, *, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):  # type: ignore[no-untyped-def]
    # Accepts (N, 1, *) class indices (a kept class axis) by squeezing it: a silent reshape.
    if not target.is_floating_point() and target.dim() == logits.dim() and target.shape[1] == 1:
        target = target.squeeze(1)
    return ref.softmax_cross_entropy(logits, target, weight=weight, ignore_index=ignore_index,
                                     label_smoothing=label_smoothing, reduction=reduction)


def ce_clamps_classes(logits, target, *, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):  # type: ignore[no-untyped-def]
    # "Robust" labels: out-of-range class indices clamped into range instead of rejected.
    if not target.is_floating_point():
        target = torch.where(target == ignore_index, target, target.clamp(0, logits.shape[1] - 1))
    return ref.softmax_cross_entropy(logits, target, weight=weight, ignore_index=ignore_index,
                                     label_smoothing=label_smoothing, reduction=reduction)


def ce_cpu_constant(logits, target, **kw):  # type: ignore[no-untyped-def]
    out = ref.softmax_cross_entropy(logits, target, **kw)
    return out * torch.ones(out.shape, dtype=out.dtype)


def ce_dropout(logits, target, **kw):  # type: ignore[no-untyped-def]
    return ref.softmax_cross_entropy(F.dropout(logits, 0.2, training=True), target, **kw)


# ---------------------------------------------------------------------------
# weighted_cross_entropy
# ---------------------------------------------------------------------------


def wce_soft_argmax(logits, target, weights):  # type: ignore[no-untyped-def]
    # Soft CE against the target rows, and the anchor weights dropped.
    return -(torch.log_softmax(logits, -1) * target).sum(-1)


def wce_weights_squared(logits, target, weights):  # type: ignore[no-untyped-def]
    return ref.weighted_cross_entropy(logits, target, weights) * weights


def wce_last_of_tied_classes(logits, target, weights):  # type: ignore[no-untyped-def]
    # Where target scores tie (an all-zero row included), the last of the tied classes is read
    # (argmax over the flipped class axis), not the first.
    if target.numel() == 0:
        return ref.weighted_cross_entropy(logits, target, weights)
    last = target.shape[-1] - 1 - target.flip(-1).argmax(-1)
    hard = torch.nn.functional.one_hot(last, target.shape[-1]).to(target.dtype)
    return ref.weighted_cross_entropy(logits, hard, weights)


def wce_no_logsoftmax(logits, target, weights):  # type: ignore[no-untyped-def]
    # Treats the logits as log-probabilities (a missing log_softmax).
    return -logits.gather(-1, target.argmax(-1, keepdim=True)).squeeze(-1) * weights


def wce_naive_softmax(logits, target, weights):  # type: ignore[no-untyped-def]
    # -log(exp(x_t) / sum exp(x)): overflows to inf / inf = nan for logits beyond 88 (float32).
    e = torch.exp(logits)
    p = e.gather(-1, target.argmax(-1, keepdim=True)).squeeze(-1) / e.sum(-1)
    return -torch.log(p) * weights


def wce_float32(logits, target, weights):  # type: ignore[no-untyped-def]
    return ref.weighted_cross_entropy(logits.float(), target.float(), weights.float())


def wce_first_weight_column(logits, target, weights):  # type: ignore[no-untyped-def]
    # (B, A, k) weights silently reduced to their first column instead of rejected.
    return ref.weighted_cross_entropy(logits, target, weights[..., 0] if weights.dim() == 3 else weights)


def wce_float_logits_cast(logits, target, weights):  # type: ignore[no-untyped-def]
    # Integer logits silently cast to float instead of rejected.
    return ref.weighted_cross_entropy(logits if logits.is_floating_point() else logits.float(), target, weights)


def wce_cpu_constant(logits, target, weights):  # type: ignore[no-untyped-def]
    out = ref.weighted_cross_entropy(logits, target, weights)
    return out * torch.ones(out.shape, dtype=out.dtype)


def wce_dropout(logits, target, weights):  # type: ignore[no-untyped-def]
    return ref.weighted_cross_entropy(F.dropout(logits, 0.2, training=True), target, weights)


# ---------------------------------------------------------------------------
# softmax_focal
# ---------------------------------------------------------------------------


def sf_terms(core):  # type: ignore[no-untyped-def]
    """The canonical keywords around a mutant of the per-class focal term ``core(logits, gamma)``
    (``(1 - p_c)^gamma (-log p_c)`` for every class, shape (N, C, *)), applied as the reference
    does (alpha, ignore_index, label smoothing, reductions), so the mutant differs from the
    reference only in its planted defect."""

    @functools.wraps(core)
    def wrapped(logits, target, *, gamma=2.0, alpha=None, ignore_index=None, label_smoothing=0.0, reduction="mean"):  # type: ignore[no-untyped-def]
        check_reduction(reduction)
        n_cls = logits.shape[1]
        valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
        safe = torch.where(valid, target, torch.zeros_like(target)).long().unsqueeze(1)
        terms = core(torch.where(valid.unsqueeze(1), logits, torch.zeros_like(logits)), gamma)
        a = ref._alpha_vector(alpha, logits)
        if a is not None:
            terms = terms * a.view([1, n_cls] + [1] * (logits.dim() - 2))
        loss = terms.gather(1, safe).squeeze(1)
        if label_smoothing > 0:
            loss = (1 - label_smoothing) * loss + (label_smoothing / n_cls) * terms.sum(1)
        loss = torch.where(valid, loss, torch.zeros_like(loss))
        if reduction == "none":
            return loss
        return loss.sum() if reduction == "sum" else loss.sum() / valid.sum()

    return wrapped


@sf_terms
def sf_naive_pow(logits, gamma):  # type: ignore[no-untyped-def]
    # (1 - exp(log p)) ** gamma: a nan gradient for gamma < 1 where p rounds to 1.
    lp = torch.log_softmax(logits, 1)
    return (1 - lp.exp()) ** gamma * -lp


@sf_terms
def sf_pt_power(logits, gamma):  # type: ignore[no-untyped-def]
    lp = torch.log_softmax(logits, 1)
    return lp.exp() ** gamma * -lp


@sf_terms
def sf_gamma_one(logits, gamma):  # type: ignore[no-untyped-def]
    return ref._focal_terms(logits, 1.0)


@sf_terms
def sf_epsilon_factor(logits, gamma):  # type: ignore[no-untyped-def]
    # "Non-zero base for stability": 1.000001 - p exceeds 1 when p < 1e-6.
    lp = torch.log_softmax(logits, 1)
    return (1.000001 - lp.exp()) ** gamma * -lp


def sf_alpha_on_all(logits, target, *, alpha=None, **kw):  # type: ignore[no-untyped-def]
    # A per-class alpha collapsed to its mean (a scalar), not taken per target class.
    out = ref.softmax_focal(logits, target, alpha=None, **kw)
    return out * alpha.mean() if isinstance(alpha, torch.Tensor) else ref.softmax_focal(logits, target, alpha=alpha, **kw)


def sf_alpha_number_uniform(logits, target, *, alpha=None, **kw):  # type: ignore[no-untyped-def]
    # Keras' reading of a number alpha: every class weighted by alpha (class 0 not 1 - alpha).
    if alpha is None or isinstance(alpha, torch.Tensor):
        return ref.softmax_focal(logits, target, alpha=alpha, **kw)
    return ref.softmax_focal(logits, target, alpha=torch.full((logits.shape[1],), float(alpha)), **kw)


def sf_mean_over_classes(logits, target, *, reduction="mean", **kw):  # type: ignore[no-untyped-def]
    # kornia's and monai's mean: over the N x C one-hot map, not over the entries.
    out = ref.softmax_focal(logits, target, reduction=reduction, **kw)
    return out / logits.shape[1] if reduction == "mean" else out


def sf_ignored_in_denominator(logits, target, *, reduction="mean", ignore_index=None, **kw):  # type: ignore[no-untyped-def]
    # Ignored entries give 0 but still count in the mean (kornia's convention).
    per = ref.softmax_focal(logits, target, reduction="none", ignore_index=ignore_index, **kw)
    return per.mean() if reduction == "mean" else ref.softmax_focal(logits, target, reduction=reduction,
                                                                      ignore_index=ignore_index, **kw)


def _sf_masked_after(logits, target, ignore_index, kw, mask):  # type: ignore[no-untyped-def]
    """The focal loss of every entry (the ignored ones read as class 0), masked afterwards by
    ``mask(per_entry, valid)`` and reduced over the valid entries."""
    if ignore_index is None:
        return ref.softmax_focal(logits, target, **kw)
    valid = target != ignore_index
    safe = torch.where(valid, target, torch.zeros_like(target))
    reduction = kw.pop("reduction", "mean")
    per = mask(ref.softmax_focal(logits, safe, reduction="none", **kw), valid)
    if reduction == "none":
        return per
    return per.sum() if reduction == "sum" else per.sum() / valid.sum()


def sf_ignored_logits_leak(logits, target, *, ignore_index=None, **kw):  # type: ignore[no-untyped-def]
    # Masks the loss of ignored entries by multiplying with 0, after computing it from their
    # logits: a non-finite ignored logit turns into nan * 0 = nan.
    return _sf_masked_after(logits, target, ignore_index, kw, lambda per, valid: per * valid.to(per.dtype))


def sf_ignored_masked_by_where(logits, target, *, ignore_index=None, **kw):  # type: ignore[no-untyped-def]
    # The value is masked with torch.where (right: 0 for ignored entries whatever their logits), but
    # the terms were formed from the ignored logits: their backward meets 0 * nan.
    return _sf_masked_after(logits, target, ignore_index, kw,
                            lambda per, valid: torch.where(valid, per, torch.zeros((), dtype=per.dtype)))


def ce_ignored_masked_by_where(logits, target, *, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):  # type: ignore[no-untyped-def]
    # torch.where keeps the ignored entries' value at 0, but their loss was formed from their
    # logits first: a nan or inf logit there gives the row a nan gradient (0 * nan).
    if target.is_floating_point():
        return ref.softmax_cross_entropy(logits, target, weight=weight, label_smoothing=label_smoothing, reduction=reduction)
    valid = target != ignore_index
    t = torch.where(valid, target, torch.zeros_like(target))
    per = ref.softmax_cross_entropy(logits, t, weight=weight, label_smoothing=label_smoothing, reduction="none")
    per = torch.where(valid, per, torch.zeros((), dtype=per.dtype))
    if reduction == "none":
        return per
    w = torch.ones(logits.shape[1], dtype=logits.dtype) if weight is None else weight.to(logits.dtype)
    den = (w[t] * valid).sum()
    return per.sum() if reduction == "sum" else per.sum() / den


def sf_smoothing_without_factor(logits, target, *, gamma=2.0, alpha=None, label_smoothing=0.0, **kw):  # type: ignore[no-untyped-def]
    # Label smoothing's uniform part taken from the plain cross-entropy (the focal factor only on the target).
    if label_smoothing == 0:
        return ref.softmax_focal(logits, target, gamma=gamma, alpha=alpha, **kw)
    hard = ref.softmax_focal(logits, target, gamma=gamma, alpha=alpha, **kw)
    uniform = ref.softmax_focal(logits, target, gamma=0.0, alpha=alpha, label_smoothing=1.0, **kw)
    return (1 - label_smoothing) * hard + label_smoothing * uniform


def sf_float32(logits, target, *, alpha=None, **kw):  # type: ignore[no-untyped-def]
    return ref.softmax_focal(logits.float(), target, alpha=alpha.float() if isinstance(alpha, torch.Tensor) else alpha, **kw)


def sf_squeezes_target(logits, target, **kw):  # type: ignore[no-untyped-def]
    if target.dim() == logits.dim() and target.shape[1] == 1:
        target = target.squeeze(1)
    return ref.softmax_focal(logits, target, **kw)


def sf_unchecked_gamma(logits, target, *, gamma=2.0, **kw):  # type: ignore[no-untyped-def]
    # A negative gamma silently read as its magnitude instead of rejected.
    return ref.softmax_focal(logits, target, gamma=abs(gamma), **kw)


def sf_cpu_constant(logits, target, **kw):  # type: ignore[no-untyped-def]
    out = ref.softmax_focal(logits, target, **kw)
    return out * torch.ones(out.shape, dtype=out.dtype)


def sf_dropout(logits, target, **kw):  # type: ignore[no-untyped-def]
    return ref.softmax_focal(F.dropout(logits, 0.2, training=True), target, **kw)


# ---------------------------------------------------------------------------
# kl_div
# ---------------------------------------------------------------------------


def _kl_reduce(point: torch.Tensor, reduction: str, n: int) -> torch.Tensor:
    if reduction == "batchmean":
        return point.sum() / n
    return _reduce(point, reduction)


def kl_plain_log(input, target, *, reduction="mean", log_target=False):  # type: ignore[no-untyped-def]
    # t * log(t) without xlogy: 0 * log 0 = nan at zero target probabilities.
    t = target.exp() if log_target else target
    return _kl_reduce(t * (torch.log(t) - input), reduction, input.shape[0] if input.dim() else 1)


def kl_batchmean_is_mean(input, target, *, reduction="mean", log_target=False):  # type: ignore[no-untyped-def]
    return ref.kl_div(input, target, reduction="mean" if reduction == "batchmean" else reduction, log_target=log_target)


def kl_batchmean_over_rows(input, target, *, reduction="mean", log_target=False):  # type: ignore[no-untyped-def]
    # 'batchmean' divides by every leading axis (the number of distributions), not by the batch size:
    # the same for (N, C) inputs, wrong for (N, K, C) ones.
    if reduction != "batchmean" or input.dim() <= 2:
        return ref.kl_div(input, target, reduction=reduction, log_target=log_target)
    out = ref.kl_div(input, target, reduction="sum", log_target=log_target)
    return out / max(1, input.numel() // max(1, input.shape[-1]))


def ce_spatial_targets_transposed(logits, target, **kw):  # type: ignore[no-untyped-def]
    # (N, H, W) class indices read in (N, W, H) order (a flatten of a transposed view): only a
    # spatial map with H, W >= 2 and unequal targets shows it.
    if logits.dim() == 4 and not target.is_floating_point():
        target = target.transpose(1, 2).reshape(target.shape)
    return ref.softmax_cross_entropy(logits, target, **kw)


def kl_swapped(input, target, *, reduction="mean", log_target=False):  # type: ignore[no-untyped-def]
    # KL(q || p) instead of KL(p || q): the arguments' roles swapped.
    logt = target if log_target else torch.log(target.clamp_min(1e-30))
    return _kl_reduce(input.exp() * (input - logt), reduction, input.shape[0] if input.dim() else 1)


def kl_log_target_ignored(input, target, *, reduction="mean", log_target=False):  # type: ignore[no-untyped-def]
    return ref.kl_div(input, target, reduction=reduction, log_target=False)


def kl_float32(input, target, *, reduction="mean", log_target=False):  # type: ignore[no-untyped-def]
    return ref.kl_div(input.float(), target.float(), reduction=reduction, log_target=log_target)


def kl_broadcasts(input, target, **kw):  # type: ignore[no-untyped-def]
    # torch.nn.functional.kl_div's behaviour: a target of another shape broadcast against the input.
    x, t = torch.broadcast_tensors(input, target)
    return ref.kl_div(x, t, **kw)


def kl_promotes(input, target, **kw):  # type: ignore[no-untyped-def]
    # A target of another dtype silently cast to the input's.
    return ref.kl_div(input, target.to(input.dtype) if target.is_floating_point() else target, **kw)


def kl_cpu_constant(input, target, **kw):  # type: ignore[no-untyped-def]
    out = ref.kl_div(input, target, **kw)
    return out * torch.ones(out.shape, dtype=out.dtype)


def kl_dropout(input, target, **kw):  # type: ignore[no-untyped-def]
    return ref.kl_div(F.dropout(input, 0.2, training=True), target, **kw)


MUTANTS = [
    Mutant("weighted_mean_over_n", CE, ce_weighted_mean_over_n, "weighted mean divides by N, not by the sum of the targets' weights",
           ("agrees_with_numpy", "agrees_with_tensorflow", "all_ignored_batch")),
    Mutant("ignored_in_denominator", CE, ce_ignored_in_denominator, "ignored entries still count in the mean's denominator",
           ("agrees_with_torch", "all_ignored_batch")),
    Mutant("all_ignored_gives_zero", CE, ce_all_ignored_zero, "an all-ignored mean returns 0 instead of torch's nan",
           ("all_ignored_batch",)),
    Mutant("smoothing_ignores_weights", CE, ce_smoothing_ignores_weights, "the label-smoothing term is unweighted",
           ("agrees_with_torch", "agrees_with_numpy", "label_smoothing_formula")),
    Mutant("smoothing_over_other_classes", CE, ce_smoothing_wrong_mass, "eps spread over the C - 1 other classes",
           ("label_smoothing_formula", "agrees_with_numpy", "honours_label_smoothing")),
    Mutant("spatial_targets_transposed", CE, ce_spatial_targets_transposed,
           "(N, H, W) targets read in (N, W, H) order", ("agrees_with_numpy",)),
    Mutant("naive_softmax", CE, ce_naive_softmax, "log(exp(x) / sum exp(x)) without the max shift",
           ("agrees_with_numpy", "shift_invariant_logits", "one_hot_probability_target_equals_index_target",
            "agrees_with_tensorflow", "finite_gradients", "low_precision_matches_float32")),
    Mutant("ignored_gathered_as_class0", CE, ce_ignored_as_class0, "ignore_index clamped to class 0 and never masked",
           ("ignored_entries_do_not_matter", "agrees_with_torch")),
    Mutant("ignored_masked_by_where", CE, ce_ignored_masked_by_where,
           "ignored entries' CE formed from their logits, then masked by torch.where: a nan gradient there",
           ("finite_gradients",)),
    Mutant("detached_normaliser", CE, ce_detached_softmax, "logsumexp detached from the graph",
           ("gradient_is_softmax_minus_target", "gradcheck_float64")),
    Mutant("shifts_logits_in_place", CE, ce_in_place_softmax, "subtracts the row max in the caller's tensor", ("inputs_not_modified",)),
    Mutant("float32", CE, ce_float32, "computes and returns float32", ("output_dtype_and_shape", "low_precision_matches_float32")),
    # ce_squeezes_target (an (N, 1, *) index target squeezed) is not yet drawn by rejects_shape_mismatch for
    # softmax_cross_entropy: a known gap, the softmax_focal twin below is killed.
    Mutant("fits_weight", CE, ce_fits_weight, "cuts or pads a class weight of another length to C",
           ("rejects_shape_mismatch",)),
    Mutant("clamps_class_indices", CE, ce_clamps_classes, "clamps out-of-range class indices instead of rejecting them",
           ("rejects_invalid_inputs",)),
    Mutant("cpu_constant", CE, ce_cpu_constant, "builds a tensor on the CPU", _DEVICE),
    Mutant("dropout_left_on", CE, ce_dropout, "dropout in training mode", ("deterministic",)),
    Mutant("soft_ce_unweighted", WCE, wce_soft_argmax, "soft CE against the target rows, anchor weights dropped",
           ("agrees_with_numpy", "agrees_with_tensorflow", "linear_in_weights", "only_the_argmax_of_the_target_matters")),
    Mutant("last_of_tied_classes", WCE, wce_last_of_tied_classes,
           "tied target scores (all-zero rows) read as the last tied class, not the first",
           ("agrees_with_numpy", "only_the_argmax_of_the_target_matters")),
    Mutant("weights_squared", WCE, wce_weights_squared, "anchor weight applied twice", ("linear_in_weights", "agrees_with_numpy")),
    Mutant("no_log_softmax", WCE, wce_no_logsoftmax, "logits used as log-probabilities",
           ("agrees_with_numpy", "gradient_is_softmax_minus_target")),
    Mutant("naive_softmax", WCE, wce_naive_softmax, "exp(x_t) / sum exp(x) overflows: nan for large logits",
           ("finite_gradients", "agrees_with_numpy")),
    Mutant("float32", WCE, wce_float32, "computes and returns float32", ("output_dtype_and_shape", "low_precision_matches_float32")),
    Mutant("first_weight_column", WCE, wce_first_weight_column, "(B, A, k) weights reduced to their first column",
           ("rejects_shape_mismatch",)),
    Mutant("casts_integer_logits", WCE, wce_float_logits_cast, "integer logits cast to float instead of rejected",
           ("rejects_invalid_inputs",)),
    Mutant("cpu_constant", WCE, wce_cpu_constant, "builds a tensor on the CPU", _DEVICE),
    Mutant("dropout_left_on", WCE, wce_dropout, "dropout in training mode", ("deterministic",)),
    Mutant("naive_pow", SF, sf_naive_pow, "(1 - exp(log p)) ** gamma: nan gradient for gamma < 1 where p rounds to 1",
           ("finite_gradients",)),
    Mutant("pt_power", SF, sf_pt_power, "p ** gamma instead of (1 - p) ** gamma",
           ("agrees_with_numpy", "agrees_with_keras", "two_classes_is_sigmoid_focal")),
    Mutant("epsilon_in_factor", SF, sf_epsilon_factor, "(1.000001 - p) ** gamma exceeds 1 for confident mistakes",
           ("never_above_cross_entropy",)),
    Mutant("gamma_fixed_at_one", SF, sf_gamma_one, "the focal exponent ignored (always 1)",
           ("agrees_with_numpy", "agrees_with_keras", "gamma0_is_cross_entropy")),
    Mutant("alpha_as_scalar", SF, sf_alpha_on_all, "per-class alpha collapsed to its mean", ("honours_alpha",)),
    Mutant("alpha_number_uniform", SF, sf_alpha_number_uniform, "a number alpha weights every class (Keras' reading), not "
           "class 0 by 1 - alpha", ("two_classes_is_sigmoid_focal", "honours_alpha")),
    Mutant("mean_over_classes", SF, sf_mean_over_classes, "'mean' over the N x C one-hot map (kornia, monai)",
           ("mean_is_mean_of_per_sample", "agrees_with_numpy", "gamma0_is_cross_entropy")),
    Mutant("ignored_in_denominator", SF, sf_ignored_in_denominator, "ignored entries still count in the mean",
           ("mean_is_mean_of_per_sample", "honours_ignore_index")),
    Mutant("ignored_logits_leak", SF, sf_ignored_logits_leak, "ignored entries masked by * 0 after the fact: nan logits leak",
           ("ignored_entries_do_not_matter",)),
    Mutant("ignored_masked_by_where", SF, sf_ignored_masked_by_where,
           "ignored entries' terms formed from their logits, then masked by torch.where: a nan gradient there",
           ("finite_gradients",)),
    Mutant("smoothing_without_factor", SF, sf_smoothing_without_factor, "the smoothed classes' terms lack the focal factor",
           ("agrees_with_numpy", "agrees_with_keras")),
    Mutant("float32", SF, sf_float32, "computes and returns float32", ("output_dtype_and_shape", "low_precision_matches_float32")),
    Mutant("squeezes_target", SF, sf_squeezes_target, "accepts (N, 1, *) class indices by squeezing the kept class axis",
           ("rejects_shape_mismatch",)),
    Mutant("unchecked_gamma", SF, sf_unchecked_gamma, "a negative gamma read as its magnitude", ("rejects_invalid_inputs",)),
    Mutant("cpu_constant", SF, sf_cpu_constant, "builds a tensor on the CPU", _DEVICE),
    Mutant("dropout_left_on", SF, sf_dropout, "dropout in training mode", ("deterministic",)),
    Mutant("seed_factor_after_mean", SF, ref.seed_softmax_focal, "focal factor applied to the mean CE (seed 002)",
           ("agrees_with_numpy", "gamma0_is_cross_entropy", "mean_is_mean_of_per_sample")),
    Mutant("plain_log", KL, kl_plain_log, "t * log t without xlogy: nan at zero target probabilities",
           ("agrees_with_numpy", "zero_target_probabilities_are_finite", "kl_of_a_distribution_with_itself_is_zero",
            "finite_gradients")),
    Mutant("batchmean_as_mean", KL, kl_batchmean_is_mean, "'batchmean' divides by numel", ("batchmean_is_sum_over_batch",)),
    Mutant("swapped_arguments", KL, kl_swapped, "KL(q || p) instead of KL(p || q)",
           ("agrees_with_numpy", "agrees_with_keras", "cross_entropy_minus_entropy")),
    Mutant("log_target_ignored", KL, kl_log_target_ignored, "log_target=True treated as probabilities", ("log_target_agrees",)),
    Mutant("float32", KL, kl_float32, "computes and returns float32", ("output_dtype_and_shape", "low_precision_matches_float32")),
    Mutant("broadcasts_target", KL, kl_broadcasts, "a target of another shape broadcast against the input",
           ("rejects_shape_mismatch",)),
    Mutant("batchmean_over_rows", KL, kl_batchmean_over_rows,
           "'batchmean' divides by the number of rows (every leading axis), not the batch size",
           ("batchmean_is_sum_over_batch", "agrees_with_numpy")),
    Mutant("promotes_target", KL, kl_promotes, "a target of another dtype silently cast", ("rejects_invalid_inputs",)),
    Mutant("cpu_constant", KL, kl_cpu_constant, "builds a tensor on the CPU", _DEVICE),
    Mutant("dropout_left_on", KL, kl_dropout, "dropout in training mode", ("deterministic",)),
]
