"""PGD adversarial training (Madry et al., 2018): the empirical-robustness baseline."""

from __future__ import annotations

from lit_cert.methods.adversarial import AttackStepSize, AttackSteps, adversarial_ce, attack_in_box
from lit_cert.methods.base import CertifiedMethod, RobustLoss
from lit_cert.options import check_arguments


class PGDTraining(CertifiedMethod):
    """Robust loss = CE at the PGD adversarial example in the eps-ball (an under-approximation).

    Besides :class:`CertifiedMethod`'s arguments:

    Args:
        pgd_steps: attack iterations (CTBench's examples: 10).
        pgd_restarts: random restarts (CTBench's examples: 3).
        pgd_step_size: step as a fraction of the radius; null = CTBench's ``max(0.25, 2 / steps)``
            with its step decay (:mod:`lit_cert.attacks.pgd`, policy ``ctbench``).
    """

    TRAINING_BOUNDS_MARGINS = False

    def __init__(self, *args, pgd_steps: AttackSteps = 10, pgd_restarts: AttackSteps = 1, pgd_step_size: AttackStepSize = None,
                 **kwargs):
        check_arguments()
        super().__init__(*args, **kwargs)
        self.pgd_steps, self.pgd_restarts, self.pgd_step_size = pgd_steps, pgd_restarts, pgd_step_size

    @property
    def checkpoint_monitor(self) -> str:
        return self.empirical_monitor

    def bound_loss(self, x, y, lb, ub, eps, trace):
        x_adv = attack_in_box(self.net, x, y, lb, ub, self.pgd_steps, self.pgd_restarts, self.pgd_step_size)
        return RobustLoss(adversarial_ce(self.net, x_adv, y))
