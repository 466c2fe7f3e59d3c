"""Weight initialisations for certified training."""

from __future__ import annotations

import math

import torch
from torch import nn

from lit_cert.bounds.box import flat_layers


def ibp_init(net: nn.Module) -> nn.Module:
    """IBP initialisation (Shi et al., 2021).

    Every Linear/Conv weight except the last layer's is drawn from N(0, sigma^2) with
    ``sigma = sqrt(2*pi) / fan_in``, so that ``E[sum_j |w_ij|] = 2`` and, with about half of the
    ReLUs of an interval passing, the interval width is preserved from layer to layer instead of
    growing with the width as under Kaiming initialisation.
    """
    affine = [m for m in flat_layers(net) if isinstance(m, (nn.Linear, nn.Conv2d))]
    for layer in affine[:-1]:
        fan_in, _ = nn.init._calculate_fan_in_and_fan_out(layer.weight)
        with torch.no_grad():
            nn.init.normal_(layer.weight, mean=0.0, std=math.sqrt(2 * math.pi) / fan_in)
    return net
