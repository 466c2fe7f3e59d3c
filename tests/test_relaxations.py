"""Soundness, tightness and continuity of the linear relaxations (lit_cert.bounds.backsub)."""

import numpy as np
import pytest
import torch
from torch import nn

from lit_cert.attacks import pgd_maximize
from lit_cert.bounds import interval_bounds, linf_box, margin_spec
from lit_cert.bounds.backsub import LinearBounds, linear_bounds, relu_relaxation, resolve_rule
from lit_cert.layers import BatchNorm1d, BatchNorm2d, frozen_batch_stats

from .helpers import conv_net

from .exact import min_linear_objective, randomise_batchnorm, tiny_relu_net

RELAX = ["crown", "crown-0", "deepz", "hbox"]





@pytest.mark.parametrize("relaxation", RELAX)
@pytest.mark.parametrize("intermediate", ["same", "ibp"])
@pytest.mark.parametrize("train_mode", [False, True])
def test_sound_against_samples_and_pgd(relaxation, intermediate, train_mode):
    torch.manual_seed(4)
    net = randomise_batchnorm(conv_net()).eval()
    x = torch.rand(5, 2, 7, 7)
    y = torch.randint(0, 4, (5,))
    if train_mode:
        for m in net.modules():
            if isinstance(m, (BatchNorm1d, BatchNorm2d)):
                m.train()
        net(x)
    lb, ub = linf_box(x, 0.08)
    spec = margin_spec(y, 4)
    with torch.no_grad():
        lo, up = linear_bounds(net, lb, ub, spec, relaxation, intermediate)

    def margins(z):
        return torch.einsum("bmk,bk->bm", spec, net(z))

    with frozen_batch_stats(net):
        with torch.no_grad():
            for _ in range(10):
                v = margins(lb + (ub - lb) * torch.rand_like(lb))
                assert torch.all(v >= lo - 1e-5) and torch.all(v <= up + 1e-5)
        for j in range(4):
            z = pgd_maximize(lambda v: -margins(v)[:, j], lb, ub, steps=25, restarts=2)
            with torch.no_grad():
                assert torch.all(margins(z)[:, j] >= lo[:, j] - 1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_below_exact_milp_optimum(seed):
    net = tiny_relu_net((2, 8, 6, 3), seed=seed)
    x = torch.rand(1, 2, dtype=torch.float64)
    lb, ub = x - 0.4, x + 0.4
    for target in range(3):
        spec = margin_spec(torch.tensor([target]), 3, dtype=torch.float64)
        bounds = {r: linear_bounds(net, lb, ub, spec, r, need_upper=False)[0][0] for r in RELAX}
        bounds["crown-ibp"] = linear_bounds(net, lb, ub, spec, "crown", "ibp", need_upper=False)[0][0]
        for i in range(3):
            if i == target:
                continue
            exact = min_linear_objective(net, lb[0].numpy(), ub[0].numpy(), spec[0, i].numpy())
            for name, b in bounds.items():
                assert b[i].item() <= exact + 1e-7, name


def test_crown_and_deepz_tighter_than_ibp_on_average():
    gaps = {"crown": [], "deepz": []}
    for seed in range(6):
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Flatten(), nn.Linear(16, 30), nn.ReLU(), nn.Linear(30, 30), nn.ReLU(), nn.Linear(30, 5))
        x = torch.rand(8, 1, 4, 4)
        y = torch.randint(0, 5, (8,))
        lb, ub = linf_box(x, 0.05)
        spec = margin_spec(y, 5)
        with torch.no_grad():
            ibp = interval_bounds(net, lb, ub, spec=spec)[0]
            for r in gaps:
                gaps[r].append((linear_bounds(net, lb, ub, spec, r, need_upper=False)[0] - ibp).mean().item())
    for r, g in gaps.items():
        assert np.mean(g) > 0, (r, g)


def test_relu_relaxations_enclose_relu():
    l = torch.tensor([-2.0, -1.0, -0.5, 0.5, -3.0])
    u = torch.tensor([1.0, 3.0, 0.2, 2.0, -1.0])
    xs = l[None] + (u - l)[None] * torch.linspace(0, 1, 101)[:, None]
    for kind in RELAX:
        lo_s, lo_b, up_s, up_b = relu_relaxation(l, u, resolve_rule(kind))
        assert torch.all(lo_s * xs + lo_b <= torch.relu(xs) + 1e-6), kind
        assert torch.all(up_s * xs + up_b >= torch.relu(xs) - 1e-6), kind
    lo_s, _, _, _ = relu_relaxation(l, u, resolve_rule("crown"))
    assert lo_s.tolist() == [0.0, 1.0, 0.0, 1.0, 0.0]  # adaptive: 1 iff u >= -l (stable: exact)


def paradox_net(w: float) -> nn.Sequential:
    """o = relu(x + w - 1) - relu(x) on x in [0, 2]: the three-layer continuity example.

    The first neuron's pre-activation is [w - 1, w + 1]; the second is stably active."""
    first = nn.Linear(1, 2)
    second = nn.Linear(2, 1)
    with torch.no_grad():
        first.weight.copy_(torch.tensor([[1.0], [1.0]]))
        first.bias.copy_(torch.tensor([w - 1.0, 0.0]))
        second.weight.copy_(torch.tensor([[1.0, -1.0]]))
        second.bias.zero_()
    return nn.Sequential(first, nn.ReLU(), second).double()


def lower_bound(w: float, relaxation: str) -> float:
    lb, ub = torch.zeros(1, 1, dtype=torch.float64), torch.full((1, 1), 2.0, dtype=torch.float64)
    net = paradox_net(w)
    if relaxation == "ibp":
        return interval_bounds(net, lb, ub)[0].item()
    return linear_bounds(net, lb, ub, None, relaxation, need_upper=False)[0].item()


def test_paradox_continuity_example():
    """CROWN's bound jumps at w = 0, hBox's at w = 1; DeepZ and IBP are continuous, and so is
    CROWN-0 (seed 002 Sec. 5.2 / K.4: the lower line 0 for every neuron, stably active ones too,
    removes CROWN's jump at w = 0 and has none at w = 1)."""
    d = 1e-6
    jump = {r: {w0: abs(lower_bound(w0 + d, r) - lower_bound(w0 - d, r)) for w0 in (0.0, 1.0)}
            for r in ["ibp", "crown", "crown-0", "deepz", "hbox"]}
    assert jump["crown"][0.0] == pytest.approx(1.0, abs=1e-4) and jump["crown"][1.0] < 1e-4
    assert jump["hbox"][1.0] == pytest.approx(2.0, abs=1e-4) and jump["hbox"][0.0] < 1e-4
    for r in ("ibp", "deepz", "crown-0"):
        assert max(jump[r].values()) < 1e-4, r
    # the true minimum min_x relu(x + w - 1) - x is continuous and every bound is below it
    for w in np.linspace(-1.5, 2.5, 41):
        true = min(max(x + w - 1, 0.0) - x for x in np.linspace(0, 2, 2001))
        for r in ["ibp", "crown", "crown-0", "deepz", "hbox"]:
            assert lower_bound(float(w), r) <= true + 1e-7, (r, w)


def test_convolutions_are_not_densified():
    """CNN7-sized input: back-substituting a 10-row spec keeps A in conv shape (B, M, C, H, W)."""
    from lit_cert.data import CIFAR10
    from lit_cert.models import CNN7

    net = CNN7(width=0.25).build(CIFAR10.info).eval()
    x = torch.rand(2, 3, 32, 32)
    lb, ub = linf_box(x, 1 / 255)
    eng = LinearBounds(net, lb, ub, "crown", "ibp")
    spec = margin_spec(torch.tensor([0, 1]), 10)
    with torch.no_grad():
        lo, _ = eng.output_bounds(spec, need_upper=False)
        ibp = interval_bounds(net, lb, ub, spec=spec)[0]
    assert lo.shape == (2, 10)
    assert torch.all(torch.isfinite(lo))
    assert (lo - ibp).mean() > 0  # CROWN-IBP is tighter than IBP here


def test_fused_loss_bound_is_sound():
    """The fused CROWN-IBP bound on the cross-entropy is above the CE at every point of the box,
    including PGD-maximised ones."""
    import torch.nn.functional as F

    from lit_cert.bounds.fusion import fused_robust_ce

    torch.manual_seed(7)
    net = randomise_batchnorm(conv_net()).eval()
    x = torch.rand(6, 2, 7, 7)
    y = torch.randint(0, 4, (6,))
    lb, ub = linf_box(x, 0.05)
    with torch.no_grad():
        bound = fused_robust_ce(net, lb, ub, y, 4)
        for _ in range(20):
            ce = F.cross_entropy(net(lb + (ub - lb) * torch.rand_like(lb)), y, reduction="none")
            assert torch.all(ce <= bound + 1e-5)
    z = pgd_maximize(lambda v: F.cross_entropy(net(v), y, reduction="none"), lb, ub, steps=30, restarts=2)
    with torch.no_grad():
        assert torch.all(F.cross_entropy(net(z), y, reduction="none") <= bound + 1e-5)
    # at eps = 0 the intervals are points: the bound is the exact cross-entropy
    with torch.no_grad():
        exact = fused_robust_ce(net, x, x, y, 4)
        assert torch.allclose(exact, F.cross_entropy(net(x), y, reduction="none"), atol=1e-4)
