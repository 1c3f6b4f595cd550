"""Markdown rendering of a report (``conformance.md``), for CI logs and pull requests.

It mirrors the HTML: finding counts per library, the library x spec grid, the diff
against a baseline, the findings (one sentence each), then the full target x
property matrix folded in a ``<details>`` block, accuracy, mutants and the rest.
"""

from __future__ import annotations

from typing import Any

from conformance.report.model import FRAMEWORK_LABEL, by_spec, matrix

__all__ = ["render"]

_ICON = {"passed": "pass", "failed": "**FAIL**", "error": "**ERROR**", "skipped": "skip", "xfailed": "xfail", "xpassed": "XPASS (stale)"}
_GRID = {"conforms": "conforms", "new": "**{text}**", "defect": "{text}", "convention": "{text}", "not_covered": "_{text}_",
         "absent": ""}


def _esc(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


INTERRUPTED = ("**Interrupted:** the run was stopped before it finished (Ctrl-C or a time limit); the outcomes "
               "below are those completed, and the properties it did not reach are missing.")


def _header(data: dict[str, Any]) -> list[str]:
    s = data["summary"]
    return [
        "# Conformance report",
        "",
        f"Generated {data['generated_at']} - profile `{data['profile']}`, seed `{data['seed']}`, "
        f"schema {data['schema_version']}. {s['total']} outcomes: {s['passed']} passed, {s['failed']} failed, "
        f"{s['error']} errors, {s['xfailed']} known deviations, {s['xpassed']} stale, {s['skipped']} skipped.",
        "",
    ] + ([INTERRUPTED, ""] if data.get("interrupted") else [])


def _libraries(data: dict[str, Any]) -> list[str]:
    libs = data.get("libraries") or []
    if not libs:
        return []
    lines = ["## Findings per library", "", "| library | version | framework | findings |", "|---|---|---|---|"]
    for lib in libs:
        lines.append(f"| `{_esc(lib['library'])}` | {lib['version'] or ''} | {FRAMEWORK_LABEL.get(lib['framework'], lib['framework'])} "
                     f"| {lib['text']} |")
    lines += ["", "A finding is one cause on one target (the suite's diagnosis), however many properties it breaks.", ""]
    return lines


def _grid(data: dict[str, Any]) -> list[str]:
    g = data.get("grid")
    if not g or not g["rows"]:
        return []
    cols = g["columns"]
    lines = ["## Library x spec", ""]
    lines.append("| spec | " + " | ".join(f"`{_esc(c['library'])}` ({c['framework']})" for c in cols) + " |")
    lines.append("|---|" + "---|" * len(cols))
    for row in g["rows"]:
        cells = []
        for c in cols:
            cell = row["cells"][c["library"]]
            cells.append(_GRID.get(cell["state"], "{text}").format(text=cell.get("text", "")))
        lines.append(f"| `{row['spec']}` | " + " | ".join(cells) + " |")
    lines += ["", "Bold: a finding not in the known-deviations registry (the run fails on it).", ""]
    return lines


def _diff(data: dict[str, Any]) -> list[str]:
    d = data.get("diff")
    if d is None:
        return []
    from conformance.report.diff import render

    return ["## Against the baseline", "", render(d), ""]


def _findings(data: dict[str, Any]) -> list[str]:
    found = data.get("findings") or []
    if not found:
        return []
    lines = ["## Findings", ""]
    current = None
    for f in found:
        if f["target"] != current:
            current = f["target"]
            ver = f" {f['version']}" if f.get("version") else ""
            lines += (["", f"### `{_esc(f['target'])}`{ver}", ""] if lines[-1] else [f"### `{_esc(f['target'])}`{ver}", ""])
        tag = ("NEW " if f["state"] == "new" else "") + f["kind"]
        props = ", ".join(f"`{p}`" for p in f["properties"][:8]) + (" ..." if len(f["properties"]) > 8 else "")
        label = "cause as registered" if f.get("sentence_from") == "registry" else f["diagnosis"]["kind"]
        lines.append(f"- **{tag}** ({label}): {_esc(f['sentence'])}")
        lines.append(f"  - breaks {len(f['properties'])} propert{'y' if len(f['properties']) == 1 else 'ies'}: {props}")
        if f.get("options"):
            lines.append("  - options in force: " + ", ".join(f"{k}={v!r}" for k, v in f["options"].items()))
        if f.get("counterexample"):
            lines.append(f"  - shortest counterexample ({f['counterexample_of']}): `{_esc(f['counterexample'][:300])}`")
        for r in f.get("deviation_reasons") or []:
            lines.append(f"  - registered as: {_esc(r)}")
    lines.append("")
    return lines


def _matrix(data: dict[str, Any]) -> list[str]:
    outcomes = data["outcomes"]
    if not outcomes:
        return []
    targets, rows, cells = matrix(outcomes)
    lines = ["<details><summary>Target x property matrix (every outcome)</summary>", ""]
    lines.append("| spec | property | " + " | ".join(f"`{_esc(t)}`" for t in targets) + " |")
    lines.append("|---|---|" + "---|" * len(targets))
    for spec, props in by_spec(rows).items():
        for p in props:
            row = [f"`{spec}`", p]
            for t in targets:
                o = cells.get((spec, p, t))
                row.append(_ICON.get(o["status"], o["status"]) + (f" ({o['examples']})" if o["examples"] > 1 else "") if o else "")
            lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Cells show the status and, in brackets, the number of generated examples.", "", "</details>", ""]
    return lines


def _accuracy(data: dict[str, Any]) -> list[str]:
    if not data["accuracy"]:
        return []
    lines = ["## Accuracy against the exact oracle", "", "| target | spec | dtype | max abs | max rel | max ULP | elements |",
             "|---|---|---|---|---|---|---|"]
    for a in data["accuracy"]:
        lines.append(f"| `{_esc(a['target'])}` | `{a['spec']}` | {a['dtype']} | {a['max_abs']:.3g} | {a['max_rel']:.3g} | "
                     f"{a['max_ulp']:.3g} | {a['elements']} |")
    return lines + ["", "Max rel and ULP errors are measured on every generated input, also where the property passed.", ""]


def _mutants(data: dict[str, Any]) -> list[str]:
    mut = data["mutants"]
    if not mut["total"]:
        return []
    lines = ["## Planted mutants", "", f"Kill rate: **{mut['killed']}/{mut['total']}** ({100 * mut['kill_rate']:.1f}%).", "",
             "| mutant | spec | what is wrong | killed by |", "|---|---|---|---|"]
    for m in mut["mutants"]:
        killers = ", ".join(m["killed_by"]) or "**survived**"
        lines.append(f"| `{m['mutant']}` | `{m['spec']}` | {_esc(m['why'])} | {killers} |")
    return lines + [""]


def _environment(data: dict[str, Any]) -> list[str]:
    env = data["environment"]
    lines = ["## Environment", "", f"Python {env['python']} on {env['platform']}; devices: {', '.join(env['devices'])}.", ""]
    lines.append("Suite libraries: " + ", ".join(f"{k} {v}" for k, v in env["libraries"].items()) + ".")
    if env.get("adapted"):
        lines += ["", "Adapted libraries (pip distributions): " + ", ".join(f"{k} {v}" for k, v in env["adapted"].items()) + "."]
    return lines + [""]


def _adapters(data: dict[str, Any]) -> list[str]:
    rows = data.get("adapters") or []
    if not rows:
        return []
    lines = ["## Adapters: conventions translated", "",
             "Every translation an adapter performs between the spec's canonical call and the library's; an adapter "
             "translates and never corrects.", "", "| target | spec | library function | translations | options exercised "
             "| not covered |", "|---|---|---|---|---|---|"]
    for r in rows:
        tr = "; ".join(f"{k}: {v}" for k, v in r["translations"].items())
        nc = "; ".join(f"{k}: {v}" for k, v in r["not_covered"].items())
        lines.append(f"| `{_esc(r['target'])}` | `{r['spec']}` | `{r['function'] or ''}` | {_esc(tr)} | "
                     f"{', '.join(r['options'])} | {_esc(nc)} |")
    return lines + [""]


def _regions(data: dict[str, Any]) -> list[str]:
    regs = data.get("regions") or {}
    if not regs:
        return []
    lines = ["## Regions drawn", "", "Examples per declared region of each spec's input domain, summed over properties and "
             "targets (0: declared but never drawn).", ""]
    for spec, r in regs.items():
        lines.append(f"- `{spec}`: " + ", ".join(f"{k} {v}" for k, v in r.items()))
    return lines + [""]


def _rest(data: dict[str, Any]) -> list[str]:
    outcomes = data["outcomes"]
    lines: list[str] = []
    stale = data.get("stale_deviations") or []
    if stale:
        lines += ["## Stale deviations", "", "Registered deviations whose region was searched and nothing deviated:", ""]
        for d in stale:
            lines.append(f"- `{d['spec']}::{d['property']}` on `{_esc(d['target'])}`: {_esc(d['reason'])}")
        lines.append("")
    domains = [o for o in outcomes if any(v.get("not_asked") for v in (o.get("oracle_domain") or {}).values())]
    if domains:
        lines += ["## Oracles not asked", "", "Elements outside an oracle's trusted domain were not compared against it:", ""]
        for o in domains:
            for k, v in o["oracle_domain"].items():
                if v.get("not_asked"):
                    lines.append(f"- `{o['spec']}::{o['property']}` on `{_esc(o['target'])}`: {k} not asked for "
                                 f"{v['not_asked']} of {v['asked'] + v['not_asked']} elements")
        lines.append("")
    skipped = [o for o in outcomes if o["status"] == "skipped"]
    if skipped:
        lines += ["## Skipped", ""]
        reasons: dict[str, list[str]] = {}
        for o in skipped:
            reasons.setdefault(o["message"], []).append(f"{o['spec']}::{o['property']}[{o['target']}]")
        for reason, ids in reasons.items():
            lines.append(f"- {_esc(reason)}: " + ", ".join(f"`{i}`" for i in ids))
        lines.append("")
    return lines


def render(data: dict[str, Any]) -> str:
    lines = _header(data)
    for part in (_libraries, _grid, _diff, _findings, _matrix, _accuracy, _mutants, _environment, _adapters, _regions, _rest):
        lines += part(data)
    return "\n".join(lines)
