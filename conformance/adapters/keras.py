"""Adapters for keras."""

from __future__ import annotations

from conformance.adapters._model import Adapter, Library, src
from conformance.targets import Capabilities

LIBRARY = Library("keras", module="keras", distribution="keras", framework="tf")

# Keras computes through NumPy on the CPU: no torch autograd, no torch device placement.
_TF = Capabilities(framework="tf", autograd=None, devices=frozenset({"cpu"}), compilable=False)

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
            def impl(logits, target, *, gamma=2.0, alpha=None, reduction="mean"):
                if alpha is not None:
                    raise TypeError("keras CategoricalFocalCrossentropy takes a scalar alpha, not per-class weights")
                k = keras()
                loss = k.losses.CategoricalFocalCrossentropy(alpha=1.0, gamma=gamma, from_logits=True, reduction=None)
                x = logits.detach().cpu().numpy()
                y = np.eye(x.shape[1], dtype=x.dtype)[target.cpu().numpy()]
                per = np.asarray(loss(y, x)) if x.shape[0] else np.zeros((0,), np.float32)
                out = torch.from_numpy(np.array(per))
                return out if reduction == "none" else (out.sum() if reduction == "sum" else out.mean())
            """
        ),
        translations={
            "alpha": "None only (Keras' alpha is a scalar); per-class alpha raises",
            "compute dtype": "float32 with clipped probabilities",
            "reduction": "per-sample values reduced by the adapter",
        },
        function="keras.losses.CategoricalFocalCrossentropy(alpha=1, from_logits=True, reduction=None)",
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
                return out.sum() / input.shape[0] if reduction == "batchmean" else out.mean()
            """
        ),
        translations={
            "input": "probabilities (exp of the log-space input)",
            "compute dtype": "float32, clips probabilities to [1e-7, 1]",
        },
        function="keras.losses.KLDivergence(reduction=None)",
        capabilities=_TF,
    ),
    Adapter(
        LIBRARY,
        "sigmoid_focal",
        src(
            """
            import numpy as np
            import torch
            from oracles.tf import keras
            def impl(logits, targets, *, alpha=0.25, gamma=2.0):
                k = keras()
                loss = k.losses.BinaryFocalCrossentropy(apply_class_balancing=alpha is not None,
                    alpha=0.25 if alpha is None else alpha, gamma=gamma, from_logits=True, reduction=None)
                x = logits.detach().cpu().numpy()
                z = targets.detach().cpu().numpy()
                if x.shape == z.shape:  # unequal shapes reach Keras as given
                    x, z = x.reshape(-1, 1), z.reshape(-1, 1)
                out = np.asarray(loss(z, x)) if x.size else np.zeros((0,), dtype=np.float32)
                return torch.from_numpy(np.array(out)).reshape(logits.shape)
            """
        ),
        translations={
            "alpha": "apply_class_balancing=False for None",
            "layout": "means over the last axis: each element fed as a row of length 1",
            "compute dtype": "float32 (Keras floatx), returned as computed",
        },
        function="keras.losses.BinaryFocalCrossentropy(from_logits=True, reduction=None)",
        capabilities=_TF,
    ),
]
