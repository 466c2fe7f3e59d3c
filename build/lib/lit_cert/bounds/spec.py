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


def skip_zero_rows(bound_fn, spec: torch.Tensor) -> torch.Tensor:
    """``bound_fn(spec)`` (B, M) computed on the non-zero rows of ``spec`` only: a zero row's
    bound is exactly 0 (like the true class's row of :func:`margin_spec`), so the work for it
    is skipped -- one row in K for every back-substitution of the margins. Falls back to the
    full call when samples have different numbers of zero rows."""
    zero = (spec == 0).flatten(2).all(-1)
    counts = zero.sum(1)
    if spec.shape[0] == 0 or int(counts.max()) == 0 or bool((counts != counts[0]).any()):
        return bound_fn(spec)
    keep = spec.shape[1] - int(counts[0])
    order = torch.argsort(zero.to(torch.int8), dim=1, stable=True)[:, :keep]  # non-zero rows first
    rows = spec.gather(1, order.view(*order.shape, *([1] * (spec.dim() - 2))).expand(-1, -1, *spec.shape[2:]))
    out = bound_fn(rows)
    return out.new_zeros(spec.shape[:2]).scatter(1, order, out)
