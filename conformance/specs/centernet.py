"""CenterNet / CenterFusion specs (seed 003): ``penalty_reduced_focal`` (the FastFocalLoss gather
form), ``reg_weighted_l1``, ``depth_l1``, ``weighted_bce``, ``bin_rot``, ``generic_loss``.

Conventions: feature maps (B, D, H, W); ``ind`` (B, M) flat indices ``y * W + x``;
``mask`` (B, M) (or per element (B, M, D)) weights, 0 for padding; the gathered heads
divide by ``mask.sum() + 1e-4`` as the seed does. Padding slots must hold valid indices
(the seed's arrays hold zeros there); what they point at must not matter.
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
from impls import centernet as ref
from oracles import numpy_centernet as npo

_AB = ((2.0, 4.0), (2.0, 4.0), (1.0, 2.0), (0.5, 3.0), (3.0, 1.0))

FOCAL = register(
    Spec(
        id="penalty_reduced_focal",
        family="centernet",
        signature="f(pred_prob: Tensor[B, C, H, W], gt_heatmap: Tensor[B, C, H, W], ind: Tensor[B, M] int64, "
        "mask: Tensor[B, M], cat: Tensor[B, M] int64, *, alpha: float = 2.0, beta: float = 4.0) -> Tensor[]",
        summary="CenterNet's penalty-reduced focal loss in FastFocalLoss's gather form: dense negatives "
        "-(1 - y)^beta p^alpha log(1 - p), positives -(1 - p)^alpha log p read at (cat, ind) for each slot with "
        "mask > 0, divided by the number of positives (negatives alone when there is none). Probabilities in: "
        "the clamp lives in the seed's _sigmoid.",
        reference=ref.fast_focal,
        oracles=(
            Oracle("numpy", "numpy", "oracles.numpy_centernet.fast_focal (gather form, loops)"),
            Oracle("numpy_dense", "numpy", "oracles.numpy_centernet.penalty_reduced_focal (dense CornerNet form)"),
        ),
    )
)
REG = register(
    Spec(
        id="reg_weighted_l1",
        family="centernet",
        signature="f(output: Tensor[B, D, H, W], mask: Tensor[B, M, D] | Tensor[B, M], ind: Tensor[B, M] int64, "
        "target: Tensor[B, M, D]) -> Tensor[]",
        summary="sum mask |output[b, :, ind] - target| / (sum mask + 1e-4), the mask per element; a (B, M) mask is "
        "expanded over D (CenterNet's RegL1Loss).",
        reference=ref.reg_weighted_l1,
        oracles=(Oracle("numpy", "numpy", "oracles.numpy_centernet.reg_weighted_l1 (loops)"),),
    )
)
DEPTH = register(
    Spec(
        id="depth_l1",
        family="centernet",
        signature="f(output: Tensor[B, C, H, W] raw logits, target: Tensor[B, M], ind: Tensor[B, M] int64, "
        "mask: Tensor[B, M], cat: Tensor[B, M] int64) -> Tensor[]",
        summary="L1 between the gathered depth 1 / (sigmoid(output) + 1e-6) - 1 (channel cat when C > 1) and the "
        "target, sum mask |.| / (sum mask + 1e-4).",
        reference=ref.depth_l1,
        oracles=(Oracle("numpy", "numpy", "oracles.numpy_centernet.depth_l1 (loops)"),),
    )
)
BCE = register(
    Spec(
        id="weighted_bce",
        family="centernet",
        signature="f(output: Tensor[B, F, H, W] logits, mask: Tensor[B, M, F] | Tensor[B, M], ind: Tensor[B, M] int64, "
        "target: Tensor[B, M, F]) -> Tensor[]",
        summary="sum mask BCE_with_logits(output[b, :, ind], target) / (sum mask + 1e-4) (the attribute head).",
        reference=ref.weighted_bce,
        oracles=(Oracle("numpy", "numpy", "oracles.numpy_centernet.weighted_bce (loops)"),),
    )
)
ROT = register(
    Spec(
        id="bin_rot",
        family="centernet",
        signature="f(output: Tensor[B, 8, H, W], mask: Tensor[B, M], ind: Tensor[B, M] int64, rotbin: Tensor[B, M, 2] "
        "int64, rotres: Tensor[B, M, 2]) -> Tensor[]",
        summary="Two overlapping angle bins (centres -pi/2, +pi/2): per bin, masked mean cross-entropy of the bin "
        "logits plus smooth L1 of (sin, cos) against (sin, cos) of the residual, averaged over the active slots of "
        "that bin; masked slots contribute nothing.",
        reference=ref.bin_rot,
        oracles=(Oracle("numpy", "numpy", "oracles.numpy_centernet.bin_rot (loops)"),),
        variants=(
            Variant(
                "seed_bin_rot",
                ref.seed_bin_rot,
                why="Seed 003's compute_rot_loss multiplies masked logits by 0 and still averages their cross-entropy "
                "(log 2 each) over all B*M slots, and picks residual slots by rotbin alone, ignoring the mask.",
            ),
        ),
    )
)
GENERIC = register(
    Spec(
        id="generic_loss",
        family="centernet",
        signature="f(outputs: list[dict[str, Tensor]], batch: dict[str, Tensor], *, weights: dict[str, float], "
        "heads: Sequence[str] = LOSS_ORDER, sigmoid_dep_sec: bool = False) -> (Tensor[], dict[str, Tensor[]])",
        summary="CenterFusion's GenericLoss: heatmaps through the clamped sigmoid, depth through its transform, each "
        "head's loss averaged over the stacks, total = sum of weight x head loss; absent and weight-0 heads skipped; "
        "the caller's outputs are not modified.",
        reference=ref.generic_loss,
        oracles=(Oracle("numpy", "numpy", "oracles.numpy_centernet.generic_loss (composition of the loop oracles)"),),
        variants=(
            Variant(
                "seed_generic_loss",
                ref.seed_generic_loss,
                why="Seed 003's GenericLoss writes the sigmoid/depth-transformed maps back into the caller's outputs "
                "(a second call transforms them twice), computes weight-0 heads (0 * nan = nan), and uses the seed's "
                "BinRot.",
            ),
        ),
    )
)


def _np(t: Any) -> np.ndarray:
    return ck.f64(t)


def _f(dtype: torch.dtype, rows: Any) -> torch.Tensor:
    return torch.tensor(np.asarray(rows, dtype=np.float64), dtype=dtype)


# ---------------------------------------------------------------------------
# penalty_reduced_focal
# ---------------------------------------------------------------------------


@st.composite
def heatmaps(draw: st.DrawFn, *, exact_peaks: bool = True, peaks: bool | None = None, extreme: bool = False,
             moderate: bool = False) -> dict[str, Any]:
    """A heatmap with peaks exactly 1 (listed in ind/cat with mask 1 when ``exact_peaks``), Gaussian-like
    values below 1 elsewhere, and padding slots holding arbitrary valid indices."""
    dtype = draw(hh.float_dtypes())
    b, c, h, w = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    n = b * c * h * w
    gt = np.array(draw(st.lists(st.sampled_from([0.0, 0.0, 0.125, 0.5, 0.75, 0.875, 0.96875]), min_size=n, max_size=n)))
    gt = gt.reshape(b, c, h, w)
    slots: list[list[tuple[int, int, float]]] = []
    for i in range(b):
        k = 0 if peaks is False else draw(st.integers(1 if peaks else 0, min(3, c * h * w)))
        flat = draw(st.lists(st.integers(0, c * h * w - 1), min_size=k, max_size=k, unique=True))
        row = []
        for f in flat:
            ch, pix = divmod(f, h * w)
            gt[i, ch].flat[pix] = 1.0
            row.append((pix, ch, 1.0))
        slots.append(row)
    m = max(1, max(len(r) for r in slots)) + draw(st.integers(0, 2))  # extra padding slots
    ind = np.zeros((b, m), dtype=np.int64)
    cat = np.zeros((b, m), dtype=np.int64)
    mask = np.zeros((b, m))
    for i, row in enumerate(slots):
        for j in range(m):
            if j < len(row):
                ind[i, j], cat[i, j], mask[i, j] = row[j]
            else:  # padding: any valid index, mask 0
                ind[i, j] = draw(st.integers(0, h * w - 1))
                cat[i, j] = draw(st.integers(0, c - 1))
    logits_t = None
    if extreme or moderate:
        choices = ([-1e4, -30.0, -9.3, 0.0, 9.3, 30.0, 1e4, -2.0, 2.0] if extreme
                   else [-9.0, -6.5, -4.0, -2.0, -0.5, 0.0, 0.5, 2.0, 4.0, 6.5, 9.0])  # |x| < 9.21: clamp inactive
        logits = draw(st.lists(st.sampled_from(choices), min_size=n, max_size=n))
        logits_t = _f(dtype, logits).reshape(b, c, h, w)
        pred = ref.clamped_sigmoid(logits_t)
    else:
        vals = draw(st.lists(st.sampled_from([1e-4, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1 - 1e-4]), min_size=n, max_size=n))
        pred = _f(dtype, vals).reshape(b, c, h, w)
    alpha, beta = draw(st.sampled_from(_AB))
    return {
        "pred_prob": pred,
        "gt_heatmap": _f(dtype, gt),
        "ind": torch.from_numpy(ind),
        "mask": _f(dtype, mask) if draw(st.booleans()) else torch.from_numpy(mask > 0),
        "cat": torch.from_numpy(cat),
        "alpha": alpha,
        "beta": beta,
        **({"logits": logits_t} if moderate else {}),
    }


def _call_focal(target: Target, ex: dict[str, Any], **over: Any) -> torch.Tensor:
    e = {**ex, **over}
    return target.tensor(e["pred_prob"], e["gt_heatmap"], e["ind"], e["mask"], e["cat"], alpha=e["alpha"], beta=e["beta"])


def _focal_scale(ex: dict[str, Any]) -> float:
    # every term is >= 0; -log p <= 9.3 on the clamped range
    return float(npo.fast_focal(_np(ex["pred_prob"]), _np(ex["gt_heatmap"]), _np(ex["ind"]).astype(np.int64),
                                _np(ex["mask"]), _np(ex["cat"]).astype(np.int64), ex["alpha"], ex["beta"]))


_NO_PEAK = {
    "pred_prob": torch.full((1, 1, 2, 2), 0.5),
    "gt_heatmap": torch.tensor([[[[0.0, 0.5], [0.75, 0.0]]]]),
    "ind": torch.tensor([[0]]),
    "mask": torch.tensor([[0.0]]),
    "cat": torch.tensor([[0]]),
    "alpha": 2.0,
    "beta": 4.0,
}


@FOCAL.property(Category.ORACLE, strategy=heatmaps(), examples=(_NO_PEAK,), name="agrees_with_numpy")
def focal_agrees(target: Target, ex: dict[str, Any]) -> None:
    """Equals the float64 loop of the gather form."""
    want = _focal_scale(ex)
    ck.assert_close(_call_focal(target, ex), want, spec=FOCAL.id, key="reduction", dtype=ex["pred_prob"].dtype, scale=want)


@FOCAL.property(Category.EQUIVALENCE, strategy=heatmaps(exact_peaks=True), name="gather_form_equals_dense_form")
def focal_dense(target: Target, ex: dict[str, Any]) -> None:
    """When the slots with mask 1 list each pixel with y == 1 exactly once, the loss is the dense CornerNet loss."""
    want = npo.penalty_reduced_focal(_np(ex["pred_prob"]), _np(ex["gt_heatmap"]), ex["alpha"], ex["beta"])
    ck.assert_close(_call_focal(target, ex), want, spec=FOCAL.id, key="reduction", dtype=ex["pred_prob"].dtype, scale=want,
                    what="gather form vs dense form")


@st.composite
def _focal_reindexed(draw: st.DrawFn) -> dict[str, Any]:
    ex = draw(heatmaps())
    b, c, h, w = ex["gt_heatmap"].shape
    m = ex["ind"].shape[1]
    ex["ind2"] = torch.tensor(draw(st.lists(st.integers(0, h * w - 1), min_size=b * m, max_size=b * m))).reshape(b, m)
    ex["cat2"] = torch.tensor(draw(st.lists(st.integers(0, c - 1), min_size=b * m, max_size=b * m))).reshape(b, m)
    return ex


@FOCAL.property(Category.INVARIANCE, strategy=_focal_reindexed(), name="masked_slots_do_not_matter")
def focal_masked(target: Target, ex: dict[str, Any]) -> None:
    """Pointing the slots with mask 0 at other pixels and classes leaves the loss unchanged."""
    active = ex["mask"].to(torch.bool)
    ind = torch.where(active, ex["ind"], ex["ind2"])
    cat = torch.where(active, ex["cat"], ex["cat2"])
    base = _call_focal(target, ex)
    ck.assert_close(_call_focal(target, ex, ind=ind, cat=cat), ck.f64(base), spec=FOCAL.id, key="self",
                    dtype=ex["pred_prob"].dtype, what="loss with re-pointed padding slots")


@FOCAL.property(Category.REDUCTION, strategy=heatmaps(peaks=False), examples=(_NO_PEAK,), name="no_peak_gives_the_negative_sum")
def focal_no_peak(target: Target, ex: dict[str, Any]) -> None:
    """With no positive (mask all 0, no y == 1) the loss is the undivided negative sum: finite, not 0/0."""
    want = npo.penalty_reduced_focal(_np(ex["pred_prob"]), _np(ex["gt_heatmap"]), ex["alpha"], ex["beta"])
    out = _call_focal(target, ex)
    ck.assert_finite(out.detach(), what="loss without positives")
    ck.assert_close(out, want, spec=FOCAL.id, key="reduction", dtype=ex["pred_prob"].dtype, scale=want)


@FOCAL.property(Category.REDUCTION, strategy=heatmaps(peaks=True), name="normalised_by_the_number_of_peaks")
def focal_norm(target: Target, ex: dict[str, Any]) -> None:
    """Appending an image without objects whose every term is 0 (p = 0, y = 0, mask 0) leaves the loss unchanged,
    and so does repeating the batch: the normaliser is the number of positives, not the batch size or pixel count."""
    base = _call_focal(target, ex)
    empty = {k: torch.cat([ex[k], torch.zeros_like(ex[k][:1])]) for k in ("pred_prob", "gt_heatmap", "ind", "mask", "cat")}
    two = {k: torch.cat([ex[k], ex[k]]) for k in ("pred_prob", "gt_heatmap", "ind", "mask", "cat")}
    for what, over in (("with an empty image appended", empty), ("of the batch repeated twice", two)):
        ck.assert_close(_call_focal(target, ex, **over), ck.f64(base), spec=FOCAL.id, key="reduction",
                        dtype=ex["pred_prob"].dtype, scale=ck.f64(base), what=f"loss {what}")


@FOCAL.property(Category.INVARIANCE, strategy=heatmaps(), name="penalty_reduced_near_peaks")
def focal_penalty(target: Target, ex: dict[str, Any]) -> None:
    """Raising the target y at a non-peak pixel towards 1 never increases the loss ((1 - y)^beta shrinks)."""
    gt = ex["gt_heatmap"]
    raised = torch.where(gt < 1, (gt + 1) / 2, gt)  # y -> (1 + y) / 2: closer to 1, still below it
    a, b = ck.f64(_call_focal(target, ex)), ck.f64(_call_focal(target, ex, gt_heatmap=raised))
    tol = ck.tolerance(FOCAL.id, "reduction", gt.dtype)
    if b > a + tol.atol + tol.rtol * abs(a):
        raise AssertionError(f"loss rose from {a!r} to {b!r} when the non-peak targets moved towards 1")


@FOCAL.property(Category.GRADIENT, strategy=heatmaps(extreme=True), name="finite_under_the_seed_clamp")
def focal_finite(target: Target, ex: dict[str, Any]) -> None:
    """On p = clamp(sigmoid(x), 1e-4, 1 - 1e-4) for any logit (+-1e4 included) the loss and its gradient in x are finite."""
    x = torch.logit(ex["pred_prob"].double().clamp(1e-4, 1 - 1e-4)).to(ex["pred_prob"].dtype)
    x = (x * 1.5).detach().requires_grad_(True)  # push past the clamp
    out = _call_focal(target, ex, pred_prob=ref.clamped_sigmoid(x))
    ck.assert_finite(out.detach(), what="loss")
    if out.requires_grad:
        (g,) = torch.autograd.grad(out, x)
        ck.assert_finite(g, what="d loss / d logits")


@FOCAL.property(Category.GRADIENT, strategy=heatmaps(), examples_factor=0.3, name="gradcheck_float64")
def focal_gradcheck(target: Target, ex: dict[str, Any]) -> None:
    """Autograd's gradient in pred_prob matches finite differences in float64 (interior probabilities)."""
    p = ex["pred_prob"].double().clamp(0.01, 0.99).detach().requires_grad_(True)
    e = {k: (v.double() if isinstance(v, torch.Tensor) and v.is_floating_point() else v) for k, v in ex.items()}
    ck.assert_gradcheck(lambda t: _call_focal(target, e, pred_prob=t), p, spec=FOCAL.id)


@FOCAL.property(Category.ROBUSTNESS, strategy=heatmaps(), name="output_dtype_and_shape")
def focal_shape(target: Target, ex: dict[str, Any]) -> None:
    """A 0-d tensor of pred_prob's dtype."""
    ck.assert_shape_dtype(_call_focal(target, ex), shape=(), dtype=ex["pred_prob"].dtype)


@FOCAL.property(Category.ROBUSTNESS, strategy=heatmaps(), name="does_not_modify_inputs")
def focal_not_modified(target: Target, ex: dict[str, Any]) -> None:
    """No input changes value or version counter (no in-place clamp or sigmoid_)."""
    names = ("pred_prob", "gt_heatmap", "ind", "mask", "cat")
    check_not_modified(target, tuple(ex[k] for k in names), {"alpha": ex["alpha"], "beta": ex["beta"]}, names)


@FOCAL.property(Category.ROBUSTNESS, strategy=heatmaps(), name="deterministic")
def focal_deterministic(target: Target, ex: dict[str, Any]) -> None:
    """Two calls give identical losses."""
    check_deterministic(lambda: _call_focal(target, ex))


@FOCAL.property(Category.ROBUSTNESS, strategy=heatmaps(), name="rejects_out_of_range_indices")
def focal_rejects(target: Target, ex: dict[str, Any]) -> None:
    """An index >= H*W or a class >= C must raise, not wrap around or read another image."""
    _b, c, h, w = ex["gt_heatmap"].shape
    ck.assert_raises(lambda: _call_focal(target, ex, ind=torch.full_like(ex["ind"], h * w)), what="ind = H*W")
    ck.assert_raises(lambda: _call_focal(target, ex, cat=torch.full_like(ex["cat"], c)), what="cat = C")


@FOCAL.property(Category.ROBUSTNESS, strategy=heatmaps(), name="rejects_shape_mismatch")
def focal_rejects_shape(target: Target, ex: dict[str, Any]) -> None:
    """A (C, H, W) heatmap for a (B, C, H, W) prediction must raise, not broadcast one image's targets over the batch."""
    gt = ex["gt_heatmap"][0]
    ck.assert_raises(lambda: _call_focal(target, ex, gt_heatmap=gt), what=f"gt_heatmap {tuple(gt.shape)} for pred_prob "
                     f"{tuple(ex['pred_prob'].shape)}")


@FOCAL.property(Category.ORACLE, strategy=heatmaps(moderate=True), name="agrees_with_the_logits_form_where_the_clamp_is_inactive")
def focal_logits(target: Target, ex: dict[str, Any]) -> None:
    """For logits |x| <= 9 (clamp(sigmoid(x), 1e-4, 1 - 1e-4) inactive), f(clamped sigmoid(x)) equals the unclamped
    dense loss computed from the logits with log-sigmoid (float64 oracle), when the slots list exactly the peaks."""
    want = npo.penalty_reduced_focal_logits(_np(ex["logits"]), _np(ex["gt_heatmap"]), ex["alpha"], ex["beta"])
    ck.assert_close(_call_focal(target, ex), want, spec=FOCAL.id, key="reduction", dtype=ex["pred_prob"].dtype, scale=want,
                    what="loss on clamped_sigmoid(x) vs logits form")


register_device_properties(
    FOCAL,
    strategy=heatmaps(),
    call=lambda t, ex: _call_focal(t, ex),
    float_keys=("pred_prob", "gt_heatmap"),
    tensor_keys=("pred_prob", "gt_heatmap", "ind", "mask", "cat"),
    scale=lambda ex: 10.0 * max(1.0, float(ck.f64(ex["gt_heatmap"]).size)),
    low_precision=False,  # 1 - 1e-4 rounds to 1 in float16/bfloat16: log(1 - p) is -inf by the formula
)


# ---------------------------------------------------------------------------
# gathered heads: reg_weighted_l1, depth_l1, weighted_bce
# ---------------------------------------------------------------------------


@st.composite
def gathered(draw: st.DrawFn, *, d_max: int = 3, per_element: bool | None = None, kind: str = "reg") -> dict[str, Any]:
    dtype = draw(hh.float_dtypes())
    b, d, h, w, m = (draw(st.integers(1, 2)), draw(st.integers(1, d_max)), draw(st.integers(1, 4)), draw(st.integers(1, 4)),
                     draw(st.integers(0, 4)))
    el = st.integers(-32, 32).map(lambda v: v / 8)
    out = _f(dtype, draw(st.lists(el, min_size=b * d * h * w, max_size=b * d * h * w))).reshape(b, d, h, w)
    ind = torch.tensor(draw(st.lists(st.integers(0, h * w - 1), min_size=b * m, max_size=b * m)), dtype=torch.int64).reshape(b, m)
    pe = draw(st.booleans()) if per_element is None else per_element
    mshape = (b, m, d) if pe else (b, m)
    mn = int(np.prod(mshape))
    mask = torch.tensor(draw(st.lists(st.sampled_from([0.0, 1.0, 1.0, 1.0, 0.5]), min_size=mn, max_size=mn))).reshape(mshape)
    mask = mask.to(dtype) if draw(st.booleans()) else (mask > 0)
    if kind == "bce":
        tgt = _f(dtype, draw(st.lists(st.sampled_from([0.0, 1.0, 0.25, 0.5]), min_size=b * m * d, max_size=b * m * d)))
    else:
        tgt = _f(dtype, draw(st.lists(el, min_size=b * m * d, max_size=b * m * d)))
    return {"output": out, "mask": mask, "ind": ind, "target": tgt.reshape(b, m, d)}


def _call_reg(fn: Target, ex: dict[str, Any], **over: Any) -> torch.Tensor:
    e = {**ex, **over}
    return fn.tensor(e["output"], e["mask"], e["ind"], e["target"])


def _gather_np(out: np.ndarray, ind: np.ndarray) -> np.ndarray:
    b, d, h, w = out.shape
    flat = out.reshape(b, d, h * w)
    return np.stack([flat[i][:, ind[i]].T for i in range(b)]) if ind.size else np.zeros((b, ind.shape[1], d))


def _register_gathered(spec: Spec, oracle: Any, kind: str) -> None:
    @spec.property(Category.ORACLE, strategy=gathered(kind=kind), name="agrees_with_numpy")
    def agrees(target: Target, ex: dict[str, Any]) -> None:
        """Equals the float64 loop over (image, slot, element)."""
        want = oracle(_np(ex["output"]), _np(ex["mask"]), _np(ex["ind"]).astype(np.int64), _np(ex["target"]))
        ck.assert_close(_call_reg(target, ex), want, spec=spec.id, key="reduction", dtype=ex["output"].dtype, scale=abs(want) + 4)

    @st.composite
    def perturbed(draw: st.DrawFn) -> dict[str, Any]:
        ex = draw(gathered(kind=kind))
        ex["noise"] = draw(st.sampled_from([3.0, -5.0, 1e3]))
        return ex

    @spec.property(Category.INVARIANCE, strategy=perturbed(), name="masked_entries_do_not_matter")
    def masked(target: Target, ex: dict[str, Any]) -> None:
        """Changing the targets of masked-out entries, and the output at pixels no active slot reads, leaves the loss unchanged."""
        b, d, h, w = ex["output"].shape
        m = ex["mask"].to(ex["output"].dtype)
        m3 = m if m.dim() == 3 else m.unsqueeze(2).expand(*m.shape, d)
        tgt = torch.where(m3 > 0, ex["target"], ex["target"] + ex["noise"])
        read = torch.zeros(b, d, h * w, dtype=torch.bool)
        for i in range(b):
            for j in range(ex["ind"].shape[1]):
                for k in range(d):
                    if m3[i, j, k] > 0:
                        read[i, k, int(ex["ind"][i, j])] = True
        out = torch.where(read.reshape(b, d, h, w), ex["output"], ex["output"] + ex["noise"])
        base = _call_reg(target, ex)
        ck.assert_close(_call_reg(target, ex, output=out, target=tgt), ck.f64(base), spec=spec.id, key="self",
                        dtype=ex["output"].dtype, scale=ck.f64(base) + 4, what="loss with masked entries changed")

    @spec.property(Category.EQUIVALENCE, strategy=gathered(per_element=False, kind=kind), name="object_mask_is_expanded")
    def expanded(target: Target, ex: dict[str, Any]) -> None:
        """A (B, M) mask gives the loss of the same mask repeated over the D channels (normaliser D per object)."""
        d = ex["output"].shape[1]
        m3 = ex["mask"].unsqueeze(2).expand(*ex["mask"].shape, d).contiguous()
        ck.assert_close(_call_reg(target, ex), ck.f64(_call_reg(target, ex, mask=m3)), spec=spec.id, key="reduction",
                        dtype=ex["output"].dtype, scale=4.0, what="(B, M) mask vs (B, M, D)")

    @spec.property(Category.REDUCTION, strategy=gathered(kind=kind), name="normalised_by_the_mask_sum")
    def normalised(target: Target, ex: dict[str, Any]) -> None:
        """The batch repeated twice has the same loss up to the 1e-4 in the normaliser, and an appended image with every
        slot masked out changes nothing: the sum is divided by sum(mask) + 1e-4, not by the batch size or slot count."""
        base = ck.f64(_call_reg(target, ex))
        two = {k: torch.cat([ex[k], ex[k]]) for k in ("output", "mask", "ind", "target")}
        msum = float(ck.f64(ex["mask"]).sum())
        if ex["mask"].dim() == 2:
            msum *= ex["output"].shape[1]
        want = base * (msum + 1e-4) * 2 / (2 * msum + 1e-4)
        ck.assert_close(_call_reg(target, ex, **two), want, spec=spec.id, key="reduction", dtype=ex["output"].dtype,
                        scale=abs(want) + 4, what="loss of the batch repeated twice")
        # an extra image whose slots are all masked out changes nothing
        empty = {k: torch.cat([ex[k], torch.zeros_like(ex[k][:1])]) for k in ("output", "mask", "ind", "target")}
        ck.assert_close(_call_reg(target, ex, **empty), base, spec=spec.id, key="reduction", dtype=ex["output"].dtype,
                        scale=abs(base) + 4, what="loss with an image without objects appended")

    if kind == "reg":
        @spec.property(Category.EQUIVALENCE, strategy=gathered(kind=kind), name="zero_for_perfect_predictions")
        def perfect(target: Target, ex: dict[str, Any]) -> None:
            """With every active target equal to the output it reads, the loss is 0."""
            g = torch.from_numpy(_gather_np(_np(ex["output"]), _np(ex["ind"]).astype(np.int64))).to(ex["output"].dtype)
            ck.assert_close(_call_reg(target, ex, target=g.reshape(ex["target"].shape)), 0.0, spec=spec.id, key="self",
                            dtype=ex["output"].dtype, what="loss of perfect predictions")
    else:
        @spec.property(Category.GRADIENT, strategy=gathered(kind=kind), name="finite_for_extreme_logits")
        def extreme(target: Target, ex: dict[str, Any]) -> None:
            """Logits of +-1e4 give a finite loss and finite gradients (BCE on logits, not log(sigmoid))."""
            out = (torch.sign(ex["output"]) * 1e4 + ex["output"]).detach().requires_grad_(True)
            loss = _call_reg(target, ex, output=out)
            ck.assert_finite(loss.detach(), what="loss")
            if loss.requires_grad:
                (g,) = torch.autograd.grad(loss, out)
                ck.assert_finite(g, what="d loss / d output")

    @spec.property(Category.ROBUSTNESS, strategy=gathered(kind=kind), name="output_dtype_and_shape")
    def shape(target: Target, ex: dict[str, Any]) -> None:
        """A 0-d tensor of the output's dtype."""
        ck.assert_shape_dtype(_call_reg(target, ex), shape=(), dtype=ex["output"].dtype)

    @spec.property(Category.ROBUSTNESS, strategy=gathered(kind=kind), name="does_not_modify_inputs")
    def not_modified(target: Target, ex: dict[str, Any]) -> None:
        """No input changes value or version counter."""
        names = ("output", "mask", "ind", "target")
        check_not_modified(target, tuple(ex[k] for k in names), {}, names)

    @spec.property(Category.ROBUSTNESS, strategy=gathered(kind=kind), name="rejects_out_of_range_indices")
    def rejects(target: Target, ex: dict[str, Any]) -> None:
        """An index >= H*W must raise, not wrap around."""
        if ex["ind"].numel() == 0:
            ex = {**ex, "ind": torch.zeros(ex["ind"].shape[0], 1, dtype=torch.int64),
                  "mask": torch.ones(ex["ind"].shape[0], 1, *ex["mask"].shape[2:], dtype=ex["mask"].dtype),
                  "target": torch.zeros(ex["ind"].shape[0], 1, ex["target"].shape[2], dtype=ex["target"].dtype)}
        h, w = ex["output"].shape[2:]
        ck.assert_raises(lambda: _call_reg(target, ex, ind=torch.full_like(ex["ind"], h * w)), what="ind = H*W")

    @spec.property(Category.ROBUSTNESS, strategy=gathered(kind=kind), name="deterministic")
    def deterministic(target: Target, ex: dict[str, Any]) -> None:
        """Two calls give identical losses."""
        check_deterministic(lambda: _call_reg(target, ex))

    @spec.property(Category.ROBUSTNESS, strategy=gathered(kind=kind), name="rejects_shape_mismatch")
    def rejects_shape(target: Target, ex: dict[str, Any]) -> None:
        """A target that is not (B, M, D) (here one value meant for every slot) must raise, not broadcast."""
        t = torch.zeros(1, dtype=ex["target"].dtype)
        ck.assert_raises(lambda: _call_reg(target, ex, target=t), what=f"target (1,) for output {tuple(ex['output'].shape)}")

    register_device_properties(
        spec,
        strategy=gathered(kind=kind),
        call=lambda t, ex: _call_reg(t, ex),
        float_keys=("output", "target"),
        tensor_keys=("output", "mask", "ind", "target"),
        scale=lambda ex: 8.0,
    )


_register_gathered(REG, npo.reg_weighted_l1, "reg")
_register_gathered(BCE, npo.weighted_bce, "bce")


@st.composite
def depth_inputs(draw: st.DrawFn) -> dict[str, Any]:
    dtype = draw(hh.float_dtypes())
    b, c, h, w, m = draw(st.integers(1, 2)), draw(st.sampled_from([1, 1, 3])), draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(0, 4))
    out = _f(dtype, draw(st.lists(st.integers(-40, 40).map(lambda v: v / 8), min_size=b * c * h * w, max_size=b * c * h * w)))
    return {
        "output": out.reshape(b, c, h, w),
        "target": _f(dtype, draw(st.lists(st.integers(1, 400).map(lambda v: v / 8), min_size=b * m, max_size=b * m))).reshape(b, m),
        "ind": torch.tensor(draw(st.lists(st.integers(0, h * w - 1), min_size=b * m, max_size=b * m)), dtype=torch.int64).reshape(b, m),
        "mask": _f(dtype, draw(st.lists(st.sampled_from([0.0, 1.0, 1.0]), min_size=b * m, max_size=b * m))).reshape(b, m),
        "cat": torch.tensor(draw(st.lists(st.integers(0, c - 1), min_size=b * m, max_size=b * m)), dtype=torch.int64).reshape(b, m),
    }


def _call_depth(fn: Target, ex: dict[str, Any], **over: Any) -> torch.Tensor:
    e = {**ex, **over}
    return fn.tensor(e["output"], e["target"], e["ind"], e["mask"], e["cat"])


def _depth_np(ex: dict[str, Any]) -> float:
    return npo.depth_l1(_np(ex["output"]), _np(ex["target"]), _np(ex["ind"]).astype(np.int64), _np(ex["mask"]),
                        _np(ex["cat"]).astype(np.int64))


@DEPTH.property(Category.ORACLE, strategy=depth_inputs(), name="agrees_with_numpy")
def depth_agrees(target: Target, ex: dict[str, Any]) -> None:
    """Equals the float64 loop with the transform 1 / (sigmoid(x) + 1e-6) - 1 applied to the gathered logits."""
    want = _depth_np(ex)
    ck.assert_close(_call_depth(target, ex), want, spec=DEPTH.id, key="reduction", dtype=ex["output"].dtype, scale=abs(want) + 50)


@DEPTH.property(Category.EQUIVALENCE, strategy=depth_inputs(), name="zero_for_perfect_predictions")
def depth_perfect(target: Target, ex: dict[str, Any]) -> None:
    """With each target set to the transformed depth its slot reads, the loss is 0 (the transform is the seed's)."""
    b, c, _h, _w = ex["output"].shape
    dep = npo.depth_transform(_np(ex["output"]))
    ind, cat = _np(ex["ind"]).astype(np.int64), _np(ex["cat"]).astype(np.int64)
    tgt = np.zeros(ex["target"].shape)
    for i in range(b):
        for j in range(ind.shape[1]):
            tgt[i, j] = dep[i, cat[i, j] if c > 1 else 0].flat[ind[i, j]]
    t = torch.from_numpy(tgt).to(ex["output"].dtype)
    ck.assert_close(_call_depth(target, ex, target=t), 0.0, spec=DEPTH.id, key="self", dtype=ex["output"].dtype,
                    scale=float(np.abs(tgt).max(initial=1.0)), what="loss of perfect depths")


@DEPTH.property(Category.INVARIANCE, strategy=depth_inputs(), name="other_classes_and_masked_slots_do_not_matter")
def depth_masked(target: Target, ex: dict[str, Any]) -> None:
    """Changing the targets of masked slots, and (per-class heads) every channel other than the slot's class at its
    pixel, leaves the loss unchanged."""
    b, c, h, w = ex["output"].shape
    keep = torch.zeros(b, c, h * w, dtype=torch.bool)
    for i in range(b):
        for j in range(ex["ind"].shape[1]):
            if ex["mask"][i, j] > 0:
                keep[i, int(ex["cat"][i, j]) if c > 1 else 0, int(ex["ind"][i, j])] = True
    out = torch.where(keep.reshape(b, c, h, w), ex["output"], ex["output"] - 3.0)
    tgt = torch.where(ex["mask"] > 0, ex["target"], ex["target"] + 7.0)
    base = _call_depth(target, ex)
    ck.assert_close(_call_depth(target, ex, output=out, target=tgt), ck.f64(base), spec=DEPTH.id, key="self",
                    dtype=ex["output"].dtype, scale=ck.f64(base) + 50, what="loss with other entries changed")


@DEPTH.property(Category.GRADIENT, strategy=depth_inputs(), name="finite_gradients")
def depth_finite(target: Target, ex: dict[str, Any]) -> None:
    """Finite loss and gradient for logits up to +-1e4 (the transform's eps bounds the depth)."""
    x = (ex["output"] * 1e3).detach().requires_grad_(True)
    loss = _call_depth(target, ex, output=x)
    ck.assert_finite(loss.detach(), what="loss")
    if loss.requires_grad:
        (g,) = torch.autograd.grad(loss, x)
        ck.assert_finite(g, what="d loss / d output")


@DEPTH.property(Category.ROBUSTNESS, strategy=depth_inputs(), name="output_dtype_and_shape")
def depth_shape(target: Target, ex: dict[str, Any]) -> None:
    """A 0-d tensor of the output's dtype."""
    ck.assert_shape_dtype(_call_depth(target, ex), shape=(), dtype=ex["output"].dtype)


@DEPTH.property(Category.ROBUSTNESS, strategy=depth_inputs(), name="does_not_modify_inputs")
def depth_not_modified(target: Target, ex: dict[str, Any]) -> None:
    """No input changes (no in-place sigmoid or transform of the caller's map)."""
    names = ("output", "target", "ind", "mask", "cat")
    check_not_modified(target, tuple(ex[k] for k in names), {}, names)


@DEPTH.property(Category.REDUCTION, strategy=depth_inputs(), name="normalised_by_the_mask_sum")
def depth_normalised(target: Target, ex: dict[str, Any]) -> None:
    """The batch repeated twice has the same loss up to the 1e-4 in the normaliser (sum / (sum(mask) + 1e-4)), and an
    appended image with every slot masked out changes nothing."""
    keys = ("output", "target", "ind", "mask", "cat")
    base = ck.f64(_call_depth(target, ex))
    msum = float(ck.f64(ex["mask"]).sum())
    want = base * (msum + 1e-4) * 2 / (2 * msum + 1e-4)
    two = {k: torch.cat([ex[k], ex[k]]) for k in keys}
    ck.assert_close(_call_depth(target, ex, **two), want, spec=DEPTH.id, key="reduction", dtype=ex["output"].dtype,
                    scale=abs(want) + 50, what="loss of the batch repeated twice")
    empty = {k: torch.cat([ex[k], torch.zeros_like(ex[k][:1])]) for k in keys}
    ck.assert_close(_call_depth(target, ex, **empty), base, spec=DEPTH.id, key="reduction", dtype=ex["output"].dtype,
                    scale=abs(base) + 50, what="loss with an image without objects appended")


@DEPTH.property(Category.GRADIENT, strategy=depth_inputs(), examples_factor=0.2, name="gradcheck_float64")
def depth_gradcheck(target: Target, ex: dict[str, Any]) -> None:
    """Autograd's gradient in the raw depth logits matches finite differences in float64."""
    x = ex["output"].double().detach().requires_grad_(True)
    e = {**ex, "target": ex["target"].double() + 1 / 16, "mask": ex["mask"].double()}  # off the L1 kink
    ck.assert_gradcheck(lambda t: _call_depth(target, e, output=t), x, spec=DEPTH.id)


@DEPTH.property(Category.ROBUSTNESS, strategy=depth_inputs(), name="deterministic")
def depth_deterministic(target: Target, ex: dict[str, Any]) -> None:
    """Two calls give identical losses."""
    check_deterministic(lambda: _call_depth(target, ex))


@DEPTH.property(Category.ROBUSTNESS, strategy=depth_inputs(), name="rejects_shape_mismatch")
def depth_rejects_shape(target: Target, ex: dict[str, Any]) -> None:
    """A target that is not (B, M) or (B, M, 1) (here one depth meant for every slot) must raise, not broadcast."""
    t = torch.full((1,), 5.0, dtype=ex["target"].dtype)
    ck.assert_raises(lambda: _call_depth(target, ex, target=t), what=f"target (1,) with ind {tuple(ex['ind'].shape)}")


register_device_properties(
    DEPTH,
    strategy=depth_inputs(),
    call=lambda t, ex: _call_depth(t, ex),
    float_keys=("output", "target"),
    tensor_keys=("output", "target", "ind", "mask", "cat"),
    scale=lambda ex: 100.0,
    low_precision=False,  # the transform's 1e-6 is below float16's resolution near 1
)


# ---------------------------------------------------------------------------
# bin_rot
# ---------------------------------------------------------------------------


@st.composite
def rot_inputs(draw: st.DrawFn) -> dict[str, Any]:
    dtype = draw(hh.float_dtypes())
    b, h, w, m = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    out = _f(dtype, draw(st.lists(st.integers(-24, 24).map(lambda v: v / 8), min_size=b * 8 * h * w, max_size=b * 8 * h * w)))
    angles = np.array(draw(st.lists(st.integers(-180, 179).map(lambda v: v * math.pi / 180), min_size=b * m, max_size=b * m)))
    rotbin, rotres = npo.encode_alpha_to_bins(angles.reshape(b, m))
    mask = draw(st.lists(st.sampled_from([0.0, 1.0, 1.0, 1.0]), min_size=b * m, max_size=b * m))
    return {
        "output": out.reshape(b, 8, h, w),
        "mask": _f(dtype, mask).reshape(b, m),
        "ind": torch.tensor(draw(st.lists(st.integers(0, h * w - 1), min_size=b * m, max_size=b * m)), dtype=torch.int64).reshape(b, m),
        "rotbin": torch.from_numpy(np.asarray(rotbin, dtype=np.int64)).reshape(b, m, 2),
        "rotres": _f(dtype, rotres).reshape(b, m, 2),
    }


_ROT_KEYS = ("output", "mask", "ind", "rotbin", "rotres")


def _call_rot(target: Target, ex: dict[str, Any], **over: Any) -> torch.Tensor:
    e = {**ex, **over}
    return target.tensor(*(e[k] for k in _ROT_KEYS))


def _rot_np(ex: dict[str, Any]) -> float:
    return npo.bin_rot(_np(ex["output"]), _np(ex["mask"]), _np(ex["ind"]).astype(np.int64), _np(ex["rotbin"]).astype(np.int64),
                       _np(ex["rotres"]))


@ROT.property(Category.ORACLE, strategy=rot_inputs(), name="agrees_with_numpy")
def rot_agrees(target: Target, ex: dict[str, Any]) -> None:
    """Equals the float64 loop: masked mean bin cross-entropy plus (sin, cos) smooth L1 over each bin's active slots."""
    want = _rot_np(ex)
    ck.assert_close(_call_rot(target, ex), want, spec=ROT.id, key="reduction", dtype=ex["output"].dtype, scale=abs(want) + 4)


@ROT.property(Category.INVARIANCE, strategy=rot_inputs(), name="masked_slots_do_not_matter")
def rot_masked(target: Target, ex: dict[str, Any]) -> None:
    """Giving masked slots other bins, residuals and predictions (another pixel) leaves the loss unchanged."""
    off = ex["mask"] <= 0
    rotbin = torch.where(off.unsqueeze(-1), 1 - ex["rotbin"], ex["rotbin"])
    rotres = torch.where(off.unsqueeze(-1), ex["rotres"] + 1.0, ex["rotres"])
    h, w = ex["output"].shape[2:]
    ind = torch.where(off, (ex["ind"] + 1) % (h * w), ex["ind"])
    base = _call_rot(target, ex)
    ck.assert_close(_call_rot(target, ex, rotbin=rotbin, rotres=rotres, ind=ind), ck.f64(base), spec=ROT.id, key="self",
                    dtype=ex["output"].dtype, scale=ck.f64(base) + 4, what="loss with masked slots changed")


@ROT.property(Category.INVARIANCE, strategy=rot_inputs(), name="residual_only_on_active_bins")
def rot_inactive(target: Target, ex: dict[str, Any]) -> None:
    """Changing a slot's residual target in a bin it is not in leaves the loss unchanged."""
    rotres = torch.where(ex["rotbin"] == 0, ex["rotres"] + 2.0, ex["rotres"])
    base = _call_rot(target, ex)
    ck.assert_close(_call_rot(target, ex, rotres=rotres), ck.f64(base), spec=ROT.id, key="self", dtype=ex["output"].dtype,
                    scale=ck.f64(base) + 4, what="loss with inactive residuals changed")


@ROT.property(Category.INVARIANCE, strategy=rot_inputs(), name="residual_angle_periodic")
def rot_periodic(target: Target, ex: dict[str, Any]) -> None:
    """Adding 2 pi to every residual angle leaves the loss unchanged (only sin and cos are learned)."""
    base = _call_rot(target, ex)
    ck.assert_close(_call_rot(target, ex, rotres=ex["rotres"] + 2 * math.pi), ck.f64(base), spec=ROT.id, key="invariance",
                    dtype=ex["output"].dtype, scale=ck.f64(base) + 8, what="loss with residuals + 2 pi")


@ROT.property(Category.EQUIVALENCE, strategy=rot_inputs(), name="exact_residuals_leave_bin_classification_only")
def rot_exact(target: Target, ex: dict[str, Any]) -> None:
    """With the predicted (sin, cos) of each active slot equal to those of its residuals, the loss equals the bin
    classification term alone (the residual channels are read at the right offsets, smooth L1 is 0 at 0)."""
    out = ck.f64(ex["output"]).copy()
    ind, mask = _np(ex["ind"]).astype(np.int64), _np(ex["mask"])
    res, bins = _np(ex["rotres"]), _np(ex["rotbin"])
    b, _, _h, w = out.shape
    used: dict[tuple[int, int], int] = {}
    for i in range(b):
        for j in range(ind.shape[1]):
            if mask[i, j] > 0:
                if (i, int(ind[i, j])) in used:  # two active slots on one pixel cannot both be exact
                    return
                used[(i, int(ind[i, j]))] = j
                y, x = divmod(int(ind[i, j]), w)
                for k, base in ((0, 2), (1, 6)):
                    out[i, base, y, x], out[i, base + 1, y, x] = math.sin(res[i, j, k]), math.cos(res[i, j, k])
    o = torch.from_numpy(out).to(ex["output"].dtype)
    want = npo.bin_rot(out, mask, ind, bins.astype(np.int64), res)
    ck.assert_close(_call_rot(target, ex, output=o), want, spec=ROT.id, key="reduction", dtype=o.dtype, scale=abs(want) + 4,
                    what="loss with exact residuals")


@ROT.property(Category.ROBUSTNESS, strategy=rot_inputs(), name="output_dtype_and_shape")
def rot_shape(target: Target, ex: dict[str, Any]) -> None:
    """A 0-d tensor of the output's dtype."""
    ck.assert_shape_dtype(_call_rot(target, ex), shape=(), dtype=ex["output"].dtype)


@ROT.property(Category.ROBUSTNESS, strategy=rot_inputs(), name="does_not_modify_inputs")
def rot_not_modified(target: Target, ex: dict[str, Any]) -> None:
    """No input changes value or version counter."""
    check_not_modified(target, tuple(ex[k] for k in _ROT_KEYS), {}, _ROT_KEYS)


@ROT.property(Category.GRADIENT, strategy=rot_inputs(), examples_factor=0.2, name="gradcheck_float64")
def rot_gradcheck(target: Target, ex: dict[str, Any]) -> None:
    """Autograd's gradient in all eight channels matches finite differences in float64 (bin logits and residuals)."""
    # outputs k/8 + 1/64: the (sin, cos) differences stay off smooth L1's knot at |d| = 1 (it is C1, not C2, there)
    x = (ex["output"].double() + 1 / 64).detach().requires_grad_(True)
    e = {**ex, "mask": ex["mask"].double(), "rotres": ex["rotres"].double()}
    ck.assert_gradcheck(lambda t: _call_rot(target, e, output=t), x, spec=ROT.id)


@ROT.property(Category.ROBUSTNESS, strategy=rot_inputs(), name="deterministic")
def rot_deterministic(target: Target, ex: dict[str, Any]) -> None:
    """Two calls give identical losses."""
    check_deterministic(lambda: _call_rot(target, ex))


@ROT.property(Category.ROBUSTNESS, strategy=rot_inputs(), name="rejects_shape_mismatch")
def rot_rejects_shape(target: Target, ex: dict[str, Any]) -> None:
    """rotres of shape (B, M, 1) (one residual for both bins) must raise, not broadcast over the two bins."""
    r = ex["rotres"][..., :1]
    ck.assert_raises(lambda: _call_rot(target, ex, rotres=r), what=f"rotres {tuple(r.shape)} with rotbin {tuple(ex['rotbin'].shape)}")


register_device_properties(
    ROT,
    strategy=rot_inputs(),
    call=lambda t, ex: _call_rot(t, ex),
    float_keys=("output", "rotres"),
    tensor_keys=_ROT_KEYS,
    scale=lambda ex: 8.0,
)


# ---------------------------------------------------------------------------
# generic_loss
# ---------------------------------------------------------------------------


@st.composite
def generic_inputs(draw: st.DrawFn, *, extreme: bool = False) -> dict[str, Any]:
    dtype = draw(hh.float_dtypes())
    b, c, h, w, m = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(2, 3)), draw(st.integers(2, 3)), draw(st.integers(1, 3))
    heads = draw(st.lists(st.sampled_from(["wh", "reg", "dep", "rot", "nuscenes_att"]), unique=True, max_size=4))
    heads = ["hm", *heads]
    n_stacks = draw(st.integers(1, 2))
    # one peak per active slot
    gt = torch.zeros(b, c, h, w, dtype=dtype)
    ind = torch.tensor(draw(st.lists(st.integers(0, h * w - 1), min_size=b * m, max_size=b * m, unique=True)) if b * m <= h * w
                       else [0] * (b * m), dtype=torch.int64).reshape(b, m)
    cat = torch.tensor(draw(st.lists(st.integers(0, c - 1), min_size=b * m, max_size=b * m)), dtype=torch.int64).reshape(b, m)
    mask = torch.tensor(draw(st.lists(st.sampled_from([0.0, 1.0, 1.0]), min_size=b * m, max_size=b * m)), dtype=dtype).reshape(b, m)
    for i in range(b):
        for j in range(m):
            if mask[i, j] > 0 and gt[i, int(cat[i, j])].flatten()[int(ind[i, j])] == 1:
                mask[i, j] = 0.0  # a pixel listed twice: keep one
            elif mask[i, j] > 0:
                gt[i, int(cat[i, j])].view(-1)[int(ind[i, j])] = 1.0
    el = st.integers(-24, 24).map(lambda v: v / 8)
    big = st.sampled_from([-1e4, -40.0, 40.0, 1e4]) if extreme else el

    def tensor(shape: tuple[int, ...], elements: Any = el) -> torch.Tensor:
        n = int(np.prod(shape))
        return _f(dtype, draw(st.lists(elements, min_size=n, max_size=n))).reshape(shape)

    dims = {"hm": c, "wh": 2, "reg": 2, "dep": 1, "rot": 8, "nuscenes_att": 3}
    outputs = [{hd: tensor((b, dims[hd], h, w), big if hd == "hm" else el) for hd in heads} for _ in range(n_stacks)]
    angles = np.array(draw(st.lists(st.integers(-180, 179).map(lambda v: v * math.pi / 180), min_size=b * m, max_size=b * m)))
    rotbin, rotres = npo.encode_alpha_to_bins(angles.reshape(b, m))
    batch = {
        "hm": gt, "ind": ind, "mask": mask, "cat": cat,
        "wh": tensor((b, m, 2)), "wh_mask": mask.unsqueeze(2).expand(b, m, 2).contiguous(),
        "reg": tensor((b, m, 2)), "reg_mask": mask.unsqueeze(2).expand(b, m, 2).contiguous(),
        "dep": tensor((b, m, 1), st.integers(1, 200).map(lambda v: v / 8)), "dep_mask": mask.unsqueeze(2).contiguous(),
        "rotbin": torch.from_numpy(np.asarray(rotbin, dtype=np.int64)), "rotres": _f(dtype, rotres), "rot_mask": mask.clone(),
        "nuscenes_att": tensor((b, m, 3), st.sampled_from([0.0, 1.0])), "nuscenes_att_mask": mask.unsqueeze(2).expand(b, m, 3).contiguous(),
    }
    weights = {hd: draw(st.sampled_from([1.0, 1.0, 0.1, 2.0, 0.0])) for hd in heads}
    return {"outputs": outputs, "batch": batch, "weights": weights}


def _generic_fixed() -> dict[str, Any]:
    """One image, one object at pixel 0 of a 2 x 2 map, heads hm (weight 1) and wh (weight 0)."""
    gt = torch.zeros(1, 1, 2, 2)
    gt[0, 0, 0, 0] = 1.0
    mask = torch.ones(1, 1)
    rotbin, rotres = npo.encode_alpha_to_bins(np.array([[0.5]]))
    batch = {
        "hm": gt, "ind": torch.zeros(1, 1, dtype=torch.int64), "mask": mask, "cat": torch.zeros(1, 1, dtype=torch.int64),
        "wh": torch.full((1, 1, 2), 2.0), "wh_mask": torch.ones(1, 1, 2),
        "reg": torch.full((1, 1, 2), 0.5), "reg_mask": torch.ones(1, 1, 2),
        "dep": torch.full((1, 1, 1), 10.0), "dep_mask": torch.ones(1, 1, 1),
        "rotbin": torch.from_numpy(np.asarray(rotbin, dtype=np.int64)), "rotres": _f(torch.float32, rotres), "rot_mask": mask.clone(),
        "nuscenes_att": torch.zeros(1, 1, 3), "nuscenes_att_mask": torch.ones(1, 1, 3),
    }
    outputs = [{"hm": torch.tensor([[[[1.0, -2.0], [-3.0, -1.0]]]]), "wh": torch.full((1, 2, 2, 2), 1.5)}]
    return {"outputs": outputs, "batch": batch, "weights": {"hm": 1.0, "wh": 0.0}}


def _call_generic(target: Target, ex: dict[str, Any], **over: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    e = {**ex, **over}
    res = target(e["outputs"], e["batch"], weights=e["weights"])
    if not (isinstance(res, tuple) and len(res) == 2 and isinstance(res[0], torch.Tensor) and isinstance(res[1], dict)):
        raise AssertionError(f"the target returned {type(res).__name__}, but should return (total tensor, dict of head losses)")
    return res


def _np_tree(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return ck.f64(x) if x.is_floating_point() else x.numpy()
    if isinstance(x, dict):
        return {k: _np_tree(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_np_tree(v) for v in x]
    return x


def _generic_np(ex: dict[str, Any]) -> tuple[float, dict[str, float]]:
    return npo.generic_loss(_np_tree(ex["outputs"]), _np_tree(ex["batch"]), ex["weights"])


@GENERIC.property(Category.ORACLE, strategy=generic_inputs(), examples_factor=0.6, name="agrees_with_numpy")
def generic_agrees(target: Target, ex: dict[str, Any]) -> None:
    """Total and each head's loss equal the composition of the float64 head oracles (clamped sigmoid, depth transform,
    stack mean, weights)."""
    total, per = _call_generic(target, ex)
    want_total, want_per = _generic_np(ex)
    dt = ex["outputs"][0]["hm"].dtype
    if sorted(per) != sorted(want_per):
        raise AssertionError(f"per-head losses for {sorted(per)}, but should be for {sorted(want_per)} (absent and weight-0 heads skipped)")
    for h, v in want_per.items():
        ck.assert_close(per[h], v, spec=GENERIC.id, key="reduction", dtype=dt, scale=abs(v) + 50, what=f"loss[{h!r}]")
    ck.assert_close(total, want_total, spec=GENERIC.id, key="reduction", dtype=dt, scale=abs(want_total) + 50, what="total")


@GENERIC.property(Category.REDUCTION, strategy=generic_inputs(), examples_factor=0.5, name="total_is_the_weighted_sum")
def generic_total(target: Target, ex: dict[str, Any]) -> None:
    """total == sum_h weights[h] * loss[h] over the returned heads."""
    total, per = _call_generic(target, ex)
    want = sum(ex["weights"][h] * float(ck.f64(v)) for h, v in per.items())
    ck.assert_close(total, want, spec=GENERIC.id, key="reduction", dtype=total.dtype, scale=abs(want) + 50, what="total")


@GENERIC.property(Category.REDUCTION, strategy=generic_inputs(), examples_factor=0.5, name="stacks_are_averaged")
def generic_stacks(target: Target, ex: dict[str, Any]) -> None:
    """Repeating the stacks (S -> 2S identical stacks) leaves every loss unchanged: stacks are averaged, not summed."""
    total, per = _call_generic(target, ex)
    outs = [dict(o) for o in ex["outputs"]] + [dict(o) for o in ex["outputs"]]
    total2, per2 = _call_generic(target, ex, outputs=outs)
    ck.assert_close(total2, ck.f64(total), spec=GENERIC.id, key="reduction", dtype=total.dtype, scale=abs(float(ck.f64(total))) + 50,
                    what="total with the stacks repeated")
    if sorted(per2) != sorted(per):
        raise AssertionError(f"head losses for {sorted(per2)} with the stacks repeated, but {sorted(per)} without")
    for h, v in per.items():
        ck.assert_close(per2[h], ck.f64(v), spec=GENERIC.id, key="reduction", dtype=total.dtype, scale=abs(float(ck.f64(v))) + 50,
                        what=f"loss[{h!r}] with the stacks repeated")


@GENERIC.property(Category.REDUCTION, strategy=generic_inputs(), examples=(_generic_fixed(),), examples_factor=0.5,
                  name="weight_zero_and_absent_heads_are_skipped")
def generic_skip(target: Target, ex: dict[str, Any]) -> None:
    """A head with weight 0 is not computed (its output may be NaN) and heads absent from the outputs are not required:
    the total stays finite and neither appears among the head losses."""
    outs = [dict(o) for o in ex["outputs"]]
    weights = dict(ex["weights"])
    zero = [h for h, wv in weights.items() if wv == 0.0 and h != "hm"]
    for h in zero:
        for o in outs:
            o[h] = torch.full_like(o[h], float("nan"))
    total, per = _call_generic(target, ex, outputs=outs)
    ck.assert_finite(total.detach(), what="total with NaN outputs in weight-0 heads")
    extra = [h for h in per if weights.get(h, 0.0) == 0.0]
    if extra:
        raise AssertionError(f"heads {extra} have weight 0 (or are absent) but appear among the head losses")


@GENERIC.property(Category.GRADIENT, strategy=generic_inputs(extreme=True), examples_factor=0.5, name="finite_for_extreme_heatmap_logits")
def generic_extreme(target: Target, ex: dict[str, Any]) -> None:
    """Heatmap logits of +-40 and +-1e4 give a finite total and finite gradients: the sigmoid is clamped to
    [1e-4, 1 - 1e-4] before the focal loss takes its logs."""
    outs = [dict(o) for o in ex["outputs"]]
    leaves = []
    for o in outs:
        o["hm"] = o["hm"].clone().requires_grad_(True)
        leaves.append(o["hm"])
    total, _ = _call_generic(target, ex, outputs=outs)
    ck.assert_finite(total.detach(), what="total")
    if total.requires_grad:
        for g in torch.autograd.grad(total, leaves, allow_unused=True):
            if g is not None:
                ck.assert_finite(g, what="d total / d hm")


@GENERIC.property(Category.ROBUSTNESS, strategy=generic_inputs(), examples_factor=0.5, name="does_not_modify_outputs")
def generic_not_modified(target: Target, ex: dict[str, Any]) -> None:
    """The caller's output dicts keep their tensors (no sigmoid written back) and a second call gives the same total."""
    outs = [dict(o) for o in ex["outputs"]]
    before = [{k: v.clone() for k, v in o.items()} for o in outs]
    first, _ = _call_generic(target, ex, outputs=outs)
    for s, (o, b) in enumerate(zip(outs, before)):
        if sorted(o) != sorted(b):
            raise AssertionError(f"outputs[{s}] keys changed from {sorted(b)} to {sorted(o)}")
        for k in o:
            ck.assert_identical(b[k], o[k].detach(), what=f"outputs[{s}][{k!r}] after the call")
    second, _ = _call_generic(target, ex, outputs=outs)
    ck.assert_identical(first.detach(), second.detach(), what="second call's total versus the first's")


@GENERIC.property(Category.ROBUSTNESS, strategy=generic_inputs(), examples_factor=0.5, name="output_dtype_and_shape")
def generic_shape(target: Target, ex: dict[str, Any]) -> None:
    """The total and each head loss are 0-d tensors of the outputs' dtype."""
    total, per = _call_generic(target, ex)
    dt = ex["outputs"][0]["hm"].dtype
    ck.assert_shape_dtype(total, shape=(), dtype=dt, what="total")
    for h, v in per.items():
        ck.assert_shape_dtype(v, shape=(), dtype=dt, what=f"loss[{h!r}]")


@GENERIC.property(Category.ROBUSTNESS, strategy=generic_inputs(), examples_factor=0.5, name="rejects_a_head_without_a_weight")
def generic_rejects(target: Target, ex: dict[str, Any]) -> None:
    """A head present in the outputs without an entry in weights must raise (not default silently)."""
    weights = {h: v for h, v in ex["weights"].items() if h != "hm"}
    ck.assert_raises(lambda: _call_generic(target, ex, weights=weights), what="weights without 'hm'")


@GENERIC.property(Category.ROBUSTNESS, strategy=generic_inputs(), examples_factor=0.5, name="deterministic")
def generic_deterministic(target: Target, ex: dict[str, Any]) -> None:
    """Two calls (each on fresh copies of the output dicts) give identical totals and head losses."""
    def call() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return _call_generic(target, ex, outputs=[dict(o) for o in ex["outputs"]])

    (t1, p1), (t2, p2) = call(), call()
    ck.assert_identical(t1.detach(), t2.detach(), what="second call's total versus the first's")
    for h in p1:
        ck.assert_identical(p1[h].detach(), p2[h].detach(), what=f"second call's loss[{h!r}] versus the first's")
