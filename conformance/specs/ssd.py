"""SSD MultiBox specs (seed 001): ``ssd_matching``, ``hard_negative_mining``, ``multibox_loss``.

This file holds the maths: calling conventions, strategies, oracles and the family's
own properties (matching invariants, the mining contract, the loss's structure).
Dtype and shape, determinism, untouched inputs, shape and domain errors, keywords,
gradcheck, finite gradients, device / dtype / compile agreement and
``agrees_with_numpy`` come from ``conformance.generic``.

Geometry is drawn on a dyadic grid (corners are multiples of 2^-7 below 2^4, then
translated by multiples of 2^-3 and scaled by a power of two): intersections and
unions are exact in float32 and float64, so an IoU carries one rounding, IoUs tie
exactly when they tie mathematically, and every metamorphic transform (translation,
power-of-two scaling, permutation, padding) is exact. Two distinct IoUs, or an IoU and
a threshold that is a multiple of 1/16, differ by at least 2^-21 (inter - t union is
a multiple of 2^-18, union <= 2^3), far above float32's half ulp: such thresholds are
decided exactly in every dtype. Where a decision is a tie (equal IoUs, an IoU within
the decision margin of another threshold, equal losses at the hard-negative cut) the
contract leaves the choice open: the oracles mask the images (or priors) it
decides, and the metamorphic properties compare only what is determined.
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
from conformance.generic import call
from conformance.spec import Arg, Category, Convention, ErrorInput, Keyword, Oracle, Spec, Variant, Want, register
from conformance.targets import Target
from conformance.tolerances import decision_margin
from impls import ssd as ref
from oracles import numpy_ssd as npo

_np = ck.f64
GRID = 128  # corners are multiples of 1 / GRID (priors' halves included) before translation and scaling

# ---------------------------------------------------------------------------
# Keyword values (non-default values the generic honours_<kw> properties draw)
# ---------------------------------------------------------------------------

thresholds = st.one_of(
    st.sampled_from([0.0, 0.25, 0.35, 0.45, 0.7, 0.75, 1.0]),
    st.floats(0.0, 1.0, allow_nan=False, allow_subnormal=False),
)
# Dyadic ratios and weights: floor(ratio * P) and 2 alpha are exact in every dtype.
ratios = st.sampled_from([0, 0.5, 1, 1.5, 2, 2.5, 4, 10])
alphas = st.sampled_from([0.0, 0.25, 0.5, 2.0, 3.0])


def _exact_threshold(t: float) -> bool:
    """A multiple of 1/16 is decided exactly on the grid (see the module docstring)."""
    return float(t * 16).is_integer()


def _thr(ex: dict[str, Any]) -> float:
    return float(ex.get("threshold", 0.5))


def _tie(ex: dict[str, Any]) -> float:
    return decision_margin(ex["gt_boxes"].dtype)


# ---------------------------------------------------------------------------
# Geometry strategies
# ---------------------------------------------------------------------------


# Strategies draw a few byte strings and decode them with NumPy: a draw costs about half a
# millisecond, so one per value would dominate the suite's time. Bytes shrink towards 0, which
# decodes to the simplest choice (a tiling, a box on a prior, offset 0, no garbage).


def _bytes(draw: st.DrawFn, n: int) -> np.ndarray:
    n = int(n)
    return np.frombuffer(draw(st.binary(min_size=n, max_size=n)), dtype=np.uint8).astype(np.int64)


def _zigzag(v: Any, n: int) -> Any:
    """0, 1, -1, 2, -2, ... bounded by +-n."""
    v = np.asarray(v) % (2 * n + 1)
    return (v + 1) // 2 * np.where(v % 2 == 1, 1, -1)


_SIZES = (8, 12, 16, 24, 32, 48)


def _priors(draw: st.DrawFn, head: np.ndarray, *, min_p: int, max_p: int) -> np.ndarray:
    """(P, 4) centre-size priors in grid units (integer corners): an SSD-like tiling, or random ones."""
    if max_p == 0 or (min_p == 0 and head[0] % 16 == 15):
        return np.zeros((0, 4))
    lo = max(min_p, 1)
    if head[1] % 2:
        n = int(lo + head[2] % (max_p - lo + 1))
        raw = _bytes(draw, 4 * n).reshape(n, 4)
        return np.stack([raw[:, 0] % 129, raw[:, 1] % 129, 2 * (1 + raw[:, 2] % 40), 2 * (1 + raw[:, 3] % 40)], 1) * 1.0
    f = (1, 2, 4)[head[2] % 3]
    sizes = {_SIZES[head[2] // 3 % 6], _SIZES[head[2] // 18 % 6]}
    rows = [(cx, cy, w, h) for cy in range(64 // f, 128, 128 // f) for cx in range(64 // f, 128, 128 // f)
            for s in sorted(sizes) for w, h in ((2 * s, 2 * s), (4 * s, 2 * s), (2 * s, 4 * s))]
    return np.array(rows[: max(max_p, lo)], dtype=np.float64)


_GARBAGE = {
    "inverted": [6.0, 6.0, -4.0, -4.0],
    "nan": [math.nan] * 4,
    "inf": [math.inf, -math.inf, math.inf, -math.inf],
    "zeros": [0.0] * 4,
    "huge": [-1e30, -1e30, 1e30, 1e30],
}


def _image(raw: np.ndarray, pr: np.ndarray, *, min_real: int, positive_area: bool) -> tuple[list, list, list]:
    """One image's slots from 8 bytes each: real boxes (near a prior, so that IoUs pass thresholds and
    collide; random; degenerate where allowed; or a copy of an earlier one, an exact IoU tie) and padding."""
    lo = 2 if positive_area else 0
    boxes, mask, garbage = [], [], []
    for j, (r, kind, pi, d0, d1, d2, d3, gb) in enumerate(raw.tolist()):
        real = [b for b, m in zip(boxes, mask) if m]
        if j >= min_real and r % 5 == 4:
            choice = (["copy"] if real else []) + list(_GARBAGE)
            garbage.append((j, choice[gb % len(choice)]))
            boxes.append(real[-1] if garbage[-1][1] == "copy" else [0.0] * 4)
            mask.append(False)
            continue
        k = kind % 10
        if k == 9 and real:
            box = real[pi % len(real)]
        elif k < 7 and len(pr):
            cx, cy, w, h = pr[pi % len(pr)].tolist()
            x1, y1 = cx - w / 2 + _zigzag(d0, 8), cy - h / 2 + _zigzag(d1, 8)
            box = [x1, y1, max(cx + w / 2 + _zigzag(d2, 8), x1 + lo), max(cy + h / 2 + _zigzag(d3, 8), y1 + lo)]
        else:
            w = (lo, 2, 4)[d3 % 3] if d2 % 8 == 7 else 16 + d2 % 65
            h = max(lo, 8) + gb % (81 - max(lo, 8))
            box = [d0 % 121, d1 % 121, d0 % 121 + w, d1 % 121 + h]
        boxes.append([float(v) for v in box])
        mask.append(True)
    return boxes, mask, garbage


@st.composite
def geometry(
    draw: st.DrawFn,
    *,
    dtypes: tuple[torch.dtype, ...] = hh.FLOAT_DTYPES,
    min_b: int = 0,
    max_b: int = 2,
    min_g: int = 0,
    max_g: int = 4,
    min_p: int = 0,
    max_p: int = 16,
    min_real: int = 0,
    positive_area: bool = False,
    extreme: bool = True,
    big_b: int = 9,
) -> dict[str, Any]:
    """Padded ground truths (B, G, 4) with their mask (None: all real) and priors (P, 4), exact in every dtype.

    Padded slots hold garbage (NaN, inf, inverted boxes, or a copy of a real box): the contract
    ignores them. The whole scene is translated and scaled by a power of two (2^-40 .. 2^40).
    The first ``min_real`` slots of every image are real. One example in eight (where ``max_b`` is at
    least 2) has a batch of 5 to ``big_b`` images: an implementation that matches in chunks or blocks
    of images must show the same result there."""
    dtype = draw(hh.float_dtypes(dtypes=dtypes))
    hh.region(str(dtype).removeprefix("torch."))
    head = _bytes(draw, 10)
    pr = _priors(draw, head, min_p=min_p, max_p=max_p)
    # An empty batch or no slots in one example in eight: the rest have objects to match.
    b = 0 if min_b == 0 and head[3] % 8 == 7 else int(max(min_b, 1) + head[3] % (max_b - max(min_b, 1) + 1))
    if big_b > 4 and max_b >= 2 and head[3] % 8 == 6:
        b = draw(st.integers(5, big_b))
        hh.region("a large batch (B > 4)")
    g = 0 if min_g == 0 and head[4] % 8 == 7 else int(max(min_g, 1) + head[4] % (max_g - max(min_g, 1) + 1))
    raw = _bytes(draw, 8 * b * g).reshape(b, g, 8)
    boxes, mask, garbage = np.zeros((b, g, 4)), np.zeros((b, g), dtype=bool), []
    for i in range(b):
        rows, m, junk = _image(raw[i], pr, min_real=min_real, positive_area=positive_area)
        if g:
            boxes[i], mask[i] = rows, m
        garbage += [(i, j, kind) for j, kind in junk]
    k = (0, 0, int(_zigzag(head[6], 8)), (-40, -20, 20, 40)[head[6] % 4])[head[5] % 4] if extreme else 0
    shift = (_zigzag(head[8], 64), _zigzag(head[9], 64)) if extreme and head[7] % 2 else (0, 0)
    unit = 2.0**k / GRID
    off = np.array(shift, dtype=np.float64) * 16  # multiples of 1/8 in grid units
    boxes = (boxes + np.tile(off, 2)) * unit
    pr = np.concatenate([pr[:, :2] + off, pr[:, 2:]], axis=1) * unit
    for i, j, kind in garbage:  # after scaling: garbage is what it is
        if kind != "copy":
            boxes[i, j] = _GARBAGE[kind]
    ex: dict[str, Any] = {
        "gt_boxes": torch.from_numpy(boxes).to(dtype),
        "gt_mask": torch.from_numpy(mask),
        "priors": torch.from_numpy(pr).to(dtype),
    }
    if mask.all() and head[7] // 2 % 2:
        ex["gt_mask"] = None
        hh.region("gt_mask None (all real)")
    if b == 0:
        hh.region("empty batch (B = 0)")
    elif g == 0:
        hh.region("no ground-truth slots (G = 0)")
    elif not mask.any(axis=1).all():
        hh.region("an image without real ground truth")
    if len(pr) == 0:
        hh.region("no priors (P = 0)")
    if any(kind in ("nan", "inf", "huge") for _, _, kind in garbage):
        hh.region("padding holds NaN / inf / huge values")
    if abs(k) >= 20:
        hh.region("extreme scale (2^20 and beyond, either way)")
    real_boxes = boxes[mask]
    if ((real_boxes[:, 2] == real_boxes[:, 0]) | (real_boxes[:, 3] == real_boxes[:, 1])).any():
        hh.region("degenerate ground truth (zero width or height)")
    return ex


def _untied_images(ex: dict[str, Any], threshold: float | None = None, *, exact: bool | None = None) -> np.ndarray:
    """(B,) bool: the images whose matching no tie decides (at the example's threshold unless given)."""
    t = _thr(ex) if threshold is None else threshold
    _, margins = npo.match_with_margins(ex["gt_boxes"], ex.get("gt_mask"), ex["priors"], t,
                                        exact=_exact_threshold(t) if exact is None else exact)
    return margins > _tie(ex)


@st.composite
def match_inputs(draw: st.DrawFn, *, keyword: bool = True, untied: bool = False, **geo: Any) -> dict[str, Any]:
    ex = draw(geometry(**geo))
    if keyword and draw(st.booleans()):
        ex["threshold"] = draw(st.one_of(st.just(0.5), thresholds))
        hh.region("threshold given")
    if untied:
        assume(bool(_untied_images(ex).all()))
    return ex


# ---------------------------------------------------------------------------
# ssd_matching: oracle, errors, spec
# ---------------------------------------------------------------------------


def _match_numpy(ex: dict[str, Any]) -> Want:
    t = _thr(ex)
    m, margins = npo.match_with_margins(ex["gt_boxes"], ex.get("gt_mask"), ex["priors"], t, exact=_exact_threshold(t))
    trusted = np.broadcast_to((margins > _tie(ex))[:, None], m.shape)
    return Want(m.astype(np.float64), mask=trusted)


def _malformed(base: st.SearchStrategy[dict[str, Any]], name: str, kind: str, argument: str,
               corrupt: Any) -> ErrorInput:
    """An ErrorInput whose examples are ``corrupt(example, draw)`` of the well-formed ``base`` examples."""
    return ErrorInput(name, kind, argument, st.composite(lambda draw: corrupt(draw(base), draw))())


def _real_slot(ex: dict[str, Any], draw: st.DrawFn) -> tuple[int, int]:
    real = np.argwhere(_mask(ex))
    return tuple(int(v) for v in real[draw(st.integers(0, len(real) - 1))])  # type: ignore[return-value]


def _with(ex: dict[str, Any], key: str, index: tuple[int, ...], value: Any) -> dict[str, Any]:
    t = ex[key].clone()
    t[index] = torch.as_tensor(value, dtype=t.dtype)
    return {**ex, key: t}


_WELL_FORMED = match_inputs(min_b=1, min_g=1, min_real=1, min_p=1, extreme=False, keyword=False)
_BG = lambda ex: ex["gt_boxes"].shape[:2]  # noqa: E731
_MATCH_ERRORS = tuple(_malformed(_WELL_FORMED, *row) for row in (
    ("gt_mask of shape (B, G + 1)", "shape", "gt_mask", lambda ex, d: {**ex, "gt_mask": torch.ones(_BG(ex)[0], _BG(ex)[1] + 1,
                                                                                                   dtype=torch.bool)}),
    ("gt_mask of shape (B + 1, G)", "shape", "gt_mask", lambda ex, d: {**ex, "gt_mask": torch.ones(_BG(ex)[0] + 1, _BG(ex)[1],
                                                                                                   dtype=torch.bool)}),
    ("gt_boxes with 5 coordinates", "shape", "gt_boxes", lambda ex, d: {**ex, "gt_boxes": torch.cat([ex["gt_boxes"],
                                                                                                     ex["gt_boxes"][..., :1]], -1)}),
    ("gt_boxes without the batch axis", "shape", "gt_boxes", lambda ex, d: {**ex, "gt_boxes": ex["gt_boxes"][0], "gt_mask": None}),
    ("priors with 3 columns", "shape", "priors", lambda ex, d: {**ex, "priors": ex["priors"][:, :3].contiguous()}),
    ("a float gt_mask", "dtype", "gt_mask", lambda ex, d: {**ex, "gt_mask": torch.from_numpy(_mask(ex)).to(ex["gt_boxes"].dtype)}),
    ("integer gt_boxes", "dtype", "gt_boxes", lambda ex, d: {**ex, "gt_boxes": ex["gt_boxes"].nan_to_num(0, 0, 0).long()}),
    ("integer priors", "dtype", "priors", lambda ex, d: {**ex, "priors": (ex["priors"] * 64).long()}),
    ("threshold outside [0, 1] or nan", "domain", "threshold",
     lambda ex, d: {**ex, "threshold": d(st.sampled_from([-0.1, 1.5, -1.0, 2.0, math.nan]))}),
    ("an inverted real box (x2 < x1)", "domain", "gt_boxes", lambda ex, d: _with(ex, "gt_boxes", _real_slot(ex, d), [0.5, 0.5, 0.25, 0.75])),
    ("a non-finite real box", "domain", "gt_boxes", lambda ex, d: _with(ex, "gt_boxes", _real_slot(ex, d), [0, 0, math.inf, 0.5])),
    ("a prior of zero or negative size", "domain", "priors",
     lambda ex, d: _with(ex, "priors", (d(st.integers(0, ex["priors"].shape[0] - 1)), d(st.integers(2, 3))),
                         d(st.sampled_from([0.0, -0.25])))),
    ("a non-finite prior", "domain", "priors",
     lambda ex, d: _with(ex, "priors", (d(st.integers(0, ex["priors"].shape[0] - 1)), d(st.integers(0, 3))),
                         d(st.sampled_from([math.nan, math.inf, -math.inf])))),
))


MATCH = register(
    Spec(
        id="ssd_matching",
        family="ssd",
        signature="f(gt_boxes: Tensor[B, G, 4] (x1, y1, x2, y2), gt_mask: Tensor[B, G] bool | None, priors: Tensor[P, 4] "
        "(cx, cy, w, h), *, threshold: float = 0.5) -> Tensor[B, P] int64 (ground-truth index per prior, -1 background)",
        summary="SSD's two matching principles: every real ground truth gets a prior of its own (greedy bipartite: the "
        "pair of highest IoU keeps a contested prior), then every other prior with IoU >= threshold takes its "
        "best ground truth; padding (gt_mask False, holding anything) is never matched; gt_mask None means all real. "
        "Which of tied candidates wins is left open.",
        reference=ref.ssd_matching,
        convention=Convention(
            args=(Arg("gt_boxes"), Arg("gt_mask", floating=False, optional=True), Arg("priors")),
            keywords=(Keyword("threshold", 0.5, thresholds),),
            output_shape=lambda ex: (ex["gt_boxes"].shape[0], ex["priors"].shape[0]),
            output_dtype=lambda ex: torch.int64,
            errors=_MATCH_ERRORS,
        ),
        strategies={
            "default": match_inputs(),
            # Devices and compilers may break ties their own way: only untied examples are compared.
            "device": match_inputs(untied=True),
        },
        oracles=(
            Oracle("numpy", "numpy", _match_numpy, primary=True,
                   domain="every image whose decisions are not ties (an image with a tie is masked: the contract "
                   "leaves it open)",
                   doc="Equal to the image-by-image NumPy loop (greedy rounds, then the threshold) on every image "
                   "that no tie decides."),
        ),
        variants=(
            Variant(
                "seed_ssd_matching",
                ref.seed_ssd_matching,
                why="Seed 001's `object_for_each_prior[prior_for_each_object] = range(n)`: when two ground truths share "
                "a best prior the later one silently takes it and the earlier one may be left with no prior.",
            ),
        ),
        opt_out={
            "gradcheck_float64": "the output is an index tensor: no input is differentiable through it",
            "finite_gradients": "the output is an index tensor: no input is differentiable through it",
            "low_precision_matches_float32": "the output is an int64 index tensor, not of the input's dtype, and IoUs "
            "rounded to 11 (float16) or 8 (bfloat16) bits decide thresholds and ties differently from float32",
        },
        regions=("float32", "float64", "a large batch (B > 4)", "empty batch (B = 0)", "no ground-truth slots (G = 0)",
                 "an image without real ground truth", "no priors (P = 0)", "gt_mask None (all real)",
                 "padding holds NaN / inf / huge values", "extreme scale (2^20 and beyond, either way)",
                 "degenerate ground truth (zero width or height)", "threshold given"),
    )
)

# ---------------------------------------------------------------------------
# ssd_matching: explicit corner cases
# ---------------------------------------------------------------------------

_SSD300_EX = {
    "gt_boxes": torch.tensor([[[0.1, 0.1, 0.4, 0.5], [0.12, 0.1, 0.42, 0.5], [0.6, 0.6, 0.95, 0.9], [0.0, 0.0, 0.0, 0.0]]]),
    "gt_mask": torch.tensor([[True, True, True, False]]),
    "priors": ref.ssd300_priors(),
}
# Two ground truths whose best prior is prior 0 (IoU 1 and 0.75): the first keeps it, the second takes
# prior 1 (IoU 2/3); no decision is a tie.
_COLLIDE_EX = {
    "gt_boxes": torch.tensor([[[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.375]]]),
    "gt_mask": torch.tensor([[True, True]]),
    "priors": torch.tensor([[0.25, 0.25, 0.5, 0.5], [0.25, 0.125, 0.5, 0.25], [0.75, 0.75, 0.5, 0.5]]),
}
# IoU exactly 0.5 with prior 1 (which is not the ground truth's best): it must be positive.
_HALF_EX = {
    "gt_boxes": torch.tensor([[[0.0, 0.0, 0.5, 0.25]]]),
    "gt_mask": torch.tensor([[True]]),
    "priors": torch.tensor([[0.25, 0.125, 0.5, 0.25], [0.25, 0.25, 0.5, 0.5], [0.75, 0.75, 0.25, 0.25]]),
    "threshold": 0.5,
}
_EMPTY_EXAMPLES = (
    {"gt_boxes": torch.zeros(0, 3, 4), "gt_mask": torch.zeros(0, 3, dtype=torch.bool), "priors": torch.tensor([[0.5, 0.5, 0.25, 0.25]])},
    {"gt_boxes": torch.zeros(2, 0, 4), "gt_mask": torch.zeros(2, 0, dtype=torch.bool), "priors": torch.tensor([[0.5, 0.5, 0.25, 0.25]])},
    {"gt_boxes": torch.tensor([[[0.25, 0.25, 0.75, 0.75]]]), "gt_mask": torch.tensor([[False]]),
     "priors": torch.tensor([[0.5, 0.5, 0.5, 0.5]]), "threshold": 0.0},
)
MATCH.examples = {"agrees_with_numpy": (_COLLIDE_EX, _SSD300_EX, *_EMPTY_EXAMPLES),
                  "output_dtype_and_shape": _EMPTY_EXAMPLES}


def _matched(target: Target, ex: dict[str, Any], **over: Any) -> np.ndarray:
    """The target's matching as int64 NumPy, checked to be (B, P) with values in [-1, G - 1]."""
    e = {**ex, **over}
    out = call(MATCH, target, e)
    b, g = e["gt_boxes"].shape[:2]
    p = e["priors"].shape[0]
    if tuple(out.shape) != (b, p) or out.is_floating_point():
        raise AssertionError(f"out is {tuple(out.shape)}/{out.dtype}, but should be an integer (B, P) = ({b}, {p}) tensor")
    m = out.detach().cpu().numpy().astype(np.int64)
    if m.size and (m.min() < -1 or m.max() >= g):
        raise AssertionError(f"matched values must lie in [-1, {g - 1}], found {m.min()}..{m.max()}")
    return m


def _mask(ex: dict[str, Any]) -> np.ndarray:
    m = ex.get("gt_mask")
    return np.ones(ex["gt_boxes"].shape[:2], dtype=bool) if m is None else m.numpy().astype(bool)


def _ious(ex: dict[str, Any]) -> list[np.ndarray]:
    """Per image, the float64 IoU (G, P) of every slot with every prior (padding rows -1)."""
    pr = _np(ex["priors"]).reshape(-1, 4)
    corners = np.concatenate([pr[:, :2] - pr[:, 2:] / 2, pr[:, :2] + pr[:, 2:] / 2], axis=1)
    mask = _mask(ex)
    out = []
    for i in range(ex["gt_boxes"].shape[0]):
        iou = np.full((mask.shape[1], corners.shape[0]), -1.0)
        if mask[i].any():
            iou[mask[i]] = npo.iou_matrix(ex["gt_boxes"][i][torch.from_numpy(mask[i])].double(), corners)
        out.append(iou)
    return out


def _first_difference(got: np.ndarray, want: np.ndarray, rows: np.ndarray) -> tuple[int, int] | None:
    diff = (got != want) & rows[:, None]
    if not diff.any():
        return None
    i, p = np.argwhere(diff)[0]
    return int(i), int(p)


# ---------------------------------------------------------------------------
# ssd_matching properties
# ---------------------------------------------------------------------------


@MATCH.property(Category.MATCHING, strategy=match_inputs(), examples=(_COLLIDE_EX, _SSD300_EX), name="every_ground_truth_has_a_prior")
def every_gt_matched(target: Target, ex: dict[str, Any]) -> None:
    """Principle 1: each real ground truth is the match of at least one prior (when #GT <= #priors), ties or not."""
    m = _matched(target, ex)
    mask = _mask(ex)
    for i in range(m.shape[0]):
        real = np.flatnonzero(mask[i])
        if len(real) > m.shape[1]:
            continue
        lost = [int(g) for g in real if int(g) not in set(m[i][m[i] >= 0].tolist())]
        if lost:
            raise AssertionError(f"image {i}: ground truth {lost[0]} has no prior (its best prior went to another)")


@MATCH.property(Category.MATCHING, strategy=match_inputs(), name="padding_is_never_matched")
def padding_never_matched(target: Target, ex: dict[str, Any]) -> None:
    """No prior is matched to a padded slot (gt_mask False), whatever the slot holds (NaN, inf, a copy of a real box)."""
    m = _matched(target, ex)
    mask = _mask(ex)
    for i, p in np.argwhere(m >= 0):
        if not mask[i, m[i, p]]:
            raise AssertionError(f"image {i}: prior {p} matched to padded slot {m[i, p]}")


@MATCH.property(Category.MATCHING, strategy=match_inputs(), examples=(_COLLIDE_EX,), name="best_ground_truth_unless_forced")
def best_unless_forced(target: Target, ex: dict[str, Any]) -> None:
    """A matched prior has IoU >= threshold with its ground truth and no other ground truth overlaps it more,
    except at most one prior per ground truth (the one principle 1 gave it)."""
    m = _matched(target, ex)
    tie, t = _tie(ex), _thr(ex)
    for i, iou in enumerate(_ious(ex)):
        forced: dict[int, int] = {}
        for p in np.flatnonzero(m[i] >= 0):
            g = int(m[i, p])
            if iou[g, p] < 0:
                continue  # padding: padding_is_never_matched says so
            best = iou[:, p].max()
            if iou[g, p] < t - tie or iou[g, p] < best - tie:
                if g in forced:
                    raise AssertionError(
                        f"image {i}: priors {forced[g]} and {p} both matched to ground truth {g} below the threshold or "
                        f"below another ground truth's IoU (IoU {iou[g, p]:.4f}, best {best:.4f}); principle 1 forces one only"
                    )
                forced[g] = int(p)


@MATCH.property(Category.MATCHING, strategy=match_inputs(), examples=(_HALF_EX,), name="above_threshold_is_positive")
def above_threshold_positive(target: Target, ex: dict[str, Any]) -> None:
    """Principle 2: every prior whose IoU with some real ground truth is >= threshold is matched (an IoU equal to the
    threshold counts: >=, not >)."""
    m = _matched(target, ex)
    t = _thr(ex)
    # A multiple of 1/16 is compared exactly on the grid; other thresholds allow for rounding.
    slack = 0.0 if _exact_threshold(t) else _tie(ex)
    for i, iou in enumerate(_ious(ex)):
        if not iou.size:
            continue
        best = iou.max(axis=0)
        miss = np.flatnonzero((best >= t + slack) & (m[i] < 0))
        if miss.size:
            p = int(miss[0])
            raise AssertionError(f"image {i}: prior {p} has IoU {best[p]!r} >= threshold {t} but is background")


@MATCH.property(Category.MATCHING, strategy=match_inputs(), examples=(_COLLIDE_EX,), name="highest_iou_pair_is_matched")
def highest_pair_matched(target: Target, ex: dict[str, Any]) -> None:
    """In each image the (ground truth, prior) pair of highest IoU (when unique) is matched: a contested prior goes to the
    ground truth that overlaps it most, not to the later one."""
    m = _matched(target, ex)
    for i, iou in enumerate(_ious(ex)):
        if not iou.size or iou.max() <= 0:
            continue
        flat = np.sort(iou.ravel())[::-1]
        if len(flat) > 1 and flat[0] - flat[1] <= _tie(ex):
            continue
        g, p = np.unravel_index(int(np.argmax(iou)), iou.shape)
        if m[i, p] != g:
            raise AssertionError(f"image {i}: the best pair is ground truth {g} with prior {p} (IoU {iou[g, p]:.4f}), "
                                 f"but prior {p} is matched to {m[i, p]}")


@MATCH.property(Category.MATCHING, strategy=match_inputs(), name="best_prior_kept_without_collision")
def best_prior_kept(target: Target, ex: dict[str, Any]) -> None:
    """In an image where the real ground truths' best priors are all distinct (and unique), each ground truth is matched
    to its best prior, whatever the threshold (principle 1 before principle 2)."""
    m = _matched(target, ex)
    for i, iou in enumerate(_ious(ex)):
        real = [g for g in range(iou.shape[0]) if iou[g].max(initial=-1.0) >= 0]
        best = {}
        for g in real:
            row = np.sort(iou[g])[::-1]
            if len(row) > 1 and row[0] - row[1] <= _tie(ex):
                break
            best[g] = int(np.argmax(iou[g]))
        if len(best) != len(real) or len(set(best.values())) != len(best):
            continue  # a tie or a collision: greedy bipartite decides, checked elsewhere
        for g, p in best.items():
            if m[i, p] != g:
                raise AssertionError(
                    f"image {i}: prior {p} is ground truth {g}'s best (IoU {iou[g, p]:.4f}); no two ground truths share a best "
                    f"prior, but it is matched to {m[i, p]} (threshold {_thr(ex)})"
                )


@st.composite
def _two_thresholds(draw: st.DrawFn) -> dict[str, Any]:
    ex = draw(match_inputs(keyword=False))
    lo, hi = sorted((draw(thresholds), draw(thresholds)))
    return {**ex, "threshold": lo, "threshold2": hi}


@MATCH.property(Category.MATCHING, strategy=_two_thresholds(), name="higher_threshold_fewer_positives")
def threshold_monotone(target: Target, ex: dict[str, Any]) -> None:
    """Raising the threshold never makes a background prior positive (principle 1 does not depend on it); images
    where principle 1 meets a tie are skipped (the contract leaves the forced prior open)."""
    lo = _matched(target, ex) >= 0
    hi = _matched(target, ex, threshold=ex["threshold2"]) >= 0
    untied = _untied_images(ex, exact=True)  # principle 1's ties only: the threshold does not decide them
    at = _first_difference(hi & ~lo, np.zeros_like(lo), untied)
    if at is not None:
        i, p = at
        raise AssertionError(f"prior {p} of image {i} is background at threshold {ex['threshold']} but positive at "
                             f"{ex['threshold2']}")


@st.composite
def _with_permutation(draw: st.DrawFn, axis: str) -> dict[str, Any]:
    ex = draw(match_inputs())
    n = ex["gt_boxes"].shape[1] if axis == "gt" else ex["priors"].shape[0]
    ex["perm"] = torch.tensor(draw(st.permutations(list(range(n)))), dtype=torch.long)
    return ex


@MATCH.property(Category.INVARIANCE, strategy=_with_permutation("gt"), name="ground_truth_permutation_equivariant")
def gt_permutation(target: Target, ex: dict[str, Any]) -> None:
    """Permuting the ground-truth slots permutes the matched indices the same way (images without ties)."""
    base = _matched(target, ex)
    perm = ex["perm"]
    mask = ex.get("gt_mask")
    moved = _matched(target, ex, gt_boxes=ex["gt_boxes"][:, perm], gt_mask=None if mask is None else mask[:, perm])
    inv = torch.argsort(perm).numpy()  # slot g moved to inv[g]
    want = np.where(base >= 0, inv[np.maximum(base, 0)] if inv.size else base, -1)
    at = _first_difference(moved, want, _untied_images(ex))
    if at is not None:
        i, p = at
        raise AssertionError(f"after permuting the ground truths by {perm.tolist()}, prior {p} of image {i} is matched to "
                             f"{moved[i, p]}, but should be {want[i, p]}")


@MATCH.property(Category.INVARIANCE, strategy=_with_permutation("prior"), name="prior_permutation_equivariant")
def prior_permutation(target: Target, ex: dict[str, Any]) -> None:
    """Permuting the priors permutes the output's columns the same way (images without ties)."""
    base = _matched(target, ex)
    perm = ex["perm"]
    moved = _matched(target, ex, priors=ex["priors"][perm])
    at = _first_difference(moved, base[:, perm.numpy()], _untied_images(ex))
    if at is not None:
        i, p = at
        raise AssertionError(f"after permuting the priors, column {p} of image {i} is {moved[i, p]}, but should be "
                             f"{base[i, perm[p]]}")


@MATCH.property(Category.INVARIANCE, strategy=match_inputs(min_b=2), name="images_are_independent")
def images_independent(target: Target, ex: dict[str, Any]) -> None:
    """Each image's row equals the matching of that image alone (no mixing across the batch), for images without ties."""
    base = _matched(target, ex)
    untied = _untied_images(ex)
    mask = ex.get("gt_mask")
    for i in np.flatnonzero(untied):
        alone = _matched(target, ex, gt_boxes=ex["gt_boxes"][i : i + 1], gt_mask=None if mask is None else mask[i : i + 1])
        if not np.array_equal(alone[0], base[i]):
            p = int(np.flatnonzero(alone[0] != base[i])[0])
            raise AssertionError(f"image {i} matched alone gives {alone[0, p]} for prior {p}, in the batch {base[i, p]}")


@MATCH.property(Category.INVARIANCE, strategy=match_inputs(), name="extra_padding_changes_nothing")
def extra_padding(target: Target, ex: dict[str, Any]) -> None:
    """Appending padded slots (gt_mask False, holding a box that overlaps the priors, and NaN) leaves the matching unchanged."""
    b, g = ex["gt_boxes"].shape[:2]
    dt = ex["gt_boxes"].dtype
    pr = ex["priors"]
    # A box over the priors' extent: matched at once by a target that ignores the mask.
    span = torch.cat([pr[:, :2] - pr[:, 2:] / 2, pr[:, :2] + pr[:, 2:] / 2]) if pr.shape[0] else torch.zeros(1, 2, dtype=dt)
    junk = torch.stack([torch.cat([span.min(0).values, span.max(0).values]), torch.full((4,), math.nan, dtype=dt)])
    base = _matched(target, ex)
    more = _matched(target, ex, gt_boxes=torch.cat([ex["gt_boxes"], junk.expand(b, 2, 4)], 1),
                    gt_mask=torch.cat([torch.from_numpy(_mask(ex)), torch.zeros(b, 2, dtype=torch.bool)], 1))
    at = _first_difference(more, base, _untied_images(ex))
    if at is not None:
        i, p = at
        raise AssertionError(f"with two extra padded slots prior {p} of image {i} is matched to {more[i, p]} instead of {base[i, p]}")


@st.composite
def _moved(draw: st.DrawFn) -> dict[str, Any]:
    ex = draw(match_inputs())
    ex["shift"] = [draw(st.integers(-64, 64)) / 8, draw(st.integers(-64, 64)) / 8]
    ex["factor"] = 2.0 ** draw(st.sampled_from([-3, -1, 1, 3]))
    return ex


@MATCH.property(Category.INVARIANCE, strategy=_moved(), name="translation_and_scale_invariant")
def match_moved(target: Target, ex: dict[str, Any]) -> None:
    """Translating (by multiples of the scene's 1/8 unit) or scaling by a power of two every box and prior together
    leaves the matching unchanged (both transforms are exact on the grid; images without ties)."""
    base = _matched(target, ex)
    dt = ex["gt_boxes"].dtype
    pr, gt = ex["priors"], ex["gt_boxes"]
    # The scene's unit: the shift stays on its grid whatever power of two scaled it.
    finite = torch.cat([pr[:, 2:].flatten(), gt[torch.from_numpy(_mask(ex))].flatten().abs()])
    finite = finite[torch.isfinite(finite) & (finite > 0)]
    unit = 2.0 ** math.floor(math.log2(float(finite.max()))) if finite.numel() else 1.0
    t = torch.tensor(ex["shift"], dtype=dt) * unit
    s = ex["factor"]
    shifted = _matched(target, ex, gt_boxes=gt + t.repeat(2), priors=torch.cat([pr[:, :2] + t, pr[:, 2:]], 1))
    scaled = _matched(target, ex, gt_boxes=gt * s, priors=pr * s)
    untied = _untied_images(ex)
    for what, got in ((f"translated by {ex['shift']} x {unit!r}", shifted), (f"scaled by {s}", scaled)):
        at = _first_difference(got, base, untied)
        if at is not None:
            i, p = at
            raise AssertionError(f"{what}: prior {p} of image {i} is matched to {got[i, p]} instead of {base[i, p]}")


# ---------------------------------------------------------------------------
# hard_negative_mining: strategies, oracle, errors, spec
# ---------------------------------------------------------------------------

# Losses over the whole ordered domain: the #16 values (tiny positives that collapse under 2 l + 1),
# subnormals, zero of either sign, negatives, huge and infinite values.
_EXTREME_LOSSES = [0.0, -0.0, 1e-45, 1.2e-38, 4.3e-31, 1.7e-25, 3e38, -3e38, math.inf, -math.inf, -1.0]


@st.composite
def mining_inputs(
    draw: st.DrawFn,
    *,
    dtypes: tuple[torch.dtype, ...] = hh.FLOAT_DTYPES,
    min_b: int = 0,
    max_b: int = 3,
    min_p: int = 0,
    max_p: int = 20,
    unique: bool = False,
    keyword: bool = True,
) -> dict[str, Any]:
    """conf_loss (B, P) and the positive mask: exact ties (small dyadic losses), continuous losses, or values
    spanning the whole ordered float range (infinities, subnormals, huge, negative); ``unique``: no two equal
    losses (no ties for a device or a compiler to break its own way)."""
    dtype = draw(hh.float_dtypes(dtypes=dtypes))
    head = _bytes(draw, 4)
    b, p = int(min_b + head[0] % (max_b - min_b + 1)), int(min_p + head[1] % (max_p - min_p + 1))
    if max_b >= 2 and draw(st.integers(0, 7)) == 0:  # chunked or blocked miners must agree there too
        b = draw(st.integers(5, 9))
        hh.region("a large batch (B > 4)")
    kind = ("ties", "continuous", "extreme")[head[2] % 3 if not unique else 1 + head[2] % 2]
    if kind == "continuous" and dtype == torch.float64 and head[3] // 2 % 2:
        kind = "near"
    raw = _bytes(draw, 3 * b * p).reshape(3, b * p)
    if kind == "ties":
        vals = (raw[0] % 13) / 4
    elif kind == "continuous":
        vals = (raw[0] * 256 + raw[1]) / 65535 * 50
    elif kind == "near":
        # Losses a few 2^-27 apart (relative): distinct in float64 (beyond its decision margin), equal or
        # adjacent in float32, so a miner that ranks a float64 loss in float32 picks by index there.
        vals = 1.0 + (raw[1] % 16) * 2.0**-27  # one cluster: the cut falls inside it
    else:  # a third from the table (unless unique), the rest spread over 1e-44 .. 1e37 of either sign
        spread = np.where(raw[2] % 16 == 0, -1.0, 1.0) * (1 + raw[1] / 256) * 10.0 ** (-44 + raw[0] % 82)
        table = np.array(_EXTREME_LOSSES)[raw[0] % len(_EXTREME_LOSSES)]
        vals = np.where((raw[2] % 3 == 0) & (not unique), table, spread)
    loss = torch.from_numpy(vals.reshape(b, p)).to(dtype)
    if unique:
        assume(len(np.unique(_np(loss))) == b * p)
    ex: dict[str, Any] = {"conf_loss": loss, "positive": torch.from_numpy((raw[2] // 3 % 6 == 5).reshape(b, p))}
    if keyword and head[3] % 2:
        ex["neg_pos_ratio"] = draw(st.one_of(st.just(3), ratios))
        hh.region("neg_pos_ratio given")
    hh.region(str(dtype).removeprefix("torch."))
    hh.region({"ties": "small dyadic losses", "continuous": "continuous losses", "extreme": "extreme losses (inf, subnormal, huge)",
               "near": "losses 2^-27 apart (distinct in float64 only)"}[kind])
    if b * p == 0:
        hh.region("empty (B = 0 or P = 0)")
    elif npo.mining_open(ex["conf_loss"], ex["positive"], _ratio(ex)).any():
        hh.region("equal losses at the cut")
    return ex


def _ratio(ex: dict[str, Any]) -> float:
    return float(ex.get("neg_pos_ratio", 3))


def _mine_numpy(ex: dict[str, Any]) -> Want:
    want = npo.hard_negative_mining(ex["conf_loss"], ex["positive"], _ratio(ex))
    return Want(want.astype(np.float64), mask=~npo.mining_open(ex["conf_loss"], ex["positive"], _ratio(ex)))


_WELL_MINED = mining_inputs(min_b=1, min_p=1, keyword=False)
_BP = lambda ex: tuple(ex["conf_loss"].shape)  # noqa: E731
_MINE_ERRORS = tuple(_malformed(_WELL_MINED, *row) for row in (
    ("positive of shape (B, P + 1)", "shape", "positive", lambda ex, d: {**ex, "positive": torch.zeros(_BP(ex)[0], _BP(ex)[1] + 1,
                                                                                                       dtype=torch.bool)}),
    ("positive of shape (B + 1, P)", "shape", "positive", lambda ex, d: {**ex, "positive": torch.zeros(_BP(ex)[0] + 1, _BP(ex)[1],
                                                                                                       dtype=torch.bool)}),
    ("positive of shape (P,)", "shape", "positive", lambda ex, d: {**ex, "positive": ex["positive"][0].contiguous()}),
    ("conf_loss and positive without the batch axis", "shape", "conf_loss",
     lambda ex, d: {**ex, "conf_loss": ex["conf_loss"][0].contiguous(), "positive": ex["positive"][0].contiguous()}),
    ("a uint8 positive", "dtype", "positive", lambda ex, d: {**ex, "positive": ex["positive"].to(torch.uint8)}),
    ("a float positive", "dtype", "positive", lambda ex, d: {**ex, "positive": ex["positive"].to(ex["conf_loss"].dtype)}),
    ("an integer conf_loss", "dtype", "conf_loss", lambda ex, d: {**ex, "conf_loss": ex["conf_loss"].nan_to_num(0, 0, 0).clamp(
        -100, 100).long()}),
    ("a negative or nan neg_pos_ratio", "domain", "neg_pos_ratio",
     lambda ex, d: {**ex, "neg_pos_ratio": d(st.sampled_from([-1, -0.5, math.nan]))}),
    ("NaN in conf_loss", "domain", "conf_loss",
     lambda ex, d: _with(ex, "conf_loss", divmod(d(st.integers(0, ex["conf_loss"].numel() - 1)), _BP(ex)[1]), math.nan)),
))


MINING = register(
    Spec(
        id="hard_negative_mining",
        family="ssd",
        signature="f(conf_loss: Tensor[B, P], positive: Tensor[B, P] bool, *, neg_pos_ratio: float = 3) -> Tensor[B, P] bool",
        summary="Per image, the min(floor(ratio * #positives), #negatives) negatives of highest confidence loss (any "
        "ordered values, infinities included; no NaN); positives are never selected; which of equal losses at the "
        "cut is taken is left open.",
        reference=ref.hard_negative_mining,
        convention=Convention(
            args=(Arg("conf_loss"), Arg("positive", floating=False)),
            keywords=(Keyword("neg_pos_ratio", 3, ratios),),
            output_shape=lambda ex: tuple(ex["conf_loss"].shape),
            output_dtype=lambda ex: torch.bool,
            errors=_MINE_ERRORS,
        ),
        strategies={
            "default": mining_inputs(),
            # Devices and compilers may break ties at the cut their own way: distinct losses there.
            "device": mining_inputs(unique=True),
        },
        oracles=(
            Oracle("numpy", "numpy", _mine_numpy, primary=True,
                   domain="every prior whose selection is determined (negatives of the loss at a tied cut are masked)",
                   doc="Equal to the NumPy per-image sort on every prior the contract determines (ties at the cut "
                   "may go either way)."),
        ),
        opt_out={
            "gradcheck_float64": "the output is a boolean mask: no input is differentiable through it",
            "finite_gradients": "the output is a boolean mask: no input is differentiable through it",
            "low_precision_matches_float32": "the output is a boolean mask, not of the input's dtype, and losses "
            "rounded to float16 or bfloat16 tie where float32 losses do not",
        },
        regions=("float32", "float64", "a large batch (B > 4)", "small dyadic losses", "continuous losses", "extreme losses (inf, subnormal, huge)",
                 "losses 2^-27 apart (distinct in float64 only)",
                 "empty (B = 0 or P = 0)", "equal losses at the cut", "neg_pos_ratio given"),
    )
)

_MINE_EXAMPLES = (
    {"conf_loss": torch.tensor([[0.5, 2.0, 1.0, 1.0, 3.0, 0.0]]), "positive": torch.tensor([[True, False, False, False, False, False]])},
    {"conf_loss": torch.tensor([[1.0, 2.0], [3.0, 4.0]]), "positive": torch.tensor([[False, False], [True, False]])},
    {"conf_loss": torch.zeros(0, 5), "positive": torch.zeros(0, 5, dtype=torch.bool)},
)
# Issue #16: under l -> 2 l + 1 in float32 these four losses all become 1.0; a stable miner is right here.
_MINE_TINY = {"conf_loss": torch.tensor([[0.0, 1.2e-38, 4.3e-31, 1.7e-25, 5.0]]),
              "positive": torch.tensor([[False, False, False, False, True]]), "neg_pos_ratio": 2}
# 15 hard negatives to choose among 40 negatives of equal loss.
_MINE_TIED = {"conf_loss": torch.ones(2, 45), "positive": torch.arange(45).expand(2, 45) < 5}
MINING.examples = {"agrees_with_numpy": _MINE_EXAMPLES, "output_dtype_and_shape": _MINE_EXAMPLES[2:],
                   "deterministic": (_MINE_TIED,)}


def _mined(target: Target, ex: dict[str, Any], **over: Any) -> np.ndarray:
    e = {**ex, **over}
    out = call(MINING, target, e)
    shape = tuple(e["conf_loss"].shape)
    if tuple(out.shape) != shape or out.dtype != torch.bool:
        raise AssertionError(f"out is {tuple(out.shape)}/{out.dtype}, but should be a bool mask of shape {shape}")
    return out.detach().cpu().numpy()


def _selected_losses(loss: np.ndarray, sel: np.ndarray) -> np.ndarray:
    """The multiset of selected losses: equal however ties at the cut were broken."""
    return np.sort(loss[sel])


@MINING.property(Category.REDUCTION, strategy=mining_inputs(), examples=_MINE_EXAMPLES, name="count_is_ratio_times_positives")
def mine_count(target: Target, ex: dict[str, Any]) -> None:
    """Each image selects exactly min(floor(ratio * #positives), #negatives): none without positives."""
    got = _mined(target, ex)
    pos = ex["positive"].numpy()
    r = _ratio(ex)
    for i in range(got.shape[0]):
        want = min(math.floor(int(pos[i].sum()) * r), int((~pos[i]).sum()))
        if int(got[i].sum()) != want:
            raise AssertionError(f"image {i}: {int(got[i].sum())} negatives selected, but should be min(floor({r} * "
                                 f"{int(pos[i].sum())}), {int((~pos[i]).sum())}) = {want}")


@MINING.property(Category.MATCHING, strategy=mining_inputs(), examples=_MINE_EXAMPLES, name="never_selects_positives")
def mine_no_positive(target: Target, ex: dict[str, Any]) -> None:
    """A positive prior is never among the hard negatives (it is counted once, as a positive)."""
    both = _mined(target, ex) & ex["positive"].numpy()
    if both.any():
        i, p = (int(v) for v in np.argwhere(both)[0])
        raise AssertionError(f"image {i}: positive prior {p} selected as a hard negative")


@MINING.property(Category.MATCHING, strategy=mining_inputs(), examples=_MINE_EXAMPLES, name="selects_the_hardest")
def mine_hardest(target: Target, ex: dict[str, Any]) -> None:
    """No unselected negative has a higher loss than a selected one (losses compared exactly, infinities included)."""
    got = _mined(target, ex)
    pos = ex["positive"].numpy()
    loss = _np(ex["conf_loss"])
    for i in range(got.shape[0]):
        sel, rest = loss[i][got[i] & ~pos[i]], loss[i][~got[i] & ~pos[i]]
        if sel.size and rest.size and rest.max() > sel.min():
            raise AssertionError(f"image {i}: a negative of loss {rest.max()!r} is left out while one of loss {sel.min()!r} is selected")


@MINING.property(Category.INVARIANCE, strategy=mining_inputs(min_b=2), name="images_are_independent")
def mine_independent(target: Target, ex: dict[str, Any]) -> None:
    """Each image's selection (as a multiset of losses) is that of the image mined alone: the ratio applies per image."""
    got = _mined(target, ex)
    loss = _np(ex["conf_loss"])
    for i in range(got.shape[0]):
        alone = _mined(target, ex, conf_loss=ex["conf_loss"][i : i + 1], positive=ex["positive"][i : i + 1])[0]
        if not np.array_equal(_selected_losses(loss[i], alone), _selected_losses(loss[i], got[i])):
            raise AssertionError(f"image {i}: mined alone selects losses {_selected_losses(loss[i], alone).tolist()}, in the "
                                 f"batch {_selected_losses(loss[i], got[i]).tolist()}")


def _dense_ranks(loss: np.ndarray) -> np.ndarray:
    """Each value's rank among the distinct values of its row (equal values share a rank)."""
    out = np.zeros(loss.shape)
    for i in range(loss.shape[0]):
        out[i] = np.unique(loss[i], return_inverse=True)[1].reshape(-1)
    return out


@st.composite
def _with_power(draw: st.DrawFn) -> dict[str, Any]:
    return {**draw(mining_inputs()), "power": draw(st.integers(1, 12))}


@MINING.property(Category.INVARIANCE, strategy=_with_power(), examples=({**_MINE_TINY, "power": 3},), name="only_the_order_matters")
def mine_order_only(target: Target, ex: dict[str, Any]) -> None:
    """Exact strictly increasing maps of the losses (each row's dense ranks; scaling by 2^k) select the same losses:
    the selection depends on their order only. A scaling that would merge values (overflow to inf) is not applied."""
    loss_t = ex["conf_loss"]
    loss = _np(loss_t)
    base = _mined(target, ex)
    ranks = torch.from_numpy(_dense_ranks(loss)).to(loss_t.dtype)
    maps = [("dense ranks", ranks)]
    scaled = loss_t * 2.0 ** ex["power"]
    if np.array_equal(_dense_ranks(_np(scaled)), _dense_ranks(loss)):  # exact: no finite value overflowed
        maps.append((f"l -> 2^{ex['power']} l", scaled))
    for what, moved in maps:
        got = _mined(target, ex, conf_loss=moved)
        for i in range(loss.shape[0]):
            a, b = _selected_losses(loss[i], base[i]), _selected_losses(loss[i], got[i])
            if not np.array_equal(a, b):
                raise AssertionError(f"image {i}: under {what} the selected losses become {b.tolist()}, but were {a.tolist()}")


# ---------------------------------------------------------------------------
# multibox_loss: strategies
# ---------------------------------------------------------------------------

# Byte tables for the predictions: one draw per tensor (fast), shrinking towards 0.
_MODERATE = np.array([0.0] + [s * k / 8 for k in range(1, 25) for s in (1, -1)])  # multiples of 1/8 in [-3, 3]
_EXTREME = np.array([30.0, -30.0, 1e4, -1e4, 1e30, -1e30])


def _values(draw: st.DrawFn, n: int, *, extreme: bool, continuous: bool) -> np.ndarray:
    if continuous:  # two bytes a value: 65536 levels in [-3, 3], ties improbable
        raw = np.frombuffer(draw(st.binary(min_size=2 * n, max_size=2 * n)), dtype=np.uint16).astype(np.float64)
        return raw / 65535 * 6 - 3
    raw = np.frombuffer(draw(st.binary(min_size=n, max_size=n)), dtype=np.uint8).astype(np.int64)
    out = _MODERATE[raw % len(_MODERATE)]
    if extreme:
        out = np.where(raw >= 240, _EXTREME[raw % len(_EXTREME)], out)
    return out


@st.composite
def loss_inputs(
    draw: st.DrawFn,
    *,
    dtypes: tuple[torch.dtype, ...] = hh.FLOAT_DTYPES,
    min_b: int = 0,
    max_b: int = 2,
    min_g: int = 0,
    max_g: int = 3,
    min_real: int = 0,
    min_p: int = 0,
    max_p: int = 12,
    max_c: int = 4,
    extreme: bool | None = None,
    extreme_geometry: bool = True,
    continuous: bool = False,
    keywords: bool = True,
    untied: bool = False,
    big_b: int = 9,
) -> dict[str, Any]:
    """Predictions, padded ground truths with labels (padding labelled anything) and priors; keywords sometimes.

    ``extreme`` None: drawn (logits and offsets up to 1e30 in a third of the examples)."""
    ex = draw(geometry(dtypes=dtypes, min_b=min_b, max_b=max_b, min_g=min_g, max_g=max_g, min_real=min_real, min_p=min_p,
                       max_p=max_p, positive_area=True, extreme=extreme_geometry, big_b=big_b))
    dtype = ex["gt_boxes"].dtype
    b, g = ex["gt_boxes"].shape[:2]
    p = ex["priors"].shape[0]
    head = _bytes(draw, 3 + b * g)
    c = int(2 + head[0] % (max_c - 1))
    raw = head[3:].reshape(b, g)
    labels = np.where(_mask(ex), 1 + raw % (c - 1), np.array([0, -1, c, 1000])[raw % 4])  # padding: any label
    big = head[1] % 3 == 2 if extreme is None else extreme
    ex.update(
        pred_locs=torch.from_numpy(_values(draw, b * p * 4, extreme=big, continuous=continuous).reshape(b, p, 4)).to(dtype),
        pred_scores=torch.from_numpy(_values(draw, b * p * c, extreme=big, continuous=continuous).reshape(b, p, c)).to(dtype),
        gt_labels=torch.from_numpy(labels),
    )
    if big:
        hh.region("extreme logits / offsets (|x| >= 30)")
    elif b * p and c > 1 and head[1] % 4 == 1:
        # Confident mistakes: at about 3 priors in 4 the background logit sits 20 to 60 below another class,
        # so the background probability is below float32's (and, past 37, float64's) resolution: 1 - softmax
        # saturates to 1 there while the cross-entropy still orders them (a miner must rank the loss itself).
        pick = _bytes(draw, 2 * b * p).reshape(2, b, p)
        scores = ex["pred_scores"].clone()
        gap = torch.from_numpy(20.0 + pick[0] * (40.0 / 255)).to(dtype)
        cls = torch.from_numpy(1 + pick[1].astype(np.int64) % (c - 1))
        sel = torch.from_numpy(pick[1] // 64 != 0)
        other = scores.gather(-1, cls[..., None])[..., 0]
        scores[..., 0] = torch.where(sel, other - gap, scores[..., 0])
        ex["pred_scores"] = scores
        hh.region("confident mistakes (background probability below the dtype's resolution)")
    if keywords:
        for bit, (name, values, default) in enumerate((("threshold", thresholds, 0.5), ("neg_pos_ratio", ratios, 3),
                                                       ("alpha", alphas, 1.0))):
            if head[2] >> bit & 1:
                ex[name] = draw(st.one_of(st.just(default), values))
                hh.region("keywords given")
    if untied:
        assume(bool(_untied_images(ex).all()))
    return ex


_LOSS_ARGS = ("pred_locs", "pred_scores", "gt_boxes", "gt_labels", "gt_mask", "priors")


def _oracle(ex: dict[str, Any], **over: Any) -> dict[str, Any]:
    e = {**ex, **over}
    t = _thr(e)
    return npo.multibox_loss_and_grad(*(e.get(k) for k in _LOSS_ARGS), t, _ratio(e), float(e.get("alpha", 1.0)),
                                      exact_threshold=_exact_threshold(t))


def _untied(ex: dict[str, Any], o: dict[str, Any]) -> bool:
    """No image's matching is decided by a tie (the loss then does not depend on how ties are broken:
    equal losses at the cut add the same amount whichever is taken)."""
    return bool((o["match_margin"] > _tie(ex)).all())


def _cut_untied(ex: dict[str, Any], o: dict[str, Any]) -> bool:
    """No image's hard-negative cut is a tie (the gradient depends on which negative is taken)."""
    return bool((o["cut_gap"] > decision_margin(ex["pred_scores"].dtype) * o["cut_scale"]).all())


@st.composite
def _gradcheck_inputs(draw: st.DrawFn) -> dict[str, Any]:
    """float64, continuous predictions, away from smooth L1's kink and from ties at the cut (a finite difference
    of 1e-6 must not change the selection)."""
    ex = draw(loss_inputs(dtypes=(torch.float64,), min_b=1, max_b=2, min_g=1, max_g=2, min_p=1, max_p=3, max_c=3,
                          continuous=True, extreme=False, big_b=0))
    o = _oracle(ex)
    assume(o["kink"] > 1e-4 and bool((o["cut_gap"] > 1e-4 * o["cut_scale"]).all()))
    return ex


def _loss_numpy(ex: dict[str, Any]) -> Want:
    o = _oracle(ex)
    return Want(o["loss"], mask=np.asarray(_untied(ex, o)), scale=o["scale"])


def _resized(ex: dict[str, Any], key: str, axis: int, by: int) -> dict[str, Any]:
    """``ex`` with ``key`` one longer (zeros) or shorter along ``axis``: another number of priors, classes, slots."""
    t = ex[key]
    if by < 0:
        return {**ex, key: t.narrow(axis, 0, t.shape[axis] - 1).contiguous()}
    return {**ex, key: torch.cat([t, torch.zeros_like(t.narrow(axis, 0, 1))], axis)}


_WELL_POSED = loss_inputs(min_b=1, max_b=1, min_g=1, min_real=1, min_p=2, extreme=False, keywords=False)
_LOSS_ERRORS = tuple(_malformed(_WELL_POSED, *row) for row in (
    ("pred_locs for P + 1 priors", "shape", "pred_locs", lambda ex, d: _resized(ex, "pred_locs", 1, 1)),
    ("pred_locs for P - 1 priors", "shape", "pred_locs", lambda ex, d: _resized(ex, "pred_locs", 1, -1)),
    ("pred_locs with 5 offsets", "shape", "pred_locs", lambda ex, d: _resized(ex, "pred_locs", 2, 1)),
    ("pred_scores for P + 1 priors", "shape", "pred_scores", lambda ex, d: _resized(ex, "pred_scores", 1, 1)),
    ("pred_scores for B + 1 images", "shape", "pred_scores", lambda ex, d: _resized(ex, "pred_scores", 0, 1)),
    ("pred_scores with one class (C = 1)", "shape", "pred_scores",
     lambda ex, d: {**ex, "pred_scores": ex["pred_scores"][..., :1].contiguous(), "gt_labels": torch.ones_like(ex["gt_labels"])}),
    ("gt_labels for G + 1 slots", "shape", "gt_labels", lambda ex, d: _resized(ex, "gt_labels", 1, 1)),
    ("gt_mask for G + 1 slots", "shape", "gt_mask",
     lambda ex, d: {**ex, "gt_mask": torch.ones(_BG(ex)[0], _BG(ex)[1] + 1, dtype=torch.bool)}),
    ("priors with 3 columns", "shape", "priors", lambda ex, d: {**ex, "priors": ex["priors"][:, :3].contiguous()}),
    ("float gt_labels", "dtype", "gt_labels", lambda ex, d: {**ex, "gt_labels": ex["gt_labels"].to(ex["pred_locs"].dtype)}),
    ("a float gt_mask", "dtype", "gt_mask", lambda ex, d: {**ex, "gt_mask": torch.from_numpy(_mask(ex)).to(ex["pred_locs"].dtype)}),
    ("pred_scores of another dtype than pred_locs", "dtype", "pred_scores",
     lambda ex, d: {**ex, "pred_scores": ex["pred_scores"].to(torch.float32 if ex["pred_locs"].dtype == torch.float64 else torch.float64)}),
    ("a real ground truth labelled 0, C or -1", "domain", "gt_labels",
     lambda ex, d: _with(ex, "gt_labels", _real_slot(ex, d), d(st.sampled_from([0, -1, ex["pred_scores"].shape[2]])))),
    ("a real box of zero width", "domain", "gt_boxes",
     lambda ex, d: (lambda i, j: _with(ex, "gt_boxes", (i, j, 2), float(ex["gt_boxes"][i, j, 0])))(*_real_slot(ex, d))),
    ("threshold out of range", "domain", "threshold", lambda ex, d: {**ex, "threshold": d(st.sampled_from([-0.5, 1.5, math.nan]))}),
    ("neg_pos_ratio out of range", "domain", "neg_pos_ratio", lambda ex, d: {**ex, "neg_pos_ratio": d(st.sampled_from([-1, math.nan]))}),
    ("alpha out of range", "domain", "alpha", lambda ex, d: {**ex, "alpha": d(st.sampled_from([-1.0, math.nan]))}),
))


def _loss_scale(ex: dict[str, Any]) -> float:
    return float(_oracle(ex)["scale"])


LOSS = register(
    Spec(
        id="multibox_loss",
        family="ssd",
        signature="f(pred_locs: Tensor[B, P, 4], pred_scores: Tensor[B, P, C], gt_boxes: Tensor[B, G, 4], "
        "gt_labels: Tensor[B, G] int64, gt_mask: Tensor[B, G] bool | None, priors: Tensor[P, 4], *, "
        "threshold: float = 0.5, neg_pos_ratio: float = 3, alpha: float = 1.0) -> Tensor[]",
        summary="(L_conf + alpha L_loc) / N over the batch: softmax CE on positives and per-image ratio:1 hard negatives, "
        "smooth L1 (beta 1) on the positives' SSD offsets (variances 0.1, 0.2), N the batch's positives; 0 with "
        "finite gradients when N = 0. Padding's boxes and labels are ignored.",
        reference=ref.multibox_loss,
        convention=Convention(
            # The geometry is data, not a network output: mixed precision casts the predictions only,
            # so the dtype properties keep the boxes and priors as drawn (floating=False).
            args=(Arg("pred_locs", differentiable=True), Arg("pred_scores", differentiable=True),
                  Arg("gt_boxes", floating=False), Arg("gt_labels", floating=False),
                  Arg("gt_mask", floating=False, optional=True), Arg("priors", floating=False)),
            keywords=(Keyword("threshold", 0.5, thresholds), Keyword("neg_pos_ratio", 3, ratios),
                      Keyword("alpha", 1.0, alphas)),
            output_shape=lambda ex: (),
            errors=_LOSS_ERRORS,
        ),
        strategies={
            "default": loss_inputs(),
            "gradcheck": _gradcheck_inputs(),
            # Values a float16 holds; devices may break matching ties their own way: untied examples only.
            "device": loss_inputs(extreme=False, extreme_geometry=False, untied=True),
        },
        oracles=(
            Oracle("numpy", "numpy", _loss_numpy, primary=True,
                   domain="examples whose matching no tie decides; the tolerance follows a stable evaluation's error "
                   "(relative to each selected row's largest |logit| and to |pred| + |target| of each offset)",
                   doc="Equal to the NumPy loop's (L_conf + alpha L_loc) / N."),
        ),
        variants=(
            Variant(
                "seed_multibox_loss",
                ref.seed_multibox_loss,
                why="Seed 001's MultiBoxLoss as listed: per-image loop, later-wins prior collisions, nn.L1Loss (mean over "
                "4N offsets) where the text says smooth L1, and / n_positives.sum() = 0/0 = nan with no object.",
            ),
        ),
        scale=_loss_scale,
        regions=("float32", "float64", "a large batch (B > 4)", "confident mistakes (background probability below the dtype's resolution)", "empty batch (B = 0)", "no ground-truth slots (G = 0)",
                 "an image without real ground truth", "no priors (P = 0)", "gt_mask None (all real)",
                 "padding holds NaN / inf / huge values", "extreme scale (2^20 and beyond, either way)",
                 "extreme logits / offsets (|x| >= 30)", "keywords given"),
    )
)

# ---------------------------------------------------------------------------
# multibox_loss: corner cases and properties
# ---------------------------------------------------------------------------

_NO_OBJECT = {
    "pred_locs": torch.randn(2, 4, 4, generator=torch.Generator().manual_seed(0)),
    "pred_scores": torch.randn(2, 4, 3, generator=torch.Generator().manual_seed(1)) * 5,
    "gt_boxes": torch.zeros(2, 1, 4),
    "gt_labels": torch.zeros(2, 1, dtype=torch.long),
    "gt_mask": torch.zeros(2, 1, dtype=torch.bool),
    "priors": torch.tensor([[0.25, 0.25, 0.5, 0.5], [0.75, 0.25, 0.5, 0.5], [0.25, 0.75, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5]]),
}
_ONE_OBJECT = {
    **_NO_OBJECT,
    "gt_boxes": torch.tensor([[[0.0, 0.0, 0.5, 0.5]], [[0.0, 0.0, 0.0, 0.0]]]),
    "gt_labels": torch.tensor([[2], [0]]),
    "gt_mask": torch.tensor([[True], [False]]),
}
_SATURATED = {**_ONE_OBJECT, "pred_scores": torch.tensor([1e4, -1e4, 30.0]).repeat(2, 4, 1),
              "pred_locs": torch.full((2, 4, 4), 1e4)}
LOSS.examples = {"agrees_with_numpy": (_ONE_OBJECT, _NO_OBJECT), "finite_gradients": (_NO_OBJECT, _ONE_OBJECT, _SATURATED),
                 "output_dtype_and_shape": (_NO_OBJECT,)}


def _loss(target: Target, ex: dict[str, Any], **over: Any) -> torch.Tensor:
    return call(LOSS, target, {**ex, **over})


def _close(got: torch.Tensor | float, want: float, ex: dict[str, Any], scale: float, what: str) -> None:
    g = got if isinstance(got, torch.Tensor) else torch.tensor(got, dtype=torch.float64)
    ck.assert_close(g, want, spec=LOSS.id, key="numpy", dtype=ex["pred_locs"].dtype, scale=scale, what=what)


@LOSS.property(Category.GRADIENT, strategy=loss_inputs(), examples=(_ONE_OBJECT,), name="gradient_matches_analytic")
def loss_grad(target: Target, ex: dict[str, Any]) -> None:
    """d/dscores = (softmax - onehot) / N on positives and mined negatives, 0 elsewhere; d/dlocs = alpha clip(d, -1, 1) / N on
    positives (examples without ties in the matching or at the cut)."""
    locs = ex["pred_locs"].clone().requires_grad_(True)
    scores = ex["pred_scores"].clone().requires_grad_(True)
    out = _loss(target, ex, pred_locs=locs, pred_scores=scores)
    o = _oracle(ex)
    if not (_untied(ex, o) and _cut_untied(ex, o)) or not out.requires_grad:
        return  # a detached output: gradcheck_float64 and finite_gradients say so
    gl, gs = torch.autograd.grad(out, (locs, scores), allow_unused=True)
    gl = torch.zeros_like(locs) if gl is None else gl
    gs = torch.zeros_like(scores) if gs is None else gs
    dt = ex["pred_locs"].dtype
    ck.assert_grad_close(gs, o["grad_scores"], spec=LOSS.id, key="numpy", dtype=dt, what="d loss / d pred_scores",
                         scale=o["scale_scores"])
    ck.assert_grad_close(gl, o["grad_locs"], spec=LOSS.id, key="numpy", dtype=dt, what="d loss / d pred_locs",
                         scale=o["scale_locs"])


@LOSS.property(Category.REDUCTION, strategy=loss_inputs(), examples=(_NO_OBJECT,), name="no_object_gives_zero_and_finite_gradients")
def loss_no_object(target: Target, ex: dict[str, Any]) -> None:
    """With no real ground truth in the batch the loss is 0 (not 0/0) and its gradients are finite and zero."""
    mask = torch.zeros(ex["gt_boxes"].shape[:2], dtype=torch.bool)
    locs = ex["pred_locs"].clone().requires_grad_(True)
    scores = ex["pred_scores"].clone().requires_grad_(True)
    out = _loss(target, ex, gt_mask=mask, pred_locs=locs, pred_scores=scores)
    ck.assert_close(out, 0.0, spec=LOSS.id, key="self", dtype=locs.dtype, what="loss with no object")
    if out.requires_grad:
        for name, gr in zip(("d/dpred_locs", "d/dpred_scores"), torch.autograd.grad(out, (locs, scores), allow_unused=True)):
            if gr is not None:
                ck.assert_finite(gr, what=name)
                ck.assert_close(gr, 0.0, spec=LOSS.id, key="self", dtype=locs.dtype, what=name)


@LOSS.property(Category.REDUCTION, strategy=loss_inputs(min_b=2), name="normalised_by_the_batch_positives")
def loss_batch_norm(target: Target, ex: dict[str, Any]) -> None:
    """N_total L(batch) = sum_i N_i L(image i): one normaliser, the batch's positives, not a mean of per-image losses."""
    total = _loss(target, ex)
    o = _oracle(ex)
    if not _untied(ex, o):
        return
    n = o["n_pos"]
    parts = 0.0
    mask = ex.get("gt_mask")
    for i in range(ex["gt_boxes"].shape[0]):
        one = {k: ex[k][i : i + 1] for k in ("pred_locs", "pred_scores", "gt_boxes", "gt_labels")}
        one["gt_mask"] = None if mask is None else mask[i : i + 1]
        parts += float(_np(_loss(target, ex, **one))) * n[i]
    _close(float(_np(total)) * n.sum(), parts, ex, o["scale"] * max(int(n.sum()), 1), "N L(batch)")


@st.composite
def _perfect(draw: st.DrawFn) -> dict[str, Any]:
    ex = draw(loss_inputs())
    o = _oracle(ex)
    locs = _np(ex["pred_locs"]).copy()
    pos = o["matched"] >= 0
    locs[pos] = o["targets"][pos]
    ex["pred_locs"] = torch.from_numpy(locs).to(ex["pred_locs"].dtype)
    return ex


@LOSS.property(Category.EQUIVALENCE, strategy=_perfect(), name="perfect_offsets_leave_confidence_only")
def loss_perfect(target: Target, ex: dict[str, Any]) -> None:
    """With pred_locs equal to the encoded offsets (variances 0.1, 0.2, centre-size) on the positives, the loss equals
    its alpha = 0 value."""
    with_loc = _loss(target, ex)
    without = _np(_loss(target, ex, alpha=0.0))
    o = _oracle(ex)
    if _untied(ex, o):
        _close(with_loc, float(without), ex, o["scale"], "L(alpha) with perfect offsets")


@LOSS.property(Category.EQUIVALENCE, strategy=loss_inputs(), name="localisation_is_smooth_l1_over_positives")
def loss_loc_term(target: Target, ex: dict[str, Any]) -> None:
    """L(alpha) - L(0) = alpha sum_pos smoothL1(pred - encode(gt, prior)) / N (beta 1, summed over the 4 offsets)."""
    a = float(_np(_loss(target, ex)))
    z = float(_np(_loss(target, ex, alpha=0.0)))
    o = _oracle(ex)
    if _untied(ex, o):
        want = float(ex.get("alpha", 1.0)) * o["loc"].sum() / max(int(o["n_pos"].sum()), 1)
        _close(a - z, want, ex, o["scale"], "L(alpha) - L(0)")


@LOSS.property(Category.EQUIVALENCE, strategy=loss_inputs(), name="linear_in_alpha")
def loss_alpha(target: Target, ex: dict[str, Any]) -> None:
    """L(2 alpha) - L(alpha) = L(alpha) - L(0): alpha weights the localisation term only (2 alpha is exact)."""
    a = float(ex.get("alpha", 1.0)) or 1.0
    vals = [float(_np(_loss(target, ex, alpha=k * a))) for k in (0.0, 1.0, 2.0)]
    o = _oracle(ex, alpha=2 * a)
    if _untied(ex, o):
        _close(vals[2] - vals[1], vals[1] - vals[0], ex, 2 * o["scale"], "L(2 alpha) - L(alpha)")


@LOSS.property(Category.INVARIANCE, strategy=loss_inputs(), examples=(_ONE_OBJECT,), name="easy_negatives_do_not_matter")
def loss_easy_negatives(target: Target, ex: dict[str, Any]) -> None:
    """Making an unselected negative easier (raising its background logit by 4, exact on the drawn values) leaves the
    loss unchanged: only the hard negatives enter."""
    o = _oracle(ex)
    base = _loss(target, ex)
    if not (_untied(ex, o) and _cut_untied(ex, o)):
        return
    easy = (o["matched"] < 0) & ~o["mined"]
    if not easy.any():
        return
    scores = _np(ex["pred_scores"]).copy()
    scores[..., 0][easy] += 4.0
    moved = _loss(target, ex, pred_scores=torch.from_numpy(scores).to(ex["pred_scores"].dtype))
    _close(moved, float(_np(base)), ex, o["scale"], "loss after easing unselected negatives")


@st.composite
def _loss_perm(draw: st.DrawFn) -> dict[str, Any]:
    ex = draw(loss_inputs())
    g, p = ex["gt_boxes"].shape[1], ex["priors"].shape[0]
    ex["gperm"] = torch.tensor(draw(st.permutations(list(range(g)))), dtype=torch.long)
    ex["pperm"] = torch.tensor(draw(st.permutations(list(range(p)))), dtype=torch.long)
    return ex


@LOSS.property(Category.INVARIANCE, strategy=_loss_perm(), name="permutation_invariant")
def loss_perm(target: Target, ex: dict[str, Any]) -> None:
    """Permuting the ground-truth slots, or the priors together with their predictions, leaves the loss unchanged."""
    base = _loss(target, ex)
    gp, pp = ex["gperm"], ex["pperm"]
    mask = ex.get("gt_mask")
    a = _loss(target, ex, gt_boxes=ex["gt_boxes"][:, gp], gt_labels=ex["gt_labels"][:, gp],
              gt_mask=None if mask is None else mask[:, gp])
    b = _loss(target, ex, priors=ex["priors"][pp], pred_locs=ex["pred_locs"][:, pp], pred_scores=ex["pred_scores"][:, pp])
    o = _oracle(ex)
    if _untied(ex, o):
        for what, got in (("ground truths permuted", a), ("priors permuted", b)):
            _close(got, float(_np(base)), ex, o["scale"], what)


@LOSS.property(Category.INVARIANCE, strategy=loss_inputs(), name="padding_is_ignored")
def loss_padding(target: Target, ex: dict[str, Any]) -> None:
    """Two more padded slots (gt_mask False, one over the priors labelled 1, one NaN labelled -1) leave the loss unchanged."""
    b = ex["gt_boxes"].shape[0]
    dt = ex["gt_boxes"].dtype
    pr = ex["priors"]
    span = torch.cat([pr[:, :2] - pr[:, 2:] / 2, pr[:, :2] + pr[:, 2:] / 2]) if pr.shape[0] else torch.zeros(1, 2, dtype=dt)
    junk = torch.stack([torch.cat([span.min(0).values, span.max(0).values]), torch.full((4,), math.nan, dtype=dt)])
    base = _loss(target, ex)
    more = _loss(target, ex, gt_boxes=torch.cat([ex["gt_boxes"], junk.expand(b, 2, 4)], 1),
                 gt_labels=torch.cat([ex["gt_labels"], torch.tensor([1, -1]).expand(b, 2)], 1),
                 gt_mask=torch.cat([torch.from_numpy(_mask(ex)), torch.zeros(b, 2, dtype=torch.bool)], 1))
    o = _oracle(ex)
    if _untied(ex, o):
        _close(more, float(_np(base)), ex, o["scale"], "loss with extra padding")
