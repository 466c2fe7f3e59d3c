"""Soundness and tightness of interval bound propagation (lit_cert.bounds.box)."""

import numpy as np
import pytest
import torch
from torch import nn

from lit_cert.attacks import pgd_maximize
from lit_cert.bounds import interval_bounds, linf_box, margin_bounds_ibp, margin_spec
from lit_cert.bounds.box import spec_on_interval
from lit_cert.layers import BatchNorm1d, BatchNorm2d, Normalize, frozen_batch_stats

from .exact import min_linear_objective, randomise_batchnorm, tiny_relu_net


def every_layer_net(channels=3, classes=5) -> nn.Sequential:
    """A random network with every layer type the engine supports."""
    return nn.Sequential(
        Normalize([0.4, 0.5, 0.6][:channels], [0.2, 0.25, 0.3][:channels]),
        nn.Conv2d(channels, 6, 3, stride=2, padding=1),
        BatchNorm2d(6),
        nn.ReLU(),
        nn.Conv2d(6, 8, 3, stride=1, padding=2),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Conv2d(8, 8, 2, stride=1, padding=0),
        nn.BatchNorm2d(8),  # torch's own BatchNorm: eval-mode statistics only
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8, 16),
        BatchNorm1d(16),
        nn.ReLU(),
        nn.Linear(16, classes),
    )


def assert_inside(values, lb, ub, tol=1e-5):
    assert torch.all(values >= lb - tol), (values - lb).min()
    assert torch.all(values <= ub + tol), (ub - values).min()


@pytest.mark.parametrize("train_mode", [False, True])
def test_ibp_contains_sampled_and_attacked_points(train_mode):
    torch.manual_seed(1)
    net = every_layer_net()
    randomise_batchnorm(net)
    x = torch.rand(6, 3, 12, 12)
    y = torch.randint(0, 5, (6,))
    eps = 0.05
    net.eval()
    if train_mode:
        # our BatchNorms record the clean batch's statistics; torch's one stays in eval mode
        for m in net.modules():
            if isinstance(m, (BatchNorm1d, BatchNorm2d)):
                m.train()
        net(x)
    lb, ub = linf_box(x, eps)
    spec = margin_spec(y, 5)
    with torch.no_grad():
        out_lb, out_ub = interval_bounds(net, lb, ub, spec=spec)
    assert out_lb.shape == (6, 5)
    assert torch.all(out_lb <= out_ub + 1e-6)

    def margins(z):
        return torch.einsum("bmk,bk->bm", spec, net(z))

    with frozen_batch_stats(net), torch.no_grad():
        for _ in range(20):
            z = lb + (ub - lb) * torch.rand_like(lb)
            assert_inside(margins(z), out_lb, out_ub)
        corners = torch.where(torch.rand_like(lb) < 0.5, lb, ub)
        assert_inside(margins(corners), out_lb, out_ub)
    # PGD: push every margin down (and up) as far as it goes; it must stay inside the bounds
    with frozen_batch_stats(net):
        for j in range(5):
            for sign in (-1.0, 1.0):
                z = pgd_maximize(lambda v: sign * margins(v)[:, j], lb, ub, steps=30, restarts=2)
                with torch.no_grad():
                    assert_inside(margins(z), out_lb, out_ub)
    # the true class's margin is exactly zero
    assert torch.allclose(out_lb[torch.arange(6), y], torch.zeros(6))


def test_train_mode_bn_uses_clean_batch_statistics():
    bn = BatchNorm2d(3)
    x = torch.randn(8, 3, 4, 4) * 3 + 1
    bn.train()
    y = bn(x)
    scale, shift = bn.affine_params()
    mean = x.mean(dim=(0, 2, 3))
    var = x.var(dim=(0, 2, 3), unbiased=False)
    assert torch.allclose(scale, bn.weight / torch.sqrt(var + bn.eps), atol=1e-6)
    assert torch.allclose(y, x * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1), atol=1e-5)
    # matches torch's batch norm numerically, including the running-statistics update
    ref = nn.BatchNorm2d(3)
    ref.train()
    assert torch.allclose(ref(x), y, atol=1e-5)
    assert torch.allclose(ref.running_mean, bn.running_mean, atol=1e-6)
    assert torch.allclose(ref.running_var, bn.running_var, atol=1e-5)
    # frozen: another batch reuses the recorded statistics and leaves running stats alone
    running = bn.running_mean.clone()
    with frozen_batch_stats(bn):
        z = torch.randn(2, 3, 4, 4)
        assert torch.allclose(bn(z), z * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1), atol=1e-5)
    assert torch.equal(running, bn.running_mean)


def test_training_mode_without_clean_pass_is_refused():
    bn = BatchNorm1d(4)
    bn.train()
    with pytest.raises(RuntimeError, match="clean batch"):
        interval_bounds(nn.Sequential(nn.Linear(3, 4), bn), torch.zeros(1, 3), torch.ones(1, 3))
    torch_bn = nn.BatchNorm1d(4)
    torch_bn.train()
    with pytest.raises(RuntimeError, match="training mode"):
        interval_bounds(nn.Sequential(nn.Linear(3, 4), torch_bn), torch.zeros(1, 3), torch.ones(1, 3))


def test_unknown_layer_has_clear_error():
    with pytest.raises(TypeError, match="no interval rule for layer Tanh"):
        interval_bounds(nn.Sequential(nn.Linear(2, 2), nn.Tanh()), torch.zeros(1, 2), torch.ones(1, 2))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_ibp_below_exact_milp_optimum(seed):
    """IBP <= LP (triangle) <= exact MILP optimum <= value at any point, on tiny networks."""
    net = tiny_relu_net((2, 6, 5, 3), seed=seed)
    x = torch.rand(1, 2, dtype=torch.float64)
    eps = 0.3
    lb, ub = x - eps, x + eps  # no domain clamp needed here
    for target in range(3):
        spec = margin_spec(torch.tensor([target]), 3, dtype=torch.float64)
        ibp_lb = margin_bounds_ibp(net, lb, ub, spec)[0]
        grid = torch.stack(
            torch.meshgrid(torch.linspace(0, 1, 41, dtype=torch.float64), torch.linspace(0, 1, 41, dtype=torch.float64), indexing="ij"),
            -1,
        ).reshape(-1, 2)
        pts = lb + (ub - lb) * grid
        with torch.no_grad():
            sampled = (net(pts) @ spec[0].T).min(dim=0).values
        for i in range(3):
            if i == target:
                continue
            c = spec[0, i].numpy()
            exact = min_linear_objective(net, lb[0].numpy(), ub[0].numpy(), c)
            lp = min_linear_objective(net, lb[0].numpy(), ub[0].numpy(), c, relax=True)
            assert ibp_lb[i].item() <= lp + 1e-7
            assert lp <= exact + 1e-7
            assert exact <= sampled[i].item() + 1e-7
            # the grid comes close to the exact optimum: the MILP is right, not just low
            assert sampled[i].item() - exact < 0.05 * (1 + abs(exact))


def test_folding_spec_is_at_least_as_tight_as_logit_differences():
    torch.manual_seed(3)
    gaps = []
    for trial in range(5):
        net = every_layer_net().eval()
        randomise_batchnorm(net)
        x = torch.rand(8, 3, 12, 12)
        y = torch.randint(0, 5, (8,))
        lb, ub = linf_box(x, 0.03)
        spec = margin_spec(y, 5)
        with torch.no_grad():
            folded_lb, folded_ub = interval_bounds(net, lb, ub, spec=spec)
            logit_lb, logit_ub = interval_bounds(net, lb, ub)
            naive_lb, naive_ub = spec_on_interval(spec, logit_lb, logit_ub)
        assert torch.all(folded_lb >= naive_lb - 1e-5)
        assert torch.all(folded_ub <= naive_ub + 1e-5)
        gaps.append((folded_lb - naive_lb).mean().item())
    assert np.mean(gaps) > 1e-4  # strictly tighter on average, not merely equal


def test_per_sample_eps_and_domain_clamp():
    x = torch.tensor([[0.0, 0.5, 1.0]])
    lb, ub = linf_box(x, 0.2)
    assert torch.allclose(lb, torch.tensor([[0.0, 0.3, 0.8]]))
    assert torch.allclose(ub, torch.tensor([[0.2, 0.7, 1.0]]))
    lb2, ub2 = linf_box(torch.zeros(2, 1, 2, 2) + 0.5, torch.tensor([0.1, 0.2]))
    assert torch.allclose(ub2[1] - lb2[1], torch.full((1, 2, 2), 0.4))
