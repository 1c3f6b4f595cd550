"""Mutants built from each spec's calling convention, one family of mistakes per generic claim.

For every spec with a convention, wrapped around its reference:

- ``ignores_<kw>``: the keyword is accepted and dropped (the reference's default is
  used whatever the caller passed) -- killed by ``honours_<kw>``;
- ``default_<kw>_changed``: the keyword's default differs from the canonical one --
  killed by ``defaults_honoured``;
- ``writes_into_<arg>``: the call writes into one tensor input after computing --
  killed by ``inputs_not_modified``;
- ``detached_<arg>``: one differentiable input is detached, so the values are right
  and its gradient is missing -- killed by ``gradcheck_float64``;
- ``float32_when_compiled``: under ``torch.compile`` the floating inputs are cast to float32
  and the result back to the caller's dtype (a "fast path" that only the compiled model takes)
  -- killed by ``compiled_matches_eager`` on the float64 twin of an example;
- ``assumes_contiguous_<arg>``: the first tensor input is read as if it were contiguous
  (a kernel handed its data pointer: a strided or transposed tensor gives other values, silently)
  -- killed by ``layout_independent``;
- ``views_<arg>``: ``arg.view(-1)`` on the first tensor input (raises on a permuted or strided
  tensor) -- killed by ``layout_independent``;
- ``inference_path_in_bfloat16``: under ``torch.no_grad()`` the floating inputs are rounded to
  bfloat16 first (a "fast inference path") -- killed by ``autograd_state_independent``;
- ``smooths_<arg>_when_it_requires_grad``: a non-differentiable floating input that requires grad
  takes a "soft label" path that smooths it (0.9 t + 0.05) -- killed by
  ``autograd_state_independent``.

The SSD decision specs (matching, mining) get their evaluation-mode mutants in the family module:
rounding their inputs need not change a decision.

Broadcasting, dtype and domain mistakes are specific to each contract and live in
the family modules.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

from conformance.catalogue import load_specs
from conformance.spec import Keyword, Spec
from tests.mutants import Mutant

_ALT_STR = {"mean": "sum", "sum": "mean", "none": "sum", "batchmean": "sum"}


def _alternative(k: Keyword) -> Any:
    """A valid value other than the canonical default, or None when there is no obvious one."""
    d = k.default
    if isinstance(d, bool):
        return not d
    if isinstance(d, int):
        return 0 if d != 0 else 1
    if isinstance(d, float):
        return d / 2 if d > 0 else 0.5
    if isinstance(d, str):
        return _alt_str(d)
    return None


def _alt_str(d: str) -> str | None:
    return _ALT_STR.get(d)


def _positional_index(spec: Spec, name: str) -> int:
    assert spec.convention is not None
    return [a.name for a in spec.convention.args].index(name)


def _named(fn: Callable[..., Any], name: str, spec: Spec) -> Callable[..., Any]:
    fn.__name__ = fn.__qualname__ = name
    fn.__module__ = __name__
    globals()[name] = fn  # importable as tests.mutants.generic:<name>, for repro snippets
    return fn


def _ignores(spec: Spec, k: Keyword) -> Mutant:
    ref = spec.reference

    def fn(*args: Any, **kwargs: Any) -> Any:
        kwargs.pop(k.name, None)
        return ref(*args, **kwargs)

    return Mutant(f"ignores_{k.name}", spec.id, _named(fn, f"{spec.id}__ignores_{k.name}", spec),
                  f"accepts {k.name}= and drops it: the result is always the one at the default {k.default!r}",
                  killed_by=(f"honours_{k.name}",))


def _default_changed(spec: Spec, k: Keyword, alt: Any) -> Mutant:
    ref = spec.reference

    def fn(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault(k.name, alt)
        return ref(*args, **kwargs)

    return Mutant(f"default_{k.name}_changed", spec.id, _named(fn, f"{spec.id}__default_{k.name}_changed", spec),
                  f"the default of {k.name} is {alt!r}, not the canonical {k.default!r}", killed_by=("defaults_honoured",))


def _scribble(t: torch.Tensor) -> None:
    with torch.no_grad():
        if t.dtype == torch.bool:
            t.logical_not_()
        elif t.is_floating_point():
            t.mul_(2).add_(1)
        else:
            t.add_(1)


def _writes_into(spec: Spec, name: str) -> Mutant:
    ref = spec.reference
    i = _positional_index(spec, name)

    def fn(*args: Any, **kwargs: Any) -> Any:
        out = ref(*args, **kwargs)
        arg = args[i] if i < len(args) else None
        for t in _tensors(arg):
            _scribble(t)
        return out

    return Mutant(f"writes_into_{name}", spec.id, _named(fn, f"{spec.id}__writes_into_{name}", spec),
                  f"scribbles on the caller's {name} after computing (an in-place op on an input)",
                  killed_by=("inputs_not_modified",))


def _tensors(v: Any) -> list[torch.Tensor]:
    if isinstance(v, torch.Tensor):
        return [v]
    if isinstance(v, dict):
        return [t for x in v.values() for t in _tensors(x)]
    if isinstance(v, (list, tuple)):
        return [t for x in v for t in _tensors(x)]
    return []


def _detached(spec: Spec, name: str) -> Mutant:
    ref = spec.reference
    i = _positional_index(spec, name)

    def fn(*args: Any, **kwargs: Any) -> Any:
        args = tuple(a.detach() if j == i and isinstance(a, torch.Tensor) else a for j, a in enumerate(args))
        return ref(*args, **kwargs)

    return Mutant(f"detached_{name}", spec.id, _named(fn, f"{spec.id}__detached_{name}", spec),
                  f"{name} is detached: the values are right, its gradient is missing", killed_by=("gradcheck_float64",))


def _map_floating(v: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    if isinstance(v, torch.Tensor):
        return fn(v) if v.is_floating_point() else v
    if isinstance(v, dict):
        return {k: _map_floating(x, fn) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(_map_floating(x, fn) for x in v)
    return v


def _float32_when_compiled(spec: Spec) -> Mutant:
    ref = spec.reference

    def fn(*args: Any, **kwargs: Any) -> Any:
        if not torch.compiler.is_compiling():
            return ref(*args, **kwargs)
        dtypes = [t.dtype for t in _tensors(list(args)) if t.is_floating_point()]
        if not dtypes:
            return ref(*args, **kwargs)
        out = ref(*_map_floating(args, lambda t: t.float()), **kwargs)
        return _map_floating(out, lambda t: t.to(dtypes[0]))

    return Mutant("float32_when_compiled", spec.id, _named(fn, f"{spec.id}__float32_when_compiled", spec),
                  "computes in float32 only under torch.compile: float64 callers get float32 accuracy from the "
                  "compiled model", killed_by=("compiled_matches_eager",))


def _contiguous_strides(shape: torch.Size) -> tuple[int, ...]:
    out, step = [], 1
    for n in reversed(shape):
        out.append(step)
        step *= max(n, 1)
    return tuple(reversed(out))


def _read_as_contiguous(t: torch.Tensor) -> torch.Tensor:
    if t.is_contiguous():
        return t
    return torch.as_strided(t, t.shape, _contiguous_strides(t.shape), t.storage_offset())


def _replace_arg(args: tuple[Any, ...], kwargs: dict[str, Any], i: int, name: str,
                 fn: Callable[[Any], Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if i < len(args):
        return tuple(fn(a) if j == i else a for j, a in enumerate(args)), kwargs
    if name in kwargs:
        return args, {**kwargs, name: fn(kwargs[name])}
    return args, kwargs


def _map_tensors(v: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    if isinstance(v, torch.Tensor):
        return fn(v)
    if isinstance(v, dict):
        return {k: _map_tensors(x, fn) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(_map_tensors(x, fn) for x in v)
    return v


def _assumes_contiguous(spec: Spec, name: str) -> Mutant:
    ref = spec.reference
    i = _positional_index(spec, name)

    def fn(*args: Any, **kwargs: Any) -> Any:
        args, kwargs = _replace_arg(args, kwargs, i, name, lambda v: _map_tensors(v, _read_as_contiguous))
        return ref(*args, **kwargs)

    return Mutant(f"assumes_contiguous_{name}", spec.id, _named(fn, f"{spec.id}__assumes_contiguous_{name}", spec),
                  f"reads {name}'s memory as if it were contiguous (a kernel handed its data pointer): a strided or "
                  "transposed tensor silently gives other values", killed_by=("layout_independent",))


def _views(spec: Spec, name: str) -> Mutant:
    ref = spec.reference
    i = _positional_index(spec, name)

    def flat_then_back(t: torch.Tensor) -> torch.Tensor:
        return t.view(-1).view(t.shape)

    def fn(*args: Any, **kwargs: Any) -> Any:
        args, kwargs = _replace_arg(args, kwargs, i, name, lambda v: _map_tensors(v, flat_then_back))
        return ref(*args, **kwargs)

    return Mutant(f"views_{name}", spec.id, _named(fn, f"{spec.id}__views_{name}", spec),
                  f"flattens {name} with .view(-1), which raises on a permuted or strided tensor",
                  killed_by=("layout_independent",))


def _bf16(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.bfloat16).to(t.dtype) if t.is_floating_point() else t


def _inference_path_in_bfloat16(spec: Spec) -> Mutant:
    ref = spec.reference

    def fn(*args: Any, **kwargs: Any) -> Any:
        if torch.is_grad_enabled():
            return ref(*args, **kwargs)
        return ref(*_map_tensors(args, _bf16), **{k: _map_tensors(v, _bf16) for k, v in kwargs.items()})

    return Mutant("inference_path_in_bfloat16", spec.id, _named(fn, f"{spec.id}__inference_path_in_bfloat16", spec),
                  "under torch.no_grad() the inputs are rounded to bfloat16 first (a 'fast inference path'): "
                  "evaluation losses differ from training ones", killed_by=("autograd_state_independent",))


def _smooths_when_it_requires_grad(spec: Spec, name: str) -> Mutant:
    ref = spec.reference
    i = _positional_index(spec, name)

    def maybe(t: torch.Tensor) -> torch.Tensor:
        return t.detach() * 0.9 + 0.05 if t.requires_grad and t.is_floating_point() else t

    def fn(*args: Any, **kwargs: Any) -> Any:
        args, kwargs = _replace_arg(args, kwargs, i, name, lambda v: _map_tensors(v, maybe))
        return ref(*args, **kwargs)

    return Mutant(f"smooths_{name}_when_it_requires_grad", spec.id,
                  _named(fn, f"{spec.id}__smooths_{name}_when_it_requires_grad", spec),
                  f"a {name} that requires grad (soft targets from a teacher, not detached) takes a soft-label path "
                  "that smooths it (0.9 t + 0.05): the distillation path computes another loss",
                  killed_by=("autograd_state_independent",))


# Specs whose results are discrete decisions (indices, masks) that float32 need not change:
# their families plant compile mutants of their own.
_NO_FLOAT32_COMPILE_MUTANT = frozenset({"ssd_matching", "hard_negative_mining"})


@functools.cache
def _build() -> tuple[Mutant, ...]:
    out: list[Mutant] = []
    for spec in load_specs().values():
        conv = spec.convention
        if conv is None:
            continue
        props = spec.properties
        for k in conv.keywords:
            if f"honours_{k.name}" in props and props[f"honours_{k.name}"].generic:
                out.append(_ignores(spec, k))
            alt = _alternative(k)
            if not k.required and alt is not None and "defaults_honoured" in props and props["defaults_honoured"].generic:
                out.append(_default_changed(spec, k, alt))
        if "inputs_not_modified" in props and props["inputs_not_modified"].generic:
            out.extend(_writes_into(spec, a.name) for a in conv.args)
        if "gradcheck_float64" in props and props["gradcheck_float64"].generic:
            out.extend(_detached(spec, n) for n in conv.differentiable)
        if "layout_independent" in props and props["layout_independent"].generic and conv.args:
            first = conv.args[0].name
            out.append(_assumes_contiguous(spec, first))
            out.append(_views(spec, first))
        if ("autograd_state_independent" in props and props["autograd_state_independent"].generic
                and spec.id not in _NO_FLOAT32_COMPILE_MUTANT):
            out.append(_inference_path_in_bfloat16(spec))
            plain = [a.name for a in conv.args if a.floating and not a.differentiable]
            if plain:
                out.append(_smooths_when_it_requires_grad(spec, plain[-1]))
        if ("compiled_matches_eager" in props and props["compiled_matches_eager"].generic
                and spec.id not in _NO_FLOAT32_COMPILE_MUTANT):
            out.append(_float32_when_compiled(spec))
    return tuple(out)


MUTANTS = list(_build())
