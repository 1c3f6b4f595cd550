"""CenterNet / CenterFusion specs (seed 003): ``penalty_reduced_focal`` (gather and dense forms),
``reg_weighted_l1``, ``depth_l1``, ``weighted_bce``, ``bin_rot``, ``generic_loss``.

Conventions: feature maps (B, D, H, W); ``ind`` (B, M) flat indices ``y * W + x``;
``mask`` (B, M) (or per element (B, M, D)) weights, 0 for padding; the gathered heads
divide by ``mask.sum() + 1e-4`` as the seed does. Padding slots hold valid indices (the
seed's arrays hold zeros there); what they point at, and what masked targets hold (nan
and inf included), must not matter.

This file holds the maths: conventions, strategies, oracles and the family's own
properties; dtype and shape, determinism, untouched inputs, errors, keywords, gradients,
device / dtype / compile agreement and ``agrees_with_numpy`` come from ``conformance.generic``.

Tolerances: oracle comparisons use the dtype's default tolerance relative to
``max(|L|, scale)``, where the scale functions below give the magnitude the loss's own
rounding reaches (the sum of the terms' magnitudes, and the first-order effect of each
quantity every implementation must round: ``1 - p``, ``sigmoid(x)``, ``pred - target``,
``x * z``); comparisons through a rounded probability or residual use the ULP budgets
``rounded_probability`` / ``rounded_residual`` of ``conformance.tolerances``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from conformance import checks as ck
from conformance import strategies as hh
from conformance.spec import Arg, Category, Convention, ErrorInput, Keyword, Oracle, Spec, Variant, Want, register
from conformance.targets import Target
from impls import centernet as ref
from oracles import numpy_centernet as npo

_np = ck.f64
Ex = dict[str, Any]
_CLAMP = 1e-4  # the seed's _sigmoid clamp, as the contract states it
_NORM_EPS = 1e-4


def _tensor(values: Any, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    return torch.tensor(np.asarray(values, dtype=np.float64).reshape(shape), dtype=dtype).clone(
        memory_format=torch.contiguous_format)


def _ints(values: Any, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.tensor(np.asarray(values, dtype=np.int64).reshape(shape), dtype=torch.int64).clone(
        memory_format=torch.contiguous_format)


def _dtype_region(dtype: torch.dtype) -> None:
    hh.region(str(dtype).removeprefix("torch."))


def _dyadic(lo: float, hi: float, denom: int = 8) -> st.SearchStrategy[float]:
    return st.integers(int(lo * denom), int(hi * denom)).map(lambda k: k / denom)


def _array(draw: st.DrawFn, shape: tuple[int, ...], dtype: torch.dtype, elements: st.SearchStrategy[float]) -> torch.Tensor:
    """Every element drawn (no common fill value: a map of one repeated value hides misread indices), with
    standard strides even when empty (NumPy gives empty arrays zero strides, which gradcheck refuses)."""
    arr = draw(hnp.arrays(hh.NP_DTYPE[dtype], shape, elements=elements, fill=st.nothing()))
    return torch.from_numpy(np.array(arr)).clone(memory_format=torch.contiguous_format)


def _gather_np(out: np.ndarray, ind: np.ndarray) -> np.ndarray:
    """(B, D, H, W) read at flat indices (B, M) -> (B, M, D), in float64."""
    b, d, h, w = out.shape
    idx = np.broadcast_to(ind[:, None, :], (b, d, ind.shape[1]))
    return np.take_along_axis(out.reshape(b, d, h * w), idx, axis=2).transpose(0, 2, 1)


def _mask3(mask: np.ndarray, d: int) -> np.ndarray:
    return np.repeat(mask[:, :, None], d, axis=2) if mask.ndim == 2 else mask


def _masked_mean(el: np.ndarray, m: np.ndarray) -> float:
    """sum m * el over m > 0 (what masked slots hold is not read) / (sum m + 1e-4)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return float(np.where(m > 0, m * el, 0.0).sum() / (m.sum() + _NORM_EPS))


def _keywords(ex: Ex, names: tuple[str, ...]) -> dict[str, Any]:
    return {k: ex[k] for k in names if k in ex}


# ---------------------------------------------------------------------------
# penalty_reduced_focal: strategies
# ---------------------------------------------------------------------------

_FOCAL_KWS = ("alpha", "beta", "positive_threshold", "positive_weight", "negative_weight", "from_logits")
_FOCAL_DEFAULTS: dict[str, Any] = {"alpha": 2.0, "beta": 4.0, "positive_threshold": None, "positive_weight": 1.0,
                                   "negative_weight": 1.0, "from_logits": False}
_SLOTS = ("ind", "mask", "cat")

alphas = st.one_of(st.sampled_from([0.0, 0.5, 1.0, 3.0, 4.0]), st.floats(0.0, 5.0, allow_nan=False, allow_subnormal=False))
betas = st.one_of(st.sampled_from([0.0, 1.0, 2.0, 3.0, 6.0]), st.floats(0.0, 6.0, allow_nan=False, allow_subnormal=False))
# Thresholds exactly representable in float32, so that y > t is the same comparison in float32 and float64.
thresholds = st.one_of(st.sampled_from([0.0, 0.5, 0.75, 0.9921875]),
                       st.floats(0.0, 1.0, exclude_max=True, allow_nan=False, allow_subnormal=False, width=32))
term_weights = st.one_of(st.sampled_from([0.0, 0.25, 2.0, 4.0]),
                         st.floats(0.0, 4.0, allow_nan=False, allow_subnormal=False, width=32))
_KW_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "alpha": alphas, "beta": betas, "positive_threshold": thresholds, "positive_weight": term_weights,
    "negative_weight": term_weights, "from_logits": st.just(True),
}
# For the float16 / bfloat16 comparisons: every keyword exactly representable in both (8 significant bits).
# A float32 threshold is not enough: torch compares a bfloat16 heatmap with the threshold rounded to
# bfloat16, so t = 0.998046875 became 1.0 there and y = 1 stopped being a positive, while the float32
# reference on the same rounded heatmap still counted it (a seed of the dev profile found it).
_KW_VALUES_FP16: dict[str, st.SearchStrategy[Any]] = {
    **_KW_VALUES,
    "alpha": st.integers(0, 80).map(lambda k: k / 16),
    "beta": st.integers(0, 96).map(lambda k: k / 16),
    "positive_threshold": st.integers(0, 127).map(lambda k: k / 128),
    "positive_weight": st.integers(0, 64).map(lambda k: k / 16),
    "negative_weight": st.integers(0, 64).map(lambda k: k / 16),
}

_F32_TINY = float(np.float32(1e-30))
# Soft values include some just below 1 (a Gaussian peak rendered at a sub-pixel centre leaves neighbours within
# 1e-3 of 1): they are negatives unless positive_threshold says otherwise.
_Y_SOFT = st.one_of(st.sampled_from([0.125, 0.5, 0.75, 0.875, 0.96875, 0.9921875, 0.998046875, 1 - 2**-24, 1e-30]),
                    st.floats(0.0, 1.0, exclude_max=True, allow_nan=False, allow_subnormal=True, width=32))
_P_INNER = st.one_of(st.sampled_from([1e-4, 0.01, 0.125, 0.25, 0.5, 0.75, 0.875, 0.99, 0.9999, 1e-30, 1 - 2**-24]),
                     st.floats(_F32_TINY, 1 - 2**-24, allow_nan=False, allow_subnormal=False, width=32))
_LOGITS = st.one_of(_dyadic(-12, 12, 4), st.sampled_from([9.25, -9.25, 20.0, -20.0, 88.0, -88.0, 1e4, -1e4, 3e38, -3e38]),
                    st.sampled_from([math.inf, -math.inf]))
_LOG_9999 = math.log(1 / _CLAMP - 1)  # |x| beyond which the clamp of the seed's _sigmoid is active


def _batch(draw: st.DrawFn, min_batch: int, max_batch: int = 2) -> int:
    """1..max_batch images, and now and then none (an empty batch) unless ``min_batch`` forbids it."""
    if min_batch == 0 and draw(st.integers(0, 9)) == 0:
        return 0
    return draw(st.integers(max(min_batch, 1), max_batch))


def _extreme(draw: st.DrawFn, plain: bool, always: bool = False) -> bool:
    """Whether this example mixes extreme values into its maps and targets: one in four (each one under
    ``always``, for the properties that compare with no oracle). Every example extreme would not do for
    the others: the loss's rounding scales with its largest term, so one 1e30 logit makes an oracle
    comparison blind to everything else in that example."""
    if plain or (not always and draw(st.integers(0, 3))):
        return False
    hh.region("extreme values")
    return True


def _positive(y: np.ndarray, threshold: float | None) -> np.ndarray:
    return y == 1.0 if threshold is None else y > threshold


@st.composite
def heatmaps(
    draw: st.DrawFn,
    *,
    dtypes: tuple[torch.dtype, ...] = hh.FLOAT_DTYPES,
    form: str = "any",
    keywords: bool = True,
    logits: bool | None = None,
    endpoints: bool = True,
    peaks: bool | None = None,
    exact_slots: bool = False,
    interior: bool = False,
    fp16: bool = False,
    min_batch: int = 0,
) -> Ex:
    """A heatmap y with positives (y == 1, or y > positive_threshold) among soft values, predictions
    (probabilities, or logits with from_logits), and for the gather form slots that list the positives
    (all of them once with mask 1 when ``exact_slots``; otherwise also fractional, duplicate, off-peak
    and missing ones), padding slots holding arbitrary valid indices.

    ``endpoints`` draws p in {0, 1} now and then (infinite terms); ``interior`` keeps p in [0.01, 0.99]
    and |x| <= 8 (gradcheck, off the clamp's kink); ``fp16`` draws values representable in float16 and
    bfloat16; ``peaks`` forces positives (True) or none (False)."""
    dtype = draw(hh.float_dtypes(dtypes=dtypes))
    b = _batch(draw, min_batch)
    c, h, w = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    shape = (b, c, h, w)
    ex: Ex = {}
    if keywords:
        for k in _FOCAL_KWS:
            if k == "from_logits" and logits is not None:
                continue
            choice = draw(st.integers(0, 5))  # absent 2 in 6, the default passed 1 in 6, another value 3 in 6
            if choice >= 2:
                ex[k] = _FOCAL_DEFAULTS[k] if choice == 2 else draw((_KW_VALUES_FP16 if fp16 else _KW_VALUES)[k])
    if logits is not None:
        ex["from_logits"] = logits
    if peaks is False:
        ex.pop("positive_threshold", None)
    threshold = ex.get("positive_threshold")
    from_logits = bool(ex.get("from_logits", False))
    # Heatmap: zeros, soft values and exact peaks; soft values only dyadic under fp16.
    soft = st.sampled_from([0.125, 0.5, 0.75, 0.875]) if fp16 else _Y_SOFT
    y_el = st.one_of(st.just(0.0), soft, st.just(1.0)) if peaks is not False else st.one_of(st.just(0.0), soft)
    y = _np(_array(draw, shape, torch.float64, y_el))
    if peaks and y.size and not _positive(y, threshold).any():
        y.flat[draw(st.integers(0, y.size - 1))] = 1.0
    # Predictions.
    if from_logits:
        x_el = _dyadic(-4, 4, 4) if fp16 else _dyadic(-8, 8, 8) if interior else _LOGITS
        pred = _array(draw, shape, dtype, x_el)
        xs = _np(pred)
        if xs.size and (np.abs(xs) > _LOG_9999).any():
            hh.region("saturated logits (|x| > 9.21, clamp active)")
    else:
        if fp16:
            p_el = _dyadic(1 / 64, 63 / 64, 64)
        elif interior:
            p_el = st.floats(float(np.float32(0.01)), float(np.float32(0.99)), allow_nan=False, width=32)
        elif endpoints and draw(st.integers(0, 7)) == 0:
            p_el = st.one_of(_P_INNER, st.sampled_from([0.0, 1.0]))
            hh.region("p in {0, 1} (infinite terms)")
        else:
            p_el = _P_INNER
        pred = _array(draw, shape, dtype, p_el)
    ex = {"pred_prob": pred, "gt_heatmap": torch.from_numpy(y).to(dtype), **ex}
    gather = form == "gather" or (form == "any" and draw(st.integers(0, 3)) > 0)
    if gather:
        ex.update(_draw_slots(draw, y, threshold, dtype, exact=exact_slots or peaks is False, none_active=peaks is False))
    _label_focal(ex, gather)
    return ex


def _draw_slots(draw: st.DrawFn, y: np.ndarray, threshold: float | None, dtype: torch.dtype, *, exact: bool,
                none_active: bool) -> Ex:
    b, c, h, w = y.shape
    pos = _positive(y, threshold)
    rows: list[list[tuple[int, int, float]]] = []
    for i in range(b):
        listed = [(int(f) % (h * w), int(f) // (h * w), 1.0) for f in np.flatnonzero(pos[i])] if not none_active else []
        listed = draw(st.permutations(listed)) if len(listed) > 1 else listed
        if not exact and listed and draw(st.integers(0, 3)) == 0:
            listed = listed[1:]  # a positive no slot lists: neither positive nor negative
            hh.region("slots off the positives")
        if not exact and draw(st.integers(0, 3)) == 0:
            f = draw(st.integers(0, c * h * w - 1))  # an active slot on any pixel, a peak twice included
            listed.append((f % (h * w), f // (h * w), draw(st.sampled_from([1.0, 0.5, 0.25]))))
            hh.region("slots off the positives")
        rows.append(listed)
    m = max([len(r) for r in rows] + [0]) + draw(st.integers(0, 2))
    ind = np.zeros((b, m), dtype=np.int64)
    cat = np.zeros((b, m), dtype=np.int64)
    mask = np.zeros((b, m))
    for i, row in enumerate(rows):
        for j in range(m):
            if j < len(row):
                ind[i, j], cat[i, j], mask[i, j] = row[j]
            else:
                ind[i, j] = draw(st.integers(0, h * w - 1))
                cat[i, j] = draw(st.integers(0, c - 1))
    if not exact and mask.size and draw(st.integers(0, 4)) == 0:
        mask = np.where(mask > 0, draw(st.sampled_from([0.5, 0.75])), 0.0)
    fractional = bool(((mask > 0) & (mask < 1)).any())
    if fractional:
        hh.region("fractional mask")
    layout = draw(st.sampled_from(["float", "float", "bool", "int"])) if not fractional else "float"
    if layout != "float":
        hh.region("bool or integer mask")
    mt = torch.from_numpy(mask > 0) if layout == "bool" else (
        torch.from_numpy(mask.astype(np.int64)) if layout == "int" else torch.from_numpy(mask).to(dtype))
    return {"ind": torch.from_numpy(ind), "mask": mt, "cat": torch.from_numpy(cat)}


def _label_focal(ex: Ex, gather: bool) -> None:
    _dtype_region(ex["pred_prob"].dtype)
    hh.region("gather form" if gather else "dense form")
    if ex["pred_prob"].shape[0] == 0:
        hh.region("empty batch")
    if _n_pos(ex) == 0:
        hh.region("no positives (N = 0)")
    if ex.get("from_logits"):
        hh.region("from_logits")
    if ex.get("positive_threshold") is not None:
        hh.region("positive_threshold set")
    if ex.get("positive_weight", 1.0) != 1.0 or ex.get("negative_weight", 1.0) != 1.0:
        hh.region("positive / negative weight set")


def _n_pos(ex: Ex) -> float:
    if ex.get("ind") is not None:
        return float(_np(ex["mask"]).sum())
    return float(_positive(_np(ex["gt_heatmap"]), ex.get("positive_threshold")).sum())


# ---------------------------------------------------------------------------
# penalty_reduced_focal: oracle and scale
# ---------------------------------------------------------------------------


def _kw(ex: Ex, name: str) -> Any:
    return ex.get(name, _FOCAL_DEFAULTS[name])


def _probabilities(ex: Ex) -> np.ndarray:
    x = _np(ex["pred_prob"])
    return npo.clamped_sigmoid(x) if _kw(ex, "from_logits") else x


def _focal_numpy(ex: Ex) -> Want:
    args = [_np(ex[k]) if ex.get(k) is not None else None for k in _SLOTS]
    if args[0] is not None:
        args = [args[0].astype(np.int64), args[1], args[2].astype(np.int64)]
    value = npo.penalty_reduced_focal(_np(ex["pred_prob"]), _np(ex["gt_heatmap"]), *args,
                                      **{k: _kw(ex, k) for k in _FOCAL_KWS})
    return Want(value, scale=_focal_scale(ex, _probabilities(ex), rounded_p=bool(_kw(ex, "from_logits"))))


def _focal_scale(ex: Ex, p: np.ndarray, *, rounded_p: bool) -> float:
    """The magnitude the loss's own rounding reaches, over N (see tolerances: rounded_probability).

    Each term t counts |t| (1 + alpha |log p| + beta |log(1 - y)|) (its powers go through a log of a
    rounded quantity); a negative adds w p^alpha, the first-order effect of rounding 1 - p before the
    log (the seed's log(1 - p)); ``rounded_p`` adds |p dt/dp| for every term, the effect of rounding
    p = sigmoid(x) (and the clamp's bounds) to the dtype before the loss sees it. Infinite terms
    are judged by their own property (infinite_exactly_where_a_term_is)."""
    a, bta = float(_kw(ex, "alpha")), float(_kw(ex, "beta"))
    y = _np(ex["gt_heatmap"])
    pos_px = _positive(y, _kw(ex, "positive_threshold"))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        lq, lp = -np.log1p(-p), -np.log(p)
        w = np.where(pos_px, 0.0, np.power(1.0 - y, bta))
        neg = w * np.power(p, a) * lq
        neg_c = neg * (1 + a * lp + bta * np.abs(np.log1p(-y))) + w * np.power(p, a)
        if rounded_p:
            neg_c = neg_c + w * (a * np.power(p, a) * lq + np.power(p, a + 1) / (1 - p))
        pos = np.power(1.0 - p, a) * lp
        pos_c = pos * (1 + a * lq)
        if rounded_p:
            # p d/dp [(1 - p)^a (-log p)] = -a p (1 - p)^(a - 1) (-log p) - (1 - p)^a; -log p ~ 1 - p near 1.
            pos_c = pos_c + np.where(p < 1, a * p * np.power(1.0 - p, a) * lp / (1.0 - p), 0.0) + np.power(1.0 - p, a)
    neg_s = float(np.where(~pos_px & np.isfinite(neg_c), neg_c, 0.0).sum())
    if ex.get("ind") is not None:
        m, ind, cat = _np(ex["mask"]), _np(ex["ind"]).astype(np.int64), _np(ex["cat"]).astype(np.int64)
        b, c, h, w_ = p.shape
        flat = pos_c.reshape(b, c * h * w_)
        picked = np.take_along_axis(flat, cat * h * w_ + ind, axis=1) if m.size else np.zeros(m.shape)
        with np.errstate(invalid="ignore"):
            pos_s = float(np.where((m > 0) & np.isfinite(picked), m * picked, 0.0).sum())
    else:
        pos_s = float(np.where(pos_px & np.isfinite(pos_c), pos_c, 0.0).sum())
    total = float(_kw(ex, "positive_weight")) * pos_s + float(_kw(ex, "negative_weight")) * neg_s
    n = _n_pos(ex)
    return total / n if n > 0 else total


def _focal_key(ex: Ex) -> str:
    return "rounded_probability" if ex.get("from_logits") else "numpy"


# ---------------------------------------------------------------------------
# penalty_reduced_focal: malformed inputs
# ---------------------------------------------------------------------------


def _valid_focal() -> st.SearchStrategy[Ex]:
    return heatmaps(form="gather", keywords=False, logits=False, endpoints=False, min_batch=1).map(_one_slot)


def _one_slot(ex: Ex) -> Ex:
    """The example with at least one slot (a padding one added when it has none)."""
    if ex["ind"].shape[1]:
        return ex
    b = ex["ind"].shape[0]
    return {**ex, "ind": torch.zeros(b, 1, dtype=torch.int64), "cat": torch.zeros(b, 1, dtype=torch.int64),
            "mask": torch.zeros(b, 1, dtype=ex["mask"].dtype)}


@st.composite
def _focal_bad_shape(draw: st.DrawFn, which: str) -> Ex:
    ex = draw(_valid_focal())
    b, c, h, w = ex["gt_heatmap"].shape
    if which == "gt_heatmap":
        gt = ex["gt_heatmap"]
        bad = draw(st.sampled_from(["one image", "extra class"] + (["transposed"] if h != w else [])))
        new = gt[0] if bad == "one image" else (torch.cat([gt, gt[:, :1]], 1) if bad == "extra class" else gt.transpose(2, 3))
        return {**ex, "gt_heatmap": new.contiguous()}
    if which == "ind":
        return {**ex, "ind": torch.cat([ex["ind"], ex["ind"][:1]], 0)}
    return {**ex, which: torch.cat([ex[which], ex[which][:, :1]], 1)}


@st.composite
def _focal_bad_index(draw: st.DrawFn, which: str) -> Ex:
    ex = draw(_valid_focal())
    _b, c, h, w = ex["gt_heatmap"].shape
    t = ex[which].clone()
    t.view(-1)[draw(st.integers(0, t.numel() - 1))] = draw(st.sampled_from([h * w if which == "ind" else c, -1]))
    return {**ex, which: t}


@st.composite
def _focal_bad_values(draw: st.DrawFn, which: str) -> Ex:
    ex = draw(_valid_focal())
    t = ex[which].to(ex["pred_prob"].dtype).clone() if which == "mask" else ex[which].clone()
    t.view(-1)[draw(st.integers(0, t.numel() - 1))] = draw(st.sampled_from([-0.5, 1.5, 2.0] + ([math.nan] if which == "pred_prob" else [])))
    return {**ex, which: t}


@st.composite
def _focal_bad_dtype(draw: st.DrawFn, which: str) -> Ex:
    ex = draw(_valid_focal())
    if which == "pred_prob":
        return {**ex, "pred_prob": (ex["pred_prob"] > 0.5).to(torch.int64)}
    if which == "ind":
        return {**ex, "ind": ex["ind"].to(ex["pred_prob"].dtype)}
    other = torch.float32 if ex["gt_heatmap"].dtype == torch.float64 else torch.float64
    return {**ex, "gt_heatmap": ex["gt_heatmap"].to(other)}


@st.composite
def _focal_bad_keyword(draw: st.DrawFn, which: str) -> Ex:
    ex = draw(_valid_focal())
    bad = {
        "alpha": [-1.0, math.nan], "beta": [-0.5, math.nan], "positive_threshold": [1.0, -0.25, 1.5],
        "positive_weight": [-1.0, math.nan], "negative_weight": [-2.0, math.nan], "from_logits": ["yes", 1, None],
    }[which]
    return {**ex, which: draw(st.sampled_from(bad))}


@st.composite
def _focal_partial_slots(draw: st.DrawFn) -> Ex:
    ex = draw(_valid_focal())
    dropped = draw(st.sampled_from(["mask", "cat", "both"]))
    return {**ex, **({"mask": None, "cat": None} if dropped == "both" else {dropped: None})}


_FOCAL_ERRORS = (
    ErrorInput("gt_heatmap of another shape (one image, an extra class, transposed)", "shape", "gt_heatmap",
               _focal_bad_shape("gt_heatmap")),
    ErrorInput("ind of another batch size", "shape", "ind", _focal_bad_shape("ind")),
    ErrorInput("mask with another slot count than ind", "shape", "mask", _focal_bad_shape("mask")),
    ErrorInput("cat with another slot count than ind", "shape", "cat", _focal_bad_shape("cat")),
    ErrorInput("ind outside [0, H*W)", "domain", "ind", _focal_bad_index("ind")),
    ErrorInput("cat outside [0, C)", "domain", "cat", _focal_bad_index("cat")),
    ErrorInput("probabilities outside [0, 1] or nan", "domain", "pred_prob", _focal_bad_values("pred_prob")),
    ErrorInput("gt_heatmap outside [0, 1]", "domain", "gt_heatmap", _focal_bad_values("gt_heatmap")),
    ErrorInput("mask outside [0, 1]", "domain", "mask", _focal_bad_values("mask")),
    ErrorInput("ind without mask or cat", "domain", "mask", _focal_partial_slots()),
    *(ErrorInput(f"{k} out of its range", "domain", k, _focal_bad_keyword(k))
      for k in ("alpha", "beta", "positive_threshold", "positive_weight", "negative_weight", "from_logits")),
    ErrorInput("integer pred_prob", "dtype", "pred_prob", _focal_bad_dtype("pred_prob")),
    ErrorInput("floating ind", "dtype", "ind", _focal_bad_dtype("ind")),
    ErrorInput("gt_heatmap of another dtype", "dtype", "gt_heatmap", _focal_bad_dtype("gt_heatmap")),
)


def _focal_extreme_examples() -> tuple[Ex, ...]:
    """Saturated and infinite logits through the clamp, float32 and float64."""
    out = []
    for dtype in (torch.float32, torch.float64):
        x = torch.tensor([-math.inf, -3e38, -1e4, -9.25, 0.0, 9.25, 1e4, 3e38, math.inf], dtype=dtype).reshape(1, 1, 3, 3)
        y = torch.tensor([0.0, 0.5, 0.0, 0.9, 1.0, 0.0, 0.25, 1.0, 0.0], dtype=dtype).reshape(1, 1, 3, 3)
        out.append({"pred_prob": x, "gt_heatmap": y, "from_logits": True})
        out.append({"pred_prob": x, "gt_heatmap": y, "ind": torch.tensor([[4, 7]]), "mask": torch.ones(1, 2, dtype=dtype),
                    "cat": torch.zeros(1, 2, dtype=torch.int64), "from_logits": True, "alpha": 0.5})
    return tuple(out)


_NO_PEAK: Ex = {
    "pred_prob": torch.full((1, 1, 2, 2), 0.5),
    "gt_heatmap": torch.tensor([[[[0.0, 0.5], [0.75, 0.0]]]]),
    "ind": torch.tensor([[0]]),
    "mask": torch.tensor([[0.0]]),
    "cat": torch.tensor([[0]]),
}

FOCAL = register(
    Spec(
        id="penalty_reduced_focal",
        family="centernet",
        signature="f(pred_prob: Tensor[B, C, H, W], gt_heatmap: Tensor[B, C, H, W], ind: Tensor[B, M] int64 | None = None, "
        "mask: Tensor[B, M] | None = None, cat: Tensor[B, M] int64 | None = None, *, alpha: float = 2.0, "
        "beta: float = 4.0, positive_threshold: float | None = None, positive_weight: float = 1.0, "
        "negative_weight: float = 1.0, from_logits: bool = False) -> Tensor[]",
        summary="CenterNet's penalty-reduced focal loss. Positives: y == 1 (y > positive_threshold when set); every "
        "other pixel adds -(1 - y)^beta p^alpha log(1 - p). Gather form (FastFocalLoss: ind, mask, cat given): the "
        "positive term -(1 - p)^alpha log p is read at (cat, ind) per slot, weighted by mask, N = sum mask. Dense "
        "form (CornerNet, keras-cv: all three omitted): at every positive pixel, N = their count. Loss = "
        "(positive_weight pos + negative_weight neg) / N, the weighted negative sum alone when N = 0. Probabilities "
        "in, no clamp (p = 0 at a positive is +inf); from_logits applies the seed's clamp(sigmoid(x), 1e-4, 1 - 1e-4).",
        reference=ref.penalty_reduced_focal,
        scale=lambda ex: _focal_numpy(ex).scale,
        convention=Convention(
            args=(Arg("pred_prob", differentiable=True), Arg("gt_heatmap"), Arg("ind", floating=False, optional=True),
                  Arg("mask", optional=True), Arg("cat", floating=False, optional=True)),
            keywords=tuple(Keyword(k, _FOCAL_DEFAULTS[k], _KW_VALUES[k]) for k in _FOCAL_KWS),
            output_shape=lambda ex: (),
            errors=_FOCAL_ERRORS,
        ),
        strategies={
            "default": heatmaps(),
            "gradcheck": heatmaps(dtypes=(torch.float64,), interior=True),
            "device": heatmaps(dtypes=(torch.float32,), fp16=True, min_batch=1),
            # Finite gradients: logits over the whole range (inf included) through the clamp, and
            # probabilities short of the endpoints (where the formula's value is +inf).
            "extreme": heatmaps(endpoints=False),
        },
        oracles=(
            Oracle("numpy", "numpy", _focal_numpy, primary=True, tolerance_key=_focal_key,
                   doc="Equals the float64 loops of the contract (both forms, every keyword), within the rounding "
                   "of the loss's own terms and, with from_logits, of p = sigmoid(x) (tolerances: "
                   "rounded_probability)."),
        ),
        examples={"agrees_with_numpy": (_NO_PEAK,), "finite_gradients": _focal_extreme_examples()},
        regions=("float32", "float64", "gather form", "dense form", "empty batch", "no positives (N = 0)",
                 "p in {0, 1} (infinite terms)", "from_logits", "saturated logits (|x| > 9.21, clamp active)",
                 "logits near the clamp (8 < |x| < 9.21)",
                 "positive_threshold set", "positive / negative weight set", "slots off the positives",
                 "fractional mask", "bool or integer mask"),
    )
)


def _call_focal(target: Target, ex: Ex, **over: Any) -> torch.Tensor:
    e = {**ex, **over}
    slots = [e.get(k) for k in _SLOTS]
    return target.tensor(e["pred_prob"], e["gt_heatmap"], *slots, **_keywords(e, _FOCAL_KWS))


# ---------------------------------------------------------------------------
# penalty_reduced_focal: properties
# ---------------------------------------------------------------------------


@FOCAL.property(Category.ROBUSTNESS, strategy=heatmaps())
def defaults_honoured(target: Target, ex: Ex) -> None:
    """Omitting a keyword equals passing its canonical default (alpha=2, beta=4, positive_threshold=None,
    positive_weight=1, negative_weight=1, from_logits=False), wherever the default is valid: from_logits is
    omitted only on probability inputs."""
    base = {k: v for k, v in ex.items() if k not in _FOCAL_KWS}
    if ex.get("from_logits"):
        base["from_logits"] = True
    for k in _FOCAL_KWS:
        if k == "from_logits" and ex.get("from_logits"):
            continue
        rest = {kk: v for kk, v in ex.items() if kk in _FOCAL_KWS and kk != k}
        want = _call_focal(target, {**base, **rest, k: _FOCAL_DEFAULTS[k]})
        got = _call_focal(target, {**base, **rest})
        ck.assert_close(got, ck.f64(want), spec=FOCAL.id, key="self", dtype=ex["pred_prob"].dtype,
                        what=f"out with {k} omitted", inputs={k: f"omitted; canonical default {_FOCAL_DEFAULTS[k]!r}"})


@FOCAL.property(Category.EQUIVALENCE, strategy=heatmaps(form="gather", exact_slots=True))
def gather_form_equals_dense_form(target: Target, ex: Ex) -> None:
    """When the slots with mask 1 list each positive pixel exactly once, f(p, y, ind, mask, cat) == f(p, y)."""
    gather = _call_focal(target, ex)
    dense = _call_focal(target, ex, ind=None, mask=None, cat=None)
    want = _focal_numpy({**ex, "ind": None})
    ck.assert_close(gather, ck.f64(dense), spec=FOCAL.id, key="self", dtype=ex["pred_prob"].dtype, scale=want.scale,
                    what="gather form vs dense form")


@st.composite
def _focal_reindexed(draw: st.DrawFn) -> Ex:
    ex = draw(heatmaps(form="gather"))
    b, c, h, w = ex["gt_heatmap"].shape
    n = ex["ind"].numel()
    ex["ind2"] = _ints(draw(st.lists(st.integers(0, h * w - 1), min_size=n, max_size=n)), tuple(ex["ind"].shape))
    ex["cat2"] = _ints(draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)), tuple(ex["cat"].shape))
    return ex


@FOCAL.property(Category.INVARIANCE, strategy=_focal_reindexed())
def masked_slots_do_not_matter(target: Target, ex: Ex) -> None:
    """Pointing the slots with mask 0 at other pixels and classes leaves the loss unchanged."""
    active = ex["mask"].to(torch.float64) > 0
    ind = torch.where(active, ex["ind"], ex["ind2"])
    cat = torch.where(active, ex["cat"], ex["cat2"])
    base = _call_focal(target, ex)
    ck.assert_close(_call_focal(target, ex, ind=ind, cat=cat), ck.f64(base), spec=FOCAL.id, key="self",
                    dtype=ex["pred_prob"].dtype, what="loss with re-pointed padding slots")


@FOCAL.property(Category.REDUCTION, strategy=heatmaps(peaks=False, endpoints=False), examples=(_NO_PEAK,))
def no_peak_gives_the_negative_sum(target: Target, ex: Ex) -> None:
    """With no positive (mask all 0, or no y == 1 in the dense form) the loss is the weighted negative sum,
    undivided: finite, not 0/0."""
    out = _call_focal(target, ex)
    want = _focal_numpy(ex)
    ck.assert_finite(out.detach(), what="loss without positives")
    ck.assert_close(out, want.value, spec=FOCAL.id, key=_focal_key(ex), dtype=ex["pred_prob"].dtype, scale=want.scale)


@FOCAL.property(Category.REDUCTION,
                strategy=heatmaps(peaks=True, logits=False, endpoints=False).filter(lambda ex: _n_pos(ex) > 0))
def normalised_by_the_number_of_peaks(target: Target, ex: Ex) -> None:
    """Appending an image whose every term is 0 (p = 0, y = 0, mask 0) leaves the loss unchanged, and so does
    repeating the batch: the normaliser is N, not the batch size or the pixel count."""
    base = _call_focal(target, ex)
    keys = ("pred_prob", "gt_heatmap") + (_SLOTS if ex.get("ind") is not None else ())
    empty = {k: torch.cat([ex[k], torch.zeros_like(ex[k][:1])]) for k in keys}
    two = {k: torch.cat([ex[k], ex[k]]) for k in keys}
    scale = _focal_numpy(ex).scale
    for what, over in (("with an empty image appended", empty), ("of the batch repeated twice", two)):
        ck.assert_close(_call_focal(target, ex, **over), ck.f64(base), spec=FOCAL.id, key="self",
                        dtype=ex["pred_prob"].dtype, scale=scale, what=f"loss {what}")


@FOCAL.property(Category.INVARIANCE, strategy=heatmaps(endpoints=False))
def penalty_reduced_near_peaks(target: Target, ex: Ex) -> None:
    """Raising the target y of a negative pixel towards 1 (y -> (1 + y) / 2, staying negative) never increases
    the loss: the penalty (1 - y)^beta shrinks."""
    gt = ex["gt_heatmap"]
    raised = ((gt.double() + 1) / 2).to(gt.dtype)
    threshold = ex.get("positive_threshold")
    still_negative = ~torch.from_numpy(_positive(_np(raised), threshold)) & ~torch.from_numpy(_positive(_np(gt), threshold))
    raised = torch.where(still_negative, raised, gt)
    a, b = ck.f64(_call_focal(target, ex)), ck.f64(_call_focal(target, ex, gt_heatmap=raised))
    tol = ck.tolerance(FOCAL.id, _focal_key(ex), gt.dtype)
    scale = _focal_numpy(ex).scale
    if b > a + tol.atol + tol.rtol * max(abs(a), abs(scale)):
        raise AssertionError(f"loss rose from {a!r} to {b!r} when the negative targets moved towards 1")


@FOCAL.property(Category.ORACLE, strategy=heatmaps(endpoints=True, logits=False))
def infinite_exactly_where_a_term_is(target: Target, ex: Ex) -> None:
    """The loss is +inf exactly when some counted term is (p = 0 at a positive with a nonzero weight, p = 1 at a
    negative with (1 - y)^beta > 0), and finite otherwise: no clamp, no eps."""
    out = float(ck.f64(_call_focal(target, ex)))
    want = _focal_numpy(ex).value
    if math.isnan(want):
        return  # a zero weight times an infinite sum: nan by IEEE, judged by agrees_with_numpy
    if math.isinf(want) != math.isinf(out) or (math.isinf(want) and out != want):
        raise AssertionError(f"loss={out!r}, but should be {'+inf' if math.isinf(want) else 'finite'} ({want!r})")


@st.composite
def _logit_heatmaps(draw: st.DrawFn) -> Ex:
    """Logits with the clamp inactive (|x| < 9.21: dyadic in [-8, 8] and, now and then, up to 9.1875 where
    1 - sigmoid(x) rounded to float32 carries ~2e-4 relative error), p = sigmoid(x) rounded to the dtype, and the
    gather form listing exactly the positives (or the dense form)."""
    ex = draw(heatmaps(logits=True, interior=True, exact_slots=True))
    x = ex.pop("pred_prob")
    if x.numel() and draw(st.integers(0, 2)) == 0:
        near = _array(draw, tuple(x.shape), x.dtype, st.sampled_from([9.0, -9.0, 9.125, -9.125, 9.1875, -9.1875]))
        x = torch.where(torch.from_numpy(np.array(draw(hnp.arrays(np.bool_, tuple(x.shape))))), near, x)
        hh.region("logits near the clamp (8 < |x| < 9.21)")
    ex["logits"] = x
    ex.pop("from_logits")
    ex["pred_prob"] = torch.sigmoid(x.double()).to(x.dtype)  # correctly rounded p
    return ex


@FOCAL.property(Category.ORACLE, strategy=_logit_heatmaps())
def agrees_with_the_logits_form_where_the_clamp_is_inactive(target: Target, ex: Ex) -> None:
    """For logits |x| < 9.21 (the clamp inactive) and p = sigmoid(x) rounded to the dtype, f(p) equals the float64
    dense loss computed from the logits with log-sigmoid, within the rounding of p (tolerances:
    rounded_probability)."""
    x = _np(ex["logits"])
    y = _np(ex["gt_heatmap"])
    kw = {k: _kw(ex, k) for k in ("alpha", "beta", "positive_threshold", "positive_weight", "negative_weight")}
    want = npo.penalty_reduced_focal(npo.sigmoid(x), y, **kw)
    scale = _focal_scale(ex, npo.sigmoid(x), rounded_p=True)
    ck.assert_close(_call_focal(target, ex), want, spec=FOCAL.id, key="rounded_probability", dtype=ex["pred_prob"].dtype,
                    scale=scale, what="loss on sigmoid(x) vs the logits form")


# ---------------------------------------------------------------------------
# Gathered heads: reg_weighted_l1, weighted_bce (output, mask, ind, target)
# ---------------------------------------------------------------------------

_GATHERED = ("output", "mask", "ind", "target")
_REG_EXTREMES = st.sampled_from([1e4, -1e4, 1e30, -1e30, -0.0, 1e-30])
_BCE_EXTREMES = st.sampled_from([1e4, -1e4, 88.0, -88.0, 1e30, -1e30, -0.0])
_NONFINITE = st.sampled_from([math.nan, math.inf, -math.inf])


def _read(ind: np.ndarray, m3: np.ndarray, shape: tuple[int, ...], cat: np.ndarray | None = None) -> np.ndarray:
    """Which (b, channel, pixel) of a (B, D, H, W) map an active (slot, channel) reads."""
    b, d, h, w = shape
    read = np.zeros((b, d, h * w), dtype=bool)
    for i in range(ind.shape[0]):
        for j in range(ind.shape[1]):
            for k in range(m3.shape[2]):
                if m3[i, j, k] > 0:
                    ch = k if cat is None else (int(cat[i, j]) if d > 1 else 0)
                    read[i, ch, int(ind[i, j])] = True
    return read.reshape(shape)


def _mask_layout(draw: st.DrawFn, mask: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """The mask as float (the dtype), or as bool / int64 when it holds only 0 and 1."""
    binary = bool(np.isin(mask, (0.0, 1.0)).all())
    layout = draw(st.sampled_from(["float", "float", "bool", "int"])) if binary else "float"
    if layout != "float":
        hh.region("bool or integer mask")
    if layout == "bool":
        return torch.from_numpy(mask > 0)
    return torch.from_numpy(mask.astype(np.int64)) if layout == "int" else torch.from_numpy(mask).to(dtype)


def _spoil(draw: st.DrawFn, t: torch.Tensor, unused: np.ndarray) -> torch.Tensor:
    """``t`` with nan / inf written at some entries the contract says are never read."""
    where = np.flatnonzero(unused)
    if not where.size or draw(st.integers(0, 2)):
        return t
    out = t.clone()
    for f in draw(st.lists(st.sampled_from(where.tolist()), min_size=1, max_size=3)):
        out.view(-1)[f] = draw(_NONFINITE)
    hh.region("nan / inf where nothing reads")
    return out


@st.composite
def gathered(
    draw: st.DrawFn,
    *,
    kind: str = "reg",
    dtypes: tuple[torch.dtype, ...] = hh.FLOAT_DTYPES,
    per_element: bool | None = None,
    gradcheck: bool = False,
    fp16: bool = False,
    min_batch: int = 0,
    min_slots: int = 0,
) -> Ex:
    """A (B, D, H, W) head, slots with (B, M, D) or (B, M) masks (fractional, bool, int), targets; extreme
    values in the map and the targets, nan / inf in masked targets and in pixels no active slot reads.
    ``gradcheck``: float64, |output - target| >= 1/32 (off L1's kink), no non-finite values; ``fp16``:
    values representable in float16 and bfloat16."""
    dtype = draw(hh.float_dtypes(dtypes=dtypes))
    b = _batch(draw, min_batch)
    d, h, w, m = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(min_slots, 4))
    plain = gradcheck or fp16
    extreme = _extreme(draw, plain)
    if kind == "bce":
        out_el = _dyadic(-4, 4) if plain else st.one_of(_dyadic(-8, 8), _BCE_EXTREMES) if extreme else _dyadic(-8, 8)
        # gradcheck steps the targets too: keep them inside (0, 1).
        tgt_el = st.sampled_from([0.25, 0.5, 0.75]) if gradcheck else st.sampled_from([0.0, 1.0, 0.25, 0.5]) if fp16 else st.one_of(
            st.sampled_from([0.0, 1.0, 0.5]), st.floats(0.0, 1.0, allow_nan=False, allow_subnormal=True, width=32))
    else:
        out_el = _dyadic(-4, 4).map(lambda v: v + 1 / 32) if gradcheck else _dyadic(-4, 4) if fp16 else st.one_of(
            _dyadic(-8, 8), _REG_EXTREMES) if extreme else _dyadic(-8, 8)
        tgt_el = _dyadic(-4, 4) if plain else st.one_of(_dyadic(-8, 8), _REG_EXTREMES) if extreme else _dyadic(-8, 8)
    out = _array(draw, (b, d, h, w), dtype, out_el)
    ind = _ints(draw(st.lists(st.integers(0, h * w - 1), min_size=b * m, max_size=b * m)), (b, m))
    pe = draw(st.booleans()) if per_element is None else per_element
    mshape = (b, m, d) if pe else (b, m)
    mask = _np(_array(draw, mshape, torch.float64, st.sampled_from([0.0, 1.0, 1.0, 1.0, 0.5])))
    target = _array(draw, (b, m, d), dtype, tgt_el)
    m3 = _mask3(mask, d)
    if not plain:
        target = _spoil(draw, target, m3 <= 0)
        out = _spoil(draw, out, ~_read(_np(ind).astype(np.int64), m3, (b, d, h, w)))
    hh.region("(B, M, D) mask" if pe else "(B, M) mask")
    if ((mask > 0) & (mask < 1)).any():
        hh.region("fractional mask")
    if b == 0:
        hh.region("empty batch")
    elif m == 0 or not (mask > 0).any():
        hh.region("no active slot")
    _dtype_region(dtype)
    return {"output": out, "mask": _mask_layout(draw, mask, dtype), "ind": ind, "target": target}


def _reg_parts(ex: Ex) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    out = _np(ex["output"])
    g = _gather_np(out, _np(ex["ind"]).astype(np.int64))
    return g, _np(ex["target"]), _mask3(_np(ex["mask"]), out.shape[1])


def _reg_scale(ex: Ex) -> float:
    # |pred - target| rounds once: u (|pred| + |target|) per element.
    g, t, m = _reg_parts(ex)
    with np.errstate(invalid="ignore"):
        return _masked_mean(np.abs(g) + np.abs(t), m)


def _bce_el(x: np.ndarray, z: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        return (1 - z) * np.logaddexp(0.0, x) + z * np.logaddexp(0.0, -x)


def _bce_scale(ex: Ex) -> float:
    # The loss, plus its backward-stable error |x dL/dx| = |x| |sigmoid(x) - z|, plus |x| for soft
    # targets (x z must round: the max(x, 0) - x z + log1p(exp(-|x|)) form).
    g, z, m = _reg_parts(ex)
    with np.errstate(invalid="ignore", over="ignore"):
        soft = (z > 0) & (z < 1)
        el = _bce_el(g, z) + np.abs(g) * np.abs(npo.sigmoid(g) - z) + np.where(soft, np.abs(g), 0.0)
    return _masked_mean(el, m)


def _reg_numpy(ex: Ex) -> Want:
    value = npo.reg_weighted_l1(_np(ex["output"]), _np(ex["mask"]), _np(ex["ind"]).astype(np.int64), _np(ex["target"]))
    return Want(value, scale=_reg_scale(ex))


def _bce_numpy(ex: Ex) -> Want:
    value = npo.weighted_bce(_np(ex["output"]), _np(ex["mask"]), _np(ex["ind"]).astype(np.int64), _np(ex["target"]))
    return Want(value, scale=_bce_scale(ex))


def _valid_gathered(kind: str) -> st.SearchStrategy[Ex]:
    return gathered(kind=kind, gradcheck=True, min_batch=1, min_slots=1)


@st.composite
def _gathered_bad(draw: st.DrawFn, kind: str, which: str) -> Ex:
    ex = draw(_valid_gathered(kind))
    b, d, h, w = ex["output"].shape
    m = ex["ind"].shape[1]
    if which == "target shape":
        bad = draw(st.sampled_from(["one value", "extra channel", "no channel axis"]))
        shape = {"one value": (1,), "extra channel": (b, m, d + 1), "no channel axis": (b, m)}[bad]
        return {**ex, "target": torch.zeros(shape, dtype=ex["output"].dtype)}
    if which == "mask shape":
        return {**ex, "mask": torch.ones(b, m + 1, dtype=ex["output"].dtype)}
    if which == "ind shape":
        return {**ex, "ind": torch.zeros(b + 1, m, dtype=torch.int64)}
    if which == "ind range":
        ind = torch.full((b, max(m, 1)), draw(st.sampled_from([h * w, -1, h * w + 3])), dtype=torch.int64)
        return {**ex, "ind": ind, "mask": torch.ones(b, max(m, 1), dtype=ex["output"].dtype),
                "target": torch.zeros(b, max(m, 1), d, dtype=ex["output"].dtype)}
    if which == "mask range":
        return {**ex, "mask": torch.full(tuple(ex["mask"].shape), draw(st.sampled_from([1.5, -1.0])), dtype=ex["output"].dtype)}
    if which == "target range":
        t = torch.full((b, max(m, 1), d), draw(st.sampled_from([1.5, -0.5])), dtype=ex["output"].dtype)
        return {**ex, "target": t, "ind": torch.zeros(b, max(m, 1), dtype=torch.int64),
                "mask": torch.ones(b, max(m, 1), dtype=ex["output"].dtype)}
    if which == "integer output":
        return {**ex, "output": ex["output"].round().to(torch.int64)}
    if which == "target dtype":
        other = torch.float32 if ex["output"].dtype == torch.float64 else torch.float64
        return {**ex, "target": ex["target"].to(other)}
    assert which == "floating ind"
    return {**ex, "ind": ex["ind"].to(ex["output"].dtype)}


def _gathered_errors(kind: str) -> tuple[ErrorInput, ...]:
    errs = (
        ErrorInput("target not (B, M, D) (one value, an extra channel, no channel axis)", "shape", "target",
                   _gathered_bad(kind, "target shape")),
        ErrorInput("mask with another slot count", "shape", "mask", _gathered_bad(kind, "mask shape")),
        ErrorInput("ind of another batch size", "shape", "ind", _gathered_bad(kind, "ind shape")),
        ErrorInput("ind outside [0, H*W)", "domain", "ind", _gathered_bad(kind, "ind range")),
        ErrorInput("mask outside [0, 1]", "domain", "mask", _gathered_bad(kind, "mask range")),
        ErrorInput("integer output", "dtype", "output", _gathered_bad(kind, "integer output")),
        ErrorInput("target of another dtype", "dtype", "target", _gathered_bad(kind, "target dtype")),
        ErrorInput("floating ind", "dtype", "ind", _gathered_bad(kind, "floating ind")),
    )
    if kind == "bce":
        errs += (ErrorInput("an active target outside [0, 1]", "domain", "target", _gathered_bad(kind, "target range")),)
    return errs


_NO_KEYWORDS = "the seed's head losses take no keyword arguments: there is no default to honour"


def _gathered_spec(spec_id: str, kind: str, summary: str, signature: str, oracle: Any, doc: str) -> Spec:
    return register(
        Spec(
            id=spec_id,
            family="centernet",
            signature=signature,
            summary=summary,
            reference=getattr(ref, spec_id),
            # the magnitude of the terms the loss subtracts (the oracle's), for every generic comparison
            scale=lambda ex, o=oracle: o(ex).scale,
            convention=Convention(
                args=(Arg("output", differentiable=True), Arg("mask"), Arg("ind", floating=False),
                      Arg("target", differentiable=True)),
                output_shape=lambda ex: (),
                errors=_gathered_errors(kind),
            ),
            strategies={
                "default": gathered(kind=kind),
                "gradcheck": gathered(kind=kind, dtypes=(torch.float64,), gradcheck=True),
                "device": gathered(kind=kind, dtypes=(torch.float32,), fp16=True, min_batch=1),
            },
            oracles=(Oracle("numpy", "numpy", oracle, primary=True, doc=doc),),
            opt_out={"defaults_honoured": _NO_KEYWORDS},
            regions=("float32", "float64", "(B, M, D) mask", "(B, M) mask", "fractional mask", "bool or integer mask",
                     "extreme values",
                     "empty batch", "no active slot", "nan / inf where nothing reads"),
        )
    )


REG = _gathered_spec(
    "reg_weighted_l1", "reg",
    "sum mask |output[b, :, ind] - target| / (sum mask + 1e-4), the mask per element; a (B, M) mask is expanded over "
    "D (CenterNet's RegL1Loss). Masked entries and unread pixels may hold anything, nan included.",
    "f(output: Tensor[B, D, H, W], mask: Tensor[B, M, D] | Tensor[B, M], ind: Tensor[B, M] int64, "
    "target: Tensor[B, M, D]) -> Tensor[]",
    _reg_numpy, "Equals the float64 loop over (image, slot, element), within the rounding of |pred - target|.",
)
BCE = _gathered_spec(
    "weighted_bce", "bce",
    "sum mask BCE_with_logits(output[b, :, ind], target) / (sum mask + 1e-4) (the nuScenes attribute head); soft "
    "targets in [0, 1] at active entries; masked entries and unread pixels may hold anything.",
    "f(output: Tensor[B, F, H, W] logits, mask: Tensor[B, M, F] | Tensor[B, M], ind: Tensor[B, M] int64, "
    "target: Tensor[B, M, F]) -> Tensor[]",
    _bce_numpy, "Equals the float64 loop over (image, slot, attribute), within the backward-stable error of BCE.",
)


def _call_gathered(fn: Target, ex: Ex, **over: Any) -> torch.Tensor:
    e = {**ex, **over}
    return fn.tensor(*(e[k] for k in _GATHERED))


def _gathered_properties(spec: Spec, kind: str, scale: Any) -> None:
    @st.composite
    def perturbed(draw: st.DrawFn) -> Ex:
        ex = draw(gathered(kind=kind))
        ex["noise"] = draw(st.sampled_from([3.0, -5.0, 1e3, math.nan]))
        return ex

    @spec.property(Category.INVARIANCE, strategy=perturbed(), name="masked_entries_do_not_matter")
    def masked(target: Target, ex: Ex) -> None:
        """Changing the targets of masked-out entries, and the output at pixels no active slot reads, leaves the
        loss unchanged."""
        b, d, h, w = ex["output"].shape
        m3 = _mask3(_np(ex["mask"]), d)
        read = _read(_np(ex["ind"]).astype(np.int64), m3, (b, d, h, w))
        tgt = torch.where(torch.from_numpy(m3 > 0), ex["target"], ex["target"] + ex["noise"])
        out = torch.where(torch.from_numpy(read), ex["output"], ex["output"] + ex["noise"])
        base = _call_gathered(target, ex)
        ck.assert_close(_call_gathered(target, ex, output=out, target=tgt), ck.f64(base), spec=spec.id, key="self",
                        dtype=ex["output"].dtype, what="loss with masked entries changed")

    @spec.property(Category.EQUIVALENCE, strategy=gathered(kind=kind, per_element=False), name="object_mask_is_expanded")
    def expanded(target: Target, ex: Ex) -> None:
        """A (B, M) mask gives the loss of the same mask repeated over the D channels (normaliser D per object)."""
        d = ex["output"].shape[1]
        m3 = ex["mask"].unsqueeze(2).expand(*ex["mask"].shape, d).contiguous()
        ck.assert_close(_call_gathered(target, ex), ck.f64(_call_gathered(target, ex, mask=m3)), spec=spec.id, key="self",
                        dtype=ex["output"].dtype, scale=scale(ex), what="(B, M) mask vs (B, M, D)")

    @spec.property(Category.REDUCTION, strategy=gathered(kind=kind), name="normalised_by_the_mask_sum")
    def normalised(target: Target, ex: Ex) -> None:
        """The batch repeated twice has the loss L (S + 1e-4) 2 / (2 S + 1e-4), S = sum of the (expanded) mask, and
        an appended image with every slot masked out changes nothing: the sum is divided by S + 1e-4, not by the
        batch size or the slot count."""
        base = ck.f64(_call_gathered(target, ex))
        s = float(_mask3(_np(ex["mask"]), ex["output"].shape[1]).sum())
        want = base * (s + _NORM_EPS) * 2 / (2 * s + _NORM_EPS)
        two = {k: torch.cat([ex[k], ex[k]]) for k in _GATHERED}
        ck.assert_close(_call_gathered(target, ex, **two), want, spec=spec.id, key="self", dtype=ex["output"].dtype,
                        scale=scale(ex), what="loss of the batch repeated twice")
        empty = {k: torch.cat([ex[k], torch.zeros_like(ex[k][:1])]) for k in _GATHERED}
        ck.assert_close(_call_gathered(target, ex, **empty), base, spec=spec.id, key="self", dtype=ex["output"].dtype,
                        scale=scale(ex), what="loss with an image without objects appended")


_gathered_properties(REG, "reg", _reg_scale)
_gathered_properties(BCE, "bce", _bce_scale)


@REG.property(Category.EQUIVALENCE, strategy=gathered())
def zero_for_perfect_predictions(target: Target, ex: Ex) -> None:
    """With every target equal to the output its slot reads, the loss is exactly 0."""
    g = torch.from_numpy(_gather_np(_np(ex["output"]), _np(ex["ind"]).astype(np.int64))).to(ex["output"].dtype)
    ck.assert_close(_call_gathered(target, ex, target=g.reshape(ex["target"].shape)), 0.0, spec=REG.id, key="self",
                    dtype=ex["output"].dtype, what="loss of perfect predictions")



# ---------------------------------------------------------------------------
# depth_l1 (output, target, ind, mask, cat)
# ---------------------------------------------------------------------------

_DEPTH = ("output", "target", "ind", "mask", "cat")
_DEPTH_LOGITS = st.one_of(_dyadic(-5, 5), st.sampled_from([1e4, -1e4, 88.0, -88.0, 1e30, -1e30, math.inf, -math.inf]))
_DEPTHS = st.one_of(_dyadic(0, 50), st.sampled_from([1e3, 1e4, 0.0]))


@st.composite
def depth_inputs(draw: st.DrawFn, *, dtypes: tuple[torch.dtype, ...] = hh.FLOAT_DTYPES, gradcheck: bool = False,
                 fp16: bool = False, min_batch: int = 0, min_slots: int = 0) -> Ex:
    """Raw depth logits, one channel or one per class, with extreme and infinite logits; (B, M) or (B, M, 1)
    targets and masks; nan / inf in masked targets and in pixels no active slot reads."""
    dtype = draw(hh.float_dtypes(dtypes=dtypes))
    b = _batch(draw, min_batch)
    c, h, w, m = draw(st.sampled_from([1, 1, 3])), draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(min_slots, 4))
    plain = gradcheck or fp16
    extreme = _extreme(draw, plain)
    out = _array(draw, (b, c, h, w), dtype, _DEPTH_LOGITS if extreme else _dyadic(-4, 4) if plain else _dyadic(-6, 6))
    tshape = (b, m, 1) if draw(st.booleans()) else (b, m)
    target = _array(draw, tshape, dtype, _dyadic(0, 32).map(lambda v: v + 1 / 16) if gradcheck else
                    _DEPTHS if extreme else _dyadic(0, 50))
    mshape = (b, m, 1) if draw(st.booleans()) else (b, m)
    mask = _np(_array(draw, mshape, torch.float64, st.sampled_from([0.0, 1.0, 1.0, 0.5])))
    ind = _ints(draw(st.lists(st.integers(0, h * w - 1), min_size=b * m, max_size=b * m)), (b, m))
    # One depth channel: cat is the object's class, which the loss must not read (any id, not only 0).
    cat = _ints(draw(st.lists(st.integers(0, c - 1 if c > 1 else 4), min_size=b * m, max_size=b * m)), (b, m))
    m2 = mask.reshape(b, m)
    if not plain:
        target = _spoil(draw, target, (m2 <= 0).reshape(tshape))
        read = _read(_np(ind).astype(np.int64), m2[:, :, None], (b, c, h, w), cat=_np(cat).astype(np.int64))
        out = _spoil(draw, out, ~read)
    _dtype_region(dtype)
    hh.region("per-class depth (C > 1)" if c > 1 else "one depth channel")
    hh.region("(B, M, 1) target or mask" if 3 in (len(tshape), len(mshape)) else "(B, M) target and mask")
    if b == 0:
        hh.region("empty batch")
    elif not (m2 > 0).any():
        hh.region("no active slot")
    if ((m2 > 0) & (m2 < 1)).any():
        hh.region("fractional mask")
    return {"output": out, "target": target, "ind": ind, "mask": _mask_layout(draw, mask, dtype), "cat": cat}


def _depth_parts(ex: Ex, *, transform: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (transformed) depth each slot reads, its target and its mask, (B, M) each."""
    x = _np(ex["output"])
    b, c = x.shape[:2]
    ind, cat = _np(ex["ind"]).astype(np.int64), _np(ex["cat"]).astype(np.int64)
    g = _gather_np(x, ind)
    g = np.take_along_axis(g, cat[:, :, None], axis=2)[:, :, 0] if c > 1 else g[:, :, 0]
    m = _np(ex["mask"]).reshape(ind.shape)
    with np.errstate(invalid="ignore", over="ignore"):
        dep = npo.depth_transform(np.where(m > 0, g, 0.0)) if transform else g
    return dep, _np(ex["target"]).reshape(ind.shape), m


def _depth_scale(ex: Ex, *, transform: bool = True) -> float:
    # sigmoid(x) rounds (relative u): the depth moves by u (|dep| + 1); dep - target rounds once more.
    dep, t, m = _depth_parts(ex, transform=transform)
    with np.errstate(invalid="ignore"):
        return _masked_mean(np.abs(dep) + 1.0 + np.abs(t), m)


def _depth_numpy(ex: Ex) -> Want:
    value = npo.depth_l1(_np(ex["output"]), _np(ex["target"]), _np(ex["ind"]).astype(np.int64), _np(ex["mask"]),
                         _np(ex["cat"]).astype(np.int64))
    return Want(value, scale=_depth_scale(ex))


@st.composite
def _depth_bad(draw: st.DrawFn, which: str) -> Ex:
    ex = draw(depth_inputs(gradcheck=True, min_batch=1, min_slots=1))
    b, c, h, w = ex["output"].shape
    m = ex["ind"].shape[1]
    dt = ex["output"].dtype
    if which == "target shape":
        shape = draw(st.sampled_from([(1,), (b, m, 2), (b, m + 1)]))
        return {**ex, "target": torch.full(shape, 5.0, dtype=dt)}
    if which == "mask shape":
        return {**ex, "mask": torch.ones(b, m, 2, dtype=dt)}
    if which == "cat shape":
        return {**ex, "cat": torch.zeros(b, m + 1, dtype=torch.int64)}
    if which == "ind range":
        mm = max(m, 1)
        return {**ex, "ind": torch.full((b, mm), draw(st.sampled_from([h * w, -1])), dtype=torch.int64),
                "cat": torch.zeros(b, mm, dtype=torch.int64), "mask": torch.ones(b, mm, dtype=dt),
                "target": torch.ones(b, mm, dtype=dt)}
    if which == "cat range":
        mm = max(m, 1)
        out = ex["output"] if c > 1 else ex["output"].expand(b, 3, h, w).contiguous()
        return {**ex, "output": out, "cat": torch.full((b, mm), draw(st.sampled_from([3, -1])), dtype=torch.int64),
                "ind": torch.zeros(b, mm, dtype=torch.int64), "mask": torch.ones(b, mm, dtype=dt),
                "target": torch.ones(b, mm, dtype=dt)}
    if which == "mask range":
        return {**ex, "mask": torch.full(tuple(ex["mask"].shape), draw(st.sampled_from([2.0, -1.0])), dtype=dt)}
    if which == "integer output":
        return {**ex, "output": ex["output"].round().to(torch.int64)}
    if which == "target dtype":
        return {**ex, "target": ex["target"].to(torch.float32 if dt == torch.float64 else torch.float64)}
    assert which == "floating cat"
    return {**ex, "cat": ex["cat"].to(dt)}


DEPTH = register(
    Spec(
        id="depth_l1",
        family="centernet",
        signature="f(output: Tensor[B, C, H, W] raw logits, target: Tensor[B, M] | Tensor[B, M, 1], ind: Tensor[B, M] "
        "int64, mask: Tensor[B, M] | Tensor[B, M, 1], cat: Tensor[B, M] int64) -> Tensor[]",
        summary="L1 between the gathered depth 1 / (sigmoid(output) + 1e-6) - 1 (channel cat when C > 1) and the "
        "target, sum mask |.| / (sum mask + 1e-4); masked slots and unread pixels may hold anything.",
        reference=ref.depth_l1,
        scale=_depth_scale,
        convention=Convention(
            args=(Arg("output", differentiable=True), Arg("target", differentiable=True), Arg("ind", floating=False),
                  Arg("mask"), Arg("cat", floating=False)),
            output_shape=lambda ex: (),
            errors=(
                ErrorInput("target not (B, M) or (B, M, 1)", "shape", "target", _depth_bad("target shape")),
                ErrorInput("mask not (B, M) or (B, M, 1)", "shape", "mask", _depth_bad("mask shape")),
                ErrorInput("cat with another slot count", "shape", "cat", _depth_bad("cat shape")),
                ErrorInput("ind outside [0, H*W)", "domain", "ind", _depth_bad("ind range")),
                ErrorInput("cat outside [0, C) for a per-class head", "domain", "cat", _depth_bad("cat range")),
                ErrorInput("mask outside [0, 1]", "domain", "mask", _depth_bad("mask range")),
                ErrorInput("integer output", "dtype", "output", _depth_bad("integer output")),
                ErrorInput("target of another dtype", "dtype", "target", _depth_bad("target dtype")),
                ErrorInput("floating cat", "dtype", "cat", _depth_bad("floating cat")),
            ),
        ),
        strategies={
            "default": depth_inputs(),
            "gradcheck": depth_inputs(dtypes=(torch.float64,), gradcheck=True),
            "device": depth_inputs(dtypes=(torch.float32,), fp16=True, min_batch=1),
        },
        oracles=(Oracle("numpy", "numpy", _depth_numpy, primary=True,
                        doc="Equals the float64 loop with the transform 1 / (sigmoid(x) + 1e-6) - 1 applied to the "
                        "gathered logits, within the rounding of sigmoid(x)."),),
        opt_out={"defaults_honoured": _NO_KEYWORDS},
        regions=("float32", "float64", "per-class depth (C > 1)", "one depth channel", "(B, M, 1) target or mask",
                 "extreme values",
                 "(B, M) target and mask", "empty batch", "no active slot", "fractional mask", "bool or integer mask",
                 "nan / inf where nothing reads"),
    )
)


def _call_depth(fn: Target, ex: Ex, **over: Any) -> torch.Tensor:
    e = {**ex, **over}
    return fn.tensor(*(e[k] for k in _DEPTH))


@DEPTH.property(Category.EQUIVALENCE, strategy=depth_inputs())
def zero_for_perfect_predictions(target: Target, ex: Ex) -> None:  # noqa: F811 (registered per spec by the decorator)
    """With each target set to the transformed depth its slot reads (rounded to the dtype), the loss is 0 within
    the rounding of sigmoid(x): the transform is the seed's, read at the slot's class."""
    dep, _t, _m = _depth_parts(ex)
    t = torch.from_numpy(dep).to(ex["output"].dtype).reshape(ex["target"].shape)
    ck.assert_close(_call_depth(target, ex, target=t), 0.0, spec=DEPTH.id, key="self", dtype=ex["output"].dtype,
                    scale=_depth_scale({**ex, "target": t}), what="loss of perfect depths")


@DEPTH.property(Category.INVARIANCE, strategy=depth_inputs())
def other_classes_and_masked_slots_do_not_matter(target: Target, ex: Ex) -> None:
    """Changing the targets of masked slots, and every channel and pixel no active slot reads (the other classes
    of a per-class head included), leaves the loss unchanged."""
    b, c, h, w = ex["output"].shape
    m = _np(ex["mask"]).reshape(ex["ind"].shape)
    read = _read(_np(ex["ind"]).astype(np.int64), m[:, :, None], (b, c, h, w), cat=_np(ex["cat"]).astype(np.int64))
    out = torch.where(torch.from_numpy(read), ex["output"], ex["output"] - 3.0)
    tgt = torch.where(torch.from_numpy(m > 0).reshape(ex["target"].shape), ex["target"], ex["target"] + 7.0)
    base = _call_depth(target, ex)
    ck.assert_close(_call_depth(target, ex, output=out, target=tgt), ck.f64(base), spec=DEPTH.id, key="self",
                    dtype=ex["output"].dtype, what="loss with unread entries changed")


@DEPTH.property(Category.REDUCTION, strategy=depth_inputs())
def normalised_by_the_mask_sum(target: Target, ex: Ex) -> None:
    """The batch repeated twice has the loss L (S + 1e-4) 2 / (2 S + 1e-4), S = sum mask, and an appended image with
    every slot masked out changes nothing."""
    base = ck.f64(_call_depth(target, ex))
    s = float(_np(ex["mask"]).sum())
    want = base * (s + _NORM_EPS) * 2 / (2 * s + _NORM_EPS)
    two = {k: torch.cat([ex[k], ex[k]]) for k in _DEPTH}
    ck.assert_close(_call_depth(target, ex, **two), want, spec=DEPTH.id, key="self", dtype=ex["output"].dtype,
                    scale=_depth_scale(ex), what="loss of the batch repeated twice")
    empty = {k: torch.cat([ex[k], torch.zeros_like(ex[k][:1])]) for k in _DEPTH}
    ck.assert_close(_call_depth(target, ex, **empty), base, spec=DEPTH.id, key="self", dtype=ex["output"].dtype,
                    scale=_depth_scale(ex), what="loss with an image without objects appended")


# ---------------------------------------------------------------------------
# bin_rot (output, mask, ind, rotbin, rotres)
# ---------------------------------------------------------------------------

_ROT = ("output", "mask", "ind", "rotbin", "rotres")
_ROT_OUT = st.one_of(_dyadic(-3, 3), st.sampled_from([1e4, -1e4, 1e30, -1e30]))


@st.composite
def rot_inputs(draw: st.DrawFn, *, dtypes: tuple[torch.dtype, ...] = hh.FLOAT_DTYPES, gradcheck: bool = False,
               fp16: bool = False, unique_pixels: bool = False, min_batch: int = 0, min_slots: int = 0) -> Ex:
    """Eight-channel rotation heads (extreme values included), bins and residuals encoded from angles (and now
    and then any bins and residuals), (B, M) or (B, M, 1) masks, nan / inf where nothing reads."""
    dtype = draw(hh.float_dtypes(dtypes=dtypes))
    b = 1 if gradcheck else _batch(draw, min_batch)
    h, w = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if gradcheck else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    m = draw(st.integers(min_slots, min(4, h * w) if unique_pixels else 4))
    plain = gradcheck or fp16
    extreme = _extreme(draw, plain)
    out_el = _dyadic(-3, 3).map(lambda v: v + 1 / 64) if gradcheck else _ROT_OUT if extreme else _dyadic(-3, 3)
    out = _array(draw, (b, 8, h, w), dtype, out_el)
    angles = np.array(draw(st.lists(st.integers(-180, 179).map(lambda v: v * math.pi / 180), min_size=b * m, max_size=b * m)))
    rotbin, rotres = npo.encode_alpha_to_bins(angles.reshape(b, m))
    if not plain and b * m and draw(st.integers(0, 4)) == 0:
        rotbin = np.array(draw(st.lists(st.integers(0, 1), min_size=b * m * 2, max_size=b * m * 2))).reshape(b, m, 2)
        rotres = np.array(draw(st.lists(st.sampled_from([0.5, -2.0, 4.0, 1e4, -1e4]), min_size=b * m * 2,
                                        max_size=b * m * 2))).reshape(b, m, 2)
        hh.region("bins and residuals off the encoding")
    if fp16:
        rotres = np.round(rotres * 64) / 64
    mshape = (b, m, 1) if draw(st.booleans()) else (b, m)
    mask = _np(_array(draw, mshape, torch.float64, st.sampled_from([0.0, 1.0, 1.0, 1.0, 0.5])))
    if unique_pixels:
        ind_l = [p for _ in range(b) for p in draw(st.permutations(range(h * w)))[:m]]
    else:
        ind_l = draw(st.lists(st.integers(0, h * w - 1), min_size=b * m, max_size=b * m))
    ind = _ints(ind_l, (b, m))
    rr = _tensor(rotres, (b, m, 2), dtype)
    m2 = mask.reshape(b, m)
    if not plain:
        rr = _spoil(draw, rr, np.repeat((m2 <= 0)[:, :, None], 2, axis=2))
        out = _spoil(draw, out, ~_read(_np(ind).astype(np.int64), np.repeat(m2[:, :, None], 8, axis=2), (b, 8, h, w)))
    _dtype_region(dtype)
    hh.region("(B, M, 1) mask" if len(mshape) == 3 else "(B, M) mask")
    if b == 0:
        hh.region("empty batch")
    elif not (m2 > 0).any():
        hh.region("no active slot")
    if ((m2 > 0) & (m2 < 1)).any():
        hh.region("fractional mask")
    return {"output": out, "mask": _mask_layout(draw, mask, dtype), "ind": ind, "rotbin": _ints(rotbin, (b, m, 2)),
            "rotres": rr}


def _rot_parts(ex: Ex) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    ind = _np(ex["ind"]).astype(np.int64)
    return (_gather_np(_np(ex["output"]), ind), _np(ex["mask"]).reshape(ind.shape), _np(ex["rotbin"]),
            _np(ex["rotres"]))


def _rot_scale(ex: Ex) -> float:
    """log-sum-exp minus a logit cancels to u max(|l0|, |l1|); s - sin(r) rounds to u (|s| + 1)."""
    g, m, bins, res = _rot_parts(ex)
    active = m > 0
    if not active.any():
        return 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        ce = sum(np.abs(g[..., 4 * k]) + np.abs(g[..., 4 * k + 1]) + 1.0 for k in (0, 1))
        total = float(np.where(active, m * ce, 0.0).sum() / m[active].sum())
        for k in (0, 1):
            sel = active & (bins[..., k] == 1)
            if sel.any():
                el = np.abs(g[..., 4 * k + 2]) + np.abs(g[..., 4 * k + 3]) + 2.0
                total += float(np.where(sel, m * el, 0.0).sum() / m[sel].sum())
    return total


def _rot_numpy(ex: Ex) -> Want:
    g_out, ind = _np(ex["output"]), _np(ex["ind"]).astype(np.int64)
    value = npo.bin_rot(g_out, _np(ex["mask"]), ind, _np(ex["rotbin"]).astype(np.int64), _np(ex["rotres"]))
    return Want(value, scale=_rot_scale(ex))


@st.composite
def _rot_bad(draw: st.DrawFn, which: str) -> Ex:
    ex = draw(rot_inputs(gradcheck=True, min_batch=1, min_slots=1))
    b, _, h, w = ex["output"].shape
    m = ex["ind"].shape[1]
    dt = ex["output"].dtype
    if which == "channels":
        n = draw(st.sampled_from([7, 4, 16]))
        return {**ex, "output": torch.zeros(b, n, h, w, dtype=dt)}
    if which == "rotres shape":
        return {**ex, "rotres": ex["rotres"][..., :1].contiguous()}
    if which == "rotbin shape":
        return {**ex, "rotbin": ex["rotbin"][..., :1].contiguous()}
    if which == "rotbin values":
        mm = max(m, 1)
        return {**ex, "rotbin": torch.full((b, mm, 2), draw(st.sampled_from([2, -1])), dtype=torch.int64),
                "rotres": torch.zeros(b, mm, 2, dtype=dt), "ind": torch.zeros(b, mm, dtype=torch.int64),
                "mask": torch.ones(b, mm, dtype=dt)}
    if which == "ind range":
        return {**ex, "ind": torch.full((b, m), h * w, dtype=torch.int64)} if m else {
            **ex, "ind": torch.full((b, 1), h * w, dtype=torch.int64), "mask": torch.ones(b, 1, dtype=dt),
            "rotbin": torch.ones(b, 1, 2, dtype=torch.int64), "rotres": torch.zeros(b, 1, 2, dtype=dt)}
    if which == "floating rotbin":
        return {**ex, "rotbin": ex["rotbin"].to(dt)}
    assert which == "rotres dtype"
    return {**ex, "rotres": ex["rotres"].to(torch.float32 if dt == torch.float64 else torch.float64)}


ROT = register(
    Spec(
        id="bin_rot",
        family="centernet",
        signature="f(output: Tensor[B, 8, H, W], mask: Tensor[B, M] | Tensor[B, M, 1], ind: Tensor[B, M] int64, "
        "rotbin: Tensor[B, M, 2] int64, rotres: Tensor[B, M, 2]) -> Tensor[]",
        summary="Two overlapping angle bins (centres -pi/2, +pi/2): per bin, mask-weighted mean cross-entropy of the "
        "bin logits plus smooth L1 of (sin, cos) against (sin, cos) of the residual, averaged over the active slots "
        "in that bin; masked slots contribute nothing, whatever they hold.",
        reference=ref.bin_rot,
        scale=_rot_scale,
        convention=Convention(
            args=(Arg("output", differentiable=True), Arg("mask"), Arg("ind", floating=False),
                  Arg("rotbin", floating=False), Arg("rotres", differentiable=True)),
            output_shape=lambda ex: (),
            errors=(
                ErrorInput("output without 8 channels", "shape", "output", _rot_bad("channels")),
                ErrorInput("rotres (B, M, 1): one residual for both bins", "shape", "rotres", _rot_bad("rotres shape")),
                ErrorInput("rotbin (B, M, 1)", "shape", "rotbin", _rot_bad("rotbin shape")),
                ErrorInput("rotbin outside {0, 1}", "domain", "rotbin", _rot_bad("rotbin values")),
                ErrorInput("ind outside [0, H*W)", "domain", "ind", _rot_bad("ind range")),
                ErrorInput("floating rotbin", "dtype", "rotbin", _rot_bad("floating rotbin")),
                ErrorInput("rotres of another dtype", "dtype", "rotres", _rot_bad("rotres dtype")),
            ),
        ),
        strategies={
            "default": rot_inputs(),
            "gradcheck": rot_inputs(dtypes=(torch.float64,), gradcheck=True),
            "device": rot_inputs(dtypes=(torch.float32,), fp16=True, min_batch=1),
        },
        oracles=(Oracle("numpy", "numpy", _rot_numpy, primary=True,
                        doc="Equals the float64 loop: masked mean bin cross-entropy plus (sin, cos) smooth L1 over "
                        "each bin's active slots."),),
        variants=(
            Variant(
                "seed_bin_rot",
                ref.seed_bin_rot,
                why="Seed 003's compute_rot_loss multiplies masked logits by 0 and still averages their cross-entropy "
                "(log 2 each) over all B*M slots, and picks residual slots by rotbin alone, ignoring the mask.",
            ),
        ),
        opt_out={"defaults_honoured": _NO_KEYWORDS},
        regions=("float32", "float64", "(B, M, 1) mask", "(B, M) mask", "empty batch", "no active slot", "extreme values",
                 "fractional mask", "bool or integer mask", "nan / inf where nothing reads",
                 "bins and residuals off the encoding"),
    )
)


def _call_rot(target: Target, ex: Ex, **over: Any) -> torch.Tensor:
    e = {**ex, **over}
    return target.tensor(*(e[k] for k in _ROT))


def _inactive(ex: Ex) -> torch.Tensor:
    return torch.from_numpy(_np(ex["mask"]).reshape(ex["ind"].shape) <= 0)


@ROT.property(Category.INVARIANCE, strategy=rot_inputs())
def masked_slots_do_not_matter(target: Target, ex: Ex) -> None:  # noqa: F811 (registered per spec by the decorator)
    """Giving masked slots other bins, residuals and pixels leaves the loss unchanged."""
    off = _inactive(ex)
    h, w = ex["output"].shape[2:]
    rotbin = torch.where(off.unsqueeze(-1), 1 - ex["rotbin"], ex["rotbin"])
    rotres = torch.where(off.unsqueeze(-1), ex["rotres"] + 1.0, ex["rotres"])
    ind = torch.where(off, (ex["ind"] + 1) % (h * w), ex["ind"])
    base = _call_rot(target, ex)
    ck.assert_close(_call_rot(target, ex, rotbin=rotbin, rotres=rotres, ind=ind), ck.f64(base), spec=ROT.id, key="self",
                    dtype=ex["output"].dtype, what="loss with masked slots changed")


@ROT.property(Category.INVARIANCE, strategy=rot_inputs())
def residual_only_on_active_bins(target: Target, ex: Ex) -> None:
    """Changing a slot's residual in a bin it is not in leaves the loss unchanged."""
    rotres = torch.where(ex["rotbin"] == 0, ex["rotres"] + 2.0, ex["rotres"])
    base = _call_rot(target, ex)
    ck.assert_close(_call_rot(target, ex, rotres=rotres), ck.f64(base), spec=ROT.id, key="self",
                    dtype=ex["output"].dtype, what="loss with inactive residuals changed")


@ROT.property(Category.INVARIANCE, strategy=rot_inputs())
def residual_angle_periodic(target: Target, ex: Ex) -> None:
    """Adding 2 pi to every residual leaves the loss unchanged (only sin and cos are learned), within the rounding
    of r + 2 pi to the dtype (tolerances: rounded_residual)."""
    shifted = (ex["rotres"].double() + 2 * math.pi).to(ex["rotres"].dtype)
    g, m, bins, res = _rot_parts(ex)
    scale = _rot_scale(ex)
    active = m > 0
    with np.errstate(invalid="ignore"):
        for k in (0, 1):
            sel = active & (bins[..., k] == 1)
            if sel.any():
                # |d SL1(s - sin r) + SL1(c - cos r) / dr| <= |cos r| + |sin r| <= 2, times |r + 2 pi| for its rounding
                scale += float(np.where(sel, m * 2 * (np.abs(res[..., k]) + 2 * math.pi), 0.0).sum() / m[sel].sum())
    base = _call_rot(target, ex)
    ck.assert_close(_call_rot(target, ex, rotres=shifted), ck.f64(base), spec=ROT.id, key="rounded_residual",
                    dtype=ex["output"].dtype, scale=scale, what="loss with residuals + 2 pi")


@ROT.property(Category.EQUIVALENCE, strategy=rot_inputs(unique_pixels=True))
def exact_residuals_leave_bin_classification_only(target: Target, ex: Ex) -> None:
    """With the predicted (sin, cos) of each active slot equal to those of its residuals, the loss is the bin
    classification term alone (the residual channels are read at the right offsets; smooth L1 is 0 at 0)."""
    out = _np(ex["output"]).copy()
    ind, m, res = _np(ex["ind"]).astype(np.int64), _np(ex["mask"]).reshape(ex["ind"].shape), _np(ex["rotres"])
    w = out.shape[3]
    for i, j in zip(*np.nonzero(m > 0)):
        y, x = divmod(int(ind[i, j]), w)
        for k, base in ((0, 2), (1, 6)):
            out[i, base, y, x], out[i, base + 1, y, x] = math.sin(res[i, j, k]), math.cos(res[i, j, k])
    o = torch.from_numpy(out).to(ex["output"].dtype)
    bins_only = {**ex, "output": o}
    want = _rot_numpy(bins_only)
    ck.assert_close(_call_rot(target, ex, output=o), want.value, spec=ROT.id, key="self", dtype=o.dtype,
                    scale=want.scale, what="loss with exact residuals")


# ---------------------------------------------------------------------------
# generic_loss (outputs, batch, *, weights, heads, sigmoid_dep_sec)
# ---------------------------------------------------------------------------

_OPTIONAL_HEADS = ("wh", "reg", "velocity", "dep", "dep_sec", "rot", "rot_sec", "nuscenes_att", "hm_hp", "hp_offset")
_HEAD_WEIGHTS = st.sampled_from([1.0, 1.0, 0.5, 2.0, 0.0, 0.125])


def _heads_values(ex: Ex) -> st.SearchStrategy[list[str]]:
    """A configured head list: some of the heads the outputs carry (in any order) and some they do not."""
    present = [h for h in ex["outputs"][0]]
    return st.lists(st.sampled_from(sorted(set(present) | {"wh", "tracking", "ltrb"})), unique=True, max_size=len(present) + 1)


def _weights_values(ex: Ex) -> st.SearchStrategy[dict[str, float]]:
    """Other weights for the heads the outputs carry (0 included)."""
    return st.fixed_dictionaries({h: _HEAD_WEIGHTS for h in ex["outputs"][0]})


@st.composite
def generic_inputs(draw: st.DrawFn, *, dtypes: tuple[torch.dtype, ...] = hh.FLOAT_DTYPES, gradcheck: bool = False,
                   fp16: bool = False, keywords: bool = True, with_hm: bool | None = None,
                   extreme: bool = False) -> Ex:
    """Stacks of head outputs (heatmap, size, offset, velocity, depth, second depth, rotation, attributes, keypoint
    heatmap and offsets), the seed's batch keys, per-head weights (0 included), the heads and sigmoid_dep_sec
    keywords; extreme heatmap and head values and nan / inf in masked targets. ``gradcheck``: float64, one small
    image, values off every kink (L1 at 0, the clamp, smooth L1 at 1); ``fp16``: values representable in float16;
    ``extreme``: extreme values in every example (one in four otherwise)."""
    dtype = draw(hh.float_dtypes(dtypes=dtypes))
    plain = gradcheck or fp16
    b = 1 if gradcheck else draw(st.integers(1, 2))
    c = draw(st.integers(1, 2))
    h, w = (2, 2) if gradcheck else (draw(st.integers(2, 3)), draw(st.integers(2, 3)))
    # Slots per image; none in one example in six ("no objects" came up in over half the examples when
    # 0 was one of four equally drawn counts, and a head's loss is only judged where objects are).
    m = draw(st.integers(1, 2)) if gradcheck else 0 if draw(st.integers(0, 5)) == 0 else draw(st.integers(1, 3))
    n_stacks = 1 if gradcheck else draw(st.integers(1, 2))
    hm = draw(st.integers(0, 7)) > 0 if with_hm is None else with_hm
    # gradcheck leaves out the eight-channel rotation heads (bin_rot's own gradcheck covers them): cost.
    optional = tuple(hd for hd in _OPTIONAL_HEADS if not (gradcheck and hd.startswith("rot")))
    # Each optional head in with probability 1/3 (a list of up to four drawn heads left any one head
    # out of four examples in five, so a defect in one head's loss could go unseen for a whole run).
    chosen = [hd for hd in optional if draw(st.integers(0, 2)) == 0]
    if not hm and not chosen:
        chosen = [draw(st.sampled_from(optional))]
    heads = (["hm"] if hm else []) + chosen[: 2 if gradcheck else 4]
    if "dep_sec" not in heads and not draw(st.integers(0, 2)):
        heads.append("dep_sec")  # often, so that sigmoid_dep_sec has something to act on
    extreme = _extreme(draw, plain, always=extreme)
    el = _dyadic(-3, 3)
    off = el.map(lambda v: v + 1 / 32) if gradcheck else st.one_of(el, st.sampled_from([1e4, -1e4])) if extreme else el
    hm_el = st.one_of(_dyadic(-4, 4), st.sampled_from([40.0, -40.0, 1e4, -1e4])) if extreme else el

    def arr(shape: tuple[int, ...], elements: st.SearchStrategy[float] = el) -> torch.Tensor:
        return _array(draw, shape, dtype, elements)

    def slots(n_cls: int, n: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, torch.Tensor]:
        ind = _ints(draw(st.lists(st.integers(0, h * w - 1), min_size=b * n, max_size=b * n)), (b, n))
        cat = _ints(draw(st.lists(st.integers(0, n_cls - 1), min_size=b * n, max_size=b * n)), (b, n))
        mk = np.array(draw(st.lists(st.sampled_from([0.0, 1.0, 1.0]), min_size=b * n, max_size=b * n))).reshape(b, n)
        gt = _np(arr((b, n_cls, h, w), st.sampled_from([0.0, 0.0, 0.25, 0.5, 0.875])))
        for i, j in zip(*np.nonzero(mk > 0)):
            gt[i, int(cat[i, j])].flat[int(ind[i, j])] = 1.0
        return ind, cat, mk, torch.from_numpy(gt).to(dtype)

    def masked_target(t: torch.Tensor, mk: np.ndarray) -> torch.Tensor:
        return t if plain else _spoil(draw, t, np.broadcast_to(mk.reshape(mk.shape + (1,) * (t.dim() - mk.ndim)) <= 0, t.shape))

    # The masks' layout, one for the whole batch: the floating dtype, or bool / int64 (each head's loss
    # accepts them; the caller's batch must come back with the very tensors it held).
    layout = "float" if plain else draw(st.sampled_from(["float", "float", "bool", "int"]))
    if layout != "float":
        hh.region("bool or integer masks")

    def as_mask(a: np.ndarray) -> torch.Tensor:
        a = np.ascontiguousarray(a)
        return torch.from_numpy(a > 0) if layout == "bool" else (
            torch.from_numpy(a.astype(np.int64)) if layout == "int" else torch.from_numpy(a).to(dtype))

    ind, cat, mk, gt = slots(c, m)
    batch: dict[str, torch.Tensor] = {"hm": gt, "ind": ind, "mask": as_mask(mk), "cat": cat}
    dims: dict[str, int] = {"hm": c, "wh": 2, "reg": 2, "velocity": 3, "dep": c if draw(st.booleans()) else 1,
                            "dep_sec": 1, "rot": 8, "rot_sec": 8, "nuscenes_att": 3, "hp_offset": 2}
    # Only the batch entries of the drawn heads (drawing every head's targets costs more than the call).
    for hd in ("wh", "reg", "velocity"):
        if hd in heads:
            batch[hd] = masked_target(arr((b, m, dims[hd])), mk)
            batch[hd + "_mask"] = as_mask(np.repeat(mk[:, :, None], dims[hd], 2))
    if "dep" in heads or "dep_sec" in heads:
        depths = _dyadic(1, 32).map(lambda v: v + 1 / 16) if gradcheck else _dyadic(1, 32) if fp16 else st.one_of(
            _dyadic(1, 50), st.just(1e3))
        batch["dep"] = masked_target(arr((b, m, 1), depths), mk)
        batch["dep_mask"] = as_mask(mk[:, :, None])
    if "rot" in heads or "rot_sec" in heads:
        angles = np.array(draw(st.lists(st.integers(-180, 179).map(lambda v: v * math.pi / 180), min_size=b * m,
                                        max_size=b * m)))
        rotbin, rotres = npo.encode_alpha_to_bins(angles.reshape(b, m))
        batch["rotbin"] = _ints(rotbin, (b, m, 2))
        batch["rotres"] = masked_target(_tensor(np.round(rotres * 64) / 64 if fp16 else rotres, (b, m, 2), dtype), mk)
        batch["rot_mask"] = as_mask(mk)
    if "nuscenes_att" in heads:
        batch["nuscenes_att"] = masked_target(arr((b, m, 3), st.sampled_from([0.0, 1.0, 0.5])), mk)
        batch["nuscenes_att_mask"] = as_mask(np.repeat(mk[:, :, None], 3, 2))
    if "hm_hp" in heads or "hp_offset" in heads:
        joints, mh = draw(st.integers(1, 2)), draw(st.integers(0, 2))
        hp_ind, joint, hmk, hp_gt = slots(joints, mh)
        dims["hm_hp"] = joints
        batch.update({"hm_hp": hp_gt, "hp_ind": hp_ind, "joint": joint, "hm_hp_mask": as_mask(hmk),
                      "hp_offset": masked_target(arr((b, mh, 2)), hmk),
                      "hp_offset_mask": as_mask(np.repeat(hmk[:, :, None], 2, 2))})
        hh.region("keypoint heads (hm_hp, hp_offset)")
    outputs = []
    for _ in range(n_stacks):
        stack = {}
        for hd in heads:
            stack[hd] = arr((b, dims[hd], h, w), hm_el if hd in ("hm", "hm_hp") else off)
        outputs.append(stack)
    weights = {hd: draw(st.sampled_from([1.0, 0.5, 2.0]) if gradcheck else _HEAD_WEIGHTS) for hd in heads}
    ex: Ex = {"outputs": outputs, "batch": batch, "weights": weights}
    if keywords and draw(st.integers(0, 2)) == 0:
        ex["heads"] = draw(_heads_values(ex))
        hh.region("heads keyword set")
    if keywords and draw(st.integers(0, 2)) == 0:
        ex["sigmoid_dep_sec"] = draw(st.booleans())
        if ex["sigmoid_dep_sec"] and "dep_sec" in heads:
            hh.region("sigmoid_dep_sec on a dep_sec head")
    _dtype_region(dtype)
    hh.region("one stack" if n_stacks == 1 else "two stacks")
    if not hm:
        hh.region("no heatmap head")
    if any(v == 0.0 for v in weights.values()):
        hh.region("a weight-0 head")
    if not (mk > 0).any():
        hh.region("no objects")
    if hm and (np.abs(_np(outputs[0]["hm"])) > _LOG_9999).any():
        hh.region("saturated heatmap logits (clamp active)")
    return ex


def _active_heads(ex: Ex) -> list[str]:
    out0 = ex["outputs"][0]
    present = [h for h in ex.get("heads", ref.LOSS_ORDER) if h in out0 and (h != "hp_offset" or "hm_hp" in out0)]
    return [h for h in present if float(ex["weights"][h]) != 0.0]


def _generic_output(result: Any) -> torch.Tensor:
    """The judged tensor: [total, loss[h] for h in sorted(per-head dict)] (the dict's order is not the contract)."""
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)):
        raise AssertionError(f"the target returned {type(result).__name__}, but should return (total, dict of head losses)")
    total, per = result
    parts = [("total", total)] + [(h, per[h]) for h in sorted(per)]
    for name, v in parts:
        if not isinstance(v, torch.Tensor) or v.dim() != 0:
            raise AssertionError(f"loss[{name!r}] is {type(v).__name__} {getattr(v, 'shape', '')}, but should be a 0-d tensor")
        if v.dtype != total.dtype or v.device != total.device:
            raise AssertionError(f"loss[{name!r}] is {v.dtype} on {v.device}, but the total is {total.dtype} on {total.device}")
    return torch.stack([v for _, v in parts])


def _np_tree(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return ck.f64(x) if x.is_floating_point() else x.numpy()
    if isinstance(x, dict):
        return {k: _np_tree(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_np_tree(v) for v in x]
    return x


def _head_scale(h: str, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], sigmoid_dep_sec: bool) -> float:
    """The scale of one head's loss on one stack (the head spec's own, on the batch keys the seed uses)."""
    bt = batch
    if h in ("hm", "hm_hp"):
        keys = ("ind", "mask", "cat") if h == "hm" else ("hp_ind", "hm_hp_mask", "joint")
        fex = {"pred_prob": out[h], "gt_heatmap": bt[h], **dict(zip(_SLOTS, (bt[k] for k in keys))), "from_logits": True}
        return _focal_scale(fex, npo.clamped_sigmoid(_np(out[h])), rounded_p=True)
    if h in ("dep", "dep_sec"):
        dex = {"output": out[h], "target": bt["dep"], "ind": bt["ind"], "mask": bt["dep_mask"], "cat": bt["cat"]}
        return _depth_scale(dex, transform=h == "dep" or sigmoid_dep_sec)
    if h in ("rot", "rot_sec"):
        return _rot_scale({"output": out[h], "mask": bt["rot_mask"], "ind": bt["ind"], "rotbin": bt["rotbin"],
                           "rotres": bt["rotres"]})
    if h == "nuscenes_att":
        return _bce_scale({"output": out[h], "mask": bt["nuscenes_att_mask"], "ind": bt["ind"], "target": bt[h]})
    ind = bt["hp_ind"] if h == "hp_offset" else bt["ind"]
    return _reg_scale({"output": out[h], "mask": bt[h + "_mask"], "ind": ind, "target": bt[h]})


def _generic_numpy(ex: Ex) -> Want:
    heads = ex.get("heads", ref.LOSS_ORDER)
    total, per = npo.generic_loss(_np_tree(ex["outputs"]), _np_tree(ex["batch"]), ex["weights"], heads,
                                  ex.get("sigmoid_dep_sec", False))
    names = sorted(per)
    n = len(ex["outputs"])
    scales = {h: sum(_head_scale(h, o, ex["batch"], ex.get("sigmoid_dep_sec", False)) for o in ex["outputs"]) / n
              for h in names}
    scale = [sum(abs(float(ex["weights"][h])) * scales[h] for h in names)] + [scales[h] for h in names]
    return Want(np.array([total] + [per[h] for h in names]), scale=np.array(scale))


@st.composite
def _generic_bad(draw: st.DrawFn, which: str) -> Ex:
    ex = draw(generic_inputs(keywords=False, with_hm=True))
    ex["weights"] = {h: 1.0 for h in ex["outputs"][0]}
    if which == "batch shape":
        gt = ex["batch"]["hm"]
        return {**ex, "batch": {**ex["batch"], "hm": torch.cat([gt, gt[:, :1]], 1)}}
    if which == "missing weight":
        return {**ex, "weights": {h: v for h, v in ex["weights"].items() if h != "hm"}}
    if which == "bad weight":
        return {**ex, "weights": {**ex["weights"], "hm": draw(st.sampled_from([math.nan, "1", None]))}}
    if which == "unknown head":
        return {**ex, "heads": ["hm", draw(st.sampled_from(["heatmap", "not_a_head", "HM"]))]}
    if which == "no stacks":
        return {**ex, "outputs": []}
    if which == "stacks differ":
        first = ex["outputs"][0]
        return {**ex, "outputs": [first, {k: v for k, v in first.items() if k != "hm"}]}
    assert which == "integer output"
    first = dict(ex["outputs"][0])
    first["hm"] = first["hm"].round().to(torch.int64)
    return {**ex, "outputs": [first]}


GENERIC = register(
    Spec(
        id="generic_loss",
        family="centernet",
        signature="f(outputs: list[dict[str, Tensor]], batch: dict[str, Tensor], *, weights: dict[str, float], "
        "heads: Sequence[str] = LOSS_ORDER, sigmoid_dep_sec: bool = False) -> (Tensor[], dict[str, Tensor[]])",
        summary="CenterFusion's GenericLoss: heatmaps through the clamped sigmoid, depth through its transform (dep_sec "
        "too with sigmoid_dep_sec), each configured head's loss averaged over the stacks, total = sum of weight x head "
        "loss; absent and weight-0 heads skipped; the caller's outputs are not modified. Judged as the vector [total, "
        "loss[h] for h in sorted(heads returned)].",
        reference=ref.generic_loss,
        convention=Convention(
            args=(Arg("outputs"), Arg("batch")),
            keywords=(Keyword("weights", required=True, values=_weights_values),
                      Keyword("heads", ref.LOSS_ORDER, _heads_values),
                      Keyword("sigmoid_dep_sec", False, st.just(True))),
            output=_generic_output,
            output_shape=lambda ex: (1 + len(_active_heads(ex)),),
            output_dtype=lambda ex: next(iter(ex["outputs"][0].values())).dtype,
            errors=(
                ErrorInput("a head's batch entry of another shape", "shape", "batch", _generic_bad("batch shape")),
                ErrorInput("a head without a weight", "domain", "weights", _generic_bad("missing weight")),
                ErrorInput("a weight that is not a real number", "domain", "weights", _generic_bad("bad weight")),
                ErrorInput("an unknown head in heads", "domain", "heads", _generic_bad("unknown head")),
                ErrorInput("no stacks", "domain", "outputs", _generic_bad("no stacks")),
                ErrorInput("stacks with different heads", "domain", "outputs", _generic_bad("stacks differ")),
                ErrorInput("an integer head output", "dtype", "outputs", _generic_bad("integer output")),
            ),
        ),
        strategies={
            "default": generic_inputs(),
            "gradcheck": generic_inputs(dtypes=(torch.float64,), gradcheck=True),
            "device": generic_inputs(dtypes=(torch.float32,), fp16=True),
        },
        oracles=(Oracle("numpy", "numpy", _generic_numpy, primary=True, examples_factor=0.6,
                        doc="Total and each head's loss equal the composition of the float64 head oracles (clamped "
                        "sigmoid, depth transform, stack mean, weights), within the heads' own scales."),),
        variants=(
            Variant(
                "seed_generic_loss",
                ref.seed_generic_loss,
                why="Seed 003's GenericLoss writes the sigmoid/depth-transformed maps back into the caller's outputs "
                "(a second call transforms them twice), computes weight-0 heads (0 * nan = nan), and uses the seed's "
                "BinRot.",
            ),
        ),
        regions=("float32", "float64", "one stack", "two stacks", "no heatmap head", "a weight-0 head", "no objects",
                 "extreme values",
                 "saturated heatmap logits (clamp active)", "keypoint heads (hm_hp, hp_offset)", "heads keyword set",
                 "sigmoid_dep_sec on a dep_sec head", "nan / inf where nothing reads", "bool or integer masks"),
    )
)


def _call_generic(target: Target, ex: Ex, **over: Any) -> torch.Tensor:
    """The judged vector [total, sorted head losses] for the example with ``over`` applied."""
    e = {**ex, **over}
    return _generic_output(target(e["outputs"], e["batch"], **_keywords(e, ("weights", "heads", "sigmoid_dep_sec"))))


def _head_losses(target: Target, ex: Ex, **over: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    e = {**ex, **over}
    out = target(e["outputs"], e["batch"], **_keywords(e, ("weights", "heads", "sigmoid_dep_sec")))
    _generic_output(out)
    return out


def _output_leaves(ex: Ex) -> list[tuple[int, str]]:
    return [(s, k) for s, o in enumerate(ex["outputs"]) for k, v in o.items()
            if isinstance(v, torch.Tensor) and v.is_floating_point()]


def _with_leaves(ex: Ex, paths: list[tuple[int, str]], leaves: Any) -> Ex:
    outs = [dict(o) for o in ex["outputs"]]
    for (s, k), t in zip(paths, leaves):
        outs[s][k] = t
    return {**ex, "outputs": outs}


@GENERIC.property(Category.GRADIENT, strategy=generic_inputs(dtypes=(torch.float64,), gradcheck=True), examples_factor=0.2)
def gradcheck_float64(target: Target, ex: Ex) -> None:
    """Autograd's gradient of the total and of every head loss with respect to every head output of every stack
    matches central finite differences in float64."""
    paths = _output_leaves(ex)
    leaves = tuple(ex["outputs"][s][k].detach().clone().requires_grad_(True) for s, k in paths)
    if not leaves:
        return
    ck.assert_gradcheck(lambda *xs: _call_generic(target, _with_leaves(ex, paths, xs)), leaves, spec=GENERIC.id,
                        names=[f"outputs[{s}][{k!r}]" for s, k in paths])


@GENERIC.property(Category.GRADIENT, strategy=generic_inputs(extreme=True), examples_factor=0.5)
def finite_gradients(target: Target, ex: Ex) -> None:
    """Heatmap logits of +-40 and +-1e4, head values of +-1e4, and nan / inf in masked targets give finite losses
    and finite gradients in every head output: the sigmoid is clamped to [1e-4, 1 - 1e-4] before the logs."""
    paths = _output_leaves(ex)
    leaves = [ex["outputs"][s][k].detach().clone().requires_grad_(True) for s, k in paths]
    out = _call_generic(target, _with_leaves(ex, paths, leaves))
    ck.assert_finite(out.detach(), what="[total, head losses]")
    if out.requires_grad:
        for (s, k), g in zip(paths, torch.autograd.grad(out.sum(), leaves, allow_unused=True)):
            if g is not None:
                ck.assert_finite(g, what=f"d loss / d outputs[{s}][{k!r}]")


@GENERIC.property(Category.REDUCTION, strategy=generic_inputs(), examples_factor=0.5)
def total_is_the_weighted_sum(target: Target, ex: Ex) -> None:
    """total == sum_h weights[h] * loss[h] over the returned heads."""
    total, per = _head_losses(target, ex)
    want = sum(float(ex["weights"][h]) * float(ck.f64(v)) for h, v in per.items())
    scale = sum(abs(float(ex["weights"][h])) * abs(float(ck.f64(v))) for h, v in per.items())
    ck.assert_close(total, want, spec=GENERIC.id, key="self", dtype=total.dtype, scale=scale, what="total")


@GENERIC.property(Category.REDUCTION, strategy=generic_inputs(), examples_factor=0.5)
def stacks_are_averaged(target: Target, ex: Ex) -> None:
    """Repeating the stacks (S -> 2S identical stacks) leaves every loss unchanged: stacks are averaged, not summed."""
    base = _call_generic(target, ex)
    twice = [dict(o) for o in ex["outputs"]] + [dict(o) for o in ex["outputs"]]
    scale = _generic_numpy(ex).scale
    if np.shape(scale) != tuple(base.shape):
        # The target returns another set of head losses than the spec's (judged by agrees_with_numpy and the
        # output-shape property); this property compares the target with itself, at its own magnitude.
        scale = np.abs(ck.f64(base))
    ck.assert_close(_call_generic(target, ex, outputs=twice), ck.f64(base), spec=GENERIC.id, key="self",
                    dtype=base.dtype, scale=scale, what="[total, head losses] with the stacks repeated")


def _generic_fixed() -> Ex:
    """One image, one object at pixel 0 of a 2 x 2 map, heads hm (weight 1) and wh (weight 0)."""
    gt = torch.zeros(1, 1, 2, 2)
    gt[0, 0, 0, 0] = 1.0
    batch = {"hm": gt, "ind": torch.zeros(1, 1, dtype=torch.int64), "mask": torch.ones(1, 1),
             "cat": torch.zeros(1, 1, dtype=torch.int64), "wh": torch.full((1, 1, 2), 2.0), "wh_mask": torch.ones(1, 1, 2)}
    outputs = [{"hm": torch.tensor([[[[1.0, -2.0], [-3.0, -1.0]]]]), "wh": torch.full((1, 2, 2, 2), 1.5)}]
    return {"outputs": outputs, "batch": batch, "weights": {"hm": 1.0, "wh": 0.0}}


@GENERIC.property(Category.REDUCTION, strategy=generic_inputs(), examples=(_generic_fixed(),), examples_factor=0.5)
def weight_zero_and_absent_heads_are_skipped(target: Target, ex: Ex) -> None:
    """A head with weight 0 is not computed (its output may be nan) and heads absent from the outputs are not
    required: the total stays finite and neither appears among the head losses."""
    outs = [dict(o) for o in ex["outputs"]]
    for h, wv in ex["weights"].items():
        if wv == 0.0:
            for o in outs:
                o[h] = torch.full_like(o[h], math.nan)
    total, per = _head_losses(target, ex, outputs=outs)
    ck.assert_finite(total.detach(), what="total with nan outputs in weight-0 heads")
    extra = sorted(h for h in per if ex["weights"].get(h, 0.0) == 0.0)
    if extra:
        raise AssertionError(f"heads {extra} have weight 0 (or are absent) but appear among the head losses")
