"""Report reliability: interrupted writes keep the previous report; runs are reproducible.

Every report produced here is validated against ``conformance/report/schema.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from conformance import report
from conformance.report import markdown as report_md

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "conformance" / "report" / "schema.json").read_text())
OLD = "previous good report\n"


def _outcome(**over: Any) -> dict[str, Any]:
    o = {
        "target": "t", "target_kind": "callable", "spec": "sigmoid_bce", "property": "agrees_with_numpy",
        "category": "oracle", "status": "passed", "summary": "s", "message": "", "examples": 3, "duration_s": 0.1,
        "accuracy": [], "oracle_domain": {}, "counterexample": None, "repro": None, "exception": None,
        "deviation": None, "notes": [], "series": [],
    }
    o.update(over)
    return o


def _data() -> dict[str, Any]:
    data = report.build(outcomes=[_outcome()], profile="ci", seed=None, targets=["t"], specs=[],
                        options={"example_timeout_s": 60.0, "hypothesis_db": None})
    jsonschema.validate(data, SCHEMA)
    return data


def _previous(out: Path) -> None:
    out.mkdir(exist_ok=True)
    for name in ("conformance.json", "conformance.md", "conformance.html"):
        (out / name).write_text(OLD)


def _unchanged(out: Path) -> bool:
    return all((out / n).read_text() == OLD for n in ("conformance.json", "conformance.md", "conformance.html"))


class _HalfThenFail:
    """A file object that writes half of what it is given, then fails (a full disk, a kill)."""

    def __init__(self, f: Any) -> None:
        self.f = f

    def write(self, text: str) -> int:
        self.f.write(text[: len(text) // 2])
        self.f.flush()
        raise OSError(28, "No space left on device")

    def __enter__(self) -> _HalfThenFail:
        return self

    def __exit__(self, *exc: object) -> None:
        self.f.close()


def test_a_write_failing_halfway_keeps_the_previous_report_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _previous(tmp_path)
    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda *a, **k: _HalfThenFail(real_fdopen(*a, **k)))
    with pytest.raises(OSError, match="No space left"):
        report.write_all(_data(), tmp_path)
    monkeypatch.undo()
    assert _unchanged(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conformance.html", "conformance.json", "conformance.md"]


def test_a_renderer_that_fails_leaves_every_previous_file_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _previous(tmp_path)

    def broken(data: dict[str, Any]) -> str:
        raise RuntimeError("renderer bug")

    monkeypatch.setattr(report_md, "render", broken)
    with pytest.raises(RuntimeError, match="renderer bug"):
        report.write_all(_data(), tmp_path)
    assert _unchanged(tmp_path)


@pytest.mark.parametrize("when", ["halfway through the temporary file", "before the rename"])
def test_a_process_killed_while_writing_keeps_the_previous_report(tmp_path: Path, when: str) -> None:
    _previous(tmp_path)
    # The writer process dies (os._exit: no cleanup, as with SIGKILL) at the given point.
    kill = {
        "halfway through the temporary file": """
            real_fdopen = os.fdopen
            class Half:
                def __init__(self, f): self.f = f
                def __enter__(self): return self
                def __exit__(self, *a): pass
                def write(self, text):
                    self.f.write(text[: len(text) // 2]); self.f.flush(); os._exit(9)
            os.fdopen = lambda *a, **k: Half(real_fdopen(*a, **k))
        """,
        "before the rename": """
            os.replace = lambda *a, **k: os._exit(9)
        """,
    }[when]
    script = textwrap.dedent("""
        import json, os, sys
        from pathlib import Path
        from conformance import report
        data = json.loads(sys.argv[2])
    """) + textwrap.dedent(kill) + textwrap.dedent("""
        report.write_all(data, Path(sys.argv[1]))
    """)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-c", script, str(tmp_path), json.dumps(_data())],
                         env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 9, res.stderr[-2000:]
    assert _unchanged(tmp_path)
    # What the dead writer left is a hidden temporary file, never a visible report.
    leftovers = [p.name for p in tmp_path.iterdir() if not p.name.startswith("conformance.")]
    assert leftovers and all(n.startswith(".conformance.json.") and n.endswith(".tmp") for n in leftovers)


def test_lone_surrogates_from_a_target_cannot_break_the_report_files(tmp_path: Path) -> None:
    data = report.build(outcomes=[_outcome(status="error", message="bad \udcff byte", target="t\udcff")],
                        profile="ci", seed=None, targets=["t"], specs=[])
    written = report.write_all(data, tmp_path)
    assert len(written) == 3
    assert "bad \\udcff byte" in (tmp_path / "conformance.md").read_text()
    jsonschema.validate(json.loads((tmp_path / "conformance.json").read_text()), SCHEMA)


def _normalised(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    jsonschema.validate(data, SCHEMA)
    for key in ("generated_at", "duration_s"):
        data.pop(key)
    data["options"].pop("hypothesis_db")
    for o in data["outcomes"]:
        o.pop("duration_s")
    return data


def test_the_same_seed_gives_the_same_report_in_one_process_and_on_two_workers(tmp_path: Path) -> None:
    # dev profile with a fixed seed, each run with its own empty example database:
    # which worker runs which property must not change any outcome.
    def run(name: str, *extra: str) -> dict[str, Any]:
        args = [sys.executable, "-m", "conformance.cli", "run", "--target", "tests.fixtures.targets:alpha_swapped_focal",
                "--spec", "sigmoid_focal", "-k", "agrees_with_numpy or label_flip or output_dtype or deterministic",
                "--profile", "dev", "--seed", "20261122", "--report-dir", str(tmp_path / name),
                "--hypothesis-db", str(tmp_path / f"db-{name}"), *extra]
        env = dict(os.environ, PYTHONPATH=str(ROOT), CI="true")
        res = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert res.returncode == 1, res.stdout[-3000:] + res.stderr[-2000:]
        return _normalised(tmp_path / name / "conformance.json")

    one, two = run("one"), run("two", "-n", "2")
    assert one == two
    assert one["seed"] == 20261122
    assert any(o["status"] == "failed" and o["counterexample"] for o in one["outcomes"])
