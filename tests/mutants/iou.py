"""Mutants of the IoU family."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from impls import iou as ref
from tests.mutants import Mutant

_DEVICE = ("cuda_matches_cpu", "mps_matches_cpu")


def _raw(b1, b2, eps=1e-7, *, union_minus_inter=True, enclosing="max", check=True):  # type: ignore[no-untyped-def]
    if check:
        for b in (b1, b2):
            if bool(((b[..., 2] < b[..., 0]) | (b[..., 3] < b[..., 1])).any()):
                raise ValueError("inverted box")
    x1, y1, x2, y2 = b1.unbind(-1)
    u1, v1, u2, v2 = b2.unbind(-1)
    a1, a2 = (x2 - x1) * (y2 - y1), (u2 - u1) * (v2 - v1)
    inter = (torch.minimum(x2, u2) - torch.maximum(x1, u1)).clamp(min=0) * (torch.minimum(y2, v2) - torch.maximum(y1, v1)).clamp(min=0)
    union = a1 + a2 - inter if union_minus_inter else a1 + a2
    iou = inter / (union + eps)
    if enclosing == "max":
        area_c = (torch.maximum(x2, u2) - torch.minimum(x1, u1)) * (torch.maximum(y2, v2) - torch.minimum(y1, v1))
    else:
        area_c = (torch.minimum(x2, u2) - torch.maximum(x1, u1)).abs() * (torch.minimum(y2, v2) - torch.maximum(y1, v1)).abs()
    return iou, union, area_c


def giou_no_eps(boxes1, boxes2, *, reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
    iou, union, area_c = _raw(boxes1, boxes2, 0.0)
    return 1 - (iou - (area_c - union) / area_c)


def giou_wrong_enclosure(boxes1, boxes2, *, reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
    iou, union, area_c = _raw(boxes1, boxes2, eps, enclosing="min")
    return 1 - (iou - (area_c - union) / (area_c + eps))


def giou_is_iou(boxes1, boxes2, *, reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
    return ref.iou_loss(boxes1, boxes2, reduction=reduction, eps=eps)


def giou_silent_inverted(boxes1, boxes2, *, reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
    iou, union, area_c = _raw(boxes1, boxes2, eps, check=False)
    return 1 - (iou - (area_c - union) / (area_c + eps))


def giou_mean_nan_when_empty(boxes1, boxes2, *, reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
    out = ref.giou_loss(boxes1, boxes2, eps=eps)
    return out if reduction == "none" else (out.sum() if reduction == "sum" else out.mean())


def giou_float32(boxes1, boxes2, *, reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
    return ref.giou_loss(boxes1.float(), boxes2.float(), reduction=reduction, eps=eps)


def giou_in_place(boxes1, boxes2, *, reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
    boxes1[..., 2:].clamp_(min=boxes1[..., :2].detach())  # "fix" the caller's boxes in place
    return ref.giou_loss(boxes1, boxes2, reduction=reduction, eps=eps)


def giou_cpu_constant(boxes1, boxes2, **kw):  # type: ignore[no-untyped-def]
    out = ref.giou_loss(boxes1, boxes2, **kw)
    return out * torch.ones(out.shape, dtype=out.dtype)


def giou_dropout(boxes1, boxes2, **kw):  # type: ignore[no-untyped-def]
    return ref.giou_loss(boxes1 + F.dropout(torch.ones_like(boxes1), 0.2, training=True), boxes2, **kw)


def giou_detached_enclosure(boxes1, boxes2, *, reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
    iou, union, area_c = _raw(boxes1, boxes2, eps)
    return 1 - (iou - (area_c.detach() - union) / (area_c.detach() + eps))


def iou_union_plain_sum(boxes1, boxes2, *, reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
    iou, _, _ = _raw(boxes1, boxes2, eps, union_minus_inter=False)
    return 1 - iou


def iou_over_first_area(boxes1, boxes2, *, reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
    x1, y1, x2, y2 = boxes1.unbind(-1)
    u1, v1, u2, v2 = boxes2.unbind(-1)
    inter = (torch.minimum(x2, u2) - torch.maximum(x1, u1)).clamp(min=0) * (torch.minimum(y2, v2) - torch.maximum(y1, v1)).clamp(min=0)
    ref.iou_loss(boxes1, boxes2)  # for the inverted-box check
    return 1 - inter / ((x2 - x1) * (y2 - y1) + eps)


def iou_area_from_corners(boxes1, boxes2, *, reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
    # "area" as x2*y2 - x1*y1: right at the origin, wrong anywhere else.
    ref.iou_loss(boxes1, boxes2)
    x1, y1, x2, y2 = boxes1.unbind(-1)
    u1, v1, u2, v2 = boxes2.unbind(-1)
    inter = (torch.minimum(x2, u2) - torch.maximum(x1, u1)).clamp(min=0) * (torch.minimum(y2, v2) - torch.maximum(y1, v1)).clamp(min=0)
    union = (x2 * y2 - x1 * y1) + (u2 * v2 - u1 * v1) - inter
    return 1 - inter / (union + eps)


def iou_big_eps(boxes1, boxes2, *, reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
    return ref.iou_loss(boxes1, boxes2, reduction=reduction, eps=1.0)


def iou_no_eps(boxes1, boxes2, *, reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
    iou, _, _ = _raw(boxes1, boxes2, 0.0)
    return 1 - iou


def iou_detached_union(boxes1, boxes2, *, reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
    _, union, _ = _raw(boxes1, boxes2, eps)
    x1, y1, x2, y2 = boxes1.unbind(-1)
    u1, v1, u2, v2 = boxes2.unbind(-1)
    inter = (torch.minimum(x2, u2) - torch.maximum(x1, u1)).clamp(min=0) * (torch.minimum(y2, v2) - torch.maximum(y1, v1)).clamp(min=0)
    return 1 - inter / (union.detach() + eps)


def _diou_parts(boxes1, boxes2, eps):  # type: ignore[no-untyped-def]
    iou, _, _ = _raw(boxes1, boxes2, eps)
    x1, y1, x2, y2 = boxes1.unbind(-1)
    u1, v1, u2, v2 = boxes2.unbind(-1)
    c2 = (torch.maximum(x2, u2) - torch.minimum(x1, u1)) ** 2 + (torch.maximum(y2, v2) - torch.minimum(y1, v1)) ** 2
    rho2 = ((x1 + x2 - u1 - u2) / 2) ** 2 + ((y1 + y2 - v1 - v2) / 2) ** 2
    return iou, c2, rho2


def diou_not_normalised(boxes1, boxes2, *, reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
    iou, c2, rho2 = _diou_parts(boxes1, boxes2, eps)
    return 1 - iou + rho2


def diou_detached_c2(boxes1, boxes2, *, reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
    iou, c2, rho2 = _diou_parts(boxes1, boxes2, eps)
    return 1 - iou + rho2 / (c2.detach() + eps)


def diou_distance_not_squared(boxes1, boxes2, *, reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
    iou, _, _ = _raw(boxes1, boxes2, eps)
    x1, y1, x2, y2 = boxes1.unbind(-1)
    u1, v1, u2, v2 = boxes2.unbind(-1)
    c = torch.sqrt((torch.maximum(x2, u2) - torch.minimum(x1, u1)) ** 2 + (torch.maximum(y2, v2) - torch.minimum(y1, v1)) ** 2)
    rho = torch.sqrt(((x1 + x2 - u1 - u2) / 2) ** 2 + ((y1 + y2 - v1 - v2) / 2) ** 2)
    return 1 - iou + rho / (c + eps)


def diou_no_eps(boxes1, boxes2, *, reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
    iou, _, _ = _raw(boxes1, boxes2, eps)
    x1, y1, x2, y2 = boxes1.unbind(-1)
    u1, v1, u2, v2 = boxes2.unbind(-1)
    c2 = (torch.maximum(x2, u2) - torch.minimum(x1, u1)) ** 2 + (torch.maximum(y2, v2) - torch.minimum(y1, v1)) ** 2
    rho2 = ((x1 + x2 - u1 - u2) / 2) ** 2 + ((y1 + y2 - v1 - v2) / 2) ** 2
    return 1 - iou + rho2 / c2


def ciou_no_factor(boxes1, boxes2, *, reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
    d = ref.diou_loss(boxes1, boxes2, eps=eps)
    w1, h1 = boxes1[..., 2] - boxes1[..., 0], boxes1[..., 3] - boxes1[..., 1]
    w2, h2 = boxes2[..., 2] - boxes2[..., 0], boxes2[..., 3] - boxes2[..., 1]
    v = (torch.atan(w2 / (h2 + eps)) - torch.atan(w1 / (h1 + eps))) ** 2  # 4 / pi^2 missing
    iou = 1 - ref.iou_loss(boxes1, boxes2, eps=eps)
    return d + (v / (1 - iou + v + eps)).detach() * v


def ciou_unguarded_ratio(boxes1, boxes2, *, reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
    d = ref.diou_loss(boxes1, boxes2, eps=eps)
    w1, h1 = boxes1[..., 2] - boxes1[..., 0], boxes1[..., 3] - boxes1[..., 1]
    w2, h2 = boxes2[..., 2] - boxes2[..., 0], boxes2[..., 3] - boxes2[..., 1]
    v = 4 / math.pi**2 * (torch.atan(w2 / h2) - torch.atan(w1 / h1)) ** 2  # 0/0 for zero-size boxes
    iou = 1 - ref.iou_loss(boxes1, boxes2, eps=eps)
    return d + (v / (1 - iou + v + eps)).detach() * v


def _generic(sid: str, fn_name: str):  # type: ignore[no-untyped-def]
    base = getattr(ref, sid)

    def float32(boxes1, boxes2, **kw):  # type: ignore[no-untyped-def]
        return base(boxes1.float(), boxes2.float(), **kw)

    def cpu_constant(boxes1, boxes2, **kw):  # type: ignore[no-untyped-def]
        out = base(boxes1, boxes2, **kw)
        return out * torch.ones(out.shape, dtype=out.dtype)

    def dropout(boxes1, boxes2, **kw):  # type: ignore[no-untyped-def]
        return base(boxes1, boxes2, **kw) * F.dropout(torch.ones(boxes1.shape[:-1], dtype=boxes1.dtype), 0.2, training=True)

    def silent_inverted(boxes1, boxes2, **kw):  # type: ignore[no-untyped-def]
        fixed1 = torch.cat([torch.minimum(boxes1[..., :2], boxes1[..., 2:]), torch.maximum(boxes1[..., :2], boxes1[..., 2:])], -1)
        return base(fixed1, boxes2, **kw)

    def mean_nan(boxes1, boxes2, *, reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
        out = base(boxes1, boxes2, eps=eps)
        return out if reduction == "none" else (out.sum() if reduction == "sum" else out.mean())

    def second_as_xywh(boxes1, boxes2, **kw):  # type: ignore[no-untyped-def]
        # The second argument read as (x, y, w, h): the classic format mix-up.
        x, y, w, h = boxes2.unbind(-1)
        return base(boxes1, torch.stack([x, y, x + w, y + h], -1), **kw)

    def in_place(boxes1, boxes2, **kw):  # type: ignore[no-untyped-def]
        boxes2.add_(0.0)
        return base(boxes1, boxes2, **kw)

    return {"float32": float32, "cpu_constant": cpu_constant, "dropout": dropout, "silent_inverted": silent_inverted,
            "mean_nan": mean_nan, "in_place": in_place, "second_as_xywh": second_as_xywh}[fn_name]


def _common(sid: str) -> list[Mutant]:
    return [
        Mutant("float32", sid, _generic(sid, "float32"), "computes and returns float32", ("output_dtype_and_shape", "low_precision_matches_float32")),
        Mutant("cpu_constant", sid, _generic(sid, "cpu_constant"), "builds a tensor on the CPU", _DEVICE),
        Mutant("dropout_left_on", sid, _generic(sid, "dropout"), "dropout in training mode", ("compiled_matches_eager",)),
        Mutant("sorts_inverted_corners", sid, _generic(sid, "silent_inverted"), "silently re-orders inverted corners",
               ("rejects_inverted_boxes",)),
        Mutant("mean_of_empty_is_nan", sid, _generic(sid, "mean_nan"), "mean of no pairs is nan", ("reductions",)),
        Mutant("second_argument_as_xywh", sid, _generic(sid, "second_as_xywh"), "boxes2 read as (x, y, w, h)",
               ("symmetric", "translation_and_scale_invariant", "zero_for_identical_boxes")),
        Mutant("touches_boxes_in_place", sid, _generic(sid, "in_place"), "an in-place no-op bumps the caller's version counter",
               ("inputs_not_modified",)),
    ]


MUTANTS = [
    Mutant("no_eps", "giou_loss", giou_no_eps, "no eps: 0/0 for degenerate boxes", ("degenerate_boxes_finite",)),
    Mutant("intersection_as_enclosure", "giou_loss", giou_wrong_enclosure, "enclosing box computed like the intersection",
           ("agrees_with_numpy", "giou_at_most_iou", "within_range")),
    Mutant("returns_iou_loss", "giou_loss", giou_is_iou, "the enclosing-box penalty is dropped", ("agrees_with_numpy",)),
    Mutant("detached_enclosure", "giou_loss", giou_detached_enclosure, "enclosing area detached from the graph", ("gradcheck_float64",)),
    Mutant("union_is_plain_sum", "iou_loss", iou_union_plain_sum, "union = A1 + A2 (intersection counted twice)",
           ("agrees_with_numpy", "zero_for_identical_boxes")),
    Mutant("over_first_area", "iou_loss", iou_over_first_area, "intersection over the first box's area", ("symmetric", "agrees_with_numpy")),
    Mutant("no_eps", "iou_loss", iou_no_eps, "no eps: 0/0 for two points", ("degenerate_boxes_finite",)),
    Mutant("detached_union", "iou_loss", iou_detached_union, "union detached from the graph", ("gradcheck_float64",)),
    Mutant("distance_not_normalised", "diou_loss", diou_not_normalised, "rho^2 without dividing by the diagonal c^2",
           ("within_range", "agrees_with_numpy")),
    Mutant("detached_diagonal", "diou_loss", diou_detached_c2, "enclosing diagonal detached from the graph", ("gradcheck_float64",)),
    Mutant("area_from_corners", "iou_loss", iou_area_from_corners, "area as x2*y2 - x1*y1",
           ("translation_and_scale_invariant", "agrees_with_numpy", "within_range")),
    Mutant("eps_one", "iou_loss", iou_big_eps, "eps = 1: small boxes never reach IoU 1",
           ("translation_and_scale_invariant", "zero_for_identical_boxes")),
    Mutant("distance_not_squared", "diou_loss", diou_distance_not_squared, "rho / c instead of rho^2 / c^2",
           ("agrees_with_numpy",)),
    Mutant("no_eps", "diou_loss", diou_no_eps, "no eps: 0/0 for a point against itself", ("degenerate_boxes_finite",)),
    Mutant("no_4_over_pi2", "ciou_loss", ciou_no_factor, "aspect term without 4 / pi^2", ("agrees_with_numpy",)),
    Mutant("unguarded_ratio", "ciou_loss", ciou_unguarded_ratio, "w / h without eps: nan for zero-height boxes",
           ("degenerate_boxes_finite", "within_range")),
]
for _sid in ("iou_loss", "giou_loss", "diou_loss", "ciou_loss"):
    MUTANTS.extend(_common(_sid))
