"""Training with expected tight bounds: loss ``CE(f(x)) + robust_weight * CE(z)``.

``z`` are the worst-case logits of the *expected* bounds (:mod:`lit_cert.bounds.expected`),
which are tight in expectation but not sound. The paper calls ``robust_weight`` kappa; note that
it weighs the *robust* term, unlike the kappa of the other methods. ``blocks`` chooses the
paper's blockwise propagation (``"ara"``, default) or the cheaper whole-network masking
(``"whole"``), see :mod:`lit_cert.bounds.expected`. Validation and test still
certify with a sound certifier (IBP by default): expected bounds are never reported as certified.
"""

from __future__ import annotations

from typing import Literal

import torch

from lit_cert.bounds.expected import expected_margin_lower
from lit_cert.bounds.spec import margin_spec, robust_cross_entropy
from lit_cert.errors import ConfigError
from lit_cert.methods.base import CertifiedMethod


class ExpectedTightBounds(CertifiedMethod):
    """Natural CE plus ``robust_weight`` times the CE on expected-bound worst-case logits."""

    def __init__(self, *args, robust_weight: float = 1.0, blocks: Literal["ara", "whole"] = "ara", **kwargs):
        super().__init__(*args, **kwargs)
        if robust_weight < 0:
            raise ConfigError(f"robust_weight must be >= 0, got {robust_weight}")
        if blocks not in ("ara", "whole"):
            raise ConfigError(f"blocks must be 'ara' (the paper's blockwise bounds) or 'whole', got {blocks!r}")
        self.robust_weight, self.blocks = robust_weight, blocks

    @property
    def checkpoint_monitor(self) -> str:
        # expected bounds are not sound, so IBP-certified accuracy usually stays ~0
        return self.empirical_monitor

    def natural_loss_used(self) -> bool:
        return True

    def task_loss(self, x: torch.Tensor, y: torch.Tensor, nat: torch.Tensor):
        eps = float(self.eps)
        logs = {"eps": eps}
        if eps <= 0 or self.robust_weight == 0:
            return nat, logs, None
        lb, ub = self.input_region(x, y, eps)
        rob = robust_cross_entropy(expected_margin_lower(self.net, lb, ub, margin_spec(y, self.num_classes, lb.dtype), self.blocks), y)
        logs["expected_rob_loss"] = rob.detach()
        return nat + self.robust_weight * rob, logs, None
