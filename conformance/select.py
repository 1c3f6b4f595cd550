"""Turning target names from the command line into targets bound to specs.

A target is named as
- ``reference``: the spec's reference implementation (the default);
- ``package.module:attr``: any callable following the spec's canonical signature
  (``--spec`` says which spec, or the callable declares it with ``conforms_to``);
- ``package.module``: every callable in the module declared with ``conforms_to``;
- ``variant:NAME`` (or ``variants``): a spec's named variant (a documented quirk);
- a library's adapter name (``conformance.adapters``), or ``all-installed``.

This module sits with the doors (CLI, plugin): it knows the adapters, which the
engine never imports.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from conformance.catalogue import load_specs
from conformance.spec import Spec
from conformance.targets import Target

__all__ = ["resolve_targets", "reference_target"]


def _import_attr(path: str) -> Any:
    mod_name, _, attr = path.partition(":")
    module = importlib.import_module(mod_name)
    if not attr:
        return module
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def reference_target(spec: Spec) -> Target:
    fn = spec.reference
    return Target(name="reference", spec_id=spec.id, fn=fn, source=f"{fn.__module__}:{fn.__qualname__}", kind="reference")


def resolve_targets(names: Sequence[str], spec_ids: Sequence[str]) -> list[Target]:
    """Turn command-line target names into targets bound to specs.

    Failures to import or bind become targets with ``load_error`` set, so that the
    run records them as outcomes instead of crashing.
    """
    specs = load_specs()
    for sid in spec_ids:
        if sid not in specs:
            raise ValueError(f"--spec {sid!r} is unknown; known specs: {', '.join(sorted(specs))}")
    selected = list(spec_ids) or sorted(specs)
    names = list(names) or ["reference"]
    out: list[Target] = []
    for name in names:
        if name == "reference":
            out.extend(reference_target(specs[s]) for s in selected)
        elif name in ("variant", "variants"):
            for s in selected:
                out.extend(_variant_target(specs[s], v.name) for v in specs[s].variants)
        elif name.startswith("variant:"):
            vname = name.split(":", 1)[1]
            hits = [s for s in selected if any(v.name == vname for v in specs[s].variants)]
            if not hits:
                raise ValueError(f"--target {name!r}: no selected spec has a variant named {vname!r}")
            out.extend(_variant_target(specs[s], vname) for s in hits)
        elif ":" in name or "." in name:
            out.extend(_callable_targets(name, spec_ids, specs))
        else:
            from conformance import adapters

            out.extend(adapters.targets_for(name, selected))
    return out


def _variant_target(spec: Spec, vname: str) -> Target:
    v = spec.variant(vname)
    return Target(
        name=f"variant:{vname}",
        spec_id=spec.id,
        fn=v.function,
        source=f"{v.function.__module__}:{v.function.__qualname__}",
        kind="variant",
        why=v.why,
    )


def _callable_targets(name: str, spec_ids: Sequence[str], specs: Mapping[str, Spec]) -> list[Target]:
    try:
        obj = _import_attr(name)
    except Exception as exc:  # noqa: BLE001 - recorded as the target's outcome
        msg = f"cannot import target {name!r}: {type(exc).__name__}: {exc}"
        return [Target(name=name, spec_id=s, fn=None, source=name, load_error=msg) for s in (spec_ids or ["?"])]
    if inspect.ismodule(obj):
        found = [
            (attr, fn)
            for attr, fn in sorted(vars(obj).items())
            if callable(fn) and getattr(fn, "__conformance_specs__", None)
        ]
        if not found:
            raise ValueError(
                f"--target {name!r} is a module with no callable declared by @conforms_to; "
                "give module:attr with --spec ID instead"
            )
        return [t for attr, _ in found for t in _callable_targets(f"{name}:{attr}", spec_ids, specs)]
    if not callable(obj):
        msg = f"target {name!r} is a {type(obj).__name__}, not callable"
        return [Target(name=name, spec_id=s, fn=None, source=name, load_error=msg) for s in (spec_ids or ["?"])]
    declared = tuple(getattr(obj, "__conformance_specs__", ()))
    bound = list(spec_ids) or list(declared)
    if not bound:
        raise ValueError(
            f"--target {name!r} declares no spec: pass --spec ID (one of {', '.join(sorted(specs))}) "
            "or decorate it with conformance.conforms_to(ID)"
        )
    for sid in bound:
        if sid not in specs:
            raise ValueError(f"{name!r} declares unknown spec {sid!r}; known: {', '.join(sorted(specs))}")
    return [Target(name=name, spec_id=s, fn=obj, source=name) for s in bound]
