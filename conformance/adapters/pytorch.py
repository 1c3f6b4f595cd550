"""Adapters for torch."""

from __future__ import annotations

from conformance.adapters._model import Adapter, Library, src

LIBRARY = Library("torch", module="torch", distribution="torch", framework="torch")

# Regression family: a weight for losses that take none, reduced as torch's own reductions do.
_WEIGHTED = src(
    """
    def _weighted(loss, weight, reduction):
        loss = loss * weight
        if reduction == "none":
            return loss
        if reduction == "sum":
            return loss.sum()
        if reduction == "mean":
            return loss.mean()
        raise ValueError(f"{reduction} is not a valid value for reduction")
    """
)

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
    # Regression family: torch's losses have no weight=; with one, the adapter weights their 'none'
    # output and reduces it as torch does (_WEIGHTED).
    Adapter(
        LIBRARY,
        "smooth_l1",
        _WEIGHTED
        + src(
            """
            import torch.nn.functional as F
            def impl(input, target, *, beta=1.0, weight=None, reduction="none"):
                if weight is None:
                    return F.smooth_l1_loss(input, target, beta=beta, reduction=reduction)
                return _weighted(F.smooth_l1_loss(input, target, beta=beta, reduction="none"), weight, reduction)
            """
        ),
        translations={
            "beta": "passed through (torch keeps the quadratic part for 0 < beta < 1e-5)",
            "reduction": "passed through",
            "weight": "not in torch: the 'none' loss times weight, summed or averaged over every element",
        },
        function="torch.nn.functional.smooth_l1_loss",
        options=("beta", "reduction"),
    ),
    Adapter(
        LIBRARY,
        "smooth_l1",
        _WEIGHTED
        + src(
            """
            import math
            import torch.nn.functional as F
            def impl(input, target, *, beta=1.0, weight=None, reduction="none"):
                r = reduction if weight is None else "none"
                if beta == 0:  # huber_loss rejects delta = 0; smooth L1 at beta = 0 is L1
                    loss = F.l1_loss(input, target, reduction=r)
                else:
                    # huber(s d; s beta) = s^2 huber(d; beta). With s = 2^-e a power of two (exact) and
                    # s beta <= 1, huber's beta |d| cannot overflow where smooth L1 (|d| - beta / 2) does not.
                    s = 1.0 if beta <= 1 else 2.0 ** -math.frexp(beta)[1]
                    x, y = (input, target) if s == 1 else (input * s, target * s)
                    loss = F.huber_loss(x, y, delta=beta * s, reduction=r) / (beta * s) / s
                return loss if weight is None else _weighted(loss, weight, reduction)
            """
        ),
        translations={
            "beta": "huber_loss(x, y, delta=beta) / beta (smooth L1 is Huber over delta), for beta > 1 on inputs scaled "
            "by the power of two s that makes s beta < 1 (exact), so beta |d| cannot overflow; beta == 0 -> l1_loss",
            "reduction": "passed through",
            "weight": "not in torch: the 'none' loss times weight, summed or averaged over every element",
        },
        function="torch.nn.functional.huber_loss",
        variant="huber",
        options=("delta", "reduction"),
    ),
    Adapter(
        LIBRARY,
        "l1",
        _WEIGHTED
        + src(
            """
            import torch.nn.functional as F
            def impl(input, target, *, weight=None, reduction="none"):
                if weight is None:
                    return F.l1_loss(input, target, reduction=reduction)
                return _weighted(F.l1_loss(input, target, reduction="none"), weight, reduction)
            """
        ),
        translations={
            "reduction": "passed through",
            "weight": "not in torch: the 'none' loss times weight, summed or averaged over every element",
        },
        function="torch.nn.functional.l1_loss",
        options=("reduction",),
    ),
    Adapter(
        LIBRARY,
        "mse",
        _WEIGHTED
        + src(
            """
            import torch.nn.functional as F
            def impl(input, target, *, weight=None, reduction="none"):
                if weight is None:
                    return F.mse_loss(input, target, reduction=reduction)
                return _weighted(F.mse_loss(input, target, reduction="none"), weight, reduction)
            """
        ),
        translations={
            "reduction": "passed through",
            "weight": "not in torch: the 'none' loss times weight, summed or averaged over every element",
        },
        function="torch.nn.functional.mse_loss",
        options=("reduction",),
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
        options=("weight", "ignore_index", "label_smoothing", "reduction"),
        not_covered={"size_average, reduce": "deprecated aliases of reduction"},
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
        options=("reduction", "log_target"),
        not_covered={"size_average, reduce": "deprecated aliases of reduction"},
    ),
]
