"""Small networks from the papers, built exactly."""

from __future__ import annotations

import torch
from torch import nn


def paradox_example(w: float):
    """``o = relu(x + w - 1) - relu(x)`` on x in [0, 2] (our instance of the paradox paper's
    Sec. 4.1 three-layer example): the first neuron's pre-activation is ``[w - 1, w + 1]``.
    CROWN's lower bound jumps where ``w`` crosses 0 (its adaptive slope flips), hBox's where
    ``w`` crosses 1 (the neuron becomes stable); IBP and DeepZ are continuous.
    Returns (net, lb, ub)."""
    first, second = nn.Linear(1, 2), nn.Linear(2, 1)
    with torch.no_grad():
        first.weight.copy_(torch.tensor([[1.0], [1.0]]))
        first.bias.copy_(torch.tensor([w - 1.0, 0.0]))
        second.weight.copy_(torch.tensor([[1.0, -1.0]]))
        second.bias.zero_()
    net = nn.Sequential(first, nn.ReLU(), second).double()
    return net, torch.zeros(1, 1, dtype=torch.float64), torch.full((1, 1), 2.0, dtype=torch.float64)
