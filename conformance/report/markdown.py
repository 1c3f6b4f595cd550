"""Markdown rendering of a report (``conformance.md``)."""

from __future__ import annotations

from typing import Any

from conformance.report.model import by_spec, matrix

__all__ = ["render"]

_ICON = {"passed": "pass", "failed": "**FAIL**", "error": "**ERROR**", "skipped": "skip", "xfailed": "xfail", "xpassed": "XPASS (stale)"}


def _esc(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(data: dict[str, Any]) -> str:
    s = data["summary"]
    env = data["environment"]
    lines = [
        "# Conformance report",
        "",
        f"Generated {data['generated_at']} - profile `{data['profile']}`, seed `{data['seed']}`, "
        f"schema {data['schema_version']}.",
        "",
        f"**{s['passed']} passed, {s['failed']} failed, {s['error']} errors, {s['skipped']} skipped, "
        f"{s['xfailed']} known deviations, {s['xpassed']} stale deviations** ({s['total']} outcomes).",
        "",
        "Environment: Python " + env["python"] + ", " + ", ".join(f"{k} {v}" for k, v in env["libraries"].items())
        + "; devices: " + ", ".join(env["devices"]) + ".",
        "",
    ]
    outcomes = data["outcomes"]
    targets, rows, cells = matrix(outcomes)
    if outcomes:
        lines += ["## Target x property matrix", ""]
        lines.append("| spec | property | " + " | ".join(f"`{_esc(t)}`" for t in targets) + " |")
        lines.append("|---|---|" + "---|" * len(targets))
        for spec, props in by_spec(rows).items():
            for p in props:
                row = [f"`{spec}`", p]
                for t in targets:
                    o = cells.get((spec, p, t))
                    row.append(_ICON.get(o["status"], o["status"]) + (f" ({o['examples']})" if o and o["examples"] > 1 else "") if o else "")
                lines.append("| " + " | ".join(row) + " |")
        lines.append("")
        lines.append("Cells show the status and, in brackets, the number of generated examples.")
        lines.append("")
    if data["accuracy"]:
        lines += ["## Accuracy against the exact oracle", "", "| target | spec | dtype | max abs | max rel | max ULP | elements |", "|---|---|---|---|---|---|---|"]
        for a in data["accuracy"]:
            lines.append(
                f"| `{_esc(a['target'])}` | `{a['spec']}` | {a['dtype']} | {a['max_abs']:.3g} | {a['max_rel']:.3g} | "
                f"{a['max_ulp']:.3g} | {a['elements']} |"
            )
        lines += ["", "Max rel and ULP errors are measured on every generated input, also where the property passed.", ""]
    mut = data["mutants"]
    if mut["total"]:
        lines += [
            "## Planted mutants",
            "",
            f"Kill rate: **{mut['killed']}/{mut['total']}** ({100 * mut['kill_rate']:.1f}%).",
            "",
            "| mutant | spec | what is wrong | killed by |",
            "|---|---|---|---|",
        ]
        for m in mut["mutants"]:
            killers = ", ".join(m["killed_by"]) or "**survived**"
            lines.append(f"| `{m['mutant']}` | `{m['spec']}` | {_esc(m['why'])} | {killers} |")
        lines.append("")
    bad = [o for o in outcomes if o["status"] in ("failed", "error")]
    if bad:
        lines += ["## Failures", ""]
        for o in bad:
            lines += [f"### `{o['spec']}::{o['property']}` on `{_esc(o['target'])}` ({o['status']})", "", o["summary"], "", "```", o["message"], "```", ""]
            if o.get("repro"):
                lines += ["Repro (shrunk counterexample):", "", "```python", o["repro"], "```", ""]
    xf = [o for o in outcomes if o["status"] in ("xfailed", "xpassed")]
    if xf:
        lines += ["## Known deviations", ""]
        for o in xf:
            state = "still deviates" if o["status"] == "xfailed" else "**now passes: stale entry**"
            lines.append(f"- `{o['spec']}::{o['property']}` on `{_esc(o['target'])}`: {state}. {_esc(o['deviation'] or '')}")
            if o["status"] == "xfailed" and o["message"]:
                lines.append(f"  - observed: {_esc(o['message'][:400])}")
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
    return "\n".join(lines)
