"""Optimised intermediate bounds (lit_cert.bounds.alpha_crown.optimised_box_bounds), the bound
branch and bound starts from: sound against the exact optimum (MILP, tests/exact.py) for the
output rows *and* for every intermediate neuron, never looser than CROWN, and tighter than it
where neurons are unstable."""

import numpy as np
import pytest
import torch

from lit_cert.bounds.alpha_crown import optimised_box_bounds
from lit_cert.bounds.backsub import LinearBounds

from .exact import min_linear_objective, tiny_relu_net


def box(seed, sizes, eps):
    net = tiny_relu_net(sizes, seed=seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, sizes[0], dtype=torch.float64, generator=g)
    spec = torch.randn(1, 3, sizes[-1], dtype=torch.float64, generator=g)
    return net, x - eps, x + eps, spec


@pytest.mark.parametrize("seed", range(3))
def test_bounds_hold_against_the_exact_optimum_and_beat_crown(seed):
    sizes = (3, 12, 10, 8, 3)
    net, lb, ub, spec = box(seed, sizes, eps=0.3)
    out = optimised_box_bounds(net, lb, ub, spec, steps=40)
    crown = LinearBounds(net, lb, ub, "crown", "same")
    crown_lower = crown.output_bounds(spec, need_upper=False)[0].detach()
    assert (out.lower >= crown_lower - 1e-12).all()
    for r in range(spec.shape[1]):
        exact = min_linear_objective(net, lb[0].numpy(), ub[0].numpy(), spec[0, r].numpy())
        assert out.lower[0, r].item() <= exact + 1e-7
    # every intermediate bound contains the neuron's exact range (the prefix network, unit rows)
    layers = list(net)
    for idx, (l, u) in out.pre_bounds.items():
        cl, cu = crown.pre_bounds[idx]
        if idx == 1:  # one affine map: interval arithmetic is exact, nothing to optimise
            torch.testing.assert_close((l, u), (cl.detach(), cu.detach()), rtol=0, atol=0)
            continue
        prefix = torch.nn.Sequential(*layers[:idx])
        n = l[0].numel()
        for j in range(n):
            row = np.zeros(n)
            row[j] = 1.0
            low = min_linear_objective(prefix, lb[0].numpy(), ub[0].numpy(), row)
            high = -min_linear_objective(prefix, lb[0].numpy(), ub[0].numpy(), -row)
            assert l[0, j].item() <= low + 1e-7 and u[0, j].item() >= high - 1e-7, (idx, j)
        # ... and lies inside CROWN's
        assert (l >= cl - 1e-12).all() and (u <= cu + 1e-12).all()
    assert out.optimised_layers  # the deeper layers had unstable neurons and got their own slopes
    assert float((out.lower - crown_lower).max()) > 1e-4


def test_per_row_slopes_equal_to_shared_ones_give_the_same_walk():
    net, lb, ub, spec = box(3, (3, 12, 10, 8, 3), eps=0.3)
    ref = LinearBounds(net, lb, ub, "crown", "same")
    ref.output_bounds(spec, need_upper=False)
    g = torch.Generator().manual_seed(0)
    shared = {i: torch.rand(l.shape, dtype=l.dtype, generator=g) for i, (l, u) in ref.pre_bounds.items()}
    rows = {i: s.unsqueeze(1).expand(1, spec.shape[1], *s.shape[1:]) for i, s in shared.items()}
    a = LinearBounds(net, lb, ub, "crown", "same", prior_bounds=ref.pre_bounds, reuse_prior_upto=99)
    a.lower_slopes = shared
    b = LinearBounds(net, lb, ub, "crown", "same", prior_bounds=ref.pre_bounds, reuse_prior_upto=99)
    b.lower_slopes = rows
    torch.testing.assert_close(a.lower(len(list(net)), spec), b.lower(len(list(net)), spec), rtol=0, atol=1e-12)


def test_layers_over_the_memory_budget_keep_crown_bounds():
    net, lb, ub, spec = box(1, (3, 12, 10, 8, 3), eps=0.3)
    out = optimised_box_bounds(net, lb, ub, spec, steps=5, memory_gb=1e-9)
    assert out.optimised_layers == []
    crown = LinearBounds(net, lb, ub, "crown", "same")
    crown.output_bounds(spec, need_upper=False)
    for idx, (l, u) in out.pre_bounds.items():
        torch.testing.assert_close(l, crown.pre_bounds[idx][0].detach())


def test_a_spent_time_limit_runs_no_step_and_keeps_crown():
    net, lb, ub, spec = box(2, (3, 12, 10, 8, 3), eps=0.3)
    out = optimised_box_bounds(net, lb, ub, spec, steps=50, time_limit=0.0)
    crown = LinearBounds(net, lb, ub, "crown", "same").output_bounds(spec, need_upper=False)[0].detach()
    assert out.steps == 0
    torch.testing.assert_close(out.lower, crown)
    assert optimised_box_bounds(net, lb, ub, spec, steps=7).steps == 7


def test_slope_optimisation_leaves_the_network_gradients_alone():
    """alpha-CROWN's and the optimised box's gradient steps are on slopes (and multipliers) only:
    the network's weights get no ``.grad`` (a certificate inside a training loop must not change
    the next optimiser step) and keep ``requires_grad`` afterwards; the bounds still improve."""
    from lit_cert.bounds.alpha_crown import optimised_lower_bounds

    net, lb, ub, spec = box(0, (3, 12, 10, 8, 3), eps=0.3)
    params = list(net.parameters())
    assert params and all(p.requires_grad for p in params)
    out = optimised_box_bounds(net, lb, ub, spec, steps=5)
    engine = LinearBounds(net, lb, ub, "crown", "same")
    crown = engine.output_bounds(spec, need_upper=False)[0].detach()
    alpha = optimised_lower_bounds(engine, spec, steps=5)
    assert out.steps == 5 and bool((alpha >= crown).all()) and bool((alpha > crown).any())
    assert all(p.grad is None and p.requires_grad for p in params)
