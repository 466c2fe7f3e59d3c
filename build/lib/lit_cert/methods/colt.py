"""COLT (Balunovic & Vechev, ICLR 2020): layer-wise training on latent adversarial examples.

Seed 000 (Mao et al.) Table 2 compares its tightness with PGD, SABR and IBP on COLT's 4-layer CNN
(:class:`lit_cert.models.ConvMed`). What the method does, as the authors' code implements it:

* Training runs in *stages* ``j = 0, 1, ...``; stage ``j`` attacks the network's latent space
  after ``j`` ReLU layers (stage 0: the input space, i.e. PGD). Every stage lasts
  ``stage_epochs`` epochs; the layers before the stage's latent space are frozen.
* The latent region is the DeepZ zonotope of that layer's outputs for the input box
  ``[x - eps, x + eps] ∩ [0, 1]``: each ReLU with bounds ``l < 0 < u`` becomes ``λ z + μ + μ e``
  with ``λ = u/(u-l)``, ``μ = -u l / (2 (u-l))`` and a new error term ``e ∈ [-1, 1]``; the bounds
  are estimated with Cauchy random projections (``n_rand_proj`` per error group: the median
  of ``|Σ g_i C_i|`` estimates ``||g||_1``), as the authors do for speed -- an estimate, used only
  to shape the attack region and the stability penalty, never to certify.
* The attack is PGD on the error coefficients (uniform start in ``[-1, 1]``, ``attack_steps``
  signed steps of ``attack_step_size``), maximising the CE of the layers after the latent space.
* Loss: ``nat_factor · CE_nat + (1 - nat_factor) · (κ · CE_adv(stage j) + (1 - κ) · CE_adv(stage
  j - 1))`` (stage -1 = the natural loss), with κ ramping from 0 to 1 over the stage's first
  ``mix_epochs``; plus ``κ · relu_stable · relu_stable_factor^j`` times the ReLU-stability
  penalty ``Σ max(-l, 0) max(u, 0)`` (per sample) of the next stage's ReLU layer.
* eps of stage ``j`` of ``S``: ``eps_factor^(S-1-j) · start_eps_factor · eps_train`` (larger in
  early stages). Optimiser (``optimizer: sgd``, momentum 0.9 in the authors' scripts): restarted
  at every stage with the learning rate times ``lr_stage_decay^j``, halved (``lr_step_factor``)
  every ``lr_step`` epochs after the mixing epochs.

Defaults follow the authors' CIFAR-10 8/255 script for ConvMed (stages at the input and after
the first two ReLU layers, 8 attack steps of 0.25, eps factors 1.05 / 1.2, lr decay 0.5 per
stage, relu_stable 0.003 x 1.5 per stage, 50 projections); their 200 epochs per stage and 60
mixing epochs are the config's choice (``stage_epochs``, ``mix_epochs``).
"""

from __future__ import annotations

from typing import Annotated, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lit_cert.bounds.affine import linear_part
from lit_cert.bounds.box import flat_layers
from lit_cert.bounds.region import linf_box
from lit_cert.errors import check
from lit_cert.methods.base import CertifiedMethod
from lit_cert.options import (NonEmpty, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Range, UnitInterval,
                              check_arguments)

Fraction = Annotated[float, Range(0, 1, lo_open=True)]


def _deepz(l: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(λ, μ) of DeepZ's ReLU: stable neurons exact, crossing ones ``λ z + μ ± μ``."""
    cross = (l < 0) & (u > 0)
    width = torch.where(cross, u - l, torch.ones_like(l))
    lam = torch.where(cross, u / width, (l >= 0).to(l.dtype))
    mu = torch.where(cross, -0.5 * u * l / width, torch.zeros_like(l))
    return lam, mu


def approx_bounds(layers: Sequence[nn.Module], x: torch.Tensor, eps: float, relus: int, k: int) -> list:
    """Cauchy-projection estimates (l, u) of the inputs of the first ``relus`` ReLU layers of the
    DeepZ zonotope of the box around ``x`` (the authors' ``compute_bounds_approx``)."""
    lb, ub = linf_box(x, eps)
    head, radius = (ub + lb) / 2, (ub - lb) / 2
    groups = [radius.unsqueeze(0) * torch.empty(k, *x.shape, dtype=x.dtype, device=x.device).cauchy_().clamp(-1e10, 1e10)]
    out = []
    for layer in layers:
        if isinstance(layer, nn.ReLU):
            if len(out) == relus:
                break
            l1 = sum(g.abs().median(dim=0).values for g in groups)
            l, u = head - l1, head + l1
            out.append((l, u))
            if len(out) == relus:
                break
            lam, mu = _deepz(l, u)
            head = head * lam + mu
            groups = [g * lam.unsqueeze(0) for g in groups]
            groups.append(mu.unsqueeze(0) * torch.empty(k, *head.shape, dtype=x.dtype, device=x.device).cauchy_().clamp(-1e10, 1e10))
        else:
            head = layer(head)
            groups = [linear_part(layer, g, 1) for g in groups]
    return out


class COLT(CertifiedMethod):
    """Convex layerwise adversarial training (module docstring).

    Besides :class:`CertifiedMethod`'s arguments:

    Args:
        stages: the latent spaces, as numbers of ReLU layers before them (default: 0 .. number of
            ReLU layers - 1, the authors' choice for ConvMed: input, after ReLU 1, after ReLU 2).
        stage_epochs: epochs per stage (the run's ``max_epochs`` should be ``stages x this``).
        mix_epochs: epochs over which κ goes from 0 (previous stage's loss) to 1 (this stage's).
        eps_factor: stage eps ``eps_factor^(S-1-j) · start_eps_factor · eps_train``.
        start_eps_factor: see ``eps_factor``.
        attack_steps: steps of the latent PGD.
        attack_step_size: its step size.
        lr_stage_decay: the learning rate's factor per stage (the schedule described above).
        lr_step: epochs between learning-rate steps within a stage.
        lr_step_factor: the learning rate's factor at each such step.
        relu_stable: weight of the ReLU-stability penalty (None: off).
        relu_stable_factor: its growth per stage.
        n_rand_proj: Cauchy projections per error group for the bound estimates.
        nat_factor: weight of the natural loss (the authors' default 0).
        anneal: ramp each stage's eps from 0 over its mixing epochs (the authors' ``--anneal``;
            off in their scripts).

    The run's eps schedule callback is ignored for training (the stages set eps); ``eps_test``
    is what validation certifies. The bound estimates and the attacks run with the network in
    eval mode, the losses in train mode, as in the authors' code (matters only with BatchNorm).
    """

    TRAINING_BOUNDS_MARGINS = False  # latent PGD, no margin bound
    USES_KAPPA = False  # its own stage mixing (logged as train/stage_mix) and nat_factor
    REUSES_BATCH_STATISTICS = False

    def __init__(self, *args, stages: Optional[Annotated[Sequence[int], NonEmpty(), Range(0)]] = None,
                 stage_epochs: PositiveInt = 10, mix_epochs: NonNegativeInt = 3,
                 eps_factor: PositiveFloat = 1.2, start_eps_factor: PositiveFloat = 1.05, attack_steps: PositiveInt = 8,
                 attack_step_size: PositiveFloat = 0.25, lr_stage_decay: Fraction = 0.5, lr_step: PositiveInt = 10,
                 lr_step_factor: Fraction = 0.5, relu_stable: Optional[NonNegativeFloat] = 0.003,
                 relu_stable_factor: PositiveFloat = 1.5, n_rand_proj: PositiveInt = 50, nat_factor: UnitInterval = 0.0,
                 anneal: bool = False, **kwargs):
        check_arguments()
        super().__init__(*args, **kwargs)
        self.layers = flat_layers(self.net)
        self.relu_pos = [i for i, m in enumerate(self.layers) if isinstance(m, nn.ReLU)]
        self.stages = list(range(len(self.relu_pos))) if stages is None else [int(s) for s in stages]
        check(bool(self.stages) and self.stages == sorted(set(self.stages)) and self.stages[0] >= 0
              and self.stages[-1] < len(self.relu_pos) + 1,
              f"stages must be increasing numbers of ReLU layers in [0, {len(self.relu_pos)}], got {stages}")
        check(mix_epochs <= stage_epochs, f"mix_epochs must be <= stage_epochs, got {mix_epochs} > {stage_epochs}")
        self.stage_epochs, self.mix_epochs = stage_epochs, mix_epochs
        self.eps_factor, self.start_eps_factor = eps_factor, start_eps_factor
        self.attack_steps, self.attack_step_size = attack_steps, attack_step_size
        self.lr_stage_decay, self.lr_step, self.lr_step_factor = lr_stage_decay, lr_step, lr_step_factor
        self.relu_stable, self.relu_stable_factor = relu_stable, relu_stable_factor
        self.n_rand_proj, self.nat_factor, self.anneal = n_rand_proj, nat_factor, anneal
        self._stage_seen = None

    @property
    def checkpoint_monitor(self) -> str:
        """Like PGD training: COLT's networks are certified by precise verifiers, their IBP-certified
        accuracy (the validation certifier by default) says little, so the best checkpoint is
        chosen empirically (``val/pgd_acc`` if ``pgd_eval_steps`` else ``val/nat_acc``)."""
        return self.empirical_monitor

    # ------------------------------------------------------------------ schedule
    def stage_index(self, epoch: int) -> int:
        return min(epoch // self.stage_epochs, len(self.stages) - 1)

    def stage_eps(self, j: int) -> float:
        return self.eps_factor ** (len(self.stages) - 1 - j) * self.start_eps_factor * self.eps_train

    def lr_factor(self, epoch: int) -> float:
        """Learning-rate multiplier at ``epoch`` (module docstring)."""
        j = self.stage_index(epoch)
        e = epoch - j * self.stage_epochs
        return self.lr_stage_decay ** j * self.lr_step_factor ** (max(0, e - self.mix_epochs) // self.lr_step)

    def _progress(self) -> tuple[int, float]:
        """(stage, κ) of the current training step, from the training progress the schedule
        callback hands every method (``epochs_done``: fractional epochs, 0 at the first step);
        without a schedule (a bare training step), the last stage, fully mixed."""
        if self.epochs_done is None:
            return len(self.stages) - 1, 1.0
        j = self.stage_index(int(self.epochs_done))
        into = self.epochs_done - j * self.stage_epochs
        kappa = 1.0 if self.mix_epochs == 0 else min(1.0, into / self.mix_epochs)
        return j, kappa

    def configure_optimizers(self):
        opt = super().configure_optimizers()
        opt = opt["optimizer"] if isinstance(opt, dict) else opt
        sched = torch.optim.lr_scheduler.LambdaLR(opt, self.lr_factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}

    def on_train_epoch_start(self) -> None:
        j = self.stage_index(self.current_epoch)
        frozen = self.relu_pos[self.stages[j] - 1] if self.stages[j] > 0 else -1
        for i, layer in enumerate(self.layers):  # the layers up to the stage's latent space are frozen
            for p in layer.parameters():
                p.requires_grad_(i > frozen)
        if self._stage_seen is not None and j != self._stage_seen:  # a new stage restarts the optimiser
            for opt in (self.optimizers() if isinstance(self.optimizers(), list) else [self.optimizers()]):
                opt.optimizer.state.clear() if hasattr(opt, "optimizer") else opt.state.clear()
        self._stage_seen = j

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        # the restored optimiser state belongs to the checkpoint's stage: reset it only on a change
        self._stage_seen = self.stage_index(int(checkpoint.get("epoch", 0)))

    # ------------------------------------------------------------------ the loss
    def latent_attack(self, x: torch.Tensor, y: torch.Tensor, relus: int, eps: float, bounds: list) -> torch.Tensor:
        """A latent adversarial example after ``relus`` ReLU layers (module docstring)."""
        lb, ub = linf_box(x, eps)
        head0, radius = ((ub + lb) / 2).detach(), ((ub - lb) / 2).detach()
        stop = self.relu_pos[relus - 1] + 1 if relus > 0 else 0
        prefix, suffix = self.layers[:stop], self.layers[stop:]
        lams, mus, shapes = [], [], []
        with torch.no_grad():
            head, r = head0, 0
            for layer in prefix:
                if isinstance(layer, nn.ReLU):
                    lam, mu = _deepz(*(b.detach() for b in bounds[r]))
                    head = head * lam + mu
                    lams.append(lam), mus.append(mu), shapes.append(head.shape)
                    r += 1
                else:
                    head = layer(head)
        errors = [torch.empty_like(head0).uniform_(-1, 1)] + [torch.empty(s, dtype=x.dtype, device=x.device).uniform_(-1, 1) for s in shapes]

        def latent(errs):
            offsets, r = [radius * errs[0]], 0
            for layer in prefix:
                if isinstance(layer, nn.ReLU):
                    offsets = [o * lams[r] for o in offsets] + [mus[r] * errs[r + 1]]
                    r += 1
                else:
                    offsets = [linear_part(layer, o.unsqueeze(0), 1)[0] for o in offsets]
            return head + sum(offsets)

        def suffix_forward(z):
            for layer in suffix:
                z = layer(z)
            return z

        with torch.enable_grad():
            for _ in range(self.attack_steps - 1):
                errs = [e.detach().requires_grad_(True) for e in errors]
                loss = F.cross_entropy(suffix_forward(latent(errs)), y, reduction="sum")
                grads = torch.autograd.grad(loss, errs)
                errors = [(e + self.attack_step_size * g.sign()).clamp(-1, 1) for e, g in zip(errs, grads)]
        with torch.no_grad():
            return latent(errors).detach()

    def _suffix_ce(self, z: torch.Tensor, relus: int, y: torch.Tensor) -> torch.Tensor:
        start = self.relu_pos[relus - 1] + 1 if relus > 0 else 0
        for layer in self.layers[start:]:
            z = layer(z)
        return F.cross_entropy(z, y)

    def task_loss(self, x, y, nat, logits):
        j, kappa = self._progress()
        eps = self.stage_eps(j) * (kappa if self.anneal else 1.0)
        if eps <= 0:
            return nat, {"eps": 0.0, "stage_mix": kappa, "stage": float(j)}, None
        was_training = self.net.training
        self.net.eval()
        relus = self.stages[j]
        nxt = self.stages[j + 1] if j + 1 < len(self.stages) else None
        stable_weight = None if (self.relu_stable is None or nxt is None) else self.relu_stable * self.relu_stable_factor ** j
        need = max(relus, nxt or 0) if stable_weight is not None else relus
        with torch.set_grad_enabled(torch.is_grad_enabled() and stable_weight is not None):
            bounds = approx_bounds(self.layers, x, eps, need, self.n_rand_proj) if need > 0 else []
        adv_latent = self.latent_attack(x, y, relus, eps, bounds)
        prev = self.stages[j - 1] if j > 0 else None
        prev_latent = None if prev is None else self.latent_attack(x, y, prev, eps, bounds)
        self.net.train(was_training)
        adv = self._suffix_ce(adv_latent, relus, y)
        padv = nat if prev is None else self._suffix_ce(prev_latent, prev, y)
        loss = self.nat_factor * nat + (1 - self.nat_factor) * (kappa * adv + (1 - kappa) * padv)
        # the mixing factor between this stage's and the previous stage's loss -- not the
        # schedule's natural-loss weight kappa, which COLT does not use
        logs = {"eps": eps, "stage_mix": kappa, "stage": float(j), "adv_loss": adv.detach(), "prev_adv_loss": padv.detach()}
        if stable_weight is not None:
            l, u = bounds[nxt - 1]
            stable = (l.clamp(max=0).neg() * u.clamp(min=0)).flatten(1).sum(1).mean()
            loss = loss + kappa * stable_weight * stable
            logs["relu_stable_loss"] = stable.detach()
        return loss, logs, None

    def natural_loss_used(self) -> bool:
        return True  # the first stage's previous loss is the natural one; cheap anyway
