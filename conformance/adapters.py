"""Adapters: known third-party libraries mapped onto the canonical signatures.

An adapter *translates* (argument names, alpha conventions such as
``alpha=-1`` for "none", reductions, the ``(N, C, *)`` layout a library insists
on) and never corrects: whatever the library computes, dtype included, is what
the suite checks. Each adapter is a short piece of source that defines
``impl``; the same source is executed to build the target and printed in repro
snippets, so a repro calls the library itself exactly as the run did.

``--target NAME`` selects every adapter of a library (bound to the specs that
exist); ``--target all-installed`` selects every library, and a library that is
not installed becomes a skipped outcome with the reason.
"""

from __future__ import annotations

import importlib.util
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from conformance.targets import Target

__all__ = ["Adapter", "ADAPTERS", "LIBRARIES", "targets_for", "build"]


@dataclass(frozen=True)
class Adapter:
    library: str  # adapter name on the command line
    spec_id: str
    module: str  # what must be importable
    source: str  # defines `impl` with the spec's canonical signature
    conventions: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.library


def _src(text: str) -> str:
    return textwrap.dedent(text).strip() + "\n"


# The (1, N) view: kornia and monai insist on (B, C, *) inputs; an elementwise loss
# of any shape is the same loss on its flattened view.
_AS_BC = _src(
    """
    def _as_bc(a, b):
        # Equal shapes: the flattened (1, N) view. Unequal shapes pass through (with a
        # leading batch axis if needed) so the library itself sees the mismatch.
        if a.shape == b.shape:
            return a.reshape(1, -1), b.reshape(1, -1)
        return (a if a.dim() >= 2 else a.reshape(1, -1)), (b if b.dim() >= 2 else b.reshape(1, -1))
    """
)

ADAPTERS: list[Adapter] = [
    # --- torch builtins -------------------------------------------------------
    Adapter(
        "torch",
        "sigmoid_bce",
        "torch",
        _src(
            """
            import torch.nn.functional as F
            def impl(logits, targets):
                return F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
            """
        ),
        {"function": "torch.nn.functional.binary_cross_entropy_with_logits", "reduction": "none"},
    ),
    Adapter(
        "torch",
        "smooth_l1",
        "torch",
        _src(
            """
            import torch.nn.functional as F
            def impl(input, target, *, beta=1.0):
                return F.smooth_l1_loss(input, target, beta=beta, reduction="none")
            """
        ),
        {"function": "torch.nn.functional.smooth_l1_loss", "beta": "passed through (torch keeps the quadratic part for 0 < beta < 1e-5)", "reduction": "none"},
    ),
    Adapter(
        "torch-huber",
        "smooth_l1",
        "torch",
        _src(
            """
            import torch.nn.functional as F
            def impl(input, target, *, beta=1.0):
                if beta == 0:
                    return F.l1_loss(input, target, reduction="none")
                return F.huber_loss(input, target, delta=beta, reduction="none") / beta
            """
        ),
        {"function": "torch.nn.functional.huber_loss", "beta": "huber(delta=beta) / beta; beta == 0 -> l1_loss", "reduction": "none"},
    ),
    Adapter(
        "torch",
        "l1",
        "torch",
        _src(
            """
            import torch.nn.functional as F
            def impl(input, target):
                return F.l1_loss(input, target, reduction="none")
            """
        ),
        {"function": "torch.nn.functional.l1_loss", "reduction": "none"},
    ),
    Adapter(
        "torch",
        "mse",
        "torch",
        _src(
            """
            import torch.nn.functional as F
            def impl(input, target):
                return F.mse_loss(input, target, reduction="none")
            """
        ),
        {"function": "torch.nn.functional.mse_loss", "reduction": "none"},
    ),
    Adapter(
        "fvcore",
        "smooth_l1",
        "fvcore",
        _src(
            """
            from fvcore.nn import smooth_l1_loss
            def impl(input, target, *, beta=1.0):
                return smooth_l1_loss(input, target, beta, reduction="none")
            """
        ),
        {"function": "fvcore.nn.smooth_l1_loss", "beta": "beta < 1e-5 is L1 (same convention)", "reduction": "none"},
    ),
    Adapter(
        "keras",
        "smooth_l1",
        "keras",
        _src(
            """
            import numpy as np
            import torch
            from oracles.tf import keras
            def impl(input, target, *, beta=1.0):
                k = keras()
                x = input.detach().cpu().numpy()
                y = target.detach().cpu().numpy()
                if x.shape == y.shape:
                    x, y = x.reshape(-1, 1), y.reshape(-1, 1)
                out = np.asarray(k.losses.Huber(delta=beta, reduction=None)(y, x)) if x.size else np.zeros((0,), np.float32)
                return torch.from_numpy(np.array(out) / np.float32(beta)).reshape(input.shape)
            """
        ),
        {"function": "keras.losses.Huber(delta=beta, reduction=None) / beta", "compute dtype": "float32", "autograd": "none",
         "beta": "Huber has no L1 limit: beta = 0 divides by 0"},
    ),
    Adapter(
        "torch",
        "softmax_cross_entropy",
        "torch",
        _src(
            """
            import torch.nn.functional as F
            def impl(logits, target, *, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
                return F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index,
                                       label_smoothing=label_smoothing, reduction=reduction)
            """
        ),
        {"function": "torch.nn.functional.cross_entropy", "reduction": "passed through"},
    ),
    Adapter(
        "torch",
        "kl_div",
        "torch",
        _src(
            """
            import torch.nn.functional as F
            def impl(input, target, *, reduction="mean", log_target=False):
                return F.kl_div(input, target, reduction=reduction, log_target=log_target)
            """
        ),
        {"function": "torch.nn.functional.kl_div", "reduction": "passed through"},
    ),
    Adapter(
        "kornia",
        "softmax_focal",
        "kornia",
        _src(
            """
            from kornia.losses import focal_loss
            def impl(logits, target, *, gamma=2.0, alpha=None, reduction="mean"):
                out = focal_loss(logits, target, alpha=None, gamma=gamma, reduction=reduction, weight=alpha)
                # kornia's 'none' keeps the class axis (zero off the target class): per sample is its sum.
                return out.sum(1) if reduction == "none" and out.dim() == 2 else out
            """
        ),
        {"function": "kornia.losses.focal_loss", "alpha": "per-class weights passed as weight=; kornia's scalar alpha unused",
         "reduction": "library's own; 'none' summed over the class axis"},
    ),
    Adapter(
        "monai",
        "softmax_focal",
        "monai",
        _src(
            """
            from monai.losses import FocalLoss
            def impl(logits, target, *, gamma=2.0, alpha=None, reduction="mean"):
                loss = FocalLoss(gamma=gamma, alpha=alpha, reduction=reduction, use_softmax=True, to_onehot_y=True)
                out = loss(logits, target.unsqueeze(1))
                return out.sum(1) if reduction == "none" and out.dim() == 2 else out
            """
        ),
        {"function": "monai.losses.FocalLoss(use_softmax=True, to_onehot_y=True)", "alpha": "per-class tensor",
         "reduction": "library's own; 'none' summed over the class axis"},
    ),
    Adapter(
        "fvcore",
        "giou_loss",
        "fvcore",
        _src(
            """
            from fvcore.nn import giou_loss
            def impl(boxes1, boxes2, *, reduction="none", eps=1e-7):
                return giou_loss(boxes1, boxes2, reduction=reduction, eps=eps)
            """
        ),
        {"function": "fvcore.nn.giou_loss", "inverted boxes": "assert statements", "reduction": "passed through"},
    ),
    Adapter(
        "keras",
        "softmax_focal",
        "keras",
        _src(
            """
            import numpy as np
            import torch
            from oracles.tf import keras
            def impl(logits, target, *, gamma=2.0, alpha=None, reduction="mean"):
                if alpha is not None:
                    raise TypeError("keras CategoricalFocalCrossentropy takes a scalar alpha, not per-class weights")
                k = keras()
                loss = k.losses.CategoricalFocalCrossentropy(alpha=1.0, gamma=gamma, from_logits=True, reduction=None)
                x = logits.detach().cpu().numpy()
                y = np.eye(x.shape[1], dtype=x.dtype)[target.cpu().numpy()]
                per = np.asarray(loss(y, x)) if x.shape[0] else np.zeros((0,), np.float32)
                out = torch.from_numpy(np.array(per))
                return out if reduction == "none" else (out.sum() if reduction == "sum" else out.mean())
            """
        ),
        {"function": "keras.losses.CategoricalFocalCrossentropy(alpha=1, from_logits=True, reduction=None)",
         "alpha": "None only (Keras' alpha is a scalar); per-class alpha raises", "compute dtype": "float32 with clipped probabilities",
         "autograd": "none", "reduction": "per-sample values reduced by the adapter"},
    ),
    Adapter(
        "keras",
        "kl_div",
        "keras",
        _src(
            """
            import numpy as np
            import torch
            from oracles.tf import keras
            def impl(input, target, *, reduction="mean", log_target=False):
                k = keras()
                p = target.detach().cpu().numpy()
                p = np.exp(p) if log_target else p
                q = np.exp(input.detach().cpu().numpy())
                # Keras sums over the last axis: each element fed as its own row of length 1.
                point = np.asarray(k.losses.KLDivergence(reduction=None)(p.reshape(-1, 1), q.reshape(-1, 1))) if p.size else np.zeros(0)
                out = torch.from_numpy(np.array(point)).reshape(input.shape)
                if reduction == "none":
                    return out
                if reduction == "sum":
                    return out.sum()
                return out.sum() / input.shape[0] if reduction == "batchmean" else out.mean()
            """
        ),
        {"function": "keras.losses.KLDivergence(reduction=None)", "input": "probabilities (exp of the log-space input)",
         "compute dtype": "float32, clips probabilities to [1e-7, 1]", "autograd": "none"},
    ),
    # --- torchvision ------------------------------------------------------------
    Adapter(
        "torchvision",
        "sigmoid_focal",
        "torchvision",
        _src(
            """
            from torchvision.ops import sigmoid_focal_loss
            def impl(logits, targets, *, alpha=0.25, gamma=2.0):
                return sigmoid_focal_loss(logits, targets, alpha=-1 if alpha is None else alpha, gamma=gamma, reduction="none")
            """
        ),
        {"function": "torchvision.ops.sigmoid_focal_loss", "alpha": "alpha < 0 means no weighting (None -> -1)", "reduction": "none"},
    ),
    *[
        Adapter(
            "torchvision",
            sid,
            "torchvision",
            _src(
                f"""
                from torchvision.ops import {fn}
                def impl(boxes1, boxes2, *, reduction="none", eps=1e-7):
                    return {fn}(boxes1, boxes2, reduction=reduction, eps=eps)
                """
            ),
            {"function": f"torchvision.ops.{fn}", "reduction": "passed through"},
        )
        for sid, fn in (("giou_loss", "generalized_box_iou_loss"), ("diou_loss", "distance_box_iou_loss"), ("ciou_loss", "complete_box_iou_loss"))
    ],
    # --- fvcore -------------------------------------------------------------------
    Adapter(
        "fvcore",
        "sigmoid_focal",
        "fvcore",
        _src(
            """
            from fvcore.nn import sigmoid_focal_loss
            def impl(logits, targets, *, alpha=0.25, gamma=2.0):
                return sigmoid_focal_loss(logits, targets, alpha=-1 if alpha is None else alpha, gamma=gamma, reduction="none")
            """
        ),
        {
            "function": "fvcore.nn.sigmoid_focal_loss",
            "alpha": "alpha < 0 means no weighting (None -> -1); library default is -1, not 0.25",
            "compute dtype": "casts inputs to float32",
            "reduction": "none",
        },
    ),
    # --- kornia -------------------------------------------------------------------
    Adapter(
        "kornia",
        "sigmoid_focal",
        "kornia",
        _AS_BC
        + _src(
            """
            from kornia.losses import binary_focal_loss_with_logits
            def impl(logits, targets, *, alpha=0.25, gamma=2.0):
                x, z = _as_bc(logits, targets)
                out = binary_focal_loss_with_logits(x, z, alpha=alpha, gamma=gamma, reduction="none")
                return out.reshape(logits.shape)
            """
        ),
        {
            "function": "kornia.losses.binary_focal_loss_with_logits",
            "alpha": "None means no weighting",
            "layout": "(B, C, *) required: elementwise input viewed as (1, N)",
            "soft targets": "t*alpha*(1-p)^g*(-log p) + (1-t)*(1-alpha)*p^g*(-log(1-p)) (focal factor per term)",
            "reduction": "none",
        },
    ),
    # --- monai --------------------------------------------------------------------
    Adapter(
        "monai",
        "sigmoid_focal",
        "monai",
        _AS_BC
        + _src(
            """
            from monai.losses import FocalLoss
            def impl(logits, targets, *, alpha=0.25, gamma=2.0):
                loss = FocalLoss(gamma=gamma, alpha=alpha, reduction="none", use_softmax=False)
                x, z = _as_bc(logits, targets)
                return loss(x, z).reshape(logits.shape)
            """
        ),
        {
            "function": "monai.losses.FocalLoss(use_softmax=False, reduction='none')",
            "alpha": "None means no weighting",
            "layout": "(B, N, *) required: elementwise input viewed as (1, N)",
            "reduction": "none",
        },
    ),
    # --- keras --------------------------------------------------------------------
    Adapter(
        "keras",
        "sigmoid_focal",
        "keras",
        _src(
            """
            import numpy as np
            import torch
            from oracles.tf import keras
            def impl(logits, targets, *, alpha=0.25, gamma=2.0):
                k = keras()
                loss = k.losses.BinaryFocalCrossentropy(apply_class_balancing=alpha is not None,
                    alpha=0.25 if alpha is None else alpha, gamma=gamma, from_logits=True, reduction=None)
                x = logits.detach().cpu().numpy()
                z = targets.detach().cpu().numpy()
                if x.shape == z.shape:  # unequal shapes reach Keras as given
                    x, z = x.reshape(-1, 1), z.reshape(-1, 1)
                out = np.asarray(loss(z, x)) if x.size else np.zeros((0,), dtype=np.float32)
                return torch.from_numpy(np.array(out)).reshape(logits.shape)
            """
        ),
        {
            "function": "keras.losses.BinaryFocalCrossentropy(from_logits=True, reduction=None)",
            "alpha": "apply_class_balancing=False for None",
            "layout": "means over the last axis: each element fed as a row of length 1",
            "compute dtype": "float32 (Keras floatx), returned as computed",
            "autograd": "none",
        },
    ),
]

LIBRARIES: tuple[str, ...] = tuple(dict.fromkeys(a.library for a in ADAPTERS))


def build(adapter: Adapter) -> Any:
    """Execute the adapter's source and return its ``impl``."""
    namespace: dict[str, Any] = {}
    exec(compile(adapter.source, f"<adapter {adapter.library}:{adapter.spec_id}>", "exec"), namespace)  # noqa: S102
    return namespace["impl"]


def _target(adapter: Adapter) -> Target:
    t = Target(
        name=adapter.library,
        spec_id=adapter.spec_id,
        fn=None,
        source=f"adapter:{adapter.library}",
        kind="adapter",
        conventions=dict(adapter.conventions),
        repro_call=adapter.source,
    )
    if importlib.util.find_spec(adapter.module) is None:
        t.skip_reason = f"library {adapter.module!r} is not installed (pip install {adapter.module})"
        return t
    try:
        t.fn = build(adapter)
    except Exception as exc:  # noqa: BLE001 - a broken install is an outcome, not a crash
        t.load_error = f"adapter {adapter.library} for {adapter.spec_id} failed to load: {type(exc).__name__}: {exc}"
    return t


def targets_for(name: str, specs: Sequence[str]) -> list[Target]:
    from conformance.spec import load_specs

    known = load_specs()
    libs = LIBRARIES if name == "all-installed" else (name,)
    if name != "all-installed" and name not in LIBRARIES:
        raise ValueError(
            f"--target {name!r} is not 'reference', 'variants', variant:NAME, a package.module[:attr] path, "
            f"'all-installed' or a known adapter ({', '.join(LIBRARIES)})"
        )
    out = [
        _target(a)
        for lib in libs
        for a in ADAPTERS
        if a.library == lib and a.spec_id in known and (not specs or a.spec_id in specs)
    ]
    if name == "all-installed":
        out = [t for t in out if t.skip_reason is None] + [t for t in out if t.skip_reason is not None]
    return out
