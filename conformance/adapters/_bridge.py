"""Framework bridges: a TensorFlow or JAX computation as a differentiable torch call.

The suite's gradient properties use torch autograd. A library that computes in
TensorFlow (Keras, keras-cv) or JAX (optax) is called through :func:`tf_call` or
:func:`jax_call`, which run the computation in its own framework and wrap it as
a ``torch.autograd.Function``: the forward pass converts the torch tensors to the
framework's arrays and back, and the backward pass asks the framework for the
vector-Jacobian product (``tf.GradientTape.gradient`` with ``output_gradients``,
or the function ``jax.vjp`` returned). So every gradient property, gradcheck
included, judges the library's own derivatives.

Conversions are faithful both ways: each tensor reaches the framework in its own
dtype (bfloat16 included, through float32, which holds every bfloat16 exactly),
and the result comes back in the dtype the framework returned. A library that
computes float32 for a float64 input therefore returns float32 here, and that is
what the suite judges. Empty tensors pass through unchanged.

Nothing here imports TensorFlow or JAX at module import: each is imported on the
first call. JAX computes float32 unless ``jax_enable_x64`` is on, which would
silently turn a float64 input into float32 before the library sees it; the JAX
bridge enables it (once, on first use) so that float64 reaches the library as
float64.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

__all__ = ["tf_call", "jax_call", "keras", "FLOAT_NAMES"]

# torch dtype <-> the framework dtype name (TensorFlow and JAX share these names).
FLOAT_NAMES: dict[torch.dtype, str] = {
    torch.float16: "float16",
    torch.bfloat16: "bfloat16",
    torch.float32: "float32",
    torch.float64: "float64",
}
_TORCH_OF = {v: k for k, v in FLOAT_NAMES.items()}


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    """A detached CPU copy as NumPy; bfloat16 (no NumPy dtype) goes as float32, exactly."""
    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        t = t.to(torch.float32)
    return np.array(t.numpy(), copy=True)


def _from_numpy(a: np.ndarray, dtype_name: str) -> torch.Tensor:
    """A torch tensor of the framework's dtype ``dtype_name`` from its values (as NumPy)."""
    if dtype_name == "bfloat16":
        return torch.from_numpy(np.asarray(a, dtype=np.float32).copy()).to(torch.bfloat16)
    return torch.from_numpy(np.array(a, copy=True))


def _check_result_dtype(name: str, framework: str) -> None:
    if name not in _TORCH_OF:
        raise TypeError(f"the {framework} computation returned dtype {name}, but a loss must be floating "
                        f"({', '.join(_TORCH_OF)})")


# ---------------------------------------------------------------------------
# TensorFlow
# ---------------------------------------------------------------------------


def _tf() -> Any:
    from oracles.tf import tf

    return tf()


def keras() -> Any:
    """The keras module on its TensorFlow backend (the TF bridge differentiates TF tensors)."""
    from oracles.tf import keras as load

    k = load()
    backend = k.backend.backend()
    if backend != "tensorflow":
        raise RuntimeError(
            f"keras runs on the {backend!r} backend; the Keras adapters bridge TensorFlow gradients, so run with "
            "KERAS_BACKEND=tensorflow"
        )
    return k


def _to_tf(t: torch.Tensor) -> Any:
    tf = _tf()
    v = tf.constant(_to_numpy(t))
    return tf.cast(v, tf.bfloat16) if t.dtype == torch.bfloat16 else v


def _from_tf(v: Any) -> torch.Tensor:
    tf = _tf()
    v = tf.convert_to_tensor(v)
    name = v.dtype.name
    _check_result_dtype(name, "TensorFlow")
    return _from_numpy((tf.cast(v, tf.float32) if name == "bfloat16" else v).numpy(), name)


class _TFCall(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, fn: Callable[..., Any], *tensors: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        tf = _tf()
        inputs = [_to_tf(t) for t in tensors]
        # Persistent: gradcheck asks for one vector-Jacobian product per output element.
        with tf.GradientTape(persistent=True) as tape:
            for v, t in zip(inputs, tensors):
                if t.is_floating_point():
                    tape.watch(v)
            out = tf.convert_to_tensor(fn(*inputs))
        ctx.tape, ctx.inputs, ctx.out = tape, inputs, out
        ctx.in_dtypes = [t.dtype for t in tensors]
        return _from_tf(out)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        tf = _tf()
        wanted = [i for i, need in enumerate(ctx.needs_input_grad[1:]) if need]
        if not wanted:
            return (None,) + (None,) * len(ctx.inputs)
        cotangent = tf.cast(_to_tf(grad.to(_TORCH_OF[ctx.out.dtype.name])), ctx.out.dtype)
        grads = ctx.tape.gradient(
            ctx.out, [ctx.inputs[i] for i in wanted], output_gradients=cotangent,
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        out: list[Any] = [None] * len(ctx.inputs)
        for i, g in zip(wanted, grads):
            out[i] = _from_tf(g).to(ctx.in_dtypes[i])
        return (None, *out)


def tf_call(fn: Callable[..., Any], *tensors: torch.Tensor) -> torch.Tensor:
    """``fn(*tf_tensors)`` (a TensorFlow computation) as a differentiable torch call.

    Every floating tensor is watched; gradients reach each torch tensor that requires them.
    The result has the dtype TensorFlow returned."""
    return _TFCall.apply(fn, *tensors)


# ---------------------------------------------------------------------------
# JAX
# ---------------------------------------------------------------------------

_JAX: Any = None


def _jax() -> Any:
    global _JAX
    if _JAX is None:
        import jax

        # float64 must reach the library as float64; without x64 JAX makes it float32.
        jax.config.update("jax_enable_x64", True)
        _JAX = jax
    return _JAX


def _to_jax(t: torch.Tensor) -> Any:
    jax = _jax()
    a = jax.numpy.asarray(_to_numpy(t))
    return a.astype(jax.numpy.bfloat16) if t.dtype == torch.bfloat16 else a


def _from_jax(a: Any) -> torch.Tensor:
    jax = _jax()
    name = jax.numpy.asarray(a).dtype.name
    _check_result_dtype(name, "JAX")
    values = np.asarray(jax.numpy.asarray(a, dtype=jax.numpy.float32) if name == "bfloat16" else a)
    return _from_numpy(values, name)


# Least recently used first out: option values drawn from a continuous range (alpha, gamma) give
# a new entry per example, and each holds compiled executables.
_JIT_CACHE: collections.OrderedDict[Any, tuple[Any, Any]] = collections.OrderedDict()
_JIT_CACHE_SIZE = 256


def _closure_key(fn: Callable[..., Any]) -> Any:
    """A hashable key for ``fn``'s code and the values it closes over, or ``None``.

    Adapters build a fresh lambda per call (closing over the options in force); two such
    lambdas with the same code and the same option values compute the same function, so
    they share one compiled computation. Unhashable captured values (arrays) give ``None``.
    """
    code = getattr(fn, "__code__", None)
    if code is None:
        return None
    try:
        # With each value's type: 2 and 2.0 (and True and 1) are equal keys but trace differently
        # (x ** 2 is an integer power, x ** 2.0 a float one).
        cells = tuple((type(v), v) for v in (c.cell_contents for c in (fn.__closure__ or ())))
        key = (code, cells, fn.__defaults__, tuple(sorted((fn.__kwdefaults__ or {}).items())))
        hash(key)
    except (TypeError, ValueError):  # unhashable capture, or an empty cell
        return None
    return key


def _jitted(fn: Callable[..., Any], diff: tuple[int, ...]) -> tuple[Any, Any] | None:
    """``jax.jit`` of the forward computation and of its vector-Jacobian product, cached."""
    key = _closure_key(fn)
    if key is None:
        return None
    key = (key, diff)
    hit = _JIT_CACHE.get(key)
    if hit is not None:
        _JIT_CACHE.move_to_end(key)
    else:
        jax = _jax()

        def forward(*arrays: Any) -> Any:
            return jax.numpy.asarray(fn(*arrays))

        def backward(arrays: tuple[Any, ...], cotangent: Any) -> Any:
            def of_differentiable(*xs: Any) -> Any:
                full = list(arrays)
                for i, x in zip(diff, xs):
                    full[i] = x
                return jax.numpy.asarray(fn(*full))

            return jax.vjp(of_differentiable, *[arrays[i] for i in diff])[1](cotangent)

        hit = _JIT_CACHE[key] = (jax.jit(forward), jax.jit(backward))
        while len(_JIT_CACHE) > _JIT_CACHE_SIZE:
            _JIT_CACHE.popitem(last=False)
    return hit


class _JaxCall(torch.autograd.Function):
    """A JAX computation as a torch autograd node.

    The computation runs under ``jax.jit``, as a JAX training step runs a loss: eager JAX
    compiles every primitive separately for every new shape (over a second per call here
    for a focal loss), where one compiled computation per shape and option set costs a
    fraction of it and is reused across properties. A function whose tracing fails on a
    value-dependent branch (a concretization error) runs eagerly instead.
    """

    @staticmethod
    def forward(ctx: Any, fn: Callable[..., Any], *tensors: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        jax = _jax()
        arrays = [_to_jax(t) for t in tensors]
        diff = tuple(i for i, t in enumerate(tensors) if t.is_floating_point())
        ctx.diff, ctx.n, ctx.in_dtypes = diff, len(tensors), [t.dtype for t in tensors]
        compiled = _jitted(fn, diff)
        out = None
        if compiled is not None:
            try:
                out = compiled[0](*arrays)
                ctx.arrays, ctx.backward_fn, ctx.vjp = tuple(arrays), compiled[1], None
            except jax.errors.ConcretizationTypeError:
                out = None
        if out is None:

            def of_differentiable(*xs: Any) -> Any:
                full = list(arrays)
                for i, x in zip(diff, xs):
                    full[i] = x
                return jax.numpy.asarray(fn(*full))

            out, ctx.vjp = jax.vjp(of_differentiable, *[arrays[i] for i in diff])
        ctx.out_dtype = out.dtype
        return _from_jax(out)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        if not any(ctx.needs_input_grad[1:]):
            return (None,) + (None,) * ctx.n
        jax = _jax()
        # jax.vjp wants the cotangent in the output's exact dtype.
        cotangent = _to_jax(grad.to(_TORCH_OF[ctx.out_dtype.name])).astype(ctx.out_dtype)
        grads = ctx.vjp(cotangent) if ctx.vjp is not None else ctx.backward_fn(ctx.arrays, cotangent)
        out: list[Any] = [None] * ctx.n
        for i, g in zip(ctx.diff, grads):
            if ctx.needs_input_grad[1 + i]:
                out[i] = _from_jax(jax.numpy.asarray(g)).to(ctx.in_dtypes[i])
        return (None, *out)


def jax_call(fn: Callable[..., Any], *tensors: torch.Tensor) -> torch.Tensor:
    """``fn(*jax_arrays)`` (a JAX computation) as a differentiable torch call, through ``jax.vjp``.

    Gradients reach each floating torch tensor that requires them. The result has the dtype
    JAX returned (float64 stays float64: the bridge enables ``jax_enable_x64``)."""
    return _JaxCall.apply(fn, *tensors)

