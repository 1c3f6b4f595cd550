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
            # keras-cv has no 'no weighting': alpha = 1/2 weights every element by 1/2, and Keras's
            # sample_weight = 2 (its documented loss multiplier) undoes it exactly.
            loss = keras_cv.losses.FocalLoss(alpha=0.5 if alpha is None else alpha, gamma=gamma,
                                             from_logits=FROM_LOGITS, label_smoothing=LABEL_SMOOTHING,
                                             reduction=reduction)
            x = logits if FROM_LOGITS else torch.sigmoid(logits)
            # keras-cv smooths targets to z (1 - s) + s / 2; these targets map back onto z (exact for s = 1/2).
            z = (targets - LABEL_SMOOTHING / 2) / (1 - LABEL_SMOOTHING) if LABEL_SMOOTHING else targets
            # keras-cv sums over the last axis: each element is fed as a row of length 1.
            if x.shape == z.shape:
                x, z = x.reshape(-1, 1), z.reshape(-1, 1)
            if alpha is None:
                out = tf_call(lambda a, b: loss(b, a, sample_weight=2.0), x, z)
            else:
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
                "alpha": "None -> alpha = 0.5 with sample_weight = 2 (keras-cv has no 'no weighting')",
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
