"""``replay``: re-run one property's check on one example, as a repro snippet does.

It resolves the target by name the way the command line does (so it sits with
the doors, beside ``conformance.select``) and raises whatever the check raises.
"""

from __future__ import annotations

from typing import Any

from conformance import recorder
from conformance.catalogue import get_spec
from conformance.select import resolve_targets

__all__ = ["replay"]


def replay(spec_id: str, prop_name: str, *, target: str = "reference", example: dict[str, Any] | None = None) -> None:
    """Re-run one property's check on one example; raises what the check raises."""
    spec = get_spec(spec_id)
    if prop_name not in spec.properties:
        raise ValueError(f"{spec_id} has no property {prop_name!r}; it has: {', '.join(spec.properties)}")
    (tgt,) = resolve_targets([target], [spec_id])
    rec = recorder.Recorder()
    with recorder.active(rec):
        rec.start_example(example)
        spec.properties[prop_name].check(tgt, example or {})
