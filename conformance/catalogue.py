"""The loaded catalogue: every spec module imported, generic properties applied.

``load_specs()`` imports each module of ``conformance.specs`` once (they register
their specs and family-specific properties), then adds the generic table
(``conformance.generic``) to every spec. Everything that needs the whole catalogue
goes through here, so a spec seen anywhere carries its full property set.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping

from conformance import generic
from conformance.spec import REGISTRY, Spec

__all__ = ["load_specs", "get_spec"]

_loaded = False


def load_specs() -> Mapping[str, Spec]:
    """Import every module of ``conformance.specs`` once; return the registry."""
    global _loaded
    if not _loaded:
        import conformance.specs as pkg

        for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
            if not info.name.startswith("_"):
                importlib.import_module(f"{pkg.__name__}.{info.name}")
        for spec in REGISTRY.values():
            generic.apply(spec)
        _loaded = True
    return REGISTRY


def get_spec(spec_id: str) -> Spec:
    specs = load_specs()
    if spec_id not in specs:
        known = ", ".join(sorted(specs))
        raise ValueError(f"unknown spec {spec_id!r}; known specs: {known}")
    return specs[spec_id]
