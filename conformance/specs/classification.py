"""Specs of the softmax family: ``softmax_cross_entropy``, ``weighted_cross_entropy``,
``softmax_focal``, ``kl_div``. Seeds 000 (OpenPCDet) and 002 (BEV losses).

This file holds the maths: the calling conventions, strategies, oracles and the family's
own properties. Dtype and shape, determinism, untouched inputs, shape and domain errors,
keywords, gradcheck, finite gradients, device / dtype / compile agreement and
``agrees_with_<oracle>`` come from ``conformance.generic``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from conformance import checks as ck
from conformance import strategies as hh
from conformance.generic import call
from conformance.spec import Arg, Category, Convention, ErrorInput, Keyword, Oracle, Spec, Variant, Want, register
from conformance.targets import Target
from impls import classification as ref
from oracles import numpy_classification as npo

_np = ck.f64
Example = dict[str, Any]

# |x| <= 2**120 (1.3e36) keeps every per-entry sum of class terms (C <= 5, weights <= 4, logit spreads
# <= 2.7e36) far inside float32, so no correct implementation overflows an intermediate; a
# result beyond the range can then only come from a reduction (see _want).
MAX_LOGIT = 2.0**120  # about 1.3e36, a float32

# ---------------------------------------------------------------------------
# Element strategies and keyword values
# ---------------------------------------------------------------------------

_WEIGHT_EL = st.one_of(st.sampled_from([0.0, 0.5, 1.0, 2.0, 4.0]),
                       st.floats(0, 4, allow_nan=False, allow_subnormal=False, width=32))
_NONFINITE = st.sampled_from([math.nan, math.inf, -math.inf])
# Multiples of 2**-10 up to 1024: x + c is exact in float32 for the dyadic shifts used below.
_DYADIC_LOGIT = st.integers(-(2**20), 2**20).map(lambda k: k / 2**10)
gammas = st.one_of(st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0, 5.0]),
                   st.floats(0.0, 5.0, allow_nan=False, allow_subnormal=False))
smoothings = st.one_of(st.sampled_from([0.1, 0.5, 1.0, 2.0**-20]),
                       st.floats(0.0, 1.0, allow_nan=False, allow_subnormal=False))


def _ints(shape: tuple[int, ...], lo: int, hi: int) -> st.SearchStrategy[torch.Tensor]:
    return hnp.arrays(np.int64, shape, elements=st.integers(lo, hi)).map(lambda a: torch.from_numpy(np.array(a)))


def _bools(shape: tuple[int, ...]) -> st.SearchStrategy[torch.Tensor]:
    return hnp.arrays(np.bool_, shape).map(lambda a: torch.from_numpy(np.array(a)))


def _class_weights(ex: Example) -> st.SearchStrategy[torch.Tensor]:
    x = ex["logits"]
    return hh.tensors(shape=(x.shape[1],), dtype=x.dtype, elements=_WEIGHT_EL)


def _alphas(ex: Example) -> st.SearchStrategy[Any]:
    """None, a number in [0, 1] (class 0 weighted by 1 - a), or a (C,) tensor of class weights.

    A number is drawn representable in float32: a float32 implementation forms 1 - a in its own
    dtype, and for a = 0.99999 (not a float32) that rounding alone moved class 0's weight by 1e-3
    relative to the float64 one (monai, a dev seed); for a float32 a the difference is exact."""
    return st.one_of(st.none(), st.sampled_from([0.25, 0.5, 0.75, 0.0, 1.0]),
                     st.floats(0.0, 1.0, allow_nan=False, allow_subnormal=False, width=32), _class_weights(ex))


def _in_range_ignore(ex: Example) -> st.SearchStrategy[int]:
    """A class of the example to ignore. Only an in-range value keeps every other keyword
    setting valid; a target holding the -100 sentinel admits no other ignore_index. Entries whose
    logits are non-finite (drawn where the example ignores them) must stay ignored: only their
    class is offered, and none when they hold several (seed 3928828106: all-nan logits of ignored
    entries became live under another ignore_index, where the loss is undefined)."""
    t, c = ex["target"], ex["logits"].shape[1]
    if t.is_floating_point():
        return st.integers(0, c - 1)
    if bool((t == -100).any()):
        return st.nothing()
    nonfinite = ~torch.isfinite(ex["logits"]).all(dim=1)
    if bool(nonfinite.any()):
        classes = t[nonfinite].unique().tolist()
        return st.just(int(classes[0])) if len(classes) == 1 and 0 <= classes[0] < c else st.nothing()
    return st.integers(0, c - 1)


# ---------------------------------------------------------------------------
# Layouts and targets
# ---------------------------------------------------------------------------


@st.composite
def _logits(draw: st.DrawFn, *, dtypes: tuple[torch.dtype, ...], elements: st.SearchStrategy[float], min_n: int,
            min_c: int, max_c: int, max_extra: int) -> torch.Tensor:
    dtype = draw(hh.float_dtypes(dtypes=dtypes))
    n, c = draw(st.integers(min_n, 4)), draw(st.integers(min_c, max_c))
    extra = tuple(draw(st.lists(st.integers(1, 3), max_size=max_extra)))
    return draw(hh.tensors(shape=(n, c, *extra), dtype=dtype, elements=elements))


@st.composite
def _probabilities(draw: st.DrawFn, x: torch.Tensor) -> torch.Tensor:
    """Target distributions over the class axis, or any values in [0, 1] (the loss is linear in them)."""
    raw = draw(hh.tensors(shape=tuple(x.shape), dtype=torch.float64, elements=hh.unit_values()))
    if draw(st.booleans()) and raw.numel():
        total = raw.sum(1, keepdim=True)
        raw = torch.where(total > 0, raw / total.clamp_min(1e-300), torch.full_like(raw, 1.0 / x.shape[1]))
    return raw.to(x.dtype)


def _set_ignored_logits(draw: st.DrawFn, ex: Example, ignored: torch.Tensor, values: st.SearchStrategy[float]) -> None:
    """Replace the logits of the ignored entries (every class) by ``values``."""
    x = ex["logits"].clone()
    rows = x.movedim(1, -1)
    k = int(ignored.sum())
    rows[ignored] = draw(hh.tensors(shape=(k, x.shape[1]), dtype=x.dtype, elements=values))
    ex["logits"] = x


def _index_targets(draw: st.DrawFn, ex: Example, *, sentinel: int | None, ignore: int | None, nonfinite: bool) -> None:
    """Class indices for ``ex["logits"]``; some entries set to ``sentinel`` (when given); the
    logits of the entries equal to ``ignore`` possibly non-finite (the contract ignores them)."""
    x = ex["logits"]
    shape = (x.shape[0], *x.shape[2:])
    t = draw(_ints(shape, 0, x.shape[1] - 1))
    if sentinel is not None and t.numel() and draw(st.booleans()):
        t = torch.where(draw(_bools(shape)), torch.full_like(t, sentinel), t)
    ex["target"] = t
    ignored = t == ignore if ignore is not None else torch.zeros_like(t, dtype=torch.bool)
    if nonfinite and bool(ignored.any()) and draw(st.booleans()):
        _set_ignored_logits(draw, ex, ignored, _NONFINITE)


@st.composite
def _nonfinite_ignored(draw: st.DrawFn, strategy: st.SearchStrategy[Example], *, default: int | None) -> Example:
    """``strategy``'s examples, one in three of those with index targets given ignored entries
    (``ignore_index``, or ``default`` where the spec has one) whose logits are nan or +-inf: the
    contract ignores them, in the value and in the gradient."""
    ex = draw(strategy)
    t = ex["target"]
    if t.is_floating_point() or t.numel() == 0 or draw(st.integers(0, 2)):
        return ex
    ign = ex.get("ignore_index", default)
    if ign is None:
        ign = ex["ignore_index"] = draw(st.integers(0, ex["logits"].shape[1] - 1))
    mask = draw(_bools(tuple(t.shape)))
    mask.view(-1)[draw(st.integers(0, t.numel() - 1))] = True
    ex = {**ex, "target": torch.where(mask, torch.full_like(t, ign), t)}
    _set_ignored_logits(draw, ex, ex["target"] == ign, _NONFINITE)
    hh.region("non-finite logits at ignored entries")
    return ex


def _or_logits(elements: st.SearchStrategy[float] | None) -> st.SearchStrategy[float]:
    return hh.logit_values(max_abs=MAX_LOGIT) if elements is None else elements


def _defined_mean(strategy: st.SearchStrategy[Example], denominator: Any) -> st.SearchStrategy[Example]:
    """The examples of ``strategy`` with a 'mean' whose denominator is 0 (all ignored, zero target
    weights) summed instead: that mean is nan by contract, and so is its gradient."""

    def fix(ex: Example) -> Example:
        if ex.get("reduction", "mean") == "mean" and denominator(ex) == 0:
            return {**ex, "reduction": "sum"}
        return ex

    return strategy.map(fix)


def _reduction(draw: st.DrawFn, ex: Example, choices: tuple[str, ...]) -> None:
    # Always explicit, so that a deviation can be scoped to a reduction ("reduction == 'mean'");
    # defaults_honoured covers the call that omits it.
    ex["reduction"] = draw(st.sampled_from(choices))


# ---------------------------------------------------------------------------
# Regions
# ---------------------------------------------------------------------------


def _common_regions(ex: Example, ignored: torch.Tensor | None, *, layouts: bool = True) -> None:
    x = ex["logits"]
    hh.region(str(x.dtype).removeprefix("torch."))
    if x.numel() == 0:
        hh.region("empty")
    if x.dim() > 2 and layouts:
        hh.region("extra dims (N, C, d1, ...)")
    finite = _np(x)[np.isfinite(_np(x))]
    if finite.size and np.abs(finite).max() > 88:
        hh.region("extreme logits (|x| > 88)")
    if ignored is not None and bool(ignored.any()):
        hh.region("ignored entries")
        if not bool(torch.isfinite(x.movedim(1, -1)[ignored]).all()):
            hh.region("non-finite logits at ignored entries")
    if ex.get("reduction") is not None:
        hh.region(f"reduction={ex['reduction']}")


def _ignored(ex: Example, default: int | None) -> torch.Tensor | None:
    t = ex["target"]
    if t.is_floating_point():
        return None
    ign = ex.get("ignore_index", default)
    return t == ign if ign is not None else torch.zeros_like(t, dtype=torch.bool)


def _ce_regions(ex: Example) -> Example:
    t = ex["target"]
    _common_regions(ex, _ignored(ex, -100))
    if t.is_floating_point():
        hh.region("probability targets")
        if t.numel() and not np.allclose(_np(t).sum(1), 1.0, rtol=1e-3):
            hh.region("unnormalised probability targets")
    else:
        hh.region("index targets")
    if ex.get("ignore_index") is not None:
        hh.region("ignore_index inside the class range")
    if ex.get("weight") is not None:
        hh.region("class weights")
    if ex.get("label_smoothing", 0.0) > 0:
        hh.region("label smoothing")
    if ex["logits"].shape[1] == 1:
        hh.region("single class")
    return ex


# ---------------------------------------------------------------------------
# Reductions, scales and the trusted domain (see conformance.tolerances)
# ---------------------------------------------------------------------------


def _rows(a: np.ndarray) -> np.ndarray:
    return np.moveaxis(a, 1, -1).reshape(-1, a.shape[1])


def _want(ex: Example, value: Any, per_entry: np.ndarray, scale: np.ndarray, denominator: float, *,
          default: str = "mean", dtype: torch.dtype | None = None) -> Want:
    """The oracle's answer for the example's reduction, with the reduced scale. A reduction whose
    terms add up beyond the dtype's range overflows in any implementation that sums in that
    dtype: such an example is outside the trusted domain (counted as not asked)."""
    red = ex.get("reduction", default)
    if red == "none":
        return Want(value, scale=scale)
    total = float(np.sum(scale))
    reduced = total if red == "sum" else (total / denominator if denominator else 0.0)
    limit = float(torch.finfo(dtype or next(v for v in ex.values() if isinstance(v, torch.Tensor)).dtype).max)
    with np.errstate(invalid="ignore", over="ignore"):
        inside = bool(np.sum(np.abs(np.nan_to_num(per_entry, nan=0.0))) < limit / 2)
    return Want(value, mask=np.asarray(inside), scale=reduced)


def _ce_parts(ex: Example) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """(rows of logits, smoothed target distributions q (0 for ignored entries), class
    weights w, the valid-entry mask, the mean's denominator) in float64."""
    rows = _rows(_np(ex["logits"]))
    c = rows.shape[1]
    eps = ex.get("label_smoothing", 0.0)
    w = np.ones(c) if ex.get("weight") is None else _np(ex["weight"])
    t = ex["target"]
    if t.is_floating_point():
        q = (1 - eps) * _rows(_np(t)) + eps / c
        return rows, q, w, np.ones(rows.shape[0], dtype=bool), float(rows.shape[0])
    flat = t.reshape(-1).numpy()
    valid = flat != ex.get("ignore_index", -100)
    safe = np.where(valid, flat, 0)
    q = np.full((flat.size, c), eps / c)
    q[np.arange(flat.size), safe] += 1 - eps
    q[~valid] = 0.0
    return rows, q, w, valid, float(w[safe][valid].sum())


def _backward_scale(rows: np.ndarray, wq: np.ndarray, valid: np.ndarray, factor: float) -> np.ndarray:
    # Backward stability: an implementation exact for logits perturbed by a relative rtol
    # moves a loss of the softmax by up to sum_c |x_c| |dL/dx_c| rtol <= max|x| * factor *
    # sum_c |w_c q_c| rtol, since sum_c |dL/dx_c| <= 2 sum_c w_c q_c for the cross-entropy
    # (2 (1 + gamma) of it for the focal loss). Forming x - max or x - logsumexp(x) rounds
    # exactly this much, so the classic implementations are of this kind.
    with np.errstate(invalid="ignore"):
        spread = np.where(valid, np.max(np.abs(np.where(valid[:, None], rows, 0.0)), axis=1, initial=0.0), 0.0)
    return factor * spread * np.abs(wq).sum(axis=1)


def _ce_scale_entries(ex: Example) -> tuple[np.ndarray, float]:
    rows, q, w, valid, den = _ce_parts(ex)
    shape = (ex["logits"].shape[0], *ex["logits"].shape[2:])
    return _backward_scale(rows, w * q, valid, 2.0).reshape(shape), den


def _ce_denominator(ex: Example) -> float:
    return _ce_parts(ex)[4]


def _ce_scale(ex: Example) -> np.ndarray | float:
    s, den = _ce_scale_entries(ex)
    return _want(ex, 0.0, s, s, den).scale  # type: ignore[return-value]


def _tgt(t: torch.Tensor) -> np.ndarray:
    return _np(t) if t.is_floating_point() else t.numpy()


def _opt(ex: Example, key: str) -> np.ndarray | None:
    return None if ex.get(key) is None else _np(ex[key])


def _ce_numpy_value(ex: Example, reduction: str) -> Any:
    return npo.softmax_cross_entropy(_np(ex["logits"]), _tgt(ex["target"]), _opt(ex, "weight"),
                                     ex.get("ignore_index", -100), ex.get("label_smoothing", 0.0), reduction)


def _ce_answer(ex: Example, value: Any) -> Want:
    per = _ce_numpy_value(ex, "none")
    s, den = _ce_scale_entries(ex)
    return _want(ex, value, per, s, den)


def _ce_numpy(ex: Example) -> Want:
    return _ce_answer(ex, _ce_numpy_value(ex, ex.get("reduction", "mean")))


def _ce_torch(ex: Example) -> Want:
    t = ex["target"]
    w = ex.get("weight")
    want = torch.nn.functional.cross_entropy(
        ex["logits"].double(), t.double() if t.is_floating_point() else t, weight=None if w is None else w.double(),
        ignore_index=ex.get("ignore_index", -100), label_smoothing=ex.get("label_smoothing", 0.0),
        reduction=ex.get("reduction", "mean"))
    return _ce_answer(ex, _np(want))


def _ce_tensorflow(ex: Example) -> Want:
    from oracles import tf_classification as tfo

    value = tfo.softmax_cross_entropy(_np(ex["logits"]), _tgt(ex["target"]), weight=_opt(ex, "weight"),
                                      ignore_index=ex.get("ignore_index", -100),
                                      label_smoothing=ex.get("label_smoothing", 0.0),
                                      reduction=ex.get("reduction", "mean"))
    return _ce_answer(ex, value)


# ---------------------------------------------------------------------------
# softmax_cross_entropy: strategies and errors
# ---------------------------------------------------------------------------


@st.composite
def ce_inputs(draw: st.DrawFn, *, dtypes: tuple[torch.dtype, ...] = hh.FLOAT_DTYPES,
              elements: st.SearchStrategy[float] | None = None, kinds: tuple[str, ...] = ("index", "probability"),
              nonfinite: bool = True, keywords: bool = True, ignored: bool = True, min_n: int = 0,
              max_extra: int = 2) -> Example:
    """Logits (N, C, *) over the whole float32 range (|x| <= 2**120), index targets (with -100
    entries, or an in-range ignore_index, the ignored entries' logits possibly non-finite) or
    probability targets, and every keyword, each drawn or left at its default."""
    x = draw(_logits(dtypes=dtypes, elements=_or_logits(elements), min_n=min_n, min_c=1,
                     max_c=5, max_extra=max_extra))
    ex: Example = {"logits": x}
    if draw(st.sampled_from(kinds)) == "probability":
        ex["target"] = draw(_probabilities(x))
    else:
        if keywords and ignored and draw(st.integers(0, 3)) == 0:
            ex["ignore_index"] = draw(st.integers(0, x.shape[1] - 1))
        ign = ex.get("ignore_index", -100) if ignored else None
        _index_targets(draw, ex, sentinel=-100 if ignored and "ignore_index" not in ex else None, ignore=ign,
                       nonfinite=nonfinite)
    if keywords:
        if draw(st.booleans()):
            ex["weight"] = draw(_class_weights(ex))
        if draw(st.booleans()):
            ex["label_smoothing"] = draw(smoothings)
        _reduction(draw, ex, ("none", "mean", "sum"))
    return _ce_regions(ex)


def _ce_output_shape(ex: Example) -> tuple[int, ...]:
    x = ex["logits"]
    return (x.shape[0], *x.shape[2:]) if ex.get("reduction", "mean") == "none" else ()


@st.composite
def _ce_target_of_another_shape(draw: st.DrawFn) -> Example:
    ex = draw(ce_inputs(min_n=1, nonfinite=False, keywords=False))
    t = ex["target"]
    if t.is_floating_point():
        return {**ex, "target": torch.cat([t, t[:, :1]], dim=1)}
    how = draw(st.sampled_from(["extra entry", "class axis kept", "trailing axis"]))
    if how == "extra entry":
        return {**ex, "target": torch.cat([t, t[:1]])}
    return {**ex, "target": t.unsqueeze(1) if how == "class axis kept" else t.unsqueeze(-1).expand(*t.shape, 2).clone()}


@st.composite
def _ce_weight_of_another_length(draw: st.DrawFn) -> Example:
    ex = draw(ce_inputs(min_n=1, nonfinite=False, keywords=False))
    c = ex["logits"].shape[1]
    return {**ex, "weight": torch.ones(c + draw(st.sampled_from([-1, 1])) if c > 1 else 2, dtype=ex["logits"].dtype)}


@st.composite
def _class_out_of_range(draw: st.DrawFn, base: st.SearchStrategy[Example]) -> Example:
    ex = draw(base)
    t = ex["target"].clone()
    c = ex["logits"].shape[1]
    assume(t.numel() > 0)
    t.view(-1)[draw(st.integers(0, t.numel() - 1))] = draw(st.sampled_from([c, c + 3, -1, -7]))
    return {**ex, "target": t}


@st.composite
def _integer_logits(draw: st.DrawFn, base: st.SearchStrategy[Example]) -> Example:
    ex = draw(base)
    return {**ex, "logits": ex["logits"].round().long()}


@st.composite
def _bad_keyword(draw: st.DrawFn, base: st.SearchStrategy[Example], name: str, values: list[Any]) -> Example:
    return {**draw(base), name: draw(st.sampled_from(values))}


_CE_SMALL = ce_inputs(min_n=1, nonfinite=False, keywords=False, ignored=False, kinds=("index",),
                      elements=st.floats(-10, 10, allow_nan=False, allow_subnormal=False, width=32))
_BAD_REDUCTIONS = ["batchmean", "avg", "elementwise_mean", "Mean"]
_BAD_UNIT = [-0.1, 1.5, math.nan]

CE = register(
    Spec(
        id="softmax_cross_entropy",
        family="softmax",
        signature="f(logits: Tensor[N, C, *], target: Tensor[N, *] (int) | Tensor[N, C, *] (probabilities), *, "
        "weight: Tensor[C] | None = None, ignore_index: int = -100, label_smoothing: float = 0.0, "
        "reduction: str = 'mean') -> Tensor",
        summary="torch.nn.functional.cross_entropy semantics: -sum_c w_c q_c log p_c with q the (smoothed) target "
        "distribution; the weighted mean divides by the sum of the targets' weights, ignored entries leave "
        "numerator and denominator (whatever their logits), probability targets' mean divides by the entry "
        "count; an all-ignored mean is nan.",
        reference=ref.softmax_cross_entropy,
        convention=Convention(
            args=(Arg("logits", differentiable=True), Arg("target", differentiable=True)),
            keywords=(Keyword("weight", None, _class_weights), Keyword("ignore_index", -100, _in_range_ignore),
                      Keyword("label_smoothing", 0.0, smoothings),
                      Keyword("reduction", "mean", st.sampled_from(["none", "sum"]))),
            output_shape=_ce_output_shape,
            errors=(
                ErrorInput("target of another shape", "shape", "target", _ce_target_of_another_shape()),
                ErrorInput("weight of another length", "shape", "weight", _ce_weight_of_another_length()),
                ErrorInput("class index outside [0, C) and not ignore_index", "domain", "target",
                           _class_out_of_range(_CE_SMALL)),
                ErrorInput("integer logits", "dtype", "logits", _integer_logits(_CE_SMALL)),
                ErrorInput("label_smoothing outside [0, 1]", "domain", "label_smoothing",
                           _bad_keyword(_CE_SMALL, "label_smoothing", _BAD_UNIT)),
                ErrorInput("an unknown reduction", "domain", "reduction",
                           _bad_keyword(_CE_SMALL, "reduction", _BAD_REDUCTIONS)),
            ),
        ),
        strategies={
            "default": ce_inputs(),
            "extreme": _defined_mean(_nonfinite_ignored(ce_inputs(), default=-100), _ce_denominator),
            "gradcheck": _defined_mean(ce_inputs(dtypes=(torch.float64,), elements=st.floats(-20, 20, allow_nan=False,
                                                                                          width=32),
                                                 nonfinite=False, max_extra=1), _ce_denominator),
            # |x| <= 1e3 stays finite and ordered in float16; ignored logits finite.
            "device": ce_inputs(dtypes=(torch.float32,), elements=st.floats(-1e3, 1e3, allow_nan=False, width=32),
                                nonfinite=False),
        },
        oracles=(
            Oracle("numpy", "numpy", _ce_numpy, primary=True,
                   doc="f equals a per-entry float64 loop over the explicit smoothed target distribution (weights, "
                   "ignore_index, smoothing, every reduction, both target kinds) within the backward-error bound."),
            Oracle("torch", "torch", _ce_torch,
                   doc="f equals torch.nn.functional.cross_entropy evaluated in float64 on the same arguments."),
            Oracle("tensorflow", "tensorflow", _ce_tensorflow, requires=("tensorflow",), examples_factor=0.5,
                   doc="f equals tf.nn.(sparse_)softmax_cross_entropy_with_logits in float64, with the class weights "
                   "and smoothing folded into the labels and torch's reductions."),
        ),
        scale=_ce_scale,
        regions=("float32", "float64", "empty", "extra dims (N, C, d1, ...)", "extreme logits (|x| > 88)",
                 "ignored entries", "non-finite logits at ignored entries", "reduction=none", "reduction=mean",
                 "reduction=sum", "probability targets", "unnormalised probability targets", "index targets",
                 "ignore_index inside the class range", "class weights", "label smoothing", "single class"),
    )
)


# ---------------------------------------------------------------------------
# softmax_cross_entropy properties
# ---------------------------------------------------------------------------


@st.composite
def _shifted(draw: st.DrawFn) -> Example:
    ex = draw(ce_inputs(elements=_DYADIC_LOGIT))
    x = ex["logits"]
    shape = (x.shape[0], 1, *x.shape[2:])
    ex["shift"] = draw(hh.tensors(shape=shape, dtype=x.dtype, elements=st.sampled_from([0.0, 1.0, -3.0, 0.5, 64.0,
                                                                                          -1024.0])))
    return ex


@CE.property(Category.INVARIANCE, strategy=_shifted())
def shift_invariant_logits(target: Target, ex: Example) -> None:
    """f(x + c) == f(x) for a constant c added to every class of an entry (softmax is shift invariant; dyadic
    logits and shifts, so x + c is exact)."""
    a = call(CE, target, ex)
    shifted = {**ex, "logits": ex["logits"] + ex["shift"]}
    scale = np.maximum(np.abs(_np(_ce_scale(ex))), np.abs(_np(_ce_scale(shifted))))
    ck.assert_close(call(CE, target, shifted), ck.f64(a), spec=CE.id, key="self", dtype=ex["logits"].dtype,
                    what="f(x + c)", scale=scale)


@CE.property(Category.EQUIVALENCE, strategy=ce_inputs(kinds=("index",), ignored=False))
def one_hot_probability_target_equals_index_target(target: Target, ex: Example) -> None:
    """f(x, one_hot(t)) == f(x, t) with weights and smoothing, for 'none' and 'sum' (and 'mean' unweighted)."""
    x, t = ex["logits"], ex["target"]
    oh = torch.nn.functional.one_hot(t, x.shape[1]).movedim(-1, 1).to(x.dtype)
    red = ex.get("reduction", "mean")
    if red == "mean" and ex.get("weight") is not None:
        red = "sum"
    a = call(CE, target, {**ex, "reduction": red})
    b = call(CE, target, {**ex, "target": oh, "reduction": red})
    ck.assert_close(b, ck.f64(a), spec=CE.id, key="self", dtype=x.dtype, what="f(x, one_hot(t))",
                    scale=_ce_scale({**ex, "reduction": red}))


@st.composite
def _smoothed(draw: st.DrawFn) -> Example:
    return {**draw(ce_inputs()), "label_smoothing": draw(smoothings)}


@CE.property(Category.EQUIVALENCE, strategy=_smoothed())
def label_smoothing_formula(target: Target, ex: Example) -> None:
    """Per entry f(x, t; eps) == (1 - eps) f(x, t; 0) + (eps / C) sum_c w_c (-log p_c) (0 at ignored entries)."""
    x, eps = ex["logits"], ex["label_smoothing"]
    full = call(CE, target, {**ex, "reduction": "none"})
    plain = ck.f64(call(CE, target, {**ex, "label_smoothing": 0.0, "reduction": "none"}))
    rows, _, w, valid, _ = _ce_parts(ex)
    with np.errstate(invalid="ignore"):
        uniform = np.where(valid, -(npo.log_softmax(np.where(valid[:, None], rows, 0.0), 1) * w).sum(1), 0.0)
    uniform = uniform.reshape(plain.shape) / x.shape[1]
    ck.assert_close(full, (1 - eps) * plain + eps * uniform, spec=CE.id, key="self", dtype=x.dtype,
                    scale=_ce_scale({**ex, "reduction": "none"}), what="f(eps)")


@CE.property(Category.GRADIENT, strategy=ce_inputs(nonfinite=False))
def gradient_is_softmax_minus_target(target: Target, ex: Example) -> None:
    """d sum(f) / dx_c == p_c sum_k w_k q_k - w_c q_c (q the smoothed target; 0 at ignored entries)."""
    x = ex["logits"].clone().requires_grad_(True)
    out = call(CE, target, {**ex, "logits": x, "reduction": "sum"})
    g = ck.input_grad(out, x)
    rows, q, w, valid, _ = _ce_parts(ex)
    p = np.exp(npo.log_softmax(rows, 1)) if rows.size else rows
    want_rows = p * (w * q).sum(1, keepdims=True) - w * q
    want = np.moveaxis(want_rows.reshape(x.shape[0], *x.shape[2:], x.shape[1]), -1, 1)
    ck.assert_grad_close(g, want, spec=CE.id, key="analytic", dtype=ck.judged_dtype(x.dtype, out.dtype))


@CE.property(Category.REDUCTION, strategy=ce_inputs(kinds=("index",)))
def all_ignored_batch(target: Target, ex: Example) -> None:
    """Every target == ignore_index: 'none' gives zeros, 'sum' 0 and 'mean' nan (0/0, torch semantics)."""
    t = torch.full_like(ex["target"], ex.get("ignore_index", -100))
    every = {**ex, "target": t}
    none = ck.f64(call(CE, target, {**every, "reduction": "none"}))
    total = ck.f64(call(CE, target, {**every, "reduction": "sum"}))
    mean = ck.f64(call(CE, target, {**every, "reduction": "mean"}))
    if (none != 0).any() or total != 0:
        raise AssertionError(f"all ignored: none={none.ravel()[:4]!r}, sum={total!r}, but both should be 0")
    if not np.isnan(mean):
        raise AssertionError(f"all ignored: mean={mean!r}, but should be nan (0/0) as torch.nn.functional.cross_entropy gives")


@st.composite
def _with_replaced_ignored(draw: st.DrawFn, base: st.SearchStrategy[Example], default: int | None) -> Example:
    ex = draw(base)
    ignored = _ignored(ex, default)
    assume(ignored is not None and bool(ignored.any()))
    finite = dict(ex)
    _set_ignored_logits(draw, finite, ignored, st.just(0.0))
    other = dict(ex)
    _set_ignored_logits(draw, other, ignored, st.one_of(_NONFINITE, hh.logit_values(max_abs=MAX_LOGIT)))
    return {**finite, "replaced": other["logits"]}


@CE.property(Category.REDUCTION, strategy=_with_replaced_ignored(ce_inputs(kinds=("index",)), -100))
def ignored_entries_do_not_matter(target: Target, ex: Example) -> None:
    """Any logits at ignored entries (nan, +-inf, huge) leave every reduction as with zeros there."""
    for red in ("none", "sum", "mean"):
        a = call(CE, target, {**ex, "reduction": red})
        b = call(CE, target, {**ex, "logits": ex["replaced"], "reduction": red})
        ck.assert_close(b, ck.f64(a), spec=CE.id, key="self", dtype=ex["logits"].dtype,
                        what=f"f(x changed at ignored entries, reduction={red!r})", scale=_ce_scale({**ex, "reduction": red}))


# ---------------------------------------------------------------------------
# weighted_cross_entropy
# ---------------------------------------------------------------------------


@st.composite
def wce_inputs(draw: st.DrawFn, *, dtypes: tuple[torch.dtype, ...] = hh.FLOAT_DTYPES,
               elements: st.SearchStrategy[float] | None = None, soft: bool | None = None) -> Example:
    """(B, A, C) logits over the float32 range, one-hot targets or soft class scores with a
    unique maximum per row (only its argmax matters), rows with tied maxima (all-zero rows of
    unassigned anchors included: the first of the tied classes is read), (B, A) anchor weights in [0, 4]."""
    dtype = draw(hh.float_dtypes(dtypes=dtypes))
    b, a, c = draw(st.integers(0, 3)), draw(st.integers(0, 4)), draw(st.integers(1, 5))
    x = draw(hh.tensors(shape=(b, a, c), dtype=dtype, elements=_or_logits(elements)))
    idx = draw(_ints((b, a), 0, c - 1))
    z = torch.nn.functional.one_hot(idx, c).to(dtype)
    if (draw(st.booleans()) if soft is None else soft) and z.numel():
        # Scores below 1/2 off the labelled class and above it on it: the argmax is unique.
        noise = draw(hh.tensors(shape=(b, a, c), dtype=dtype, elements=st.floats(0, 0.4375, allow_nan=False, width=32)))
        z = torch.where(z > 0, 1 - noise, noise)
        hh.region("soft class scores")
    if z.numel() and c > 1 and draw(st.booleans()):
        # Some rows tie (at least one): all zero (an anchor assigned to no class) or two or more
        # classes at the row's maximum. torch.argmax and np.argmax read the first of them; so does
        # the contract.
        rows = draw(_bools((b, a)))
        if not rows.any():
            rows.view(-1)[draw(st.integers(0, rows.numel() - 1))] = True
        zero = draw(st.booleans())
        tied = z.clone()
        if not zero:
            top = tied.amax(-1, keepdim=True)
            extra = draw(_bools((b, a, c)))
            tied = torch.where(rows.unsqueeze(-1) & extra, top.expand_as(tied), tied)
        if zero or torch.equal(tied, z):  # no extra class drawn at the maximum: the rows go to zero
            tied[rows] = 0
        if not torch.equal(tied, z):
            z = tied
            hh.region("tied target scores (all-zero rows included)")
    w = draw(hh.tensors(shape=(b, a), dtype=dtype, elements=_WEIGHT_EL))
    ex = {"logits": x, "target": z, "weights": w}
    _common_regions(ex, None, layouts=False)
    return ex


@st.composite
def _wce_mismatch(draw: st.DrawFn) -> Example:
    ex = draw(wce_inputs())
    w, z = ex["weights"], ex["target"]
    how = draw(st.sampled_from(["weights with an extra anchor", "weights with the class axis", "targets with an extra class"]))
    if how == "weights with an extra anchor":
        return {**ex, "weights": torch.cat([w, w.new_ones((w.shape[0], 1))], dim=1)}
    if how == "weights with the class axis":
        return {**ex, "weights": w.unsqueeze(-1).expand(*w.shape, 2).clone()}
    return {**ex, "target": torch.cat([z, z.new_zeros((*z.shape[:-1], 1))], dim=-1)}


@st.composite
def _wce_two_d(draw: st.DrawFn) -> Example:
    ex = draw(wce_inputs())
    return {**ex, "logits": ex["logits"].flatten(0, 1), "target": ex["target"].flatten(0, 1),
            "weights": ex["weights"].flatten()}


def _wce_scale(ex: Example) -> np.ndarray:
    x = _np(ex["logits"])
    return 2.0 * np.max(np.abs(x), axis=-1, initial=0.0) * np.abs(_np(ex["weights"]))


def _wce_numpy(ex: Example) -> Want:
    return Want(npo.weighted_cross_entropy(_np(ex["logits"]), _np(ex["target"]), _np(ex["weights"])),
                scale=_wce_scale(ex))


def _wce_tensorflow(ex: Example) -> Want:
    from oracles import tf_classification as tfo

    return Want(tfo.weighted_cross_entropy(_np(ex["logits"]), _np(ex["target"]), _np(ex["weights"])),
                scale=_wce_scale(ex))


WCE = register(
    Spec(
        id="weighted_cross_entropy",
        family="softmax",
        signature="f(logits: Tensor[B, A, C], target: Tensor[B, A, C] (one-hot), weights: Tensor[B, A]) -> Tensor[B, A]",
        summary="OpenPCDet WeightedCrossEntropyLoss: CE against the argmax of the one-hot target (soft scores are "
        "read as their most likely class; where classes tie, an all-zero row included, the first of them, as "
        "torch.argmax reads it), times the anchor weights; never reduced.",
        reference=ref.weighted_cross_entropy,
        convention=Convention(
            args=(Arg("logits", differentiable=True), Arg("target"), Arg("weights")),
            output_shape=lambda ex: tuple(ex["logits"].shape[:2]),
            errors=(
                ErrorInput("weights or target of another shape", "shape", "weights", _wce_mismatch()),
                ErrorInput("(A, C) logits without the batch axis", "shape", "logits", _wce_two_d()),
                ErrorInput("integer logits", "dtype", "logits",
                           _integer_logits(wce_inputs(elements=st.floats(-10, 10, allow_nan=False, width=32)))),
            ),
        ),
        strategies={
            "default": wce_inputs(),
            "gradcheck": wce_inputs(dtypes=(torch.float64,), elements=st.floats(-20, 20, allow_nan=False, width=32)),
            "device": wce_inputs(dtypes=(torch.float32,), elements=st.floats(-1e3, 1e3, allow_nan=False, width=32)),
        },
        oracles=(
            Oracle("numpy", "numpy", _wce_numpy, primary=True,
                   doc="out[b, a] == -log softmax(x[b, a])[argmax z[b, a]] * w[b, a] (float64 loop)."),
            Oracle("tensorflow", "tensorflow", _wce_tensorflow, requires=("tensorflow",), examples_factor=0.5,
                   doc="out equals tf.nn.sparse_softmax_cross_entropy_with_logits(argmax z) * w in float64."),
        ),
        scale=_wce_scale,
        opt_out={"defaults_honoured": "the OpenPCDet form takes no keyword arguments, so there is no default to honour"},
        regions=("float32", "float64", "empty", "extreme logits (|x| > 88)", "soft class scores",
                 "tied target scores (all-zero rows included)"),
    )
)


@WCE.property(Category.INVARIANCE, strategy=wce_inputs())
def linear_in_weights(target: Target, ex: Example) -> None:
    """f(x, z, w) == f(x, z, 1) * w."""
    x = ex["logits"]
    base = ck.f64(call(WCE, target, {**ex, "weights": torch.ones_like(ex["weights"])}))
    ck.assert_close(call(WCE, target, ex), base * _np(ex["weights"]), spec=WCE.id, key="self", dtype=x.dtype,
                    scale=_wce_scale(ex))


@WCE.property(Category.EQUIVALENCE, strategy=wce_inputs(soft=True))
def only_the_argmax_of_the_target_matters(target: Target, ex: Example) -> None:
    """f(x, z, w) == f(x, one_hot(argmax z), w): soft class scores are read as their most likely class."""
    z = ex["target"]
    hard = torch.nn.functional.one_hot(z.argmax(-1), z.shape[-1]).to(z.dtype) if z.numel() else z
    want = ck.f64(call(WCE, target, {**ex, "target": hard}))
    ck.assert_close(call(WCE, target, ex), want, spec=WCE.id, key="self", dtype=ex["logits"].dtype,
                    what="f(x, soft scores)", scale=_wce_scale(ex))


@WCE.property(Category.GRADIENT, strategy=wce_inputs(), name="gradient_is_softmax_minus_target")
def wce_gradient(target: Target, ex: Example) -> None:
    """d sum(f) / dx == w (softmax(x) - one_hot(argmax z))."""
    x = ex["logits"].clone().requires_grad_(True)
    out = call(WCE, target, {**ex, "logits": x})
    g = ck.input_grad(out, x)
    xn = _np(ex["logits"])
    p = np.exp(npo.log_softmax(xn, -1)) if x.numel() else np.zeros(x.shape)
    hard = np.eye(x.shape[-1])[np.argmax(_np(ex["target"]), axis=-1)] if x.numel() else np.zeros(x.shape)
    want = (p - hard) * _np(ex["weights"])[..., None]
    ck.assert_grad_close(g, want, spec=WCE.id, key="analytic", dtype=ck.judged_dtype(x.dtype, out.dtype))


# ---------------------------------------------------------------------------
# softmax_focal
# ---------------------------------------------------------------------------


def _sf_regions(ex: Example) -> Example:
    _common_regions(ex, _ignored(ex, None))
    if ex.get("ignore_index") is not None:
        hh.region("ignore_index inside the class range")
    a = ex.get("alpha")
    hh.region("alpha None" if a is None else ("alpha per class" if isinstance(a, torch.Tensor) else "alpha a number"))
    g = ex.get("gamma", 2.0)
    hh.region("gamma = 0" if g == 0 else ("gamma in (0, 1)" if g < 1 else "gamma >= 1"))
    if ex.get("label_smoothing", 0.0) > 0:
        hh.region("label smoothing")
    if ex["logits"].shape[1] == 1:
        hh.region("single class")
    return ex


@st.composite
def sf_inputs(draw: st.DrawFn, *, dtypes: tuple[torch.dtype, ...] = hh.FLOAT_DTYPES,
              elements: st.SearchStrategy[float] | None = None, nonfinite: bool = True, keywords: bool = True,
              min_n: int = 0, min_c: int = 1, max_c: int = 5, max_extra: int = 1) -> Example:
    """Logits (N, C, *) over the float32 range (|x| <= 2**120), class indices, and every keyword
    (gamma, alpha as None / number / per-class tensor, an in-range ignore_index whose entries'
    logits may be non-finite, label smoothing, reduction), each drawn or left at its default."""
    x = draw(_logits(dtypes=dtypes, elements=_or_logits(elements), min_n=min_n,
                     min_c=min_c, max_c=max_c, max_extra=max_extra))
    ex: Example = {"logits": x}
    if keywords and draw(st.integers(0, 3)) == 0:
        ex["ignore_index"] = draw(st.integers(0, x.shape[1] - 1))
    _index_targets(draw, ex, sentinel=None, ignore=ex.get("ignore_index"), nonfinite=nonfinite)
    if keywords:
        if draw(st.integers(0, 3)):
            ex["gamma"] = draw(gammas)
        # Always drawn: _alphas already includes None, and a gate in front of it left a per-class
        # alpha in one example of sixty.
        ex["alpha"] = draw(_alphas(ex))
        if draw(st.booleans()):
            ex["label_smoothing"] = draw(smoothings)
        _reduction(draw, ex, ("none", "mean", "sum"))
    return _sf_regions(ex)


def _sf_parts(ex: Example) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(rows of logits, alpha-weighted smoothed targets alpha_c q_c, valid mask, count of valid entries)."""
    rows = _rows(_np(ex["logits"]))
    c = rows.shape[1]
    eps = ex.get("label_smoothing", 0.0)
    a = ex.get("alpha")
    alpha = npo.focal_alpha(_np(a) if isinstance(a, torch.Tensor) else a, c)
    flat = ex["target"].reshape(-1).numpy()
    ign = ex.get("ignore_index")
    valid = np.ones(flat.shape, dtype=bool) if ign is None else flat != ign
    q = np.full((flat.size, c), eps / c)
    q[np.arange(flat.size), np.where(valid, flat, 0)] += 1 - eps
    q[~valid] = 0.0
    return rows, alpha * q, valid, float(valid.sum())


def _sf_scale_entries(ex: Example) -> tuple[np.ndarray, float]:
    rows, aq, valid, den = _sf_parts(ex)
    shape = (ex["logits"].shape[0], *ex["logits"].shape[2:])
    return _backward_scale(rows, aq, valid, 2.0 * (1.0 + ex.get("gamma", 2.0))).reshape(shape), den


def _sf_denominator(ex: Example) -> float:
    return _sf_parts(ex)[3]


def _sf_scale(ex: Example) -> np.ndarray | float:
    s, den = _sf_scale_entries(ex)
    return _want(ex, 0.0, s, s, den).scale  # type: ignore[return-value]


def _sf_kwargs(ex: Example) -> dict[str, Any]:
    a = ex.get("alpha")
    return {"gamma": ex.get("gamma", 2.0), "alpha": _np(a) if isinstance(a, torch.Tensor) else a,
            "ignore_index": ex.get("ignore_index"), "label_smoothing": ex.get("label_smoothing", 0.0)}


def _sf_answer(ex: Example, value: Any, mask: np.ndarray | None = None) -> Want:
    per = npo.softmax_focal(_np(ex["logits"]), ex["target"].numpy(), reduction="none", **_sf_kwargs(ex))
    s, den = _sf_scale_entries(ex)
    want = _want(ex, value, per, s, den)
    if mask is None:
        return want
    if ex.get("reduction", "mean") != "none":
        mask = np.asarray(bool(np.all(mask)) and bool(want.mask if want.mask is not None else True))
    return Want(want.value, mask=mask, scale=want.scale)


def _sf_numpy(ex: Example) -> Want:
    value = npo.softmax_focal(_np(ex["logits"]), ex["target"].numpy(), reduction=ex.get("reduction", "mean"),
                              **_sf_kwargs(ex))
    return _sf_answer(ex, value)


def _sf_keras(ex: Example) -> Want:
    from oracles import tf_classification as tfo

    kw = _sf_kwargs(ex)
    x, t = _np(ex["logits"]), ex["target"].numpy()
    value = tfo.softmax_focal(x, t, reduction=ex.get("reduction", "mean"), **kw)
    domain = tfo.softmax_focal_domain(x, t, ignore_index=kw["ignore_index"], label_smoothing=kw["label_smoothing"])
    return _sf_answer(ex, value, mask=domain)


def _sf_output_shape(ex: Example) -> tuple[int, ...]:
    return _ce_output_shape(ex)


_SF_SMALL = sf_inputs(min_n=1, nonfinite=False, keywords=False,
                      elements=st.floats(-10, 10, allow_nan=False, allow_subnormal=False, width=32))


@st.composite
def _sf_target_of_another_shape(draw: st.DrawFn) -> Example:
    ex = draw(_SF_SMALL)
    t = ex["target"]
    how = draw(st.sampled_from(["extra entry", "class axis kept", "one-hot target"]))
    if how == "extra entry":
        return {**ex, "target": torch.cat([t, t[:1]])}
    if how == "class axis kept":
        return {**ex, "target": t.unsqueeze(1)}
    return {**ex, "target": torch.nn.functional.one_hot(t, ex["logits"].shape[1]).movedim(-1, 1).contiguous()}


@st.composite
def _sf_alpha_of_another_length(draw: st.DrawFn) -> Example:
    ex = draw(_SF_SMALL)
    c = ex["logits"].shape[1]
    return {**ex, "alpha": torch.full((c + 1,), 0.5, dtype=ex["logits"].dtype)}


@st.composite
def _sf_float_target(draw: st.DrawFn) -> Example:
    ex = draw(_SF_SMALL)
    return {**ex, "target": ex["target"].to(ex["logits"].dtype)}


def _finite_gradient_corners() -> tuple[Example, ...]:
    """Rows where p_t rounds to 1 in float32, with gamma in (0, 1): a plain power's gradient is nan there."""
    return tuple({"logits": torch.tensor([[v, 0.0]], dtype=torch.float32), "target": torch.tensor([0]), "gamma": g,
                  "reduction": "sum"} for v in (30.0, 100.0, 1e4) for g in (0.25, 0.5))


SFOCAL = register(
    Spec(
        id="softmax_focal",
        family="softmax",
        signature="f(logits: Tensor[N, C, *], target: Tensor[N, *] (int), *, gamma: float = 2.0, "
        "alpha: float | Tensor[C] | None = None, ignore_index: int | None = None, label_smoothing: float = 0.0, "
        "reduction: str = 'mean') -> Tensor",
        summary="Per entry sum_c alpha_c q_c (1 - p_c)^gamma (-log p_c), q the target one-hot smoothed by eps/C "
        "(alpha_t (1 - p_t)^gamma CE without smoothing); alpha None (1), per class, or a number a (class 0 "
        "weighted 1 - a, the others a); ignored entries give 0 and leave the mean, which is over entries "
        "(not N x C, not alpha-weighted).",
        reference=ref.softmax_focal,
        convention=Convention(
            args=(Arg("logits", differentiable=True), Arg("target", floating=False)),
            keywords=(Keyword("gamma", 2.0, gammas), Keyword("alpha", None, _alphas),
                      Keyword("ignore_index", None, _in_range_ignore), Keyword("label_smoothing", 0.0, smoothings),
                      Keyword("reduction", "mean", st.sampled_from(["none", "sum"]))),
            output_shape=_sf_output_shape,
            errors=(
                ErrorInput("target of another shape", "shape", "target", _sf_target_of_another_shape()),
                ErrorInput("alpha of another length", "shape", "alpha", _sf_alpha_of_another_length()),
                ErrorInput("class index outside [0, C)", "domain", "target", _class_out_of_range(_SF_SMALL)),
                ErrorInput("integer logits", "dtype", "logits", _integer_logits(_SF_SMALL)),
                ErrorInput("floating target", "dtype", "target", _sf_float_target()),
                ErrorInput("gamma < 0 or nan", "domain", "gamma", _bad_keyword(_SF_SMALL, "gamma", [-1.0, -0.5, math.nan])),
                ErrorInput("a number alpha outside [0, 1]", "domain", "alpha",
                           _bad_keyword(_SF_SMALL, "alpha", [-0.25, 1.5, math.nan])),
                ErrorInput("label_smoothing outside [0, 1]", "domain", "label_smoothing",
                           _bad_keyword(_SF_SMALL, "label_smoothing", _BAD_UNIT)),
                ErrorInput("an unknown reduction", "domain", "reduction",
                           _bad_keyword(_SF_SMALL, "reduction", _BAD_REDUCTIONS)),
            ),
        ),
        strategies={
            "default": sf_inputs(),
            "extreme": _defined_mean(_nonfinite_ignored(sf_inputs(), default=None), _sf_denominator),
            "gradcheck": _defined_mean(sf_inputs(dtypes=(torch.float64,), elements=st.floats(-20, 20, allow_nan=False,
                                                                                          width=32),
                                                 nonfinite=False), _sf_denominator),
            "device": sf_inputs(dtypes=(torch.float32,), elements=st.floats(-1e3, 1e3, allow_nan=False, width=32),
                                nonfinite=False),
        },
        oracles=(
            Oracle("numpy", "numpy", _sf_numpy, primary=True,
                   doc="f equals the per-entry float64 formula sum_c alpha_c q_c (1 - p_c)^gamma (-log p_c), with "
                   "1 - p_c the sum of the other probabilities, reduced over non-ignored entries."),
            # Drawn where Keras is trusted (logit spreads <= 12, so 1e-7 <= p_c <= 1 - 1e-7) so that its
            # examples are not mostly masked; the default strategy's extremes are the numpy oracle's.
            Oracle("keras", "keras", _sf_keras, requires=("tensorflow",), examples_factor=0.5,
                   strategy=sf_inputs(elements=st.floats(-6, 6, allow_nan=False, allow_subnormal=False, width=32)),
                   domain="entries whose weighed classes have 1e-7 <= p_c <= 1 - 1e-7 (Keras clips probabilities)",
                   doc="f equals keras.losses.CategoricalFocalCrossentropy(alpha as a per-class array, gamma, "
                   "label_smoothing, from_logits=True) in float64, where Keras does not clip."),
        ),
        variants=(
            Variant("seed_softmax_focal", ref.seed_softmax_focal,
                    "seed 002's FocalLoss applies the focal factor to the already-reduced mean CE"),
        ),
        scale=_sf_scale,
        examples={"finite_gradients": _finite_gradient_corners()},
        regions=("float32", "float64", "empty", "extra dims (N, C, d1, ...)", "extreme logits (|x| > 88)",
                 "ignored entries", "non-finite logits at ignored entries", "ignore_index inside the class range",
                 "reduction=none", "reduction=mean", "reduction=sum", "alpha None", "alpha per class",
                 "alpha a number", "gamma = 0", "gamma in (0, 1)", "gamma >= 1", "label smoothing", "single class"),
    )
)


def _sf_none(target: Target, ex: Example, **over: Any) -> torch.Tensor:
    return call(SFOCAL, target, {**ex, "reduction": "none", **over})


def _no_ignore(ex: Example) -> int:
    ign = ex.get("ignore_index")
    return -(2**40) if ign is None else ign


@SFOCAL.property(Category.EQUIVALENCE, strategy=sf_inputs())
def gamma0_is_cross_entropy(target: Target, ex: Example) -> None:
    """f(gamma=0) == the cross-entropy with class weights alpha_c and the same smoothing, per entry and reduced
    over the non-ignored entries."""
    x = ex["logits"]
    rows, aq, valid, count = _sf_parts(ex)
    a = ex.get("alpha")
    alpha = npo.focal_alpha(_np(a) if isinstance(a, torch.Tensor) else a, x.shape[1])
    per = npo.softmax_cross_entropy(_np(x), ex["target"].numpy(), alpha, _no_ignore(ex),
                                    ex.get("label_smoothing", 0.0), "none")
    red = ex.get("reduction", "mean")
    want = per if red == "none" else (per.sum() if red == "sum" else (per.sum() / count if count else np.nan))
    s, den = _sf_scale_entries({**ex, "gamma": 0.0})
    w = _want(ex, want, per, s, den)
    ck.assert_close(call(SFOCAL, target, {**ex, "gamma": 0.0}), w.value, spec=SFOCAL.id, key="numpy", dtype=x.dtype,
                    scale=w.scale, mask=w.mask, what="f(gamma=0)")


def _confident_mistakes() -> tuple[Example, ...]:
    """float64 rows whose target class has p_t ~ e^-80: the bound FL <= CE is tight there (the
    focal factor tends to 1), so a factor that exceeds 1 shows."""
    x = torch.tensor([[-40.0, 0.0, 40.0], [40.0, -40.0, 0.0]], dtype=torch.float64)
    t = torch.tensor([0, 1])
    return tuple({"logits": x, "target": t, "gamma": g, "reduction": "none", **kw}
                 for g in (0.5, 2.0) for kw in ({}, {"label_smoothing": 0.25, "alpha": 0.25}))


@SFOCAL.property(Category.EQUIVALENCE, strategy=sf_inputs(), examples=_confident_mistakes())
def never_above_cross_entropy(target: Target, ex: Example) -> None:
    """Per entry 0 <= FL <= CE with the same alpha and smoothing (since 0 <= 1 - p_c <= 1 and alpha_c q_c >= 0)."""
    x = ex["logits"]
    fl_t = _sf_none(target, ex)
    fl = ck.f64(fl_t)
    a = ex.get("alpha")
    alpha = npo.focal_alpha(_np(a) if isinstance(a, torch.Tensor) else a, x.shape[1])
    ce = np.asarray(npo.softmax_cross_entropy(_np(x), ex["target"].numpy(), alpha, _no_ignore(ex),
                                              ex.get("label_smoothing", 0.0), "none"))
    tol = ck.tolerance(SFOCAL.id, "self", ck.judged_dtype(x.dtype, fl_t.dtype))
    slack = tol.atol + tol.rtol * (np.abs(ce) + _np(_sf_scale({**ex, "reduction": "none"})))
    with np.errstate(invalid="ignore"):
        bad = ~((fl <= ce + slack) & (fl >= -slack))
    bad &= np.isfinite(ce)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise AssertionError(f"FL.flat[{i}]={fl.flat[i]!r}, but should lie in [0, CE={ce.flat[i]!r}] "
                             f"(gamma={ex.get('gamma', 2.0)!r})")


@SFOCAL.property(Category.REDUCTION, strategy=sf_inputs())
def mean_is_mean_of_per_sample(target: Target, ex: Example) -> None:
    """f('mean') == sum of f('none') over the non-ignored entries / their count (not N x C); f('sum') == its sum."""
    x = ex["logits"]
    per = ck.f64(_sf_none(target, ex))
    _, _, valid, count = _sf_parts(ex)
    s, _ = _sf_scale_entries(ex)
    total = float(per.reshape(-1)[valid].sum())
    ck.assert_close(call(SFOCAL, target, {**ex, "reduction": "sum"}), total, spec=SFOCAL.id, key="self",
                    dtype=x.dtype, scale=float(np.sum(s)), what="sum")
    ck.assert_close(call(SFOCAL, target, {**ex, "reduction": "mean"}), total / count if count else np.nan,
                    spec=SFOCAL.id, key="self", dtype=x.dtype, scale=float(np.sum(s)) / max(count, 1.0), what="mean")


@st.composite
def _sf_sentinel(draw: st.DrawFn) -> Example:
    ex = draw(sf_inputs(min_n=1, keywords=True, nonfinite=False))
    ex.pop("ignore_index", None)
    sentinel = draw(st.sampled_from([-100, -1, 255]))
    t = ex["target"]
    t = torch.where(draw(_bools(tuple(t.shape))), torch.full_like(t, sentinel), t)
    return {**ex, "target": t, "ignore_index": sentinel}


@SFOCAL.property(Category.REDUCTION, strategy=_with_replaced_ignored(_sf_sentinel(), None), name="ignored_entries_do_not_matter")
def sf_ignored_entries_do_not_matter(target: Target, ex: Example) -> None:
    """Entries labelled ignore_index (-100, -1, 255) give 0 whatever their logits (nan, +-inf, huge) and leave
    every reduction as with zeros there."""
    for red in ("none", "sum", "mean"):
        a = call(SFOCAL, target, {**ex, "reduction": red})
        b = call(SFOCAL, target, {**ex, "logits": ex["replaced"], "reduction": red})
        ck.assert_close(b, ck.f64(a), spec=SFOCAL.id, key="self", dtype=ex["logits"].dtype,
                        what=f"f(x changed at ignored entries, reduction={red!r})", scale=_sf_scale({**ex, "reduction": red}))
    none = ck.f64(call(SFOCAL, target, {**ex, "logits": ex["replaced"], "reduction": "none"}))
    ignored = (ex["target"] == ex["ignore_index"]).numpy()
    if (none[ignored] != 0).any():
        raise AssertionError(f"ignored entries give {none[ignored][:4]!r}, but should give 0")


@st.composite
def _two_classes(draw: st.DrawFn) -> Example:
    ex = draw(sf_inputs(min_c=2, max_c=2, elements=_DYADIC_LOGIT, nonfinite=False, keywords=False))
    ex["gamma"] = draw(gammas)
    ex["alpha"] = draw(st.one_of(st.none(), hh.dyadic_unit(bits=8)))
    return ex


@SFOCAL.property(Category.EQUIVALENCE, strategy=_two_classes())
def two_classes_is_sigmoid_focal(target: Target, ex: Example) -> None:
    """With C = 2 and a number alpha: f(x, t) == sigmoid_focal(x_1 - x_0, t; alpha, gamma) (class 1 the positive
    one; dyadic logits, so the difference is exact)."""
    from oracles import numpy_focal

    x = _np(ex["logits"])
    d = x[:, 1] - x[:, 0]
    want = numpy_focal.sigmoid_focal(d, ex["target"].numpy().astype(np.float64), ex["alpha"], ex["gamma"])
    ck.assert_close(_sf_none(target, ex), want, spec=SFOCAL.id, key="numpy", dtype=ex["logits"].dtype,
                    scale=_sf_scale({**ex, "reduction": "none"}), what="f(C = 2)")


# ---------------------------------------------------------------------------
# kl_div
# ---------------------------------------------------------------------------


def _kl_regions(ex: Example) -> Example:
    x, t = ex["input"], ex["target"]
    hh.region(str(x.dtype).removeprefix("torch."))
    if x.numel() == 0:
        hh.region("empty")
    elif x.dim() == 0:
        hh.region("0-d")
    log_target = ex.get("log_target", False)
    hh.region("log_target" if log_target else "probability target")
    tn = _np(t)
    if bool((np.isneginf(tn) if log_target else tn == 0).any()):
        hh.region("zero target probabilities")
    if bool(np.isneginf(_np(x)).any()):
        hh.region("input -inf (zero predicted probability)")
    finite = _np(x)[np.isfinite(_np(x))]
    if finite.size and np.abs(finite).max() > 88:
        hh.region("extreme inputs (|x| > 88)")
    if ex.get("reduction") is not None:
        hh.region(f"reduction={ex['reduction']}")
    return ex


@st.composite
def kl_inputs(draw: st.DrawFn, *, dtypes: tuple[torch.dtype, ...] = hh.FLOAT_DTYPES, max_abs: float = MAX_LOGIT,
              infinite: bool = True, normalised: bool | None = None, keywords: bool = True, min_dims: int = 0,
              zeros: bool = True, log_softmax: bool = False) -> Example:
    """Log-space inputs x <= 0 over the float32 range (-inf where asked), targets in [0, 1] with
    zeros and subnormals (rows normalised along the last axis or not), or their logs when
    log_target; every keyword drawn or left at its default."""
    dtype = draw(hh.float_dtypes(dtypes=dtypes))
    shape = draw(hh.shapes(min_dims=min_dims, max_dims=3, max_side=4))
    neg = hh.logit_values(max_abs=max_abs).map(lambda v: -abs(v))
    x = draw(hh.tensors(shape=shape, dtype=dtype, elements=st.one_of(neg, st.just(-math.inf)) if infinite else neg))
    if log_softmax and x.dim() and x.numel():
        x = torch.log_softmax(x.double(), dim=-1).to(dtype)
    unit = hh.unit_values() if zeros else st.floats(2.0**-7, 1.0, allow_nan=False, allow_subnormal=False, width=32)
    p = draw(hh.tensors(shape=shape, dtype=torch.float64, elements=unit))
    if (draw(st.booleans()) if normalised is None else normalised) and p.dim() and p.numel():
        total = p.sum(-1, keepdim=True)
        p = torch.where(total > 0, p / total.clamp_min(1e-300), torch.full_like(p, 1.0 / p.shape[-1]))
    ex: Example = {"input": x, "target": p.to(dtype)}
    if keywords:
        ex["log_target"] = draw(st.booleans())
        if ex["log_target"]:
            ex["target"] = torch.log(p).to(dtype)
        _reduction(draw, ex, ("none", "mean", "sum", "batchmean"))
    return _kl_regions(ex)


def _kl_point_scale(ex: Example) -> np.ndarray:
    # Backward stability in both arguments: t (log t - x) moves by |t x| rtol through x and by
    # |t (log t - x + 1)| rtol through t (exp(lt) (|lt - x + 1| |lt|) in log space).
    x, t = _np(ex["input"]), _np(ex["target"])
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if ex.get("log_target", False):
            p = np.exp(t)
            s = p * (np.abs(t) * np.abs(t - x + 1) + np.abs(x))
        else:
            s = np.abs(t) * (np.abs(np.log(t) - x + 1) + np.abs(x))
    return np.where(np.isfinite(s), s, 0.0)


def _kl_denominator(ex: Example) -> float:
    x = ex["input"]
    red = ex.get("reduction", "mean")
    return float(x.shape[0] if x.dim() else 1) if red == "batchmean" else float(x.numel())


def _kl_want(ex: Example, value: Any, mask: np.ndarray | None = None) -> Want:
    per = npo.kl_div(_np(ex["input"]), _np(ex["target"]), "none", ex.get("log_target", False))
    s = _kl_point_scale(ex)
    want = _want(ex, value, per, s, _kl_denominator(ex))
    if mask is None:
        return want
    if ex.get("reduction", "mean") != "none":
        mask = np.asarray(bool(np.all(mask)) and bool(want.mask if want.mask is not None else True))
    return Want(want.value, mask=mask, scale=want.scale)


def _kl_scale(ex: Example) -> np.ndarray | float:
    s = _kl_point_scale(ex)
    return _want(ex, 0.0, s, s, _kl_denominator(ex)).scale  # type: ignore[return-value]


def _kl_numpy(ex: Example) -> Want:
    return _kl_want(ex, npo.kl_div(_np(ex["input"]), _np(ex["target"]), ex.get("reduction", "mean"),
                                   ex.get("log_target", False)))


def _kl_keras(ex: Example) -> Want:
    from oracles import tf_classification as tfo

    x, t, lt = _np(ex["input"]), _np(ex["target"]), ex.get("log_target", False)
    value = tfo.kl_div(x, t, reduction=ex.get("reduction", "mean"), log_target=lt)
    return _kl_want(ex, value, mask=tfo.kl_div_domain(x, t, log_target=lt))


_KL_SMALL = kl_inputs(max_abs=30.0, infinite=False, keywords=False, min_dims=1)


@st.composite
def _kl_target_of_another_shape(draw: st.DrawFn) -> Example:
    ex = draw(_KL_SMALL)
    t = ex["target"]
    how = draw(st.sampled_from(["extra entry", "extra axis", "fewer classes"]))
    if how == "extra entry":
        return {**ex, "target": torch.cat([t, t[:1]]) if t.shape[0] else t.new_ones((1, *t.shape[1:]))}
    if how == "extra axis":
        return {**ex, "target": t.unsqueeze(0).expand(2, *t.shape).clone()}
    # An empty last axis stays empty when doubled: a ones column always changes the shape.
    return {**ex, "target": t[..., :-1] if t.shape[-1] > 1 else torch.cat([t, t.new_ones((*t.shape[:-1], 1))], dim=-1)}


@st.composite
def _kl_target_of_another_dtype(draw: st.DrawFn) -> Example:
    ex = draw(_KL_SMALL)
    other = torch.float32 if ex["input"].dtype == torch.float64 else torch.float64
    return {**ex, "target": ex["target"].to(other)}


@st.composite
def _kl_integer_input(draw: st.DrawFn) -> Example:
    ex = draw(_KL_SMALL)
    return {**ex, "input": ex["input"].round().long()}


KL = register(
    Spec(
        id="kl_div",
        family="softmax",
        signature="f(input: Tensor[*] (log-probabilities), target: Tensor[*], *, reduction: str = 'mean', "
        "log_target: bool = False) -> Tensor",
        summary="torch.nn.functional.kl_div semantics: pointwise t (log t - x), or e^t (t - x) with log_target; a "
        "zero target probability (t = 0, or -inf in log space) contributes exactly 0 whatever x; 'mean' over "
        "elements, 'batchmean' over the first axis (the KL per sample), 'sum'.",
        reference=ref.kl_div,
        convention=Convention(
            args=(Arg("input", differentiable=True), Arg("target", differentiable=True)),
            keywords=(Keyword("reduction", "mean", st.sampled_from(["none", "sum", "batchmean"])),
                      Keyword("log_target", False, st.just(True))),
            output_shape=lambda ex: tuple(ex["input"].shape) if ex.get("reduction", "mean") == "none" else (),
            errors=(
                ErrorInput("target of another shape", "shape", "target", _kl_target_of_another_shape()),
                ErrorInput("target of another dtype", "dtype", "target", _kl_target_of_another_dtype()),
                ErrorInput("integer input", "dtype", "input", _kl_integer_input()),
                ErrorInput("an unknown reduction", "domain", "reduction",
                           _bad_keyword(_KL_SMALL, "reduction", ["avg", "batch_mean", "elementwise_mean", "Mean"])),
                ErrorInput("log_target not a bool", "domain", "log_target",
                           _bad_keyword(_KL_SMALL, "log_target", ["true", None])),
            ),
        ),
        strategies={
            "default": kl_inputs(),
            # d/dt t (log t - x) is +inf at x = -inf: finite gradients are claimed for finite inputs.
            "extreme": kl_inputs(infinite=False),
            # The derivative of t log t is -inf at t = 0 and e^t (t - x) has none at t = -inf: gradcheck
            # stays away from zero probabilities, as finite differences must.
            "gradcheck": kl_inputs(dtypes=(torch.float64,), max_abs=20.0, infinite=False, zeros=False),
            "device": kl_inputs(dtypes=(torch.float32,), max_abs=1e3, infinite=False),
        },
        oracles=(
            Oracle("numpy", "numpy", _kl_numpy, primary=True,
                   doc="f equals sum / mean / batchmean of t (log t - x) with 0 log 0 = 0 (float64, element by element), "
                   "zero target probabilities and -inf inputs included."),
            Oracle("keras", "keras", _kl_keras, requires=("tensorflow",), examples_factor=0.5,
                   domain="elements with 1e-7 <= t <= 1 and log(1e-7) <= x <= 0 (Keras clips both distributions)",
                   doc="f equals keras.losses.KLDivergence on exp(x) and t, element by element, in float64, where "
                   "Keras does not clip."),
        ),
        scale=_kl_scale,
        regions=("float32", "float64", "empty", "0-d", "log_target", "probability target", "zero target probabilities",
                 "input -inf (zero predicted probability)", "extreme inputs (|x| > 88)", "reduction=none",
                 "reduction=mean", "reduction=sum", "reduction=batchmean"),
    )
)


def _kl_sum(target: Target, ex: Example, **over: Any) -> torch.Tensor:
    return call(KL, target, {**ex, "reduction": "sum", **over})


_KL_SELF_EXAMPLE = {
    "input": torch.zeros(4, 8),
    "target": torch.cat([torch.eye(3, 8), torch.tensor([[0.0, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0]])]),
}


# A target with zero entries: their term is 0 by convention (0 log 0 = 0), which clipping to an
# epsilon breaks.
@KL.property(Category.EQUIVALENCE, strategy=kl_inputs(infinite=False, keywords=False, normalised=True, min_dims=1),
             examples=(_KL_SELF_EXAMPLE,))
def kl_of_a_distribution_with_itself_is_zero(target: Target, ex: Example) -> None:
    """KL(p || p) == 0: f(log p, p, reduction='sum') == 0, zero probabilities included."""
    t = ex["target"]
    with torch.no_grad():
        logp = torch.where(t > 0, torch.log(t), torch.zeros_like(t))
    out = _kl_sum(target, {**ex, "input": logp})
    # log p rounds to the nearest float: each term is t (log t - round(log t)), within t ulp(log t).
    scale = float(np.sum(np.abs(_np(t)) * (np.abs(_np(logp)) + 1)))
    ck.assert_close(out, 0.0, spec=KL.id, key="self", dtype=t.dtype, scale=scale, what="KL(p||p)")


@KL.property(Category.EQUIVALENCE, strategy=kl_inputs(max_abs=1e4, infinite=False, keywords=False, normalised=True,
                                                     min_dims=1, log_softmax=True))
def cross_entropy_minus_entropy(target: Target, ex: Example) -> None:
    """sum f(log q, p) == CE(p, q) - H(p) >= 0 for distributions p along the last axis (Gibbs' inequality)."""
    x, t = ex["input"], ex["target"]
    pn, xn = _np(t), _np(x)
    ce = -(pn * xn).sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(pn > 0, pn * np.log(np.where(pn > 0, pn, 1)), 0).sum()
    out = _kl_sum(target, ex)
    scale = float(np.sum(_kl_point_scale(ex))) + abs(ce)
    ck.assert_close(out, ce - h, spec=KL.id, key="self", dtype=x.dtype, scale=scale, what="KL")
    tol = ck.tolerance(KL.id, "self", ck.judged_dtype(x.dtype, out.dtype))
    if ck.f64(out) < -(tol.atol + tol.rtol * scale):
        raise AssertionError(f"KL={ck.f64(out)!r}, but should be >= 0")


@KL.property(Category.EQUIVALENCE, strategy=kl_inputs(keywords=False))
def log_target_agrees(target: Target, ex: Example) -> None:
    """f(x, p) == f(x, log p, log_target=True) elementwise; a zero probability is -inf in log space and gives 0."""
    x, t = ex["input"], ex["target"]
    lt = torch.log(t)
    a = ck.f64(call(KL, target, {**ex, "reduction": "none"}))
    b = call(KL, target, {**ex, "target": lt, "reduction": "none", "log_target": True})
    # log t rounds once: e^lt (lt - x) then moves by about |t| |lt - x + 1| ulp(lt).
    scale = np.maximum(_kl_point_scale(ex), _kl_point_scale({**ex, "target": lt, "log_target": True}))
    ck.assert_close(b, a, spec=KL.id, key="self", dtype=x.dtype, scale=scale, what="f(x, log p, log_target=True)")


@KL.property(Category.GRADIENT, strategy=kl_inputs(infinite=False, keywords=False))
def zero_target_probabilities_are_finite(target: Target, ex: Example) -> None:
    """With zeros in the target, the value and d f / d(input) are finite, and d sum(f) / dx == -t."""
    x = ex["input"].clone().requires_grad_(True)
    out = _kl_sum(target, {**ex, "input": x})
    if math.isfinite(float(np.sum(np.abs(npo.kl_div(_np(ex["input"]), _np(ex["target"]), "none"))))):
        ck.assert_finite(out.detach(), what="KL")
    g = ck.input_grad(out, x)
    ck.assert_grad_close(g, -_np(ex["target"]), spec=KL.id, key="analytic", dtype=ck.judged_dtype(x.dtype, out.dtype))


@KL.property(Category.REDUCTION, strategy=kl_inputs())
def batchmean_is_sum_over_batch(target: Target, ex: Example) -> None:
    """'batchmean' == 'sum' / N (N = input.shape[0]; a 0-d input is its own batch) and 'mean' == 'sum' / numel."""
    x = ex["input"]
    s = ck.f64(_kl_sum(target, ex))
    scale = float(np.sum(_kl_point_scale(ex)))
    n = x.shape[0] if x.dim() else 1
    with np.errstate(invalid="ignore", divide="ignore"):
        ck.assert_close(call(KL, target, {**ex, "reduction": "batchmean"}), s / n if n else np.nan, spec=KL.id,
                        key="self", dtype=x.dtype, scale=scale / max(n, 1), what="batchmean")
        ck.assert_close(call(KL, target, {**ex, "reduction": "mean"}), s / x.numel() if x.numel() else np.nan,
                        spec=KL.id, key="self", dtype=x.dtype, scale=scale / max(x.numel(), 1), what="mean")
