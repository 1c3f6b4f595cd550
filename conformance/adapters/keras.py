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
            import numpy as np
            import torch
            from oracles.tf import keras
            def impl(input, target, *, beta=1.0):
                k = keras()
                x = input.detach().cpu().numpy()
                y = target.detach().cpu().numpy()
                if x.shape == y.shape:
                    x, y = x.reshape(-1, 1), y.reshape(-1, 1)
                out = np.asarray(k.losses.Huber(delta=beta, reduction=None)(y, x)) if x.size else np.zeros((0,), np.float32)
                return torch.from_numpy(np.array(out) / np.float32(beta)).reshape(input.shape)
            """
        ),
        translations={"compute dtype": "float32", "beta": "Huber has no L1 limit: beta = 0 divides by 0"},
        function="keras.losses.Huber(delta=beta, reduction=None) / beta",
        capabilities=_TF,
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
