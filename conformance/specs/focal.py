"""Specs of the sigmoid family: ``sigmoid_bce``, ``sigmoid_focal``, ``weighted_sigmoid_focal``.

Seeds 000 (OpenPCDet ``loss_utils``) and 004 (focal loss recap, ultralytics).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from conformance import checks as ck
from conformance import strategies as hh
from conformance.spec import Category, Oracle, SkipProperty, Spec, register
from conformance.specs._common import check_deterministic, check_not_modified, register_device_properties
from conformance.targets import Target
from impls import focal as ref
from oracles import numpy_focal as npo

# ---------------------------------------------------------------------------
# Specs
# ---------------------------------------------------------------------------

_NUMPY_BCE = Oracle("numpy", "numpy", "oracles.numpy_focal.sigmoid_bce")
_EXACT_BCE = Oracle("exact", "exact", "oracles.exact.sigmoid_bce", requires=("mpmath",))
_TF_BCE = Oracle(
    "tensorflow",
    "tensorflow",
    "tf.nn.sigmoid_cross_entropy_with_logits (oracles.tf.sigmoid_bce)",
    domain="all finite inputs; its max(x,0) - x*z form loses ulp(|x|) absolutely, so the comparison allows rtol*|x|",
    requires=("tensorflow",),
)

BCE = register(
    Spec(
        id="sigmoid_bce",
        family="sigmoid",
        signature="f(logits: Tensor[*], targets: Tensor[*]) -> Tensor[*]",
        summary="Elementwise binary cross-entropy on logits; targets in [0, 1], soft targets allowed; "
        "same shape and dtype in and out.",
        reference=ref.sigmoid_bce,
        oracles=(_NUMPY_BCE, _EXACT_BCE, _TF_BCE),
    )
)

FOCAL = register(
    Spec(
        id="sigmoid_focal",
        family="sigmoid",
        signature="f(logits: Tensor[*], targets: Tensor[*], *, alpha: float | None = 0.25, "
        "gamma: float = 2.0) -> Tensor[*]",
        summary="Elementwise sigmoid focal loss alpha_t (1 - p_t)^gamma BCE, p_t = p z + (1-p)(1-z), "
        "alpha_t = alpha z + (1-alpha)(1-z); alpha=None disables the weighting.",
        reference=ref.sigmoid_focal,
        oracles=(
            Oracle("numpy", "numpy", "oracles.numpy_focal.sigmoid_focal"),
            Oracle("exact", "exact", "oracles.exact.sigmoid_focal", requires=("mpmath",)),
            Oracle(
                "keras",
                "keras",
                "keras.losses.BinaryFocalCrossentropy(from_logits=True) (oracles.tf.sigmoid_focal)",
                domain="all finite inputs, computed in float32 with 1 - p_t formed by subtraction; the "
                "comparison allows float32 error relative to max(FL, BCE) and to |x|",
                requires=("tensorflow",),
            ),
            Oracle("seed_004_table", "published", "seed 004's worked table (4 decimals)"),
        ),
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
        oracles=(Oracle("numpy", "numpy", "oracles.numpy_focal.weighted_sigmoid_focal"),),
    )
)

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
    focal: bool = False,
) -> dict[str, Any]:
    """logits and targets of one shape and dtype (plus alpha and gamma for focal)."""
    dtype = draw(hh.float_dtypes(dtypes=dtypes))
    shape = draw(hh.shapes(min_dims=min_dims, max_dims=max_dims, max_side=max_side))
    ex: dict[str, Any] = {
        "logits": draw(hh.logits(shape=shape, dtype=dtype, max_abs=max_abs)),
        "targets": draw(hh.probabilities(shape=shape, dtype=dtype, hard=hard)),
    }
    if focal:
        ex["alpha"] = draw(alphas)
        ex["gamma"] = draw(gammas)
    return ex


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
def weighted_inputs(draw: st.DrawFn) -> dict[str, Any]:
    dtype = draw(hh.float_dtypes())
    two_d = draw(st.booleans())
    b, a, c = draw(st.integers(0, 3)), draw(st.integers(0, 5)), draw(st.integers(1, 4))
    shape = (a, c) if two_d else (b, a, c)
    # |x| <= 1e4 keeps weight * loss inside float32 (weights go up to 4).
    x = draw(hh.logits(shape=shape, dtype=dtype, max_abs=1e4))
    cls = draw(hh.tensors(shape=shape[:-1], dtype=torch.float64, elements=st.integers(-1, c - 1).map(float)))
    # One-hot rows, with -1 meaning background (an all-zero row), as OpenPCDet builds them.
    z = torch.zeros(shape, dtype=dtype)
    idx = cls.long()
    fg = idx >= 0
    z[fg] = torch.nn.functional.one_hot(idx[fg], c).to(dtype)
    w = draw(hh.tensors(shape=shape[:-1], dtype=dtype, elements=st.floats(0, 4, allow_nan=False, allow_subnormal=False, width=32)))
    return {"logits": x, "targets": z, "weights": w, "alpha": draw(alphas), "gamma": draw(gammas)}


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def _np(t: torch.Tensor) -> np.ndarray:
    return ck.f64(t)


def _focal_kwargs(ex: dict[str, Any]) -> dict[str, Any]:
    return {"alpha": ex["alpha"], "gamma": ex["gamma"]}


def _grad_wrt_logits(target: Target, ex: dict[str, Any], **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
    x = ex["logits"].clone().requires_grad_(True)
    out = target.tensor(x, ex["targets"], **kwargs)
    return out, ck.input_grad(out, x)


def _stable_scale(ex: dict[str, Any], gamma: float = 0.0) -> np.ndarray:
    # Backward stability: an implementation that is exact for logits perturbed by a
    # relative rtol moves the loss by up to |dL/dx| * rtol * |x| <= (1 + gamma) rtol |x|.
    # torch's and TF's BCE formulas (x(1 - z) + ...) lose ulp(|x|) this way with soft z.
    return np.abs(_np(ex["logits"])) * (1.0 + gamma)


def _gradcheck(target: Target, ex: dict[str, Any], spec_id: str, **kwargs: Any) -> None:
    x, z = ex["logits"], ex["targets"]
    if x.numel() == 0:
        return
    out = target.tensor(x, z, **kwargs)
    if out.dtype != torch.float64:
        raise SkipProperty(
            f"{target.name} returns {out.dtype} for float64 input; finite differences need float64 "
            "(the dtype deviation is reported by output_dtype_and_shape)"
        )
    xr = x.clone().requires_grad_(True)
    ck.assert_gradcheck(lambda t: target.tensor(t, z, **kwargs), xr, spec=spec_id)


def _keras_scale(x: np.ndarray, z: np.ndarray, gamma: float) -> np.ndarray:
    # Keras forms 1 - p_t by subtraction in float32 (absolute error ~1e-7), which
    # moves FL by up to gamma * BCE * (1 - p_t)^(gamma-1) * 1e-7; with the TF
    # formula's ulp(|x|) this bounds Keras's own error.
    bce = npo.sigmoid_bce(x, z)
    return np.maximum(bce * max(gamma, 1.0), np.abs(x))


# ---------------------------------------------------------------------------
# sigmoid_bce properties
# ---------------------------------------------------------------------------


@BCE.property(Category.ORACLE, strategy=pairs())
def agrees_with_numpy(target: Target, ex: dict[str, Any]) -> None:
    """f(x, z) equals the float64 NumPy closed form over the whole float32 logit range, hard and soft z."""
    x, z = ex["logits"], ex["targets"]
    out = target.tensor(x, z)
    ck.assert_close(
        out, npo.sigmoid_bce(_np(x), _np(z)), spec=BCE.id, key="numpy", dtype=x.dtype, scale=_stable_scale(ex), inputs=ex
    )


@BCE.property(Category.ORACLE, strategy=pairs(max_side=4), requires=("mpmath",))
def agrees_with_exact(target: Target, ex: dict[str, Any]) -> None:
    """f(x, z) equals the exact (60-digit) value; max abs/rel/ULP errors are recorded."""
    from oracles import exact

    x, z = ex["logits"], ex["targets"]
    out = target.tensor(x, z)
    want = exact.sigmoid_bce(_np(x), _np(z))
    if isinstance(out, torch.Tensor) and out.shape == x.shape:
        ck.measure_accuracy(out, want)
    ck.assert_close(out, want, spec=BCE.id, key="exact", dtype=x.dtype, scale=_stable_scale(ex), inputs=ex)


@BCE.property(Category.ORACLE, strategy=pairs(), requires=("tensorflow",), examples_factor=0.5)
def agrees_with_tensorflow(target: Target, ex: dict[str, Any]) -> None:
    """f(x, z) equals tf.nn.sigmoid_cross_entropy_with_logits(z, x) up to TF's own ulp(|x|) error."""
    from oracles import tf as tfo

    x, z = ex["logits"], ex["targets"]
    out = target.tensor(x, z)
    want = tfo.sigmoid_bce(_np(x).astype(hh.NP_DTYPE[x.dtype]), _np(z).astype(hh.NP_DTYPE[x.dtype]))
    key = "tf32" if x.dtype == torch.float32 else "tensorflow"
    ck.assert_close(out, want, spec=BCE.id, key=key, dtype=x.dtype, scale=_np(x), inputs=ex)


@BCE.property(Category.ROBUSTNESS, strategy=pairs(max_abs=50.0))
def output_dtype_and_shape(target: Target, ex: dict[str, Any]) -> None:
    """out.shape == x.shape and out.dtype == x.dtype, for 0-d, empty and N-d inputs."""
    x, z = ex["logits"], ex["targets"]
    ck.assert_shape_dtype(target(x, z), shape=x.shape, dtype=x.dtype)


@BCE.property(Category.INVARIANCE, strategy=dyadic_pairs())
def label_flip_symmetry(target: Target, ex: dict[str, Any]) -> None:
    """BCE(x, z) == BCE(-x, 1 - z) (relabelling the classes)."""
    x, z = ex["logits"], ex["targets"]
    a = target.tensor(x, z)
    b = target.tensor(-x, 1 - z)
    ck.assert_close(a, _np(b), spec=BCE.id, key="self", dtype=x.dtype, what="f(x, z)", scale=_stable_scale(ex), inputs=ex)


@BCE.property(Category.GRADIENT, strategy=pairs())
def finite_gradients(target: Target, ex: dict[str, Any]) -> None:
    """d f / dx is finite for every finite x and z in [0, 1]."""
    _, g = _grad_wrt_logits(target, ex)
    ck.assert_finite(g, what="grad", inputs=ex)


@BCE.property(Category.GRADIENT, strategy=pairs())
def gradient_matches_analytic(target: Target, ex: dict[str, Any]) -> None:
    """d f / dx == sigmoid(x) - z everywhere, x == 0 included."""
    x, z = ex["logits"], ex["targets"]
    out, g = _grad_wrt_logits(target, ex)
    ck.assert_grad_close(
        g, npo.sigmoid_bce_grad(_np(x), _np(z)), spec=BCE.id, key="analytic", dtype=ck.judged_dtype(x.dtype, out.dtype), inputs=ex
    )


@BCE.property(
    Category.GRADIENT, strategy=pairs(dtypes=(torch.float64,), max_abs=20.0, max_side=3), examples_factor=0.3
)
def gradcheck_float64(target: Target, ex: dict[str, Any]) -> None:
    """Autograd's d f / dx matches central finite differences in float64 (torch.autograd.gradcheck)."""
    _gradcheck(target, ex, BCE.id)


@BCE.property(Category.ROBUSTNESS, strategy=pairs(max_abs=1e4))
def inputs_not_modified(target: Target, ex: dict[str, Any]) -> None:
    """The call leaves logits and targets unchanged (values and version counters)."""
    check_not_modified(target, [ex["logits"], ex["targets"]], {}, ["logits", "targets"])


@BCE.property(Category.ROBUSTNESS, strategy=pairs(min_dims=1))
def deterministic(target: Target, ex: dict[str, Any]) -> None:
    """The same input gives bitwise the same output."""
    check_deterministic(lambda: target.tensor(ex["logits"], ex["targets"]))


@st.composite
def mismatched(draw: st.DrawFn) -> dict[str, Any]:
    """Logits (N, C) with targets of another shape: a column, an extra class, or transposed."""
    dtype = draw(hh.float_dtypes())
    n, c = draw(st.integers(1, 4)), draw(st.integers(2, 4))
    variant = draw(st.sampled_from(["column", "extra_class", "transposed"]))
    zshape = {"column": (n, 1), "extra_class": (n, c + 1), "transposed": (c, n) if c != n else (c, n + 1)}[variant]
    return {
        "logits": draw(hh.logits(shape=(n, c), dtype=dtype, max_abs=10.0)),
        "targets": draw(hh.probabilities(shape=zshape, dtype=dtype, hard=True)),
    }


@BCE.property(Category.ROBUSTNESS, strategy=mismatched())
def rejects_shape_mismatch(target: Target, ex: dict[str, Any]) -> None:
    """targets.shape != logits.shape raises an error (no silent broadcasting of labels)."""
    ck.assert_raises(lambda: target(ex["logits"], ex["targets"]), what=f"logits {tuple(ex['logits'].shape)} with targets {tuple(ex['targets'].shape)}")


# ---------------------------------------------------------------------------
# sigmoid_focal properties
# ---------------------------------------------------------------------------


@FOCAL.property(Category.ORACLE, strategy=pairs(focal=True), name="agrees_with_numpy")
def focal_agrees_with_numpy(target: Target, ex: dict[str, Any]) -> None:
    """FL(x, z; alpha, gamma) equals the float64 NumPy closed form, hard and soft z, |x| up to float32 max."""
    x, z = ex["logits"], ex["targets"]
    out = target.tensor(x, z, **_focal_kwargs(ex))
    want = npo.sigmoid_focal(_np(x), _np(z), ex["alpha"], ex["gamma"])
    ck.assert_close(out, want, spec=FOCAL.id, key="numpy", dtype=x.dtype, scale=_stable_scale(ex, ex["gamma"]), inputs=ex)


@FOCAL.property(Category.ORACLE, strategy=pairs(focal=True, max_side=4), requires=("mpmath",), name="agrees_with_exact")
def focal_agrees_with_exact(target: Target, ex: dict[str, Any]) -> None:
    """FL equals the exact (60-digit) value; max abs/rel/ULP errors are recorded."""
    from oracles import exact

    x, z = ex["logits"], ex["targets"]
    out = target.tensor(x, z, **_focal_kwargs(ex))
    want = exact.sigmoid_focal(_np(x), _np(z), ex["alpha"], ex["gamma"])
    if isinstance(out, torch.Tensor) and out.shape == x.shape:
        ck.measure_accuracy(out, want)
    ck.assert_close(out, want, spec=FOCAL.id, key="exact", dtype=x.dtype, scale=_stable_scale(ex, ex["gamma"]), inputs=ex)


@FOCAL.property(Category.ORACLE, strategy=pairs(focal=True), requires=("tensorflow",), examples_factor=0.5)
def agrees_with_keras(target: Target, ex: dict[str, Any]) -> None:
    """FL equals keras.losses.BinaryFocalCrossentropy(from_logits=True, apply_class_balancing=alpha is not None)."""
    from oracles import tf as tfo

    x, z = ex["logits"], ex["targets"]
    out = target.tensor(x, z, **_focal_kwargs(ex))
    want = tfo.sigmoid_focal(_np(x), _np(z), ex["alpha"], ex["gamma"])
    ck.assert_close(
        out, want, spec=FOCAL.id, key="keras", dtype=x.dtype, scale=_keras_scale(_np(x), _np(z), ex["gamma"]), inputs=ex
    )


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


@FOCAL.property(Category.ROBUSTNESS, strategy=pairs(focal=True, max_abs=50.0), name="output_dtype_and_shape")
def focal_output_dtype_and_shape(target: Target, ex: dict[str, Any]) -> None:
    """out.shape == x.shape and out.dtype == x.dtype, for 0-d, empty and N-d inputs."""
    x = ex["logits"]
    ck.assert_shape_dtype(target(x, ex["targets"], **_focal_kwargs(ex)), shape=x.shape, dtype=x.dtype)


def _saturated_examples() -> tuple[dict[str, Any], ...]:
    """Saturated logits in float32, where naive powers and overflowing backward passes break."""
    out = []
    for xv in (-3e38, -1e38, -100.0, -18.0, 18.0, 100.0, 1e38, 3e38):
        for zv in (0.0, 1.0):
            for g in (0.25, 2.0, 3.0):
                out.append({"logits": torch.tensor([xv], dtype=torch.float32),
                            "targets": torch.tensor([zv], dtype=torch.float32), "alpha": None, "gamma": g})
    return tuple(out)


@FOCAL.property(Category.GRADIENT, strategy=pairs(focal=True), name="finite_gradients", examples=_saturated_examples())
def focal_finite_gradients(target: Target, ex: dict[str, Any]) -> None:
    """d FL / dx is finite for every finite x, z in [0, 1], gamma >= 0 (gamma in (0, 1) included)."""
    _, g = _grad_wrt_logits(target, ex, **_focal_kwargs(ex))
    ck.assert_finite(g, what="grad", inputs=ex)


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
    Category.GRADIENT,
    strategy=pairs(focal=True, dtypes=(torch.float64,), max_abs=20.0, max_side=3),
    examples_factor=0.3,
    name="gradcheck_float64",
)
def focal_gradcheck_float64(target: Target, ex: dict[str, Any]) -> None:
    """Autograd's d FL / dx matches central finite differences in float64 (torch.autograd.gradcheck)."""
    _gradcheck(target, ex, FOCAL.id, **_focal_kwargs(ex))


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


@FOCAL.property(Category.ROBUSTNESS, strategy=pairs(focal=True, max_abs=1e4), name="inputs_not_modified")
def focal_inputs_not_modified(target: Target, ex: dict[str, Any]) -> None:
    """The call leaves logits and targets unchanged (values and version counters)."""
    check_not_modified(target, [ex["logits"], ex["targets"]], _focal_kwargs(ex), ["logits", "targets"])


@FOCAL.property(Category.ROBUSTNESS, strategy=pairs(focal=True, min_dims=1), name="deterministic")
def focal_deterministic(target: Target, ex: dict[str, Any]) -> None:
    """The same input gives bitwise the same output."""
    check_deterministic(lambda: target.tensor(ex["logits"], ex["targets"], **_focal_kwargs(ex)))


@FOCAL.property(Category.ROBUSTNESS, strategy=mismatched(), name="rejects_shape_mismatch")
def focal_rejects_shape_mismatch(target: Target, ex: dict[str, Any]) -> None:
    """targets.shape != logits.shape raises an error (no silent broadcasting of labels)."""
    ck.assert_raises(
        lambda: target(ex["logits"], ex["targets"], alpha=0.25, gamma=2.0),
        what=f"logits {tuple(ex['logits'].shape)} with targets {tuple(ex['targets'].shape)}",
    )


# ---------------------------------------------------------------------------
# weighted_sigmoid_focal properties
# ---------------------------------------------------------------------------


def _wcall(target: Target, ex: dict[str, Any], w: torch.Tensor | None = None) -> torch.Tensor:
    return target.tensor(ex["logits"], ex["targets"], ex["weights"] if w is None else w, **_focal_kwargs(ex))


@WEIGHTED.property(Category.ORACLE, strategy=weighted_inputs(), name="agrees_with_numpy")
def weighted_agrees_with_numpy(target: Target, ex: dict[str, Any]) -> None:
    """out[b, a, c] == FL(x, z; alpha, gamma)[b, a, c] * w[b, a] (float64 NumPy)."""
    x = ex["logits"]
    want = npo.weighted_sigmoid_focal(_np(x), _np(ex["targets"]), _np(ex["weights"]), ex["alpha"], ex["gamma"])
    ck.assert_close(_wcall(target, ex), want, spec=WEIGHTED.id, key="numpy", dtype=x.dtype, inputs=ex)


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


@WEIGHTED.property(Category.ROBUSTNESS, strategy=weighted_inputs(), name="output_dtype_and_shape")
def weighted_output_dtype_and_shape(target: Target, ex: dict[str, Any]) -> None:
    """out.shape == logits.shape ((B, A, C) or (A, C)) and out.dtype == logits.dtype."""
    x = ex["logits"]
    ck.assert_shape_dtype(target(x, ex["targets"], ex["weights"], **_focal_kwargs(ex)), shape=x.shape, dtype=x.dtype)


@WEIGHTED.property(Category.GRADIENT, strategy=weighted_inputs(), name="finite_gradients")
def weighted_finite_gradients(target: Target, ex: dict[str, Any]) -> None:
    """d f / dx is finite for every finite x, one-hot z, w >= 0, gamma >= 0."""
    xr = ex["logits"].clone().requires_grad_(True)
    out = target.tensor(xr, ex["targets"], ex["weights"], **_focal_kwargs(ex))
    ck.assert_finite(ck.input_grad(out, xr), what="grad", inputs=ex)


@WEIGHTED.property(Category.ROBUSTNESS, strategy=weighted_inputs(), name="inputs_not_modified")
def weighted_inputs_not_modified(target: Target, ex: dict[str, Any]) -> None:
    """The call leaves logits, targets and weights unchanged (values and version counters)."""
    check_not_modified(
        target, [ex["logits"], ex["targets"], ex["weights"]], _focal_kwargs(ex), ["logits", "targets", "weights"]
    )


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
                ck.assert_close(out, want, spec=spec_id, key="exact", dtype=dtype, scale=_stable_scale(ex, kwargs.get("gamma", 0.0)), inputs=ex)
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


# ---------------------------------------------------------------------------
# Device and dtype agreement
# ---------------------------------------------------------------------------

# |x| <= 1e4 keeps float16 inputs finite (its maximum is 65504).
register_device_properties(
    BCE,
    strategy=pairs(dtypes=(torch.float32,), max_abs=1e4, min_dims=1),
    call=lambda t, ex: t.tensor(ex["logits"], ex["targets"]),
    float_keys=("logits", "targets"),
    scale=lambda ex: _stable_scale(ex),
)
register_device_properties(
    FOCAL,
    strategy=pairs(dtypes=(torch.float32,), max_abs=1e4, min_dims=1, focal=True),
    call=lambda t, ex: t.tensor(ex["logits"], ex["targets"], **_focal_kwargs(ex)),
    float_keys=("logits", "targets"),
    scale=lambda ex: _stable_scale(ex, ex["gamma"]),
)
register_device_properties(
    WEIGHTED,
    strategy=weighted_inputs(),
    call=lambda t, ex: _wcall(t, ex),
    float_keys=("logits", "targets", "weights"),
    scale=lambda ex: _stable_scale(ex, ex["gamma"]) * (1 + np.abs(_np(ex["weights"])))[..., None],
)
