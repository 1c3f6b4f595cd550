"""Specs of the IoU family: ``iou_loss``, ``giou_loss``, ``diou_loss``, ``ciou_loss`` (seed 002).

Policy for inverted boxes (x2 < x1 or y2 < y1): the call must raise; a silent 0
or any value is a failure of ``rejects_inverted_boxes``.
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
from impls import iou as ref
from oracles import numpy_iou as npo

_SIG = "f(boxes1: Tensor[*, 4], boxes2: Tensor[*, 4], *, reduction: str = 'none', eps: float = 1e-7) -> Tensor[*]"
_LOSSES = {
    "iou_loss": ("1 - IoU, IoU = inter / (union + eps)", ref.iou_loss, npo.iou_loss, (0.0, 1.0)),
    "giou_loss": ("1 - GIoU, GIoU = IoU - (C - union) / (C + eps), C the enclosing box's area", ref.giou_loss, npo.giou_loss, (0.0, 2.0)),
    "diou_loss": ("1 - IoU + rho^2 / (c^2 + eps): centre distance over the enclosing diagonal", ref.diou_loss, npo.diou_loss, (0.0, 2.0)),
    "ciou_loss": ("DIoU loss + alpha v, v the aspect-ratio term", ref.ciou_loss, npo.ciou_loss, (0.0, 3.0)),
}
SPECS: dict[str, Spec] = {}
for _sid, (_summary, _ref, _npo, _) in _LOSSES.items():
    SPECS[_sid] = register(
        Spec(
            id=_sid,
            family="iou",
            signature=_SIG,
            summary=f"Pairwise {_summary}, on xyxy boxes; degenerate boxes (zero width/height, points) give finite "
            "values and gradients; inverted boxes raise.",
            reference=_ref,
            oracles=(Oracle("numpy", "numpy", f"oracles.numpy_iou.{_sid} (pair-by-pair loop)"),),
        )
    )

# ---------------------------------------------------------------------------
# Strategies: valid xyxy boxes by construction (corner + non-negative size)
# ---------------------------------------------------------------------------

coord = st.one_of(st.integers(-50, 50).map(float), st.floats(-100, 100, allow_nan=False, allow_subnormal=False, width=32))
size = st.one_of(st.just(0.0), st.integers(1, 20).map(float), st.floats(0, 50, allow_nan=False, allow_subnormal=False, width=32))


@st.composite
def box_pairs(draw: st.DrawFn, *, min_size: float = 0.0, dtypes: tuple[torch.dtype, ...] = hh.FLOAT_DTYPES,
              dyadic: bool = False) -> dict[str, Any]:
    dtype = draw(hh.float_dtypes(dtypes=dtypes))
    shape = draw(hh.shapes(min_dims=1, max_dims=2, max_side=5, min_side=0))
    n = int(np.prod(shape))
    c_el = st.integers(-40, 40).map(float) if dyadic else coord
    s_el = st.integers(max(1, int(min_size)), 20).map(float) if (dyadic or min_size > 0) else size

    def boxes() -> torch.Tensor:
        xy = draw(st.lists(st.tuples(c_el, c_el, s_el, s_el), min_size=n, max_size=n))
        arr = np.array([[x, y, x + w, y + h] for x, y, w, h in xy], dtype=np.float64).reshape(*shape, 4)
        return torch.tensor(arr, dtype=dtype)

    b1 = boxes()
    if draw(st.booleans()):
        b2 = boxes()
    else:
        # Overlapping partners of another size: each corner of b1 moved by a small integer.
        off = torch.tensor(draw(st.lists(st.integers(-3, 3).map(float), min_size=4, max_size=4)), dtype=dtype)
        moved = b1 + off
        b2 = torch.cat([moved[..., :2], torch.maximum(moved[..., 2:], moved[..., :2])], dim=-1)
    return {"boxes1": b1, "boxes2": b2}


def _np(t: torch.Tensor) -> np.ndarray:
    return ck.f64(t)


def _scale(ex: dict[str, Any]) -> np.ndarray:
    # Coordinates enter differences and products: rounding is relative to their magnitude
    # over the smaller box's size.
    b = np.concatenate([np.abs(_np(ex["boxes1"])), np.abs(_np(ex["boxes2"]))], axis=-1)
    mag = b.max(-1) if b.size else np.zeros(b.shape[:-1])
    w = np.minimum(_np(ex["boxes1"])[..., 2] - _np(ex["boxes1"])[..., 0], _np(ex["boxes1"])[..., 3] - _np(ex["boxes1"])[..., 1])
    return 8 * (1 + mag) / (1 + np.abs(w))


def _register(sid: str) -> None:
    spec = SPECS[sid]
    oracle = _LOSSES[sid][2]
    lo, hi = _LOSSES[sid][3]

    def call(target: Target, ex: dict[str, Any], **kw: Any) -> torch.Tensor:
        return target.tensor(ex["boxes1"], ex["boxes2"], **kw)

    @spec.property(Category.ORACLE, strategy=box_pairs(), name="agrees_with_numpy")
    def agrees_with_numpy(target: Target, ex: dict[str, Any]) -> None:
        """f(b1, b2) equals the pair-by-pair float64 definition, degenerate boxes included."""
        out = call(target, ex)
        ck.assert_close(out, oracle(_np(ex["boxes1"]), _np(ex["boxes2"])), spec=sid, key="numpy",
                        dtype=ex["boxes1"].dtype, scale=_scale(ex), inputs=ex)

    @spec.property(Category.EQUIVALENCE, strategy=box_pairs(min_size=1.0), name="zero_for_identical_boxes")
    def identical(target: Target, ex: dict[str, Any]) -> None:
        """f(b, b) == 0 for boxes with area >= 1 (up to eps / area)."""
        b = ex["boxes1"]
        ck.assert_close(target.tensor(b, b.clone()), 0.0, spec=sid, key="identical", dtype=b.dtype, what="f(b, b)")

    def in_range(target: Target, ex: dict[str, Any]) -> None:
        out = ck.f64(call(target, ex))
        tol = 1e-5
        bad = ~((out >= lo - tol) & (out <= hi + tol))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise AssertionError(f"f.flat[{i}]={out.flat[i]!r}, but should lie in [{lo}, {hi}]")

    in_range.__doc__ = f"{lo} <= f(b1, b2) <= {hi} for every pair."
    spec.property(Category.EQUIVALENCE, strategy=box_pairs(), name="within_range")(in_range)

    @spec.property(Category.INVARIANCE, strategy=box_pairs(), name="symmetric")
    def symmetric(target: Target, ex: dict[str, Any]) -> None:
        """f(b1, b2) == f(b2, b1)."""
        a = call(target, ex)
        b = target.tensor(ex["boxes2"], ex["boxes1"])
        ck.assert_close(b, ck.f64(a), spec=sid, key="self", dtype=ex["boxes1"].dtype, what="f(b2, b1)", scale=_scale(ex))

    @st.composite
    def shifted(draw: st.DrawFn) -> dict[str, Any]:
        ex = draw(box_pairs(min_size=1.0, dyadic=True))
        ex["shift"] = draw(st.tuples(st.integers(-64, 64), st.integers(-64, 64)).map(lambda t: [float(t[0]), float(t[1])]))
        ex["factor"] = draw(st.sampled_from([0.5, 2.0, 4.0, 0.25]))
        return ex

    @spec.property(Category.INVARIANCE, strategy=shifted(), name="translation_and_scale_invariant")
    def invariant(target: Target, ex: dict[str, Any]) -> None:
        """f(b1 + t, b2 + t) == f(b1, b2) and f(s b1, s b2) == f(b1, b2) (integer boxes, dyadic s: exact inputs)."""
        b1, b2 = ex["boxes1"], ex["boxes2"]
        base = ck.f64(target.tensor(b1, b2))
        t = torch.tensor(ex["shift"] * 2, dtype=b1.dtype)
        s = ex["factor"]
        ck.assert_close(target.tensor(b1 + t, b2 + t), base, spec=sid, key="invariance", dtype=b1.dtype, what="f(b1 + t, b2 + t)",
                        scale=_scale(ex) * 4)
        ck.assert_close(target.tensor(b1 * s, b2 * s), base, spec=sid, key="invariance", dtype=b1.dtype, what=f"f({s} b1, {s} b2)",
                        scale=_scale(ex) * 4)

    @st.composite
    def degenerate(draw: st.DrawFn) -> dict[str, Any]:
        dtype = draw(hh.float_dtypes())
        kind = draw(st.sampled_from(["zero_width", "zero_height", "point", "same_point", "touching"]))
        x, y = draw(coord), draw(coord)
        w, h = draw(st.integers(1, 10).map(float)), draw(st.integers(1, 10).map(float))
        a = {"zero_width": [x, y, x, y + h], "zero_height": [x, y, x + w, y], "point": [x, y, x, y],
             "same_point": [x, y, x, y], "touching": [x, y, x + w, y + h]}[kind]
        b = {"same_point": [x, y, x, y], "touching": [x + w, y, x + 2 * w, y + h]}.get(kind, [x - 1, y - 1, x + w, y + h])
        return {"boxes1": torch.tensor([a], dtype=dtype), "boxes2": torch.tensor([b], dtype=dtype), "kind": kind}

    @spec.property(Category.GRADIENT, strategy=degenerate(), name="degenerate_boxes_finite")
    def degenerate_finite(target: Target, ex: dict[str, Any]) -> None:
        """Zero-width, zero-height, point and touching boxes give a finite loss and finite gradients for both boxes."""
        b1 = ex["boxes1"].clone().requires_grad_(True)
        b2 = ex["boxes2"].clone().requires_grad_(True)
        out = target.tensor(b1, b2)
        ck.assert_finite(out.detach(), what=f"loss ({ex['kind']})")
        g1, g2 = torch.autograd.grad(out.sum(), (b1, b2), allow_unused=True)
        for name, g in (("grad boxes1", g1), ("grad boxes2", g2)):
            if g is not None:
                ck.assert_finite(g, what=f"{name} ({ex['kind']})")

    def gradcheck(target: Target, ex: dict[str, Any]) -> None:
        """Autograd's gradient matches finite differences in float64 away from ties of min/max."""
        b1, b2 = ex["boxes1"], ex["boxes2"]
        if b1.numel() == 0:
            return
        # Move boxes off exact coordinate ties, where min/max are not differentiable.
        b1 = (b1 + torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=b1.dtype)).requires_grad_(True)
        out = target.tensor(b1, b2)
        if out.dtype != torch.float64:
            return
        ck.assert_gradcheck(lambda t: target.tensor(t, b2), b1, spec=sid)

    if sid != "ciou_loss":  # CIoU's alpha is a constant weight by definition: not the finite-difference gradient
        spec.property(Category.GRADIENT, strategy=box_pairs(min_size=1.0, dtypes=(torch.float64,)), examples_factor=0.3,
                      name="gradcheck_float64")(gradcheck)

    @st.composite
    def inverted(draw: st.DrawFn) -> dict[str, Any]:
        ex = draw(box_pairs(min_size=1.0))
        b1 = ex["boxes1"]
        if b1.numel() == 0:
            b1 = torch.tensor([[0.0, 0.0, 2.0, 2.0]], dtype=b1.dtype)
            ex["boxes2"] = b1.clone()
        b1 = b1.clone()
        which = draw(st.sampled_from(["x", "y"]))
        flat = b1.view(-1, 4)
        if which == "x":
            flat[0, [0, 2]] = flat[0, [2, 0]] + torch.tensor([0.0, -1.0], dtype=b1.dtype)
        else:
            flat[0, [1, 3]] = flat[0, [3, 1]] + torch.tensor([0.0, -1.0], dtype=b1.dtype)
        ex["boxes1"] = b1
        return ex

    @spec.property(Category.ROBUSTNESS, strategy=inverted(), name="rejects_inverted_boxes")
    def rejects_inverted(target: Target, ex: dict[str, Any]) -> None:
        """A box with x2 < x1 or y2 < y1 raises an error (the spec's policy), never a silent value."""
        ck.assert_raises(lambda: target(ex["boxes1"], ex["boxes2"]), what="an inverted box (x2 < x1 or y2 < y1)")

    @spec.property(Category.ROBUSTNESS, strategy=box_pairs(), name="output_dtype_and_shape")
    def shape(target: Target, ex: dict[str, Any]) -> None:
        """out.shape == boxes.shape[:-1] and out.dtype == boxes.dtype (reduction none, empty included)."""
        b = ex["boxes1"]
        ck.assert_shape_dtype(target(b, ex["boxes2"]), shape=b.shape[:-1], dtype=b.dtype)

    @spec.property(Category.REDUCTION, strategy=box_pairs(), name="reductions")
    def reductions(target: Target, ex: dict[str, Any]) -> None:
        """'sum' and 'mean' reduce the 'none' output; the mean of no pairs is 0 (stays differentiable), not nan."""
        per = ck.f64(call(target, ex))
        s = call(target, ex, reduction="sum")
        m = call(target, ex, reduction="mean")
        ck.assert_close(s, per.sum(), spec=sid, key="reduction", dtype=ex["boxes1"].dtype, what="sum", scale=float(_scale(ex).sum()))
        ck.assert_close(m, per.mean() if per.size else 0.0, spec=sid, key="reduction", dtype=ex["boxes1"].dtype, what="mean",
                        scale=float(_scale(ex).mean()) if per.size else 0.0)

    @spec.property(Category.ROBUSTNESS, strategy=box_pairs(), name="inputs_not_modified")
    def not_modified(target: Target, ex: dict[str, Any]) -> None:
        """The call leaves both box tensors unchanged."""
        check_not_modified(target, [ex["boxes1"], ex["boxes2"]], {}, ["boxes1", "boxes2"])

    register_device_properties(
        spec,
        strategy=box_pairs(min_size=1.0, dtypes=(torch.float32,), dyadic=True),
        call=lambda t, ex: t.tensor(ex["boxes1"], ex["boxes2"]),
        float_keys=("boxes1", "boxes2"),
        scale=lambda ex: _scale(ex) * 100,
    )


for _sid in _LOSSES:
    _register(_sid)


@SPECS["giou_loss"].property(Category.EQUIVALENCE, strategy=box_pairs())
def giou_at_most_iou(target: Target, ex: dict[str, Any]) -> None:
    """GIoU <= IoU, i.e. giou_loss >= 1 - IoU (the enclosing-box penalty is non-negative)."""
    out = ck.f64(target.tensor(ex["boxes1"], ex["boxes2"]))
    iou = npo.iou(_np(ex["boxes1"]), _np(ex["boxes2"]))
    bad = out < (1 - iou) - 1e-5 * (1 + _scale(ex))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise AssertionError(f"giou_loss.flat[{i}]={out.flat[i]!r}, but should be >= 1 - IoU = {(1 - iou).flat[i]!r}")
