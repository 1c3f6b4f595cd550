"""Shared views of a report document: findings, the library x spec grid, the matrix.

A **finding** is one root cause on one target: its failing and deviating outcomes
grouped by the diagnosis signature (``conformance.diagnose``), and joined where a
registered deviation names them as one cause. Findings are what a reader wants
("does library X do spec Y right, and if not, what does it do instead?"); the
target x property matrix stays available below them.

Everything here reads plain report dicts, so it works on a fresh run's outcomes
and on an older ``conformance.json`` alike (``conformance diff``).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from conformance import signatures

__all__ = [
    "ACTIVE",
    "FRAMEWORKS",
    "matrix",
    "by_spec",
    "library_of",
    "columns",
    "fallback_diagnosis",
    "findings",
    "library_counts",
    "library_columns",
    "grid",
    "regions",
    "adapters",
]

ACTIVE = ("failed", "error", "xfailed")  # the statuses a finding is made of
FRAMEWORKS = ("torch", "tf", "jax", "numpy")
FRAMEWORK_LABEL = {"torch": "PyTorch", "tf": "TensorFlow / Keras", "jax": "JAX", "numpy": "NumPy"}


def library_of(target: str) -> str:
    """The library a target belongs to: ``keras[from_logits=False]`` -> ``keras``; every seed
    variant (``variant:NAME``) -> ``variants``."""
    if target.startswith("variant:"):
        return "variants"
    return target.split("[", 1)[0]


def _target_order(t: str) -> tuple[int, str]:
    return (0 if t == "reference" else 1 if t.startswith("variant:") else 2, t)


def columns(outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One column per target, grouped by framework (torch, tf, jax, numpy), reference first."""
    info: dict[str, dict[str, Any]] = {}
    for o in outcomes:
        info.setdefault(o["target"], {"target": o["target"], "framework": o.get("framework") or "torch",
                                      "library": library_of(o["target"]), "distribution": o.get("library")})
    order = {f: i for i, f in enumerate(FRAMEWORKS)}
    return sorted(info.values(), key=lambda c: (order.get(c["framework"], len(order)), _target_order(c["target"])))


def matrix(outcomes: list[dict[str, Any]]) -> tuple[list[str], list[tuple[str, str]], dict[tuple[str, str, str], dict[str, Any]]]:
    """(targets grouped by framework, (spec, property) rows, cell lookup) for the target x property matrix."""
    targets = [c["target"] for c in columns(outcomes)]
    rows = sorted({(o["spec"], o["property"]) for o in outcomes})
    cells = {(o["spec"], o["property"], o["target"]): o for o in outcomes}
    return targets, rows, cells


def by_spec(rows: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for s, p in rows:
        out[s].append(p)
    return out


# ---------------------------------------------------------------------------
# Findings
# ---------------------------------------------------------------------------


def fallback_diagnosis(o: dict[str, Any]) -> dict[str, Any]:
    """A diagnosis for an outcome that has none (a worker crash, an older report), from its message."""
    msg = (o.get("message") or "").strip()
    if not msg and o.get("deviations"):
        msg = next((d.get("message") or "" for d in o["deviations"] if d.get("state") == "deviated"), "")
    if o["status"] == "error":
        d = signatures.raises(msg)
        if d is not None:
            return d
    return signatures.unexplained(o["spec"], o["property"], msg)


def _diagnosis(o: dict[str, Any]) -> dict[str, Any]:
    return o.get("diagnosis") or fallback_diagnosis(o)


def _deviation_row(o: dict[str, Any]) -> dict[str, Any] | None:
    return next((d for d in o.get("deviations") or [] if d.get("state") == "deviated"), None)


def _counterexample(o: dict[str, Any]) -> str | None:
    if o.get("counterexample"):
        return str(o["counterexample"])
    row = _deviation_row(o)
    return row.get("example") if row else None


def _repro(o: dict[str, Any]) -> str | None:
    if o.get("repro"):
        return str(o["repro"])
    example = _counterexample(o)
    if example is None:
        return None
    return "\n".join([
        f"# Repro: {o['spec']}::{o['property']} on target {o['target']} (an example inside its registered deviation)",
        "import torch",
        "from conformance.replay import replay",
        f"example = {example}",
        f"replay({o['spec']!r}, {o['property']!r}, target={o['target']!r}, example=example)",
    ])


class _Union:
    def __init__(self) -> None:
        self.parent: dict[Any, Any] = {}

    def find(self, a: Any) -> Any:
        self.parent.setdefault(a, a)
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def join(self, a: Any, b: Any) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "backslashreplace")).hexdigest()[:10]


def findings(outcomes: Iterable[dict[str, Any]], versions: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Group a report's failing and deviating outcomes into findings (one root cause on one target each).

    Outcomes of one target join when their diagnoses share a signature, and when one
    registered deviation (the same reason) absorbed them. A finding's id is
    ``target::signature``, stable across runs, so ``conformance diff`` can match it."""
    versions = versions or {}
    active = [o for o in outcomes if o["status"] in ACTIVE]
    uf = _Union()
    for i, o in enumerate(active):
        d = _diagnosis(o)
        uf.join(("o", i), ("sig", o["target"], d["signature"]))
        if o["status"] == "xfailed" and o.get("deviation"):
            uf.join(("o", i), ("reason", o["target"], o["deviation"]))
    groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for i, o in enumerate(active):
        groups[uf.find(("o", i))].append(o)
    out = [_finding(members, versions) for members in groups.values()]
    kind_order = {"defect": 0, "convention": 1}
    fw = {f: i for i, f in enumerate(FRAMEWORKS)}
    out.sort(key=lambda f: (fw.get(f["framework"], len(fw)), _target_order(f["target"]), f["state"] != "new",
                            kind_order.get(f["kind"], 2), f["id"]))
    return out


def _finding(members: list[dict[str, Any]], versions: dict[str, str]) -> dict[str, Any]:
    members = sorted(members, key=lambda o: (o["spec"], o["property"]))
    diags = [_diagnosis(o) for o in members]
    explained = [d for d in diags if d["kind"] != "unexplained"]
    sig_counts = Counter(d["signature"] for d in (explained or diags))
    signature = min(sig_counts, key=lambda s: (-sig_counts[s], s))
    rep = next(d for d in diags if d["signature"] == signature)
    target = members[0]["target"]
    failing = [o for o in members if o["status"] in ("failed", "error")]
    kinds = {o.get("deviation_kind") or "defect" for o in members if o["status"] == "xfailed"}
    kind = "defect" if failing or "defect" in kinds else "convention"
    reasons = sorted({o["deviation"] for o in members if o.get("deviation") and o["status"] == "xfailed"})
    sentence, sentence_from = _sentence(rep, diags), "diagnosis"
    if rep["kind"] == "unexplained" and reasons and not failing:
        # One registered deviation: its reason names the cause; the id must not depend on which property came first.
        signature = f"deviation:{_short_hash(reasons[0])}"
        # The suite could not name the cause; the registry's reason does (in the triager's words, labelled so).
        sentence, sentence_from = _first_sentence(reasons[0]), "registry"
    with_example = [o for o in members if _counterexample(o)]
    shortest = min(with_example, key=lambda o: (len(_counterexample(o) or ""), o["spec"], o["property"])) if with_example else None
    dist = members[0].get("library")
    example = (shortest.get("diagnosis") or {}).get("example") if shortest else None
    return {
        "id": f"{target}::{signature}",
        "target": target,
        "library": library_of(target),
        "distribution": dist,
        "version": versions.get(dist) if dist else None,
        "framework": members[0].get("framework") or "torch",
        "kind": kind,
        "state": "new" if failing else "known",
        "diagnosis": {k: rep[k] for k in ("kind", "sentence", "signature", "figures")},
        "sentence": sentence,
        "sentence_from": sentence_from,
        "deviation_reasons": reasons,
        "specs": sorted({o["spec"] for o in members}),
        "properties": [f"{o['spec']}::{o['property']}" for o in members],
        "statuses": dict(Counter(o["status"] for o in members)),
        "counterexample": _counterexample(shortest) if shortest else None,
        "counterexample_of": f"{shortest['spec']}::{shortest['property']}" if shortest else None,
        "options": (example or {}).get("options") if example else None,
        "tensors": (example or {}).get("tensors") if example else None,
        "repro": _repro(shortest) if shortest else _repro(members[0]),
    }


def _first_sentence(text: str, limit: int = 400) -> str:
    """A registered reason's opening sentence: the mechanism, with its first figures."""
    text = " ".join(text.split())
    m = re.search(r"(?<=[a-z0-9)\]])\. (?=[A-Z])", text)
    first = text[: m.start() + 1] if m else text
    if len(first) > limit:
        first = first[: limit - 3].rstrip() + "..."
    return first


def _sentence(rep: dict[str, Any], diags: list[dict[str, Any]]) -> str:
    """The finding's sentence: the representative diagnosis's, widened where members differ in a detail."""
    same = [d for d in diags if d["signature"] == rep["signature"]]
    fig = rep.get("figures") or {}
    if rep["kind"] == "raises" and "keyword" in fig:
        kws = sorted({d["figures"]["keyword"] for d in same if "keyword" in (d.get("figures") or {})})
        plural = "s" if len(kws) > 1 else ""
        return (f"does not accept the canonical keyword{plural} {', '.join(repr(k) for k in kws)} "
                f"({fig.get('exception', 'TypeError')}: unexpected keyword argument)")
    if rep["kind"] == "precision" and "input_dtype" in fig and "output_dtype" in fig:
        ins = sorted({d["figures"]["input_dtype"] for d in same if "input_dtype" in (d.get("figures") or {})})
        return f"returns {fig['output_dtype']} for {' and '.join(ins)} inputs (not the input's dtype)"
    return str(rep["sentence"])


def library_counts(found: list[dict[str, Any]], outcomes: list[dict[str, Any]],
                   versions: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Per library: distinct defects and distinct conventions (a cause shared by two option settings counts once)."""
    versions = versions or {}
    libs: dict[str, dict[str, Any]] = {}
    for c in columns(outcomes):
        lib = libs.setdefault(c["library"], {"library": c["library"], "distribution": c["distribution"],
                                             "version": versions.get(c["distribution"]) if c["distribution"] else None,
                                             "framework": c["framework"], "targets": [], "defects": 0,
                                             "conventions": 0, "new": 0, "findings": 0})
        lib["targets"].append(c["target"])
    seen: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for f in found:
        lib = libs[f["library"]]
        key = (f["kind"], f["diagnosis"]["signature"])
        if key in seen[f["library"]]:
            continue
        seen[f["library"]].add(key)
        lib["findings"] += 1
        lib["defects" if f["kind"] == "defect" else "conventions"] += 1
        lib["new"] += f["state"] == "new"
    for lib in libs.values():
        lib["text"] = _count_text(lib["defects"], lib["conventions"], lib["new"])
        lib["short"] = _short_text(lib["defects"], lib["conventions"])
    return list(libs.values())


def _short_text(defects: int, conventions: int) -> str:
    """A grid cell's text: conforms, n defect(s), n convention(s), or both abbreviated to fit one line."""
    if defects and conventions:
        return f"{defects} def · {conventions} conv"
    if defects:
        return f"{defects} defect{'s' if defects != 1 else ''}"
    if conventions:
        return f"{conventions} convention{'s' if conventions != 1 else ''}"
    return "conforms"


def _count_text(defects: int, conventions: int, new: int) -> str:
    parts = [f"{n} {word}{'s' if n != 1 else ''}" for n, word in ((defects, "defect"), (conventions, "convention")) if n]
    if not parts:
        return "conforms"
    return " · ".join(parts) + (f" ({new} unregistered)" if new else "")


# ---------------------------------------------------------------------------
# The library x spec grid
# ---------------------------------------------------------------------------


def library_columns(outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One column per library (its option settings and, for ``variants``, every seed variant together),
    grouped by framework in the order of ``columns``."""
    libs: dict[str, dict[str, Any]] = {}
    for c in columns(outcomes):
        lib = libs.setdefault(c["library"], {"library": c["library"], "framework": c["framework"],
                                             "distribution": c["distribution"], "targets": []})
        lib["targets"].append(c["target"])
    return list(libs.values())


def grid(outcomes: list[dict[str, Any]], found: list[dict[str, Any]]) -> dict[str, Any]:
    """One cell per (spec, library): conforms / n defects / n conventions / not covered, counting
    distinct causes across the library's targets."""
    cols = library_columns(outcomes)
    by_pair: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for o in outcomes:
        by_pair[(o["spec"], library_of(o["target"]))].append(o)
    touching: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = defaultdict(dict)
    for f in found:
        for spec in f["specs"]:
            cur = touching[(spec, f["library"])]
            key = (f["kind"], f["diagnosis"]["signature"])
            if key not in cur or f["state"] == "new":
                cur[key] = f
    rows = []
    for spec in sorted({o["spec"] for o in outcomes}):
        cells: dict[str, dict[str, Any]] = {}
        for c in cols:
            outs = by_pair.get((spec, c["library"]), [])
            fs = list(touching.get((spec, c["library"]), {}).values())
            counts = Counter(o["status"] for o in outs)
            ran = len(outs) - counts.get("skipped", 0)
            cell: dict[str, Any] = {"passed": counts.get("passed", 0) + counts.get("xpassed", 0), "ran": ran,
                                    "skipped": counts.get("skipped", 0), "total": len(outs),
                                    "defects": sum(f["kind"] == "defect" for f in fs),
                                    "conventions": sum(f["kind"] == "convention" for f in fs),
                                    "new": sum(f["state"] == "new" for f in fs), "findings": [f["id"] for f in fs]}
            if not outs:
                cell.update(state="absent", text="not covered", why="no adapter of this library for this spec")
            elif ran == 0:
                reason = outs[0].get("message") or "every property skipped"
                text = "not installed" if "not installed" in reason else "not covered"
                cell.update(state="not_covered", text=text, why=reason)
            elif not fs:
                cell.update(state="conforms", text="conforms", why=f"{cell['passed']} of {ran} properties pass")
            else:
                state = "new" if cell["new"] else "defect" if cell["defects"] else "convention"
                cell.update(state=state, text=_short_text(cell["defects"], cell["conventions"]),
                            why="; ".join(f["sentence"][:160] for f in fs[:3]) + (" ..." if len(fs) > 3 else ""))
            cells[c["library"]] = cell
        rows.append({"spec": spec, "cells": cells})
    return {"columns": cols, "rows": rows}


# ---------------------------------------------------------------------------
# Regions and adapters
# ---------------------------------------------------------------------------


def regions(outcomes: list[dict[str, Any]], declared: dict[str, tuple[str, ...]] | None = None) -> dict[str, dict[str, int]]:
    """Per spec, how many examples each region received (summed over properties and targets);
    declared regions never drawn appear with 0."""
    out: dict[str, dict[str, int]] = {}
    for o in outcomes:
        spec = out.setdefault(o["spec"], {})
        for name, n in (o.get("regions") or {}).items():
            spec[name] = spec.get(name, 0) + int(n)
    for spec_id, names in (declared or {}).items():
        if spec_id in out:
            for name in names:
                out[spec_id].setdefault(name, 0)
    return {s: dict(sorted(r.items(), key=lambda kv: (-kv[1], kv[0]))) for s, r in sorted(out.items()) if r}


def adapters(outcomes: list[dict[str, Any]], versions: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """One row per (target, spec) that carries adapter information: the library function, every
    translation the adapter performs, the options it exercises and those it does not."""
    versions = versions or {}
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for o in outcomes:
        info = o.get("adapter")
        if not info or (o["target"], o["spec"]) in rows:
            continue
        translations = dict(info.get("translations") or {})
        function = translations.pop("function", None)
        dist = o.get("library")
        rows[(o["target"], o["spec"])] = {
            "target": o["target"], "spec": o["spec"], "library": library_of(o["target"]), "distribution": dist,
            "version": versions.get(dist) if dist else None, "framework": o.get("framework") or "torch",
            "function": function, "translations": translations, "options": list(info.get("options") or []),
            "not_covered": dict(info.get("not_covered") or {}),
        }
    return [rows[k] for k in sorted(rows, key=lambda k: (_target_order(k[0]), k[1]))]
