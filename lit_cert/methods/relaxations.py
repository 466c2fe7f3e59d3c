"""Training with a linear relaxation: CROWN (DeepPoly), DeepZ or hBox (paradox paper, Table 2).

Intermediate bounds come from the same relaxation, so the cost grows with the number of neurons:
meant for the paradox paper's FC/CONV networks, not CNN7 (use CROWN-IBP there).
"""

from __future__ import annotations

from typing import Literal, Optional

from lit_cert.bounds.backsub import RELAXATIONS, linear_bounds
from lit_cert.errors import check
from lit_cert.methods.base import CertifiedMethod


class RelaxationTraining(CertifiedMethod):
    """Robust CE on margin lower bounds of the chosen relaxation (``crown``, ``crown-0``, ``deepz``, ``hbox``).

    Args:
        relaxation: the ReLU relaxation, also used for every intermediate bound.
        sparse_intermediate: back-substitute only the IBP-unstable neurons for intermediate
            bounds (:mod:`lit_cert.bounds.backsub`). ``None`` (default) uses it only where it is
            provably the paradox authors' dense computation: hBox, whose bounds always lie inside
            IBP's. For CROWN and DeepZ a neuron that IBP proves stable can be unstable under the
            relaxation's own (looser) bounds on trained networks; the sparse bounds are then
            tighter than the reference's, so ``true`` is an opt-in speed-up (effect measured in
            benchmarks/RESULTS.md), never the default.
    """

    def __init__(self, *args, relaxation: Literal["crown", "crown-0", "deepz", "hbox"] = "crown",
                 sparse_intermediate: Optional[bool] = None, **kwargs):
        super().__init__(*args, **kwargs)
        check(relaxation in RELAXATIONS, f"relaxation must be one of {RELAXATIONS}, got {relaxation!r}")
        self.relaxation = relaxation
        self.sparse = relaxation == "hbox" if sparse_intermediate is None else bool(sparse_intermediate)

    def propagate(self, lb, ub, spec, trace):
        return self.margins(
            lambda s: linear_bounds(self.net, lb, ub, s, self.relaxation, "same", need_upper=False, sparse=self.sparse)[0], spec
        )
