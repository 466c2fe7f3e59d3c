"""TAPS and STAPS (Mao et al., 2023): IBP through a feature extractor, PGD through the classifier.

The network is split into a feature extractor (bounded by IBP, giving a latent box) and a
classifier. For every margin, PGD searches the latent box for the point that makes that margin
smallest; the margins at those points estimate the worst case much more tightly than IBP (but
are not sound). Two gradient tricks, each an isolated autograd function:

* :class:`GradientLink` passes the gradient at a latent point to the latent box bounds it lies
  close to (a point within ``c`` of the box width from the upper bound sends gradient to the
  upper bound, weighted linearly by how close it is; the same for the lower bound).
* :class:`GradScale` multiplies the gradient of the TAPS loss by ``grad_scale``; the training
  loss is ``TAPS_loss * IBP_loss`` with the scale applied to the TAPS factor.

STAPS = TAPS on SABR's small input box.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from lit_cert.attacks import pgd_maximize
from lit_cert.bounds.box import flat_layers, interval_bounds
from lit_cert.bounds.spec import margin_spec, robust_cross_entropy
from lit_cert.errors import ConfigError
from lit_cert.layers import frozen_batch_stats
from lit_cert.methods.base import RobustLoss
from lit_cert.methods.ibp import IBP
from lit_cert.methods.sabr import small_box


class GradientLink(torch.autograd.Function):
    """Forward: the latent point ``z``. Backward: gradient to the box bounds ``lb``/``ub``."""

    @staticmethod
    def forward(ctx, lb, ub, z, c: float):
        ctx.save_for_backward(lb, ub, z)
        ctx.c = c
        return z.clone()

    @staticmethod
    def backward(ctx, grad):
        lb, ub, z = ctx.saved_tensors
        slack = (ctx.c * (ub - lb)).clamp(min=1e-12)
        to_ub = ((z - (ub - slack)) / slack).clamp(0, 1)
        to_lb = (((lb + slack) - z) / slack).clamp(0, 1)
        return grad * to_lb, grad * to_ub, None, None


class GradScale(torch.autograd.Function):
    """Identity forward; multiplies the gradient by ``alpha`` backward."""

    @staticmethod
    def forward(ctx, x, alpha: float):
        ctx.alpha = alpha
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.alpha, None


def split_index(layers: list[nn.Module], split: int, split_by: str) -> int:
    """Index of the first classifier layer in the flat layer list.

    ``split_by="relus"``: the classifier holds the last ``split`` ReLU layers (and starts right
    after the ReLU before them); ``split_by="layer"``: ``split`` is the index itself."""
    if split_by == "layer":
        idx = split
    elif split_by == "relus":
        relus = [i for i, m in enumerate(layers) if isinstance(m, nn.ReLU)]
        if not 0 <= split <= len(relus):
            raise ConfigError(f"TAPS split of {split} ReLU layers is outside the network, which has {len(relus)}")
        idx = 0 if split == len(relus) else relus[-(split + 1)] + 1
    else:
        raise ConfigError(f"split_by must be 'relus' or 'layer', got {split_by!r}")
    if not 0 <= idx < len(layers) or not any(isinstance(m, nn.Linear) for m in layers[idx:]):
        raise ConfigError(f"TAPS split at layer {idx} is outside the network ({len(layers)} layers; the classifier must keep the last Linear)")
    return idx


class TAPS(IBP):
    """TAPS training.

    Args (besides :class:`IBP`'s):
        split, split_by: where the classifier starts (default: its last 1 ReLU layer).
        grad_scale: gradient scale of the TAPS loss (2-5 in the paper's settings).
        link_slack: ``c`` of the gradient link (fraction of the box width).
        pgd_steps, pgd_restarts: the latent attack.
    """

    def __init__(
        self,
        *args,
        split: int = 1,
        split_by: Literal["relus", "layer"] = "relus",
        grad_scale: float = 4.0,
        link_slack: float = 0.5,
        pgd_steps: int = 8,
        pgd_restarts: int = 1,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.split_at = split_index(flat_layers(self.net), split, split_by)
        if grad_scale <= 0 or not 0 < link_slack <= 1:
            raise ConfigError(f"grad_scale must be > 0 and link_slack in (0, 1], got {grad_scale}, {link_slack}")
        self.grad_scale, self.link_slack = grad_scale, link_slack
        self.pgd_steps, self.pgd_restarts = pgd_steps, pgd_restarts

    @property
    def feature_extractor(self) -> list[nn.Module]:
        return flat_layers(self.net)[: self.split_at]

    @property
    def classifier(self) -> nn.Sequential:
        return nn.Sequential(*flat_layers(self.net)[self.split_at :])

    def latent_box(self, lb, ub, record=None):
        return interval_bounds(self.feature_extractor, lb, ub, record=record)

    def latent_pgd_margins(self, l: torch.Tensor, u: torch.Tensor, spec: torch.Tensor) -> torch.Tensor:
        """Per margin, the PGD estimate of its minimum over the latent box, differentiable in l, u."""
        b, k = spec.shape[:2]
        rows = spec.reshape(b * k, k)
        lr, ur = l.repeat_interleave(k, 0), u.repeat_interleave(k, 0)
        classifier = self.classifier

        def negative_margin(z):
            return -(rows * classifier(z)).sum(-1)

        with frozen_batch_stats(self.net):
            z_star = pgd_maximize(negative_margin, lr.detach(), ur.detach(), steps=self.pgd_steps, restarts=self.pgd_restarts)
            z = GradientLink.apply(lr, ur, z_star, self.link_slack)
            return (rows * classifier(z)).sum(-1).view(b, k)

    def robust_loss(self, x, y, eps):
        lb, ub = self.input_region(x, y, eps)
        spec = margin_spec(y, self.num_classes, lb.dtype)
        record: dict | None = {} if self.wants_record(eps) else None
        l, u = self.latent_box(lb, ub, record)
        ibp_loss = robust_cross_entropy(interval_bounds(self.classifier, l, u, spec=spec, record=record)[0], y)
        taps_loss = robust_cross_entropy(self.latent_pgd_margins(l, u, spec), y)
        out = RobustLoss(GradScale.apply(taps_loss, self.grad_scale) * ibp_loss)
        out.logs = {"ibp_loss": ibp_loss.detach(), "taps_loss": taps_loss.detach()}
        if record is not None:
            self.bound_penalty(out, record, eps)
        return out


class STAPS(TAPS):
    """TAPS on SABR's small box of radius ``lam * eps``; ``lam = 1`` is TAPS."""

    def __init__(self, *args, lam: float = 0.4, **kwargs):
        super().__init__(*args, **kwargs)
        if not 0 < lam <= 1:
            raise ConfigError(f"STAPS lam must be in (0, 1], got {lam}")
        self.lam = lam

    def input_region(self, x, y, eps):
        return small_box(self, x, y, eps, self.lam, self.pgd_steps, self.pgd_restarts)
