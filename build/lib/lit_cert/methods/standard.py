"""Standard (natural) training: the baseline every robust method is compared with."""

from __future__ import annotations

import torch

from lit_cert.methods.base import CertifiedMethod


class Standard(CertifiedMethod):
    """Minimises the natural cross-entropy only (eps and kappa do not affect training).

    Validation still reports certified accuracy at ``eps_test`` (usually ~0): the reference point.
    """

    TRAINING_BOUNDS_MARGINS = False
    REUSES_BATCH_STATISTICS = False
    USES_KAPPA = False

    @property
    def checkpoint_monitor(self) -> str:
        return "val/nat_acc"

    def natural_loss_used(self) -> bool:
        return True

    def task_loss(self, x: torch.Tensor, y: torch.Tensor, nat: torch.Tensor, logits: torch.Tensor):
        return nat, {}, None
