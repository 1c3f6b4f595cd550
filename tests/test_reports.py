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

from conformance import report, signatures
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
        args = [sys.executable, "-m", "conformance.cli", "run", "--target", "tests.fixtures.planted:alpha_swapped",
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
    # The diagnosis too is reproducible (its probing budget is counted in calls, not seconds).
    assert [f["id"] for f in one["findings"]] == ["tests.fixtures.planted:alpha_swapped::alpha:swapped"]


# ---------------------------------------------------------------------------
# Findings, the grid, per-library counts, adapters, regions
# ---------------------------------------------------------------------------


def _diag(kind: str, signature: str, sentence: str, **figures: Any) -> dict[str, Any]:
    return {"kind": kind, "signature": signature, "sentence": sentence, "figures": figures, "calls": 3,
            "example": {"tensors": {"logits": "float64[2]"}, "options": {"alpha": 0.25}}}


def _bad(target: str, spec: str, prop: str, diagnosis: dict[str, Any] | None, *, status: str = "failed",
         deviation: str | None = None, kind: str | None = None, **over: Any) -> dict[str, Any]:
    over.setdefault("message", "out=1.0, but should be 2.0")
    return _outcome(target=target, target_kind="adapter", spec=spec, property=prop, status=status,
                    counterexample="{'logits': torch.tensor([1.0])}", repro="replay(...)", diagnosis=diagnosis,
                    deviation=deviation, deviation_kind=kind, **over)


_F32 = "precision:dtype:->float32"


def _keras_like() -> list[dict[str, Any]]:
    """One cause (float32 output) seen by three properties of two specs, on two option settings of one library."""
    outs = [
        _bad("keras", "sigmoid_bce", "output_dtype_and_shape", _diag("precision", _F32, "returns float32 for float64 inputs",
                                                                     input_dtype="float64", output_dtype="float32")),
        _bad("keras", "sigmoid_focal", "output_dtype_and_shape", _diag("precision", _F32, "returns float32 for float64 inputs",
                                                                       input_dtype="float64", output_dtype="float32")),
        _bad("keras", "sigmoid_focal", "low_precision_matches_float32",
             _diag("precision", _F32, "returns float32 for float16 inputs", input_dtype="float16", output_dtype="float32"),
             status="xfailed", deviation="Keras computes in floatx.", kind="defect"),
        _bad("keras[from_logits=False]", "sigmoid_focal", "output_dtype_and_shape",
             _diag("precision", _F32, "returns float32 for float64 inputs", input_dtype="float64", output_dtype="float32")),
        _bad("keras[from_logits=False]", "sigmoid_focal", "agrees_with_numpy",
             _diag("clipping", "clipping:eps=1.0e-07", "clips the probability at eps = 1e-07"),
             status="xfailed", deviation="Keras clips probabilities to [1e-7, 1 - 1e-7].", kind="convention"),
        _outcome(target="keras", spec="sigmoid_bce", property="agrees_with_numpy"),
    ]
    for o in outs:
        o.update(framework="tf", library="keras")
    return outs


def _build(outcomes: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    data = report.build(outcomes=outcomes, profile="ci", seed=None, targets=["t"], specs=[], **kw)
    jsonschema.validate(data, SCHEMA)
    return data


def test_outcomes_with_one_diagnosis_are_one_finding_across_properties_and_specs() -> None:
    data = _build(_keras_like())
    keras = [f for f in data["findings"] if f["target"] == "keras"]
    assert len(keras) == 1
    (f,) = keras
    assert f["properties"] == ["sigmoid_bce::output_dtype_and_shape", "sigmoid_focal::low_precision_matches_float32",
                               "sigmoid_focal::output_dtype_and_shape"]
    assert f["specs"] == ["sigmoid_bce", "sigmoid_focal"]
    assert f["sentence"] == "returns float32 for float16 and float64 inputs (not the input's dtype)"
    assert (f["kind"], f["state"]) == ("defect", "new")  # one of its properties is not registered
    assert f["id"] == f"keras::{_F32}"
    assert f["counterexample"] and f["repro"] and f["options"] == {"alpha": 0.25}


def test_per_library_counts_are_distinct_causes_not_properties_or_option_settings() -> None:
    data = _build(_keras_like())
    (keras,) = [lib for lib in data["libraries"] if lib["library"] == "keras"]
    # float32 output (on both option settings: one cause) and the clipping convention.
    assert (keras["defects"], keras["conventions"], keras["new"]) == (1, 1, 1)
    assert keras["targets"] == ["keras", "keras[from_logits=False]"]
    assert keras["text"] == "1 defect · 1 convention (1 unregistered)"
    assert keras["version"] == data["environment"]["adapted"]["keras"]


def test_a_registered_deviation_joins_its_outcomes_into_one_finding_even_without_a_diagnosis() -> None:
    reason = "kornia weights soft targets per term."
    outs = [
        _bad("kornia", "sigmoid_focal", "agrees_with_numpy", _diag("soft_targets", "soft_targets:per_term", "per term"),
             status="xfailed", deviation=reason, kind="convention"),
        _bad("kornia", "sigmoid_focal", "error_profile", None, status="xfailed", deviation=reason, kind="convention"),
        _bad("kornia", "sigmoid_focal", "finite_gradients", None, status="xfailed", deviation="overflow", kind="defect"),
        _bad("kornia", "sigmoid_focal", "honours_alpha", None),
        _bad("kornia", "sigmoid_focal", "honours_gamma", None),
    ]
    data = _build(outs)
    found = {tuple(f["properties"]): f for f in data["findings"]}
    soft = found[("sigmoid_focal::agrees_with_numpy", "sigmoid_focal::error_profile")]
    assert (soft["kind"], soft["state"], soft["diagnosis"]["kind"]) == ("convention", "known", "soft_targets")
    assert found[("sigmoid_focal::finite_gradients",)]["kind"] == "defect"
    # Two unexplained failures of different properties are not claimed to share a cause.
    assert ("sigmoid_focal::honours_alpha",) in found and ("sigmoid_focal::honours_gamma",) in found
    assert len(data["findings"]) == 4


def test_a_registered_finding_the_suite_cannot_explain_reads_as_its_registered_reason() -> None:
    reason = ("Inherited from torch's BCE ((1 - z) x - logsigmoid(x) cancels for x < 0): x = -4: 0.01814985 vs "
              "0.01814993. The grid property has no example to scope a region on.")
    outs = [_bad("effdet", "sigmoid_bce", p, signatures.unexplained("sigmoid_bce", p, "out=1.0, but should be 2.0"),
                 status="xfailed", deviation=reason, kind="defect") for p in ("agrees_with_exact", "error_profile")]
    outs.append(_bad("effdet", "sigmoid_bce", "honours_weight", signatures.unexplained("sigmoid_bce", "honours_weight", "x")))
    data = _build(outs)
    known = next(f for f in data["findings"] if f["state"] == "known")
    assert known["sentence_from"] == "registry" and known["diagnosis"]["kind"] == "unexplained"
    assert known["sentence"] == "Inherited from torch's BCE ((1 - z) x - logsigmoid(x) cancels for x < 0): x = -4: 0.01814985 vs 0.01814993."
    # An unregistered, unexplained failure keeps the suite's raw figures.
    new = next(f for f in data["findings"] if f["state"] == "new")
    assert new["sentence_from"] == "diagnosis" and new["sentence"].startswith("fails honours_weight: ")
    assert "(cause as registered): Inherited from torch's BCE" in report_md.render(data)


def test_errors_without_a_diagnosis_are_grouped_by_their_exception() -> None:
    # A report written before diagnoses existed: the message alone groups the missing keyword.
    msgs = ["the target raised TypeError: impl() got an unexpected keyword argument 'reduction' (the canonical ...)",
            "the target raised TypeError: impl() got an unexpected keyword argument 'weight' (the canonical ...)"]
    outs = [_bad("torch", "sigmoid_bce", p, None, status="error", message=m, exception="TypeError")
            for p, m in zip(["agrees_with_numpy", "honours_weight"], msgs)]
    (f,) = _build(outs)["findings"]
    assert f["sentence"].startswith("does not accept the canonical keywords 'reduction', 'weight'")


def test_the_grid_has_one_cell_per_spec_and_target() -> None:
    outs = _keras_like() + [
        _outcome(target="reference", spec="sigmoid_bce"), _outcome(target="reference", spec="sigmoid_focal"),
        _outcome(target="monai", spec="sigmoid_focal", status="skipped", library="monai",
                 message="library 'monai' is not installed (pip install monai)"),
        _outcome(target="jaxlib", spec="sigmoid_focal", framework="jax"),
    ]
    g = _build(outs)["grid"]
    # One column per library (keras's two option settings together), grouped by framework.
    assert [(c["library"], c["framework"]) for c in g["columns"]] == [
        ("reference", "torch"), ("monai", "torch"), ("keras", "tf"), ("jaxlib", "jax")]
    assert g["columns"][2]["targets"] == ["keras", "keras[from_logits=False]"]
    cells = {(r["spec"], lib): c for r in g["rows"] for lib, c in r["cells"].items()}
    assert cells[("sigmoid_bce", "reference")]["state"] == "conforms"
    assert cells[("sigmoid_focal", "monai")]["text"] == "not installed"
    assert cells[("sigmoid_bce", "monai")]["state"] == "absent"
    assert cells[("sigmoid_bce", "keras")]["state"] == "new" and cells[("sigmoid_bce", "keras")]["text"] == "1 defect"
    # The float32 output of both settings is one cause; the clipping convention is the other.
    assert (cells[("sigmoid_focal", "keras")]["state"], cells[("sigmoid_focal", "keras")]["text"]) == ("new", "1 def · 1 conv")


def test_adapters_regions_and_versions_are_reported() -> None:
    adapter = {"translations": {"function": "torchvision.ops.sigmoid_focal_loss", "alpha": "None -> -1"},
               "options": ["alpha", "gamma"], "not_covered": {"reduction": "spec reduces itself"}}
    outs = [_outcome(target="torchvision", spec="sigmoid_focal", property=p, library="torchvision", adapter=adapter,
                     regions={"float32": 3, "soft targets": 2})
            for p in ("agrees_with_numpy", "deterministic")]
    outs.append(_outcome(target="ghost", spec="sigmoid_focal", library="ghost-distribution-not-installed"))
    data = _build(outs)
    (row,) = data["adapters"]
    assert row["function"] == "torchvision.ops.sigmoid_focal_loss"
    assert row["translations"] == {"alpha": "None -> -1"}
    assert row["options"] == ["alpha", "gamma"] and row["not_covered"] == {"reduction": "spec reduces itself"}
    assert row["version"] == data["environment"]["adapted"]["torchvision"] != "not installed"
    assert data["environment"]["adapted"]["ghost-distribution-not-installed"] == "not installed"
    regions = data["regions"]["sigmoid_focal"]
    assert (regions["float32"], regions["soft targets"]) == (6, 4)
    assert regions["saturated logits (|x| > 88)"] == 0  # declared by the spec, never drawn here
    assert all("adapter" not in o for o in data["outcomes"])


def test_markdown_and_html_put_counts_grid_and_findings_before_the_matrix(tmp_path: Path) -> None:
    data = _build(_keras_like() + [_outcome(target="reference", spec="sigmoid_focal")])
    report.write_all(data, tmp_path)
    md = (tmp_path / "conformance.md").read_text()
    order = [md.index(h) for h in ("## Findings per library", "## Library x spec", "## Findings\n", "<details><summary>Target x")]
    assert order == sorted(order)
    assert "returns float32 for float16 and float64 inputs" in md
    page = (tmp_path / "conformance.html").read_text()
    order = [page.index(h) for h in ('id="grid"', 'id="library-counts"', 'id="findings"', 'id="matrix"')]
    assert order == sorted(order)
    assert page.count('class="finding ') == len(data["findings"])


# ---------------------------------------------------------------------------
# conformance diff
# ---------------------------------------------------------------------------


def _diff_reports() -> tuple[dict[str, Any], dict[str, Any]]:
    fixed = _diag("non_finite", "non_finite:gradient:logits:1e1", "the gradient becomes NaN for logits <= -17.33")
    old = _build([
        _bad("lib", "sigmoid_focal", "finite_gradients", fixed),
        _bad("lib", "sigmoid_focal", "agrees_with_numpy", _diag("clipping", "clipping:eps=1.0e-07", "clips at 1e-07")),
        _bad("lib", "sigmoid_focal", "honours_alpha", _diag("alpha", "alpha:swapped", "alpha on the wrong class"),
             status="xfailed", deviation="swapped", kind="convention"),
        _bad("other", "sigmoid_bce", "deterministic", _diag("nondeterministic", "nondeterministic", "random")),
    ])
    new = _build([
        _outcome(target="lib", spec="sigmoid_focal", property="finite_gradients"),
        _bad("lib", "sigmoid_focal", "agrees_with_numpy", _diag("clipping", "clipping:eps=1.0e-12", "clips at 1e-12")),
        _bad("lib", "sigmoid_focal", "honours_alpha", _diag("alpha", "alpha:swapped", "alpha on the wrong class")),
        _bad("lib", "sigmoid_focal", "honours_gamma", _diag("keyword", "keyword:ignored:gamma", "ignores gamma")),
    ])
    return old, new


def test_diff_names_new_fixed_changed_and_not_rerun_findings() -> None:
    from conformance.report import diff

    d = diff.compare(*_diff_reports())
    assert [f["id"] for f in d["new"]] == ["lib::keyword:ignored:gamma"]
    assert [f["id"] for f in d["fixed"]] == ["lib::non_finite:gradient:logits:1e1"]
    assert [f["id"] for f in d["not_rerun"]] == ["other::nondeterministic"]
    changed = {c["id"]: c for c in d["changed"]}
    # Another epsilon on the same property: the behaviour changed, it is not a fix plus a new finding.
    assert changed["lib::clipping:eps=1.0e-07"]["new"]["id"] == "lib::clipping:eps=1.0e-12"
    # A registered convention that now fails unregistered.
    assert changed["lib::alpha:swapped"]["what"] == ["kind: convention -> defect", "state: known -> new"]


def test_diff_command_exit_status_and_baseline_in_a_report(tmp_path: Path) -> None:
    import io

    from conformance.report import diff

    old, new = _diff_reports()
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(new))
    out = io.StringIO()
    assert diff.main(str(tmp_path / "old.json"), str(tmp_path / "new.json"), fail_on="new", out=out) == 1
    assert "1 new, 1 fixed, 2 changed" in out.getvalue()
    assert diff.main(str(tmp_path / "old.json"), str(tmp_path / "new.json"), out=io.StringIO()) == 0
    assert diff.main(str(tmp_path / "old.json"), str(tmp_path / "old.json"), fail_on="new", out=io.StringIO()) == 0
    assert diff.main(str(tmp_path / "missing.json"), str(tmp_path / "new.json"), out=io.StringIO()) == 2
    data = _build(new["outcomes"], baseline=str(tmp_path / "old.json"))
    assert [f["id"] for f in data["diff"]["new"]] == ["lib::keyword:ignored:gamma"]
    report.write_all(data, tmp_path / "rep")
    assert "## Against the baseline" in (tmp_path / "rep" / "conformance.md").read_text()
    broken = _build(new["outcomes"], baseline=str(tmp_path / "missing.json"))
    assert "cannot read" in broken["diff"]["error"] and broken["diff"]["new"] == []


_PLANTED = {
    "v1": '''
import torch
def focal(logits, targets, *, alpha=0.25, gamma=2.0, reduction="none"):
    """torchvision's port: (1 - p_t) ** gamma, a nan gradient for gamma < 1 where p_t rounds to 1."""
    p = torch.sigmoid(logits)
    ce = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    loss = ce * (1 - (p * targets + (1 - p) * (1 - targets))) ** gamma
    if alpha is not None:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss if reduction == "none" else (loss.sum() if reduction == "sum" else loss.mean())
''',
    "v2": '''
from impls.focal import sigmoid_focal as focal
''',
}


def test_diff_of_a_target_and_its_fixed_version_shows_the_finding_as_fixed(tmp_path: Path) -> None:
    # The same target name (planted_focal:focal) from two releases, as after upgrading a library.
    def run(version: str, *extra: str) -> subprocess.CompletedProcess[str]:
        pkg = tmp_path / version
        pkg.mkdir(exist_ok=True)
        (pkg / "planted_focal.py").write_text(_PLANTED[version])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(pkg), str(ROOT)]), CI="true")
        args = [sys.executable, "-m", "conformance.cli", "run", "--target", "planted_focal:focal", "--spec", "sigmoid_focal",
                "-k", "finite_gradients", "-n", "0", "--report-dir", str(tmp_path / f"rep-{version}"), *extra]
        return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)

    assert run("v1").returncode == 1
    v1, v2 = (str(tmp_path / f"rep-{v}" / "conformance.json") for v in ("v1", "v2"))
    (finding,) = json.loads(Path(v1).read_text())["findings"]
    assert finding["diagnosis"]["kind"] == "non_finite"
    # In one step: the fixed release against the old one's report.
    fixed = run("v2", "--baseline", v1, "--fail-on", "new")
    assert fixed.returncode == 0, fixed.stdout[-2000:] + fixed.stderr[-2000:]
    d = json.loads(Path(v2).read_text())["diff"]
    assert [f["id"] for f in d["fixed"]] == [finding["id"]] and d["new"] == []
    # And with the diff command, the other way round: the old release's defect is new against the fixed one.
    res = subprocess.run([sys.executable, "-m", "conformance.cli", "diff", v2, v1, "--fail-on", "new"], cwd=ROOT,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=120)
    assert res.returncode == 1, res.stderr
    assert "1 new, 0 fixed" in res.stdout and "becomes NaN" in res.stdout
    res = subprocess.run([sys.executable, "-m", "conformance.cli", "diff", v1, v2], cwd=ROOT,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "0 new, 1 fixed" in res.stdout, res.stdout + res.stderr


# ---------------------------------------------------------------------------
# an interrupted run
# ---------------------------------------------------------------------------


def test_an_interrupted_run_says_so_in_every_format(tmp_path: Path) -> None:
    whole = report.build(outcomes=[_outcome()], profile="ci", seed=None, targets=["t"], specs=[])
    cut = report.build(outcomes=[_outcome()], profile="ci", seed=None, targets=["t"], specs=[], interrupted=True)
    for data in (whole, cut):
        jsonschema.validate(data, SCHEMA)
    assert whole["interrupted"] is False and cut["interrupted"] is True
    for data, sub in ((whole, "whole"), (cut, "cut")):
        report.write_all(data, tmp_path / sub)
    assert "Interrupted" not in (tmp_path / "whole" / "conformance.md").read_text()
    assert 'id="interrupted"' not in (tmp_path / "whole" / "conformance.html").read_text()
    assert "**Interrupted:**" in (tmp_path / "cut" / "conformance.md").read_text()
    assert 'id="interrupted"' in (tmp_path / "cut" / "conformance.html").read_text()


def test_sigint_in_the_middle_of_a_run_writes_the_completed_outcomes_marked_interrupted(tmp_path: Path) -> None:
    import signal
    import time

    marker = tmp_path / "stalled"
    (tmp_path / "stalling_target.py").write_text(textwrap.dedent(f"""
        import time
        import torch.nn.functional as F
        CALLS = [0]

        def bce(logits, targets, *, weight=None, pos_weight=None, reduction="none"):
            CALLS[0] += 1
            if CALLS[0] > 400:  # well into the run: some properties are complete
                open({str(marker)!r}, "w").close()
                time.sleep(600)
            return F.binary_cross_entropy_with_logits(logits, targets, weight=weight, pos_weight=pos_weight,
                                                      reduction=reduction)
    """))
    out = tmp_path / "report"
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}", CI="true")
    proc = subprocess.Popen([sys.executable, "-m", "conformance.cli", "run", "--spec", "sigmoid_bce", "--target",
                             "stalling_target:bce", "-n", "0", "--report-dir", str(out)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert marker.exists(), "the target never reached its stalling call"
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    data = json.loads((out / "conformance.json").read_text())
    jsonschema.validate(data, SCHEMA)
    assert data["interrupted"] is True
    assert data["summary"]["total"] >= 1
    assert "**Interrupted:**" in (out / "conformance.md").read_text()
