"""The robustness specification: margins ``z_y - z_i`` must stay positive.

``margin_spec`` builds ``C`` of shape (B, K, K) with row i equal to e_y - e_i; the row of the
true class is zero, so its margin and all its bounds are exactly 0. Keeping that zero row lets
the robust cross-entropy be a plain CE on the negated lower bounds:
``CE(-lb, y) = log(1 + sum_{i != y} exp(-lb_i))``, an upper bound on the worst-case CE.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def margin_spec(y: torch.Tensor, num_classes: int, dtype=torch.float32) -> torch.Tensor:
    """C (B, K, K) with ``C[b, i] = e_{y_b} - e_i`` (zero row at ``i = y_b``)."""
    eye = torch.eye(num_classes, dtype=dtype, device=y.device)
    return eye[y].unsqueeze(1) - eye.unsqueeze(0)


def robust_cross_entropy(margin_lb: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy on the worst-case logits ``-lb`` (lower bounds of the margins)."""
    return F.cross_entropy(-margin_lb, y, reduction=reduction)


def is_certified(margin_lb: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample bool: every margin to another class has a lower bound > 0."""
    others = torch.ones_like(margin_lb, dtype=torch.bool)
    others[torch.arange(y.shape[0], device=y.device), y] = False
    return torch.where(others, margin_lb > 0, torch.ones_like(others)).all(dim=1)
