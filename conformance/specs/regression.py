"""Specs of the regression family: ``smooth_l1``, ``weighted_smooth_l1``, ``l1``, ``mse``.

Seeds 000 (OpenPCDet ``WeightedSmoothL1Loss``) and 002 (torch L1 / MSE / SmoothL1). This
file holds the maths: the calling conventions, strategies, oracles and the family's own
properties (smooth L1's bounds, continuity at the transition and homogeneity, analytic
gradients, symmetry, OpenPCDet's NaN contract and anchor-weight linearity). Dtype and
shape, determinism, untouched inputs, shape and domain errors, keywords, gradcheck,
finite gradients, device / dtype / compile agreement and ``agrees_with_<oracle>`` come
from ``conformance.generic``.

Tolerances: every loss here is a function of ``d = x - y`` alone. The inputs are exact
in their dtype, so one subtraction rounds ``d`` relative to itself (no cancellation,
near-equal pairs included) and each later step (square, halve, divide by beta, weight,
a sum of non-negative terms) adds a few ulp relative to the result: the dtype's default
tolerance applies, without a ``scale``. A target judged at a coarser dtype than its
input's (float32 out for float64 in) has rounded the inputs first; that one root cause
is what ``output_dtype_and_shape`` reports.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from hypothesis import assume
from hypothesis import strategies as st

from conformance import checks as ck
from conformance import strategies as hh
from conformance.spec import Arg, Category, Convention, ErrorInput, Keyword, Oracle, Spec, Want, register
from conformance.targets import Target
from impls import regression as ref
from oracles import numpy_regression as npo

_np = ck.f64
Example = dict[str, Any]

F64_MAX = float(np.finfo(np.float64).max)
_MAX = {torch.float32: hh.F32_MAX, torch.float64: F64_MAX}
# The smallest beta drawn: Huber-based forms compute beta |d|, which underflows (to 0 where TensorFlow flushes
# subnormals) for |d| < tiny / beta; from 2**-60 up that loses less than 1e-20 of |d|.
_MIN_BETA = 2.0**-60


def _f32(v: float) -> float:
    """``v`` rounded to float32: every drawn beta is a float32 value (see :func:`betas`)."""
    return float(np.float32(v))


# ---------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------

_SPECIAL = (0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, _f32(1.0 / 9.0), _f32(1e-30), _f32(-1e30))
# y = x (1 - s): near-equal pairs, from half of x down to below one ulp of it.
_NEAR = tuple(2.0**-k for k in (1, 4, 12, 20, 23, 30, 40, 52))
_JUST_BELOW_L1 = _f32(1e-5)  # 9.99999974e-06: L1 here
_JUST_ABOVE_L1 = float(np.nextafter(np.float32(1e-5), np.float32(1.0)))  # the smallest float32 beta >= 1e-5
_BETA_POINTS = (0.0, _f32(1e-6), _f32(9.9e-6), _JUST_BELOW_L1, _JUST_ABOVE_L1, _f32(1.0 / 9.0), 0.5, 1.0, 3.0)
_REDUCTIONS = st.sampled_from(["mean", "sum"])
_WEIGHT_EL = st.one_of(st.sampled_from([0.0, 0.5, 1.0, 2.0]), st.floats(0, 4, allow_nan=False, allow_subnormal=False, width=32))


def betas(*, low_precision: bool = False) -> st.SearchStrategy[float]:
    """Betas >= 0, each 0 or a float32 value: 0, tiny ones (2**-60 <= beta < 1e-5: L1 in this spec,
    quadratic in torch), either side of 1e-5, the usual 1/9 .. 3, and large ones up to 1e4.

    A library may hold beta in float32 (torch casts it to a float32 input's dtype; Keras computes
    in float32 whatever the input). A beta that rounds to 0 or to a subnormal there makes every
    Huber-based form (``huber(delta=beta) / beta``) divide 0 by 0, and one below 2**-60 lets
    ``beta |d|`` underflow where |d| is not negligible: artefacts of that translation that say
    nothing about the library, so such betas are not drawn (all of them are L1 here, as every
    beta below 1e-5 is). ``low_precision``: multiples of 1/16 up to 5, exact in float16 and
    bfloat16 too, so every dtype sees the same beta.
    """
    if low_precision:
        return st.one_of(st.just(0.0), st.integers(1, 80).map(lambda k: k / 16))
    return st.one_of(
        st.sampled_from(_BETA_POINTS),
        st.floats(_MIN_BETA, _JUST_BELOW_L1, allow_nan=False, allow_subnormal=False, width=32),
        st.floats(_JUST_ABOVE_L1, 10.0, allow_nan=False, allow_subnormal=False, width=32),
        st.floats(10.0, 1e4, allow_nan=False, allow_subnormal=False, width=32),
    )


def _elements(dtype: torch.dtype, *, max_frac: float = 1.0, max_abs: float | None = None,
              moderate: bool = False, wide: bool = True) -> st.SearchStrategy[float]:
    """Values of ``dtype`` weighted towards where the losses bend, with (``wide``) values over its
    whole finite range (or up to ``max_abs``, or ``max_frac`` of the dtype's maximum); float64 draws
    values float32 cannot hold.

    ``moderate``: 0 or normal values with 2**-10 <= |v| <= 1e6, so that scaling by a small power of
    two neither overflows nor reaches a subnormal (exact metamorphic checks)."""
    width = 32 if dtype == torch.float32 else 64
    if moderate:
        mag = st.floats(2.0**-10, 1e6, allow_nan=False, allow_subnormal=False, width=width)
        return st.one_of(st.just(0.0), mag, mag.map(lambda v: -v))
    top = _MAX[dtype] * max_frac if max_abs is None else max_abs
    small, mid = min(10.0, top), min(1e6, top)
    options = [
        st.floats(-small, small, allow_nan=False, allow_subnormal=True, width=width),
        st.floats(-mid, mid, allow_nan=False, allow_subnormal=False, width=width),
        st.sampled_from([v for v in _SPECIAL if abs(v) <= (top if wide else mid)]),
    ]
    if wide:
        options.append(st.floats(-top, top, allow_nan=False, allow_infinity=False, allow_subnormal=True, width=width))
        # Uniform draws over +-max rarely land near it: the top of the range, named.
        big = [v for t in (top, top / 2, top * 2.0**-20) for v in (t, -t)]
        options.append(st.sampled_from([float(torch.tensor(v, dtype=dtype)) for v in big]))
    return st.one_of(*options)


def _broadcast_shape(draw: st.DrawFn, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape that broadcasts to ``shape``: the full shape, a suffix of it, or ones in some axes."""
    if not shape:
        return ()
    tail = list(shape[draw(st.integers(0, len(shape))):])
    ones = draw(st.lists(st.booleans(), min_size=len(tail), max_size=len(tail)))
    return tuple(1 if o else n for o, n in zip(ones, tail))


def _weight_values(ex: Example) -> st.SearchStrategy[torch.Tensor]:
    x = ex["input"]

    @st.composite
    def draw_weight(draw: st.DrawFn) -> torch.Tensor:
        return draw(hh.tensors(shape=_broadcast_shape(draw, tuple(x.shape)), dtype=x.dtype, elements=_WEIGHT_EL))

    return draw_weight()


def _label(ex: Example) -> None:
    x, y = ex["input"], ex["target"]
    hh.region(str(x.dtype).removeprefix("torch."))
    if x.numel() == 0:
        hh.region("empty")
    elif x.dim() == 0:
        hh.region("0-d")
    if x.numel():
        with np.errstate(invalid="ignore"):
            big = max(float(np.nanmax(np.abs(_np(x)))), float(np.nanmax(np.abs(_np(y)), initial=0.0)))
        if big > 1e30:
            hh.region("extreme values (|v| > 1e30)")
        if bool(torch.isinf(x - y).any()):
            hh.region("x - y overflows the dtype")
    if "beta" in ex:
        b = ex["beta"]
        hh.region("beta = 0" if b == 0 else "tiny beta (0 < beta < 1e-5)" if b < ref.L1_BETA else "beta >= 1e-5")
    if ex.get("reduction", "none") != "none":
        hh.region("reduced (mean / sum)")
    if ex.get("weight") is not None:
        hh.region("weight")


@st.composite
def pairs(
    draw: st.DrawFn,
    *,
    dtypes: tuple[torch.dtype, ...] = hh.FLOAT_DTYPES,
    max_frac: float = 1.0,
    max_abs: float | None = None,
    moderate: bool = False,
    min_dims: int = 0,
    min_side: int = 0,
    max_side: int = 5,
    beta: bool = False,
    low_precision_beta: bool = False,
    keywords: bool = True,
) -> Example:
    """input and target of one shape and dtype; near-equal pairs one time in four; beta (for smooth
    L1), weight and reduction each present or absent (absent: the default applies)."""
    dtype = draw(hh.float_dtypes(dtypes=dtypes))
    shape = draw(hh.shapes(min_dims=min_dims, max_dims=3, min_side=min_side, max_side=max_side))
    # Extremes in one example of three, so that the others' sums stay in range (and are judged).
    wide = draw(st.integers(0, 2)) == 0
    el = _elements(dtype, max_frac=max_frac, max_abs=max_abs, moderate=moderate, wide=wide)
    x = draw(hh.tensors(shape=shape, dtype=dtype, elements=el))
    b = draw(betas(low_precision=low_precision_beta)) if beta and draw(st.integers(0, 3)) else None
    if b and x.numel() and not moderate and draw(st.integers(0, 3)) == 0:
        # |x - y| either side of beta (where smooth L1 bends and its slope is steepest): rarely met otherwise.
        u = draw(hh.tensors(shape=shape, dtype=dtype, elements=st.sampled_from([-3.0, -0.9375, -0.75, 0.25, 0.75, 1.5])))
        y = x - b * u
    elif x.numel() and not moderate and draw(st.integers(0, 3)) == 0:
        # x - y must be formed first: x^2 - 2xy + y^2 or float32 on float64 loses it all here.
        y = x - x * draw(hh.tensors(shape=shape, dtype=dtype, elements=st.sampled_from(_NEAR)))
        hh.region("near-equal pairs")
    elif x.numel() and wide and draw(st.integers(0, 2)) == 0:
        # y = -x: x - y = 2x, beyond the dtype's range wherever |x| > max / 2 (the loss is then inf).
        y = -x
    else:
        y = draw(hh.tensors(shape=shape, dtype=dtype, elements=el))
    ex: Example = {"input": x, "target": y}
    if b is not None:
        ex["beta"] = b
    if keywords and draw(st.booleans()):
        ex["weight"] = draw(_weight_values(ex))
    if keywords and draw(st.booleans()):
        ex["reduction"] = draw(_REDUCTIONS)
    _label(ex)
    return ex


@st.composite
def gradcheck_pairs(draw: st.DrawFn, *, beta: bool = False, kink_at_zero: bool = False) -> Example:
    """float64 pairs whose difference keeps 1e-3 away from every kink (|d| = beta, and d = 0 for L1),
    so central differences with eps = 1e-6 never straddle one."""
    shape = draw(hh.shapes(min_dims=0, max_dims=2, max_side=3))
    x = draw(hh.tensors(shape=shape, dtype=torch.float64, elements=st.floats(-10, 10, allow_nan=False, allow_subnormal=False)))
    b = draw(st.one_of(st.sampled_from([0.0, _f32(1e-6), _f32(1.0 / 9.0), 1.0]), st.floats(0.05, 5.0))) if beta else 0.0
    l1 = kink_at_zero or b < ref.L1_BETA
    margin = 1e-3

    def away(d: float) -> float:
        mag = abs(d)
        if l1 and mag < margin:
            mag = margin + mag
        if not l1 and abs(mag - b) < margin:
            mag = b + margin + abs(mag - b)
        return math.copysign(mag, d)

    d = draw(hh.tensors(shape=shape, dtype=torch.float64, elements=st.floats(-20, 20, allow_nan=False, allow_subnormal=False).map(away)))
    ex: Example = {"input": x, "target": x - d}
    if beta:
        ex["beta"] = b
    if draw(st.booleans()):
        ex["weight"] = draw(_weight_values(ex))
    if draw(st.booleans()):
        ex["reduction"] = draw(_REDUCTIONS)
    _label(ex)
    return ex


# Malformed inputs, one way each; never empty (some libraries check dtypes only when there are elements).


@st.composite
def _mismatched(draw: st.DrawFn) -> Example:
    """input (N, K) with a target of another shape: a column, an extra column, or transposed."""
    dtype = draw(hh.float_dtypes())
    n, k = draw(st.integers(1, 4)), draw(st.integers(2, 4))
    variant = draw(st.sampled_from(["column", "extra column", "transposed"]))
    tshape = {"column": (n, 1), "extra column": (n, k + 1), "transposed": (k, n) if k != n else (k, n + 1)}[variant]
    el = _elements(dtype, max_abs=10.0)
    return {"input": draw(hh.tensors(shape=(n, k), dtype=dtype, elements=el)),
            "target": draw(hh.tensors(shape=tshape, dtype=dtype, elements=el))}


@st.composite
def _unbroadcastable_weight(draw: st.DrawFn) -> Example:
    # K + 1 weights for K >= 2 codes: no broadcasting makes the two fit, either way round.
    ex = draw(pairs(min_dims=1, min_side=2, max_abs=10.0, keywords=False))
    return {**ex, "weight": torch.ones(ex["input"].shape[-1] + 1, dtype=ex["input"].dtype)}


@st.composite
def _integer_inputs(draw: st.DrawFn) -> Example:
    ex = draw(pairs(min_dims=1, min_side=1, max_abs=10.0, keywords=False))
    return {**ex, "input": ex["input"].round().long(), "target": ex["target"].round().long()}


@st.composite
def _bad_reduction(draw: st.DrawFn) -> Example:
    ex = draw(pairs(min_dims=1, min_side=1, max_abs=10.0, keywords=False))
    return {**ex, "reduction": draw(st.sampled_from(["avg", "batchmean", "Mean", "average", ""]))}


@st.composite
def _bad_beta(draw: st.DrawFn, *, values: tuple[float, ...], weighted: bool = False) -> Example:
    ex = draw(weighted_inputs(max_abs=10.0) if weighted else pairs(min_dims=1, min_side=1, max_abs=10.0, keywords=False))
    return {**ex, "beta": draw(st.sampled_from(values))}


_NEGATIVE_BETAS = (-1.0, -0.5, -1e-6)
_NONFINITE_BETAS = (float("nan"), float("inf"))


def _pair_errors(*, beta: bool) -> tuple[ErrorInput, ...]:
    errs = (
        ErrorInput("target of another shape", "shape", "target", _mismatched()),
        ErrorInput("weight that does not broadcast to the input", "shape", "weight", _unbroadcastable_weight()),
        ErrorInput("integer input and target", "dtype", "input", _integer_inputs()),
        ErrorInput("an unknown reduction", "domain", "reduction", _bad_reduction()),
    )
    if beta:
        errs += (ErrorInput("negative beta", "domain", "beta", _bad_beta(values=_NEGATIVE_BETAS)),
                 ErrorInput("nan or infinite beta", "domain", "beta", _bad_beta(values=_NONFINITE_BETAS)))
    return errs


# ---------------------------------------------------------------------------
# Oracles
# ---------------------------------------------------------------------------


def _opt(ex: Example, key: str) -> np.ndarray | None:
    return None if ex.get(key) is None else _np(ex[key])


def _in_range(ex: Example, elementwise: np.ndarray) -> np.ndarray | None:
    """Where a weighted loss is trusted: an element whose loss is beyond the input dtype's range is
    inf in any implementation computing in that dtype, and a weight of 0 then makes it nan."""
    if ex.get("weight") is None:
        return None
    with np.errstate(invalid="ignore"):
        return np.asarray(elementwise <= float(torch.finfo(ex["input"].dtype).max))


def _want(ex: Example, elementwise: np.ndarray) -> Want:
    """The oracle's answer for the example's weight and reduction, with where it is trusted. A
    reduction whose terms add up beyond the dtype's range overflows in any implementation that sums
    in that dtype (torch's does): outside the trusted domain, counted as not asked."""
    red = ex.get("reduction", "none")
    w = _opt(ex, "weight")
    ok = _in_range(ex, elementwise)
    value = npo.reduce(elementwise, red, w)
    if red == "none":
        return Want(value, mask=ok)
    with np.errstate(invalid="ignore", over="ignore"):
        total = float(np.sum(np.abs(npo.reduce(elementwise, "none", w))))
    trusted = total < float(torch.finfo(ex["input"].dtype).max) / 2 and (ok is None or bool(ok.all()))
    return Want(value, mask=np.asarray(trusted))


def _sl1_numpy(ex: Example) -> Want:
    return _want(ex, npo.smooth_l1(_np(ex["input"]), _np(ex["target"]), ex.get("beta", 1.0)))


def _sl1_keras(ex: Example) -> Want:
    from oracles import tf_regression as tfo

    beta = ex.get("beta", 1.0)
    want = _want(ex, tfo.smooth_l1(_np(ex["input"]), _np(ex["target"]), beta=beta))
    if tfo.smooth_l1_domain(beta):
        return want
    return Want(want.value, mask=np.zeros(np.shape(want.value), dtype=bool))


def _l1_numpy(ex: Example) -> Want:
    return _want(ex, npo.l1(_np(ex["input"]), _np(ex["target"])))


def _l1_keras(ex: Example) -> Want:
    from oracles import tf_regression as tfo

    return _want(ex, tfo.l1(_np(ex["input"]), _np(ex["target"])))


def _mse_numpy(ex: Example) -> Want:
    return _want(ex, npo.mse(_np(ex["input"]), _np(ex["target"])))


def _mse_keras(ex: Example) -> Want:
    from oracles import tf_regression as tfo

    return _want(ex, tfo.mse(_np(ex["input"]), _np(ex["target"])))


def _wsl1_numpy(ex: Example) -> np.ndarray:
    return npo.weighted_smooth_l1(_np(ex["input"]), _np(ex["target"]), _opt(ex, "weights"), ex.get("beta", 1.0 / 9.0),
                                  _opt(ex, "code_weights"))


# ---------------------------------------------------------------------------
# Specs: smooth_l1, l1, mse
# ---------------------------------------------------------------------------

_PAIR = (Arg("input", differentiable=True), Arg("target", differentiable=True))
_WEIGHT = Keyword("weight", None, _weight_values)
_REDUCTION = Keyword("reduction", "none", _REDUCTIONS)


def _out_shape(ex: Example) -> tuple[int, ...]:
    return tuple(ex["input"].shape) if ex.get("reduction", "none") == "none" else ()


def _overflow_examples() -> tuple[Example, ...]:
    """x - y beyond float32's range: the loss is inf (correctly rounded), its slope still +-1; a
    torch.where whose untaken branch squares the inf gets 0 * inf = nan in the backward pass."""
    x = torch.tensor([3e38, -3e38, 1.0], dtype=torch.float32)
    y = torch.tensor([-3e38, 3e38, 0.0], dtype=torch.float32)
    return tuple({"input": x, "target": y, **kw} for kw in ({}, {"beta": 1.0}, {"beta": 1.0, "reduction": "sum"}))


def _float64_corner(**kw: Any) -> tuple[Example, ...]:
    """float64 values float32 cannot hold: a path that drops to float32 (under torch.compile, say) shows at once."""
    x = torch.tensor([1.0 / 3.0, -2.7, 1e-3], dtype=torch.float64)
    return ({"input": x, "target": torch.tensor([0.1, 0.0, 2.0 / 3.0], dtype=torch.float64), **kw},)


_TINY_BETA_CORNER = ({"input": torch.tensor([1.0, -2.0, 0.0], dtype=torch.float64),
                      "target": torch.zeros(3, dtype=torch.float64), "beta": _f32(1e-6)},)
_COMMON_REGIONS = ("float32", "float64", "empty", "0-d", "near-equal pairs", "extreme values (|v| > 1e30)",
                   "x - y overflows the dtype", "reduced (mean / sum)", "weight")

SL1 = register(
    Spec(
        id="smooth_l1",
        family="regression",
        signature="f(input: Tensor[*], target: Tensor[*], *, beta: float = 1.0, weight: Tensor | None = None, "
        "reduction: str = 'none') -> Tensor[*] | Tensor[]",
        summary="Smooth L1 with d = input - target: 0.5 d^2 / beta for |d| < beta, else |d| - beta/2; beta < 1e-5 "
        "is plain L1 (OpenPCDet, fvcore, effdet); beta * f is Huber(delta=beta); weight (broadcast to the input) "
        "multiplies each element's loss; 'none' per element, 'mean' of the weighted losses over every element "
        "(an empty mean is nan), 'sum'.",
        reference=ref.smooth_l1,
        convention=Convention(
            args=_PAIR,
            keywords=(Keyword("beta", 1.0, betas()), _WEIGHT, _REDUCTION),
            output_shape=_out_shape,
            errors=_pair_errors(beta=True),
        ),
        strategies={
            "default": pairs(beta=True),
            "gradcheck": gradcheck_pairs(beta=True),
            # |v| <= 4 keeps float16 sums of up to 125 weighted losses finite; betas exact in float16 and bfloat16.
            "device": pairs(dtypes=(torch.float32,), max_abs=4.0, min_dims=1, beta=True, low_precision_beta=True),
        },
        oracles=(
            Oracle("numpy", "numpy", _sl1_numpy, primary=True,
                   doc="f equals the float64 NumPy Huber-form closed form m (|d| - m/2) / beta, m = min(|d|, beta) "
                   "(|d| for beta < 1e-5), weighted and reduced, over the whole float range."),
            Oracle("keras", "keras", _sl1_keras, requires=("tensorflow",), examples_factor=0.5, tolerance_key="numpy",
                   domain="beta >= 1e-5 (Huber(delta) / delta has no L1 limit); Keras run in float64, so judged "
                   "as the NumPy oracle is",
                   doc="f equals keras.losses.Huber(delta=beta, dtype='float64') / beta for beta >= 1e-5, weighted "
                   "and reduced."),
        ),
        examples={"agrees_with_numpy": _TINY_BETA_CORNER, "finite_gradients": _overflow_examples(),
                  "compiled_matches_eager": _float64_corner(beta=0.7)},
        regions=(*_COMMON_REGIONS, "beta = 0", "tiny beta (0 < beta < 1e-5)", "beta >= 1e-5"),
    )
)

L1 = register(
    Spec(
        id="l1",
        family="regression",
        signature="f(input: Tensor[*], target: Tensor[*], *, weight: Tensor | None = None, reduction: str = 'none') "
        "-> Tensor[*] | Tensor[]",
        summary="Absolute error |input - target|, weighted and reduced as smooth_l1 is.",
        reference=ref.l1,
        convention=Convention(args=_PAIR, keywords=(_WEIGHT, _REDUCTION), output_shape=_out_shape,
                              errors=_pair_errors(beta=False)),
        strategies={
            "default": pairs(),
            "gradcheck": gradcheck_pairs(kink_at_zero=True),
            "device": pairs(dtypes=(torch.float32,), max_abs=4.0, min_dims=1),
        },
        oracles=(
            Oracle("numpy", "numpy", _l1_numpy, primary=True,
                   doc="f equals |x - y| in float64, weighted and reduced."),
            Oracle("keras", "keras", _l1_keras, requires=("tensorflow",), examples_factor=0.5, tolerance_key="numpy",
                   domain="all finite inputs; Keras run in float64, so judged as the NumPy oracle is",
                   doc="f equals keras.losses.MeanAbsoluteError(dtype='float64') per element, weighted and reduced."),
        ),
        examples={"finite_gradients": _overflow_examples()[:1], "compiled_matches_eager": _float64_corner()},
        regions=_COMMON_REGIONS,
    )
)

MSE = register(
    Spec(
        id="mse",
        family="regression",
        signature="f(input: Tensor[*], target: Tensor[*], *, weight: Tensor | None = None, reduction: str = 'none') "
        "-> Tensor[*] | Tensor[]",
        summary="Squared error (input - target)^2 (inf where it exceeds the dtype's range), weighted and reduced as "
        "smooth_l1 is.",
        reference=ref.mse,
        convention=Convention(args=_PAIR, keywords=(_WEIGHT, _REDUCTION), output_shape=_out_shape,
                              errors=_pair_errors(beta=False)),
        strategies={
            "default": pairs(),
            "gradcheck": gradcheck_pairs(),
            "device": pairs(dtypes=(torch.float32,), max_abs=4.0, min_dims=1),
            # The slope 2 w d is finite only while |x|, |y| <= max / 16 (weights go up to 4).
            "extreme": pairs(max_frac=1.0 / 16),
        },
        oracles=(
            Oracle("numpy", "numpy", _mse_numpy, primary=True,
                   doc="f equals (x - y)^2 in float64, weighted and reduced."),
            Oracle("keras", "keras", _mse_keras, requires=("tensorflow",), examples_factor=0.5, tolerance_key="numpy",
                   domain="all finite inputs; Keras run in float64, so judged as the NumPy oracle is",
                   doc="f equals keras.losses.MeanSquaredError(dtype='float64') per element, weighted and reduced."),
        ),
        examples={"compiled_matches_eager": _float64_corner()},
        regions=_COMMON_REGIONS,
    )
)


def _kw(ex: Example, *names: str) -> dict[str, Any]:
    """The example's keywords (all, or those named), as the call passes them."""
    keys = names or ("beta", "weight", "reduction")
    return {k: ex[k] for k in keys if k in ex}


def _chain(ex: Example, slope: np.ndarray) -> np.ndarray:
    """d (reduced, weighted loss) / d input from the elementwise slope: times the weight, over n for a mean."""
    g = slope if ex.get("weight") is None else slope * _np(ex["weight"])
    g = np.broadcast_to(g, tuple(ex["input"].shape))
    if ex.get("reduction", "none") == "mean" and g.size:
        g = g / g.size
    return g


def _grad_wrt_input(target: Target, ex: Example, **kw: Any) -> tuple[torch.Tensor, torch.Tensor]:
    x = ex["input"].clone().requires_grad_(True)
    out = target.tensor(x, ex["target"], **kw)
    return out, ck.input_grad(out, x)


# ---------------------------------------------------------------------------
# smooth_l1, l1 and mse: slopes, symmetry and homogeneity
# ---------------------------------------------------------------------------


def _gradient_matches_analytic(spec: Spec, slope: Any, doc: str, representable: bool = False) -> None:
    """``representable``: the slope grows with |x - y| (MSE's 2 w (x - y)), so it is judged only where
    x - y and the weighted slope fit in the input's dtype; beyond, every implementation that forms the
    difference in that dtype has inf there (the bounded slopes of L1 and smooth L1 are judged everywhere)."""
    def check(target: Target, ex: Example) -> None:
        out, g = _grad_wrt_input(target, ex, **_kw(ex))
        el = slope(ex)
        mask = _in_range(ex, npo.reduce(_loss_of(spec, ex), "none"))
        if representable:
            top = float(torch.finfo(ex["input"].dtype).max)
            w = 1.0 if ex.get("weight") is None else np.abs(_np(ex["weight"]))
            with np.errstate(invalid="ignore", over="ignore"):
                d = np.abs(_np(ex["input"]) - _np(ex["target"]))
                fits = np.broadcast_to((d <= top) & (np.abs(el) * w <= top), tuple(ex["input"].shape))
            mask = fits if mask is None else np.broadcast_to(mask, fits.shape) & fits
        ck.assert_grad_close(g, _chain(ex, el), spec=spec.id, key="analytic", mask=mask,
                             dtype=ck.judged_dtype(ex["input"].dtype, out.dtype), inputs=ex)

    check.__doc__ = doc
    spec.property(Category.GRADIENT, strategy=spec.strategy(), name="gradient_matches_analytic")(check)


def _loss_of(spec: Spec, ex: Example) -> np.ndarray:
    x, y = _np(ex["input"]), _np(ex["target"])
    if spec is SL1:
        return npo.smooth_l1(x, y, ex.get("beta", 1.0))  # type: ignore[return-value]
    return (npo.l1 if spec is L1 else npo.mse)(x, y)  # type: ignore[return-value]


_gradient_matches_analytic(
    SL1, lambda ex: npo.smooth_l1_grad(_np(ex["input"]), _np(ex["target"]), ex.get("beta", 1.0)),
    "d f / d input == w clip((x - y) / beta, -1, 1) (sign(x - y) for beta < 1e-5), divided by n for the mean.")
_gradient_matches_analytic(
    L1, lambda ex: np.sign(_np(ex["input"]) - _np(ex["target"])),
    "d f / d input == w sign(x - y) (0 where x == y), divided by n for the mean.")
_gradient_matches_analytic(
    MSE, lambda ex: 2.0 * (_np(ex["input"]) - _np(ex["target"])),
    "d f / d input == 2 w (x - y), divided by n for the mean, where x - y and 2 w (x - y) fit in the input's dtype.",
    representable=True)


def _symmetric(spec: Spec) -> None:
    def check(target: Target, ex: Example) -> None:
        x, y, kw = ex["input"], ex["target"], _kw(ex)
        first = target.tensor(x, y, **kw)
        for what, other in (("f(y, x)", target.tensor(y, x, **kw)), ("f(-x, -y)", target.tensor(-x, -y, **kw))):
            ck.assert_close(other, ck.f64(first), spec=spec.id, key="self", dtype=x.dtype, what=what, inputs=ex)

    check.__doc__ = "f(x, y) == f(y, x) == f(-x, -y), every keyword as drawn: only |x - y| matters."
    spec.property(Category.INVARIANCE, strategy=spec.strategy(), name="symmetric_in_sign_of_difference")(check)


@st.composite
def _scaled(draw: st.DrawFn, *, beta: bool) -> Example:
    ex = draw(pairs(moderate=True))
    if beta:
        # 0 (L1 at every scale) or >= 2**-6, so c * beta never crosses the L1 switch at 1e-5.
        ex["beta"] = draw(st.one_of(st.just(0.0), st.floats(2.0**-6, 8.0, allow_nan=False, allow_subnormal=False, width=32)))
    ex["c"] = draw(st.sampled_from([0.25, 0.5, 2.0, 4.0]))
    return ex


def _homogeneous(spec: Spec, degree: int, doc: str) -> None:
    def check(target: Target, ex: Example) -> None:
        x, y, c = ex["input"], ex["target"], ex["c"]
        kw = _kw(ex)
        base = ck.f64(target.tensor(x, y, **kw))
        if "beta" in kw:
            kw["beta"] = c * kw["beta"]
        # Powers of two on normal values: every rounding scales with them, so the identity is exact.
        ck.assert_close(target.tensor(c * x, c * y, **kw), c**degree * base, spec=spec.id, key="self", dtype=x.dtype,
                        what=f"f(c x, c y{', c beta' if 'beta' in kw else ''}) with c={c}", inputs=_kw(ex))

    check.__doc__ = doc
    spec.property(Category.INVARIANCE, strategy=_scaled(beta=spec is SL1), name="homogeneous")(check)


_homogeneous(SL1, 1, "f(c x, c y; c beta) == c f(x, y; beta) for c a power of two (weight unscaled, every reduction).")
_homogeneous(L1, 1, "f(c x, c y) == c f(x, y) for c a power of two (weight unscaled, every reduction).")
_homogeneous(MSE, 2, "f(c x, c y) == c^2 f(x, y) for c a power of two (weight unscaled, every reduction).")
for _spec in (SL1, L1, MSE):
    _symmetric(_spec)


# ---------------------------------------------------------------------------
# smooth_l1 only
# ---------------------------------------------------------------------------


@SL1.property(Category.EQUIVALENCE, strategy=pairs(beta=True, keywords=False))
def between_l1_minus_half_beta_and_l1(target: Target, ex: Example) -> None:
    """max(|d| - beta/2, 0) <= f <= |d| elementwise."""
    out = target.tensor(ex["input"], ex["target"], **_kw(ex, "beta"))
    dt = ck.judged_dtype(ex["input"].dtype, out.dtype)
    tol = ck.tolerance(SL1.id, "self", dt)
    with np.errstate(over="ignore", invalid="ignore"):
        d = np.abs(_np(ex["input"]) - _np(ex["target"]))
        f = ck.f64(out)
        slack = tol.atol + tol.rtol * d
        lo = np.maximum(d - ex.get("beta", 1.0) / 2, 0.0)
        # Where even the lower bound is beyond the output dtype's range, inf is the rounded value.
        overflow = np.isposinf(f) & (lo * (1 + tol.rtol) >= float(torch.finfo(dt).max))
        bad = ~(((f >= lo - slack) & (f <= d + slack)) | overflow)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise AssertionError(f"f.flat[{i}]={f.flat[i]!r}, but should lie in [{lo.flat[i]!r}, {d.flat[i]!r}] "
                             f"(|d|={d.flat[i]!r}, beta={ex.get('beta', 1.0)!r})")


@st.composite
def _around_beta(draw: st.DrawFn) -> Example:
    dtype = draw(hh.float_dtypes())
    beta = draw(st.one_of(st.sampled_from([_f32(1.0 / 9.0), 0.5, 1.0, 3.0]),
                          st.floats(_f32(1e-3), 5.0, allow_nan=False, allow_subnormal=False, width=32)))
    eps = draw(st.sampled_from([2.0**-k for k in (3, 6, 10, 14, 18)]))
    sign = draw(st.sampled_from([1.0, -1.0]))
    y = draw(st.integers(-256, 256)) / 64
    d = torch.tensor([beta * (1 - eps), beta, beta * (1 + eps)], dtype=torch.float64) * sign
    hh.region(str(dtype).removeprefix("torch."))
    return {"input": (d + y).to(dtype), "target": torch.full((3,), y, dtype=dtype), "beta": beta}


@SL1.property(Category.EQUIVALENCE, strategy=_around_beta())
def continuous_at_beta(target: Target, ex: Example) -> None:
    """Value and slope are continuous at |d| = beta: f is 1-Lipschitz there (beta/2 at beta) and f' is clip(d / beta, -1, 1).

    Checked at |d| = beta (1 - eps), beta and beta (1 + eps): the values move by at most |delta d|
    between the points and from beta / 2, and each slope equals the analytic one."""
    beta, x, y = ex["beta"], ex["input"], ex["target"]
    xg = x.clone().requires_grad_(target.capabilities.autograd is not None)
    out = target.tensor(xg, y, beta=beta)
    dt = ck.judged_dtype(x.dtype, out.dtype)
    d = _np(x) - _np(y)
    f = ck.f64(out)
    tol = ck.tolerance(SL1.id, "self", dt)
    # The value at |d| = beta is beta / 2; each point is within |d_i - d_j| of every other's value.
    anchors = [(abs(abs(d[i]) - beta), f[i], beta / 2) for i in range(3)]
    anchors += [(abs(abs(d[i]) - abs(d[j])), f[i], f[j]) for i in range(3) for j in range(i + 1, 3)]
    for gap, a, b in anchors:
        if abs(a - b) > gap + tol.atol + tol.rtol * (abs(a) + abs(b)):
            raise AssertionError(f"f jumps by {abs(a - b)!r} across |d| = beta={beta!r} where |delta d|={gap!r}: "
                                 f"values {f.tolist()!r} at d={d.tolist()!r}")
    if target.capabilities.autograd is None:
        return  # the value half of the claim is all a target without gradients can show
    g = ck.f64(ck.input_grad(out, xg))
    want = npo.smooth_l1_grad(_np(x), _np(y), beta)
    ck.assert_grad_close(torch.from_numpy(g), want, spec=SL1.id, key="analytic", dtype=dt, what="f' next to |d| = beta",
                         inputs=ex)


@SL1.property(Category.GRADIENT, strategy=pairs(beta=True))
def gradient_bounded_by_one(target: Target, ex: Example) -> None:
    """|d f / d input| <= |w| (over n for the mean) everywhere: the point of smooth L1 over L2."""
    out, g = _grad_wrt_input(target, ex, **_kw(ex))
    gv = ck.f64(g)
    bound = np.abs(_chain(ex, np.ones(tuple(ex["input"].shape))))
    tol = ck.grad_tolerance(SL1.id, "analytic", ck.judged_dtype(ex["input"].dtype, out.dtype))
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(gv) <= bound * (1 + tol.rtol) + tol.atol)
    mask = _in_range(ex, npo.smooth_l1(_np(ex["input"]), _np(ex["target"]), ex.get("beta", 1.0)))
    if mask is not None:
        bad &= np.broadcast_to(mask, bad.shape)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise AssertionError(f"|grad|.flat[{i}]={abs(gv.flat[i])!r}, but should be <= {bound.flat[i]!r} "
                             f"(beta={ex.get('beta', 1.0)!r}, reduction={ex.get('reduction', 'none')!r})")


@st.composite
def _tiny_beta(draw: st.DrawFn) -> Example:
    ex = draw(pairs(keywords=False))
    ex["beta"] = draw(st.floats(_MIN_BETA, _JUST_BELOW_L1, allow_nan=False, allow_subnormal=False, width=32))
    return ex


@SL1.property(Category.EQUIVALENCE, strategy=_tiny_beta())
def small_beta_is_l1(target: Target, ex: Example) -> None:
    """beta = 0 and every beta < 1e-5 give |x - y| exactly (no 0/0, no quadratic sliver)."""
    x, y = ex["input"], ex["target"]
    want = npo.l1(_np(x), _np(y))
    for beta in (0.0, _f32(1e-6), _JUST_BELOW_L1, ex["beta"]):
        ck.assert_close(target.tensor(x, y, beta=beta), want, spec=SL1.id, key="numpy", dtype=x.dtype,
                        what=f"f(beta={beta!r})", inputs=ex)


# ---------------------------------------------------------------------------
# weighted_smooth_l1 (OpenPCDet)
# ---------------------------------------------------------------------------


def _label_weighted(ex: Example) -> None:
    x, y = ex["input"], ex["target"]
    hh.region(str(x.dtype).removeprefix("torch."))
    if x.numel() == 0:
        hh.region("empty batch")
    if bool(torch.isnan(y).any()):
        hh.region("NaN targets (ignored)")
    if x.numel() and float(np.nanmax(np.abs(_np(x)))) > 1e30:
        hh.region("extreme values (|v| > 1e30)")
    hh.region("anchor weights" if ex.get("weights") is not None else "no anchor weights")
    if ex.get("code_weights") is not None:
        hh.region("code weights")
    if "beta" in ex:
        hh.region("beta < 1e-5 (L1)" if ex["beta"] < ref.L1_BETA else "beta >= 1e-5")


_DYADIC_WEIGHT = st.integers(0, 64).map(lambda k: k / 16)


@st.composite
def weighted_inputs(
    draw: st.DrawFn,
    *,
    dtypes: tuple[torch.dtype, ...] = hh.FLOAT_DTYPES,
    max_frac: float = 1.0 / 8,
    max_abs: float | None = None,
    low_precision_beta: bool = False,
    dyadic_weights: bool = False,
) -> Example:
    """(B, A, K) input and target with NaN sprinkled in the target (ignored slots), (B, A) anchor
    weights and (K,) code weights, each present or absent; empty batches included. |v| <= max / 8
    (default): code weights (<= 3) times x - y stay finite, so no 0 * inf reaches a weight of 0."""
    dtype = draw(hh.float_dtypes(dtypes=dtypes))
    b, a, k = draw(st.integers(0, 3)), draw(st.integers(0, 4)), draw(st.integers(1, 7))
    el = _elements(dtype, max_frac=max_frac, max_abs=max_abs, wide=draw(st.booleans()))
    x = draw(hh.tensors(shape=(b, a, k), dtype=dtype, elements=el))
    y = draw(hh.tensors(shape=(b, a, k), dtype=dtype, elements=st.one_of(el, st.just(float("nan")))))
    weights = _DYADIC_WEIGHT if dyadic_weights else _WEIGHT_EL
    ex: Example = {"input": x, "target": y}
    ex["weights"] = draw(st.none() | hh.tensors(shape=(b, a), dtype=dtype, elements=weights))
    if draw(st.booleans()):
        ex["code_weights"] = draw(_code_weight_values(ex))
    if draw(st.integers(0, 3)):
        ex["beta"] = draw(betas(low_precision=low_precision_beta))
    _label_weighted(ex)
    return ex


def _code_weight_values(ex: Example) -> st.SearchStrategy[torch.Tensor]:
    x = ex["input"]
    el = st.one_of(st.sampled_from([0.0, 0.5, 1.0, 2.0]), st.floats(0, 3, allow_nan=False, allow_subnormal=False, width=32))
    return hh.tensors(shape=(x.shape[-1],), dtype=x.dtype, elements=el)


@st.composite
def _weighted_gradcheck(draw: st.DrawFn) -> Example:
    """float64, |cw (x - y)| kept 1e-3 away from beta (and from 0 for L1); NaN targets stay in."""
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    beta = draw(st.sampled_from([0.0, _f32(1.0 / 9.0), 0.5, 1.0]))
    cw = draw(st.none() | hh.tensors(shape=(shape[-1],), dtype=torch.float64, elements=st.sampled_from([0.5, 1.0, 2.0])))
    x = draw(hh.tensors(shape=shape, dtype=torch.float64, elements=st.floats(-10, 10, allow_nan=False)))
    d = draw(hh.tensors(shape=shape, dtype=torch.float64, elements=st.floats(-5, 5, allow_nan=False)))
    c = torch.ones(shape[-1], dtype=torch.float64) if cw is None else cw
    kink = beta if beta >= ref.L1_BETA else 0.0
    # Push |cw d| outwards by 3e-3 where it lies within 1e-3 of the kink.
    outward = torch.where(d >= 0, 1.0, -1.0).to(torch.float64) * 3e-3 / c
    d = torch.where(((d * c).abs() - kink).abs() < 1e-3, d + outward, d)
    y = x - d
    if draw(st.booleans()):
        y.view(-1)[draw(st.integers(0, y.numel() - 1))] = float("nan")
    ex: Example = {"input": x, "target": y, "beta": beta, "code_weights": cw,
                   "weights": draw(st.none() | hh.tensors(shape=shape[:2], dtype=torch.float64, elements=_WEIGHT_EL))}
    _label_weighted(ex)
    return ex


@st.composite
def _weighted_mismatch(draw: st.DrawFn) -> Example:
    ex = draw(weighted_inputs(max_abs=10.0))
    x = ex["input"]
    bad = draw(st.sampled_from(["target", "weights"]))
    if bad == "target":
        return {**ex, "target": torch.cat([ex["target"], ex["target"][..., :1]], dim=-1)}
    return {**ex, "weights": torch.ones((x.shape[0], x.shape[1] + 1), dtype=x.dtype)}


@st.composite
def _weighted_bad_code_weights(draw: st.DrawFn) -> Example:
    ex = draw(weighted_inputs(max_abs=10.0))
    return {**ex, "code_weights": torch.ones(ex["input"].shape[-1] + 1, dtype=ex["input"].dtype)}


@st.composite
def _weighted_not_3d(draw: st.DrawFn) -> Example:
    ex = draw(weighted_inputs(max_abs=10.0))
    return {**ex, "input": ex["input"].reshape(-1, ex["input"].shape[-1]), "target": ex["target"].reshape(-1, ex["target"].shape[-1]),
            "weights": None}


@st.composite
def _weighted_integer(draw: st.DrawFn) -> Example:
    ex = draw(weighted_inputs(max_abs=10.0))
    return {**ex, "input": ex["input"].round().long(), "target": torch.nan_to_num(ex["target"]).round().long()}


WSL1 = register(
    Spec(
        id="weighted_smooth_l1",
        family="regression",
        signature="f(input: Tensor[B, A, K], target: Tensor[B, A, K], weights: Tensor[B, A] | None = None, *, "
        "beta: float = 1/9, code_weights: Tensor[K] | None = None) -> Tensor[B, A, K]",
        summary="OpenPCDet WeightedSmoothL1Loss: w[b, a] * smooth_l1(cw[k] (x - y)[b, a, k]; beta); a NaN target "
        "means no target (zero loss, zero gradient); never reduced.",
        reference=ref.weighted_smooth_l1,
        convention=Convention(
            args=(*_PAIR, Arg("weights", optional=True)),
            keywords=(Keyword("beta", 1.0 / 9.0, betas()), Keyword("code_weights", None, _code_weight_values)),
            output_shape=lambda ex: tuple(ex["input"].shape),
            errors=(
                ErrorInput("target or weights of another shape", "shape", "target", _weighted_mismatch()),
                ErrorInput("code_weights of another length than K", "shape", "code_weights", _weighted_bad_code_weights()),
                ErrorInput("input and target not 3-d", "shape", "input", _weighted_not_3d()),
                ErrorInput("integer input and target", "dtype", "input", _weighted_integer()),
                ErrorInput("negative, nan or infinite beta", "domain", "beta",
                           _bad_beta(values=_NEGATIVE_BETAS + _NONFINITE_BETAS, weighted=True)),
            ),
        ),
        strategies={
            "default": weighted_inputs(),
            "gradcheck": _weighted_gradcheck(),
            "device": weighted_inputs(dtypes=(torch.float32,), max_abs=4.0, low_precision_beta=True),
        },
        oracles=(
            Oracle("numpy", "numpy", _wsl1_numpy, primary=True,
                   doc="out[b, a, k] == w[b, a] * SL1(cw[k] (x - y)[b, a, k]; beta), 0 where y is NaN (float64 loop "
                   "over elements)."),
        ),
        examples={"compiled_matches_eager": tuple({**ex, "input": ex["input"].reshape(1, 1, 3),
                                                   "target": ex["target"].reshape(1, 1, 3), "weights": None}
                                                  for ex in _float64_corner(beta=0.7))},
        regions=("float32", "float64", "empty batch", "NaN targets (ignored)", "extreme values (|v| > 1e30)",
                 "anchor weights", "no anchor weights", "code weights", "beta < 1e-5 (L1)", "beta >= 1e-5"),
    )
)


def _wcall(target: Target, ex: Example, weights: Any = "as drawn") -> torch.Tensor:
    w = ex.get("weights") if isinstance(weights, str) else weights
    return target.tensor(ex["input"], ex["target"], w, **_kw(ex, "beta", "code_weights"))


@WSL1.property(Category.ROBUSTNESS, strategy=weighted_inputs())
def nan_targets_give_zero_loss_and_gradient(target: Target, ex: Example) -> None:
    """Where y is NaN: loss == 0 and d loss / dx == 0; everywhere else: loss and gradient finite (where the exact
    loss is: w |cw (x - y)| beyond the dtype's maximum is inf in that dtype, and such examples are not judged)."""
    d = np.abs(ck.f64(ex["input"]) - ck.f64(ex["target"]))
    cw = ex.get("code_weights")
    w = ex.get("weights")
    with np.errstate(invalid="ignore", over="ignore"):
        bound = d * (1.0 if cw is None else np.abs(ck.f64(cw))) * (1.0 if w is None else np.abs(ck.f64(w))[..., None])
    assume(not bool((np.nan_to_num(bound, nan=0.0) > torch.finfo(ex["input"].dtype).max).any()))
    x = ex["input"].clone().requires_grad_(True)
    out = target.tensor(x, ex["target"], ex.get("weights"), **_kw(ex, "beta", "code_weights"))
    g = ck.input_grad(out, x)
    ck.assert_finite(out, what="loss", inputs=ex)
    ck.assert_finite(g, what="grad", inputs=ex)
    m = torch.isnan(ex["target"]).numpy()
    o, gg = ck.f64(out), ck.f64(g)
    if (o[m] != 0).any() or (gg[m] != 0).any():
        raise AssertionError(f"at NaN targets loss={o[m][:4]!r}, grad={gg[m][:4]!r}, but both should be 0")


@st.composite
def _two_weights(draw: st.DrawFn) -> Example:
    ex = draw(weighted_inputs(dyadic_weights=True))
    x = ex["input"]
    # Multiples of 1/16 up to 4: w1 + w2 is exact, so only the final products round.
    ex["weights"] = draw(hh.tensors(shape=tuple(x.shape[:2]), dtype=x.dtype, elements=_DYADIC_WEIGHT))
    ex["weights2"] = draw(hh.tensors(shape=tuple(x.shape[:2]), dtype=x.dtype, elements=_DYADIC_WEIGHT))
    return ex


@WSL1.property(Category.INVARIANCE, strategy=_two_weights())
def linear_in_anchor_weights(target: Target, ex: Example) -> None:
    """f(w1 + w2) == f(w1) + f(w2), and f(w) == f(1) * w[..., None]."""
    w1, w2 = ex["weights"], ex["weights2"]
    f1, f2 = ck.f64(_wcall(target, ex, w1)), ck.f64(_wcall(target, ex, w2))
    dt = ex["input"].dtype
    with np.errstate(invalid="ignore", over="ignore"):
        ck.assert_close(_wcall(target, ex, w1 + w2), f1 + f2, spec=WSL1.id, key="self", dtype=dt,
                        scale=np.abs(f1) + np.abs(f2), what="f(w1 + w2)")
        base = ck.f64(_wcall(target, ex, torch.ones_like(w1)))
        ck.assert_close(_wcall(target, ex, w1), base * ck.f64(w1)[..., None], spec=WSL1.id, key="self", dtype=dt,
                        what="f(w)")
