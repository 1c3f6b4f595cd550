"""SSD MultiBox specs (seed 001): ``ssd_matching``, ``hard_negative_mining``, ``multibox_loss``.

Inputs are built on a dyadic grid (coordinates and sizes are multiples of
1/64): intersections and unions are exact in float32 and float64, so IoUs tie
exactly when they tie mathematically, and a float32 target decides every
comparison with the threshold as exactly as the float64 oracle does. Where a
decision is a tie (equal IoUs, an IoU equal to the threshold, equal losses at
the hard-negative cut) the contract leaves the choice open: checks that depend
on it are skipped for that example (the oracle reports the decision margins).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from conformance import checks as ck
from conformance import strategies as hh
from conformance.spec import Category, Oracle, Spec, Variant, register
from conformance.specs._common import check_deterministic, check_not_modified, register_device_properties
from conformance.targets import Target
from impls import ssd as ref
from oracles import numpy_ssd as npo

Q = 64  # grid: coordinates are multiples of 1 / Q

MATCH = register(
    Spec(
        id="ssd_matching",
        family="ssd",
        signature="f(gt_boxes: Tensor[B, G, 4] (x1, y1, x2, y2), gt_mask: Tensor[B, G] bool, priors: Tensor[P, 4] "
        "(cx, cy, w, h), *, threshold: float = 0.5) -> Tensor[B, P] int64 (ground-truth index per prior, -1 background)",
        summary="SSD's two matching principles: every real ground truth gets a prior of its own (greedy bipartite: the "
        "pair of highest IoU keeps a contested prior), then every other prior with IoU >= threshold takes its "
        "best ground truth; padding (gt_mask False) is never matched.",
        reference=ref.ssd_matching,
        oracles=(Oracle("numpy", "numpy", "oracles.numpy_ssd.ssd_matching (image by image, round by round)"),),
        variants=(
            Variant(
                "seed_ssd_matching",
                ref.seed_ssd_matching,
                why="Seed 001's `object_for_each_prior[prior_for_each_object] = range(n)`: when two ground truths share "
                "a best prior the later one silently takes it and the earlier one may be left with no prior.",
            ),
        ),
    )
)

MINING = register(
    Spec(
        id="hard_negative_mining",
        family="ssd",
        signature="f(conf_loss: Tensor[B, P], positive: Tensor[B, P] bool, *, neg_pos_ratio: float = 3) -> Tensor[B, P] bool",
        summary="Per image, the min(floor(ratio * #positives), #negatives) negatives of highest confidence loss; "
        "positives are never selected; which of equal losses at the cut is taken is left open.",
        reference=ref.hard_negative_mining,
        oracles=(Oracle("numpy", "numpy", "oracles.numpy_ssd.hard_negative_mining (sorts each image's negatives)"),),
    )
)

LOSS = register(
    Spec(
        id="multibox_loss",
        family="ssd",
        signature="f(pred_locs: Tensor[B, P, 4], pred_scores: Tensor[B, P, C], gt_boxes: Tensor[B, G, 4], "
        "gt_labels: Tensor[B, G] int64, gt_mask: Tensor[B, G] bool, priors: Tensor[P, 4], *, threshold: float = 0.5, "
        "neg_pos_ratio: float = 3, alpha: float = 1.0) -> Tensor[]",
        summary="(L_conf + alpha L_loc) / N over the batch: softmax CE on positives and per-image 3:1 hard negatives, "
        "smooth L1 (beta 1) on the positives' SSD offsets (variances 0.1, 0.2), N the batch's positives; 0 with "
        "finite gradients when N = 0.",
        reference=ref.multibox_loss,
        oracles=(Oracle("numpy", "numpy", "oracles.numpy_ssd.multibox_loss_and_grad (loops; analytic gradient)"),),
        variants=(
            Variant(
                "seed_multibox_loss",
                ref.seed_multibox_loss,
                why="Seed 001's MultiBoxLoss as listed: per-image loop, later-wins prior collisions, nn.L1Loss (mean over "
                "4N offsets) where the text says smooth L1, and / n_positives.sum() = 0/0 = nan with no object.",
            ),
        ),
    )
)

_TIE = {torch.float32: 1e-5, torch.float64: 1e-9}


# ---------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------


@st.composite
def _priors(draw: st.DrawFn, max_p: int) -> torch.Tensor:
    """(P, 4) centre-size priors on the grid: random ones, or SSD-like tilings."""
    if draw(st.booleans()):
        n = draw(st.integers(1, max_p))
        rows = draw(
            st.lists(st.tuples(st.integers(0, Q), st.integers(0, Q), st.integers(1, 40), st.integers(1, 40)), min_size=n, max_size=n)
        )
        return torch.tensor(rows, dtype=torch.float64) / Q
    f = draw(st.sampled_from([1, 2, 4]))
    sizes = draw(st.lists(st.sampled_from([8, 12, 16, 24, 32, 48]), min_size=1, max_size=3, unique=True))
    rows = []
    for j in range(f):
        for i in range(f):
            cx, cy = (2 * i + 1) * Q / (2 * f), (2 * j + 1) * Q / (2 * f)
            for s in sizes:
                rows += [(cx, cy, s, s), (cx, cy, 2 * s, s), (cx, cy, s, 2 * s)]
    rows = rows[:max_p] if len(rows) > max_p else rows
    return torch.tensor(rows, dtype=torch.float64) / Q


@st.composite
def _gt_box(draw: st.DrawFn, priors: torch.Tensor, earlier: list[list[float]], *, positive_area: bool) -> list[float]:
    kinds = ["random", "near_prior", "near_prior", "near_prior"]
    kind = draw(st.sampled_from([*kinds, "copy"] if earlier else kinds))
    lo = 1 if positive_area else 0
    if kind == "copy":
        return list(draw(st.sampled_from(earlier)))
    if kind == "near_prior":
        cx, cy, w, h = (priors[draw(st.integers(0, priors.shape[0] - 1))] * Q).tolist()
        d = draw(st.lists(st.integers(-4, 4), min_size=4, max_size=4))
        x1, y1 = cx - w / 2 + d[0], cy - h / 2 + d[1]
        x2, y2 = max(cx + w / 2 + d[2], x1 + lo), max(cy + h / 2 + d[3], y1 + lo)
        return [x1 / Q, y1 / Q, x2 / Q, y2 / Q]
    x, y = draw(st.integers(0, Q - 4)), draw(st.integers(0, Q - 4))
    w, h = draw(st.sampled_from([lo, 1, 2])) if draw(st.integers(0, 7)) == 0 else draw(st.integers(8, 40)), draw(st.integers(max(lo, 4), 40))
    return [x / Q, y / Q, (x + w) / Q, (y + h) / Q]


@st.composite
def match_inputs(
    draw: st.DrawFn,
    *,
    dtypes: tuple[torch.dtype, ...] = hh.FLOAT_DTYPES,
    max_b: int = 3,
    max_g: int = 5,
    max_p: int = 36,
    min_b: int = 1,
    positive_area: bool = False,
    thresholds: tuple[float, ...] = (0.5, 0.5, 0.35, 0.7),
) -> dict[str, Any]:
    dtype = draw(hh.float_dtypes(dtypes=dtypes))
    priors = draw(_priors(max_p))
    # Empty batches and images without ground truths are explicit examples of the
    # properties that need them; generation spends its budget on images with objects.
    b, g = draw(st.integers(max(min_b, 1), max_b)), draw(st.integers(1, max_g))
    boxes, mask = [], []
    for _ in range(b):
        real: list[list[float]] = []
        row, mrow = [], []
        for _ in range(g):
            if draw(st.integers(0, 4)) > 0:  # 4 in 5 slots real
                box = draw(_gt_box(priors, real, positive_area=positive_area))
                real.append(box)
                row.append(box)
                mrow.append(True)
            else:  # padding holds garbage: an inverted box far away
                row.append([3.0, 3.0, -2.0, -2.0])
                mrow.append(False)
        boxes.append(row)
        mask.append(mrow)
    gt = torch.tensor(boxes, dtype=torch.float64).reshape(b, g, 4)
    return {
        "gt_boxes": gt.to(dtype),
        "gt_mask": torch.tensor(mask, dtype=torch.bool).reshape(b, g),
        "priors": priors.to(dtype),
        "threshold": draw(st.sampled_from(thresholds)),
    }


def _margin(ex: dict[str, Any]) -> float:
    # On the grid an IoU equal to a float32-representable threshold (0.5) is exact in
    # every dtype: >= decides it without ambiguity. 0.35 and 0.7 are not.
    t = ex["threshold"]
    return npo.match_margins(ex["gt_boxes"], ex["gt_mask"], ex["priors"], t, exact=float(np.float32(t)) == t)


def _untied(ex: dict[str, Any]) -> bool:
    return _margin(ex) > _TIE[ex["gt_boxes"].dtype]


def _call_match(target: Target, ex: dict[str, Any], **over: Any) -> torch.Tensor:
    e = {**ex, **over}
    return target.tensor(e["gt_boxes"], e["gt_mask"], e["priors"], threshold=e["threshold"])


def _ious(ex: dict[str, Any]) -> list[np.ndarray]:
    """Per image, the float64 IoU (G, P) of every slot with every prior (padding rows -1)."""
    corners = ref.cxcywh_to_xyxy(ex["priors"].double())
    out = []
    for i in range(ex["gt_boxes"].shape[0]):
        m = ex["gt_mask"][i].numpy()
        iou = npo.iou_matrix(ex["gt_boxes"][i].double(), corners) if m.size else np.zeros((0, corners.shape[0]))
        iou[~m] = -1.0
        out.append(iou)
    return out


def _matched(target: Target, ex: dict[str, Any], **over: Any) -> np.ndarray:
    out = _call_match(target, ex, **over)
    e = {**ex, **over}
    b, g = e["gt_boxes"].shape[:2]
    p = e["priors"].shape[0]
    if tuple(out.shape) != (b, p):
        raise AssertionError(f"out.shape={tuple(out.shape)}, but should be (B, P) = ({b}, {p})")
    m = out.detach().cpu().numpy().astype(np.int64)
    if m.size and (m.min() < -1 or m.max() >= g):
        raise AssertionError(f"matched values must lie in [-1, {g - 1}], found {m.min()}..{m.max()}")
    return m


# ---------------------------------------------------------------------------
# ssd_matching
# ---------------------------------------------------------------------------

_SSD300_EX = {
    "gt_boxes": torch.tensor([[[0.1, 0.1, 0.4, 0.5], [0.12, 0.1, 0.42, 0.5], [0.6, 0.6, 0.95, 0.9], [0.0, 0.0, 0.0, 0.0]]]),
    "gt_mask": torch.tensor([[True, True, True, False]]),
    "priors": ref.ssd300_priors(),
    "threshold": 0.5,
}
# Two ground truths whose best prior is prior 0 (IoU 1 and 0.75): the first keeps it, the second takes
# prior 1 (IoU 2/3); no decision is a tie.
_COLLIDE_EX = {
    "gt_boxes": torch.tensor([[[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.375]]]),
    "gt_mask": torch.tensor([[True, True]]),
    "priors": torch.tensor([[0.25, 0.25, 0.5, 0.5], [0.25, 0.125, 0.5, 0.25], [0.75, 0.75, 0.5, 0.5]]),
    "threshold": 0.5,
}
# IoU exactly 0.5 with prior 1 (which is not the ground truth's best): it must be positive.
_HALF_EX = {
    "gt_boxes": torch.tensor([[[0.0, 0.0, 0.5, 0.25]]]),
    "gt_mask": torch.tensor([[True]]),
    "priors": torch.tensor([[0.25, 0.125, 0.5, 0.25], [0.25, 0.25, 0.5, 0.5], [0.75, 0.75, 0.25, 0.25]]),
    "threshold": 0.5,
}
_EMPTY_EXAMPLES = (
    {"gt_boxes": torch.zeros(0, 3, 4), "gt_mask": torch.zeros(0, 3, dtype=torch.bool), "priors": torch.tensor([[0.5, 0.5, 0.25, 0.25]]), "threshold": 0.5},
    {"gt_boxes": torch.zeros(2, 0, 4), "gt_mask": torch.zeros(2, 0, dtype=torch.bool), "priors": torch.tensor([[0.5, 0.5, 0.25, 0.25]]), "threshold": 0.5},
    {"gt_boxes": torch.tensor([[[0.25, 0.25, 0.75, 0.75]]]), "gt_mask": torch.tensor([[False]]), "priors": torch.tensor([[0.5, 0.5, 0.5, 0.5]]), "threshold": 0.0},
)


@MATCH.property(Category.ORACLE, strategy=match_inputs(), examples=(_COLLIDE_EX, _SSD300_EX), examples_factor=0.6, name="agrees_with_numpy")
def match_agrees_with_numpy(target: Target, ex: dict[str, Any]) -> None:
    """Equal to the image-by-image NumPy loop wherever no decision is a tie."""
    got = _matched(target, ex)
    if not _untied(ex):
        return
    want = npo.ssd_matching(ex["gt_boxes"], ex["gt_mask"], ex["priors"], ex["threshold"])
    if not np.array_equal(got, want):
        i, p = (int(v) for v in np.argwhere(got != want)[0])
        raise AssertionError(
            f"matched[{i}, {p}]={got[i, p]}, but the two principles give {want[i, p]} "
            f"({int((got != want).sum())} of {got.size} priors differ; threshold {ex['threshold']})"
        )


@MATCH.property(Category.ROBUSTNESS, strategy=match_inputs(max_b=2), examples=_EMPTY_EXAMPLES, name="output_dtype_and_shape")
def match_shape(target: Target, ex: dict[str, Any]) -> None:
    """The output is an int64 (B, P) tensor of values in [-1, G - 1]; no image or no ground truth gives all -1."""
    out = _call_match(target, ex)
    ck.assert_shape_dtype(out, shape=(ex["gt_boxes"].shape[0], ex["priors"].shape[0]), dtype=torch.int64)
    m = _matched(target, ex)
    if not bool(ex["gt_mask"].any()) and (m != -1).any():
        raise AssertionError(f"with no real ground truth every prior should be background (-1), got {m.tolist()}")


@MATCH.property(Category.MATCHING, strategy=match_inputs(), examples=(_COLLIDE_EX, _SSD300_EX), name="every_ground_truth_has_a_prior")
def every_gt_matched(target: Target, ex: dict[str, Any]) -> None:
    """Principle 1: each real ground truth is the match of at least one prior (when #GT <= #priors)."""
    m = _matched(target, ex)
    p = ex["priors"].shape[0]
    for i in range(m.shape[0]):
        real = np.flatnonzero(ex["gt_mask"][i].numpy())
        if len(real) > p:
            continue
        have = set(m[i][m[i] >= 0].tolist())
        lost = [int(g) for g in real if int(g) not in have]
        if lost:
            raise AssertionError(f"image {i}: ground truth {lost[0]} has no prior (its best prior went to another)")


@MATCH.property(Category.MATCHING, strategy=match_inputs(), name="padding_is_never_matched")
def padding_never_matched(target: Target, ex: dict[str, Any]) -> None:
    """No prior is matched to a padded slot (gt_mask False), whatever the slot holds."""
    m = _matched(target, ex)
    mask = ex["gt_mask"].numpy()
    for i in range(m.shape[0]):
        for p in np.flatnonzero(m[i] >= 0):
            if not mask[i, m[i, p]]:
                raise AssertionError(f"image {i}: prior {p} matched to padded slot {m[i, p]}")


@MATCH.property(Category.MATCHING, strategy=match_inputs(), examples=(_COLLIDE_EX,), name="best_ground_truth_unless_forced")
def best_unless_forced(target: Target, ex: dict[str, Any]) -> None:
    """A matched prior has IoU >= threshold with its ground truth and no other ground truth overlaps it more,
    except at most one prior per ground truth (the one principle 1 gave it)."""
    m = _matched(target, ex)
    tie = _TIE[ex["gt_boxes"].dtype]
    for i, iou in enumerate(_ious(ex)):
        forced: dict[int, int] = {}
        for p in np.flatnonzero(m[i] >= 0):
            g = int(m[i, p])
            if g >= iou.shape[0] or iou[g, p] < 0:
                continue  # padding: padding_is_never_matched says so
            best = iou[:, p].max()
            if iou[g, p] < ex["threshold"] - tie or iou[g, p] < best - tie:
                if g in forced:
                    raise AssertionError(
                        f"image {i}: priors {forced[g]} and {p} both matched to ground truth {g} below the threshold or "
                        f"below another ground truth's IoU (IoU {iou[g, p]:.4f}, best {best:.4f}); principle 1 forces one only"
                    )
                forced[g] = int(p)


@MATCH.property(Category.MATCHING, strategy=match_inputs(), examples=(_HALF_EX, _SSD300_EX), name="above_threshold_is_positive")
def above_threshold_positive(target: Target, ex: dict[str, Any]) -> None:
    """Principle 2: every prior whose IoU with some real ground truth is >= threshold is matched (an IoU equal to the
    threshold counts: >=, not >)."""
    m = _matched(target, ex)
    t = ex["threshold"]
    # A dyadic threshold (0.5) is compared exactly on the grid; 0.35 and 0.7 allow for rounding.
    slack = 0.0 if float(np.float32(t)) == t else _TIE[ex["gt_boxes"].dtype]
    for i, iou in enumerate(_ious(ex)):
        if not iou.size:
            continue
        best = iou.max(axis=0)
        miss = np.flatnonzero((best >= t + slack) & (m[i] < 0))
        if miss.size:
            p = int(miss[0])
            raise AssertionError(f"image {i}: prior {p} has IoU {best[p]!r} >= threshold {t} but is background")


@MATCH.property(Category.MATCHING, strategy=match_inputs(), examples=(_COLLIDE_EX, _SSD300_EX), name="highest_iou_pair_is_matched")
def highest_pair_matched(target: Target, ex: dict[str, Any]) -> None:
    """In each image the (ground truth, prior) pair of highest IoU (when unique) is matched: a contested prior goes to the
    ground truth that overlaps it most, not to the later one."""
    m = _matched(target, ex)
    tie = _TIE[ex["gt_boxes"].dtype]
    for i, iou in enumerate(_ious(ex)):
        if not iou.size or iou.max() <= 0:
            continue
        flat = np.sort(iou.ravel())[::-1]
        if len(flat) > 1 and flat[0] - flat[1] <= tie:
            continue
        g, p = np.unravel_index(int(np.argmax(iou)), iou.shape)
        if m[i, p] != g:
            raise AssertionError(f"image {i}: the best pair is ground truth {g} with prior {p} (IoU {iou[g, p]:.4f}), but prior {p} is matched to {m[i, p]}")


@MATCH.property(Category.MATCHING, strategy=match_inputs(), name="best_prior_kept_without_collision")
def best_prior_kept(target: Target, ex: dict[str, Any]) -> None:
    """In an image where the real ground truths' best priors are all distinct (and unique), each ground truth is matched
    to its best prior, whatever the threshold (principle 1 before principle 2)."""
    m = _matched(target, ex)
    tie = _TIE[ex["gt_boxes"].dtype]
    for i, iou in enumerate(_ious(ex)):
        real = [g for g in range(iou.shape[0]) if iou[g].max() >= 0]
        best = {}
        for g in real:
            row = np.sort(iou[g])[::-1]
            if len(row) > 1 and row[0] - row[1] <= tie:
                break
            best[g] = int(np.argmax(iou[g]))
        if len(best) != len(real) or len(set(best.values())) != len(best):
            continue  # a tie or a collision: greedy bipartite decides, checked elsewhere
        for g, p in best.items():
            if m[i, p] != g:
                raise AssertionError(
                    f"image {i}: prior {p} is ground truth {g}'s best (IoU {iou[g, p]:.4f}); no two ground truths share a best "
                    f"prior, but it is matched to {m[i, p]} (threshold {ex['threshold']})"
                )


@MATCH.property(Category.MATCHING, strategy=match_inputs(thresholds=(0.35, 0.5)), name="higher_threshold_fewer_positives")
def threshold_monotone(target: Target, ex: dict[str, Any]) -> None:
    """Raising the threshold never makes a background prior positive (principle 1 does not depend on it)."""
    lo = _matched(target, ex) >= 0
    hi = _matched(target, ex, threshold=ex["threshold"] + 0.2) >= 0
    gained = hi & ~lo
    if gained.any():
        i, p = (int(v) for v in np.argwhere(gained)[0])
        raise AssertionError(f"prior {p} of image {i} is background at threshold {ex['threshold']} but positive at {ex['threshold'] + 0.2}")


@st.composite
def _with_permutation(draw: st.DrawFn, axis: str) -> dict[str, Any]:
    ex = draw(match_inputs())
    n = ex["gt_boxes"].shape[1] if axis == "gt" else ex["priors"].shape[0]
    ex["perm"] = torch.tensor(draw(st.permutations(list(range(n)))), dtype=torch.long)
    return ex


@MATCH.property(Category.INVARIANCE, strategy=_with_permutation("gt"), name="ground_truth_permutation_equivariant")
def gt_permutation(target: Target, ex: dict[str, Any]) -> None:
    """Permuting the ground-truth slots permutes the matched indices the same way (examples without ties)."""
    base = _matched(target, ex)
    perm = ex["perm"]
    moved = _matched(target, ex, gt_boxes=ex["gt_boxes"][:, perm], gt_mask=ex["gt_mask"][:, perm])
    if not _untied(ex):
        return
    inv = torch.argsort(perm).numpy()  # slot g moved to inv[g]
    want = np.where(base >= 0, inv[np.maximum(base, 0)] if inv.size else base, -1)
    if not np.array_equal(moved, want):
        i, p = (int(v) for v in np.argwhere(moved != want)[0])
        raise AssertionError(f"after permuting the ground truths by {perm.tolist()}, prior {p} of image {i} is matched to {moved[i, p]}, but should be {want[i, p]}")


@MATCH.property(Category.INVARIANCE, strategy=_with_permutation("prior"), name="prior_permutation_equivariant")
def prior_permutation(target: Target, ex: dict[str, Any]) -> None:
    """Permuting the priors permutes the output's columns the same way (examples without ties)."""
    base = _matched(target, ex)
    perm = ex["perm"]
    moved = _matched(target, ex, priors=ex["priors"][perm])
    if not _untied(ex):
        return
    want = base[:, perm.numpy()]
    if not np.array_equal(moved, want):
        i, p = (int(v) for v in np.argwhere(moved != want)[0])
        raise AssertionError(f"after permuting the priors, column {p} of image {i} is {moved[i, p]}, but should be {want[i, p]}")


@MATCH.property(Category.INVARIANCE, strategy=match_inputs(min_b=2), name="images_are_independent")
def images_independent(target: Target, ex: dict[str, Any]) -> None:
    """Each image's row equals the matching of that image alone (no mixing across the batch), padding included."""
    base = _matched(target, ex)
    for i in range(base.shape[0]):
        alone = _matched(target, ex, gt_boxes=ex["gt_boxes"][i : i + 1], gt_mask=ex["gt_mask"][i : i + 1])
        if not np.array_equal(alone[0], base[i]):
            p = int(np.flatnonzero(alone[0] != base[i])[0])
            raise AssertionError(f"image {i} matched alone gives {alone[0, p]} for prior {p}, in the batch {base[i, p]}")


@MATCH.property(Category.INVARIANCE, strategy=match_inputs(), name="extra_padding_changes_nothing")
def extra_padding(target: Target, ex: dict[str, Any]) -> None:
    """Appending padded slots (gt_mask False, holding any box) leaves the matching unchanged."""
    b, g = ex["gt_boxes"].shape[:2]
    junk = torch.tensor([0.25, 0.25, 0.75, 0.75], dtype=ex["gt_boxes"].dtype).expand(b, 2, 4)
    base = _matched(target, ex)
    more = _matched(
        target, ex, gt_boxes=torch.cat([ex["gt_boxes"], junk], 1), gt_mask=torch.cat([ex["gt_mask"], torch.zeros(b, 2, dtype=torch.bool)], 1)
    )
    if not np.array_equal(base, more):
        i, p = (int(v) for v in np.argwhere(base != more)[0])
        raise AssertionError(f"with two extra padded slots prior {p} of image {i} is matched to {more[i, p]} instead of {base[i, p]}")


@st.composite
def _moved(draw: st.DrawFn) -> dict[str, Any]:
    ex = draw(match_inputs())
    ex["shift"] = [draw(st.integers(-64, 64)) / 8, draw(st.integers(-64, 64)) / 8]
    ex["factor"] = draw(st.sampled_from([0.5, 2.0, 8.0]))
    return ex


@MATCH.property(Category.INVARIANCE, strategy=_moved(), name="translation_and_scale_invariant")
def match_moved(target: Target, ex: dict[str, Any]) -> None:
    """Translating (or scaling by a power of two) every box and prior together leaves the matching unchanged (exact on the grid)."""
    base = _matched(target, ex)
    dt = ex["gt_boxes"].dtype
    t = torch.tensor(ex["shift"], dtype=dt)
    s = ex["factor"]
    pr = ex["priors"]
    shifted = _matched(target, ex, gt_boxes=ex["gt_boxes"] + t.repeat(2), priors=torch.cat([pr[:, :2] + t, pr[:, 2:]], 1))
    scaled = _matched(target, ex, gt_boxes=ex["gt_boxes"] * s, priors=pr * s)
    for what, got in ((f"translated by {ex['shift']}", shifted), (f"scaled by {s}", scaled)):
        if not np.array_equal(got, base):
            i, p = (int(v) for v in np.argwhere(got != base)[0])
            raise AssertionError(f"{what}: prior {p} of image {i} is matched to {got[i, p]} instead of {base[i, p]}")


@MATCH.property(Category.ROBUSTNESS, strategy=match_inputs(max_b=2), name="does_not_modify_inputs")
def match_not_modified(target: Target, ex: dict[str, Any]) -> None:
    """No input tensor changes value or version counter."""
    check_not_modified(target, (ex["gt_boxes"], ex["gt_mask"], ex["priors"]), {"threshold": ex["threshold"]}, ("gt_boxes", "gt_mask", "priors"))


@MATCH.property(Category.ROBUSTNESS, strategy=match_inputs(max_b=2), name="deterministic")
def match_deterministic(target: Target, ex: dict[str, Any]) -> None:
    """Two calls on the same inputs give identical outputs."""
    check_deterministic(lambda: _call_match(target, ex))


@MATCH.property(Category.ROBUSTNESS, strategy=match_inputs(min_b=1, max_b=2), name="rejects_malformed_inputs")
def match_rejects(target: Target, ex: dict[str, Any]) -> None:
    """A gt_mask of the wrong shape, boxes with 5 coordinates or priors with 3 must raise, not broadcast."""
    b, g = ex["gt_boxes"].shape[:2]
    ck.assert_raises(lambda: _call_match(target, ex, gt_mask=torch.ones(b, g + 1, dtype=torch.bool)), what="gt_mask of shape (B, G + 1)")
    ck.assert_raises(lambda: _call_match(target, ex, gt_boxes=torch.cat([ex["gt_boxes"], ex["gt_boxes"][..., :1]], -1)), what="gt_boxes with 5 coordinates")
    ck.assert_raises(lambda: _call_match(target, ex, priors=ex["priors"][:, :3]), what="priors with 3 columns")


register_device_properties(
    MATCH,
    strategy=match_inputs(),
    call=lambda t, ex: _call_match(t, ex),
    float_keys=("gt_boxes", "priors"),
    tensor_keys=("gt_boxes", "gt_mask", "priors"),
    low_precision=False,
)


# ---------------------------------------------------------------------------
# hard_negative_mining
# ---------------------------------------------------------------------------


@st.composite
def mining_inputs(draw: st.DrawFn, *, min_b: int = 0, ties: bool = True) -> dict[str, Any]:
    dtype = draw(hh.float_dtypes())
    b, p = draw(st.integers(min_b, 4)), draw(st.integers(0, 40))
    if ties and draw(st.booleans()):
        vals = draw(st.lists(st.integers(0, 12).map(lambda v: v / 4), min_size=b * p, max_size=b * p))
    else:
        vals = draw(st.lists(st.floats(0, 50, allow_nan=False, allow_subnormal=False, width=32), min_size=b * p, max_size=b * p, unique=not ties))
    pos = draw(st.lists(st.integers(0, 5).map(lambda v: v == 0), min_size=b * p, max_size=b * p))
    return {
        "conf_loss": torch.tensor(vals, dtype=torch.float64).reshape(b, p).to(dtype),
        "positive": torch.tensor(pos, dtype=torch.bool).reshape(b, p),
        "neg_pos_ratio": draw(st.sampled_from([3, 3, 3, 1, 0, 2.5, 10])),
    }


def _call_mine(target: Target, ex: dict[str, Any], **over: Any) -> torch.Tensor:
    e = {**ex, **over}
    return target.tensor(e["conf_loss"], e["positive"], neg_pos_ratio=e["neg_pos_ratio"])


def _mined(target: Target, ex: dict[str, Any], **over: Any) -> np.ndarray:
    out = _call_mine(target, ex, **over)
    shape = tuple({**ex, **over}["conf_loss"].shape)
    if tuple(out.shape) != shape or out.dtype != torch.bool:
        raise AssertionError(f"out is {tuple(out.shape)}/{out.dtype}, but should be a bool mask of shape {shape}")
    return out.detach().cpu().numpy()


_MINE_EXAMPLES = (
    {"conf_loss": torch.tensor([[0.5, 2.0, 1.0, 1.0, 3.0, 0.0]]), "positive": torch.tensor([[True, False, False, False, False, False]]), "neg_pos_ratio": 3},
    {"conf_loss": torch.tensor([[1.0, 2.0], [3.0, 4.0]]), "positive": torch.tensor([[False, False], [True, False]]), "neg_pos_ratio": 3},
    {"conf_loss": torch.zeros(0, 5), "positive": torch.zeros(0, 5, dtype=torch.bool), "neg_pos_ratio": 3},
)


@MINING.property(Category.ORACLE, strategy=mining_inputs(), examples=_MINE_EXAMPLES, name="agrees_with_numpy")
def mine_agrees(target: Target, ex: dict[str, Any]) -> None:
    """Per image the selected losses are those the NumPy sort selects (as a multiset: ties at the cut may go either way)."""
    got = _mined(target, ex)
    want = npo.hard_negative_mining(ex["conf_loss"], ex["positive"], ex["neg_pos_ratio"])
    loss = ck.f64(ex["conf_loss"])
    for i in range(got.shape[0]):
        a, b = np.sort(loss[i][got[i]]), np.sort(loss[i][want[i]])
        if a.shape != b.shape or not np.array_equal(a, b):
            raise AssertionError(f"image {i}: selected losses {a.tolist()}, but should be {b.tolist()}")


@MINING.property(Category.REDUCTION, strategy=mining_inputs(), examples=_MINE_EXAMPLES, name="count_is_ratio_times_positives")
def mine_count(target: Target, ex: dict[str, Any]) -> None:
    """Each image selects exactly min(floor(ratio * #positives), #negatives): none without positives."""
    got = _mined(target, ex)
    pos = ex["positive"].numpy()
    for i in range(got.shape[0]):
        want = min(math.floor(int(pos[i].sum()) * ex["neg_pos_ratio"]), int((~pos[i]).sum()))
        if int(got[i].sum()) != want:
            raise AssertionError(
                f"image {i}: {int(got[i].sum())} negatives selected, but should be min(floor({ex['neg_pos_ratio']} * {int(pos[i].sum())}), {int((~pos[i]).sum())}) = {want}"
            )


@MINING.property(Category.MATCHING, strategy=mining_inputs(), examples=_MINE_EXAMPLES, name="never_selects_positives")
def mine_no_positive(target: Target, ex: dict[str, Any]) -> None:
    """A positive prior is never among the hard negatives (it is counted once, as a positive)."""
    both = _mined(target, ex) & ex["positive"].numpy()
    if both.any():
        i, p = (int(v) for v in np.argwhere(both)[0])
        raise AssertionError(f"image {i}: positive prior {p} selected as a hard negative")


@MINING.property(Category.MATCHING, strategy=mining_inputs(), examples=_MINE_EXAMPLES, name="selects_the_hardest")
def mine_hardest(target: Target, ex: dict[str, Any]) -> None:
    """No unselected negative has a higher loss than a selected one."""
    got = _mined(target, ex)
    pos = ex["positive"].numpy()
    loss = ck.f64(ex["conf_loss"])
    for i in range(got.shape[0]):
        sel, rest = loss[i][got[i] & ~pos[i]], loss[i][~got[i] & ~pos[i]]
        if sel.size and rest.size and rest.max() > sel.min():
            raise AssertionError(f"image {i}: a negative of loss {rest.max()!r} is left out while one of loss {sel.min()!r} is selected")


@MINING.property(Category.INVARIANCE, strategy=mining_inputs(min_b=2), name="images_are_independent")
def mine_independent(target: Target, ex: dict[str, Any]) -> None:
    """Each image's selection (as a multiset of losses) is that of the image mined alone: the ratio applies per image."""
    got = _mined(target, ex)
    loss = ck.f64(ex["conf_loss"])
    for i in range(got.shape[0]):
        alone = _mined(target, ex, conf_loss=ex["conf_loss"][i : i + 1], positive=ex["positive"][i : i + 1])[0]
        if not np.array_equal(np.sort(loss[i][alone]), np.sort(loss[i][got[i]])):
            raise AssertionError(f"image {i}: mined alone selects {int(alone.sum())} negatives, in the batch {int(got[i].sum())}")


@MINING.property(Category.INVARIANCE, strategy=mining_inputs(ties=False), name="only_the_order_matters")
def mine_monotone(target: Target, ex: dict[str, Any]) -> None:
    """A strictly increasing transform of the losses (2 l + 1) selects the same priors (distinct losses)."""
    a = _mined(target, ex)
    b = _mined(target, ex, conf_loss=ex["conf_loss"] * 2 + 1)
    if not np.array_equal(a, b):
        i, p = (int(v) for v in np.argwhere(a != b)[0])
        raise AssertionError(f"image {i}: prior {p} selection changes from {a[i, p]} to {b[i, p]} under l -> 2 l + 1")


@MINING.property(Category.ROBUSTNESS, strategy=mining_inputs(), examples=_MINE_EXAMPLES[2:], name="output_dtype_and_shape")
def mine_shape(target: Target, ex: dict[str, Any]) -> None:
    """The output is a bool mask of conf_loss's shape."""
    ck.assert_shape_dtype(_call_mine(target, ex), shape=tuple(ex["conf_loss"].shape), dtype=torch.bool)


@MINING.property(Category.ROBUSTNESS, strategy=mining_inputs(), name="does_not_modify_inputs")
def mine_not_modified(target: Target, ex: dict[str, Any]) -> None:
    """conf_loss and positive keep their values and version counters."""
    check_not_modified(target, (ex["conf_loss"], ex["positive"]), {"neg_pos_ratio": ex["neg_pos_ratio"]}, ("conf_loss", "positive"))


# 15 hard negatives to choose among 40 negatives of equal loss.
_MINE_TIED = {"conf_loss": torch.ones(2, 45), "positive": torch.arange(45).expand(2, 45) < 5, "neg_pos_ratio": 3}


@MINING.property(Category.ROBUSTNESS, strategy=mining_inputs(), examples=(_MINE_TIED,), name="deterministic")
def mine_deterministic(target: Target, ex: dict[str, Any]) -> None:
    """Two calls give identical masks, ties included."""
    check_deterministic(lambda: _call_mine(target, ex))


@MINING.property(Category.ROBUSTNESS, strategy=mining_inputs(min_b=1), name="rejects_malformed_inputs")
def mine_rejects(target: Target, ex: dict[str, Any]) -> None:
    """A negative ratio, or a positive mask of another shape, must raise."""
    ck.assert_raises(lambda: _call_mine(target, ex, neg_pos_ratio=-1), what="neg_pos_ratio=-1")
    b, p = ex["conf_loss"].shape
    ck.assert_raises(lambda: _call_mine(target, ex, positive=torch.zeros(b, p + 1, dtype=torch.bool)), what="positive of shape (B, P + 1)")


register_device_properties(
    MINING,
    strategy=mining_inputs(),
    call=lambda t, ex: _call_mine(t, ex),
    float_keys=("conf_loss",),
    tensor_keys=("conf_loss", "positive"),
    low_precision=False,
)


# ---------------------------------------------------------------------------
# multibox_loss
# ---------------------------------------------------------------------------


@st.composite
def loss_inputs(
    draw: st.DrawFn,
    *,
    dtypes: tuple[torch.dtype, ...] = hh.FLOAT_DTYPES,
    min_b: int = 0,
    max_b: int = 3,
    extreme: bool = True,
    continuous: bool = False,
) -> dict[str, Any]:
    ex = draw(match_inputs(dtypes=dtypes, min_b=min_b, max_b=max_b, max_g=4, max_p=24, positive_area=True))
    dtype = ex["gt_boxes"].dtype
    b, g = ex["gt_boxes"].shape[:2]
    p = ex["priors"].shape[0]
    c = draw(st.integers(2, 5))
    labels = draw(st.lists(st.integers(1, c - 1), min_size=b * g, max_size=b * g))
    lab = torch.tensor(labels, dtype=torch.long).reshape(b, g)
    lab = torch.where(ex["gt_mask"], lab, torch.zeros_like(lab))  # padding's label is 0: it must not matter
    if continuous:
        el = st.floats(-4, 4, allow_nan=False, allow_subnormal=False, width=32)
        big = el
    else:
        el = st.integers(-24, 24).map(lambda v: v / 8)
        big = st.one_of(el, st.sampled_from([-30.0, 30.0, -1e4, 1e4])) if extreme else el
    locs = draw(st.lists(el, min_size=b * p * 4, max_size=b * p * 4))
    scores = draw(st.lists(big, min_size=b * p * c, max_size=b * p * c))
    ex.update(
        pred_locs=torch.tensor(locs, dtype=torch.float64).reshape(b, p, 4).to(dtype),
        pred_scores=torch.tensor(scores, dtype=torch.float64).reshape(b, p, c).to(dtype),
        gt_labels=lab,
        neg_pos_ratio=draw(st.sampled_from([3, 3, 3, 1, 0, 2.5])),
        alpha=draw(st.sampled_from([1.0, 1.0, 0.5, 2.0])),
    )
    return ex


_LOSS_KEYS = ("pred_locs", "pred_scores", "gt_boxes", "gt_labels", "gt_mask", "priors")


def _call_loss(target: Target, ex: dict[str, Any], **over: Any) -> torch.Tensor:
    e = {**ex, **over}
    return target.tensor(
        *(e[k] for k in _LOSS_KEYS), threshold=e["threshold"], neg_pos_ratio=e["neg_pos_ratio"], alpha=e["alpha"]
    )


def _oracle(ex: dict[str, Any], **over: Any) -> dict[str, Any]:
    e = {**ex, **over}
    return npo.multibox_loss_and_grad(*(e[k] for k in _LOSS_KEYS), e["threshold"], e["neg_pos_ratio"], e["alpha"])


def _loss_untied(ex: dict[str, Any], o: dict[str, Any] | None = None) -> bool:
    o = o or _oracle(ex)
    tie = _TIE[ex["pred_scores"].dtype]
    return _untied(ex) and o["cut_margin"] > tie


def _loss_scale(o: dict[str, Any]) -> float:
    # all terms are >= 0: the float32 error is relative to the terms' sum, plus the
    # offsets' own rounding (log of size ratios, division by prior sizes)
    n = max(int(o["n_pos"].sum()), 1)
    return float(o["loss"] + np.abs(o["targets"]).sum() / n)


_NO_OBJECT = {
    "pred_locs": torch.randn(2, 4, 4, generator=torch.Generator().manual_seed(0)),
    "pred_scores": torch.randn(2, 4, 3, generator=torch.Generator().manual_seed(1)) * 5,
    "gt_boxes": torch.zeros(2, 1, 4),
    "gt_labels": torch.zeros(2, 1, dtype=torch.long),
    "gt_mask": torch.zeros(2, 1, dtype=torch.bool),
    "priors": torch.tensor([[0.25, 0.25, 0.5, 0.5], [0.75, 0.25, 0.5, 0.5], [0.25, 0.75, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5]]),
    "threshold": 0.5,
    "neg_pos_ratio": 3,
    "alpha": 1.0,
}
_ONE_OBJECT = {
    **_NO_OBJECT,
    "gt_boxes": torch.tensor([[[0.0, 0.0, 0.5, 0.5]], [[0.0, 0.0, 0.0, 0.0]]]),
    "gt_labels": torch.tensor([[2], [0]]),
    "gt_mask": torch.tensor([[True], [False]]),
}


@LOSS.property(Category.ORACLE, strategy=loss_inputs(), examples=(_ONE_OBJECT, _NO_OBJECT), examples_factor=0.6, name="agrees_with_numpy")
def loss_agrees(target: Target, ex: dict[str, Any]) -> None:
    """Equal to the NumPy loop's (L_conf + alpha L_loc) / N (examples without matching ties)."""
    out = _call_loss(target, ex)
    o = _oracle(ex)
    if not _untied(ex):
        return
    ck.assert_close(out, o["loss"], spec=LOSS.id, key="numpy", dtype=ex["pred_locs"].dtype, scale=_loss_scale(o), what="loss")


@LOSS.property(Category.GRADIENT, strategy=loss_inputs(), examples=(_ONE_OBJECT,), examples_factor=0.6, name="gradient_matches_analytic")
def loss_grad(target: Target, ex: dict[str, Any]) -> None:
    """d/dscores = (softmax - onehot) / N on positives and mined negatives, 0 elsewhere; d/dlocs = alpha clip(d, -1, 1) / N on
    positives (examples without ties)."""
    locs = ex["pred_locs"].clone().requires_grad_(True)
    scores = ex["pred_scores"].clone().requires_grad_(True)
    out = _call_loss(target, ex, pred_locs=locs, pred_scores=scores)
    o = _oracle(ex)
    if not _loss_untied(ex, o):
        return
    gl, gs = torch.autograd.grad(out, (locs, scores), allow_unused=True)
    gl = torch.zeros_like(locs) if gl is None else gl
    gs = torch.zeros_like(scores) if gs is None else gs
    dt = ex["pred_locs"].dtype
    ck.assert_grad_close(gs, o["grad_scores"], spec=LOSS.id, key="numpy", dtype=dt, what="d loss / d pred_scores", scale=1.0)
    ck.assert_grad_close(gl, o["grad_locs"], spec=LOSS.id, key="numpy", dtype=dt, what="d loss / d pred_locs", scale=1.0)


@LOSS.property(Category.REDUCTION, strategy=loss_inputs(), examples=(_NO_OBJECT,), name="no_object_gives_zero_and_finite_gradients")
def loss_no_object(target: Target, ex: dict[str, Any]) -> None:
    """With no real ground truth in the batch the loss is 0 (not 0/0) and its gradients are finite and zero."""
    mask = torch.zeros_like(ex["gt_mask"])
    locs = ex["pred_locs"].clone().requires_grad_(True)
    scores = ex["pred_scores"].clone().requires_grad_(True)
    out = _call_loss(target, ex, gt_mask=mask, pred_locs=locs, pred_scores=scores)
    ck.assert_close(out, 0.0, spec=LOSS.id, key="self", dtype=locs.dtype, what="loss with no object")
    if out.requires_grad:
        gl, gs = torch.autograd.grad(out, (locs, scores), allow_unused=True)
        for name, gr in (("d/dpred_locs", gl), ("d/dpred_scores", gs)):
            if gr is not None:
                ck.assert_finite(gr, what=name)
                ck.assert_close(gr, 0.0, spec=LOSS.id, key="self", dtype=locs.dtype, what=name)


@LOSS.property(Category.REDUCTION, strategy=loss_inputs(min_b=2), name="normalised_by_the_batch_positives")
def loss_batch_norm(target: Target, ex: dict[str, Any]) -> None:
    """N_total L(batch) = sum_i N_i L(image i): one normaliser, the batch's positives, not a mean of per-image losses."""
    o = _oracle(ex)
    if not _untied(ex):
        _call_loss(target, ex)
        return
    n = o["n_pos"]
    total = ck.f64(_call_loss(target, ex)) * n.sum()
    parts = 0.0
    for i in range(ex["gt_boxes"].shape[0]):
        one = {k: ex[k][i : i + 1] for k in ("pred_locs", "pred_scores", "gt_boxes", "gt_labels", "gt_mask")}
        parts += float(ck.f64(_call_loss(target, ex, **one))) * n[i]
    ck.assert_close(torch.tensor(float(total), dtype=torch.float64), parts, spec=LOSS.id, key="numpy", dtype=ex["pred_locs"].dtype,
                    scale=_loss_scale(o) * max(int(n.sum()), 1), what="N L(batch)")


@st.composite
def _perfect(draw: st.DrawFn) -> dict[str, Any]:
    ex = draw(loss_inputs())
    o = _oracle(ex)
    pos = o["matched"] >= 0
    locs = ck.f64(ex["pred_locs"]).copy()
    locs[pos] = o["targets"][pos]
    ex["pred_locs"] = torch.from_numpy(locs).to(ex["pred_locs"].dtype)
    return ex


@LOSS.property(Category.EQUIVALENCE, strategy=_perfect(), examples_factor=0.6, name="perfect_offsets_leave_confidence_only")
def loss_perfect(target: Target, ex: dict[str, Any]) -> None:
    """With pred_locs equal to the encoded offsets (variances 0.1, 0.2, centre-size) on the positives, the loss equals
    its alpha = 0 value."""
    with_loc = _call_loss(target, ex)
    without = ck.f64(_call_loss(target, ex, alpha=0.0))
    o = _oracle(ex)
    if not _untied(ex):
        return
    ck.assert_close(with_loc, without, spec=LOSS.id, key="numpy", dtype=ex["pred_locs"].dtype, scale=_loss_scale(o),
                    what="L(alpha) with perfect offsets")


@LOSS.property(Category.EQUIVALENCE, strategy=loss_inputs(), name="localisation_is_smooth_l1_over_positives")
def loss_loc_term(target: Target, ex: dict[str, Any]) -> None:
    """L(alpha) - L(0) = alpha sum_pos smoothL1(pred - encode(gt, prior)) / N (beta 1, summed over the 4 offsets)."""
    a = ck.f64(_call_loss(target, ex))
    z = ck.f64(_call_loss(target, ex, alpha=0.0))
    o = _oracle(ex)
    if not _untied(ex):
        return
    n = max(int(o["n_pos"].sum()), 1)
    want = ex["alpha"] * o["loc"].sum() / n
    ck.assert_close(torch.tensor(float(a - z), dtype=torch.float64), want, spec=LOSS.id, key="numpy",
                    dtype=ex["pred_locs"].dtype, scale=_loss_scale(o), what="L(alpha) - L(0)")


@LOSS.property(Category.EQUIVALENCE, strategy=loss_inputs(), name="linear_in_alpha")
def loss_alpha(target: Target, ex: dict[str, Any]) -> None:
    """L(2 alpha) - L(alpha) = L(alpha) - L(0): alpha weights the localisation term only."""
    vals = [ck.f64(_call_loss(target, ex, alpha=a * ex["alpha"])) for a in (0.0, 1.0, 2.0)]
    o = _oracle(ex)
    ck.assert_close(torch.tensor(float(vals[2] - vals[1]), dtype=torch.float64), float(vals[1] - vals[0]), spec=LOSS.id, key="numpy",
                    dtype=ex["pred_locs"].dtype, scale=2 * _loss_scale(o) + float(abs(vals[2])), what="L(2 alpha) - L(alpha)")


@LOSS.property(Category.INVARIANCE, strategy=loss_inputs(), examples=(_ONE_OBJECT,), name="easy_negatives_do_not_matter")
def loss_easy_negatives(target: Target, ex: dict[str, Any]) -> None:
    """Making an unselected negative easier (raising its background logit by 3) leaves the loss unchanged: only the
    hard negatives enter."""
    o = _oracle(ex)
    base = _call_loss(target, ex)
    if not _loss_untied(ex, o):
        return
    easy = (o["matched"] < 0) & ~o["mined"]
    if not easy.any():
        return
    scores = ck.f64(ex["pred_scores"]).copy()
    scores[..., 0][easy] += 3.0
    moved = _call_loss(target, ex, pred_scores=torch.from_numpy(scores).to(ex["pred_scores"].dtype))
    ck.assert_close(moved, ck.f64(base), spec=LOSS.id, key="numpy", dtype=ex["pred_locs"].dtype, scale=_loss_scale(o),
                    what="loss after easing unselected negatives")


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
    base = _call_loss(target, ex)
    gp, pp = ex["gperm"], ex["pperm"]
    a = _call_loss(target, ex, gt_boxes=ex["gt_boxes"][:, gp], gt_labels=ex["gt_labels"][:, gp], gt_mask=ex["gt_mask"][:, gp])
    b = _call_loss(target, ex, priors=ex["priors"][pp], pred_locs=ex["pred_locs"][:, pp], pred_scores=ex["pred_scores"][:, pp])
    if not _loss_untied(ex):
        return
    o = _oracle(ex)
    for what, got in (("ground truths permuted", a), ("priors permuted", b)):
        ck.assert_close(got, ck.f64(base), spec=LOSS.id, key="numpy", dtype=ex["pred_locs"].dtype, scale=_loss_scale(o), what=what)


@LOSS.property(Category.INVARIANCE, strategy=loss_inputs(), name="padding_is_ignored")
def loss_padding(target: Target, ex: dict[str, Any]) -> None:
    """Two more padded slots (gt_mask False, with any box and label) leave the loss unchanged."""
    b = ex["gt_boxes"].shape[0]
    dt = ex["gt_boxes"].dtype
    base = _call_loss(target, ex)
    more = _call_loss(
        target,
        ex,
        gt_boxes=torch.cat([ex["gt_boxes"], torch.tensor([0.25, 0.25, 0.75, 0.75], dtype=dt).expand(b, 2, 4)], 1),
        gt_labels=torch.cat([ex["gt_labels"], torch.ones(b, 2, dtype=torch.long)], 1),
        gt_mask=torch.cat([ex["gt_mask"], torch.zeros(b, 2, dtype=torch.bool)], 1),
    )
    ck.assert_close(more, ck.f64(base), spec=LOSS.id, key="self", dtype=dt, what="loss with extra padding")


@LOSS.property(Category.GRADIENT, strategy=loss_inputs(), examples=(_NO_OBJECT, _ONE_OBJECT), name="finite_gradients")
def loss_finite(target: Target, ex: dict[str, Any]) -> None:
    """The loss and its gradients are finite, extreme logits (+-1e4) included."""
    locs = ex["pred_locs"].clone().requires_grad_(True)
    scores = ex["pred_scores"].clone().requires_grad_(True)
    out = _call_loss(target, ex, pred_locs=locs, pred_scores=scores)
    ck.assert_finite(out.detach(), what="loss")
    if out.requires_grad:
        for name, gr in zip(("d/dpred_locs", "d/dpred_scores"), torch.autograd.grad(out, (locs, scores), allow_unused=True)):
            if gr is not None:
                ck.assert_finite(gr, what=name)


@LOSS.property(Category.ROBUSTNESS, strategy=loss_inputs(max_b=2), examples=(_NO_OBJECT,), name="output_dtype_and_shape")
def loss_shape(target: Target, ex: dict[str, Any]) -> None:
    """A 0-d tensor of the predictions' dtype."""
    ck.assert_shape_dtype(_call_loss(target, ex), shape=(), dtype=ex["pred_locs"].dtype)


@LOSS.property(Category.ROBUSTNESS, strategy=loss_inputs(max_b=2), name="does_not_modify_inputs")
def loss_not_modified(target: Target, ex: dict[str, Any]) -> None:
    """No input tensor changes value or version counter."""
    check_not_modified(target, tuple(ex[k] for k in _LOSS_KEYS),
                       {"threshold": ex["threshold"], "neg_pos_ratio": ex["neg_pos_ratio"], "alpha": ex["alpha"]}, _LOSS_KEYS)


@LOSS.property(Category.ROBUSTNESS, strategy=loss_inputs(max_b=2), name="deterministic")
def loss_deterministic(target: Target, ex: dict[str, Any]) -> None:
    """Two calls give bitwise-identical losses."""
    check_deterministic(lambda: _call_loss(target, ex))


@LOSS.property(Category.ROBUSTNESS, strategy=loss_inputs(min_b=1, max_b=2), examples=(_ONE_OBJECT,), name="rejects_bad_labels_and_shapes")
def loss_rejects(target: Target, ex: dict[str, Any]) -> None:
    """A real ground truth labelled 0 (background) or >= C, or predictions for another number of priors, must raise."""
    if bool(ex["gt_mask"].any()):
        c = ex["pred_scores"].shape[2]
        for bad in (0, c):
            lab = torch.where(ex["gt_mask"], torch.full_like(ex["gt_labels"], bad), ex["gt_labels"])
            ck.assert_raises(lambda: _call_loss(target, ex, gt_labels=lab), what=f"a real ground truth labelled {bad} (C = {c})")
    ck.assert_raises(lambda: _call_loss(target, ex, pred_locs=ex["pred_locs"][:, :-1] if ex["pred_locs"].shape[1] > 1 else ex["pred_locs"].repeat(1, 2, 1)),
                     what="pred_locs for another number of priors")


register_device_properties(
    LOSS,
    strategy=loss_inputs(extreme=False),
    call=lambda t, ex: _call_loss(t, ex),
    float_keys=("pred_locs", "pred_scores"),
    tensor_keys=_LOSS_KEYS,
    scale=lambda ex: 4.0 * (1.0 + float(np.abs(ck.f64(ex["pred_scores"])).max(initial=0.0))),
)
