"""Runnable repro snippets for failing examples.

A snippet rebuilds the shrunk example's tensors literally, shows the calls the
check made to the target, and ends with :func:`conformance.replay.replay`, which
re-runs the very same check on that example and raises the same error.
"""

from __future__ import annotations

import math
from typing import Any

import torch

__all__ = ["to_source", "snippet"]


def _float(v: float) -> str:
    if math.isnan(v):
        return "float('nan')"
    if math.isinf(v):
        return "float('inf')" if v > 0 else "float('-inf')"
    return repr(v)


def to_source(v: Any) -> str:
    """Python source that rebuilds ``v`` (tensors bit-exactly for float32/float64)."""
    if isinstance(v, torch.Tensor):
        t = v.detach().cpu()
        dtype = str(t.dtype)
        if t.numel() == 0 or t.dim() == 0:
            if t.numel() == 0:
                return f"torch.empty({tuple(t.shape)}, dtype={dtype})"
            val = t.item()
            lit = _float(val) if t.is_floating_point() else repr(val)
            return f"torch.tensor({lit}, dtype={dtype})"
        if t.is_floating_point():
            flat = ", ".join(_float(x) for x in t.to(torch.float64).flatten().tolist())
        else:
            flat = ", ".join(repr(x) for x in t.flatten().tolist())
        src = f"torch.tensor([{flat}], dtype={dtype})"
        if t.dim() != 1:
            src += f".reshape{tuple(t.shape)}"
        if v.requires_grad:
            src += ".requires_grad_()"
        return src
    if isinstance(v, float):
        return _float(v)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k!r}: {to_source(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(to_source(x) for x in v) + "]"
    if isinstance(v, tuple):
        inner = ", ".join(to_source(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    if isinstance(v, torch.dtype):
        return str(v)
    return repr(v)


def _call_source(fn_expr: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    parts = [to_source(a) for a in args] + [f"{k}={to_source(x)}" for k, x in kwargs.items()]
    return f"{fn_expr}({', '.join(parts)})"


def snippet(
    *,
    spec_id: str,
    prop: str,
    target_name: str,
    target_source: str,
    example: dict[str, Any] | None,
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]],
    repro_call: str | None = None,
    max_calls: int = 4,
) -> str:
    mod, _, attr = target_source.partition(":")
    lines = [
        f"# Repro: {spec_id}::{prop} on target {target_name}",
        "import torch",
        "from conformance.replay import replay",
    ]
    if repro_call:
        lines.append(repro_call.rstrip())
        fn_expr = "impl"
    elif attr:
        head = attr.split(".")[0]
        lines.append(f"from {mod} import {head}")
        fn_expr = attr
    else:
        lines.append(f"import {mod}")
        fn_expr = mod
    if calls:
        shown = calls[-max_calls:]
        lines.append("")
        skipped = len(calls) - len(shown)
        lines.append(
            "# The calls the check made to the target"
            + (f" (last {len(shown)} of {len(calls)})" if skipped else "")
            + ":"
        )
        for i, (args, kwargs) in enumerate(shown):
            lines.append(f"out{i} = {_call_source(fn_expr, args, kwargs)}")
            lines.append(f"print(out{i})")
    lines.append("")
    lines.append("# Re-run the property's check on the shrunk example; it raises the same error:")
    lines.append(f"example = {to_source(example) if example is not None else 'None'}")
    lines.append(f"replay({spec_id!r}, {prop!r}, target={target_name!r}, example=example)")
    return "\n".join(lines)
