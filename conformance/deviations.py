"""The known-deviations registry: scoped, with a kind and a reason.

An entry names a spec, one or more properties (fnmatch patterns), a target
pattern, its ``kind`` and its ``reason``, and optionally ``where``: a predicate
over the example that bounds the region where the deviation holds::

    [[deviation]]
    target = "torch*"
    spec = "smooth_l1"
    property = ["agrees_with_numpy", "small_beta_is_l1"]
    where = "0 < beta < 1e-5"
    kind = "convention"
    reason = "torch keeps the quadratic part for 0 < beta < 1e-5 ..."

``kind`` is ``convention`` (documented behaviour that differs from the spec) or
``defect`` (contradicts the library's own documentation or basic maths).

The runner consults the registry per example: a failing example inside a
registered region is counted, not failed, and the search goes on, so a second,
different defect of the same property still fails with its own counterexample.
An entry without ``where`` covers the whole property. An entry is *stale* when
its region was searched and nothing in it deviated.

Predicates are Python expressions over the example's names: tensors appear as
float64 NumPy arrays, and a comparison that yields an array counts as true when
any element is (``abs(logits) > 1e30``). Also bound: ``dtype`` (the name of the
first floating argument's dtype, e.g. ``"float64"``), ``np``, ``any``, ``all``,
``abs``, ``min``, ``max``, ``max_abs(a)``, ``numel(a)``, ``soft(t)`` (some value
strictly between 0 and 1), ``shape(a)`` and ``get(name, default)`` (the example's value
of ``name``, or ``default`` where the example lacks it or holds None).

Files: every ``*.toml`` in ``conformance/deviations/`` (one per library, plus
the seed variants), and any file given with ``--deviations``. Each file set is
parsed once per process.
"""

from __future__ import annotations

import ast
import fnmatch
import functools
import math
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Deviation", "KINDS", "DEFAULT_DIR", "load_deviations", "match", "matching", "predicate_namespace"]

DEFAULT_DIR = Path(__file__).with_name("deviations")
KINDS = ("convention", "defect")

_ALLOWED_NODES = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd, ast.BinOp, ast.Add,
    ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.Mod, ast.FloorDiv, ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE,
    ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Is, ast.IsNot, ast.Call, ast.Name, ast.Load, ast.Constant, ast.Attribute,
    ast.Subscript, ast.Slice, ast.Tuple, ast.List, ast.IfExp,
)


def _check_predicate(expr: str, where: str) -> Any:
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"{where}: where = {expr!r} is not a Python expression: {exc.msg}") from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise ValueError(f"{where}: where = {expr!r} uses {type(node).__name__}, which predicates may not")
        if isinstance(node, ast.Attribute) and (node.attr.startswith("_")):
            raise ValueError(f"{where}: where = {expr!r} reads a private attribute {node.attr!r}")
        if isinstance(node, ast.Name) and node.id.startswith("__"):
            raise ValueError(f"{where}: where = {expr!r} names {node.id!r}")
    return compile(tree, f"<where {expr}>", "eval")


def _truth(v: Any) -> bool:
    import numpy as np

    if isinstance(v, np.ndarray):
        return bool(v.any())
    return bool(v)


def predicate_namespace(example: dict[str, Any], dtype: str | None = None) -> dict[str, Any]:
    """The names a ``where`` predicate sees for one example."""
    import numpy as np
    import torch

    ns: dict[str, Any] = {}
    first_float = None
    for k, v in example.items():
        if isinstance(v, torch.Tensor):
            t = v.detach().cpu()
            if t.is_floating_point():
                first_float = first_float or str(t.dtype).removeprefix("torch.")
                ns[k] = t.to(torch.float64).numpy()
            else:
                ns[k] = t.numpy()
        else:
            ns[k] = v

    def max_abs(a: Any) -> float:
        arr = np.abs(np.asarray(a, dtype=np.float64))
        return float(arr.max()) if arr.size else 0.0

    def soft(a: Any) -> bool:
        arr = np.asarray(a, dtype=np.float64)
        return bool(((arr > 0) & (arr < 1)).any())

    ns.update(
        dtype=dtype or first_float,
        np=np,
        math=math,
        any=lambda a: bool(np.any(a)),
        all=lambda a: bool(np.all(a)),
        abs=np.abs,
        min=min,
        max=max,
        len=len,
        max_abs=max_abs,
        numel=lambda a: int(np.asarray(a).size),
        soft=soft,
        shape=lambda a: tuple(np.shape(a)),
        none=None,
    )
    ns["get"] = lambda name, default=None: default if ns.get(name) is None else ns[name]
    return ns


@dataclass(frozen=True)
class Deviation:
    target: str
    spec: str  # the TOML may give a list of spec ids (one Deviation each)
    property: str  # a name or an fnmatch pattern; the TOML may give a list of them
    reason: str
    kind: str = "defect"
    where: str | None = None
    source: str = ""
    _code: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Built in code rather than parsed from a file: the predicate is checked and compiled here.
        if self.where is not None and self._code is None:
            object.__setattr__(self, "_code", _check_predicate(self.where, f"deviation {self.key}"))

    def matches(self, target: str, spec: str, prop: str) -> bool:
        return (
            (target == self.target or fnmatch.fnmatchcase(target, self.target))
            and fnmatch.fnmatchcase(spec, self.spec)
            and fnmatch.fnmatchcase(prop, self.property)
        )

    @property
    def key(self) -> str:
        region = f" where {self.where}" if self.where else ""
        return f"{self.spec}::{self.property}[{self.target}]{region}"

    def covers(self, example: dict[str, Any] | None, namespace: dict[str, Any] | None = None) -> bool:
        """Whether ``example`` lies in this deviation's region (always, without ``where``).

        A predicate that cannot be evaluated on the example (a name it does not have,
        a shape that does not fit) does not cover it."""
        if self.where is None:
            return True
        if example is None:
            return False
        ns = namespace if namespace is not None else predicate_namespace(example)
        try:
            with _quiet():
                return _truth(eval(self._code, {"__builtins__": {}}, ns))  # noqa: S307 - checked AST, no builtins
        except Exception:  # noqa: BLE001 - outside the region
            return False

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "spec": self.spec, "property": self.property, "kind": self.kind,
                "where": self.where, "reason": self.reason}


class _quiet:
    def __enter__(self) -> None:
        import numpy as np

        self._old = np.seterr(all="ignore")

    def __exit__(self, *exc: object) -> None:
        import numpy as np

        np.seterr(**self._old)


def _files(extra: Sequence[str | Path]) -> list[Path]:
    files = sorted(DEFAULT_DIR.glob("*.toml")) if DEFAULT_DIR.is_dir() else []
    for p in extra:
        path = Path(p)
        if not path.exists():
            raise ValueError(f"--deviations {str(p)!r} does not exist")
        files.append(path)
    return files


def _parse(path: Path) -> list[Deviation]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    out: list[Deviation] = []
    for i, entry in enumerate(data.get("deviation", [])):
        where = f"{path}: deviation #{i + 1}"
        missing = [k for k in ("target", "spec", "property", "reason", "kind") if not entry.get(k)]
        if missing:
            raise ValueError(f"{where} lacks {', '.join(missing)}; each needs target, spec, property, kind, reason")
        unknown = set(entry) - {"target", "spec", "property", "reason", "kind", "where"}
        if unknown:
            raise ValueError(f"{where} has unknown keys {sorted(unknown)}; allowed: target, spec, property, kind, where, reason")
        if entry["kind"] not in KINDS:
            raise ValueError(f"{where}: kind = {entry['kind']!r} must be one of {KINDS}")
        pred = entry.get("where")
        code = _check_predicate(pred, where) if pred else None
        props = entry["property"] if isinstance(entry["property"], list) else [entry["property"]]
        specs = entry["spec"] if isinstance(entry["spec"], list) else [entry["spec"]]
        out.extend(
            Deviation(entry["target"], s, p, " ".join(entry["reason"].split()), entry["kind"], pred, str(path), code)
            for s in specs for p in props
        )
    return out


@functools.cache
def _load(paths: tuple[str, ...]) -> tuple[Deviation, ...]:
    return tuple(d for f in _files(paths) for d in _parse(f))


def load_deviations(paths: Iterable[str | Path] | None = None) -> list[Deviation]:
    """Every registered deviation: the default files plus ``paths`` (parsed once per process)."""
    return list(_load(tuple(str(p) for p in (paths or ()))))


def matching(devs: Iterable[Deviation], target: str, spec: str, prop: str) -> list[Deviation]:
    """The entries that apply to one (target, spec, property)."""
    return [d for d in devs if d.matches(target, spec, prop)]


def match(devs: Iterable[Deviation], target: str, spec: str, prop: str) -> Deviation | None:
    """The first entry without a region that applies to one (target, spec, property)."""
    return next((d for d in matching(devs, target, spec, prop) if d.where is None), None)
