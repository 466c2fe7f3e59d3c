"""Exact (MILP) and LP-relaxed optima of a margin over a box, for tiny fully connected ReLU nets.

Independent of the code under test: the network is read as plain matrices and the problem is
handed to scipy's HiGHS. Used to check that bounds are sound (never above the true minimum).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import Bounds, LinearConstraint, milp
from torch import nn


def affine_layers(net: nn.Sequential) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(W, b)] of a Linear/ReLU net (optionally starting with Flatten), in order."""
    out = []
    for m in net:
        if isinstance(m, nn.Linear):
            out.append((m.weight.detach().double().numpy(), m.bias.detach().double().numpy()))
        elif not isinstance(m, (nn.ReLU, nn.Flatten)):
            raise TypeError(f"exact solver supports Linear/ReLU only, got {type(m).__name__}")
    return out


def preactivation_bounds(layers, lb, ub):
    """Plain interval arithmetic (independent re-implementation) for the big-M constants."""
    bounds, l, u = [], lb, ub
    for i, (w, b) in enumerate(layers[:-1]):
        c, r = (u + l) / 2, (u - l) / 2
        zl, zu = w @ c + b - np.abs(w) @ r, w @ c + b + np.abs(w) @ r
        bounds.append((zl, zu))
        l, u = np.maximum(zl, 0), np.maximum(zu, 0)
    return bounds


def min_linear_objective(net: nn.Sequential, lb: np.ndarray, ub: np.ndarray, c: np.ndarray, relax: bool = False,
                         splits: dict | None = None) -> float | None:
    """min over x in [lb, ub] of ``c @ net(x)`` exactly (MILP) or under the triangle LP relaxation.

    ``splits`` {(hidden layer k, neuron j): +1 or -1} restricts x to the subdomain where that
    neuron's pre-activation is >= 0 (+1) or <= 0 (-1); None is returned if it is empty."""
    splits = splits or {}
    layers = affine_layers(net)
    pre = preactivation_bounds(layers, lb, ub)
    n0 = len(lb)
    # variables: x (n0), then per hidden layer: a (n), d (n binaries)
    sizes = [w.shape[0] for w, _ in layers[:-1]]
    nvar = n0 + 2 * sum(sizes)
    lo, hi = np.full(nvar, -np.inf), np.full(nvar, np.inf)
    lo[:n0], hi[:n0] = lb, ub
    integrality = np.zeros(nvar)
    rows, rlo, rhi = [], [], []
    prev_idx = np.arange(n0)
    offset = n0
    for hidden, ((w, b), (zl, zu), n) in enumerate(zip(layers[:-1], pre, sizes)):
        a_idx = np.arange(offset, offset + n)
        d_idx = np.arange(offset + n, offset + 2 * n)
        offset += 2 * n
        lo[a_idx], hi[a_idx] = 0.0, np.maximum(zu, 0)
        lo[d_idx], hi[d_idx] = 0.0, 1.0
        if not relax:
            integrality[d_idx] = 1
        for j in range(n):
            wz = np.zeros(nvar)
            wz[prev_idx] = w[j]
            sign = splits.get((hidden, j))
            if sign is not None:  # the split's half-space on the pre-activation: sign * (w x + b) >= 0
                rows.append(sign * wz); rlo.append(-sign * b[j]); rhi.append(np.inf)
            # a >= z  <=>  a - w x >= b
            row = -wz.copy(); row[a_idx[j]] += 1
            rows.append(row); rlo.append(b[j]); rhi.append(np.inf)
            if zu[j] <= 0:  # dead: a = 0
                hi[a_idx[j]] = 0.0
                continue
            if zl[j] >= 0:  # active: a = z
                rows.append(row.copy()); rlo.append(b[j]); rhi.append(b[j])
                continue
            # a <= z - l (1 - d)  <=>  a - w x - l d <= b - l
            row2 = -wz.copy(); row2[a_idx[j]] += 1; row2[d_idx[j]] -= zl[j]
            rows.append(row2); rlo.append(-np.inf); rhi.append(b[j] - zl[j])
            # a <= u d
            row3 = np.zeros(nvar); row3[a_idx[j]] = 1; row3[d_idx[j]] = -zu[j]
            rows.append(row3); rlo.append(-np.inf); rhi.append(0.0)
        prev_idx = a_idx
    w_last, b_last = layers[-1]
    obj = np.zeros(nvar)
    obj[prev_idx] = c @ w_last
    res = milp(
        obj,
        constraints=LinearConstraint(np.array(rows), np.array(rlo), np.array(rhi)),
        integrality=integrality,
        bounds=Bounds(lo, hi),
    )
    if res.status == 2:  # infeasible: the subdomain is empty
        return None
    assert res.success, res.message
    return float(res.fun + c @ b_last)


def tiny_relu_net(sizes=(2, 6, 5, 3), seed=0) -> nn.Sequential:
    g = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = nn.Linear(a, b)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(b, a, generator=g))
            lin.bias.copy_(torch.randn(b, generator=g) * 0.5)
        layers.append(lin)
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).double()


def randomise_batchnorm(net: nn.Module) -> nn.Module:
    """Random running statistics and affine parameters (negative scales included) for every
    BatchNorm, so that bound rules see non-trivial per-channel maps."""
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(-1.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return net
