"""TAPS and STAPS (Mao et al., NeurIPS 2023): IBP through a feature extractor, PGD through the
classifier.

The network is split into a feature extractor (bounded by IBP, giving a latent box) and a
classifier. For every margin, PGD searches the latent box for the point that makes that margin
smallest; the margins at those points estimate the worst case much more tightly than IBP (but
are not sound). Two gradient tricks, each an isolated autograd function:

* :class:`GradientLink` passes the gradient at a latent point to the latent box bounds it lies
  close to (within ``c`` times the box width of the upper bound: a share growing linearly to 1
  at the bound; the same for the lower bound) -- CTBench's rectified linear gradient link.
* :class:`GradScale` multiplies the gradient of the TAPS loss by ``grad_scale``; the training
  loss is ``TAPS_loss * IBP_loss`` with the scale applied to the TAPS factor.

As in CTBench and the TAPS authors' code, the eps ramp (and the warm-up before it) trains with
plain IBP on the method's region; TAPS starts when eps has reached ``eps_train``
(``ibp_during_ramp: false`` starts it at once). STAPS = TAPS on SABR's small input box.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from torch import nn

from lit_cert.attacks import pgd_maximize
from lit_cert.bounds.box import flat_layers, interval_bounds
from lit_cert.bounds.spec import robust_cross_entropy
from lit_cert.errors import ConfigError
from lit_cert.layers import frozen_batch_stats
from lit_cert.methods.adversarial import AttackStepSize, AttackSteps
from lit_cert.options import NonNegativeInt, PositiveFloat, Range, check_arguments
from lit_cert.methods.base import RobustLoss
from lit_cert.methods.ibp import IBP

from lit_cert.methods.sabr import BoxSize, SmallBoxRegion


class GradientLink(torch.autograd.Function):
    """Forward: the latent point ``z``. Backward: gradient to the box bounds ``lb``/``ub``
    (CTBench's ``_RectifiedLinearGradientLink``, tolerance ``tol`` for degenerate boxes)."""

    @staticmethod
    def forward(ctx, lb, ub, z, c: float, tol: float = 1e-5):
        ctx.save_for_backward(lb, ub, z)
        ctx.c, ctx.tol = c, tol
        return z.clone()

    @staticmethod
    def backward(ctx, grad):
        lb, ub, z = ctx.saved_tensors
        c, tol = ctx.c, ctx.tol
        slack = c * (ub - lb)
        near_ub = ub - slack
        to_ub = (z >= near_ub) * (z - near_ub).clamp(min=0.5 * tol) / slack.clamp(min=tol)
        near_lb = lb + slack
        to_lb = (z <= near_lb) * (near_lb - z).clamp(min=0.5 * tol) / slack.clamp(min=tol)
        return grad * to_lb, grad * to_ub, None, None, None


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
    after the ReLU before them; 0 = the classifier is the last affine block after the final
    ReLU); ``split_by="layer"``: ``split`` is the index itself."""
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

    Besides :class:`IBP`'s arguments; defaults as CTBench's ``TAPSModelWrapper``.

    Args:
        split: where the classifier starts (default: its last 1 ReLU layer, CTBench's CNN7 block
            split "17 4"): ReLU layers or a layer index, by ``split_by``.
        split_by: ``relus`` or ``layer``.
        grad_scale: gradient scale of the TAPS loss relative to the IBP loss (CTBench's
            ``taps_grad_scale``, the TAPS authors' ``alpha_box``; default 1, their examples 2-5).
        link_slack: ``c`` of the gradient link (fraction of the box width; CTBench's ``soft_thre``).
        pgd_steps: steps of the latent attack (step ``max(0.2, 2 / steps)`` times the box width,
            CTBench's decay).
        pgd_restarts: its random restarts.
        pgd_step_size: overrides the step fraction.
        ibp_during_ramp: plain IBP until the eps ramp is over (CTBench and the TAPS authors).
    """

    def __init__(
        self,
        *args,
        split: NonNegativeInt = 1,
        split_by: Literal["relus", "layer"] = "relus",
        grad_scale: PositiveFloat = 1.0,
        link_slack: Annotated[float, Range(0, 1, lo_open=True)] = 0.5,
        pgd_steps: AttackSteps = 10,
        pgd_restarts: AttackSteps = 1,
        pgd_step_size: AttackStepSize = None,
        ibp_during_ramp: bool = True,
        **kwargs,
    ):
        check_arguments()
        super().__init__(*args, **kwargs)
        self.split_at = split_index(flat_layers(self.net), split, split_by)
        self.grad_scale, self.link_slack = grad_scale, link_slack
        self.pgd_steps, self.pgd_restarts, self.pgd_step_size = pgd_steps, pgd_restarts, pgd_step_size
        self.ibp_during_ramp = ibp_during_ramp

    @property
    def feature_extractor(self) -> list[nn.Module]:
        return flat_layers(self.net)[: self.split_at]

    @property
    def classifier(self) -> nn.Sequential:
        return nn.Sequential(*flat_layers(self.net)[self.split_at :])

    def latent_box(self, lb, ub, trace=None):
        return interval_bounds(self.feature_extractor, lb, ub, trace=trace, rules=self.rules)

    def latent_pgd_margins(self, l: torch.Tensor, u: torch.Tensor, spec: torch.Tensor) -> torch.Tensor:
        """Per margin, the PGD estimate of its minimum over the latent box, differentiable in l, u."""
        b, k = spec.shape[:2]
        rows = spec.reshape(b * k, k)
        lr, ur = l.repeat_interleave(k, 0), u.repeat_interleave(k, 0)
        classifier = self.classifier

        def negative_margin(z):
            return -(rows * classifier(z)).sum(-1)

        with frozen_batch_stats(self.net):
            z_star = pgd_maximize(negative_margin, lr, ur, steps=self.pgd_steps, restarts=self.pgd_restarts,
                                  policy="latent", step_size=self.pgd_step_size)
            z = GradientLink.apply(lr, ur, z_star, self.link_slack)
            return (rows * classifier(z)).sum(-1).view(b, k)

    def taps_active(self) -> bool:
        return not (self.ibp_during_ramp and float(self.ramp_progress) < 1)

    def bound_loss(self, x, y, lb, ub, eps, trace):
        if not self.taps_active():
            return super().bound_loss(x, y, lb, ub, eps, trace)  # plain IBP on the region
        spec = self.spec(y, lb.dtype)
        l, u = self.latent_box(lb, ub, trace)
        classifier_ibp = self.margins(lambda rows: self.bound.lower(self.classifier, l, u, rows, trace, purpose="train"), spec)
        ibp_loss = robust_cross_entropy(classifier_ibp, y)
        taps_loss = robust_cross_entropy(self.latent_pgd_margins(l, u, spec), y)
        return RobustLoss(GradScale.apply(taps_loss, self.grad_scale) * ibp_loss,
                          {"ibp_loss": ibp_loss.detach(), "taps_loss": taps_loss.detach()})


class STAPS(SmallBoxRegion, TAPS):
    """TAPS on SABR's small box of relative size ``lam``; ``lam = 1`` is TAPS.

    The small box follows CTBench and the TAPS authors' STAPS (``box_convention: ctbench``,
    their 0.2-step attack of ``box_pgd_steps`` steps); ``box_convention: sabr`` uses SABR's.

    Besides :class:`TAPS`'s arguments:

    Args:
        lam: the small box's relative size, in (0, 1].
        box_convention: ``ctbench`` or ``sabr``.
        box_pgd_steps: steps of the attack that places the box.
        box_pgd_policy: ``ctbench`` or ``sabr``.
    """

    def __init__(self, *args, lam: BoxSize = 0.4, box_convention: Literal["sabr", "ctbench"] = "ctbench",
                 box_pgd_steps: AttackSteps = 10, box_pgd_policy: Literal["sabr", "ctbench"] = "ctbench", **kwargs):
        check_arguments()
        super().__init__(*args, **kwargs)
        self.init_small_box(lam, box_convention, box_pgd_steps, self.pgd_restarts, None, box_pgd_policy)
