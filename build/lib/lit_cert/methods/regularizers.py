"""Penalties added to the training loss: L1 and the warm-up regularisers of Shi et al. (2021)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lit_cert.bounds.box import flat_layers
from lit_cert.bounds.trace import IntervalTrace


def l1_penalty(net: nn.Module) -> torch.Tensor:
    """Sum of absolute weights of all Linear and Conv2d layers (biases and BatchNorm excluded)."""
    weights = [m.weight for m in flat_layers(net) if isinstance(m, (nn.Linear, nn.Conv2d))]
    return torch.stack([w.abs().sum() for w in weights]).sum()


def shi_regularizers(trace: IntervalTrace, tol: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_tightness, L_relu) of Shi et al. (2021) from the intervals of one IBP walk.

    * L_tightness penalises pre-activation intervals whose mean radius grew to more than
      ``1/tol`` times the mean radius of the box entering the first affine layer (after the
      normalisation): ``relu(tol - r_0 / r_i) / tol`` averaged over the ReLU layers.
    * L_relu balances active and inactive neurons: for the interval centres of surely active
      (l > 0) and surely inactive (u < 0) neurons it penalises ratios (<= 1 after taking the
      smaller of r and 1/r) of their mean magnitudes and of their spread below ``tol``; layers
      where a ratio is undefined (no active or no inactive neuron) add nothing to it.
    """
    relu_inputs = trace.relu_inputs
    first = trace.first_affine_input
    if not relu_inputs or first is None:
        raise ValueError("Shi et al.'s regularisers need an IBP trace with a first affine layer and ReLUs")
    lb0, ub0 = first
    r0 = ((ub0 - lb0) / 2).mean()
    zero = torch.zeros((), dtype=lb0.dtype, device=lb0.device)
    tight, relu = zero, zero
    for lb, ub in relu_inputs:
        center, radius = (ub + lb) / 2, (ub - lb) / 2
        tight = tight + F.relu(tol - r0 / radius.mean().clamp(min=1e-12)) / tol
        active, inactive = (lb > 0).to(lb.dtype), (ub < 0).to(lb.dtype)
        mean_act = (center * active).mean()
        mean_inact = (center * inactive).mean()
        spread = (center - center.mean()) ** 2
        var_act, var_inact = (spread * active).sum(), (spread * inactive).sum()
        mean_ratio = mean_act / -mean_inact
        var_ratio = var_act / var_inact
        mean_ratio = torch.minimum(mean_ratio, 1 / mean_ratio.clamp(min=1e-12))
        var_ratio = torch.minimum(var_ratio, 1 / var_ratio.clamp(min=1e-12))
        term = (F.relu(tol - mean_ratio) + F.relu(tol - var_ratio)) / tol
        if torch.isfinite(term):
            relu = relu + term
    n = len(relu_inputs)
    return tight / n, relu / n
