"""SABR (Müller et al., ICLR 2023): IBP on a small box of relative size ``lam`` placed around an
adversarial example of the eps-ball.

The region is built in two steps, as in the SABR authors' code: PGD (CE loss) searches the whole
clipped eps-ball, then :func:`lit_cert.bounds.region.small_box` places the small box as close to
that point as it fits inside the ball (``box_convention``: ``sabr`` = the authors' radius
``lam * eps``, ``ctbench`` = CTBench's radius ``lam`` times the clipped half-width).
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional

from lit_cert.bounds.region import linf_box, small_box
from lit_cert.methods.adversarial import AttackStepSize, AttackSteps, attack_in_box
from lit_cert.methods.ibp import IBP
from lit_cert.options import Range, check_arguments

#: SABR's relative box size lambda: in (0, 1] (1 = the whole ball, i.e. IBP)
BoxSize = Annotated[float, Range(0, 1, lo_open=True)]


class SmallBoxRegion:
    """Mixin for SABR and STAPS: the small adversarial box as :meth:`input_region`.

    ``pgd_policy: sabr`` is the SABR authors' attack (step 0.5 of the largest radius, decayed
    x0.1 at 50/80/90% of the steps); ``ctbench`` is CTBench's and the TAPS authors' small-box
    attack (step 0.2 of each radius, x0.2 every 10 steps). ``pgd_step_size`` null = the
    policy's default."""

    def init_small_box(self, lam: float, box_convention: str, pgd_steps: int, pgd_restarts: int,
                       pgd_step_size: Optional[float], pgd_policy: str) -> None:
        self.lam, self.box_convention = lam, box_convention
        if pgd_step_size is None and pgd_policy == "ctbench":
            pgd_step_size = 0.2  # CTBench's adv_whitebox default, which its SABR/STAPS use
        self.box_steps, self.box_restarts, self.box_step_size, self.box_policy = pgd_steps, pgd_restarts, pgd_step_size, pgd_policy

    def input_region(self, x, y, eps):
        if self.lam >= 1:
            return linf_box(x, eps)
        lb, ub = linf_box(x, eps)
        point = attack_in_box(self.net, x, y, lb, ub, self.box_steps, self.box_restarts, self.box_step_size, self.box_policy)
        return small_box(x, eps, self.lam, point, self.box_convention)


class SABR(SmallBoxRegion, IBP):
    """IBP training on SABR's small adversarial box; ``lam = 1`` is exactly IBP.

    Besides :class:`IBP`'s arguments (``relu_shrinkage`` included):

    Args:
        lam: the small box's relative size, in (0, 1].
        box_convention: ``sabr`` (the authors' radius ``lam * eps``) or ``ctbench`` (CTBench's).
        pgd_steps: steps of the attack that places the box.
        pgd_restarts: its random restarts.
        pgd_step_size: its step (null: the policy's default).
        pgd_policy: ``sabr`` or ``ctbench`` (see :class:`SmallBoxRegion`).
    """

    def __init__(
        self, *args, lam: BoxSize = 0.4, box_convention: Literal["sabr", "ctbench"] = "sabr", pgd_steps: AttackSteps = 8,
        pgd_restarts: AttackSteps = 1, pgd_step_size: AttackStepSize = None, pgd_policy: Literal["sabr", "ctbench"] = "sabr",
        **kwargs
    ):
        check_arguments()
        super().__init__(*args, **kwargs)
        self.init_small_box(lam, box_convention, pgd_steps, pgd_restarts, pgd_step_size, pgd_policy)
