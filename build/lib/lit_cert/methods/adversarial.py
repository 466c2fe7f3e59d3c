"""Attack helpers shared by the methods that use PGD (PGD training, SABR, TAPS, MTL-IBP).

Attacks on a network in training mode run with the clean batch's BatchNorm statistics frozen,
so the attacked function is exactly the one the bounds describe and the running statistics are
not polluted by adversarial inputs. The attack point itself is a constant of the loss (no
gradient flows through the attack), as in every reference implementation.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from lit_cert.attacks import pgd_maximize
from lit_cert.attacks.pgd import Policy, ce_objective
from lit_cert.layers import frozen_batch_stats
from lit_cert.options import PositiveFloat, PositiveInt

#: the declared kinds of the methods' attack options: steps and restarts >= 1, a step size > 0
#: (a fraction of the radius) or null for the reference's default
AttackSteps = PositiveInt
AttackStepSize = Optional[PositiveFloat]


def attack_in_box(
    net: nn.Module, x: torch.Tensor, y: torch.Tensor, lb: torch.Tensor, ub: torch.Tensor, steps: int, restarts: int,
    step_size: float | None, policy: Policy = "ctbench",
) -> torch.Tensor:
    """The point of ``[lb, ub]`` maximising the CE found by PGD (detached; see
    :mod:`lit_cert.attacks.pgd` for the step policies; ``x`` anchors the random start)."""
    with frozen_batch_stats(net):
        return pgd_maximize(ce_objective(net, y), lb, ub, steps=steps, restarts=restarts, policy=policy, step_size=step_size, x=x)


def adversarial_ce(net: nn.Module, x_adv: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """CE at the attack point, in training mode with the clean batch's statistics."""
    with frozen_batch_stats(net):
        return F.cross_entropy(net(x_adv), y)
