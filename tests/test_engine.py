"""Tests of the engine itself: targets, runner, repro, deviations, report, CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import torch

from conformance import tolerances
from conformance.catalogue import get_spec, load_specs
from conformance.replay import replay
from conformance.runner import run_property
from conformance.select import resolve_targets
from conformance.spec import Category

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "conformance" / "report" / "schema.json").read_text())


def _run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), CI="true")
    return subprocess.run(
        [sys.executable, "-m", "conformance.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def test_every_spec_has_properties_in_known_categories_with_docstrings() -> None:
    for spec in load_specs().values():
        assert spec.properties, spec.id
        for p in spec.properties.values():
            assert isinstance(p.category, Category)
            assert p.summary and p.summary != p.name


def test_unknown_spec_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown spec 'focal'.*sigmoid_focal"):
        get_spec("focal")
    with pytest.raises(ValueError, match="--spec 'nope' is unknown"):
        resolve_targets(["reference"], ["nope"])


def test_target_resolution_binds_declared_and_explicit_specs() -> None:
    (t,) = resolve_targets(["tests.fixtures.targets:torchvision_style_focal"], [])
    assert t.spec_id == "sigmoid_focal" and t.load_error is None
    (t,) = resolve_targets(["tests.fixtures.targets:alpha_swapped_focal"], ["sigmoid_focal"])
    assert t.spec_id == "sigmoid_focal"
    with pytest.raises(ValueError, match="declares no spec: pass --spec"):
        resolve_targets(["tests.fixtures.targets:alpha_swapped_focal"], [])
    module_targets = resolve_targets(["tests.fixtures.targets"], [])
    assert {t.name for t in module_targets} == {
        "tests.fixtures.targets:torchvision_style_focal",
        "tests.fixtures.targets:good_bce",
    }


def test_unimportable_and_uncallable_targets_become_load_errors() -> None:
    (t,) = resolve_targets(["no_such_module_xyz:fn"], ["sigmoid_bce"])
    assert t.load_error and "cannot import" in t.load_error
    (t,) = resolve_targets(["tests.fixtures.targets:NOT_CALLABLE"], ["sigmoid_bce"])
    assert t.load_error and "not callable" in t.load_error
    prop = get_spec("sigmoid_bce").properties["agrees_with_numpy"]
    out = run_property(prop, t)
    assert out.status == "error" and "not callable" in out.message


def test_failing_property_records_counterexample_and_a_repro_that_reproduces(tmp_path: Path) -> None:
    prop = get_spec("sigmoid_focal").properties["agrees_with_numpy"]
    (t,) = resolve_targets(["tests.fixtures.targets:alpha_swapped_focal"], ["sigmoid_focal"])
    out = run_property(prop, t, profile="ci")
    assert out.status == "failed"
    assert out.counterexample and "torch.tensor" in out.counterexample
    assert out.repro and "replay('sigmoid_focal', 'agrees_with_numpy'" in out.repro
    script = tmp_path / "repro.py"
    script.write_text(out.repro)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode != 0
    assert "AssertionError" in res.stderr and "but should be" in res.stderr


def test_replay_passes_on_the_reference() -> None:
    ex = {"logits": torch.tensor([0.0, 3.0]), "targets": torch.tensor([1.0, 0.5]), "alpha": 0.25, "gamma": 2.0}
    replay("sigmoid_focal", "agrees_with_numpy", target="reference", example=ex)


def test_target_exception_is_an_error_outcome_not_a_crash() -> None:
    def boom(logits, targets):  # type: ignore[no-untyped-def]
        raise RuntimeError("kaboom")

    from conformance.targets import Target

    out = run_property(
        get_spec("sigmoid_bce").properties["agrees_with_numpy"], Target("boom", "sigmoid_bce", boom, "x:boom")
    )
    assert out.status == "error" and "RuntimeError: kaboom" in out.message and out.repro


def test_tolerance_overrides_carry_reasons_and_never_tighten_a_dtype() -> None:
    for key, tol in tolerances.OVERRIDES.items():
        assert tol.reason, key
    t = tolerances.tolerance("sigmoid_focal", "keras", torch.float64)
    assert t.rtol >= tolerances.DEFAULTS[torch.float32].rtol
    t16 = tolerances.tolerance("sigmoid_focal", "keras", torch.float16)
    assert t16.rtol >= tolerances.DEFAULTS[torch.float16].rtol
    # float64 comparisons of two float64 computations stay tight enough to expose a float32 path.
    for key, tol in tolerances.FLOAT64_OVERRIDES.items():
        assert tol.reason, key
        assert tolerances.tolerance("sigmoid_focal", key[1], torch.float64) == tol
        assert tol.rtol < tolerances.DEFAULTS[torch.float32].rtol / 100
    assert tolerances.tolerance("sigmoid_focal", "compile", torch.float32) == tolerances.OVERRIDES[("*", "compile")]


def test_strategies_reject_bad_arguments_with_a_fix() -> None:
    from conformance import strategies as hh

    with pytest.raises(ValueError, match="min_dims=4.*max_dims=2"):
        hh.shapes(min_dims=4, max_dims=2)
    with pytest.raises(ValueError, match="max_abs"):
        hh.logit_values(max_abs=-1.0)


def test_cli_list_shows_every_spec_with_signature() -> None:
    res = _run_cli("list", cwd=ROOT)
    assert res.returncode == 0, res.stderr
    for sid, spec in load_specs().items():
        assert f"{sid}  [" in res.stdout
        assert spec.signature in res.stdout


def test_cli_run_on_a_broken_target_fails_and_reports_it(tmp_path: Path) -> None:
    res = _run_cli(
        "run", "--target", "tests.fixtures.targets:alpha_swapped_focal", "--spec", "sigmoid_focal",
        "--report-dir", str(tmp_path), "-k", "agrees_with_numpy or seed_004", cwd=ROOT,
    )
    assert res.returncode == 1, res.stdout[-2000:] + res.stderr[-2000:]
    data = json.loads((tmp_path / "conformance.json").read_text())
    jsonschema.validate(data, SCHEMA)
    failed = {o["property"] for o in data["outcomes"] if o["status"] == "failed"}
    assert {"agrees_with_numpy", "seed_004_worked_table"} <= failed
    md = (tmp_path / "conformance.md").read_text()
    assert "agrees_with_numpy" in md and "shortest counterexample" in md


def test_known_deviation_turns_failure_into_xfail_and_flags_stale_entries(tmp_path: Path) -> None:
    devs = tmp_path / "devs.toml"
    devs.write_text(
        '[[deviation]]\ntarget = "tests.fixtures.targets:alpha_swapped_focal"\nspec = "sigmoid_focal"\n'
        'property = "agrees_with_numpy"\nkind = "convention"\nreason = "alpha weights the negatives on purpose"\n'
        '[[deviation]]\ntarget = "tests.fixtures.targets:alpha_swapped_focal"\nspec = "sigmoid_focal"\n'
        'property = "deterministic"\nkind = "defect"\nreason = "was random once"\n'
    )
    res = _run_cli(
        "run", "--target", "tests.fixtures.targets:alpha_swapped_focal", "--spec", "sigmoid_focal",
        "--report-dir", str(tmp_path), "--deviations", str(devs), "-k", "agrees_with_numpy or deterministic", cwd=ROOT,
    )
    assert res.returncode == 0, res.stdout[-2000:]
    data = json.loads((tmp_path / "conformance.json").read_text())
    status = {o["property"]: o["status"] for o in data["outcomes"]}
    assert status["agrees_with_numpy"] == "xfailed"
    assert status["deterministic"] == "xpassed"
    assert data["stale_deviations"][0]["property"] == "deterministic"


def test_pytest_target_option_runs_the_suite_in_a_foreign_project(tmp_path: Path) -> None:
    (tmp_path / "mylosses.py").write_text(
        "from impls.focal import sigmoid_bce as bce\n"
    )
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{tmp_path}", CI="true")
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "--target", "mylosses:bce", "--spec", "sigmoid_bce",
         "-k", "agrees_with_numpy", "--report-dir", str(tmp_path / "r"), "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "1 passed" in res.stdout
    data = json.loads((tmp_path / "r" / "conformance.json").read_text())
    assert [o["target"] for o in data["outcomes"]] == ["mylosses:bce"]


def test_reference_validation_errors_name_the_argument() -> None:
    from impls.focal import sigmoid_focal, weighted_sigmoid_focal

    x = torch.zeros(3)
    with pytest.raises(ValueError, match="targets must have the same shape as logits"):
        sigmoid_focal(x, torch.zeros(4))
    with pytest.raises(ValueError, match=r"targets must have values in \[0, 1\]"):
        sigmoid_focal(x, torch.full((3,), 2.0))
    with pytest.raises(ValueError, match=r"alpha must lie in \[0, 1\]"):
        sigmoid_focal(x, x, alpha=1.5)
    with pytest.raises(ValueError, match=r"gamma must lie in \[0, inf\)"):
        sigmoid_focal(x, x, gamma=-1.0)
    with pytest.raises(ValueError, match="logits must have dtype in"):
        sigmoid_focal(torch.zeros(3, dtype=torch.int64), x)
    with pytest.raises(ValueError, match="weights must have shape"):
        weighted_sigmoid_focal(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4), torch.zeros(2, 4))


def test_html_report_escapes_strings_from_targets() -> None:
    from conformance import report
    from conformance.report import html as report_html

    payload = "<script>alert(1)</script>"
    outcome = {
        "target": f"evil{payload}", "target_kind": "callable", "spec": "sigmoid_bce", "property": "agrees_with_numpy",
        "category": "oracle", "status": "failed", "summary": "s", "message": f"out={payload}", "examples": 3,
        "duration_s": 0.1, "accuracy": [], "oracle_domain": {}, "counterexample": payload, "repro": f"print('{payload}')",
        "exception": None, "deviation": None, "notes": [], "series": [],
    }
    data = report.build(outcomes=[outcome], profile="ci", seed=None, targets=["x"], specs=[])
    html = report_html.render(data)
    assert payload not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    jsonschema.validate(data, SCHEMA)


def _normalised(path: Path) -> dict:  # type: ignore[type-arg]
    data = json.loads(path.read_text())
    data.pop("generated_at")
    data.pop("duration_s")
    for o in data["outcomes"]:
        o.pop("duration_s")
    return data


def test_same_profile_and_seed_give_the_same_report(tmp_path: Path) -> None:
    args = ("run", "--target", "tests.fixtures.targets:alpha_swapped_focal", "--spec", "sigmoid_focal",
            "-k", "agrees_with_numpy or label_flip or output_dtype", "--profile", "ci")
    first, second = tmp_path / "a", tmp_path / "b"
    assert _run_cli(*args, "--report-dir", str(first), cwd=ROOT).returncode == 1
    assert _run_cli(*args, "--report-dir", str(second), cwd=ROOT).returncode == 1
    a, b = _normalised(first / "conformance.json"), _normalised(second / "conformance.json")
    assert a == b
    jsonschema.validate(json.loads((first / "conformance.json").read_text()), SCHEMA)


def test_a_hanging_target_is_an_error_outcome_and_the_run_completes(tmp_path: Path) -> None:
    res = _run_cli("run", "--target", "tests.fixtures.targets:hangs", "--spec", "sigmoid_bce", "-k", "agrees_with_numpy",
                   "--example-timeout", "0.5", "--report-dir", str(tmp_path), cwd=ROOT)
    assert res.returncode == 1, res.stdout[-2000:]
    (o,) = json.loads((tmp_path / "conformance.json").read_text())["outcomes"]
    assert o["status"] == "error" and "did not return within 0.5 s" in o["message"]


def test_a_target_returning_a_non_tensor_fails_with_a_clear_message() -> None:
    (t,) = resolve_targets(["tests.fixtures.targets:returns_a_list"], ["sigmoid_bce"])
    out = run_property(get_spec("sigmoid_bce").properties["agrees_with_numpy"], t, profile="ci")
    # (the shrunk example may be 0-d, whose tolist() is a float)
    assert out.status == "failed" and re.search(r"returned (list|float), but the canonical signature", out.message)


def test_deviation_files_list_specs_and_predicates_read_optional_arguments(tmp_path: Path) -> None:
    import numpy as np

    from conformance.deviations import load_deviations, matching

    devs = tmp_path / "devs.toml"
    devs.write_text(
        '[[deviation]]\ntarget = "lib"\nspec = ["iou_loss", "giou_loss"]\nproperty = ["a", "b_*"]\n'
        "where = \"max_abs(logits) * max(1, max_abs(get('weight', 1))) > 10\"\n"
        'kind = "defect"\nreason = "r"\n'
    )
    loaded = load_deviations([devs])
    mine = [d for d in loaded if d.source == str(devs)]
    assert sorted((d.spec, d.property) for d in mine) == [
        ("giou_loss", "a"), ("giou_loss", "b_*"), ("iou_loss", "a"), ("iou_loss", "b_*")]
    (dev,) = matching(mine, "lib", "giou_loss", "b_x")
    assert not matching(mine, "lib", "ciou_loss", "a")
    # An absent or None optional argument takes get's default; a present one its value.
    assert not dev.covers({"logits": torch.tensor([4.0])})
    assert not dev.covers({"logits": torch.tensor([4.0]), "weight": None})
    assert dev.covers({"logits": torch.tensor([4.0]), "weight": torch.tensor([3.0])})
    assert dev.covers({"logits": torch.tensor([np.float32(11.0)])})


def test_the_jax_bridge_compiles_once_per_option_set_and_falls_back_to_eager_on_value_branches() -> None:
    jnp = pytest.importorskip("jax.numpy")
    import torch

    from conformance.adapters import _bridge

    def call(scale: float, x: torch.Tensor) -> torch.Tensor:
        return _bridge.jax_call(lambda a: jnp.log1p(jnp.exp(a * scale)), x)

    x = torch.tensor([-3.0, 0.5, 40.0], dtype=torch.float64, requires_grad=True)
    _bridge._JIT_CACHE.clear()  # bounded (least recently used out): a full cache from earlier tests evicts one per entry
    before = 0
    call(2.0, x).sum().backward()
    assert x.grad is not None
    want = 2.0 * torch.sigmoid(2.0 * x.detach())
    assert torch.allclose(x.grad, want, rtol=1e-12, atol=0)
    call(2.0, x.detach())  # same code, same captured value: the same compiled computation
    assert len(_bridge._JIT_CACHE) == before + 1
    call(3.0, x.detach())  # another option value: another one
    assert len(_bridge._JIT_CACHE) == before + 2
    call(3, x.detach())  # equal but of another type (traces differently): another one
    assert len(_bridge._JIT_CACHE) == before + 3

    def branches_on_values(a: object) -> object:
        if bool(jnp.any(a > 0)):  # concrete only outside jit
            return a * 2
        return a

    y = torch.tensor([1.0, -1.0], dtype=torch.float64, requires_grad=True)
    out = _bridge.jax_call(branches_on_values, y)
    out.sum().backward()
    assert out.tolist() == [2.0, -2.0] and y.grad is not None and y.grad.tolist() == [2.0, 2.0]


def test_a_property_whose_first_examples_are_all_declined_is_not_applicable_at_once() -> None:
    from conformance.runner import DECLINED_IN_A_ROW

    # good_bce takes no weight and no pos_weight: every example of honours_pos_weight passes one.
    (t,) = resolve_targets(["tests.fixtures.targets:good_bce"], ["sigmoid_bce"])
    out = run_property(get_spec("sigmoid_bce").properties["honours_pos_weight"], t, profile="ci")
    assert out.status == "skipped", out.message
    assert f"declined each of the first {DECLINED_IN_A_ROW} examples" in out.message and "pos_weight" in out.message
    # Where it accepts some examples, the declined ones are counted and the rest judged as usual.
    out = run_property(get_spec("sigmoid_bce").properties["agrees_with_numpy"], t, profile="ci")
    assert out.status == "passed" and out.examples > DECLINED_IN_A_ROW


def test_a_region_the_target_only_declines_is_unexercised_not_stale() -> None:
    from conformance.deviations import Deviation

    # good_bce takes no weight: every example of rejects_shape_mismatch that passes one is declined (TypeError for
    # the unknown keyword), and the property, which expects an error, swallows it. No example there showed how the
    # target behaves, so the entry is not stale; an example it did compute on is.
    (t,) = resolve_targets(["tests.fixtures.targets:good_bce"], ["sigmoid_bce"])
    prop = get_spec("sigmoid_bce").properties["rejects_shape_mismatch"]
    declined = Deviation(target=t.name, spec="sigmoid_bce", property=prop.name, where="weight is not none",
                         reason="declined region", kind="convention")
    computed = Deviation(target=t.name, spec="sigmoid_bce", property=prop.name, where="get('weight') is none",
                         reason="computed region", kind="convention")
    out = run_property(prop, t, profile="ci", deviations=[declined, computed])
    states = {r["reason"]: (r["state"], r["entered"]) for r in out.deviations}
    assert states["declined region"] == ("unexercised", 0), states
    assert states["computed region"][0] == "stale" and states["computed region"][1] > 0, states
    assert out.status == "xpassed"


def test_ci_draws_do_not_depend_on_which_modules_are_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Hypothesis mixes into its draws constants harvested from the source of every "local" module
    # loaded (a project module imported on first use, the user's target module). A derandomised
    # property must draw the same examples whatever ran before it in the process.
    from conformance.select import reference_target
    from conformance.targets import Target

    spec = get_spec("sigmoid_bce")
    ref = reference_target(spec)
    seen: list[list[float]] = []

    def recording(logits: torch.Tensor, targets: torch.Tensor, **kw: object) -> torch.Tensor:
        seen.append(logits.detach().double().flatten().tolist())
        return ref.fn(logits, targets, **kw)

    def draws() -> list[list[float]]:
        seen.clear()
        t = Target("recording", "sigmoid_bce", recording, "tests:recording")
        out = run_property(spec.properties["agrees_with_numpy"], t, profile="ci", shrink=False)
        assert out.status == "passed", out.message
        return list(seen)

    before = draws()
    # A local module (outside site-packages and test folders) full of constants a logit draw can take.
    pkg = tmp_path / "constants_pool"
    pkg.mkdir()
    values = ", ".join(f"{(-1) ** k * (k + 0.5) / 7:.6f}" for k in range(400))
    (pkg / "__init__.py").write_text(f"VALUES = [{values}]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    __import__("constants_pool")
    try:
        assert draws() == before
    finally:
        sys.modules.pop("constants_pool", None)
