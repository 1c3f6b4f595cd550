"""The SSD reference's building blocks: boxes, priors, Jaccard, encoding, blocked matching, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from impls import ssd
from oracles import numpy_ssd as npo

Q = 64
coord = st.integers(0, Q).map(lambda v: v / Q)


@st.composite
def corner_boxes(draw: st.DrawFn, n: int | None = None) -> torch.Tensor:
    n = draw(st.integers(1, 6)) if n is None else n
    rows = []
    for _ in range(n):
        x, y = draw(st.integers(0, 60)), draw(st.integers(0, 60))
        w, h = draw(st.integers(1, 30)), draw(st.integers(1, 30))
        rows.append([x / Q, y / Q, (x + w) / Q, (y + h) / Q])
    return torch.tensor(rows, dtype=torch.float64)


@settings(max_examples=60, deadline=None)
@given(corner_boxes(), corner_boxes(), st.tuples(st.integers(-8, 8), st.integers(-8, 8)), st.sampled_from([0.5, 2.0, 4.0]))
def test_jaccard_symmetric_bounded_and_invariant(a: torch.Tensor, b: torch.Tensor, shift: tuple[int, int], s: float) -> None:
    ab, ba = ssd.jaccard(a, b), ssd.jaccard(b, a)
    assert torch.equal(ab, ba.T)
    assert bool(((ab >= 0) & (ab <= 1)).all())
    assert torch.allclose(torch.diagonal(ssd.jaccard(a, a)), torch.ones(a.shape[0], dtype=a.dtype))
    t = torch.tensor([shift[0], shift[1]] * 2, dtype=a.dtype) / 8
    assert torch.allclose(ssd.jaccard(a + t, b + t), ab, atol=1e-12)
    assert torch.allclose(ssd.jaccard(a * s, b * s), ab, atol=1e-12)
    np.testing.assert_allclose(ab.numpy(), npo.iou_matrix(a, b), rtol=1e-12, atol=1e-15)


def test_jaccard_of_two_empty_boxes_is_zero_not_nan() -> None:
    z = torch.tensor([[0.5, 0.5, 0.5, 0.5]])
    assert ssd.jaccard(z, z).item() == 0.0


@settings(max_examples=60, deadline=None)
@given(corner_boxes(n=5), corner_boxes(n=5))
def test_encode_decode_round_trip(boxes: torch.Tensor, pri: torch.Tensor) -> None:
    priors = ssd.xyxy_to_cxcywh(pri)
    cs = ssd.xyxy_to_cxcywh(boxes)
    back = ssd.decode(ssd.encode(cs, priors), priors)
    torch.testing.assert_close(back, cs, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ssd.cxcywh_to_xyxy(cs), boxes, rtol=0, atol=1e-15)
    np.testing.assert_allclose(ssd.encode(cs, priors).numpy(), npo.encode(boxes.numpy(), priors.numpy()), rtol=1e-12)


def test_ssd300_has_8732_priors_inside_the_image() -> None:
    p = ssd.ssd300_priors()
    assert p.shape == (8732, 4)
    xy = ssd.cxcywh_to_xyxy(p)
    assert bool((p[:, 2:] > 0).all()) and float(p.min()) >= 0 and float(p.max()) <= 1
    assert float(xy.min()) > -0.5 and float(xy.max()) < 1.5


def _random_batch(b: int, g: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    n = torch.randint(0, g + 1, (b,), generator=gen)
    xy = torch.rand(b, g, 2, generator=gen) * 0.8
    wh = torch.rand(b, g, 2, generator=gen) * 0.4 + 0.02
    return torch.cat([xy, xy + wh], -1), torch.arange(g)[None] < n[:, None]


def test_blocked_matching_equals_the_loop_on_ssd300_priors(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small blocks (many of them, with collisions) give exactly the per-image loop's answer."""
    gen = torch.Generator().manual_seed(0)
    priors = ssd.ssd300_priors(torch.float64)[::7]  # 1248 priors keep the NumPy loop quick
    boxes, mask = _random_batch(6, 8, gen)
    boxes = boxes.double()
    boxes[0, 1] = boxes[0, 0]  # a duplicate: a collision on its best prior
    mask[0, :2] = True
    monkeypatch.setattr(ssd, "_BLOCK", 4 * priors.shape[0])
    got = ssd.ssd_matching(boxes, mask, priors).numpy()
    want, margins = npo.match_with_margins(boxes, mask, priors, 0.5, exact=True)
    untied = margins > 1e-12
    assert untied.sum() >= 4, "the batch should hold images without ties"
    np.testing.assert_array_equal(got[untied], want[untied])
    # whatever the ties, every real ground truth has its own prior
    for i in range(boxes.shape[0]):
        assert set(np.flatnonzero(mask[i].numpy())) <= set(got[i][got[i] >= 0].tolist())


def test_more_ground_truths_than_priors_leaves_some_without_one() -> None:
    priors = torch.tensor([[0.25, 0.25, 0.5, 0.5]])
    boxes = torch.tensor([[[0.0, 0.0, 0.5, 0.5], [0.1, 0.1, 0.5, 0.5]]])
    out = ssd.ssd_matching(boxes, None, priors)
    assert out.tolist() == [[0]]


def test_list_api_pads_and_masks() -> None:
    boxes = [torch.tensor([[0.0, 0.0, 0.5, 0.5]]), torch.zeros(0, 4), torch.tensor([[0.1, 0.1, 0.2, 0.2], [0.5, 0.5, 0.9, 0.9]])]
    labels = [torch.tensor([1]), torch.zeros(0, dtype=torch.long), torch.tensor([2, 3])]
    b, lab, m = ssd.pad_ground_truths(boxes, labels)
    assert b.shape == (3, 2, 4) and lab is not None and lab.tolist() == [[1, 0], [0, 0], [2, 3]]
    assert m.tolist() == [[True, False], [False, False], [True, True]]


def test_loss_no_positive_is_zero_with_zero_gradients() -> None:
    priors = ssd.ssd300_priors()[:100]
    locs = torch.randn(2, 100, 4, requires_grad=True)
    scores = torch.randn(2, 100, 5, requires_grad=True)
    out = ssd.multibox_loss(locs, scores, torch.zeros(2, 3, 4), torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3, dtype=torch.bool), priors)
    out.backward()
    assert out.item() == 0.0
    assert locs.grad is not None and scores.grad is not None
    assert not locs.grad.any() and not scores.grad.any()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gt_boxes": torch.zeros(1, 2, 5)}, "gt_boxes must have shape (B, G, 4)"),
        ({"gt_mask": torch.ones(1, 3, dtype=torch.bool)}, "gt_mask must have shape (B, G)"),
        ({"gt_mask": torch.ones(1, 2)}, "gt_mask must have dtype in (bool)"),
        ({"priors": torch.zeros(3, 4)}, "priors must be finite with positive widths"),
        ({"threshold": 1.5}, "threshold must lie in [0, 1]"),
        ({"gt_boxes": torch.tensor([[[0.5, 0.5, 0.2, 0.9], [0.0, 0.0, 0.1, 0.1]]])}, "x2 >= x1 and y2 >= y1"),
    ],
)
def test_matching_rejects_bad_input_naming_the_argument(kwargs: dict, message: str) -> None:
    args = {"gt_boxes": torch.tensor([[[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]]]), "gt_mask": torch.ones(1, 2, dtype=torch.bool),
            "priors": torch.tensor([[0.25, 0.25, 0.5, 0.5]]), "threshold": 0.5}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):
        ssd.ssd_matching(args["gt_boxes"], args["gt_mask"], args["priors"], threshold=args["threshold"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gt_labels": torch.tensor([[0]])}, "gt_labels must lie in [1, 2]"),
        ({"gt_labels": torch.tensor([[3]])}, "gt_labels must lie in [1, 2]"),
        ({"pred_locs": torch.zeros(1, 2, 4)}, "pred_locs must have shape (B, P, 4)"),
        ({"pred_scores": torch.zeros(1, 1, 1)}, "pred_scores must have shape (B, P, C)"),
        ({"pred_scores": torch.zeros(1, 1, 3, dtype=torch.float64)}, "pred_scores must have the dtype of pred_locs"),
        ({"gt_boxes": torch.tensor([[[0.1, 0.1, 0.1, 0.5]]])}, "x2 > x1 and y2 > y1"),
        ({"alpha": -1.0}, "alpha must lie in [0, inf)"),
    ],
)
def test_loss_rejects_bad_input_naming_the_argument(kwargs: dict, message: str) -> None:
    args = {"pred_locs": torch.zeros(1, 1, 4), "pred_scores": torch.zeros(1, 1, 3), "gt_boxes": torch.tensor([[[0.0, 0.0, 0.5, 0.5]]]),
            "gt_labels": torch.tensor([[1]]), "gt_mask": torch.ones(1, 1, dtype=torch.bool), "priors": torch.tensor([[0.25, 0.25, 0.5, 0.5]]),
            "alpha": 1.0}
    args.update(kwargs)
    esc = message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")
    with pytest.raises(ValueError, match=esc):
        ssd.multibox_loss(args["pred_locs"], args["pred_scores"], args["gt_boxes"], args["gt_labels"], args["gt_mask"], args["priors"],
                          alpha=args["alpha"])


def test_mining_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="neg_pos_ratio must lie in"):
        ssd.hard_negative_mining(torch.zeros(1, 3), torch.zeros(1, 3, dtype=torch.bool), neg_pos_ratio=-1)
    with pytest.raises(ValueError, match="positive must have the shape of conf_loss"):
        ssd.hard_negative_mining(torch.zeros(1, 3), torch.zeros(1, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="conf_loss must not contain NaN"):
        ssd.hard_negative_mining(torch.tensor([[float("nan"), 1.0]]), torch.tensor([[True, False]]))


def test_mining_puts_minus_infinite_negatives_before_positives() -> None:
    loss = torch.tensor([[5.0, -float("inf"), -float("inf"), 1.0]])
    pos = torch.tensor([[True, False, False, False]])
    got = ssd.hard_negative_mining(loss, pos, neg_pos_ratio=3)
    assert got.tolist() == [[False, True, True, True]]


def _oracle_miner(conf_loss: torch.Tensor, positive: torch.Tensor, *, neg_pos_ratio: float = 3) -> torch.Tensor:
    return torch.from_numpy(npo.hard_negative_mining(conf_loss, positive, neg_pos_ratio))


def test_only_the_order_matters_accepts_a_stable_miner_on_tiny_losses() -> None:
    """Issue #16: l -> 2 l + 1 made 0, 1.2e-38, 4.3e-31 and 1.7e-25 all 1.0 in float32, a tie at the cut that
    rejected the NumPy oracle's own stable sort. The transforms are exact now (dense ranks, powers of two)."""
    from conformance.catalogue import load_specs
    from conformance.runner import run_property
    from conformance.targets import Target

    prop = load_specs()["hard_negative_mining"].properties["only_the_order_matters"]
    target = Target(name="numpy-oracle-miner", spec_id="hard_negative_mining", fn=_oracle_miner,
                    source="tests.test_impl_ssd:_oracle_miner", kind="callable")
    out = run_property(prop, target, profile="ci", database=None)
    assert out.status == "passed", out.message


def test_mining_open_marks_only_the_losses_tied_at_the_cut() -> None:
    loss = np.array([[5.0, 2.0, 2.0, 2.0, 1.0, 0.0], [3.0, 2.0, 1.0, 0.0, 0.0, 0.0]])
    pos = np.array([[True, False, False, False, False, False], [True, False, False, False, False, False]])
    # image 0: 2 of the three 2.0s (ratio 2): all three are open; image 1: the cut (2.0 | 1.0) is not a tie.
    open_ = npo.mining_open(loss, pos, 2)
    assert open_.tolist() == [[False, True, True, True, False, False], [False] * 6]


def test_match_margins_are_per_image() -> None:
    priors = torch.tensor([[0.25, 0.25, 0.5, 0.5], [0.75, 0.25, 0.5, 0.5]], dtype=torch.float64)
    boxes = torch.tensor([[[0.0, 0.0, 0.5, 0.5]], [[0.25, 0.0, 0.75, 0.5]]], dtype=torch.float64)  # image 1 sits between
    matched, margins = npo.match_with_margins(boxes, None, priors, 0.5, exact=True)
    assert matched[0].tolist() == [0, -1] and margins[0] > 0.1
    assert margins[1] == 0.0  # equal IoUs with both priors: the contract leaves the choice open
