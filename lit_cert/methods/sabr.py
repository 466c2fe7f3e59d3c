"""SABR (Mueller et al., 2023): IBP on a small box of radius ``lam * eps`` around a PGD point."""

from __future__ import annotations

import torch

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


class SABR(IBP):
    """IBP training on SABR's small adversarial box; ``lam = 1`` is exactly IBP.

    Args (besides :class:`IBP`'s): ``lam`` in (0, 1], ``pgd_steps``, ``pgd_restarts``.
    """

    def __init__(self, *args, lam: float = 0.4, pgd_steps: int = 8, pgd_restarts: int = 1, **kwargs):
        super().__init__(*args, **kwargs)
        if not 0 < lam <= 1:
            raise ConfigError(f"SABR lam must be in (0, 1], got {lam}")
        self.lam, self.pgd_steps, self.pgd_restarts = lam, pgd_steps, pgd_restarts

    def input_region(self, x, y, eps):
        return small_box(self, x, y, eps, self.lam, self.pgd_steps, self.pgd_restarts)
