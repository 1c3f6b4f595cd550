"""Adapters for torchmetrics (``torchmetrics.functional.detection``: the IoU family)."""

from __future__ import annotations

from conformance.adapters._model import Adapter, Library, src

LIBRARY = Library("torchmetrics", module="torchmetrics", distribution="torchmetrics", framework="torch",
                  doc_url="https://lightning.ai/docs/torchmetrics/stable/detection/intersection_over_union.html")

# torchmetrics' detection IoUs are metrics over two sets of (N, 4) xyxy boxes: with aggregate=False they
# return the (N, M) matrix of every pair (torchvision's box_iou, generalized_box_iou, distance_box_iou,
# complete_box_iou), with the default aggregate=True the mean of its diagonal. The canonical losses are
# per pair: the adapter asks for the matrix and takes its diagonal (pair i against pair i), and forms
# the loss from the metric (1 - IoU; iou_loss's other modes are keras-cv's, not formed here).
_FUNCTIONS = {
    "iou_loss": "intersection_over_union",
    "giou_loss": "generalized_intersection_over_union",
    "diou_loss": "distance_intersection_over_union",
    "ciou_loss": "complete_intersection_over_union",
}


def _source(spec_id: str) -> str:
    mode_kw = 'mode="linear", ' if spec_id == "iou_loss" else ""
    return src(
        f"""
        import torch
        def impl(boxes1, boxes2, *, {mode_kw}reduction="none", eps=1e-7):
            from torchmetrics.functional.detection import {_FUNCTIONS[spec_id]} as metric
            if eps != 1e-7:
                raise NotImplementedError("torchmetrics takes no eps (torchvision's defaults apply)")
            if reduction not in ("none", "mean", "sum"):
                raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {{reduction!r}} (torchmetrics "
                                 "returns the matrix; the adapter reduces)")
            if boxes1.shape != boxes2.shape:
                # Pairs exist only for equal shapes; torchmetrics itself pairs any N with any M (the matrix).
                raise ValueError(f"boxes1 {{tuple(boxes1.shape)}} and boxes2 {{tuple(boxes2.shape)}} are not pairs")
            batch = boxes1.shape[:-1]
            # (N, 4) as they are; other layouts flattened over the leading axes (the last axis kept, so that
            # a box of another length still reaches the library's own check).
            def flat(b):
                return b if b.dim() == 2 else b.reshape(-1, b.shape[-1])
            matrix = metric(flat(boxes1), flat(boxes2), aggregate=False)
            iou = torch.diagonal(matrix)
            {_loss(spec_id)}
            if reduction == "none":
                return loss.reshape(batch)
            if reduction == "sum":
                return loss.sum()
            return loss.mean() if loss.numel() else loss.sum()  # the canonical mean of no pairs is 0
        """
    )


def _loss(spec_id: str) -> str:
    if spec_id != "iou_loss":
        return "loss = 1 - iou"
    return ("if mode != 'linear':  # the library returns the IoU; the UnitBox modes are keras-cv's\n"
            "                raise NotImplementedError(f\"no loss modes (the metric is the IoU): mode {mode!r}\")\n"
            "            loss = 1 - iou")


def _adapters() -> list[Adapter]:
    out = []
    for sid, fn in _FUNCTIONS.items():
        translations = {
            "pairs": "aggregate=False returns the (N, N) matrix of every pair; the adapter takes its diagonal (pair i "
            "against pair i) and raises ValueError for boxes of different shapes (no pairs)",
            "loss": "1 - the metric" + ("; mode 'linear' only (the modes are keras-cv's: another raises NotImplementedError)"
                                         if sid == "iou_loss" else ""),
            "layout": "boxes (..., 4) other than (N, 4) flattened to (N, 4), the library's only layout, and the result "
            "reshaped back",
            "reduction": "torchmetrics' aggregate is the mean of the metric: the adapter reduces the losses itself "
            "('mean' of no pairs 0, the canonical value); an unknown reduction raises ValueError in the adapter",
            "eps": "none in torchmetrics (torchvision's defaults: none in box_iou and generalized_box_iou, 1e-7 in "
            "distance_box_iou and complete_box_iou): another eps raises NotImplementedError",
        }
        out.append(Adapter(
            LIBRARY, sid, _source(sid), translations=translations,
            function=f"torchmetrics.functional.detection.{fn}",
            options=("aggregate",),
            not_covered={
                "aggregate": "True (the default) is the mean of the matrix's diagonal, the metric's own reduction; "
                "the adapter asks for the matrix (False) and reduces the losses",
                "iou_threshold, replacement_val": "thresholding for evaluation (values below iou_threshold replaced): "
                "no counterpart in the losses' contract; left at None",
            },
        ))
    return out


ADAPTERS = _adapters()
