"""Continuity of relaxations along a parameter direction (paradox paper, Fig. 4).

The lower bound of one output over an input box is evaluated while the first affine layer's
weights and bias move by ``delta`` along a direction (by default the normalised gradient of
that relaxation's bound). Discontinuities are detected numerically (:func:`refine_jumps`):
unusually large grid steps are bisected until the change either vanishes (steep but continuous)
or persists (a jump, reported with its location and size).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from lit_cert.bounds.box import flat_layers
from lit_cert.bounds.registry import BoundSpec, bound_method, names

#: the bound methods compared -- the paradox paper's Fig. 4 relaxations with their own
#: intermediate bounds: the registry's interval and back-substitution families
RELAXATIONS = names("interval", "backsub")


def paper_bound(relaxation: str) -> BoundSpec:
    """``relaxation`` as the paradox paper computes it: every neuron's intermediate bounds come
    from the relaxation itself (``sparse=False``, dense). The registry's default keeps IBP's
    bounds for IBP-stable neurons (sound and usually tighter, but a different function of the
    weights: on App. F's integer networks its DeepZ jumps where the paper's is continuous), so
    the analyses that test the paper's claims use this one."""
    method = bound_method(relaxation)
    return method.spec(sparse=False) if "sparse" in method.options else method.spec()


def output_lower_bound(net: nn.Module, lb: torch.Tensor, ub: torch.Tensor, output: int, relaxation: str) -> torch.Tensor:
    """Lower bound of network output ``output`` over the box (one specification row e_output),
    by the paper's computation (:func:`paper_bound`)."""
    with torch.no_grad():
        k = net(lb).shape[1]
    spec = torch.zeros(lb.shape[0], 1, k, dtype=lb.dtype, device=lb.device)
    spec[:, 0, output] = 1.0
    return paper_bound(relaxation).lower(net, lb, ub, spec)[0, 0]


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
        grads = [torch.randn(p.shape, generator=gen, dtype=p.dtype).to(p.device) for p in params]
        norm = torch.sqrt(sum((g**2).sum() for g in grads))
    return [g / norm for g in grads]


def bound_along(net, lb, ub, output, relaxation, direction=None):
    """The function delta -> lower bound with the first affine layer moved by delta * direction."""
    direction = direction or gradient_direction(net, lb, ub, output, relaxation)

    def value(delta: float) -> float:
        moved = copy.deepcopy(net)
        layer = first_affine(moved)
        with torch.no_grad():
            for p, d in zip([layer.weight, layer.bias], direction):
                if p is not None:
                    p.add_(float(delta) * d)
            return output_lower_bound(moved, lb, ub, output, relaxation).item()

    return value


def refine_jumps(fn, deltas, values, factor: float = 5.0, levels: int = 14, keep: float = 0.1) -> list[tuple[float, float]]:
    """Jumps of ``fn`` confirmed by bisection: (location, signed size).

    Candidates are grid steps whose change exceeds ``factor`` times the median step. Each is
    bisected ``levels`` times, always keeping the half with the larger change: a continuous
    function's change shrinks with the interval (by 2^-levels for a finite slope), a jump's
    does not. A candidate is a jump if at least ``keep`` of its change survives. Comparing a
    step with its neighbours alone would miss jumps in consecutive steps and flag steep but
    continuous stretches; bisection settles both."""
    deltas, values = np.asarray(deltas, dtype=float), np.asarray(values, dtype=float)
    diffs = np.abs(np.diff(values))
    scale = max(float(np.median(diffs)), 1e-9 * (float(np.ptp(values)) + 1e-12), 1e-12)
    found = []
    for i in np.where(diffs > factor * scale)[0]:
        a, b, fa, fb = deltas[i], deltas[i + 1], values[i], values[i + 1]
        for _ in range(levels):
            m = (a + b) / 2
            fm = fn(m)
            if abs(fm - fa) >= abs(fb - fm):
                b, fb = m, fm
            else:
                a, fa = m, fm
        if abs(fb - fa) >= keep * diffs[i] and abs(fb - fa) > 10 * scale * (b - a) / (deltas[1] - deltas[0]):
            found.append((float((a + b) / 2), float(fb - fa)))
    return found
