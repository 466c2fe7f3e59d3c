"""CROWN-IBP (Zhang et al., 2020): IBP intermediate bounds, CROWN for the final layer, mixed
with pure IBP bounds by ``beta`` (scheduled 1 -> 0 over the ramp by ``CertifiedSchedule``;
keep beta at 1 for the paradox paper's CROWN-IBP (R))."""

from __future__ import annotations

from lit_cert.bounds.fusion import fused_robust_ce
from lit_cert.bounds.registry import bound_spec
from lit_cert.bounds.spec import robust_cross_entropy
from lit_cert.errors import check
from lit_cert.methods.base import RobustLoss
from lit_cert.methods.ibp import IBP
from lit_cert.options import check_arguments


class CROWNIBP(IBP):
    """Robust CE on ``beta * CROWN-IBP + (1 - beta) * IBP`` margin lower bounds (Zhang et al.'s
    mix of the bounds, as in their code and auto_LiRPA's examples).

    With ``loss_fusion: true`` the CROWN-IBP part bounds the cross-entropy itself with one
    back-substituted row (:mod:`lit_cert.bounds.fusion`) and the mix is on the two loss bounds,
    ``beta * L_fused + (1 - beta) * L_IBP`` (both upper bounds of the robust CE). Both variants
    share one IBP walk between the intermediate bounds and the IBP term.

    Args:
        loss_fusion: bound the cross-entropy with one back-substituted row (see above).
    """

    USES_BETA = True

    def __init__(self, *args, loss_fusion: bool = False, **kwargs):
        check_arguments()
        super().__init__(*args, **kwargs)
        check(self.relu_shrinkage is None,
              "relu_shrinkage is a heuristic of IBP-based training (CTBench's SABR/TAPS settings); CROWNIBP does not apply it")
        check(not (loss_fusion and not self.hparams.elision),
              "elision: false bounds the logits; loss_fusion: true bounds the cross-entropy itself -- choose one")
        self.loss_fusion = loss_fusion
        self.crown_ibp = bound_spec("crown-ibp")

    def bound_loss(self, x, y, lb, ub, eps, trace):
        if not self.loss_fusion:
            return super().bound_loss(x, y, lb, ub, eps, trace)
        beta = float(self.beta)
        parts = []
        if beta > 0:
            parts.append(beta * fused_robust_ce(self.net, lb, ub, y, self.num_classes, trace=trace).mean())
        if beta < 1:
            ibp = self.bound.lower(self.net, lb, ub, self.spec(y, lb.dtype), None if beta > 0 else trace, purpose="train")
            parts.append((1 - beta) * robust_cross_entropy(ibp, y))
        return RobustLoss(sum(parts))

    def propagate(self, lb, ub, spec, trace):
        return self.margins(lambda rows: self._mixed_bounds(lb, ub, rows, trace), spec)

    def _mixed_bounds(self, lb, ub, rows, trace):
        """``beta * CROWN-IBP + (1 - beta) * IBP`` lower bounds of ``rows @ f(x)`` (registry
        ``crown-ibp`` and ``ibp``, sharing one IBP walk through ``trace``)."""
        beta = float(self.beta)
        ibp = self.bound.lower(self.net, lb, ub, rows, trace, purpose="train")  # also CROWN-IBP's intermediate bounds
        if beta <= 0:
            return ibp
        crown = self.crown_ibp.lower(self.net, lb, ub, rows, trace, purpose="train")
        return crown if beta >= 1 else beta * crown + (1 - beta) * ibp
