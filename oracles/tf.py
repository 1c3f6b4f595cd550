"""TensorFlow / Keras oracles for the sigmoid BCE / focal family.

TensorFlow is imported on first use (it costs seconds), never at collection.
Inputs and outputs are NumPy arrays; outputs are float64.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any

import numpy as np

__all__ = ["tf", "keras", "sigmoid_bce", "sigmoid_focal", "SIGMOID_BCE_DOMAIN", "SIGMOID_FOCAL_DOMAIN"]

SIGMOID_BCE_DOMAIN = (
    "all finite inputs, computed in the input's dtype; its formula max(x,0) - x*z + "
    "log1p(exp(-|x|)) loses ulp(|x|) absolutely, so comparisons allow rtol*|x|"
)
SIGMOID_FOCAL_DOMAIN = (
    "all finite inputs, computed in float32; 1 - p_t is formed by subtraction, so comparisons "
    "allow rtol*BCE absolutely"
)

_TF: Any = None


def tf() -> Any:
    """The tensorflow module, imported once, quietly, on the CPU."""
    global _TF
    if _TF is None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", os.environ.get("CUDA_VISIBLE_DEVICES", ""))
        # triton's libtriton (loaded by torch.compile, and on import by torchvision, timm, monai, ...)
        # segfaults when it is loaded after TensorFlow's libraries: load it first where it is installed.
        # Where TensorFlow is already loaded (imported directly by someone else), loading triton
        # now would segfault at once: leave it to whoever needs it.
        if "tensorflow" not in sys.modules and importlib.util.find_spec("triton") is not None:
            import triton._C.libtriton  # noqa: F401
        # With TensorFlow loaded first, a later torch.compile in
        # the same process segfaults (torch 2.14, tensorflow-cpu 2.21); loading dynamo first avoids it.
        # Loading dynamo after TensorFlow segfaults too: only before TensorFlow's own first import.
        if "tensorflow" not in sys.modules:
            import torch._dynamo  # noqa: F401
        import tensorflow

        _TF = tensorflow
    return _TF


def keras() -> Any:
    tf()
    import keras as k

    return k


def sigmoid_bce(x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``tf.nn.sigmoid_cross_entropy_with_logits`` in the inputs' dtype."""
    t = tf()
    out = t.nn.sigmoid_cross_entropy_with_logits(labels=t.constant(z), logits=t.constant(x))
    return np.asarray(out.numpy(), dtype=np.float64)


def sigmoid_focal(x: np.ndarray, z: np.ndarray, alpha: float | None = 0.25, gamma: float = 2.0) -> np.ndarray:
    """Keras ``BinaryFocalCrossentropy(from_logits=True)``, elementwise.

    Keras averages over the last axis, so each element is fed as its own row of
    length 1; ``alpha=None`` maps to ``apply_class_balancing=False``.
    """
    k = keras()
    loss = k.losses.BinaryFocalCrossentropy(
        apply_class_balancing=alpha is not None,
        alpha=0.25 if alpha is None else float(alpha),
        gamma=float(gamma),
        from_logits=True,
        reduction=None,
    )
    shape = np.shape(x)
    flat_x = np.asarray(x, dtype=np.float32).reshape(-1, 1)
    flat_z = np.asarray(z, dtype=np.float32).reshape(-1, 1)
    if flat_x.size == 0:
        return np.zeros(shape, dtype=np.float64)
    out = np.asarray(loss(flat_z, flat_x), dtype=np.float64)
    return out.reshape(shape)
