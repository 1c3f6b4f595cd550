"""Property bodies shared by several specs (robustness, determinism, gradients).

Each factory returns a check function; the spec module registers it with its
own docstring-bearing wrapper so that every property states its maths where it
is declared.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from conformance import checks as ck
from conformance.targets import Target, TargetError

__all__ = ["tensor_args", "clone_args", "check_not_modified", "check_deterministic"]


def tensor_args(ex: dict[str, Any], names: Sequence[str]) -> list[torch.Tensor]:
    return [ex[n] for n in names]


def clone_args(values: Sequence[Any]) -> list[Any]:
    return [v.clone() if isinstance(v, torch.Tensor) else v for v in values]


def check_not_modified(
    target: Target, args: Sequence[Any], kwargs: dict[str, Any], names: Sequence[str]
) -> None:
    """No input tensor changes value or version counter across a call."""
    before = clone_args(args)
    versions = [a._version if isinstance(a, torch.Tensor) else None for a in args]
    target(*args, **kwargs)
    for name, a, b, v in zip(names, args, before, versions):
        if not isinstance(a, torch.Tensor):
            continue
        ck.assert_identical(b, a, what=f"{name} after the call (it was modified in place)")
        if a._version != v:
            raise AssertionError(
                f"{name}._version went from {v} to {a._version}: the target wrote into its input in place "
                "(values may be unchanged, but autograd and callers sharing the tensor see the write)"
            )


def check_deterministic(call: Callable[[], torch.Tensor]) -> None:
    """Two calls on the same inputs give bitwise-identical outputs."""
    a = call()
    b = call()
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
        raise AssertionError(f"the target returned {type(a).__name__}, but should return a torch.Tensor")
    ck.assert_identical(a.detach(), b.detach(), what="second call's output versus the first's")


# ---------------------------------------------------------------------------
# Device and dtype agreement (category "device"), registered per spec
# ---------------------------------------------------------------------------


def _map_tensors(ex: dict[str, Any], keys: Sequence[str], fn: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, Any]:
    return {k: (fn(v) if k in keys and isinstance(v, torch.Tensor) else v) for k, v in ex.items()}


@contextlib.contextmanager
def _no_silent_eager_fallback() -> Iterator[None]:
    """Raise dynamo's recompile limits while a compiled target runs.

    Examples vary dtype, shapes and Python scalars, and each variation recompiles. At the
    default limit (8 per code object) dynamo silently falls back to eager, and the property
    would go on comparing eager with eager; a thorough run draws tens of examples, so the
    limits go up for the duration of the call (the names differ across torch versions)."""
    import torch._dynamo.config as dcfg

    limits = {name: 4096 for name in ("recompile_limit", "cache_size_limit", "accumulated_recompile_limit",
                                      "accumulated_cache_size_limit") if hasattr(dcfg, name)}
    with dcfg.patch(**limits):
        yield


def register_device_properties(
    spec: Any,
    *,
    strategy: Any,
    call: Callable[[Target, dict[str, Any]], torch.Tensor],
    float_keys: Sequence[str],
    tensor_keys: Sequence[str] | None = None,
    scale: Callable[[dict[str, Any]], Any] | None = None,
    low_precision: bool = True,
) -> None:
    """Add ``cuda_matches_cpu``, ``mps_matches_cpu``, ``low_precision_matches_float32`` and
    ``compiled_matches_eager`` to ``spec``.

    ``call(target, example)`` evaluates the target on an example; ``float_keys`` name
    the floating tensors to cast, ``tensor_keys`` (default: the float keys) every
    tensor to move between devices.
    """
    from conformance.spec import Category, SkipProperty

    moved = tuple(tensor_keys or float_keys)

    def _device_check(target: Target, ex: dict[str, Any], device: str) -> None:
        if target.capabilities.framework != "torch":
            raise SkipProperty(f"{target.name} computes outside torch (its adapter goes through NumPy on the CPU): "
                               "the library's own device placement is not what this adapter exercises")
        cpu = call(target, ex)
        dev_ex = _map_tensors(ex, moved, lambda t: t.to(device))
        out = call(target, dev_ex)
        if out.device.type != device:
            raise AssertionError(f"out.device={out.device}, but should be {device} (the inputs' device)")
        ck.assert_close(out.cpu(), ck.f64(cpu), spec=spec.id, key="device", dtype=cpu.dtype,
                        scale=None if scale is None else scale(ex), inputs=ex)

    def cuda_matches_cpu(target: Target, ex: dict[str, Any]) -> None:
        _device_check(target, ex, "cuda")

    cuda_matches_cpu.__doc__ = "On CUDA the output stays on the device and equals the CPU output within the dtype's tolerance."
    spec.property(Category.DEVICE, strategy=strategy, requires=("cuda",), name="cuda_matches_cpu")(cuda_matches_cpu)

    def mps_matches_cpu(target: Target, ex: dict[str, Any]) -> None:
        _device_check(target, _map_tensors(ex, float_keys, lambda t: t.float()), "mps")

    mps_matches_cpu.__doc__ = "On Apple MPS (float32) the output stays on the device and equals the CPU output."
    spec.property(Category.DEVICE, strategy=strategy, requires=("mps",), name="mps_matches_cpu")(mps_matches_cpu)

    def low_precision_matches_float32(target: Target, ex: dict[str, Any]) -> None:
        for dt in (torch.float16, torch.bfloat16):
            low = _map_tensors(ex, float_keys, lambda t: t.to(dt))
            # The float32 reference sees the same (rounded) inputs as the low-precision call.
            up = _map_tensors(low, float_keys, lambda t: t.to(torch.float32))
            want = call(target, up)
            got = call(target, low)
            if got.dtype != dt:
                raise AssertionError(f"out.dtype={got.dtype}, but should be {dt} (the input's dtype)")
            ck.assert_close(got, ck.f64(want.to(dt)), spec=spec.id, key="low_precision", dtype=dt,
                            scale=None if scale is None else scale(up), inputs=low, what=f"out ({dt})")

    low_precision_matches_float32.__doc__ = (
        "float16 and bfloat16 inputs give outputs of that dtype equal to the float32 result on the same "
        "rounded inputs, within the dtype's tolerance."
    )
    if low_precision:  # off where the output is discrete (indices, masks) and rounding may flip a decision
        spec.property(Category.DEVICE, strategy=strategy, name="low_precision_matches_float32")(low_precision_matches_float32)

    def compiled_matches_eager(target: Target, ex: dict[str, Any]) -> None:
        fn = target.fn
        if fn is None:
            raise SkipProperty("target is not loaded")
        if target.capabilities.framework != "torch":
            raise SkipProperty(f"{target.name} computes outside torch (its adapter goes through NumPy): nothing for "
                               "torch.compile to compile")
        try:
            compiled = torch.compile(fn, dynamic=True)
        except Exception as exc:  # noqa: BLE001 - an uncompilable target is an outcome
            raise AssertionError(f"torch.compile({target.name}) raised {type(exc).__name__}: {exc}") from None
        ctarget = Target(name=f"compiled:{target.name}", spec_id=target.spec_id, fn=compiled, source=target.source)
        # The example as drawn, then its float64 twin (every floating tensor, boxes and priors included):
        # a compiled path that drops to float32 shows only there.
        floating = [k for k, v in ex.items() if isinstance(v, torch.Tensor) and v.is_floating_point()]
        twin = _map_tensors(ex, floating, lambda t: t.double())
        has_twin = any(ex[k].dtype != torch.float64 for k in floating)
        for e in (ex, twin) if has_twin else (ex,):
            try:
                eager = call(target, e)
            except TargetError:
                if e is twin:  # a target without float64 support: nothing to compare it on
                    continue
                raise
            with _no_silent_eager_fallback():
                out = call(ctarget, e)
            ck.assert_close(out, ck.f64(eager), spec=spec.id, key="compile", dtype=eager.dtype,
                            scale=None if scale is None else scale(e), inputs=e,
                            what="compiled output" + (" (float64 inputs)" if e is twin else ""))

    compiled_matches_eager.__doc__ = (
        "torch.compile(target) gives the eager output within tolerance, on the example and on its float64 twin "
        "(thorough profile only)."
    )
    spec.property(
        Category.DEVICE, strategy=strategy, profiles=("thorough",), examples_factor=0.05, name="compiled_matches_eager"
    )(compiled_matches_eager)
