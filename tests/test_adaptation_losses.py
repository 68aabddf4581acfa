"""LSFA loss functions against hand-computed cases."""

import math

import pytest
import torch

from core.adaptation.losses import (
    capped_nn_distance,
    global_alignment_loss,
    info_nce,
    local_alignment_loss,
    nearest_neighbour_index,
    nearest_other_source,
    queue_compactness_loss,
)


def test_info_nce_identity_logits():
    eye = torch.eye(2)
    # logits = I: each row -log(e / (e + 1)) = log(1 + e^-1)
    expected = math.log(1 + math.exp(-1))
    assert float(info_nce(eye, eye, tau=1.0)) == pytest.approx(expected, abs=1e-6)
    # τ = 0.5 doubles the logits: log(1 + e^-2); the 2τ factor multiplies by 1.0
    assert float(info_nce(eye, eye, tau=0.5)) == pytest.approx(math.log(1 + math.exp(-2)), abs=1e-6)
    assert float(info_nce(eye, eye, tau=0.5, scale_2tau=True)) == pytest.approx(math.log(1 + math.exp(-2)), abs=1e-6)
    assert float(info_nce(eye, eye, tau=1.0, scale_2tau=True)) == pytest.approx(2 * expected, abs=1e-6)


def test_info_nce_asymmetric_known_logits():
    a = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    b = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    # logits rows: [0, 1] (target 0) -> log(1 + e); [0.5, 0.5] (target 1) -> log 2
    expected = (math.log(1 + math.e) + math.log(2)) / 2
    assert float(info_nce(a, b)) == pytest.approx(expected, abs=1e-6)
    # the reverse direction uses the transposed logits: [0, 0.5] (t0), [1, 0.5] (t1)
    rev = (math.log(1 + math.exp(0.5)) + math.log(1 + math.exp(0.5))) / 2
    assert float(info_nce(b, a)) == pytest.approx(rev, abs=1e-6)


def test_local_alignment_normalises_and_is_symmetric():
    q = torch.tensor([[2.0, 0.0], [0.0, 3.0]])
    k = torch.tensor([[5.0, 0.0], [0.0, 0.1]])
    one_dir = math.log(1 + math.exp(-1))
    assert float(local_alignment_loss(q, k, tau=1.0, scale_2tau=False)) == pytest.approx(one_dir, abs=1e-6)
    # reference convention: 2τ·½(NCE(q,k) + NCE(k,q)) = sum of both directions at τ = 1
    assert float(local_alignment_loss(q, k, tau=1.0, scale_2tau=True)) == pytest.approx(2 * one_dir, abs=1e-6)
    assert float(local_alignment_loss(q[:1], k[:1])) == 0.0  # no negatives


def test_local_alignment_subset_is_seeded():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(50, 8, generator=g), torch.randn(50, 8, generator=g)
    a = local_alignment_loss(q, k, max_tokens=10, generator=torch.Generator().manual_seed(3))
    b = local_alignment_loss(q, k, max_tokens=10, generator=torch.Generator().manual_seed(3))
    c = local_alignment_loss(q, k, max_tokens=10, generator=torch.Generator().manual_seed(4))
    assert float(a) == float(b) != float(c)
    # a subset of 10 tokens has 9 negatives: loss bounded by the 10-way uniform-ish range
    assert 0 < float(a) < 2 * (math.log(10) + 2)


def test_global_alignment_needs_two_images():
    g = torch.randn(1, 4, requires_grad=True)
    assert float(global_alignment_loss(g, g).detach()) == 0.0
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert float(global_alignment_loss(a, a, tau=1.0, scale_2tau=False)) == pytest.approx(
        math.log(1 + math.exp(-1)), abs=1e-6)


def test_capped_distance_values_and_gradients():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0], [10.0, 0.0]], requires_grad=True)
    bank = torch.tensor([[0.0, 0.0], [100.0, 100.0]], requires_grad=True)
    d, clamped = capped_nn_distance(x, bank, cap_sq=50.0)
    assert d.tolist() == pytest.approx([1e-6, 5.0, math.sqrt(50.0)], rel=1e-5)
    assert clamped.tolist() == [False, False, True]
    d.sum().backward()
    # d/dx ||x - m|| = (x - m) / ||x - m||; zero beyond the cap and at the 1e-12 floor
    assert torch.allclose(x.grad, torch.tensor([[0.0, 0.0], [0.6, 0.8], [0.0, 0.0]]), atol=1e-6)
    assert bank.grad is None  # the bank is a constant


def test_capped_distance_without_cap_and_nn_matches_bruteforce():
    g = torch.Generator().manual_seed(1)
    x, bank = torch.randn(300, 16, generator=g), torch.randn(1000, 16, generator=g)
    ref = torch.cdist(x, bank).min(dim=1)
    assert torch.equal(nearest_neighbour_index(x, bank), ref.indices)
    d, clamped = capped_nn_distance(x, bank, cap_sq=None)
    assert torch.allclose(d, ref.values, atol=1e-4) and not clamped.any()


def test_local_compactness_is_sum_of_image_means():
    held = (torch.zeros(1, 2), torch.tensor([9]))
    # image 0: distances 1, 3 (mean 2); image 1: distance 5 (mean 5) -> 7 (the caller divides by 2)
    rows = [torch.tensor([[1.0, 0.0], [0.0, 3.0]]), torch.tensor([[3.0, 4.0]])]
    loss, fracs = queue_compactness_loss(rows, [0, 1], held)
    assert float(loss) == pytest.approx(7.0, abs=1e-5) and fracs == [0.0, 0.0]
    loss, fracs = queue_compactness_loss(rows, [0, 1], held, cap_sq=4.0, scale=2.0)
    # capped at 2: image 0 -> (1 + 2)/2, image 1 -> 2; divided by scale 2
    assert float(loss) == pytest.approx(1.75, abs=1e-5)
    assert fracs == pytest.approx([0.5, 1.0])


def test_global_compactness():
    g = [torch.tensor([[3.0, 4.0]]), torch.tensor([[0.0, 1.0]])]
    held = (torch.tensor([[0.0, 0.0], [0.0, 2.0]]), torch.tensor([7, 8]))
    loss, fracs = queue_compactness_loss(g, [0, 1], held)
    # nearest: (3,4) -> (0,2): sqrt(9+4); (0,1) -> either at distance 1
    assert float(loss) == pytest.approx(math.sqrt(13) + 1, abs=1e-5) and fracs == [0.0, 0.0]


def test_an_image_is_never_matched_with_its_own_queued_features():
    bank = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    sources = torch.tensor([1, 2, 1])
    x = torch.tensor([[0.1, 0.0], [9.0, 0.0], [0.0, 9.0]])
    idx, found = nearest_other_source(x, torch.tensor([1, 2, 3]), bank, sources)
    # image 1 may not use rows 0 and 2; image 2 may not use row 1; image 3 may use any
    assert idx.tolist() == [1, 0, 2] and found.all()
    idx, found = nearest_other_source(x[:1], torch.tensor([1]), bank[[0, 2]], sources[[0, 2]])
    assert not found.any()  # only its own rows: no match
    loss, fracs = queue_compactness_loss([x[:1], x[1:2]], [1, 2], (bank[[0, 2]], sources[[0, 2]]))
    # image 1 has nothing to match and adds nothing; image 2's (9, 0) is nearest to (0, 0)
    assert float(loss) == pytest.approx(9.0, abs=1e-5) and fracs == [0.0]


def test_one_batched_search_equals_a_search_per_image():
    gen = torch.Generator().manual_seed(0)
    bank = torch.randn(300, 16, generator=gen)
    sources = torch.randint(0, 6, (300,), generator=gen)
    rows = [torch.randn(n, 16, generator=gen).requires_grad_() for n in (5, 0, 9, 3)]
    loss, _ = queue_compactness_loss(rows, [0, 1, 2, 3], (bank, sources), cap_sq=30.0, scale=1.5)
    expected = torch.zeros(())
    for i, r in enumerate(rows):
        if r.shape[0]:
            d, _ = capped_nn_distance(r, bank[sources != i], cap_sq=30.0)
            expected = expected + (d / 1.5).mean()
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    loss.backward()
    assert rows[0].grad is not None and rows[0].grad.abs().sum() > 0
