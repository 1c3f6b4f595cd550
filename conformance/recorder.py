"""Per-property bookkeeping while Hypothesis runs a check.

The runner installs a :class:`Recorder` for the duration of one property run;
checks and assertion helpers reach it through :func:`current`. It keeps the
example being run, the calls made to the target during that example (for the
repro snippet), the number of examples, accuracy figures against exact oracles,
and counts of elements an oracle was not asked about (outside its domain).
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["Recorder", "Accuracy", "current", "active"]

_CURRENT: contextvars.ContextVar[Recorder | None] = contextvars.ContextVar("conformance_recorder", default=None)


def _snapshot(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        c = v.detach().clone()
        if v.requires_grad:
            c.requires_grad_(True)
        return c
    if isinstance(v, (list, tuple)):
        return type(v)(_snapshot(x) for x in v)
    if isinstance(v, dict):
        return {k: _snapshot(x) for k, x in v.items()}
    return v


@dataclass
class Accuracy:
    """Worst errors seen against an exact (or float64) oracle, per output dtype."""

    against: str
    dtype: str
    max_abs: float = 0.0
    max_rel: float = 0.0
    max_ulp: float = 0.0
    elements: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "against": self.against,
            "dtype": self.dtype,
            "max_abs": self.max_abs,
            "max_rel": self.max_rel,
            "max_ulp": self.max_ulp,
            "elements": self.elements,
        }


@dataclass
class Recorder:
    examples: int = 0
    example: dict[str, Any] | None = None
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)
    accuracy: dict[tuple[str, str], Accuracy] = field(default_factory=dict)
    not_asked: dict[str, int] = field(default_factory=dict)
    asked: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    series: list[dict[str, Any]] = field(default_factory=list)
    regions: dict[str, int] = field(default_factory=dict)
    pending_regions: list[str] = field(default_factory=list)
    deviated: dict[int, dict[str, Any]] = field(default_factory=dict)  # deviation index -> count, first message, example
    entered: dict[int, int] = field(default_factory=dict)  # deviation index -> examples inside its region
    # Calls of the target in the current example that gave evidence of its behaviour: a value
    # returned or an error raised, not a decline (NotImplementedError: an option it lacks).
    responded: int = 0
    # Examples the target declined with NotImplementedError (an option its library lacks): count and first message.
    not_implemented: int = 0
    not_implemented_message: str = ""

    def mark_region(self, name: str) -> None:
        """Called by strategies while drawing: the example being drawn lies in region ``name``."""
        if name not in self.pending_regions:
            self.pending_regions.append(name)

    def note(self, text: str) -> None:
        if text not in self.notes and len(self.notes) < 20:
            self.notes.append(text)

    def count_entered(self, index: int) -> None:
        self.entered[index] = self.entered.get(index, 0) + 1

    def count_deviation(self, index: int, message: str, example_source: str | None) -> None:
        cur = self.deviated.setdefault(index, {"count": 0, "message": message, "example": example_source})
        cur["count"] += 1

    def add_series(self, chart: str, label: str, x: list[float], y: list[float], **meta: Any) -> None:
        """A curve for the report's plots (NaN/inf become None in the JSON)."""

        def clean(v: float) -> float | None:
            return v if v == v and abs(v) != float("inf") else None

        self.series.append({"chart": chart, "label": label, "x": [clean(float(a)) for a in x], "y": [clean(float(b)) for b in y], **meta})

    def start_example(self, example: dict[str, Any] | None) -> None:
        self.examples += 1
        self.example = _snapshot(example) if example is not None else None
        self.calls = []
        self.responded = 0
        for name in self.pending_regions:
            self.regions[name] = self.regions.get(name, 0) + 1
        self.pending_regions = []

    def log_call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.calls.append((_snapshot(args), _snapshot(kwargs)))

    def count_domain(self, oracle: str, asked: int, not_asked: int) -> None:
        self.asked[oracle] = self.asked.get(oracle, 0) + asked
        self.not_asked[oracle] = self.not_asked.get(oracle, 0) + not_asked

    def record_accuracy(self, against: str, dtype: str, max_abs: float, max_rel: float, max_ulp: float, n: int) -> None:
        acc = self.accuracy.setdefault((against, dtype), Accuracy(against=against, dtype=dtype))
        acc.max_abs = max(acc.max_abs, max_abs)
        acc.max_rel = max(acc.max_rel, max_rel)
        acc.max_ulp = max(acc.max_ulp, max_ulp)
        acc.elements += n


def current() -> Recorder | None:
    return _CURRENT.get()


class active:
    """Context manager installing a recorder for the duration of one property run."""

    def __init__(self, rec: Recorder) -> None:
        self.rec = rec
        self._token: contextvars.Token[Recorder | None] | None = None

    def __enter__(self) -> Recorder:
        self._token = _CURRENT.set(self.rec)
        return self.rec

    def __exit__(self, *exc: object) -> None:
        assert self._token is not None
        _CURRENT.reset(self._token)
