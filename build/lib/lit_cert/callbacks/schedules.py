"""eps, kappa and beta schedules, updated every optimisation step.

One window for all three: ``warmup_epochs`` at eps = 0, then ``ramp_epochs`` in which eps grows
to the method's ``eps_train`` (linearly, or "smooth" as in Shi et al.: polynomial growth for the
first ``smooth_mid`` of the ramp, then linear, continuous in value and slope), kappa moves
linearly from ``kappa_start`` to ``kappa_end`` and beta from ``beta_start`` to ``beta_end``.
Afterwards all stay at their final values.

The schedule is a function of the (fractional) epochs done, counted from ``trainer.global_step``
with the number of optimiser steps per epoch. The checkpoint keeps that count's anchor and the
values last applied, so a resumed run continues on the same curve -- even when the epoch length
changed (another batch size, ``train_size`` or ``limit_train_batches``): the schedule then
continues from the epoch it had reached, with the new length, and says so -- and even its first
validation uses the same eps.
"""

from __future__ import annotations

import math
import sys
from typing import Annotated, Any, Literal, Optional

import lightning as L
from lightning.pytorch.callbacks import Callback

from lit_cert.errors import ConfigError
from lit_cert.options import NonNegativeFloat, Radius, Range, UnitInterval, check_arguments


def linear_ramp(t: float) -> float:
    """Fraction of the ramp done: ``t`` clamped to [0, 1]."""
    return min(max(t, 0.0), 1.0)


def smooth_ramp(t: float, mid: float = 0.25, exponent: float = 4.0) -> float:
    """Shi et al.'s smoothed ramp on [0, 1]: ``alpha * t**exponent`` up to ``mid``, then linear.

    ``alpha = 1 / (mid**p + p * mid**(p-1) * (1 - mid))`` makes the value reach 1 at t = 1 with
    the linear part continuing the polynomial's value and slope at ``mid``.
    """
    t = linear_ramp(t)
    p = exponent
    if not 0 < mid < 1:
        return t
    alpha = 1.0 / (mid**p + p * mid ** (p - 1) * (1 - mid))
    if t <= mid:
        return alpha * t**p
    return alpha * mid**p + alpha * p * mid ** (p - 1) * (t - mid)


class CertifiedSchedule(Callback):
    """Before every training step, hands the method its schedule values (:meth:`values_at`);
    :meth:`CertifiedMethod.apply_schedule` sets ``eps``, ``kappa``, ``beta``, ``ramp_progress``
    (fraction of the eps ramp done, 0 in warm-up) and ``epochs_done`` from them.

    Args:
        warmup_epochs: epochs of standard training (eps = 0) before the ramp.
        ramp_epochs: epochs over which eps grows from ``eps_start`` to ``eps_train`` (0 = jump at once).
        eps_start: eps (pixel units) at the start of the ramp (Wong & Kolter's and the paradox
            paper's SVHN/CIFAR DeepZ/hBox/CROWN runs start at 0.001); 0 during warm-up anyway.
        shape: ``"linear"`` or ``"smooth"`` growth of eps.
        smooth_mid: the smooth shape's switch point (fraction of the ramp).
        smooth_exponent: the smooth shape's polynomial degree.
        kappa_start: weight of the natural loss (loss = kappa*nat + (1-kappa)*robust) at the
            start of the ramp (Gowal et al.'s convention: 1 -> 0.5).
        kappa_end: ... at its end (null: kappa_start), moved linearly over the ramp.
        beta_start: CROWN-IBP mixing weight at the start of the ramp.
        beta_end: ... at its end, moved linearly over the ramp.
    Epoch counts may be fractional; they are converted to steps with the number of training
    batches per epoch.
    """

    def __init__(
        self,
        warmup_epochs: NonNegativeFloat = 0.0,
        ramp_epochs: NonNegativeFloat = 0.0,
        shape: Literal["linear", "smooth"] = "smooth",
        smooth_mid: Annotated[float, Range(0, 1, lo_open=True, hi_open=True)] = 0.25,
        smooth_exponent: Annotated[float, Range(1)] = 4.0,
        eps_start: Radius = 0.0,
        kappa_start: UnitInterval = 0.0,
        kappa_end: Optional[UnitInterval] = None,
        beta_start: UnitInterval = 1.0,
        beta_end: UnitInterval = 0.0,
    ):
        check_arguments()
        kappa_end = kappa_start if kappa_end is None else kappa_end
        self.warmup_epochs, self.ramp_epochs, self.shape, self.eps_start = warmup_epochs, ramp_epochs, shape, eps_start
        self.smooth_mid, self.smooth_exponent = smooth_mid, smooth_exponent
        self.kappa_start, self.kappa_end = kappa_start, kappa_end
        self.beta_start, self.beta_end = beta_start, beta_end
        self.steps_per_epoch: Optional[int] = None
        #: (step, epochs done at that step): epochs(step) = epochs + (step - anchor step) / steps_per_epoch
        self.anchor: tuple[int, float] = (0, 0.0)
        self.applied: dict[str, float] = {}

    # ------------------------------------------------------------------ the curve
    def epochs_at(self, step: int) -> float:
        """Fractional epochs done at optimiser step ``step``."""
        spe = self.steps_per_epoch or 1
        return self.anchor[1] + (step - self.anchor[0]) / spe

    def progress(self, step: int) -> tuple[float, bool]:
        """(fraction of the ramp done at ``step``, whether still in warm-up)."""
        epochs = self.epochs_at(step)
        if epochs < self.warmup_epochs:
            return 0.0, True
        if self.ramp_epochs <= 0:
            return 1.0, False
        return linear_ramp((epochs - self.warmup_epochs) / self.ramp_epochs), False

    def values_at(self, step: int) -> dict[str, float]:
        """What the schedule says at an optimiser step: the ramp ``progress`` (0 in warm-up), the
        ``eps_fraction`` of the way from ``eps_start`` to the method's eps_train (the ramp's
        shape applied), ``warmup``, ``kappa``, ``beta`` and ``epochs`` (fractional epochs done).
        The method turns these into its eps (:meth:`CertifiedMethod.apply_schedule`): the
        schedule owns the progress, the method owns eps_train."""
        t, warm = self.progress(step)
        frac = 0.0 if warm else (smooth_ramp(t, self.smooth_mid, self.smooth_exponent) if self.shape == "smooth" else t)
        return {
            "step": step,
            "eps_fraction": frac,
            "eps_start": self.eps_start,
            "kappa": self.kappa_start + (self.kappa_end - self.kappa_start) * t,
            "beta": self.beta_start + (self.beta_end - self.beta_start) * t,
            "progress": t,
            "warmup": warm,
            "epochs": self.epochs_at(step),
        }

    def apply(self, pl_module: L.LightningModule, step: int) -> None:
        self.applied = self.values_at(step)
        pl_module.apply_schedule(self.applied)

    def check_method(self, pl_module: L.LightningModule) -> None:
        """Refuse kappa / beta settings the method would ignore (a user setting ``kappa_start: 1``
        for COLT or expected bounds, or a beta ramp for IBP, would otherwise see it logged and
        applied to nothing). Defaults (kappa 0 -> 0, beta 1 -> 0) are always accepted."""
        name = type(pl_module).__name__
        if not getattr(pl_module, "USES_KAPPA", True) and (self.kappa_start, self.kappa_end) != (0.0, 0.0):
            raise ConfigError(f"schedule.kappa_start/kappa_end ({self.kappa_start} -> {self.kappa_end}) weigh the natural "
                              f"loss of certified training; {name} does not use kappa: leave them unset")
        if not getattr(pl_module, "USES_BETA", False) and (self.beta_start, self.beta_end) != (1.0, 0.0):
            raise ConfigError(f"schedule.beta_start/beta_end ({self.beta_start} -> {self.beta_end}) mix CROWN-IBP and IBP "
                              f"bounds; {name} does not use beta (CROWNIBP does): leave them unset")

    # ------------------------------------------------------------------ hooks
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.check_method(pl_module)
        if self.applied and "eps_fraction" not in self.applied:  # a checkpoint of an older version
            self.applied = self.values_at(int(self.applied.get("step", 0)))
        # restored from a checkpoint: continue exactly where we stopped; else the first step's values
        pl_module.apply_schedule(self.applied or self.values_at(0))

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        batches = trainer.num_training_batches
        if not isinstance(batches, int) or math.isinf(batches):
            batches = max(int(trainer.max_steps), 1) if trainer.max_steps and trainer.max_steps > 0 else 1
        steps = max(1, batches // max(1, trainer.accumulate_grad_batches))
        previous = self.steps_per_epoch
        if previous is not None and previous != steps:  # resumed with another epoch length
            step = int(trainer.global_step)
            self.anchor = (step, self.epochs_at(step))
            if trainer.is_global_zero:
                print(f"lit_cert: the epoch length changed from {previous} to {steps} optimiser steps; the eps/kappa/beta "
                      f"schedule continues from epoch {self.anchor[1]:.3f}, where it was", file=sys.stderr)
        self.steps_per_epoch = steps

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        self.apply(pl_module, trainer.global_step)

    def state_dict(self) -> dict[str, Any]:
        return {"steps_per_epoch": self.steps_per_epoch, "anchor": list(self.anchor), "applied": dict(self.applied)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.steps_per_epoch = state_dict.get("steps_per_epoch", self.steps_per_epoch)
        anchor = state_dict.get("anchor", (0, 0.0))  # checkpoints before 0.2 counted from step 0
        self.anchor = (int(anchor[0]), float(anchor[1]))
        self.applied = dict(state_dict.get("applied", {}))
