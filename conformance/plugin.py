"""The pytest plugin: properties become test items; outcomes become a report.

Registered through the ``pytest11`` entry point, so ``pytest --target mymod:fn
--spec sigmoid_focal`` works in any project once the package is installed. The
suite enters a session in one of two ways: a test module exposes
``conformance.suite.test_conformance`` (our ``tests/test_conformance.py`` does),
or ``--target`` / ``--spec`` / ``--conformance`` is given, in which case the
suite's items are added to the session.

Workers (pytest-xdist) run the properties and attach each :class:`Outcome` to
its test report; the controller gathers them and writes the report once.

Crash isolation needs xdist (``-n 1`` or more): a target that ends its process
(``os._exit``, SIGKILL, a segfault, a hang SIGALRM cannot interrupt) takes its
worker down; xdist reports the item as crashed and starts a new worker, and the
controller turns the crash into an ``error`` outcome from the item's metadata,
which each worker sends ahead in its setup report. Replacement workers are told
which targets crashed and do not run those targets' remaining properties.
Without xdist such a target ends the whole run and no report is written.
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
    g.addoption(
        "--hypothesis-db",
        default=None,
        dest="conformance_hypothesis_db",
        metavar="PATH|URL",
        help="shared Hypothesis example database: a directory (e.g. on a shared file system) or "
        "redis://host:port; counterexamples found by any worker or host are replayed first everywhere",
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
    else:
        if config.getoption("conformance_seed") is None and _profile(config) != "ci":
            config.option.conformance_seed = random.randrange(2**32)
        _check_hypothesis_db(config)


def _check_hypothesis_db(config: pytest.Config) -> None:
    """Fail at start-up, once, on a database the workers could not use."""
    location = config.getoption("conformance_hypothesis_db")
    if not location:
        return
    from conformance.profiles import open_database, redact_url

    if "://" not in location:
        # Workers started elsewhere (popen//chdir=..., xdist's rsync) must see the same folder.
        location = str(Path(config.invocation_params.dir, location).expanduser().resolve())
        config.option.conformance_hypothesis_db = location
    try:
        db = open_database(location)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    client = getattr(db, "redis", None)
    if client is not None:
        try:
            client.ping()
        except Exception as exc:  # noqa: BLE001 - any failure to connect is a usage error
            raise pytest.UsageError(
                f"--hypothesis-db {redact_url(location)!r}: cannot reach the redis server ({type(exc).__name__}: {exc})"
            ) from None


_CRASH_DIR = pytest.StashKey[str]()
_CRASHED = pytest.StashKey[dict[str, str]]()  # target name -> why it is not run any more
_PENDING = pytest.StashKey[dict[str, dict[str, Any]]]()  # nodeid -> metadata of a started item
_NOTE_FILE: list[Any] = []  # keeps the worker's crash-note file open for faulthandler


def _arm_crash_notes(config: pytest.Config) -> None:
    """In a worker: fatal signals and hard-limit kills leave a traceback the controller reads."""
    import faulthandler
    import threading

    from conformance import targets

    crash_dir = config.workerinput.get("conformance_crash_dir")  # type: ignore[attr-defined]
    if not crash_dir or float(config.getini("faulthandler_timeout") or 0) > 0:
        # pytest's own faulthandler_timeout uses the same single watchdog; leave it to the user's setting.
        return
    try:
        f = open(Path(crash_dir) / f"{config.workerinput['workerid']}.txt", "w")  # type: ignore[attr-defined]  # noqa: SIM115
    except OSError:
        return  # e.g. a remote host (--tx ssh=...) that cannot see the controller's folder
    # The hard limit's dump lists every thread; this line tells the controller which is the main one.
    f.write(f"conformance: main thread 0x{threading.main_thread().ident or 0:016x}\n")
    f.flush()
    _NOTE_FILE.append(f)
    faulthandler.enable(file=f, all_threads=False)
    targets.HARD_KILL_FILE = f


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    cfg = node.config
    node.workerinput["conformance_seed"] = cfg.getoption("conformance_seed")
    if _CRASH_DIR not in cfg.stash:
        import tempfile

        cfg.stash[_CRASH_DIR] = tempfile.mkdtemp(prefix="conformance-crash-notes-")
    node.workerinput["conformance_crash_dir"] = cfg.stash[_CRASH_DIR]
    # A replacement worker learns which targets already crashed a worker.
    node.workerinput["conformance_crashed"] = dict(cfg.stash.get(_CRASHED, {}))


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

    def _meta(self) -> dict[str, Any]:
        return {
            "target": self.target.name,
            "target_kind": self.target.kind,
            "spec": self.target.spec_id,
            "property": self.prop.name if self.prop is not None else "load",
            "category": self.prop.category.value if self.prop is not None else "robustness",
            "summary": self.prop.summary if self.prop is not None else "the target can be imported and bound to the spec",
        }

    def setup(self) -> None:
        # Sent to the controller with the setup report, before the target runs: if the
        # worker dies during the call, the controller still knows what was running.
        self.user_properties.append(("conformance_item", self._meta()))

    def runtest(self) -> None:
        from conformance.deviations import load_deviations, match
        from conformance.runner import Outcome, run_property

        cfg = self.config
        crashed = getattr(cfg, "workerinput", {}).get("conformance_crashed", {}).get(self.target.name)
        if crashed is not None:
            outcome = Outcome(**self._meta(), status="error", exception="WorkerCrash", message=crashed)
        elif self.prop is None:
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
                self.prop,
                self.target,
                profile=_profile(cfg),
                seed=cfg.getoption("conformance_seed"),
                database=cfg.getoption("conformance_hypothesis_db") or "default",
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
    props = dict(getattr(report, "user_properties", ()))
    meta = props.get("conformance_item")
    pending = cfg.stash.setdefault(_PENDING, {})
    if meta is not None and report.when == "setup":
        pending[report.nodeid] = meta
    if report.when != "call":
        if report.when == "teardown":
            pending.pop(report.nodeid, None)
        return
    pending.pop(report.nodeid, None)
    if "conformance" in props:
        cfg.stash[_OUTCOMES_KEY].append(props["conformance"])
    elif meta is not None and report.failed:
        # The item failed before it produced an outcome: a fault of the suite itself.
        from conformance.targets import safe_text

        text = safe_text(getattr(report, "longreprtext", "") or report.longrepr)
        cfg.stash[_OUTCOMES_KEY].append(
            _outcome_dict(meta, message=f"the suite failed while running this property: {text}", exception="InternalError")
        )
    if "conformance_mutant" in props:
        cfg.stash[_MUTANTS_KEY].append(props["conformance_mutant"])


def _outcome_dict(meta: dict[str, Any], *, message: str, exception: str) -> dict[str, Any]:
    from conformance.runner import Outcome

    return Outcome(**meta, status="error", message=message, exception=exception).to_dict()


def _crash_note(cfg: pytest.Config, worker_id: str, frames: int = 8) -> str:
    """What faulthandler wrote in the dead worker: the fatal error, or the hard limit's
    timeout, and the innermost frames of the thread that ran the target."""
    crash_dir = cfg.stash.get(_CRASH_DIR, None)
    if not crash_dir:
        return ""
    try:
        text = (Path(crash_dir) / f"{worker_id}.txt").read_text(errors="backslashreplace")
    except OSError:
        return ""
    lines = text.splitlines()
    main = lines[0].rsplit(" ", 1)[-1] if lines and lines[0].startswith("conformance: main thread") else None
    head = [ln for ln in lines[1:] if ln.startswith(("Fatal Python error", "Timeout ("))][:1]
    blocks: list[list[str]] = []
    for ln in lines[1:]:
        if ln.startswith(("Current thread", "Thread ", "Stack (")):
            blocks.append([ln])
        elif blocks and ln.startswith("  File "):
            blocks[-1].append(ln)
    chosen = next((b for b in blocks if b[0].startswith(("Current thread", "Stack (")) or (main and main in b[0])), None)
    if chosen is None and blocks:
        chosen = blocks[0]
    return "\n".join(head + (chosen[: frames + 1] if chosen else []))


@pytest.hookimpl(optionalhook=True)
def pytest_handlecrashitem(crashitem: str, report: pytest.TestReport, sched: Any) -> None:
    """On the xdist controller: a worker died while running ``crashitem``; record an outcome."""
    from conformance import targets
    from conformance.deviations import load_deviations, match

    cfg = _CONFIG.get("config")
    if cfg is None:
        return
    meta = cfg.stash.setdefault(_PENDING, {}).pop(crashitem, None)
    if meta is None:
        return  # not a conformance item, or it never reached its setup
    node = getattr(report, "node", None)
    worker = getattr(getattr(node, "gateway", None), "id", "?")
    note = _crash_note(cfg, worker)
    limit = targets.EXAMPLE_TIMEOUT_S
    if note.startswith("Timeout"):
        why = (
            f"the target did not return within {limit:g} s and did not yield to SIGALRM (a hang inside a C call, "
            f"or the signal blocked): its worker was killed at the hard limit of {targets.hard_limit(limit):g} s"
        )
        exception = "TargetTimeout"
    elif note.startswith("Fatal Python error"):
        why = f"the target crashed its worker process ({note.splitlines()[0]})"
        exception = "WorkerCrash"
    else:
        why = (
            "the worker process died while the target ran: the target ended the process "
            "(os._exit, a signal such as SIGKILL, or the out-of-memory killer)"
        )
        exception = "WorkerCrash"
    message = f"{why}; pytest-xdist replaced worker {worker}"
    if note:
        message += f". Traceback from the worker's faulthandler:\n{note}"
    outcome = _outcome_dict(meta, message=targets.safe_text(message), exception=exception)
    dev = match(load_deviations(cfg.getoption("conformance_deviations")), meta["target"], meta["spec"], meta["property"])
    if dev is not None:
        outcome["status"], outcome["deviation"] = "xfailed", dev.reason
    cfg.stash[_OUTCOMES_KEY].append(outcome)
    cfg.stash.setdefault(_CRASHED, {}).setdefault(
        meta["target"],
        f"not run: {meta['target']} ended a worker process earlier in this session "
        f"(while running {meta['spec']}::{meta['property']}), so its remaining properties are not run "
        "on the replacement workers",
    )


_CONFIG: dict[str, pytest.Config] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    _CONFIG["config"] = session.config
    if _is_worker(session.config):
        # After pytest's faulthandler plugin has pointed faulthandler at stderr in pytest_configure.
        _arm_crash_notes(session.config)
    session.config.stash[_START] = __import__("time").time()


_START = pytest.StashKey[float]()
_WRITTEN = pytest.StashKey[list[str]]()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    cfg = session.config
    if _is_worker(cfg):
        return
    if _CRASH_DIR in cfg.stash:
        import shutil

        shutil.rmtree(cfg.stash[_CRASH_DIR], ignore_errors=True)
    if cfg.getoption("conformance_no_report"):
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
        options=_run_options(cfg),
    )
    cfg.stash[_WRITTEN] = report.write_all(data, out_dir)


def _run_options(cfg: pytest.Config) -> dict[str, Any]:
    from conformance import targets
    from conformance.profiles import redact_url

    return {
        "example_timeout_s": targets.EXAMPLE_TIMEOUT_S,
        "hypothesis_db": redact_url(cfg.getoption("conformance_hypothesis_db")),
    }


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    written = config.stash.get(_WRITTEN, None)
    if written:
        terminalreporter.write_sep("-", "conformance report")
        for p in written:
            terminalreporter.write_line(f"wrote {p}")
