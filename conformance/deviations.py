"""The known-deviations registry: failures that are expected, each with its reason.

Entries live in ``known_deviations.toml`` (``--deviations PATH`` adds another
file). A matching failure is reported as ``xfailed`` with the reason, so CI stays
green while the report shows it; a matching *pass* is reported as ``xpassed``
and flagged stale (the implementation was fixed: delete the entry). Entries
that match no test of the run are listed as unmatched when their target and
spec were part of the run.
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Deviation", "load_deviations", "match", "DEFAULT_PATH"]

DEFAULT_PATH = Path(__file__).with_name("known_deviations.toml")


@dataclass(frozen=True)
class Deviation:
    target: str
    spec: str
    property: str  # a name or an fnmatch pattern; the TOML may give a list of them
    reason: str
    source: str = ""

    def matches(self, target: str, spec: str, prop: str) -> bool:
        return (
            fnmatch.fnmatchcase(target, self.target)
            and fnmatch.fnmatchcase(spec, self.spec)
            and fnmatch.fnmatchcase(prop, self.property)
        )

    @property
    def key(self) -> str:
        return f"{self.spec}::{self.property}[{self.target}]"


def load_deviations(paths: list[str | Path] | None = None) -> list[Deviation]:
    files = [DEFAULT_PATH] + [Path(p) for p in (paths or [])]
    out: list[Deviation] = []
    for f in files:
        if not f.exists():
            if f == DEFAULT_PATH:
                continue
            raise ValueError(f"--deviations {str(f)!r} does not exist")
        data = tomllib.loads(f.read_text(encoding="utf-8"))
        for i, entry in enumerate(data.get("deviation", [])):
            missing = [k for k in ("target", "spec", "property", "reason") if not entry.get(k)]
            if missing:
                raise ValueError(f"{f}: deviation #{i + 1} lacks {', '.join(missing)}; each needs target, spec, property, reason")
            props = entry["property"] if isinstance(entry["property"], list) else [entry["property"]]
            out.extend(Deviation(entry["target"], entry["spec"], p, entry["reason"].strip(), str(f)) for p in props)
    return out


def match(devs: list[Deviation], target: str, spec: str, prop: str) -> Deviation | None:
    for d in devs:
        if d.matches(target, spec, prop):
            return d
    return None
