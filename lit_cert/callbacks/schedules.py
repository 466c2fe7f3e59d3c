"""eps, kappa and beta schedules, updated every optimisation step.

One window for all three: ``warmup_epochs`` at eps = 0, then ``ramp_epochs`` in which eps grows
to the method's ``eps_train`` (linearly, or "smooth" as in Shi et al.: polynomial growth for the
first ``smooth_mid`` of the ramp, then linear, continuous in value and slope), kappa moves
linearly from ``kappa_start`` to ``kappa_end`` and beta from ``beta_start`` to ``beta_end``.
Afterwards all stay at their final values.

The schedule is a function of ``trainer.global_step`` (restored on resume), and the callback
also checkpoints the values it last applied, so a resumed run continues on the same curve and
even its first validation uses the same eps.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Optional

import lightning as L
from lightning.pytorch.callbacks import Callback

from lit_cert.errors import ConfigError


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
        smooth_mid, smooth_exponent: the smooth shape's switch point and polynomial degree.
        kappa_start, kappa_end: weight of the natural loss (loss = kappa*nat + (1-kappa)*robust),
            moved linearly over the ramp (Gowal et al.'s convention: 1 -> 0.5).
        beta_start, beta_end: CROWN-IBP mixing weight, moved linearly over the ramp.
    Epoch counts may be fractional; they are converted to steps with the number of training
    batches per epoch.
    """

    def __init__(
        self,
        warmup_epochs: float = 0.0,
        ramp_epochs: float = 0.0,
        shape: Literal["linear", "smooth"] = "smooth",
        smooth_mid: float = 0.25,
        smooth_exponent: float = 4.0,
        eps_start: float = 0.0,
        kappa_start: float = 0.0,
        kappa_end: Optional[float] = None,
        beta_start: float = 1.0,
        beta_end: float = 0.0,
    ):
        if not (math.isfinite(warmup_epochs) and math.isfinite(ramp_epochs) and warmup_epochs >= 0 and ramp_epochs >= 0):
            raise ConfigError(f"schedule.warmup_epochs and schedule.ramp_epochs must be >= 0, got {warmup_epochs}, {ramp_epochs}")
        if shape not in ("linear", "smooth"):
            raise ConfigError(f"schedule.shape must be 'linear' or 'smooth', got {shape!r}")
        if not 0 < smooth_mid < 1 or smooth_exponent < 1:
            raise ConfigError(f"schedule.smooth_mid must be in (0, 1) and smooth_exponent >= 1, got {smooth_mid}, {smooth_exponent}")
        kappa_end = kappa_start if kappa_end is None else kappa_end
        for name, v in (("kappa_start", kappa_start), ("kappa_end", kappa_end), ("beta_start", beta_start), ("beta_end", beta_end)):
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"schedule.{name} must be in [0, 1], got {v}")
        if not (math.isfinite(eps_start) and 0 <= eps_start <= 1):
            raise ConfigError(f"schedule.eps_start must be a radius in [0, 1], got {eps_start}")
        self.warmup_epochs, self.ramp_epochs, self.shape, self.eps_start = warmup_epochs, ramp_epochs, shape, eps_start
        self.smooth_mid, self.smooth_exponent = smooth_mid, smooth_exponent
        self.kappa_start, self.kappa_end = kappa_start, kappa_end
        self.beta_start, self.beta_end = beta_start, beta_end
        self.steps_per_epoch: Optional[int] = None
        self.applied: dict[str, float] = {}

    # ------------------------------------------------------------------ the curve
    def progress(self, step: int) -> tuple[float, bool]:
        """(fraction of the ramp done at ``step``, whether still in warm-up)."""
        spe = self.steps_per_epoch or 1
        warmup = self.warmup_epochs * spe
        ramp = self.ramp_epochs * spe
        if step < warmup:
            return 0.0, True
        if ramp <= 0:
            return 1.0, False
        return linear_ramp((step - warmup) / ramp), False

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
            "epochs": step / (self.steps_per_epoch or 1),
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
        self.steps_per_epoch = max(1, batches // max(1, trainer.accumulate_grad_batches))

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        self.apply(pl_module, trainer.global_step)

    def state_dict(self) -> dict[str, Any]:
        return {"steps_per_epoch": self.steps_per_epoch, "applied": dict(self.applied)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.steps_per_epoch = state_dict.get("steps_per_epoch", self.steps_per_epoch)
        self.applied = dict(state_dict.get("applied", {}))
