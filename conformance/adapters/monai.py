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

# sigmoid family: monai documents BNH[WD] inputs; an elementwise input of fewer than three
# dimensions gets trailing axes of 1, so that its spatial size is 1 and nothing else changes.
_BNH = src(
    """
    def _bnh(a):
        return a.reshape(*a.shape, *([1] * (3 - a.dim()))) if a.dim() < 3 else a
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
    # sigmoid family
    Adapter(
        LIBRARY,
        "sigmoid_focal",
        _BNH
        + src(
            """
            def impl(logits, targets, *, alpha=0.25, gamma=2.0, reduction="none"):
                from monai.losses import FocalLoss
                loss = FocalLoss(gamma=gamma, alpha=alpha, reduction=reduction, use_softmax=False)
                out = loss(_bnh(logits), _bnh(targets))
                return out.reshape(logits.shape) if reduction == "none" else out
            """
        ),
        translations={
            "layout": "BNH[WD] required: inputs of 3 or more dimensions pass as they are (B, N, spatial...); fewer "
            "get trailing axes of 1",
            "alpha": "passed through (None: no weighting, monai's default)",
            "gamma, reduction": "passed through",
        },
        function="monai.losses.FocalLoss(use_softmax=False)",
        options=("alpha", "gamma", "reduction"),
        not_covered={
            "weight": "the focal spec has no weight; exercised at gamma = 0 by the sigmoid_bce adapter",
            "use_softmax": "fixed to False: the softmax form belongs to the softmax family",
            "include_background": "drops channel 0 from the loss; no canonical counterpart (an elementwise loss has "
            "no background channel)",
            "to_onehot_y": "index targets one-hot encoded; canonical targets are dense",
            "ignore_index": "masks target entries equal to it; canonical targets lie in [0, 1] and no spec states a "
            "masked element",
        },
    ),
    Adapter(
        LIBRARY,
        "sigmoid_bce",
        src(
            """
            def impl(logits, targets, *, weight=None, pos_weight=None, reduction="none"):
                from monai.losses import FocalLoss
                if pos_weight is not None:
                    raise NotImplementedError("monai FocalLoss has no pos_weight")
                if weight is not None:
                    try:
                        weight = weight.expand(logits.shape).reshape(-1)
                    except RuntimeError:
                        raise ValueError(f"weight of shape {tuple(weight.shape)} does not broadcast to the logits' "
                                         f"shape {tuple(logits.shape)}: no per-channel equivalent") from None
                    weight = weight.reshape(()) if weight.numel() == 1 else weight
                loss = FocalLoss(gamma=0.0, alpha=None, weight=weight, reduction=reduction, use_softmax=False)
                if logits.shape == targets.shape:
                    x, z = logits.reshape(1, -1, 1), targets.reshape(1, -1, 1)
                else:  # unequal shapes reach monai with the channel axis second, as given
                    x, z = logits.reshape(1, *logits.shape), targets.reshape(1, *targets.shape)
                out = loss(x, z)
                return out.reshape(logits.shape) if reduction == "none" else out
            """
        ),
        translations={
            "loss": "FocalLoss at gamma = 0, alpha = None, which monai documents as equal to BCEWithLogitsLoss",
            "layout": "each element its own channel: (1, N, 1)",
            "weight": "monai's per-channel class weight: expanded to the logits' shape and flattened to (N,) (a 0-d "
            "weight for N = 1, which monai requires); one that does not broadcast has no such form (the adapter "
            "raises ValueError)",
            "pos_weight": "none in monai: the adapter raises NotImplementedError",
            "reduction": "passed through",
        },
        function="monai.losses.FocalLoss(use_softmax=False, gamma=0, alpha=None)",
        options=("weight", "reduction"),
        not_covered={
            "gamma": "fixed to 0 (BCE); exercised by the sigmoid_focal adapter",
            "alpha": "fixed to None (BCE); exercised by the sigmoid_focal adapter",
            "use_softmax": "fixed to False: the softmax form belongs to the softmax family",
            "include_background": "drops channel 0 from the loss; no canonical counterpart",
            "to_onehot_y": "index targets one-hot encoded; canonical targets are dense",
            "ignore_index": "masks target entries equal to it; canonical targets lie in [0, 1] and no spec states a "
            "masked element",
        },
    ),
]
