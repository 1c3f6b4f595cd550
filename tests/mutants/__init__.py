"""Planted mutants: realistic broken implementations the suite must catch.

Each family module defines ``MUTANTS``: a list of :class:`Mutant`, each naming
the properties that must kill it. ``tests/test_mutants.py`` proves every claim,
and that every property of every spec kills at least one mutant.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Mutant", "all_mutants"]


@dataclass(frozen=True)
class Mutant:
    name: str
    spec_id: str
    fn: Callable[..., Any]
    why: str
    killed_by: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.spec_id}:{self.name}"

    @property
    def source(self) -> str:
        return f"{self.fn.__module__}:{self.fn.__qualname__}"


def all_mutants() -> list[Mutant]:
    out: list[Mutant] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        mod = importlib.import_module(f"{__name__}.{info.name}")
        out.extend(getattr(mod, "MUTANTS", []))
    names = [m.id for m in out]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ValueError(f"duplicate mutant ids: {sorted(dupes)}")
    return out
