"""Optimisation dynamics (seed 002 Sec. 4.4, App. F; lit_cert.analysis.sgd_dynamics): the
paper's network family, ascent that follows the true derivative, Box's landscape piecewise
linear against DeepZ's and CROWN's curved ones, and a network on which the paper's observation
holds (CROWN's landscape higher than Box's, its ascent ending lower)."""

import numpy as np
import pytest
import torch

from lit_cert.analysis.landscape import gradient_direction
from lit_cert.analysis.sgd_dynamics import ascend, bound_at, integer_network, second_differences, study


def test_networks_are_the_papers_family():
    for seed in range(5):
        net, lb, ub = integer_network(seed)
        for p in net.parameters():
            assert torch.equal(p, p.round()) and p.abs().max() <= 4
        centre, eps = ((lb + ub) / 2).item(), ((ub - lb) / 2).item()
        assert centre == pytest.approx(round(centre)) and -4 <= round(centre) <= 4 and 0.1 <= eps <= 4.1
        assert [m.out_features for m in net if isinstance(m, torch.nn.Linear)] == [10, 10, 2]


@pytest.mark.parametrize("relaxation", ["ibp", "deepz"])
def test_ascent_steps_by_the_derivative_of_the_bound(relaxation):
    net, lb, ub = integer_network(3)
    direction = gradient_direction(net, lb, ub, 0, relaxation)
    value, slope = bound_at(net, lb, ub, 0, relaxation, direction, 0.0, grad=True)
    h = 1e-6
    numeric = (bound_at(net, lb, ub, 0, relaxation, direction, h) - bound_at(net, lb, ub, 0, relaxation, direction, -h)) / (2 * h)
    assert slope == pytest.approx(numeric, rel=1e-4, abs=1e-6)
    assert slope > 0  # the direction is this bound's own gradient: ascent goes uphill at the start
    path = ascend(net, lb, ub, 0, relaxation, direction, lr=0.01, decay=0.5, steps=2)
    assert path[0] == (0.0, pytest.approx(value)) and path[1][0] == pytest.approx(0.01 * slope)


def bends(net, lb, ub, relaxation, direction, points):
    deltas = np.linspace(-3, 3, points)
    values = np.array([bound_at(net, lb, ub, 0, relaxation, direction, d) for d in deltas])
    return int((second_differences(values) > 1e-7 * (1 + np.abs(values).max())).sum())


def test_box_is_piecewise_linear_and_the_sensitive_relaxations_are_not():
    """Refining the grid 4x: Box's bends stay at its finitely many kinks (each bends at most the
    two grid points next to it), DeepZ's and CROWN's curved pieces bend at ever more points."""
    for seed in (1, 3):
        net, lb, ub = integer_network(seed)
        direction = gradient_direction(net, lb, ub, 0, "deepz")
        coarse, fine = (bends(net, lb, ub, "ibp", direction, n) for n in (61, 241))
        assert fine <= 2 * coarse + 4
        for rel in ("deepz", "crown"):
            c, f = (bends(net, lb, ub, rel, direction, n) for n in (61, 241))
            assert f >= 2 * c > 0, (rel, c, f)
    line = np.abs(np.linspace(0, 4, 9) - 2)
    assert (second_differences(line) > 0).sum() == 1  # a kink on a grid point bends that point only


def test_a_network_shows_the_papers_crown_observation():
    case = study(21, "crown", points=101)  # found by `analyze sgd-dynamics` among seeds 0-39
    assert case.best > case.best_box and case.final < case.final_box and case.shows_claim


@pytest.mark.parametrize("seed", [2, 29])
def test_the_analyses_deepz_is_the_papers_continuous_one(seed):
    """Seed 002 Sec. 4.1: DeepZ is continuous in the weights. The analyses use the paper's dense
    computation (every neuron bounded by DeepZ itself); the registry's default (IBP bounds kept
    for IBP-stable neurons) jumps on these App. F networks -- so a test of the claim with it
    would wrongly report a discontinuity."""
    import numpy as np

    from lit_cert.analysis.landscape import paper_bound, refine_jumps
    from lit_cert.analysis.sgd_dynamics import _moved, gradient_direction, integer_network
    from lit_cert.bounds.registry import bound_spec

    net, lb, ub = integer_network(seed)
    spec = torch.zeros(1, 1, 2, dtype=lb.dtype)
    spec[0, 0, 0] = 1.0
    deltas = np.linspace(-3, 3, 301)
    direction = gradient_direction(net, lb, ub, 0, "deepz")

    def jumps(bound):
        def f(d):
            with torch.no_grad():
                return float(bound.lower(_moved(net, torch.tensor(float(d), dtype=torch.float64), direction), lb, ub, spec)[0, 0])
        return refine_jumps(f, deltas, np.array([f(d) for d in deltas]))

    assert str(paper_bound("deepz")) == "deepz(sparse=False)"
    assert jumps(paper_bound("deepz")) == []
    assert jumps(bound_spec("deepz", sparse=True)), "the sparse variant jumps here (the test can see a jump)"
