"""MTL-IBP (De Palma et al., 2024): a convex combination of the IBP loss and an adversarial loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lit_cert.bounds.region import linf_box
from lit_cert.errors import ConfigError
from lit_cert.layers import frozen_batch_stats
from lit_cert.methods.adversarial import attack_in_box
from lit_cert.methods.base import RobustLoss
from lit_cert.methods.ibp import IBP


class MTLIBP(IBP):
    """Robust loss = ``alpha * IBP loss + (1 - alpha) * CE at the PGD point in the eps-ball``."""

    def __init__(self, *args, alpha: float = 0.5, pgd_steps: int = 8, pgd_restarts: int = 1, pgd_step_size: float = 0.5, **kwargs):
        super().__init__(*args, **kwargs)
        if not 0 <= alpha <= 1:
            raise ConfigError(f"MTL-IBP alpha must be in [0, 1], got {alpha}")
        self.alpha, self.pgd_steps, self.pgd_restarts, self.pgd_step_size = alpha, pgd_steps, pgd_restarts, pgd_step_size

    def robust_loss(self, x: torch.Tensor, y: torch.Tensor, eps: float) -> RobustLoss:
        ibp = super().robust_loss(x, y, eps)
        lb, ub = linf_box(x, eps)
        x_adv = attack_in_box(self.net, y, lb, ub, self.pgd_steps, self.pgd_restarts, self.pgd_step_size)
        with frozen_batch_stats(self.net):
            adv = F.cross_entropy(self.net(x_adv), y)
        ibp.logs.update(ibp_loss=ibp.loss.detach(), adv_loss=adv.detach())
        ibp.loss = self.alpha * ibp.loss + (1 - self.alpha) * adv
        return ibp
