"""Training with a linear relaxation: CROWN (DeepPoly), DeepZ or hBox (paradox paper, Table 2).

Intermediate bounds come from the same relaxation, so the cost grows with the number of neurons:
meant for the paradox paper's FC/CONV networks, not CNN7 (use CROWN-IBP there).
"""

from __future__ import annotations

from typing import Literal

from lit_cert.bounds.backsub import RELAXATIONS, linear_bounds
from lit_cert.errors import check
from lit_cert.methods.base import CertifiedMethod


class RelaxationTraining(CertifiedMethod):
    """Robust CE on margin lower bounds of the chosen relaxation (``crown``, ``deepz``, ``hbox``)."""

    def __init__(self, *args, relaxation: Literal["crown", "deepz", "hbox"] = "crown", **kwargs):
        super().__init__(*args, **kwargs)
        check(relaxation in RELAXATIONS, f"relaxation must be one of {RELAXATIONS}, got {relaxation!r}")
        self.relaxation = relaxation

    def propagate(self, lb, ub, spec, trace):
        return self.margins(lambda s: linear_bounds(self.net, lb, ub, s, self.relaxation, "same", need_upper=False)[0], spec)
