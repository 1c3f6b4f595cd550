"""Specs of the regression family: ``smooth_l1``, ``weighted_smooth_l1``, ``l1``, ``mse``.

Seeds 000 (OpenPCDet ``WeightedSmoothL1Loss``) and 002 (torch L1 / MSE / SmoothL1).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from conformance import checks as ck
from conformance import strategies as hh
from conformance.spec import Category, Oracle, Spec, register
from conformance.specs._common import check_not_modified, register_device_properties
from conformance.targets import Target
from impls import regression as ref
from oracles import numpy_regression as npo

SL1 = register(
    Spec(
        id="smooth_l1",
        family="regression",
        signature="f(input: Tensor[*], target: Tensor[*], *, beta: float = 1.0) -> Tensor[*]",
        summary="Elementwise smooth L1: 0.5 d^2 / beta for |d| < beta, else |d| - beta/2 (d = input - target); "
        "beta < 1e-5 is plain L1.",
        reference=ref.smooth_l1,
        oracles=(
            Oracle("numpy", "numpy", "oracles.numpy_regression.smooth_l1"),
            Oracle(
                "keras",
                "keras",
                "keras.losses.Huber(delta=beta) / beta (oracles.tf_regression.huber)",
                domain="beta >= 1e-5 (Huber with delta -> 0 is 0, not L1), float32 compute",
                requires=("tensorflow",),
            ),
            Oracle("torch", "torch", "torch.nn.functional.smooth_l1_loss(reduction='none')",
                   domain="beta == 0 or beta >= 1e-5 (torch keeps the quadratic part for tiny beta)"),
        ),
    )
)
WSL1 = register(
    Spec(
        id="weighted_smooth_l1",
        family="regression",
        signature="f(input: Tensor[B, A, K], target: Tensor[B, A, K], weights: Tensor[B, A] | None = None, *, "
        "beta: float = 1/9, code_weights: Tensor[K] | None = None) -> Tensor[B, A, K]",
        summary="OpenPCDet WeightedSmoothL1Loss: NaN targets give zero loss and zero gradient, code weights scale "
        "the difference, anchor weights scale the loss.",
        reference=ref.weighted_smooth_l1,
        oracles=(Oracle("numpy", "numpy", "oracles.numpy_regression.weighted_smooth_l1 (per-element loop)"),),
    )
)
L1 = register(
    Spec(
        id="l1",
        family="regression",
        signature="f(input: Tensor[*], target: Tensor[*]) -> Tensor[*]",
        summary="Elementwise |input - target|.",
        reference=ref.l1,
        oracles=(Oracle("numpy", "numpy", "oracles.numpy_regression.l1"),),
    )
)
MSE = register(
    Spec(
        id="mse",
        family="regression",
        signature="f(input: Tensor[*], target: Tensor[*]) -> Tensor[*]",
        summary="Elementwise (input - target)^2.",
        reference=ref.mse,
        oracles=(Oracle("numpy", "numpy", "oracles.numpy_regression.mse"),),
    )
)

# ---------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------

values = st.one_of(
    st.floats(-10, 10, allow_nan=False, allow_subnormal=True, width=32),
    st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False, width=32),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 1.0 / 9.0, 0.5]),
)
betas = st.one_of(
    st.sampled_from([0.0, 1e-6, 1e-5, 1.0 / 9.0, 0.5, 1.0, 3.0]),
    st.floats(0.0, 5.0, allow_nan=False, allow_subnormal=False),
)


small_values = st.floats(-100, 100, allow_nan=False, allow_subnormal=False, width=32)


@st.composite
def pairs(draw: st.DrawFn, *, beta: bool = False, dtypes: tuple[torch.dtype, ...] = hh.FLOAT_DTYPES,
          min_dims: int = 0, small: bool = False) -> dict[str, Any]:
    dtype = draw(hh.float_dtypes(dtypes=dtypes))
    shape = draw(hh.shapes(min_dims=min_dims, max_dims=3, max_side=5))
    el = small_values if small else values
    ex: dict[str, Any] = {
        "input": draw(hh.tensors(shape=shape, dtype=dtype, elements=el)),
        "target": draw(hh.tensors(shape=shape, dtype=dtype, elements=el)),
    }
    if beta:
        ex["beta"] = draw(betas)
    return ex


@st.composite
def mismatched(draw: st.DrawFn, *, beta: bool = False) -> dict[str, Any]:
    dtype = draw(hh.float_dtypes())
    n, k = draw(st.integers(1, 4)), draw(st.integers(2, 4))
    ex: dict[str, Any] = {
        "input": draw(hh.tensors(shape=(n, k), dtype=dtype, elements=values)),
        "target": draw(hh.tensors(shape=(n, 1), dtype=dtype, elements=values)),
    }
    if beta:
        ex["beta"] = 1.0
    return ex


@st.composite
def weighted_inputs(draw: st.DrawFn, *, small: bool = False) -> dict[str, Any]:
    dtype = draw(hh.float_dtypes())
    b, a, k = draw(st.integers(0, 3)), draw(st.integers(0, 4)), draw(st.integers(1, 7))
    el = small_values if small else values
    x = draw(hh.tensors(shape=(b, a, k), dtype=dtype, elements=el))
    y = draw(hh.tensors(shape=(b, a, k), dtype=dtype, elements=st.one_of(el, st.just(float("nan")))))
    w = draw(st.none() | hh.tensors(shape=(b, a), dtype=dtype, elements=st.floats(0, 4, allow_nan=False, allow_subnormal=False, width=32)))
    cw = draw(st.none() | hh.tensors(shape=(k,), dtype=dtype, elements=st.floats(0, 3, allow_nan=False, allow_subnormal=False, width=32)))
    return {"input": x, "target": y, "weights": w, "beta": draw(betas), "code_weights": cw}


def _np(t: torch.Tensor) -> np.ndarray:
    return ck.f64(t)


def _scale(ex: dict[str, Any]) -> np.ndarray:
    # d = input - target is formed in the input dtype: its rounding is relative to the operands.
    return np.abs(_np(ex["input"])) + np.abs(_np(ex["target"]))


def _sl1(target: Target, ex: dict[str, Any], **over: Any) -> torch.Tensor:
    kw = {"beta": ex["beta"], **over}
    return target.tensor(ex["input"], ex["target"], **kw)


# ---------------------------------------------------------------------------
# smooth_l1
# ---------------------------------------------------------------------------


@SL1.property(
    Category.ORACLE,
    strategy=pairs(beta=True),
    # 0 < beta < 1e-5 is L1 (OpenPCDet's fallback): d = 1 gives 1, not 1 - beta / 2.
    examples=({"input": torch.tensor([1.0, -2.0, 0.0], dtype=torch.float64), "target": torch.zeros(3, dtype=torch.float64), "beta": 1e-6},),
)
def agrees_with_numpy(target: Target, ex: dict[str, Any]) -> None:
    """f(x, y; beta) equals the float64 closed form (beta < 1e-5 is |x - y|)."""
    want = npo.smooth_l1(_np(ex["input"]), _np(ex["target"]), ex["beta"])
    x = ex["input"]
    ck.assert_close(_sl1(target, ex), want, spec=SL1.id, key="numpy", dtype=x.dtype, scale=_scale(ex), inputs=ex)


@SL1.property(Category.ORACLE, strategy=pairs(beta=True))
def agrees_with_torch(target: Target, ex: dict[str, Any]) -> None:
    """f(x, y; beta) equals torch.nn.functional.smooth_l1_loss(x, y, beta=beta, reduction='none') where beta = 0 or >= 1e-5."""
    x, y, beta = ex["input"], ex["target"], ex["beta"]
    if 0 < beta < 1e-5:
        beta = 0.0  # outside torch's domain for this spec: compare at the L1 limit both agree on
        ex = {**ex, "beta": beta}
    want = torch.nn.functional.smooth_l1_loss(x.double(), y.double(), beta=beta, reduction="none")
    ck.assert_close(_sl1(target, ex), _np(want), spec=SL1.id, key="torch", dtype=x.dtype, scale=_scale(ex), inputs=ex)


@SL1.property(Category.ORACLE, strategy=pairs(beta=True), requires=("tensorflow",), examples_factor=0.5)
def agrees_with_keras_huber(target: Target, ex: dict[str, Any]) -> None:
    """beta * f(x, y; beta) equals keras.losses.Huber(delta=beta)(y, x) elementwise, for beta >= 1e-5."""
    from oracles import tf as tfo

    beta = max(ex["beta"], 1e-3)
    x, y = ex["input"], ex["target"]
    k = tfo.keras()
    loss = k.losses.Huber(delta=beta, reduction=None)
    xs, ys = _np(x).reshape(-1, 1).astype(np.float32), _np(y).reshape(-1, 1).astype(np.float32)
    want = (np.asarray(loss(ys, xs), dtype=np.float64) / beta).reshape(x.shape) if xs.size else np.zeros(x.shape)
    ck.assert_close(_sl1(target, ex, beta=beta), want, spec=SL1.id, key="keras", dtype=x.dtype, scale=_scale(ex) / beta, inputs=ex)


@SL1.property(Category.EQUIVALENCE, strategy=pairs(beta=True))
def between_l1_minus_half_beta_and_l1(target: Target, ex: dict[str, Any]) -> None:
    """|d| - beta/2 <= f <= |d| (and f >= 0)."""
    out = _sl1(target, ex)
    d = np.abs(_np(ex["input"]) - _np(ex["target"]))
    f = ck.f64(out)
    tol = ck.tolerance(SL1.id, "self", ck.judged_dtype(ex["input"].dtype, out.dtype))
    slack = tol.atol + tol.rtol * (d + _scale(ex))
    lo = np.maximum(d - ex["beta"] / 2, 0.0)
    bad = (f < lo - slack) | (f > d + slack)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise AssertionError(
            f"f.flat[{i}]={f.flat[i]!r}, but should lie in [{lo.flat[i]!r}, {d.flat[i]!r}] (|d|={d.flat[i]!r}, beta={ex['beta']!r})"
        )


@st.composite
def _at_beta(draw: st.DrawFn) -> dict[str, Any]:
    beta = draw(st.sampled_from([1.0 / 9.0, 0.5, 1.0, 3.0]) | st.floats(1e-3, 5.0, allow_nan=False))
    sign = draw(st.sampled_from([1.0, -1.0]))
    y = draw(st.floats(-5, 5, allow_nan=False))
    return {"beta": beta, "sign": sign, "y": y}


@SL1.property(Category.EQUIVALENCE, strategy=_at_beta())
def continuous_at_beta(target: Target, ex: dict[str, Any]) -> None:
    """Value and first derivative are continuous at |d| = beta: f -> beta/2 and f' -> +-1 from both sides."""
    beta, s, y = ex["beta"], ex["sign"], ex["y"]
    eps = 1e-7
    d = torch.tensor([s * beta * (1 - eps), s * beta * (1 + eps)], dtype=torch.float64)
    x = (d + y).requires_grad_(True)
    yt = torch.full_like(d, y)
    out = target.tensor(x, yt, beta=beta)
    v = ck.f64(out)
    if abs(v[0] - v[1]) > 1e-5 * max(beta, 1.0) or abs(v[0] - beta / 2) > 1e-5 * max(beta, 1.0):
        raise AssertionError(f"f just inside / outside |d| = beta={beta!r}: {v[0]!r} / {v[1]!r}, but both should be ~beta/2={beta / 2!r}")
    if target.capabilities.framework != "torch":
        return  # the value half of the claim is all a non-autograd library can show
    gv = ck.f64(ck.input_grad(out, x))
    if abs(gv[0] - gv[1]) > 1e-5 or abs(abs(gv[1]) - 1.0) > 1e-5:
        raise AssertionError(f"f' just inside / outside |d| = beta={beta!r}: {gv[0]!r} / {gv[1]!r}, but both should be ~{s:+.0f}")


@SL1.property(Category.GRADIENT, strategy=pairs(beta=True))
def gradient_matches_analytic(target: Target, ex: dict[str, Any]) -> None:
    """d f / dx == clip((x - y) / beta, -1, 1) (sign(x - y) for beta < 1e-5), so |f'| <= 1."""
    x = ex["input"].clone().requires_grad_(True)
    out = target.tensor(x, ex["target"], beta=ex["beta"])
    g = ck.input_grad(out, x)
    want = npo.smooth_l1_grad(_np(ex["input"]), _np(ex["target"]), ex["beta"])
    b = max(ex["beta"], 1e-5)
    ck.assert_grad_close(g, want, spec=SL1.id, key="analytic", dtype=ck.judged_dtype(x.dtype, out.dtype), scale=_scale(ex) / b, inputs=ex)


@SL1.property(Category.GRADIENT, strategy=pairs(beta=True))
def gradient_bounded_by_one(target: Target, ex: dict[str, Any]) -> None:
    """|d f / dx| <= 1 everywhere (the point of smooth L1 over L2), and finite."""
    x = ex["input"].clone().requires_grad_(True)
    g = ck.f64(ck.input_grad(target.tensor(x, ex["target"], beta=ex["beta"]), x))
    if not np.all(np.isfinite(g)):
        raise AssertionError(f"gradient has non-finite values: {g[~np.isfinite(g)][:3]!r}")
    if (np.abs(g) > 1 + 1e-6).any():
        i = int(np.argmax(np.abs(g)))
        raise AssertionError(f"|grad|.flat[{i}]={abs(g.flat[i])!r}, but should be <= 1 (beta={ex['beta']!r})")


@SL1.property(Category.INVARIANCE, strategy=pairs(beta=True))
def symmetric_in_sign_of_difference(target: Target, ex: dict[str, Any]) -> None:
    """f(x, y) == f(y, x) == f(-x, -y): only |x - y| matters."""
    x, y, b = ex["input"], ex["target"], ex["beta"]
    a = target.tensor(x, y, beta=b)
    for what, other in (("f(y, x)", target.tensor(y, x, beta=b)), ("f(-x, -y)", target.tensor(-x, -y, beta=b))):
        ck.assert_close(other, ck.f64(a), spec=SL1.id, key="self", dtype=x.dtype, what=what, scale=_scale(ex), inputs=ex)


@SL1.property(Category.EQUIVALENCE, strategy=pairs())
def small_beta_is_l1(target: Target, ex: dict[str, Any]) -> None:
    """beta = 0 and beta < 1e-5 give |x - y| exactly (no 0/0, no quadratic sliver)."""
    x, y = ex["input"], ex["target"]
    want = np.abs(_np(x) - _np(y))
    for beta in (0.0, 1e-6, 9.9e-6):
        ck.assert_close(target.tensor(x, y, beta=beta), want, spec=SL1.id, key="numpy", dtype=x.dtype,
                        scale=_scale(ex), what=f"f(beta={beta})", inputs=ex)


@SL1.property(Category.ROBUSTNESS, strategy=pairs(beta=True))
def output_dtype_and_shape(target: Target, ex: dict[str, Any]) -> None:
    """out.shape == input.shape and out.dtype == input.dtype, 0-d and empty included."""
    x = ex["input"]
    ck.assert_shape_dtype(target(x, ex["target"], beta=ex["beta"]), shape=x.shape, dtype=x.dtype)


@SL1.property(Category.ROBUSTNESS, strategy=pairs(beta=True))
def inputs_not_modified(target: Target, ex: dict[str, Any]) -> None:
    """The call leaves input and target unchanged (values and version counters)."""
    check_not_modified(target, [ex["input"], ex["target"]], {"beta": ex["beta"]}, ["input", "target"])


@SL1.property(Category.ROBUSTNESS, strategy=mismatched(beta=True))
def rejects_shape_mismatch(target: Target, ex: dict[str, Any]) -> None:
    """target.shape != input.shape raises (no silent broadcasting of (N, 1) targets over (N, K))."""
    ck.assert_raises(lambda: target(ex["input"], ex["target"], beta=1.0),
                     what=f"input {tuple(ex['input'].shape)} with target {tuple(ex['target'].shape)}")


# |values| <= 100 keep float16 inputs (max 65504) and their differences finite.
register_device_properties(
    SL1,
    strategy=pairs(beta=True, dtypes=(torch.float32,), min_dims=1, small=True),
    call=lambda t, ex: t.tensor(ex["input"], ex["target"], beta=ex["beta"]),
    float_keys=("input", "target"),
    scale=lambda ex: _scale(ex) / max(ex["beta"], 1e-5) + 1.0,
)

# ---------------------------------------------------------------------------
# weighted_smooth_l1
# ---------------------------------------------------------------------------


def _wcall(target: Target, ex: dict[str, Any], **over: Any) -> torch.Tensor:
    kw = {"weights": ex["weights"], "beta": ex["beta"], "code_weights": ex["code_weights"], **over}
    w = kw.pop("weights")
    return target.tensor(ex["input"], ex["target"], w, **kw)


def _wscale(ex: dict[str, Any]) -> np.ndarray:
    s = np.nan_to_num(_scale(ex), nan=0.0)
    cw = 1.0 if ex["code_weights"] is None else _np(ex["code_weights"])
    w = 1.0 if ex["weights"] is None else _np(ex["weights"])[..., None]
    return s * (1 + np.abs(cw)) * (1 + np.abs(w)) / max(ex["beta"], 1e-5)


@WSL1.property(Category.ORACLE, strategy=weighted_inputs(), name="agrees_with_numpy")
def w_agrees_with_numpy(target: Target, ex: dict[str, Any]) -> None:
    """out == w[b, a] * SL1(cw[k] * (x - y); beta) per element, 0 where y is NaN (float64 loop oracle)."""
    want = npo.weighted_smooth_l1(
        _np(ex["input"]), _np(ex["target"]), None if ex["weights"] is None else _np(ex["weights"]), ex["beta"],
        None if ex["code_weights"] is None else _np(ex["code_weights"]),
    )
    ck.assert_close(_wcall(target, ex), want, spec=WSL1.id, key="numpy", dtype=ex["input"].dtype, scale=_wscale(ex), inputs=ex)


@WSL1.property(Category.ROBUSTNESS, strategy=weighted_inputs())
def nan_targets_give_zero_loss_and_gradient(target: Target, ex: dict[str, Any]) -> None:
    """Where y is NaN: loss == 0 and d loss / dx == 0; everywhere: loss and gradient finite."""
    x = ex["input"].clone().requires_grad_(True)
    w = ex["weights"]
    out = target.tensor(x, ex["target"], w, beta=ex["beta"], code_weights=ex["code_weights"])
    g = ck.input_grad(out, x)
    nan = torch.isnan(ex["target"])
    o, gg = ck.f64(out), ck.f64(g)
    ck.assert_finite(out, what="loss", inputs=ex)
    ck.assert_finite(g, what="grad", inputs=ex)
    m = nan.numpy()
    if (o[m] != 0).any() or (gg[m] != 0).any():
        raise AssertionError(f"at NaN targets loss={o[m][:4]!r}, grad={gg[m][:4]!r}, but both should be 0")


@st.composite
def _two_weights(draw: st.DrawFn) -> dict[str, Any]:
    ex = draw(weighted_inputs())
    x = ex["input"]
    el = st.floats(0, 4, allow_nan=False, allow_subnormal=False, width=32)
    ex["weights"] = draw(hh.tensors(shape=tuple(x.shape[:2]), dtype=x.dtype, elements=el))
    ex["weights2"] = draw(hh.tensors(shape=tuple(x.shape[:2]), dtype=x.dtype, elements=el))
    return ex


@WSL1.property(Category.INVARIANCE, strategy=_two_weights())
def linear_in_anchor_weights(target: Target, ex: dict[str, Any]) -> None:
    """f(w1 + w2) == f(w1) + f(w2), and f(w) == f(1) * w[..., None]."""
    w1, w2 = ex["weights"], ex["weights2"]
    f1, f2 = ck.f64(_wcall(target, ex, weights=w1)), ck.f64(_wcall(target, ex, weights=w2))
    dt = ex["input"].dtype
    ck.assert_close(_wcall(target, ex, weights=w1 + w2), f1 + f2, spec=WSL1.id, key="self", dtype=dt,
                    scale=np.abs(f1) + np.abs(f2) + _wscale(ex), what="f(w1 + w2)")
    base = ck.f64(_wcall(target, ex, weights=torch.ones_like(w1)))
    ck.assert_close(_wcall(target, ex, weights=w1), base * ck.f64(w1)[..., None], spec=WSL1.id, key="self", dtype=dt,
                    scale=_wscale(ex), what="f(w)")


@WSL1.property(Category.ROBUSTNESS, strategy=weighted_inputs(), name="output_dtype_and_shape")
def w_output_dtype_and_shape(target: Target, ex: dict[str, Any]) -> None:
    """out.shape == input.shape (B, A, K) and out.dtype == input.dtype."""
    x = ex["input"]
    ck.assert_shape_dtype(_wcall(target, ex), shape=x.shape, dtype=x.dtype)


@WSL1.property(Category.ROBUSTNESS, strategy=weighted_inputs(), name="inputs_not_modified")
def w_inputs_not_modified(target: Target, ex: dict[str, Any]) -> None:
    """The call leaves input, target (NaNs included) and weights unchanged."""
    args = [ex["input"], ex["target"], ex["weights"]]
    check_not_modified(target, args, {"beta": ex["beta"], "code_weights": ex["code_weights"]}, ["input", "target", "weights"])


register_device_properties(
    WSL1,
    strategy=weighted_inputs(small=True),
    call=lambda t, ex: _wcall(t, {**ex, "target": torch.nan_to_num(ex["target"])}),
    float_keys=("input", "target", "weights", "code_weights"),
    scale=lambda ex: _wscale(ex) + 1.0,
)

# ---------------------------------------------------------------------------
# l1 and mse
# ---------------------------------------------------------------------------


def _basic(spec: Spec, oracle: Any, grad: Any) -> None:
    @spec.property(Category.ORACLE, strategy=pairs(), name="agrees_with_numpy")
    def agrees(target: Target, ex: dict[str, Any]) -> None:
        """f(x, y) equals the float64 closed form elementwise."""
        x = ex["input"]
        scale = _scale(ex) * (1 + (np.abs(_np(x) - _np(ex["target"])) if spec is MSE else 0))
        ck.assert_close(target.tensor(x, ex["target"]), oracle(_np(x), _np(ex["target"])), spec=spec.id, key="numpy",
                        dtype=x.dtype, scale=scale, inputs=ex)

    @spec.property(Category.GRADIENT, strategy=pairs(), name="gradient_matches_analytic")
    def gradient(target: Target, ex: dict[str, Any]) -> None:
        """d f / dx equals the analytic derivative (sign(x - y) for L1, 2 (x - y) for MSE)."""
        x = ex["input"].clone().requires_grad_(True)
        out = target.tensor(x, ex["target"])
        g = ck.input_grad(out, x)
        ck.assert_grad_close(g, grad(_np(ex["input"]), _np(ex["target"])), spec=spec.id, key="analytic",
                             dtype=ck.judged_dtype(x.dtype, out.dtype), scale=2 * _scale(ex), inputs=ex)

    @spec.property(Category.INVARIANCE, strategy=pairs(), name="symmetric_in_sign_of_difference")
    def symmetric(target: Target, ex: dict[str, Any]) -> None:
        """f(x, y) == f(y, x)."""
        x, y = ex["input"], ex["target"]
        ck.assert_close(target.tensor(y, x), ck.f64(target.tensor(x, y)), spec=spec.id, key="self", dtype=x.dtype,
                        scale=_scale(ex) * (1 + _scale(ex)), what="f(y, x)", inputs=ex)

    @spec.property(Category.ROBUSTNESS, strategy=pairs(), name="output_dtype_and_shape")
    def shape(target: Target, ex: dict[str, Any]) -> None:
        """out.shape == input.shape and out.dtype == input.dtype (elementwise, no reduction)."""
        x = ex["input"]
        ck.assert_shape_dtype(target(x, ex["target"]), shape=x.shape, dtype=x.dtype)


_basic(L1, npo.l1, lambda x, y: np.sign(x - y))
_basic(MSE, npo.mse, lambda x, y: 2 * (x - y))
