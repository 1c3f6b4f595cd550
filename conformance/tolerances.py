"""The one home of every numerical tolerance in the suite.

A comparison passes when ``|got - want| <= atol + rtol * max(|want|, scale)``
elementwise, where ``want`` is the oracle's float64 value and ``got`` is the
target's output cast *up* to float64 (never the oracle down). ``scale`` is an
optional per-element magnitude supplied by a property when the quantity is the
difference of larger terms (e.g. TensorFlow's ``max(x, 0) - x*z`` loses
``ulp(x)`` absolutely): it states the backward-error bound of a stable
evaluation instead of loosening the tolerance everywhere. For losses of a logit
``x`` the suite accepts *backward-stable* implementations: exact for an input
perturbed by a relative ``rtol``, which moves the loss by up to
``|dL/dx| * rtol * |x|`` (torch's and TensorFlow's own BCE formulas are of this
kind). How much better an implementation does is *measured*, not judged: the
report's max ULP / relative errors against the exact oracle.

Defaults are per dtype. Overrides are keyed by ``(spec_id, key)`` where ``key``
names the comparison (an oracle name, ``"grad"``, ...); each carries its reason,
which the report prints next to any failure that used it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = [
    "Tol",
    "tolerance",
    "grad_tolerance",
    "ulp_budget",
    "OVERRIDES",
    "FLOAT64_OVERRIDES",
    "ULP_BUDGETS",
    "DEFAULTS",
    "GRAD_DEFAULTS",
    "decision_margin",
    "DECISION_MARGINS",
]


@dataclass(frozen=True)
class Tol:
    rtol: float
    atol: float
    reason: str = ""

    def scaled(self, factor: float, reason: str) -> Tol:
        return Tol(self.rtol * factor, self.atol * factor, reason)


# Forward values. float64 is far tighter than torch.testing's 1e-7: a float64
# loss computed stably is accurate to a few ulp, and the looser default would let
# "computes in float32 then casts back" pass. float32 allows ~40 ulp, enough for a
# chain of exp/log1p/pow that each round once.
DEFAULTS: dict[torch.dtype, Tol] = {
    torch.float64: Tol(rtol=1e-10, atol=1e-12, reason="float64 default"),
    torch.float32: Tol(rtol=5e-6, atol=1e-6, reason="float32 default"),
    torch.float16: Tol(rtol=2e-3, atol=1e-3, reason="float16 default (10-bit mantissa)"),
    torch.bfloat16: Tol(rtol=2e-2, atol=1e-2, reason="bfloat16 default (7-bit mantissa)"),
}

# Gradients: one more rounding chain than the value, and autograd reorders sums.
GRAD_DEFAULTS: dict[torch.dtype, Tol] = {
    torch.float64: Tol(rtol=1e-8, atol=1e-10, reason="float64 gradient default"),
    torch.float32: Tol(rtol=2e-5, atol=2e-6, reason="float32 gradient default"),
    torch.float16: Tol(rtol=5e-3, atol=2e-3, reason="float16 gradient default"),
    torch.bfloat16: Tol(rtol=4e-2, atol=2e-2, reason="bfloat16 gradient default"),
}

# (spec_id or "*", key) -> tolerance, regardless of the target's dtype.
OVERRIDES: dict[tuple[str, str], Tol] = {
    ("*", "keras"): Tol(
        rtol=3e-5,
        atol=1e-6,
        reason="Keras computes in float32 (floatx) whatever the input dtype, so the "
        "comparison can be no tighter than float32 even for float64 targets",
    ),
    ("*", "tf32"): Tol(
        rtol=5e-6,
        atol=1e-6,
        reason="the TensorFlow op ran in float32 for a float32 input",
    ),
    ("*", "reduction"): Tol(
        rtol=1e-5,
        atol=1e-6,
        reason="a reduction reorders a float32 sum; the error grows with the element count",
    ),
    ("*", "seed_table"): Tol(
        rtol=0.0,
        atol=5e-5,
        reason="seed 004 prints its table to 4 decimal places: agreement to half a unit "
        "in the last printed digit",
    ),
    ("*", "device"): Tol(
        rtol=2e-5,
        atol=1e-6,
        reason="another device's kernels (vectorised exp/log, fused ops) round differently; a few float32 ulp",
    ),
    ("*", "compile"): Tol(
        rtol=2e-5,
        atol=1e-6,
        reason="torch.compile fuses and reorders operations; a few float32 ulp",
    ),
    ("*", "layout"): Tol(
        rtol=2e-5,
        atol=1e-6,
        reason="a non-contiguous input changes the order in which kernels visit and reduce elements (a sum over a "
        "transposed or channels-last tensor adds in another order); a few float32 ulp",
    ),
    ("*", "low_precision"): Tol(
        rtol=4e-3,
        atol=2e-3,
        reason="float16 keeps 11 significant bits and bfloat16 8; the default of the dtype applies when looser",
    ),
    ("*", "invariance"): Tol(
        rtol=1e-5,
        atol=2e-6,
        reason="eps in IoU-type denominators does not scale with the boxes: eps / area moves by up to 1e-7 x s^2",
    ),
    ("*", "gradcheck"): Tol(
        rtol=1e-3,
        atol=1e-5,
        reason="central finite differences in float64 with eps=1e-6 carry ~1e-6 "
        "truncation and rounding error; these are torch.autograd.gradcheck's own defaults scaled",
    ),
}

# (spec_id or "*", key) -> tolerance for float64 targets, where the key's override above
# is set for float32 and would be needlessly loose: both sides are float64 computations of
# the same function, so a path that silently drops to float32 must show.
FLOAT64_OVERRIDES: dict[tuple[str, str], Tol] = {
    ("*", "device"): Tol(
        rtol=1e-9,
        atol=1e-12,
        reason="another device's float64 kernels round differently and reorder sums (n * eps relative for n terms); "
        "a float32 path is 1e-7 away",
    ),
    ("*", "compile"): Tol(
        rtol=1e-9,
        atol=1e-12,
        reason="torch.compile fuses and reorders float64 operations (n * eps relative for n terms); a float32 path is 1e-7 away",
    ),
    ("*", "layout"): Tol(
        rtol=1e-9,
        atol=1e-12,
        reason="a non-contiguous float64 input reorders the kernels' sums (n * eps relative for n terms); a float32 path "
        "is 1e-7 away",
    ),
}


# (spec_id or "*", key) -> an error budget in ULPs of the judged dtype, for comparisons with
# an exact (arbitrary-precision) oracle: the tolerance is then n * eps(dtype) relative to
# max(|exact|, scale), where the property's scale is the first-order effect of one rounding of
# each *inexact* quantity the loss must form (eps * sum |v dL/dv|, the condition number times
# |L|). Where the loss is well conditioned that is a few ULPs of the result in every dtype, so a
# float64 result that carries float32-level error fails; where it is not (soft targets against
# large logits, whose product must round), the budget widens by exactly that conditioning.
ULP_BUDGETS: dict[tuple[str, str], tuple[int, str]] = {
    ("*", "exact"): (
        8,
        "8 ulp of the output dtype beyond the conditioning of the inexact inputs: a chain of a few correctly "
        "rounded exp/log1p/pow operations, summed without cancellation, stays within it",
    ),
    # CenterNet family. A probability p = sigmoid(x) (or the seed's clamp bounds 1e-4, 1 - 1e-4) is rounded to the
    # dtype before the loss sees it: |dp| <= ulp(p) / 2 <= eps |p| / 2, which moves the loss by at most
    # (eps / 2) sum_i |p_i dL/dp_i|. Near p = 1 at a negative pixel dL/dp ~ p^alpha / (1 - p) is ~1e4 (sigmoid(9)
    # in float32: 1 - p = 1.2e-4 carries 2.4e-4 relative error, so the loss moves by ~1e-4 where the loss itself
    # is ~9): a tolerance relative to |L| alone cannot hold, one relative to that sum does. The spec's scale adds
    # the terms' own magnitudes (each a few roundings of pow / log1p / products).
    ("penalty_reduced_focal", "rounded_probability"): (
        64,
        "p = sigmoid(x) is rounded to the dtype before the loss sees it, moving L by (eps / 2) sum |p dL/dp| (the "
        "scale); 64 ulp of that also cover the terms' own pow / log1p / product roundings and a float sum of ~100 "
        "non-negative terms",
    ),
    # bin_rot's periodicity: r + 2 pi is rounded to the dtype (|dr| <= eps |r + 2 pi| / 2) and the smooth L1 of
    # (sin, cos) has |d/dr| <= 2 per bin, so the loss moves by at most eps sum m |r + 2 pi| / sum m per bin (the
    # scale, with the loss's own log-sum-exp and subtraction roundings).
    ("bin_rot", "rounded_residual"): (
        16,
        "r + 2 pi is rounded to the dtype, moving the smooth L1 of (sin, cos) by eps |r + 2 pi| per active slot (the "
        "scale); 16 ulp also cover sin / cos and the per-bin means",
    ),
}


# Decision margins (SSD family: ssd_matching, hard_negative_mining, multibox_loss). A discrete
# decision whose gap to its alternative is below the margin may go either way in two correct
# implementations, so the properties that depend on it mask or skip it (the contract leaves
# exact ties open; near ties are ties up to rounding). The gaps are relative to the magnitude
# the compared values are rounded against:
# - an IoU against a rival IoU or the threshold: on the suite's dyadic grid inter and union are
#   exact, so an IoU carries one rounding of inter / union (half an ulp of a value in [0, 1]);
#   two distinct grid IoUs differ by >= 2^-21 relative (see conformance/specs/ssd.py), so float64
#   never masks a real decision, and float32 masks only gaps below ~80 ulp;
# - a confidence loss at the hard-negative cut, relative to 1 + the rows' largest |logit|: a
#   stable cross-entropy is rounded relative to the logits it subtracts (backward stability, as
#   for the losses of a logit above), a few ulp of that magnitude.
DECISION_MARGINS: dict[torch.dtype, float] = {
    torch.float64: 1e-9,
    torch.float32: 1e-5,
    torch.float16: 1e-2,
    torch.bfloat16: 5e-2,
}


def decision_margin(dtype: torch.dtype) -> float:
    """The relative gap below which a discrete decision computed in ``dtype`` counts as a tie."""
    return DECISION_MARGINS.get(dtype, DECISION_MARGINS[torch.float32])


def _lookup(table: dict[tuple[str, str], Tol], spec_id: str, key: str) -> Tol | None:
    """The spec's own entry for ``key``, else the ``"*"`` one, else None."""
    return table.get((spec_id, key), table.get(("*", key)))


def ulp_budget(spec_id: str, key: str) -> tuple[int, str] | None:
    return ULP_BUDGETS.get((spec_id, key), ULP_BUDGETS.get(("*", key)))


def tolerance(spec_id: str, key: str, dtype: torch.dtype) -> Tol:
    """The forward tolerance for comparison ``key`` of ``spec_id`` at ``dtype``."""
    budget = ulp_budget(spec_id, key)
    if budget is not None and dtype.is_floating_point:
        n, why = budget
        info = torch.finfo(dtype)
        return Tol(rtol=n * info.eps, atol=n * info.tiny, reason=f"{why} ({n} x eps({str(dtype).removeprefix('torch.')}))")
    if dtype == torch.float64 and (t64 := _lookup(FLOAT64_OVERRIDES, spec_id, key)) is not None:
        return t64
    d = DEFAULTS.get(dtype, DEFAULTS[torch.float32])
    base = _lookup(OVERRIDES, spec_id, key)
    if base is None:
        return d
    # An override never makes a low-precision target stricter than its dtype.
    return Tol(max(base.rtol, d.rtol), max(base.atol, d.atol), base.reason)


def grad_tolerance(spec_id: str, key: str, dtype: torch.dtype) -> Tol:
    """The gradient tolerance for comparison ``key`` of ``spec_id`` at ``dtype``."""
    base = _lookup(OVERRIDES, spec_id, "grad:" + key)
    if base is not None:
        return base
    return GRAD_DEFAULTS.get(dtype, GRAD_DEFAULTS[torch.float32])
