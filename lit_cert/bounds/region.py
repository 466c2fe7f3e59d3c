"""Input regions. eps is always in pixel units of [0, 1] images (normalisation is a layer)."""

from __future__ import annotations

import torch


def linf_box(
    x: torch.Tensor, eps: float | torch.Tensor, lo: float = 0.0, hi: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The L∞ ball of radius ``eps`` around ``x`` intersected with the domain ``[lo, hi]``.

    ``eps`` may be a float or a per-sample tensor of shape ``(B,)``.
    """
    if isinstance(eps, torch.Tensor) and eps.dim() == 1:
        eps = eps.view(-1, *([1] * (x.dim() - 1)))
    lb = torch.clamp(x - eps, min=lo, max=hi)
    ub = torch.clamp(x + eps, min=lo, max=hi)
    return lb, ub
