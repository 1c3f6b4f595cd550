"""Unit tests of the softmax-family references against the NumPy oracles, torch builtins and TF/Keras.

Plain pytest on seeded inputs and named edge cases; the Hypothesis properties live in
``conformance/specs/classification.py``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from impls import classification as ref
from oracles import numpy_classification as npo

REDUCTIONS = ("none", "mean", "sum")


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _logits(shape: tuple[int, ...], seed: int, *, scale: float = 3.0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return (torch.randn(shape, generator=_gen(seed), dtype=torch.float64) * scale).to(dtype)


def _indices(shape: tuple[int, ...], n_cls: int, seed: int, *, ignore_frac: float = 0.0) -> torch.Tensor:
    g = _gen(seed)
    t = torch.randint(0, n_cls, shape, generator=g)
    t[torch.rand(shape, generator=g) < ignore_frac] = -100
    return t


def _probs(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.softmax(torch.randn(shape, generator=_gen(seed), dtype=torch.float64) * 2, dim=1)


def _close(got: torch.Tensor, want: np.ndarray | np.floating | torch.Tensor, *, rtol: float = 1e-12, atol: float = 1e-13) -> None:
    w = want.detach().double().numpy() if isinstance(want, torch.Tensor) else np.asarray(want, np.float64)
    np.testing.assert_allclose(_np(got), w, rtol=rtol, atol=atol, equal_nan=True)


class TestSoftmaxCrossEntropy:
    @pytest.mark.parametrize("reduction", REDUCTIONS)
    @pytest.mark.parametrize("eps", (0.0, 0.25, 1.0))
    @pytest.mark.parametrize("weighted", (False, True))
    @pytest.mark.parametrize("shape", ((9, 4), (3, 4, 2, 3)))
    def test_index_targets_match_torch_and_numpy(self, reduction: str, eps: float, weighted: bool, shape: tuple[int, ...]) -> None:
        x = _logits(shape, 0)
        t = _indices((shape[0], *shape[2:]), shape[1], 1, ignore_frac=0.25)
        w = torch.rand(shape[1], generator=_gen(2), dtype=torch.float64) + 0.1 if weighted else None
        out = ref.softmax_cross_entropy(x, t, weight=w, label_smoothing=eps, reduction=reduction)
        _close(out, F.cross_entropy(x, t, weight=w, label_smoothing=eps, reduction=reduction))
        _close(out, npo.softmax_cross_entropy(_np(x), t.numpy(), None if w is None else _np(w), -100, eps, reduction))

    @pytest.mark.parametrize("reduction", REDUCTIONS)
    @pytest.mark.parametrize("eps", (0.0, 0.3))
    @pytest.mark.parametrize("weighted", (False, True))
    def test_probability_targets_match_torch_and_numpy(self, reduction: str, eps: float, weighted: bool) -> None:
        x = _logits((4, 5, 3), 3)
        q = _probs((4, 5, 3), 4)
        w = torch.rand(5, generator=_gen(5), dtype=torch.float64) if weighted else None
        out = ref.softmax_cross_entropy(x, q, weight=w, label_smoothing=eps, reduction=reduction)
        _close(out, F.cross_entropy(x, q, weight=w, label_smoothing=eps, reduction=reduction))
        _close(out, npo.softmax_cross_entropy(_np(x), _np(q), None if w is None else _np(w), -100, eps, reduction))

    @pytest.mark.parametrize("reduction", ("none", "sum"))
    def test_one_hot_probability_target_equals_index_target(self, reduction: str) -> None:
        x = _logits((6, 4), 6)
        t = _indices((6,), 4, 7)
        w = torch.tensor([0.2, 1.0, 3.0, 0.5], dtype=torch.float64)
        oh = F.one_hot(t, 4).to(x.dtype)
        kw: dict[str, Any] = {"weight": w, "label_smoothing": 0.2, "reduction": reduction}
        torch.testing.assert_close(ref.softmax_cross_entropy(x, oh, **kw), ref.softmax_cross_entropy(x, t, **kw))

    def test_weighted_mean_divides_by_sum_of_target_weights(self) -> None:
        x = _logits((5, 3), 8)
        t = torch.tensor([0, 1, 2, 2, -100])
        w = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
        total = ref.softmax_cross_entropy(x, t, weight=w, reduction="sum")
        mean = ref.softmax_cross_entropy(x, t, weight=w, reduction="mean")
        assert mean.item() == pytest.approx(total.item() / (1 + 2 + 4 + 4), rel=1e-13)

    def test_label_smoothing_formula_unweighted(self) -> None:
        x = _logits((8, 5), 9)
        t = _indices((8,), 5, 10)
        eps = 0.3
        plain = ref.softmax_cross_entropy(x, t, reduction="none")
        uniform = -torch.log_softmax(x, 1).mean(1)
        torch.testing.assert_close(ref.softmax_cross_entropy(x, t, label_smoothing=eps, reduction="none"), (1 - eps) * plain + eps * uniform)

    def test_shift_invariant_logits(self) -> None:
        x = _logits((6, 4), 11)
        t = _indices((6,), 4, 12)
        shift = torch.tensor([[0.0], [1.0], [-3.0], [64.0], [1024.0], [-50.0]], dtype=torch.float64)
        cases: list[dict[str, Any]] = [{}, {"label_smoothing": 0.1, "weight": torch.rand(4, dtype=torch.float64)}]
        for kw in cases:
            torch.testing.assert_close(
                ref.softmax_cross_entropy(x + shift, t, reduction="none", **kw),
                ref.softmax_cross_entropy(x, t, reduction="none", **kw),
                rtol=1e-12, atol=1e-11,
            )

    def test_gradient_is_softmax_minus_target(self) -> None:
        x = _logits((7, 4), 13).requires_grad_(True)
        t = _indices((7,), 4, 14)
        ref.softmax_cross_entropy(x, t, reduction="sum").backward()
        assert x.grad is not None
        torch.testing.assert_close(x.grad, torch.softmax(x.detach(), 1) - F.one_hot(t, 4).double())
        q = _probs((7, 4), 15)
        x.grad = None
        ref.softmax_cross_entropy(x, q, reduction="sum").backward()
        torch.testing.assert_close(x.grad, torch.softmax(x.detach(), 1) - q)

    def test_gradcheck_with_weights_smoothing_and_ignore(self) -> None:
        x = _logits((5, 3), 16).requires_grad_(True)
        t = torch.tensor([0, 2, -100, 1, 1])
        w = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
        assert torch.autograd.gradcheck(lambda a: ref.softmax_cross_entropy(a, t, weight=w, label_smoothing=0.2), (x,))

    def test_all_ignored_batch_none_zero_sum_zero_mean_nan_like_torch(self) -> None:
        x = _logits((4, 3), 17)
        t = torch.full((4,), -100)
        for eps in (0.0, 0.2):
            assert torch.equal(ref.softmax_cross_entropy(x, t, label_smoothing=eps, reduction="none"), torch.zeros(4, dtype=torch.float64))
            assert ref.softmax_cross_entropy(x, t, label_smoothing=eps, reduction="sum").item() == 0.0
            assert math.isnan(ref.softmax_cross_entropy(x, t, label_smoothing=eps, reduction="mean").item())
            assert math.isnan(F.cross_entropy(x, t, label_smoothing=eps, reduction="mean").item())

    def test_ignored_entries_do_not_matter_even_if_non_finite(self) -> None:
        x = _logits((4, 3), 18)
        t = torch.tensor([0, -100, 2, 1])
        base = ref.softmax_cross_entropy(x, t, label_smoothing=0.1, reduction="none")
        x2 = x.clone()
        x2[1] = torch.tensor([-math.inf, 1e30, 0.0], dtype=torch.float64)
        out = ref.softmax_cross_entropy(x2, t, label_smoothing=0.1, reduction="none")
        assert out[1].item() == 0.0
        torch.testing.assert_close(out, base)

    def test_ignored_entries_have_a_zero_gradient_even_if_non_finite(self) -> None:
        x = _logits((4, 3), 24)
        x[1] = torch.tensor([math.nan, math.inf, -math.inf], dtype=torch.float64)
        x.requires_grad_(True)
        t = torch.tensor([0, -100, 2, 1])
        w = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
        ref.softmax_cross_entropy(x, t, weight=w, label_smoothing=0.2, reduction="sum").backward()
        assert x.grad is not None and bool(torch.isfinite(x.grad).all())
        assert bool((x.grad[1] == 0).all())

    def test_mean_with_zero_target_weight_is_nan_even_with_smoothing(self) -> None:
        x = _logits((3, 4), 25)
        t = torch.tensor([0, 0, 0])
        w = torch.tensor([0.0, 1.0, 1.0, 1.0], dtype=torch.float64)
        assert ref.softmax_cross_entropy(x, t, weight=w, label_smoothing=0.1, reduction="sum").item() > 0
        assert math.isnan(ref.softmax_cross_entropy(x, t, weight=w, label_smoothing=0.1).item())
        assert math.isnan(F.cross_entropy(x, t, weight=w, label_smoothing=0.1).item())

    def test_ignore_index_inside_class_range(self) -> None:
        x = _logits((6, 3), 19)
        t = torch.tensor([0, 1, 2, 0, 1, 2])
        out = ref.softmax_cross_entropy(x, t, ignore_index=0)
        torch.testing.assert_close(out, F.cross_entropy(x, t, ignore_index=0))

    def test_empty_batch_torch_semantics(self) -> None:
        x = torch.zeros(0, 3, dtype=torch.float64)
        t = torch.zeros(0, dtype=torch.long)
        assert ref.softmax_cross_entropy(x, t, reduction="none").shape == (0,)
        assert ref.softmax_cross_entropy(x, t, reduction="sum").item() == 0.0
        assert math.isnan(ref.softmax_cross_entropy(x, t).item())
        assert math.isnan(ref.softmax_cross_entropy(x, torch.zeros(0, 3, dtype=torch.float64)).item())

    @pytest.mark.parametrize("dtype", (torch.float32, torch.float16, torch.bfloat16))
    def test_preserves_dtype(self, dtype: torch.dtype) -> None:
        x = _logits((5, 4), 20, dtype=dtype)
        t = _indices((5,), 4, 21)
        w = torch.rand(4)
        for target in (t, _probs((5, 4), 22).to(dtype)):
            out = ref.softmax_cross_entropy(x, target, weight=w, label_smoothing=0.1, reduction="none")
            assert out.dtype == dtype and out.shape == (5,)
        tol = 1e-5 if dtype == torch.float32 else 3e-2
        _close(ref.softmax_cross_entropy(x, t, reduction="none"), F.cross_entropy(x.double(), t, reduction="none"), rtol=tol, atol=tol)

    def test_validation_errors_name_the_argument(self) -> None:
        x = _logits((3, 4), 23)
        t = torch.tensor([0, 1, 2])
        cases = [
            (lambda: ref.softmax_cross_entropy(x, torch.tensor([0, 1, 4])), "target must hold class indices in \\[0, 3\\]"),
            (lambda: ref.softmax_cross_entropy(x, torch.tensor([0, -1, 2])), "target must hold class indices"),
            (lambda: ref.softmax_cross_entropy(x, t[:2]), "target of class indices must have shape \\(3,\\)"),
            (lambda: ref.softmax_cross_entropy(x, torch.zeros(3, 5, dtype=torch.float64)), "target of probabilities must have"),
            (lambda: ref.softmax_cross_entropy(x, t, reduction="batchmean"), "reduction must be one of"),
            (lambda: ref.softmax_cross_entropy(x, t, label_smoothing=1.5), "label_smoothing must lie in \\[0, 1\\]"),
            (lambda: ref.softmax_cross_entropy(x, t, weight=torch.ones(3, dtype=torch.float64)), "weight must have shape \\(4,\\)"),
            (lambda: ref.softmax_cross_entropy(x[0], t), "logits must have"),
            (lambda: ref.softmax_cross_entropy(x, t, ignore_index=1.5), "ignore_index must be an int"),  # type: ignore[arg-type]
        ]
        for call, match in cases:
            with pytest.raises(ValueError, match=match):
                call()


class TestWeightedCrossEntropy:
    def _case(self, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = _logits((2, 6, 4), seed)
        t = F.one_hot(_indices((2, 6), 4, seed + 1), 4).double()
        w = torch.rand(2, 6, generator=_gen(seed + 2), dtype=torch.float64)
        return x, t, w

    def test_matches_torch_permuted_cross_entropy_and_numpy(self) -> None:
        x, t, w = self._case(30)
        out = ref.weighted_cross_entropy(x, t, w)
        torch.testing.assert_close(out, F.cross_entropy(x.permute(0, 2, 1), t.argmax(-1), reduction="none") * w)
        _close(out, npo.weighted_cross_entropy(_np(x), _np(t), _np(w)))
        assert out.shape == (2, 6)

    def test_soft_target_is_read_as_its_argmax(self) -> None:
        x, t, w = self._case(31)
        soft = 0.7 * t + 0.3 / 4
        torch.testing.assert_close(ref.weighted_cross_entropy(x, soft, w), ref.weighted_cross_entropy(x, t, w))

    def test_gradient_is_weight_times_softmax_minus_one_hot(self) -> None:
        x, t, w = self._case(32)
        x.requires_grad_(True)
        ref.weighted_cross_entropy(x, t, w).sum().backward()
        assert x.grad is not None
        torch.testing.assert_close(x.grad, (torch.softmax(x.detach(), -1) - t) * w[..., None])

    def test_dtype_and_validation(self) -> None:
        x, t, w = self._case(33)
        assert ref.weighted_cross_entropy(x.float(), t.float(), w).dtype == torch.float32
        with pytest.raises(ValueError, match="weights must have shape \\(2, 6\\)"):
            ref.weighted_cross_entropy(x, t, w[:1])
        with pytest.raises(ValueError, match="target must have the logits' shape"):
            ref.weighted_cross_entropy(x, t[..., :3], w)
        with pytest.raises(ValueError, match="logits must have 3 dimensions"):
            ref.weighted_cross_entropy(x[0], t[0], w[0])


class TestSoftmaxFocal:
    @pytest.mark.parametrize("gamma", (0.0, 0.25, 0.5, 1.0, 2.0, 5.0))
    @pytest.mark.parametrize("with_alpha", (False, True))
    @pytest.mark.parametrize("reduction", REDUCTIONS)
    def test_matches_numpy(self, gamma: float, with_alpha: bool, reduction: str) -> None:
        x = _logits((9, 5), 40, scale=4.0)
        t = _indices((9,), 5, 41)
        a = torch.rand(5, generator=_gen(42), dtype=torch.float64) if with_alpha else None
        out = ref.softmax_focal(x, t, gamma=gamma, alpha=a, reduction=reduction)
        _close(out, npo.softmax_focal(_np(x), t.numpy(), gamma, None if a is None else _np(a), reduction))

    @pytest.mark.parametrize("alpha", (None, 0.25, "tensor"))
    @pytest.mark.parametrize("reduction", REDUCTIONS)
    def test_keywords_and_spatial_layout_match_numpy(self, alpha: Any, reduction: str) -> None:
        x = _logits((3, 4, 2, 2), 54, scale=4.0)
        t = _indices((3, 2, 2), 4, 55)
        t[0, 0, 0] = 255
        a = torch.rand(4, generator=_gen(56), dtype=torch.float64) if alpha == "tensor" else alpha
        kw: dict[str, Any] = {"gamma": 1.5, "ignore_index": 255, "label_smoothing": 0.3, "reduction": reduction}
        out = ref.softmax_focal(x, t, alpha=a, **kw)
        want = npo.softmax_focal(_np(x), t.numpy(), alpha=_np(a) if isinstance(a, torch.Tensor) else a, **kw)
        _close(out, want)

    def test_smoothed_focal_is_the_per_class_formula(self) -> None:
        x = _logits((6, 3), 57)
        t = _indices((6,), 3, 58)
        eps, gamma = 0.2, 2.0
        p = torch.softmax(x, 1)
        q = (1 - eps) * F.one_hot(t, 3).double() + eps / 3
        want = (q * (1 - p) ** gamma * -torch.log(p)).sum(1)
        torch.testing.assert_close(ref.softmax_focal(x, t, gamma=gamma, label_smoothing=eps, reduction="none"), want)

    def test_number_alpha_weights_class_zero_by_one_minus_alpha(self) -> None:
        x = _logits((7, 3), 59)
        t = _indices((7,), 3, 60)
        vec = torch.tensor([0.75, 0.25, 0.25], dtype=torch.float64)
        torch.testing.assert_close(ref.softmax_focal(x, t, alpha=0.25, reduction="none"),
                                   ref.softmax_focal(x, t, alpha=vec, reduction="none"), rtol=0, atol=0)

    def test_two_classes_equal_the_sigmoid_focal_loss_of_the_logit_difference(self) -> None:
        from impls.focal import sigmoid_focal

        x = _logits((8, 2), 61)
        t = _indices((8,), 2, 62)
        want = sigmoid_focal(x[:, 1] - x[:, 0], t.double(), alpha=0.25, gamma=2.0)
        torch.testing.assert_close(ref.softmax_focal(x, t, alpha=0.25, reduction="none"), want)

    def test_ignored_entries_give_zero_with_a_zero_gradient_and_leave_the_mean(self) -> None:
        x = _logits((4, 3), 63)
        x[2] = torch.tensor([math.nan, math.inf, -math.inf], dtype=torch.float64)
        x.requires_grad_(True)
        t = torch.tensor([0, 1, -1, 2])
        per = ref.softmax_focal(x, t, ignore_index=-1, gamma=0.5, reduction="none")
        assert per[2].item() == 0.0 and bool(torch.isfinite(per).all())
        mean = ref.softmax_focal(x, t, ignore_index=-1, gamma=0.5)
        torch.testing.assert_close(mean, per.sum() / 3)
        mean.backward()
        assert x.grad is not None and bool(torch.isfinite(x.grad).all()) and bool((x.grad[2] == 0).all())
        assert math.isnan(ref.softmax_focal(x, torch.full((4,), -1), ignore_index=-1).item())

    def test_gamma_zero_is_cross_entropy_and_alpha_weights_per_sample(self) -> None:
        x = _logits((8, 4), 43)
        t = _indices((8,), 4, 44)
        a = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
        ce = F.cross_entropy(x, t, reduction="none")
        torch.testing.assert_close(ref.softmax_focal(x, t, gamma=0.0, reduction="none"), ce)
        torch.testing.assert_close(ref.softmax_focal(x, t, gamma=0.0, alpha=a, reduction="none"), a[t] * ce)
        # "mean" is over samples: not alpha-weighted (unlike torch's weighted CE mean) and not over N x C.
        torch.testing.assert_close(ref.softmax_focal(x, t, gamma=0.0, alpha=a), (a[t] * ce).mean())

    def test_never_above_cross_entropy_and_decreasing_in_gamma(self) -> None:
        x = _logits((50, 3), 45)
        t = _indices((50,), 3, 46)
        ce = F.cross_entropy(x, t, reduction="none")
        prev = ce
        for gamma in (0.25, 0.5, 1.0, 2.0, 5.0):
            fl = ref.softmax_focal(x, t, gamma=gamma, reduction="none")
            assert bool((fl >= 0).all()) and bool((fl <= prev + 1e-15).all())
            prev = fl

    def test_per_sample_factor_matches_definition(self) -> None:
        x = _logits((10, 4), 47)
        t = _indices((10,), 4, 48)
        p_t = torch.softmax(x, 1).gather(1, t[:, None]).squeeze(1)
        want = (1 - p_t) ** 2.0 * -torch.log(p_t)
        torch.testing.assert_close(ref.softmax_focal(x, t, gamma=2.0, reduction="none"), want)

    @pytest.mark.parametrize("gamma", (0.25, 0.5, 0.75, 2.0))
    @pytest.mark.parametrize("dtype", (torch.float32, torch.float64))
    def test_finite_gradients_where_p_t_rounds_to_one(self, gamma: float, dtype: torch.dtype) -> None:
        x = torch.tensor([[30.0, 0.0], [100.0, 0.0], [1e4, 0.0], [0.0, 0.0], [0.0, 1e4]], dtype=dtype, requires_grad=True)
        t = torch.zeros(5, dtype=torch.long)
        out = ref.softmax_focal(x, t, gamma=gamma, reduction="sum")
        out.backward()
        assert torch.isfinite(out) and x.grad is not None and bool(torch.isfinite(x.grad).all())

    def test_accurate_where_p_t_is_near_one(self) -> None:
        x = torch.tensor([[30.0, 0.0]], dtype=torch.float64)
        got = ref.softmax_focal(x, torch.tensor([0]), gamma=2.0, reduction="none").item()
        q = math.exp(-30.0)
        want = (q / (1 + q)) ** 2 * math.log1p(q)
        assert got == pytest.approx(want, rel=1e-12)

    def test_gradcheck_small_gamma(self) -> None:
        x = _logits((4, 3), 49).requires_grad_(True)
        t = _indices((4,), 3, 50)
        a = torch.tensor([0.3, 0.5, 0.9], dtype=torch.float64)
        assert torch.autograd.gradcheck(lambda z: ref.softmax_focal(z, t, gamma=0.5, alpha=a), (x,))

    def test_empty_batch_and_single_class(self) -> None:
        x = torch.zeros(0, 3)
        t = torch.zeros(0, dtype=torch.long)
        assert ref.softmax_focal(x, t, reduction="none").shape == (0,)
        assert ref.softmax_focal(x, t, reduction="sum").item() == 0.0
        assert math.isnan(ref.softmax_focal(x, t).item())
        x1 = torch.randn(3, 1, requires_grad=True)
        out = ref.softmax_focal(x1, torch.zeros(3, dtype=torch.long), gamma=0.5)
        out.backward()
        assert out.item() == 0.0 and x1.grad is not None and bool((x1.grad == 0).all())

    @pytest.mark.parametrize("dtype", (torch.float32, torch.float16, torch.bfloat16))
    def test_preserves_dtype(self, dtype: torch.dtype) -> None:
        x = _logits((6, 3), 51, dtype=dtype)
        out = ref.softmax_focal(x, _indices((6,), 3, 52), alpha=torch.ones(3, dtype=torch.float64), reduction="none")
        assert out.dtype == dtype and out.shape == (6,)

    def test_validation_errors_name_the_argument(self) -> None:
        x = _logits((3, 4), 53)
        t = torch.tensor([0, 1, 2])
        cases = [
            (lambda: ref.softmax_focal(x, t, gamma=-1.0), "gamma must lie in"),
            (lambda: ref.softmax_focal(x, t, gamma=float("nan")), "gamma"),
            (lambda: ref.softmax_focal(x, t, alpha=torch.ones(3)), "alpha must have shape \\(4,\\)"),
            (lambda: ref.softmax_focal(x, torch.tensor([0, 1, 9])), "target must hold class indices in \\[0, 3\\]"),
            (lambda: ref.softmax_focal(x, t.double()), "target must have dtype"),
            (lambda: ref.softmax_focal(x, t[:2]), "target must have shape \\(3,\\)"),
            (lambda: ref.softmax_focal(x, t, reduction="batchmean"), "reduction must be one of"),
            (lambda: ref.softmax_focal(x, t, alpha=1.5), "alpha must lie in \\[0, 1\\]"),
            (lambda: ref.softmax_focal(x, t, label_smoothing=-0.1), "label_smoothing must lie in"),
            (lambda: ref.softmax_focal(x, t, ignore_index=1.5), "ignore_index must be an int or None"),  # type: ignore[arg-type]
            (lambda: ref.softmax_focal(x, torch.tensor([0, -100, 2])), "target must hold class indices"),
        ]
        for call, match in cases:
            with pytest.raises(ValueError, match=match):
                call()


class TestSoftmaxFocalOverflowingGap:
    @pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
    def test_gradient_is_finite_where_another_class_cross_entropy_overflows(self, gamma: float) -> None:
        # Class 1's -log p overflows to inf (a logit gap of 2e308); the target is class 0, whose loss and gradient
        # are 0. Forming every class's term and gathering afterwards met 0 * inf = nan in the backward.
        x = torch.tensor([[1e308, -1e308]], dtype=torch.float64, requires_grad=True)
        out = ref.softmax_focal(x, torch.tensor([0]), gamma=gamma, reduction="sum")
        (g,) = torch.autograd.grad(out, x)
        assert out.item() == 0.0
        assert torch.equal(g, torch.zeros_like(g)), g

    @pytest.mark.parametrize("gamma", [0.5, 2.0])
    @pytest.mark.parametrize("smoothing", [0.0, 0.3])
    def test_gradient_is_finite_where_the_target_cross_entropy_overflows(self, gamma: float, smoothing: float) -> None:
        # The target's own -log p overflows (its exact value, 2e308, exceeds float64): the loss is inf, the focal
        # factor exactly 1. p = (1, 0, 0): class c's term q_c (1 - p_c)^gamma (-log p_c) has the gradient
        # q_c (p - e_c) for c = 1, 2 (p_c = 0: the factor's own derivative, gamma p_c log p_c, vanishes) and 0 for
        # class 0 (p_0 = 1), so the gradient is (q_1 + q_2, -q_1, -q_2).
        x = torch.tensor([[1e308, -1e308, 0.0]], dtype=torch.float64, requires_grad=True)
        out = ref.softmax_focal(x, torch.tensor([1]), gamma=gamma, label_smoothing=smoothing, reduction="sum")
        (g,) = torch.autograd.grad(out, x)
        assert out.item() == math.inf
        q1, q2 = 1 - smoothing + smoothing / 3, smoothing / 3
        want = torch.tensor([[q1 + q2, -q1, -q2]], dtype=torch.float64)
        torch.testing.assert_close(g, want, rtol=1e-12, atol=1e-15)


class TestSeedSoftmaxFocal:
    def test_is_the_focal_factor_of_the_mean_cross_entropy(self) -> None:
        x = _logits((6, 3), 60)
        t = _indices((6,), 3, 61)
        ce = F.cross_entropy(x, t)
        want = (1 - torch.exp(-ce)) ** 2 * ce
        torch.testing.assert_close(ref.seed_softmax_focal(x, t, gamma=2.0), want)
        assert ref.seed_softmax_focal(x, t, gamma=2.0, reduction="none").shape == (6,)

    def test_differs_from_the_focal_loss_on_mixed_batches(self) -> None:
        x = torch.tensor([[5.0, 0.0], [0.0, 5.0]], dtype=torch.float64)
        t = torch.tensor([0, 0])
        seed = ref.seed_softmax_focal(x, t, gamma=2.0).item()
        right = ref.softmax_focal(x, t, gamma=2.0).item()
        assert abs(seed - right) > 0.1
        torch.testing.assert_close(ref.seed_softmax_focal(x, t, gamma=0.0), ref.softmax_focal(x, t, gamma=0.0))


def _kl_case(seed: int, *, zeros: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.log_softmax(torch.randn(4, 5, generator=_gen(seed), dtype=torch.float64) * 2, 1)
    p = _probs((4, 5), seed + 1)
    if zeros:
        p[0, 1] = 0.0
        p[2, 4] = 0.0
        p = p / p.sum(1, keepdim=True)
    return x, p


class TestKLDiv:
    @pytest.mark.parametrize("reduction", ("none", "mean", "sum", "batchmean"))
    @pytest.mark.parametrize("log_target", (False, True))
    def test_matches_torch_and_numpy(self, reduction: str, log_target: bool) -> None:
        x, p = _kl_case(70, zeros=not log_target)
        t = torch.log(p) if log_target else p
        out = ref.kl_div(x, t, reduction=reduction, log_target=log_target)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            _close(out, F.kl_div(x, t, reduction=reduction, log_target=log_target))
        _close(out, npo.kl_div(_np(x), _np(t), reduction, log_target))

    def test_batchmean_divides_by_batch_and_mean_by_numel(self) -> None:
        x, p = _kl_case(71)
        total = ref.kl_div(x, p, reduction="sum").item()
        assert ref.kl_div(x, p, reduction="batchmean").item() == pytest.approx(total / 4, rel=1e-14)
        assert ref.kl_div(x, p, reduction="mean").item() == pytest.approx(total / 20, rel=1e-14)

    def test_kl_of_a_distribution_with_itself_is_zero(self) -> None:
        _, p = _kl_case(72, zeros=False)
        assert ref.kl_div(torch.log(p), p, reduction="sum").item() == pytest.approx(0.0, abs=1e-14)
        assert ref.kl_div(torch.log(p), torch.log(p), reduction="sum", log_target=True).item() == pytest.approx(0.0, abs=1e-14)

    def test_cross_entropy_minus_entropy_is_kl(self) -> None:
        x, p = _kl_case(73)
        ce = -(p * x).sum()
        h = -torch.special.xlogy(p, p).sum()
        assert ref.kl_div(x, p, reduction="sum").item() == pytest.approx((ce - h).item(), rel=1e-12)
        assert ref.kl_div(x, p, reduction="sum").item() >= 0

    def test_zero_target_probabilities_contribute_zero_with_finite_gradients(self) -> None:
        x, p = _kl_case(74)
        x = x.clone()
        x[0, 1] = -math.inf
        xg = x.clone().requires_grad_(True)
        pg = p.clone().requires_grad_(True)
        out = ref.kl_div(xg, pg, reduction="none")
        assert out[0, 1].item() == 0.0 and out[2, 4].item() == 0.0
        out.sum().backward()
        assert xg.grad is not None and pg.grad is not None
        assert xg.grad[0, 1].item() == 0.0 and xg.grad[2, 4].item() == 0.0
        assert bool(torch.isfinite(xg.grad).all()) and bool(torch.isfinite(pg.grad).all())
        torch.testing.assert_close(xg.grad, -p)

    def test_log_target_minus_inf_is_a_zero_probability(self) -> None:
        x, p = _kl_case(75)
        lt = torch.log(p).requires_grad_(True)
        assert bool(torch.isneginf(lt.detach()).any())
        xg = x.clone().requires_grad_(True)
        out = ref.kl_div(xg, lt, reduction="sum", log_target=True)
        out.backward()
        assert out.item() == pytest.approx(ref.kl_div(x, p, reduction="sum").item(), rel=1e-13)
        assert xg.grad is not None and lt.grad is not None
        assert bool(torch.isfinite(xg.grad).all()) and bool(torch.isfinite(lt.grad).all())
        assert math.isnan(F.kl_div(x, lt.detach(), reduction="sum", log_target=True).item())

    def test_empty_input(self) -> None:
        x = torch.zeros(0, 3)
        assert ref.kl_div(x, x.clone(), reduction="none").shape == (0, 3)
        assert ref.kl_div(x, x.clone(), reduction="sum").item() == 0.0
        assert math.isnan(ref.kl_div(x, x.clone(), reduction="batchmean").item())
        assert math.isnan(ref.kl_div(x, x.clone(), reduction="mean").item())

    @pytest.mark.parametrize("dtype", (torch.float32, torch.float16, torch.bfloat16))
    def test_preserves_dtype(self, dtype: torch.dtype) -> None:
        x, p = _kl_case(76)
        assert ref.kl_div(x.to(dtype), p.to(dtype), reduction="batchmean").dtype == dtype

    def test_validation_errors_name_the_argument(self) -> None:
        x, p = _kl_case(77)
        cases = [
            (lambda: ref.kl_div(x, p, reduction="avg"), "reduction must be one of"),
            (lambda: ref.kl_div(x, p[:, :3]), "target must have the input's shape"),
            (lambda: ref.kl_div(x, p.float()), "target must have the input's dtype"),
            (lambda: ref.kl_div(x, p, log_target=1), "log_target must be a bool"),  # type: ignore[arg-type]
            (lambda: ref.kl_div(x.long(), p), "input must have dtype"),
        ]
        for call, match in cases:
            with pytest.raises(ValueError, match=match):
                call()


class TestTensorFlowOracles:
    """TF / Keras agree with the references inside their declared domains (few, slow-ish tests)."""

    @pytest.fixture(scope="class", autouse=True)
    def _tf(self) -> None:
        # Through oracles.tf, which loads triton and dynamo before TensorFlow: loaded after it,
        # they segfault (a bare importorskip("tensorflow") here crashed the worker).
        import importlib.util

        if importlib.util.find_spec("tensorflow") is None:
            pytest.skip("tensorflow is not installed")
        from oracles.tf import tf

        tf()

    def test_cross_entropy_index_and_probability_targets(self) -> None:
        from oracles import tf_classification as tfo

        x = _logits((5, 4, 2), 80)
        t = _indices((5, 2), 4, 81, ignore_frac=0.3)
        w = torch.tensor([0.5, 1.0, 2.0, 0.25], dtype=torch.float64)
        q = _probs((5, 4, 2), 82)
        for reduction in REDUCTIONS:
            _close(ref.softmax_cross_entropy(x, t, reduction=reduction), tfo.softmax_cross_entropy(_np(x), t.numpy(), reduction=reduction))
            got = ref.softmax_cross_entropy(x, t, weight=w, label_smoothing=0.2, reduction=reduction)
            _close(got, tfo.softmax_cross_entropy(_np(x), t.numpy(), weight=_np(w), label_smoothing=0.2, reduction=reduction))
            got = ref.softmax_cross_entropy(x, q, weight=w, label_smoothing=0.1, reduction=reduction)
            _close(got, tfo.softmax_cross_entropy(_np(x), _np(q), weight=_np(w), label_smoothing=0.1, reduction=reduction))
        xw, tw = _logits((2, 3, 4), 83), F.one_hot(_indices((2, 3), 4, 84), 4).double()
        ww = torch.rand(2, 3, dtype=torch.float64)
        _close(ref.weighted_cross_entropy(xw, tw, ww), tfo.weighted_cross_entropy(_np(xw), _np(tw), _np(ww)))

    def test_keras_focal_inside_and_outside_its_clipping_domain(self) -> None:
        from oracles import tf_classification as tfo

        x = _logits((8, 4), 85)
        t = _indices((8,), 4, 86)
        a = torch.rand(4, generator=_gen(87), dtype=torch.float64)
        assert bool(tfo.softmax_focal_domain(_np(x), t.numpy()).all())
        for gamma in (0.0, 0.5, 2.0):
            got = ref.softmax_focal(x, t, gamma=gamma, alpha=a, reduction="none")
            _close(got, tfo.softmax_focal(_np(x), t.numpy(), gamma=gamma, alpha=_np(a), reduction="none"))
        out_of_domain = np.array([[17.0, 0.0]])
        assert not tfo.softmax_focal_domain(out_of_domain, np.array([1])).any()
        keras_value = float(tfo.softmax_focal(out_of_domain, np.array([1]), gamma=0.0, reduction="sum"))
        assert keras_value == pytest.approx(-math.log(1e-7), rel=1e-9)
        assert ref.softmax_focal(torch.tensor(out_of_domain), torch.tensor([1]), gamma=0.0).item() == pytest.approx(17.0 + math.log1p(math.exp(-17.0)), rel=1e-12)

    def test_keras_focal_with_smoothing_number_alpha_and_ignored_entries(self) -> None:
        from oracles import tf_classification as tfo

        x = _logits((5, 3, 2), 90)
        t = _indices((5, 2), 3, 91)
        t[1, 1] = -100
        kw: dict[str, Any] = {"gamma": 1.5, "alpha": 0.3, "ignore_index": -100, "label_smoothing": 0.2}
        assert bool(tfo.softmax_focal_domain(_np(x), t.numpy(), ignore_index=-100, label_smoothing=0.2).all())
        for reduction in REDUCTIONS:
            got = ref.softmax_focal(x, t, reduction=reduction, **kw)
            _close(got, tfo.softmax_focal(_np(x), t.numpy(), reduction=reduction, **kw), rtol=1e-11, atol=1e-13)

    def test_keras_kl_divergence_inside_its_clipping_domain(self) -> None:
        from oracles import tf_classification as tfo

        x, p = _kl_case(88, zeros=False)
        for log_target in (False, True):
            t = torch.log(p) if log_target else p
            mask = tfo.kl_div_domain(_np(x), _np(t), log_target=log_target)
            assert bool(mask.all())
            for reduction in ("none", "sum", "batchmean", "mean"):
                got = ref.kl_div(x, t, reduction=reduction, log_target=log_target)
                _close(got, tfo.kl_div(_np(x), _np(t), reduction=reduction, log_target=log_target), rtol=1e-11, atol=1e-13)
        x0, p0 = _kl_case(89)
        assert not tfo.kl_div_domain(_np(x0), _np(p0)).all()
