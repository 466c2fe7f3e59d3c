"""Robustness metrics beyond accuracy: PGD accuracy/robustness, the CR curve, ReLU stability.

All are torchmetrics with summed states, so they are correct under DDP without extra code.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn
from torchmetrics import Metric

from lit_cert.attacks import pgd_attack
from lit_cert.bounds.box import interval_bounds, margin_bounds_ibp
from lit_cert.bounds.region import linf_box
from lit_cert.bounds.spec import is_certified, margin_spec
from lit_cert.metrics.accuracy import RateMetric


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


class PGDRobustness(RateMetric):
    """Expected-bounds paper's "PGD robustness": the prediction does not change under attack,
    whatever the label (the attack targets the network's own prediction): ``update(net, x)``."""

    def __init__(self, eps: float, steps: int = 50, restarts: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.eps, self.steps, self.restarts = eps, steps, restarts

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


class CRCurve(Metric):
    """Certified accuracy over a grid of eps (the paradox paper's CR curve); ``compute()`` returns
    the curve, :meth:`auc` its area by the trapezoid rule. ``update(net, x, y)``."""

    full_state_update = False
    is_differentiable = False
    higher_is_better = True

    def __init__(self, eps_grid: Sequence[float], certifier: Callable = margin_bounds_ibp, **kwargs):
        super().__init__(**kwargs)
        self.eps_grid = [float(e) for e in eps_grid]
        if sorted(self.eps_grid) != self.eps_grid or self.eps_grid[0] < 0:
            raise ValueError("eps_grid must be non-negative and increasing")
        self.certifier = certifier
        self.add_state("hits", default=torch.zeros(len(self.eps_grid), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:  # type: ignore[override]
        spec = margin_spec(y, net(x[:1]).shape[1], x.dtype)
        with torch.no_grad():
            for i, eps in enumerate(self.eps_grid):
                lb, ub = linf_box(x, eps)
                self.hits[i] += is_certified(self.certifier(net, lb, ub, spec), y).sum()
        self.total += len(y)

    def compute(self) -> torch.Tensor:
        return (self.hits / self.total.clamp(min=1)).float()

    def auc(self, normalise: bool = True) -> float:
        return trapezoid_auc(self.eps_grid, self.compute().tolist(), normalise)


class ReLUStability(Metric):
    """Fractions of active (l >= 0), dead (u <= 0) and unstable ReLUs under IBP bounds of the
    eps-ball: ``update(net, x)``; ``compute()`` -> tensor [active, dead, unstable]."""

    full_state_update = False
    is_differentiable = False
    higher_is_better = None

    def __init__(self, eps: float, **kwargs):
        super().__init__(**kwargs)
        self.eps = eps
        self.add_state("counts", default=torch.zeros(3, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, net: nn.Module | None = None, x: torch.Tensor | None = None, record: dict | None = None) -> None:  # type: ignore[override]
        """Counts from the pre-ReLU intervals an IBP pass at this eps already recorded
        (``record["relu_inputs"]``, e.g. the validation certifier's own pass); without such a
        record it runs IBP on the eps-ball of ``x`` itself."""
        if record is None or "relu_inputs" not in record:
            if net is None or x is None:
                raise ValueError("ReLUStability.update needs (net, x) or an IBP record")
            record = {}
            with torch.no_grad():
                interval_bounds(net, *linf_box(x, self.eps), record=record)
        for lb, ub in record.get("relu_inputs", []):
            active, dead = (lb >= 0), (ub <= 0)
            self.counts += torch.stack([active.sum(), dead.sum(), (~(active | dead)).sum()]).to(self.counts.dtype)

    def compute(self) -> torch.Tensor:
        return (self.counts / self.counts.sum().clamp(min=1)).float()
