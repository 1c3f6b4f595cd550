"""Adapters for effdet (efficientdet-pytorch)."""

from __future__ import annotations

from conformance.adapters._model import Adapter, Library, src

LIBRARY = Library("effdet", module="effdet", distribution="effdet", framework="torch",
                  doc_url="https://github.com/rwightman/efficientdet-pytorch/blob/master/effdet/loss.py")

# Both losses return the elementwise loss divided by `normalizer` (EfficientDet's detection
# loss then sums it). The canonical keywords map onto that documented division:
#   alpha=None -> alpha = 1/2 with normalizer 1/2: alpha_t = 1/2 for every target, and / (1/2) undoes it exactly;
#   'sum'      -> the sum of the elementwise values;
#   'mean'     -> the sum of the values divided by normalizer = N (an empty input: torch's mean of nothing).


def _source(function: str, extra: str) -> str:
    return src(
        f"""
        def impl(logits, targets, *, alpha=0.25, gamma=2.0, reduction="none"):
            from effdet.loss import {function}
            if reduction not in ("none", "mean", "sum"):
                raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {{reduction!r}} (effdet divides by "
                                 "a normalizer and leaves the sum to the caller)")
            a, normalizer = (0.5, 0.5) if alpha is None else (alpha, 1.0)
            if reduction == "mean" and logits.numel():
                normalizer = normalizer * logits.numel()
            out = {function}(logits, targets, alpha=a, gamma=gamma, normalizer=normalizer{extra})
            if reduction == "none":
                return out
            return out.mean() if reduction == "mean" and not logits.numel() else out.sum()
        """
    )


_TRANSLATIONS = {
    "alpha": "None -> alpha = 0.5 with normalizer 0.5 (effdet has no 'no weighting'; alpha_t = 1/2 everywhere)",
    "gamma": "passed through",
    "reduction": "'none': normalizer 1; 'sum': the sum of the values; 'mean': normalizer N, then the sum (an "
    "empty input: the mean of nothing); any other reduction raises ValueError in the adapter",
}


# regression family (adapters-rest) --------------------------------------------------------------------------
_REGRESSION = {
    "weight": "passed as weights (multiplies each element's loss, broadcast)",
    "reduction": "size_average=True is 'mean', False 'sum'; 'none' is one size_average=False call per element; an "
    "unknown reduction raises ValueError in the adapter",
}


def _regression_source(function: str, keyword: str, scale: str) -> str:
    return src(
        f"""
        import torch
        def impl(input, target, *, beta=1.0, weight=None, reduction="none"):
            from effdet.loss import {function}
            def call(x, y, w, size_average):
                return {function}(x, y, {keyword}, weights=w, size_average=size_average){scale}
            if reduction not in ("none", "mean", "sum"):
                raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {{reduction!r}} (effdet has "
                                 "size_average)")
            if reduction != "none" or input.shape != target.shape:  # a mismatch is seen by the library as given
                return call(input, target, weight, reduction == "mean")
            x, y = input.reshape(-1), target.reshape(-1)
            w = None if weight is None else torch.broadcast_to(weight, input.shape).reshape(-1)
            if x.numel() == 0:  # no element to call it on: the empty sum, viewed as empty
                return call(x, y, w, False).expand(0).reshape(input.shape)
            per = [call(x[i], y[i], None if w is None else w[i], False) for i in range(x.numel())]
            return torch.stack(per).reshape(input.shape)
        """
    )


ADAPTERS = [
    # sigmoid family
    Adapter(
        LIBRARY, "sigmoid_focal", _source("new_focal_loss", ", label_smoothing=0.0"),
        translations={**_TRANSLATIONS, "label_smoothing": "0 (the library's default is 0.01)"},
        function="effdet.loss.new_focal_loss",
        options=("alpha", "gamma", "normalizer"),
        not_covered={
            "label_smoothing": "smooths the targets of the cross-entropy only, while alpha_t and p_t use the unsmoothed "
            "targets (documented: 'before label smoothing'), so no target mapping reaches the focal spec: it runs "
            "at 0 here and is exercised at gamma = 0 by the sigmoid_bce adapter effdet[label_smoothing=0.5]",
        },
    ),
    Adapter(
        LIBRARY, "sigmoid_bce",
        src(
            """
            def impl(logits, targets, *, weight=None, pos_weight=None, reduction="none"):
                from effdet.loss import new_focal_loss
                if weight is not None or pos_weight is not None:
                    raise NotImplementedError("effdet's new_focal_loss has no weight or pos_weight")
                if reduction not in ("none", "mean", "sum"):
                    raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r} (effdet divides "
                                     "by a normalizer and leaves the sum to the caller)")
                # At gamma = 0 and alpha = 1/2 the focal loss is BCE(x, smoothed z) / 2; normalizer 1/2 undoes
                # the 1/2. effdet smooths to z (1 - s) + s / 2: for s = 1/2 the targets 2 z - 1/2 map back onto z.
                normalizer = 0.5 * logits.numel() if reduction == "mean" and logits.numel() else 0.5
                out = new_focal_loss(logits, 2 * targets - 0.5, alpha=0.5, gamma=0.0, normalizer=normalizer,
                                     label_smoothing=0.5)
                if reduction == "none":
                    return out
                return out.mean() if reduction == "mean" and not logits.numel() else out.sum()
            """
        ),
        variant="label_smoothing=0.5",
        translations={
            "loss": "new_focal_loss at gamma = 0, alpha = 1/2, normalizer 1/2: BCE on the smoothed targets",
            "label_smoothing": "0.5: effdet smooths the cross-entropy's targets to z / 2 + 1/4; the adapter passes "
            "2 z - 1/2, which that maps back onto z",
            "reduction": _TRANSLATIONS["reduction"],
            "weight, pos_weight": "none in effdet: the adapter raises NotImplementedError",
        },
        function="effdet.loss.new_focal_loss",
        options=("label_smoothing", "normalizer"),
        not_covered={"alpha": "fixed to 1/2 (with normalizer 1/2): exercised by the sigmoid_focal adapters",
                     "gamma": "fixed to 0 (BCE): exercised by the sigmoid_focal adapters"},
    ),
    Adapter(
        LIBRARY, "sigmoid_focal", _source("focal_loss_legacy", ""), variant="legacy",
        translations=_TRANSLATIONS,
        function="effdet.loss.focal_loss_legacy",
        options=("alpha", "gamma", "normalizer"),
    ),
    # regression family (adapters-rest): smooth_l1_loss(input, target, beta, weights, size_average) is the
    # spec's smooth L1 (L1 for beta < 1e-5) times weights, mean or sum; huber_loss(delta) is delta times it.
    Adapter(LIBRARY, "smooth_l1", _regression_source("smooth_l1_loss", "beta=beta", ""),
            translations={"beta": "passed explicitly (the library's default is 1/9)", **_REGRESSION},
            function="effdet.loss.smooth_l1_loss", options=("beta", "weights", "size_average")),
    Adapter(LIBRARY, "smooth_l1", _regression_source("huber_loss", "delta=beta", " / beta"), variant="huber",
            translations={"beta": "delta = beta, and the Huber loss divided by beta: Huber(delta) / delta is smooth "
                          "L1 with beta = delta", **_REGRESSION},
            function="effdet.loss.huber_loss", options=("delta", "weights", "size_average")),
]

