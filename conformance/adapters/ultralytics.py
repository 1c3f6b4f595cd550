"""Adapters for ultralytics."""

from __future__ import annotations

from conformance.adapters._model import Adapter, Library, src

LIBRARY = Library("ultralytics", module="ultralytics", distribution="ultralytics", framework="torch",
                  doc_url="https://docs.ultralytics.com/reference/utils/loss/")

ADAPTERS = [
    # sigmoid family. FocalLoss.forward returns FL.mean(1).sum() (seed 004): the canonical
    # reductions are reached through layouts, never by recomputing the loss:
    #   'sum'  -> every element a row of one column, (N, 1): mean(1) keeps it, sum() adds the rows;
    #   'mean' -> one row of N columns, (1, N): mean(1) averages, sum() keeps the one row;
    #   'none' -> each element alone, (1, 1): the library's value for that element.
    Adapter(
        LIBRARY,
        "sigmoid_focal",
        src(
            """
            import torch
            def impl(logits, targets, *, alpha=0.25, gamma=2.0, reduction="none"):
                from ultralytics.utils.loss import FocalLoss
                # A fresh module per call: FocalLoss keeps its alpha tensor, converted to the last input's dtype.
                loss = FocalLoss(gamma=gamma, alpha=0.0 if alpha is None else alpha)
                if logits.shape != targets.shape:  # the library sees the mismatch as given
                    return loss(logits, targets)
                x, z = logits.reshape(-1), targets.reshape(-1)
                if reduction == "sum":
                    return loss(x.reshape(-1, 1), z.reshape(-1, 1))
                if reduction == "mean":
                    return loss(x.reshape(1, -1), z.reshape(1, -1))
                if reduction != "none":
                    raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r} (ultralytics "
                                     "has one fixed reduction, mean(1).sum())")
                if x.numel() == 0:  # no element to call it on: the (0, 1) call's 0-d result, viewed as empty
                    return loss(x.reshape(0, 1), z.reshape(0, 1)).expand(0).reshape(logits.shape)
                per = [loss(x[i].reshape(1, 1), z[i].reshape(1, 1)) for i in range(x.numel())]
                return torch.stack(per).reshape(logits.shape)
            """
        ),
        translations={
            "reduction": "FL.mean(1).sum() reached through layouts: 'sum' as (N, 1), 'mean' as (1, N), 'none' one "
            "(1, 1) call per element; any other reduction raises ValueError in the adapter",
            "alpha": "None -> 0 (ultralytics applies alpha only when alpha > 0)",
            "gamma": "passed explicitly (the library's default is 1.5, the canonical 2.0)",
            "state": "a fresh FocalLoss per call (the module converts and keeps its alpha tensor)",
        },
        function="ultralytics.utils.loss.FocalLoss",
        options=("gamma", "alpha"),
    ),
]
