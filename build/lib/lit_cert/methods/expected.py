"""Training with expected tight bounds (seed 001, Sec. 4 "Training Robust Networks").

The loss is ``CE(f(x) / T, y) + robust_weight * CE(z / T, y)`` with ``z`` the adversarial logits
of the expected bounds -- the lower bound of the true logit, upper bounds of the others, as in
Gowal et al. -- at a *fixed* eps and weight ("a standard training procedure that avoids the need
to vary kappa or eps"; the paper calls ``robust_weight`` kappa -- it weighs the *robust* term,
unlike the ``kappa`` of lit_cert's schedules). ``T`` is the logit temperature of the paper's grid
({1, 1/5}); ``robust_weight: 0`` is the paper's nominal training. ``masks`` picks the paper's
propagated masks (Eq. 6, fully connected networks) or IBP masks (its convolutional variant);
``auto`` follows the paper. Validation and test still certify with a sound certifier (IBP by
default): expected bounds are never reported as certified, and the paper's claim is about
*PGD robustness* (``python -m lit_cert analyze pgd-robustness``).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from lit_cert.bounds.expected import default_masks, expected_bounds
from lit_cert.methods.base import CertifiedMethod
from lit_cert.options import NonNegativeFloat, PositiveFloat, check_arguments


class ExpectedTightBounds(CertifiedMethod):
    """Natural CE plus ``robust_weight`` times the CE of the expected-bound adversarial logits.

    Args:
        robust_weight: weight of the robust term (the paper's kappa; 0: nominal training).
        temperature: the logit temperature T.
        masks: ``auto`` (the paper's choice), ``propagated`` (Eq. 6) or ``ibp``.
    """

    TRAINING_BOUNDS_MARGINS = False  # the paper bounds the logits
    USES_KAPPA = False  # a fixed robust_weight instead (seed 001 varies neither kappa nor eps)

    def __init__(self, *args, robust_weight: NonNegativeFloat = 1.0, temperature: PositiveFloat = 1.0,
                 masks: Literal["auto", "propagated", "ibp"] = "auto", **kwargs):
        check_arguments()
        super().__init__(*args, **kwargs)
        self.robust_weight, self.temperature = robust_weight, temperature
        self.masks = default_masks(self.net) if masks == "auto" else masks

    @property
    def checkpoint_monitor(self) -> str:
        # expected bounds are not sound, so IBP-certified accuracy usually stays ~0
        return self.empirical_monitor

    def natural_loss_used(self) -> bool:
        return True

    def adversarial_logits(self, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
        """``z``: lower expected bound of the true logit, upper ones of the others (K rows)."""
        lb, ub = self.input_region(x, y, eps)
        k = self.num_classes
        sign = torch.where(F.one_hot(y, k).bool(), 1.0, -1.0).to(lb.dtype)  # rows +e_y, -e_i
        spec = torch.diag_embed(sign)
        low = expected_bounds(self.net, lb, ub, spec, self.masks, need_upper=False)[0]
        return sign * low

    def task_loss(self, x: torch.Tensor, y: torch.Tensor, nat: torch.Tensor, logits: torch.Tensor):
        eps = float(self.eps)
        logs = {"eps": eps}
        t = self.temperature
        natural = nat if t == 1.0 else F.cross_entropy(logits / t, y)
        if eps <= 0 or self.robust_weight == 0:
            return natural, logs, None
        rob = F.cross_entropy(self.adversarial_logits(x, y, eps) / t, y)
        logs["expected_rob_loss"] = rob.detach()
        return natural + self.robust_weight * rob, logs, None
