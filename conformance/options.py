"""The run options, declared once for both doors (the pytest plugin and the CLI).

Each :class:`Option` knows its pytest flag, its ``conformance run`` flag (where the
two differ, e.g. ``--conformance-profile`` / ``--profile``), and how a parsed CLI
value becomes pytest arguments. ``plugin.pytest_addoption`` and ``cli`` both read
:data:`OPTIONS`, so a new option is added in one place.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Option", "OPTIONS", "PROFILES", "add_to_pytest", "add_to_argparse", "to_pytest_args"]

PROFILES = ("dev", "ci", "thorough")


@dataclass(frozen=True)
class Option:
    dest: str  # the pytest config attribute (config.getoption(dest))
    pytest_flag: str
    help: str
    cli_flag: str | None = None  # None: same as pytest_flag; "" : not on the CLI
    kwargs: dict[str, Any] = field(default_factory=dict)  # type, action, choices, metavar
    repeat: bool = False  # action="append"
    default: Any = None

    @property
    def cli(self) -> str:
        return self.pytest_flag if self.cli_flag is None else self.cli_flag


OPTIONS: tuple[Option, ...] = (
    Option("conformance_targets", "--target", "implementation under test: 'reference' (default), package.module:attr, "
           "package.module, variant:NAME, 'variants', a library's adapter name, or 'all-installed'. Repeatable.",
           kwargs={"metavar": "T"}, repeat=True, default=[]),
    Option("conformance_specs", "--spec", "restrict to a spec id (see `conformance list`). Repeatable.",
           kwargs={"metavar": "ID"}, repeat=True, default=[]),
    Option("conformance_profile", "--conformance-profile", "Hypothesis profile: dev (quick, random), ci "
           "(derandomised; default under CI=true), thorough (10x the examples).", cli_flag="--profile",
           kwargs={"choices": PROFILES}),
    Option("conformance_seed", "--conformance-seed", "seed for the dev/thorough profiles", cli_flag="--seed",
           kwargs={"type": int}),
    Option("conformance_example_timeout", "--example-timeout", "per-call time limit for the target in seconds "
           "(default 60; 0 disables)", kwargs={"type": float}),
    Option("conformance_hypothesis_db", "--hypothesis-db", "shared Hypothesis example database: a directory "
           "(e.g. on a shared file system) or redis://host:port; counterexamples found by any worker or host are "
           "replayed first everywhere (docs/scaling.md)", kwargs={"metavar": "PATH|URL"}),
    Option("conformance_report_dir", "--report-dir", "where reports go (default: reports)"),
    Option("conformance_no_report", "--no-report", "do not write reports", kwargs={"action": "store_true"},
           default=False),
    Option("conformance_deviations", "--deviations", "extra known-deviations TOML file (repeatable)", repeat=True,
           default=[]),
    Option("conformance_baseline", "--baseline", "an earlier conformance.json: the report lists new, fixed and "
           "changed findings against it", kwargs={"metavar": "OLD.json"}),
    Option("conformance_fail_on", "--fail-on", "with --baseline: exit non-zero when a finding of this kind "
           "appears ('new': any new finding; 'none': never)", kwargs={"choices": ("new", "none")}, default="none"),
    Option("conformance_force", "--conformance", "add the conformance suite to this session even without "
           "--target/--spec", cli_flag="", kwargs={"action": "store_true"}, default=False),
)


def add_to_pytest(group: Any) -> None:
    for o in OPTIONS:
        kw = dict(o.kwargs)
        if o.repeat:
            kw["action"] = "append"
        group.addoption(o.pytest_flag, dest=o.dest, default=o.default, help=o.help, **kw)


def add_to_argparse(parser: argparse.ArgumentParser) -> None:
    for o in OPTIONS:
        if o.cli == "":
            continue
        kw = dict(o.kwargs)
        if o.repeat:
            kw["action"] = "append"
        parser.add_argument(o.cli, dest=o.dest, default=None, help=o.help, **kw)


def to_pytest_args(ns: argparse.Namespace, *, skip: Sequence[str] = ()) -> list[str]:
    """The pytest arguments that carry the CLI's parsed options."""
    out: list[str] = []
    for o in OPTIONS:
        if o.cli == "" or o.dest in skip:
            continue
        value = getattr(ns, o.dest, None)
        if value is None or value is False or value == []:
            continue
        if o.kwargs.get("action") == "store_true":
            out.append(o.pytest_flag)
        elif o.repeat:
            for v in value:
                out += [o.pytest_flag, str(v)]
        else:
            out += [o.pytest_flag, str(value)]
    return out
