"""MTL-IBP (De Palma et al., 2024): a convex combination of the IBP loss and an adversarial loss."""

from __future__ import annotations

from typing import Optional

from lit_cert.bounds.region import linf_box
from lit_cert.errors import check
from lit_cert.methods.adversarial import adversarial_ce, attack_in_box, check_attack
from lit_cert.methods.ibp import IBP


class MTLIBP(IBP):
    """Robust loss = ``alpha * IBP loss + (1 - alpha) * CE at the PGD point``.

    Args (besides :class:`IBP`'s), defaults as CTBench's ``MTLIBPModelWrapper``:
        alpha: weight of the IBP loss (CTBench's ``ibp_coef``).
        attack_range_scale: the attack searches the ball of radius ``attack_range_scale * eps``
            (clipped to [0, 1]); De Palma et al. use 2 with a one-step attack on CIFAR-10 2/255.
        pgd_steps, pgd_restarts, pgd_step_size: the attack; step null = ``max(0.25, 2 / steps)``
            times the radius with CTBench's decay.
    """

    def __init__(self, *args, alpha: float = 0.5, attack_range_scale: float = 1.0, pgd_steps: int = 8, pgd_restarts: int = 1,
                 pgd_step_size: Optional[float] = None, **kwargs):
        super().__init__(*args, **kwargs)
        check(0 <= alpha <= 1, f"MTL-IBP alpha must be in [0, 1], got {alpha}")
        check(attack_range_scale > 0, f"attack_range_scale must be > 0, got {attack_range_scale}")
        check_attack(pgd_steps, pgd_restarts, pgd_step_size)
        self.alpha, self.attack_range_scale = alpha, attack_range_scale
        self.pgd_steps, self.pgd_restarts, self.pgd_step_size = pgd_steps, pgd_restarts, pgd_step_size

    def bound_loss(self, x, y, lb, ub, eps, trace):
        ibp = super().bound_loss(x, y, lb, ub, eps, trace)
        a_lb, a_ub = linf_box(x, eps * self.attack_range_scale)
        x_adv = attack_in_box(self.net, x, y, a_lb, a_ub, self.pgd_steps, self.pgd_restarts, self.pgd_step_size)
        adv = adversarial_ce(self.net, x_adv, y)
        ibp.logs.update(ibp_loss=ibp.loss.detach(), adv_loss=adv.detach())
        ibp.loss = self.alpha * ibp.loss + (1 - self.alpha) * adv
        return ibp
