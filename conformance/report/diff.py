"""``conformance diff OLD.json NEW.json``: new, fixed and changed findings between two runs.

Findings are matched by id (``target::diagnosis signature``, see ``model.findings``):

- **new**: in NEW, not in OLD;
- **fixed**: in OLD, not in NEW, and NEW ran the properties it broke (they pass now);
- **changed**: the same cause with another kind, state, property set or library version,
  or an OLD finding whose properties now fail under another diagnosis (the library
  changed what it does: e.g. another clipping epsilon);
- **not rerun**: in OLD, but NEW did not run its target and spec (nothing can be said).

``--fail-on new`` (and ``conformance run --baseline OLD.json --fail-on new``) makes a
new finding fail CI. Reports from before findings existed (schema 1.0) are grouped
on the fly from their outcomes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

__all__ = ["load", "compare", "against", "render", "main"]


def load(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read {str(p)!r}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{str(p)!r} is not a conformance.json report (invalid JSON: {exc.msg}, line {exc.lineno})") from None
    if not isinstance(data, dict) or "outcomes" not in data:
        raise ValueError(f"{str(p)!r} is not a conformance.json report (no 'outcomes')")
    return data


def _findings(data: dict[str, Any]) -> list[dict[str, Any]]:
    if "findings" in data:
        return list(data["findings"])
    from conformance.report import model

    return model.findings(data["outcomes"], _versions(data))


def _versions(data: dict[str, Any]) -> dict[str, str]:
    env = data.get("environment") or {}
    out = dict(env.get("libraries") or {})
    out.update({k: v for k, v in (env.get("adapted") or {}).items() if v != "not installed"})
    return out


def _brief(f: dict[str, Any]) -> dict[str, Any]:
    return {k: f.get(k) for k in ("id", "target", "library", "version", "kind", "state", "sentence", "properties")}


def compare(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The difference between two report documents, as a JSON-able dict."""
    old_f = {f["id"]: f for f in _findings(old)}
    new_f = {f["id"]: f for f in _findings(new)}
    ran_new = {(o["target"], o["spec"], o["property"]): o["status"] for o in new["outcomes"]}
    added = [new_f[i] for i in new_f if i not in old_f]
    gone = [old_f[i] for i in old_f if i not in new_f]
    changed: list[dict[str, Any]] = []
    for i in old_f.keys() & new_f.keys():
        a, b = old_f[i], new_f[i]
        what = []
        for key in ("kind", "state", "version"):
            if a.get(key) != b.get(key):
                what.append(f"{key}: {a.get(key)} -> {b.get(key)}")
        lost, gained = sorted(set(a["properties"]) - set(b["properties"])), sorted(set(b["properties"]) - set(a["properties"]))
        if lost:
            what.append("no longer breaks " + ", ".join(lost))
        if gained:
            what.append("now also breaks " + ", ".join(gained))
        if what:
            changed.append({"id": i, "old": _brief(a), "new": _brief(b), "what": what})
    # An old cause whose properties now fail under another diagnosis: the behaviour changed.
    paired: set[str] = set()
    fixed, not_rerun = [], []
    for a in gone:
        props = {(a["target"], *p.split("::", 1)) for p in a["properties"]}
        statuses = [ran_new.get(k) for k in props]
        successor = next((b for b in added if b["id"] not in paired and b["target"] == a["target"]
                          and set(b["properties"]) & set(a["properties"])), None)
        if successor is not None:
            paired.add(successor["id"])
            changed.append({"id": a["id"], "old": _brief(a), "new": _brief(successor),
                            "what": [f"now diagnosed as: {successor['sentence']}"]})
        elif any(s is None or s == "skipped" for s in statuses):
            not_rerun.append(_brief(a))
        elif all(s in ("passed", "xpassed") for s in statuses):
            fixed.append(_brief(a))
        else:
            changed.append({"id": a["id"], "old": _brief(a), "new": None,
                            "what": ["its properties now fail or deviate under other findings"]})
    added = [b for b in added if b["id"] not in paired]
    ov, nv = _versions(old), _versions(new)
    versions = {d: {"old": ov.get(d), "new": nv.get(d)} for d in sorted(set(ov) | set(nv)) if ov.get(d) != nv.get(d)}
    unchanged = sorted((old_f.keys() & new_f.keys()) - {c["id"] for c in changed})
    return {
        "old": {"generated_at": old.get("generated_at"), "schema_version": old.get("schema_version")},
        "new_report": {"generated_at": new.get("generated_at")},
        "new": [_brief(b) for b in added],
        "fixed": fixed,
        "changed": sorted(changed, key=lambda c: c["id"]),
        "not_rerun": not_rerun,
        "unchanged": unchanged,
        "versions": versions,
    }


def against(baseline: str | Path, data: dict[str, Any]) -> dict[str, Any]:
    """``compare`` against a baseline file for ``conformance run --baseline``; an unreadable
    baseline is recorded (and shown at the top of the report), not raised."""
    try:
        old = load(baseline)
    except ValueError as exc:
        return {"error": str(exc), "new": [], "fixed": [], "changed": [], "not_rerun": [], "unchanged": [], "versions": {}}
    out = compare(old, data)
    out["old"]["path"] = str(baseline)
    return out


def render(d: dict[str, Any]) -> str:
    """Markdown text of a diff (for the terminal, a PR comment, the report)."""
    if d.get("error"):
        return f"**Baseline not compared:** {d['error']}\n"
    lines = [f"**{len(d['new'])} new, {len(d['fixed'])} fixed, {len(d['changed'])} changed** finding(s); "
             f"{len(d['unchanged'])} unchanged, {len(d['not_rerun'])} not rerun "
             f"(baseline generated {d['old'].get('generated_at')})."]
    if d["versions"]:
        lines.append("")
        lines.append("Versions: " + ", ".join(f"{k} {v['old']} -> {v['new']}" for k, v in d["versions"].items()) + ".")
    for title, key in (("New", "new"), ("Fixed", "fixed"), ("Not rerun", "not_rerun")):
        if d[key]:
            lines += ["", f"{title}:"]
            for f in d[key]:
                lines.append(f"- `{f['target']}` ({f['kind']}): {f['sentence']} [{len(f['properties'])} properties]")
    if d["changed"]:
        lines += ["", "Changed:"]
        for c in d["changed"]:
            now = c["new"] or c["old"]
            lines.append(f"- `{now['target']}`: {now['sentence']} ({'; '.join(c['what'])})")
    return "\n".join(lines) + "\n"


def main(old: str, new: str, *, fail_on: str = "none", out: TextIO = sys.stdout) -> int:
    """The ``conformance diff`` command: 0, or 1 with ``fail_on='new'`` and a new finding; 2 on bad input."""
    try:
        d = compare(load(old), load(new))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out.write(render(d))
    if fail_on == "new" and d["new"]:
        out.write(f"--fail-on new: {len(d['new'])} new finding(s)\n")
        return 1
    return 0
