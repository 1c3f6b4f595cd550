"""SSD MultiBox: matching + mining + loss, forward and backward, against two baselines.

- ``reference``: :func:`impls.ssd.multibox_loss` (batched; blocked IoU, no per-image loop);
- ``seed_loop``: seed 001's per-image loop (:func:`impls.ssd.seed_multibox_loss`);
- ``ce_floor``: softmax cross-entropy forward + backward over the same scores alone
  (what every MultiBox loss must at least read and differentiate).

Inputs: B = 32 images, the 8732 SSD300 priors, C = 21 classes, 1..20 ground truths
per image (padded to 20), float32, fixed seed; the same tensors for all three.

Run either
    python -m pytest benchmarks/bench_ssd.py -p no:xdist --benchmark-only
or, for the ratios in one table (interleaved rounds, medians):
    python benchmarks/bench_ssd.py [--rounds 30] [--device cuda]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from impls import ssd

B, C, G = 32, 21, 20


def make_inputs(device: str = "cpu", seed: int = 0) -> dict[str, Any]:
    g = torch.Generator().manual_seed(seed)
    priors = ssd.ssd300_priors()
    p = priors.shape[0]
    n = torch.randint(1, G + 1, (B,), generator=g)
    xy = torch.rand(B, G, 2, generator=g) * 0.8
    wh = torch.rand(B, G, 2, generator=g) * 0.5 + 0.02
    boxes = torch.cat([xy, (xy + wh).clamp(max=1.0)], -1)
    mask = torch.arange(G)[None] < n[:, None]
    labels = torch.randint(1, C, (B, G), generator=g)
    locs = torch.randn(B, p, 4, generator=g)
    scores = torch.randn(B, p, C, generator=g)
    with torch.no_grad():
        matched = ssd.ssd_matching(boxes, mask, priors)
        floor_labels = torch.where(matched >= 0, torch.gather(labels, 1, matched.clamp(min=0)), 0).reshape(-1)
    out = dict(priors=priors, boxes=boxes, mask=mask, labels=labels, locs=locs, scores=scores, floor_labels=floor_labels)
    return {k: v.to(device) for k, v in out.items()}


def _fwd_bwd(ex: dict[str, Any], fn: Callable[..., torch.Tensor]) -> Callable[[], float]:
    def run() -> float:
        locs = ex["locs"].detach().requires_grad_(True)
        scores = ex["scores"].detach().requires_grad_(True)
        loss = fn(locs, scores)
        loss.backward()
        if locs.is_cuda:
            torch.cuda.synchronize()
        return float(loss.detach())

    return run


def runners(ex: dict[str, Any]) -> dict[str, Callable[[], float]]:
    args = (ex["boxes"], ex["labels"], ex["mask"], ex["priors"])
    c = ex["scores"].shape[-1]
    return {
        "reference": _fwd_bwd(ex, lambda lo, sc: ssd.multibox_loss(lo, sc, *args)),
        "seed_loop": _fwd_bwd(ex, lambda lo, sc: ssd.seed_multibox_loss(lo, sc, *args)),
        "ce_floor": _fwd_bwd(ex, lambda lo, sc: F.cross_entropy(sc.reshape(-1, c), ex["floor_labels"])),
    }


@pytest.fixture(scope="module")
def bench_runners() -> dict[str, Callable[[], float]]:
    return runners(make_inputs())


@pytest.mark.parametrize("name", ["reference", "seed_loop", "ce_floor"])
def test_multibox_fwd_bwd(benchmark: Any, bench_runners: dict[str, Callable[[], float]], name: str) -> None:
    fn = bench_runners[name]
    fn()  # warm-up
    value = benchmark.pedantic(fn, rounds=15, iterations=1)
    assert value == value  # not nan (the seed loop is finite here: every image has objects)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    run = runners(make_inputs(args.device))
    times: dict[str, list[float]] = {k: [] for k in run}
    for fn in run.values():  # warm-up
        fn()
    for _ in range(args.rounds):  # interleaved, so drifts in machine load hit every runner alike
        for k, fn in run.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    print(f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads, B={B}, P=8732, C={C}, G<={G}, "
          f"{args.rounds} interleaved rounds, medians:")
    for k, v in med.items():
        print(f"  {k:10s} {v:8.2f} ms   {v / med['ce_floor']:5.2f}x floor")
    print(f"  reference is {med['seed_loop'] / med['reference']:.2f}x faster than the seed loop")


if __name__ == "__main__":
    main()
