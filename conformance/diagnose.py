"""Diagnoses: what a target computes instead of the spec, inferred by probing it.

The runner calls :func:`diagnose` in the worker right after a property fails or a
registered deviation absorbs an example, with the target, the spec and the failing
example at hand. Each diagnoser calls the target on a few probe inputs, fits what
comes back against named candidates, and names the one that matches:

- ``reduction``: the denominator of ``reduction='mean'`` (number of elements, N,
  N x C, elements per class map, sum of the weights, number of positives, ...),
  fitted over the counterexample and a few drawn examples so that coincidences
  (N == N x C when C == 1) cannot decide it;
- ``alpha``: alpha_t on positives, a constant alpha, (1 - alpha) on positives,
  none, alpha on positives only; and what ``alpha=None`` does;
- ``soft_targets``: the focal factor's form for targets strictly between 0 and 1;
- ``clipping``: the epsilon at which ``-log p`` saturates, read from the cap;
- ``non_finite``: the input range where values or gradients become NaN / inf,
  found by bisection from the counterexample;
- ``precision``: the output dtype narrowed, or the effective precision (bits)
  against the oracle on the example's float64 twin;
- ``gradient``: a backward pass that is not the derivative of the target's own
  forward (central differences of the target itself);
- ``raises`` / ``accepts_invalid``: the target's exception, or the malformed
  inputs it accepts without one;
- otherwise ``unexplained``, with the raw figures.

A diagnosis is one sentence (what the target does instead), a ``signature`` that
is stable across runs (the report groups outcomes into findings by it, and
``conformance diff`` matches findings by it), and its figures. Diagnoses are
cheap (a time and call budget) and never raise: a target that raises or hangs
while being probed gives ``unexplained``.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from conformance import signatures
from conformance.spec import Category, Convention, Property, Spec
from conformance.targets import Target, TargetError, TargetTimeout, safe_text

__all__ = ["KINDS", "Diagnosis", "diagnose", "describe_example"]

KINDS = (
    "reduction", "alpha", "soft_targets", "clipping", "non_finite", "precision", "shape", "gradient", "keyword",
    "default", "side_effect", "nondeterministic", "raises", "accepts_invalid", "unexplained",
)

# The budget is counted in target calls, so a diagnosis does not depend on the machine's load (a
# report must be reproducible from its seed); the wall-clock limit only stops a pathologically
# slow target (each call also has the run's per-call time limit).
MAX_CALLS = 200  # target calls one diagnosis may make
BUDGET_S = 30.0  # wall-clock seconds, a safety net


class _OutOfBudget(Exception):
    pass


@dataclass
class Diagnosis:
    kind: str
    sentence: str  # what the target does instead, in one sentence (no subject: the report names the target)
    signature: str  # stable across runs and examples: the grouping key of a finding
    figures: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "sentence": self.sentence, "signature": self.signature, "figures": self.figures}


@dataclass
class _Ctx:
    spec: Spec
    prop: Property
    target: Target
    example: dict[str, Any] | None
    status: str
    message: str
    deadline: float
    budget_s: float = BUDGET_S
    calls: int = 0
    max_calls: int = MAX_CALLS

    @property
    def conv(self) -> Convention:
        assert self.spec.convention is not None
        return self.spec.convention

    def invoke(self, ex: dict[str, Any]) -> Any:
        """The target's raw result on ``ex``, within the probing budget."""
        if self.calls >= self.max_calls or time.perf_counter() > self.deadline:
            raise _OutOfBudget(f"the probing budget ({self.max_calls} calls, {self.budget_s:g} s) ran out")
        self.calls += 1
        return self.conv.invoke(self.target, ex)

    def call(self, ex: dict[str, Any]) -> torch.Tensor:
        """The target's judged output on ``ex`` (through the spec's convention)."""
        out = self.conv.output(self.invoke(ex))
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"returned {type(out).__name__}, not a torch.Tensor")
        return out

    def oracle(self, ex: dict[str, Any]) -> np.ndarray | None:
        o = self.spec.primary_oracle
        if o is None:
            return None
        return np.asarray(o.evaluate(ex).value, dtype=np.float64)

    @property
    def dtype(self) -> torch.dtype:
        """The probes' dtype: the counterexample's (the target demonstrably ran on it)."""
        if self.example is not None:
            for name in self.conv.floating:
                v = self.example.get(name)
                if isinstance(v, torch.Tensor) and v.is_floating_point():
                    return v.dtype
        return torch.float32

    def keyword(self, name: str) -> bool:
        return any(k.name == name for k in self.conv.keywords)


# ---------------------------------------------------------------------------
# The entry point
# ---------------------------------------------------------------------------


def diagnose(
    prop: Property,
    target: Target,
    example: dict[str, Any] | None,
    *,
    status: str,
    message: str,
    budget_s: float = BUDGET_S,
) -> dict[str, Any]:
    """The diagnosis of one failing (or deviating) outcome, as a JSON-able dict; never raises."""
    ctx: _Ctx | None = None
    try:
        from conformance.catalogue import get_spec

        spec = get_spec(prop.spec_id)
        # The budget is for probing: loading the catalogue (once per process) does not count.
        ctx = _Ctx(spec, prop, target, example, status, message or "", deadline=time.perf_counter() + budget_s,
                   budget_s=budget_s)
        d = _run(ctx)
    except BaseException as exc:  # noqa: BLE001 - a diagnosis must never cost the run
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        d = _unexplained(prop, message or "", note=f"probing stopped: {type(exc).__name__}: {safe_text(exc, 300)}")
    out = d.as_dict()
    out["calls"] = ctx.calls if ctx is not None else 0
    out["example"] = describe_example(example)
    return out


def _run(ctx: _Ctx) -> Diagnosis:
    first = _raises(ctx)
    if first is not None:
        return first
    if ctx.spec.convention is None or ctx.message.startswith("the suite could not generate examples"):
        return _unexplained(ctx.prop, ctx.message)  # nothing to probe, or the suite's own fault
    for step in _STEPS:
        try:
            d = step(ctx)
        except _OutOfBudget as exc:
            return _unexplained(ctx.prop, ctx.message, note=str(exc))
        except (TargetError, TargetTimeout) as exc:
            return _unexplained(ctx.prop, ctx.message, note=f"the target raised while probed ({safe_text(exc, 300)})")
        if d is not None:
            return d
    return _unexplained(ctx.prop, ctx.message)


def describe_example(example: dict[str, Any] | None) -> dict[str, Any] | None:
    """The structure of an example: tensors' shapes and dtypes, and its scalar options."""
    if example is None:
        return None
    tensors: dict[str, str] = {}
    options: dict[str, Any] = {}
    for k, v in example.items():
        if k in ("error_input", "error_argument"):
            continue  # labels of the generic rejection properties, not options of the call
        if isinstance(v, torch.Tensor):
            tensors[k] = f"{str(v.dtype).removeprefix('torch.')}{list(v.shape)}"
        elif v is None or isinstance(v, (bool, int, str)):
            options[k] = v
        elif isinstance(v, float):
            options[k] = v if math.isfinite(v) else repr(v)
        else:
            options[k] = safe_text(repr(v), 80)
    return {"tensors": tensors, "options": options}


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _f64(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def _g(v: float) -> str:
    """A figure for a sentence: 4 significant digits."""
    return f"{v:.4g}"


def _options(ex: dict[str, Any]) -> str:
    parts = [f"{k}={v!r}" for k, v in ex.items() if not isinstance(v, torch.Tensor) and k not in ("error_input", "error_argument")
             and (v is None or isinstance(v, (bool, int, float, str)))]
    return ", ".join(parts)


def _dtype_name(dt: torch.dtype) -> str:
    return str(dt).removeprefix("torch.")


def _rtol(dt: torch.dtype) -> float:
    """How closely a probe's output must match a candidate: loose enough for the dtype's rounding."""
    return 1e-6 if dt == torch.float64 else 2e-3


def _close(got: np.ndarray, want: np.ndarray, rtol: float) -> bool:
    with np.errstate(all="ignore"):
        return bool(np.all(np.isfinite(got)) and np.all(np.abs(got - want) <= rtol * np.maximum(np.abs(want), 1e-12) + 1e-12))


def _cast(ctx: _Ctx, ex: dict[str, Any], dtype: torch.dtype) -> dict[str, Any]:
    floating = set(ctx.conv.floating) | {k.name for k in ctx.conv.keywords}
    return {k: (v.to(dtype) if k in floating and isinstance(v, torch.Tensor) and v.is_floating_point() else v)
            for k, v in ex.items()}


_DRAWN: dict[tuple[int, int], tuple[Any, list[dict[str, Any]]]] = {}


def _draw(strategy: Any, n: int) -> list[dict[str, Any]]:
    """``n`` examples of ``strategy``, deterministically (a derandomised, generate-only run); drawn once
    per process and handed out as copies (a target may write into its inputs)."""
    key = (id(strategy), n)
    if key not in _DRAWN:
        _DRAWN[key] = (strategy, _generate(strategy, n))
    return [_copy(ex) for ex in _DRAWN[key][1]]


def _copy(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        return v.clone()
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(_copy(x) for x in v)
    return v


def _generate(strategy: Any, n: int) -> list[dict[str, Any]]:
    import hypothesis
    from hypothesis import HealthCheck, Phase

    out: list[dict[str, Any]] = []

    @hypothesis.settings(max_examples=n, database=None, derandomize=True, phases=[Phase.generate], deadline=None,
                         suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
    @hypothesis.given(strategy)
    def collect(ex: dict[str, Any]) -> None:
        out.append(ex)

    from conformance.profiles import draws_independent_of_loaded_modules

    with draws_independent_of_loaded_modules():
        collect()
    return out


def _binary(ctx: _Ctx) -> bool:
    """An elementwise ``f(logits, targets, ...)`` loss whose 'none' output has the logits' shape."""
    conv = ctx.conv
    if [a.name for a in conv.args] != ["logits", "targets"] or conv.output_shape is None:
        return False
    probe = torch.zeros(2, 3)
    try:
        return tuple(conv.output_shape({"logits": probe, "targets": probe})) == (2, 3)
    except Exception:  # noqa: BLE001 - a shape rule that needs more keys: not this family
        return False


def _pair(ctx: _Ctx, x: Iterable[float], z: Iterable[float], **kw: Any) -> dict[str, Any]:
    dt = ctx.dtype
    return {"logits": torch.tensor(list(x), dtype=dt), "targets": torch.tensor(list(z), dtype=dt), **kw}


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _bce(x: np.ndarray, z: np.ndarray) -> np.ndarray:
    return (1.0 - z) * _softplus(x) + z * _softplus(-x)


# ---------------------------------------------------------------------------
# raises / accepts_invalid
# ---------------------------------------------------------------------------

def _raises(ctx: _Ctx) -> Diagnosis | None:
    if ctx.status != "error":
        return None
    d = signatures.raises(ctx.message)
    return None if d is None else Diagnosis(d["kind"], d["sentence"], d["signature"], d["figures"])


def _accepts_invalid(ctx: _Ctx) -> Diagnosis | None:
    name = ctx.prop.name
    if not name.startswith("rejects_") or "should raise" not in ctx.message:
        return None
    kinds = ("shape",) if name == "rejects_shape_mismatch" else ("dtype", "domain")
    accepted: list[str] = []
    rejected: list[str] = []
    for e in ctx.conv.errors:
        if e.kind not in kinds:
            continue
        took = False
        for ex in _draw(e.strategy, 4):
            try:
                ctx.invoke(ex)
            except TargetError:
                continue  # an error is what the contract asks for
            took = True
            break
        (accepted if took else rejected).append(e.name)
    if not accepted:
        own = ctx.example.get("error_input") if ctx.example else None
        accepted = [own] if own else ["a malformed input"]
    sentence = f"accepts {', '.join(accepted)} without an error"
    if rejected:
        sentence += f" (it does reject {', '.join(rejected)})"
    return Diagnosis("accepts_invalid", sentence, "accepts_invalid:" + ",".join(sorted(accepted)),
                     {"accepted": accepted, "rejected": rejected})


# ---------------------------------------------------------------------------
# dtype / shape of the output
# ---------------------------------------------------------------------------

_DTYPE_PROPS = ("output_dtype_and_shape", "low_precision_matches_float32")
_NARROW = {"float32": np.float32, "float16": np.float16}


def _dtype_shape(ctx: _Ctx) -> Diagnosis | None:
    ex = ctx.example
    if ex is None or (ctx.prop.name not in _DTYPE_PROPS and "dtype" not in ctx.message and ".shape=" not in ctx.message):
        return None
    trials = [ex]
    if ctx.prop.name == "low_precision_matches_float32":
        trials = [_cast(ctx, ex, torch.float16), _cast(ctx, ex, torch.bfloat16)]
    for t in trials:
        want = ctx.conv.dtype_of(t)
        out = ctx.call(t)
        if out.dtype != want:
            a, b = _dtype_name(want), _dtype_name(out.dtype)
            return Diagnosis("precision", f"returns {b} for {a} inputs (not the input's dtype)",
                             f"precision:dtype:->{b}", {"input_dtype": a, "output_dtype": b})
        shape_rule = ctx.conv.output_shape
        if shape_rule is not None:
            expected = tuple(shape_rule(t))
            if tuple(out.shape) != expected:
                first = next((v for v in t.values() if isinstance(v, torch.Tensor)), None)
                red = t.get("reduction")
                if expected == () and first is not None and tuple(out.shape) == tuple(first.shape):
                    what, sig = f"returns the per-element loss for reduction={red!r} (the reduction is ignored)", "per_element"
                elif out.dim() == 0 and first is not None and expected == tuple(first.shape):
                    what, sig = (f"reduces to a scalar where the spec returns the per-element loss {list(expected)} "
                                 f"(reduction {'omitted' if red is None else repr(red)})"), "reduces"
                elif out.numel() == math.prod(expected):
                    what, sig = f"returns shape {list(out.shape)} where the spec's is {list(expected)} (same elements)", "reshaped"
                else:
                    what, sig = f"returns shape {list(out.shape)} where the spec's is {list(expected)}", "other"
                return Diagnosis("shape", what, f"shape:{sig}:{red!r}", {"shape": list(out.shape), "expected": list(expected)})
    return None


# ---------------------------------------------------------------------------
# non-finite region
# ---------------------------------------------------------------------------


def _non_finite(ctx: _Ctx) -> Diagnosis | None:
    ex = ctx.example
    if ex is None or (ctx.prop.name != "finite_gradients" and not re.search(r"\b(nan|inf|-inf)\b|finite", ctx.message, re.I)):
        return None
    conv = ctx.conv
    floating = [a.name for a in conv.args if a.floating and isinstance(ex.get(a.name), torch.Tensor)
                and ex[a.name].is_floating_point() and ex[a.name].numel()]
    if not floating:
        return None
    diff = [n for n in conv.differentiable if n in floating] if ctx.target.capabilities.autograd else []

    def evaluate(e: dict[str, Any]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        leaves = {n: e[n].detach().clone().requires_grad_(True) for n in diff}
        out = ctx.call({**e, **leaves})
        vals = _f64(out)
        grads: dict[str, np.ndarray] = {}
        if np.all(np.isfinite(vals)) and leaves and out.requires_grad:
            gs = torch.autograd.grad(out, list(leaves.values()), grad_outputs=torch.ones_like(out), allow_unused=True)
            grads = {n: _f64(g) for n, g in zip(leaves, gs) if g is not None}
        return vals, grads

    vals, grads = evaluate(ex)
    if not np.all(np.isfinite(vals)):
        what = "value"
        name = next((n for n in floating if tuple(ex[n].shape) == vals.shape), None)
        if name is not None:
            idx = int(np.flatnonzero(~np.isfinite(vals))[0])
        else:
            name = (diff or floating)[0]
            idx = int(np.argmax(np.abs(_f64(ex[name])).ravel()))
        bad_value = float(vals.ravel()[~np.isfinite(vals.ravel())][0])
    else:
        bad = [(n, g) for n, g in grads.items() if not np.all(np.isfinite(g))]
        if not bad:
            return None
        what = "gradient"
        name, g = bad[0]
        idx = int(np.flatnonzero(~np.isfinite(g))[0])
        bad_value = float(g.ravel()[idx])

    def bad_at(v: float) -> bool:
        t = ex[name].detach().clone()
        t.view(-1)[idx] = v
        e = {**ex, name: t}
        vv, gg = evaluate(e)
        if what == "value":
            return not np.all(np.isfinite(vv))
        return name in gg and not bool(np.isfinite(gg[name].ravel()[idx]))

    v0 = float(ex[name].reshape(-1)[idx])
    dt = ex[name].dtype
    label = "NaN" if math.isnan(bad_value) else "inf"
    subject = "the output" if what == "value" else f"the gradient d out / d {name}"
    figures: dict[str, Any] = {"what": what, "argument": name, "at": v0, "dtype": _dtype_name(dt), "non_finite": label,
                               "options": _options(ex)}
    opts = _options(ex)
    ctxt = f" ({_dtype_name(dt)}{', ' + opts if opts else ''})"
    if not math.isfinite(v0) or v0 == 0.0:
        return Diagnosis("non_finite", f"{subject} is {label} at {name}={v0!r}{ctxt}",
                         f"non_finite:{what}:{name}:at-{v0!r}", figures)
    sign = 1.0 if v0 > 0 else -1.0
    lo = 1.0 if abs(v0) > 1.0 else 0.0
    if bad_at(sign * lo):
        if lo > 0.0 and not bad_at(0.0):
            lo = 0.0
        else:
            figures["threshold"] = 0.0
            return Diagnosis("non_finite", f"{subject} is {label} for every {name} tried between 0 and {v0:.3g}{ctxt}",
                             f"non_finite:{what}:{name}:everywhere", figures)
    hi = abs(v0)
    for _ in range(48):
        if lo > 0.0:
            if hi / lo < 1.0 + 1e-4:
                break
            mid = math.sqrt(lo * hi)
        else:
            if hi - lo < 1e-6 * hi:
                break
            mid = 0.5 * (lo + hi)
        if bad_at(sign * mid):
            hi = mid
        else:
            lo = mid
    figures["threshold"] = sign * hi
    rel = "<=" if sign < 0 else ">="
    bound = f"{name} {rel} {sign * hi:.4g}"
    sentence = f"{subject} becomes {label} for {bound}{ctxt}; the counterexample has {name}={v0:.4g}"
    order = f"1e{math.floor(math.log10(hi))}" if hi > 0 else "0"
    return Diagnosis("non_finite", sentence, f"non_finite:{what}:{name}:{order}", figures)


# ---------------------------------------------------------------------------
# reduction denominator
# ---------------------------------------------------------------------------


def _denominators(ctx: _Ctx, ex: dict[str, Any]) -> dict[str, float]:
    """Named candidate denominators of a mean over ``ex``."""
    first = ex[ctx.conv.args[0].name]
    shape = tuple(first.shape)
    n = float(first.numel())
    out: dict[str, float] = {"1 (no division: the sum)": 1.0, "the number of elements": n}
    if len(shape) >= 1:
        out["N (the first axis)"] = float(shape[0])
    if len(shape) >= 1:
        out["every element but the last axis"] = n / shape[-1] if shape[-1] else 0.0
        out["the last axis"] = float(shape[-1])
    if len(shape) >= 2:
        out["N x C (the first two axes)"] = float(shape[0] * shape[1])
    if len(shape) >= 3:
        out["every pixel (all but the class axis)"] = n / shape[1] if shape[1] else 0.0
    for key in ("weight", "weights"):
        w = ex.get(key)
        if isinstance(w, torch.Tensor) and w.is_floating_point():
            try:
                out["the sum of the weights"] = float(torch.broadcast_to(w, first.shape).double().sum())
            except RuntimeError:
                out["the sum of the weights"] = float(w.double().sum())
    for key in ("targets", "target", "labels"):
        t = ex.get(key)
        if isinstance(t, torch.Tensor) and t.numel():
            out["the number of positives"] = float((t > 0).sum())
            break
    return out


@dataclass
class _Row:
    ratio: float  # the target's sum over its mean: the denominator it used
    spec: float | None  # the oracle's
    candidates: dict[str, float]
    sum_from: str


def _reduction(ctx: _Ctx) -> Diagnosis | None:
    ex = ctx.example
    if ex is None or not ctx.keyword("reduction"):
        return None
    default = next(k.default for k in ctx.conv.keywords if k.name == "reduction")
    if ex.get("reduction", default) != "mean":
        return None
    base = ctx.spec.strategy()
    probes = [ex] + (_draw(base, 16) if base is not None else [])
    rows: list[_Row] = []
    for i, p in enumerate(probes):
        p = {k: v for k, v in p.items() if k not in ("error_input", "error_argument")}
        first = p.get(ctx.conv.args[0].name)
        if not isinstance(first, torch.Tensor) or first.numel() == 0 or (i and first.dim() == 0):
            continue
        try:
            mean_out = ctx.call({**p, "reduction": "mean"})
        except TargetError:
            if i == 0:
                raise
            continue  # a drawn probe the target cannot take: the fit uses the others
        if mean_out.dim() != 0:
            if tuple(mean_out.shape) == tuple(first.shape):
                return Diagnosis("shape", "returns the per-element loss for reduction='mean' (the reduction is ignored)",
                                 "shape:per_element:'mean'", {"shape": list(mean_out.shape)})
            return Diagnosis("shape", f"returns shape {list(mean_out.shape)} for reduction='mean', not a scalar",
                             "shape:other:'mean'", {"shape": list(mean_out.shape)})
        mean = float(_f64(mean_out))
        try:
            total = float(_f64(ctx.call({**p, "reduction": "sum"})).sum())
            src = "its own 'sum'"
        except TargetError:
            want = ctx.oracle({**p, "reduction": "sum"})
            if want is None:
                return None
            total, src = float(want.sum()), "the oracle's sum"
        want_mean = ctx.oracle({**p, "reduction": "mean"})
        want_sum = ctx.oracle({**p, "reduction": "sum"})
        if not (math.isfinite(mean) and math.isfinite(total)) or mean == 0.0 or abs(total) < 1e-30:
            continue
        spec_den = (float(want_sum.sum() / want_mean.sum())
                    if want_mean is not None and want_sum is not None and float(want_mean.sum()) else None)
        rows.append(_Row(total / mean, spec_den, _denominators(ctx, p), src))
        if len(rows) >= 8:
            break
    if not rows:
        return None

    def near(a: float | None, b: float | None) -> bool:
        return a is not None and b is not None and abs(a - b) <= 1e-3 * max(abs(b), 1.0)

    if all(near(r.ratio, r.spec) for r in rows):
        return None
    names = [n for n in rows[0].candidates if all(n in r.candidates for r in rows)]
    matching = [n for n in names if all(near(r.ratio, r.candidates[n]) for r in rows)]
    spec_names = [n for n in names if all(near(r.spec, r.candidates[n]) for r in rows)]
    spec_name = spec_names[0] if spec_names else "the spec's denominator"
    r0 = rows[0]
    spec0 = r0.spec if r0.spec is not None else float("nan")
    figures = {"observed_denominator": r0.ratio, "spec_denominator": r0.spec, "probes": len(rows),
               "candidates": r0.candidates, "matching": matching, "sum_from": r0.sum_from}
    if matching:
        alias = f" (here also {', '.join(matching[1:])})" if len(matching) > 1 else ""
        if matching[0].startswith("1 "):
            sentence = f"reduction='mean' returns the sum (no division), where the spec divides by {spec_name}"
        else:
            sentence = (f"reduction='mean' divides by {matching[0]}{alias}, not by {spec_name}: "
                        f"{_g(r0.ratio)} instead of {_g(spec0)} on the counterexample")
        return Diagnosis("reduction", sentence, f"reduction:mean:{matching[0]}", figures)
    sentence = (f"reduction='mean' divides by {_g(r0.ratio)} on the counterexample, none of the usual denominators "
                f"(the spec divides by {spec_name}, {_g(spec0)})")
    return Diagnosis("reduction", sentence, "reduction:mean:unrecognised", figures)


# ---------------------------------------------------------------------------
# alpha convention (binary focal family)
# ---------------------------------------------------------------------------

_ALPHA_FORMS: dict[str, tuple[str, Callable[[float], tuple[float, float]]]] = {
    "alpha_t": ("weights positives by alpha and negatives by 1 - alpha (alpha_t)", lambda a: (a, 1.0 - a)),
    "swapped": ("weights positives by 1 - alpha and negatives by alpha (alpha on the wrong class)", lambda a: (1.0 - a, a)),
    "constant": ("multiplies every element by alpha, positives and negatives alike (a constant alpha)", lambda a: (a, a)),
    "positives_only": ("weights positives by alpha and leaves negatives unweighted", lambda a: (a, 1.0)),
    "none": ("ignores alpha (no class weighting)", lambda a: (1.0, 1.0)),
}


def _alpha(ctx: _Ctx) -> Diagnosis | None:
    if not (_binary(ctx) and ctx.keyword("alpha")):
        return None
    xs = [-2.0, -0.5, 0.5, 2.0]
    x = xs * 2
    z = [0.0] * 4 + [1.0] * 4
    extra = {"gamma": 2.0} if ctx.keyword("gamma") else {}
    pos = np.array(z) == 1.0

    def weights(a: float | None, source: Callable[[dict[str, Any]], np.ndarray | None]) -> tuple[float, float] | None:
        got = source(_pair(ctx, x, z, alpha=a, **extra))
        base = ctx.oracle(_pair(ctx, x, z, alpha=None, **extra))
        if got is None or base is None:
            return None
        with np.errstate(all="ignore"):
            w = got / base
        rt = _rtol(ctx.dtype) * 10
        w1, w0 = w[pos], w[~pos]
        if not (np.all(np.isfinite(w)) and np.ptp(w1) <= rt * max(1.0, abs(w1.mean())) and np.ptp(w0) <= rt * max(1.0, abs(w0.mean()))):
            return None
        return float(w1.mean()), float(w0.mean())

    def target_out(p: dict[str, Any]) -> np.ndarray:
        return _f64(ctx.call(p))

    alphas = (0.25, 0.75)
    got = {a: weights(a, target_out) for a in alphas}
    want = {a: weights(a, ctx.oracle) for a in alphas}
    got_none = weights(None, target_out)
    if any(v is None for v in got.values()) or any(v is None for v in want.values()):
        return None  # not a class weighting of the unweighted loss: some other difference

    def form_of(obs: dict[float, tuple[float, float] | None]) -> str | None:
        for key, (_, f) in _ALPHA_FORMS.items():
            if all(obs[a] is not None and np.allclose(obs[a], f(a), rtol=1e-3, atol=1e-6) for a in alphas):  # type: ignore[arg-type]
                return key
        return None

    spec_form = form_of(want)  # type: ignore[arg-type]
    target_form = form_of(got)  # type: ignore[arg-type]
    none_ok = got_none is not None and np.allclose(got_none, (1.0, 1.0), rtol=1e-3)
    none_as = None
    if got_none is not None and not none_ok:
        none_as = next((f"alpha={a0:g}" for a0 in (0.25, 0.5, 0.75) for k, (_, f) in _ALPHA_FORMS.items()
                        if k == spec_form and np.allclose(got_none, f(a0), rtol=1e-3)), None)
    fixed = target_form is None and np.allclose(got[0.25], got[0.75], rtol=1e-3)  # type: ignore[arg-type]
    if target_form == spec_form and (none_ok or none_as is None):
        return None  # alpha is right; what alpha=None does (if wrong) is no class weighting: another diagnosis
    if target_form is None and not fixed:
        return None
    spec_text = _ALPHA_FORMS[spec_form][0] if spec_form else "as the spec does"
    figures: dict[str, Any] = {"weights_at_alpha": {str(a): got[a] for a in alphas}, "weights_at_alpha_none": got_none,
                               "spec_form": spec_form, "form": target_form, "none_as": none_as}
    parts = []
    if fixed:
        w1, w0 = got[0.25]  # type: ignore[misc]
        parts.append(f"ignores the alpha it is given: positives are weighted by {_g(w1)} and negatives by {_g(w0)} "
                     "whatever alpha is")
        sig = f"alpha:fixed:{w1:.3g},{w0:.3g}"
    elif target_form != spec_form:
        parts.append(_ALPHA_FORMS[target_form][0])  # type: ignore[index]
        sig = f"alpha:{target_form}"
    else:
        sig = "alpha:ok"
    if none_as is not None:
        parts.append(f"takes alpha=None as {none_as}")
        sig += f";none:{none_as}"
    sentence = "; ".join(parts) + f", where the spec {spec_text}" + ("" if none_as is None else " and alpha=None means no weighting")
    return Diagnosis("alpha", sentence, sig, figures)


# ---------------------------------------------------------------------------
# soft-target convention (binary focal family)
# ---------------------------------------------------------------------------


def _alpha_t(z: np.ndarray, a: float) -> np.ndarray:
    return a * z + (1.0 - a) * (1.0 - z)


def _soft_forms() -> dict[str, tuple[str, Callable[[np.ndarray, np.ndarray, float, float], np.ndarray]]]:
    def per_term(x: np.ndarray, z: np.ndarray, a: float, g: float) -> np.ndarray:
        p = _sigmoid(x)
        return z * a * (1.0 - p) ** g * _softplus(-x) + (1.0 - z) * (1.0 - a) * p**g * _softplus(x)

    def signed_logit(x: np.ndarray, z: np.ndarray, a: float, g: float) -> np.ndarray:
        return _alpha_t(z, a) * _sigmoid(-x * (2.0 * z - 1.0)) ** g * _bce(x, z)

    def thresholded(x: np.ndarray, z: np.ndarray, a: float, g: float) -> np.ndarray:
        h = (z > 0.5).astype(np.float64)
        p = _sigmoid(x)
        return _alpha_t(h, a) * (1.0 - (p * h + (1.0 - p) * (1.0 - h))) ** g * _bce(x, z)

    return {
        "per_term": ("applies a focal factor to each term: t alpha (1-p)^gamma (-log p) + (1-t)(1-alpha) p^gamma "
                     "(-log(1-p))", per_term),
        "signed_logit": ("uses the focal factor sigmoid(-x (2t - 1))^gamma", signed_logit),
        "thresholded": ("rounds the targets to 0/1 (t > 0.5) in the focal factor and alpha_t, keeping the soft BCE",
                        thresholded),
    }


def _soft_targets(ctx: _Ctx) -> Diagnosis | None:
    ex = ctx.example
    if not (_binary(ctx) and ctx.keyword("alpha") and ctx.keyword("gamma")):
        return None
    zt = ex.get("targets") if ex is not None else None
    if ex is not None and not (isinstance(zt, torch.Tensor) and bool(((zt > 0) & (zt < 1)).any())):
        return None  # the counterexample has no soft target: not what broke it
    xs = np.array([-3.0, -1.0, 0.5, 2.0])
    zs = np.array([0.25, 0.5, 0.75])
    x = np.repeat(xs, len(zs))
    z = np.tile(zs, len(xs))
    rt = _rtol(ctx.dtype)
    matched: set[str] | None = None
    spec_ok = True
    for g in (2.0, 0.5):
        p = _pair(ctx, x, z, alpha=0.25, gamma=g)
        got = _f64(ctx.call(p))
        want = ctx.oracle(p)
        if want is None:
            return None
        spec_ok = spec_ok and _close(got, want, rt)
        here = {k for k, (_, f) in _soft_forms().items() if _close(got, f(x, z, 0.25, g), rt)}
        matched = here if matched is None else matched & here
    if spec_ok:
        return None
    if not matched:
        return None  # an unknown form: leave it to the other diagnosers
    key = sorted(matched)[0]
    text = _soft_forms()[key][0]
    sentence = (f"for soft targets t in (0, 1) {text}, instead of alpha_t (1 - p_t)^gamma BCE with "
                "p_t = p t + (1-p)(1-t); the two agree for hard 0/1 targets")
    return Diagnosis("soft_targets", sentence, f"soft_targets:{key}", {"form": key, "probe_gammas": [2.0, 0.5]})


# ---------------------------------------------------------------------------
# clipping (binary family)
# ---------------------------------------------------------------------------


def _clipping(ctx: _Ctx) -> Diagnosis | None:
    ex = ctx.example
    if not _binary(ctx):
        return None
    x_ex, z_ex = (ex.get("logits"), ex.get("targets")) if ex is not None else (None, None)
    if ex is not None and not (isinstance(x_ex, torch.Tensor) and isinstance(z_ex, torch.Tensor) and x_ex.numel()):
        return None
    kw: dict[str, Any] = {}
    if ctx.keyword("alpha"):
        kw["alpha"] = None
    if ctx.keyword("gamma"):
        kw["gamma"] = 0.0
    mags = 2.0 ** np.arange(1, 15)  # 2 .. 16384: -log p grows linearly out there
    sides = {"p": (-mags, np.ones_like(mags)), "1 - p": (mags, np.zeros_like(mags))}
    caps: dict[str, dict[str, float]] = {}
    for side, (x, z) in sides.items():
        p = _pair(ctx, x, z, **kw)
        got = _f64(ctx.call(p))
        want = ctx.oracle(p)
        if want is None:
            return None
        short = np.isfinite(got) & (got < want * (1.0 - 1e-3))
        if not short.any():
            continue
        tail = got[-3:]
        if not (np.all(np.isfinite(tail)) and np.ptp(tail) <= 1e-4 * max(abs(float(tail.mean())), 1e-12) and short[-1]):
            continue
        cap = float(np.median(tail))
        start = float(mags[int(np.argmax(short))])
        caps[side] = {"cap": cap, "eps": math.exp(-cap), "from_abs_logit": start}
    if not caps:
        return None
    top = max(c["cap"] for c in caps.values())
    worst = None
    if isinstance(x_ex, torch.Tensor) and isinstance(z_ex, torch.Tensor):
        with np.errstate(all="ignore"):
            worst = float(np.max(_bce(_f64(x_ex), _f64(z_ex))))
        if not worst > min(c["cap"] for c in caps.values()) * (1.0 - 1e-3):
            return None  # the counterexample's loss never reaches the cap: not what broke it
    main = caps.get("p") or caps["1 - p"]
    eps = main["eps"]
    which = " and ".join(f"-log({s})" for s in caps)
    verb = "saturate" if len(caps) > 1 else "saturates"
    sentence = (f"clips the probability at eps = {eps:.2g}: {which} {verb} at {_g(top)} for |x| beyond about "
                f"{_g(top)}, where the exact loss keeps growing (16384 at |x| = 16384)")
    return Diagnosis("clipping", sentence, f"clipping:eps={eps:.1e}", {"sides": caps, "counterexample_max_bce": worst})


# ---------------------------------------------------------------------------
# precision (effective bits on the float64 twin)
# ---------------------------------------------------------------------------

_FORMATS = (("float64", 53), ("float32", 24), ("float16", 11), ("bfloat16", 8))


def _precision(ctx: _Ctx) -> Diagnosis | None:
    """A float64 result computed in a narrower format: every output is a value of that format, and the
    error against the oracle is of its rounding size (an epsilon in a formula is neither)."""
    ex = ctx.example
    oracle = ctx.spec.primary_oracle
    if ex is None or oracle is None:
        return None
    base = ctx.spec.strategy()
    probes = [ex] + (_draw(base, 6) if base is not None else [])
    outs: list[np.ndarray] = []
    worst = 0.0
    for p in probes:
        p = {k: v for k, v in p.items() if k not in ("error_input", "error_argument")}
        tensors = [v for v in p.values() if isinstance(v, torch.Tensor) and v.is_floating_point()]
        if not tensors or sum(t.numel() for t in tensors) > 4096:
            continue
        twin = _cast(ctx, p, torch.float64)
        out = ctx.call(twin)
        if out.dtype != torch.float64:
            b = _dtype_name(out.dtype)
            return Diagnosis("precision", f"returns {b} for float64 inputs (not the input's dtype)",
                             f"precision:dtype:->{b}", {"input_dtype": "float64", "output_dtype": b})
        want = oracle.evaluate(twin)
        w = np.asarray(want.value, dtype=np.float64)
        g = _f64(out)
        if g.shape != w.shape or g.size == 0:
            continue
        scale = np.zeros_like(w) if want.scale is None else np.broadcast_to(np.abs(np.asarray(want.scale, dtype=np.float64)), w.shape)
        mask = np.ones(w.shape, bool) if want.mask is None else np.broadcast_to(want.mask, w.shape)
        with np.errstate(all="ignore"):
            denom = np.maximum(np.abs(w), scale)
            ok = mask & np.isfinite(w) & np.isfinite(g) & (denom > 1e-290)
            if ok.any():
                worst = max(worst, float(np.max(np.abs(g - w)[ok] / denom[ok])))
        with np.errstate(all="ignore"):
            # Outputs whose exact value is not itself a float32 number: only those can tell.
            telling = np.isfinite(g) & np.isfinite(w) & (w.astype(np.float32).astype(np.float64) != w)
        outs.append(g[telling])
    values = np.concatenate(outs) if outs else np.zeros(0)
    if values.size < 2 or worst == 0.0:
        return None
    bits = min(60.0, -math.log2(worst))
    for name, np_type in _NARROW.items():
        with np.errstate(all="ignore"):
            share = float(np.mean(values.astype(np_type).astype(np.float64) == values))
        # A float64 computation lands on a float32 value by chance about once in 2^29.
        if share >= 0.5 and bits < 40.0:
            mant = dict(_FORMATS)[name]
            sentence = (f"computes float64 inputs in {name}: {share:.0%} of its float64 outputs are {name} values, and the error "
                        f"against the {oracle.name} oracle is {worst:.2g} (about {bits:.0f} bits; {name} carries {mant}, "
                        "float64 53)")
            return Diagnosis("precision", sentence, f"precision:computes_in:{name}",
                             {"bits": bits, "max_rel": worst, "against": oracle.name, "outputs": int(values.size),
                              "share_representable": share})
    return None


# ---------------------------------------------------------------------------
# gradient: backward versus the target's own forward
# ---------------------------------------------------------------------------


def _gradient(ctx: _Ctx) -> Diagnosis | None:
    ex = ctx.example
    if ex is None or ctx.prop.category is not Category.GRADIENT or not ctx.target.capabilities.autograd:
        return None
    names = [n for n in ctx.conv.differentiable if isinstance(ex.get(n), torch.Tensor) and ex[n].is_floating_point()
             and ex[n].numel()]
    if not names:
        return None
    twin = _cast(ctx, ex, torch.float64)
    for name in names:
        leaf = twin[name].detach().clone().requires_grad_(True)
        out = ctx.call({**twin, name: leaf})
        if not out.requires_grad:
            return Diagnosis("gradient", f"its output is detached from {name}: no gradient flows",
                             f"gradient:detached:{name}", {"argument": name})
        (grad,) = torch.autograd.grad(out.sum(), [leaf], allow_unused=True)
        if grad is None:
            return Diagnosis("gradient", f"its output does not depend on {name} in autograd",
                             f"gradient:unused:{name}", {"argument": name})
        g = _f64(grad).ravel()
        base = leaf.detach()
        f32 = out.dtype != torch.float64
        for i in range(min(base.numel(), 8)):
            xi = float(base.reshape(-1)[i])
            h = (1e-3 if f32 else 1e-6) * max(1.0, abs(xi))

            def f(v: float) -> float:
                t = base.clone()
                t.view(-1)[i] = v
                return float(_f64(ctx.call({**twin, name: t})).sum())

            fp, f0, fm = f(xi + h), f(xi), f(xi - h)
            right, left = (fp - f0) / h, (f0 - fm) / h
            fd = (fp - fm) / (2 * h)
            tol = (1e-2 if f32 else 1e-4) * max(1.0, abs(fd))
            if not (math.isfinite(fd) and math.isfinite(g[i])):
                continue
            if abs(right - left) > tol * 10:
                continue  # a kink: the two one-sided slopes differ, finite differences cannot judge it
            if abs(g[i] - fd) > tol:
                sentence = (f"its backward pass is not the derivative of its own forward: at {name}={xi:.6g} "
                            f"({_options(ex) or 'the counterexample'}) autograd gives {g[i]:.6g}, the slope of its "
                            f"output is {fd:.6g}")
                return Diagnosis("gradient", sentence, f"gradient:backward_not_forward:{name}",
                                 {"argument": name, "at": xi, "autograd": float(g[i]), "finite_difference": fd})
    return None


# ---------------------------------------------------------------------------
# keywords: ignored, or another default
# ---------------------------------------------------------------------------


def _same_output(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.shape != b.shape:
        return False
    x, y = _f64(a), _f64(b)
    return bool(np.array_equal(x, y, equal_nan=True) or np.allclose(x, y, rtol=1e-12, atol=1e-300, equal_nan=True))


def _short(v: Any) -> str:
    if isinstance(v, torch.Tensor):
        return repr(_f64(v).tolist()) if v.numel() <= 4 else f"tensor{list(v.shape)}"
    return repr(v)


def _keyword_ignored(ctx: _Ctx) -> Diagnosis | None:
    """A keyword in the example whose value makes no difference to the target, where the oracle says it should."""
    ex = ctx.example
    if ex is None:
        return None
    names = [k for k in ctx.conv.keywords if not k.required and k.name in ex]
    if ctx.prop.name.startswith("honours_"):
        names = [k for k in names if k.name == ctx.prop.name.removeprefix("honours_")] or names
    for k in names:
        v = ex[k.name]
        if isinstance(v, torch.Tensor) or v == k.default:
            if not (isinstance(v, torch.Tensor) and k.default is None):
                continue
        at_default = {**ex, k.name: k.default}
        w1, w0 = ctx.oracle(ex), ctx.oracle(at_default)
        if w1 is None or w0 is None or w1.shape != w0.shape or _close(w1, w0, 1e-9):
            continue  # the spec itself gives the same result here
        if _same_output(ctx.call(ex), ctx.call(at_default)):
            shown = _short(v)
            others = _options({kk: vv for kk, vv in ex.items() if kk != k.name})
            where = f" (with {others})" if others else ""
            sentence = (f"ignores {k.name}={shown}{where}: the result is the one at its default {k.default!r}")
            return Diagnosis("keyword", sentence, f"keyword:ignored:{k.name}", {"keyword": k.name, "value": shown})
    return None


def _defaults(ctx: _Ctx) -> Diagnosis | None:
    """Which keyword's default differs from the canonical one, and what the target uses instead."""
    ex = ctx.example
    if ex is None or ctx.prop.name != "defaults_honoured":
        return None
    for k in ctx.conv.keywords:
        if k.required:
            continue
        explicit = {**ex, k.name: k.default}
        omitted = {kk: vv for kk, vv in ex.items() if kk != k.name}
        got = ctx.call(omitted)
        if _same_output(got, ctx.call(explicit)):
            continue
        tried: list[Any] = [None, 0.0, 0.25, 0.5, 0.75, 1.0, 2.0, "none", "mean", "sum"]
        if isinstance(k.default, (int, float)) and not isinstance(k.default, bool):
            tried += [k.default / 2, k.default * 2, 1 - k.default, -k.default]
        values = k.values_for(ex) if k.values is not None else None
        if values is not None:
            tried += [v for v in _draw(values, 6) if not isinstance(v, torch.Tensor)]
        used = None
        for v in dict.fromkeys(x for x in tried if not isinstance(x, torch.Tensor)):
            if v == k.default:
                continue
            try:
                if _same_output(got, ctx.call({**ex, k.name: v})):
                    used = v
                    break
            except TargetError:
                continue
        what = f"uses {k.name}={used!r}" if used is not None else f"uses another {k.name}"
        return Diagnosis("default", f"{what} when {k.name} is omitted, not the canonical default {k.default!r}",
                         f"default:{k.name}:{used!r}", {"keyword": k.name, "default": repr(k.default), "uses": repr(used)})
    return None


# ---------------------------------------------------------------------------
# side effects and determinism
# ---------------------------------------------------------------------------


def _robustness(ctx: _Ctx) -> Diagnosis | None:
    name = ctx.prop.name
    if name == "inputs_not_modified":
        m = re.match(r"([\w\[\]'\\.]+?)(\._version| after the call| was replaced)", ctx.message)
        arg = m.group(1) if m else "an input"
        how = {"._version": "writes into its input {a} in place (the values may be restored, the version counter moved)",
               " after the call": "changes the values of its input {a}",
               " was replaced": "replaces the tensor {a} in the caller's container"}
        text = how.get(m.group(2) if m else "", "modifies an input").format(a=arg)
        return Diagnosis("side_effect", text, f"side_effect:{arg}", {"argument": arg})
    if name == "deterministic" and ctx.example is not None:
        outs = [_f64(ctx.call(ctx.example)) for _ in range(8)]
        distinct = len({o.tobytes() for o in outs})
        return Diagnosis("nondeterministic", "returns different results for identical calls (a random component, e.g. "
                         "dropout left in training mode, or a non-deterministic kernel)", "nondeterministic",
                         {"distinct_in_8_calls": distinct})
    return None


# ---------------------------------------------------------------------------
# unexplained
# ---------------------------------------------------------------------------


def _unexplained(prop: Property, message: str, *, note: str | None = None) -> Diagnosis:
    d = signatures.unexplained(prop.spec_id, prop.name, message, note)
    return Diagnosis(d["kind"], d["sentence"], d["signature"], d["figures"])


_STEPS: tuple[Callable[[_Ctx], Diagnosis | None], ...] = (
    _accepts_invalid,
    _robustness,
    _dtype_shape,
    _defaults,
    _non_finite,
    _reduction,
    _alpha,
    _soft_targets,
    _clipping,
    _keyword_ignored,
    _precision,
    _gradient,
)
