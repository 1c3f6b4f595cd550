"""Adapters for torch."""

from __future__ import annotations

from conformance.adapters._model import Adapter, Library, src

LIBRARY = Library("torch", module="torch", distribution="torch", framework="torch")

ADAPTERS = [
    # sigmoid family: every argument of the function changes the maths and maps onto a canonical keyword.
    Adapter(
        LIBRARY,
        "sigmoid_bce",
        src(
            """
            import torch.nn.functional as F
            def impl(logits, targets, *, weight=None, pos_weight=None, reduction="none"):
                return F.binary_cross_entropy_with_logits(logits, targets, weight=weight, pos_weight=pos_weight,
                                                          reduction=reduction)
            """
        ),
        translations={"weight, pos_weight, reduction": "passed through (torch's names and semantics)"},
        function="torch.nn.functional.binary_cross_entropy_with_logits",
        options=("weight", "pos_weight", "reduction"),
        not_covered={"size_average": "deprecated alias of reduction", "reduce": "deprecated alias of reduction"},
    ),
    Adapter(
        LIBRARY,
        "smooth_l1",
        src(
            """
            import torch.nn.functional as F
            def impl(input, target, *, beta=1.0):
                return F.smooth_l1_loss(input, target, beta=beta, reduction="none")
            """
        ),
        translations={
            "beta": "passed through (torch keeps the quadratic part for 0 < beta < 1e-5)",
            "reduction": "none",
        },
        function="torch.nn.functional.smooth_l1_loss",
    ),
    Adapter(
        LIBRARY,
        "smooth_l1",
        src(
            """
            import torch.nn.functional as F
            def impl(input, target, *, beta=1.0):
                if beta == 0:
                    return F.l1_loss(input, target, reduction="none")
                return F.huber_loss(input, target, delta=beta, reduction="none") / beta
            """
        ),
        translations={"beta": "huber(delta=beta) / beta; beta == 0 -> l1_loss", "reduction": "none"},
        function="torch.nn.functional.huber_loss",
        variant="huber",
    ),
    Adapter(
        LIBRARY,
        "l1",
        src(
            """
            import torch.nn.functional as F
            def impl(input, target):
                return F.l1_loss(input, target, reduction="none")
            """
        ),
        translations={"reduction": "none"},
        function="torch.nn.functional.l1_loss",
    ),
    Adapter(
        LIBRARY,
        "mse",
        src(
            """
            import torch.nn.functional as F
            def impl(input, target):
                return F.mse_loss(input, target, reduction="none")
            """
        ),
        translations={"reduction": "none"},
        function="torch.nn.functional.mse_loss",
    ),
    Adapter(
        LIBRARY,
        "softmax_cross_entropy",
        src(
            """
            import torch.nn.functional as F
            def impl(logits, target, *, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
                return F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index,
                                       label_smoothing=label_smoothing, reduction=reduction)
            """
        ),
        translations={"reduction": "passed through"},
        function="torch.nn.functional.cross_entropy",
    ),
    Adapter(
        LIBRARY,
        "kl_div",
        src(
            """
            import torch.nn.functional as F
            def impl(input, target, *, reduction="mean", log_target=False):
                return F.kl_div(input, target, reduction=reduction, log_target=log_target)
            """
        ),
        translations={"reduction": "passed through"},
        function="torch.nn.functional.kl_div",
    ),
]
