"""Adapters for keras-cv (TensorFlow backend, through the TF bridge)."""

from __future__ import annotations

from conformance.adapters._model import Adapter, Library, src
from conformance.targets import Capabilities

LIBRARY = Library("keras_cv", module="keras_cv", distribution="keras-cv", framework="tf",
                  doc_url="https://keras.io/api/keras_cv/losses/focal_loss/")

_TF_BRIDGED = Capabilities(framework="tf", autograd="tf", devices=frozenset({"cpu"}), compilable=False)

# (variant, from_logits, label_smoothing)
_SETTINGS: tuple[tuple[str | None, bool, float], ...] = (
    (None, True, 0.0),
    ("from_logits=False", False, 0.0),
    ("label_smoothing=0.5", True, 0.5),
)


def _source(*, from_logits: bool, label_smoothing: float) -> str:
    return src(
        f"""
        import torch
        from conformance.adapters._bridge import keras, tf_call
        FROM_LOGITS = {from_logits}
        LABEL_SMOOTHING = {label_smoothing}
        def impl(logits, targets, *, alpha=0.25, gamma=2.0, reduction="none"):
            keras()  # the TensorFlow backend, checked
            import keras_cv
            def focal(a):
                return keras_cv.losses.FocalLoss(alpha=a, gamma=gamma, from_logits=FROM_LOGITS,
                                                 label_smoothing=LABEL_SMOOTHING, reduction=reduction)
            # keras-cv has no 'no weighting': its weight is alpha where y_true == 1 and 1 - alpha elsewhere,
            # so alpha = 1 weights the positives by 1 and every other element by 0, alpha = 0 the reverse,
            # and the sum of the two losses weights every element by exactly 1 (a factor applied and undone,
            # such as alpha = 1/2 with sample_weight = 2, would overflow the backward pass twice as early).
            # Integer logits go in as they are (Keras's own dtype handling meets them): torch.sigmoid would
            # promote them to float32 first.
            x = logits if FROM_LOGITS or not logits.is_floating_point() else torch.sigmoid(logits)
            # keras-cv smooths targets to z (1 - s) + s / 2; these targets map back onto z (exact for s = 1/2).
            z = (targets - LABEL_SMOOTHING / 2) / (1 - LABEL_SMOOTHING) if LABEL_SMOOTHING else targets
            # keras-cv sums over the last axis: each element is fed as a row of length 1.
            if x.shape == z.shape:
                x, z = x.reshape(-1, 1), z.reshape(-1, 1)
            if alpha is None:
                pos, rest = focal(1.0), focal(0.0)
                out = tf_call(lambda a, b: pos(b, a) + rest(b, a), x, z)
            else:
                loss = focal(alpha)
                out = tf_call(lambda a, b: loss(b, a), x, z)
            return out.reshape(logits.shape) if reduction == "none" and out.numel() == logits.numel() else out
        """
    )


def _adapters() -> list[Adapter]:
    out = []
    for variant, from_logits, smoothing in _SETTINGS:
        out.append(Adapter(
            LIBRARY, "sigmoid_focal", _source(from_logits=from_logits, label_smoothing=smoothing),
            translations={
                "layout": "keras-cv sums over the last axis: each element fed as a row of length 1",
                "tensors": "through the TF bridge (tf.GradientTape); the result in the dtype keras-cv returned",
                "alpha": "a value passed through; None -> FocalLoss(alpha=1) + FocalLoss(alpha=0) (keras-cv has no "
                "'no weighting': its weight is alpha where y_true == 1 and 1 - alpha elsewhere, so the two weights add "
                "to exactly 1 per element)",
                "gamma": "passed through",
                "reduction": "passed to the Keras Loss base ('none', 'mean', 'sum' are Keras's names too)",
                "from_logits": "True: logits passed as they are" if from_logits
                else "False: the logits' sigmoid, computed by torch in the input's dtype, is passed as y_pred",
                "label_smoothing": "0 (none)" if not smoothing else f"{smoothing}: keras-cv smooths targets to "
                f"z (1 - {smoothing}) + {smoothing / 2}; the adapter passes (z - {smoothing / 2}) / {1 - smoothing}, "
                "which that maps back onto z",
            },
            capabilities=_TF_BRIDGED, variant=variant,
            function="keras_cv.losses.FocalLoss",
            options=("alpha", "gamma", "reduction") + (("from_logits",) if not from_logits else ())
            + (("label_smoothing",) if smoothing else ()),
            not_covered={
                **({} if not from_logits else {"from_logits": "True here; False is keras_cv[from_logits=False]"}),
                **({} if smoothing else {"label_smoothing": "0 here; exercised by keras_cv[label_smoothing=0.5]"}),
            },
        ))
    return out


ADAPTERS = _adapters()


# IoU family (adapters-rest) ------------------------------------------------------------------------------------
# IoULoss and GIoULoss form the (N, N) matrix of every pair and keep its diagonal (pair i against pair i);
# axis="no_reduction" (documented as temporary) keeps one value per pair, which Keras's reduction then reduces.
# CIoULoss computes per pair (compute_ciou) and returns one value per pair. keras-cv reads rank-2 (N, 4) or
# rank-3 (B, N, 4) boxes; the adapter gives it (N, 4).
_IOU_CLASSES = {"iou_loss": "IoULoss", "giou_loss": "GIoULoss", "ciou_loss": "CIoULoss"}


def _iou_source(spec_id: str) -> str:
    cls = _IOU_CLASSES[spec_id]
    mode_kw = 'mode="linear", ' if spec_id == "iou_loss" else ""
    if spec_id == "ciou_loss":
        make = f'keras_cv.losses.{cls}("xyxy", eps=eps, reduction=reduction, dtype=FLOAT_NAMES.get(boxes1.dtype))'
        eps_check = ""
    else:
        extra = "mode=mode, " if spec_id == "iou_loss" else ""
        make = f'keras_cv.losses.{cls}("xyxy", {extra}axis="no_reduction", reduction=reduction, '
        make += 'dtype=FLOAT_NAMES.get(boxes1.dtype))'
        eps_check = (
            "if eps != 1e-7:\n"
            "                raise NotImplementedError(\"keras-cv's IoULoss and GIoULoss take no eps (they use "
            "keras.backend.epsilon(), 1e-7)\")\n            "
        )
    return src(
        f"""
        import warnings
        from conformance.adapters._bridge import FLOAT_NAMES, keras, tf_call
        def impl(boxes1, boxes2, *, {mode_kw}reduction="none", eps=1e-7):
            keras()  # the TensorFlow backend, checked
            import keras_cv
            {eps_check}loss = {make}
            # Pairs of equal shape: (N, 4) as they are, other layouts flattened over the leading axes (the last
            # axis kept, so that a box of another length still reaches the library's own check). Shapes that
            # differ pass through untouched, so that keras-cv itself meets the mismatch.
            def flat(b):
                return b if b.dim() == 2 or boxes1.shape != boxes2.shape else b.reshape(-1, b.shape[-1])
            with warnings.catch_warnings():  # axis="no_reduction" warns that it is a temporary API
                warnings.simplefilter("ignore")
                out = tf_call(lambda b1, b2: loss(b2, b1), flat(boxes1), flat(boxes2))
            batch = boxes1.shape[:-1]
            return out.reshape(batch) if reduction == "none" and out.numel() == batch.numel() else out
        """
    )


def _iou_adapters() -> list[Adapter]:
    out = []
    for sid, cls in _IOU_CLASSES.items():
        translations = {
            "tensors": "through the TF bridge (tf.GradientTape); the result in the dtype keras-cv returned",
            "arguments": "loss(y_true=boxes2, y_pred=boxes1) (the losses are symmetric)",
            "bounding_box_format": "'xyxy' (the canonical format; keras-cv converts it to its own yxyx internally)",
            "layout": "pairs of equal shape (..., 4) other than (N, 4) flattened to (N, 4) and the result reshaped back; shapes that differ reach keras-cv untouched",
            "reduction": "passed to the Keras Loss base ('none', 'mean', 'sum' are Keras's names too)",
            "dtype": "the Keras Loss's dtype = the boxes' dtype (Keras's default, floatx, would compute float32)",
        }
        if sid == "ciou_loss":
            translations["eps"] = "passed through (CIoULoss(eps=...))"
        else:
            translations["eps"] = "none (keras.backend.epsilon(), 1e-7, a global): another eps raises NotImplementedError"
            translations["axis"] = "'no_reduction': one value per pair, the diagonal of the pair matrix"
        if sid == "iou_loss":
            translations["mode"] = "passed explicitly (the library's default is 'log', the canonical 'linear')"
        out.append(Adapter(
            LIBRARY, sid, _iou_source(sid), translations=translations, capabilities=_TF_BRIDGED,
            function=f"keras_cv.losses.{cls}",
            options=("bounding_box_format", "reduction") + (("eps",) if sid == "ciou_loss" else ("axis",))
            + (("mode",) if sid == "iou_loss" else ()),
            not_covered={
                "bounding_box_format": "xyxy only: keras-cv's other formats are its own conversions to xyxy / yxyx, "
                "no canonical counterpart",
                **({} if sid == "ciou_loss" else {"axis": "-1 (the default) averages the pairs before the loss "
                                                  "(1 - mean IoU): 'no_reduction' keeps one loss per pair"}),
            },
        ))
    return out


ADAPTERS += _iou_adapters()

# regression family (adapters-rest) --------------------------------------------------------------------------
# SmoothL1Loss(l1_cutoff): 0.5 d^2 where |d| < l1_cutoff, else |d| - 0.5, averaged over the last axis.
ADAPTERS.append(Adapter(
    LIBRARY, "smooth_l1",
    src(
        """
        import torch
        from conformance.adapters._bridge import FLOAT_NAMES, keras, tf_call
        def impl(input, target, *, beta=1.0, weight=None, reduction="none"):
            keras()  # the TensorFlow backend, checked
            import keras_cv
            loss = keras_cv.losses.SmoothL1Loss(l1_cutoff=beta, reduction=reduction, dtype=FLOAT_NAMES.get(input.dtype))
            if input.shape != target.shape:  # the library sees the mismatch as given
                return tf_call(lambda x, y: loss(y, x), input, target)
            # keras-cv averages over the last axis: each element is fed as a row of length 1.
            x, y = input.reshape(-1, 1), target.reshape(-1, 1)
            if weight is None:
                out = tf_call(lambda a, b: loss(b, a), x, y)
            else:
                w = torch.broadcast_to(weight, input.shape).reshape(-1)
                out = tf_call(lambda a, b, c: loss(b, a, sample_weight=c), x, y, w)
            return out.reshape(input.shape) if reduction == "none" and out.numel() == input.numel() else out
        """
    ),
    translations={
        "tensors": "through the TF bridge (tf.GradientTape); the result in the dtype keras-cv returned",
        "arguments": "loss(y_true=target, y_pred=input)",
        "beta": "l1_cutoff = beta (keras-cv's switch point; its pieces are 0.5 d^2 and |d| - 0.5 for every cutoff)",
        "layout": "keras-cv averages over the last axis: each element fed as a row of length 1",
        "weight": "Keras's sample_weight, broadcast to the input and laid out like it",
        "reduction": "passed to the Keras Loss base ('none', 'mean', 'sum' are Keras's names too)",
        "dtype": "the Keras Loss's dtype = the input's dtype (Keras's default, floatx, would compute float32)",
    },
    capabilities=_TF_BRIDGED,
    function="keras_cv.losses.SmoothL1Loss",
    options=("l1_cutoff", "reduction", "sample_weight"),
))


# centernet family (adapters-rest) ---------------------------------------------------------------------------
# BinaryPenaltyReducedFocalCrossEntropy returns the elementwise loss of the dense form (positives: y_true >
# positive_threshold) with p clipped to [1e-4, 0.9999], and leaves the normalisation to the user ("divide the
# number of keypoints outside the loss computation, or by passing in sample_weight as 1.0/num_key_points").
ADAPTERS.append(Adapter(
    LIBRARY, "penalty_reduced_focal",
    src(
        """
        import torch
        from conformance.adapters._bridge import keras, tf_call
        def impl(pred_prob, gt_heatmap, ind=None, mask=None, cat=None, *, alpha=2.0, beta=4.0,
                 positive_threshold=None, positive_weight=1.0, negative_weight=1.0, from_logits=False):
            k = keras()  # the TensorFlow backend, checked
            import keras_cv
            import numpy as np
            if ind is not None or mask is not None or cat is not None:
                raise NotImplementedError("keras-cv has the dense form only (no ind / mask / cat gather)")
            # The canonical None means y == 1: y > the largest value below 1 in the dtype keras-cv computes in
            # (floatx: the class has no dtype argument, and Keras casts the inputs to it).
            threshold = 1 - float(np.finfo(k.config.floatx()).eps) / 2 if positive_threshold is None else positive_threshold
            loss = keras_cv.losses.BinaryPenaltyReducedFocalCrossEntropy(
                alpha=alpha, beta=beta, from_logits=from_logits, positive_threshold=threshold,
                positive_weight=positive_weight, negative_weight=negative_weight, reduction="sum")
            n = int((gt_heatmap > threshold).sum())
            # The documented normalisation: sample_weight = 1 / (number of keypoints); none without keypoints.
            if n:
                return tf_call(lambda p, y: loss(y, p, sample_weight=1.0 / n), pred_prob, gt_heatmap)
            return tf_call(lambda p, y: loss(y, p), pred_prob, gt_heatmap)
        """
    ),
    translations={
        "tensors": "through the TF bridge (tf.GradientTape); the result in the dtype keras-cv returned (floatx: the "
        "class has no dtype argument)",
        "arguments": "loss(y_true=gt_heatmap, y_pred=pred_prob)",
        "positive_threshold": "None (positives y == 1) -> the largest value below 1 in Keras's floatx, the dtype "
        "keras-cv computes in (1 - eps / 2), as keras-cv's positives are y_true > threshold; a value is passed through",
        "normalisation": "reduction='sum' with sample_weight = 1 / N, N the count of positives (keras-cv's documented "
        "way); no sample_weight when N = 0 (the negative sum alone)",
        "ind, mask, cat": "keras-cv has the dense form only: the gather form raises NotImplementedError",
        "alpha, beta, positive_weight, negative_weight, from_logits": "passed through",
    },
    capabilities=_TF_BRIDGED,
    function="keras_cv.losses.BinaryPenaltyReducedFocalCrossEntropy",
    options=("alpha", "beta", "from_logits", "positive_threshold", "positive_weight", "negative_weight",
             "sample_weight"),
    not_covered={"reduction": "'sum' with sample_weight 1 / N: the spec's one normalisation"},
))
