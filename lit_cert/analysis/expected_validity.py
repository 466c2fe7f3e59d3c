"""How valid are expected bounds? (expected-bounds paper, Fig. 1 and 2)

For random Affine-ReLU-Affine blocks with n inputs and k hidden units, the true output interval
over a box is estimated from below by Monte Carlo points and box vertices (their min/max lie
inside it). Gamma = the fraction of that estimated interval covered by the expected bounds; the
width ratio compares IBP's interval with the expected one.
"""

from __future__ import annotations

import torch
from torch import nn

from lit_cert.bounds.box import interval_bounds
from lit_cert.bounds.expected import expected_bounds


def block(n: int, k: int, out: int, generator: torch.Generator) -> nn.Sequential:
    net = nn.Sequential(nn.Linear(n, k), nn.ReLU(), nn.Linear(k, out)).double()
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=generator, dtype=torch.float64) / m.in_features**0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=generator, dtype=torch.float64) * 0.1)
    return net


def gamma_and_ratio(n: int, k: int, trials: int = 20, samples: int = 2000, radius: float = 0.5, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    gammas, ratios = [], []
    for _ in range(trials):
        net = block(n, k, 4, g)
        c = torch.randn(1, n, generator=g, dtype=torch.float64)
        lb, ub = c - radius, c + radius
        pts = lb + (ub - lb) * torch.rand(samples, n, generator=g, dtype=torch.float64)
        vertices = torch.where(torch.rand(samples, n, generator=g) < 0.5, lb, ub)
        with torch.no_grad():
            out = net(torch.cat([pts, vertices]))
            t_lo, t_hi = out.min(0).values, out.max(0).values
            e_lo, e_hi = expected_bounds(net, lb, ub)
            i_lo, i_hi = interval_bounds(net, lb, ub)
        covered = (torch.minimum(e_hi[0], t_hi) - torch.maximum(e_lo[0], t_lo)).clamp(min=0)
        gammas.append((covered / (t_hi - t_lo).clamp(min=1e-12)).mean().item())
        ratios.append(((i_hi - i_lo) / (e_hi - e_lo).clamp(min=1e-12)).mean().item())
    return {"n": n, "k": k, "gamma": sum(gammas) / len(gammas), "ibp_over_expected_width": sum(ratios) / len(ratios)}
