"""The sigmoid references reject bad input with a ValueError naming the argument and what was expected."""

from __future__ import annotations

import re

import pytest
import torch

from impls import focal

X = torch.zeros(2, 3)
Z = torch.zeros(2, 3)


@pytest.mark.parametrize("fn", [focal.sigmoid_bce, focal.sigmoid_focal])
@pytest.mark.parametrize(
    ("logits", "targets", "message"),
    [
        ([0.0, 1.0], Z, "logits must be a torch.Tensor, got list"),
        (torch.zeros(2, 3, dtype=torch.long), Z, "logits must have dtype in (float16, bfloat16, float32, float64), got int64"),
        (X, torch.zeros(3, 2), "targets must have the same shape as logits: logits has (2, 3), targets has (3, 2)"),
        (X, torch.zeros(2, 3, dtype=torch.float64), "targets must have the same dtype as logits: logits is float32, targets is float64"),
        (X, torch.full((2, 3), 1.5), "targets must have values in [0, 1], found 1.5"),
        (X, torch.full((2, 3), float("nan")), "targets must have values in [0, 1], found nan"),
    ],
)
def test_pair_validation(fn, logits, targets, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=re.escape(message)):
        fn(logits, targets)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 1.5}, "alpha must lie in [0, 1], got 1.5"),
        ({"alpha": "0.25"}, "alpha must be a real number, got str"),
        ({"gamma": -1.0}, "gamma must lie in [0, inf), got -1.0"),
        ({"gamma": float("nan")}, "gamma must lie in [0, inf), got nan"),
    ],
)
def test_focal_hyper_parameters(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        focal.sigmoid_focal(X, Z, **kwargs)


def test_weighted_focal_shapes() -> None:
    logits, targets = torch.zeros(2, 4, 3), torch.zeros(2, 4, 3)
    with pytest.raises(ValueError, match=re.escape("weights must have shape (2, 4) (logits without the class axis), got (4, 2)")):
        focal.weighted_sigmoid_focal(logits, targets, torch.zeros(4, 2))
    with pytest.raises(ValueError, match=re.escape("weights must have 2 dimensions, got shape (2,)")):
        focal.weighted_sigmoid_focal(logits, targets, torch.zeros(2))
    with pytest.raises(ValueError, match=re.escape("logits must have 2 or 3 dimensions, got shape (2,)")):
        focal.weighted_sigmoid_focal(torch.zeros(2), torch.zeros(2), torch.zeros(()))
    with pytest.raises(ValueError, match=re.escape("weights must have the same dtype as logits")):
        focal.weighted_sigmoid_focal(logits, targets, torch.zeros(2, 4, dtype=torch.float64))


def test_ultralytics_needs_a_class_axis() -> None:
    with pytest.raises(ValueError, match=re.escape("logits must have 2 or 3 or 4 or 5 or 6 or 7 dimensions, got shape (3,)")):
        focal.ultralytics_focal_loss(torch.zeros(3), torch.zeros(3))


# The compiled path spells the sign and 0/0 predicates differently (inductor has no vector
# signbit / isnan) and traces the float32 residual of gamma; it must give eager's values
# and gradients, -0.0, saturated logits and a gamma that float32 cannot hold included.
_EDGE_LOGITS = [0.0, -0.0, 1e-30, -1e-30, 1.0, -1.0, 20.0, -20.0, 104.0, -104.0, 1e30, -1e30, 3e38, -3e38]


@pytest.mark.parametrize(
    ("dtype", "gamma", "alpha", "target"),
    [(torch.float32, 1.3, 0.6, 0.3), (torch.float32, 0.5, None, 1.0), (torch.float64, 2.0, 0.25, 0.0)],
)
def test_compiled_matches_eager(dtype: torch.dtype, gamma: float, alpha: float | None, target: float) -> None:
    x = torch.tensor(_EDGE_LOGITS, dtype=dtype)
    z = torch.full_like(x, target)
    got = []
    for fn in (focal.sigmoid_focal, focal.sigmoid_focal_compiled):
        xr = x.clone().requires_grad_(True)
        loss = fn(xr, z, alpha=alpha, gamma=gamma)
        loss.sum().backward()
        got.append((loss.detach(), xr.grad))
    # torch.testing's default tolerance for the dtype: a few ulp (fused multiply-adds and
    # inductor's vector exp/log1p round differently from eager's kernels).
    torch.testing.assert_close(got[1][0], got[0][0])
    torch.testing.assert_close(got[1][1], got[0][1])
    assert torch.equal(torch.signbit(got[1][1]), torch.signbit(got[0][1]))
