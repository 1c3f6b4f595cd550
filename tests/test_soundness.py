"""No false alarms: correct implementations written differently from ours pass every property.

Each implementation in ``tests/soundness/`` runs every property of its spec (in
the ``dev`` profile under two fixed seeds, so different examples from the ``ci``
run of the references), and our reference runs again under other target names:
examples are seeded from the property id and the target's name, so a property
that passes the reference only by the luck of its examples fails here.
"""

from __future__ import annotations

import pytest

from conformance.catalogue import load_specs
from conformance.runner import requirement_missing, run_property
from conformance.targets import Target
from tests.soundness import Impl, all_impls

IMPLS = all_impls()
SEEDS = (20261201, 7)
# The examples of each soundness run, as a fraction of the profile's: the point is other
# examples than the ci run's, under several seeds, not more of them.
FACTOR = 0.25


def _cases() -> list[tuple[str, str, str, object]]:
    specs = load_specs()
    cases = []
    for impl in IMPLS:
        for pname in specs[impl.spec_id].properties:
            cases.append((impl.id, impl.spec_id, pname, impl))
    for sid, spec in sorted(specs.items()):
        ref = spec.reference
        alias = Impl(f"reference_as_{sid}_alias", sid, ref, "the reference under another target name")
        for pname in spec.properties:
            cases.append((alias.id, sid, pname, alias))
    return cases


CASES = _cases()


@pytest.mark.parametrize(("impl_id", "spec_id", "prop_name", "impl"), CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_a_correct_implementation_passes(impl_id: str, spec_id: str, prop_name: str, impl: Impl) -> None:
    prop = load_specs()[spec_id].properties[prop_name]
    missing = requirement_missing(prop.requires)
    if missing:
        pytest.skip(missing)
    if prop.profiles and "dev" not in prop.profiles:
        pytest.skip(f"{prop.id} runs only in the {' / '.join(prop.profiles)} profile(s)")
    target = Target(name=f"soundness:{impl.id}", spec_id=spec_id, fn=impl.fn, source=impl.source, kind="callable")
    for seed in SEEDS:
        from dataclasses import replace

        out = run_property(replace(prop, examples_factor=prop.examples_factor * FACTOR), target, profile="dev",
                           seed=seed, database=None)
        assert out.status in ("passed", "skipped"), (
            f"false alarm: {prop.id} rejects {impl.id} ({impl.how}) under seed {seed}: {out.status}: "
            f"{out.message}\n{out.repro or ''}"
        )
