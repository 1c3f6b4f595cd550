"""Adapters for ultralytics."""

from __future__ import annotations

from conformance.adapters._model import Adapter, Library, src

LIBRARY = Library("ultralytics", module="ultralytics", distribution="ultralytics", framework="torch",
                  doc_url="https://docs.ultralytics.com/reference/utils/loss/")

# IoU family (adapters-rest) ------------------------------------------------------------------------------------
_IOU_FLAGS = {"iou_loss": "", "giou_loss": "GIoU=True, ", "diou_loss": "DIoU=True, ", "ciou_loss": "CIoU=True, "}


def _iou_source(spec_id: str) -> str:
    mode_kw = 'mode="linear", ' if spec_id == "iou_loss" else ""
    if spec_id == "iou_loss":
        loss = ("if mode != 'linear':  # the library returns the IoU; the UnitBox modes are keras-cv's\n"
                "                raise NotImplementedError(f\"no loss modes (the metric is the IoU): mode {mode!r}\")\n"
                "            loss = 1 - iou")
    else:
        loss = "loss = 1 - iou"
    return src(
        f"""
        import torch
        def impl(boxes1, boxes2, *, {mode_kw}reduction="none", eps=1e-7):
            from ultralytics.utils.metrics import bbox_iou
            if reduction not in ("none", "mean", "sum"):
                raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {{reduction!r}} (bbox_iou returns "
                                 "one value per pair; the adapter reduces)")
            iou = bbox_iou(boxes1, boxes2, xywh=False, {_IOU_FLAGS[spec_id]}eps=eps).squeeze(-1)
            {loss}
            if reduction == "none":
                return loss
            if reduction == "sum":
                return loss.sum()
            return loss.mean() if loss.numel() else loss.sum()  # the canonical mean of no pairs is 0
        """
    )


def _iou_adapter(spec_id: str) -> Adapter:
    translations = {
        "loss": "1 - bbox_iou(...)" + ("; mode 'linear' only (the modes are keras-cv's: another raises "
                                       "NotImplementedError)" if spec_id == "iou_loss" else ""),
        "output": "bbox_iou keeps the coordinate axis, (..., 1): squeezed to (...)",
        "reduction": "bbox_iou returns one value per pair: 'mean' (0 for no pairs, the canonical value) and 'sum' are "
        "the adapter's; an unknown reduction raises ValueError in the adapter",
        "eps": "passed through",
        "box format": "xywh=False: xyxy boxes passed as they are",
    }
    return Adapter(
        LIBRARY, spec_id, _iou_source(spec_id), translations=translations,
        function="ultralytics.utils.metrics.bbox_iou",
        options=("eps",) + (("GIoU", "DIoU", "CIoU") if spec_id != "iou_loss" else ()),
        not_covered={"xywh": "True (centre and size, the library's default) is not exercised: canonical xyxy boxes "
                     "reach it only through a conversion that rounds ((x1 + x2) / 2 far from the origin, or for boxes "
                     "small against their coordinates), which the suite would blame on ultralytics. Seen while it "
                     "was tried: with xywh=True the CIoU aspect term w / h has no eps, so a point box gives 0 / 0 "
                     "(bbox_iou([1, 1, 0, 0], [1, 1, 0, 0], xywh=True, CIoU=True) = nan)"},
    )


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
                if alpha is not None and alpha == 0:
                    raise NotImplementedError("ultralytics' FocalLoss applies alpha only where alpha > 0: alpha = 0 is "
                                              "its 'no weighting', so the spec's alpha = 0 (negatives only) has no "
                                              "equivalent")
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
            "alpha": "None -> 0 (ultralytics applies alpha only when alpha > 0); the spec's alpha = 0 has no "
            "equivalent (0 is the library's 'no weighting'): the adapter raises NotImplementedError for it",
            "gamma": "passed explicitly (the library's default is 1.5, the canonical 2.0)",
            "state": "a fresh FocalLoss per call (the module converts and keeps its alpha tensor)",
        },
        function="ultralytics.utils.loss.FocalLoss",
        options=("gamma", "alpha"),
    ),
    # IoU family (adapters-rest): utils.metrics.bbox_iou returns IoU / GIoU / DIoU / CIoU per pair (broadcast),
    # shaped (..., 1); the losses are 1 - that value, with xyxy boxes (xywh=False).
    *[_iou_adapter(sid) for sid in ("iou_loss", "giou_loss", "diou_loss", "ciou_loss")],
]
