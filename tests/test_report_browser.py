"""The HTML report in a real headless browser (Chromium driven by Playwright).

It loads offline with no console error and no request beyond the file itself, the
library x spec grid is on the first screen at 1366x768 (also for a report of the
main job's size), the filters work (and survive a reload through the address), and
the plots render.

Needs the ``playwright`` Python package and a Chromium: ``$CONFORMANCE_CHROMIUM``,
Debian's ``chromium`` (``apt-get install -y chromium``) or Playwright's own browser
(``python -m playwright install chromium``); skipped with the reason otherwise.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance import report

VIEWPORT = {"width": 1366, "height": 768}
SCRIPT_PAYLOAD = '<script>console.error("injected")</script><img src=x onerror="console.error(1)">'


def _outcome(target: str, spec: str, prop: str, status: str = "passed", **over: Any) -> dict[str, Any]:
    o: dict[str, Any] = {
        "target": target, "target_kind": "adapter", "spec": spec, "property": prop, "category": "oracle",
        "status": status, "summary": "s", "message": "", "examples": 5, "duration_s": 0.1, "accuracy": [],
        "oracle_domain": {}, "counterexample": None, "repro": None, "exception": None, "deviation": None,
        "deviation_kind": None, "deviations": [], "notes": [], "series": [], "regions": {"float32": 5},
        "framework": "torch", "library": None, "diagnosis": None,
    }
    o.update(over)
    return o


def _diag(kind: str, signature: str, sentence: str) -> dict[str, Any]:
    return {"kind": kind, "signature": signature, "sentence": sentence, "figures": {"message": "m"}, "calls": 2,
            "example": {"tensors": {"logits": "float32[1]"}, "options": {"alpha": 0.25}}}


def _small_report() -> dict[str, Any]:
    xs = [-100.0 + 10 * i for i in range(21)]
    series = [{"chart": "sigmoid_focal: loss vs logit", "label": "", "x": xs, "y": [abs(x) for x in xs],
               "xscale": "symlog", "yscale": "symlog", "xlabel": "logit x", "ylabel": "loss"},
              {"chart": "sigmoid_focal: error in ULP vs logit", "label": "", "x": xs, "y": [0.0 if x < 0 else 2.0 for x in xs],
               "xscale": "symlog", "yscale": "log", "xlabel": "logit x", "ylabel": "ulp"}]
    outs = [
        _outcome("reference", "sigmoid_focal", "agrees_with_numpy", series=series),
        _outcome("reference", "sigmoid_bce", "agrees_with_numpy"),
        _outcome("kornia", "sigmoid_focal", "agrees_with_numpy", "xfailed", library="kornia", deviation="per term",
                 deviation_kind="convention", diagnosis=_diag("soft_targets", "soft_targets:per_term", "applies a focal factor per term"),
                 series=series),
        _outcome("kornia", "sigmoid_focal", "finite_gradients", "failed", library="kornia", message=SCRIPT_PAYLOAD,
                 counterexample="{'logits': torch.tensor([-3e38])}", repro=SCRIPT_PAYLOAD,
                 diagnosis=_diag("non_finite", "non_finite:gradient:logits:1e38", "the gradient becomes NaN " + SCRIPT_PAYLOAD)),
        _outcome("kornia", "sigmoid_bce", "agrees_with_numpy", library="kornia"),
        _outcome("keras", "sigmoid_focal", "output_dtype_and_shape", "failed", framework="tf", library="keras",
                 diagnosis=_diag("precision", "precision:dtype:->float32", "returns float32 for float64 inputs")),
        _outcome("keras", "sigmoid_bce", "agrees_with_numpy", "skipped", framework="tf", library="keras",
                 message="library 'keras' is not installed (pip install keras)"),
        _outcome("optax", "sigmoid_focal", "agrees_with_numpy", framework="jax", library="optax"),
    ]
    return report.build(outcomes=outs, profile="ci", seed=None, targets=["reference", "all-installed"], specs=[])


SPECS = ("sigmoid_bce", "sigmoid_focal", "weighted_sigmoid_focal", "smooth_l1", "weighted_smooth_l1", "l1", "mse",
         "softmax_cross_entropy", "weighted_cross_entropy", "softmax_focal", "kl_div", "giou_loss", "ssd_matching",
         "hard_negative_mining", "multibox_loss", "penalty_reduced_focal", "reg_weighted_l1", "depth_l1", "bin_rot",
         "generic_loss")


def _main_job_sized_report() -> dict[str, Any]:
    """The catalogue's 20 specs x 13 libraries, reference and seed variants (option settings among them): the grid fits."""
    libs = ["torch", "torch[huber]", "torchvision", "fvcore", "kornia", "monai", "ultralytics", "timm",
            "segmentation_models_pytorch", "torchmetrics", "effdet", "keras", "keras[from_logits=False]", "keras_cv",
            "optax"] + [f"variant:seed_quirk_{i}" for i in range(5)]
    fw = {"keras": "tf", "keras[from_logits=False]": "tf", "keras_cv": "tf", "optax": "jax"}
    outs = []
    for i, spec in enumerate(SPECS):
        outs.append(_outcome("reference", spec, "agrees_with_numpy"))
        for j, t in enumerate(libs):
            bad = (i + j) % 3 == 0
            outs.append(_outcome(t, spec, "agrees_with_numpy", "failed" if bad else "passed", framework=fw.get(t, "torch"),
                                 library=t.split("[")[0],
                                 diagnosis=_diag("alpha", f"alpha:form{j % 4}", "weights positives by 1 - alpha") if bad else None))
            if (i + j) % 4 == 0:
                outs.append(_outcome(t, spec, "honours_alpha", "xfailed", framework=fw.get(t, "torch"), deviation="c",
                                     deviation_kind="convention", diagnosis=_diag("clipping", "clipping:eps=1e-07", "clips")))
    return report.build(outcomes=outs, profile="ci", seed=None, targets=["all-installed"], specs=[])


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        pytest.skip("needs the playwright package (pip install playwright) and a Chromium (apt-get install -y chromium)")
    exe = os.environ.get("CONFORMANCE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_playwright() as pw:
        try:
            b = pw.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"]) if exe else pw.chromium.launch()
        except Error as exc:
            pytest.skip(f"no Chromium to drive (apt-get install -y chromium, or python -m playwright install chromium): "
                        f"{str(exc).splitlines()[0]}")
        yield b
        b.close()


class _Page:
    """A page on a report file, recording console messages, page errors and every request."""

    def __init__(self, browser: Any, path: Path, hash_: str = "") -> None:
        self.console: list[str] = []
        self.requests: list[str] = []
        self.page = browser.new_page(viewport=VIEWPORT)
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(path.resolve().as_uri() + hash_)

    def visible(self, selector: str) -> list[Any]:
        return [e for e in self.page.query_selector_all(selector) if e.is_visible()]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("small")
    report.write_all(_small_report(), out)
    return out / "conformance.html"


def test_the_report_loads_offline_without_console_errors(browser: Any, small: Path) -> None:
    p = _Page(browser, small)
    p.page.wait_for_load_state("load")
    assert p.console == []
    assert all(u.startswith(("file:", "data:")) for u in p.requests), p.requests
    # The target's script payload is text, not markup.
    assert SCRIPT_PAYLOAD in p.page.inner_text("#findings")


def test_the_grid_is_on_the_first_screen(browser: Any, small: Path, tmp_path: Path) -> None:
    for path in (small, _write(_main_job_sized_report(), tmp_path)):
        p = _Page(browser, path)
        box = p.page.locator("#grid table").bounding_box()
        assert box is not None
        assert box["y"] >= 0 and box["y"] + box["height"] <= VIEWPORT["height"], (path, box)
        assert box["x"] >= 0 and box["x"] + box["width"] <= VIEWPORT["width"], (path, box)
        # The per-library finding counts are the grid's header row.
        counts = p.page.locator("#library-counts").bounding_box()
        first_row = p.page.locator("#grid tbody tr").first.bounding_box()
        assert counts is not None and first_row is not None
        assert box["y"] < counts["y"] and counts["y"] + counts["height"] <= first_row["y"] + 1


def _write(data: dict[str, Any], out: Path) -> Path:
    report.write_all(data, out)
    return out / "conformance.html"


def test_the_grid_counts_causes_with_colour_and_text(browser: Any, small: Path) -> None:
    p = _Page(browser, small)
    cell = p.page.locator('#grid tr[data-spec="sigmoid_focal"] td[data-library="kornia"]')
    assert cell.inner_text() == "1 def · 1 conv"
    assert cell.get_attribute("data-state") == "new"
    colour = cell.evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour not in ("rgba(0, 0, 0, 0)", "rgb(255, 255, 255)")
    ok = p.page.locator('#grid tr[data-spec="sigmoid_bce"] td[data-library="kornia"]')
    assert ok.inner_text() == "conforms"
    assert p.page.locator('#grid tr[data-spec="sigmoid_bce"] td[data-library="keras"]').inner_text() == "not installed"
    assert [h.inner_text() for h in p.page.query_selector_all("#grid th.fw")] == ["PyTorch", "TensorFlow / Keras", "JAX"]


def test_the_filters_select_library_spec_and_status_and_survive_a_reload(browser: Any, small: Path) -> None:
    p = _Page(browser, small)
    page = p.page
    page.click("#matrix > summary")
    assert len(p.visible("#findings article.finding")) == 3
    page.select_option("#f-target", "kornia")
    cells = p.visible("#matrix td.cell")
    assert cells and {c.get_attribute("data-target") for c in cells} == {"kornia"}
    assert {a.get_attribute("data-target") for a in p.visible("#findings article.finding")} == {"kornia"}
    page.select_option("#f-spec", "sigmoid_focal")
    assert {r.get_attribute("data-spec") for r in p.visible("#matrix tbody tr")} == {"sigmoid_focal"}
    page.select_option("#f-status", "failed")
    rows = p.visible("#matrix tbody tr")
    assert [r.query_selector("td:nth-child(2)").inner_text() for r in rows] == ["finite_gradients"]
    page.select_option("#f-kind", "convention")
    assert [a.inner_text().count("per term") for a in p.visible("#findings article.finding")] == [1]
    assert page.evaluate("location.hash") == "#filter?target=kornia&spec=sigmoid_focal&kind=convention&status=failed"
    # The filtered view is an address: a reload shows the same selection.
    again = _Page(page.context.browser, small, page.evaluate("location.hash"))
    assert again.page.input_value("#f-target") == "kornia" and again.page.input_value("#f-status") == "failed"
    assert len(again.visible("#findings article.finding")) == 1
    page.click("#f-clear")
    assert len(p.visible("#findings article.finding")) == 3 and page.evaluate("location.hash") == ""
    assert p.console == []


def test_the_plots_render(browser: Any, small: Path) -> None:
    p = _Page(browser, small)
    charts = p.page.query_selector_all("#plots ~ .plots svg.chart")
    assert len(charts) == 2
    for c in charts:
        c.scroll_into_view_if_needed()
        paths = c.query_selector_all("path.series")
        assert len(paths) == 2  # reference and kornia
        assert all(path.evaluate("e => e.getBBox().width") > 100 for path in paths)
        box = c.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 150
