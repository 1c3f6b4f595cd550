"""Crash forensics under pytest-xdist: a worker that dies becomes an ``error`` outcome.

A target that ends its process (``os._exit``, SIGKILL, a segfault, a hang SIGALRM
cannot interrupt) takes its worker down. Each worker arms faulthandler into a
note file of its own (:func:`arm`); when xdist reports the crashed item, the
controller reads the dead worker's note (:func:`note`) and builds the outcome
from the item's metadata, which the worker sent ahead in its setup report
(:func:`outcome_for_crash`).
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

__all__ = ["arm", "note", "outcome_for_crash", "new_crash_dir"]

_NOTE_FILE: list[Any] = []  # keeps the worker's crash-note file open for faulthandler


def new_crash_dir() -> str:
    return tempfile.mkdtemp(prefix="conformance-crash-notes-")


def arm(crash_dir: str | None, worker_id: str, *, pytest_watchdog: bool) -> None:
    """In a worker: fatal signals and hard-limit kills leave a traceback the controller reads."""
    import faulthandler

    from conformance import targets

    if not crash_dir or pytest_watchdog:
        # pytest's own faulthandler_timeout uses the same single watchdog; leave it to the user's setting.
        return
    try:
        f = open(Path(crash_dir) / f"{worker_id}.txt", "w")  # noqa: SIM115
    except OSError:
        return  # e.g. a remote host (--tx ssh=...) that cannot see the controller's folder
    # The hard limit's dump lists every thread; this line tells the controller which is the main one.
    f.write(f"conformance: main thread 0x{threading.main_thread().ident or 0:016x}\n")
    f.flush()
    _NOTE_FILE.append(f)
    faulthandler.enable(file=f, all_threads=False)
    targets.HARD_KILL_FILE = f


def note(crash_dir: str | None, worker_id: str, frames: int = 8) -> str:
    """What faulthandler wrote in the dead worker: the fatal error, or the hard limit's
    timeout, and the innermost frames of the thread that ran the target."""
    if not crash_dir:
        return ""
    try:
        text = (Path(crash_dir) / f"{worker_id}.txt").read_text(errors="backslashreplace")
    except OSError:
        return ""
    lines = text.splitlines()
    main = lines[0].rsplit(" ", 1)[-1] if lines and lines[0].startswith("conformance: main thread") else None
    head = [ln for ln in lines[1:] if ln.startswith(("Fatal Python error", "Timeout ("))][:1]
    blocks: list[list[str]] = []
    for ln in lines[1:]:
        if ln.startswith(("Current thread", "Thread ", "Stack (")):
            blocks.append([ln])
        elif blocks and ln.startswith("  File "):
            blocks[-1].append(ln)
    chosen = next((b for b in blocks if b[0].startswith(("Current thread", "Stack (")) or (main and main in b[0])), None)
    if chosen is None and blocks:
        chosen = blocks[0]
    return "\n".join(head + (chosen[: frames + 1] if chosen else []))


def outcome_for_crash(meta: dict[str, Any], worker: str, crash_note: str, deviations: list[Any]) -> dict[str, Any]:
    """The ``error`` outcome (as a dict) for an item whose worker died."""
    from conformance import targets
    from conformance.deviations import match
    from conformance.runner import Outcome

    limit = targets.EXAMPLE_TIMEOUT_S
    if crash_note.startswith("Timeout"):
        why = (
            f"the target did not return within {limit:g} s and did not yield to SIGALRM (a hang inside a C call, "
            f"or the signal blocked): its worker was killed at the hard limit of {targets.hard_limit(limit):g} s"
        )
        exception = "TargetTimeout"
    elif crash_note.startswith("Fatal Python error"):
        why = f"the target crashed its worker process ({crash_note.splitlines()[0]})"
        exception = "WorkerCrash"
    else:
        why = (
            "the worker process died while the target ran: the target ended the process "
            "(os._exit, a signal such as SIGKILL, or the out-of-memory killer)"
        )
        exception = "WorkerCrash"
    message = f"{why}; pytest-xdist replaced worker {worker}"
    if crash_note:
        message += f". Traceback from the worker's faulthandler:\n{crash_note}"
    outcome = Outcome(**meta, status="error", message=targets.safe_text(message), exception=exception).to_dict()
    dev = match(deviations, meta["target"], meta["spec"], meta["property"])
    if dev is not None:
        outcome["status"], outcome["deviation"], outcome["deviation_kind"] = "xfailed", dev.reason, dev.kind
    return outcome
