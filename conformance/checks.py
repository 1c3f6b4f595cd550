"""Assertion helpers for properties (imported as ``ck``).

Every helper compares in float64 (the target's output is cast up, never the
oracle down), takes its tolerance from :mod:`conformance.tolerances`, and fails
with a message of the form ``out[i]=got, but should be want`` plus the inputs
at the worst element, so a failure reads without a debugger.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from conformance import recorder
from conformance.tolerances import Tol, grad_tolerance, tolerance

__all__ = [
    "f64",
    "judged_dtype",
    "assert_close",
    "assert_grad_close",
    "assert_shape_dtype",
    "assert_finite",
    "assert_identical",
    "assert_raises",
    "measure_accuracy",
    "input_grad",
]

ArrayLike = torch.Tensor | np.ndarray | float


def f64(x: ArrayLike) -> np.ndarray:
    """Any tensor or array as a float64 NumPy array (cast up, on the CPU)."""
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def _fmt(v: float) -> str:
    return repr(float(v))


def _at(arr: np.ndarray, idx: tuple[int, ...]) -> Any:
    return arr[idx] if arr.ndim else arr[()]


def _describe_inputs(inputs: Mapping[str, Any] | None, idx: tuple[int, ...], shape: tuple[int, ...]) -> str:
    if not inputs:
        return ""
    parts = []
    for name, value in inputs.items():
        if isinstance(value, torch.Tensor) and tuple(value.shape) == shape:
            parts.append(f"{name}={_fmt(_at(f64(value), idx))}")
        elif isinstance(value, torch.Tensor):
            continue
        else:
            parts.append(f"{name}={value!r}")
    return " with " + ", ".join(parts) if parts else ""


def _max_of(dtype: torch.dtype) -> float:
    return float(torch.finfo(dtype).max) if dtype.is_floating_point else float("inf")


def judged_dtype(requested: torch.dtype | None, produced: torch.dtype) -> torch.dtype:
    """The precision a result is judged at: the coarser of the input's and the output's.

    A target that returns float32 for a float64 input fails ``output_dtype_and_shape``
    once; judging its every other claim at float64 would repeat that one root cause
    as a cascade of precision failures.
    """
    if requested is None or not produced.is_floating_point:
        return requested or produced
    return produced if torch.finfo(produced).eps > torch.finfo(requested).eps else requested


def assert_close(
    got: torch.Tensor,
    want: ArrayLike,
    *,
    spec: str,
    key: str,
    what: str = "out",
    dtype: torch.dtype | None = None,
    scale: ArrayLike | None = None,
    mask: np.ndarray | None = None,
    inputs: Mapping[str, Any] | None = None,
    tol: Tol | None = None,
) -> None:
    """``got`` (the target's output) equals ``want`` (float64) within tolerance.

    ``mask`` selects the elements the oracle may be asked about (its domain);
    ``scale`` is the per-element magnitude of the terms whose difference is the
    result (see :mod:`conformance.tolerances`).
    """
    __tracebackhide__ = True
    if not isinstance(got, torch.Tensor):
        raise AssertionError(f"{what} is a {type(got).__name__}, but should be a torch.Tensor")
    g = f64(got)
    w = np.broadcast_to(f64(want), g.shape) if np.ndim(f64(want)) == 0 else f64(want)
    if g.shape != w.shape:
        raise AssertionError(f"{what}.shape={tuple(g.shape)}, but should be {tuple(w.shape)}")
    t = tol or tolerance(spec, key, judged_dtype(dtype, got.dtype))
    s = np.zeros_like(w) if scale is None else np.broadcast_to(np.abs(f64(scale)), w.shape)
    m = np.ones(w.shape, dtype=bool) if mask is None else np.broadcast_to(mask, w.shape)
    rec = recorder.current()
    if rec is not None and mask is not None:
        rec.count_domain(key, int(m.sum()), int(m.size - m.sum()))
    judged = judged_dtype(dtype, got.dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        allowed = t.atol + t.rtol * np.maximum(np.abs(w), s)
        err = np.abs(g - w)
        same_special = (g == w) | (np.isnan(g) & np.isnan(w))
        # A value beyond the output dtype's range (within the tolerance) rounds to inf: that is
        # the correct result in that dtype, not an error.
        overflow = np.isinf(g) & (np.sign(g) == np.sign(w)) & (np.abs(w) * (1 + t.rtol) > _max_of(judged))
        bad = m & ~same_special & ~overflow & ~(err <= allowed)
    if not bad.any():
        return
    n_bad = int(bad.sum())
    err_masked = np.where(bad, np.nan_to_num(err, nan=np.inf, posinf=np.inf), -1.0)
    idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(err_masked)), w.shape)) if w.ndim else ()
    where = f"{what}[{', '.join(map(str, idx))}]" if idx else what
    raise AssertionError(
        f"{where}={_fmt(_at(g, idx))}, but should be {_fmt(_at(w, idx))} ({key})"
        f"{_describe_inputs(inputs, idx, w.shape)}; |err|={_fmt(_at(err, idx))} > "
        f"allowed {_fmt(_at(allowed, idx))} (rtol={t.rtol:g}, atol={t.atol:g}"
        f"{', ' + t.reason if t.reason else ''}); {n_bad} of {int(m.sum())} elements out of tolerance"
    )


def assert_grad_close(
    got: torch.Tensor,
    want: ArrayLike,
    *,
    spec: str,
    key: str,
    what: str = "grad",
    dtype: torch.dtype | None = None,
    scale: ArrayLike | None = None,
    mask: np.ndarray | None = None,
    inputs: Mapping[str, Any] | None = None,
) -> None:
    __tracebackhide__ = True
    assert_close(
        got,
        want,
        spec=spec,
        key=key,
        what=what,
        dtype=dtype,
        scale=scale,
        mask=mask,
        inputs=inputs,
        tol=grad_tolerance(spec, key, judged_dtype(dtype, got.dtype)),
    )


def measure_accuracy(got: torch.Tensor, exact: np.ndarray, *, against: str = "exact") -> None:
    """Record max abs / rel / ULP error of ``got`` against exact values (never fails)."""
    rec = recorder.current()
    if rec is None or got.numel() == 0:
        return
    g = f64(got)
    e = np.broadcast_to(exact, g.shape).astype(np.float64)
    finite = np.isfinite(e) & np.isfinite(g)
    if not finite.any():
        return
    g, e = g[finite], e[finite]
    abs_err = np.abs(g - e)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(e != 0, abs_err / np.abs(e), np.where(abs_err == 0, 0.0, np.inf))
    np_dtype = {torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64}.get(got.dtype)
    if np_dtype is None:  # bfloat16 has no NumPy dtype: one ulp is 2**-7 relative
        ulp = np.abs(e) * 2.0**-7
        ulp = np.where(ulp == 0, np.finfo(np.float32).tiny, ulp)
    else:
        ulp = np.spacing(np.abs(e).astype(np_dtype)).astype(np.float64)
    ulp_err = abs_err / ulp
    rec.record_accuracy(
        against,
        str(got.dtype).removeprefix("torch."),
        float(abs_err.max()),
        float(rel.max()),
        float(ulp_err.max()),
        int(abs_err.size),
    )


def assert_shape_dtype(out: Any, *, shape: Sequence[int], dtype: torch.dtype, what: str = "out") -> None:
    __tracebackhide__ = True
    if not isinstance(out, torch.Tensor):
        raise AssertionError(f"{what} is a {type(out).__name__}, but should be a torch.Tensor")
    if tuple(out.shape) != tuple(shape):
        raise AssertionError(f"{what}.shape={tuple(out.shape)}, but should be {tuple(shape)}")
    if out.dtype != dtype:
        raise AssertionError(f"{what}.dtype={out.dtype}, but should be {dtype} (the input's dtype)")


def assert_finite(t: torch.Tensor, *, what: str, inputs: Mapping[str, Any] | None = None) -> None:
    __tracebackhide__ = True
    arr = f64(t)
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0]) if arr.ndim else ()
        where = f"{what}[{', '.join(map(str, idx))}]" if idx else what
        raise AssertionError(
            f"{where}={_fmt(_at(arr, idx))}, but should be finite{_describe_inputs(inputs, idx, arr.shape)}; "
            f"{int(bad.sum())} of {arr.size} elements are not finite"
        )


def assert_identical(a: torch.Tensor, b: torch.Tensor, *, what: str) -> None:
    """Bitwise equality (NaN equal to NaN): for determinism and mutation checks."""
    __tracebackhide__ = True
    if a.shape != b.shape or a.dtype != b.dtype:
        raise AssertionError(f"{what}: {tuple(a.shape)}/{a.dtype} differs from {tuple(b.shape)}/{b.dtype}")
    if not torch.equal(a, b):
        same_nan = torch.isnan(a) & torch.isnan(b) if a.is_floating_point() else torch.zeros_like(a, dtype=torch.bool)
        diff = (a != b) & ~same_nan
        if diff.any():
            idx = tuple(int(i) for i in diff.nonzero()[0]) if a.dim() else ()
            where = f"[{', '.join(map(str, idx))}]" if idx else ""
            raise AssertionError(
                f"{what}{where}: {a[idx].item()!r} then {b[idx].item()!r}; {int(diff.sum())} of {a.numel()} elements differ"
            )


def assert_raises(call: Callable[[], Any], *, what: str) -> BaseException:
    """The call must raise (any exception); returns it."""
    __tracebackhide__ = True
    from conformance.targets import TargetError

    try:
        out = call()
    except TargetError as exc:
        return exc.original
    except Exception as exc:  # noqa: BLE001
        return exc
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    raise AssertionError(f"{what}: the call returned {shape}, but should raise an error")


def input_grad(out: torch.Tensor, wrt: torch.Tensor, cotangent: torch.Tensor | None = None) -> torch.Tensor:
    """d(sum(cotangent * out))/d(wrt); an output that does not depend on wrt fails."""
    __tracebackhide__ = True
    if not out.requires_grad:
        raise AssertionError("out does not require grad: the output is detached from the input")
    ct = torch.ones_like(out) if cotangent is None else cotangent
    (g,) = torch.autograd.grad(out, wrt, grad_outputs=ct, allow_unused=True)
    if g is None:
        raise AssertionError("the gradient with respect to the input is None: the output does not depend on it")
    return g


def assert_gradcheck(
    fn: Callable[..., torch.Tensor],
    x: torch.Tensor | tuple[torch.Tensor, ...],
    *,
    spec: str,
    names: Sequence[str] | None = None,
) -> None:
    """``torch.autograd.gradcheck`` of ``fn`` at the float64 leaves ``x`` (eps 1e-6), with the spec's
    ``gradcheck`` tolerance; a mismatch fails with the first lines of gradcheck's report, naming
    the input whose gradient is wrong."""
    from torch.autograd.gradcheck import GradcheckError

    inputs = x if isinstance(x, tuple) else (x,)
    tol = tolerance(spec, "gradcheck", torch.float64)
    try:
        torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=tol.atol, rtol=tol.rtol)
    except GradcheckError as exc:
        text = str(exc).splitlines()
        head = text[0] if text else "gradcheck failed"
        if names and len(names) > 1:
            import re

            m = re.search(r"output (\d+) with respect to input (\d+)", head)
            if m and int(m.group(2)) < len(names):
                head += f" (input {m.group(2)} is {names[int(m.group(2))]})"
        raise AssertionError(f"gradcheck failed: {head}") from None
