"""Unit tests of the IoU-family references against the NumPy oracles, known values and invariances.

Plain pytest on seeded boxes and named edge cases (degenerate and inverted boxes); the
Hypothesis properties live in ``conformance/specs/iou.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch

from impls import iou as ref
from oracles import numpy_iou as npo

LossFn = Callable[..., torch.Tensor]
NAMES = ("iou_loss", "giou_loss", "diou_loss", "ciou_loss")
RANGES = {"iou_loss": (0.0, 1.0), "giou_loss": (0.0, 2.0), "diou_loss": (0.0, 2.0), "ciou_loss": (0.0, 3.0)}


def _loss(name: str) -> LossFn:
    return getattr(ref, name)


def _boxes(n: int, seed: int, *, dtype: torch.dtype = torch.float64, scale: float = 10.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * scale
    wh = torch.rand(n, 2, generator=g, dtype=torch.float64) * scale / 2
    return torch.cat([xy, xy + wh], dim=-1).to(dtype)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


# Degenerate pairs: zero width, zero height, a point, identical points, identical lines,
# a point inside a box, touching edges.
DEGENERATE = torch.tensor(
    [
        [[0.0, 0.0, 0.0, 2.0], [0.0, 0.0, 1.0, 1.0]],
        [[0.0, 1.0, 3.0, 1.0], [0.0, 0.0, 2.0, 2.0]],
        [[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 2.0, 2.0]],
        [[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]],
        [[0.0, 1.0, 3.0, 1.0], [0.0, 1.0, 3.0, 1.0]],
        [[0.0, 0.0, 0.0, 0.0], [5.0, 5.0, 5.0, 5.0]],
        [[0.0, 0.0, 1.0, 1.0], [1.0, 0.0, 2.0, 1.0]],
    ],
    dtype=torch.float64,
)


@pytest.mark.parametrize("name", NAMES)
class TestIoUFamily:
    @pytest.mark.parametrize("reduction", ("none", "mean", "sum"))
    def test_matches_numpy_oracle(self, name: str, reduction: str) -> None:
        b1, b2 = _boxes(40, 0), _boxes(40, 1)
        b1[:5] = b2[:5]
        b1[5:10] = b2[5:10] + 0.5
        out = _loss(name)(b1, b2, reduction=reduction)
        want = getattr(npo, name)(_np(b1), _np(b2), reduction=reduction)
        np.testing.assert_allclose(_np(out), want, rtol=1e-12, atol=1e-14)

    def test_matches_numpy_oracle_on_batched_shapes(self, name: str) -> None:
        b1, b2 = _boxes(24, 2).reshape(2, 3, 4, 4), _boxes(24, 3).reshape(2, 3, 4, 4)
        out = _loss(name)(b1, b2)
        assert out.shape == (2, 3, 4)
        np.testing.assert_allclose(_np(out), getattr(npo, name)(_np(b1), _np(b2)), rtol=1e-12, atol=1e-14)

    def test_identical_boxes_give_zero_loss_up_to_eps(self, name: str) -> None:
        b = _boxes(10, 4, scale=100.0)
        area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        np.testing.assert_allclose(_np(_loss(name)(b, b.clone())), _np(1e-7 / (area + 1e-7)), rtol=1e-6, atol=1e-15)

    def test_symmetric_in_its_arguments(self, name: str) -> None:
        b1, b2 = _boxes(30, 5), _boxes(30, 6)
        torch.testing.assert_close(_loss(name)(b1, b2), _loss(name)(b2, b1))

    def test_within_its_range(self, name: str) -> None:
        b1, b2 = _boxes(200, 7), _boxes(200, 8)
        out = _loss(name)(b1, b2)
        lo, hi = RANGES[name]
        assert float(out.min()) >= lo - 1e-12 and float(out.max()) <= hi + 1e-12

    def test_translation_invariant(self, name: str) -> None:
        b1, b2 = _boxes(30, 9), _boxes(30, 10)
        shift = torch.tensor([3.5, -7.25, 3.5, -7.25], dtype=torch.float64)
        torch.testing.assert_close(_loss(name)(b1 + shift, b2 + shift), _loss(name)(b1, b2), rtol=1e-10, atol=1e-12)

    def test_scale_invariant_away_from_eps(self, name: str) -> None:
        b1, b2 = _boxes(30, 11, scale=100.0), _boxes(30, 12, scale=100.0)
        torch.testing.assert_close(_loss(name)(4.0 * b1, 4.0 * b2), _loss(name)(b1, b2), rtol=1e-8, atol=1e-8)

    @pytest.mark.parametrize("dtype", (torch.float32, torch.float64))
    def test_degenerate_boxes_have_finite_value_and_gradient(self, name: str, dtype: torch.dtype) -> None:
        b1 = DEGENERATE[:, 0].to(dtype).requires_grad_(True)
        b2 = DEGENERATE[:, 1].to(dtype).requires_grad_(True)
        out = _loss(name)(b1, b2)
        out.sum().backward()
        assert bool(torch.isfinite(out).all()), out
        assert b1.grad is not None and b2.grad is not None
        assert bool(torch.isfinite(b1.grad).all()) and bool(torch.isfinite(b2.grad).all())
        np.testing.assert_allclose(_np(out), getattr(npo, name)(_np(b1), _np(b2)), rtol=1e-5, atol=1e-5)

    @pytest.mark.parametrize("which", ("boxes1", "boxes2"))
    def test_inverted_boxes_raise_naming_the_argument(self, name: str, which: str) -> None:
        good = _boxes(3, 13)
        bad = good.clone()
        bad[1] = torch.tensor([2.0, 2.0, 1.0, 3.0], dtype=torch.float64)
        args = (bad, good) if which == "boxes1" else (good, bad)
        with pytest.raises(ValueError, match=f"{which} must satisfy x2 >= x1 and y2 >= y1"):
            _loss(name)(*args)
        bad[1] = torch.tensor([0.0, 3.0, 1.0, 2.0], dtype=torch.float64)
        with pytest.raises(ValueError, match=which):
            _loss(name)(*args)

    def test_empty_input(self, name: str) -> None:
        b = torch.zeros(0, 4, dtype=torch.float32, requires_grad=True)
        fn = _loss(name)
        assert fn(b, b.detach()).shape == (0,)
        assert fn(b, b.detach(), reduction="sum").item() == 0.0
        mean = fn(b, b.detach(), reduction="mean")
        assert mean.item() == 0.0 and mean.dtype == torch.float32
        mean.backward()
        assert b.grad is not None and b.grad.shape == (0, 4)

    @pytest.mark.parametrize("dtype", (torch.float32, torch.float16, torch.bfloat16))
    def test_preserves_dtype(self, name: str, dtype: torch.dtype) -> None:
        out = _loss(name)(_boxes(5, 14, dtype=dtype), _boxes(5, 15, dtype=dtype), reduction="none")
        assert out.dtype == dtype and out.shape == (5,)

    def test_validation_errors_name_the_argument(self, name: str) -> None:
        fn = _loss(name)
        b = _boxes(3, 16)
        cases = [
            (lambda: fn(b[:, :3], b), "boxes1 must have shape \\(..., 4\\)"),
            (lambda: fn(b, b[:2]), "boxes2 must have the same shape as boxes1"),
            (lambda: fn(b, b.float()), "boxes2 must have the same dtype as boxes1"),
            (lambda: fn(b, b, reduction="avg"), "reduction must be one of"),
            (lambda: fn(b, b, eps=0.0), "eps must lie in"),
            (lambda: fn(b.long(), b.long()), "boxes1 must have dtype"),
            (lambda: fn(b.numpy(), b), "boxes1 must be a torch.Tensor"),
        ]
        if name == "iou_loss":
            cases.append((lambda: fn(b, b, mode="Linear"), "mode must be one of"))
        for call, match in cases:
            with pytest.raises(ValueError, match=match):
                call()


@pytest.mark.parametrize("name", ("iou_loss", "giou_loss", "diou_loss"))
def test_gradcheck(name: str) -> None:
    """CIoU is left out on purpose: its alpha is a constant in backward (see TestKnownValues)."""
    b1 = torch.tensor([[0.0, 0.0, 2.0, 3.0], [1.0, 1.0, 4.0, 2.0], [0.0, 0.0, 1.0, 1.0]], dtype=torch.float64)
    b2 = torch.tensor([[1.0, 0.5, 3.0, 2.5], [5.0, 0.0, 6.0, 3.0], [0.2, 0.3, 0.9, 1.7]], dtype=torch.float64)
    b1.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: _loss(name)(a, b2), (b1,))


class TestKnownValues:
    def test_half_overlapping_squares(self) -> None:
        b1 = torch.tensor([[0.0, 0.0, 2.0, 2.0]], dtype=torch.float64)
        b2 = torch.tensor([[1.0, 0.0, 3.0, 2.0]], dtype=torch.float64)
        iou = 2.0 / 6.0
        assert ref.iou_loss(b1, b2).item() == pytest.approx(1 - iou, rel=1e-7)
        assert ref.giou_loss(b1, b2).item() == pytest.approx(1 - iou, rel=1e-7)
        assert ref.diou_loss(b1, b2).item() == pytest.approx(1 - iou + 1.0 / (9.0 + 4.0), rel=1e-7)
        assert ref.ciou_loss(b1, b2).item() == pytest.approx(1 - iou + 1.0 / 13.0, rel=1e-7)

    def test_disjoint_boxes_iou_is_flat_but_giou_and_diou_are_not(self) -> None:
        b1 = torch.tensor([[0.0, 0.0, 1.0, 1.0]], dtype=torch.float64, requires_grad=True)
        b2 = torch.tensor([[3.0, 0.0, 4.0, 1.0]], dtype=torch.float64)
        assert ref.iou_loss(b1, b2).item() == 1.0
        assert ref.giou_loss(b1, b2).item() == pytest.approx(1 + (4.0 - 2.0) / 4.0, rel=1e-7)
        ref.iou_loss(b1, b2).sum().backward()
        assert b1.grad is not None and bool((b1.grad == 0).all())
        b1.grad = None
        ref.giou_loss(b1, b2).sum().backward()
        assert b1.grad is not None and float(b1.grad.abs().sum()) > 0

    def test_giou_never_above_iou_and_diou_ciou_add_penalties(self) -> None:
        b1, b2 = _boxes(300, 20), _boxes(300, 21)
        iou_l, giou_l = ref.iou_loss(b1, b2), ref.giou_loss(b1, b2)
        diou_l, ciou_l = ref.diou_loss(b1, b2), ref.ciou_loss(b1, b2)
        assert bool((giou_l >= iou_l - 1e-12).all())
        assert bool((diou_l >= iou_l - 1e-12).all())
        assert bool((ciou_l >= diou_l - 1e-12).all())

    def test_ciou_equals_diou_for_equal_aspect_ratios(self) -> None:
        b1 = torch.tensor([[0.0, 0.0, 2.0, 1.0]], dtype=torch.float64)
        b2 = torch.tensor([[1.0, 1.0, 5.0, 3.0]], dtype=torch.float64)
        torch.testing.assert_close(ref.ciou_loss(b1, b2), ref.diou_loss(b1, b2))

    def test_ciou_alpha_is_not_differentiated(self) -> None:
        b1 = torch.tensor([[0.0, 0.0, 2.0, 3.0]], dtype=torch.float64, requires_grad=True)
        b2 = torch.tensor([[1.0, 0.5, 4.0, 2.5]], dtype=torch.float64)
        ref.ciou_loss(b1, b2).sum().backward()
        g_ref = b1.grad
        x = b1.detach().clone().requires_grad_(True)
        d = ref.diou_loss(x, b2)
        w1, h1 = x[:, 2] - x[:, 0], x[:, 3] - x[:, 1]
        w2, h2 = b2[:, 2] - b2[:, 0], b2[:, 3] - b2[:, 1]
        v = 4 / np.pi**2 * (torch.atan(w2 / (h2 + 1e-7)) - torch.atan(w1 / (h1 + 1e-7))) ** 2
        iou = 1 - ref.iou_loss(x, b2)
        alpha = (v / (1 - iou + v + 1e-7)).detach()
        (d + alpha * v).sum().backward()
        assert g_ref is not None and x.grad is not None
        torch.testing.assert_close(g_ref, x.grad)

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_ciou_gradient_is_finite_where_the_aspect_ratio_overflows(self, dtype: torch.dtype) -> None:
        # A zero-height box of huge width: w / (h + eps) / (h + eps) overflows in float32, and the
        # quotient's chain rule met atan'(inf) * inf = 0 * inf (dev-profile seed 3426775684 of the main job).
        # The true derivative of atan(w / (h + eps)) there is about -1 / w: finite.
        b1 = torch.tensor([[0.0, 0.0, 0.0, 1.7014118678528e14], [0.0, 0.0, 0.0, 0.0]], dtype=dtype, requires_grad=True)
        b2 = torch.tensor([[-(1.7014118678528e14), 0.0, 1.7014118678528e14, 0.0], [0.0, 0.0, 0.0, 0.0]], dtype=dtype, requires_grad=True)
        out = ref.ciou_loss(b1, b2, eps=1e-12)
        g1, g2 = torch.autograd.grad(out.sum(), (b1, b2))
        assert torch.isfinite(out).all() and torch.isfinite(g1).all() and torch.isfinite(g2).all()
        want = npo.ciou_loss(b1.detach().double().numpy(), b2.detach().double().numpy(), eps=1e-12)
        np.testing.assert_allclose(out.detach().double().numpy(), want, rtol=1e-6)

    def test_identical_points_policy(self) -> None:
        p = torch.tensor([[1.0, 1.0, 1.0, 1.0]], dtype=torch.float64)
        assert ref.iou_loss(p, p).item() == 1.0
        assert ref.giou_loss(p, p).item() == 1.0
        assert ref.diou_loss(p, p).item() == 1.0


class TestIoUModes:
    """keras-cv's IoULoss modes: 1 - IoU, 1 - IoU^2, -ln IoU (+inf with a zero gradient where IoU = 0)."""

    @pytest.mark.parametrize("mode", ("linear", "quadratic", "log"))
    @pytest.mark.parametrize("reduction", ("none", "mean", "sum"))
    def test_matches_numpy_oracle(self, mode: str, reduction: str) -> None:
        b1, b2 = _boxes(40, 40), _boxes(40, 41)
        b1[:5] = b2[:5]
        out = ref.iou_loss(b1, b2, mode=mode, reduction=reduction)
        want = npo.iou_loss(_np(b1), _np(b2), reduction=reduction, mode=mode)
        np.testing.assert_allclose(_np(out), want, rtol=1e-12, atol=1e-14)

    def test_known_values(self) -> None:
        b1 = torch.tensor([[0.0, 0.0, 2.0, 2.0]], dtype=torch.float64)
        b2 = torch.tensor([[1.0, 0.0, 3.0, 2.0]], dtype=torch.float64)
        iou = 2.0 / (6.0 + 1e-7)
        assert ref.iou_loss(b1, b2, mode="quadratic").item() == pytest.approx(1 - iou**2, rel=1e-12)
        assert ref.iou_loss(b1, b2, mode="log").item() == pytest.approx(-math.log(iou), rel=1e-12)

    @pytest.mark.parametrize("dtype", (torch.float32, torch.float64))
    def test_log_of_a_zero_iou_is_inf_with_a_zero_gradient(self, dtype: torch.dtype) -> None:
        b1 = DEGENERATE[:, 0].to(dtype).requires_grad_(True)
        b2 = DEGENERATE[:, 1].to(dtype).requires_grad_(True)
        out = ref.iou_loss(b1, b2, mode="log")
        assert bool(torch.isinf(out).all())  # every degenerate pair has IoU 0
        out.sum().backward()
        assert b1.grad is not None and b2.grad is not None
        assert bool((b1.grad == 0).all()) and bool((b2.grad == 0).all())

    def test_unknown_mode_is_rejected(self) -> None:
        b = _boxes(3, 42)
        with pytest.raises(ValueError, match="mode must be one of"):
            ref.iou_loss(b, b, mode="squared")


@pytest.mark.parametrize("name", NAMES)
def test_gradient_stays_under_the_oracle_bound_at_ties_and_degenerate_boxes(name: str) -> None:
    """grad_l1_bound holds for the reference's subgradients on a tie-heavy integer grid."""
    g = torch.Generator().manual_seed(50)
    xy = torch.randint(-3, 4, (400, 2), generator=g).double()
    wh = torch.randint(0, 3, (400, 2), generator=g).double()
    b1 = torch.cat([xy, xy + wh], -1)
    b2 = b1[torch.randperm(400, generator=g)].clone()
    b1.requires_grad_(True)
    b2.requires_grad_(True)
    _loss(name)(b1, b2).sum().backward()
    assert b1.grad is not None and b2.grad is not None
    total = _np(b1.grad.abs().sum(-1) + b2.grad.abs().sum(-1))
    bound = npo.grad_l1_bound(_np(b1), _np(b2), name)
    assert bool(np.all(total <= bound * (1 + 1e-12))), float(np.max(total - bound))


def test_giou_matches_fvcore_when_installed() -> None:
    fvcore_giou = pytest.importorskip("fvcore.nn").giou_loss
    b1, b2 = _boxes(50, 30), _boxes(50, 31)
    torch.testing.assert_close(ref.giou_loss(b1, b2), fvcore_giou(b1, b2, reduction="none"), rtol=1e-6, atol=1e-6)
