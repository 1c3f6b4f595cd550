"""The ``conformance`` command: ``list`` the specs, ``run`` the suite (one pytest session).

``run`` takes the same options as the pytest plugin (one table, ``conformance.options``)
and runs the targets in a pytest-xdist worker by default (``-n 1``), so a target
that ends its process, segfaults or hangs becomes an ``error`` outcome and the
run still writes its report; ``-n 0`` runs in this process instead.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
import textwrap
from collections.abc import Sequence

__all__ = ["main"]


def _cmd_list(args: argparse.Namespace) -> int:
    from conformance.catalogue import load_specs
    from conformance.generic import MISSING

    specs = load_specs()
    chosen = args.conformance_specs or sorted(specs)
    for sid in chosen:
        if sid not in specs:
            print(f"error: --spec {sid!r} is unknown; known specs: {', '.join(sorted(specs))}", file=sys.stderr)
            return 2
    for sid in chosen:
        s = specs[sid]
        print(f"{s.id}  [{s.family}]")
        print(f"  signature: {s.signature}")
        print(textwrap.fill(s.summary, width=100, initial_indent="  contract:  ", subsequent_indent="             "))
        ref = s.reference
        print(f"  reference: {ref.__module__}.{ref.__qualname__}")
        for o in s.oracles:
            req = f" (needs {', '.join(o.requires)})" if o.requires else ""
            print(f"  oracle:    {o.name:<14} {o.path}{req}; trusted on: {o.domain}")
        for v in s.variants:
            print(f"  variant:   variant:{v.name} - {v.why}")
        if s.regions:
            print(f"  regions:   {', '.join(s.regions)}")
        print(f"  properties ({len(s.properties)}):")
        for p in s.properties.values():
            req = f" [needs {', '.join(p.requires)}]" if p.requires else ""
            origin = "generic " if p.generic else ""
            print(f"    {p.category.value:<12} {origin}{p.name}{req}: {p.summary}")
        for name, why in sorted(s.opt_out.items()):
            print(f"    {'opt-out':<12} {name}: {why}")
        for name, why in sorted(MISSING.get(s.id, {}).items()):
            print(f"    {'MISSING':<12} {name}: {why}")
        print()
    return 0


def _plugin_args() -> list[str]:
    eps = importlib.metadata.entry_points(group="pytest11")
    if any(ep.value.startswith("conformance.plugin") for ep in eps):
        return []
    return ["-p", "conformance.plugin"]


def _sigint_stops_the_run() -> None:
    """A shell starts a background job (``cmd &`` in a script) with SIGINT ignored, and Python keeps an
    inherited SIG_IGN, so ``kill -INT`` or ``timeout -s INT`` would do nothing and a time limit would end
    in SIGKILL with no report. Restoring Python's handler lets SIGINT stop the run the same way from
    anywhere: pytest finishes the session and the report holds the completed outcomes, marked interrupted."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _cmd_run(args: argparse.Namespace) -> int:
    import pytest

    _sigint_stops_the_run()

    import conformance.suite as suite_mod
    from conformance.options import to_pytest_args

    extra = list(args.pytest_args or [])
    # With --tx gateways (other hosts, or popen//chdir=) xdist requires every local path
    # argument to lie under an rsync root; naming the suite by module lets each host
    # import it from its own installation instead.
    gateways = any(a == "--tx" or a.startswith("--tx=") for a in extra)
    suite = ["--pyargs", "conformance.suite"] if gateways else [suite_mod.__file__]
    # --assert=plain: checks raise their own AssertionErrors, so rewriting the imported
    # plugins' modules (Hypothesis, the suite) only costs start-up time in every worker.
    pytest_args = [*suite, "-p", "no:cacheprovider", "-p", "no:benchmark", "--assert=plain"]
    pytest_args += [f"--rootdir={os.getcwd()}", "-q", "-rfE"]
    pytest_args += _plugin_args()
    if not args.conformance_targets:
        args.conformance_targets = ["reference"]
    if args.conformance_report_dir is None:
        args.conformance_report_dir = "reports"
    pytest_args += to_pytest_args(args)
    workers = args.n if args.n is not None else ("" if gateways else "1")
    if workers == "":
        pass  # --tx gateways name the workers themselves
    elif str(workers) not in ("0", "no"):
        pytest_args += ["-n", str(workers)]
    else:
        pytest_args += ["-p", "no:xdist"]
    if args.k:
        pytest_args += ["-k", args.k]
    pytest_args += extra
    # pytest: 0 all passed (known deviations included), 1 some property failed.
    return int(pytest.main(pytest_args))


def _cmd_diff(args: argparse.Namespace) -> int:
    from conformance.report import diff

    return diff.main(args.old, args.new, fail_on=args.fail_on, out=sys.stdout)


def _parser() -> argparse.ArgumentParser:
    from conformance.options import add_to_argparse

    p = argparse.ArgumentParser(prog="conformance", description="Conformance suite for object-detection losses.")
    sub = p.add_subparsers(dest="command", required=True)
    lp = sub.add_parser("list", help="list specs with canonical signatures, oracles, properties and opt-outs")
    lp.add_argument("--spec", action="append", dest="conformance_specs", help="only this spec id (repeatable)")
    lp.set_defaults(func=_cmd_list)
    rp = sub.add_parser("run", help="run the suite on one or more targets and write reports")
    add_to_argparse(rp)
    rp.add_argument(
        "-n",
        help="pytest-xdist workers: a number or 'auto' (default 1). Targets run in worker processes, so one that "
        "exits, segfaults or hangs becomes an error outcome and the report is still written; 0 runs in this "
        "process (no isolation)",
    )
    rp.add_argument("-k", help="pytest -k expression to select properties")
    rp.add_argument("pytest_args", nargs="*", help="extra pytest arguments after --")
    rp.set_defaults(func=_cmd_run)
    dp = sub.add_parser("diff", help="new, fixed and changed findings between two conformance.json reports")
    dp.add_argument("old", help="the earlier conformance.json")
    dp.add_argument("new", help="the later conformance.json")
    dp.add_argument("--fail-on", choices=("new", "none"), default="none",
                    help="exit 1 when the later report has a finding the earlier one lacks")
    dp.set_defaults(func=_cmd_diff)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
