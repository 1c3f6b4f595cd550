"""Mutants of the IoU family: mistakes seen in real ports of IoU, GIoU, DIoU and CIoU losses.

Each wraps a per-pair core in the canonical keywords (validation, IoU modes, reduction)
exactly as the reference applies them, so it differs from the reference only in its
planted defect. The generic module adds ``ignores_<kw>``, ``default_<kw>_changed``,
``writes_into_<arg>`` and ``detached_<arg>`` (not for CIoU, whose gradcheck is the
family's own).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from impls import iou as ref
from impls._validate import check_choice
from tests.mutants import Mutant

Tensor = torch.Tensor
Core = Callable[[Tensor, Tensor, float], Tensor]
_DEVICE = ("cuda_matches_cpu", "mps_matches_cpu")


def iou_keywords(core: Core) -> Callable[..., Tensor]:
    """The IoU loss's keywords around ``core(b1, b2, eps) -> IoU`` per pair."""

    @functools.wraps(core)
    def wrapped(boxes1, boxes2, *, mode="linear", reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
        ref._check(boxes1, boxes2, reduction, eps)
        check_choice("mode", mode, ref.IOU_MODES)
        return ref._reduce(ref._apply_mode(core(boxes1, boxes2, eps), mode), reduction)

    return wrapped


def loss_keywords(core: Core) -> Callable[..., Tensor]:
    """GIoU / DIoU / CIoU keywords around ``core(b1, b2, eps) -> loss`` per pair."""

    @functools.wraps(core)
    def wrapped(boxes1, boxes2, *, reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
        ref._check(boxes1, boxes2, reduction, eps)
        return ref._reduce(core(boxes1, boxes2, eps), reduction)

    return wrapped


def _parts(b1: Tensor, b2: Tensor) -> dict[str, Tensor]:
    x1, y1, x2, y2 = b1.unbind(-1)
    u1, v1, u2, v2 = b2.unbind(-1)
    iw = (torch.minimum(x2, u2) - torch.maximum(x1, u1)).clamp(min=0)
    inter = iw * (torch.minimum(y2, v2) - torch.maximum(y1, v1)).clamp(min=0)
    a1, a2 = (x2 - x1) * (y2 - y1), (u2 - u1) * (v2 - v1)
    cw, ch = torch.maximum(x2, u2) - torch.minimum(x1, u1), torch.maximum(y2, v2) - torch.minimum(y1, v1)
    rho2 = ((x1 + x2 - u1 - u2) / 2) ** 2 + ((y1 + y2 - v1 - v2) / 2) ** 2
    return {"inter": inter, "a1": a1, "a2": a2, "union": a1 + a2 - inter, "cw": cw, "ch": ch, "rho2": rho2,
            "w1": x2 - x1, "h1": y2 - y1, "w2": u2 - u1, "h2": v2 - v1}


def _iou(b1: Tensor, b2: Tensor, eps: float) -> Tensor:
    p = _parts(b1, b2)
    return p["inter"] / (p["union"] + eps)


def _aspect(p: dict[str, Tensor], eps: float) -> Tensor:
    return 4 / math.pi**2 * (torch.atan(p["w2"] / (p["h2"] + eps)) - torch.atan(p["w1"] / (p["h1"] + eps))) ** 2


# ---------------------------------------------------------------------------
# iou_loss
# ---------------------------------------------------------------------------


@iou_keywords
def iou_union_plain_sum(b1: Tensor, b2: Tensor, eps: float) -> Tensor:
    p = _parts(b1, b2)
    return p["inter"] / (p["a1"] + p["a2"] + eps)  # the intersection counted twice


@iou_keywords
def iou_over_first_area(b1: Tensor, b2: Tensor, eps: float) -> Tensor:
    p = _parts(b1, b2)
    return p["inter"] / (p["a1"] + eps)


@iou_keywords
def iou_no_eps(b1: Tensor, b2: Tensor, eps: float) -> Tensor:
    p = _parts(b1, b2)
    return p["inter"] / p["union"]  # 0 / 0 for two zero-area boxes


@iou_keywords
def iou_detached_union(b1: Tensor, b2: Tensor, eps: float) -> Tensor:
    p = _parts(b1, b2)
    return p["inter"] / (p["union"].detach() + eps)


@iou_keywords
def iou_area_from_corners(b1: Tensor, b2: Tensor, eps: float) -> Tensor:
    # "area" as x2*y2 - x1*y1: right for boxes at the origin, wrong anywhere else.
    p = _parts(b1, b2)
    x1, y1, x2, y2 = b1.unbind(-1)
    u1, v1, u2, v2 = b2.unbind(-1)
    return p["inter"] / ((x2 * y2 - x1 * y1) + (u2 * v2 - u1 * v1) - p["inter"] + eps)


@iou_keywords
def iou_plus_one_in_intersection(b1: Tensor, b2: Tensor, eps: float) -> Tensor:
    # The legacy pixel convention (x2 - x1 + 1) ported into the intersection but not the areas.
    x1, y1, x2, y2 = b1.unbind(-1)
    u1, v1, u2, v2 = b2.unbind(-1)
    inter = (torch.minimum(x2, u2) - torch.maximum(x1, u1) + 1).clamp(min=0) * (
        torch.minimum(y2, v2) - torch.maximum(y1, v1) + 1).clamp(min=0)
    p = _parts(b1, b2)
    return inter / (p["a1"] + p["a2"] - inter + eps)


@iou_keywords
def iou_eps_one(b1: Tensor, b2: Tensor, eps: float) -> Tensor:
    return _iou(b1, b2, 1.0)  # small boxes never reach IoU 1


def iou_log_unguarded(boxes1, boxes2, *, mode="linear", reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
    ref._check(boxes1, boxes2, reduction, eps)
    check_choice("mode", mode, ref.IOU_MODES)
    iou = _iou(boxes1, boxes2, eps)
    loss = {"linear": lambda: 1 - iou, "quadratic": lambda: 1 - iou**2, "log": lambda: -torch.log(iou)}[mode]()
    return ref._reduce(loss, reduction)  # -log(0) = inf is right, its gradient -inf * 0 = nan is not


def iou_quadratic_of_loss(boxes1, boxes2, *, mode="linear", reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
    ref._check(boxes1, boxes2, reduction, eps)
    check_choice("mode", mode, ref.IOU_MODES)
    iou = _iou(boxes1, boxes2, eps)
    loss = (1 - iou) ** 2 if mode == "quadratic" else ref._apply_mode(iou, mode)  # (1 - IoU)^2, not 1 - IoU^2
    return ref._reduce(loss, reduction)


def iou_default_mode_log(boxes1, boxes2, *, mode="log", reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
    return ref.iou_loss(boxes1, boxes2, mode=mode, reduction=reduction, eps=eps)  # keras-cv's default


def iou_mode_unchecked(boxes1, boxes2, *, mode="linear", reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
    known = mode if mode in ref.IOU_MODES else "linear"  # an unknown mode silently means "linear"
    return ref.iou_loss(boxes1, boxes2, mode=known, reduction=reduction, eps=eps)


# ---------------------------------------------------------------------------
# giou_loss
# ---------------------------------------------------------------------------


def _giou(b1: Tensor, b2: Tensor, eps: float, area_c: Tensor | None = None, *, sign: float = 1.0,
          normalised: bool = True) -> Tensor:
    p = _parts(b1, b2)
    c = p["cw"] * p["ch"] if area_c is None else area_c
    pen = (c - p["union"]) / (c + eps) if normalised else c - p["union"]
    return 1 - p["inter"] / (p["union"] + eps) + sign * pen


@loss_keywords
def giou_no_eps(b1: Tensor, b2: Tensor, eps: float) -> Tensor:
    p = _parts(b1, b2)
    c = p["cw"] * p["ch"]
    return 1 - p["inter"] / p["union"] + (c - p["union"]) / c


@loss_keywords
def giou_wrong_enclosure(b1: Tensor, b2: Tensor, eps: float) -> Tensor:
    x1, y1, x2, y2 = b1.unbind(-1)
    u1, v1, u2, v2 = b2.unbind(-1)
    c = (torch.minimum(x2, u2) - torch.maximum(x1, u1)).abs() * (torch.minimum(y2, v2) - torch.maximum(y1, v1)).abs()
    return _giou(b1, b2, eps, c)  # the "enclosing" box computed like the intersection


@loss_keywords
def giou_is_iou(b1: Tensor, b2: Tensor, eps: float) -> Tensor:
    return 1 - _iou(b1, b2, eps)


@loss_keywords
def giou_detached_enclosure(b1: Tensor, b2: Tensor, eps: float) -> Tensor:
    p = _parts(b1, b2)
    return _giou(b1, b2, eps, (p["cw"] * p["ch"]).detach())


@loss_keywords
def giou_penalty_not_normalised(b1: Tensor, b2: Tensor, eps: float) -> Tensor:
    return _giou(b1, b2, eps, normalised=False)  # C - U in area units: grows with s^2


@loss_keywords
def giou_penalty_subtracted(b1: Tensor, b2: Tensor, eps: float) -> Tensor:
    return _giou(b1, b2, eps, sign=-1.0)  # 1 - (IoU + penalty): the metric's sign slip


@loss_keywords
def giou_unclamped_intersection(b1: Tensor, b2: Tensor, eps: float) -> Tensor:
    # The intersection's extents not clamped at 0: boxes apart in one axis get a negative "intersection",
    # boxes apart in both multiply two negative extents into a positive one.
    x1, y1, x2, y2 = b1.unbind(-1)
    u1, v1, u2, v2 = b2.unbind(-1)
    p = _parts(b1, b2)
    inter = (torch.minimum(x2, u2) - torch.maximum(x1, u1)) * (torch.minimum(y2, v2) - torch.maximum(y1, v1))
    union = p["a1"] + p["a2"] - inter
    c = p["cw"] * p["ch"]
    return 1 - inter / (union + eps) + (c - union) / (c + eps)


# ---------------------------------------------------------------------------
# diou_loss
# ---------------------------------------------------------------------------


def _diou(b1: Tensor, b2: Tensor, eps: float, *, detach_c2: bool = False, sign: float = 1.0, normalised: bool = True,
          squared: bool = True, c_eps: float | None = None) -> Tensor:
    p = _parts(b1, b2)
    c2 = p["cw"] ** 2 + p["ch"] ** 2
    c2 = c2.detach() if detach_c2 else c2
    e = eps if c_eps is None else c_eps
    if not squared:
        pen = torch.sqrt(p["rho2"]) / (torch.sqrt(c2) + e)
    else:
        pen = p["rho2"] / (c2 + e) if normalised else p["rho2"]
    return 1 - p["inter"] / (p["union"] + eps) + sign * pen


@loss_keywords
def diou_not_normalised(b1: Tensor, b2: Tensor, eps: float) -> Tensor:
    return _diou(b1, b2, eps, normalised=False)


@loss_keywords
def diou_detached_c2(b1: Tensor, b2: Tensor, eps: float) -> Tensor:
    return _diou(b1, b2, eps, detach_c2=True)


@loss_keywords
def diou_distance_not_squared(b1: Tensor, b2: Tensor, eps: float) -> Tensor:
    return _diou(b1, b2, eps, squared=False)


@loss_keywords
def diou_no_eps(b1: Tensor, b2: Tensor, eps: float) -> Tensor:
    return _diou(b1, b2, eps, c_eps=0.0)  # 0 / 0 for a point against itself


@loss_keywords
def diou_penalty_subtracted(b1: Tensor, b2: Tensor, eps: float) -> Tensor:
    return _diou(b1, b2, eps, sign=-1.0)


@loss_keywords
def diou_distance_between_corners(b1: Tensor, b2: Tensor, eps: float) -> Tensor:
    # rho measured between the top-left corners, not the centres: right only for boxes of one size.
    p = _parts(b1, b2)
    rho2 = (b1[..., 0] - b2[..., 0]) ** 2 + (b1[..., 1] - b2[..., 1]) ** 2
    return 1 - p["inter"] / (p["union"] + eps) + rho2 / (p["cw"] ** 2 + p["ch"] ** 2 + eps)


# ---------------------------------------------------------------------------
# ciou_loss
# ---------------------------------------------------------------------------


def _ciou(b1: Tensor, b2: Tensor, eps: float, *, v: Tensor | None = None, factor: float = 1.0,
          detach_alpha: bool = True, sign: float = 1.0, diou_eps: float | None = None) -> Tensor:
    p = _parts(b1, b2)
    v = _aspect(p, eps) if v is None else v
    iou = p["inter"] / (p["union"] + eps)
    alpha = v / (1 - iou + v + eps)
    alpha = alpha.detach() if detach_alpha else alpha
    d = _diou(b1, b2, eps if diou_eps is None else diou_eps)
    return d + sign * alpha * v * factor


@loss_keywords
def ciou_no_factor(b1: Tensor, b2: Tensor, eps: float) -> Tensor:
    return _ciou(b1, b2, eps, v=_aspect(_parts(b1, b2), eps) * math.pi**2 / 4)  # 4 / pi^2 missing


@loss_keywords
def ciou_four_over_pi(b1: Tensor, b2: Tensor, eps: float) -> Tensor:
    return _ciou(b1, b2, eps, v=_aspect(_parts(b1, b2), eps) * math.pi)  # 4 / pi for 4 / pi^2: v up to pi


@loss_keywords
def ciou_unguarded_ratio(b1: Tensor, b2: Tensor, eps: float) -> Tensor:
    p = _parts(b1, b2)
    v = 4 / math.pi**2 * (torch.atan(p["w2"] / p["h2"]) - torch.atan(p["w1"] / p["h1"])) ** 2  # 0/0 for points
    return _ciou(b1, b2, eps, v=v)


@loss_keywords
def ciou_aspect_by_quotient(b1: Tensor, b2: Tensor, eps: float) -> Tensor:
    # _aspect's atan of the quotient: where w / (h + eps) overflows (eps far below w), its backward
    # meets atan'(inf) * (-w / c^2) = 0 * inf.
    return _ciou(b1, b2, eps)


@loss_keywords
def ciou_alpha_differentiated(b1: Tensor, b2: Tensor, eps: float) -> Tensor:
    return _ciou(b1, b2, eps, detach_alpha=False)


@loss_keywords
def ciou_aspect_subtracted(b1: Tensor, b2: Tensor, eps: float) -> Tensor:
    return _ciou(b1, b2, eps, sign=-1.0)


@loss_keywords
def ciou_diou_part_default_eps(b1: Tensor, b2: Tensor, eps: float) -> Tensor:
    return _ciou(b1, b2, eps, diou_eps=1e-7)  # eps reaches alpha and v but not the DIoU part (torchvision 0.29)


class _PaperAtan(torch.autograd.Function):
    """atan(w / h) whose backward drops the 1 / (w^2 + h^2) factor, as the CIoU paper's code
    does "for stable convergence": the gradient then grows with the box instead of shrinking."""

    @staticmethod
    def forward(ctx, w: Tensor, h: Tensor) -> Tensor:  # type: ignore[no-untyped-def, override]
        ctx.save_for_backward(w, h)
        return torch.atan(w / h)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[no-untyped-def, override]
        w, h = ctx.saved_tensors
        return grad * h, -grad * w


@loss_keywords
def ciou_paper_gradient(b1: Tensor, b2: Tensor, eps: float) -> Tensor:
    p = _parts(b1, b2)
    t2 = _PaperAtan.apply(p["w2"], p["h2"] + eps)
    t1 = _PaperAtan.apply(p["w1"], p["h1"] + eps)
    return _ciou(b1, b2, eps, v=4 / math.pi**2 * (t2 - t1) ** 2)


def ciou_detached_boxes1(boxes1, boxes2, *, reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
    return ref.ciou_loss(boxes1.detach(), boxes2, reduction=reduction, eps=eps)


def ciou_detached_boxes2(boxes1, boxes2, *, reduction="none", eps=1e-7):  # type: ignore[no-untyped-def]
    return ref.ciou_loss(boxes1, boxes2.detach(), reduction=reduction, eps=eps)


# ---------------------------------------------------------------------------
# Mistakes common to the family, built around each reference
# ---------------------------------------------------------------------------


def _common(sid: str) -> list[Mutant]:
    base = getattr(ref, sid)

    def named(fn: Callable[..., Tensor], name: str) -> Callable[..., Tensor]:
        fn.__name__ = fn.__qualname__ = f"{sid}__{name}"
        globals()[fn.__name__] = fn  # importable as tests.mutants.iou:<name>, for repro snippets
        return fn

    def float32(boxes1, boxes2, **kw):  # type: ignore[no-untyped-def]
        return base(boxes1.float(), boxes2.float(), **kw)

    def cpu_constant(boxes1, boxes2, **kw):  # type: ignore[no-untyped-def]
        out = base(boxes1, boxes2, **kw)
        return out * torch.ones(out.shape, dtype=out.dtype)

    def dropout(boxes1, boxes2, **kw):  # type: ignore[no-untyped-def]
        out = base(boxes1, boxes2, **kw)
        return out * F.dropout(torch.ones(out.shape, dtype=out.dtype), 0.2, training=True)

    def sorts_corners(boxes1, boxes2, **kw):  # type: ignore[no-untyped-def]
        def fix(b):  # type: ignore[no-untyped-def]
            return torch.cat([torch.minimum(b[..., :2], b[..., 2:]), torch.maximum(b[..., :2], b[..., 2:])], -1)

        return base(fix(boxes1), fix(boxes2), **kw)

    def checks_boxes1_only(boxes1, boxes2, **kw):  # type: ignore[no-untyped-def]
        fixed = torch.cat([torch.minimum(boxes2[..., :2], boxes2[..., 2:]), torch.maximum(boxes2[..., :2], boxes2[..., 2:])], -1)
        return base(boxes1, fixed, **kw)

    def checks_x_only(boxes1, boxes2, **kw):  # type: ignore[no-untyped-def]
        def fix_y(b):  # type: ignore[no-untyped-def]
            lo, hi = torch.minimum(b[..., 1], b[..., 3]), torch.maximum(b[..., 1], b[..., 3])
            return torch.stack([b[..., 0], lo, b[..., 2], hi], -1)

        return base(fix_y(boxes1), fix_y(boxes2), **kw)

    def eps_unchecked(boxes1, boxes2, *, eps=1e-7, **kw):  # type: ignore[no-untyped-def]
        valid = isinstance(eps, (int, float)) and math.isfinite(eps) and eps > 0
        return base(boxes1, boxes2, eps=eps if valid else 1e-7, **kw)  # a bad eps is silently replaced

    def mean_nan(boxes1, boxes2, *, reduction="none", **kw):  # type: ignore[no-untyped-def]
        out = base(boxes1, boxes2, **kw)
        return out if reduction == "none" else (out.sum() if reduction == "sum" else out.mean())

    def broadcasts(boxes1, boxes2, **kw):  # type: ignore[no-untyped-def]
        a, b = torch.broadcast_tensors(boxes1, boxes2)
        return base(a.contiguous(), b.contiguous(), **kw)

    def second_as_xywh(boxes1, boxes2, **kw):  # type: ignore[no-untyped-def]
        # The second argument read as (x, y, w, h): the classic format mix-up.
        x, y, w, h = boxes2.unbind(-1)
        return base(boxes1, torch.stack([x, y, x + w, y + h], -1), **kw)

    def first_four_coordinates(boxes1, boxes2, **kw):  # type: ignore[no-untyped-def]
        # (..., 5) boxes with a score column, or (..., 8), silently cut to their first four values.
        cut = [b[..., :4] if b.dim() and b.shape[-1] > 4 else b for b in (boxes1, boxes2)]
        return base(*cut, **kw)

    def upcasts_integers(boxes1, boxes2, **kw):  # type: ignore[no-untyped-def]
        # torchvision's _upcast_non_float: integer boxes become float32 instead of raising.
        up = [b if b.is_floating_point() else b.float() for b in (boxes1, boxes2)]
        return base(*up, **kw)

    def in_place(boxes1, boxes2, **kw):  # type: ignore[no-untyped-def]
        boxes2.add_(0.0)
        return base(boxes1, boxes2, **kw)

    return [
        Mutant("float32", sid, named(float32, "float32"), "computes and returns float32",
               ("output_dtype_and_shape", "low_precision_matches_float32")),
        Mutant("cpu_constant", sid, named(cpu_constant, "cpu_constant"), "builds a tensor on the CPU", _DEVICE),
        Mutant("dropout_left_on", sid, named(dropout, "dropout"), "dropout in training mode on the loss",
               ("deterministic",)),
        Mutant("sorts_inverted_corners", sid, named(sorts_corners, "sorts_corners"),
               "silently re-orders inverted corners in both arguments", ("rejects_invalid_inputs",)),
        Mutant("checks_boxes1_only", sid, named(checks_boxes1_only, "checks_boxes1_only"),
               "validates boxes1 and silently re-orders boxes2", ("rejects_invalid_inputs",)),
        Mutant("checks_x_only", sid, named(checks_x_only, "checks_x_only"), "validates x2 >= x1 but re-orders y silently",
               ("rejects_invalid_inputs",)),
        Mutant("eps_unchecked", sid, named(eps_unchecked, "eps_unchecked"),
               "accepts eps <= 0 or inf (uses the default) instead of raising", ("rejects_invalid_inputs",)),
        Mutant("mean_of_empty_is_nan", sid, named(mean_nan, "mean_nan"), "the mean of no pairs is nan", ("honours_reduction",)),
        Mutant("broadcasts_boxes2", sid, named(broadcasts, "broadcasts"), "broadcasts a (1, 4) or (4,) boxes2 over boxes1",
               ("rejects_shape_mismatch",)),
        Mutant("cuts_to_four_coordinates", sid, named(first_four_coordinates, "first_four_coordinates"),
               "boxes with a last axis of 5 or 8 silently cut to (..., 4)", ("rejects_shape_mismatch",)),
        Mutant("upcasts_integer_boxes", sid, named(upcasts_integers, "upcasts_integers"),
               "integer boxes converted to float32 instead of rejected", ("rejects_invalid_inputs",)),
        Mutant("second_argument_as_xywh", sid, named(second_as_xywh, "second_as_xywh"), "boxes2 read as (x, y, w, h)",
               ("symmetric", "translation_and_scale_invariant", "zero_for_identical_boxes")),
        Mutant("touches_boxes_in_place", sid, named(in_place, "in_place"),
               "an in-place no-op bumps the caller's version counter", ("inputs_not_modified",)),
    ]


MUTANTS = [
    Mutant("union_is_plain_sum", "iou_loss", iou_union_plain_sum, "union = A1 + A2 (intersection counted twice)",
           ("agrees_with_numpy", "zero_for_identical_boxes")),
    Mutant("over_first_area", "iou_loss", iou_over_first_area, "intersection over the first box's area",
           ("symmetric", "agrees_with_numpy")),
    Mutant("no_eps", "iou_loss", iou_no_eps, "no eps: 0/0 for two zero-area boxes", ("finite_gradients", "agrees_with_numpy")),
    Mutant("detached_union", "iou_loss", iou_detached_union, "union detached from the graph", ("gradcheck_float64",)),
    Mutant("area_from_corners", "iou_loss", iou_area_from_corners, "area as x2*y2 - x1*y1",
           ("translation_and_scale_invariant", "agrees_with_numpy", "gradient_bounded_by_box_scale")),
    Mutant("plus_one_in_intersection", "iou_loss", iou_plus_one_in_intersection,
           "the legacy +1 pixel convention in the intersection only: IoU above 1",
           ("within_range", "agrees_with_numpy", "translation_and_scale_invariant")),
    Mutant("eps_one", "iou_loss", iou_eps_one, "eps = 1 whatever the keyword: small boxes never reach IoU 1",
           ("translation_and_scale_invariant", "zero_for_identical_boxes")),
    Mutant("log_unguarded", "iou_loss", iou_log_unguarded, "-log(IoU) without a guard: nan gradient where IoU = 0",
           ("finite_gradients", "gradient_bounded_by_box_scale")),
    Mutant("quadratic_of_the_loss", "iou_loss", iou_quadratic_of_loss, "mode 'quadratic' as (1 - IoU)^2, not 1 - IoU^2",
           ("honours_mode",)),
    Mutant("default_mode_log", "iou_loss", iou_default_mode_log, "mode defaults to 'log' (keras-cv's default)",
           ("defaults_honoured",)),
    Mutant("mode_unchecked", "iou_loss", iou_mode_unchecked, "an unknown mode silently means 'linear'",
           ("rejects_invalid_inputs",)),
    Mutant("no_eps", "giou_loss", giou_no_eps, "no eps: 0/0 for degenerate boxes", ("finite_gradients", "agrees_with_numpy")),
    Mutant("intersection_as_enclosure", "giou_loss", giou_wrong_enclosure, "enclosing box computed like the intersection",
           ("agrees_with_numpy", "penalty_non_negative", "within_range")),
    Mutant("unclamped_intersection", "giou_loss", giou_unclamped_intersection,
           "intersection extents not clamped at 0: boxes apart in one axis get a negative intersection, in both a "
           "positive one", ("agrees_with_numpy",)),
    Mutant("returns_iou_loss", "giou_loss", giou_is_iou, "the enclosing-box penalty is dropped", ("agrees_with_numpy",)),
    Mutant("detached_enclosure", "giou_loss", giou_detached_enclosure, "enclosing area detached from the graph",
           ("gradcheck_float64",)),
    Mutant("penalty_not_normalised", "giou_loss", giou_penalty_not_normalised, "C - U not divided by C",
           ("gradient_bounded_by_box_scale", "within_range", "agrees_with_numpy")),
    Mutant("penalty_subtracted", "giou_loss", giou_penalty_subtracted, "1 - (IoU + penalty): the penalty's sign slipped",
           ("penalty_non_negative",)),
    Mutant("distance_not_normalised", "diou_loss", diou_not_normalised, "rho^2 without dividing by the diagonal c^2",
           ("within_range", "agrees_with_numpy", "gradient_bounded_by_box_scale")),
    Mutant("detached_diagonal", "diou_loss", diou_detached_c2, "enclosing diagonal detached from the graph",
           ("gradcheck_float64",)),
    Mutant("distance_between_corners", "diou_loss", diou_distance_between_corners,
           "centre distance measured between the top-left corners", ("agrees_with_numpy",)),
    Mutant("distance_not_squared", "diou_loss", diou_distance_not_squared, "rho / c instead of rho^2 / c^2",
           ("agrees_with_numpy",)),
    Mutant("no_eps", "diou_loss", diou_no_eps, "no eps in c^2: 0/0 for a point against itself",
           ("finite_gradients", "agrees_with_numpy")),
    Mutant("penalty_subtracted", "diou_loss", diou_penalty_subtracted, "1 - IoU - rho^2 / c^2", ("penalty_non_negative",)),
    Mutant("no_4_over_pi2", "ciou_loss", ciou_no_factor, "aspect term without 4 / pi^2", ("agrees_with_numpy",)),
    Mutant("four_over_pi", "ciou_loss", ciou_four_over_pi, "4 / pi instead of 4 / pi^2: v reaches pi, the loss 3 and more",
           ("within_range", "agrees_with_numpy")),
    Mutant("unguarded_ratio", "ciou_loss", ciou_unguarded_ratio, "w / h without eps: nan for zero-height boxes",
           ("finite_gradients", "agrees_with_numpy")),
    Mutant("aspect_by_quotient", "ciou_loss", ciou_aspect_by_quotient,
           "atan(w / (h + eps)) by the quotient: a nan gradient where the quotient overflows", ("finite_gradients",)),
    Mutant("alpha_differentiated", "ciou_loss", ciou_alpha_differentiated, "alpha not held constant in the backward pass",
           ("gradcheck_float64",)),
    Mutant("aspect_subtracted", "ciou_loss", ciou_aspect_subtracted, "DIoU - alpha v", ("penalty_non_negative",)),
    Mutant("eps_not_in_diou_part", "ciou_loss", ciou_diou_part_default_eps,
           "eps reaches alpha and v but the DIoU part keeps 1e-7", ("honours_eps",)),
    Mutant("paper_gradient", "ciou_loss", ciou_paper_gradient,
           "the CIoU code's backward of atan(w / h) without 1 / (w^2 + h^2): O(s) instead of O(1 / s)",
           ("gradient_bounded_by_box_scale", "gradcheck_float64")),
    Mutant("detached_boxes1", "ciou_loss", ciou_detached_boxes1, "boxes1 detached: its gradient is missing",
           ("gradcheck_float64",)),
    Mutant("detached_boxes2", "ciou_loss", ciou_detached_boxes2, "boxes2 detached: its gradient is missing",
           ("gradcheck_float64",)),
]
for _sid in ("iou_loss", "giou_loss", "diou_loss", "ciou_loss"):
    MUTANTS.extend(_common(_sid))
