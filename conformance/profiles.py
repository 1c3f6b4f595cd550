"""Hypothesis profiles: ``dev`` (quick, random), ``ci`` (derandomised), ``thorough``.

Deadlines are off everywhere: timing-based failures flake on shared CI runners,
and speed is measured by the benchmarks instead.
"""

from __future__ import annotations

import contextlib
import functools
import os
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

from hypothesis import HealthCheck, Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

__all__ = ["PROFILES", "default_profile", "settings_for", "open_database", "redact_url", "draws_independent_of_loaded_modules"]

_COMMON = dict(
    deadline=None,
    # No Phase.explain: it re-runs a failing property dozens of times to annotate
    # which arguments could vary, text the report does not show; dropping it makes
    # a failing property cost a few examples after shrinking instead of ~80.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
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


@functools.cache
def open_database(location: str) -> ExampleDatabase:
    """The shared Hypothesis example database at ``location`` (one per process).

    ``location`` is a directory path (created if missing; on a shared file system
    every host sees it) or a ``redis://[:password@]host:port[/db]`` URL (needs the
    ``redis`` client). Counterexamples saved there by any worker or host are
    replayed first by every later run of the same property on the same target.
    """
    if not isinstance(location, str) or not location.strip():
        raise ValueError(f"--hypothesis-db must be a directory path or a redis://host:port URL, got {location!r}")
    scheme = urllib.parse.urlsplit(location).scheme
    if scheme in ("redis", "rediss", "unix"):
        try:
            import redis
            from hypothesis.extra.redis import RedisExampleDatabase
        except ImportError as exc:
            raise ValueError(
                f"--hypothesis-db {redact_url(location)!r} needs the redis client (pip install redis): {exc}"
            ) from None
        return RedisExampleDatabase(redis.Redis.from_url(location))
    if "://" in location:
        raise ValueError(
            f"--hypothesis-db {redact_url(location)!r}: the URL scheme must be redis, rediss or unix, "
            "or give a directory path"
        )
    path = Path(location).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(f"--hypothesis-db {location!r} exists and is not a directory")
    return DirectoryBasedExampleDatabase(str(path))


def redact_url(location: str | None) -> str | None:
    """``location`` without a password, for reports and messages."""
    if location is None or "://" not in location:
        return location
    parts = urllib.parse.urlsplit(location)
    if parts.password is None:
        return location
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def settings_for(profile: str, *, factor: float = 1.0, shrink: bool = True, database: object = "default") -> settings:
    """The profile's settings, scaled by ``factor``.

    ``database``: ``"default"`` keeps the profile's (none for ``ci``), ``None``
    disables it, a path or redis URL opens a shared one (:func:`open_database`),
    or an ``ExampleDatabase``. A shared database is used even by ``ci``: its
    counterexamples are replayed first, then generation is derandomised as usual.
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of ({', '.join(PROFILES)}), got {profile!r}")
    base = PROFILES[profile]
    kwargs: dict[str, object] = {"max_examples": max(1, round(base.max_examples * factor))}
    if not shrink:
        kwargs["phases"] = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target]
    if isinstance(database, str) and database != "default":
        database = open_database(database)
    if database != "default":
        kwargs["database"] = database
    return settings(base, **kwargs)


@contextlib.contextmanager
def draws_independent_of_loaded_modules() -> Iterator[None]:
    """Within this block, Hypothesis draws nothing from the source of the modules loaded.

    Hypothesis (recent versions, 6.155 here) mixes into its draws, now and then, constants it
    harvests from the source of every "local" module loaded in the process (any file outside
    site-packages, the standard library and test folders: this project's modules and the
    user's target module). Which of them are loaded depends on what ran before in the same
    process (an adapter, an oracle, a reference imported on first use), so a derandomised
    property drew one set of examples in a run of one target and another in a worker that had
    run other targets first, and a seed replayed in a fresh process could miss the example it
    found. The suite's strategies name their special values themselves; while a property
    runs, the pool of harvested constants is empty, so its examples depend only on the
    property, the target's name, the profile and the seed. Other Hypothesis tests in the same
    process keep the feature (the pool is restored on exit). On a Hypothesis without the
    feature this does nothing.
    """
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover - a Hypothesis without the module
        yield
        return
    harvest = getattr(providers, "_get_local_constants", None)
    cache = getattr(getattr(providers, "CONSTANTS_CACHE", None), "cache", None)
    constants = getattr(providers, "Constants", None)
    if harvest is None or constants is None or not hasattr(cache, "clear"):
        yield
        return
    empty = constants()
    # The cache holds, per kind of draw, the constants the pool permits: cleared on the way in
    # and out, so neither side sees the other's pool.
    cache.clear()
    providers._get_local_constants = lambda: empty
    try:
        yield
    finally:
        providers._get_local_constants = harvest
        cache.clear()
