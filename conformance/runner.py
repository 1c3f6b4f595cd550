"""Running one property against one target, producing an :class:`Outcome`.

This is the single execution path shared by the pytest plugin, the CLI and the
engine's own tests (the mutant kill matrix calls it directly).
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import hypothesis
from hypothesis import errors as hyp_errors

from conformance import recorder, repro
from conformance.profiles import settings_for
from conformance.spec import Category, Property, SkipProperty, get_spec
from conformance.targets import Target, TargetError, TargetLoadError, TargetTimeout, resolve_targets, safe_text

__all__ = ["Outcome", "run_property", "replay", "requirement_missing", "STATUSES"]

STATUSES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")


@dataclass
class Outcome:
    target: str
    target_kind: str
    spec: str
    property: str
    category: str
    status: str
    summary: str = ""
    message: str = ""
    examples: int = 0
    duration_s: float = 0.0
    accuracy: list[dict[str, Any]] = field(default_factory=list)
    oracle_domain: dict[str, dict[str, int]] = field(default_factory=dict)
    counterexample: str | None = None
    repro: str | None = None
    exception: str | None = None
    deviation: str | None = None
    notes: list[str] = field(default_factory=list)
    series: list[dict[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.spec}::{self.property}[{self.target}]"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Outcome:
        return cls(**d)


def requirement_missing(requires: tuple[str, ...]) -> str | None:
    """The reason a property cannot run here, or None."""
    for req in requires:
        if req == "cuda":
            import torch

            if not torch.cuda.is_available():
                return "needs a CUDA device; torch.cuda.is_available() is False on this machine"
        elif req == "mps":
            import torch

            if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
                return "needs an Apple MPS device; none is available"
        elif importlib.util.find_spec(req) is None:
            return f"needs the optional library {req!r}, which is not installed"
    return None


def _first_error(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def run_property(
    prop: Property,
    target: Target,
    *,
    profile: str = "dev",
    seed: int | None = None,
    shrink: bool = True,
    database: object = "default",
) -> Outcome:
    """Run ``prop`` on ``target`` under a Hypothesis profile; never raises for target faults."""
    out = Outcome(
        target=target.name,
        target_kind=target.kind,
        spec=prop.spec_id,
        property=prop.name,
        category=str(prop.category),
        status="passed",
        summary=prop.summary,
    )
    start = time.perf_counter()
    rec = recorder.Recorder()
    try:
        if target.load_error is not None:
            out.status, out.message = "error", target.load_error
            return out
        if target.skip_reason is not None:
            out.status, out.message = "skipped", target.skip_reason
            return out
        if prop.category is Category.GRADIENT and target.conventions.get("autograd") == "none":
            out.status = "skipped"
            out.message = f"{target.name} computes outside torch autograd: gradient properties do not apply"
            return out
        missing = requirement_missing(prop.requires)
        if missing:
            out.status, out.message = "skipped", missing
            return out
        if prop.profiles and profile not in prop.profiles:
            out.status = "skipped"
            out.message = f"runs only in the {' / '.join(prop.profiles)} profile(s); this run uses {profile!r}"
            return out
        with recorder.active(rec):
            _execute(prop, target, rec, profile=profile, seed=seed, shrink=shrink, database=database)
    except SkipProperty as exc:
        out.status, out.message = "skipped", str(exc)
    except BaseException as exc:  # noqa: BLE001 - every fault of the target becomes an outcome
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        err = _first_error(exc)
        if isinstance(err, SkipProperty):
            out.status, out.message = "skipped", str(err)
        else:
            _record_failure(out, err, rec, prop, target)
    finally:
        out.duration_s = time.perf_counter() - start
        out.examples = rec.examples
        out.accuracy = [a.as_dict() for a in rec.accuracy.values()]
        out.oracle_domain = {
            k: {"asked": rec.asked.get(k, 0), "not_asked": rec.not_asked.get(k, 0)} for k in sorted(rec.asked)
        }
        out.notes = list(rec.notes)
        out.series = list(rec.series)
    return out


def _execute(
    prop: Property,
    target: Target,
    rec: recorder.Recorder,
    *,
    profile: str,
    seed: int | None,
    shrink: bool,
    database: object,
) -> None:
    if "tensorflow" in prop.requires:
        # Import before Hypothesis starts: TF's import changes the recursion limit,
        # which Hypothesis warns about when it happens inside a test.
        from oracles.tf import tf

        tf()
    if prop.strategy is None:
        rec.start_example(None)
        prop.check(target, {})
        return

    def inner(example: dict[str, Any]) -> None:
        rec.start_example(example)
        prop.check(target, example)

    for ex in reversed(prop.examples):
        inner = hypothesis.example(ex)(inner)
    test = hypothesis.given(prop.strategy)(inner)
    digest = f"{prop.id}[{target.name}]".encode()
    test.hypothesis.inner_test._hypothesis_internal_add_digest = digest  # type: ignore[attr-defined]
    if seed is not None and profile != "ci":
        # @seed switches the example database off and a later @settings decides it:
        # a shared database given explicitly (--hypothesis-db) stays on, so its
        # counterexamples are replayed before the seeded generation; the profile's
        # default one stays off, so a seeded run is reproducible from its seed.
        test = hypothesis.seed(seed)(test)
        if database == "default":
            database = None
    test = settings_for(profile, factor=prop.examples_factor, shrink=shrink, database=database)(test)
    test()


def _record_failure(out: Outcome, err: BaseException, rec: recorder.Recorder, prop: Property, target: Target) -> None:
    ran = True  # whether rec.example is an input the target actually ran on
    if isinstance(err, AssertionError):
        out.status = "failed"
        out.message = safe_text(err) or "assertion failed"
    elif isinstance(err, TargetTimeout):
        out.status, out.exception = "error", "TargetTimeout"
        out.message = safe_text(err)
        ran = not err.not_called
    elif isinstance(err, TargetError):
        out.status = "error"
        orig = err.original
        out.exception = type(orig).__name__
        out.message = f"the target raised {type(orig).__name__}: {safe_text(orig)}"
        if isinstance(orig, TypeError):
            # Most often a signature mismatch: say what the suite called it with.
            out.message += f" (the canonical signature of {prop.spec_id} is {get_spec(prop.spec_id).signature})"
    elif isinstance(err, TargetLoadError):
        out.status, out.message = "error", safe_text(err)
    elif isinstance(err, (hyp_errors.Unsatisfiable, hyp_errors.FailedHealthCheck, hyp_errors.InvalidArgument)):
        out.status = "error"
        out.exception = type(err).__name__
        out.message = f"the suite could not generate examples ({type(err).__name__}): {safe_text(err)}"
    else:
        # A crash outside the target's call (e.g. in autograd on its output) is still its fault.
        out.status = "error"
        out.exception = type(err).__name__
        # Not traceback.format_exception_only: it appends Hypothesis's notes (the
        # falsifying example), which the report shows in its own field.
        out.message = f"{type(err).__name__} while checking: {safe_text(err)}"
    if rec.examples and ran:
        out.counterexample = repro.to_source(rec.example) if rec.example is not None else None
        out.repro = repro.snippet(
            spec_id=prop.spec_id,
            prop=prop.name,
            target_name=target.name,
            target_source=target.source,
            example=rec.example,
            calls=rec.calls,
            repro_call=target.repro_call,
        )


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
