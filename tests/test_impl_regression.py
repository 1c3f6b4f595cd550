"""Unit tests of the regression references against the NumPy oracles, torch builtins and Keras.

Plain pytest on seeded inputs and named edge cases; the Hypothesis properties live in
``conformance/specs/regression.py``.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from impls import regression as ref
from oracles import numpy_regression as npo

LOW_PRECISION = (torch.float16, torch.bfloat16)
BETAS = (0.0, 1e-6, 1.0 / 9.0, 0.5, 1.0, 3.0)


def _pair(shape: tuple[int, ...], *, seed: int, dtype: torch.dtype = torch.float64, scale: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64) * scale
    y = torch.randn(shape, generator=g, dtype=torch.float64) * scale
    return x.to(dtype), y.to(dtype)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


class TestSmoothL1:
    @pytest.mark.parametrize("beta", BETAS)
    def test_matches_numpy_oracle(self, beta: float) -> None:
        x, y = _pair((7, 5), seed=0)
        np.testing.assert_allclose(_np(ref.smooth_l1(x, y, beta=beta)), npo.smooth_l1(_np(x), _np(y), beta), rtol=1e-13, atol=1e-15)

    @pytest.mark.parametrize("beta", (0.0, 1.0 / 9.0, 0.5, 1.0, 3.0))
    def test_matches_torch_where_conventions_agree(self, beta: float) -> None:
        x, y = _pair((4, 3, 5), seed=1)
        want = F.smooth_l1_loss(x, y, beta=beta, reduction="none")
        torch.testing.assert_close(ref.smooth_l1(x, y, beta=beta), want, rtol=1e-13, atol=1e-15)

    def test_tiny_beta_is_plain_l1_unlike_torch(self) -> None:
        x, y = torch.tensor([1.0], dtype=torch.float64), torch.tensor([0.0], dtype=torch.float64)
        assert ref.smooth_l1(x, y, beta=1e-6).item() == 1.0
        assert F.smooth_l1_loss(x, y, beta=1e-6, reduction="none").item() == pytest.approx(1.0 - 5e-7, abs=1e-12)

    def test_beta_times_loss_is_huber(self) -> None:
        x, y = _pair((50,), seed=2)
        for beta in (0.1, 1.0, 2.5):
            torch.testing.assert_close(beta * ref.smooth_l1(x, y, beta=beta), F.huber_loss(x, y, delta=beta, reduction="none"))

    @pytest.mark.parametrize("beta", BETAS)
    def test_lies_between_l1_minus_half_beta_and_l1(self, beta: float) -> None:
        x, y = _pair((200,), seed=3)
        out = ref.smooth_l1(x, y, beta=beta)
        d = (x - y).abs()
        assert bool((out <= d + 1e-15).all())
        assert bool((out >= (d - beta / 2).clamp(min=0) - 1e-15).all())

    @pytest.mark.parametrize("beta", BETAS)
    def test_gradient_is_clipped_ratio_and_bounded_by_one(self, beta: float) -> None:
        x, y = _pair((100,), seed=4)
        x.requires_grad_(True)
        ref.smooth_l1(x, y, beta=beta).sum().backward()
        assert x.grad is not None
        np.testing.assert_allclose(x.grad.numpy(), npo.smooth_l1_grad(_np(x), _np(y), beta), rtol=1e-13, atol=1e-15)
        assert float(x.grad.abs().max()) <= 1.0

    def test_gradient_is_zero_where_input_equals_target(self) -> None:
        for beta in (0.0, 1.0):
            x = torch.zeros(3, dtype=torch.float64, requires_grad=True)
            ref.smooth_l1(x, torch.zeros(3, dtype=torch.float64), beta=beta).sum().backward()
            assert x.grad is not None and x.grad.tolist() == [0.0, 0.0, 0.0]

    @pytest.mark.parametrize("beta", (1.0 / 9.0, 1.0, 3.0))
    def test_value_and_slope_continuous_at_beta(self, beta: float) -> None:
        h = 1e-9
        x = torch.tensor([beta - h, beta + h, -beta - h, -beta + h], dtype=torch.float64, requires_grad=True)
        out = ref.smooth_l1(x, torch.zeros_like(x), beta=beta)
        out.sum().backward()
        np.testing.assert_allclose(out.detach().numpy(), [beta / 2] * 4, atol=1e-8)
        assert x.grad is not None
        np.testing.assert_allclose(x.grad.numpy(), [1, 1, -1, -1], atol=1e-7)

    def test_gradcheck(self) -> None:
        x, y = _pair((6,), seed=5)
        x.requires_grad_(True)
        assert torch.autograd.gradcheck(lambda a: ref.smooth_l1(a, y, beta=0.7), (x,))

    @pytest.mark.parametrize("dtype", (torch.float32, *LOW_PRECISION))
    def test_preserves_dtype_and_tracks_float64(self, dtype: torch.dtype) -> None:
        x, y = _pair((64,), seed=6, dtype=dtype)
        out = ref.smooth_l1(x, y, beta=0.5)
        assert out.dtype == dtype and out.shape == x.shape
        tol = {torch.float32: 1e-6, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}[dtype]
        np.testing.assert_allclose(_np(out), npo.smooth_l1(_np(x), _np(y), 0.5), rtol=tol, atol=tol)

    def test_empty_input_gives_empty_output(self) -> None:
        x = torch.zeros(0, 3, dtype=torch.float32)
        out = ref.smooth_l1(x, x.clone())
        assert out.shape == (0, 3) and out.dtype == torch.float32

    def test_inputs_not_modified(self) -> None:
        x, y = _pair((10,), seed=7)
        x0, y0 = x.clone(), y.clone()
        ref.smooth_l1(x, y, beta=0.3)
        assert torch.equal(x, x0) and torch.equal(y, y0)

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"beta": -1.0}, "beta"),
            ({"beta": float("nan")}, "beta"),
            ({"beta": float("inf")}, "beta"),
            ({"beta": "1"}, "beta"),
        ],
    )
    def test_rejects_bad_beta(self, kwargs: dict[str, object], match: str) -> None:
        x, y = _pair((3,), seed=8)
        with pytest.raises(ValueError, match=match):
            ref.smooth_l1(x, y, **kwargs)  # type: ignore[arg-type]

    def test_rejects_mismatched_shapes_dtypes_and_types(self) -> None:
        x, y = _pair((3, 2), seed=9)
        with pytest.raises(ValueError, match="target must have the same shape as input"):
            ref.smooth_l1(x, y[:, :1])
        with pytest.raises(ValueError, match="target must have the same dtype as input"):
            ref.smooth_l1(x, y.float())
        with pytest.raises(ValueError, match="input must have dtype"):
            ref.smooth_l1(x.long(), y.long())
        with pytest.raises(ValueError, match="input must be a torch.Tensor"):
            ref.smooth_l1(_np(x), y)  # type: ignore[arg-type]


def _weighted_case(seed: int, *, nan_frac: float = 0.2) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    b, a, k = 2, 5, 7
    x = torch.randn(b, a, k, generator=g, dtype=torch.float64)
    y = torch.randn(b, a, k, generator=g, dtype=torch.float64)
    y[torch.rand(b, a, k, generator=g) < nan_frac] = float("nan")
    return {
        "input": x,
        "target": y,
        "weights": torch.rand(b, a, generator=g, dtype=torch.float64),
        "code_weights": torch.rand(k, generator=g, dtype=torch.float64) * 2,
    }


class TestWeightedSmoothL1:
    @pytest.mark.parametrize("beta", (0.0, 1.0 / 9.0, 1.0))
    @pytest.mark.parametrize("use_weights", (False, True))
    @pytest.mark.parametrize("use_code_weights", (False, True))
    def test_matches_numpy_loop(self, beta: float, use_weights: bool, use_code_weights: bool) -> None:
        c = _weighted_case(10)
        w = c["weights"] if use_weights else None
        cw = c["code_weights"] if use_code_weights else None
        out = ref.weighted_smooth_l1(c["input"], c["target"], w, beta=beta, code_weights=cw)
        want = npo.weighted_smooth_l1(_np(c["input"]), _np(c["target"]), None if w is None else _np(w), beta, None if cw is None else _np(cw))
        np.testing.assert_allclose(_np(out), want, rtol=1e-13, atol=1e-15)

    def test_nan_targets_give_zero_loss_and_zero_gradient(self) -> None:
        c = _weighted_case(11, nan_frac=0.5)
        x = c["input"].clone().requires_grad_(True)
        out = ref.weighted_smooth_l1(x, c["target"], c["weights"], code_weights=c["code_weights"])
        out.sum().backward()
        nan = torch.isnan(c["target"])
        assert bool(nan.any()) and bool((out[nan] == 0).all())
        assert x.grad is not None and bool(torch.isfinite(x.grad).all()) and bool((x.grad[nan] == 0).all())
        assert bool(torch.isfinite(out).all())

    def test_code_weights_scale_the_difference_before_smooth_l1(self) -> None:
        x = torch.tensor([[[0.05]]], dtype=torch.float64)
        y = torch.zeros_like(x)
        cw = torch.tensor([2.0], dtype=torch.float64)
        beta = 1.0 / 9.0
        got = ref.weighted_smooth_l1(x, y, beta=beta, code_weights=cw).item()
        assert got == pytest.approx(0.5 * 0.1**2 / beta, rel=1e-12)
        assert got != pytest.approx(2 * 0.5 * 0.05**2 / beta, rel=1e-3)

    def test_anchor_weights_scale_every_code_linearly(self) -> None:
        c = _weighted_case(12, nan_frac=0.0)
        base = ref.weighted_smooth_l1(c["input"], c["target"], None)
        out = ref.weighted_smooth_l1(c["input"], c["target"], c["weights"])
        torch.testing.assert_close(out, base * c["weights"][..., None])
        ones = ref.weighted_smooth_l1(c["input"], c["target"], torch.ones_like(c["weights"]))
        torch.testing.assert_close(ones, base)

    def test_equals_elementwise_smooth_l1_without_weights_or_nans(self) -> None:
        c = _weighted_case(13, nan_frac=0.0)
        torch.testing.assert_close(
            ref.weighted_smooth_l1(c["input"], c["target"], beta=0.3), ref.smooth_l1(c["input"], c["target"], beta=0.3)
        )

    def test_weights_cast_to_input_dtype(self) -> None:
        c = _weighted_case(14)
        x, y = c["input"].float(), c["target"].float()
        out = ref.weighted_smooth_l1(x, y, c["weights"], code_weights=c["code_weights"])
        assert out.dtype == torch.float32 and out.shape == x.shape

    def test_empty_batch(self) -> None:
        x = torch.zeros(0, 4, 7)
        assert ref.weighted_smooth_l1(x, x.clone(), torch.zeros(0, 4)).shape == (0, 4, 7)

    def test_rejects_bad_shapes(self) -> None:
        c = _weighted_case(15)
        with pytest.raises(ValueError, match="input must have 3 dimensions"):
            ref.weighted_smooth_l1(c["input"][0], c["target"][0])
        with pytest.raises(ValueError, match="weights must have shape"):
            ref.weighted_smooth_l1(c["input"], c["target"], c["weights"][:, :2])
        with pytest.raises(ValueError, match="code_weights must have shape"):
            ref.weighted_smooth_l1(c["input"], c["target"], code_weights=c["code_weights"][:3])
        with pytest.raises(ValueError, match="beta"):
            ref.weighted_smooth_l1(c["input"], c["target"], beta=-0.1)


class TestL1AndMSE:
    def test_match_torch_and_numpy(self) -> None:
        x, y = _pair((5, 6), seed=20)
        torch.testing.assert_close(ref.l1(x, y), F.l1_loss(x, y, reduction="none"))
        torch.testing.assert_close(ref.mse(x, y), F.mse_loss(x, y, reduction="none"))
        np.testing.assert_allclose(_np(ref.l1(x, y)), npo.l1(_np(x), _np(y)), rtol=1e-15)
        np.testing.assert_allclose(_np(ref.mse(x, y)), npo.mse(_np(x), _np(y)), rtol=1e-14)

    def test_gradients(self) -> None:
        x, y = _pair((40,), seed=21)
        x[:3] = y[:3]
        x.requires_grad_(True)
        ref.l1(x, y).sum().backward()
        assert x.grad is not None
        torch.testing.assert_close(x.grad, torch.sign(x.detach() - y))
        x.grad = None
        ref.mse(x, y).sum().backward()
        torch.testing.assert_close(x.grad, 2 * (x.detach() - y))

    def test_l1_is_smooth_l1_at_beta_zero(self) -> None:
        x, y = _pair((30,), seed=22)
        torch.testing.assert_close(ref.l1(x, y), ref.smooth_l1(x, y, beta=0.0))

    @pytest.mark.parametrize("fn", (ref.l1, ref.mse))
    def test_preserve_dtype_and_reject_mismatch(self, fn) -> None:  # type: ignore[no-untyped-def]
        x, y = _pair((4,), seed=23, dtype=torch.bfloat16)
        assert fn(x, y).dtype == torch.bfloat16
        assert fn(torch.zeros(0), torch.zeros(0)).shape == (0,)
        with pytest.raises(ValueError, match="target must have the same shape"):
            fn(x, y[:2])


class TestKerasOracles:
    """Keras Huber / MAE / MSE agree with the references inside their declared domains."""

    @pytest.fixture(scope="class", autouse=True)
    def _tf(self) -> None:
        if importlib.util.find_spec("tensorflow") is None:
            pytest.skip("the Keras oracles need tensorflow")
        from oracles.tf import tf

        tf()  # through oracles.tf, which orders the import against torch's dynamo (see there)

    def test_huber_over_beta_mae_mse(self) -> None:
        from oracles import tf_regression as tfo

        x, y = _pair((3, 4), seed=30)
        for beta in (1e-5, 1.0 / 9.0, 1.0, 2.0):
            assert tfo.smooth_l1_domain(beta)
            np.testing.assert_allclose(tfo.smooth_l1(_np(x), _np(y), beta=beta), _np(ref.smooth_l1(x, y, beta=beta)), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(tfo.l1(_np(x), _np(y)), _np(ref.l1(x, y)), rtol=1e-14)
        np.testing.assert_allclose(tfo.mse(_np(x), _np(y)), _np(ref.mse(x, y)), rtol=1e-14)
        np.testing.assert_allclose(tfo.huber(_np(x), _np(y), delta=0.5), _np(F.huber_loss(x, y, delta=0.5, reduction="none")), rtol=1e-14)
        f32 = tfo.smooth_l1(_np(x), _np(y), beta=0.5, compute_dtype="float32")
        np.testing.assert_allclose(f32, _np(ref.smooth_l1(x, y, beta=0.5)), rtol=1e-6, atol=1e-6)

    def test_outside_domain_huber_has_no_l1_limit(self) -> None:
        from oracles import tf_regression as tfo

        assert not tfo.smooth_l1_domain(0.0) and not tfo.smooth_l1_domain(1e-6)
        assert math.isnan(float(tfo.smooth_l1(np.array([1.0]), np.array([0.0]), beta=0.0)[0]))
        assert tfo.smooth_l1(np.array([1.0]), np.array([0.0]), beta=1e-6)[0] == pytest.approx(1 - 5e-7, abs=1e-12)
        assert tfo.smooth_l1(np.zeros((0, 2)), np.zeros((0, 2))).shape == (0, 2)
