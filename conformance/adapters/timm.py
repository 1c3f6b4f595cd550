"""Adapters for timm."""

from __future__ import annotations

from conformance.adapters._model import Adapter, Library, src

LIBRARY = Library("timm", module="timm", distribution="timm", framework="torch",
                  doc_url="https://huggingface.co/docs/timm/reference/loss")

# timm.loss.BinaryCrossEntropy(smoothing, target_threshold, weight, reduction, sum_classes,
# pos_weight, smooth_dense) wraps F.binary_cross_entropy_with_logits; its forward reads
# x.shape[0] (a batch axis), so a 0-d input is passed as shape (1,) and its result reshaped back.
_COMMON = src(
    """
    def _batch(a):
        return a.reshape(1) if a.dim() == 0 else a
    def _out(out, logits, reduction):
        return out.reshape(logits.shape) if reduction == "none" and out.numel() == logits.numel() else out
    """
)

# (variant, smoothing, smooth_dense, target_threshold, sum_classes)
_SETTINGS: tuple[tuple[str | None, float, bool, float | None, bool], ...] = (
    (None, 0.1, False, None, False),
    ("smooth_dense=True", 0.5, True, None, False),
    ("target_threshold=0.5", 0.1, False, 0.5, False),
    ("sum_classes=True", 0.1, False, None, True),
)


def _source(*, smoothing: float, smooth_dense: bool, target_threshold: float | None, sum_classes: bool) -> str:
    head = src(
        f"""
        SMOOTHING = {smoothing}
        SMOOTH_DENSE = {smooth_dense}
        TARGET_THRESHOLD = {target_threshold}
        SUM_CLASSES = {sum_classes}
        """
    )
    if not sum_classes:
        call = src(
            """
            def impl(logits, targets, *, weight=None, pos_weight=None, reduction="none"):
                from timm.loss import BinaryCrossEntropy
                loss = BinaryCrossEntropy(smoothing=SMOOTHING, target_threshold=TARGET_THRESHOLD, weight=weight,
                                          reduction=reduction, pos_weight=pos_weight, smooth_dense=SMOOTH_DENSE)
                z = targets
                if SMOOTH_DENSE:
                    # timm moves dense targets to z (1 - s) + s / 2; these map back onto z (exact for s = 1/2).
                    z = (targets - SMOOTHING / 2) / (1 - SMOOTHING)
                return _out(loss(_batch(logits), _batch(z)), logits, reduction)
            """
        )
    else:
        # sum_classes=True returns loss.sum(-1).mean(): 'sum' is one row of N elements (1, N), 'mean'
        # N rows of one element (N, 1), 'none' each element alone (1, 1).
        call = src(
            """
            import torch
            def impl(logits, targets, *, weight=None, pos_weight=None, reduction="none"):
                from timm.loss import BinaryCrossEntropy
                def make(w, pw):
                    return BinaryCrossEntropy(smoothing=SMOOTHING, target_threshold=TARGET_THRESHOLD, weight=w,
                                              pos_weight=pw, sum_classes=SUM_CLASSES, smooth_dense=SMOOTH_DENSE)
                if logits.shape != targets.shape:  # the library sees the mismatch as given
                    return make(weight, pos_weight)(logits, targets)
                def full(w):
                    try:
                        return None if w is None else w.expand(logits.shape).reshape(-1)
                    except RuntimeError:
                        raise ValueError(f"weight of shape {tuple(w.shape)} does not broadcast to the logits' shape "
                                         f"{tuple(logits.shape)}") from None
                x, z, w, pw = logits.reshape(-1), targets.reshape(-1), full(weight), full(pos_weight)
                def lay(a, shape):
                    return None if a is None else a.reshape(shape)
                if reduction == "sum":
                    return make(lay(w, (1, -1)), lay(pw, (1, -1)))(x.reshape(1, -1), z.reshape(1, -1))
                if reduction == "mean":
                    return make(lay(w, (-1, 1)), lay(pw, (-1, 1)))(x.reshape(-1, 1), z.reshape(-1, 1))
                if reduction != "none":
                    raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r} (sum_classes=True "
                                     "has one fixed reduction, sum(-1).mean())")
                if x.numel() == 0:  # no element to call it on: the (0, 1) call's 0-d result, viewed as empty
                    return make(None, None)(x.reshape(0, 1), z.reshape(0, 1)).expand(0).reshape(logits.shape)
                per = [make(lay(None if w is None else w[i], (1, 1)), lay(None if pw is None else pw[i], (1, 1)))(
                    x[i].reshape(1, 1), z[i].reshape(1, 1)) for i in range(x.numel())]
                return torch.stack(per).reshape(logits.shape)
            """
        )
    return head + _COMMON + call


def _adapters() -> list[Adapter]:
    out = []
    for variant, smoothing, smooth_dense, threshold, sum_classes in _SETTINGS:
        translations = {
            "weight, pos_weight": "passed through (torch's broadcasting semantics)" if not sum_classes else
            "expanded to the logits' shape and laid out like them",
            "reduction": "passed through" if not sum_classes else "loss.sum(-1).mean() reached through layouts: "
            "'sum' as (1, N), 'mean' as (N, 1), 'none' one (1, 1) call per element",
            "0-d input": "passed as shape (1,) (timm reads x.shape[0]) and reshaped back",
            "smoothing": f"{smoothing}: " + ("applied to dense targets (smooth_dense=True): timm moves them to "
                                             f"z (1 - {smoothing}) + {smoothing / 2}; the adapter passes "
                                             f"(z - {smoothing / 2}) / {1 - smoothing}, which that maps back onto z"
                                             if smooth_dense else "timm's default; it applies only to index targets "
                                             "or with smooth_dense=True, so dense targets must be unchanged"),
        }
        if threshold is not None:
            translations["target_threshold"] = (f"{threshold}: targets binarised to z > {threshold}; canonical "
                                                "hard targets are unchanged, soft ones are not (a convention)")
        options = ("weight", "pos_weight", "reduction", "smoothing")
        options += (("smooth_dense",) if smooth_dense else ()) + (("target_threshold",) if threshold is not None else ())
        options += (("sum_classes",) if sum_classes else ())
        not_covered = {
            **({} if smooth_dense else {"smooth_dense": "False here; exercised by timm[smooth_dense=True]"}),
            **({} if threshold is not None else {"target_threshold": "None here; exercised by "
                                                 "timm[target_threshold=0.5]"}),
            **({} if sum_classes else {"sum_classes": "False here; exercised by timm[sum_classes=True]"}),
            "index targets": "targets of another shape are class indices, one-hot encoded with smoothing / C off "
            "the class: canonical targets are dense (same shape as the logits)",
        }
        out.append(Adapter(
            LIBRARY, "sigmoid_bce",
            _source(smoothing=smoothing, smooth_dense=smooth_dense, target_threshold=threshold, sum_classes=sum_classes),
            translations=translations, variant=variant, function="timm.loss.BinaryCrossEntropy",
            options=options, not_covered=not_covered,
        ))
    return out


ADAPTERS = _adapters()

# softmax family (adapters-rest): class indices -> LabelSmoothingCrossEntropy(smoothing), probabilities ->
# SoftTargetCrossEntropy. Both take (rows, C) logits (the class axis last, log_softmax(dim=-1)) and return the
# mean over the rows; the canonical (N, C, *) layout is moved to rows of C, 'none' and 'sum' come from one
# call per row (a batch of one row is that row's loss).
_CE_SOURCE = src(
    """
    import torch
    def impl(logits, target, *, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
        from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
        if weight is not None:
            raise NotImplementedError("timm's cross-entropies take no class weight")
        if reduction not in ("none", "mean", "sum"):
            raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r} (timm has one fixed "
                             "reduction, the mean over rows)")
        soft = target.is_floating_point()
        if soft and label_smoothing:
            raise NotImplementedError("SoftTargetCrossEntropy takes no smoothing (timm smooths in its mixup)")
        # An ignore_index that no target equals changes nothing; one that some target equals is not expressible
        # (probability targets: ignore_index does not apply).
        if not soft and bool((target == ignore_index).any()):
            raise NotImplementedError(f"timm has no ignore_index: targets equal to {ignore_index} would not be ignored")
        loss = SoftTargetCrossEntropy() if soft else LabelSmoothingCrossEntropy(smoothing=label_smoothing)
        if logits.dim() < 2:  # unbatched (C,): one row
            x, t, rows_shape = logits.reshape(1, -1), (target.reshape(1, -1) if soft else target.reshape(1)), ()
        else:
            c = logits.shape[1]
            x = logits.movedim(1, -1).reshape(-1, c)
            t = target.movedim(1, -1).reshape(-1, c) if soft else target.reshape(-1)
            rows_shape = logits.shape[:1] + logits.shape[2:]
        if (target.shape != logits.shape) if soft else (logits.shape[:1] + logits.shape[2:] != target.shape):
            return loss(logits, target)  # the library sees the mismatch as given (rows are never reshaped onto it)
        if reduction == "mean":
            return loss(x, t)
        if x.shape[0] == 0:  # no row to call it on: the empty call's 0-d result, viewed as empty
            per = loss(x, t).expand(0)
        else:
            per = torch.stack([loss(x[i:i + 1], t[i:i + 1]) for i in range(x.shape[0])])
        return per.sum() if reduction == "sum" else per.reshape(rows_shape)
    """
)

ADAPTERS.append(Adapter(
    LIBRARY, "softmax_cross_entropy", _CE_SOURCE,
    translations={
        "target": "class indices -> LabelSmoothingCrossEntropy(smoothing=label_smoothing); probabilities -> "
        "SoftTargetCrossEntropy (no smoothing: another label_smoothing raises NotImplementedError)",
        "layout": "(N, C, *) logits moved to rows of C classes (timm's class axis is the last), targets alike; "
        "unbatched (C,) logits as one row",
        "reduction": "timm returns the mean over rows: 'mean' is one call; 'none' and 'sum' one call per row (a batch "
        "of one row), stacked or summed; an unknown reduction raises ValueError in the adapter",
        "weight, ignore_index": "none in timm: the adapter raises NotImplementedError for a weight, and for "
        "index targets equal to ignore_index (-100 by default), which timm would not ignore; an ignore_index no "
        "target equals changes nothing and is accepted",
    },
    function="timm.loss.LabelSmoothingCrossEntropy, timm.loss.SoftTargetCrossEntropy",
    options=("smoothing",),
    not_covered={},
))

