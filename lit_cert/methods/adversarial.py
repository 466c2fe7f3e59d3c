"""Attack helpers shared by the methods that use PGD (PGD training, SABR, TAPS, MTL-IBP).

Attacks on a network in training mode run with the clean batch's BatchNorm statistics frozen,
so the attacked function is exactly the one the bounds describe and the running statistics are
not polluted by adversarial inputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lit_cert.attacks import pgd_maximize
from lit_cert.layers import frozen_batch_stats


def ce_objective(net: nn.Module, y: torch.Tensor):
    return lambda z: F.cross_entropy(net(z), y, reduction="none")


def attack_in_box(
    net: nn.Module, y: torch.Tensor, lb: torch.Tensor, ub: torch.Tensor, steps: int, restarts: int, step_size: float | None
) -> torch.Tensor:
    """The point of ``[lb, ub]`` maximising the CE found by PGD (detached)."""
    step = None if step_size is None else step_size * (ub - lb) / 2
    with frozen_batch_stats(net):
        return pgd_maximize(ce_objective(net, y), lb.detach(), ub.detach(), steps=steps, step_size=step, restarts=restarts)
