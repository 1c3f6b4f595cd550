"""Adapters for fvcore."""

from __future__ import annotations

from conformance.adapters._model import Adapter, Library, src

LIBRARY = Library("fvcore", module="fvcore", distribution="fvcore", framework="torch")

ADAPTERS = [
    Adapter(
        LIBRARY,
        "smooth_l1",
        src(
            """
            from fvcore.nn import smooth_l1_loss
            def impl(input, target, *, beta=1.0, weight=None, reduction="none"):
                if weight is None:
                    return smooth_l1_loss(input, target, beta, reduction=reduction)
                # fvcore has no weight: its 'none' loss times weight, reduced as its own reduction does.
                loss = smooth_l1_loss(input, target, beta, reduction="none") * weight
                if reduction == "mean":
                    return loss.mean() if loss.numel() > 0 else 0.0 * loss.sum()
                return loss.sum() if reduction == "sum" else loss
            """
        ),
        translations={
            "beta": "beta < 1e-5 is L1 (same convention)",
            "reduction": "passed through",
            "weight": "not in fvcore: the 'none' loss times weight, reduced as fvcore reduces",
        },
        function="fvcore.nn.smooth_l1_loss",
        options=("beta", "reduction"),
    ),
    Adapter(
        LIBRARY,
        "giou_loss",
        src(
            """
            from fvcore.nn import giou_loss
            def impl(boxes1, boxes2, *, reduction="none", eps=1e-7):
                return giou_loss(boxes1, boxes2, reduction=reduction, eps=eps)
            """
        ),
        translations={"inverted boxes": "assert statements", "reduction": "passed through", "eps": "passed through"},
        function="fvcore.nn.giou_loss",
        options=("reduction", "eps"),
    ),
    # sigmoid family
    Adapter(
        LIBRARY,
        "sigmoid_focal",
        src(
            """
            def impl(logits, targets, *, alpha=0.25, gamma=2.0, reduction="none"):
                from fvcore.nn import sigmoid_focal_loss
                return sigmoid_focal_loss(logits, targets, alpha=-1 if alpha is None else alpha, gamma=gamma,
                                          reduction=reduction)
            """
        ),
        translations={
            "alpha": "None -> -1 (fvcore's 'no weighting'); passed explicitly, so fvcore's default -1 is never used",
            "gamma, reduction": "passed through",
        },
        function="fvcore.nn.sigmoid_focal_loss",
        options=("alpha", "gamma", "reduction"),
        not_covered={
            "sigmoid_focal_loss_star": "FL* (RetinaNet appendix), -log sigmoid(gamma x (2z - 1)) / gamma, is another "
            "loss: no spec states it (it equals BCE only for hard targets at gamma = 1)",
        },
    ),
]
