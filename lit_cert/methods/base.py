"""The base LightningModule of every certified-training method.

A method is a small subclass that says how its robust loss is made, in up to three stages
(CTBench's template-method idea):

1. :meth:`CertifiedMethod.input_region` -- the input box to bound (default: the full L∞ ball
   ∩ [0, 1]; SABR picks a smaller box),
2. :meth:`CertifiedMethod.propagate` -- lower bounds of the margins ``C f(x)`` over that box
   (IBP, CROWN-IBP, TAPS, ...),
3. :meth:`CertifiedMethod.robust_loss` -- the loss from those bounds (default: robust CE).

Everything else lives here once: building the network from the dataset's
:class:`~lit_cert.data.info.DataInfo`, the BatchNorm convention (the clean forward pass sets the
batch statistics, the bounds reuse them), the natural/robust mix
``kappa * L_nat + (1 - kappa) * L_rob`` (Gowal et al.'s kappa: the weight of the *natural*
loss), L1, the optimiser and LR milestones, and validation/test metrics at a fixed ``eps_test``
certified by the configured certifier.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Literal, Optional, Sequence

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric

from lit_cert.bounds.backsub import (
    margin_bounds_crown,
    margin_bounds_crown_ibp,
    margin_bounds_deepz,
    margin_bounds_hbox,
)
from lit_cert.bounds.box import margin_bounds_ibp
from lit_cert.bounds.region import linf_box
from lit_cert.bounds.spec import margin_spec, robust_cross_entropy
from lit_cert.data.info import DataInfo
from lit_cert.errors import ConfigError
from lit_cert.methods.regularizers import l1_penalty
from lit_cert.metrics import CertifiedAccuracy, NaturalAccuracy, PGDAccuracy, PropagationTightness, ReLUStability
from lit_cert.models.architectures import Architecture

#: certifiers usable for validation/test certified accuracy: name -> (net, lb, ub, C) -> margin lb
CERTIFIERS: dict[str, Callable[..., torch.Tensor]] = {
    "ibp": margin_bounds_ibp,
    "crown-ibp": margin_bounds_crown_ibp,
    "crown": margin_bounds_crown,
    "deepz": margin_bounds_deepz,
    "hbox": margin_bounds_hbox,
}


@dataclass
class RobustLoss:
    """What a method's robust loss step returns: the loss, extra penalties, values to log."""

    loss: torch.Tensor
    penalty: torch.Tensor | float = 0.0
    logs: dict = field(default_factory=dict)


class CertifiedMethod(L.LightningModule):
    """Shared machinery of all methods (see module docstring).

    Args:
        network: the architecture, e.g. ``lit_cert.models.CNN7`` with its arguments.
        data_info: dataset shape/classes/normalisation; linked from the DataModule by the CLI.
        eps_train: final training radius (pixel units) reached by the eps schedule.
        eps_test: radius at which validation/test certified accuracy is measured (required).
        lr, optimizer, weight_decay, momentum: the optimiser (``adam`` or ``sgd``).
        milestones, lr_decay: multiply the LR by ``lr_decay`` at these epochs.
        l1: weight of the L1 penalty on Linear/Conv weights.
        certifier: bound method for validation/test certification.
        log_tightness: log the local propagation tightness (Mao et al.) in validation/test.
        tightness_samples: in validation, compute the tightness on at most this many samples
            of each batch (None: all). It costs about K backward passes per sample (~6x a
            validation step on CNN7 for all samples, benchmarks/bench_validation.py); the
            per-batch subset is an unbiased estimate, but which samples it holds depends on the
            batch size and the number of DDP ranks. Test always uses every sample.
        log_relu_stability: log the fractions of active/dead/unstable ReLUs under IBP bounds of
            the eps_test ball (``{stage}/relu_active|relu_dead|relu_unstable``).
        pgd_eval_steps: if > 0, also log ``{stage}/pgd_acc``, the accuracy under a PGD attack
            (margin loss, this many steps, ``pgd_eval_restarts`` restarts) at eps_test: an upper
            bound of the certified accuracy that shows the gap the certifier leaves.
    """

    def __init__(
        self,
        network: Architecture,
        data_info: Optional[DataInfo] = None,
        eps_train: float = 0.1,
        eps_test: Optional[float] = None,
        lr: float = 5e-4,
        optimizer: Literal["adam", "sgd"] = "adam",
        weight_decay: float = 0.0,
        momentum: float = 0.9,
        milestones: Sequence[int] = (),
        lr_decay: float = 0.2,
        l1: float = 0.0,
        certifier: str = "ibp",
        log_tightness: bool = True,
        tightness_samples: Optional[int] = 16,
        log_relu_stability: bool = True,
        pgd_eval_steps: int = 0,
        pgd_eval_restarts: int = 1,
    ):
        super().__init__()
        if data_info is None:
            raise ConfigError(
                f"{type(self).__name__} needs data_info (input shape, classes, mean/std). The CLI links it "
                "from the DataModule; in Python pass data_info=datamodule.info."
            )
        if isinstance(data_info, dict):
            data_info = DataInfo(**data_info)
        if isinstance(network, dict):
            network = Architecture.from_config(network)
        if eps_test is None:
            raise ConfigError("model.init_args.eps_test is missing: the radius at which certified accuracy is measured")
        if eps_train < 0 or eps_test < 0:
            raise ConfigError(f"eps must be >= 0 (pixel units), got eps_train={eps_train}, eps_test={eps_test}")
        if certifier not in CERTIFIERS:
            raise ConfigError(f"unknown certifier {certifier!r}; available: {sorted(CERTIFIERS)}")
        if optimizer not in ("adam", "sgd"):
            raise ConfigError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
        if tightness_samples is not None and tightness_samples < 1:
            raise ConfigError(f"tightness_samples must be >= 1 or null (all samples), got {tightness_samples}")
        if pgd_eval_steps < 0 or pgd_eval_restarts < 1:
            raise ConfigError(f"pgd_eval_steps must be >= 0 and pgd_eval_restarts >= 1, got {pgd_eval_steps}, {pgd_eval_restarts}")
        if lr <= 0 or l1 < 0:
            raise ConfigError(f"lr must be > 0 and l1 >= 0, got lr={lr}, l1={l1}")
        self.save_hyperparameters(ignore=["data_info"])
        # plain data only, so checkpoints load with torch.load(weights_only=True) and rebuild the net
        self.hparams["data_info"] = asdict(data_info)
        self.hparams["network"] = network.to_config()
        self.data_info = data_info
        self.num_classes = data_info.num_classes
        self.net = network.build(data_info)
        self.eps_train, self.eps_test = float(eps_train), float(eps_test)
        # set every step by lit_cert.callbacks.CertifiedSchedule; constant without it
        self.eps, self.kappa, self.beta = self.eps_train, 0.0, 1.0
        self.metrics = nn.ModuleDict(
            {
                stage: nn.ModuleDict(
                    {"nat_acc": NaturalAccuracy(), "cert_acc": CertifiedAccuracy(), "rob_loss": MeanMetric()}
                    | ({"tightness": PropagationTightness()} if log_tightness else {})
                    | ({"pgd_acc": PGDAccuracy(self.eps_test, pgd_eval_steps, pgd_eval_restarts)} if pgd_eval_steps else {})
                    | ({"relu_stability": ReLUStability(self.eps_test)} if log_relu_stability else {})
                )
                for stage in ("val", "test")
            }
        )

    @property
    def checkpoint_monitor(self) -> str:
        """The validation metric that picks the "best" checkpoint when the config keeps the
        default ``val/cert_acc``: methods that do not aim at certification override it, since
        their certified accuracy stays 0 and every epoch would tie with the first."""
        return "val/cert_acc"

    @property
    def empirical_monitor(self) -> str:
        """For methods without a sound training bound: PGD accuracy when validation attacks
        (``pgd_eval_steps > 0``), else natural accuracy."""
        return "val/pgd_acc" if self.hparams.pgd_eval_steps else "val/nat_acc"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["lit_cert_method"] = f"{type(self).__module__}.{type(self).__qualname__}"

    # ------------------------------------------------------------------ the stages
    def input_region(self, x: torch.Tensor, y: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The input box whose bounds make the robust loss (default: the full L∞ ball ∩ [0, 1])."""
        return linf_box(x, eps)

    def propagate(self, lb: torch.Tensor, ub: torch.Tensor, spec: torch.Tensor, record: dict | None) -> torch.Tensor:
        """Lower bounds (B, K) of the margins ``spec @ f(x)`` over ``[lb, ub]``."""
        raise NotImplementedError(f"{type(self).__name__} does not define a bound propagation")

    def robust_loss(self, x: torch.Tensor, y: torch.Tensor, eps: float) -> RobustLoss:
        """Robust cross-entropy of the bounds from :meth:`propagate` on :meth:`input_region`.

        When :meth:`wants_record` is true the propagation records its intermediate intervals and
        :meth:`bound_penalty` may turn them into a penalty (e.g. Shi et al.'s regularisers)."""
        lb, ub = self.input_region(x, y, eps)
        record: dict | None = {} if self.wants_record(eps) else None
        margin_lb = self.propagate(lb, ub, margin_spec(y, self.num_classes, lb.dtype), record)
        out = RobustLoss(robust_cross_entropy(margin_lb, y))
        if record is not None:
            self.bound_penalty(out, record, eps)
        return out

    def wants_record(self, eps: float) -> bool:
        return False

    def bound_penalty(self, out: RobustLoss, record: dict, eps: float) -> None:
        """Add penalties computed from recorded intervals to ``out`` (default: none)."""

    # ------------------------------------------------------------------ training
    def natural_loss_used(self) -> bool:
        """Whether the natural CE has non-zero weight in :meth:`objective` right now."""
        return float(self.eps) <= 0 or float(self.kappa) > 0

    def objective(self, x: torch.Tensor, y: torch.Tensor, nat: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """The method's loss given the natural CE: ``kappa * nat + (1 - kappa) * robust``."""
        eps, kappa = float(self.eps), float(self.kappa)
        logs = {"eps": eps, "kappa": kappa}
        if eps <= 0 or kappa >= 1:  # at eps = 0 every robust loss equals the natural one
            return nat, logs
        rob = self.robust_loss(x, y, eps)
        logs["rob_loss"] = rob.loss.detach()
        logs.update(rob.logs)
        mixed = rob.loss if kappa <= 0 else kappa * nat + (1 - kappa) * rob.loss
        return mixed + rob.penalty, logs

    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Clean pass, the method's objective, then the L1 penalty; returns (loss, logs)."""
        # clean pass first: BatchNorm batch statistics come from here; it is differentiated
        # only when the natural loss contributes to the objective
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.natural_loss_used()):
            logits = self.net(x)
            nat = F.cross_entropy(logits, y)
        loss, logs = self.objective(x, y, nat)
        logs["nat_loss"] = nat.detach()
        logs["nat_acc"] = (logits.argmax(1) == y).float().mean()
        if self.hparams.l1 > 0:
            l1 = l1_penalty(self.net)
            loss = loss + self.hparams.l1 * l1
            logs["l1"] = l1.detach()
        return loss, logs

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss, logs = self.training_loss(x, y)
        self.log("train/loss", loss, prog_bar=True)
        for key, value in logs.items():
            self.log(f"train/{key}", value, prog_bar=key in ("eps",))
        return loss

    def configure_optimizers(self):
        hp = self.hparams
        if hp.optimizer == "adam":
            opt = torch.optim.Adam(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        else:
            opt = torch.optim.SGD(self.parameters(), lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay)
        if not hp.milestones:
            return opt
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(hp.milestones), gamma=hp.lr_decay)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}

    # ------------------------------------------------------------------ evaluation
    def certify_margins(self, x: torch.Tensor, y: torch.Tensor, eps: float, record: dict | None = None) -> torch.Tensor:
        """Sound lower bounds of all margins over the full eps-ball, by the configured certifier
        (``record`` collects the pre-ReLU intervals of certifiers that keep them, i.e. IBP)."""
        lb, ub = linf_box(x, eps)
        return CERTIFIERS[self.hparams.certifier](self.net, lb, ub, margin_spec(y, self.num_classes, x.dtype), record=record)

    def _evaluate(self, batch, stage: str) -> None:
        x, y = batch
        logits = self.net(x)
        m = self.metrics[stage]
        # with the IBP certifier its intervals also give the ReLU states: no second IBP pass
        record: dict | None = {} if "relu_stability" in m else None
        margin_lb = self.certify_margins(x, y, self.eps_test, record)
        m["nat_acc"].update(logits, y)
        m["cert_acc"].update(margin_lb, y)
        m["rob_loss"].update(robust_cross_entropy(margin_lb, y, reduction="none"))
        if "tightness" in m:
            n = self.hparams.tightness_samples
            m["tightness"].update(self.net, x if stage == "test" or n is None else x[:n])
        if "pgd_acc" in m:
            m["pgd_acc"].update(self.net, x, y)
        if "relu_stability" in m:
            m["relu_stability"].update(self.net, x, record=record)
        for name, metric in m.items():
            if name != "relu_stability":  # a 3-vector: logged at epoch end
                self.log(f"{stage}/{name}", metric, on_step=False, on_epoch=True, prog_bar=name == "cert_acc")

    def _log_relu_stability(self, stage: str) -> None:
        metric = self.metrics[stage]["relu_stability"] if "relu_stability" in self.metrics[stage] else None
        if metric is None or not metric.update_called:
            return
        for name, value in zip(("active", "dead", "unstable"), metric.compute()):
            self.log(f"{stage}/relu_{name}", value, sync_dist=False)  # compute() already reduced over ranks
        metric.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_relu_stability("val")

    def on_test_epoch_end(self) -> None:
        self._log_relu_stability("test")

    def validation_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, "test")


def load_method(checkpoint_path: str, map_location: str | torch.device | None = "cpu", **overrides) -> CertifiedMethod:
    """Load any method from a checkpoint without knowing its class in advance.

    ``CertifiedMethod.load_from_checkpoint`` would build the base class; this reads the class
    recorded in the checkpoint (see :meth:`CertifiedMethod.on_save_checkpoint`) and loads with it."""
    import importlib

    ckpt = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
    hp = ckpt.get("hyper_parameters", {})
    class_path = ckpt.get("lit_cert_method") or hp.get("_class_path")
    if not class_path:
        raise ValueError(f"{checkpoint_path}: no method class recorded in the checkpoint's hyper-parameters")
    module, name = class_path.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    return cls.load_from_checkpoint(checkpoint_path, map_location=map_location, **overrides)
