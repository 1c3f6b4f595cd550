"""The shape of the code and the catalogue: import graph, layers, generic coverage, regions.

- ``conformance/`` has no import cycle, counting every import (lazy ones inside
  functions too), and the layers of ``DESIGN.md`` hold: the engine never imports
  the adapters, the report or the doors; a spec never imports an adapter; the
  references and the oracles import nothing of ``conformance`` nor each other.
- Every spec carries every generic property it can, or lists it in ``opt_out``
  with a reason.
- Every region a spec declares is drawn by its strategies in the ``ci`` profile.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

DOORS = {"cli", "plugin", "collect", "crash", "options", "select", "replay", "suite"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, known: set[str]) -> set[str]:
    """Modules of ``known`` that ``path`` imports anywhere (module level or inside functions)."""
    tree = ast.parse(path.read_text(), str(path))
    me = _module_name(path)
    pkg = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(pkg.split(".")[: len(pkg.split(".")) - node.level + 1] + ([base] if base else []))
            # `from pkg import mod` imports the submodule; `from mod import name` imports mod.
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for n in names:
            while n and n not in known:
                n = n.rpartition(".")[0]
            if n and n != me:
                out.add(n)
    return out


def _graph(*packages: str) -> dict[str, set[str]]:
    files = [p for pkg in packages for p in (ROOT / pkg).rglob("*.py")]
    known = {_module_name(p) for p in files}
    return {_module_name(p): _imports(p, known) for p in files}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _layer(mod: str) -> str:
    parts = mod.split(".")
    if parts[0] in ("impls", "oracles"):
        return parts[0]
    if len(parts) == 1:
        return "engine"
    if parts[1] in DOORS:
        return "doors"
    if parts[1] in ("adapters", "report", "specs"):
        return parts[1]
    return "engine"


FORBIDDEN = {
    "engine": {"adapters", "report", "doors"},
    "specs": {"adapters", "report", "doors"},
    "report": {"adapters", "doors"},
    "adapters": {"doors", "report", "specs"},
    "impls": {"engine", "specs", "adapters", "report", "doors", "oracles"},
    "oracles": {"engine", "specs", "adapters", "report", "doors", "impls"},
}


def test_the_import_graph_of_conformance_has_no_cycle() -> None:
    cycles = _cycles(_graph("conformance"))
    assert not cycles, f"import cycles in conformance/: {cycles}"


def test_layers_import_only_downwards() -> None:
    graph = _graph("conformance", "impls", "oracles")
    bad = [
        f"{m} ({_layer(m)}) imports {d} ({_layer(d)})"
        for m, deps in sorted(graph.items())
        for d in sorted(deps)
        if _layer(d) in FORBIDDEN.get(_layer(m), set())
    ]
    assert not bad, "layer violations:\n" + "\n".join(bad)


def test_every_spec_carries_the_generic_set_or_an_opt_out_with_its_reason() -> None:
    from conformance.catalogue import load_specs
    from conformance.generic import MISSING, generic_names

    specs = load_specs()
    assert not MISSING, "generic properties neither supplied nor opted out:\n" + "\n".join(
        f"{sid}::{name}: {why}" for sid, m in sorted(MISSING.items()) for name, why in sorted(m.items())
    )
    for spec in specs.values():
        for name, why in spec.opt_out.items():
            assert len(why.split()) >= 4, f"{spec.id}: opt-out of {name} needs a reason in words, got {why!r}"
        names = set(generic_names(spec))
        assert names <= set(spec.properties) | set(spec.opt_out), spec.id


def _region_counts(spec_id: str) -> dict[str, int]:
    from hypothesis import given

    from conformance import recorder
    from conformance.catalogue import get_spec
    from conformance.profiles import settings_for

    spec = get_spec(spec_id)
    rec = recorder.Recorder()
    strategies = {id(s): s for s in spec.strategies.values()}
    for p in spec.properties.values():
        if p.strategy is not None:
            strategies.setdefault(id(p.strategy), p.strategy)
    with recorder.active(rec):
        for strategy in strategies.values():

            @settings_for("ci", database=None)
            @given(strategy)
            def draw(ex: object) -> None:
                rec.start_example(None)

            draw()
    return rec.regions


def _specs_with_regions() -> list[str]:
    from conformance.catalogue import load_specs

    return [sid for sid, s in sorted(load_specs().items()) if s.regions]


@pytest.mark.parametrize("spec_id", _specs_with_regions())
def test_every_declared_region_is_drawn_in_the_ci_profile(spec_id: str) -> None:
    from conformance.catalogue import get_spec

    counts = _region_counts(spec_id)
    never = [r for r in get_spec(spec_id).regions if not counts.get(r)]
    assert not never, f"{spec_id}: declared regions never drawn in the ci profile: {never} (drawn: {counts})"
    undeclared = sorted(set(counts) - set(get_spec(spec_id).regions))
    assert not undeclared, f"{spec_id}: strategies label regions the spec does not declare: {undeclared}"
