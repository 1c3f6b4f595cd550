"""Property bodies shared by several specs (robustness, determinism, gradients).

Each factory returns a check function; the spec module registers it with its
own docstring-bearing wrapper so that every property states its maths where it
is declared.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from conformance import checks as ck
from conformance.targets import Target

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
