"""CROWN-IBP (Zhang et al., 2020): IBP intermediate bounds, CROWN for the final layer, mixed
with pure IBP bounds by ``beta`` (scheduled 1 -> 0 over the ramp by ``CertifiedSchedule``;
keep beta at 1 for the paradox paper's CROWN-IBP (R))."""

from __future__ import annotations

from lit_cert.bounds.backsub import LinearBounds
from lit_cert.bounds.box import margin_bounds_ibp
from lit_cert.bounds.fusion import fused_robust_ce
from lit_cert.bounds.spec import robust_cross_entropy
from lit_cert.methods.base import RobustLoss
from lit_cert.methods.ibp import IBP


class CROWNIBP(IBP):
    """Robust CE on ``beta * CROWN-IBP + (1 - beta) * IBP`` margin lower bounds (Zhang et al.'s
    mix of the bounds, as in their code and auto_LiRPA's examples).

    With ``loss_fusion: true`` the CROWN-IBP part bounds the cross-entropy itself with one
    back-substituted row (:mod:`lit_cert.bounds.fusion`) and the mix is on the two loss bounds,
    ``beta * L_fused + (1 - beta) * L_IBP`` (both upper bounds of the robust CE). Both variants
    share one IBP walk between the intermediate bounds and the IBP term.
    """

    def __init__(self, *args, loss_fusion: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_fusion = loss_fusion

    def bound_loss(self, x, y, lb, ub, eps, trace):
        if not self.loss_fusion:
            return super().bound_loss(x, y, lb, ub, eps, trace)
        beta = float(self.beta)
        parts = []
        if beta > 0:
            parts.append(beta * fused_robust_ce(self.net, lb, ub, y, self.num_classes, trace=trace).mean())
        if beta < 1:
            ibp = margin_bounds_ibp(self.net, lb, ub, self.spec(y, lb.dtype), trace=None if beta > 0 else trace)
            parts.append((1 - beta) * robust_cross_entropy(ibp, y))
        return RobustLoss(sum(parts))

    def propagate(self, lb, ub, spec, trace):
        beta = float(self.beta)
        ibp = margin_bounds_ibp(self.net, lb, ub, spec, trace=trace)  # also CROWN-IBP's intermediate bounds
        if beta <= 0:
            return ibp
        crown = LinearBounds(self.net, lb, ub, "crown", "ibp", trace=trace).output_bounds(spec, need_upper=False)[0]
        return crown if beta >= 1 else beta * crown + (1 - beta) * ibp
