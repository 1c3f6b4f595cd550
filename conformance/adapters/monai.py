"""Adapters for monai."""

from __future__ import annotations

from conformance.adapters._model import Adapter, Library, src

LIBRARY = Library("monai", module="monai", distribution="monai", framework="torch")

# kornia and monai insist on (B, C, *) inputs; an elementwise loss of any shape is the same loss on
# its flattened (1, N) view.
_AS_BC = src(
    """
    def _as_bc(a, b):
        # Equal shapes: the flattened (1, N) view. Unequal shapes pass through (with a
        # leading batch axis if needed) so the library itself sees the mismatch.
        if a.shape == b.shape:
            return a.reshape(1, -1), b.reshape(1, -1)
        return (a if a.dim() >= 2 else a.reshape(1, -1)), (b if b.dim() >= 2 else b.reshape(1, -1))
    """
)

ADAPTERS = [
    Adapter(
        LIBRARY,
        "softmax_focal",
        src(
            """
            from monai.losses import FocalLoss
            def impl(logits, target, *, gamma=2.0, alpha=None, reduction="mean"):
                loss = FocalLoss(gamma=gamma, alpha=alpha, reduction=reduction, use_softmax=True, to_onehot_y=True)
                out = loss(logits, target.unsqueeze(1))
                return out.sum(1) if reduction == "none" and out.dim() == 2 else out
            """
        ),
        translations={"alpha": "per-class tensor", "reduction": "library's own; 'none' summed over the class axis"},
        function="monai.losses.FocalLoss(use_softmax=True, to_onehot_y=True)",
    ),
    Adapter(
        LIBRARY,
        "sigmoid_focal",
        _AS_BC
        + src(
            """
            from monai.losses import FocalLoss
            def impl(logits, targets, *, alpha=0.25, gamma=2.0):
                loss = FocalLoss(gamma=gamma, alpha=alpha, reduction="none", use_softmax=False)
                x, z = _as_bc(logits, targets)
                return loss(x, z).reshape(logits.shape)
            """
        ),
        translations={
            "alpha": "None means no weighting",
            "layout": "(B, N, *) required: elementwise input viewed as (1, N)",
            "reduction": "none",
        },
        function="monai.losses.FocalLoss(use_softmax=False, reduction='none')",
    ),
]
