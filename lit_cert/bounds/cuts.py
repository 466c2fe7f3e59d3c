"""Joint ReLU constraints as terms of a back-substituted lower bound (MN-BaB's Lagrangian use).

A :class:`ReluCuts` holds, for one ReLU layer and a batch of boxes, constraints
``wx . x[index] + wy . y[index] <= c`` over small groups of that layer's neurons (inputs ``x``,
outputs ``y = relu(x)``; built by :mod:`lit_cert.bounds.multi_neuron`). They hold for every input
of the box, so for multipliers ``gamma >= 0``

    f  >=  f + sum_p gamma_p (wx_p . x + wy_p . y - c_p)

on the whole box (each added term is <= 0 there): a lower bound of the right-hand side is a lower
bound of ``f``. In the backward walk that is three changes at the layer: ``gamma wy`` is added to
the coefficients of ``y`` before the ReLU is relaxed, ``gamma wx`` to the coefficients of ``x``
after, and ``- gamma . c`` to the offset (:meth:`LinearBounds._walk` for output walks, with
``LinearBounds.cut_multipliers``). Any ``gamma >= 0`` is sound, so the multipliers are
optimised by projected gradient ascent like the lower slopes (``gamma = 0`` is the bound without
cuts). On a branch-and-bound subdomain the constraints still hold (it is a subset of the box).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ReluCuts:
    """Constraints of one ReLU layer: for sample ``b`` and constraint ``p``,
    ``sum_j wx[b, p, j] x[index[b, p, j]] + wy[b, p, j] y[index[b, p, j]] <= c[b, p]`` (flat
    neuron indices; a padding constraint is all zeros, ``0 <= c`` with ``c >= 0``). A batch of
    1 is shared by every sample (domain) of a walk."""

    index: torch.Tensor  # (B, P, k) int64
    wx: torch.Tensor  # (B, P, k)
    wy: torch.Tensor  # (B, P, k)
    c: torch.Tensor  # (B, P)

    def __len__(self) -> int:
        return int(self.c.shape[1])

    def to(self, dtype: torch.dtype, device) -> "ReluCuts":
        return ReluCuts(self.index.to(device), self.wx.to(device, dtype), self.wy.to(device, dtype), self.c.to(device, dtype))

    def _scatter(self, a: torch.Tensor, w: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        """``a`` (B, M, *shape) plus ``sum_p gamma[b, m, p] w[b, p, j]`` at ``index[b, p, j]``."""
        b, m = max(a.shape[0], gamma.shape[0]), gamma.shape[1]
        src = (gamma.unsqueeze(-1) * w.unsqueeze(1)).expand(b, m, *w.shape[1:]).reshape(b, m, -1)
        idx = self.index.reshape(self.index.shape[0], 1, -1).expand(b, m, -1)
        flat = a.expand(b, m, *a.shape[2:]).reshape(b, m, -1)
        return flat.scatter_add(2, idx, src).view(b, m, *a.shape[2:])

    def add_outputs(self, a: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        """The coefficients ``a`` of the layer's outputs with ``gamma wy`` added (before the ReLU
        is relaxed)."""
        return self._scatter(a, self.wy, gamma)

    def add_inputs(self, a: torch.Tensor, offset: torch.Tensor, gamma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The coefficients ``a`` of the layer's inputs with ``gamma wx`` added, and the offset
        with ``- gamma . c`` (after the ReLU is relaxed)."""
        return self._scatter(a, self.wx, gamma), offset - (gamma * self.c.unsqueeze(1)).sum(-1)

    def violation(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(B, P) ``wx . x + wy . y - c`` at inputs ``x`` and outputs ``y`` (B, *shape): <= 0
        where the constraints hold (tests, diagnostics)."""
        b = x.shape[0]
        idx = self.index.expand(b, *self.index.shape[1:]).reshape(b, -1)
        gx = x.reshape(b, -1).gather(1, idx).view(b, *self.index.shape[1:])
        gy = y.reshape(b, -1).gather(1, idx).view(b, *self.index.shape[1:])
        return (self.wx * gx + self.wy * gy).sum(-1) - self.c
