"""PGD adversarial training (Madry et al., 2018): the empirical-robustness baseline."""

from __future__ import annotations

from typing import Optional

from lit_cert.methods.adversarial import adversarial_ce, attack_in_box, check_attack
from lit_cert.methods.base import CertifiedMethod, RobustLoss


class PGDTraining(CertifiedMethod):
    """Robust loss = CE at the PGD adversarial example in the eps-ball (an under-approximation).

    Args (besides :class:`CertifiedMethod`'s):
        pgd_steps, pgd_restarts: attack iterations and random restarts (CTBench's examples: 10, 3).
        pgd_step_size: step as a fraction of the radius; null = CTBench's ``max(0.25, 2 / steps)``
            with its step decay (:mod:`lit_cert.attacks.pgd`, policy ``ctbench``).
    """

    TRAINING_BOUNDS_MARGINS = False

    def __init__(self, *args, pgd_steps: int = 10, pgd_restarts: int = 1, pgd_step_size: Optional[float] = None, **kwargs):
        super().__init__(*args, **kwargs)
        check_attack(pgd_steps, pgd_restarts, pgd_step_size)
        self.pgd_steps, self.pgd_restarts, self.pgd_step_size = pgd_steps, pgd_restarts, pgd_step_size

    @property
    def checkpoint_monitor(self) -> str:
        return self.empirical_monitor

    def bound_loss(self, x, y, lb, ub, eps, trace):
        x_adv = attack_in_box(self.net, x, y, lb, ub, self.pgd_steps, self.pgd_restarts, self.pgd_step_size)
        return RobustLoss(adversarial_ce(self.net, x_adv, y))
