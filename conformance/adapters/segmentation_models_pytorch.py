"""Adapters for segmentation_models_pytorch (smp)."""

from __future__ import annotations

from conformance.adapters._model import Adapter, Library, src

LIBRARY = Library("segmentation_models_pytorch", module="segmentation_models_pytorch",
                  distribution="segmentation-models-pytorch", framework="torch",
                  doc_url="https://smp.readthedocs.io/en/latest/losses.html")

_IGNORE = ("masks (SoftBCE: zeroes; Focal: drops) target entries equal to it; canonical targets lie in [0, 1], so no "
           "canonical input reaches the default, and no spec states a masked element")


def _soft_bce(smooth_factor: float | None) -> str:
    return src(
        f"""
        SMOOTH_FACTOR = {smooth_factor}
        def impl(logits, targets, *, weight=None, pos_weight=None, reduction="none"):
            from segmentation_models_pytorch.losses import SoftBCEWithLogitsLoss
            loss = SoftBCEWithLogitsLoss(weight=weight, reduction=reduction, smooth_factor=SMOOTH_FACTOR,
                                         pos_weight=pos_weight)
            # smp smooths targets to (1 - z) s + z (1 - s); these map back onto z (exact for s = 1/4).
            z = targets if SMOOTH_FACTOR is None else (targets - SMOOTH_FACTOR) / (1 - 2 * SMOOTH_FACTOR)
            return loss(logits, z)
        """
    )


def _focal(from_logits: bool) -> str:
    return src(
        f"""
        import torch
        FROM_LOGITS = {from_logits}
        def impl(logits, targets, *, alpha=0.25, gamma=2.0, reduction="none"):
            from segmentation_models_pytorch.losses import FocalLoss
            loss = FocalLoss(mode="binary", alpha=alpha, gamma=gamma, reduction=reduction, from_logits=FROM_LOGITS)
            # Integer logits go in as they are (the library's input of that dtype): torch.sigmoid would promote
            # them to float32 and hide the dtype from smp.
            y_pred = logits if FROM_LOGITS or not logits.is_floating_point() else torch.sigmoid(logits)
            out = loss(y_pred, targets)
            # mode='binary' flattens both inputs: 'none' comes back as (N,).
            return out.reshape(logits.shape) if reduction == "none" and out.numel() == logits.numel() else out
        """
    )


_FOCAL_NOT_COVERED = {
    "ignore_index": _IGNORE,
    "normalized": "divides by the sum of the focal factors over the batch (normalised focal loss): another loss, "
    "no spec states it",
    "reduced_threshold": "replaces the focal factor by 1 below the threshold (reduced focal loss): another loss, "
    "no spec states it",
    "class_weights": "rejected by mode='binary' (multiclass / multilabel only)",
    "mode": "'binary' (elementwise sigmoid); 'multilabel' averages per-class reductions of the same elementwise "
    "loss, 'multiclass' one-vs-rest over index targets: neither is an elementwise contract",
}

ADAPTERS = [
    # sigmoid family
    Adapter(
        LIBRARY, "sigmoid_bce", _soft_bce(None),
        translations={"weight, pos_weight, reduction": "passed through (torch's semantics)",
                      "smooth_factor": "None (no smoothing)"},
        function="segmentation_models_pytorch.losses.SoftBCEWithLogitsLoss",
        options=("weight", "pos_weight", "reduction"),
        not_covered={"smooth_factor": "None here; exercised by segmentation_models_pytorch[smooth_factor=0.25]",
                     "ignore_index": _IGNORE},
    ),
    Adapter(
        LIBRARY, "sigmoid_bce", _soft_bce(0.25), variant="smooth_factor=0.25",
        translations={"weight, pos_weight, reduction": "passed through (torch's semantics)",
                      "smooth_factor": "0.25: smp smooths targets to (1 - z) 0.25 + z 0.75; the adapter passes "
                      "(z - 0.25) / 0.5, which that maps back onto z"},
        function="segmentation_models_pytorch.losses.SoftBCEWithLogitsLoss",
        options=("weight", "pos_weight", "reduction", "smooth_factor"),
        not_covered={"ignore_index": _IGNORE},
    ),
    Adapter(
        LIBRARY, "sigmoid_focal", _focal(True),
        translations={"alpha": "passed through (None: no weighting)", "gamma, reduction": "passed through",
                      "layout": "mode='binary' flattens the inputs: 'none' reshaped back to the logits' shape"},
        function="segmentation_models_pytorch.losses.FocalLoss(mode='binary')",
        options=("alpha", "gamma", "reduction"),
        not_covered={**_FOCAL_NOT_COVERED,
                     "from_logits": "True here; False is segmentation_models_pytorch[from_logits=False]",
                     "eps": "used only with from_logits=False (probabilities clamped to [eps, 1 - eps]); exercised "
                     "there at its default"},
    ),
    Adapter(
        LIBRARY, "sigmoid_focal", _focal(False), variant="from_logits=False",
        translations={"alpha": "passed through (None: no weighting)", "gamma, reduction": "passed through",
                      "layout": "mode='binary' flattens the inputs: 'none' reshaped back to the logits' shape",
                      "from_logits": "False: the logits' sigmoid, computed by torch in the input's dtype, is passed "
                      "(smp clamps it to [eps, 1 - eps] and takes log(p / (1 - p))); integer logits are passed as "
                      "they are, so the library sees the integer dtype (torch.sigmoid would promote it to float32)"},
        function="segmentation_models_pytorch.losses.FocalLoss(mode='binary')",
        options=("alpha", "gamma", "reduction", "from_logits", "eps"),
        not_covered=_FOCAL_NOT_COVERED,
    ),
]
