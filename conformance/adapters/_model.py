"""The adapter model: a library, and one adapter per (library, spec, option setting).

An adapter *translates* (argument names, alpha conventions such as ``alpha=-1``
for "none", reductions, the ``(N, C, *)`` layout a library insists on, a
framework's tensors) and never corrects: whatever the library computes, dtype
included, is what the suite checks. Its ``source`` defines ``impl`` with the
spec's canonical signature; the same source is executed to build the target and
printed in repro snippets, so a repro calls the library itself exactly as the
run did. ``translations`` lists every translation it performs, for the report's
conventions table.
"""

from __future__ import annotations

import importlib.util
import textwrap
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from conformance.targets import TORCH, Capabilities, Target

__all__ = ["Library", "Adapter", "src", "build", "make_target", "library_version"]


@dataclass(frozen=True)
class Library:
    """A third-party library: its command-line name, import name, pip distribution and framework."""

    name: str
    module: str
    distribution: str
    framework: str = "torch"
    doc_url: str = ""

    @property
    def installed(self) -> bool:
        return importlib.util.find_spec(self.module) is not None


@dataclass(frozen=True)
class Adapter:
    library: Library
    spec_id: str
    source: str  # defines `impl` with the spec's canonical signature
    translations: dict[str, str] = field(default_factory=dict)
    capabilities: Capabilities = TORCH
    variant: str | None = None  # an option setting of the library, e.g. "from_logits=False"
    function: str = ""  # the library's public name, e.g. "torchvision.ops.sigmoid_focal_loss"
    options: tuple[str, ...] = ()  # the library's options that change the maths and that this adapter exercises
    not_covered: dict[str, str] = field(default_factory=dict)  # option -> why this adapter does not exercise it

    @property
    def name(self) -> str:
        """The target's name: the library, or ``library[variant]`` for an option setting."""
        return self.library.name if self.variant is None else f"{self.library.name}[{self.variant}]"


def src(text: str) -> str:
    return textwrap.dedent(text).strip() + "\n"


def build(adapter: Adapter) -> Any:
    """Execute the adapter's source and return its ``impl``."""
    namespace: dict[str, Any] = {}
    exec(compile(adapter.source, f"<adapter {adapter.name}:{adapter.spec_id}>", "exec"), namespace)  # noqa: S102
    return namespace["impl"]


def library_version(lib: Library) -> str | None:
    try:
        return metadata.version(lib.distribution)
    except metadata.PackageNotFoundError:
        return None


def make_target(adapter: Adapter) -> Target:
    lib = adapter.library
    t = Target(
        name=adapter.name,
        spec_id=adapter.spec_id,
        fn=None,
        source=f"adapter:{adapter.name}",
        kind="adapter",
        capabilities=adapter.capabilities,
        translations={"function": adapter.function, **adapter.translations}
        if adapter.function
        else dict(adapter.translations),
        library=lib.distribution,
        repro_call=adapter.source,
        options=tuple(adapter.options),
        not_covered=dict(adapter.not_covered),
    )
    if not lib.installed:
        t.skip_reason = f"library {lib.module!r} is not installed (pip install {lib.distribution})"
        return t
    try:
        t.fn = build(adapter)
    except Exception as exc:  # noqa: BLE001 - a broken install is an outcome, not a crash
        t.load_error = f"adapter {adapter.name} for {adapter.spec_id} failed to load: {type(exc).__name__}: {exc}"
    return t
