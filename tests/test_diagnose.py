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
from tests.fixtures.planted import (
    alpha_constant,
    alpha_default_half,
    alpha_ignored,
    alpha_none_is_quarter,
    alpha_positives_only,
    alpha_swapped,
    clipped_bce,
    computes_in_float32,
    detached_factor,
    focal_with_mean,
    gamma_ignored,
    n_rows,
    naive_pow,
    naive_softplus,
    nothing,
    positives,
    raises_on_batches,
    reference,
    returns_float32,
    rows_of_last_axis,
    slow_swapped,
    soft_per_term,
    soft_signed_logit,
    soft_thresholded,
    unvalidated,
    with_dropout,
    writes_into_targets,
)

FOCAL, BCE = "sigmoid_focal", "sigmoid_bce"


def _target(fn: Any, spec: str = FOCAL) -> Target:
    return Target(name=f"planted:{fn.__name__}", spec_id=spec, fn=fn, source=f"tests.fixtures.planted:{fn.__name__}",
                  kind="callable")


def _run(fn: Any, prop: str, example: dict[str, Any] | None, *, spec: str = FOCAL, status: str = "failed",
         message: str = "out=1.0, but should be 2.0", **kw: Any) -> dict[str, Any]:
    p = get_spec(spec).properties[prop]
    return diagnose(p, _target(fn, spec), example, status=status, message=message, **kw)


def _t(*values: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.tensor(values, dtype=dtype)


def _ex(x: list[float], z: list[float], dtype: torch.dtype = torch.float32, **kw: Any) -> dict[str, Any]:
    return {"logits": torch.tensor(x, dtype=dtype), "targets": torch.tensor(z, dtype=dtype), **kw}


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
    d = _run(focal_with_mean(denominator), "honours_reduction", ex)
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
    fn = clipped_bce(eps)
    d = _run(fn, "agrees_with_numpy", _ex([-40.0], [1.0], dtype=torch.float64), spec=BCE)
    assert d["kind"] == "clipping", d
    assert d["figures"]["sides"]["p"]["eps"] == pytest.approx(eps, rel=1e-3)
    assert d["signature"] == f"clipping:eps={eps:.1e}"
    assert d["figures"]["sides"]["p"]["cap"] == pytest.approx(-math.log(eps), rel=1e-4)


def test_clipping_is_not_blamed_below_the_cap() -> None:
    # At x = -1 the clipped loss is exact: the counterexample cannot come from the clipping.
    d = _run(clipped_bce(1e-7), "agrees_with_numpy", _ex([-1.0], [1.0], dtype=torch.float64), spec=BCE)
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


def test_a_registered_region_does_not_hide_a_second_defect_of_the_same_property() -> None:
    """A planted target with two defects in one property, one registered with a region: the
    region's examples are counted, and the other defect fails with its own counterexample."""
    import re

    from conformance.deviations import Deviation
    from conformance.runner import run_property
    from tests.fixtures.planted import two_defects

    prop = get_spec(FOCAL).properties["agrees_with_numpy"]
    soft = Deviation(target="planted:*", spec=FOCAL, property="agrees_with_numpy", reason="soft targets x 1.5",
                     kind="convention", where="soft(targets)")
    out = run_property(prop, _target(two_defects), profile="ci", database=None, deviations=[soft])
    assert out.status == "failed", out.status
    assert "reduction='sum'" in out.message, out.message
    row = out.deviations[0]
    assert row["state"] == "deviated" and row["count"] >= 1, row
    # The counterexample lies outside the registered region: its targets are hard.
    assert soft.covers({"targets": torch.tensor([0.5])})
    assert "'reduction': 'sum'" in (out.counterexample or "")
    values = re.findall(r"'targets': torch.tensor\((\[[^\]]*\]|[-0-9.e]+)", out.counterexample or "")
    assert values and all(float(v) in (0.0, 1.0) for v in values[0].strip("[]").split(",") if v.strip()), values
    # Registering the second defect too turns the outcome into a counted deviation.
    half = Deviation(target="planted:*", spec=FOCAL, property="agrees_with_numpy", reason="sum halved",
                     kind="defect", where="reduction == 'sum'")
    both = run_property(prop, _target(two_defects), profile="ci", database=None, deviations=[soft, half])
    assert both.status == "xfailed" and {r["state"] for r in both.deviations} == {"deviated"}, both.deviations
