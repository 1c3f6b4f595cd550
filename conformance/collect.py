"""Collection: every (target, spec, property) becomes a pytest item.

A test module exposes ``conformance.suite.test_conformance`` (the :data:`SUITE`
marker) to collect the suite; ``--target`` / ``--spec`` / ``--conformance`` add it
to any session. Each item runs one property on one target through
``conformance.runner.run_property`` with the deviations registered for it, and
attaches the :class:`~conformance.runner.Outcome` to its test report.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest

__all__ = ["SUITE", "ConformanceItem", "SuiteCollector", "ConformanceFailure", "item_meta"]


class _SuiteMarker:
    """Placeholder object; a module attribute holding it collects as the suite."""

    def __repr__(self) -> str:
        return "<conformance suite>"


SUITE = _SuiteMarker()


def _profile(config: pytest.Config) -> str:
    from conformance.profiles import default_profile

    return config.getoption("conformance_profile") or default_profile()


def deviations_for(config: pytest.Config) -> list[Any]:
    """The registry, parsed once per process (``conformance.deviations`` caches it)."""
    from conformance.deviations import load_deviations

    return load_deviations(config.getoption("conformance_deviations"))


class ConformanceFailure(Exception):
    def __init__(self, outcome: Any) -> None:
        super().__init__(outcome.message)
        self.outcome = outcome


def item_meta(target: Any, prop: Any) -> dict[str, Any]:
    return {
        "target": target.name,
        "target_kind": target.kind,
        "spec": target.spec_id,
        "property": prop.name if prop is not None else "load",
        "category": prop.category.value if prop is not None else "robustness",
        "summary": prop.summary if prop is not None else "the target can be imported and bound to the spec",
        "framework": target.framework,
        "library": target.library,
    }


class ConformanceItem(pytest.Item):
    def __init__(self, *, prop: Any, target: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prop = prop
        self.target = target
        self.add_marker(pytest.mark.conformance)
        if prop is not None:
            self.add_marker(getattr(pytest.mark, f"category_{prop.category.value}"))

    def setup(self) -> None:
        # Sent to the controller with the setup report, before the target runs: if the
        # worker dies during the call, the controller still knows what was running.
        self.user_properties.append(("conformance_item", item_meta(self.target, self.prop)))

    def runtest(self) -> None:
        from conformance.deviations import matching
        from conformance.runner import Outcome, run_property

        cfg = self.config
        meta = item_meta(self.target, self.prop)
        devs = matching(deviations_for(cfg), meta["target"], meta["spec"], meta["property"])
        crashed = getattr(cfg, "workerinput", {}).get("conformance_crashed", {}).get(self.target.name)
        if crashed is not None:
            outcome = Outcome(**meta, status="error", exception="WorkerCrash", message=crashed)
        elif self.prop is None:
            skipped = self.target.load_error is None and self.target.skip_reason is not None
            outcome = Outcome(**meta, status="skipped" if skipped else "error",
                              message=(self.target.skip_reason if skipped else self.target.load_error) or "not loaded")
        else:
            outcome = run_property(
                self.prop,
                self.target,
                profile=_profile(cfg),
                seed=cfg.getoption("conformance_seed"),
                database=cfg.getoption("conformance_hypothesis_db") or "default",
                deviations=devs,
            )
        self.user_properties.append(("conformance", outcome.to_dict()))
        if outcome.status in ("failed", "error"):
            raise ConformanceFailure(outcome)
        if outcome.status == "skipped":
            pytest.skip(outcome.message)
        if outcome.status == "xfailed":
            pytest.xfail(f"known deviation ({outcome.deviation_kind}): {outcome.deviation or ''}")
        if outcome.status == "xpassed":
            warnings.warn(f"stale known deviation: {outcome.id} no longer deviates where registered; remove its "
                          f"entry ({outcome.deviation or ''})", stacklevel=1)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ConformanceFailure):
            o = excinfo.value.outcome
            parts = [f"{o.id} {o.status.upper()}: {o.summary}", "", o.message]
            absorbed = [d for d in o.deviations if d["state"] == "deviated"]
            if absorbed:
                parts += ["", "Also seen, inside registered deviations: "
                          + "; ".join(f"{d['count']} example(s) where {d['where'] or 'anywhere'}" for d in absorbed)]
            if o.repro:
                parts += ["", "Shrunk counterexample, as a runnable snippet:", "", o.repro]
            return "\n".join(parts)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, self.name


class SuiteCollector(pytest.Collector):
    def collect(self) -> list[pytest.Item]:
        from conformance.catalogue import load_specs
        from conformance.select import resolve_targets

        cfg = self.config
        try:
            names = cfg.getoption("conformance_targets") or cfg.getini("conformance_targets") or ["reference"]
            targets = resolve_targets(names, cfg.getoption("conformance_specs"))
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None
        specs = load_specs()
        items: list[pytest.Item] = []
        for t in targets:
            if t.load_error is not None or t.skip_reason is not None:
                items.append(ConformanceItem.from_parent(self, name=f"{t.spec_id}::load[{t.name}]", prop=None, target=t))
                continue
            for prop in specs[t.spec_id].properties.values():
                items.append(ConformanceItem.from_parent(self, name=f"{prop.id}[{t.name}]", prop=prop, target=t))
        return items
