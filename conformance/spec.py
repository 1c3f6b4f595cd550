"""Specs, calling conventions, oracles and properties: the data model of the suite.

A :class:`Spec` is one loss contract with a stable id. It carries

- a :class:`Convention`: how a target is called on an example (the ordered tensor
  arguments and which are differentiable, the canonical keyword arguments with
  their defaults and the non-default values worth trying, the output's shape and
  dtype, and named malformed inputs in the manner of OpInfo's ``error_inputs``);
- its strategies (``default`` spans the whole documented domain; ``gradcheck``,
  ``device`` and ``extreme`` are optional specialisations);
- its :class:`Oracle` objects, each a callable that the generic
  ``agrees_with_<name>`` property calls;
- its family-specific properties, registered with :meth:`Spec.property`.

The generic properties (``conformance.generic``) are added to every spec that
supplies what they need when the catalogue is loaded (``conformance.catalogue``);
a spec that cannot supply a need lists the property in ``opt_out`` with its reason.

This module is the model only: it imports nothing else of the suite.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import torch
    from hypothesis.strategies import SearchStrategy

__all__ = [
    "Arg",
    "Category",
    "Check",
    "Convention",
    "ErrorInput",
    "Example",
    "Keyword",
    "Oracle",
    "Property",
    "REGISTRY",
    "SkipProperty",
    "Spec",
    "Variant",
    "Want",
    "register",
]

Example = dict[str, Any]
Check = Callable[[Any, Example], None]


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


# ---------------------------------------------------------------------------
# Calling convention
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Arg:
    """One positional argument of the canonical signature.

    ``floating``: a floating tensor (cast by the dtype properties, moved by the device
    ones); ``differentiable``: gradients flow to it (gradcheck, finite gradients);
    ``optional``: the example may hold ``None`` for it.
    """

    name: str
    floating: bool = True
    differentiable: bool = False
    optional: bool = False


@dataclass(frozen=True)
class Keyword:
    """One keyword argument of the canonical signature.

    ``values`` gives non-default values to try: a strategy, or a function of the
    example returning one (a per-class weight needs the example's class count).
    ``None`` means the keyword is not drawn away from its default by the generic
    ``honours_<name>`` property (the spec then opts out of it with a reason).
    ``required``: no default (the call must pass it).
    """

    name: str
    default: Any = None
    values: SearchStrategy[Any] | Callable[[Example], SearchStrategy[Any]] | None = None
    required: bool = False

    def values_for(self, ex: Example) -> SearchStrategy[Any] | None:
        from hypothesis.strategies import SearchStrategy

        if self.values is None or isinstance(self.values, SearchStrategy):
            return self.values
        return self.values(ex)


@dataclass(frozen=True)
class ErrorInput:
    """A named family of malformed inputs and the argument at fault.

    ``kind`` is ``"shape"`` (a mismatch the call must not broadcast), ``"dtype"`` or
    ``"domain"`` (a value outside the contract). ``strategy`` yields whole examples
    that are malformed in that one way.
    """

    name: str
    kind: str
    argument: str
    strategy: SearchStrategy[Example]

    def __post_init__(self) -> None:
        if self.kind not in ("shape", "dtype", "domain"):
            raise ValueError(f"ErrorInput(kind={self.kind!r}) must be one of 'shape', 'dtype', 'domain'")


def _positional_call(conv: Convention, target: Any, ex: Example) -> Any:
    args = [ex.get(a.name) if a.optional else ex[a.name] for a in conv.args]
    kwargs = {k.name: ex[k.name] for k in conv.keywords if k.name in ex}
    return target(*args, **kwargs)


@dataclass(frozen=True)
class Convention:
    """How the generic properties call a target and what they expect back.

    ``call(conv, target, ex)`` defaults to ``target(*args, **keywords present in ex)``;
    ``output(result)`` picks the tensor that is judged (default: the result itself);
    ``output_shape(ex)`` is the expected shape; the expected dtype is that of the
    first floating argument unless ``output_dtype`` says otherwise.
    """

    args: tuple[Arg, ...]
    keywords: tuple[Keyword, ...] = ()
    output_shape: Callable[[Example], tuple[int, ...]] | None = None
    output_dtype: Callable[[Example], torch.dtype] | None = None
    errors: tuple[ErrorInput, ...] = ()
    call: Callable[[Convention, Any, Example], Any] = _positional_call
    output: Callable[[Any], Any] = staticmethod(lambda out: out)  # type: ignore[assignment]

    @property
    def differentiable(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.args if a.differentiable)

    @property
    def floating(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.args if a.floating)

    def keyword(self, name: str) -> Keyword:
        for k in self.keywords:
            if k.name == name:
                return k
        raise KeyError(name)

    def dtype_of(self, ex: Example) -> torch.dtype:
        if self.output_dtype is not None:
            return self.output_dtype(ex)
        import torch

        for a in self.args:
            v = ex.get(a.name)
            if a.floating and isinstance(v, torch.Tensor) and v.is_floating_point():
                return v.dtype
        for v in ex.values():
            if isinstance(v, torch.Tensor) and v.is_floating_point():
                return v.dtype
        return torch.get_default_dtype()

    def invoke(self, target: Any, ex: Example) -> Any:
        return self.call(self, target, ex)


# ---------------------------------------------------------------------------
# Oracles
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Want:
    """An oracle's answer: float64 values, and optionally where it is trusted and the
    per-element magnitude of cancelling terms (see ``conformance.tolerances``)."""

    value: np.ndarray | float
    mask: np.ndarray | None = None
    scale: np.ndarray | float | None = None


@dataclass(frozen=True)
class Oracle:
    """An independent source of truth that a property calls.

    ``function(ex)`` returns float64 values (or a :class:`Want`) for the example;
    it is what the generated ``agrees_with_<name>`` property compares a target with,
    at the tolerance named by ``tolerance_key`` (default: the oracle's name).
    ``primary`` marks the oracle that covers every keyword: the generic keyword
    properties judge non-default values against it. ``domain`` says in words where
    it is trusted (its ``mask`` says it per element). ``generate=False`` keeps the
    oracle for other properties without generating ``agrees_with_<name>``.
    """

    name: str
    kind: str  # "numpy" | "exact" | "tensorflow" | "keras" | "torch" | "published"
    function: Callable[[Example], Any]
    domain: str = "all finite inputs"
    doc: str = ""
    tolerance_key: str | Callable[[Example], str] | None = None
    requires: tuple[str, ...] = ()
    strategy: SearchStrategy[Example] | None = None
    examples_factor: float = 1.0
    examples: tuple[Example, ...] = ()
    primary: bool = False
    generate: bool = True

    @property
    def path(self) -> str:
        fn = self.function
        return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"

    def key_for(self, ex: Example) -> str:
        k = self.tolerance_key
        if k is None:
            return self.name
        return k(ex) if callable(k) else k

    def evaluate(self, ex: Example) -> Want:
        out = self.function(ex)
        return out if isinstance(out, Want) else Want(out)


@dataclass(frozen=True)
class Variant:
    """A named, documented deviation (often a seed's quirk) the suite must fail."""

    name: str
    function: Callable[..., Any]
    why: str


# ---------------------------------------------------------------------------
# Properties and specs
# ---------------------------------------------------------------------------


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
    needs: frozenset[str] = frozenset()  # target capabilities: "autograd", "torch_tensors", "compile"
    generic: bool = False  # from the generic table (conformance.generic)

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
    convention: Convention | None = None
    strategies: Mapping[str, SearchStrategy[Example]] = field(default_factory=dict)
    oracles: tuple[Oracle, ...] = ()
    variants: tuple[Variant, ...] = ()
    scale: Callable[[Example], np.ndarray | float] | None = None
    opt_out: Mapping[str, str] = field(default_factory=dict)
    regions: tuple[str, ...] = ()
    examples: Mapping[str, tuple[Example, ...]] = field(default_factory=dict)  # corner cases per generic property
    properties: dict[str, Property] = field(default_factory=dict)

    @property
    def primary_oracle(self) -> Oracle | None:
        return next((o for o in self.oracles if o.primary), None)

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
        needs: frozenset[str] | tuple[str, ...] = (),
    ) -> Callable[[Check], Check]:
        """Register the decorated ``check(target, example)`` as a property of this spec."""

        def deco(fn: Check) -> Check:
            self.add(
                Property(
                    spec_id=self.id,
                    name=name or fn.__name__,
                    category=Category(category),
                    check=fn,
                    strategy=strategy,
                    doc=fn.__doc__ or "",
                    requires=requires,
                    examples_factor=examples_factor,
                    profiles=profiles,
                    examples=tuple(examples),
                    needs=frozenset(needs) | _implied_needs(Category(category)),
                )
            )
            return fn

        return deco

    def add(self, prop: Property) -> Property:
        if prop.name in self.properties:
            raise ValueError(f"property {self.id}::{prop.name} is registered twice")
        if not prop.doc.strip():
            raise ValueError(f"property {self.id}::{prop.name} needs a docstring stating its maths")
        self.properties[prop.name] = prop
        return prop

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(name)

    def strategy(self, key: str = "default") -> SearchStrategy[Example] | None:
        """The spec's strategy ``key``, falling back to ``default``."""
        found = self.strategies.get(key)
        return found if found is not None else self.strategies.get("default")



def _implied_needs(category: Category) -> frozenset[str]:
    return frozenset({"autograd"}) if category is Category.GRADIENT else frozenset()


REGISTRY: dict[str, Spec] = {}


def register(spec: Spec) -> Spec:
    if spec.id in REGISTRY and REGISTRY[spec.id] is not spec:
        raise ValueError(f"spec id {spec.id!r} is registered twice")
    REGISTRY[spec.id] = spec
    return spec
