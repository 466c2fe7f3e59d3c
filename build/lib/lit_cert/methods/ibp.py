"""IBP training (Gowal et al., 2018); Shi et al.'s (2021) initialisation is ``init: ibp`` on the
network and their warm-up regularisers are ``shi_reg`` (every method has them, see
:class:`~lit_cert.methods.base.CertifiedMethod`)."""

from __future__ import annotations

from typing import Optional

from lit_cert.bounds.registry import bound_spec, ibp_rules
from lit_cert.methods.base import CertifiedMethod
from lit_cert.options import UnitInterval, check_arguments


class IBP(CertifiedMethod):
    """Robust loss = CE on IBP lower bounds of the margins over the full eps-ball.

    Besides :class:`CertifiedMethod`'s arguments:

    Args:
        relu_shrinkage: in [0, 1] (None = off): shrink unstable ReLU outputs in the training
            bounds (CTBench's heuristic, used by its SABR, TAPS and STAPS settings: the output of
            an unstable neuron is ``[0, s * u]``; never in certification)."""

    def __init__(self, *args, relu_shrinkage: Optional[UnitInterval] = None, **kwargs):
        check_arguments()
        super().__init__(*args, **kwargs)
        self.relu_shrinkage = relu_shrinkage
        self.bound = bound_spec("ibp", relu_shrinkage=relu_shrinkage)  # the training bound, from the registry
        self.rules = ibp_rules(relu_shrinkage)  # the same layer rules, for partial walks (TAPS' latent box)

    def propagate(self, lb, ub, spec, trace):
        return self.margins(lambda rows: self.bound.lower(self.net, lb, ub, rows, trace, purpose="train"), spec)
