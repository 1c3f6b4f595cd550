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

# sigmoid family: an elementwise loss of any shape is the same loss on (1, N), one channel per
# element; a weight that broadcasts to the logits becomes kornia's per-channel vector of N.
_PER_ELEMENT = src(
    """
    def _one_sample(a, b):
        # Equal shapes: (1, N). Unequal shapes pass through (with a leading batch axis if
        # needed) so that kornia itself sees the mismatch.
        if a.shape == b.shape:
            return a.reshape(1, -1), b.reshape(1, -1)
        return (a if a.dim() >= 2 else a.reshape(1, -1)), (b if b.dim() >= 2 else b.reshape(1, -1))
    def _per_channel(w, logits):
        # A weight that does not broadcast to the logits has no per-channel form: the
        # translation itself fails (kornia's own check is on its (C,) layout).
        try:
            return w.expand(logits.shape).reshape(-1)
        except RuntimeError:
            raise ValueError(f"weight of shape {tuple(w.shape)} does not broadcast to the logits' shape "
                             f"{tuple(logits.shape)}: no per-channel equivalent") from None
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
    # sigmoid family. kornia's (B, C, *) layout: each element is its own channel of one sample,
    # x.reshape(1, N), so its per-channel weight and pos_weight can express any weight that
    # broadcasts to the logits (expanded to the logits' shape, then flattened the same way).
    Adapter(
        LIBRARY,
        "sigmoid_focal",
        _PER_ELEMENT
        + src(
            """
            def impl(logits, targets, *, alpha=0.25, gamma=2.0, reduction="none"):
                from kornia.losses import binary_focal_loss_with_logits
                x, z = _one_sample(logits, targets)
                out = binary_focal_loss_with_logits(x, z, alpha=alpha, gamma=gamma, reduction=reduction)
                return out.reshape(logits.shape) if reduction == "none" else out
            """
        ),
        translations={
            "layout": "(B, C, *) required: the elementwise input viewed as (1, N), one channel per element",
            "alpha": "passed through (None: no weighting, kornia's own)",
            "gamma, reduction": "passed through",
        },
        function="kornia.losses.binary_focal_loss_with_logits",
        options=("alpha", "gamma", "reduction"),
        not_covered={
            "pos_weight": "the focal spec has no pos_weight; exercised at gamma = 0 by the sigmoid_bce adapter",
            "weight": "the focal spec has no weight; exercised at gamma = 0 by the sigmoid_bce adapter",
            "ignore_index": "masks target entries equal to it (default -100); canonical targets lie in [0, 1], so no "
            "canonical input reaches it and no spec states a masked element",
        },
    ),
    Adapter(
        LIBRARY,
        "sigmoid_bce",
        _PER_ELEMENT
        + src(
            """
            def impl(logits, targets, *, weight=None, pos_weight=None, reduction="none"):
                from kornia.losses import binary_focal_loss_with_logits
                x, z = _one_sample(logits, targets)
                w = None if weight is None else _per_channel(weight, logits)
                pw = None if pos_weight is None else _per_channel(pos_weight, logits)
                out = binary_focal_loss_with_logits(x, z, alpha=None, gamma=0.0, reduction=reduction,
                                                    pos_weight=pw, weight=w)
                return out.reshape(logits.shape) if reduction == "none" else out
            """
        ),
        translations={
            "loss": "binary focal loss at gamma = 0, alpha = None (kornia documents it as t (-log p) + (1 - t) "
            "(-log(1 - p)), the BCE)",
            "layout": "(B, C, *) required: the elementwise input viewed as (1, N), one channel per element",
            "weight, pos_weight": "kornia's are per channel (C,): expanded to the logits' shape and flattened to (N,); "
            "one that does not broadcast has no such form and the adapter raises ValueError",
            "reduction": "passed through",
        },
        function="kornia.losses.binary_focal_loss_with_logits(alpha=None, gamma=0)",
        options=("pos_weight", "weight", "reduction"),
        not_covered={
            "alpha": "fixed to None (BCE); exercised by the sigmoid_focal adapter",
            "gamma": "fixed to 0 (BCE); exercised by the sigmoid_focal adapter",
            "ignore_index": "masks target entries equal to it (default -100); canonical targets lie in [0, 1], so no "
            "canonical input reaches it and no spec states a masked element",
        },
    ),
]
