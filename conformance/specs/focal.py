"""Specs of the sigmoid family: ``sigmoid_bce``, ``sigmoid_focal``, ``weighted_sigmoid_focal``.

Seeds 000 (OpenPCDet ``loss_utils``) and 004 (focal loss recap, ultralytics). This
file holds the maths: the calling conventions, strategies, oracles and the
family's own properties. Dtype and shape, determinism, untouched inputs, shape
and domain errors, keywords, gradcheck, finite gradients, device / dtype /
compile agreement and ``agrees_with_<oracle>`` come from ``conformance.generic``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from conformance import checks as ck
from conformance import strategies as hh
from conformance.spec import Arg, Category, Convention, ErrorInput, Keyword, Oracle, Spec, Want, register
from conformance.targets import Target
from impls import focal as ref
from oracles import numpy_focal as npo

_np = ck.f64

# ---------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------

gammas = st.one_of(
    st.sampled_from([0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 5.0]),
    st.floats(0.0, 5.0, allow_nan=False, allow_subnormal=False),
)
alphas = st.one_of(
    st.none(),
    st.sampled_from([0.25, 0.5, 0.75, 0.0, 1.0]),
    st.floats(0.0, 1.0, allow_nan=False, allow_subnormal=False),
)


def _label_regions(ex: dict[str, Any]) -> None:
    x, z = ex["logits"], ex["targets"]
    hh.region(str(x.dtype).removeprefix("torch."))
    if x.numel() == 0:
        hh.region("empty")
    elif x.dim() == 0:
        hh.region("0-d")
    if x.numel():
        zn, xn = _np(z), _np(x)
        hh.region("soft targets" if ((zn > 0) & (zn < 1)).any() else "hard targets")
        if np.abs(xn).max() > 88:
            hh.region("saturated logits (|x| > 88)")
        if x.dim() >= 1 and x.shape[-1] == 1:
            hh.region("trailing singleton axis")
    if ex.get("reduction", "none") != "none":
        hh.region("reduced (mean / sum)")
    if ex.get("weight") is not None or ex.get("pos_weight") is not None:
        hh.region("weight / pos_weight")
    if "gamma" in ex:
        hh.region("gamma in (0, 1)" if 0 < ex["gamma"] < 1 else "gamma = 0" if ex["gamma"] == 0 else "gamma >= 1")
        hh.region("alpha None" if ex["alpha"] is None else "alpha set")


@st.composite
def pairs(
    draw: st.DrawFn,
    *,
    hard: bool | None = None,
    dtypes: tuple[torch.dtype, ...] = hh.FLOAT_DTYPES,
    max_abs: float = hh.F32_MAX,
    max_side: int = 5,
    min_dims: int = 0,
    max_dims: int = 3,
    min_side: int = 0,
    focal: bool = False,
    reductions: bool = False,
    weights: bool = False,
) -> dict[str, Any]:
    """logits and targets of one shape and dtype (plus alpha and gamma for focal; a drawn
    reduction, and BCE's weight / pos_weight, where asked)."""
    dtype = draw(hh.float_dtypes(dtypes=dtypes))
    shape = draw(hh.shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side))
    ex: dict[str, Any] = {
        "logits": draw(hh.logits(shape=shape, dtype=dtype, max_abs=max_abs)),
        "targets": draw(hh.probabilities(shape=shape, dtype=dtype, hard=hard)),
    }
    if focal:
        ex["alpha"] = draw(alphas)
        ex["gamma"] = draw(gammas)
    if weights:
        if draw(st.booleans()):
            ex["weight"] = draw(_weight_values(ex))
        if draw(st.booleans()):
            ex["pos_weight"] = draw(_pos_weight_values(ex))
    if reductions and draw(st.booleans()):
        ex["reduction"] = draw(reduction_values)
    _label_regions(ex)
    return ex


reduction_values = st.sampled_from(["none", "mean", "sum"])
_WEIGHT_EL = st.one_of(st.sampled_from([0.0, 0.5, 1.0, 2.0]), st.floats(0, 4, allow_nan=False, allow_subnormal=False, width=32))


def _broadcast_shape(draw: st.DrawFn, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape that broadcasts to ``shape``: the full shape, a suffix of it, or ones in some axes."""
    if not shape:
        return ()
    cut = draw(st.integers(0, len(shape)))
    tail = list(shape[cut:])
    ones = draw(st.lists(st.booleans(), min_size=len(tail), max_size=len(tail)))
    return tuple(1 if o else n for o, n in zip(ones, tail))


def _weight_values(ex: dict[str, Any]) -> st.SearchStrategy[torch.Tensor]:
    x = ex["logits"]

    @st.composite
    def draw_weight(draw: st.DrawFn) -> torch.Tensor:
        return draw(hh.tensors(shape=_broadcast_shape(draw, tuple(x.shape)), dtype=x.dtype, elements=_WEIGHT_EL))

    return draw_weight()


def _pos_weight_values(ex: dict[str, Any]) -> st.SearchStrategy[torch.Tensor]:
    x = ex["logits"]
    shape = (x.shape[-1],) if x.dim() else ()
    return hh.tensors(shape=shape, dtype=x.dtype, elements=_WEIGHT_EL)


@st.composite
def dyadic_pairs(draw: st.DrawFn, *, focal: bool = False) -> dict[str, Any]:
    """Like :func:`pairs`, but targets and alpha are dyadic so 1 - z and 1 - alpha are exact."""
    dtype = draw(hh.float_dtypes())
    shape = draw(hh.shapes(min_dims=1, max_dims=2, min_side=1))
    ex: dict[str, Any] = {
        "logits": draw(hh.logits(shape=shape, dtype=dtype)),
        "targets": draw(hh.tensors(shape=shape, dtype=dtype, elements=hh.dyadic_unit())),
    }
    if focal:
        ex["alpha"] = draw(st.one_of(st.none(), hh.dyadic_unit(bits=8)))
        ex["gamma"] = draw(gammas)
    return ex


@st.composite
def weighted_inputs(draw: st.DrawFn, *, dtypes: tuple[torch.dtype, ...] = hh.FLOAT_DTYPES,
                    max_abs: float = 1e4) -> dict[str, Any]:
    dtype = draw(hh.float_dtypes(dtypes=dtypes))
    two_d = draw(st.booleans())
    b, a, c = draw(st.integers(0, 3)), draw(st.integers(0, 5)), draw(st.integers(1, 4))
    shape = (a, c) if two_d else (b, a, c)
    # |x| <= 1e4 keeps weight * loss inside float32 (weights go up to 4).
    x = draw(hh.logits(shape=shape, dtype=dtype, max_abs=max_abs))
    cls = draw(hh.tensors(shape=shape[:-1], dtype=torch.float64, elements=st.integers(-1, c - 1).map(float)))
    # One-hot rows, with -1 meaning background (an all-zero row), as OpenPCDet builds them.
    z = torch.zeros(shape, dtype=dtype)
    idx = cls.long()
    fg = idx >= 0
    z[fg] = torch.nn.functional.one_hot(idx[fg], c).to(dtype)
    w = draw(hh.tensors(shape=shape[:-1], dtype=dtype, elements=st.floats(0, 4, allow_nan=False, allow_subnormal=False, width=32)))
    hh.region("(A, C) layout" if two_d else "(B, A, C) layout")
    hh.region("empty" if x.numel() == 0 else str(dtype).removeprefix("torch."))
    return {"logits": x, "targets": z, "weights": w, "alpha": draw(alphas), "gamma": draw(gammas)}


@st.composite
def mismatched(draw: st.DrawFn, *, focal: bool = False) -> dict[str, Any]:
    """Logits (N, C) with targets of another shape: a column, an extra class, or transposed."""
    dtype = draw(hh.float_dtypes())
    n, c = draw(st.integers(1, 4)), draw(st.integers(2, 4))
    variant = draw(st.sampled_from(["column", "extra_class", "transposed"]))
    zshape = {"column": (n, 1), "extra_class": (n, c + 1), "transposed": (c, n) if c != n else (c, n + 1)}[variant]
    ex = {
        "logits": draw(hh.logits(shape=(n, c), dtype=dtype, max_abs=10.0)),
        "targets": draw(hh.probabilities(shape=zshape, dtype=dtype, hard=True)),
    }
    return {**ex, "alpha": 0.25, "gamma": 2.0} if focal else ex


@st.composite
def _out_of_range_targets(draw: st.DrawFn, *, focal: bool = False) -> dict[str, Any]:
    ex = draw(pairs(focal=focal, min_dims=1, min_side=1, max_abs=10.0))
    z = ex["targets"].clone()
    z.view(-1)[draw(st.integers(0, z.numel() - 1))] = draw(st.sampled_from([-0.5, 1.5, 2.0, -1.0]))
    return {**ex, "targets": z}


@st.composite
def _integer_logits(draw: st.DrawFn, *, focal: bool = False) -> dict[str, Any]:
    ex = draw(pairs(focal=focal, min_dims=1, min_side=1, hard=True, max_abs=10.0))
    return {**ex, "logits": ex["logits"].round().long()}


@st.composite
def _bad_focal_parameter(draw: st.DrawFn) -> dict[str, Any]:
    ex = draw(pairs(focal=True, min_dims=1, min_side=1, max_abs=10.0))
    if draw(st.booleans()):
        return {**ex, "gamma": draw(st.sampled_from([-1.0, -0.5, float("nan")]))}
    return {**ex, "alpha": draw(st.sampled_from([-0.25, 1.5, float("nan")]))}


@st.composite
def _bad_reduction(draw: st.DrawFn, *, focal: bool = False) -> dict[str, Any]:
    ex = draw(pairs(focal=focal, min_dims=1, min_side=1, max_abs=10.0))
    return {**ex, "reduction": draw(st.sampled_from(["avg", "batchmean", "elementwise_mean", "Mean"]))}


@st.composite
def _unbroadcastable_weight(draw: st.DrawFn) -> dict[str, Any]:
    ex = draw(pairs(min_dims=1, min_side=1, max_abs=10.0))
    x = ex["logits"]
    key = draw(st.sampled_from(["weight", "pos_weight"]))
    return {**ex, key: torch.ones(x.shape[-1] + 1, dtype=x.dtype)}


def _errors(*, focal: bool) -> tuple[ErrorInput, ...]:
    errs = (
        ErrorInput("targets of another shape", "shape", "targets", mismatched(focal=focal)),
        ErrorInput("targets outside [0, 1]", "domain", "targets", _out_of_range_targets(focal=focal)),
        ErrorInput("integer logits", "dtype", "logits", _integer_logits(focal=focal)),
        ErrorInput("an unknown reduction", "domain", "reduction", _bad_reduction(focal=focal)),
    )
    if not focal:
        errs += (ErrorInput("weight or pos_weight that does not broadcast to the logits", "shape", "weight",
                            _unbroadcastable_weight()),)
    if focal:
        errs += (ErrorInput("gamma < 0 or alpha outside [0, 1] (or nan)", "domain", "gamma", _bad_focal_parameter()),)
    return errs


@st.composite
def _weighted_mismatch(draw: st.DrawFn) -> dict[str, Any]:
    ex = draw(weighted_inputs())
    w = ex["weights"]
    bad = draw(st.sampled_from(["extra anchor", "class axis kept", "targets transposed"]))
    if bad == "extra anchor":
        return {**ex, "weights": torch.cat([w, w.new_ones((*w.shape[:-1], 1))], dim=-1)}
    if bad == "class axis kept":
        return {**ex, "weights": torch.ones_like(ex["logits"])[..., :1].expand(*ex["logits"].shape[:-1], 2).contiguous()}
    z = ex["targets"]
    return {**ex, "targets": torch.cat([z, z.new_zeros((*z.shape[:-1], 1))], dim=-1)}


# ---------------------------------------------------------------------------
# Scales (see conformance.tolerances)
# ---------------------------------------------------------------------------


def _stable_scale(ex: dict[str, Any], gamma: float = 0.0) -> np.ndarray:
    # Backward stability: an implementation that is exact for logits perturbed by a
    # relative rtol moves the loss by up to |dL/dx| * rtol * |x| <= (1 + gamma) rtol |x|.
    # torch's and TF's BCE formulas (x(1 - z) + ...) lose ulp(|x|) this way with soft z.
    return np.abs(_np(ex["logits"])) * (1.0 + gamma)


def _reduced(ex: dict[str, Any], elementwise: np.ndarray) -> np.ndarray | float:
    """The scale of the result the example asks for: per element, or summed / averaged
    (float32 sums add ~log2(n) ulp of the sum of non-negative terms, inside rtol)."""
    if ex.get("weight") is not None:
        elementwise = elementwise * np.abs(_np(ex["weight"]))
    if ex.get("pos_weight") is not None:
        elementwise = elementwise * np.maximum(1.0, np.abs(_np(ex["pos_weight"])))
    red = ex.get("reduction", "none")
    if red == "none":
        return elementwise
    total = float(np.sum(elementwise))
    return total if red == "sum" else (total / elementwise.size if elementwise.size else 0.0)


def _bce_scale(ex: dict[str, Any]) -> np.ndarray | float:
    return _reduced(ex, _stable_scale(ex))


def _focal_scale(ex: dict[str, Any]) -> np.ndarray | float:
    return _reduced(ex, _stable_scale(ex, ex.get("gamma", 2.0)))


def _out_shape(ex: dict[str, Any]) -> tuple[int, ...]:
    return tuple(ex["logits"].shape) if ex.get("reduction", "none") == "none" else ()


def _exact_scale(ex: dict[str, Any], *, focal: bool) -> np.ndarray | float:
    """The conditioning term of the ULP budget against the exact oracle (see tolerances.ULP_BUDGETS).

    The logits are exact inputs, but every implementation forms exp(-|x|) (or sigmoid(x)),
    which rounds once: that moves the loss by |x dL/dx| eps at most. Soft targets enter
    products with the logits that must round (x z, (1 - z) x): |x| (1 + gamma) eps. Hard
    targets multiply exactly and add nothing."""
    x, z = _np(ex["logits"]), _np(ex["targets"])
    gamma = ex.get("gamma", 2.0) if focal else 0.0
    grad = npo.sigmoid_focal_grad(x, z, ex.get("alpha", 0.25), gamma) if focal else npo.sigmoid_bce_grad(x, z)
    soft = (z > 0) & (z < 1)
    return _reduced(ex, np.abs(x * grad) + np.where(soft, np.abs(x) * (1.0 + gamma), 0.0))


def _keras_scale(x: np.ndarray, z: np.ndarray, gamma: float) -> np.ndarray:
    # Keras forms 1 - p_t by subtraction in float32 (absolute error ~1e-7), which
    # moves FL by up to gamma * BCE * (1 - p_t)^(gamma-1) * 1e-7; with the TF
    # formula's ulp(|x|) this bounds Keras's own error.
    bce = npo.sigmoid_bce(x, z)
    return np.maximum(bce * max(gamma, 1.0), np.abs(x))


def _focal_kwargs(ex: dict[str, Any]) -> dict[str, Any]:
    return {k: ex[k] for k in ("alpha", "gamma") if k in ex}


# ---------------------------------------------------------------------------
# Oracles (float64 NumPy, exact mpmath, TensorFlow / Keras)
# ---------------------------------------------------------------------------


def _opt(ex: dict[str, Any], key: str) -> np.ndarray | None:
    return None if ex.get(key) is None else _np(ex[key])


def _red(ex: dict[str, Any], values: np.ndarray, scale: Any = None) -> Want:
    """The oracle's answer for the example's reduction. A sum whose terms add up beyond the
    input dtype's range overflows in any implementation that sums in that dtype (torch's
    own mean does): such an example is outside the trusted domain, counted as not asked."""
    red = ex.get("reduction", "none")
    out = npo.reduce(values, red)
    mask = None
    if red != "none":
        limit = float(torch.finfo(ex["logits"].dtype).max)
        mask = np.asarray(bool(np.sum(np.abs(values)) < limit / 2))
    return Want(out, mask=mask, scale=scale)


def _bce_numpy(ex: dict[str, Any]) -> Any:
    return _red(ex, npo.sigmoid_bce(_np(ex["logits"]), _np(ex["targets"]), _opt(ex, "weight"), _opt(ex, "pos_weight")))


def _bce_exact(ex: dict[str, Any]) -> Any:
    from oracles import exact

    return _red(ex, exact.sigmoid_bce(_np(ex["logits"]), _np(ex["targets"])), scale=_exact_scale(ex, focal=False))


def _bce_tensorflow(ex: dict[str, Any]) -> Want:
    from oracles import tf as tfo

    x = ex["logits"]
    dt = hh.NP_DTYPE[x.dtype]
    out = tfo.sigmoid_bce(_np(x).astype(dt), _np(ex["targets"]).astype(dt))
    return _red(ex, out, scale=_reduced(ex, np.abs(_np(x))))


def _focal_numpy(ex: dict[str, Any]) -> Any:
    return _red(ex, npo.sigmoid_focal(_np(ex["logits"]), _np(ex["targets"]), ex.get("alpha", 0.25), ex.get("gamma", 2.0)))


def _focal_exact(ex: dict[str, Any]) -> Any:
    from oracles import exact

    return _red(ex, exact.sigmoid_focal(_np(ex["logits"]), _np(ex["targets"]), ex.get("alpha", 0.25), ex.get("gamma", 2.0)),
                scale=_exact_scale(ex, focal=True))


def _focal_keras(ex: dict[str, Any]) -> Want:
    from oracles import tf as tfo

    x, z, g = _np(ex["logits"]), _np(ex["targets"]), ex.get("gamma", 2.0)
    return _red(ex, tfo.sigmoid_focal(x, z, ex.get("alpha", 0.25), g), scale=_reduced(ex, _keras_scale(x, z, g)))


def _weighted_numpy(ex: dict[str, Any]) -> np.ndarray:
    return npo.weighted_sigmoid_focal(_np(ex["logits"]), _np(ex["targets"]), _np(ex["weights"]),
                                      ex.get("alpha", 0.25), ex.get("gamma", 2.0))


# ---------------------------------------------------------------------------
# Specs
# ---------------------------------------------------------------------------

_PAIR = (Arg("logits", differentiable=True), Arg("targets"))
_FOCAL_KW = (Keyword("alpha", 0.25, alphas), Keyword("gamma", 2.0, gammas))
_REDUCTION = Keyword("reduction", "none", st.sampled_from(["mean", "sum"]))
_SAME_SHAPE = lambda ex: tuple(ex["logits"].shape)  # noqa: E731

BCE = register(
    Spec(
        id="sigmoid_bce",
        family="sigmoid",
        signature="f(logits: Tensor[*], targets: Tensor[*], *, weight: Tensor | None = None, "
        "pos_weight: Tensor | None = None, reduction: str = 'none') -> Tensor[*] | Tensor[]",
        summary="Binary cross-entropy on logits, w [(1 - z) softplus(x) + pw z softplus(-x)]; targets in [0, 1], "
        "soft targets allowed; weight and pos_weight broadcast to the logits (torch semantics); 'none' keeps "
        "the shape and dtype, 'mean' averages every element (an empty mean is nan), 'sum' adds them.",
        reference=ref.sigmoid_bce,
        convention=Convention(
            args=_PAIR,
            keywords=(Keyword("weight", None, _weight_values), Keyword("pos_weight", None, _pos_weight_values),
                      _REDUCTION),
            output_shape=_out_shape,
            errors=_errors(focal=False),
        ),
        strategies={
            "default": pairs(reductions=True, weights=True),
            "gradcheck": pairs(dtypes=(torch.float64,), max_abs=20.0, max_side=3, reductions=True, weights=True),
            # |x| <= 1e4 keeps float16 inputs finite (its maximum is 65504).
            "device": pairs(dtypes=(torch.float32,), max_abs=1e4, min_dims=1, reductions=True, weights=True),
        },
        oracles=(
            Oracle("numpy", "numpy", _bce_numpy, primary=True,
                   doc="f(x, z) equals the float64 NumPy closed form over the whole float32 logit range, hard and soft z."),
            Oracle("exact", "exact", _bce_exact, requires=("mpmath",), strategy=pairs(max_side=4, reductions=True),
                   doc="f(x, z) equals the exact (60-digit) value within 8 ulp of its dtype plus the conditioning of "
                   "soft targets (tolerances.ULP_BUDGETS); max abs/rel/ULP errors are recorded."),
            Oracle(
                "tensorflow", "tensorflow", _bce_tensorflow,
                domain="all finite inputs; its max(x,0) - x*z form loses ulp(|x|) absolutely, so the comparison "
                "allows rtol*|x|",
                doc="f(x, z) equals tf.nn.sigmoid_cross_entropy_with_logits(z, x) up to TF's own ulp(|x|) error.",
                tolerance_key=lambda ex: "tf32" if ex["logits"].dtype == torch.float32 else "tensorflow",
                requires=("tensorflow",), examples_factor=0.5, strategy=pairs(reductions=True),
            ),
        ),
        scale=_bce_scale,
        regions=("float32", "float64", "empty", "0-d", "soft targets", "hard targets", "saturated logits (|x| > 88)",
                 "trailing singleton axis", "reduced (mean / sum)", "weight / pos_weight"),
    )
)


def _saturated_examples() -> tuple[dict[str, Any], ...]:
    """Saturated logits in float32, where naive powers and overflowing backward passes break."""
    out = []
    for xv in (-3e38, -1e38, -100.0, -18.0, 18.0, 100.0, 1e38, 3e38):
        for zv in (0.0, 1.0):
            for g in (0.25, 2.0, 3.0):
                out.append({"logits": torch.tensor([xv], dtype=torch.float32),
                            "targets": torch.tensor([zv], dtype=torch.float32), "alpha": None, "gamma": g})
    return tuple(out)


FOCAL = register(
    Spec(
        id="sigmoid_focal",
        family="sigmoid",
        signature="f(logits: Tensor[*], targets: Tensor[*], *, alpha: float | None = 0.25, "
        "gamma: float = 2.0, reduction: str = 'none') -> Tensor[*] | Tensor[]",
        summary="Sigmoid focal loss alpha_t (1 - p_t)^gamma BCE, p_t = p z + (1-p)(1-z), "
        "alpha_t = alpha z + (1-alpha)(1-z); alpha=None disables the weighting; 'none' per element, 'mean' over "
        "every element (torchvision's), 'sum'.",
        reference=ref.sigmoid_focal,
        convention=Convention(args=_PAIR, keywords=(*_FOCAL_KW, _REDUCTION), output_shape=_out_shape,
                              errors=_errors(focal=True)),
        strategies={
            "default": pairs(focal=True, reductions=True),
            "gradcheck": pairs(focal=True, dtypes=(torch.float64,), max_abs=20.0, max_side=3, reductions=True),
            "device": pairs(dtypes=(torch.float32,), max_abs=1e4, min_dims=1, focal=True, reductions=True),
        },
        oracles=(
            Oracle("numpy", "numpy", _focal_numpy, primary=True,
                   doc="FL(x, z; alpha, gamma) equals the float64 NumPy closed form, hard and soft z, |x| up to "
                   "float32 max."),
            Oracle("exact", "exact", _focal_exact, requires=("mpmath",),
                   strategy=pairs(focal=True, max_side=4, reductions=True),
                   doc="FL equals the exact (60-digit) value within 8 ulp of its dtype plus the conditioning of the "
                   "logits and soft targets (tolerances.ULP_BUDGETS); max abs/rel/ULP errors are recorded."),
            Oracle(
                "keras", "keras", _focal_keras,
                domain="all finite inputs, computed in float32 with 1 - p_t formed by subtraction; the comparison "
                "allows float32 error relative to max(FL, BCE) and to |x|",
                doc="FL equals keras.losses.BinaryFocalCrossentropy(from_logits=True, apply_class_balancing=alpha "
                "is not None).",
                requires=("tensorflow",), examples_factor=0.5, strategy=pairs(focal=True, reductions=True),
            ),
        ),
        scale=_focal_scale,
        examples={"finite_gradients": _saturated_examples()},
        regions=("float32", "float64", "empty", "0-d", "soft targets", "hard targets", "saturated logits (|x| > 88)",
                 "trailing singleton axis", "gamma = 0", "gamma in (0, 1)", "gamma >= 1", "alpha None", "alpha set",
                 "reduced (mean / sum)"),
    )
)

WEIGHTED = register(
    Spec(
        id="weighted_sigmoid_focal",
        family="sigmoid",
        signature="f(logits: Tensor[B, A, C], targets: Tensor[B, A, C], weights: Tensor[B, A], *, "
        "alpha: float | None = 0.25, gamma: float = 2.0) -> Tensor[B, A, C]",
        summary="OpenPCDet SigmoidFocalClassificationLoss: focal loss per element times the anchor "
        "weight broadcast over classes; also (A, C) logits with (A,) weights.",
        reference=ref.weighted_sigmoid_focal,
        convention=Convention(
            args=(*_PAIR, Arg("weights")),
            keywords=_FOCAL_KW,
            output_shape=_SAME_SHAPE,
            errors=(ErrorInput("weights or targets of another shape", "shape", "weights", _weighted_mismatch()),),
        ),
        strategies={
            "default": weighted_inputs(),
            "gradcheck": weighted_inputs(dtypes=(torch.float64,), max_abs=20.0),
            "device": weighted_inputs(dtypes=(torch.float32,)),
        },
        oracles=(
            Oracle("numpy", "numpy", _weighted_numpy, primary=True,
                   doc="out[b, a, c] == FL(x, z; alpha, gamma)[b, a, c] * w[b, a] (float64 NumPy)."),
        ),
        scale=lambda ex: _stable_scale(ex, ex.get("gamma", 2.0)) * (1 + np.abs(_np(ex["weights"])))[..., None],
        opt_out={"rejects_invalid_inputs": "the domain checks are those of sigmoid_focal, which it wraps; its own "
                 "contract adds only the weights' shape (rejects_shape_mismatch)"},
        regions=("(A, C) layout", "(B, A, C) layout", "empty", "float32", "float64"),
    )
)


def _grad_wrt_logits(target: Target, ex: dict[str, Any], **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
    x = ex["logits"].clone().requires_grad_(True)
    out = target.tensor(x, ex["targets"], **kwargs)
    return out, ck.input_grad(out, x)


# ---------------------------------------------------------------------------
# sigmoid_bce properties
# ---------------------------------------------------------------------------


@BCE.property(Category.INVARIANCE, strategy=dyadic_pairs())
def label_flip_symmetry(target: Target, ex: dict[str, Any]) -> None:
    """BCE(x, z) == BCE(-x, 1 - z) (relabelling the classes)."""
    x, z = ex["logits"], ex["targets"]
    a = target.tensor(x, z)
    b = target.tensor(-x, 1 - z)
    ck.assert_close(a, _np(b), spec=BCE.id, key="self", dtype=x.dtype, what="f(x, z)", scale=_stable_scale(ex), inputs=ex)


@BCE.property(Category.GRADIENT, strategy=pairs())
def gradient_matches_analytic(target: Target, ex: dict[str, Any]) -> None:
    """d f / dx == sigmoid(x) - z everywhere, x == 0 included."""
    x, z = ex["logits"], ex["targets"]
    out, g = _grad_wrt_logits(target, ex)
    ck.assert_grad_close(
        g, npo.sigmoid_bce_grad(_np(x), _np(z)), spec=BCE.id, key="analytic", dtype=ck.judged_dtype(x.dtype, out.dtype), inputs=ex
    )



# ---------------------------------------------------------------------------
# sigmoid_focal properties
# ---------------------------------------------------------------------------


@FOCAL.property(Category.ORACLE)
def seed_004_worked_table(target: Target, ex: dict[str, Any]) -> None:
    """Seed 004's table: p=0.8 -> CE 0.2231, FL 0.0089; p=0.4 -> CE 0.9163, FL 0.3299 (z=1, gamma=2, alpha=1); ratios 4.11, 36.96."""
    tol = ck.tolerance(FOCAL.id, "seed_table", torch.float64)
    for dtype in (torch.float32, torch.float64):
        x = torch.tensor([math.log(0.8 / 0.2), math.log(0.4 / 0.6)], dtype=dtype)
        z = torch.ones(2, dtype=dtype)
        ce = target.tensor(x, z, alpha=None, gamma=0.0)
        fl = target.tensor(x, z, alpha=1.0, gamma=2.0)
        ck.assert_close(ce, np.array([0.2231, 0.9163]), spec=FOCAL.id, key="seed_table", what=f"CE ({dtype})", tol=tol)
        ck.assert_close(fl, np.array([0.0089, 0.3299]), spec=FOCAL.id, key="seed_table", what=f"FL ({dtype})", tol=tol)
        ce_np, fl_np = ck.f64(ce), ck.f64(fl)
        ratios = np.array([ce_np[1] / ce_np[0], fl_np[1] / fl_np[0]])
        if not np.all(np.abs(ratios - np.array([4.11, 36.96])) <= 0.005):
            raise AssertionError(f"ratios CE {ratios[0]:.4f}, FL {ratios[1]:.4f}, but should be 4.11 and 36.96 ({dtype})")


@FOCAL.property(Category.EQUIVALENCE, strategy=pairs())
def gamma0_alpha_half_is_half_bce(target: Target, ex: dict[str, Any]) -> None:
    """FL(x, z; alpha=0.5, gamma=0) == BCE(x, z) / 2."""
    x, z = ex["logits"], ex["targets"]
    out = target.tensor(x, z, alpha=0.5, gamma=0.0)
    ck.assert_close(
        out, 0.5 * npo.sigmoid_bce(_np(x), _np(z)), spec=FOCAL.id, key="numpy", dtype=x.dtype, scale=_stable_scale(ex), inputs=ex
    )


@FOCAL.property(Category.EQUIVALENCE, strategy=pairs())
def gamma0_no_alpha_is_bce(target: Target, ex: dict[str, Any]) -> None:
    """FL(x, z; alpha=None, gamma=0) == BCE(x, z)."""
    x, z = ex["logits"], ex["targets"]
    out = target.tensor(x, z, alpha=None, gamma=0.0)
    ck.assert_close(
        out, npo.sigmoid_bce(_np(x), _np(z)), spec=FOCAL.id, key="numpy", dtype=x.dtype, scale=_stable_scale(ex), inputs=ex
    )


@FOCAL.property(Category.EQUIVALENCE, strategy=pairs(focal=True, max_abs=1e4))
def bounded_by_weighted_bce(target: Target, ex: dict[str, Any]) -> None:
    """0 <= FL(x, z; a, gamma) <= max(a, 1 - a) * FL(x, z; None, 0) (= max(a, 1-a) * BCE)."""
    x, z = ex["logits"], ex["targets"]
    fl_t = target.tensor(x, z, **_focal_kwargs(ex))
    fl = ck.f64(fl_t)
    bce = ck.f64(target.tensor(x, z, alpha=None, gamma=0.0))
    a = ex["alpha"]
    cap = bce * (1.0 if a is None else max(a, 1 - a))
    tol = ck.tolerance(FOCAL.id, "self", ck.judged_dtype(x.dtype, fl_t.dtype))
    slack = tol.atol + tol.rtol * np.abs(cap)
    if (fl < -tol.atol).any():
        i = int(np.argmin(fl))
        raise AssertionError(f"FL.flat[{i}]={fl.flat[i]!r}, but should be >= 0")
    over = fl - cap > slack
    if over.any():
        i = int(np.flatnonzero(over)[0])
        raise AssertionError(
            f"FL.flat[{i}]={fl.flat[i]!r}, but should be <= max(a, 1-a) * BCE = {cap.flat[i]!r} "
            f"(x={ck.f64(x).flat[i]!r}, z={ck.f64(z).flat[i]!r}, alpha={a!r}, gamma={ex['gamma']!r})"
        )


@st.composite
def _gamma_pairs(draw: st.DrawFn) -> dict[str, Any]:
    # float64 only: the monotonicity is exact maths, best seen at the sharpest tolerance.
    ex = draw(pairs(focal=True, max_abs=1e4, dtypes=(torch.float64,), min_dims=1))
    ex["gamma2"] = ex["gamma"] + draw(st.sampled_from([0.5, 1.0, 2.0, 3.0]) | st.floats(0.01, 4.0, allow_nan=False))
    return ex


@FOCAL.property(Category.EQUIVALENCE, strategy=_gamma_pairs())
def nonincreasing_in_gamma(target: Target, ex: dict[str, Any]) -> None:
    """gamma1 <= gamma2 implies FL(gamma1) >= FL(gamma2), since 0 <= 1 - p_t <= 1."""
    x, z = ex["logits"], ex["targets"]
    lo_t = target.tensor(x, z, alpha=ex["alpha"], gamma=ex["gamma"])
    lo = ck.f64(lo_t)
    hi = ck.f64(target.tensor(x, z, alpha=ex["alpha"], gamma=ex["gamma2"]))
    tol = ck.tolerance(FOCAL.id, "self", ck.judged_dtype(x.dtype, lo_t.dtype))
    bad = hi - lo > tol.atol + tol.rtol * np.abs(lo)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise AssertionError(
            f"FL(gamma={ex['gamma2']!r}).flat[{i}]={hi.flat[i]!r}, but should be <= FL(gamma={ex['gamma']!r})="
            f"{lo.flat[i]!r} (x={ck.f64(x).flat[i]!r}, z={ck.f64(z).flat[i]!r})"
        )


@FOCAL.property(Category.INVARIANCE, strategy=dyadic_pairs(focal=True), name="label_flip_symmetry")
def focal_label_flip_symmetry(target: Target, ex: dict[str, Any]) -> None:
    """FL(x, z; a, gamma) == FL(-x, 1 - z; 1 - a, gamma) (alpha=None stays None)."""
    x, z, a = ex["logits"], ex["targets"], ex["alpha"]
    first = target.tensor(x, z, alpha=a, gamma=ex["gamma"])
    flipped = target.tensor(-x, 1 - z, alpha=None if a is None else 1 - a, gamma=ex["gamma"])
    ck.assert_close(
        first, ck.f64(flipped), spec=FOCAL.id, key="self", dtype=x.dtype, what="FL(x, z, a)",
        scale=_stable_scale(ex, ex["gamma"]), inputs=ex,
    )


@FOCAL.property(Category.GRADIENT, strategy=pairs(focal=True), name="gradient_matches_analytic")
def focal_gradient_matches_analytic(target: Target, ex: dict[str, Any]) -> None:
    """d FL / dx == alpha_t [(1-p_t)^g (p - z) + g BCE (1-p_t)^(g-1) p (1-p) (1 - 2z)]."""
    x, z = ex["logits"], ex["targets"]
    out, g = _grad_wrt_logits(target, ex, **_focal_kwargs(ex))
    want = npo.sigmoid_focal_grad(_np(x), _np(z), ex["alpha"], ex["gamma"])
    # The second term is a product of BCE with a factor; both its parts carry rounding error.
    scale = np.abs(npo.sigmoid_bce(_np(x), _np(z))) * ex["gamma"] * 1e-3 if out.dtype != torch.float64 else None
    ck.assert_grad_close(g, want, spec=FOCAL.id, key="analytic", dtype=ck.judged_dtype(x.dtype, out.dtype), scale=scale, inputs=ex)


@FOCAL.property(
    Category.REDUCTION, strategy=pairs(focal=True, min_dims=2, max_dims=2, max_side=6, max_abs=1e4)
)
def ultralytics_mean1_sum(target: Target, ex: dict[str, Any]) -> None:
    """ultralytics' reduction FL.mean(1).sum() equals the oracle's, and each row's FL depends on that row only."""
    x, z = ex["logits"], ex["targets"]
    kw = _focal_kwargs(ex)
    out = target.tensor(x, z, **kw)
    want = npo.sigmoid_focal(_np(x), _np(z), ex["alpha"], ex["gamma"])
    if out.shape != x.shape:
        raise AssertionError(f"out.shape={tuple(out.shape)}, but should be {tuple(x.shape)} before the reduction")
    total = out.mean(1).sum() if x.numel() else out.new_zeros(())
    want_total = want.mean(1).sum() if want.size else 0.0
    ck.assert_close(total, want_total, spec=FOCAL.id, key="reduction", dtype=x.dtype, what="FL.mean(1).sum()")
    for i in range(x.shape[0]):
        row = target.tensor(x[i : i + 1], z[i : i + 1], **kw)
        ck.assert_close(row[0], ck.f64(out[i]), spec=FOCAL.id, key="self", dtype=x.dtype, what=f"FL(row {i} alone)")



# ---------------------------------------------------------------------------
# weighted_sigmoid_focal properties
# ---------------------------------------------------------------------------


def _wcall(target: Target, ex: dict[str, Any], w: torch.Tensor | None = None) -> torch.Tensor:
    return target.tensor(ex["logits"], ex["targets"], ex["weights"] if w is None else w, **_focal_kwargs(ex))


@WEIGHTED.property(Category.INVARIANCE, strategy=weighted_inputs())
def anchor_weight_broadcast(target: Target, ex: dict[str, Any]) -> None:
    """f(x, z, w) == f(x, z, 1) * w[..., None]: the anchor weight scales every class of its anchor."""
    x = ex["logits"]
    ones = torch.ones_like(ex["weights"])
    base = ck.f64(_wcall(target, ex, ones))
    want = base * ck.f64(ex["weights"])[..., None]
    ck.assert_close(_wcall(target, ex), want, spec=WEIGHTED.id, key="self", dtype=x.dtype, inputs=ex)


@st.composite
def _two_weights(draw: st.DrawFn) -> dict[str, Any]:
    ex = draw(weighted_inputs())
    w = ex["weights"]
    ex["weights2"] = draw(hh.tensors(shape=tuple(w.shape), dtype=w.dtype, elements=st.floats(0, 4, allow_nan=False, allow_subnormal=False, width=32)))
    ex["scale"] = draw(st.sampled_from([0.0, 0.5, 2.0, 3.0]))
    return ex


@WEIGHTED.property(Category.INVARIANCE, strategy=_two_weights())
def linear_in_weights(target: Target, ex: dict[str, Any]) -> None:
    """f(w1 + w2) == f(w1) + f(w2) and f(c w) == c f(w)."""
    x, w1, w2, c = ex["logits"], ex["weights"], ex["weights2"], ex["scale"]
    f1, f2 = ck.f64(_wcall(target, ex, w1)), ck.f64(_wcall(target, ex, w2))
    scale = np.abs(f1) + np.abs(f2)
    ck.assert_close(_wcall(target, ex, w1 + w2), f1 + f2, spec=WEIGHTED.id, key="self", dtype=x.dtype, scale=scale, what="f(w1 + w2)")
    ck.assert_close(_wcall(target, ex, c * w1), c * f1, spec=WEIGHTED.id, key="self", dtype=x.dtype, what=f"f({c} * w)")


# ---------------------------------------------------------------------------
# Error profiles: fixed logit grids, recorded for the report's plots
# ---------------------------------------------------------------------------

_GRID = np.concatenate([-np.logspace(4, -3, 57), [0.0], np.logspace(-3, 4, 57)])
_CURVE = np.concatenate([-np.logspace(4, 0, 33), np.linspace(-0.9, 0.9, 7), np.logspace(0, 4, 33)])
_PROFILE_TARGETS = (0.0, 1.0, 0.3)


def _error_profile(target: Target, spec_id: str, kwargs: dict[str, Any], exact_fn: Any, grad_kwargs: dict[str, Any]) -> None:
    from conformance import recorder

    rec = recorder.current()
    failures: list[str] = []
    for dtype in (torch.float32, torch.float64):
        x = torch.tensor(_GRID, dtype=dtype)
        for zv in _PROFILE_TARGETS:
            z = torch.full_like(x, zv)
            out = target.tensor(x, z, **kwargs)
            want = exact_fn(_np(x), _np(z))
            got = ck.f64(out) if out.shape == x.shape else np.full(x.shape, np.nan)
            spacing = np.spacing(np.abs(want).astype(hh.NP_DTYPE[dtype])).astype(np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                ulp = np.abs(got - want) / spacing
            if rec is not None:
                rec.add_series(f"{spec_id}: error in ULP vs logit ({str(dtype)[6:]}, z={zv})", "", _np(x).tolist(), ulp.tolist(),
                               xscale="symlog", yscale="log", xlabel="logit x", ylabel="|f - exact| / ulp")
            ex = {"logits": x, "targets": z, **kwargs}
            try:
                ck.assert_close(out, want, spec=spec_id, key="exact", dtype=dtype, scale=_exact_scale(ex, focal=spec_id == FOCAL.id), inputs=ex)
            except AssertionError as exc:
                failures.append(f"[{dtype}, z={zv}] {exc}")
    # Loss and gradient curves at the extremes (float32, the dtype people train in).
    for zv in (0.0, 1.0):
        x = torch.tensor(_CURVE, dtype=torch.float32, requires_grad=True)
        z = torch.full_like(x, zv).detach()
        out = target.tensor(x, z, **grad_kwargs)
        if rec is not None and out.shape == x.shape:
            rec.add_series(f"{spec_id}: loss vs logit (float32, z={zv})", "", _CURVE.tolist(), ck.f64(out).tolist(),
                           xscale="symlog", yscale="symlog", xlabel="logit x", ylabel="loss")
            try:
                g = ck.input_grad(out, x)
                rec.add_series(f"{spec_id}: gradient vs logit (float32, z={zv}, {grad_kwargs or 'defaults'})", "", _CURVE.tolist(),
                               ck.f64(g).tolist(), xscale="symlog", yscale="linear", xlabel="logit x", ylabel="d loss / dx")
            except AssertionError:
                pass
    if failures:
        raise AssertionError("; ".join(failures[:3]) + (f"; and {len(failures) - 3} more" if len(failures) > 3 else ""))


@BCE.property(Category.ORACLE, requires=("mpmath",))
def error_profile(target: Target, ex: dict[str, Any]) -> None:
    """On a logit grid 0, +-1e-3..1e4 with z in {0, 1, 0.3}, float32 and float64: BCE equals the exact value (curves are plotted)."""
    from oracles import exact

    _error_profile(target, BCE.id, {}, exact.sigmoid_bce, {})


@FOCAL.property(Category.ORACLE, requires=("mpmath",), name="error_profile")
def focal_error_profile(target: Target, ex: dict[str, Any]) -> None:
    """On a logit grid 0, +-1e-3..1e4 with z in {0, 1, 0.3}, float32 and float64: FL(alpha=0.25, gamma=2) equals the exact value (curves plotted)."""
    from oracles import exact

    _error_profile(
        target, FOCAL.id, {"alpha": 0.25, "gamma": 2.0}, lambda a, b: exact.sigmoid_focal(a, b, 0.25, 2.0), {"alpha": 0.25, "gamma": 0.5}
    )
