"""SABR (Mueller et al., 2023): IBP on a small box of radius ``lam * eps`` around a PGD point."""

from __future__ import annotations

import torch

from lit_cert.bounds.box import INTERVAL_RULES, margin_bounds_ibp
from lit_cert.bounds.region import linf_box
from lit_cert.errors import ConfigError
from lit_cert.methods.adversarial import attack_in_box
from lit_cert.methods.ibp import IBP


def small_box(method, x: torch.Tensor, y: torch.Tensor, eps: float, lam: float, steps: int, restarts: int):
    """SABR's region: a box of radius ``lam * eps`` whose centre PGD places inside the eps-ball.

    The centre ranges over ``[x - (1 - lam) eps, x + (1 - lam) eps]`` (so the small box stays in
    the eps-ball) and the box is clipped to [0, 1]: always a subset of the full region.
    """
    if lam >= 1:
        return linf_box(x, eps)
    tau = lam * eps
    c_lb, c_ub = linf_box(x, eps - tau)
    center = attack_in_box(method.net, y, c_lb, c_ub, steps, restarts, None)
    return linf_box(center, tau)


def shrinking_relu_rule(shrinkage: float):
    """ReLU interval rule for SABR's optional ReLU shrinkage: the output of an *unstable* neuron
    is ``[0, shrinkage * u]`` instead of ``[0, u]`` (the upper bound multiplied by the factor, as
    CTBench documents its ``relu_shrinkage``); stable neurons are untouched. A training
    heuristic that, like the small box itself, gives no sound bound of the full region."""

    def rule(layer, lb, ub):
        out_l, out_u = torch.relu(lb), torch.relu(ub)
        unstable = (lb < 0) & (ub > 0)
        return out_l, torch.where(unstable, out_u * shrinkage, out_u)

    return rule


class SABR(IBP):
    """IBP training on SABR's small adversarial box; ``lam = 1`` is exactly IBP.

    Args (besides :class:`IBP`'s): ``lam`` in (0, 1], ``pgd_steps``, ``pgd_restarts``, and
    ``relu_shrinkage`` in [0, 1] (None = off): shrink unstable ReLU outputs during training.
    """

    def __init__(
        self, *args, lam: float = 0.4, pgd_steps: int = 8, pgd_restarts: int = 1, relu_shrinkage: float | None = None, **kwargs
    ):
        super().__init__(*args, **kwargs)
        if not 0 < lam <= 1:
            raise ConfigError(f"SABR lam must be in (0, 1], got {lam}")
        if relu_shrinkage is not None and not 0 <= relu_shrinkage <= 1:
            raise ConfigError(f"relu_shrinkage must be in [0, 1], got {relu_shrinkage}")
        self.lam, self.pgd_steps, self.pgd_restarts = lam, pgd_steps, pgd_restarts
        self.relu_shrinkage = relu_shrinkage
        self._rules = INTERVAL_RULES if relu_shrinkage is None else {**INTERVAL_RULES, torch.nn.ReLU: shrinking_relu_rule(relu_shrinkage)}

    def input_region(self, x, y, eps):
        return small_box(self, x, y, eps, self.lam, self.pgd_steps, self.pgd_restarts)

    def propagate(self, lb, ub, spec, record):
        return margin_bounds_ibp(self.net, lb, ub, spec, record=record, rules=self._rules)
