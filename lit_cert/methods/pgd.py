"""PGD adversarial training (Madry et al., 2018): the empirical-robustness baseline."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lit_cert.bounds.region import linf_box
from lit_cert.errors import ConfigError
from lit_cert.layers import frozen_batch_stats
from lit_cert.methods.adversarial import attack_in_box
from lit_cert.methods.base import CertifiedMethod, RobustLoss


class PGDTraining(CertifiedMethod):
    """Robust loss = CE at the PGD adversarial example in the eps-ball (an under-approximation).

    Args (besides :class:`CertifiedMethod`'s):
        pgd_steps, pgd_restarts: attack iterations and random restarts.
        pgd_step_size: step as a fraction of eps (default eps/4 per step, i.e. 0.5 of the radius).
    """

    def __init__(self, *args, pgd_steps: int = 10, pgd_restarts: int = 1, pgd_step_size: float = 0.5, **kwargs):
        super().__init__(*args, **kwargs)
        if pgd_steps < 1 or pgd_restarts < 1 or pgd_step_size <= 0:
            raise ConfigError(f"pgd_steps/pgd_restarts must be >= 1 and pgd_step_size > 0, got {pgd_steps}, {pgd_restarts}, {pgd_step_size}")
        self.pgd_steps, self.pgd_restarts, self.pgd_step_size = pgd_steps, pgd_restarts, pgd_step_size

    @property
    def checkpoint_monitor(self) -> str:
        return self.empirical_monitor

    def adversarial_loss(self, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
        lb, ub = linf_box(x, eps)
        x_adv = attack_in_box(self.net, y, lb, ub, self.pgd_steps, self.pgd_restarts, self.pgd_step_size)
        with frozen_batch_stats(self.net):
            return F.cross_entropy(self.net(x_adv), y)

    def robust_loss(self, x: torch.Tensor, y: torch.Tensor, eps: float) -> RobustLoss:
        return RobustLoss(self.adversarial_loss(x, y, eps))
