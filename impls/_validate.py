"""Input validation shared by the reference implementations.

Every message names the offending argument and states what was expected, so a
user reading the error knows what to change without opening the source.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch

FLOATING = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
REDUCTIONS = ("none", "mean", "sum")


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def check_tensor(
    name: str,
    value: Any,
    *,
    floating: bool = True,
    dtypes: Sequence[torch.dtype] | None = None,
    ndim: int | Iterable[int] | None = None,
) -> torch.Tensor:
    """Check that ``value`` is a tensor of an allowed dtype and rank; return it."""
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    allowed = tuple(dtypes) if dtypes is not None else (FLOATING if floating else None)
    if allowed is not None and value.dtype not in allowed:
        names = ", ".join(_dtype_name(d) for d in allowed)
        raise ValueError(f"{name} must have dtype in ({names}), got {_dtype_name(value.dtype)}")
    if ndim is not None:
        ranks = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if value.dim() not in ranks:
            want = " or ".join(str(r) for r in ranks)
            raise ValueError(
                f"{name} must have {want} dimensions, got shape {tuple(value.shape)}"
            )
    return value


def check_same_shape(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    """Elementwise losses take equal shapes; broadcasting hides label/logit mix-ups."""
    if a.shape != b.shape:
        raise ValueError(
            f"{name_b} must have the same shape as {name_a}: "
            f"{name_a} has {tuple(a.shape)}, {name_b} has {tuple(b.shape)}"
        )


def check_same_dtype(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    if a.dtype != b.dtype:
        raise ValueError(
            f"{name_b} must have the same dtype as {name_a}: "
            f"{name_a} is {_dtype_name(a.dtype)}, {name_b} is {_dtype_name(b.dtype)}"
        )


def check_choice(name: str, value: Any, allowed: Sequence[Any]) -> None:
    if value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name} must be one of ({choices}), got {value!r}")


def check_real(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Check a real scalar hyper-parameter lies in the stated interval; return it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    lo_ok = low is None or (v > low if low_open else v >= low)
    hi_ok = high is None or (v < high if high_open else v <= high)
    if not (lo_ok and hi_ok) or v != v:
        lb = "-inf" if low is None else f"{low:g}"
        hb = "inf" if high is None else f"{high:g}"
        interval = f"{'(' if low_open or low is None else '['}{lb}, {hb}{')' if high_open or high is None else ']'}"
        raise ValueError(f"{name} must lie in {interval}, got {value!r}")
    return v


def check_values_in(name: str, t: torch.Tensor, low: float, high: float) -> None:
    """Check every element of ``t`` lies in [low, high] (NaN fails)."""
    if t.numel() == 0:
        return
    # One fused min/max pass (NaN propagates into both); the elementwise scan that
    # names the first bad value runs only when the check fails.
    lo, hi = torch.aminmax(t.detach())
    if lo.item() >= low and hi.item() <= high:
        return
    ok = (t >= low) & (t <= high)
    bad = t[~ok].flatten()[0].item()
    raise ValueError(f"{name} must have values in [{low:g}, {high:g}], found {bad!r}")


def check_reduction(reduction: str) -> str:
    check_choice("reduction", reduction, REDUCTIONS)
    return reduction
