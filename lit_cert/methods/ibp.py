"""IBP training (Gowal et al., 2018); Shi et al.'s (2021) initialisation is ``init: ibp`` on the
network and their warm-up regularisers are ``shi_reg`` (every method has them, see
:class:`~lit_cert.methods.base.CertifiedMethod`)."""

from __future__ import annotations

from lit_cert.bounds.box import margin_bounds_ibp
from lit_cert.methods.base import CertifiedMethod


class IBP(CertifiedMethod):
    """Robust loss = CE on IBP lower bounds of the margins over the full eps-ball."""

    def propagate(self, lb, ub, spec, trace):
        return margin_bounds_ibp(self.net, lb, ub, spec, trace=trace)
