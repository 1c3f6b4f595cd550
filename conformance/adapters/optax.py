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
    "tensors": "through the JAX bridge (conformance.adapters._bridge.jax_call): the loss and its jax.vjp run "
    "under jax.jit (as in a JAX training step), float64 kept (x64 enabled), the result in the dtype optax returned",
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
    # regression family (adapters-rest): optax.huber_loss(delta) = 0.5 m^2 + delta (|e| - m), m = min(|e|, delta),
    # which is delta * smooth_l1(beta=delta) (the spec's summary: beta * f is Huber(delta=beta)).
    Adapter(
        LIBRARY,
        "smooth_l1",
        _REDUCE
        + src(
            """
            def impl(input, target, *, beta=1.0, weight=None, reduction="none"):
                import optax
                if weight is not None:
                    raise NotImplementedError("optax.huber_loss takes no weight")
                return jax_call(lambda x, y: _reduce(optax.huber_loss(x, y, delta=beta) / beta, reduction),
                                input, target)
            """
        ),
        translations={**_COMMON, "beta": "delta = beta, and the Huber loss divided by beta (in JAX, in the input's "
                      "dtype): Huber(delta) / delta is smooth L1 with beta = delta",
                      "weight": "none in optax: the adapter raises NotImplementedError"},
        capabilities=_JAX_BRIDGED,
        function="optax.losses.huber_loss",
        options=("delta",),
        not_covered={},
    ),
    # softmax family (adapters-rest): integer targets go to softmax_cross_entropy_with_integer_labels, probability
    # targets to softmax_cross_entropy; both take the class axis as `axis` (the canonical axis 1).
    Adapter(
        LIBRARY,
        "softmax_cross_entropy",
        _REDUCE
        + src(
            """
            def impl(logits, target, *, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
                import optax
                import jax
                if weight is not None:
                    raise NotImplementedError("optax's softmax cross-entropies take no class weight")
                # An ignore_index that no target equals changes nothing; one that some target equals is not
                # expressible (probability targets: ignore_index does not apply).
                if not target.is_floating_point() and bool((target == ignore_index).any()):
                    raise NotImplementedError(f"optax has no ignore_index: targets equal to {ignore_index} would not "
                                              "be ignored")
                axis = 1 if logits.dim() > 1 else 0
                if target.is_floating_point():
                    def f(x, t):
                        if label_smoothing:
                            t = optax.smooth_labels(t, label_smoothing, axis=axis)
                        return _reduce(optax.softmax_cross_entropy(x, t, axis=axis), reduction)
                else:
                    def f(x, t):
                        if label_smoothing:  # optax's recipe: smooth_labels on one-hot labels
                            q = optax.smooth_labels(jax.nn.one_hot(t, x.shape[axis], dtype=x.dtype, axis=axis),
                                                    label_smoothing, axis=axis)
                            return _reduce(optax.softmax_cross_entropy(x, q, axis=axis), reduction)
                        return _reduce(optax.softmax_cross_entropy_with_integer_labels(x, t, axis=axis), reduction)
                return jax_call(f, logits, target)
            """
        ),
        translations={**_COMMON,
                      "target": "class indices -> softmax_cross_entropy_with_integer_labels; probabilities -> "
                      "softmax_cross_entropy",
                      "class axis": "axis = 1 (the canonical (N, C, *) layout; 0 for unbatched (C,) logits)",
                      "label_smoothing": "optax.smooth_labels(target, s, axis) on probabilities; on class indices "
                      "optax's recipe, smooth_labels(jax.nn.one_hot(target, C)) into softmax_cross_entropy",
                      "weight, ignore_index": "none in optax: the adapter raises NotImplementedError for a weight, and "
                      "for index targets equal to ignore_index (-100 by default), which optax would not ignore; an "
                      "ignore_index no target equals changes nothing and is accepted",
                      "reduction": "'mean' is jnp.mean over the entries (the canonical mean without weights or "
                      "ignored entries); 'none', 'sum' as above"},
        capabilities=_JAX_BRIDGED,
        function="optax.losses.softmax_cross_entropy, optax.losses.softmax_cross_entropy_with_integer_labels",
        options=("axis", "smooth_labels"),
        not_covered={"where": "masks classes out of the softmax: no canonical counterpart"},
    ),
    # kl_div (adapters-rest): optax.kl_divergence(log_predictions, targets) = sum t (log t - x) over `axis`
    # (the canonical argument order: input log-probabilities, then target probabilities);
    # kl_divergence_with_log_targets for log_target=True.
    Adapter(
        LIBRARY,
        "kl_div",
        src(
            """
            from conformance.adapters._bridge import jax_call
            def impl(input, target, *, reduction="mean", log_target=False):
                import optax
                import jax.numpy as jnp
                if not isinstance(log_target, bool):
                    raise ValueError(f"log_target must be a bool (it selects optax's function), got {log_target!r}")
                if reduction not in ("none", "mean", "sum", "batchmean"):
                    raise ValueError(f"reduction must be 'none', 'mean', 'sum' or 'batchmean', got {reduction!r}")
                kl = optax.losses.kl_divergence_with_log_targets if log_target else optax.losses.kl_divergence
                def f(x, t):
                    if reduction == "none":
                        return kl(x, t, axis=())
                    if reduction == "mean":
                        return jnp.mean(kl(x, t, axis=()))
                    if reduction == "sum":
                        return kl(x, t, axis=None)
                    # batchmean: the KL of each sample (summed over every axis but the first), averaged
                    return jnp.mean(kl(x, t, axis=tuple(range(1, x.ndim)))) if x.ndim else kl(x, t, axis=None)
                return jax_call(f, input, target)
            """
        ),
        translations={"tensors": _COMMON["tensors"],
                      "log_target": "False -> optax.kl_divergence, True -> optax.kl_divergence_with_log_targets; "
                      "a non-bool raises ValueError in the adapter",
                      "reduction": "through optax's axis: 'none' axis=() (pointwise), 'sum' axis=None, 'batchmean' "
                      "the per-sample KL (axis = every axis but the first) averaged by jnp.mean (a 0-d input: "
                      "its sum), 'mean' jnp.mean of the pointwise values; an unknown reduction raises ValueError"},
        capabilities=_JAX_BRIDGED,
        function="optax.losses.kl_divergence, optax.losses.kl_divergence_with_log_targets",
        options=("axis",),
        not_covered={"where": "masks elements out of the sum: no canonical counterpart"},
    ),
]
