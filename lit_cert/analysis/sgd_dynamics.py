"""Optimisation dynamics of relaxations (paradox paper, seed 002 Sec. 4.4 and App. F, Figs. 5/6).

The setting of App. F: a network with one input, two hidden layers of 10 ReLUs and two outputs,
its input, weights and biases random integers in [-4, 4], and a radius eps uniform in [0.1, 4.1].
Gradient *ascent* on the first layer's weights and bias maximises the lower bound of one output
under a relaxation, restricted (as Fig. 4) to one line through the initial parameters: the
parameters are ``theta_0 + delta * d``, ``d`` the normalised gradient of the studied relaxation's
bound at ``delta = 0``, so the landscape is a function of the scalar ``delta`` and ascent moves
``delta`` by ``lr * dB/d(delta)``, the learning rate decaying by ``decay`` per step. The paper's
settings: CROWN (the discontinuous relaxation), lr 0.02, decay 0.99, 20 steps; DeepZ (the
sensitive one), lr 0.005, decay 0.99, 100 steps; each against Box (IBP) from the same start on
the same line.

The paper's claims (Figs. 5/6, one network each, "chosen as the one which best illustrates the
behaviour" among several sampled): with CROWN, ascent falls off a discontinuity and ends *below*
Box although CROWN's landscape reaches higher than Box's; with DeepZ, ascent stalls at a local
maximum of its highly non-linear landscape, again below Box although DeepZ is tighter. Here
every sampled network is classified, so the analysis reports *how often* each happens (a
frequency the paper does not give), and plots the first network that shows it.

Box's bound is piecewise linear in ``delta`` (sensitivity 1 in the paper's terms: interval
arithmetic only adds, scales by fixed later weights and clips); CROWN's and DeepZ's are rational
functions of it. :func:`second_differences` measures that on the landscape grid.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lit_cert.analysis.landscape import gradient_direction

#: the paper's App. F settings per studied relaxation: (learning rate, decay per step, steps)
SETTINGS = {"crown": (0.02, 0.99, 20), "deepz": (0.005, 0.99, 100)}
BASELINE = "ibp"  # the paper's Box


def integer_network(seed: int) -> tuple[nn.Sequential, torch.Tensor, torch.Tensor]:
    """App. F's random network (1-10-10-2, integer weights and biases in [-4, 4]) and input box
    (integer centre in [-4, 4], eps uniform in [0.1, 4.1]), float64."""
    g = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Linear(1, 10), nn.ReLU(), nn.Linear(10, 10), nn.ReLU(), nn.Linear(10, 2)).double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randint(-4, 5, p.shape, generator=g).double())
    x = torch.randint(-4, 5, (1, 1), generator=g).double()
    eps = 0.1 + 4.0 * torch.rand(1, generator=g, dtype=torch.float64).item()
    return net, x - eps, x + eps


def _moved(net: nn.Module, delta: torch.Tensor, direction: list[torch.Tensor]) -> nn.Module:
    """A copy of ``net`` whose first layer is ``theta_0 + delta * d``, differentiable in ``delta``."""
    moved = copy.deepcopy(net)
    layer = moved[0]
    for name, d in zip(("weight", "bias"), direction):
        base = getattr(layer, name).detach()
        del layer._parameters[name]
        setattr(layer, name, base + delta * d)
    return moved


def bound_at(net, lb, ub, output: int, relaxation: str, direction, delta: float, grad: bool = False):
    """The lower bound at ``delta`` (and its derivative in ``delta`` when ``grad``)."""
    d = torch.tensor(float(delta), dtype=torch.float64, requires_grad=grad)
    with torch.enable_grad() if grad else torch.no_grad():
        value = _output_bound(_moved(net, d, direction), lb, ub, output, relaxation)
    if not grad:
        return float(value)
    (slope,) = torch.autograd.grad(value, d)
    return float(value.detach()), float(slope)


def _output_bound(net, lb, ub, output, relaxation):
    """Lower bound of output ``output`` (differentiable in the network's tensors), by the
    paper's dense computation (:func:`lit_cert.analysis.landscape.paper_bound`)."""
    from lit_cert.analysis.landscape import paper_bound

    spec = torch.zeros(1, 1, 2, dtype=lb.dtype)
    spec[0, 0, output] = 1.0
    return paper_bound(relaxation).lower(net, lb, ub, spec)[0, 0]


def ascend(net, lb, ub, output, relaxation, direction, lr: float, decay: float, steps: int) -> list[tuple[float, float]]:
    """Gradient ascent on ``delta`` from 0: [(delta, bound)] after 0..steps steps."""
    delta, path = 0.0, []
    for t in range(steps + 1):
        value, slope = bound_at(net, lb, ub, output, relaxation, direction, delta, grad=True)
        path.append((delta, value))
        delta += lr * decay**t * slope
    return path


def second_differences(values: np.ndarray) -> np.ndarray:
    """|f(i+1) - 2 f(i) + f(i-1)| on a uniform grid: zero on linear pieces, so the share of
    non-zero ones measures how far from piecewise linear a landscape is."""
    v = np.asarray(values, dtype=float)
    return np.abs(v[2:] - 2 * v[1:-1] + v[:-2])


@dataclass
class Case:
    """One sampled network under one studied relaxation."""

    seed: int
    relaxation: str
    start: float  # the studied relaxation's bound at delta = 0
    final: float  # the studied relaxation's bound after ascent
    final_box: float  # Box's after ascent from the same start on the same line
    best: float  # max of the studied relaxation's landscape on the grid
    best_box: float
    drop: float  # largest decrease of the studied relaxation's bound between two ascent iterates
    curved_share: float  # share of grid points where the studied landscape bends
    curved_share_box: float
    deltas: np.ndarray
    values: np.ndarray
    values_box: np.ndarray
    path: list
    path_box: list

    @property
    def ends_below_box(self) -> bool:
        return self.final < self.final_box - 1e-9 * (1 + abs(self.final_box))

    @property
    def shows_claim(self) -> bool:
        """The paper's observation: the studied relaxation's landscape reaches higher than Box's
        (on a grid covering both ascents), but its ascent ends below Box's ascent."""
        return self.best > self.best_box + 1e-9 * (1 + abs(self.best_box)) and self.ends_below_box

    @property
    def fell(self) -> bool:
        """The ascent's bound *decreased* between two iterates (it stepped over a discontinuity
        or a sharp ridge: plain ascent on a smooth function with a small step never does)."""
        return self.drop > 1e-9 * (1 + abs(self.start))


def study(seed: int, relaxation: str, span: float = 3.0, points: int = 601, output: int = 0) -> Case | None:
    """Both ascents along ``relaxation``'s initial gradient, and both landscapes on a grid of
    ``points`` over ``[-span, span]`` widened to cover the ascents. None where the gradient
    vanishes (a flat start: no line to follow)."""
    net, lb, ub = integer_network(seed)
    direction = gradient_direction(net, lb, ub, output, relaxation)
    with torch.enable_grad():
        d0 = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
        v0 = _output_bound(_moved(net, d0, direction), lb, ub, output, relaxation)
        (g0,) = torch.autograd.grad(v0, d0)
    if abs(float(g0)) < 1e-9:
        return None
    lr, decay, steps = SETTINGS[relaxation]
    path = ascend(net, lb, ub, output, relaxation, direction, lr, decay, steps)
    path_box = ascend(net, lb, ub, output, BASELINE, direction, lr, decay, steps)
    reached = [d for d, _ in path + path_box]  # the grid covers both ascents
    deltas = np.linspace(min(-span, min(reached)), max(span, max(reached)), points)
    values = np.array([bound_at(net, lb, ub, output, relaxation, direction, d) for d in deltas])
    values_box = np.array([bound_at(net, lb, ub, output, BASELINE, direction, d) for d in deltas])
    drops = [a[1] - b[1] for a, b in zip(path, path[1:])]
    tol = 1e-7 * (1 + np.abs(values).max())
    tol_box = 1e-7 * (1 + np.abs(values_box).max())
    return Case(seed, relaxation, float(v0.detach()), path[-1][1], path_box[-1][1], float(values.max()), float(values_box.max()),
                max(drops + [0.0]), float((second_differences(values) > tol).mean()),
                float((second_differences(values_box) > tol_box).mean()), deltas, values, values_box, path, path_box)


def survey(relaxation: str, seeds: range, **kwargs) -> list[Case]:
    return [c for c in (study(s, relaxation, **kwargs) for s in seeds) if c is not None]
