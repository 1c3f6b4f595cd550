"""Adapters: third-party libraries mapped onto the canonical signatures.

One module per library (``pytorch``, ``torchvision``, ``fvcore``, ...), each
defining ``LIBRARY`` and ``ADAPTERS``; modules are discovered, so adding a library
is adding a file. ``--target NAME`` selects every adapter of a library (bound to
the specs that exist, each option setting a target of its own);
``--target all-installed`` selects every library, and a library that is not
installed becomes a skipped outcome with the reason.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Sequence

from conformance.adapters._model import Adapter, Library, build, library_version, make_target
from conformance.targets import Target

__all__ = ["Adapter", "Library", "adapters", "libraries", "targets_for", "build", "library_version"]


@functools.cache
def _discover() -> tuple[tuple[Library, ...], tuple[Adapter, ...]]:
    libs: list[Library] = []
    found: list[Adapter] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        libs.append(mod.LIBRARY)
        found.extend(mod.ADAPTERS)
    names = [(a.name, a.spec_id) for a in found]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"adapters registered twice: {dupes}")
    return tuple(libs), tuple(found)


def libraries() -> tuple[Library, ...]:
    return _discover()[0]


def adapters() -> tuple[Adapter, ...]:
    return _discover()[1]


def targets_for(name: str, specs: Sequence[str]) -> list[Target]:
    """The targets ``--target name`` selects: a library's adapters, one option setting
    (``library[variant]``), or every library (``all-installed``)."""
    from conformance.catalogue import load_specs

    known = load_specs()
    libs = {lib.name for lib in libraries()}
    base = name.split("[", 1)[0]
    if name != "all-installed" and base not in libs:
        raise ValueError(
            f"--target {name!r} is not 'reference', 'variants', variant:NAME, a package.module[:attr] path, "
            f"'all-installed' or a library ({', '.join(sorted(libs))}), optionally with an option setting "
            "such as keras[from_logits=False]"
        )
    chosen = [
        a
        for a in adapters()
        if a.spec_id in known
        and (not specs or a.spec_id in specs)
        and (name == "all-installed" or (a.library.name == base and ("[" not in name or a.name == name)))
    ]
    if "[" in name and not chosen:
        settings = sorted({a.name for a in adapters() if a.library.name == base})
        raise ValueError(f"--target {name!r}: no such option setting; {base} has {', '.join(settings)}")
    out = [make_target(a) for a in chosen]
    if name == "all-installed":
        out = [t for t in out if t.skip_reason is None] + [t for t in out if t.skip_reason is not None]
    return out
