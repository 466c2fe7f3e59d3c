"""Projected gradient ascent in a box (L∞ PGD with random starts and restarts)."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from lit_cert.bounds.region import linf_box


def pgd_maximize(
    objective: Callable[[torch.Tensor], torch.Tensor],
    lb: torch.Tensor,
    ub: torch.Tensor,
    steps: int = 20,
    step_size: float | torch.Tensor | None = None,
    restarts: int = 1,
    random_start: bool = True,
    start: torch.Tensor | None = None,
) -> torch.Tensor:
    """Maximise a per-sample objective ``(B,)`` over the box ``[lb, ub]`` by signed-gradient steps.

    Returns the best point found per sample over all steps and restarts (never worse than the
    start). ``step_size`` defaults to a quarter of the box width per coordinate.
    """
    if step_size is None:
        step_size = (ub - lb) / 4
    best_x = (lb + ub) / 2 if start is None else start.clone()
    with torch.no_grad():
        best_val = objective(best_x)
    for restart in range(max(restarts, 1)):
        if random_start and (restart > 0 or start is None):
            x = lb + (ub - lb) * torch.rand_like(lb)
        else:
            x = best_x.clone()
        for _ in range(steps + 1):
            with torch.enable_grad():
                x = x.detach().requires_grad_(True)
                val = objective(x)
                grad = torch.autograd.grad(val.sum(), x)[0]
            with torch.no_grad():
                better = val.detach() > best_val
                best_val = torch.where(better, val.detach(), best_val)
                mask = better.view(-1, *([1] * (x.dim() - 1)))
                best_x = torch.where(mask, x.detach(), best_x)
                x = torch.min(torch.max(x + step_size * grad.sign(), lb), ub)
    return best_x.detach()


def pgd_attack(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int = 20,
    step_size: float | None = None,
    restarts: int = 1,
    loss: str = "margin",
) -> torch.Tensor:
    """L∞ PGD within ``eps`` of ``x`` (clamped to [0, 1]); ``loss`` is ``"ce"`` or ``"margin"``.

    The margin loss maximises ``max_{i != y} z_i - z_y`` (positive means misclassified). Works
    under inference mode too (Lightning's evaluation loop): the attack runs outside it, on copies.
    """
    if step_size is None:
        step_size = max(eps / 4, 1e-12)

    def objective(z_in: torch.Tensor) -> torch.Tensor:
        logits = net(z_in)
        if loss == "ce":
            return F.cross_entropy(logits, y, reduction="none")
        true = logits.gather(1, y[:, None]).squeeze(1)
        other = logits.clone()
        other[torch.arange(len(y), device=y.device), y] = float("-inf")
        return other.max(dim=1).values - true

    with torch.inference_mode(False):
        x, y = x.clone(), y.clone()  # inference tensors cannot be saved for backward
        lb, ub = linf_box(x, eps)
        return pgd_maximize(objective, lb, ub, steps=steps, step_size=step_size, restarts=restarts)
