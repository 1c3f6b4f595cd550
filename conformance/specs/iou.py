"""Specs of the IoU family: ``iou_loss``, ``giou_loss``, ``diou_loss``, ``ciou_loss`` (seed 002).

This file holds the maths: the calling conventions, strategies, oracles and the
family's own properties (symmetry, invariances, the value at identical boxes, the
range, non-negative penalties, the gradient bound, CIoU's frozen-alpha gradient).
Dtype and shape, determinism, untouched inputs, shape and domain errors (inverted
boxes in either argument among them), keywords, gradcheck, finite gradients,
device / dtype / compile agreement and ``agrees_with_numpy`` come from
``conformance.generic``.

Tolerances (``Spec.scale``): every length the losses use (widths, overlaps, enclosing
sides) is a single difference of two input coordinates, so it is computed to relative
rounding; IoU, the GIoU penalty and the aspect term are ratios of such lengths whose
relative condition is bounded (``U >= (A1 + A2) / 2``, ``C >= U``), so an
implementation errs by a few ulp of the terms it adds up (each at most 1, hence the
constant 4). The centre offsets are sums of coordinates: they round by ``delta ~ 4 u M``
(``M`` the pair's largest coordinate), moving ``rho^2 / c^2`` by up to
``(2 delta (|dx| + |dy|) + 2 delta^2) / c^2``; DIoU and CIoU add that term in units of u
(the tolerances' rtol is at least 40 u of the dtype). Far from the origin it is large: two
identical segments at y = 2^52 have computed centres half a unit apart in float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from conformance import checks as ck
from conformance import strategies as hh
from conformance.spec import Arg, Category, Convention, ErrorInput, Keyword, Oracle, Spec, register
from conformance.targets import Target
from impls import iou as ref
from oracles import numpy_iou as npo

_np = ck.f64
Example = dict[str, Any]
IDS = ("iou_loss", "giou_loss", "diou_loss", "ciou_loss")
_KEYWORDS = {sid: (("mode",) if sid == "iou_loss" else ()) + ("reduction", "eps") for sid in IDS}

# ---------------------------------------------------------------------------
# Strategies: valid xyxy boxes by construction (a corner plus a non-negative size)
# ---------------------------------------------------------------------------



def _f32(lo: float, hi: float) -> st.SearchStrategy[float]:
    """Finite float32 values in [lo, hi], no subnormals."""
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False, width=32)


# |coordinates| <= 2^59 keep every square the losses form (areas, c^2 <= 2 (2^61)^2) inside
# float32's range (2^128): beyond it any float32 implementation overflows to inf / inf.
_BIG = 2.0**59
_MAGNITUDES: dict[str, tuple[st.SearchStrategy[float], st.SearchStrategy[float]]] = {
    "ordinary boxes": (
        st.one_of(st.integers(-50, 50).map(float), _f32(-100, 100)),
        st.one_of(st.integers(1, 20).map(float), _f32(2.0**-10, 50)),
    ),
    "tiny boxes": (_f32(-10, 10), _f32(2.0**-20, 2.0**-10)),
    "huge boxes": (_f32(-_BIG, _BIG), _f32(1.0, _BIG)),
}
_OFFSETS = st.one_of(_f32(1e3, _BIG / 2), _f32(-_BIG / 2, -1e3))
_FRACTIONS = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])
_STEPS = st.sampled_from([-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0])
# Overlapping relations weigh more: most boxes a loss sees overlap their partner.
_RELATIONS = ("independent", "identical", "near", "near", "near", "nested", "nested", "disjoint", "collinear", "crossing")
# A box is given zero width, zero height or both a quarter of the time.
_SHAPES = st.sampled_from(["zero width", "zero height", "point"] + ["positive"] * 9)
eps_values = st.one_of(
    st.sampled_from([1e-12, 1e-9, 1e-6, 1e-3, 0.5, 1.0, 1e3]), st.floats(1e-12, 1e3, allow_nan=False, allow_subnormal=False)
)
# float16 has no normal number below 2^-14: a smaller eps would round to 0 in a float16 call.
_device_eps = st.sampled_from([2.0**-10, 2.0**-4, 0.5, 1.0])
reduction_values = st.sampled_from(["mean", "sum"])
mode_values = st.sampled_from(["quadratic", "log"])


@st.composite
def _size(draw: st.DrawFn, size: st.SearchStrategy[float]) -> tuple[float, float]:
    shape = draw(_SHAPES)
    return (0.0 if shape in ("zero width", "point") else draw(size)), (0.0 if shape in ("zero height", "point") else draw(size))


@st.composite
def _row(draw: st.DrawFn, coord: st.SearchStrategy[float], size: st.SearchStrategy[float]) -> tuple[list[float], list[float]]:
    """One pair of boxes (as float64 lists) and how they relate."""
    x, y = draw(coord), draw(coord)
    w, h = draw(_size(size))
    rel = draw(st.sampled_from(_RELATIONS))
    s = max(w, h) or draw(size)
    if rel == "collinear":  # two zero-width (or zero-height) segments on one line, overlapping
        a, b = draw(_FRACTIONS), draw(_FRACTIONS) * s
        b1, b2 = [x, y, x, y + s], [x, y + a * s, x, y + a * s + b]
        if draw(st.booleans()):
            b1, b2 = [b1[1], b1[0], b1[3], b1[2]], [b2[1], b2[0], b2[3], b2[2]]
    elif rel == "crossing":  # a zero-height and a zero-width segment (a "+")
        a, b = draw(_FRACTIONS), draw(_FRACTIONS)
        b1, b2 = [x, y + b * s, x + s, y + b * s], [x + a * s, y, x + a * s, y + s]
    else:
        b1 = [x, y, x + w, y + h]
        if rel == "independent":
            u, v = draw(coord), draw(coord)
            w2, h2 = draw(_size(size))
            b2 = [u, v, u + w2, v + h2]
        elif rel == "identical":
            b2 = list(b1)
        elif rel == "near":  # each corner moved by up to the box's size
            moved = [c + draw(_STEPS) * s for c in b1]
            b2 = [min(moved[0], moved[2]), min(moved[1], moved[3]), max(moved[0], moved[2]), max(moved[1], moved[3])]
        elif rel == "nested":
            a, c = sorted((draw(_FRACTIONS), draw(_FRACTIONS)))
            b, d = sorted((draw(_FRACTIONS), draw(_FRACTIONS)))
            b2 = [x + a * w, y + b * h, x + c * w, y + d * h]
        else:  # disjoint, or touching at gap 0
            gap = draw(st.sampled_from([0.0, 0.25, 1.0, 4.0])) * s
            w2, h2 = draw(_size(size))
            b2 = [x + w + gap, y, x + w + gap + w2, y + h2]
    return (b2, b1) if draw(st.booleans()) else (b1, b2)


def _label(ex: Example) -> None:
    b1, b2 = _np(ex["boxes1"]), _np(ex["boxes2"])
    hh.region(str(ex["boxes1"].dtype).removeprefix("torch."))
    hh.region("empty" if b1.size == 0 else "single pair (0-d output)" if b1.ndim == 1 else "batched pairs")
    zero = []
    for b in (b1, b2):
        w, h = b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]
        zero.append(w * h == 0)
        if ((w == 0) & (h > 0)).any():
            hh.region("zero-width box")
        if ((h == 0) & (w > 0)).any():
            hh.region("zero-height box")
        if ((w == 0) & (h == 0)).any():
            hh.region("point box")
    if zero[0].any():
        hh.region("degenerate box in boxes1")
    if zero[1].any():
        hh.region("degenerate box in boxes2")
    same = (b1 == b2).all(-1)
    if (zero[0] & same).any():
        hh.region("degenerate against itself")
    if (zero[0] ^ zero[1]).any():
        hh.region("degenerate against a positive-area box")
    if (zero[0] & zero[1] & ~same).any():
        hh.region("two different zero-area boxes")
    if ex.get("reduction", "none") != "none":
        hh.region("reduced (mean / sum)")
    if "eps" in ex:
        hh.region("eps set")
    if ex.get("mode", "linear") != "linear":
        hh.region(f"mode {ex['mode']}")


@st.composite
def box_pairs(
    draw: st.DrawFn,
    sid: str,
    *,
    dtypes: tuple[torch.dtype, ...] = hh.FLOAT_DTYPES,
    magnitudes: tuple[str, ...] = (*_MAGNITUDES, "far from the origin"),
    keywords: tuple[str, ...] = ("mode", "reduction", "eps"),
    eps: st.SearchStrategy[float] = eps_values,
    min_side: int = 0,
    min_dims: int = 0,
    grid: tuple[st.SearchStrategy[float], st.SearchStrategy[float]] | None = None,
    snap: float | None = None,
) -> Example:
    """Pairs of valid xyxy boxes (any leading shape, 0-d and empty included), each pair
    independent, identical, near, nested, disjoint / touching, or a pair of segments, in
    either order; zero widths and heights throughout; and the spec's keywords, each drawn
    away from its default half the time. ``snap`` rounds every coordinate down to its grid
    (monotone: boxes stay valid)."""
    dtype = draw(hh.float_dtypes(dtypes=dtypes))
    lead = draw(hh.shapes(min_dims=min_dims, max_dims=2, min_side=min_side, max_side=4))
    if grid is not None:
        coord, size = grid
        offset = 0.0
    else:
        name = draw(st.sampled_from(magnitudes))
        hh.region(name)
        coord, size = _MAGNITUDES.get(name, _MAGNITUDES["ordinary boxes"])
        offset = draw(_OFFSETS) if name == "far from the origin" else 0.0
    rows = [draw(_row(coord, size)) for _ in range(int(np.prod(lead)))]
    arr = np.array(rows, dtype=np.float64).reshape(*lead, 2, 4) + offset
    if snap is not None:
        arr = np.floor(arr / snap) * snap
    # Casting is monotone: a box valid in float64 stays valid (or degenerate) in float32.
    ex: Example = {"boxes1": torch.tensor(arr[..., 0, :], dtype=dtype), "boxes2": torch.tensor(arr[..., 1, :], dtype=dtype)}
    for key in keywords:
        if key in _KEYWORDS[sid] and draw(st.booleans()):
            ex[key] = draw({"mode": mode_values, "reduction": reduction_values, "eps": eps}[key])
    _label(ex)
    return ex


# Small dyadic grids: every sum, difference and product of coordinates is exact in float32.
def _dyadic(exponent: int, *, coord: int = 64, size: int = 32) -> tuple[st.SearchStrategy[float], st.SearchStrategy[float]]:
    q = 2.0**exponent
    return st.integers(-coord, coord).map(lambda k: k * q), st.integers(1, size).map(lambda k: k * q)


@st.composite
def scaled_pairs(draw: st.DrawFn, sid: str) -> Example:
    """Pairs on a dyadic grid at a scale 2^e, e in [-10, 10]: boxes from 2^-10 to 2^15 wide."""
    return draw(box_pairs(sid, grid=_dyadic(draw(st.integers(-10, 10))), keywords=("mode", "eps"), min_side=1))


@st.composite
def device_pairs(draw: st.DrawFn, sid: str) -> Example:
    """float32 pairs on the integer grid within [-16, 64]: float16 and bfloat16 hold every input
    and every sum of two or three coordinates exactly (< 256), float16 every area and c^2
    (< 65504); eps >= 2^-10 is a float16 normal number."""
    return draw(box_pairs(sid, dtypes=(torch.float32,), grid=_dyadic(0, coord=16, size=8), snap=1.0, eps=_device_eps,
                          min_dims=1))


@st.composite
def gradcheck_pairs(draw: st.DrawFn, sid: str) -> Example:
    """float64 boxes of sides >= 1 whose coordinates never tie nor touch: boxes2 on the integer
    grid, boxes1 offset by (1/8, 1/4, 3/8, 1/2), so every min / max / clamp is at least 1/8
    from its kink (finite differences step 1e-6). In log mode boxes2 encloses boxes1's integer
    core, so the IoU is positive."""
    n = draw(st.integers(1, 3))
    mode = draw(st.sampled_from(ref.IOU_MODES)) if sid == "iou_loss" else "linear"
    corner, side, step = st.integers(-8, 8), st.integers(1, 6), st.integers(-3, 3)
    b1, b2 = [], []
    for _ in range(n):
        x, y, w, h = draw(corner), draw(corner), draw(side), draw(side)
        core = [x, y, x + w, y + h]
        if mode == "log":
            grow = [draw(st.integers(0, 2)) for _ in range(4)]
            other = [x - grow[0], y - grow[1], x + w + grow[2], y + h + grow[3]]
        elif draw(st.booleans()):
            u, v = draw(corner), draw(corner)
            other = [u, v, u + draw(side), v + draw(side)]
        else:
            m = [c + draw(step) for c in core]
            other = [m[0], m[1], max(m[2], m[0] + 1), max(m[3], m[1] + 1)]
        b1.append([c + o for c, o in zip(core, (0.125, 0.25, 0.375, 0.5))])
        b2.append(other)
    ex: Example = {"boxes1": torch.tensor(b1, dtype=torch.float64), "boxes2": torch.tensor(b2, dtype=torch.float64)}
    if draw(st.booleans()):
        ex["boxes1"], ex["boxes2"] = ex["boxes2"], ex["boxes1"]
    if sid == "iou_loss" and mode != "linear":
        ex["mode"] = mode
    if draw(st.booleans()):
        ex["reduction"] = draw(reduction_values)
    if draw(st.booleans()):
        ex["eps"] = draw(st.sampled_from([1e-9, 1e-3, 0.5, 1.0]))
    return ex


def _degenerate_rows() -> tuple[list[list[float]], list[list[float]]]:
    """Each zero-area kind against itself, a box containing it, a disjoint box, a box sharing
    its edge, the other kinds, and a collinear segment; in both arguments; at three scales."""
    zw, zh, pt = [1.0, 0.0, 1.0, 2.0], [0.0, 1.0, 3.0, 1.0], [1.0, 1.0, 1.0, 1.0]
    pairs = [
        (zw, zw), (zh, zh), (pt, pt),
        (zw, [0.0, 0.0, 4.0, 2.0]), (zh, [0.0, 0.0, 4.0, 2.0]), (pt, [0.0, 0.0, 4.0, 2.0]),
        (zw, [5.0, 5.0, 7.0, 8.0]), (zh, [5.0, 5.0, 7.0, 8.0]), (pt, [5.0, 5.0, 7.0, 8.0]),
        (zw, [1.0, 0.0, 3.0, 2.0]), (zh, [0.0, 1.0, 3.0, 2.0]), (pt, [1.0, 1.0, 2.0, 2.0]),
        (zw, zh), (zw, pt), (zh, pt), (pt, [3.0, 3.0, 3.0, 3.0]),
        (zw, [1.0, 1.0, 1.0, 3.0]), (zh, [2.0, 1.0, 5.0, 1.0]),
    ]
    a, b = [], []
    for scale in (1.0, 2.0**-16, 2.0**16):
        for p, q in pairs:
            a += [[c * scale for c in p], [c * scale for c in q]]
            b += [[c * scale for c in q], [c * scale for c in p]]
    return a, b


def _degenerate_examples(sid: str) -> tuple[Example, ...]:
    a, b = _degenerate_rows()
    modes = ref.IOU_MODES if sid == "iou_loss" else ("linear",)
    out = []
    for dtype in (torch.float32, torch.float64):
        for mode in modes:
            ex: Example = {"boxes1": torch.tensor(a, dtype=dtype), "boxes2": torch.tensor(b, dtype=dtype)}
            if mode != "linear":
                ex["mode"] = mode
            out.append(ex)
    return tuple(out)


def _tiny_eps_examples() -> tuple[Example, ...]:
    """A zero-height box of width w against the w x w box, and the reverse, with eps far below
    every length (2^-120 in float32, 2^-1000 in float64: normal numbers): w / (h + eps) exceeds
    the dtype's range while the exact gradient of atan(w / (h + eps)), (h + eps, -w) / (w^2 + (h + eps)^2),
    is about 1 / w. No union is 0, so no other term's derivative is near 1 / eps."""
    out = []
    for dtype, eps, w in ((torch.float32, 2.0**-120, 2.0**10), (torch.float64, 2.0**-1000, 2.0**30)):
        flat, square = [0.0, 0.0, w, 0.0], [0.0, 0.0, w, w]
        out.append({"boxes1": torch.tensor([flat, square], dtype=dtype), "boxes2": torch.tensor([square, flat], dtype=dtype),
                    "eps": eps})
    return tuple(out)


# ---------------------------------------------------------------------------
# Malformed inputs
# ---------------------------------------------------------------------------


def _valid(sid: str) -> st.SearchStrategy[Example]:
    return box_pairs(sid, magnitudes=("ordinary boxes",), min_dims=1, min_side=1)


@st.composite
def _mismatched(draw: st.DrawFn, sid: str) -> Example:
    """boxes2 of another shape, broadcastable to boxes1's ((1, 4), (4,), a new leading axis)
    or not (one box more)."""
    ex = draw(_valid(sid))
    b2 = ex["boxes2"]
    kind = draw(st.sampled_from(["one row", "single box", "extra leading axis", "one box more"]))
    if kind == "one row" and b2.shape[-2] > 1:
        b2 = b2.reshape(-1, 4)[:1].reshape(*([1] * (b2.dim() - 1)), 4)
    elif kind == "single box":
        b2 = b2.reshape(-1, 4)[0]
    elif kind == "extra leading axis":
        b2 = torch.stack([b2, b2])
    else:  # one box more (also where boxes1 has a single row to broadcast from)
        b2 = torch.cat([b2, b2[..., :1, :]], dim=-2)
    return {**ex, "boxes2": b2}


@st.composite
def _bad_last_axis(draw: st.DrawFn, sid: str) -> Example:
    ex = draw(_valid(sid))
    k = draw(st.sampled_from([0, 2, 3, 5, 8]))
    if k == 0:  # 0-d tensors: no axis of coordinates at all
        return {**ex, "boxes1": ex["boxes1"].reshape(-1)[0].clone(), "boxes2": ex["boxes2"].reshape(-1)[0].clone()}
    reshape = (lambda b: b[..., :k]) if k < 4 else (lambda b: torch.cat([b, b[..., : k - 4]], dim=-1))
    return {**ex, "boxes1": reshape(ex["boxes1"]), "boxes2": reshape(ex["boxes2"])}


@st.composite
def _inverted(draw: st.DrawFn, sid: str, where: str) -> Example:
    """One box with x2 < x1 or y2 < y1 (by a full size, a half, or 2^-10) in boxes1, boxes2 or both."""
    ex = draw(_valid(sid))
    for name in ("boxes1", "boxes2") if where == "both" else (where,):
        b = ex[name].clone()
        flat = b.view(-1, 4)
        i, axis = draw(st.integers(0, flat.shape[0] - 1)), draw(st.sampled_from([0, 1]))
        by = draw(st.sampled_from([1.0, 0.5, 2.0**-10]))
        flat[i, axis + 2] = flat[i, axis] - by
        ex[name] = b
    return ex


@st.composite
def _bad_keyword(draw: st.DrawFn, sid: str, key: str) -> Example:
    ex = draw(_valid(sid))
    bad = {
        "eps": st.sampled_from([0.0, -1e-7, -1.0, math.nan, math.inf, -math.inf]),
        "reduction": st.sampled_from(["avg", "batchmean", "Mean", "elementwise_mean", ""]),
        "mode": st.sampled_from(["Linear", "squared", "exp", "giou", ""]),
    }[key]
    return {**ex, key: draw(bad)}


@st.composite
def _integer_boxes(draw: st.DrawFn, sid: str) -> Example:
    ex = draw(_valid(sid))
    return {**ex, "boxes1": ex["boxes1"].floor().long(), "boxes2": ex["boxes2"].floor().long()}


def _errors(sid: str) -> tuple[ErrorInput, ...]:
    errs: tuple[ErrorInput, ...] = (
        ErrorInput("boxes2 of another shape (broadcastable or not)", "shape", "boxes2", _mismatched(sid)),
        ErrorInput("boxes whose last axis is not 4", "shape", "boxes1", _bad_last_axis(sid)),
        ErrorInput("an inverted box in boxes1", "domain", "boxes1", _inverted(sid, "boxes1")),
        ErrorInput("an inverted box in boxes2", "domain", "boxes2", _inverted(sid, "boxes2")),
        ErrorInput("inverted boxes in both arguments", "domain", "boxes1", _inverted(sid, "both")),
        ErrorInput("eps <= 0, nan or inf", "domain", "eps", _bad_keyword(sid, "eps")),
        ErrorInput("an unknown reduction", "domain", "reduction", _bad_keyword(sid, "reduction")),
        ErrorInput("integer boxes", "dtype", "boxes1", _integer_boxes(sid)),
    )
    if sid == "iou_loss":
        errs += (ErrorInput("an unknown mode", "domain", "mode", _bad_keyword(sid, "mode")),)
    return errs


def _error_examples(sid: str, kinds: tuple[str, ...]) -> tuple[Example, ...]:
    """One fixed case of each declared malformed input, run before the search: a one_of over
    the error strategies may leave a kind undrawn in a derandomised run."""
    b1 = torch.tensor([[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 4.0]])
    b2 = torch.tensor([[1.0, 0.0, 3.0, 2.0], [0.0, 0.0, 1.0, 1.0]])
    inv1, inv2 = b1.clone(), b2.clone()
    inv1[1] = torch.tensor([3.0, 1.0, 1.0, 4.0])
    inv2[1] = torch.tensor([0.0, 1.0, 1.0, 0.5])
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("boxes2 of another shape (broadcastable or not)", "boxes2", {"boxes2": b2[:1]}),
        ("boxes2 of another shape (broadcastable or not)", "boxes2", {"boxes2": b2[0]}),
        ("boxes2 of another shape (broadcastable or not)", "boxes2", {"boxes2": torch.cat([b2, b2[:1]])}),
        ("boxes whose last axis is not 4", "boxes1", {"boxes1": b1[:, :3], "boxes2": b2[:, :3]}),
        ("an inverted box in boxes1", "boxes1", {"boxes1": inv1}),
        ("an inverted box in boxes2", "boxes2", {"boxes2": inv2}),
        ("inverted boxes in both arguments", "boxes1", {"boxes1": inv1, "boxes2": inv2}),
        ("eps <= 0, nan or inf", "eps", {"eps": 0.0}),
        ("eps <= 0, nan or inf", "eps", {"eps": -1e-7}),
        ("eps <= 0, nan or inf", "eps", {"eps": math.nan}),
        ("eps <= 0, nan or inf", "eps", {"eps": math.inf}),
        ("an unknown reduction", "reduction", {"reduction": "avg"}),
        ("integer boxes", "boxes1", {"boxes1": b1.long(), "boxes2": b2.long()}),
    ]
    if sid == "iou_loss":
        cases.append(("an unknown mode", "mode", {"mode": "squared"}))
    names = {e.name: e.kind for e in _errors(sid)}
    return tuple({"boxes1": b1, "boxes2": b2, **change, "error_input": name, "error_argument": arg}
                 for name, arg, change in cases if names[name] in kinds)


# ---------------------------------------------------------------------------
# Oracles and scales
# ---------------------------------------------------------------------------


def _kwargs(sid: str, ex: Example, **override: Any) -> dict[str, Any]:
    return {k: override[k] if k in override else ex[k] for k in _KEYWORDS[sid] if k in ex or k in override}


def _numpy(sid: str) -> Callable[[Example], np.ndarray]:
    fn = getattr(npo, sid)

    def oracle(ex: Example) -> np.ndarray:
        kw = {"eps": ex.get("eps", 1e-7), "reduction": ex.get("reduction", "none")}
        if sid == "iou_loss":
            kw["mode"] = ex.get("mode", "linear")
        return fn(_np(ex["boxes1"]), _np(ex["boxes2"]), **kw)

    oracle.__name__ = oracle.__qualname__ = f"numpy_{sid}"
    return oracle


# The terms a loss adds up (1, IoU, a penalty, alpha v) are each at most 1 in magnitude: the
# rounding of their sum is relative to this, not to the (possibly tiny) result.
_TERMS = 4.0


def _pair_scale(sid: str, ex: Example) -> np.ndarray:
    b1, b2 = _np(ex["boxes1"]), _np(ex["boxes2"])
    scale = np.full(b1.shape[:-1], _TERMS)
    if sid in ("diou_loss", "ciou_loss") and b1.size:
        eps = ex.get("eps", 1e-7)
        big = np.maximum(np.abs(b1).max(-1), np.abs(b2).max(-1))
        cw = np.maximum(b1[..., 2], b2[..., 2]) - np.minimum(b1[..., 0], b2[..., 0])
        ch = np.maximum(b1[..., 3], b2[..., 3]) - np.minimum(b1[..., 1], b2[..., 1])
        dx = np.abs(b1[..., 0] + b1[..., 2] - b2[..., 0] - b2[..., 2]) / 2
        dy = np.abs(b1[..., 1] + b1[..., 3] - b2[..., 1] - b2[..., 3]) / 2
        # The centre offsets err by delta ~ 4 u M, rho^2 by 2 delta (|dx| + |dy|) + 2 delta^2;
        # in units of u (the tolerances' rtol is >= 40 u of the dtype):
        u = float(torch.finfo(ex["boxes1"].dtype).eps) / 2
        scale = scale + (8 * big * (dx + dy) + 32 * u * big * big) / (cw * cw + ch * ch + eps)
    return scale


def _scale(sid: str) -> Callable[[Example], np.ndarray | float]:
    def scale(ex: Example) -> np.ndarray | float:
        s = _pair_scale(sid, ex)
        red = ex.get("reduction", "none")
        if red == "none":
            return s
        # A float32 sum of n terms (each <= 3) errs by n u per term: inside rtol * sum(scale).
        return float(s.sum()) if red == "sum" else (float(s.mean()) if s.size else 0.0)

    return scale


def _out_shape(ex: Example) -> tuple[int, ...]:
    return tuple(ex["boxes1"].shape[:-1]) if ex.get("reduction", "none") == "none" else ()


# ---------------------------------------------------------------------------
# Specs
# ---------------------------------------------------------------------------

_SUMMARIES = {
    "iou_loss": "1 - IoU (mode 'linear'), 1 - IoU^2 ('quadratic') or -ln IoU ('log', +inf with a zero gradient where "
    "IoU = 0), IoU = inter / (union + eps) (UnitBox; keras-cv IoULoss's modes)",
    "giou_loss": "1 - IoU + (C - union) / (C + eps), C the enclosing box's area (Rezatofighi et al.)",
    "diou_loss": "1 - IoU + rho^2 / (c^2 + eps): rho the distance of the centres, c the enclosing box's diagonal "
    "(Zheng et al.)",
    "ciou_loss": "the DIoU loss + alpha v, v = 4 / pi^2 (atan(w2 / (h2 + eps)) - atan(w1 / (h1 + eps)))^2, "
    "alpha = v / (1 - IoU + v + eps) held constant in the backward pass (Zheng et al.; torchvision)",
}
_COMMON = (
    " per pair of xyxy boxes of the same shape (..., 4) (pairs, not a pairwise matrix; no broadcasting). "
    "Box format: xyxy only; xywh, centre-size and keras-cv's other formats are conventions an adapter "
    "translates, so no format keyword is canonical. Degenerate boxes (zero width or height, points), in "
    "either argument, against themselves or others, give finite values and gradients: a pair with a "
    "zero-area box has IoU 0. Inverted boxes (x2 < x1 or y2 < y1) in either argument raise. reduction "
    "'none' | 'mean' (0 for no pairs) | 'sum'; eps > 0 finite."
)
_REGIONS = (
    "float32", "float64", "empty", "single pair (0-d output)", "batched pairs", "ordinary boxes", "tiny boxes",
    "huge boxes", "far from the origin", "zero-width box", "zero-height box", "point box", "degenerate box in boxes1",
    "degenerate box in boxes2", "degenerate against itself", "degenerate against a positive-area box",
    "two different zero-area boxes", "reduced (mean / sum)", "eps set",
)
_SIG_KW = {"iou_loss": "mode: str = 'linear', "}

SPECS: dict[str, Spec] = {}
for _sid in IDS:
    SPECS[_sid] = register(
        Spec(
            id=_sid,
            family="iou",
            signature=f"f(boxes1: Tensor[*, 4], boxes2: Tensor[*, 4], *, {_SIG_KW.get(_sid, '')}reduction: str = 'none', "
            "eps: float = 1e-7) -> Tensor[*] | Tensor[]",
            summary=_SUMMARIES[_sid] + _COMMON,
            reference=getattr(ref, _sid),
            convention=Convention(
                args=(Arg("boxes1", differentiable=True), Arg("boxes2", differentiable=True)),
                keywords=(
                    *((Keyword("mode", "linear", mode_values),) if _sid == "iou_loss" else ()),
                    Keyword("reduction", "none", reduction_values),
                    Keyword("eps", 1e-7, eps_values),
                ),
                output_shape=_out_shape,
                errors=_errors(_sid),
            ),
            strategies={
                "default": box_pairs(_sid),
                "gradcheck": gradcheck_pairs(_sid),
                "device": device_pairs(_sid),
            },
            oracles=(
                Oracle("numpy", "numpy", _numpy(_sid), primary=True, examples=_degenerate_examples(_sid),
                       domain=npo.DOMAIN,
                       doc="f equals the pair-by-pair float64 definition (every keyword), degenerate pairs, "
                       "huge, tiny and far-off boxes included."),
            ),
            scale=_scale(_sid),
            regions=_REGIONS + (("mode quadratic", "mode log") if _sid == "iou_loss" else ()),
            examples={"finite_gradients": _degenerate_examples(_sid) + _tiny_eps_examples(),
                      "rejects_shape_mismatch": _error_examples(_sid, ("shape",)),
                      "rejects_invalid_inputs": _error_examples(_sid, ("dtype", "domain")),
                      "honours_reduction": tuple({"boxes1": torch.zeros(0, 4, dtype=dt), "boxes2": torch.zeros(0, 4, dtype=dt),
                                                  "reduction": r} for dt in hh.FLOAT_DTYPES for r in ("mean", "sum"))},
        )
    )


def _each(category: Category, strategy: Callable[[str], Any] | None, specs: tuple[str, ...] = IDS, **kw: Any) -> Any:
    """Register ``fn(spec, target, ex)`` as a property of each spec of ``specs``."""

    def deco(fn: Callable[[Spec, Target, Example], None]) -> Callable[[Spec, Target, Example], None]:
        for sid in specs:
            spec = SPECS[sid]

            def check(target: Target, ex: Example, _spec: Spec = spec) -> None:
                fn(_spec, target, ex)

            check.__doc__ = fn.__doc__.format(spec=sid) if fn.__doc__ else None
            kwargs = {k: (v(sid) if callable(v) and k == "examples" else v) for k, v in kw.items()}
            spec.property(category, strategy=strategy(sid) if strategy else None, name=fn.__name__, **kwargs)(check)
        return fn

    return deco


def _call(spec: Spec, target: Target, ex: Example, **override: Any) -> torch.Tensor:
    return target.tensor(ex["boxes1"], ex["boxes2"], **_kwargs(spec.id, ex, **override))


def _dtype(ex: Example) -> torch.dtype:
    return ex["boxes1"].dtype


# ---------------------------------------------------------------------------
# Family properties
# ---------------------------------------------------------------------------


@_each(Category.INVARIANCE, box_pairs)
def symmetric(spec: Spec, target: Target, ex: Example) -> None:
    """f(b1, b2) == f(b2, b1) for every keyword setting."""
    a = _call(spec, target, ex)
    b = _call(spec, target, {**ex, "boxes1": ex["boxes2"], "boxes2": ex["boxes1"]})
    scale = spec.scale(ex)  # type: ignore[misc]
    ck.assert_close(b, _np(a), spec=spec.id, key="self", dtype=_dtype(ex), what="f(b2, b1)", scale=scale)


@st.composite
def _moved(draw: st.DrawFn, sid: str) -> Example:
    e = draw(st.integers(-4, 4))
    ex = draw(box_pairs(sid, grid=_dyadic(e), keywords=("mode", "eps")))
    ex["shift"] = [draw(st.integers(-64, 64)) * 2.0**e for _ in range(2)]
    ex["factor"] = draw(st.sampled_from([0.25, 0.5, 2.0, 4.0]))
    if sid == "ciou_loss":
        # CIoU's eps is a length in the aspect term and an area elsewhere: no one eps scales
        # it exactly. 2^-80 is below half an ulp of every nonzero length and area here (all
        # >= 2^-8), so every "+ eps" is exact or absorbed, and the law holds to rounding.
        ex["eps"] = 2.0**-80
    return ex


@_each(Category.INVARIANCE, _moved)
def translation_and_scale_invariant(spec: Spec, target: Target, ex: Example) -> None:
    """f(b1 + t, b2 + t) == f(b1, b2) and f(s b1, s b2; eps s^2) == f(b1, b2; eps) (dyadic boxes, t and s: exact inputs;
    CIoU at eps = 2^-80, below every length)."""
    b1, b2, s = ex["boxes1"], ex["boxes2"], ex["factor"]
    base = _np(_call(spec, target, ex))
    t = torch.tensor(ex["shift"] * 2, dtype=b1.dtype)
    scale = spec.scale(ex)  # type: ignore[misc]
    moved = _call(spec, target, {**ex, "boxes1": b1 + t, "boxes2": b2 + t})
    ck.assert_close(moved, base, spec=spec.id, key="self", dtype=b1.dtype, what=f"f(b1 + t, b2 + t), t={ex['shift']}",
                    scale=scale)
    eps = ex.get("eps", 1e-7)
    scaled_eps = eps if spec.id == "ciou_loss" else eps * s * s
    scaled = _call(spec, target, {**ex, "boxes1": b1 * s, "boxes2": b2 * s}, eps=scaled_eps)
    ck.assert_close(scaled, base, spec=spec.id, key="self", dtype=b1.dtype, what=f"f({s} b1, {s} b2; eps={scaled_eps!r})",
                    scale=scale)


@st.composite
def _identical(draw: st.DrawFn, sid: str) -> Example:
    ex = draw(box_pairs(sid, keywords=("mode", "eps")))
    return {**ex, "boxes2": ex["boxes1"].clone()}


@_each(Category.EQUIVALENCE, _identical, examples=_degenerate_examples)
def zero_for_identical_boxes(spec: Spec, target: Target, ex: Example) -> None:
    """f(b, b) is 0 up to eps: the closed form 1 - r (r = A / (A + eps), A the box's area; 1 - r^2 and -ln r in the IoU loss's
    other modes), 1 (+inf for -ln) for a zero-area box; the penalties vanish."""
    b = ex["boxes1"]
    eps, mode = ex.get("eps", 1e-7), ex.get("mode", "linear")
    area = (_np(b)[..., 2] - _np(b)[..., 0]) * (_np(b)[..., 3] - _np(b)[..., 1])
    r = area / (area + eps)
    with np.errstate(divide="ignore"):
        want = {"linear": eps / (area + eps), "quadratic": 1 - r * r, "log": -np.log(r)}[mode]
    out = _call(spec, target, {**ex, "boxes2": b.clone()}, reduction="none")
    ck.assert_close(out, want, spec=spec.id, key="numpy", dtype=b.dtype, what="f(b, b)", scale=_pair_scale(spec.id, ex))


_RANGES = {"iou_loss": 1.0, "giou_loss": 2.0, "diou_loss": 2.0, "ciou_loss": 3.0}


@_each(Category.EQUIVALENCE, box_pairs, examples=_degenerate_examples)
def within_range(spec: Spec, target: Target, ex: Example) -> None:
    """0 <= f <= 1 (IoU loss; +inf allowed in log mode), 2 (GIoU, DIoU: a penalty <= 1 added) or 3 (CIoU: alpha v <= 1
    added) for every pair."""
    out = _call(spec, target, ex, reduction="none")
    got = _np(out)
    hi = math.inf if ex.get("mode") == "log" else _RANGES[spec.id]
    tol = ck.tolerance(spec.id, "self", ck.judged_dtype(_dtype(ex), out.dtype))
    slack = tol.atol + tol.rtol * _TERMS
    bad = ~((got >= -slack) & (got <= hi + slack))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        pair = [_np(ex[k]).reshape(-1, 4)[i].tolist() for k in ("boxes1", "boxes2")]
        raise AssertionError(f"f.flat[{i}]={got.flat[i]!r}, but should lie in [0, {hi}] (boxes1={pair[0]}, boxes2={pair[1]})")


@_each(Category.EQUIVALENCE, box_pairs, specs=("giou_loss", "diou_loss", "ciou_loss"))
def penalty_non_negative(spec: Spec, target: Target, ex: Example) -> None:
    """{spec} >= 1 - IoU (GIoU <= IoU; rho^2 / c^2 >= 0), and CIoU >= DIoU (alpha v >= 0): the penalty is never negative."""
    b1, b2, eps = _np(ex["boxes1"]), _np(ex["boxes2"]), ex.get("eps", 1e-7)
    out = _call(spec, target, ex, reduction="none")
    lower = npo.diou_loss(b1, b2, eps) if spec.id == "ciou_loss" else 1 - npo.iou(b1, b2, eps)
    tol = ck.tolerance(spec.id, "numpy", ck.judged_dtype(_dtype(ex), out.dtype))
    got = _np(out)
    bad = ~(got >= lower - (tol.atol + tol.rtol * np.maximum(np.abs(lower), _pair_scale(spec.id, ex))))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = "DIoU loss" if spec.id == "ciou_loss" else "1 - IoU"
        raise AssertionError(f"{spec.id}.flat[{i}]={got.flat[i]!r}, but should be >= {what} = {lower.flat[i]!r} "
                             f"(boxes1={b1.reshape(-1, 4)[i].tolist()}, boxes2={b2.reshape(-1, 4)[i].tolist()})")


@_each(Category.GRADIENT, scaled_pairs, examples=_degenerate_examples)
def gradient_bounded_by_box_scale(spec: Spec, target: Target, ex: Example) -> None:
    """sum_c |d f / d c| over a pair's 8 coordinates stays under the bound of oracles.numpy_iou.grad_l1_bound, which is
    O(1 / s) for boxes of scale s (IoU: 8 (1/max(w1, w2) + 1/max(h1, h2)); GIoU adds 8 (1/cw + 1/ch); DIoU adds
    8 sqrt(2) / c; CIoU adds alpha v's O(1 / diagonal)), for any subgradient at ties; zero-area pairs included (there
    the bound is eps-limited: collinear segments, CIoU's point boxes)."""
    b1 = ex["boxes1"].detach().clone().requires_grad_(True)
    b2 = ex["boxes2"].detach().clone().requires_grad_(True)
    out = _call(spec, target, {**ex, "boxes1": b1, "boxes2": b2}, reduction="none")
    if not out.requires_grad:
        raise AssertionError("out does not require grad: the output is detached from boxes1 and boxes2")
    g1, g2 = torch.autograd.grad(out, (b1, b2), grad_outputs=torch.ones_like(out), allow_unused=True)
    total = sum(np.abs(_np(g)).sum(-1) for g in (g1, g2) if g is not None)
    bound = npo.grad_l1_bound(_np(b1), _np(b2), spec.id, ex.get("eps", 1e-7), ex.get("mode", "linear"))
    tol = ck.grad_tolerance(spec.id, "bound", ck.judged_dtype(_dtype(ex), out.dtype))
    bad = ~(np.broadcast_to(total, bound.shape) <= bound * (1 + tol.rtol) + tol.atol)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise AssertionError(
            f"sum |grad| of pair {i} = {np.broadcast_to(total, bound.shape).flat[i]!r}, but should be <= {bound.flat[i]!r} "
            f"(boxes1={_np(b1).reshape(-1, 4)[i].tolist()}, boxes2={_np(b2).reshape(-1, 4)[i].tolist()}, "
            f"eps={ex.get('eps', 1e-7)!r}): the gradient grows faster than 1 / (box scale)")


def _alpha_and_v(b1: torch.Tensor, b2: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """CIoU's alpha and v, differentiable, in float64 (the spec's own formula)."""
    x1, y1, x2, y2 = b1.unbind(-1)
    u1, v1, u2, v2 = b2.unbind(-1)
    iw = (torch.minimum(x2, u2) - torch.maximum(x1, u1)).clamp(min=0)
    inter = iw * (torch.minimum(y2, v2) - torch.maximum(y1, v1)).clamp(min=0)
    iou = inter / ((x2 - x1) * (y2 - y1) + (u2 - u1) * (v2 - v1) - inter + eps)
    v = 4 / math.pi**2 * (torch.atan((u2 - u1) / (v2 - v1 + eps)) - torch.atan((x2 - x1) / (y2 - y1 + eps))) ** 2
    return v / (1 - iou + v + eps), v


@_each(Category.GRADIENT, gradcheck_pairs, specs=("ciou_loss",), examples_factor=0.3)
def gradcheck_float64(spec: Spec, target: Target, ex: Example) -> None:
    """Autograd's gradient through boxes1 and boxes2 equals central finite differences of the loss with alpha held at its
    value (torch.autograd.gradcheck of f + (alpha(b0) - alpha(b)) v(b), the correction's gradient 0 at b0)."""
    leaves = tuple(ex[n].detach().clone().requires_grad_(True) for n in ("boxes1", "boxes2"))
    eps, red = ex.get("eps", 1e-7), ex.get("reduction", "none")
    with torch.no_grad():
        alpha0, _ = _alpha_and_v(leaves[0], leaves[1], eps)

    def frozen(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        alpha, v = _alpha_and_v(a, b, eps)
        fix = (alpha0 - alpha).detach() * v
        fix = fix if red == "none" else (fix.sum() if red == "sum" else fix.mean())
        return _call(spec, target, {**ex, "boxes1": a, "boxes2": b}) + fix

    ck.assert_gradcheck(frozen, leaves, spec=spec.id, names=("boxes1", "boxes2"))
