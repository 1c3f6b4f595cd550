"""Every planted mutant is killed by the properties it names, and every property kills one.

Mutants are run with the derandomised ``ci`` profile and without shrinking: the
question is only whether the property can fail on that broken implementation.
"""

from __future__ import annotations

import time

import pytest

from conformance.catalogue import load_specs
from conformance.runner import requirement_missing, run_property
from conformance.targets import Target
from tests.mutants import Mutant, all_mutants

MUTANTS = all_mutants()
CASES = [(m, p) for m in MUTANTS for p in m.killed_by]

# Properties that need hardware absent from CI; each needs a reason here.
NO_MUTANT_NEEDED: dict[str, str] = {}


def _target(m: Mutant) -> Target:
    return Target(name=f"mutant:{m.name}", spec_id=m.spec_id, fn=m.fn, source=m.source, kind="mutant")


@pytest.mark.parametrize(("mutant", "prop"), CASES, ids=[f"{m.id}-by-{p}" for m, p in CASES])
def test_property_kills_mutant(mutant: Mutant, prop: str, record_property: pytest.RecordProperty,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load_specs()[mutant.spec_id]
    assert prop in spec.properties, f"{mutant.id} names unknown property {prop!r} of {spec.id}"
    p = spec.properties[prop]
    missing = requirement_missing(p.requires)
    if missing:
        pytest.skip(missing)
    # A property confined to other profiles (torch.compile: thorough) runs in its own.
    profile = "ci" if not p.profiles or "ci" in p.profiles else p.profiles[0]
    # Whether compiled_matches_eager can fail does not depend on inductor's code generation;
    # dynamo's tracing (what the compile mutants react to) is the same under aot_eager.
    monkeypatch.setenv("CONFORMANCE_COMPILE_BACKEND", "aot_eager")
    start = time.perf_counter()
    out = run_property(p, _target(mutant), profile=profile, shrink=False, database=None)
    seconds = time.perf_counter() - start
    # A mutant whose signature lacks a canonical keyword "dies" of a TypeError: that is a stale
    # mutant, not a kill.
    stale_signature = out.status == "error" and "unexpected keyword argument" in out.message
    killed = out.status in ("failed", "error") and not stale_signature
    record_property(
        "conformance_mutant",
        {"mutant": mutant.id, "spec": mutant.spec_id, "property": prop, "why": mutant.why, "killed": killed,
         "seconds": round(seconds, 3)},
    )
    assert killed, f"{prop} did not kill mutant {mutant.id} ({mutant.why}): status {out.status}, {out.examples} examples"


def test_every_property_kills_a_mutant() -> None:
    specs = load_specs()
    killers = {(m.spec_id, p) for m in MUTANTS for p in m.killed_by}
    unkilled = [
        f"{sid}::{pname}"
        for sid, spec in specs.items()
        for pname in spec.properties
        if (sid, pname) not in killers and f"{sid}::{pname}" not in NO_MUTANT_NEEDED
    ]
    assert not unkilled, f"properties with no planted mutant they are shown to kill: {unkilled}"


def test_every_spec_has_mutants() -> None:
    specs = load_specs()
    with_mutants = {m.spec_id for m in MUTANTS}
    assert set(specs) <= with_mutants, f"specs without mutants: {sorted(set(specs) - with_mutants)}"
