"""The report: ``build`` gathers a run's outcomes into the versioned JSON document;
``write_all`` renders it as ``conformance.json``, ``.md`` and ``.html``.

The renderers (``markdown``, ``html``) read the document and the helpers in
``model``; nothing here imports a renderer at module level, and no renderer
imports this module.

Files are written atomically (a temporary file in the same folder, then
``os.replace``), so an interrupted run leaves the previous report intact.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
import tempfile
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

SCHEMA_VERSION = "1.1"

__all__ = ["SCHEMA_VERSION", "build", "write_all", "environment", "atomic_write"]

_LIBS = ("torch", "numpy", "hypothesis", "mpmath", "tensorflow-cpu", "tensorflow", "keras", "fvcore", "kornia", "monai", "torchvision", "pytest", "pytest-xdist")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def environment(adapted: Iterable[str] = ()) -> dict[str, Any]:
    """Python, platform, devices, and the versions of the suite's libraries and of every adapted
    library's pip distribution (``adapted``: the distributions the run's targets call)."""
    libs: dict[str, str] = {}
    for name in _LIBS:
        v = _version(name)
        if v is not None:
            libs[name] = v
    adapted_versions = {d: _version(d) or "not installed" for d in sorted(set(adapted))}
    devices = ["cpu"]
    try:
        import torch

        if torch.cuda.is_available():
            devices += [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            devices.append("mps")
    except ImportError:
        pass
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "libraries": libs,
        "adapted": adapted_versions,
        "devices": devices,
    }


def _summary(outcomes: list[dict[str, Any]]) -> dict[str, int]:
    counts = {s: 0 for s in ("passed", "failed", "error", "skipped", "xfailed", "xpassed")}
    for o in outcomes:
        counts[o["status"]] = counts.get(o["status"], 0) + 1
    counts["total"] = len(outcomes)
    return counts


def _accuracy(outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    best: dict[tuple[str, str, str], dict[str, Any]] = {}
    for o in outcomes:
        for a in o.get("accuracy", []):
            key = (o["target"], o["spec"], a["dtype"])
            cur = best.setdefault(
                key,
                {"target": o["target"], "spec": o["spec"], "dtype": a["dtype"], "against": a["against"],
                 "max_abs": 0.0, "max_rel": 0.0, "max_ulp": 0.0, "elements": 0},
            )
            for k in ("max_abs", "max_rel", "max_ulp"):
                cur[k] = max(cur[k], a[k])
            cur["elements"] += a["elements"]
    return [best[k] for k in sorted(best)]


def _mutant_summary(mutants: list[dict[str, Any]]) -> dict[str, Any]:
    by_mutant: dict[str, dict[str, Any]] = {}
    for m in mutants:
        cur = by_mutant.setdefault(
            m["mutant"], {"mutant": m["mutant"], "spec": m["spec"], "why": m.get("why", ""), "killed_by": [], "survived": []}
        )
        (cur["killed_by"] if m["killed"] else cur["survived"]).append(m["property"])
    rows = [by_mutant[k] for k in sorted(by_mutant)]
    killed = sum(1 for r in rows if r["killed_by"])
    return {
        "total": len(rows),
        "killed": killed,
        "kill_rate": (killed / len(rows)) if rows else None,
        "mutants": rows,
    }


def build(
    *,
    outcomes: Iterable[dict[str, Any]],
    mutants: Iterable[dict[str, Any]] = (),
    profile: str,
    seed: int | None,
    targets: list[str],
    specs: list[str],
    started: float | None = None,
    deviation_files: list[str] | None = None,
    options: dict[str, Any] | None = None,
    baseline: str | None = None,
    interrupted: bool = False,
) -> dict[str, Any]:
    """The report's data. ``interrupted``: the run was stopped before it finished (Ctrl-C, SIGINT from a
    time limit); the outcomes are those completed, and the report says so."""
    from conformance.report import model

    outs = sorted(outcomes, key=lambda o: (o["target"], o["spec"], o["property"]))
    env = environment(o["library"] for o in outs if o.get("library"))
    versions = {k: v for k, v in env["adapted"].items() if v != "not installed"}
    adapter_rows = model.adapters(outs, versions)
    # Each outcome's adapter details go to one table row per (target, spec), not into every outcome.
    outs = [{k: v for k, v in o.items() if k != "adapter"} for o in outs]
    found = model.findings(outs, versions)
    from conformance.deviations import load_deviations

    devs = load_deviations(deviation_files)
    seen = {(o["target"], o["spec"]) for o in outs}
    seen_props = {(o["target"], o["spec"], o["property"]) for o in outs}
    unmatched = [
        {"target": d.target, "spec": d.spec, "property": d.property, "reason": d.reason}
        for d in devs
        if any(d.matches(t, s, d.property) or (d.target == t and d.spec == s) for t, s in seen)
        and not any(d.matches(*k) for k in seen_props)
    ]
    now = _dt.datetime.now(_dt.timezone.utc)
    data = {
        "schema_version": SCHEMA_VERSION,
        "generated_at": now.isoformat(timespec="seconds"),
        "duration_s": (now.timestamp() - started) if started else None,
        "interrupted": bool(interrupted),
        "profile": profile,
        "seed": seed if profile != "ci" else "derandomized",
        "request": {"targets": targets, "specs": specs},
        "options": {"example_timeout_s": None, "hypothesis_db": None, **(options or {})},
        "environment": env,
        "summary": _summary(outs),
        "libraries": model.library_counts(found, outs, versions),
        "findings": found,
        "grid": model.grid(outs, found),
        "adapters": adapter_rows,
        "regions": model.regions(outs, _declared_regions({o["spec"] for o in outs if o.get("regions")})),
        "accuracy": _accuracy(outs),
        "stale_deviations": [
            {"target": o["target"], "spec": o["spec"], "property": o["property"], "where": d["where"],
             "kind": d["kind"], "entered": d["entered"], "reason": d["reason"]}
            for o in outs
            for d in o.get("deviations") or []
            if d["state"] == "stale"
        ],
        "unmatched_deviations": unmatched,
        "mutants": _mutant_summary(list(mutants)),
        "outcomes": outs,
    }
    if baseline:
        from conformance.report import diff

        data["diff"] = diff.against(baseline, data)
    return data


def _declared_regions(spec_ids: set[str]) -> dict[str, tuple[str, ...]]:
    """The regions each spec declares (a region never drawn is reported with 0). Only specs whose
    outcomes counted regions ask for the catalogue, so a report of plain outcomes stays cheap."""
    if not spec_ids:
        return {}
    try:
        from conformance.catalogue import get_spec
    except Exception:  # noqa: BLE001 - a report can be built where the suite cannot load
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for sid in spec_ids:
        try:
            out[sid] = tuple(get_spec(sid).regions)
        except Exception:  # noqa: BLE001 - a spec this process does not know: drawn counts only
            continue
    return out


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # backslashreplace: a lone surrogate from a target's message must not cost the report.
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_all(data: dict[str, Any], out_dir: Path) -> list[str]:
    """Write conformance.json, .md and .html (when jinja2 is importable) into ``out_dir``.

    Every text is rendered before the first file is replaced, so a renderer that
    fails leaves the whole previous report in place, not a new JSON beside an old page.
    """
    from conformance.report import markdown

    texts = {"conformance.json": json.dumps(data, indent=2, sort_keys=False, default=str) + "\n"}
    texts["conformance.md"] = markdown.render(data)
    try:
        from conformance.report import html
    except ImportError:
        pass
    else:
        texts["conformance.html"] = html.render(data)
    paths = []
    for name, text in texts.items():
        atomic_write(out_dir / name, text)
        paths.append(str(out_dir / name))
    return paths
