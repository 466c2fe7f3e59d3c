"""Expected tight bounds: the block formula, and that they are never treated as certificates."""

import pytest
import torch
from torch import nn

from lit_cert.bounds import interval_bounds
from lit_cert.bounds.expected import expected_bounds
from lit_cert.data import SyntheticImages
from lit_cert.errors import ConfigError
from lit_cert.methods import CERTIFIERS, ExpectedTightBounds
from lit_cert.models import FC


def test_block_formula_matches_explicit_matrices():
    torch.manual_seed(0)
    a1, a2 = nn.Linear(6, 9), nn.Linear(9, 4)
    net = nn.Sequential(a1, nn.ReLU(), a2).double()
    c = torch.randn(3, 6, dtype=torch.float64)
    r = torch.rand(3, 6, dtype=torch.float64) * 0.5
    lo, up = expected_bounds(net, c - r, c + r)
    W1, b1, W2, b2 = (t.detach() for t in (a1.weight, a1.bias, a2.weight, a2.bias))
    for i in range(3):
        upper = W1 @ c[i] + b1 + W1.abs() @ r[i]  # IBP upper bound of the pre-activation
        M = torch.diag((upper >= 0).double())
        center = W2 @ M @ (W1 @ c[i] + b1) + b2
        radius = (W2 @ M @ W1).abs() @ r[i]
        assert torch.allclose(lo[i], center - radius) and torch.allclose(up[i], center + radius)


def _block_formula(W1, b1, W2, b2, c, r):
    """The paper's ARA interval for one sample, written out with explicit matrices."""
    upper = W1 @ c + b1 + W1.abs() @ r
    M = torch.diag((upper >= 0).double())
    center = W2 @ M @ (W1 @ c + b1) + b2
    radius = (W2 @ M @ W1).abs() @ r
    return center - radius, center + radius


def test_blockwise_propagation_matches_explicit_blocks():
    """A R A | R | A R A: block 1's expected box, IBP through the joining ReLU, then block 2."""
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(4, 7), nn.ReLU(), nn.Linear(7, 6), nn.ReLU(), nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)).double()
    c = torch.randn(2, 4, dtype=torch.float64)
    r = torch.full((2, 4), 0.4, dtype=torch.float64)
    lo, up = expected_bounds(net, c - r, c + r, blocks="ara")
    p = [t.detach() for m in net if isinstance(m, nn.Linear) for t in (m.weight, m.bias)]
    for i in range(2):
        l1, u1 = _block_formula(*p[0:4], c[i], r[i])
        l1, u1 = l1.clamp(min=0), u1.clamp(min=0)
        l2, u2 = _block_formula(*p[4:8], (l1 + u1) / 2, (u1 - l1) / 2)
        assert torch.allclose(lo[i], l2) and torch.allclose(up[i], u2)
    # the whole-network mode masks all three ReLUs at once and is a different bound
    wlo, wup = expected_bounds(net, c - r, c + r, blocks="whole")
    assert not torch.allclose(wlo, lo)
    with pytest.raises(ValueError, match="blocks"):
        expected_bounds(net, c - r, c + r, blocks="layer")


@pytest.mark.parametrize("blocks", ["ara", "whole"])
def test_expected_bounds_are_tighter_than_ibp_but_not_sound(blocks):
    violations, tighter = 0, []
    for seed in range(5):
        torch.manual_seed(seed)
        deep = nn.Sequential(nn.Linear(5, 20), nn.ReLU(), nn.Linear(20, 20), nn.ReLU(), nn.Linear(20, 3))
        block = nn.Sequential(nn.Linear(5, 20), nn.ReLU(), nn.Linear(20, 3))
        c = torch.randn(4, 5)
        lb, ub = c - 0.3, c + 0.3
        with torch.no_grad():
            for net in (deep, block):
                lo, up = expected_bounds(net, lb, ub, blocks=blocks)
                ilo, iup = interval_bounds(net, lb, ub)
                tighter.append(((up - lo) / (iup - ilo)).mean().item())
            out = block(lb + (ub - lb) * torch.rand(2000, 4, 5))
            violations += int(((out < lo - 1e-6) | (out > up + 1e-6)).any())
    assert max(tighter) < 1.0  # narrower than IBP
    assert violations > 0  # and indeed not a sound over-approximation


def test_blockwise_handles_convolutions_and_batchnorm():
    from lit_cert.models import CNN3

    torch.manual_seed(0)
    dm = SyntheticImages(in_shape=(1, 8, 8))
    net = CNN3().build(dm.info).eval().double()
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64)
    lo, up = expected_bounds(net, (x - 0.02).clamp(0, 1), (x + 0.02).clamp(0, 1))
    ilo, iup = interval_bounds(net, (x - 0.02).clamp(0, 1), (x + 0.02).clamp(0, 1))
    with torch.no_grad():
        y = net(x)
    assert lo.shape == y.shape and (lo <= up).all() and (up - lo).mean() < (iup - ilo).mean()


def test_never_offered_as_a_certifier():
    assert "expected" not in CERTIFIERS
    dm = SyntheticImages()
    with pytest.raises(ConfigError, match="unknown certifier"):
        ExpectedTightBounds(network=FC(hidden=[8]), data_info=dm.info, eps_test=0.1, certifier="expected")


def test_expected_loss_is_natural_plus_weighted_robust():
    dm = SyntheticImages(train_size=16, val_size=8, test_size=8)
    dm.setup()
    x, y = dm.train_set.images[:16].float() / 255, dm.train_set.labels[:16]
    m = ExpectedTightBounds(network=FC(hidden=[16]), data_info=dm.info, eps_train=0.1, eps_test=0.1, robust_weight=0.7)
    m.eps = 0.1
    loss, logs = m.training_loss(x, y)
    assert torch.allclose(loss, logs["nat_loss"] + 0.7 * logs["expected_rob_loss"], atol=1e-6)
