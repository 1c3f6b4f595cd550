"""Sigmoid focal loss, forward + backward: the reference against torchvision, compiled and not.

Contestants, all on the same tensors (logits ``x``, hard targets ``z``, alpha 0.25,
gamma 2, ``loss.sum().backward()``):

- ``reference``: :func:`impls.focal.sigmoid_focal`, eager;
- ``torchvision``: ``torchvision.ops.sigmoid_focal_loss``, eager (autograd through its formula);
- ``reference_compiled``: :func:`impls.focal.sigmoid_focal_compiled` (``torch.compile`` of
  the reference: one fused kernel forms the loss and its derivative, the backward is one
  multiply);
- ``torchvision_compiled``: ``torch.compile`` of torchvision's function;
- ``memory_copy``: ``x.clone()``, what one pass over the logits costs (the floor of any
  elementwise loss: it must at least read them).

The default shape is the tracker's: 16 images x 10000 anchors x 21 classes, float32.
Rounds are interleaved (each round runs every contestant once), so drifts in machine
load hit all alike; medians and their ratios are printed side by side, with each
contestant's accuracy (max ULP against the exact mpmath oracle on a fixed sample of
logits over the whole float32 range, alpha 0.25, gamma 2).

Run either
    python benchmarks/bench_focal.py [--rounds 15] [--device cuda] [--shape 16 10000 21]
or, under pytest-benchmark (xdist disables it):
    python -m pytest benchmarks/bench_focal.py -p no:xdist --benchmark-only
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

if __name__ == "__main__":  # run as a script: import this checkout's packages, not an installed copy
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import pytest
import torch

from impls.focal import sigmoid_focal, sigmoid_focal_compiled

SHAPE = (16, 10_000, 21)
ALPHA, GAMMA = 0.25, 2.0


def make_inputs(shape: tuple[int, ...] = SHAPE, device: str = "cpu", seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g) * 4
    z = (torch.rand(shape, generator=g) < 0.01).float()  # ~1% positives, as in a detection head
    return x.to(device), z.to(device)


def _torchvision() -> Callable[..., torch.Tensor]:
    from torchvision.ops import sigmoid_focal_loss

    return sigmoid_focal_loss


def contestants() -> dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
    """Each maps (logits, targets) to the elementwise loss; ``None`` entries are skipped."""
    tv = _torchvision()
    tv_compiled = torch.compile(tv)
    return {
        "reference": lambda x, z: sigmoid_focal(x, z, alpha=ALPHA, gamma=GAMMA),
        "torchvision": lambda x, z: tv(x, z, alpha=ALPHA, gamma=GAMMA),
        "reference_compiled": lambda x, z: sigmoid_focal_compiled(x, z, alpha=ALPHA, gamma=GAMMA),
        "torchvision_compiled": lambda x, z: tv_compiled(x, z, alpha=ALPHA, gamma=GAMMA),
    }


def _sync(t: torch.Tensor) -> None:
    if t.is_cuda:
        torch.cuda.synchronize()


def _fwd_bwd(fn: Callable[..., torch.Tensor], x: torch.Tensor, z: torch.Tensor) -> Callable[[], float]:
    def run() -> float:
        xr = x.detach().requires_grad_(True)
        loss = fn(xr, z).sum()
        loss.backward()
        _sync(x)
        return float(loss.detach())

    return run


def _copy(x: torch.Tensor) -> Callable[[], float]:
    def run() -> float:
        y = x.clone()
        _sync(y)
        return 0.0

    return run


def runners(x: torch.Tensor, z: torch.Tensor) -> dict[str, Callable[[], float]]:
    out = {k: _fwd_bwd(fn, x, z) for k, fn in contestants().items()}
    out["memory_copy"] = _copy(x)
    return out


def max_ulp(fn: Callable[..., torch.Tensor], device: str, n: int = 2000, seed: int = 1) -> float:
    """Max error in float32 ULPs of ``fn`` against the exact oracle (mpmath), on logits drawn
    over the whole float32 range (uniform in [-30, 30], in [-1e4, 1e4] and log-uniform up to
    3e38) and hard targets: the regimes where formulations differ."""
    from oracles import exact

    rng = np.random.default_rng(seed)
    kind = rng.integers(0, 3, n)
    big = np.exp(rng.uniform(np.log(1e-30), np.log(3e38), n)) * rng.choice([-1.0, 1.0], n)
    x = np.where(kind == 0, rng.uniform(-30, 30, n), np.where(kind == 1, rng.uniform(-1e4, 1e4, n), big)).astype(np.float32)
    z = rng.choice([0.0, 1.0], n).astype(np.float32)
    want = exact.sigmoid_focal(x.astype(np.float64), z.astype(np.float64), ALPHA, GAMMA)
    with torch.no_grad():
        got = fn(torch.from_numpy(x).to(device), torch.from_numpy(z).to(device)).double().cpu().numpy()
    ulp = np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
    with np.errstate(invalid="ignore"):
        err = np.abs(got - want) / ulp
    return float(np.nanmax(np.where(np.isnan(got), np.inf, err)))


# --------------------------------------------------------------------------- pytest-benchmark
@pytest.fixture(scope="module")
def bench_runners() -> dict[str, Callable[[], float]]:
    return runners(*make_inputs())


@pytest.mark.parametrize("name", ["reference", "torchvision", "reference_compiled", "torchvision_compiled", "memory_copy"])
def test_focal_forward_backward(benchmark: Any, bench_runners: dict[str, Callable[[], float]], name: str) -> None:
    fn = bench_runners[name]
    fn()  # warm-up (and compilation)
    value = benchmark.pedantic(fn, rounds=10, iterations=1)
    assert value == value  # not nan


# --------------------------------------------------------------------------- script
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--shape", type=int, nargs="+", default=list(SHAPE))
    ap.add_argument("--no-accuracy", action="store_true", help="skip the max-ULP column (mpmath, a few seconds)")
    args = ap.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"device {args.device}: skipped, torch.cuda.is_available() is False (torch {torch.__version__})")
        return
    x, z = make_inputs(tuple(args.shape), args.device)
    run = runners(x, z)
    t0 = time.perf_counter()
    for fn in run.values():  # warm-up; compiles the compiled contestants
        fn()
        fn()
    warm = time.perf_counter() - t0
    times: dict[str, list[float]] = {k: [] for k in run}
    for _ in range(args.rounds):  # interleaved, so drifts in machine load hit every runner alike
        for k, fn in run.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    acc: dict[str, str] = {}
    if not args.no_accuracy:
        for k, fn in contestants().items():
            acc[k] = f"{max_ulp(fn, args.device):10.3g}"
    threads = f"{torch.get_num_threads()} threads" if args.device == "cpu" else torch.cuda.get_device_name(args.device)
    print(f"sigmoid_focal forward + backward, {tuple(args.shape)} float32, alpha {ALPHA}, gamma {GAMMA}; device {args.device} "
          f"({threads}), torch {torch.__version__}; {args.rounds} interleaved rounds, medians (warm-up and compilation {warm:.0f} s):")
    print(f"  {'contestant':22s} {'ms':>9s} {'x torchvision':>14s} {'x copy':>8s} {'max ULP':>10s}")
    for k, v in med.items():
        print(f"  {k:22s} {v:9.2f} {v / med['torchvision']:14.2f} {v / med['memory_copy']:8.1f} {acc.get(k, ''):>10s}")
    print(f"  reference / torchvision = {med['reference'] / med['torchvision']:.2f}; "
          f"reference_compiled / memory_copy = {med['reference_compiled'] / med['memory_copy']:.1f}; "
          f"reference_compiled / torchvision_compiled = {med['reference_compiled'] / med['torchvision_compiled']:.2f}")


if __name__ == "__main__":
    main()
