"""Correct implementations written independently of ``impls/``: the suite must pass them.

Each family module defines ``IMPLEMENTATIONS``: a list of :class:`Impl`, each a valid
implementation of a spec written another way than the reference (another formula,
another order of summation, another tie-breaking, a library's own function where it
implements the contract exactly, intermediates at least as precise). A property that
fails one of them is a false alarm: ``tests/test_soundness.py`` runs every property
of the spec on each, under several target names and seeds.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Impl", "all_impls"]


@dataclass(frozen=True)
class Impl:
    name: str
    spec_id: str
    fn: Callable[..., Any]
    how: str  # what makes it different from the reference

    @property
    def id(self) -> str:
        return f"{self.spec_id}:{self.name}"

    @property
    def source(self) -> str:
        return f"{self.fn.__module__}:{self.fn.__qualname__}"


def all_impls() -> list[Impl]:
    out: list[Impl] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        mod = importlib.import_module(f"{__name__}.{info.name}")
        out.extend(getattr(mod, "IMPLEMENTATIONS", []))
    ids = [i.id for i in out]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise ValueError(f"duplicate soundness implementation ids: {sorted(dupes)}")
    return out
