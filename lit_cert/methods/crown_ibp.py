"""CROWN-IBP (Zhang et al., 2020): IBP intermediate bounds, CROWN for the final layer, mixed
with pure IBP bounds by ``beta`` (scheduled 1 -> 0 over the ramp by ``CertifiedSchedule``;
keep beta at 1 for the paradox paper's CROWN-IBP (R))."""

from __future__ import annotations

from lit_cert.bounds.backsub import margin_bounds_crown_ibp
from lit_cert.bounds.box import margin_bounds_ibp
from lit_cert.methods.ibp import IBP


class CROWNIBP(IBP):
    """Robust CE on ``beta * CROWN-IBP + (1 - beta) * IBP`` margin lower bounds."""

    def propagate(self, lb, ub, spec, record):
        beta = float(self.beta)
        ibp = margin_bounds_ibp(self.net, lb, ub, spec, record=record) if beta < 1 or record is not None else None
        if beta <= 0:
            return ibp
        crown = margin_bounds_crown_ibp(self.net, lb, ub, spec)
        return crown if beta >= 1 else beta * crown + (1 - beta) * ibp
