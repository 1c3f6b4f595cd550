"""Specs of the softmax family: ``softmax_cross_entropy``, ``weighted_cross_entropy``,
``softmax_focal``, ``kl_div``. Seeds 000 (OpenPCDet) and 002 (BEV losses)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from conformance import checks as ck
from conformance import strategies as hh
from conformance.spec import Category, Oracle, Spec, Variant, register
from conformance.specs._common import check_not_modified, register_device_properties
from conformance.targets import Target
from impls import classification as ref
from oracles import numpy_classification as npo

CE = register(
    Spec(
        id="softmax_cross_entropy",
        family="softmax",
        signature="f(logits: Tensor[N, C, *], target: Tensor[N, *] (int) | Tensor[N, C, *] (probabilities), *, "
        "weight: Tensor[C] | None = None, ignore_index: int = -100, label_smoothing: float = 0.0, "
        "reduction: str = 'mean') -> Tensor",
        summary="torch.nn.functional.cross_entropy semantics: the weighted mean divides by the sum of the targets' "
        "weights, ignored entries leave numerator and denominator, label smoothing mixes in the uniform "
        "distribution (weighted), probability targets' mean divides by N; an all-ignored mean is nan.",
        reference=ref.softmax_cross_entropy,
        oracles=(
            Oracle("numpy", "numpy", "oracles.numpy_classification.softmax_cross_entropy (per-sample loop)"),
            Oracle("torch", "torch", "torch.nn.functional.cross_entropy in float64"),
            Oracle("tensorflow", "tensorflow", "tf.nn.(sparse_)softmax_cross_entropy_with_logits",
                   domain="no weights, no smoothing, no ignored entries, reduction none", requires=("tensorflow",)),
        ),
    )
)
WCE = register(
    Spec(
        id="weighted_cross_entropy",
        family="softmax",
        signature="f(logits: Tensor[B, A, C], target: Tensor[B, A, C] (one-hot), weights: Tensor[B, A]) -> Tensor[B, A]",
        summary="OpenPCDet WeightedCrossEntropyLoss: CE against argmax of the one-hot target, times anchor weights.",
        reference=ref.weighted_cross_entropy,
        oracles=(Oracle("numpy", "numpy", "oracles.numpy_classification.weighted_cross_entropy"),),
    )
)
SFOCAL = register(
    Spec(
        id="softmax_focal",
        family="softmax",
        signature="f(logits: Tensor[N, C], target: Tensor[N] (int), *, gamma: float = 2.0, "
        "alpha: Tensor[C] | None = None, reduction: str = 'mean') -> Tensor",
        summary="Per sample alpha[t] (1 - p_t)^gamma CE, p_t the softmax probability of the target class; "
        "then reduced (mean over samples).",
        reference=ref.softmax_focal,
        oracles=(
            Oracle("numpy", "numpy", "oracles.numpy_classification.softmax_focal"),
            Oracle("keras", "keras", "keras.losses.CategoricalFocalCrossentropy(alpha=1, from_logits=True)",
                   domain="alpha=None only (Keras' scalar alpha is not a per-class weight), float32", requires=("tensorflow",)),
        ),
        variants=(
            Variant("seed_softmax_focal", ref.seed_softmax_focal,
                    "seed 002's FocalLoss applies the focal factor to the already-reduced mean CE"),
        ),
    )
)
KL = register(
    Spec(
        id="kl_div",
        family="softmax",
        signature="f(input: Tensor[N, *] (log-probabilities), target: Tensor[N, *], *, reduction: str = 'mean', "
        "log_target: bool = False) -> Tensor",
        summary="torch.nn.functional.kl_div semantics: pointwise t (log t - x) with 0 log 0 = 0; 'mean' over "
        "elements, 'batchmean' over the batch (the KL).",
        reference=ref.kl_div,
        oracles=(Oracle("numpy", "numpy", "oracles.numpy_classification.kl_div"),),
    )
)

# ---------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------

small_logit_el = st.floats(-30, 30, allow_nan=False, allow_subnormal=False, width=32)
logit_el = st.one_of(
    st.floats(-20, 20, allow_nan=False, allow_subnormal=False, width=32),
    st.floats(-1e4, 1e4, allow_nan=False, allow_subnormal=False, width=32),
    st.sampled_from([0.0, 50.0, -50.0, 100.0]),
)


@st.composite
def ce_inputs(draw: st.DrawFn, *, allow_ignore: bool = True, prob: bool | None = None, extra_dims: bool = True,
              plain: bool = False, dtypes: tuple[torch.dtype, ...] = hh.FLOAT_DTYPES, small: bool = False) -> dict[str, Any]:
    dtype = draw(hh.float_dtypes(dtypes=dtypes))
    n, c = draw(st.integers(1, 5)), draw(st.integers(2, 5))
    extra = tuple(draw(st.lists(st.integers(1, 3), max_size=1))) if extra_dims else ()
    x = draw(hh.tensors(shape=(n, c, *extra), dtype=dtype, elements=small_logit_el if small else logit_el))
    use_prob = draw(st.booleans()) if prob is None else prob
    if use_prob:
        raw = draw(hh.tensors(shape=(n, c, *extra), dtype=torch.float64, elements=st.floats(0, 1, allow_nan=False)))
        raw[:, 0] += 1e-3
        t = (raw / raw.sum(1, keepdim=True)).to(dtype)
    else:
        hi = c - 1
        el = st.integers(0, hi) | (st.just(-100) if allow_ignore and not plain else st.integers(0, hi))
        t = torch.tensor(draw(st.lists(el, min_size=n * int(np.prod(extra or (1,))), max_size=n * int(np.prod(extra or (1,)))))).reshape(n, *extra)
    ex: dict[str, Any] = {"logits": x, "target": t}
    if plain:
        ex.update(weight=None, label_smoothing=0.0, reduction="none")
    else:
        ex["weight"] = draw(st.none() | hh.tensors(shape=(c,), dtype=dtype, elements=st.floats(0.125, 3, allow_nan=False, width=32)))
        ex["label_smoothing"] = draw(st.sampled_from([0.0, 0.1, 0.5]) | st.floats(0, 1, allow_nan=False))
        ex["reduction"] = draw(st.sampled_from(["none", "mean", "sum"]))
    return ex


def _ce_kwargs(ex: dict[str, Any]) -> dict[str, Any]:
    return {"weight": ex["weight"], "label_smoothing": ex["label_smoothing"], "reduction": ex["reduction"]}


def _ce_scale(ex: dict[str, Any], out_numel: int) -> float:
    # log_softmax loses ulp(max |x|) absolutely; sums over C classes and N samples add up.
    x = ck.f64(ex["logits"])
    w = 1.0 if ex.get("weight") is None else float(ck.f64(ex["weight"]).max())
    return float(np.abs(x).max() if x.size else 0.0) * x.shape[1] * w * 4


def _np(t: torch.Tensor) -> np.ndarray:
    return ck.f64(t)


def _np_target(t: torch.Tensor) -> np.ndarray:
    return ck.f64(t) if t.is_floating_point() else t.numpy()


# ---------------------------------------------------------------------------
# softmax_cross_entropy
# ---------------------------------------------------------------------------


@CE.property(Category.ORACLE, strategy=ce_inputs())
def agrees_with_numpy(target: Target, ex: dict[str, Any]) -> None:
    """f equals a per-sample float64 loop of torch's formula (weights, ignore_index, smoothing, reductions, both target kinds)."""
    out = target.tensor(ex["logits"], ex["target"], **_ce_kwargs(ex))
    want = npo.softmax_cross_entropy(_np(ex["logits"]), _np_target(ex["target"]),
                                     None if ex["weight"] is None else _np(ex["weight"]), -100, ex["label_smoothing"], ex["reduction"])
    ck.assert_close(out, want, spec=CE.id, key="numpy", dtype=ex["logits"].dtype, scale=_ce_scale(ex, out.numel()), inputs=ex)


@CE.property(Category.ORACLE, strategy=ce_inputs())
def agrees_with_torch(target: Target, ex: dict[str, Any]) -> None:
    """f equals torch.nn.functional.cross_entropy evaluated in float64 on the same arguments."""
    x = ex["logits"]
    w = None if ex["weight"] is None else ex["weight"].double()
    t = ex["target"].double() if ex["target"].is_floating_point() else ex["target"]
    want = torch.nn.functional.cross_entropy(x.double(), t, weight=w, label_smoothing=ex["label_smoothing"], reduction=ex["reduction"])
    out = target.tensor(x, ex["target"], **_ce_kwargs(ex))
    ck.assert_close(out, _np(want), spec=CE.id, key="torch", dtype=x.dtype, scale=_ce_scale(ex, out.numel()), inputs=ex)


@CE.property(Category.ORACLE, strategy=ce_inputs(plain=True, extra_dims=False), requires=("tensorflow",), examples_factor=0.5)
def agrees_with_tensorflow(target: Target, ex: dict[str, Any]) -> None:
    """Per-sample CE equals tf.nn.sparse_softmax_cross_entropy_with_logits (index) / softmax_cross_entropy_with_logits (probabilities)."""
    from oracles import tf as tfo

    t = tfo.tf()
    x = ex["logits"]
    xs = _np(x).astype(hh.NP_DTYPE[x.dtype])
    if ex["target"].is_floating_point():
        want = t.nn.softmax_cross_entropy_with_logits(labels=_np(ex["target"]).astype(xs.dtype), logits=xs).numpy()
    else:
        want = t.nn.sparse_softmax_cross_entropy_with_logits(labels=ex["target"].numpy(), logits=xs).numpy()
    key = "tf32" if x.dtype == torch.float32 else "tensorflow"
    ck.assert_close(target.tensor(x, ex["target"], reduction="none"), np.asarray(want, np.float64), spec=CE.id, key=key,
                    dtype=x.dtype, scale=_ce_scale(ex, 0), inputs=ex)


@st.composite
def _shifted(draw: st.DrawFn) -> dict[str, Any]:
    ex = draw(ce_inputs(extra_dims=False))
    n = ex["logits"].shape[0]
    ex["shift"] = draw(hh.tensors(shape=(n, 1), dtype=ex["logits"].dtype, elements=st.sampled_from([0.0, 1.0, -3.0, 64.0, 1024.0])))
    return ex


@CE.property(Category.INVARIANCE, strategy=_shifted())
def shift_invariant_logits(target: Target, ex: dict[str, Any]) -> None:
    """f(x + c_n) == f(x) for a constant c_n added to every class of sample n (softmax is shift invariant)."""
    x = ex["logits"]
    a = target.tensor(x, ex["target"], **_ce_kwargs(ex))
    b = target.tensor(x + ex["shift"], ex["target"], **_ce_kwargs(ex))
    scale = _ce_scale(ex, 0) + float(np.abs(_np(ex["shift"])).max()) * 8 * x.shape[1]
    ck.assert_close(b, ck.f64(a), spec=CE.id, key="self", dtype=x.dtype, what="f(x + c)", scale=scale, inputs=ex)


@CE.property(Category.EQUIVALENCE, strategy=ce_inputs(prob=False, allow_ignore=False))
def one_hot_probability_target_equals_index_target(target: Target, ex: dict[str, Any]) -> None:
    """f(x, one_hot(t)) == f(x, t) for reduction none and sum (with weights and smoothing)."""
    x, t = ex["logits"], ex["target"]
    oh = torch.nn.functional.one_hot(t, x.shape[1]).movedim(-1, 1).to(x.dtype)
    red = "sum" if ex["reduction"] == "mean" else ex["reduction"]
    kw = {**_ce_kwargs(ex), "reduction": red}
    a = target.tensor(x, t, **kw)
    b = target.tensor(x, oh, **kw)
    ck.assert_close(b, ck.f64(a), spec=CE.id, key="self", dtype=x.dtype, what="f(x, one_hot(t))", scale=_ce_scale(ex, 0), inputs=ex)


@CE.property(Category.EQUIVALENCE, strategy=ce_inputs(prob=False, allow_ignore=False, extra_dims=False))
def label_smoothing_formula(target: Target, ex: dict[str, Any]) -> None:
    """Unweighted, per sample: f(x, t; eps) == (1 - eps) f(x, t; 0) + eps * mean_c(-log p_c)."""
    x, t, eps = ex["logits"], ex["target"], ex["label_smoothing"]
    full = target.tensor(x, t, label_smoothing=eps, reduction="none")
    plain = ck.f64(target.tensor(x, t, label_smoothing=0.0, reduction="none"))
    uniform = -npo.log_softmax(_np(x), 1).mean(1)
    ck.assert_close(full, (1 - eps) * plain + eps * uniform, spec=CE.id, key="self", dtype=x.dtype, scale=_ce_scale(ex, 0), inputs=ex)


@CE.property(Category.GRADIENT, strategy=ce_inputs(allow_ignore=False, extra_dims=False))
def gradient_is_softmax_minus_target(target: Target, ex: dict[str, Any]) -> None:
    """Unweighted, unsmoothed, summed: d f / dx == softmax(x) * sum_c q_c - q (q = one_hot(t) or the probabilities)."""
    x = ex["logits"].clone().requires_grad_(True)
    t = ex["target"]
    out = target.tensor(x, t, reduction="sum")
    g = ck.input_grad(out, x)
    q = _np(t) if t.is_floating_point() else np.eye(x.shape[1])[t.numpy()]
    p = np.exp(npo.log_softmax(_np(ex["logits"]), 1))
    want = p * q.sum(1, keepdims=True) - q
    ck.assert_grad_close(g, want, spec=CE.id, key="analytic", dtype=ck.judged_dtype(x.dtype, out.dtype), inputs=ex)


@CE.property(Category.REDUCTION, strategy=ce_inputs(prob=False))
def all_ignored_batch(target: Target, ex: dict[str, Any]) -> None:
    """Every target == ignore_index: 'none' gives zeros, 'sum' gives 0, 'mean' gives nan (0/0, torch semantics)."""
    x = ex["logits"]
    t = torch.full_like(ex["target"], -100)
    kw = {"weight": ex["weight"], "label_smoothing": ex["label_smoothing"]}
    none = ck.f64(target.tensor(x, t, reduction="none", **kw))
    total = ck.f64(target.tensor(x, t, reduction="sum", **kw))
    mean = ck.f64(target.tensor(x, t, reduction="mean", **kw))
    if (none != 0).any() or total != 0:
        raise AssertionError(f"all ignored: none={none.ravel()[:4]!r}, sum={total!r}, but both should be 0")
    if not np.isnan(mean):
        raise AssertionError(f"all ignored: mean={mean!r}, but should be nan (0/0) as torch.nn.functional.cross_entropy gives")


@CE.property(Category.REDUCTION, strategy=ce_inputs(prob=False))
def ignored_entries_do_not_matter(target: Target, ex: dict[str, Any]) -> None:
    """Changing the logits at ignored entries leaves every reduction unchanged."""
    x, t = ex["logits"], ex["target"]
    ign = (t == -100).unsqueeze(1).expand_as(x)
    y = torch.where(ign, torch.full_like(x, 77.0), x)
    a = target.tensor(x, t, **_ce_kwargs(ex))
    b = target.tensor(y, t, **_ce_kwargs(ex))
    ck.assert_close(b, ck.f64(a), spec=CE.id, key="self", dtype=x.dtype, what="f(x changed at ignored entries)", scale=_ce_scale(ex, 0))


@CE.property(Category.ROBUSTNESS, strategy=ce_inputs())
def output_dtype_and_shape(target: Target, ex: dict[str, Any]) -> None:
    """'none' returns (N, *) (the target's shape without classes), 'mean'/'sum' a 0-d tensor; dtype of the logits."""
    x = ex["logits"]
    shape = (x.shape[0], *x.shape[2:]) if ex["reduction"] == "none" else ()
    ck.assert_shape_dtype(target(x, ex["target"], **_ce_kwargs(ex)), shape=shape, dtype=x.dtype)


@CE.property(Category.ROBUSTNESS, strategy=ce_inputs())
def inputs_not_modified(target: Target, ex: dict[str, Any]) -> None:
    """The call leaves logits, target and weight unchanged."""
    check_not_modified(target, [ex["logits"], ex["target"]], _ce_kwargs(ex), ["logits", "target"])


register_device_properties(
    CE,
    strategy=ce_inputs(dtypes=(torch.float32,), prob=False, allow_ignore=False, small=True),
    call=lambda t, ex: t.tensor(ex["logits"], ex["target"], **_ce_kwargs(ex)),
    float_keys=("logits", "weight"),
    tensor_keys=("logits", "target", "weight"),
    scale=lambda ex: _ce_scale(ex, 0) * 50,
)

# ---------------------------------------------------------------------------
# weighted_cross_entropy
# ---------------------------------------------------------------------------


@st.composite
def wce_inputs(draw: st.DrawFn) -> dict[str, Any]:
    dtype = draw(hh.float_dtypes())
    b, a, c = draw(st.integers(0, 3)), draw(st.integers(0, 4)), draw(st.integers(2, 5))
    x = draw(hh.tensors(shape=(b, a, c), dtype=dtype, elements=logit_el))
    idx = draw(hh.tensors(shape=(b, a), dtype=torch.float64, elements=st.integers(0, c - 1).map(float))).long()
    z = torch.nn.functional.one_hot(idx, c).to(dtype)
    w = draw(hh.tensors(shape=(b, a), dtype=dtype, elements=st.floats(0, 4, allow_nan=False, allow_subnormal=False, width=32)))
    return {"logits": x, "target": z, "weights": w}


@WCE.property(Category.ORACLE, strategy=wce_inputs(), name="agrees_with_numpy")
def wce_agrees_with_numpy(target: Target, ex: dict[str, Any]) -> None:
    """out[b, a] == -log softmax(x[b, a])[argmax z[b, a]] * w[b, a] (float64 loop)."""
    x = ex["logits"]
    want = npo.weighted_cross_entropy(_np(x), _np(ex["target"]), _np(ex["weights"]))
    ck.assert_close(target.tensor(x, ex["target"], ex["weights"]), want, spec=WCE.id, key="numpy", dtype=x.dtype,
                    scale=_ce_scale(ex, 0) * 4, inputs=ex)


@WCE.property(Category.INVARIANCE, strategy=wce_inputs())
def linear_in_weights(target: Target, ex: dict[str, Any]) -> None:
    """f(x, z, w) == f(x, z, 1) * w."""
    x, z, w = ex["logits"], ex["target"], ex["weights"]
    base = ck.f64(target.tensor(x, z, torch.ones_like(w)))
    ck.assert_close(target.tensor(x, z, w), base * _np(w), spec=WCE.id, key="self", dtype=x.dtype, scale=_ce_scale(ex, 0) * 4)


@WCE.property(Category.ROBUSTNESS, strategy=wce_inputs(), name="output_dtype_and_shape")
def wce_output_dtype_and_shape(target: Target, ex: dict[str, Any]) -> None:
    """out.shape == (B, A) and out.dtype == logits.dtype."""
    x = ex["logits"]
    ck.assert_shape_dtype(target(x, ex["target"], ex["weights"]), shape=x.shape[:2], dtype=x.dtype)


@WCE.property(Category.GRADIENT, strategy=wce_inputs(), name="gradient_is_softmax_minus_target")
def wce_gradient(target: Target, ex: dict[str, Any]) -> None:
    """d sum(f) / dx == w (softmax(x) - one_hot)."""
    x = ex["logits"].clone().requires_grad_(True)
    out = target.tensor(x, ex["target"], ex["weights"])
    g = ck.input_grad(out, x)
    p = np.exp(npo.log_softmax(_np(ex["logits"]), -1)) if x.numel() else np.zeros(x.shape)
    want = (p - _np(ex["target"])) * _np(ex["weights"])[..., None]
    ck.assert_grad_close(g, want, spec=WCE.id, key="analytic", dtype=ck.judged_dtype(x.dtype, out.dtype), inputs=ex)


# ---------------------------------------------------------------------------
# softmax_focal
# ---------------------------------------------------------------------------


@st.composite
def focal_inputs(draw: st.DrawFn, *, alpha: bool = True, dtypes: tuple[torch.dtype, ...] = hh.FLOAT_DTYPES,
                 small: bool = False) -> dict[str, Any]:
    dtype = draw(hh.float_dtypes(dtypes=dtypes))
    n, c = draw(st.integers(0, 5)), draw(st.integers(2, 5))
    x = draw(hh.tensors(shape=(n, c), dtype=dtype, elements=small_logit_el if small else logit_el))
    t = torch.tensor(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)), dtype=torch.int64)
    a = draw(st.none() | hh.tensors(shape=(c,), dtype=dtype, elements=st.floats(0, 1, allow_nan=False, width=32))) if alpha else None
    g = draw(st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0, 5.0]) | st.floats(0, 5, allow_nan=False))
    return {"logits": x, "target": t, "alpha": a, "gamma": g, "reduction": draw(st.sampled_from(["none", "mean", "sum"]))}


def _fkw(ex: dict[str, Any], **over: Any) -> dict[str, Any]:
    return {"gamma": ex["gamma"], "alpha": ex["alpha"], "reduction": ex["reduction"], **over}


@SFOCAL.property(Category.ORACLE, strategy=focal_inputs(), name="agrees_with_numpy")
def sf_agrees_with_numpy(target: Target, ex: dict[str, Any]) -> None:
    """f equals the per-sample float64 formula alpha[t] (1 - p_t)^gamma (-log p_t), reduced."""
    x = ex["logits"]
    want = npo.softmax_focal(_np(x), ex["target"].numpy(), ex["gamma"], None if ex["alpha"] is None else _np(ex["alpha"]), ex["reduction"])
    ck.assert_close(target.tensor(x, ex["target"], **_fkw(ex)), want, spec=SFOCAL.id, key="numpy", dtype=x.dtype,
                    scale=_ce_scale(ex, 0) * (1 + ex["gamma"]), inputs=ex)


@SFOCAL.property(Category.ORACLE, strategy=focal_inputs(alpha=False), requires=("tensorflow",), examples_factor=0.5)
def agrees_with_keras(target: Target, ex: dict[str, Any]) -> None:
    """Per sample, f(alpha=None) equals keras.losses.CategoricalFocalCrossentropy(alpha=1, gamma, from_logits=True)."""
    from oracles import tf as tfo

    x = ex["logits"]
    if x.shape[0] == 0:
        return
    k = tfo.keras()
    loss = k.losses.CategoricalFocalCrossentropy(alpha=1.0, gamma=ex["gamma"], from_logits=True, reduction=None)
    y = np.eye(x.shape[1], dtype=np.float32)[ex["target"].numpy()]
    want = np.asarray(loss(y, _np(x).astype(np.float32)), np.float64)
    # Keras clips probabilities to [1e-7, 1 - 1e-7]: it is not asked where p_t is outside.
    p_t = np.exp(npo.log_softmax(_np(x), 1))[np.arange(x.shape[0]), ex["target"].numpy()]
    trusted = (p_t > 1e-6) & (p_t < 1 - 1e-6)
    ck.assert_close(target.tensor(x, ex["target"], **_fkw(ex, reduction="none")), want, spec=SFOCAL.id, key="keras",
                    dtype=x.dtype, scale=_ce_scale(ex, 0) * (1 + ex["gamma"]), mask=trusted, inputs=ex)


@SFOCAL.property(Category.EQUIVALENCE, strategy=focal_inputs())
def gamma0_is_cross_entropy(target: Target, ex: dict[str, Any]) -> None:
    """f(gamma=0, alpha=None) == per-sample cross-entropy (then reduced)."""
    x, t = ex["logits"], ex["target"]
    want = npo.softmax_cross_entropy(_np(x), t.numpy(), reduction=ex["reduction"]) if x.shape[0] else (
        np.zeros(0) if ex["reduction"] == "none" else (0.0 if ex["reduction"] == "sum" else np.nan))
    ck.assert_close(target.tensor(x, t, **_fkw(ex, gamma=0.0, alpha=None)), want, spec=SFOCAL.id, key="numpy", dtype=x.dtype,
                    scale=_ce_scale(ex, 0), inputs=ex)


@SFOCAL.property(Category.EQUIVALENCE, strategy=focal_inputs(alpha=False))
def never_above_cross_entropy(target: Target, ex: dict[str, Any]) -> None:
    """Without alpha, per sample 0 <= FL <= CE (since 0 <= 1 - p_t <= 1)."""
    x, t = ex["logits"], ex["target"]
    fl_t = target.tensor(x, t, gamma=ex["gamma"], alpha=None, reduction="none")
    fl = ck.f64(fl_t)
    ce = npo.softmax_cross_entropy(_np(x), t.numpy(), reduction="none") if x.shape[0] else np.zeros(0)
    tol = ck.tolerance(SFOCAL.id, "self", ck.judged_dtype(x.dtype, fl_t.dtype))
    slack = tol.atol + tol.rtol * (np.abs(ce) + _ce_scale(ex, 0))
    bad = (fl > ce + slack) | (fl < -slack)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise AssertionError(f"FL[{i}]={fl[i]!r}, but should lie in [0, CE={ce[i]!r}] (gamma={ex['gamma']!r})")


@SFOCAL.property(Category.GRADIENT, strategy=focal_inputs(), name="finite_gradients",
                 examples=tuple({"logits": torch.tensor([[v, 0.0]], dtype=torch.float32), "target": torch.tensor([0]),
                                 "alpha": None, "gamma": g, "reduction": "sum"} for v in (30.0, 100.0, 1e4) for g in (0.25, 0.5)))
def sf_finite_gradients(target: Target, ex: dict[str, Any]) -> None:
    """d f / dx is finite for all finite logits and gamma >= 0 (gamma in (0, 1) where p_t rounds to 1 included)."""
    x = ex["logits"].clone().requires_grad_(True)
    out = target.tensor(x, ex["target"], **_fkw(ex, reduction="sum"))
    ck.assert_finite(ck.input_grad(out, x), what="grad", inputs=ex)


@SFOCAL.property(Category.REDUCTION, strategy=focal_inputs())
def mean_is_mean_of_per_sample(target: Target, ex: dict[str, Any]) -> None:
    """f(reduction='mean') == mean over samples of f(reduction='none'); 'sum' likewise (the factor is per sample)."""
    x, t = ex["logits"], ex["target"]
    if x.shape[0] == 0:
        return
    per = ck.f64(target.tensor(x, t, **_fkw(ex, reduction="none")))
    ck.assert_close(target.tensor(x, t, **_fkw(ex, reduction="mean")), per.mean(), spec=SFOCAL.id, key="reduction",
                    dtype=x.dtype, scale=_ce_scale(ex, 0), what="mean")
    ck.assert_close(target.tensor(x, t, **_fkw(ex, reduction="sum")), per.sum(), spec=SFOCAL.id, key="reduction",
                    dtype=x.dtype, scale=_ce_scale(ex, 0) * x.shape[0], what="sum")


@SFOCAL.property(Category.ROBUSTNESS, strategy=focal_inputs(), name="output_dtype_and_shape")
def sf_output_dtype_and_shape(target: Target, ex: dict[str, Any]) -> None:
    """'none' gives (N,), else 0-d; dtype of the logits."""
    x = ex["logits"]
    shape = (x.shape[0],) if ex["reduction"] == "none" else ()
    ck.assert_shape_dtype(target(x, ex["target"], **_fkw(ex)), shape=shape, dtype=x.dtype)


register_device_properties(
    SFOCAL,
    strategy=focal_inputs(dtypes=(torch.float32,), small=True),
    call=lambda t, ex: t.tensor(ex["logits"], ex["target"], **_fkw(ex)),
    float_keys=("logits", "alpha"),
    tensor_keys=("logits", "target", "alpha"),
    scale=lambda ex: _ce_scale(ex, 0) * 50 * (1 + ex["gamma"]),
)

# ---------------------------------------------------------------------------
# kl_div
# ---------------------------------------------------------------------------


@st.composite
def kl_inputs(draw: st.DrawFn, *, dtypes: tuple[torch.dtype, ...] = hh.FLOAT_DTYPES) -> dict[str, Any]:
    dtype = draw(hh.float_dtypes(dtypes=dtypes))
    n, c = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    q = draw(hh.tensors(shape=(n, c), dtype=torch.float64, elements=st.floats(-30, 30, allow_nan=False)))
    p_raw = draw(hh.tensors(shape=(n, c), dtype=torch.float64, elements=st.one_of(st.just(0.0), st.floats(0, 1, allow_nan=False))))
    p_raw[:, 0] += 1e-3
    p = (p_raw / p_raw.sum(1, keepdim=True)).to(dtype)
    return {"input": torch.log_softmax(q, 1).to(dtype), "target": p, "reduction": draw(st.sampled_from(["none", "mean", "sum", "batchmean"]))}


def _kl_scale(ex: dict[str, Any]) -> float:
    return float(np.abs(_np(ex["input"])).max()) * 4


@KL.property(Category.ORACLE, strategy=kl_inputs(), name="agrees_with_numpy")
def kl_agrees_with_numpy(target: Target, ex: dict[str, Any]) -> None:
    """f equals sum/mean/batchmean of t (log t - x) with 0 log 0 = 0 (float64), zero target probabilities included."""
    x, t = ex["input"], ex["target"]
    want = npo.kl_div(_np(x), _np(t), ex["reduction"])
    ck.assert_close(target.tensor(x, t, reduction=ex["reduction"]), want, spec=KL.id, key="numpy", dtype=x.dtype,
                    scale=_kl_scale(ex), inputs=ex)


@KL.property(
    Category.EQUIVALENCE,
    strategy=kl_inputs(),
    # A target with zero entries: their term is 0 by convention (0 log 0 = 0),
    # which clipping to an epsilon breaks.
    examples=(
        {
            "input": torch.zeros(4, 8),
            "target": torch.cat([torch.eye(3, 8), torch.tensor([[0.0, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0]])]),
            "reduction": "sum",
        },
    ),
)
def kl_of_a_distribution_with_itself_is_zero(target: Target, ex: dict[str, Any]) -> None:
    """KL(p || p) == 0: f(log p, p, reduction='sum') == 0."""
    t = ex["target"]
    with torch.no_grad():
        logp = torch.log(t)
    out = target.tensor(torch.where(t > 0, logp, torch.zeros_like(t)), t, reduction="sum")
    ck.assert_close(out, 0.0, spec=KL.id, key="self", dtype=t.dtype, scale=4.0, what="KL(p||p)")


@KL.property(Category.EQUIVALENCE, strategy=kl_inputs())
def cross_entropy_minus_entropy(target: Target, ex: dict[str, Any]) -> None:
    """sum f(log q, p) == CE(p, q) - H(p) >= 0 (Gibbs' inequality)."""
    x, t = ex["input"], ex["target"]
    pn, xn = _np(t), _np(x)
    ce = -(pn * xn).sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(pn > 0, pn * np.log(np.where(pn > 0, pn, 1)), 0).sum()
    out = target.tensor(x, t, reduction="sum")
    ck.assert_close(out, ce - h, spec=KL.id, key="self", dtype=x.dtype, scale=_kl_scale(ex) + abs(ce), what="KL")
    if ck.f64(out) < -ck.tolerance(KL.id, "self", x.dtype).atol * 10:
        raise AssertionError(f"KL={ck.f64(out)!r}, but should be >= 0")


@KL.property(Category.EQUIVALENCE, strategy=kl_inputs())
def log_target_agrees(target: Target, ex: dict[str, Any]) -> None:
    """f(x, p) == f(x, log p, log_target=True) wherever p > 0 (targets with zeros are compared on the support)."""
    x, t = ex["input"], ex["target"]
    support = t > 0
    a = ck.f64(target.tensor(x, t, reduction="none"))
    b = target.tensor(x, torch.log(torch.where(support, t, torch.ones_like(t))), reduction="none", log_target=True)
    ck.assert_close(b, np.where(support.numpy(), a, ck.f64(b)), spec=KL.id, key="self", dtype=x.dtype, scale=_kl_scale(ex),
                    what="f(x, log p, log_target=True)")


@KL.property(Category.GRADIENT, strategy=kl_inputs())
def zero_target_probabilities_are_finite(target: Target, ex: dict[str, Any]) -> None:
    """With zeros in the target, the value and d f / d(input) are finite and d sum(f) / dx == -t."""
    x = ex["input"].clone().requires_grad_(True)
    t = ex["target"].clone().requires_grad_(True)
    out = target.tensor(x, t, reduction="sum")
    ck.assert_finite(out.detach(), what="KL")
    # d/dt (t log t) = log t + 1 is -inf at t = 0: only the input's gradient must be finite.
    gx, _ = torch.autograd.grad(out, (x, t), allow_unused=True)
    if gx is None:
        raise AssertionError("the KL does not depend on the input")
    ck.assert_grad_close(gx, -_np(ex["target"]), spec=KL.id, key="analytic", dtype=ck.judged_dtype(x.dtype, out.dtype))


@KL.property(Category.REDUCTION, strategy=kl_inputs())
def batchmean_is_sum_over_batch(target: Target, ex: dict[str, Any]) -> None:
    """'batchmean' == 'sum' / N and 'mean' == 'sum' / numel."""
    x, t = ex["input"], ex["target"]
    s = ck.f64(target.tensor(x, t, reduction="sum"))
    ck.assert_close(target.tensor(x, t, reduction="batchmean"), s / x.shape[0], spec=KL.id, key="reduction", dtype=x.dtype,
                    scale=_kl_scale(ex), what="batchmean")
    ck.assert_close(target.tensor(x, t, reduction="mean"), s / x.numel(), spec=KL.id, key="reduction", dtype=x.dtype,
                    scale=_kl_scale(ex), what="mean")


@KL.property(Category.ROBUSTNESS, strategy=kl_inputs(), name="output_dtype_and_shape")
def kl_output_dtype_and_shape(target: Target, ex: dict[str, Any]) -> None:
    """'none' keeps the input's shape, other reductions give 0-d; dtype of the input."""
    x = ex["input"]
    shape = x.shape if ex["reduction"] == "none" else ()
    ck.assert_shape_dtype(target(x, ex["target"], reduction=ex["reduction"]), shape=shape, dtype=x.dtype)


register_device_properties(
    KL,
    strategy=kl_inputs(dtypes=(torch.float32,)),
    call=lambda t, ex: t.tensor(ex["input"], ex["target"], reduction=ex["reduction"]),
    float_keys=("input", "target"),
    scale=lambda ex: _kl_scale(ex) * 50,
)
