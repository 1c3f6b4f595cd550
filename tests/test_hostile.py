"""Hostile targets: each misbehaviour becomes a clear outcome, and the run still reports.

Every session runs ``conformance run`` in a subprocess on targets from
``tests/hostile/targets.py`` (some end their process on purpose), then reads
``conformance.json``, which must validate against the report schema. Crash
isolation needs pytest-xdist, so the crashing targets run with ``-n``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "conformance" / "report" / "schema.json").read_text())
H = "tests.hostile.targets:"
TIMEOUT = "0.5"  # --example-timeout for every session: hangs cost half a second


def _run(report_dir: Path, targets: list[str], k: str, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    args = [sys.executable, "-m", "conformance.cli", "run", "--spec", "sigmoid_bce", "-k", k]
    for t in targets:
        args += ["--target", t if ":" in t else H + t]
    args += ["--example-timeout", TIMEOUT, "--report-dir", str(report_dir), *extra]
    env = dict(os.environ, PYTHONPATH=str(ROOT), CI="true")
    res = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    path = report_dir / "conformance.json"
    assert path.exists(), f"no report written (exit {res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    data = json.loads(path.read_text())
    jsonschema.validate(data, SCHEMA)
    return res, data


def _outcomes(data: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["target"].removeprefix(H), o["property"]): o for o in data["outcomes"]}


def _mismatches(data: dict[str, Any], expected: dict[tuple[str, str], tuple[str, str]]) -> list[str]:
    """Every expected (target, property) has that status and a message matching the pattern."""
    got = _outcomes(data)
    problems = []
    for key, (status, pattern) in expected.items():
        o = got.get(key)
        if o is None:
            problems.append(f"{key}: no outcome (have {sorted(got)})")
        elif o["status"] != status or not re.search(pattern, o["message"]):
            problems.append(f"{key}: {o['status']} {o['message'][:400]!r}; expected {status} matching {pattern!r}")
    return problems


def test_load_failures_exceptions_and_hangs_are_error_outcomes(tmp_path: Path) -> None:
    expected = {
        ("no_such_module_xyz:f", "load"): ("error", r"cannot import target 'no_such_module_xyz:f': ModuleNotFoundError"),
        ("tests.hostile.broken_import:f", "load"): ("error", r"cannot import .*RuntimeError: broken_import"),
        ("missing", "load"): ("error", r"AttributeError: module 'tests.hostile.targets' has no attribute 'missing'"),
        ("NOT_CALLABLE", "load"): ("error", r"is a int, not callable"),
        ("wrong_signature", "agrees_with_numpy"): (
            "error", r"TypeError: wrong_signature\(\) takes 1 positional argument but 2 were given "
            r"\(the canonical signature of sigmoid_bce is f\(logits"),
        ("raises", "agrees_with_numpy"): ("error", r"the target raised RuntimeError: kaboom <script>"),
        ("raises_unprintable", "agrees_with_numpy"): ("error", r"_Unprintable: <_Unprintable whose str\(\) raised ValueError>"),
        ("raises_huge", "agrees_with_numpy"): ("error", r"ValueError: \\udcffxxx.*characters cut"),
        ("exits", "agrees_with_numpy"): ("error", r"the target raised SystemExit: 3"),
        ("hangs", "agrees_with_numpy"): ("error", r"hangs did not return within 0.5 s \(per-call time limit"),
        ("sleeps", "agrees_with_numpy"): ("error", r"sleeps did not return within 0.5 s"),
        ("good", "agrees_with_numpy"): ("passed", r"^$"),
    }
    targets = [t for t, _ in expected]
    res, data = _run(tmp_path, targets, "load or agrees_with_numpy")
    assert res.returncode == 1, res.stdout[-3000:]
    assert not _mismatches(data, expected), "\n".join(_mismatches(data, expected))
    got = _outcomes(data)
    # A hang ends the property at once (no shrinking through more hangs), and its
    # counterexample is the input that actually hung.
    hang = got[("hangs", "agrees_with_numpy")]
    assert hang["examples"] == 1 and hang["exception"] == "TargetTimeout"
    assert hang["repro"] and "replay('sigmoid_bce', 'agrees_with_numpy'" in hang["repro"]
    assert len(got[("raises_huge", "agrees_with_numpy")]["message"]) < 5000
    # Markup from a target's message reaches the JSON as is, and the HTML escaped.
    html = (tmp_path / "conformance.html").read_text()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "kaboom" in (tmp_path / "conformance.md").read_text()


def test_wrong_results_mutation_and_global_state_fail_with_clear_messages(tmp_path: Path) -> None:
    expected = {
        ("wrong_shape", "output_dtype_and_shape"): ("failed", r"out.shape=\(1,.*\), but should be"),
        ("wrong_dtype", "output_dtype_and_shape"): ("failed", r"out.dtype=torch.float16, but should be torch.float(32|64)"),
        ("returns_list", "agrees_with_numpy"): ("failed", r"returned list, but the canonical signature of sigmoid_bce returns a torch.Tensor"),
        ("returns_none", "agrees_with_numpy"): ("failed", r"returned NoneType, but the canonical signature"),
        ("returns_nan", "agrees_with_numpy"): ("failed", r"out=nan, but should be .* \(numpy\)"),
        ("returns_inf", "agrees_with_numpy"): ("failed", r"out=inf, but should be .* \(numpy\)"),
        ("returns_meta", "agrees_with_numpy"): ("error", r"NotImplementedError while checking: Cannot copy out of meta tensor"),
        ("mutates_values", "inputs_not_modified"): ("failed", r"logits.* \(it was modified in place\)|logits._version went from"),
        ("mutates_version", "inputs_not_modified"): ("failed", r"logits._version went from 0 to 1: the target wrote into its input in place"),
        ("sets_default_dtype", "agrees_with_numpy"): (
            "failed", r"changed torch's global state and left it changed: default dtype torch.float32 -> torch.float64 \(restored"),
        ("disables_grad", "agrees_with_numpy"): ("failed", r"grad mode \(torch.is_grad_enabled\(\)\) True -> False \(restored"),
        # Runs after the state-changing targets: the restored state lets it pass.
        ("good", "agrees_with_numpy"): ("passed", r"^$"),
        ("good", "finite_gradients"): ("passed", r"^$"),
        ("good", "inputs_not_modified"): ("passed", r"^$"),
    }
    targets = list(dict.fromkeys(t for t, _ in expected))
    k = ("(output_dtype_and_shape and wrong_) or (inputs_not_modified and (mutates or good)) "
         "or (agrees_with_numpy and (returns_ or sets_ or disables or good)) or (finite_gradients and good)")
    res, data = _run(tmp_path, targets, k)
    assert res.returncode == 1, res.stdout[-3000:]
    assert not _mismatches(data, expected), "\n".join(_mismatches(data, expected))
    assert len(data["outcomes"]) == len(expected)
    nan = _outcomes(data)[("returns_nan", "agrees_with_numpy")]
    assert nan["counterexample"] and nan["repro"]


def test_targets_that_kill_their_worker_become_errors_and_the_run_reports(tmp_path: Path) -> None:
    died = r"the worker process died while the target ran: the target ended the process \(os._exit, a signal such as SIGKILL"
    # The second property of a crashing target is either skipped by a replacement
    # worker or crashes the other worker first: an error either way.
    later = rf"ended a worker process earlier in this session|{died}"
    expected = {
        ("os_exit", "agrees_with_numpy"): ("error", later),  # whichever property ran first died
        ("os_exit", "inputs_not_modified"): ("error", later),
        ("sigkill", "agrees_with_numpy"): ("error", died),
        ("good", "agrees_with_numpy"): ("passed", r"^$"),
    }
    k = "agrees_with_numpy or (inputs_not_modified and os_exit)"
    res, data = _run(tmp_path, ["os_exit", "sigkill", "good"], k, "-n", "2")
    assert res.returncode == 1, res.stdout[-3000:]
    assert not _mismatches(data, expected), "\n".join(_mismatches(data, expected))


def test_segfaults_and_hangs_that_ignore_sigalrm_are_recorded_with_the_workers_traceback(tmp_path: Path) -> None:
    expected = {
        ("segfaults", "agrees_with_numpy"): (
            "error", r"crashed its worker process \(Fatal Python error: Segmentation fault\)(.|\n)*line \d+ in segfaults"),
        ("hangs_ignoring_alarm", "agrees_with_numpy"): (
            "error", r"did not return within 0.5 s and did not yield to SIGALRM(.|\n)*hard limit of 2 s"
            r"(.|\n)*Timeout \(0:00:02\)(.|\n)*in hangs_ignoring_alarm"),
    }
    res, data = _run(tmp_path, ["segfaults", "hangs_ignoring_alarm"], "agrees_with_numpy", "-n", "2")
    assert res.returncode == 1, res.stdout[-3000:]
    assert not _mismatches(data, expected), "\n".join(_mismatches(data, expected))
    got = _outcomes(data)
    assert got[("hangs_ignoring_alarm", "agrees_with_numpy")]["exception"] == "TargetTimeout"
    assert got[("segfaults", "agrees_with_numpy")]["exception"] == "WorkerCrash"


def test_plain_run_isolates_exits_segfaults_and_hangs_by_default(tmp_path: Path) -> None:
    # No -n: `conformance run` puts the targets in one worker process of its own, so each of
    # these becomes an error outcome, the run goes on to the next target and writes its report.
    expected = {
        ("os_exit", "agrees_with_numpy"): ("error", r"the worker process died while the target ran"),
        ("segfaults", "agrees_with_numpy"): ("error", r"Fatal Python error: Segmentation fault"),
        ("hangs_ignoring_alarm", "agrees_with_numpy"): ("error", r"did not yield to SIGALRM"),
        ("hangs", "agrees_with_numpy"): ("error", r"did not return within 0.5 s"),
        ("good", "agrees_with_numpy"): ("passed", r"^$"),
    }
    res, data = _run(tmp_path, ["os_exit", "segfaults", "hangs_ignoring_alarm", "hangs", "good"], "agrees_with_numpy")
    assert res.returncode == 1, res.stdout[-3000:]
    assert not _mismatches(data, expected), "\n".join(_mismatches(data, expected))


def test_in_process_with_n0_a_process_kill_ends_the_run_and_keeps_the_previous_report(tmp_path: Path) -> None:
    previous = '{"previous": "report"}\n'
    (tmp_path / "conformance.json").write_text(previous)
    args = [sys.executable, "-m", "conformance.cli", "run", "--spec", "sigmoid_bce", "-k", "agrees_with_numpy",
            "--target", H + "os_exit", "--report-dir", str(tmp_path), "-n", "0"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), CI="true")
    res = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 3, res.stdout[-3000:]
    assert (tmp_path / "conformance.json").read_text() == previous
