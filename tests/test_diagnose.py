"""Every diagnosis names the right convention on a planted target whose convention is known.

Each planted target below is the reference with one convention changed on purpose
(a reduction denominator, an alpha form, a soft-target form, a clipping epsilon, a
precision, a non-finite region, a detached gradient, an ignored keyword, another
default, a missing validation). The diagnosis is run on a counterexample as the
runner would hand it over, and must name that convention; the reference itself
must get no convention at all. Diagnoses never raise, even on a target that
raises or hangs while it is probed.
"""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
import torch

from conformance.catalogue import get_spec
from conformance.diagnose import diagnose
from conformance.targets import Target
from impls import focal as ref

FOCAL, BCE = "sigmoid_focal", "sigmoid_bce"


def _target(fn: Any, spec: str = FOCAL) -> Target:
    return Target(name=f"planted:{fn.__name__}", spec_id=spec, fn=fn, source=f"{__name__}:{fn.__name__}", kind="callable")


def _run(fn: Any, prop: str, example: dict[str, Any] | None, *, spec: str = FOCAL, status: str = "failed",
         message: str = "out=1.0, but should be 2.0", **kw: Any) -> dict[str, Any]:
    p = get_spec(spec).properties[prop]
    return diagnose(p, _target(fn, spec), example, status=status, message=message, **kw)


def _t(*values: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype)


def _ex(x: list[float], z: list[float], dtype: torch.dtype = torch.float32, **kw: Any) -> dict[str, Any]:
    return {"logits": torch.tensor(x, dtype=dtype), "targets": torch.tensor(z, dtype=dtype), **kw}


# ---------------------------------------------------------------------------
# Planted targets
# ---------------------------------------------------------------------------


def _focal_with_mean(denominator: Any) -> Any:
    def fn(logits, targets, *, alpha=0.25, gamma=2.0, reduction="none"):  # type: ignore[no-untyped-def]
        loss = ref.sigmoid_focal(logits, targets, alpha=alpha, gamma=gamma)
        if reduction == "none":
            return loss
        total = loss.sum()
        return total if reduction == "sum" else total / denominator(logits, targets)

    fn.__name__ = f"mean_over_{denominator.__name__}"
    return fn


def n_rows(x: torch.Tensor, z: torch.Tensor) -> float:
    return float(x.shape[0])


def positives(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    return (z > 0).sum()


def nothing(x: torch.Tensor, z: torch.Tensor) -> float:
    return 1.0


def rows_of_last_axis(x: torch.Tensor, z: torch.Tensor) -> float:
    return float(x.numel() // x.shape[-1])


def _alpha_form(weights: Any, name: str) -> Any:
    def fn(logits, targets, *, alpha=0.25, gamma=2.0, reduction="none"):  # type: ignore[no-untyped-def]
        base = ref.sigmoid_focal(logits, targets, alpha=None, gamma=gamma)
        if alpha is not None:
            w1, w0 = weights(alpha)
            base = (w1 * targets + w0 * (1 - targets)) * base
        return ref._reduce(base, reduction)

    fn.__name__ = name
    return fn


alpha_swapped = _alpha_form(lambda a: (1 - a, a), "alpha_swapped")
alpha_constant = _alpha_form(lambda a: (a, a), "alpha_constant")
alpha_positives_only = _alpha_form(lambda a: (a, 1.0), "alpha_positives_only")
alpha_ignored = _alpha_form(lambda a: (1.0, 1.0), "alpha_ignored")


def alpha_none_is_quarter(logits, targets, *, alpha=0.25, gamma=2.0, reduction="none"):  # type: ignore[no-untyped-def]
    return ref.sigmoid_focal(logits, targets, alpha=0.25 if alpha is None else alpha, gamma=gamma, reduction=reduction)


def soft_per_term(logits, targets, *, alpha=0.25, gamma=2.0, reduction="none"):  # type: ignore[no-untyped-def]
    """kornia's form: a focal factor per term."""
    p = torch.sigmoid(logits)
    a, b = (1.0, 1.0) if alpha is None else (alpha, 1 - alpha)
    pos = targets * a * (1 - p) ** gamma * torch.nn.functional.softplus(-logits)
    neg = (1 - targets) * b * p**gamma * torch.nn.functional.softplus(logits)
    return ref._reduce(pos + neg, reduction)


def soft_signed_logit(logits, targets, *, alpha=0.25, gamma=2.0, reduction="none"):  # type: ignore[no-untyped-def]
    """monai's form: the focal factor sigmoid(-x (2t - 1))^gamma."""
    bce = ref.sigmoid_bce(logits, targets)
    loss = torch.exp(gamma * torch.nn.functional.logsigmoid(-logits * (2 * targets - 1))) * bce
    if alpha is not None:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return ref._reduce(loss, reduction)


def soft_thresholded(logits, targets, *, alpha=0.25, gamma=2.0, reduction="none"):  # type: ignore[no-untyped-def]
    hard = (targets > 0.5).to(logits.dtype)
    p = torch.sigmoid(logits)
    loss = ref.sigmoid_bce(logits, targets) * (1 - (p * hard + (1 - p) * (1 - hard))) ** gamma
    if alpha is not None:
        loss = (alpha * hard + (1 - alpha) * (1 - hard)) * loss
    return ref._reduce(loss, reduction)


def _clipped_bce(eps: float) -> Any:
    def fn(logits, targets, *, weight=None, pos_weight=None, reduction="none"):  # type: ignore[no-untyped-def]
        p = torch.sigmoid(logits).clamp(eps, 1 - eps)
        return ref._reduce(-(targets * torch.log(p) + (1 - targets) * torch.log1p(-p)), reduction)

    fn.__name__ = f"clipped_bce_{eps:g}"
    return fn


def returns_float32(logits, targets, *, alpha=0.25, gamma=2.0, reduction="none"):  # type: ignore[no-untyped-def]
    return ref.sigmoid_focal(logits, targets, alpha=alpha, gamma=gamma, reduction=reduction).float()


def computes_in_float32(logits, targets, *, alpha=0.25, gamma=2.0, reduction="none"):  # type: ignore[no-untyped-def]
    out = ref.sigmoid_focal(logits.float(), targets.float(), alpha=alpha, gamma=gamma, reduction=reduction)
    return out.to(logits.dtype)


def naive_pow(logits, targets, *, alpha=0.25, gamma=2.0, reduction="none"):  # type: ignore[no-untyped-def]
    """torchvision's form: (1 - p_t) ** gamma by subtraction, nan gradient for gamma < 1 where p_t rounds to 1."""
    p = torch.sigmoid(logits)
    ce = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    loss = ce * (1 - (p * targets + (1 - p) * (1 - targets))) ** gamma
    if alpha is not None:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return ref._reduce(loss, reduction)


def naive_softplus(logits, targets, *, weight=None, pos_weight=None, reduction="none"):  # type: ignore[no-untyped-def]
    """log(1 + exp(x)) overflows to inf for x > 88.7 in float32."""
    return ref._reduce(torch.log(1 + torch.exp(logits)) - targets * logits, reduction)


def detached_factor(logits, targets, *, alpha=0.25, gamma=2.0, reduction="none"):  # type: ignore[no-untyped-def]
    with torch.no_grad():
        factor = ref.sigmoid_focal(logits, targets, alpha=None, gamma=gamma) / ref.sigmoid_bce(logits, targets)
    loss = factor * ref.sigmoid_bce(logits, targets)
    if alpha is not None:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return ref._reduce(loss, reduction)


def gamma_ignored(logits, targets, *, alpha=0.25, gamma=2.0, reduction="none"):  # type: ignore[no-untyped-def]
    return ref.sigmoid_focal(logits, targets, alpha=alpha, reduction=reduction)


def alpha_default_half(logits, targets, *, alpha=0.5, gamma=2.0, reduction="none"):  # type: ignore[no-untyped-def]
    return ref.sigmoid_focal(logits, targets, alpha=alpha, gamma=gamma, reduction=reduction)


def unvalidated(logits, targets, *, alpha=0.25, gamma=2.0, reduction="none"):  # type: ignore[no-untyped-def]
    """The formula without any argument checks: takes targets outside [0, 1] and integer logits."""
    x = logits.double() if not logits.is_floating_point() else logits
    return naive_pow(x, targets.to(x.dtype), alpha=alpha, gamma=gamma, reduction=reduction if reduction in ("none", "sum", "mean") else "none")


def writes_into_targets(logits, targets, *, alpha=0.25, gamma=2.0, reduction="none"):  # type: ignore[no-untyped-def]
    out = ref.sigmoid_focal(logits, targets, alpha=alpha, gamma=gamma, reduction=reduction)
    targets.clamp_(0.0, 1.0)
    return out


def with_dropout(logits, targets, *, alpha=0.25, gamma=2.0, reduction="none"):  # type: ignore[no-untyped-def]
    return ref.sigmoid_focal(torch.nn.functional.dropout(logits, 0.5, training=True), targets, alpha=alpha, gamma=gamma,
                             reduction=reduction)


def reference(logits, targets, *, alpha=0.25, gamma=2.0, reduction="none"):  # type: ignore[no-untyped-def]
    return ref.sigmoid_focal(logits, targets, alpha=alpha, gamma=gamma, reduction=reduction)


def raises_on_batches(logits, targets, *, alpha=0.25, gamma=2.0, reduction="none"):  # type: ignore[no-untyped-def]
    """Takes the one-element counterexample, raises on every larger probe."""
    if logits.numel() > 1:
        raise RuntimeError("batches are not supported")
    return alpha_swapped(logits, targets, alpha=alpha, gamma=gamma, reduction=reduction)


def slow_swapped(logits, targets, *, alpha=0.25, gamma=2.0, reduction="none"):  # type: ignore[no-untyped-def]
    time.sleep(0.05)
    return alpha_swapped(logits, targets, alpha=alpha, gamma=gamma, reduction=reduction)


# ---------------------------------------------------------------------------
# reduction denominator
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("denominator", "name"), [
    (n_rows, "N (the first axis)"),
    (positives, "the number of positives"),
    (nothing, "1 (no division: the sum)"),
    (rows_of_last_axis, "every element but the last axis"),
])
def test_reduction_names_the_denominator_the_target_divides_by(denominator: Any, name: str) -> None:
    ex = _ex([[0.5, -1.0, 2.0], [1.5, 0.25, -3.0]], [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]], reduction="mean")
    d = _run(_focal_with_mean(denominator), "honours_reduction", ex)
    assert d["kind"] == "reduction", d
    assert d["signature"] == f"reduction:mean:{name}", d
    assert d["figures"]["spec_denominator"] == 6.0
    assert "the number of elements" in d["sentence"]


# ---------------------------------------------------------------------------
# alpha convention
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("fn", "form"), [
    (alpha_swapped, "swapped"), (alpha_constant, "constant"), (alpha_positives_only, "positives_only"),
])
def test_alpha_names_the_weighting_the_target_applies(fn: Any, form: str) -> None:
    d = _run(fn, "agrees_with_numpy", _ex([1.0], [1.0], alpha=0.25, gamma=2.0))
    assert d["kind"] == "alpha", d
    assert d["signature"] == f"alpha:{form}", d
    assert d["figures"]["spec_form"] == "alpha_t"


def test_alpha_ignored_is_named_with_the_weights_it_uses() -> None:
    d = _run(alpha_ignored, "honours_alpha", _ex([1.0], [1.0], alpha=0.75, gamma=2.0))
    assert d["kind"] == "alpha" and d["signature"] == "alpha:none", d
    assert "ignores alpha" in d["sentence"]


def test_alpha_none_taken_as_a_quarter_is_named() -> None:
    d = _run(alpha_none_is_quarter, "gamma0_no_alpha_is_bce", _ex([1.0], [1.0]))
    assert d["signature"] == "alpha:ok;none:alpha=0.25", d
    assert "takes alpha=None as alpha=0.25" in d["sentence"]


# ---------------------------------------------------------------------------
# soft-target convention
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("fn", "form"), [
    (soft_per_term, "per_term"), (soft_signed_logit, "signed_logit"), (soft_thresholded, "thresholded"),
])
def test_soft_targets_names_the_focal_form(fn: Any, form: str) -> None:
    d = _run(fn, "agrees_with_numpy", _ex([1.0], [0.5], alpha=0.25, gamma=0.25))
    assert d["kind"] == "soft_targets", d
    assert d["signature"] == f"soft_targets:{form}", d
    assert "agree for hard 0/1 targets" in d["sentence"]


def test_soft_targets_is_not_blamed_when_the_counterexample_has_hard_targets() -> None:
    d = _run(soft_per_term, "agrees_with_numpy", _ex([1.0], [1.0], alpha=0.25, gamma=2.0))
    assert d["kind"] != "soft_targets", d


# ---------------------------------------------------------------------------
# clipping
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("eps", [1e-7, 1e-4])
def test_clipping_infers_the_epsilon_from_where_the_loss_caps(eps: float) -> None:
    fn = _clipped_bce(eps)
    d = _run(fn, "agrees_with_numpy", _ex([-40.0], [1.0], dtype=torch.float64), spec=BCE)
    assert d["kind"] == "clipping", d
    assert d["figures"]["sides"]["p"]["eps"] == pytest.approx(eps, rel=1e-3)
    assert d["signature"] == f"clipping:eps={eps:.1e}"
    assert d["figures"]["sides"]["p"]["cap"] == pytest.approx(-math.log(eps), rel=1e-4)


def test_clipping_is_not_blamed_below_the_cap() -> None:
    # At x = -1 the clipped loss is exact: the counterexample cannot come from the clipping.
    d = _run(_clipped_bce(1e-7), "agrees_with_numpy", _ex([-1.0], [1.0], dtype=torch.float64), spec=BCE)
    assert d["kind"] != "clipping", d


# ---------------------------------------------------------------------------
# precision
# ---------------------------------------------------------------------------


def test_precision_names_a_narrowed_output_dtype() -> None:
    ex = _ex([0.5, 2.0], [1.0, 0.0], dtype=torch.float64)
    d = _run(returns_float32, "output_dtype_and_shape", ex, message="out.dtype=torch.float32, but should be torch.float64")
    assert d["kind"] == "precision" and d["signature"] == "precision:dtype:->float32", d
    assert d["figures"] == {"input_dtype": "float64", "output_dtype": "float32"}


def test_precision_measures_the_effective_bits_of_a_float32_computation() -> None:
    ex = _ex([0.5, 2.0, -3.0], [1.0, 0.0, 0.25], dtype=torch.float64, alpha=0.25, gamma=2.0)
    d = _run(computes_in_float32, "agrees_with_exact", ex)
    assert d["kind"] == "precision" and d["signature"] == "precision:computes_in:float32", d
    assert 15 <= d["figures"]["bits"] <= 30, d["figures"]


# ---------------------------------------------------------------------------
# non-finite region
# ---------------------------------------------------------------------------


def test_non_finite_bisects_to_where_the_gradient_becomes_nan() -> None:
    # In float32 p_t rounds to 1 once sigmoid(x) < 2^-25, i.e. x < -log(2^25 - 1) = -17.33.
    ex = _ex([-3e38], [0.0], alpha=None, gamma=0.25)
    d = _run(naive_pow, "finite_gradients", ex, message="d out / d logits[0]=nan, but should be finite")
    assert d["kind"] == "non_finite", d
    assert d["figures"]["what"] == "gradient" and d["figures"]["non_finite"] == "NaN"
    assert d["figures"]["threshold"] == pytest.approx(-math.log(2.0**25 - 1), rel=2e-3)


def test_non_finite_bisects_to_where_the_value_overflows() -> None:
    # log(1 + exp(x)) is inf once exp(x) overflows float32: x > log(3.4028235e38) = 88.72.
    d = _run(naive_softplus, "agrees_with_numpy", _ex([1e30], [0.0]), spec=BCE, message="out=inf, but should be 1e30")
    assert d["kind"] == "non_finite" and d["figures"]["what"] == "value", d
    assert d["figures"]["threshold"] == pytest.approx(math.log(float(torch.finfo(torch.float32).max)), rel=2e-3)


# ---------------------------------------------------------------------------
# gradients, keywords, defaults, side effects, validation
# ---------------------------------------------------------------------------


def test_gradient_names_a_backward_that_is_not_the_derivative_of_the_forward() -> None:
    ex = _ex([0.0, 1.5], [0.0, 1.0], dtype=torch.float64, alpha=None, gamma=0.5)
    d = _run(detached_factor, "gradcheck_float64", ex, message="gradcheck failed: Jacobian mismatch")
    assert d["kind"] == "gradient" and d["signature"] == "gradient:backward_not_forward:logits", d
    assert d["figures"]["autograd"] != pytest.approx(d["figures"]["finite_difference"], rel=1e-3)


def test_keyword_names_a_value_that_makes_no_difference() -> None:
    d = _run(gamma_ignored, "honours_gamma", _ex([0.5], [0.0], alpha=0.25, gamma=0.0))
    assert d["kind"] == "keyword" and d["signature"] == "keyword:ignored:gamma", d


def test_default_names_the_value_used_when_the_keyword_is_omitted() -> None:
    d = _run(alpha_default_half, "defaults_honoured", _ex([0.5], [1.0]))
    assert d["kind"] == "default" and d["signature"] == "default:alpha:0.5", d


def test_accepts_invalid_lists_the_malformed_inputs_taken_without_an_error() -> None:
    ex = {**_ex([0.5], [1.5], alpha=0.25, gamma=2.0), "error_input": "targets outside [0, 1]", "error_argument": "targets"}
    d = _run(unvalidated, "rejects_invalid_inputs", ex, message="targets outside [0, 1] (...): the call returned (1,), but should raise an error")
    assert d["kind"] == "accepts_invalid", d
    assert "targets outside [0, 1]" in d["figures"]["accepted"]
    assert "integer logits" in d["figures"]["accepted"]


def test_side_effect_and_nondeterminism_are_named() -> None:
    d = _run(writes_into_targets, "inputs_not_modified", _ex([0.5], [1.5]),
             message="targets._version went from 0 to 1: the target wrote into its input in place")
    assert d["kind"] == "side_effect" and d["signature"] == "side_effect:targets", d
    d = _run(with_dropout, "deterministic", _ex([0.5, 1.0, 2.0, 3.0], [1.0, 0.0, 1.0, 0.0]))
    assert d["kind"] == "nondeterministic", d


def test_raises_names_the_exception_and_merges_missing_keywords() -> None:
    msg = "the target raised TypeError: impl() got an unexpected keyword argument 'reduction' (the canonical signature of x)"
    d = _run(reference, "agrees_with_numpy", None, status="error", message=msg)
    assert d["kind"] == "raises" and d["signature"] == "raises:TypeError:unexpected keyword argument", d
    assert d["figures"]["keyword"] == "reduction"


# ---------------------------------------------------------------------------
# no false diagnosis, never a crash
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("prop", ["agrees_with_numpy", "honours_reduction", "gradient_matches_analytic"])
def test_the_reference_gets_no_convention(prop: str) -> None:
    ex = _ex([[0.5, -2.0], [30.0, 0.0]], [[0.25, 1.0], [0.0, 0.5]], alpha=0.25, gamma=2.0, reduction="mean")
    if prop != "honours_reduction":
        ex.pop("reduction")
    d = _run(reference, prop, ex)
    assert d["kind"] == "unexplained", d


def test_a_target_that_raises_while_probed_gives_unexplained() -> None:
    d = _run(raises_on_batches, "agrees_with_numpy", _ex([1.0], [1.0], alpha=0.25, gamma=2.0))
    assert d["kind"] == "unexplained", d
    assert "raised while probed" in d["figures"]["note"]


def test_a_slow_target_runs_out_of_budget_and_gives_unexplained() -> None:
    start = time.perf_counter()
    d = _run(slow_swapped, "agrees_with_numpy", _ex([1.0], [1.0], alpha=0.25, gamma=2.0), budget_s=0.08)
    assert time.perf_counter() - start < 2.0
    assert d["kind"] == "unexplained" and "budget" in d["figures"]["note"], d


def test_the_runner_attaches_a_diagnosis_to_a_failing_outcome() -> None:
    from conformance.runner import run_property

    prop = get_spec(FOCAL).properties["agrees_with_numpy"]
    out = run_property(prop, _target(alpha_swapped), profile="ci", database=None)
    assert out.status == "failed"
    assert out.diagnosis is not None and out.diagnosis["signature"] == "alpha:swapped", out.diagnosis
    assert out.diagnosis["example"]["tensors"]


def test_the_runner_diagnoses_a_deviating_outcome_from_its_first_deviating_example() -> None:
    from conformance.deviations import Deviation
    from conformance.runner import run_property

    prop = get_spec(FOCAL).properties["agrees_with_numpy"]
    dev = Deviation(target="planted:*", spec=FOCAL, property="agrees_with_numpy", reason="planted", kind="convention")
    out = run_property(prop, _target(soft_per_term), profile="ci", database=None, deviations=[dev])
    assert out.status == "xfailed"
    assert out.diagnosis is not None and out.diagnosis["signature"] == "soft_targets:per_term", out.diagnosis
