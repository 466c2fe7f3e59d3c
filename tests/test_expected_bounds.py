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


def test_expected_bounds_are_tighter_than_ibp_but_not_sound():
    torch.manual_seed(1)
    violations, tighter = 0, []
    for seed in range(5):
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Linear(5, 20), nn.ReLU(), nn.Linear(20, 20), nn.ReLU(), nn.Linear(20, 3))
        c = torch.randn(4, 5)
        lb, ub = c - 0.3, c + 0.3
        with torch.no_grad():
            lo, up = expected_bounds(net, lb, ub)
            ilo, iup = interval_bounds(net, lb, ub)
            tighter.append(((up - lo) / (iup - ilo)).mean().item())
            pts = lb + (ub - lb) * torch.rand(2000, 4, 5)
            out = net(pts)
            violations += int(((out < lo - 1e-6) | (out > up + 1e-6)).any())
    assert max(tighter) < 1.0  # narrower than IBP
    assert violations > 0  # and indeed not a sound over-approximation


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
