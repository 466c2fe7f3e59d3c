"""Accuracy-type metrics: a fraction of samples with some property, reduced by summation."""

from __future__ import annotations

import torch
from torchmetrics import Metric

from lit_cert.bounds.spec import is_certified


class RateMetric(Metric):
    """Fraction of samples whose flag is true: states ``hits`` and ``total``, summed over ranks."""

    full_state_update = False
    is_differentiable = False
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

    def compute(self) -> torch.Tensor:
        if self.total == 0:
            return self.hits.new_zeros(()).float()
        return (self.hits / self.total).float()


class NaturalAccuracy(RateMetric):
    """Top-1 accuracy on clean inputs: ``update(logits, y)``."""

    def update(self, logits: torch.Tensor, y: torch.Tensor) -> None:  # type: ignore[override]
        self.update_flags(logits.argmax(dim=1) == y)


class CertifiedAccuracy(RateMetric):
    """Fraction certified: every margin lower bound to another class is > 0.

    ``update(margin_lb, y)`` with ``margin_lb`` of shape (B, K) from any sound bound method. A
    certified sample is also correctly classified, so this never exceeds natural accuracy."""

    def update(self, margin_lb: torch.Tensor, y: torch.Tensor) -> None:  # type: ignore[override]
        self.update_flags(is_certified(margin_lb, y))
