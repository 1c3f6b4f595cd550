"""Adapters for known third-party libraries (filled in by the third-party issue).

``targets_for(name, specs)`` turns an adapter name into targets bound to the
specs the library implements.
"""

from __future__ import annotations

from collections.abc import Sequence

from conformance.targets import Target

__all__ = ["ADAPTERS", "targets_for"]

ADAPTERS: dict[str, object] = {}


def targets_for(name: str, specs: Sequence[str]) -> list[Target]:
    raise ValueError(
        f"--target {name!r} is not 'reference', 'variants', variant:NAME, a package.module[:attr] path "
        f"or a known adapter ({', '.join(sorted(ADAPTERS)) or 'none registered'})"
    )
