"""Adapters for torch."""

from __future__ import annotations

from conformance.adapters._model import Adapter, Library, src

LIBRARY = Library("torch", module="torch", distribution="torch", framework="torch")

ADAPTERS = [
    Adapter(
        LIBRARY,
        "sigmoid_bce",
        src(
            """
            import torch.nn.functional as F
            def impl(logits, targets):
                return F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
            """
        ),
        translations={"reduction": "none"},
        function="torch.nn.functional.binary_cross_entropy_with_logits",
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
