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
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from conformance import recorder

__all__ = [
    "Capabilities",
    "FRAMEWORKS",
    "TORCH",
    "Target",
    "TargetError",
    "TargetLoadError",
    "TargetTimeout",
    "conforms_to",
    "safe_text",
]


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


def declines(exc: BaseException) -> bool:
    """The target does not take this example's options: NotImplementedError (an adapter for a
    library without the option), or a TypeError for a canonical keyword its signature lacks (a
    function written before the option existed). Neither is judged; both are counted."""
    if isinstance(exc, NotImplementedError):
        return True
    return isinstance(exc, TypeError) and "unexpected keyword argument" in str(exc)


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


FRAMEWORKS = ("torch", "tf", "jax", "numpy")


@dataclass(frozen=True)
class Capabilities:
    """What a target can do, as typed fields (never read from prose).

    ``framework``: where it computes (``torch``, ``tf``, ``jax``, ``numpy``).
    ``autograd``: where its gradients come from (``torch``; ``tf`` through
    ``tf.GradientTape`` and ``jax`` through ``jax.vjp``, both bridged into torch's
    autograd by the adapter; ``None``: no gradients). ``devices``: where it can
    run on torch tensors. ``compilable``: ``torch.compile`` can trace it.
    """

    framework: str = "torch"
    autograd: str | None = "torch"
    devices: frozenset[str] = frozenset({"cpu", "cuda", "mps"})
    compilable: bool = True

    def __post_init__(self) -> None:
        if self.framework not in FRAMEWORKS:
            raise ValueError(f"Capabilities(framework={self.framework!r}) must be one of {FRAMEWORKS}")
        if self.autograd is not None and self.autograd not in FRAMEWORKS:
            raise ValueError(f"Capabilities(autograd={self.autograd!r}) must be None or one of {FRAMEWORKS}")

    def lacks(self, needs: frozenset[str], name: str) -> str | None:
        """The reason a property with these needs does not apply to this target, or None."""
        if "autograd" in needs and self.autograd is None:
            return f"{name} computes in {self.framework} with no gradient bridge: gradient properties do not apply"
        if "torch_devices" in needs and self.framework != "torch":
            return (
                f"{name} computes in {self.framework} on the CPU (its adapter converts tensors): "
                "torch device placement is not what it exercises"
            )
        if "compile" in needs and (self.framework != "torch" or not self.compilable):
            return f"{name} computes in {self.framework}: there is nothing for torch.compile to trace"
        unknown = needs - {"autograd", "torch_devices", "compile"}
        if unknown:
            raise ValueError(f"unknown capability needs {sorted(unknown)}; known: autograd, torch_devices, compile")
        return None


TORCH = Capabilities()


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
    kind: str = "callable"  # reference | callable | variant | adapter | mutant
    capabilities: Capabilities = TORCH
    translations: dict[str, str] = field(default_factory=dict)  # what an adapter translates, for the report
    options: tuple[str, ...] = ()  # an adapter's library options that change the maths and that it exercises
    not_covered: dict[str, str] = field(default_factory=dict)  # library option -> why the adapter does not exercise it
    library: str | None = None  # the third-party distribution an adapter calls
    why: str | None = None  # a variant's documented quirk
    load_error: str | None = None
    skip_reason: str | None = None  # e.g. the adapter's library is not installed
    repro_call: str | None = None  # how a repro snippet calls the library itself
    hung: str | None = None  # set once a call exceeded the time limit; later calls fail at once

    @property
    def label(self) -> str:
        return self.name

    @property
    def framework(self) -> str:
        return self.capabilities.framework

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
            if rec is not None:
                rec.responded += 1
            raise
        except (SystemExit, Exception) as exc:
            # An assert (or sys.exit) inside the target is still the target's crash, not our claim;
            # any failure of foreign code is recorded.
            if rec is not None and not declines(exc):
                rec.responded += 1
            raise TargetError(self.name, exc) from exc
        else:
            if rec is not None:
                rec.responded += 1
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
