"""Running one property against one target, producing an :class:`Outcome`.

This is the single execution path shared by the pytest plugin, the CLI and the
engine's own tests (the mutant kill matrix calls it directly).

Registered deviations are applied here, per example: an example that fails
inside a deviation's region is counted against that deviation and the search
goes on (see ``conformance.deviations``), so a failure outside every region is
still found, shrunk and reported with its own counterexample. Properties a
target's capabilities cannot support are skipped here too, with the reason.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import hypothesis
from hypothesis import errors as hyp_errors

from conformance import recorder, repro
from conformance.catalogue import get_spec
from conformance.deviations import Deviation, predicate_namespace
from conformance.profiles import draws_independent_of_loaded_modules, settings_for
from conformance.spec import Property, SkipProperty
from conformance.targets import Target, TargetError, TargetLoadError, TargetTimeout, declines, safe_text

__all__ = ["Outcome", "run_property", "requirement_missing", "STATUSES"]

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
    deviation_kind: str | None = None
    deviations: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    series: list[dict[str, Any]] = field(default_factory=list)
    regions: dict[str, int] = field(default_factory=dict)
    framework: str = "torch"
    library: str | None = None
    diagnosis: dict[str, Any] | None = None  # what the target does instead (conformance.diagnose)
    adapter: dict[str, Any] | None = None  # an adapter's translations and the options it exercises, for the report

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
    deviations: Sequence[Deviation] = (),
) -> Outcome:
    """Run ``prop`` on ``target`` under a Hypothesis profile; never raises for target faults.

    ``deviations`` are the registry entries that apply to this (target, spec,
    property); examples inside their regions are counted, not failed."""
    out = Outcome(
        target=target.name,
        target_kind=target.kind,
        spec=prop.spec_id,
        property=prop.name,
        category=str(prop.category),
        status="passed",
        summary=prop.summary,
        framework=target.framework,
        library=target.library,
        adapter=_adapter_info(target),
    )
    start = time.perf_counter()
    rec = recorder.Recorder()
    devs = list(deviations)
    try:
        if target.load_error is not None:
            out.status, out.message = "error", target.load_error
            return out
        if target.skip_reason is not None:
            out.status, out.message = "skipped", target.skip_reason
            return out
        lacking = target.capabilities.lacks(prop.needs, target.name)
        if lacking:
            out.status, out.message = "skipped", lacking
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
            _execute(prop, target, rec, devs, profile=profile, seed=seed, shrink=shrink, database=database)
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
        out.examples = rec.examples - rec.not_implemented
        out.accuracy = [a.as_dict() for a in rec.accuracy.values()]
        out.oracle_domain = {
            k: {"asked": rec.asked.get(k, 0), "not_asked": rec.not_asked.get(k, 0)} for k in sorted(rec.asked)
        }
        out.notes = list(rec.notes)
        out.series = list(rec.series)
        out.regions = dict(sorted(rec.regions.items()))
        if devs:
            _apply_deviations(out, devs, rec)
        _diagnose(out, prop, target, rec, devs)
    return out


def _adapter_info(target: Target) -> dict[str, Any] | None:
    options = tuple(getattr(target, "options", ()) or ())
    not_covered = dict(getattr(target, "not_covered", {}) or {})
    if not (target.translations or options or not_covered):
        return None
    return {"translations": dict(target.translations), "options": list(options), "not_covered": not_covered}


def _diagnose(out: Outcome, prop: Property, target: Target, rec: recorder.Recorder, devs: list[Deviation]) -> None:
    """Attach the diagnosis of a failing or deviating outcome (probes the target; never raises)."""
    if out.status not in ("failed", "error", "xfailed") or target.fn is None or target.hung is not None:
        return
    if out.status == "xfailed":
        hit = next((h for i, h in sorted(rec.deviated.items()) if "object" in h), None)
        example, message = (hit["object"], hit["message"]) if hit else (None, out.message)
    else:
        example, message = (rec.example if out.counterexample is not None else None), out.message
    from conformance import diagnose

    out.diagnosis = diagnose.diagnose(prop, target, example, status=out.status, message=message or "")


def _apply_deviations(out: Outcome, devs: list[Deviation], rec: recorder.Recorder) -> None:
    """Turn the per-example deviation counts into the outcome's status and rows.

    - a failure outside every region keeps its status (failed / error);
    - otherwise, examples absorbed by a deviation make the outcome ``xfailed``;
    - otherwise, a region that was searched with nothing deviating makes it ``xpassed`` (stale);
    - a region never entered is ``unexercised`` (no evidence either way).
    A whole-property deviation (no ``where``) also covers failures that never reached an
    example (a crash, a load error): they become ``xfailed``."""
    rows = []
    for i, d in enumerate(devs):
        hit = rec.deviated.get(i)
        entered = rec.entered.get(i, 0) + (hit["count"] if hit else 0)
        state = "deviated" if hit else ("stale" if entered else "unexercised")
        rows.append({**d.as_dict(), "count": hit["count"] if hit else 0, "entered": entered, "state": state,
                     "message": hit["message"] if hit else None, "example": hit["example"] if hit else None})
    out.deviations = rows
    absorbed = [r for r in rows if r["state"] == "deviated"]
    whole = next((d for d in devs if d.where is None), None)
    if out.status in ("failed", "error"):
        if whole is not None and not absorbed:
            # The failure happened where no example could be checked against a region
            # (e.g. a property without a strategy): a whole-property entry covers it.
            out.status, out.deviation, out.deviation_kind = "xfailed", whole.reason, whole.kind
            for r in rows:
                if r["where"] is None:
                    r.update(state="deviated", count=max(1, r["count"]), message=r["message"] or out.message)
        return
    if absorbed:
        out.status, out.deviation, out.deviation_kind = "xfailed", absorbed[0]["reason"], absorbed[0]["kind"]
    elif out.status == "passed" and any(r["state"] == "stale" for r in rows):
        stale = next(r for r in rows if r["state"] == "stale")
        out.status, out.deviation, out.deviation_kind = "xpassed", stale["reason"], stale["kind"]


# A property whose first examples the target all declines (NotImplementedError: an option its
# library lacks, drawn by every example of the property) is not applicable; stopping there saves
# Hypothesis's search for a valid example (hundreds of draws, seconds per property).
DECLINED_IN_A_ROW = 20


class _DeclinesEverything(BaseException):
    """Raised through Hypothesis (a BaseException is not a test failure, so nothing shrinks)."""


def _execute(
    prop: Property,
    target: Target,
    rec: recorder.Recorder,
    devs: list[Deviation],
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
    def checked(example: dict[str, Any] | None) -> None:
        try:
            _checked(example)
        except Exception as exc:
            # A target that declines an example with NotImplementedError (an adapter for a
            # library without pos_weight, say) is not judged on it: the example is rejected and
            # counted, and a property no example of which it accepts is reported as not
            # applicable. Any other exception is judged as usual.
            err = _first_error(exc)
            if example is not None and isinstance(err, TargetError) and declines(err.original):
                rec.not_implemented += 1
                rec.not_implemented_message = rec.not_implemented_message or safe_text(err.original, limit=300)
                if rec.not_implemented >= DECLINED_IN_A_ROW and rec.examples == rec.not_implemented:
                    raise _DeclinesEverything from None
                hypothesis.reject()
            raise

    def _checked(example: dict[str, Any] | None) -> None:
        rec.start_example(example)
        if not devs:
            prop.check(target, example or {})
            return
        ns = predicate_namespace(example) if example is not None and any(d.where for d in devs) else None
        inside = [i for i, d in enumerate(devs) if d.covers(example, ns)]
        try:
            prop.check(target, example or {})
        except Exception as exc:  # noqa: BLE001 - a failure inside a region is counted, not raised
            err = _first_error(exc)
            if (not inside or isinstance(err, SkipProperty) or example is None
                    or (isinstance(err, TargetError) and declines(err.original))):
                raise  # a declined example is not a deviation: checked() rejects it
            rec.count_deviation(inside[0], safe_text(err, limit=600),
                                repro.to_source(rec.example) if rec.example is not None else None)
            # The example object itself, for the diagnosis (conformance.diagnose) after the run.
            rec.deviated[inside[0]].setdefault("object", rec.example)
            return
        # Only an example on which the target responded (returned, or raised other than a decline)
        # is evidence about a region: a property that returned before calling the target, or
        # swallowed the target's decline, leaves the region as unexercised as before.
        if rec.responded:
            for i in inside:
                rec.count_entered(i)

    if prop.strategy is None:
        checked(None)
        return

    def inner(example: dict[str, Any]) -> None:
        checked(example)

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
    try:
        with draws_independent_of_loaded_modules():
            test()
    except _DeclinesEverything:
        raise SkipProperty(f"not applicable: the target declined each of the first {rec.not_implemented} examples "
                           f"this property drew, accepting none ({rec.not_implemented_message})") from None
    except hyp_errors.Unsatisfiable:
        if rec.not_implemented:
            raise SkipProperty(f"not applicable: the target declines every example this property draws "
                               f"({rec.not_implemented_message})") from None
        raise
    if rec.not_implemented:
        rec.note(f"{rec.not_implemented} drawn example(s) not judged: the target declined them with "
                 f"NotImplementedError or an unknown keyword ({rec.not_implemented_message})")


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
