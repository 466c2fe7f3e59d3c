"""Propagation tightness (Mao et al., ICLR 2024, Def. 3.6), computed locally for ReLU networks.

At an input x the network is linear on its activation region: ``f(x') = J x' + b`` with
``J = W_L D_{L-1} W_{L-1} ... D_1 W_1`` (``D_k`` the 0/1 ReLU pattern at x; BatchNorm and
normalisation are diagonal affine maps). For a box of radius r the optimal output box has
radius ``|J| r`` while layer-wise propagation with the same pattern gives
``|W_L| D |W_{L-1}| ... D |W_1| r``. Tightness is their ratio per output (in (0, 1], 1 = box
propagation loses nothing), averaged over outputs and samples. Both terms are computed with
passes through the network (K reverse-mode autograd passes for the rows of ``J``, one forward
pass of absolute weights for the denominator): no Jacobian is materialised per layer.
"""

from __future__ import annotations

import torch
from torch import nn

from lit_cert.bounds.box import AFFINE_RULES, flat_layers, rule_for
from lit_cert.metrics.accuracy import RateMetric


def local_tightness(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(B, K) ratios ``|J| 1 / (prod D |W|) 1`` at the inputs ``x`` (1 where both are 0)."""
    layers = flat_layers(net)
    masks = {}
    # numerator: one recorded forward pass (which also gives the activation pattern), then one
    # reverse-mode pass per output for the rows of J; Lightning evaluates under inference mode,
    # hence the explicit switches
    with torch.inference_mode(False), torch.enable_grad():
        xx = x.detach().clone().requires_grad_(True)
        z = xx
        for i, layer in enumerate(layers):
            if isinstance(layer, nn.ReLU):
                masks[i] = (z > 0).detach().to(z.dtype)
            z = layer(z)
        rows = [torch.autograd.grad(z[:, k].sum(), xx, retain_graph=k < z.shape[1] - 1)[0].abs().flatten(1).sum(1)
                for k in range(z.shape[1])]
    numerator = torch.stack(rows, 1).detach()
    with torch.no_grad():
        # denominator: radius 1 through |W| layer by layer with the same pattern
        radius = torch.ones_like(x)
        for i, layer in enumerate(layers):
            if isinstance(layer, nn.ReLU):
                radius = radius * masks[i]
            elif rule_for(layer) in AFFINE_RULES.values():
                _, radius = rule_for(layer)(layer, torch.zeros_like(radius), radius)
            else:
                radius = layer(radius)
        denominator = radius
    # an output no input can move (e.g. every path through dead ReLUs) has both radii 0:
    # box propagation is exact there, so its tightness is 1 rather than 0/0
    dead = denominator <= 0
    return torch.where(dead, torch.ones_like(numerator), numerator / denominator.masked_fill(dead, 1.0))


class PropagationTightness(RateMetric):
    """Mean local propagation tightness over outputs and samples: ``update(net, x)``.

    A mean of ratios in (0, 1]: the rate metric's summed states hold the sum and the count."""

    def update(self, net: nn.Module, x: torch.Tensor) -> None:  # type: ignore[override]
        ratios = local_tightness(net, x)
        self.hits += ratios.sum().to(self.hits.dtype)
        self.total += ratios.numel()
