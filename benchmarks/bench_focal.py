"""Benchmarks of the sigmoid family: the reference against common ports.

Run: ``python -m pytest benchmarks/bench_focal.py -p no:xdist --benchmark-only``
(pytest-benchmark; xdist disables it). Shapes follow a RetinaNet head: B=8 images,
~30k anchors, 80 classes, float32, forward + backward.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from impls.focal import sigmoid_focal

B, A, C = 8, 30_000, 80


def _torchvision_style(x: torch.Tensor, z: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    p = torch.sigmoid(x)
    ce = torch.nn.functional.binary_cross_entropy_with_logits(x, z, reduction="none")
    p_t = p * z + (1 - p) * (1 - z)
    return (alpha * z + (1 - alpha) * (1 - z)) * ce * (1 - p_t) ** gamma


@pytest.fixture(scope="module")
def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(B, A, C, generator=g) * 4
    z = (torch.rand(B, A, C, generator=g) < 0.01).float()
    return x, z


@pytest.mark.parametrize(
    "name,fn",
    [
        ("reference", lambda x, z: sigmoid_focal(x, z, alpha=0.25, gamma=2.0)),
        ("torchvision_style", _torchvision_style),
    ],
)
def test_focal_forward_backward(benchmark, inputs, name: str, fn: Callable[..., torch.Tensor]) -> None:  # type: ignore[no-untyped-def]
    x, z = inputs

    def step() -> None:
        xr = x.detach().requires_grad_(True)
        fn(xr, z).sum().backward()

    benchmark.group = "sigmoid_focal fwd+bwd (8, 30000, 80) float32"
    benchmark.pedantic(step, rounds=5, warmup_rounds=1)
