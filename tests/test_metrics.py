"""Metric semantics and their DDP reductions."""

import pytest
import torch

from lit_cert.bounds import is_certified, margin_spec, robust_cross_entropy
from lit_cert.metrics import CertifiedAccuracy, NaturalAccuracy


def test_certified_requires_every_other_margin_positive():
    y = torch.tensor([0, 1, 2])
    lb = torch.tensor([[0.0, 0.5, 0.1], [0.2, 0.0, -0.1], [1.0, 1.0, 0.0]])
    assert is_certified(lb, y).tolist() == [True, False, True]
    m = CertifiedAccuracy()
    m.update(lb, y)
    assert m.compute().item() == pytest.approx(2 / 3)


def test_states_sum_like_ddp():
    """Two 'ranks' merged give the same value as one metric over all data."""
    logits = torch.randn(10, 4)
    y = logits.argmax(1)
    y[:4] = (y[:4] + 1) % 4  # 6 of 10 correct
    whole, a, b = NaturalAccuracy(), NaturalAccuracy(), NaturalAccuracy()
    whole.update(logits, y)
    a.update(logits[:3], y[:3])
    b.update(logits[3:], y[3:])
    a.merge_state(b)  # what the DDP reduction (dist_reduce_fx="sum") does across ranks
    assert a.compute() == whole.compute()
    assert 0 < whole.compute() < 1  # a non-trivial value, so equality means something
    assert CertifiedAccuracy.full_state_update is False  # one update per forward


def test_robust_ce_is_ce_on_negated_margins():
    y = torch.tensor([2])
    lb = torch.tensor([[0.3, -0.2, 0.0]])
    expected = torch.log(1 + torch.exp(torch.tensor(-0.3)) + torch.exp(torch.tensor(0.2)))
    assert torch.allclose(robust_cross_entropy(lb, y), expected)
    # and for exact (eps = 0) margins it equals the natural CE
    logits = torch.randn(5, 4)
    yy = torch.randint(0, 4, (5,))
    margins = torch.einsum("bmk,bk->bm", margin_spec(yy, 4), logits)
    assert torch.allclose(robust_cross_entropy(margins, yy), torch.nn.functional.cross_entropy(logits, yy), atol=1e-6)
