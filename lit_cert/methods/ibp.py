"""IBP training (Gowal et al., 2018); Shi et al.'s (2021) initialisation is ``init: ibp`` on the
network and their warm-up regularisers are ``shi_reg`` (every method has them, see
:class:`~lit_cert.methods.base.CertifiedMethod`)."""

from __future__ import annotations

from typing import Optional

import torch

from lit_cert.bounds.box import INTERVAL_RULES, interval_rule, margin_bounds_ibp
from lit_cert.errors import check
from lit_cert.methods.base import CertifiedMethod


def shrinking_relu_rule(shrinkage: float):
    """ReLU interval rule for ``relu_shrinkage``: the output of an *unstable* neuron is
    ``[0, shrinkage * u]`` instead of ``[0, u]`` (CTBench's ``relu_shrinkage``: the upper bound
    multiplied by the factor, used by its SABR, TAPS and STAPS settings); stable neurons are
    untouched. A training heuristic that gives no sound bound."""

    @interval_rule("lu")
    def rule(layer, lb, ub):
        out_l, out_u = torch.relu(lb), torch.relu(ub)
        unstable = (lb < 0) & (ub > 0)
        return out_l, torch.where(unstable, out_u * shrinkage, out_u)

    return rule


class IBP(CertifiedMethod):
    """Robust loss = CE on IBP lower bounds of the margins over the full eps-ball.

    Args (besides :class:`CertifiedMethod`'s): ``relu_shrinkage`` in [0, 1] (None = off): shrink
    unstable ReLU outputs in the training bounds (never in certification)."""

    def __init__(self, *args, relu_shrinkage: Optional[float] = None, **kwargs):
        super().__init__(*args, **kwargs)
        check(relu_shrinkage is None or 0 <= relu_shrinkage <= 1, f"relu_shrinkage must be in [0, 1], got {relu_shrinkage}")
        self.relu_shrinkage = relu_shrinkage
        self.rules = INTERVAL_RULES if relu_shrinkage is None else {**INTERVAL_RULES, torch.nn.ReLU: shrinking_relu_rule(relu_shrinkage)}

    def propagate(self, lb, ub, spec, trace):
        return self.margins(lambda s: margin_bounds_ibp(self.net, lb, ub, s, trace=trace, rules=self.rules), spec)
