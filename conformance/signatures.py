"""Diagnoses read from a message alone: a target's exception, or no diagnosis at all.

Shared by ``conformance.diagnose`` (in the worker) and the report (for outcomes
that carry no diagnosis: a worker crash, a report written before diagnoses
existed), so the two give the same signature and a finding keeps its id across
runs. Imports nothing heavy.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["raises", "unexplained"]

_NUMBER = re.compile(r"[-+]?\d+(\.\d+)?([eE][-+]?\d+)?")


def raises(message: str) -> dict[str, Any] | None:
    """The ``raises`` diagnosis of an error outcome whose message says the target raised (or hung)."""
    m = re.match(r"the target raised ([\w.]+): (.*)", message, re.S)
    if m:
        exc, text = m.group(1), m.group(2)
        text = re.split(r" \(the canonical signature of ", text, maxsplit=1)[0]
        text = text.strip().splitlines()[0][:200] if text.strip() else ""
        kw = re.search(r"unexpected keyword argument '(\w+)'", text)
        if kw:
            # One cause however many keywords: the target's signature lacks canonical keywords.
            return {"kind": "raises", "sentence": f"does not accept the canonical keyword {kw.group(1)!r} ({exc}: {text})",
                    "signature": f"raises:{exc}:unexpected keyword argument",
                    "figures": {"exception": exc, "message": text, "keyword": kw.group(1)}}
        return {"kind": "raises", "sentence": f"raises {exc}: {text}",
                "signature": f"raises:{exc}:{_NUMBER.sub('#', text)[:120]}", "figures": {"exception": exc, "message": text}}
    if "did not return within" in message or message.startswith("not called: an earlier call"):
        limit = re.search(r"within ([\d.]+) s", message)
        secs = f" within {limit.group(1)} s" if limit else ""
        return {"kind": "raises", "sentence": f"does not return{secs} (hangs)", "signature": "raises:TargetTimeout",
                "figures": {"message": message[:300]}}
    return None


def unexplained(spec: str, prop: str, message: str, note: str | None = None) -> dict[str, Any]:
    first = message.strip().splitlines()[0][:300] if message.strip() else "no message"
    figures: dict[str, Any] = {"message": first}
    if note:
        figures["note"] = note
    return {"kind": "unexplained", "sentence": f"fails {prop}: {first}", "signature": f"unexplained:{spec}:{prop}",
            "figures": figures}
