"""The pytest plugin: properties become test items; outcomes become a report.

Registered through the ``pytest11`` entry point, so ``pytest --target mymod:fn
--spec sigmoid_focal`` works in any project once the package is installed. The
suite enters a session in one of two ways: a test module exposes
``conformance.suite.test_conformance`` (our ``tests/test_conformance.py`` does),
or ``--target`` / ``--spec`` / ``--conformance`` is given, in which case the
suite's items are added to the session.

Workers (pytest-xdist) run the properties and attach each :class:`Outcome` to
its test report; the controller gathers them and writes the report once.
"""

from __future__ import annotations

import os
import random
import warnings
from pathlib import Path
from typing import Any

import pytest

__all__ = ["SUITE", "ConformanceItem", "SuiteCollector"]


class _SuiteMarker:
    """Placeholder object; a module attribute holding it collects as the suite."""

    def __repr__(self) -> str:
        return "<conformance suite>"


SUITE = _SuiteMarker()
_OUTCOMES_KEY = pytest.StashKey[list[dict[str, Any]]]()
_MUTANTS_KEY = pytest.StashKey[list[dict[str, Any]]]()
_OPTIONS = ("conformance_targets", "conformance_specs", "conformance_force")


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("conformance", "detection-loss conformance suite")
    g.addoption(
        "--target",
        action="append",
        default=[],
        dest="conformance_targets",
        metavar="T",
        help="implementation under test: 'reference' (default), package.module:attr, package.module, "
        "variant:NAME, 'variants', an adapter name, or 'all-installed'. Repeatable.",
    )
    g.addoption(
        "--spec",
        action="append",
        default=[],
        dest="conformance_specs",
        metavar="ID",
        help="restrict to a spec id (see `conformance list`). Repeatable.",
    )
    g.addoption(
        "--conformance-profile",
        default=None,
        dest="conformance_profile",
        choices=("dev", "ci", "thorough"),
        help="Hypothesis profile: dev (quick), ci (derandomised; default under CI=true), thorough.",
    )
    g.addoption("--conformance-seed", type=int, default=None, dest="conformance_seed", help="seed for the dev/thorough profiles")
    g.addoption(
        "--example-timeout",
        type=float,
        default=None,
        dest="conformance_example_timeout",
        help="per-call time limit for the target in seconds (default 60; 0 disables)",
    )
    g.addoption("--report-dir", default=None, dest="conformance_report_dir", help="where reports go (default: reports)")
    g.addoption("--no-report", action="store_true", dest="conformance_no_report", help="do not write reports")
    g.addoption(
        "--deviations", action="append", default=[], dest="conformance_deviations", help="extra known-deviations TOML file"
    )
    parser.addini(
        "conformance_targets",
        type="args",
        default=[],
        help="default --target values when none is given on the command line (default: reference)",
    )
    g.addoption(
        "--conformance",
        action="store_true",
        dest="conformance_force",
        help="add the conformance suite to this session even without --target/--spec",
    )


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _profile(config: pytest.Config) -> str:
    from conformance.profiles import default_profile

    return config.getoption("conformance_profile") or default_profile()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "conformance: a property of the conformance suite")
    for cat in ("oracle", "equivalence", "invariance", "gradient", "matching", "reduction", "device", "robustness"):
        config.addinivalue_line("markers", f"category_{cat}: a conformance property of category {cat}")
    config.stash[_OUTCOMES_KEY] = []
    config.stash[_MUTANTS_KEY] = []
    if config.getoption("conformance_example_timeout") is not None:
        from conformance import targets

        targets.EXAMPLE_TIMEOUT_S = float(config.getoption("conformance_example_timeout"))
    if _is_worker(config):
        seed = config.workerinput.get("conformance_seed")  # type: ignore[attr-defined]
        if seed is not None:
            config.option.conformance_seed = seed
    elif config.getoption("conformance_seed") is None and _profile(config) != "ci":
        config.option.conformance_seed = random.randrange(2**32)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    node.workerinput["conformance_seed"] = node.config.getoption("conformance_seed")


class ConformanceFailure(Exception):
    def __init__(self, outcome: Any) -> None:
        super().__init__(outcome.message)
        self.outcome = outcome


class ConformanceItem(pytest.Item):
    def __init__(self, *, prop: Any, target: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prop = prop
        self.target = target
        self.add_marker(pytest.mark.conformance)
        if prop is not None:
            self.add_marker(getattr(pytest.mark, f"category_{prop.category.value}"))

    def runtest(self) -> None:
        from conformance.deviations import load_deviations, match
        from conformance.runner import Outcome, run_property

        cfg = self.config
        if self.prop is None:
            skipped = self.target.load_error is None and self.target.skip_reason is not None
            outcome = Outcome(
                target=self.target.name,
                target_kind=self.target.kind,
                spec=self.target.spec_id,
                property="load",
                category="robustness",
                status="skipped" if skipped else "error",
                summary="the target can be imported and bound to the spec",
                message=(self.target.skip_reason if skipped else self.target.load_error) or "not loaded",
            )
        else:
            outcome = run_property(
                self.prop, self.target, profile=_profile(cfg), seed=cfg.getoption("conformance_seed")
            )
        dev = match(load_deviations(cfg.getoption("conformance_deviations")), outcome.target, outcome.spec, outcome.property)
        if dev is not None:
            if outcome.status in ("failed", "error"):
                outcome.status, outcome.deviation = "xfailed", dev.reason
            elif outcome.status == "passed":
                outcome.status, outcome.deviation = "xpassed", dev.reason
        self.user_properties.append(("conformance", outcome.to_dict()))
        if outcome.status in ("failed", "error"):
            raise ConformanceFailure(outcome)
        if outcome.status == "skipped":
            pytest.skip(outcome.message)
        if outcome.status == "xfailed":
            pytest.xfail(f"known deviation: {dev.reason if dev else ''}")
        if outcome.status == "xpassed":
            warnings.warn(
                f"stale known deviation: {outcome.id} now passes; remove its entry ({dev.reason if dev else ''})",
                stacklevel=1,
            )

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ConformanceFailure):
            o = excinfo.value.outcome
            parts = [f"{o.id} {o.status.upper()}: {o.summary}", "", o.message]
            if o.repro:
                parts += ["", "Shrunk counterexample, as a runnable snippet:", "", o.repro]
            return "\n".join(parts)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, self.name


class SuiteCollector(pytest.Collector):
    def collect(self) -> list[pytest.Item]:
        from conformance.spec import load_specs
        from conformance.targets import resolve_targets

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


def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> Any:
    if obj is SUITE:
        return SuiteCollector.from_parent(collector, name=name)
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = any(config.getoption(o) for o in _OPTIONS)
    if wanted and not any(isinstance(i, ConformanceItem) for i in items):
        items.extend(SuiteCollector.from_parent(session, name="conformance").collect())


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # Runs on the xdist controller for every worker report (and in-process without xdist).
    cfg = _CONFIG.get("config")
    if cfg is None or _is_worker(cfg):
        return
    for name, value in getattr(report, "user_properties", ()):
        if name == "conformance" and report.when == "call":
            cfg.stash[_OUTCOMES_KEY].append(value)
        elif name == "conformance_mutant" and report.when == "call":
            cfg.stash[_MUTANTS_KEY].append(value)


_CONFIG: dict[str, pytest.Config] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    _CONFIG["config"] = session.config
    session.config.stash[_START] = __import__("time").time()


_START = pytest.StashKey[float]()
_WRITTEN = pytest.StashKey[list[str]]()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    cfg = session.config
    if _is_worker(cfg) or cfg.getoption("conformance_no_report"):
        return
    outcomes = cfg.stash.get(_OUTCOMES_KEY, [])
    mutants = cfg.stash.get(_MUTANTS_KEY, [])
    if not outcomes and not mutants:
        return
    from conformance import report

    out_dir = Path(cfg.getoption("conformance_report_dir") or os.environ.get("CONFORMANCE_REPORT_DIR") or "reports")
    if not out_dir.is_absolute():
        out_dir = Path(cfg.invocation_params.dir) / out_dir
    data = report.build(
        outcomes=outcomes,
        mutants=mutants,
        profile=_profile(cfg),
        seed=cfg.getoption("conformance_seed"),
        targets=cfg.getoption("conformance_targets") or cfg.getini("conformance_targets") or ["reference"],
        specs=cfg.getoption("conformance_specs"),
        started=cfg.stash.get(_START, None),
        deviation_files=cfg.getoption("conformance_deviations"),
    )
    cfg.stash[_WRITTEN] = report.write_all(data, out_dir)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    written = config.stash.get(_WRITTEN, None)
    if written:
        terminalreporter.write_sep("-", "conformance report")
        for p in written:
            terminalreporter.write_line(f"wrote {p}")
