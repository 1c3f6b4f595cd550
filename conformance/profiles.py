"""Hypothesis profiles: ``dev`` (quick, random), ``ci`` (derandomised), ``thorough``.

Deadlines are off everywhere: timing-based failures flake on shared CI runners,
and speed is measured by the benchmarks instead.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

__all__ = ["PROFILES", "default_profile", "settings_for"]

_COMMON = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    report_multiple_bugs=False,
    print_blob=False,
)

PROFILES: dict[str, settings] = {
    "dev": settings(max_examples=30, **_COMMON),
    "ci": settings(max_examples=60, derandomize=True, database=None, **_COMMON),
    "thorough": settings(max_examples=600, **_COMMON),
}

for _name, _s in PROFILES.items():
    settings.register_profile(f"conformance-{_name}", _s)


def default_profile() -> str:
    """``ci`` under CI (reproducible reports), else ``dev``."""
    return "ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev"


def settings_for(profile: str, *, factor: float = 1.0, shrink: bool = True, database: object = "default") -> settings:
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of ({', '.join(PROFILES)}), got {profile!r}")
    base = PROFILES[profile]
    kwargs: dict[str, object] = {"max_examples": max(1, round(base.max_examples * factor))}
    if not shrink:
        kwargs["phases"] = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target]
    if database != "default":
        kwargs["database"] = database
    return settings(base, **kwargs)
