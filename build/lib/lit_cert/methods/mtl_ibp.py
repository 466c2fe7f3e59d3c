"""MTL-IBP (De Palma et al., 2024): a convex combination of the IBP loss and an adversarial loss."""

from __future__ import annotations

from lit_cert.bounds.region import linf_box
from lit_cert.methods.adversarial import AttackStepSize, AttackSteps, adversarial_ce, attack_in_box
from lit_cert.methods.ibp import IBP
from lit_cert.options import PositiveFloat, UnitInterval, check_arguments


class MTLIBP(IBP):
    """Robust loss = ``alpha * IBP loss + (1 - alpha) * CE at the PGD point``.

    Besides :class:`IBP`'s arguments; defaults as CTBench's ``MTLIBPModelWrapper``.

    Args:
        alpha: weight of the IBP loss (CTBench's ``ibp_coef``).
        attack_range_scale: the attack searches the ball of radius ``attack_range_scale * eps``
            (clipped to [0, 1]); De Palma et al. use 2 with a one-step attack on CIFAR-10 2/255.
        pgd_steps: steps of the attack.
        pgd_restarts: its random restarts.
        pgd_step_size: its step (null: ``max(0.25, 2 / steps)`` times the radius with CTBench's
            decay).
    """

    def __init__(self, *args, alpha: UnitInterval = 0.5, attack_range_scale: PositiveFloat = 1.0, pgd_steps: AttackSteps = 8,
                 pgd_restarts: AttackSteps = 1, pgd_step_size: AttackStepSize = None, **kwargs):
        check_arguments()
        super().__init__(*args, **kwargs)
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
