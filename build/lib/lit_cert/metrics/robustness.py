"""Robustness metrics beyond accuracy: PGD accuracy/robustness, the CR curve, ReLU stability.

All are torchmetrics with summed states, so they are correct under DDP without extra code.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from lit_cert.attacks import pgd_attack
from lit_cert.bounds.box import interval_bounds
from lit_cert.bounds.registry import bound_method
from lit_cert.bounds.region import certified_box, linf_box
from lit_cert.bounds.spec import is_certified, margin_spec
from lit_cert.bounds.trace import IntervalTrace
from lit_cert.metrics.accuracy import RateMetric, SummedMetric


class PGDAccuracy(RateMetric):
    """Fraction correctly classified at the PGD point of the eps-ball (an upper bound on the
    certified accuracy): ``update(net, x, y)``."""

    def __init__(self, eps: float, steps: int = 50, restarts: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.eps, self.steps, self.restarts = eps, steps, restarts

    def update(self, net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:  # type: ignore[override]
        x_adv = pgd_attack(net, x, y, self.eps, steps=self.steps, restarts=self.restarts, loss="margin")
        with torch.no_grad():
            self.update_flags(net(x_adv).argmax(1) == y)

    def update_from_net(self, net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
        self.update(net, x, y)


class PGDRobustness(RateMetric):
    """Expected-bounds paper's "PGD robustness": the prediction does not change under attack,
    whatever the label (the attack targets the network's own prediction): ``update(net, x)``."""

    def __init__(self, eps: float, steps: int = 50, restarts: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.eps, self.steps, self.restarts = eps, steps, restarts

    def update_from_net(self, net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
        self.update(net, x)  # the label plays no part

    def update(self, net: nn.Module, x: torch.Tensor) -> None:  # type: ignore[override]
        with torch.no_grad():
            pred = net(x).argmax(1)
        x_adv = pgd_attack(net, x, pred, self.eps, steps=self.steps, restarts=self.restarts, loss="margin")
        with torch.no_grad():
            self.update_flags(net(x_adv).argmax(1) == pred)


def trapezoid_auc(eps: Sequence[float], values: Sequence[float], normalise: bool = True) -> float:
    """Area under a piecewise-linear curve (trapezoid rule); divided by the eps range if asked."""
    e = torch.as_tensor(list(eps), dtype=torch.float64)
    v = torch.as_tensor(list(values), dtype=torch.float64)
    area = float(torch.trapezoid(v, e))
    span = float(e[-1] - e[0])
    return area / span if normalise and span > 0 else area


class _FromNet:
    """``update_from_net(net, x, y)`` is ``update(net, x, y)`` (see RateMetric.update_from_net)."""

    def update_from_net(self, net, x, y) -> None:
        self.update(net, x, y)


class CRCurve(_FromNet, SummedMetric):
    """Certified accuracy over a grid of eps (the paradox paper's CR curve) with one sound bound
    method (a name of ``lit_cert.bounds.BOUND_METHODS``); ``compute()`` returns the curve,
    :meth:`auc` its area by the trapezoid rule. ``update(net, x, y)``."""

    higher_is_better = True

    def __init__(self, eps_grid: Sequence[float], certifier: str = "ibp", **kwargs):
        super().__init__(**kwargs)
        self.eps_grid = [float(e) for e in eps_grid]
        if not self.eps_grid or sorted(self.eps_grid) != self.eps_grid or self.eps_grid[0] < 0:
            raise ValueError("eps_grid must be non-empty, non-negative and increasing")
        self.method = bound_method(certifier)
        self.add_state("hits", default=torch.zeros(len(self.eps_grid), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:  # type: ignore[override]
        with torch.no_grad():
            spec = margin_spec(y, net(x[:1]).shape[1], x.dtype)
            for i, eps in enumerate(self.eps_grid):
                lb, ub = certified_box(x, eps)  # rounded outward: a certificate of the exact ball
                self.hits[i] += is_certified(self.method(net, lb, ub, spec), y).sum()
        self.total += len(y)

    def compute(self) -> torch.Tensor:
        return (self.hits / self.total.clamp(min=1)).float()

    def auc(self, normalise: bool = True) -> float:
        return trapezoid_auc(self.eps_grid, self.compute().tolist(), normalise)


class ReLUStability(SummedMetric):
    """Fractions of active (l >= 0), dead (u <= 0) and unstable ReLUs under the pre-activation
    bounds of an IBP walk: ``update(trace)`` with the :class:`~lit_cert.bounds.trace.IntervalTrace`
    of that walk (e.g. the validation certifier's own); ``compute()`` -> tensor
    [active, dead, unstable]."""

    higher_is_better = None

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("counts", default=torch.zeros(3, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, trace: IntervalTrace) -> None:  # type: ignore[override]
        if not trace.has_relus:
            raise ValueError("ReLUStability.update needs the trace of an IBP walk through a network with ReLUs")
        for lb, ub in trace.relu_inputs:
            active, dead = (lb >= 0), (ub <= 0)
            self.counts += torch.stack([active.sum(), dead.sum(), (~(active | dead)).sum()]).to(self.counts.dtype)

    def compute(self) -> torch.Tensor:
        return (self.counts / self.counts.sum().clamp(min=1)).float()


def relu_stability_trace(net: nn.Module, x: torch.Tensor, eps: float) -> IntervalTrace:
    """The trace of one IBP walk of the eps-ball around ``x`` (what :class:`ReLUStability` reads)."""
    trace = IntervalTrace()
    with torch.no_grad():
        interval_bounds(net, *linf_box(x, eps), trace=trace)
    return trace
