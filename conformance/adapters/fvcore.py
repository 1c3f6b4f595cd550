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
            def impl(input, target, *, beta=1.0):
                return smooth_l1_loss(input, target, beta, reduction="none")
            """
        ),
        translations={"beta": "beta < 1e-5 is L1 (same convention)", "reduction": "none"},
        function="fvcore.nn.smooth_l1_loss",
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
    Adapter(
        LIBRARY,
        "sigmoid_focal",
        src(
            """
            from fvcore.nn import sigmoid_focal_loss
            def impl(logits, targets, *, alpha=0.25, gamma=2.0):
                return sigmoid_focal_loss(logits, targets, alpha=-1 if alpha is None else alpha, gamma=gamma, reduction="none")
            """
        ),
        translations={
            "alpha": "alpha < 0 means no weighting (None -> -1); library default is -1, not 0.25",
            "compute dtype": "casts inputs to float32",
            "reduction": "none",
        },
        function="fvcore.nn.sigmoid_focal_loss",
    ),
]
