"""Adapters for torchvision."""

from __future__ import annotations

from conformance.adapters._model import Adapter, Library, src

LIBRARY = Library("torchvision", module="torchvision", distribution="torchvision", framework="torch")

ADAPTERS = [
    # sigmoid family
    Adapter(
        LIBRARY,
        "sigmoid_focal",
        src(
            """
            def impl(logits, targets, *, alpha=0.25, gamma=2.0, reduction="none"):
                from torchvision.ops import sigmoid_focal_loss
                return sigmoid_focal_loss(logits, targets, alpha=-1 if alpha is None else alpha, gamma=gamma,
                                          reduction=reduction)
            """
        ),
        translations={"alpha": "None -> -1 (torchvision's 'no weighting')", "gamma, reduction": "passed through"},
        function="torchvision.ops.sigmoid_focal_loss",
        options=("alpha", "gamma", "reduction"),
    ),
    Adapter(
        LIBRARY,
        "giou_loss",
        src(
            """
            from torchvision.ops import generalized_box_iou_loss
            def impl(boxes1, boxes2, *, reduction="none", eps=1e-7):
                return generalized_box_iou_loss(boxes1, boxes2, reduction=reduction, eps=eps)
            """
        ),
        translations={"reduction": "passed through", "eps": "passed through"},
        function="torchvision.ops.generalized_box_iou_loss",
        options=("reduction", "eps"),
    ),
    Adapter(
        LIBRARY,
        "diou_loss",
        src(
            """
            from torchvision.ops import distance_box_iou_loss
            def impl(boxes1, boxes2, *, reduction="none", eps=1e-7):
                return distance_box_iou_loss(boxes1, boxes2, reduction=reduction, eps=eps)
            """
        ),
        translations={"reduction": "passed through", "eps": "passed through"},
        function="torchvision.ops.distance_box_iou_loss",
        options=("reduction", "eps"),
    ),
    Adapter(
        LIBRARY,
        "ciou_loss",
        src(
            """
            from torchvision.ops import complete_box_iou_loss
            def impl(boxes1, boxes2, *, reduction="none", eps=1e-7):
                return complete_box_iou_loss(boxes1, boxes2, reduction=reduction, eps=eps)
            """
        ),
        translations={"reduction": "passed through", "eps": "passed through"},
        function="torchvision.ops.complete_box_iou_loss",
        options=("reduction", "eps"),
    ),
]
