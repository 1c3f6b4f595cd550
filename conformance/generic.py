"""The generic properties, declared as data (OpInfo's ``op_db`` idea, turned around).

Each :class:`Generic` record names a claim that holds for every loss, what a spec
must supply for it (``needs``), and how to build the property from the spec's
calling convention, strategies and oracles. :func:`apply` gives a spec every
generic property whose needs it supplies; a property it cannot have is listed in
``Spec.opt_out`` with its reason (shown by ``conformance list`` and the report),
and one it neither has nor opts out of is recorded in :data:`MISSING`, which a
test requires to be empty.

A family may define its own property under a generic name (a claim it states
more precisely); the family's definition is then kept and the generic one is not
added.

Names are one per claim across families: ``output_dtype_and_shape``,
``deterministic``, ``inputs_not_modified``, ``layout_independent``,
``autograd_state_independent``, ``rejects_shape_mismatch``,
``rejects_invalid_inputs``, ``defaults_honoured``, ``honours_<keyword>``,
``gradcheck_float64``, ``finite_gradients``, ``cuda_matches_cpu``,
``mps_matches_cpu``, ``low_precision_matches_float32``,
``compiled_matches_eager`` and ``agrees_with_<oracle>``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from hypothesis import assume
from hypothesis import strategies as st

from conformance import checks as ck
from conformance import recorder
from conformance.spec import Category, ErrorInput, Example, Keyword, Oracle, Property, SkipProperty, Spec
from conformance.targets import Target, TargetError

__all__ = ["Generic", "GENERIC", "MISSING", "apply", "generic_names", "call", "map_tensors", "walk_tensors"]


@dataclass(frozen=True)
class Generic:
    """One generic claim.

    ``names(spec)`` lists the property names it gives the spec (one, or one per
    keyword / oracle); ``lacks(spec, name)`` says what the spec does not supply for
    that name (None when it supplies everything); ``build(spec, name)`` makes the
    property."""

    claim: str
    names: Callable[[Spec], list[str]]
    lacks: Callable[[Spec, str], str | None]
    build: Callable[[Spec, str], Property]


# Filled by apply(): spec id -> {property name: what the spec lacks}, for specs that
# neither supply a generic property's needs nor opt out of it.
MISSING: dict[str, dict[str, str]] = {}


# ---------------------------------------------------------------------------
# Shared helpers: calling, walking example structures
# ---------------------------------------------------------------------------


def call(spec: Spec, target: Target, ex: Example) -> torch.Tensor:
    """Call ``target`` on ``ex`` through the spec's convention; the judged tensor."""
    conv = spec.convention
    assert conv is not None
    out = conv.output(conv.invoke(target, ex))
    if not isinstance(out, torch.Tensor):
        raise AssertionError(
            f"{target.name} returned {type(out).__name__}, but the canonical signature of {spec.id} returns a torch.Tensor"
        )
    return out


def walk_tensors(value: Any, path: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor inside ``value`` (dicts, lists, tuples), with a readable path."""
    if isinstance(value, torch.Tensor):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from walk_tensors(v, f"{path}[{k!r}]" if path else str(k))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from walk_tensors(v, f"{path}[{i}]")


def map_tensors(value: Any, fn: Callable[[torch.Tensor], torch.Tensor], *, floating_only: bool = False) -> Any:
    """``value`` with ``fn`` applied to every (floating) tensor inside it."""
    if isinstance(value, torch.Tensor):
        return fn(value) if (value.is_floating_point() or not floating_only) else value
    if isinstance(value, dict):
        return {k: map_tensors(v, fn, floating_only=floating_only) for k, v in value.items()}
    if isinstance(value, list):
        return [map_tensors(v, fn, floating_only=floating_only) for v in value]
    if isinstance(value, tuple):
        return tuple(map_tensors(v, fn, floating_only=floating_only) for v in value)
    return value


def _call_keys(spec: Spec) -> list[str]:
    conv = spec.convention
    assert conv is not None
    return [a.name for a in conv.args] + [k.name for k in conv.keywords]


def _scale(spec: Spec, ex: Example) -> Any:
    return None if spec.scale is None else spec.scale(ex)


def _prop(spec: Spec, name: str, category: Category, check: Callable[[Target, Example], None], doc: str, *,
          strategy: Any, **kw: Any) -> Property:
    needs = frozenset(kw.pop("needs", ())) | (frozenset({"autograd"}) if category is Category.GRADIENT else frozenset())
    return Property(spec_id=spec.id, name=name, category=category, check=check, strategy=strategy, doc=doc,
                    examples=tuple(spec_examples(spec, name)) + tuple(kw.pop("examples", ())), needs=needs,
                    generic=True, **kw)


def spec_examples(spec: Spec, name: str) -> tuple[Example, ...]:
    return tuple(getattr(spec, "examples", {}).get(name, ()))


def _no_convention(spec: Spec, name: str) -> str | None:
    return None if spec.convention is not None else "a calling convention (Spec.convention)"


def _needs_default(spec: Spec, name: str) -> str | None:
    if spec.convention is None:
        return "a calling convention (Spec.convention)"
    if spec.strategy("default") is None:
        return "a default strategy (Spec.strategies['default'])"
    return None


# ---------------------------------------------------------------------------
# Robustness: dtype and shape, determinism, inputs untouched, errors
# ---------------------------------------------------------------------------


def _output_dtype_and_shape(spec: Spec, name: str) -> Property:
    conv = spec.convention
    assert conv is not None and conv.output_shape is not None

    def check(target: Target, ex: Example) -> None:
        out = conv.output(conv.invoke(target, ex))
        ck.assert_shape_dtype(out, shape=conv.output_shape(ex), dtype=conv.dtype_of(ex))  # type: ignore[misc]

    return _prop(spec, name, Category.ROBUSTNESS, check,
                 "The output has the shape the contract gives for the example and the dtype of the floating inputs "
                 "(0-d, empty and N-d inputs, every dtype drawn).", strategy=spec.strategy())


def _deterministic(spec: Spec, name: str) -> Property:
    def check(target: Target, ex: Example) -> None:
        a = call(spec, target, ex)
        b = call(spec, target, ex)
        ck.assert_identical(a.detach(), b.detach(), what="second call's output versus the first's")

    return _prop(spec, name, Category.ROBUSTNESS, check, "Two calls on the same inputs give bitwise-identical outputs.",
                 strategy=spec.strategy())


def _inputs_not_modified(spec: Spec, name: str) -> Property:
    keys = _call_keys(spec)

    def check(target: Target, ex: Example) -> None:
        watched = {k: ex[k] for k in keys if k in ex}
        before = [(p, t, t.detach().clone(), t._version) for p, t in walk_tensors(watched)]
        spec.convention.invoke(target, ex)  # type: ignore[union-attr]
        after = dict(walk_tensors(watched))
        for p, t, copy, version in before:
            now = after.get(p)
            if now is not t:
                raise AssertionError(
                    f"{p} was replaced in the caller's container by the call (a new object where the caller's tensor "
                    "was): the target writes its intermediate results into its inputs"
                )
            ck.assert_identical(copy, t.detach(), what=f"{p} after the call (it was modified in place)")
            if t._version != version:
                raise AssertionError(
                    f"{p}._version went from {version} to {t._version}: the target wrote into its input in place "
                    "(values may be unchanged, but autograd and callers sharing the tensor see the write)"
                )

    return _prop(spec, name, Category.ROBUSTNESS, check,
                 "The call leaves every tensor input unchanged: values, version counters, and the tensors held in "
                 "input containers.", strategy=spec.strategy())


# The layouts ``layout_independent`` draws. Each holds the same values as the contiguous
# tensor in another arrangement of memory, as real callers hand them over: a slice of a
# larger buffer (every stride doubled, at a storage offset: a crop, ``x[..., ::2]``, a
# head's channels split off a shared output), a transposed buffer (``x.mT.contiguous().mT``:
# boxes gathered column-wise, a permuted ``(B, C, N)`` head) and channels-last (a conv
# output under ``torch.channels_last`` / AMP training).
LAYOUTS = ("strided", "transposed", "channels_last")


def relayout(t: torch.Tensor, layout: str) -> torch.Tensor:
    """``t``'s values in the non-contiguous ``layout`` (differentiable; ``t`` unchanged).

    A tensor with fewer than two elements has no other layout and is returned as is; a
    layout that does not apply to ``t``'s rank (``transposed`` below 2-d, ``channels_last``
    other than 4-d with a channel and a spatial axis above 1) falls back to ``strided``."""
    if t.dim() == 0 or t.numel() < 2:
        return t
    if layout == "channels_last" and t.dim() == 4 and t.shape[1] > 1 and t.shape[2] * t.shape[3] > 1:
        return t.contiguous(memory_format=torch.channels_last)
    if layout == "transposed" and t.dim() >= 2 and t.shape[-1] > 1 and t.shape[-2] > 1:
        return t.transpose(-1, -2).contiguous().transpose(-1, -2)
    strides, step = [], 2
    for n in reversed(t.shape):
        strides.append(step)
        step *= max(n, 1)
    strides.reverse()
    base = t.detach().new_zeros(step + 1)  # every stride doubled, the view starts at offset 1
    view = base.as_strided(tuple(t.shape), tuple(strides), 1)
    return view.copy_(t)


def _map_call_tensors(spec: Spec, ex: Example, fn: Callable[[str, torch.Tensor], torch.Tensor]) -> Example:
    """``ex`` with ``fn(path, t)`` applied to every tensor of the call's arguments (inside containers too);
    ``path`` reads as in :func:`walk_tensors` (``batch['hm']``, ``outputs[0]['wh']``)."""
    keys = set(_call_keys(spec))

    def walk(path: str, v: Any) -> Any:
        if isinstance(v, torch.Tensor):
            return fn(path, v)
        if isinstance(v, dict):
            return {k: walk(f"{path}[{k!r}]", x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return type(v)(walk(f"{path}[{i}]", x) for i, x in enumerate(v))
        return v

    return {k: (walk(k, v) if k in keys else v) for k, v in ex.items()}


def _relayout_inputs(spec: Spec, ex: Example, layout: str) -> tuple[Example, list[str]]:
    moved: list[str] = []

    def one(path: str, t: torch.Tensor) -> torch.Tensor:
        out = relayout(t, layout)
        if out is not t:
            moved.append(path)
        return out

    return _map_call_tensors(spec, ex, one), moved


def _fresh(spec: Spec, ex: Example, flag: tuple[str, ...] = ()) -> tuple[Example, dict[str, torch.Tensor]]:
    """A private copy of every tensor the call sees (a target that writes into its inputs must not
    change what the next call gets), with the floating tensors of the arguments in ``flag`` made
    to require grad the way a network's activations do: non-leaf tensors with a ``grad_fn``.
    Returns the example and the leaves behind the flagged tensors (for gradients)."""
    leaves: dict[str, torch.Tensor] = {}

    def one(path: str, t: torch.Tensor) -> torch.Tensor:
        c = t.detach().clone()
        if path.split("[", 1)[0] in flag and c.is_floating_point():
            leaves[path] = c.requires_grad_(True)
            return c.clone()
        return c

    return _map_call_tensors(spec, ex, one), leaves


def _layout_independent(spec: Spec, name: str) -> Property:
    def one_layout(target: Target, ex: Example, layout: str, names: tuple[str, ...]) -> None:
        plain, plain_leaves = _fresh(spec, ex, names)
        want = call(spec, target, plain)
        moved_ex, moved_leaves = _fresh(spec, ex, names)
        moved_ex, moved = _relayout_inputs(spec, moved_ex, layout)
        if not moved:
            return
        what = f"out with {', '.join(moved)} non-contiguous ({layout})"
        try:
            got = call(spec, target, moved_ex)
        except TargetError as exc:
            raise AssertionError(f"{what}: the call raised {type(exc.original).__name__}: {str(exc.original)[:300]} "
                                 "(the same values, contiguous, are accepted)") from None
        dtype = spec.convention.dtype_of(ex)  # type: ignore[union-attr]
        ck.assert_close(got, ck.f64(want), spec=spec.id, key="layout", dtype=dtype, scale=_scale(spec, ex),
                        inputs=_scalars(ex), what=what)
        if not plain_leaves or not want.requires_grad or not got.requires_grad or want.numel() == 0:
            return
        ones = torch.ones_like(want)
        paths = list(plain_leaves)
        gw = torch.autograd.grad(want, [plain_leaves[p] for p in paths], grad_outputs=ones, allow_unused=True)
        gg = torch.autograd.grad(got, [moved_leaves[p] for p in paths], grad_outputs=ones, allow_unused=True)
        for p, a, b in zip(paths, gw, gg):
            if a is None or b is None:
                if (a is None) != (b is None):
                    raise AssertionError(f"d out / d {p} is {'None' if b is None else 'defined'} with the inputs "
                                         f"non-contiguous ({layout}) and {'None' if a is None else 'defined'} "
                                         "with them contiguous")
                continue
            ck.assert_grad_close(b, ck.f64(a), spec=spec.id, key="layout", dtype=dtype,
                                 what=f"d out / d {p} with the inputs non-contiguous ({layout})")

    keys = _call_keys(spec)

    def flattening_fails(ex: Example) -> bool:
        # some input has two axes above 1: no strided or transposed copy of it can be flattened by a view
        return any(sum(n > 1 for n in t.shape) >= 2 for _, t in walk_tensors({k: ex[k] for k in keys if k in ex}))

    # Half the examples have an input that only a layout-proof implementation can take
    # non-contiguous (the spec's strategy draws many 0-d and 1-d ones, whose strided copy
    # a ``.view`` still accepts); the other half are the spec's examples as drawn.
    base = spec.strategy()
    strategy = st.one_of(base.filter(flattening_fails), base)

    def check(target: Target, ex: Example) -> None:
        names = tuple(_leaves(spec, ex)) if target.capabilities.autograd == "torch" else ()
        shapes = [t.shape for _, t in walk_tensors({k: ex[k] for k in _call_keys(spec) if k in ex})]
        for layout in LAYOUTS:
            # transposed and channels-last only where some input has that rank (else it is strided again)
            if layout == "transposed" and not any(len(s) >= 2 and s[-1] > 1 and s[-2] > 1 for s in shapes):
                continue
            if layout == "channels_last" and not any(len(s) == 4 and s[1] > 1 and s[2] * s[3] > 1 for s in shapes):
                continue
            one_layout(target, ex, layout, names)

    return _prop(spec, name, Category.ROBUSTNESS, check,
                 "Non-contiguous inputs holding the same values (a strided slice at a storage offset, a transposed "
                 "buffer, channels-last; each that applies to the example) give the contiguous call's output, and the "
                 "same gradients: nothing assumes a layout (`.view` on a permuted tensor, raw strides, data pointers).",
                 strategy=strategy, examples_factor=0.3)


def _floating_keys(spec: Spec, ex: Example) -> list[str]:
    return [k for k in _call_keys(spec) if any(t.is_floating_point() for _, t in walk_tensors(ex.get(k)))]


def _autograd_state_independent(spec: Spec, name: str) -> Property:
    conv = spec.convention
    assert conv is not None

    def check(target: Target, ex: Example) -> None:
        dtype = conv.dtype_of(ex)
        want = call(spec, target, _fresh(spec, ex)[0]).detach()

        def same(flag: tuple[str, ...], what: str) -> None:
            got = call(spec, target, _fresh(spec, ex, flag)[0])
            ck.assert_close(got.detach(), ck.f64(want), spec=spec.id, key="self", dtype=dtype, scale=_scale(spec, ex),
                            inputs=_scalars(ex), what=what)

        diff = tuple(n for n in conv.differentiable if n in _floating_keys(spec, ex))
        if diff:
            same(diff, f"out with requires_grad=True on {', '.join(diff)}")
        for k in _floating_keys(spec, ex):
            if k in diff:
                continue
            try:
                same((*diff, k), f"out with requires_grad=True on {', '.join((*diff, k))}")
            except TargetError as exc:
                # A loud refusal (torch's own losses: "not differentiable with respect to argument
                # 'weight'") is a documented limit, not a wrong value.
                rec = recorder.current()
                if rec is not None:
                    rec.note(f"refuses requires_grad=True on {k} ({type(exc.original).__name__}: "
                             f"{str(exc.original)[:120]}); a loud refusal is not judged")
        with torch.no_grad():
            got = call(spec, target, _fresh(spec, ex)[0])
        ck.assert_close(got, ck.f64(want), spec=spec.id, key="self", dtype=dtype, scale=_scale(spec, ex),
                        inputs=_scalars(ex), what="out under torch.no_grad()")

    return _prop(spec, name, Category.ROBUSTNESS, check,
                 "The value does not depend on autograd's state: with requires_grad=True on the differentiable inputs "
                 "(as a network's activations), then also on each other floating input (soft targets from a teacher "
                 "that were not detached, learned weights), and under torch.no_grad() (an inference path), the output "
                 "equals the plain call's; a loud refusal of requires_grad on a non-differentiable input is noted, "
                 "not judged.", strategy=spec.strategy(), examples_factor=0.3)


def _errors(spec: Spec, kinds: tuple[str, ...]) -> list[ErrorInput]:
    return [e for e in (spec.convention.errors if spec.convention else ()) if e.kind in kinds]


def _labelled(e: ErrorInput) -> Any:
    return e.strategy.map(lambda ex, n=e.name, a=e.argument: {**ex, "error_input": n, "error_argument": a})


def _describe(spec: Spec, ex: Example) -> str:
    parts = []
    for k in _call_keys(spec):
        v = ex.get(k)
        if isinstance(v, torch.Tensor):
            parts.append(f"{k}: {tuple(v.shape)} {str(v.dtype).removeprefix('torch.')}")
        elif k in ex and not isinstance(v, (list, dict)):
            parts.append(f"{k}={v!r}")
    return ", ".join(parts)


def _rejects(spec: Spec, name: str, kinds: tuple[str, ...], doc: str) -> Property:
    errors = _errors(spec, kinds)
    strategy = st.one_of(*[_labelled(e) for e in errors])

    def check(target: Target, ex: Example) -> None:
        exc = ck.assert_raises(lambda: spec.convention.invoke(target, ex),  # type: ignore[union-attr]
                               what=f"{ex['error_input']} ({_describe(spec, ex)})")
        rec = recorder.current()
        if rec is not None and ex["error_argument"] not in str(exc):
            rec.note(f"{ex['error_input']}: the error does not name the argument {ex['error_argument']!r} "
                     f"({type(exc).__name__}: {str(exc)[:160]})")

    return _prop(spec, name, Category.ROBUSTNESS, check, doc, strategy=strategy)


def _rejects_shape_mismatch(spec: Spec, name: str) -> Property:
    return _rejects(spec, name, ("shape",),
                    "Inputs whose shapes disagree (each declared mismatch) raise an error: nothing is silently broadcast.")


def _rejects_invalid_inputs(spec: Spec, name: str) -> Property:
    return _rejects(spec, name, ("dtype", "domain"),
                    "Inputs of a wrong dtype or outside the documented domain (each declared case) raise an error "
                    "(the report notes where the message does not name the argument).")


# ---------------------------------------------------------------------------
# Keywords: defaults and every non-default value honoured
# ---------------------------------------------------------------------------


def _defaulted(spec: Spec) -> list[Keyword]:
    return [k for k in (spec.convention.keywords if spec.convention else ()) if not k.required]


def _defaults_honoured(spec: Spec, name: str) -> Property:
    kws = _defaulted(spec)

    def check(target: Target, ex: Example) -> None:
        for k in kws:
            explicit = {**ex, k.name: k.default}
            omitted = {key: v for key, v in ex.items() if key != k.name}
            want = call(spec, target, explicit)
            got = call(spec, target, omitted)
            ck.assert_close(got, ck.f64(want), spec=spec.id, key="self", dtype=spec.convention.dtype_of(ex),  # type: ignore[union-attr]
                            scale=_scale(spec, explicit), what=f"out with {k.name} omitted",
                            inputs={k.name: f"omitted; canonical default {k.default!r}"})

    return _prop(spec, name, Category.ROBUSTNESS, check,
                 "Omitting a keyword equals passing its canonical default, for every keyword ("
                 + ", ".join(f"{k.name}={k.default!r}" for k in kws) + ").", strategy=spec.strategy())


def _honours_names(spec: Spec) -> list[str]:
    return [f"honours_{k.name}" for k in (spec.convention.keywords if spec.convention else ())]


def _honours_lacks(spec: Spec, name: str) -> str | None:
    if (miss := _needs_default(spec, name)) is not None:
        return miss
    k = spec.convention.keyword(name.removeprefix("honours_"))  # type: ignore[union-attr]
    if k.values is None:
        return f"non-default values to draw for {k.name!r} (Keyword.values)"
    if spec.primary_oracle is None:
        return "an oracle that covers every keyword (Oracle(primary=True))"
    return None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape and bool(torch.equal(a, b))
    return bool(a == b) if not (isinstance(a, float) and isinstance(b, float) and a != a and b != b) else True


def _honours(spec: Spec, name: str) -> Property:
    k = spec.convention.keyword(name.removeprefix("honours_"))  # type: ignore[union-attr]
    oracle = spec.primary_oracle
    assert oracle is not None
    base = spec.strategy()

    @st.composite
    def drawn(draw: st.DrawFn) -> Example:
        ex = draw(base)
        values = k.values_for(ex)
        assert values is not None
        v = draw(values)
        assume(not _same(v, k.default))
        return {**ex, k.name: v}

    def check(target: Target, ex: Example) -> None:
        out = call(spec, target, ex)
        want = oracle.evaluate(ex)
        scale = want.scale if want.scale is not None else _scale(spec, ex)
        ck.assert_close(out, want.value, spec=spec.id, key=oracle.key_for(ex), dtype=spec.convention.dtype_of(ex),  # type: ignore[union-attr]
                        scale=scale, mask=want.mask, inputs=_scalars(ex),
                        what=f"out with {k.name}={_short(ex[k.name])}")

    return _prop(spec, name, Category.EQUIVALENCE, check,
                 f"A non-default {k.name} changes the result exactly as the spec says: f(..., {k.name}=v) equals the "
                 f"{oracle.name} oracle at v (default {k.default!r}).", strategy=drawn(), requires=oracle.requires)


def _short(v: Any) -> str:
    if isinstance(v, torch.Tensor):
        return f"tensor{tuple(v.shape)}" if v.numel() > 4 else repr(ck.f64(v).tolist())
    return repr(v)


def _scalars(ex: Example) -> dict[str, Any]:
    """The example's tensors of the output's shape and its scalars, for failure messages."""
    return {k: v for k, v in ex.items() if not isinstance(v, (list, dict))}


# ---------------------------------------------------------------------------
# Gradients
# ---------------------------------------------------------------------------


def _has_grad_args(spec: Spec, name: str) -> str | None:
    if (miss := _needs_default(spec, name)) is not None:
        return miss
    return None if spec.convention.differentiable else "a differentiable argument (Arg(differentiable=True))"  # type: ignore[union-attr]


def _gradcheck_lacks(spec: Spec, name: str) -> str | None:
    if (miss := _has_grad_args(spec, name)) is not None:
        return miss
    return None if "gradcheck" in spec.strategies else "float64 examples away from kinks (Spec.strategies['gradcheck'])"


def _leaves(spec: Spec, ex: Example) -> list[str]:
    return [n for n in spec.convention.differentiable  # type: ignore[union-attr]
            if isinstance(ex.get(n), torch.Tensor) and ex[n].is_floating_point()]


def _gradcheck(spec: Spec, name: str) -> Property:
    def check(target: Target, ex: Example) -> None:
        names = _leaves(spec, ex)
        leaves = tuple(ex[n].detach().to(torch.float64).clone().requires_grad_(True) for n in names)
        if not any(t.numel() for t in leaves):
            return

        def fn(*xs: torch.Tensor) -> torch.Tensor:
            return call(spec, target, {**ex, **dict(zip(names, xs))})

        ck.assert_gradcheck(fn, leaves, spec=spec.id, names=names)

    return _prop(spec, name, Category.GRADIENT, check,
                 "Autograd's gradient with respect to every differentiable input matches central finite differences "
                 "in float64 (torch.autograd.gradcheck), so a detached factor or a missing term shows.",
                 strategy=spec.strategies["gradcheck"], examples_factor=0.3)


def _finite_gradients(spec: Spec, name: str) -> Property:
    def check(target: Target, ex: Example) -> None:
        names = _leaves(spec, ex)
        leaves = [ex[n].detach().clone().requires_grad_(True) for n in names]
        out = call(spec, target, {**ex, **dict(zip(names, leaves))})
        if not out.requires_grad:
            if all(t.numel() == 0 for t in leaves) or out.numel() == 0:
                return
            raise AssertionError(f"out does not require grad: the output is detached from {', '.join(names)}")
        grads = torch.autograd.grad(out, leaves, grad_outputs=torch.ones_like(out), allow_unused=True)
        for n, g in zip(names, grads):
            if g is not None:
                ck.assert_finite(g, what=f"d out / d {n}", inputs=_scalars(ex))

    return _prop(spec, name, Category.GRADIENT, check,
                 "The gradient with respect to every differentiable input is finite over the spec's whole domain, "
                 "extreme values included.", strategy=spec.strategy("extreme"))


# ---------------------------------------------------------------------------
# Device, dtype and compile agreement
# ---------------------------------------------------------------------------


def _device_check(spec: Spec, target: Target, ex: Example, device: str) -> None:
    cpu = call(spec, target, ex)
    dev_ex = {k: map_tensors(v, lambda t: t.to(device)) for k, v in ex.items()}
    out = call(spec, target, dev_ex)
    if out.device.type != device:
        raise AssertionError(f"out.device={out.device}, but should be {device} (the inputs' device)")
    ck.assert_close(out.cpu(), ck.f64(cpu), spec=spec.id, key="device", dtype=cpu.dtype, scale=_scale(spec, ex),
                    inputs=_scalars(ex))


def _cuda(spec: Spec, name: str) -> Property:
    return _prop(spec, name, Category.DEVICE, lambda t, ex: _device_check(spec, t, ex, "cuda"),
                 "On CUDA the output stays on the device and equals the CPU output within the dtype's tolerance.",
                 strategy=spec.strategy("device"), requires=("cuda",), needs=("torch_devices",))


def _mps(spec: Spec, name: str) -> Property:
    def check(target: Target, ex: Example) -> None:
        f32 = {k: map_tensors(v, lambda t: t.float(), floating_only=True) for k, v in ex.items()}
        _device_check(spec, target, f32, "mps")

    return _prop(spec, name, Category.DEVICE, check,
                 "On Apple MPS (float32) the output stays on the device and equals the CPU output.",
                 strategy=spec.strategy("device"), requires=("mps",), needs=("torch_devices",))


def _cast_floating_args(spec: Spec, ex: Example, dtype: torch.dtype) -> Example:
    floating = set(spec.convention.floating) | {k.name for k in spec.convention.keywords}  # type: ignore[union-attr]
    return {k: (map_tensors(v, lambda t: t.to(dtype), floating_only=True) if k in floating else v) for k, v in ex.items()}


def _low_precision(spec: Spec, name: str) -> Property:
    def check(target: Target, ex: Example) -> None:
        for dt in (torch.float16, torch.bfloat16):
            low = _cast_floating_args(spec, ex, dt)
            # The float32 reference sees the same (rounded) inputs as the low-precision call.
            up = _cast_floating_args(spec, low, torch.float32)
            want = call(spec, target, up)
            got = call(spec, target, low)
            if got.dtype != dt:
                raise AssertionError(f"out.dtype={got.dtype}, but should be {dt} (the input's dtype)")
            ck.assert_close(got, ck.f64(want.to(dt)), spec=spec.id, key="low_precision", dtype=dt,
                            scale=_scale(spec, up), inputs=_scalars(low), what=f"out ({dt})")

    return _prop(spec, name, Category.DEVICE, check,
                 "float16 and bfloat16 inputs give outputs of that dtype equal to the float32 result on the same "
                 "rounded inputs, within the dtype's tolerance.", strategy=spec.strategy("device"))


@contextlib.contextmanager
def _no_silent_eager_fallback() -> Iterator[None]:
    """Raise dynamo's recompile limits while a compiled target runs.

    Examples vary dtype, shapes and Python scalars, and each variation recompiles. At the
    default limit (8 per code object) dynamo silently falls back to eager, and the property
    would go on comparing eager with eager; a thorough run draws tens of examples, so the
    limits go up for the duration of the call (the names differ across torch versions)."""
    import torch._dynamo.config as dcfg

    limits = {n: 4096 for n in ("recompile_limit", "cache_size_limit", "accumulated_recompile_limit",
                                "accumulated_cache_size_limit") if hasattr(dcfg, n)}
    with dcfg.patch(**limits):
        yield


def compile_backend() -> str:
    """The torch.compile backend of ``compiled_matches_eager``: inductor (what users deploy),
    unless ``CONFORMANCE_COMPILE_BACKEND`` names another. The project's mutant tests set
    ``aot_eager``: dynamo traces the same graph (so a path that branches on
    ``torch.compiler.is_compiling()`` or breaks under tracing still shows) without inductor's
    code generation, which costs seconds per recompile and decides nothing there."""
    return os.environ.get("CONFORMANCE_COMPILE_BACKEND", "inductor")


def _compiled(spec: Spec, name: str) -> Property:
    def check(target: Target, ex: Example) -> None:
        fn = target.fn
        if fn is None:
            raise SkipProperty("target is not loaded")
        try:
            compiled = torch.compile(fn, dynamic=True, backend=compile_backend())
        except Exception as exc:  # noqa: BLE001 - an uncompilable target is an outcome
            raise AssertionError(f"torch.compile({target.name}) raised {type(exc).__name__}: {exc}") from None
        ctarget = Target(name=f"compiled:{target.name}", spec_id=target.spec_id, fn=compiled, source=target.source)
        # The example as drawn, then its float64 twin (every floating tensor): a compiled
        # path that drops to float32 shows only there.
        twin = {k: map_tensors(v, lambda t: t.double(), floating_only=True) for k, v in ex.items()}
        has_twin = any(t.is_floating_point() and t.dtype != torch.float64 for _, t in walk_tensors(ex))
        for e in (ex, twin) if has_twin else (ex,):
            try:
                eager = call(spec, target, e)
            except TargetError:
                if e is twin:  # a target without float64 support: nothing to compare it on
                    continue
                raise
            with _no_silent_eager_fallback():
                out = call(spec, ctarget, e)
            ck.assert_close(out, ck.f64(eager), spec=spec.id, key="compile", dtype=eager.dtype, scale=_scale(spec, e),
                            inputs=_scalars(e), what="compiled output" + (" (float64 inputs)" if e is twin else ""))

    return _prop(spec, name, Category.DEVICE, check,
                 "torch.compile(target) gives the eager output within tolerance, on the example and on its float64 "
                 "twin (thorough profile only).", strategy=spec.strategy("device"), profiles=("thorough",),
                 examples_factor=0.05, needs=("compile",))


# ---------------------------------------------------------------------------
# Oracles
# ---------------------------------------------------------------------------


def _oracle_names(spec: Spec) -> list[str]:
    return [f"agrees_with_{o.name}" for o in spec.oracles if o.generate]


def _oracle(spec: Spec, name: str) -> Oracle:
    return next(o for o in spec.oracles if f"agrees_with_{o.name}" == name)


def _oracle_strategy(spec: Spec, o: Oracle) -> Any:
    return o.strategy if o.strategy is not None else spec.strategy()


def _oracle_lacks(spec: Spec, name: str) -> str | None:
    o = _oracle(spec, name)
    if spec.convention is None:
        return "a calling convention (Spec.convention)"
    return None if _oracle_strategy(spec, o) is not None else "a strategy for the oracle's examples"


def _agrees(spec: Spec, name: str) -> Property:
    o = _oracle(spec, name)
    conv = spec.convention
    assert conv is not None

    def check(target: Target, ex: Example) -> None:
        out = call(spec, target, ex)
        want = o.evaluate(ex)
        if o.kind == "exact" and out.shape == np.shape(want.value):
            ck.measure_accuracy(out, np.asarray(want.value, dtype=np.float64))
        scale = want.scale if want.scale is not None else _scale(spec, ex)
        ck.assert_close(out, want.value, spec=spec.id, key=o.key_for(ex), dtype=conv.dtype_of(ex), scale=scale,
                        mask=want.mask, inputs=_scalars(ex))

    doc = o.doc or f"f equals the {o.kind} oracle {o.path}; trusted on: {o.domain}."
    return _prop(spec, name, Category.ORACLE, check, doc, strategy=_oracle_strategy(spec, o), requires=o.requires,
                 examples_factor=o.examples_factor, examples=o.examples)


# ---------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------


def _one(name: str) -> Callable[[Spec], list[str]]:
    return lambda spec: [name]


def _needs_output_shape(spec: Spec, name: str) -> str | None:
    if (miss := _needs_default(spec, name)) is not None:
        return miss
    return None if spec.convention.output_shape is not None else "the output's shape (Convention.output_shape)"  # type: ignore[union-attr]


def _needs_errors(kinds: tuple[str, ...]) -> Callable[[Spec, str], str | None]:
    def lacks(spec: Spec, name: str) -> str | None:
        if spec.convention is None:
            return "a calling convention (Spec.convention)"
        return None if _errors(spec, kinds) else f"malformed inputs of kind {' / '.join(kinds)} (Convention.errors)"

    return lacks


def _needs_keywords(spec: Spec, name: str) -> str | None:
    if (miss := _needs_default(spec, name)) is not None:
        return miss
    return None if _defaulted(spec) else "a keyword with a default"


def _needs_device(spec: Spec, name: str) -> str | None:
    if spec.convention is None:
        return "a calling convention (Spec.convention)"
    return None if spec.strategy("device") is not None else "device examples (Spec.strategies['device'])"


GENERIC: tuple[Generic, ...] = (
    Generic("the output's dtype and shape", _one("output_dtype_and_shape"), _needs_output_shape, _output_dtype_and_shape),
    Generic("determinism", _one("deterministic"), _needs_default, _deterministic),
    Generic("inputs untouched", _one("inputs_not_modified"), _needs_default, _inputs_not_modified),
    Generic("any memory layout", _one("layout_independent"), _needs_default, _layout_independent),
    Generic("autograd's state does not change the value", _one("autograd_state_independent"), _needs_default,
            _autograd_state_independent),
    Generic("shape mismatches rejected", _one("rejects_shape_mismatch"), _needs_errors(("shape",)), _rejects_shape_mismatch),
    Generic("bad dtypes and domains rejected", _one("rejects_invalid_inputs"), _needs_errors(("dtype", "domain")),
            _rejects_invalid_inputs),
    Generic("defaults honoured", _one("defaults_honoured"), _needs_keywords, _defaults_honoured),
    Generic("every keyword honoured", _honours_names, _honours_lacks, _honours),
    Generic("gradcheck through every differentiable input", _one("gradcheck_float64"), _gradcheck_lacks, _gradcheck),
    Generic("finite gradients over the extreme domain", _one("finite_gradients"), _has_grad_args, _finite_gradients),
    Generic("CUDA agrees with the CPU", _one("cuda_matches_cpu"), _needs_device, _cuda),
    Generic("MPS agrees with the CPU", _one("mps_matches_cpu"), _needs_device, _mps),
    Generic("float16 / bfloat16 agree with float32", _one("low_precision_matches_float32"), _needs_device, _low_precision),
    Generic("torch.compile agrees with eager", _one("compiled_matches_eager"), _needs_device, _compiled),
    Generic("agreement with each oracle", _oracle_names, _oracle_lacks, _agrees),
)


def generic_names(spec: Spec) -> list[str]:
    """Every generic property name the table has for ``spec`` (applied, overridden or opted out)."""
    return [n for g in GENERIC for n in g.names(spec)]


def apply(spec: Spec) -> None:
    """Give ``spec`` every generic property it supplies the needs of (idempotent)."""
    missing: dict[str, str] = {}
    unknown = set(spec.opt_out) - set(generic_names(spec))
    if unknown:
        raise ValueError(f"{spec.id}: opt_out names {sorted(unknown)}, which are not generic properties of this spec; "
                         f"the generic ones are {generic_names(spec)}")
    for g in GENERIC:
        for name in g.names(spec):
            if name in spec.properties or name in spec.opt_out:
                continue
            lack = g.lacks(spec, name)
            if lack is not None:
                missing[name] = f"{g.claim}: the spec does not supply {lack}"
                continue
            spec.add(g.build(spec, name))
    if missing:
        MISSING[spec.id] = missing
    else:
        MISSING.pop(spec.id, None)
