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
            def impl(logits, target, *, gamma=2.0, alpha=None, ignore_index=None, label_smoothing=0.0, reduction="mean"):
                if label_smoothing:
                    raise NotImplementedError("monai.losses.FocalLoss has no label smoothing")
                loss = FocalLoss(gamma=gamma, alpha=alpha, reduction=reduction, use_softmax=True, to_onehot_y=True,
                                 ignore_index=ignore_index)
                out = loss(logits, target.unsqueeze(1))
                # monai's 'none' keeps the class axis (zero off the target class): per entry is its sum.
                return out.sum(1) if reduction == "none" else out
            """
        ),
        translations={
            "alpha": "a number (class 0 weighted 1 - alpha, as in the spec) or the per-class tensor, passed through",
            "target": "class indices given as (N, 1, *) with to_onehot_y=True",
            "ignore_index": "passed through (None: nothing ignored)",
            "label_smoothing": "not offered: a non-zero value raises NotImplementedError",
            "reduction": "library's own; 'none' summed over the class axis",
        },
        function="monai.losses.FocalLoss(use_softmax=True, to_onehot_y=True)",
        options=("alpha", "gamma", "ignore_index", "reduction"),
        not_covered={"weight": "a per-class multiplier like a per-class alpha, which the canonical alpha reaches",
                     "include_background": "drops class 0 from the loss, outside the spec's contract"},
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
