"""Specs and properties: the data model of the suite.

A :class:`Spec` is one loss contract with a stable id, a canonical call
signature, a reference implementation and the oracles it is checked against.
A :class:`Property` is one named, categorised claim about any implementation of
a spec; its ``check`` takes the target and one generated example (a ``dict``)
and raises ``AssertionError`` when the claim fails.

Specs register themselves in :data:`REGISTRY` when their module under
``conformance.specs`` is imported (:func:`load_specs`).
"""

from __future__ import annotations

import enum
import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

    from conformance.targets import Target

__all__ = [
    "Category",
    "Oracle",
    "Property",
    "Spec",
    "Variant",
    "REGISTRY",
    "register",
    "get_spec",
    "load_specs",
    "SkipProperty",
]

Example = dict[str, Any]
Check = Callable[["Target", Example], None]


class Category(str, enum.Enum):
    ORACLE = "oracle"
    EQUIVALENCE = "equivalence"
    INVARIANCE = "invariance"
    GRADIENT = "gradient"
    MATCHING = "matching"
    REDUCTION = "reduction"
    DEVICE = "device"
    ROBUSTNESS = "robustness"

    def __str__(self) -> str:
        return self.value


class SkipProperty(Exception):
    """Raised by a check when the property cannot run here (missing GPU, library).

    The message is the reason shown in the report.
    """


@dataclass(frozen=True)
class Oracle:
    """An independent source of truth for a spec.

    ``domain`` says in words where the oracle can be trusted; properties that use
    it mask out, and count, the elements outside it.
    """

    name: str
    kind: str  # "numpy" | "exact" | "tensorflow" | "keras" | "published"
    function: str  # dotted path, for the report and `conformance list`
    domain: str = "all finite inputs"
    requires: tuple[str, ...] = ()


@dataclass(frozen=True)
class Variant:
    """A named, documented deviation (often a seed's quirk) the suite must fail."""

    name: str
    function: Callable[..., Any]
    why: str


@dataclass(frozen=True)
class Property:
    spec_id: str
    name: str
    category: Category
    check: Check
    strategy: SearchStrategy[Example] | None
    doc: str
    requires: tuple[str, ...] = ()
    examples_factor: float = 1.0
    profiles: tuple[str, ...] = ()  # empty: every profile
    examples: tuple[Example, ...] = ()  # explicit corner cases, always run first

    @property
    def id(self) -> str:
        return f"{self.spec_id}::{self.name}"

    @property
    def summary(self) -> str:
        return self.doc.strip().splitlines()[0] if self.doc.strip() else self.name


@dataclass
class Spec:
    id: str
    family: str
    signature: str
    summary: str
    reference: Callable[..., Any]
    oracles: tuple[Oracle, ...] = ()
    variants: tuple[Variant, ...] = ()
    properties: dict[str, Property] = field(default_factory=dict)

    def property(
        self,
        category: Category | str,
        *,
        strategy: SearchStrategy[Example] | None = None,
        requires: tuple[str, ...] = (),
        examples_factor: float = 1.0,
        profiles: tuple[str, ...] = (),
        name: str | None = None,
        examples: tuple[Example, ...] = (),
    ) -> Callable[[Check], Check]:
        """Register the decorated ``check(target, example)`` as a property of this spec."""

        def deco(fn: Check) -> Check:
            pname = name or fn.__name__
            if pname in self.properties:
                raise ValueError(f"property {self.id}::{pname} is registered twice")
            if not (fn.__doc__ or "").strip():
                raise ValueError(f"property {self.id}::{pname} needs a docstring stating its maths")
            self.properties[pname] = Property(
                spec_id=self.id,
                name=pname,
                category=Category(category),
                check=fn,
                strategy=strategy,
                doc=fn.__doc__ or "",
                requires=requires,
                examples_factor=examples_factor,
                profiles=profiles,
                examples=tuple(examples),
            )
            return fn

        return deco

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(name)


REGISTRY: dict[str, Spec] = {}


def register(spec: Spec) -> Spec:
    if spec.id in REGISTRY and REGISTRY[spec.id] is not spec:
        raise ValueError(f"spec id {spec.id!r} is registered twice")
    REGISTRY[spec.id] = spec
    return spec


_loaded = False


def load_specs() -> Mapping[str, Spec]:
    """Import every module of ``conformance.specs`` once; return the registry."""
    global _loaded
    if not _loaded:
        import conformance.specs as pkg

        for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
            if not info.name.startswith("_"):
                importlib.import_module(f"{pkg.__name__}.{info.name}")
        _loaded = True
    return REGISTRY


def get_spec(spec_id: str) -> Spec:
    specs = load_specs()
    if spec_id not in specs:
        known = ", ".join(sorted(specs))
        raise ValueError(f"unknown spec {spec_id!r}; known specs: {known}")
    return specs[spec_id]
