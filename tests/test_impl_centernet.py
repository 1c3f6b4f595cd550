"""Unit tests of the CenterNet / CenterFusion references against their NumPy oracles.

Plain pytest on seeded inputs (the Hypothesis properties live in the suite): heatmaps
are Gaussians splatted at random peaks with an exact 1.0 at each peak, and the
ind / cat / mask slots list those peaks, as CenterNet's dataset writes them.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from conformance.tolerances import grad_tolerance, tolerance
from impls import centernet as ref
from oracles import numpy_centernet as npo

DTYPES = (torch.float64, torch.float32)
SEEDS = (0, 1, 2, 3)


# --------------------------------------------------------------------------- helpers


def assert_close(
    got: torch.Tensor | float, want: float | np.ndarray, *, spec: str, dtype: torch.dtype, key: str = "numpy"
) -> None:
    __tracebackhide__ = True
    tol = tolerance(spec, key, dtype)
    g = np.asarray(got.detach().double().cpu().numpy() if isinstance(got, torch.Tensor) else got, np.float64)
    w = np.asarray(want, np.float64)
    err = np.abs(g - w)
    bound = tol.atol + tol.rtol * np.abs(w)
    assert np.all(err <= bound), f"out={g}, but should be {w} (max err {err.max():.3g}, {tol.reason}) [{spec}, {dtype}]"


def gaussian_heatmap_case(
    rng: np.random.Generator, *, b: int = 2, c: int = 3, h: int = 7, w: int = 9, m: int = 6, max_obj: int | None = None
) -> dict[str, np.ndarray]:
    """A CenterNet-style target: unique (class, pixel) peaks of value exactly 1, listed in the first slots."""
    max_obj = m if max_obj is None else max_obj
    hm = np.zeros((b, c, h, w))
    ind = np.zeros((b, m), np.int64)
    cat = np.zeros((b, m), np.int64)
    mask = np.zeros((b, m))
    yy, xx = np.mgrid[0:h, 0:w]
    for bi in range(b):
        n = int(rng.integers(1, max_obj + 1))
        cells = rng.choice(c * h * w, size=n, replace=False)
        for k, cell in enumerate(cells):
            ci, pix = divmod(int(cell), h * w)
            py, px = divmod(pix, w)
            sigma = (2 * int(rng.integers(0, 3)) + 1) / 6.0
            g = np.exp(-((yy - py) ** 2 + (xx - px) ** 2) / (2 * sigma * sigma))
            hm[bi, ci] = np.maximum(hm[bi, ci], g)
            ind[bi, k], cat[bi, k], mask[bi, k] = pix, ci, 1.0
    return {"hm": hm, "ind": ind, "cat": cat, "mask": mask}


def probs(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return npo.clamped_sigmoid(rng.normal(0.0, 2.5, size=shape))


def t(a: np.ndarray, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.as_tensor(a, dtype=dtype)


def ti(a: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(a, dtype=torch.int64)


def slots(rng: np.random.Generator, b: int, m: int, hw: int, n_cls: int, keep: float = 0.7) -> tuple[np.ndarray, ...]:
    ind = rng.integers(0, hw, size=(b, m))
    cat = rng.integers(0, n_cls, size=(b, m))
    mask = (rng.random((b, m)) < keep).astype(np.float64)
    return ind, cat, mask


def rot_case(rng: np.random.Generator, b: int = 2, m: int = 5, h: int = 4, w: int = 5) -> dict[str, np.ndarray]:
    ind, _, mask = slots(rng, b, m, h * w, 1)
    alpha = rng.uniform(-math.pi, math.pi, size=(b, m))
    rotbin, rotres = npo.encode_alpha_to_bins(alpha)
    # Padding slots carry no bins, as the seed's dataset leaves them.
    rotbin = rotbin * mask[..., None].astype(np.int64)
    rotres = rotres * mask[..., None]
    return {
        "output": rng.normal(0, 1.5, size=(b, 8, h, w)),
        "mask": mask,
        "ind": ind,
        "rotbin": rotbin,
        "rotres": rotres,
    }


# --------------------------------------------------------------------------- transforms


class TestTransforms:
    @pytest.mark.parametrize("dtype", DTYPES)
    def test_clamped_sigmoid_matches_oracle_and_stays_in_clamp(self, dtype: torch.dtype) -> None:
        x = np.concatenate([np.linspace(-30, 30, 121), [-1e30, 1e30, 0.0]])
        got = ref.clamped_sigmoid(t(x, dtype))
        assert got.dtype == dtype
        assert_close(got, npo.clamped_sigmoid(x), spec="penalty_reduced_focal", dtype=dtype)
        assert float(got.min()) >= ref.SIGMOID_CLAMP * (1 - 1e-6) and float(got.max()) < 1

    def test_clamped_sigmoid_gradient_is_zero_outside_the_clamp(self) -> None:
        x = torch.tensor([-20.0, 0.0, 20.0], dtype=torch.float64, requires_grad=True)
        ref.clamped_sigmoid(x).sum().backward()
        assert x.grad is not None
        assert x.grad[0] == 0 and x.grad[2] == 0 and x.grad[1] == pytest.approx(0.25)

    def test_clamped_sigmoid_does_not_modify_its_input(self) -> None:
        x = torch.linspace(-5, 5, 11)
        before = x.clone()
        ref.clamped_sigmoid(x)
        assert torch.equal(x, before)

    @pytest.mark.parametrize("dtype", DTYPES)
    def test_depth_transform_matches_literal_formula(self, dtype: torch.dtype) -> None:
        x = np.linspace(-25, 25, 101)
        got = ref.depth_transform(t(x, dtype))
        assert_close(got, npo.depth_transform(x), spec="depth_l1", dtype=dtype)

    def test_depth_transform_limits(self) -> None:
        got = ref.depth_transform(torch.tensor([-1e4, 0.0, 1e4], dtype=torch.float64))
        assert got[0] == pytest.approx(1e6 - 1, rel=1e-12)
        assert got[1] == pytest.approx(1 / (0.5 + 1e-6) - 1, rel=1e-12)
        assert got[2] == pytest.approx(-1e-6 / (1 + 1e-6), rel=1e-12)


# --------------------------------------------------------------------------- heatmap focal


class TestPenaltyReducedFocal:
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("seed", SEEDS)
    def test_dense_matches_oracle(self, seed: int, dtype: torch.dtype) -> None:
        rng = np.random.default_rng(seed)
        case = gaussian_heatmap_case(rng)
        p = probs(rng, case["hm"].shape)
        got = ref.penalty_reduced_focal(t(p, dtype), t(case["hm"], dtype))
        assert got.dtype == dtype and got.dim() == 0
        assert_close(
            got, npo.penalty_reduced_focal(p, case["hm"]), spec="penalty_reduced_focal", dtype=dtype
        )

    @pytest.mark.parametrize(("alpha", "beta"), [(2.0, 4.0), (0.0, 0.0), (1.5, 2.0), (3.0, 1.0), (0.5, 4.0)])
    def test_dense_matches_oracle_for_other_exponents(self, alpha: float, beta: float) -> None:
        rng = np.random.default_rng(11)
        case = gaussian_heatmap_case(rng)
        p = probs(rng, case["hm"].shape)
        got = ref.penalty_reduced_focal(t(p), t(case["hm"]), alpha=alpha, beta=beta)
        assert_close(
            got,
            npo.penalty_reduced_focal(p, case["hm"], alpha=alpha, beta=beta),
            spec="penalty_reduced_focal",
            dtype=torch.float64,
        )

    def test_no_positive_gives_the_undivided_negative_sum(self) -> None:
        rng = np.random.default_rng(5)
        gt = 0.9 * rng.random((1, 2, 4, 5))
        p = probs(rng, gt.shape)
        got = ref.penalty_reduced_focal(t(p), t(gt))
        want = float((-((1 - gt) ** 4) * p**2 * np.log1p(-p)).sum())
        assert_close(got, want, spec="penalty_reduced_focal", dtype=torch.float64)

    def test_p_one_at_a_peak_is_finite_and_p_zero_there_is_inf(self) -> None:
        gt = torch.zeros(1, 1, 2, 2, dtype=torch.float64)
        gt[0, 0, 0, 0] = 1.0
        p = torch.full_like(gt, 0.2)
        p[0, 0, 0, 0] = 1.0
        p.requires_grad_(True)
        loss = ref.penalty_reduced_focal(p, gt)
        loss.backward()
        assert torch.isfinite(loss) and p.grad is not None and torch.isfinite(p.grad).all()
        p2 = p.detach().clone()
        p2[0, 0, 0, 0] = 0.0
        assert ref.penalty_reduced_focal(p2, gt) == math.inf

    @pytest.mark.parametrize("seed", SEEDS)
    def test_logits_form_equals_probability_form_on_moderate_logits(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        case = gaussian_heatmap_case(rng)
        x = rng.normal(0, 3, size=case["hm"].shape)
        got = ref.penalty_reduced_focal_logits(t(x), t(case["hm"]))
        via_p = ref.penalty_reduced_focal(torch.sigmoid(t(x)), t(case["hm"]))
        assert_close(got, float(via_p), spec="penalty_reduced_focal", dtype=torch.float64)
        assert_close(
            got, npo.penalty_reduced_focal_logits(x, case["hm"]), spec="penalty_reduced_focal", dtype=torch.float64
        )

    @pytest.mark.parametrize("dtype", DTYPES)
    def test_logits_form_is_finite_with_oracle_value_and_gradient_at_extreme_logits(self, dtype: torch.dtype) -> None:
        big = float(torch.finfo(dtype).max)
        vals = np.array([-big, -1e30, -1e4, -50.0, -1e-30, 0.0, 1e-30, 50.0, 1e4, 1e30, big])
        x = np.stack([vals, vals[::-1]]).reshape(1, 2, 1, vals.size)
        gt = np.zeros_like(x)
        gt[0, 0, 0, ::2] = 1.0
        gt[0, 1, 0, 1::2] = 0.3
        xt = t(x, dtype).requires_grad_(True)
        loss = ref.penalty_reduced_focal_logits(xt, t(gt, dtype))
        loss.backward()
        assert xt.grad is not None and torch.isfinite(loss) and torch.isfinite(xt.grad).all()
        assert_close(
            loss, npo.penalty_reduced_focal_logits(x, gt), spec="penalty_reduced_focal", dtype=dtype
        )
        assert_close(xt.grad, npo.penalty_reduced_focal_logits_grad(x, gt), spec="penalty_reduced_focal", dtype=dtype)

    def test_logits_form_gradient_matches_oracle_on_a_grid(self) -> None:
        x = np.linspace(-800, 800, 161).reshape(1, 1, 7, 23)
        gt = np.zeros_like(x)
        gt[..., ::3] = 1.0
        gt[..., 1::3] = 0.6
        xt = t(x).requires_grad_(True)
        ref.penalty_reduced_focal_logits(xt, t(gt), alpha=0.5, beta=2.0).backward()
        tol = grad_tolerance("penalty_reduced_focal", "numpy", torch.float64)
        want = npo.penalty_reduced_focal_logits_grad(x, gt, 0.5, 2.0)
        assert xt.grad is not None
        np.testing.assert_allclose(xt.grad.numpy(), want, rtol=tol.rtol, atol=tol.atol)

    def test_logits_form_passes_gradcheck_and_gradgradcheck(self) -> None:
        rng = np.random.default_rng(3)
        case = gaussian_heatmap_case(rng, b=1, c=2, h=3, w=4, m=2)
        x = t(rng.normal(0, 2, size=case["hm"].shape)).requires_grad_(True)
        gt = t(case["hm"])
        assert torch.autograd.gradcheck(lambda v: ref.penalty_reduced_focal_logits(v, gt, alpha=1.5), (x,))
        assert torch.autograd.gradgradcheck(lambda v: ref.penalty_reduced_focal_logits(v, gt), (x,))


class TestFocalKeywords:
    """positive_threshold, positive_weight, negative_weight, from_logits and the dense form (keras-cv's options)."""

    @pytest.mark.parametrize("dense", [True, False])
    @pytest.mark.parametrize(
        "kw",
        [
            {"positive_threshold": 0.5},
            {"positive_threshold": 0.0, "alpha": 1.0},
            {"positive_weight": 2.5, "negative_weight": 0.25},
            {"positive_weight": 0.0},
            {"from_logits": True},
            {"from_logits": True, "positive_threshold": 0.75, "negative_weight": 3.0, "beta": 2.0},
        ],
    )
    def test_matches_oracle(self, kw: dict[str, object], dense: bool) -> None:
        rng = np.random.default_rng(21)
        case = gaussian_heatmap_case(rng)
        x = rng.normal(0, 4, size=case["hm"].shape)
        p = x if kw.get("from_logits") else npo.clamped_sigmoid(x)
        slots = () if dense else (case["ind"], case["mask"], case["cat"])
        got = ref.penalty_reduced_focal(t(p), t(case["hm"]), *(ti(a) if a.dtype == np.int64 else t(a) for a in slots), **kw)  # type: ignore[arg-type]
        want = npo.penalty_reduced_focal(p, case["hm"], *slots, **kw)  # type: ignore[arg-type]
        assert_close(got, want, spec="penalty_reduced_focal", dtype=torch.float64)

    def test_from_logits_is_the_seed_sigmoid_first(self) -> None:
        rng = np.random.default_rng(22)
        case = gaussian_heatmap_case(rng)
        x = t(rng.normal(0, 8, size=case["hm"].shape))
        args = (t(case["hm"]), ti(case["ind"]), t(case["mask"]), ti(case["cat"]))
        assert float(ref.penalty_reduced_focal(x, *args, from_logits=True)) == float(
            ref.penalty_reduced_focal(ref.clamped_sigmoid(x), *args))

    def test_threshold_moves_soft_pixels_from_negatives_to_positives(self) -> None:
        p = torch.tensor([[[[0.9, 0.2]]]], dtype=torch.float64)
        gt = torch.tensor([[[[0.995, 0.0]]]], dtype=torch.float64)
        # y == 1 nowhere: both pixels are negatives, undivided.
        neg = (1 - 0.995) ** 4 * 0.81 * -math.log(0.1) + 0.04 * -math.log(0.8)
        assert_close(ref.penalty_reduced_focal(p, gt), neg, spec="penalty_reduced_focal", dtype=torch.float64)
        # keras-cv's 0.99: the first pixel is a positive, N = 1.
        pos = 0.01 * -math.log(0.9) + 0.04 * -math.log(0.8)
        assert_close(ref.penalty_reduced_focal(p, gt, positive_threshold=0.99), pos, spec="penalty_reduced_focal",
                     dtype=torch.float64)

    def test_saturated_logits_give_finite_loss_and_gradient(self) -> None:
        x = torch.tensor([[[[-math.inf, -1e30, 1e4, math.inf]]]], dtype=torch.float32, requires_grad=True)
        gt = torch.tensor([[[[1.0, 0.0, 0.5, 1.0]]]])
        loss = ref.penalty_reduced_focal(x, gt, from_logits=True)
        loss.backward()
        assert torch.isfinite(loss) and x.grad is not None and torch.isfinite(x.grad).all()


class TestFastFocal:
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("seed", SEEDS)
    def test_matches_oracle(self, seed: int, dtype: torch.dtype) -> None:
        rng = np.random.default_rng(seed)
        case = gaussian_heatmap_case(rng)
        p = probs(rng, case["hm"].shape)
        got = ref.fast_focal(
            t(p, dtype), t(case["hm"], dtype), ti(case["ind"]), t(case["mask"], dtype), ti(case["cat"])
        )
        want = npo.fast_focal(p, case["hm"], case["ind"], case["mask"], case["cat"])
        assert got.dtype == dtype
        assert_close(got, want, spec="penalty_reduced_focal", dtype=dtype)

    @pytest.mark.parametrize("seed", SEEDS)
    def test_equals_dense_form_when_the_slots_list_each_peak_once(self, seed: int) -> None:
        rng = np.random.default_rng(100 + seed)
        case = gaussian_heatmap_case(rng, b=3, c=4, h=6, w=6, m=8)
        p = t(probs(rng, case["hm"].shape))
        gather = ref.fast_focal(p, t(case["hm"]), ti(case["ind"]), t(case["mask"]), ti(case["cat"]))
        dense = ref.penalty_reduced_focal(p, t(case["hm"]))
        assert_close(gather, float(dense), spec="penalty_reduced_focal", dtype=torch.float64)

    def test_gradient_equals_dense_form_gradient(self) -> None:
        rng = np.random.default_rng(7)
        case = gaussian_heatmap_case(rng)
        p1 = t(probs(rng, case["hm"].shape)).requires_grad_(True)
        p2 = p1.detach().clone().requires_grad_(True)
        ref.fast_focal(p1, t(case["hm"]), ti(case["ind"]), t(case["mask"]), ti(case["cat"])).backward()
        ref.penalty_reduced_focal(p2, t(case["hm"])).backward()
        assert p1.grad is not None and p2.grad is not None
        tol = grad_tolerance("penalty_reduced_focal", "numpy", torch.float64)
        torch.testing.assert_close(p1.grad, p2.grad, rtol=tol.rtol, atol=tol.atol)

    def test_mask_all_zero_gives_the_undivided_negative_sum(self) -> None:
        rng = np.random.default_rng(8)
        case = gaussian_heatmap_case(rng)
        p = probs(rng, case["hm"].shape)
        zero = np.zeros_like(case["mask"])
        got = ref.fast_focal(t(p), t(case["hm"]), ti(case["ind"]), t(zero), ti(case["cat"]))
        gt = case["hm"]
        neg = float(np.where(gt < 1, -((1 - gt) ** 4) * p**2 * np.log1p(-p), 0.0).sum())
        assert_close(got, neg, spec="penalty_reduced_focal", dtype=torch.float64)
        assert_close(
            got,
            npo.fast_focal(p, gt, case["ind"], zero, case["cat"]),
            spec="penalty_reduced_focal",
            dtype=torch.float64,
        )

    def test_no_object_slots_at_all(self) -> None:
        rng = np.random.default_rng(9)
        gt = 0.5 * rng.random((2, 2, 3, 3))
        p = probs(rng, gt.shape)
        empty = np.zeros((2, 0), np.int64)
        got = ref.fast_focal(t(p), t(gt), ti(empty), t(empty.astype(float)), ti(empty))
        assert_close(
            got, float(ref.penalty_reduced_focal(t(p), t(gt))), spec="penalty_reduced_focal", dtype=torch.float64
        )

    def test_duplicate_slot_counts_twice_in_sum_and_normaliser(self) -> None:
        rng = np.random.default_rng(10)
        case = gaussian_heatmap_case(rng, b=1, m=4, max_obj=2)
        ind, cat, mask = case["ind"].copy(), case["cat"].copy(), case["mask"].copy()
        ind[0, 3], cat[0, 3], mask[0, 3] = ind[0, 0], cat[0, 0], 1.0
        p = probs(rng, case["hm"].shape)
        got = ref.fast_focal(t(p), t(case["hm"]), ti(ind), t(mask), ti(cat))
        assert_close(
            got, npo.fast_focal(p, case["hm"], ind, mask, cat), spec="penalty_reduced_focal", dtype=torch.float64
        )
        dense = float(ref.penalty_reduced_focal(t(p), t(case["hm"])))
        assert abs(float(got) - dense) > 1e-6

    def test_unlisted_peak_is_ignored_not_positive(self) -> None:
        gt = np.zeros((1, 1, 3, 3))
        gt[0, 0, 0, 0] = 1.0  # listed peak
        gt[0, 0, 2, 2] = 1.0  # an "ignore" pixel: value 1, in no slot
        p = np.full(gt.shape, 0.3)
        ind, cat, mask = np.array([[0]]), np.array([[0]]), np.array([[1.0]])
        base = ref.fast_focal(t(p), t(gt), ti(ind), t(mask), ti(cat))
        p2 = p.copy()
        p2[0, 0, 2, 2] = 0.999
        moved = ref.fast_focal(t(p2), t(gt), ti(ind), t(mask), ti(cat))
        assert float(base) == float(moved)
        assert_close(base, npo.fast_focal(p, gt, ind, mask, cat), spec="penalty_reduced_focal", dtype=torch.float64)

    def test_padding_slots_may_hold_anything_in_range(self) -> None:
        rng = np.random.default_rng(12)
        case = gaussian_heatmap_case(rng, m=8, max_obj=3)
        p = t(probs(rng, case["hm"].shape))
        pad = case["mask"] == 0
        ind2, cat2 = case["ind"].copy(), case["cat"].copy()
        ind2[pad] = rng.integers(0, 7 * 9, size=int(pad.sum()))
        cat2[pad] = rng.integers(0, 3, size=int(pad.sum()))
        a = ref.fast_focal(p, t(case["hm"]), ti(case["ind"]), t(case["mask"]), ti(case["cat"]))
        b = ref.fast_focal(p, t(case["hm"]), ti(ind2), t(case["mask"]), ti(cat2))
        assert float(a) == float(b)

    @pytest.mark.parametrize("mask_dtype", [torch.bool, torch.uint8, torch.float32])
    def test_mask_dtypes_are_accepted(self, mask_dtype: torch.dtype) -> None:
        rng = np.random.default_rng(13)
        case = gaussian_heatmap_case(rng)
        p = t(probs(rng, case["hm"].shape))
        want = ref.fast_focal(p, t(case["hm"]), ti(case["ind"]), t(case["mask"]), ti(case["cat"]))
        got = ref.fast_focal(
            p, t(case["hm"]), ti(case["ind"]), torch.as_tensor(case["mask"]).to(mask_dtype), ti(case["cat"])
        )
        assert float(got) == float(want)

    def test_passes_gradcheck(self) -> None:
        rng = np.random.default_rng(14)
        case = gaussian_heatmap_case(rng, b=1, c=2, h=3, w=3, m=3)
        p = t(probs(rng, case["hm"].shape)).requires_grad_(True)
        args = (t(case["hm"]), ti(case["ind"]), t(case["mask"]), ti(case["cat"]))
        assert torch.autograd.gradcheck(lambda v: ref.fast_focal(v, *args), (p,))


# --------------------------------------------------------------------------- gathered heads


class TestRegWeightedL1:
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("seed", SEEDS)
    def test_matches_oracle_with_element_mask(self, seed: int, dtype: torch.dtype) -> None:
        rng = np.random.default_rng(seed)
        b, d, h, w, m = 2, 3, 5, 6, 7
        out = rng.normal(size=(b, d, h, w))
        ind, _, _ = slots(rng, b, m, h * w, 1)
        mask = (rng.random((b, m, d)) < 0.6).astype(float)
        tgt = rng.normal(size=(b, m, d))
        got = ref.reg_weighted_l1(t(out, dtype), t(mask, dtype), ti(ind), t(tgt, dtype))
        assert got.dtype == dtype
        assert_close(
            got, npo.reg_weighted_l1(out, mask, ind, tgt), spec="reg_weighted_l1", dtype=dtype
        )

    def test_object_mask_equals_its_expansion_over_coordinates(self) -> None:
        rng = np.random.default_rng(20)
        out, tgt = rng.normal(size=(2, 4, 3, 3)), rng.normal(size=(2, 5, 4))
        ind, _, mask = slots(rng, 2, 5, 9, 1)
        a = ref.reg_weighted_l1(t(out), t(mask), ti(ind), t(tgt))
        b = ref.reg_weighted_l1(t(out), t(np.repeat(mask[..., None], 4, axis=2)), ti(ind), t(tgt))
        assert float(a) == float(b)
        assert_close(a, npo.reg_weighted_l1(out, mask, ind, tgt), spec="reg_weighted_l1", dtype=torch.float64)

    def test_normaliser_counts_coordinates_with_the_seed_eps(self) -> None:
        out = torch.zeros(1, 2, 1, 1, dtype=torch.float64)
        tgt = torch.tensor([[[1.0, 3.0]]], dtype=torch.float64)
        got = ref.reg_weighted_l1(out, torch.ones(1, 1), torch.zeros(1, 1, dtype=torch.int64), tgt)
        assert float(got) == pytest.approx(4.0 / (2 + ref.NORM_EPS), rel=1e-15)

    def test_mask_all_zero_is_zero_even_with_nonfinite_padding(self) -> None:
        out = torch.full((1, 2, 2, 2), math.inf, dtype=torch.float64, requires_grad=True)
        tgt = torch.full((1, 3, 2), math.nan, dtype=torch.float64)
        got = ref.reg_weighted_l1(out, torch.zeros(1, 3), torch.zeros(1, 3, dtype=torch.int64), tgt)
        got.backward()
        assert float(got.detach()) == 0.0 and out.grad is not None and torch.equal(out.grad, torch.zeros_like(out))

    def test_passes_gradcheck(self) -> None:
        rng = np.random.default_rng(21)
        out = t(rng.normal(size=(1, 2, 3, 3))).requires_grad_(True)
        ind, _, mask = slots(rng, 1, 4, 9, 1, keep=1.0)
        tgt = t(rng.normal(size=(1, 4, 2)))
        assert torch.autograd.gradcheck(lambda v: ref.reg_weighted_l1(v, t(mask), ti(ind), tgt), (out,))


class TestDepthL1:
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("n_cls", [1, 4])
    def test_matches_oracle(self, n_cls: int, dtype: torch.dtype) -> None:
        rng = np.random.default_rng(30 + n_cls)
        b, h, w, m = 2, 4, 5, 6
        out = rng.normal(-2.0, 1.5, size=(b, n_cls, h, w))
        ind, cat, mask = slots(rng, b, m, h * w, n_cls)
        tgt = rng.uniform(1, 60, size=(b, m, 1))
        got = ref.depth_l1(t(out, dtype), t(tgt, dtype), ti(ind), t(mask[..., None], dtype), ti(cat))
        assert got.dtype == dtype
        assert_close(got, npo.depth_l1(out, tgt, ind, mask, cat), spec="depth_l1", dtype=dtype)

    def test_two_and_three_dimensional_mask_and_target_agree(self) -> None:
        rng = np.random.default_rng(33)
        out = t(rng.normal(size=(2, 1, 3, 3)))
        ind, cat, mask = slots(rng, 2, 4, 9, 1)
        tgt = rng.uniform(1, 10, size=(2, 4))
        a = ref.depth_l1(out, t(tgt), ti(ind), t(mask), ti(cat))
        b = ref.depth_l1(out, t(tgt[..., None]), ti(ind), t(mask[..., None]), ti(cat))
        assert float(a) == float(b)

    def test_transform_is_applied_inside(self) -> None:
        x = torch.zeros(1, 1, 1, 1, dtype=torch.float64)  # depth 1 / (0.5 + 1e-6) - 1
        got = ref.depth_l1(
            x,
            torch.zeros(1, 1, dtype=torch.float64),
            torch.zeros(1, 1, dtype=torch.int64),
            torch.ones(1, 1),
            torch.zeros(1, 1, dtype=torch.int64),
        )
        assert float(got) == pytest.approx((1 / (0.5 + 1e-6) - 1) / (1 + ref.NORM_EPS), rel=1e-14)

    def test_single_channel_ignores_cat(self) -> None:
        rng = np.random.default_rng(34)
        out = t(rng.normal(size=(1, 1, 3, 3)))
        ind, _, mask = slots(rng, 1, 3, 9, 1)
        tgt = t(rng.uniform(1, 5, size=(1, 3)))
        a = ref.depth_l1(out, tgt, ti(ind), t(mask), torch.zeros(1, 3, dtype=torch.int64))
        b = ref.depth_l1(out, tgt, ti(ind), t(mask), torch.full((1, 3), 7, dtype=torch.int64))
        assert float(a) == float(b)


class TestWeightedBCE:
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("seed", SEEDS)
    def test_matches_oracle(self, seed: int, dtype: torch.dtype) -> None:
        rng = np.random.default_rng(40 + seed)
        b, f, h, w, m = 2, 8, 3, 4, 5
        out = rng.normal(0, 4, size=(b, f, h, w))
        ind, _, _ = slots(rng, b, m, h * w, 1)
        mask = (rng.random((b, m, f)) < 0.5).astype(float)
        tgt = (rng.random((b, m, f)) < 0.3).astype(float)
        got = ref.weighted_bce(t(out, dtype), t(mask, dtype), ti(ind), t(tgt, dtype))
        assert_close(got, npo.weighted_bce(out, mask, ind, tgt), spec="weighted_bce", dtype=dtype)

    def test_soft_targets_and_object_mask(self) -> None:
        rng = np.random.default_rng(45)
        out = rng.normal(0, 3, size=(1, 3, 2, 2))
        ind, _, mask = slots(rng, 1, 4, 4, 1)
        tgt = rng.random((1, 4, 3))
        got = ref.weighted_bce(t(out), t(mask), ti(ind), t(tgt))
        assert_close(got, npo.weighted_bce(out, mask, ind, tgt), spec="weighted_bce", dtype=torch.float64)

    def test_extreme_logits_are_finite(self) -> None:
        out = torch.tensor([[[[1e30]], [[-1e30]]]], dtype=torch.float64, requires_grad=True)
        tgt = torch.tensor([[[0.0, 1.0]]], dtype=torch.float64)
        loss = ref.weighted_bce(out, torch.ones(1, 1, 2), torch.zeros(1, 1, dtype=torch.int64), tgt)
        loss.backward()
        assert float(loss.detach()) == pytest.approx(2e30 / (2 + ref.NORM_EPS), rel=1e-12)
        assert out.grad is not None and torch.isfinite(out.grad).all()


# --------------------------------------------------------------------------- rotation


class TestBinRot:
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("seed", SEEDS)
    def test_matches_oracle(self, seed: int, dtype: torch.dtype) -> None:
        c = rot_case(np.random.default_rng(50 + seed))
        got = ref.bin_rot(
            t(c["output"], dtype), t(c["mask"], dtype), ti(c["ind"]), ti(c["rotbin"]), t(c["rotres"], dtype)
        )
        assert got.dtype == dtype
        want = npo.bin_rot(c["output"], c["mask"], c["ind"], c["rotbin"], c["rotres"])
        assert_close(got, want, spec="bin_rot", dtype=dtype)

    @pytest.mark.parametrize("seed", SEEDS)
    def test_seed_variant_matches_its_oracle(self, seed: int) -> None:
        c = rot_case(np.random.default_rng(60 + seed))
        got = ref.seed_bin_rot(t(c["output"]), t(c["mask"]), ti(c["ind"]), ti(c["rotbin"]), t(c["rotres"]))
        assert_close(
            got,
            npo.seed_bin_rot(c["output"], c["mask"], c["ind"], c["rotbin"], c["rotres"]),
            spec="bin_rot",
            dtype=torch.float64,
        )

    def test_seed_variant_equals_reference_when_nothing_is_masked(self) -> None:
        c = rot_case(np.random.default_rng(70))
        full = np.ones_like(c["mask"])
        rotbin, rotres = npo.encode_alpha_to_bins(np.random.default_rng(71).uniform(-3, 3, size=full.shape))
        args = (t(c["output"]), t(full), ti(c["ind"]), ti(rotbin), t(rotres))
        assert_close(ref.seed_bin_rot(*args), float(ref.bin_rot(*args)), spec="bin_rot", dtype=torch.float64)

    def test_seed_variant_leaks_log2_per_masked_slot(self) -> None:
        out = torch.zeros(1, 8, 1, 2, dtype=torch.float64)
        out[0, 1, 0, 0] = 30.0  # bin 1 "in" logit, slot 0
        out[0, 4, 0, 0] = 30.0  # bin 2 "out" logit, slot 0
        out[0, 3, 0, 0] = out[0, 7, 0, 0] = 1.0  # cos = 1, sin = 0: residual 0 matches
        ind = torch.tensor([[0, 1]])
        rotbin = torch.tensor([[[1, 0], [0, 0]]])
        rotres = torch.zeros(1, 2, 2, dtype=torch.float64)
        mask = torch.tensor([[1.0, 0.0]])
        assert float(ref.bin_rot(out, mask, ind, rotbin, rotres)) < 1e-12
        seed = float(ref.seed_bin_rot(out, mask, ind, rotbin, rotres))
        assert seed == pytest.approx(math.log(2), rel=1e-9)  # (0 + log 2) / 2 per bin, two bins

    def test_masked_slots_do_not_matter(self) -> None:
        rng = np.random.default_rng(72)
        c = rot_case(rng)
        pad = c["mask"] == 0
        assert pad.any()
        bin2, res2, ind2 = c["rotbin"].copy(), c["rotres"].copy(), c["ind"].copy()
        bin2[pad] = 1
        res2[pad] = 123.0
        ind2[pad] = rng.integers(0, 20, size=int(pad.sum()))
        a = ref.bin_rot(t(c["output"]), t(c["mask"]), ti(c["ind"]), ti(c["rotbin"]), t(c["rotres"]))
        b = ref.bin_rot(t(c["output"]), t(c["mask"]), ti(ind2), ti(bin2), t(res2))
        assert_close(b, float(a), spec="bin_rot", dtype=torch.float64)

    def test_mask_all_zero_is_zero(self) -> None:
        c = rot_case(np.random.default_rng(73))
        got = ref.bin_rot(t(c["output"]), t(np.zeros_like(c["mask"])), ti(c["ind"]), ti(c["rotbin"]), t(c["rotres"]))
        assert float(got) == 0.0

    def test_passes_gradcheck(self) -> None:
        c = rot_case(np.random.default_rng(74), b=1, m=3, h=2, w=2)
        out = t(c["output"]).requires_grad_(True)
        rest = (t(c["mask"]), ti(c["ind"]), ti(c["rotbin"]), t(c["rotres"]))
        assert torch.autograd.gradcheck(lambda v: ref.bin_rot(v, *rest), (out,))


def perfect_rot_output(alpha: np.ndarray, margin: float = 40.0) -> np.ndarray:
    """(N, 8) predictions that the bin targets of ``alpha`` call perfect: CenterFusion's _alpha_to_8 with logits."""
    rotbin, rotres = npo.encode_alpha_to_bins(alpha)
    out = np.zeros(alpha.shape + (8,))
    for k in range(2):
        on = rotbin[..., k] == 1
        out[..., 4 * k] = np.where(on, -margin, margin)
        out[..., 4 * k + 1] = np.where(on, margin, -margin)
        out[..., 4 * k + 2] = np.where(on, np.sin(rotres[..., k]), 0.0)
        out[..., 4 * k + 3] = np.where(on, np.cos(rotres[..., k]), 1.0)
    return out


class TestAngleBins:
    def test_encoding_matches_oracle(self) -> None:
        alpha = np.random.default_rng(80).uniform(-3 * math.pi, 3 * math.pi, size=(4, 50))
        rb, rr = ref.encode_alpha_to_bins(t(alpha))
        ob, orr = npo.encode_alpha_to_bins(alpha)
        assert rb.dtype == torch.int64 and torch.equal(rb, ti(ob))
        assert_close(rr, orr, spec="bin_rot", dtype=torch.float64)

    def test_bins_and_overlaps(self) -> None:
        pi = math.pi
        alpha = torch.tensor(
            [-pi, -0.9 * pi, -pi / 2, -pi / 6 - 1e-9, 0.0, pi / 6, pi / 2, 0.9 * pi, pi - 1e-9], dtype=torch.float64
        )
        rb, rr = ref.encode_alpha_to_bins(alpha)
        assert rb.tolist() == [[1, 1], [1, 1], [1, 0], [1, 0], [1, 1], [0, 1], [0, 1], [1, 1], [1, 1]]
        assert (rb.sum(-1) >= 1).all()
        assert rr[2, 0] == 0.0 and rr[6, 1] == 0.0  # the bin centres

    def test_encoding_is_periodic(self) -> None:
        alpha = np.random.default_rng(81).uniform(-math.pi, math.pi, size=200)
        rb, rr = ref.encode_alpha_to_bins(t(alpha))
        for k in (-2, -1, 1, 3):
            rb2, rr2 = ref.encode_alpha_to_bins(t(alpha + 2 * math.pi * k))
            assert torch.equal(rb, rb2)
            torch.testing.assert_close(torch.sin(rr2), torch.sin(rr), rtol=0, atol=1e-12)
            torch.testing.assert_close(torch.cos(rr2), torch.cos(rr), rtol=0, atol=1e-12)

    def test_perfect_prediction_has_zero_residual_loss_and_decodes_back(self) -> None:
        alpha = np.random.default_rng(82).uniform(-math.pi, math.pi, size=(2, 6))
        rb, rr = npo.encode_alpha_to_bins(alpha)
        rot = perfect_rot_output(alpha)
        out = t(rot.transpose(0, 2, 1)[..., None])  # (B, 8, M, 1): slot m at pixel m
        ind = ti(np.tile(np.arange(6), (2, 1)))
        mask = torch.ones(2, 6)
        loss = ref.bin_rot(out, mask, ind, ti(rb), t(rr))
        assert float(loss) < 1e-30
        decoded = ref.decode_alpha_from_bins(t(rot))
        torch.testing.assert_close(decoded, t(alpha), rtol=0, atol=1e-12)
        np.testing.assert_allclose(npo.decode_alpha_from_bins(rot), alpha, rtol=0, atol=1e-12)

    def test_angle_periodicity_leaves_the_loss_unchanged(self) -> None:
        c = rot_case(np.random.default_rng(83))
        alpha = np.random.default_rng(84).uniform(-math.pi, math.pi, size=c["mask"].shape)
        losses = []
        for k in (0, 1, -3):
            rb, rr = ref.encode_alpha_to_bins(t(alpha + 2 * math.pi * k))
            losses.append(float(ref.bin_rot(t(c["output"]), t(c["mask"]), ti(c["ind"]), rb, rr)))
        assert losses[1] == pytest.approx(losses[0], rel=1e-12) and losses[2] == pytest.approx(losses[0], rel=1e-12)


# --------------------------------------------------------------------------- GenericLoss


def generic_case(
    rng: np.random.Generator, *, stacks: int = 2
) -> tuple[list[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    b, c, h, w, m = 2, 3, 5, 6, 5
    hm = gaussian_heatmap_case(rng, b=b, c=c, h=h, w=w, m=m, max_obj=4)
    mask = hm["mask"]
    alpha = rng.uniform(-math.pi, math.pi, size=(b, m))
    rotbin, rotres = npo.encode_alpha_to_bins(alpha)
    batch = {
        "hm": hm["hm"],
        "ind": hm["ind"],
        "cat": hm["cat"],
        "mask": mask,
        "reg": rng.random((b, m, 2)),
        "reg_mask": np.repeat(mask[..., None], 2, 2),
        "wh": rng.uniform(1, 20, size=(b, m, 2)),
        "wh_mask": np.repeat(mask[..., None], 2, 2),
        "dep": rng.uniform(1, 50, size=(b, m, 1)),
        "dep_mask": mask[..., None].copy(),
        "dim": rng.uniform(0.5, 4, size=(b, m, 3)),
        "dim_mask": np.repeat(mask[..., None], 3, 2),
        "rotbin": rotbin * mask[..., None].astype(np.int64),
        "rotres": rotres * mask[..., None],
        "rot_mask": mask.copy(),
        "nuscenes_att": (rng.random((b, m, 8)) < 0.3).astype(float),
        "nuscenes_att_mask": (rng.random((b, m, 8)) < 0.5).astype(float) * mask[..., None],
        "velocity": rng.normal(size=(b, m, 3)),
        "velocity_mask": np.repeat(mask[..., None], 3, 2),
    }
    dims = {"hm": c, "reg": 2, "wh": 2, "dep": 1, "dim": 3, "rot": 8, "nuscenes_att": 8, "velocity": 3}
    outputs = [{k: rng.normal(0, 2, size=(b, d, h, w)) for k, d in dims.items()} for _ in range(stacks)]
    return outputs, batch


WEIGHTS = {"hm": 1.0, "reg": 1.0, "wh": 0.1, "dep": 1.0, "dim": 1.0, "rot": 1.0, "nuscenes_att": 1.0, "velocity": 1.0}


def to_torch(outputs: list[dict[str, np.ndarray]], batch: dict[str, np.ndarray], dtype: torch.dtype = torch.float64):  # type: ignore[no-untyped-def]
    int_keys = {"ind", "cat", "rotbin", "hp_ind", "joint"}
    tb = {k: ti(v) if k in int_keys else t(v, dtype) for k, v in batch.items()}
    return [{k: t(v, dtype) for k, v in o.items()} for o in outputs], tb


class TestGenericLoss:
    @pytest.mark.parametrize("dtype", DTYPES)
    @pytest.mark.parametrize("seed", SEEDS[:2])
    def test_matches_composed_oracle(self, seed: int, dtype: torch.dtype) -> None:
        outputs, batch = generic_case(np.random.default_rng(90 + seed))
        to, tb = to_torch(outputs, batch, dtype)
        total, per = ref.generic_loss(to, tb, weights=WEIGHTS)
        want_total, want_per = npo.generic_loss(outputs, batch, WEIGHTS)
        assert set(per) == set(want_per) == set(WEIGHTS)
        for h in want_per:
            assert_close(per[h], want_per[h], spec="generic_loss", dtype=dtype)
        assert_close(total, want_total, spec="generic_loss", dtype=dtype)
        assert total.dtype == dtype

    def test_stacks_are_averaged(self) -> None:
        outputs, batch = generic_case(np.random.default_rng(95), stacks=1)
        one, tb = to_torch(outputs, batch)
        three = [dict(one[0]) for _ in range(3)]
        t1, p1 = ref.generic_loss(one, tb, weights=WEIGHTS)
        t3, p3 = ref.generic_loss(three, tb, weights=WEIGHTS)
        assert_close(t3, float(t1), spec="generic_loss", dtype=torch.float64)
        for h in p1:
            assert_close(p3[h], float(p1[h]), spec="generic_loss", dtype=torch.float64)

    def test_total_is_the_weighted_sum_of_the_heads(self) -> None:
        outputs, batch = generic_case(np.random.default_rng(96))
        to, tb = to_torch(outputs, batch)
        weights = {h: float(i + 1) / 3 for i, h in enumerate(WEIGHTS)}
        total, per = ref.generic_loss(to, tb, weights=weights)
        assert_close(total, float(sum(weights[h] * per[h] for h in per)), spec="generic_loss", dtype=torch.float64)

    def test_weight_zero_and_absent_heads_are_skipped(self) -> None:
        outputs, batch = generic_case(np.random.default_rng(97))
        for o in outputs:
            del o["velocity"]
        to, tb = to_torch(outputs, batch)
        to[0]["dim"] = torch.full_like(to[0]["dim"], math.nan)  # skipped, so it cannot poison the total
        weights = dict(WEIGHTS, dim=0.0)
        total, per = ref.generic_loss(to, tb, weights=weights)
        assert "velocity" not in per and "dim" not in per and torch.isfinite(total)
        want, _ = npo.generic_loss(outputs, batch, weights)
        assert_close(total, want, spec="generic_loss", dtype=torch.float64)

    def test_does_not_modify_the_outputs(self) -> None:
        outputs, batch = generic_case(np.random.default_rng(98))
        to, tb = to_torch(outputs, batch)
        snapshot = [{k: v.clone() for k, v in o.items()} for o in to]
        first, _ = ref.generic_loss(to, tb, weights=WEIGHTS)
        second, _ = ref.generic_loss(to, tb, weights=WEIGHTS)
        assert float(first) == float(second)
        for o, s in zip(to, snapshot):
            assert o.keys() == s.keys() and all(torch.equal(o[k], s[k]) for k in o)

    def test_seed_variant_mutates_the_outputs_and_drifts_on_a_second_call(self) -> None:
        outputs, batch = generic_case(np.random.default_rng(99))
        to, tb = to_torch(outputs, batch)
        ref_total, _ = ref.generic_loss(copy.deepcopy(to), tb, weights=WEIGHTS)
        first, _ = ref.seed_generic_loss(to, tb, weights=WEIGHTS)
        # Padding slots carry rotbin 0 here, so only the bin loss's log 2 leak separates the two.
        want_first, _ = npo.seed_generic_loss(outputs, batch, WEIGHTS)
        assert_close(first, want_first, spec="generic_loss", dtype=torch.float64)
        assert float(first) != float(ref_total)
        assert float(to[0]["hm"].min()) >= ref.SIGMOID_CLAMP * (1 - 1e-9)  # now probabilities
        second, _ = ref.seed_generic_loss(to, tb, weights=WEIGHTS)
        assert float(second) != float(first)

    def test_backward_reaches_every_active_head(self) -> None:
        outputs, batch = generic_case(np.random.default_rng(100))
        to, tb = to_torch(outputs, batch)
        for o in to:
            for v in o.values():
                v.requires_grad_(True)
        total, _ = ref.generic_loss(to, tb, weights=WEIGHTS)
        total.backward()
        for o in to:
            for k, v in o.items():
                assert v.grad is not None and torch.isfinite(v.grad).all() and v.grad.abs().sum() > 0, k

    def test_no_active_head_gives_zero(self) -> None:
        outputs, batch = generic_case(np.random.default_rng(101))
        to, tb = to_torch(outputs, batch)
        total, per = ref.generic_loss(to, tb, weights=WEIGHTS, heads=("ltrb",))
        assert per == {} and float(total) == 0.0 and total.dtype == torch.float64


# --------------------------------------------------------------------------- validation


def _ok_focal() -> tuple[torch.Tensor, ...]:
    p = torch.full((1, 2, 3, 3), 0.3, dtype=torch.float64)
    gt = torch.zeros_like(p)
    gt[0, 1, 1, 1] = 1.0
    return p, gt, torch.tensor([[4]]), torch.tensor([[1.0]]), torch.tensor([[1]])


def _call_fast(**over: object) -> None:
    p, gt, ind, mask, cat = _ok_focal()
    args: dict[str, object] = {"pred_prob": p, "gt_heatmap": gt, "ind": ind, "mask": mask, "cat": cat}
    args.update(over)
    ref.fast_focal(**args)  # type: ignore[arg-type]


class TestValidation:
    @pytest.mark.parametrize(
        ("over", "match"),
        [
            ({"pred_prob": torch.full((1, 2, 3, 3), 1.5, dtype=torch.float64)}, "pred_prob must have values in"),
            ({"pred_prob": torch.full((2, 3, 3), 0.3, dtype=torch.float64)}, "pred_prob must have 4 dimensions"),
            ({"gt_heatmap": torch.zeros(1, 2, 3, 3)}, "gt_heatmap must have the same dtype"),
            ({"gt_heatmap": torch.zeros(1, 2, 3, 4, dtype=torch.float64)}, "gt_heatmap must have the same shape"),
            ({"ind": torch.tensor([[9]])}, r"ind must have values in \[0, 8\]"),
            ({"ind": torch.tensor([[4.0]])}, "ind must have dtype in"),
            ({"ind": torch.tensor([[4]], dtype=torch.int32)}, "ind must have dtype in"),
            ({"cat": torch.tensor([[2]])}, r"cat must have values in \[0, 1\]"),
            ({"cat": torch.tensor([[1, 0]])}, "cat must have the shape of ind"),
            ({"mask": torch.tensor([[2.0]])}, "mask must have values in"),
            ({"mask": torch.tensor([1.0])}, "mask must have shape"),
            ({"alpha": -1.0}, r"alpha must lie in \[0"),
            ({"beta": float("nan")}, r"beta must lie in \[0"),
            ({"positive_threshold": 1.0}, r"positive_threshold must lie in \[0, 1\)"),
            ({"positive_weight": -0.5}, r"positive_weight must lie in \[0"),
            ({"negative_weight": float("nan")}, r"negative_weight must lie in \[0"),
            ({"from_logits": 1}, "from_logits must be True or False"),
            ({"mask": None}, "ind, mask and cat must be given together.*mask is missing"),
            ({"ind": None, "cat": None}, "ind, mask and cat must be given together.*ind, cat are missing"),
            ({"pred_prob": torch.full((1, 2, 3, 3), math.nan, dtype=torch.float64), "from_logits": True},
             "pred_prob must hold logits without nan"),
        ],
    )
    def test_fast_focal_rejects(self, over: dict[str, object], match: str) -> None:
        with pytest.raises(ValueError, match=match):
            _call_fast(**over)

    def test_dense_forms_reject(self) -> None:
        p, gt, *_ = _ok_focal()
        with pytest.raises(ValueError, match="gt_heatmap must have values in"):
            ref.penalty_reduced_focal(p, gt * 2)
        with pytest.raises(ValueError, match="logits must be a torch.Tensor"):
            ref.penalty_reduced_focal_logits(p.numpy(), gt)  # type: ignore[arg-type]

    def test_gathered_heads_reject(self) -> None:
        out = torch.zeros(1, 2, 3, 3, dtype=torch.float64)
        ind = torch.tensor([[0, 1]])
        with pytest.raises(ValueError, match=r"target must have shape \(B, M, D\)"):
            ref.reg_weighted_l1(out, torch.ones(1, 2), ind, torch.zeros(1, 2, 3, dtype=torch.float64))
        with pytest.raises(ValueError, match="target must have the same dtype"):
            ref.reg_weighted_l1(out, torch.ones(1, 2), ind, torch.zeros(1, 2, 2))
        with pytest.raises(ValueError, match="mask must have shape"):
            ref.reg_weighted_l1(out, torch.ones(1, 2, 3), ind, torch.zeros(1, 2, 2, dtype=torch.float64))
        with pytest.raises(ValueError, match=r"cat must have values in \[0, 1\]"):
            ref.depth_l1(out, torch.zeros(1, 2, dtype=torch.float64), ind, torch.ones(1, 2), torch.tensor([[0, 2]]))
        with pytest.raises(ValueError, match="target must have values in"):
            ref.weighted_bce(out, torch.ones(1, 2), ind, torch.full((1, 2, 2), 2.0, dtype=torch.float64))

    def test_empty_batch_gives_zero(self) -> None:
        out = torch.zeros(0, 2, 3, 3)
        none = torch.zeros(0, 4, dtype=torch.int64)
        assert float(ref.reg_weighted_l1(out, torch.zeros(0, 4), none, torch.zeros(0, 4, 2))) == 0.0
        assert float(ref.weighted_bce(out, torch.zeros(0, 4, 2), none, torch.zeros(0, 4, 2))) == 0.0
        assert float(ref.penalty_reduced_focal(out, out, none, torch.zeros(0, 4), none)) == 0.0

    def test_depth_nan_where_no_slot_reads_leaves_loss_and_gradient_finite(self) -> None:
        x = torch.tensor([[[[0.5, math.nan], [math.inf, -2.0]]]], requires_grad=True)
        loss = ref.depth_l1(x, torch.tensor([[3.0, 7.0]]), torch.tensor([[0, 3]]), torch.tensor([[1.0, 1.0]]),
                            torch.zeros(1, 2, dtype=torch.int64))
        loss.backward()
        assert torch.isfinite(loss) and x.grad is not None and torch.isfinite(x.grad).all()

    def test_bin_rot_rejects(self) -> None:
        c = rot_case(np.random.default_rng(110))
        out, mask, ind, rotbin, rotres = t(c["output"]), t(c["mask"]), ti(c["ind"]), ti(c["rotbin"]), t(c["rotres"])
        with pytest.raises(ValueError, match="output must have 8 channels"):
            ref.bin_rot(out[:, :6], mask, ind, rotbin, rotres)
        with pytest.raises(ValueError, match=r"rotbin must have values in \[0, 1\]"):
            ref.bin_rot(out, mask, ind, rotbin * 2, rotres)
        with pytest.raises(ValueError, match="rotbin must have dtype in"):
            ref.bin_rot(out, mask, ind, rotbin.double(), rotres)
        with pytest.raises(ValueError, match=r"rot must have shape \(\*, 8\)"):
            ref.decode_alpha_from_bins(torch.zeros(3, 7))

    def test_generic_loss_rejects(self) -> None:
        outputs, batch = generic_case(np.random.default_rng(111))
        to, tb = to_torch(outputs, batch)
        with pytest.raises(ValueError, match="weights must have an entry for every head"):
            ref.generic_loss(to, tb, weights={"hm": 1.0})
        with pytest.raises(ValueError, match="batch must contain 'dep_mask' for head 'dep'"):
            ref.generic_loss(to, {k: v for k, v in tb.items() if k != "dep_mask"}, weights=WEIGHTS)
        with pytest.raises(ValueError, match=r"outputs\[1\] must have the heads of outputs\[0\]"):
            ref.generic_loss([to[0], {k: v for k, v in to[1].items() if k != "wh"}], tb, weights=WEIGHTS)
        with pytest.raises(ValueError, match="heads must be among"):
            ref.generic_loss(to, tb, weights=WEIGHTS, heads=("hm", "boxes"))
        with pytest.raises(ValueError, match="outputs must be a non-empty list"):
            ref.generic_loss([], tb, weights=WEIGHTS)
        with pytest.raises(ValueError, match="outputs must be a non-empty list"):
            ref.generic_loss(to[0], tb, weights=WEIGHTS)  # type: ignore[arg-type]
