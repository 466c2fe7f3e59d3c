"""Training with a linear relaxation: CROWN (DeepPoly), DeepZ or hBox (paradox paper, Table 2).

Intermediate bounds come from the same relaxation, so the cost grows with the number of neurons:
meant for the paradox paper's FC/CONV networks, not CNN7 (use CROWN-IBP there).
"""

from __future__ import annotations

from typing import Literal, Optional

from lit_cert.bounds.registry import bound_spec
from lit_cert.methods.base import CertifiedMethod
from lit_cert.options import check_arguments


class RelaxationTraining(CertifiedMethod):
    """Robust CE on margin lower bounds of the chosen relaxation (``crown``, ``crown-0``, ``deepz``, ``hbox``).

    Args:
        relaxation: the ReLU relaxation, also used for every intermediate bound.
        sparse_intermediate: back-substitute only the neurons not proven stable (IBP, interval step) for intermediate
            bounds (:mod:`lit_cert.bounds.backsub`). ``None`` (default) uses it only where it is
            provably the paradox authors' dense computation: hBox, whose bounds always lie inside
            IBP's. For CROWN and DeepZ a neuron that IBP proves stable can be unstable under the
            relaxation's own (looser) bounds on trained networks; the sparse margin bounds then
            differ from the reference's -- usually tighter, sometimes looser (CROWN's adaptive
            slopes of later neurons depend on the changed bounds), always sound -- so ``true``
            is an opt-in speed-up with a different loss (effect measured in
            benchmarks/RESULTS.md), never the default.
    """

    def __init__(self, *args, relaxation: Literal["crown", "crown-0", "deepz", "hbox"] = "crown",
                 sparse_intermediate: Optional[bool] = None, **kwargs):
        check_arguments()
        super().__init__(*args, **kwargs)
        self.relaxation = relaxation
        self.sparse = relaxation == "hbox" if sparse_intermediate is None else bool(sparse_intermediate)
        self.bound = bound_spec(relaxation, sparse=self.sparse)  # e.g. crown(sparse=False): the registry's computation

    def propagate(self, lb, ub, spec, trace):
        return self.margins(lambda rows: self.bound.lower(self.net, lb, ub, rows, trace, purpose="train"), spec)


class LPRelaxationTraining(CertifiedMethod):
    """Robust CE on margin lower bounds of an LP relaxation: ``triangle`` (the convex hull of each
    ReLU) or ``parallelogram`` (upper lines of slope 0 and 1), seed 002 Sec. 5.2 / App. K.1.

    Every bound is a linear program per unstable neuron and sample (:mod:`lit_cert.bounds.lp`),
    differentiated through the optimal primal-dual pair -- tiny networks only (the paper: a
    2x20 network on 16 inputs; ``data.downsample: 4`` gives 16 inputs here).

    Args:
        relaxation: ``triangle`` or ``parallelogram``.
        lp_backend: ``auto`` (highspy if installed, else scipy), ``highspy`` or ``scipy``.
    """

    def __init__(self, *args, relaxation: Literal["triangle", "parallelogram"] = "triangle",
                 lp_backend: Literal["auto", "highspy", "scipy"] = "auto", **kwargs):
        check_arguments()
        super().__init__(*args, **kwargs)
        self.relaxation, self.lp_backend = relaxation, lp_backend
        self.bound = bound_spec(relaxation, lp_backend=lp_backend)

    def propagate(self, lb, ub, spec, trace):
        return self.margins(lambda rows: self.bound.lower(self.net, lb, ub, rows, trace, purpose="train"), spec)
