"""Tightness of deep linear (and ReLU) networks at initialisation (Mao et al., Sec. 3).

For Gaussian weight matrices of width d the tightness ``|W_L...W_1| 1 / (|W_L|...|W_1|) 1`` of a
two-layer deep linear network has the closed form (Lemma 3.7, as a ratio of expectations)

    tau(d) = sqrt(pi) * Gamma((d + 1) / 2) / (d * Gamma(d / 2))   (~ sqrt(pi / (2 d)))

Depth (our derivation of the Corollary 3.8 statement, as a ratio of expectations). For i.i.d.
zero-mean Gaussian layers with hidden widths d_1..d_{L-1}:

* numerator: a row of W_L...W_1 has entries w . (W_{L-1}...W_1 e_j); conditioned on the product,
  each is Gaussian with standard deviation sigma_L * ||W_{L-1}...W_1 e_j||, and by rotation
  invariance that column norm is a product of independent chi_{d_l}-distributed factors, so
  E|entry| = sqrt(2/pi) * prod_l sigma_l * E[chi_{d_l}];
* denominator: the layers are independent, so E(|W_L|...|W_1| 1) = prod_l (d_l * sigma_l * sqrt(2/pi)).

The ratio is ``prod_{l=1}^{L-1} tau(d_l)``; for equal widths ``tau(d)^(L-1) ~ (pi / (2 d))^((L-1)/2)``:
tightness falls exponentially with depth and like d^(-(L-1)/2) with width.

ReLU networks at initialisation: about half of the units are active at a random input, so the
masked product behaves like a deep linear network of width d/2; ``tau(d/2)^(L-1)`` matches the
Monte Carlo estimate within a few percent (tests/test_analysis.py), i.e. ReLU nets are ~sqrt(2)^(L-1)
tighter than linear ones of the same width.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch


def tau_closed_form(d: float) -> float:
    """Lemma 3.7: tightness of a two-layer Gaussian DLN with hidden width ``d`` (real d allowed)."""
    return math.sqrt(math.pi) * math.exp(math.lgamma((d + 1) / 2) - math.lgamma(d / 2)) / d


def tau_depth(hidden_widths: int | Sequence[int], depth: int | None = None) -> float:
    """Tightness of a Gaussian DLN with the given hidden widths: ``prod tau(d_l)`` (module doc).

    ``tau_depth(d, depth)`` is the equal-width case with ``depth - 1`` hidden layers."""
    if isinstance(hidden_widths, (int, float)):
        if depth is None or depth < 1:
            raise ValueError("give depth >= 1 with a single width")
        hidden_widths = [hidden_widths] * (depth - 1)
    return math.prod(tau_closed_form(d) for d in hidden_widths)


def tau_corollary_bound(d_min: float, depth: int) -> float:
    """Corollary 3.8 (seed 000): the expected tightness of an L-layer DLN with minimum internal
    width d_min is at most ``tau(d_min)^floor(L/2)`` (pair the layers, each pair a two-layer DLN)."""
    return tau_closed_form(d_min) ** (depth // 2)


def tau_relu_approx(d: int, depth: int) -> float:
    """ReLU network at initialisation: a DLN of width d/2 (half of the units active)."""
    return tau_depth(d / 2, depth)


def tau_depth_approx(d: int, depth: int) -> float:
    """Large-d form of :func:`tau_depth`: ``(pi / (2 d))^((depth-1)/2)``."""
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
