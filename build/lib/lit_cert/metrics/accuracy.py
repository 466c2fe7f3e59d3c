"""Accuracy-type metrics: a fraction of samples with some property, reduced by summation."""

from __future__ import annotations

import torch
from torchmetrics import Metric

from lit_cert.bounds.spec import is_certified


class SummedMetric(Metric):
    """Base of lit_cert's metrics: states summed over DDP ranks, each update independent of the
    others (so torchmetrics runs one update per forward), not differentiable."""

    full_state_update = False
    is_differentiable = False


class RateMetric(SummedMetric):
    """Fraction of samples whose flag is true: states ``hits`` and ``total``, summed over ranks."""

    higher_is_better = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.add_state("hits", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update_flags(self, flags: torch.Tensor) -> None:
        self.hits += flags.sum().to(self.hits.dtype)
        self.total += flags.numel()

    def update(self, flags: torch.Tensor) -> None:  # type: ignore[override]
        self.update_flags(flags)

    def update_from_net(self, net, x: torch.Tensor, y: torch.Tensor) -> None:
        """Update from a network and a batch (what :func:`lit_cert.evaluation.evaluate` calls);
        every metric that can be computed from them says how."""
        raise NotImplementedError(f"{type(self).__name__} cannot be updated from (net, x, y)")

    def compute(self) -> torch.Tensor:
        if self.total == 0:
            return self.hits.new_zeros(()).float()
        return (self.hits / self.total).float()


class NaturalAccuracy(RateMetric):
    """Top-1 accuracy on clean inputs: ``update(logits, y)``."""

    def update(self, logits: torch.Tensor, y: torch.Tensor) -> None:  # type: ignore[override]
        self.update_flags(logits.argmax(dim=1) == y)

    def update_from_net(self, net, x, y) -> None:
        with torch.no_grad():
            self.update(net(x), y)


class CertifiedAccuracy(RateMetric):
    """Fraction certified: every margin lower bound to another class is > 0.

    ``update(margin_lb, y)`` with ``margin_lb`` of shape (B, K) from any sound bound method. A
    certified sample is also correctly classified, so this never exceeds natural accuracy. Given
    ``eps`` and a ``certifier`` (a name of the bound registry), ``update_from_net`` bounds the
    outward-rounded eps-box itself."""

    def __init__(self, eps: float | None = None, certifier: str = "ibp", **kwargs):
        super().__init__(**kwargs)
        self.eps, self.certifier = eps, certifier

    def update(self, margin_lb: torch.Tensor, y: torch.Tensor) -> None:  # type: ignore[override]
        self.update_flags(is_certified(margin_lb, y))

    def update_from_net(self, net, x, y) -> None:
        from lit_cert.bounds.region import certified_box
        from lit_cert.bounds.registry import compute_bounds
        from lit_cert.bounds.spec import margin_spec

        if self.eps is None:
            raise ValueError("CertifiedAccuracy.update_from_net needs eps (and a certifier) at construction")
        with torch.no_grad():
            k = net(x[:1]).shape[1]
            self.update(compute_bounds(net, *certified_box(x, self.eps), margin_spec(y, k, x.dtype), self.certifier), y)
