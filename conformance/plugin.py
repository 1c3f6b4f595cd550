"""The pytest plugin: the hooks that wire the suite into a pytest session.

Registered through the ``pytest11`` entry point, so ``pytest --target mymod:fn
--spec sigmoid_focal`` works in any project once the package is installed.
What the hooks call lives by concern: the option table in ``options``,
collection and the items in ``collect``, crash forensics in ``crash``, the
report in ``conformance.report``.

Workers (pytest-xdist) run the properties and attach each outcome to its test
report; the controller gathers them and writes the report once. With xdist a
target that kills its worker becomes an ``error`` outcome (see ``crash``);
``conformance run`` uses one worker by default for that reason.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

import pytest

from conformance.collect import SUITE, ConformanceItem, SuiteCollector, deviations_for, item_meta

__all__ = ["SUITE", "ConformanceItem", "SuiteCollector", "item_meta"]

_OUTCOMES = pytest.StashKey[list[dict[str, Any]]]()
_MUTANTS = pytest.StashKey[list[dict[str, Any]]]()
_CRASH_DIR = pytest.StashKey[str]()
_CRASHED = pytest.StashKey[dict[str, str]]()  # target name -> why it is not run any more
_PENDING = pytest.StashKey[dict[str, dict[str, Any]]]()  # nodeid -> metadata of a started item
_START = pytest.StashKey[float]()
_WRITTEN = pytest.StashKey[list[str]]()
_EXIT = pytest.StashKey[int]()
_CONFIG: dict[str, pytest.Config] = {}
_WANTED = ("conformance_targets", "conformance_specs", "conformance_force")


def pytest_addoption(parser: pytest.Parser) -> None:
    from conformance.options import add_to_pytest

    add_to_pytest(parser.getgroup("conformance", "detection-loss conformance suite"))
    parser.addini(
        "conformance_targets",
        type="args",
        default=[],
        help="default --target values when none is given on the command line (default: reference)",
    )


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _profile(config: pytest.Config) -> str:
    from conformance.profiles import default_profile

    return config.getoption("conformance_profile") or default_profile()


def pytest_configure(config: pytest.Config) -> None:
    from conformance.spec import Category

    config.addinivalue_line("markers", "conformance: a property of the conformance suite")
    for cat in Category:
        config.addinivalue_line("markers", f"category_{cat.value}: a conformance property of category {cat.value}")
    config.stash[_OUTCOMES] = []
    config.stash[_MUTANTS] = []
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
    try:
        deviations_for(config)  # parsed once, here: a malformed registry is a usage error at start-up
    except (ValueError, OSError) as exc:
        raise pytest.UsageError(str(exc)) from None


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


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    from conformance import crash

    cfg = node.config
    node.workerinput["conformance_seed"] = cfg.getoption("conformance_seed")
    if _CRASH_DIR not in cfg.stash:
        cfg.stash[_CRASH_DIR] = crash.new_crash_dir()
    node.workerinput["conformance_crash_dir"] = cfg.stash[_CRASH_DIR]
    # A replacement worker learns which targets already crashed a worker.
    node.workerinput["conformance_crashed"] = dict(cfg.stash.get(_CRASHED, {}))


def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> Any:
    if obj is SUITE:
        return SuiteCollector.from_parent(collector, name=name)
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = any(config.getoption(o) for o in _WANTED)
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
        cfg.stash[_OUTCOMES].append(props["conformance"])
    elif meta is not None and report.failed:
        # The item failed before it produced an outcome: a fault of the suite itself.
        from conformance.runner import Outcome
        from conformance.targets import safe_text

        text = safe_text(getattr(report, "longreprtext", "") or report.longrepr)
        cfg.stash[_OUTCOMES].append(Outcome(**meta, status="error", exception="InternalError",
                                            message=f"the suite failed while running this property: {text}").to_dict())
    if "conformance_mutant" in props:
        cfg.stash[_MUTANTS].append(props["conformance_mutant"])


@pytest.hookimpl(optionalhook=True)
def pytest_handlecrashitem(crashitem: str, report: pytest.TestReport, sched: Any) -> None:
    """On the xdist controller: a worker died while running ``crashitem``; record an outcome."""
    from conformance import crash

    cfg = _CONFIG.get("config")
    if cfg is None:
        return
    meta = cfg.stash.setdefault(_PENDING, {}).pop(crashitem, None)
    if meta is None:
        return  # not a conformance item, or it never reached its setup
    worker = getattr(getattr(getattr(report, "node", None), "gateway", None), "id", "?")
    note = crash.note(cfg.stash.get(_CRASH_DIR, None), worker)
    cfg.stash[_OUTCOMES].append(crash.outcome_for_crash(meta, worker, note, deviations_for(cfg)))
    cfg.stash.setdefault(_CRASHED, {}).setdefault(
        meta["target"],
        f"not run: {meta['target']} ended a worker process earlier in this session "
        f"(while running {meta['spec']}::{meta['property']}), so its remaining properties are not run "
        "on the replacement workers",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    _CONFIG["config"] = session.config
    if _is_worker(session.config):
        from conformance import crash

        # After pytest's faulthandler plugin has pointed faulthandler at stderr in pytest_configure.
        wi = session.config.workerinput  # type: ignore[attr-defined]
        crash.arm(wi.get("conformance_crash_dir"), wi["workerid"],
                  pytest_watchdog=float(session.config.getini("faulthandler_timeout") or 0) > 0)
    session.config.stash[_START] = time.time()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    cfg = session.config
    if _is_worker(cfg):
        return
    if _CRASH_DIR in cfg.stash:
        import shutil

        shutil.rmtree(cfg.stash[_CRASH_DIR], ignore_errors=True)
    outcomes = cfg.stash.get(_OUTCOMES, [])
    mutants = cfg.stash.get(_MUTANTS, [])
    if cfg.getoption("conformance_no_report") or (not outcomes and not mutants):
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
        baseline=cfg.getoption("conformance_baseline"),
        interrupted=int(exitstatus) == int(pytest.ExitCode.INTERRUPTED),
    )
    cfg.stash[_WRITTEN] = report.write_all(data, out_dir)
    if cfg.getoption("conformance_fail_on") == "new" and data.get("diff", {}).get("new"):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        cfg.stash[_EXIT] = len(data["diff"]["new"])


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
    if _EXIT in config.stash:
        terminalreporter.write_line(f"--fail-on new: {config.stash[_EXIT]} new finding(s) against the baseline")
