"""Adapters for kornia."""

from __future__ import annotations

from conformance.adapters._model import Adapter, Library, src

LIBRARY = Library("kornia", module="kornia", distribution="kornia", framework="torch")

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
            import torch
            from kornia.losses import focal_loss
            def impl(logits, target, *, gamma=2.0, alpha=None, ignore_index=None, label_smoothing=0.0, reduction="mean"):
                if label_smoothing:
                    raise NotImplementedError("kornia.losses.focal_loss has no label smoothing")
                per_class = isinstance(alpha, torch.Tensor)
                out = focal_loss(logits, target, alpha=None if per_class else alpha, gamma=gamma, reduction=reduction,
                                 weight=alpha if per_class else None, ignore_index=ignore_index)
                # kornia's 'none' keeps the class axis (zero off the target class): per entry is its sum.
                return out.sum(1) if reduction == "none" else out
            """
        ),
        translations={
            "alpha": "a number passed as kornia's alpha (class 0 weighted 1 - alpha, as in the spec); per-class "
            "weights passed as weight=",
            "ignore_index": "passed through (None: nothing ignored)",
            "label_smoothing": "not offered: a non-zero value raises NotImplementedError",
            "reduction": "library's own; 'none' summed over the class axis",
        },
        function="kornia.losses.focal_loss",
        options=("alpha", "gamma", "weight", "ignore_index", "reduction"),
    ),
    Adapter(
        LIBRARY,
        "sigmoid_focal",
        _AS_BC
        + src(
            """
            from kornia.losses import binary_focal_loss_with_logits
            def impl(logits, targets, *, alpha=0.25, gamma=2.0):
                x, z = _as_bc(logits, targets)
                out = binary_focal_loss_with_logits(x, z, alpha=alpha, gamma=gamma, reduction="none")
                return out.reshape(logits.shape)
            """
        ),
        translations={
            "alpha": "None means no weighting",
            "layout": "(B, C, *) required: elementwise input viewed as (1, N)",
            "soft targets": "t*alpha*(1-p)^g*(-log p) + (1-t)*(1-alpha)*p^g*(-log(1-p)) (focal factor per term)",
            "reduction": "none",
        },
        function="kornia.losses.binary_focal_loss_with_logits",
    ),
]
