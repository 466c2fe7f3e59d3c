"""CROWN-IBP (Zhang et al., 2020): IBP intermediate bounds, CROWN for the final layer, mixed
with pure IBP bounds by ``beta`` (scheduled 1 -> 0 over the ramp by ``CertifiedSchedule``;
keep beta at 1 for the paradox paper's CROWN-IBP (R))."""

from __future__ import annotations

from lit_cert.bounds.backsub import margin_bounds_crown_ibp
from lit_cert.bounds.box import margin_bounds_ibp
from lit_cert.bounds.fusion import fused_robust_ce
from lit_cert.bounds.spec import margin_spec, robust_cross_entropy
from lit_cert.methods.base import RobustLoss
from lit_cert.methods.ibp import IBP


class CROWNIBP(IBP):
    """Robust CE on ``beta * CROWN-IBP + (1 - beta) * IBP`` margin lower bounds.

    With ``loss_fusion: true`` the CROWN-IBP part bounds the cross-entropy itself with one
    back-substituted row (:mod:`lit_cert.bounds.fusion`) and the mix is on the two loss bounds,
    ``beta * L_fused + (1 - beta) * L_IBP`` (both upper bounds of the robust CE).
    """

    def __init__(self, *args, loss_fusion: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_fusion = loss_fusion

    def robust_loss(self, x, y, eps):
        if not self.loss_fusion:
            return super().robust_loss(x, y, eps)
        beta = float(self.beta)
        lb, ub = self.input_region(x, y, eps)
        parts = []
        if beta > 0:
            parts.append(beta * fused_robust_ce(self.net, lb, ub, y, self.num_classes).mean())
        if beta < 1:
            ibp = margin_bounds_ibp(self.net, lb, ub, margin_spec(y, self.num_classes, lb.dtype))
            parts.append((1 - beta) * robust_cross_entropy(ibp, y))
        return RobustLoss(sum(parts))

    def propagate(self, lb, ub, spec, record):
        beta = float(self.beta)
        ibp = margin_bounds_ibp(self.net, lb, ub, spec, record=record) if beta < 1 or record is not None else None
        if beta <= 0:
            return ibp
        crown = margin_bounds_crown_ibp(self.net, lb, ub, spec)
        return crown if beta >= 1 else beta * crown + (1 - beta) * ibp
