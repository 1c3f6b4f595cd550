"""Adapters for keras."""

from __future__ import annotations

from conformance.adapters._model import Adapter, Library, src
from conformance.targets import Capabilities

LIBRARY = Library("keras", module="keras", distribution="keras", framework="tf")

# Keras computes through NumPy on the CPU: no torch autograd, no torch device placement.
_TF = Capabilities(framework="tf", autograd=None, devices=frozenset({"cpu"}), compilable=False)

# sigmoid family: TensorFlow computations bridged into torch autograd (GradientTape).
_TF_BRIDGED = Capabilities(framework="tf", autograd="tf", devices=frozenset({"cpu"}), compilable=False)

# Both losses average over the last axis before `reduction`: each element is fed as a row of
# length 1, so that the mean is over one element and Keras's reduction ("none", "mean", "sum",
# its own names) is the canonical one.
_ROWS = src(
    """
    import torch
    from conformance.adapters._bridge import FLOAT_NAMES, keras, tf_call
    def _rows(a, b):
        # Unequal shapes reach Keras as given, so that Keras itself sees the mismatch.
        return (a.reshape(-1, 1), b.reshape(-1, 1)) if a.shape == b.shape else (a, b)
    def _out(out, logits, reduction):
        return out.reshape(logits.shape) if reduction == "none" and out.numel() == logits.numel() else out
    """
)


def _keras_sigmoid_source(spec: str, *, from_logits: bool, label_smoothing: float, dtype_of_input: bool) -> str:
    """The adapter source for one option setting: constants first, then the call."""
    head = src(
        f"""
        FROM_LOGITS = {from_logits}
        LABEL_SMOOTHING = {label_smoothing}
        """
    )
    # Keras smooths targets as z (1 - s) + s / 2; the adapter passes the targets that this maps
    # back onto the canonical ones (for s = 0.5: 2 z - 1/2, exact in binary).
    prep = src(
        f"""
        def _prepare(logits, targets):
            # Integer logits go in as they are (Keras's own dtype handling meets them): torch.sigmoid would
            # promote them to float32 first.
            x = logits if FROM_LOGITS or not logits.is_floating_point() else torch.sigmoid(logits)
            z = (targets - LABEL_SMOOTHING / 2) / (1 - LABEL_SMOOTHING) if LABEL_SMOOTHING else targets
            if LABEL_SMOOTHING and targets.is_floating_point():
                # Keras smooths in floatx (float32): where the pre-image does not map back onto the target
                # exactly there (a small soft target loses bits in 2 z - 1/2), this variant cannot express it.
                back = z.to(torch.float32) * (1 - LABEL_SMOOTHING) + 0.5 * LABEL_SMOOTHING
                if bool((back != targets.to(torch.float32)).any()):
                    raise NotImplementedError("a target whose label-smoothing pre-image is not exact in float32")
            return x, z
        def _dtype(logits):
            return {'FLOAT_NAMES.get(logits.dtype, str(logits.dtype).removeprefix("torch."))' if dtype_of_input else "None"}
        """
    )
    if spec == "sigmoid_bce":
        body = src(
            """
            def impl(logits, targets, *, weight=None, pos_weight=None, reduction="none"):
                if pos_weight is not None:
                    raise NotImplementedError("keras BinaryCrossentropy has no pos_weight")
                k = keras()
                loss = k.losses.BinaryCrossentropy(from_logits=FROM_LOGITS, label_smoothing=LABEL_SMOOTHING,
                                                   reduction=reduction, dtype=_dtype(logits))
                x, z = _rows(*_prepare(logits, targets))
                if weight is None:
                    return _out(tf_call(lambda a, b: loss(b, a), x, z), logits, reduction)
                try:
                    w = weight.expand(logits.shape).reshape(-1)
                except RuntimeError:
                    raise ValueError(f"weight of shape {tuple(weight.shape)} does not broadcast to the logits' "
                                     f"shape {tuple(logits.shape)}: no sample_weight equivalent") from None
                return _out(tf_call(lambda a, b, c: loss(b, a, sample_weight=c), x, z, w), logits, reduction)
            """
        )
    else:
        body = src(
            """
            def impl(logits, targets, *, alpha=0.25, gamma=2.0, reduction="none"):
                k = keras()
                loss = k.losses.BinaryFocalCrossentropy(
                    apply_class_balancing=alpha is not None, alpha=0.25 if alpha is None else alpha, gamma=gamma,
                    from_logits=FROM_LOGITS, label_smoothing=LABEL_SMOOTHING, reduction=reduction,
                    dtype=_dtype(logits))
                x, z = _rows(*_prepare(logits, targets))
                return _out(tf_call(lambda a, b: loss(b, a), x, z), logits, reduction)
            """
        )
    return head + _ROWS + prep + body


_KERAS_SETTINGS: tuple[tuple[str | None, bool, float, bool], ...] = (
    # (variant, from_logits, label_smoothing, dtype of the input)
    (None, True, 0.0, False),
    ("from_logits=False", False, 0.0, False),
    ("label_smoothing=0.5", True, 0.5, False),
    ("dtype=input", True, 0.0, True),
)


def _keras_sigmoid_adapters() -> list[Adapter]:
    out = []
    for variant, from_logits, smoothing, dtype_of_input in _KERAS_SETTINGS:
        common = {
            "layout": "Keras averages over the last axis: each element fed as a row of length 1",
            "tensors": "through the TF bridge (conformance.adapters._bridge.tf_call): gradients from "
            "tf.GradientTape, the result in the dtype Keras returned",
            "reduction": "passed through ('none', 'mean', 'sum' are Keras's names too)",
            "from_logits": "True: logits passed as they are" if from_logits
            else "False: the logits' sigmoid, computed by torch in the input's dtype, is passed as y_pred",
            "label_smoothing": "0 (none)" if not smoothing else f"{smoothing}: Keras smooths targets to "
            f"z (1 - {smoothing}) + {smoothing / 2}; the adapter passes (z - {smoothing / 2}) / {1 - smoothing}, "
            "which that maps back onto z; targets it does not map back exactly in float32 (small soft targets) "
            "are declined (NotImplementedError)",
            "dtype": "the input's dtype, by name (Keras computes in it; an integer dtype is passed as such, and "
            "Keras's own ops meet it)" if dtype_of_input
            else "None: Keras computes in floatx (float32) whatever the input dtype",
        }
        out.append(Adapter(
            LIBRARY, "sigmoid_bce",
            _keras_sigmoid_source("sigmoid_bce", from_logits=from_logits, label_smoothing=smoothing,
                                  dtype_of_input=dtype_of_input),
            translations={**common,
                          "weight": "sample_weight, expanded to the logits' shape and flattened like them (one that "
                          "does not broadcast has no such form: the adapter raises ValueError)",
                          "pos_weight": "none in Keras: the adapter raises NotImplementedError"},
            capabilities=_TF_BRIDGED, variant=variant,
            function="keras.losses.BinaryCrossentropy",
            options=("reduction", "sample_weight") + (("from_logits",) if not from_logits else ())
            + (("label_smoothing",) if smoothing else ()) + (("dtype",) if dtype_of_input else ()),
            not_covered={
                **({} if not from_logits else {"from_logits": "True here; False is the keras[from_logits=False] setting"}),
                **({} if smoothing else {"label_smoothing": "0 here; exercised by keras[label_smoothing=0.5]"}),
                **({} if dtype_of_input else {"dtype": "None (floatx) here; exercised by keras[dtype=input]"}),
                "axis": "the axis averaged before the reduction: with each element a row of length 1 it averages "
                "one element; the canonical reductions are Keras's own `reduction`",
            },
        ))
        out.append(Adapter(
            LIBRARY, "sigmoid_focal",
            _keras_sigmoid_source("sigmoid_focal", from_logits=from_logits, label_smoothing=smoothing,
                                  dtype_of_input=dtype_of_input),
            translations={**common,
                          "alpha": "None -> apply_class_balancing=False; a value -> apply_class_balancing=True, alpha",
                          "gamma": "passed through"},
            capabilities=_TF_BRIDGED, variant=variant,
            function="keras.losses.BinaryFocalCrossentropy",
            options=("apply_class_balancing", "alpha", "gamma", "reduction") + (("from_logits",) if not from_logits else ())
            + (("label_smoothing",) if smoothing else ()) + (("dtype",) if dtype_of_input else ()),
            not_covered={
                **({} if not from_logits else {"from_logits": "True here; False is the keras[from_logits=False] setting"}),
                **({} if smoothing else {"label_smoothing": "0 here; exercised by keras[label_smoothing=0.5]"}),
                **({} if dtype_of_input else {"dtype": "None (floatx) here; exercised by keras[dtype=input]"}),
                "axis": "the axis averaged before the reduction: with each element a row of length 1 it averages "
                "one element; the canonical reductions are Keras's own `reduction`",
                "sample_weight": "the focal spec has no weight; Keras's sample_weight is exercised on "
                "BinaryCrossentropy (sigmoid_bce)",
            },
        ))
    return out


_KERAS_SIGMOID = _keras_sigmoid_adapters()

ADAPTERS = [
    Adapter(
        LIBRARY,
        "smooth_l1",
        src(
            """
            import math
            import numpy as np
            import torch
            from oracles.tf import keras
            def impl(input, target, *, beta=1.0, weight=None, reduction="none"):
                k = keras()
                r = {"none": None, "mean": "sum_over_batch_size", "sum": "sum"}.get(reduction, reduction)
                x = input.detach().cpu().numpy()
                y = target.detach().cpu().numpy()
                sw = None if weight is None else np.broadcast_to(weight.detach().cpu().numpy(), x.shape).reshape(-1)
                if x.shape == y.shape:  # Keras averages the last axis: each element is a row of length 1
                    x, y = x.reshape(-1, 1), y.reshape(-1, 1)
                if beta == 0:  # smooth L1 at beta = 0 is L1; Huber has no such limit
                    out = np.asarray(k.losses.MeanAbsoluteError(reduction=r)(y, x, sample_weight=sw))
                else:
                    # huber(s d; s beta) = s^2 huber(d; beta): s = 2^-e (exact) with s beta <= 1 keeps
                    # Huber's beta |d| finite wherever smooth L1 is.
                    s = 1.0 if beta <= 1 else 2.0 ** -math.frexp(beta)[1]
                    if s != 1:
                        x, y = x * s, y * s
                    huber = k.losses.Huber(delta=beta * s, reduction=r)
                    out = np.asarray(huber(y, x, sample_weight=sw)) / np.float32(beta * s) / np.float32(s)
                out = torch.from_numpy(np.array(out))
                return out.reshape(input.shape) if reduction == "none" else out
            """
        ),
        translations={
            "compute dtype": "float32 (Keras floatx), returned as computed",
            "beta": "Huber(delta=beta)(y, x) / beta, for beta > 1 on inputs scaled by the power of two s that makes "
            "s beta < 1 (exact), so beta |d| cannot overflow; beta = 0 -> MeanAbsoluteError",
            "layout": "Keras averages the last axis: each element fed as a row of length 1",
            "weight": "sample_weight, broadcast to the input and flattened like it",
            "reduction": "'none' -> None, 'mean' -> 'sum_over_batch_size', 'sum' -> 'sum'",
        },
        function="keras.losses.Huber(delta=beta) / beta",
        capabilities=_TF,
        options=("delta", "reduction", "sample_weight"),
        not_covered={"reduction='mean_with_sample_weight'": "divides by the sum of the weights; no canonical "
                     "keyword reaches it", "dtype": "the loss's compute dtype; Keras's default (floatx) is kept"},
    ),
    Adapter(
        LIBRARY,
        "softmax_focal",
        src(
            """
            import numpy as np
            import torch
            from oracles.tf import keras
            def impl(logits, target, *, gamma=2.0, alpha=None, ignore_index=None, label_smoothing=0.0, reduction="mean"):
                if ignore_index is not None:
                    raise NotImplementedError("keras CategoricalFocalCrossentropy has no ignore_class")
                k = keras()
                x = logits.detach().cpu().numpy()
                c = x.shape[1]
                t = target.cpu().numpy().reshape(-1)
                if ((t < 0) | (t >= c)).any():
                    raise ValueError(f"target: a class index outside [0, {c}) has no one-hot row")
                if alpha is None:
                    a = 1.0
                elif isinstance(alpha, torch.Tensor):
                    a = alpha.detach().cpu().numpy()
                else:
                    a = np.array([1 - alpha] + [alpha] * (c - 1), dtype=x.dtype)
                loss = k.losses.CategoricalFocalCrossentropy(
                    alpha=a, gamma=gamma, from_logits=True, label_smoothing=label_smoothing,
                    reduction={"none": None, "sum": "sum", "mean": "sum_over_batch_size"}[reduction])
                rows = np.moveaxis(x, 1, -1).reshape(-1, c)
                y = np.eye(c, dtype=x.dtype)[target.cpu().numpy()]
                if tuple(target.shape) == (x.shape[0], *x.shape[2:]):  # a target of another shape reaches Keras as given
                    y = y.reshape(-1, c)
                out = np.asarray(loss(y, rows)) if rows.shape[0] else np.zeros(0 if reduction == "none" else (), np.float32)
                out = torch.from_numpy(np.array(out))
                return out.reshape(target.shape) if reduction == "none" and out.numel() == target.numel() else out
            """
        ),
        translations={
            "alpha": "None -> 1.0; a number a -> the per-class array [1 - a, a, ..., a] (Keras' scalar alpha weights "
            "every class alike); a per-class tensor -> its array",
            "target": "class indices one-hot encoded, class axis moved last, entries as rows",
            "ignore_index": "not offered (no ignore_class): a value raises NotImplementedError",
            "reduction": "Keras' own: 'none' -> None, 'sum' -> 'sum', 'mean' -> 'sum_over_batch_size'",
            "compute dtype": "float32 with clipped probabilities",
        },
        function="keras.losses.CategoricalFocalCrossentropy(from_logits=True)",
        options=("alpha", "gamma", "label_smoothing", "reduction"),
        not_covered={"from_logits": "the canonical input is logits; from_logits=False takes probabilities"},
        capabilities=_TF,
    ),
    Adapter(
        LIBRARY,
        "kl_div",
        src(
            """
            import numpy as np
            import torch
            from oracles.tf import keras
            def impl(input, target, *, reduction="mean", log_target=False):
                k = keras()
                if reduction not in ("none", "sum", "mean", "batchmean"):
                    # Keras's own check judges a name the adapter does not translate.
                    k.losses.KLDivergence(reduction=reduction)
                p = target.detach().cpu().numpy()
                p = np.exp(p) if log_target else p
                q = np.exp(input.detach().cpu().numpy())
                # Keras sums over the last axis: each element fed as its own row of length 1.
                point = np.asarray(k.losses.KLDivergence(reduction=None)(p.reshape(-1, 1), q.reshape(-1, 1))) if p.size else np.zeros(0)
                out = torch.from_numpy(np.array(point)).reshape(input.shape)
                if reduction == "none":
                    return out
                if reduction == "sum":
                    return out.sum()
                return out.sum() / (input.shape[0] if input.dim() else 1) if reduction == "batchmean" else out.mean()
            """
        ),
        translations={
            "input": "probabilities (exp of the log-space input)",
            "compute dtype": "float32, clips probabilities to [1e-7, 1]",
        },
        function="keras.losses.KLDivergence(reduction=None)",
        capabilities=_TF,
        options=("reduction (None: per element)",),
        not_covered={"reduction='sum' / 'sum_over_batch_size'": "the adapter reduces Keras's per-element values itself "
                     "(the spec's 'batchmean' has no Keras name)", "dtype": "floatx (float32) only"},
    ),
    # sigmoid family: Keras's own BinaryCrossentropy / BinaryFocalCrossentropy through the TF bridge.
    *_KERAS_SIGMOID,
]
