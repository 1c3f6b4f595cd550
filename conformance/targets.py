"""Targets: the implementations under test, bound to a spec.

A target is named on the command line as
- ``reference``: the spec's reference implementation (the default);
- ``package.module:attr``: any callable following the spec's canonical signature
  (``--spec`` says which spec, or the callable declares it with
  :func:`conforms_to`);
- ``package.module``: every callable in the module declared with :func:`conforms_to`;
- ``variant:NAME`` (or ``variants``): a spec's named variant (a documented quirk);
- an adapter name for a known library (see ``conformance.adapters``).

Calls go through :class:`Target`, which logs them (for the repro snippet) and
turns an exception raised inside the implementation into :class:`TargetError`, so
that a crash in the code under test is told apart from a failed claim.
"""

from __future__ import annotations

import faulthandler
import importlib
import inspect
import os
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from conformance import recorder
from conformance.spec import Spec, load_specs

__all__ = ["Target", "TargetError", "TargetLoadError", "TargetTimeout", "conforms_to", "resolve_targets", "safe_text"]


MAX_MESSAGE = 4000  # characters of a foreign exception's text kept in a report


def safe_text(value: object, limit: int = MAX_MESSAGE) -> str:
    """``str(value)`` that cannot raise, clipped, and encodable as UTF-8.

    Exceptions from foreign code may have a ``__str__`` that raises, a message of
    megabytes, or lone surrogates that no UTF-8 report file can hold.
    """
    try:
        text = str(value)
    except Exception as exc:  # noqa: BLE001 - a broken __str__ must not break the report
        text = f"<{type(value).__name__} whose str() raised {type(exc).__name__}>"
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) > limit:
        cut = len(text) - limit
        text = f"{text[: limit // 2]} ... [{cut} characters cut] ... {text[-limit // 2 :]}"
    return text


class TargetError(Exception):
    """The implementation under test raised while computing a property."""

    def __init__(self, target: str, exc: BaseException) -> None:
        super().__init__(f"{target} raised {type(exc).__name__}: {safe_text(exc)}")
        self.original = exc


class TargetTimeout(BaseException):
    """The implementation under test did not return within the per-call time limit.

    A ``BaseException`` on purpose: Hypothesis treats an ``Exception`` as a failing
    example and shrinks it, calling the target again and again, each call costing
    the full limit; this one ends the property run at once, and the example that
    hung stays the recorded counterexample. ``not_called`` marks the fail-fast
    raise for a target that already hung (the example at hand never ran).
    """

    def __init__(self, message: str, *, not_called: bool = False) -> None:
        super().__init__(message)
        self.not_called = not_called


# Per-call wall-clock limit in seconds (0 disables); set by --example-timeout.
EXAMPLE_TIMEOUT_S = float(os.environ.get("CONFORMANCE_EXAMPLE_TIMEOUT", "60"))

# Where a pytest-xdist worker's faulthandler writes (set by the plugin in workers
# only). When set, a call that outlives the hard limit (hard_limit(limit)) ends the
# worker: the hang did not yield to SIGALRM (a C call, or a target that blocks the
# signal), and only the worker's death, which the controller records, frees it.
HARD_KILL_FILE: Any = None


def hard_limit(limit: float) -> float:
    """Seconds after which a worker running a hung call is killed (2 x limit + 1 s)."""
    return 2.0 * limit + 1.0


_GLOBAL_STATE = (
    ("default dtype", torch.get_default_dtype, torch.set_default_dtype),
    ("grad mode (torch.is_grad_enabled())", torch.is_grad_enabled, torch.set_grad_enabled),
)

_alarm_depth = 0  # > 0 while a call runs under our SIGALRM; nested calls reuse it


class TargetLoadError(Exception):
    """The target could not be imported or bound to a spec."""


def conforms_to(*spec_ids: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare that the decorated callable implements the given spec(s).

    >>> @conforms_to("sigmoid_focal")
    ... def my_focal(logits, targets, *, alpha=0.25, gamma=2.0): ...
    """
    if not spec_ids:
        raise ValueError("conforms_to needs at least one spec id, e.g. conforms_to('sigmoid_focal')")

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.__conformance_specs__ = tuple(spec_ids)  # type: ignore[attr-defined]
        return fn

    return deco


@dataclass
class Target:
    """One implementation bound to one spec."""

    name: str
    spec_id: str
    fn: Callable[..., Any] | None
    source: str  # "module:attr" that imports the callable, for repro snippets
    kind: str = "callable"  # reference | callable | variant | adapter
    conventions: dict[str, str] = field(default_factory=dict)
    load_error: str | None = None
    skip_reason: str | None = None  # e.g. the adapter's library is not installed
    repro_call: str | None = None  # how a repro snippet calls the library itself
    hung: str | None = None  # set once a call exceeded the time limit; later calls fail at once

    @property
    def label(self) -> str:
        return self.name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        global _alarm_depth
        if self.fn is None:
            raise TargetLoadError(self.load_error or f"target {self.name} is not loaded")
        rec = recorder.current()
        if rec is not None:
            rec.log_call(args, kwargs)
        if self.hung is not None:
            # Each further call would cost the full limit again: fail fast instead.
            raise TargetTimeout(f"not called: an earlier call {self.hung}", not_called=True)
        limit = EXAMPLE_TIMEOUT_S
        # SIGALRM interrupts Python-level hangs (loops, sleeps, lock waits) in the main
        # thread (pytest's, and each xdist worker's); a hang inside a C call is left to
        # the hard limit in xdist workers (faulthandler ends the worker).
        alarm = (
            limit > 0
            and _alarm_depth == 0
            and hasattr(signal, "setitimer")
            and threading.current_thread() is threading.main_thread()
        )
        old_handler: Any = None
        if alarm:

            def _on_alarm(signum: int, frame: Any) -> None:
                raise TargetTimeout(f"{self.name} did not return within {limit:g} s (per-call time limit, --example-timeout)")

            old_handler = signal.signal(signal.SIGALRM, _on_alarm)
            signal.setitimer(signal.ITIMER_REAL, limit)
            _alarm_depth += 1
            if HARD_KILL_FILE is not None:
                faulthandler.dump_traceback_later(hard_limit(limit), exit=True, file=HARD_KILL_FILE)
        state = [get() for _, get, _ in _GLOBAL_STATE]
        try:
            out = self.fn(*args, **kwargs)
        except TargetTimeout as exc:
            self.hung = str(exc).replace(f"{self.name} did not return", "did not return", 1)
            raise
        except (AssertionError, TargetError, SystemExit) as exc:
            # An assert (or sys.exit) inside the target is still the target's crash, not our claim.
            raise TargetError(self.name, exc) from exc
        except Exception as exc:  # noqa: BLE001 - any failure of foreign code is recorded
            raise TargetError(self.name, exc) from exc
        finally:
            if alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, old_handler)
                _alarm_depth -= 1
                if HARD_KILL_FILE is not None:
                    faulthandler.cancel_dump_traceback_later()
            changed = _restore_global_state(state)
        if changed:
            raise AssertionError(
                f"{self.name} changed torch's global state and left it changed: {'; '.join(changed)} "
                "(restored; every later computation in the process would have seen it)"
            )
        return out

    def tensor(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Call and require a tensor result (the canonical signatures all return one)."""
        out = self(*args, **kwargs)
        if not isinstance(out, torch.Tensor):
            raise AssertionError(
                f"{self.name} returned {type(out).__name__}, but the canonical signature "
                f"of {self.spec_id} returns a torch.Tensor"
            )
        return out


def _restore_global_state(before: list[Any]) -> list[str]:
    """Put back torch's process-wide settings a call changed; describe each change."""
    changed = []
    for (what, get, put), old in zip(_GLOBAL_STATE, before):
        new = get()
        if new != old:
            put(old)
            changed.append(f"{what} {old} -> {new}")
    return changed


def _import_attr(path: str) -> Any:
    mod_name, _, attr = path.partition(":")
    module = importlib.import_module(mod_name)
    if not attr:
        return module
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _reference(spec: Spec) -> Target:
    fn = spec.reference
    return Target(
        name="reference",
        spec_id=spec.id,
        fn=fn,
        source=f"{fn.__module__}:{fn.__qualname__}",
        kind="reference",
    )


def resolve_targets(names: Sequence[str], spec_ids: Sequence[str]) -> list[Target]:
    """Turn command-line target names into targets bound to specs.

    Failures to import or bind become targets with ``load_error`` set, so that the
    run records them as outcomes instead of crashing.
    """
    specs = load_specs()
    for sid in spec_ids:
        if sid not in specs:
            raise ValueError(f"--spec {sid!r} is unknown; known specs: {', '.join(sorted(specs))}")
    selected = list(spec_ids) or sorted(specs)
    names = list(names) or ["reference"]
    out: list[Target] = []
    for name in names:
        if name == "reference":
            out.extend(_reference(specs[s]) for s in selected)
        elif name in ("variant", "variants"):
            for s in selected:
                out.extend(_variant_target(specs[s], v.name) for v in specs[s].variants)
        elif name.startswith("variant:"):
            vname = name.split(":", 1)[1]
            hits = [s for s in selected if any(v.name == vname for v in specs[s].variants)]
            if not hits:
                raise ValueError(f"--target {name!r}: no selected spec has a variant named {vname!r}")
            out.extend(_variant_target(specs[s], vname) for s in hits)
        elif ":" in name or "." in name:
            out.extend(_callable_targets(name, spec_ids, specs))
        else:
            from conformance import adapters

            out.extend(adapters.targets_for(name, selected))
    return out


def _variant_target(spec: Spec, vname: str) -> Target:
    v = spec.variant(vname)
    return Target(
        name=f"variant:{vname}",
        spec_id=spec.id,
        fn=v.function,
        source=f"{v.function.__module__}:{v.function.__qualname__}",
        kind="variant",
        conventions={"why": v.why},
    )


def _callable_targets(name: str, spec_ids: Sequence[str], specs: dict[str, Spec]) -> list[Target]:
    try:
        obj = _import_attr(name)
    except Exception as exc:  # noqa: BLE001 - recorded as the target's outcome
        msg = f"cannot import target {name!r}: {type(exc).__name__}: {exc}"
        return [Target(name=name, spec_id=s, fn=None, source=name, load_error=msg) for s in (spec_ids or ["?"])]
    if inspect.ismodule(obj):
        found = [
            (attr, fn)
            for attr, fn in sorted(vars(obj).items())
            if callable(fn) and getattr(fn, "__conformance_specs__", None)
        ]
        if not found:
            raise ValueError(
                f"--target {name!r} is a module with no callable declared by @conforms_to; "
                "give module:attr with --spec ID instead"
            )
        return [
            t
            for attr, fn in found
            for t in _callable_targets(f"{name}:{attr}", spec_ids, specs)
        ]
    if not callable(obj):
        msg = f"target {name!r} is a {type(obj).__name__}, not callable"
        return [Target(name=name, spec_id=s, fn=None, source=name, load_error=msg) for s in (spec_ids or ["?"])]
    declared = tuple(getattr(obj, "__conformance_specs__", ()))
    bound = list(spec_ids) or list(declared)
    if not bound:
        raise ValueError(
            f"--target {name!r} declares no spec: pass --spec ID (one of {', '.join(sorted(specs))}) "
            "or decorate it with conformance.conforms_to(ID)"
        )
    for sid in bound:
        if sid not in specs:
            raise ValueError(f"{name!r} declares unknown spec {sid!r}; known: {', '.join(sorted(specs))}")
    return [Target(name=name, spec_id=s, fn=obj, source=name) for s in bound]
