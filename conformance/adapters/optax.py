"""Adapters for optax (JAX, through the JAX bridge)."""

from __future__ import annotations

from conformance.adapters._model import Adapter, Library, src
from conformance.targets import Capabilities

LIBRARY = Library("optax", module="optax", distribution="optax", framework="jax",
                  doc_url="https://optax.readthedocs.io/en/latest/api/losses.html")

_JAX_BRIDGED = Capabilities(framework="jax", autograd="jax", devices=frozenset({"cpu"}), compilable=False)

# optax returns elementwise losses and leaves the reduction to the caller (its documented use is
# jnp.mean / jnp.sum of the result); the adapter reduces in JAX, inside the bridged computation.
_REDUCE = src(
    """
    from conformance.adapters._bridge import jax_call
    def _reduce(values, reduction):
        import jax.numpy as jnp
        if reduction == "none":
            return values
        if reduction == "mean":
            return jnp.mean(values)
        if reduction == "sum":
            return jnp.sum(values)
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum' (optax leaves it to the caller), got {reduction!r}")
    """
)

_COMMON = {
    "tensors": "through the JAX bridge (conformance.adapters._bridge.jax_call): gradients from jax.vjp, float64 "
    "kept (x64 enabled), the result in the dtype optax returned",
    "reduction": "optax returns elementwise losses: 'mean' / 'sum' are jnp.mean / jnp.sum of them, in JAX; an "
    "unknown reduction raises ValueError in the adapter",
}

ADAPTERS = [
    # sigmoid family
    Adapter(
        LIBRARY,
        "sigmoid_bce",
        _REDUCE
        + src(
            """
            def impl(logits, targets, *, weight=None, pos_weight=None, reduction="none"):
                import optax
                if weight is not None or pos_weight is not None:
                    raise NotImplementedError("optax.sigmoid_binary_cross_entropy has no weight or pos_weight")
                return jax_call(lambda x, z: _reduce(optax.sigmoid_binary_cross_entropy(x, z), reduction),
                                logits, targets)
            """
        ),
        translations={**_COMMON, "weight, pos_weight": "none in optax: the adapter raises NotImplementedError"},
        capabilities=_JAX_BRIDGED,
        function="optax.losses.sigmoid_binary_cross_entropy",
        options=(),
        not_covered={},
    ),
    Adapter(
        LIBRARY,
        "sigmoid_focal",
        _REDUCE
        + src(
            """
            def impl(logits, targets, *, alpha=0.25, gamma=2.0, reduction="none"):
                import optax
                return jax_call(lambda x, z: _reduce(optax.sigmoid_focal_loss(x, z, alpha=alpha, gamma=gamma),
                                                     reduction), logits, targets)
            """
        ),
        translations={**_COMMON, "alpha": "passed through (None: no weighting, optax's default)",
                      "gamma": "passed through"},
        capabilities=_JAX_BRIDGED,
        function="optax.losses.sigmoid_focal_loss",
        options=("alpha", "gamma"),
        not_covered={},
    ),
]
