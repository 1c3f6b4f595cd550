"""Targets for ``sigmoid_bce`` (``f(logits, targets) -> Tensor``), each hostile in one way.

Each docstring states what it does; ``tests/test_hostile.py`` states the outcome
the engine must record for it.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import time
from typing import Any

import torch

from impls.focal import sigmoid_bce

NOT_CALLABLE = 42
SCRIPT = "<script>alert(1)</script>"


def good(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Correct: runs beside the hostile ones to show the run goes on."""
    return sigmoid_bce(logits, targets)


def wrong_signature(logits: torch.Tensor) -> torch.Tensor:
    """Takes one argument where the canonical signature has two."""
    return logits


def raises(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Raises, with markup in the message that the HTML report must escape."""
    raise RuntimeError(f"kaboom {SCRIPT}")


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise ValueError("__str__ is broken too")


def raises_unprintable(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Raises an exception whose str() raises."""
    raise _Unprintable()


def raises_huge(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Raises with a 1 MB message holding a lone surrogate (not encodable as UTF-8)."""
    raise ValueError("\udcff" + "x" * 1_000_000)


def exits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Calls sys.exit (SystemExit is not an Exception)."""
    sys.exit(3)


def wrong_shape(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Returns the loss with an extra leading axis."""
    return sigmoid_bce(logits, targets).unsqueeze(0)


def wrong_dtype(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Returns float16 whatever the input dtype."""
    return sigmoid_bce(logits, targets).to(torch.float16)


def returns_list(logits: torch.Tensor, targets: torch.Tensor) -> Any:
    """Returns a Python list instead of a tensor."""
    return sigmoid_bce(logits, targets).reshape(-1).tolist()


def returns_none(logits: torch.Tensor, targets: torch.Tensor) -> None:
    """Returns nothing."""


def returns_nan(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Returns NaN everywhere."""
    return torch.full_like(logits, float("nan"))


def returns_inf(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Returns +inf everywhere."""
    return torch.full_like(logits, float("inf"))


def returns_meta(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Returns a tensor on the meta device (no data to compare)."""
    return torch.empty_like(logits, device="meta")


def mutates_values(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Computes the right loss, then clamps its input in place."""
    out = sigmoid_bce(logits, targets)
    logits.clamp_(-1.0, 1.0)
    return out


def mutates_version(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Writes into its input in place without changing a value (bumps _version)."""
    logits.mul_(1.0)
    return sigmoid_bce(logits, targets)


def sets_default_dtype(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Right answer, but switches torch's default dtype to float64 for the whole process."""
    torch.set_default_dtype(torch.float64)
    return sigmoid_bce(logits, targets)


def disables_grad(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Right answer, but turns autograd off for the whole process."""
    out = sigmoid_bce(logits, targets)
    torch.set_grad_enabled(False)
    return out


def hangs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Never returns: a Python-level busy loop."""
    while True:
        pass


def sleeps(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Never returns in practice: a blocking sleep."""
    time.sleep(3600)
    return sigmoid_bce(logits, targets)


def hangs_ignoring_alarm(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Never returns and ignores SIGALRM, like a hang inside a C call."""
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    while True:
        pass


def os_exit(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Ends its process at once (no cleanup, no report from this process)."""
    os._exit(3)


def sigkill(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Kills its own process with SIGKILL (as the out-of-memory killer would)."""
    os.kill(os.getpid(), signal.SIGKILL)
    return logits


def segfaults(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Reads address 0 (a segmentation fault, as a buggy C extension would)."""
    ctypes.string_at(0)
    return logits


def wrong_for_large_logits_logged(logits: torch.Tensor, targets: torch.Tensor, *, weight: torch.Tensor | None = None,
                                  pos_weight: torch.Tensor | None = None, reduction: str = "none") -> torch.Tensor:
    """Off by one wherever |logits| > 10, and logs every call's input.

    With ``CONFORMANCE_CALL_LOG`` set, appends one JSON line per call, so a test
    can see which example a run tried first (a replayed counterexample is not the
    simplest example, which is where generation starts).
    """
    log = os.environ.get("CONFORMANCE_CALL_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps({"logits": logits.tolist(), "targets": targets.tolist(), "dtype": str(logits.dtype)}) + "\n")
    if reduction != "none":
        raise NotImplementedError("this fixture judges elementwise values only")
    out = sigmoid_bce(logits, targets, weight=weight, pos_weight=pos_weight)
    return torch.where(logits.abs() > 10, out + 1, out)
