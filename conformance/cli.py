"""The ``conformance`` command: ``list`` the specs, ``run`` the suite (one pytest session)."""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
import textwrap
from collections.abc import Sequence

__all__ = ["main"]


def _cmd_list(args: argparse.Namespace) -> int:
    from conformance.spec import load_specs

    specs = load_specs()
    chosen = args.spec or sorted(specs)
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
            print(f"  oracle:    {o.name:<14} {o.function}{req}; trusted on: {o.domain}")
        for v in s.variants:
            print(f"  variant:   variant:{v.name} - {v.why}")
        print(f"  properties ({len(s.properties)}):")
        for p in s.properties.values():
            req = f" [needs {', '.join(p.requires)}]" if p.requires else ""
            print(f"    {p.category.value:<12} {p.name}{req}: {p.summary}")
        print()
    return 0


def _plugin_args() -> list[str]:
    eps = importlib.metadata.entry_points(group="pytest11")
    if any(ep.value.startswith("conformance.plugin") for ep in eps):
        return []
    return ["-p", "conformance.plugin"]


def _cmd_run(args: argparse.Namespace) -> int:
    import pytest

    import conformance.suite as suite_mod

    # --assert=plain: checks raise their own AssertionErrors, so rewriting the imported
    # plugins' modules (Hypothesis, the suite) only costs start-up time in every worker.
    extra = list(args.pytest_args or [])
    # With --tx gateways (other hosts, or popen//chdir=) xdist requires every local path
    # argument to lie under an rsync root; naming the suite by module lets each host
    # import it from its own installation instead.
    gateways = any(a == "--tx" or a.startswith("--tx=") for a in extra)
    suite = ["--pyargs", "conformance.suite"] if gateways else [suite_mod.__file__]
    pytest_args = [*suite, "-p", "no:cacheprovider", "-p", "no:benchmark", "--assert=plain"]
    pytest_args += [f"--rootdir={os.getcwd()}", "-q", "-rfE"]
    pytest_args += _plugin_args()
    for t in args.target or ["reference"]:
        pytest_args += ["--target", t]
    for s in args.spec or []:
        pytest_args += ["--spec", s]
    if args.profile:
        pytest_args += ["--conformance-profile", args.profile]
    if args.seed is not None:
        pytest_args += ["--conformance-seed", str(args.seed)]
    pytest_args += ["--report-dir", args.report_dir]
    if args.example_timeout is not None:
        pytest_args += ["--example-timeout", str(args.example_timeout)]
    if args.hypothesis_db:
        pytest_args += ["--hypothesis-db", args.hypothesis_db]
    for d in args.deviations or []:
        pytest_args += ["--deviations", d]
    if args.n is not None:
        pytest_args += ["-n", str(args.n)]
    if args.k:
        pytest_args += ["-k", args.k]
    pytest_args += extra
    code = int(pytest.main(pytest_args))
    # pytest: 0 all passed (known deviations included), 1 some property failed.
    return code


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="conformance", description="Conformance suite for object-detection losses.")
    sub = p.add_subparsers(dest="command", required=True)
    lp = sub.add_parser("list", help="list specs with canonical signatures, oracles and properties")
    lp.add_argument("--spec", action="append", help="only this spec id (repeatable)")
    lp.set_defaults(func=_cmd_list)
    rp = sub.add_parser("run", help="run the suite on one or more targets and write reports")
    rp.add_argument("--target", action="append", help="reference (default), package.module:attr, package.module, variant:NAME, variants, adapter name; repeatable")
    rp.add_argument("--spec", action="append", help="spec id (repeatable); default: every spec the targets implement")
    rp.add_argument("--profile", choices=("dev", "ci", "thorough"), help="Hypothesis profile (default: ci under CI=true, else dev)")
    rp.add_argument("--seed", type=int, help="seed for the dev/thorough profiles")
    rp.add_argument("--report-dir", default="reports", help="directory for conformance.json/.md (default: reports)")
    rp.add_argument("--example-timeout", type=float, help="per-call time limit for the target in seconds (default 60; 0 disables)")
    rp.add_argument(
        "--hypothesis-db",
        metavar="PATH|URL",
        help="shared Hypothesis example database (directory or redis://host:port): counterexamples found "
        "on any worker or host are replayed first by every run (see docs/scaling.md)",
    )
    rp.add_argument("--deviations", action="append", help="extra known-deviations TOML file (repeatable)")
    rp.add_argument(
        "-n",
        help="pytest-xdist workers (a number or 'auto'). Without it the run is one process: a target that "
        "kills its process (os._exit, a segfault) ends the run without a report; with -n 1 or more the "
        "worker is replaced and the crash becomes an error outcome",
    )
    rp.add_argument("-k", help="pytest -k expression to select properties")
    rp.add_argument("pytest_args", nargs="*", help="extra pytest arguments after --")
    rp.set_defaults(func=_cmd_run)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
