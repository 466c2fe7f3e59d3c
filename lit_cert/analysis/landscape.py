"""Continuity of relaxations along a parameter direction (paradox paper, Fig. 4).

The lower bound of one output over an input box is evaluated while the first affine layer's
weights and bias move by ``delta`` along a direction (by default the normalised gradient of
that relaxation's bound). Discontinuities are detected numerically: a step whose change is far
larger than both neighbouring steps.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from lit_cert.bounds.backsub import linear_bounds
from lit_cert.bounds.box import flat_layers, interval_bounds

RELAXATIONS = ("ibp", "crown", "deepz", "hbox")


def output_lower_bound(net: nn.Module, lb: torch.Tensor, ub: torch.Tensor, output: int, relaxation: str) -> torch.Tensor:
    if relaxation == "ibp":
        return interval_bounds(net, lb, ub)[0][0, output]
    return linear_bounds(net, lb, ub, None, relaxation, "same", need_upper=False)[0][0, output]


def first_affine(net: nn.Module) -> nn.Module:
    return next(m for m in flat_layers(net) if isinstance(m, (nn.Linear, nn.Conv2d)))


def gradient_direction(net, lb, ub, output, relaxation) -> list[torch.Tensor]:
    layer = first_affine(net)
    params = [layer.weight] + ([layer.bias] if layer.bias is not None else [])
    grads = torch.autograd.grad(output_lower_bound(net, lb, ub, output, relaxation), params, allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
    norm = torch.sqrt(sum((g**2).sum() for g in grads))
    if norm < 1e-12:  # flat here: fall back to a fixed random direction
        gen = torch.Generator().manual_seed(0)
        grads = [torch.randn(p.shape, generator=gen, dtype=p.dtype) for p in params]
        norm = torch.sqrt(sum((g**2).sum() for g in grads))
    return [g / norm for g in grads]


def scan(net, lb, ub, output, relaxation, deltas, direction=None) -> np.ndarray:
    direction = direction or gradient_direction(net, lb, ub, output, relaxation)
    values = []
    for delta in deltas:
        moved = copy.deepcopy(net)
        layer = first_affine(moved)
        with torch.no_grad():
            for p, d in zip([layer.weight, layer.bias], direction):
                if p is not None:
                    p.add_(float(delta) * d)
            values.append(output_lower_bound(moved, lb, ub, output, relaxation).item())
    return np.array(values)


def discontinuities(deltas, values, factor: float = 10.0, min_jump: float | None = None) -> list[tuple[float, float]]:
    """(delta, jump) for steps much larger than both neighbouring steps (a kink changes the
    slope but keeps neighbouring steps comparable; a jump does not)."""
    diffs = np.abs(np.diff(values))
    if min_jump is None:
        min_jump = 1e-3 * (np.ptp(values) + 1e-12)
    padded = np.concatenate([[0.0], diffs, [0.0]])
    neighbours = np.maximum(padded[:-2], padded[2:])
    idx = np.where(diffs > factor * neighbours + min_jump)[0]
    return [(float((deltas[i] + deltas[i + 1]) / 2), float(values[i + 1] - values[i])) for i in idx]
