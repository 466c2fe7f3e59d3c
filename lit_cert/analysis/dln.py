"""Tightness of deep linear (and ReLU) networks at initialisation (Mao et al., Sec. 3).

For Gaussian weight matrices of width d the tightness ``|W_L...W_1| 1 / (|W_L|...|W_1|) 1`` of a
two-layer deep linear network has the closed form (Lemma 3.7, as a ratio of expectations)

    tau(d) = sqrt(pi) * Gamma((d + 1) / 2) / (d * Gamma(d / 2))   (~ sqrt(pi / (2 d)))

For depth L the same argument per product entry (sums of d^(L-1) Gaussian paths) gives our
large-d approximation tau_L ~ (pi / (2 d))^((L-1)/2): tightness falls with width and depth.
"""

from __future__ import annotations

import math

import torch


def tau_closed_form(d: int) -> float:
    return math.sqrt(math.pi) * math.exp(math.lgamma((d + 1) / 2) - math.lgamma(d / 2)) / d


def tau_depth_approx(d: int, depth: int) -> float:
    return (math.pi / (2 * d)) ** ((depth - 1) / 2)


def tau_monte_carlo(d: int, depth: int = 2, samples: int = 20, relu: bool = False, seed: int = 0) -> float:
    """Ratio of expectations over ``samples`` random networks (and random inputs for ReLU nets)."""
    g = torch.Generator().manual_seed(seed)
    num = den = 0.0
    for _ in range(samples):
        ws = [torch.randn(d, d, generator=g, dtype=torch.float64) for _ in range(depth)]
        mask = [None] * depth
        if relu:  # activation pattern of a random input
            z = torch.randn(d, generator=g, dtype=torch.float64)
            for i, w in enumerate(ws[:-1]):
                z = w @ z
                mask[i] = (z > 0).to(torch.float64)
                z = torch.relu(z)
        prod, abs_prod = ws[0], ws[0].abs()
        for i in range(1, depth):
            d_i = mask[i - 1] if relu else torch.ones(d, dtype=torch.float64)
            prod = ws[i] @ (d_i[:, None] * prod)
            abs_prod = ws[i].abs() @ (d_i[:, None] * abs_prod)
        num += prod.abs().sum().item()
        den += abs_prod.sum().item()
    return num / den
