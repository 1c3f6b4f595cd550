"""Hypothesis strategies shared by the specs (imported as ``hh``).

Strategies are keyword-only, validate their arguments early, and build valid
values by construction rather than filtering. Every float strategy states
``allow_nan`` and ``allow_subnormal``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

__all__ = [
    "region",
    "FLOAT_DTYPES",
    "float_dtypes",
    "shapes",
    "logit_values",
    "logits",
    "probabilities",
    "unit_values",
    "dyadic_unit",
    "tensors",
    "NP_DTYPE",
]

_F = TypeVar("_F", bound=Callable[..., Any])


def _memoised(fn: _F) -> _F:
    """``fn`` with its strategies built once per argument set (strategies are immutable values).

    A composite strategy builds its inner strategies per draw; without this, Hypothesis would
    validate and analyse a fresh strategy tree for every array of every example. Unhashable
    arguments (a list of dtypes) build afresh.
    """
    cached = functools.lru_cache(maxsize=4096)(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return cached(*args, **kwargs)
        except TypeError:  # an unhashable argument
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def region(name: str) -> None:
    """Label the example being drawn as lying in the declared region ``name``.

    Call it inside a composite strategy. The label goes to Hypothesis's statistics
    (``event``) and to the run's recorder, which counts per property how many
    examples each region received; the report sums them per spec, and a test fails
    when a region a spec declares is never drawn in the ``ci`` profile.
    """
    import hypothesis

    from conformance import recorder

    rec = recorder.current()
    if rec is not None:
        rec.mark_region(name)
    try:
        hypothesis.event(f"region: {name}")
    except Exception:  # noqa: BLE001 - outside a Hypothesis test (a plain .example() call)
        pass


FLOAT_DTYPES: tuple[torch.dtype, ...] = (torch.float32, torch.float64)
NP_DTYPE = {torch.float32: np.float32, torch.float64: np.float64, torch.float16: np.float16}
F32_MAX = float(np.finfo(np.float32).max)


@_memoised
def float_dtypes(*, dtypes: Sequence[torch.dtype] = FLOAT_DTYPES) -> st.SearchStrategy[torch.dtype]:
    if not dtypes:
        raise ValueError("float_dtypes(dtypes=...) needs at least one dtype, e.g. (torch.float32,)")
    return st.sampled_from(tuple(dtypes))


@_memoised
def shapes(
    *, min_dims: int = 0, max_dims: int = 3, min_side: int = 0, max_side: int = 5
) -> st.SearchStrategy[tuple[int, ...]]:
    if min_dims > max_dims:
        raise ValueError(f"shapes(min_dims={min_dims}) is larger than max_dims={max_dims}")
    if min_side > max_side:
        raise ValueError(f"shapes(min_side={min_side}) is larger than max_side={max_side}")
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


@_memoised
def logit_values(*, max_abs: float = F32_MAX) -> st.SearchStrategy[float]:
    """Logits over the whole finite float32 range, weighted towards where losses bend.

    Every value is exactly representable in float32, so a float32 and a float64
    run see the same numbers.
    """
    if not 0 < max_abs <= F32_MAX:
        raise ValueError(f"logit_values(max_abs={max_abs}) must lie in (0, {F32_MAX}]")
    small = min(max_abs, 30.0)
    mid = min(max_abs, 1e4)
    return st.one_of(
        st.floats(-small, small, allow_nan=False, allow_subnormal=True, width=32),
        st.floats(-mid, mid, allow_nan=False, allow_subnormal=False, width=32),
        st.floats(-max_abs, max_abs, allow_nan=False, allow_infinity=False, allow_subnormal=True, width=32),
        st.sampled_from([0.0, -0.0, 1e-30, -1e-30, 15.0, -15.0, 17.0, 20.0, -20.0, 88.0, -88.0, 100.0, -100.0, 1e4, -1e4]),
    ).filter(lambda v: abs(v) <= max_abs)


@_memoised
def unit_values(*, hard: bool | None = None) -> st.SearchStrategy[float]:
    """Targets in [0, 1]: hard (0/1), soft (any float in [0, 1]), or either (``None``)."""
    hard_s = st.sampled_from([0.0, 1.0])
    soft_s = st.one_of(
        st.floats(0.0, 1.0, allow_nan=False, allow_subnormal=True, width=32),
        st.sampled_from([0.5, 0.25, 0.75, 1e-6, 1.0 - 2.0**-20]),
    )
    if hard is True:
        return hard_s
    if hard is False:
        return soft_s
    return st.one_of(hard_s, soft_s)


@_memoised
def dyadic_unit(*, bits: int = 16) -> st.SearchStrategy[float]:
    """Values k / 2**bits in [0, 1]: 1 - v is exact, so label-flip identities are exact."""
    if not 1 <= bits <= 23:
        raise ValueError(f"dyadic_unit(bits={bits}) must lie in [1, 23] to stay exact in float32")
    return st.integers(0, 2**bits).map(lambda k: k / 2**bits)


@_memoised
def tensors(
    *, shape: tuple[int, ...], dtype: torch.dtype, elements: st.SearchStrategy[float]
) -> st.SearchStrategy[torch.Tensor]:
    """A tensor of ``shape`` and ``dtype`` whose elements come from ``elements``."""
    if dtype not in NP_DTYPE:
        raise ValueError(f"tensors(dtype={dtype}) must be one of {tuple(NP_DTYPE)}")
    return hnp.arrays(NP_DTYPE[dtype], shape, elements=elements).map(lambda a: torch.from_numpy(np.array(a)))


@_memoised
def logits(*, shape: tuple[int, ...], dtype: torch.dtype, max_abs: float = F32_MAX) -> st.SearchStrategy[torch.Tensor]:
    return tensors(shape=shape, dtype=dtype, elements=logit_values(max_abs=max_abs))


@_memoised
def probabilities(*, shape: tuple[int, ...], dtype: torch.dtype, hard: bool | None = None) -> st.SearchStrategy[torch.Tensor]:
    return tensors(shape=shape, dtype=dtype, elements=unit_values(hard=hard))
