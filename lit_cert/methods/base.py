"""The base LightningModule of every certified-training method.

A method is a small subclass. Its robust loss is made in two stages (CTBench's template-method
idea, narrowed so that a method overrides exactly one thing):

1. :meth:`CertifiedMethod.input_region` -- the input box to bound (default: the full L∞ ball
   ∩ [0, 1]; SABR picks a smaller box),
2. :meth:`CertifiedMethod.bound_loss` -- the region turned into a loss. The default is the
   robust cross-entropy of the margin lower bounds from :meth:`CertifiedMethod.propagate`
   (IBP, CROWN-IBP, ...); TAPS, fused CROWN-IBP and MTL-IBP override ``bound_loss`` itself.

Everything else lives here once, for every method: building the network from the dataset's
:class:`~lit_cert.data.info.DataInfo`; the BatchNorm convention (the clean forward pass sets the
batch statistics, the bounds reuse them -- by default as functions of the parameters, as in
CTBench and auto_LiRPA); the natural/robust mix ``kappa * L_nat + (1 - kappa) * L_rob``
(Gowal et al.'s kappa: the weight of the *natural* loss); the penalties -- L1 and Shi et al.'s
warm-up regularisers, computed from the :class:`~lit_cert.bounds.trace.IntervalTrace` of the
method's own IBP walk (or one IBP walk of the full region when the method made none) -- added
after the method's loss in :meth:`CertifiedMethod.penalties`; the optimiser and LR milestones;
and validation/test metrics at a fixed ``eps_test`` certified by a sound bound method from
:data:`lit_cert.bounds.BOUND_METHODS`.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Annotated, Literal, Optional, Sequence

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric

from lit_cert.bounds.box import interval_bounds, spec_on_interval
from lit_cert.bounds.region import certified_box, linf_box
from lit_cert.bounds.registry import BOUND_METHODS, bound_spec
from lit_cert.bounds.spec import margin_spec, robust_cross_entropy
from lit_cert.bounds.trace import IntervalTrace
from lit_cert.checkpoints import check_state_fits, read_checkpoint
from lit_cert.classpath import import_class
from lit_cert.data.info import DataInfo
from lit_cert.errors import ConfigError, check
from lit_cert.options import (NonNegativeFloat, NonNegativeInt, OneOf, PositiveFloat, PositiveInt, Radius, Range, UnitInterval,
                              check_arguments)
from lit_cert.layers import BN_STATISTICS, recording_batchnorms, set_batch_statistics_mode
from lit_cert.methods.regularizers import l1_penalty, shi_regularizers
from lit_cert.metrics import CertifiedAccuracy, NaturalAccuracy, PGDAccuracy, PropagationTightness, ReLUStability
from lit_cert.metrics.tightness import TIGHTNESS_MODES
from lit_cert.models.architectures import Architecture
from lit_cert.numerics import certified_numerics, check_full_precision_weights, full_precision

#: names accepted by ``certifier``: every sound bound method (lit_cert.bounds.registry)
CERTIFIERS = tuple(BOUND_METHODS)

# Lightning recommends sync_dist=True for every tensor logged per epoch under DDP. The ReLU
# stability values are the compute() of a torchmetrics metric, already reduced over the ranks
# (tests/test_ddp.py checks 2 processes against 1): the recommendation is a false alarm there.
warnings.filterwarnings("ignore", message=r".*self\.log\('(val|test)/relu_(active|dead|unstable)'.*sync_dist=True")


@dataclass
class RobustLoss:
    """What :meth:`CertifiedMethod.bound_loss` returns: the loss, values to log, and the
    intervals its IBP walk(s) recorded (filled in by :meth:`CertifiedMethod.robust_loss`)."""

    loss: torch.Tensor
    logs: dict = field(default_factory=dict)
    trace: IntervalTrace | None = None


class CertifiedMethod(L.LightningModule):
    """Shared machinery of all methods (see module docstring).

    Args:
        network: the architecture, e.g. ``lit_cert.models.CNN7`` with its arguments.
        data_info: dataset shape/classes/normalisation; linked from the DataModule by the CLI.
        eps_train: final training radius (pixel units) reached by the eps schedule.
        eps_test: radius at which validation/test certified accuracy is measured (required).
        lr: the optimiser's learning rate.
        optimizer: ``adam`` or ``sgd``.
        weight_decay: the optimiser's weight decay.
        momentum: SGD's momentum (``sgd`` only).
        milestones: epochs at which the learning rate is multiplied by ``lr_decay``.
        lr_decay: the factor applied at each milestone.
        l1: weight of the L1 penalty on Linear/Conv weights.
        shi_reg: weight lambda_0 of Shi et al.'s (2021) tightness + ReLU-balance regularisers, applied while the eps schedule has not finished its ramp
            (warm-up included) with weight ``lambda_0 * (1 - eps_reg / eps_train)``, on the
            intervals of the method's own IBP walk (CTBench's ``fast_reg``; ``eps_reg = max(eps,
            1e-6)``, a fresh IBP walk at ``eps_reg`` when the method made none). 0 disables them
            (0.5 in Shi et al.'s and CTBench's settings).
        shi_tol: tolerance tau of Shi et al.'s regularisers.
        bn_statistics: ``differentiable`` (default: the bounds use the clean batch's BatchNorm
            statistics as functions of the parameters, the references' gradient) or
            ``detached`` (constants: a cheaper step with a different gradient, see
            benchmarks/RESULTS.md).
        elision: fold the margin specification into the last layer when bounding for the training
            loss (Gowal et al.'s elision; default). ``false`` bounds the logits first and forms the
            worst-case logits from their intervals (the paradox paper's ``--C eye`` runs);
            certification always uses the tighter elided bounds.
        certifier: sound bound method for validation/test (a name of ``lit_cert.bounds.BOUND_METHODS``).
        certifier_options: the certifier's options (e.g. ``{sparse: false}`` for ``crown``,
            ``{steps: 50}`` for ``alpha-crown``), validated by the registry.
        log_tightness: log the local propagation tightness (Mao et al.) in validation/test.
        tightness_mode: ``margins`` (default: the K - 1 margins with the last layer folded and the
            eps_test box clipped to [0, 1], as the authors measure it) or ``logits`` (the logits
            with an all-ones radius); see :mod:`lit_cert.metrics.tightness`.
        tightness_samples: in validation, compute the tightness on at most this many samples
            of each batch (None: all). It costs about K backward passes per sample (~6x a
            validation step on CNN7 for all samples, benchmarks/bench_validation.py); the
            per-batch subset is an unbiased estimate, but which samples it holds depends on the
            batch size and the number of DDP ranks. Test always uses every sample.
        log_relu_stability: log the fractions of active/dead/unstable ReLUs under IBP bounds of
            the eps_test ball (``{stage}/relu_active|relu_dead|relu_unstable``).
        pgd_eval_steps: if > 0, also log ``{stage}/pgd_acc``, the accuracy under a PGD attack
            (margin loss, this many steps) at eps_test: an upper bound of the certified accuracy
            that shows the gap the certifier leaves.
        pgd_eval_restarts: random restarts of that attack.
    """

    #: smallest eps of Shi et al.'s regulariser (CTBench's ``min_eps_reg``)
    MIN_EPS_REG = 1e-6
    #: whether the training loss bounds the margins (so ``elision: false`` means something);
    #: methods without a training bound of the margins refuse ``elision: false``
    TRAINING_BOUNDS_MARGINS = True
    #: whether the training loss reuses the clean batch's BatchNorm statistics outside the clean
    #: pass (bounds, frozen attack passes), so ``bn_statistics: detached`` means something
    REUSES_BATCH_STATISTICS = True
    #: whether the loss uses the schedule's kappa (natural-loss weight) / beta (CROWN-IBP mix):
    #: the schedule refuses non-default kappa_*/beta_* for a method that ignores them
    USES_KAPPA = True
    USES_BETA = False

    def __init__(
        self,
        network: Architecture,
        data_info: Optional[DataInfo] = None,
        eps_train: Radius = 0.1,
        eps_test: Optional[Radius] = None,
        lr: PositiveFloat = 5e-4,
        optimizer: Literal["adam", "sgd"] = "adam",
        weight_decay: NonNegativeFloat = 0.0,
        momentum: UnitInterval = 0.9,
        milestones: Annotated[Sequence[int], Range(0)] = (),
        lr_decay: Annotated[float, Range(0, 1, lo_open=True)] = 0.2,
        l1: NonNegativeFloat = 0.0,
        shi_reg: NonNegativeFloat = 0.0,
        shi_tol: PositiveFloat = 0.5,
        bn_statistics: Literal["differentiable", "detached"] = "differentiable",
        elision: bool = True,
        certifier: Annotated[str, OneOf(CERTIFIERS)] = "ibp",
        certifier_options: Optional[dict] = None,
        log_tightness: bool = True,
        tightness_mode: Literal["margins", "logits"] = "margins",
        tightness_samples: Optional[PositiveInt] = 16,
        log_relu_stability: bool = True,
        pgd_eval_steps: NonNegativeInt = 0,
        pgd_eval_restarts: PositiveInt = 1,
    ):
        check_arguments()
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
        self.certifier = bound_spec(certifier, **(certifier_options or {}))  # options validated once, here
        check(self.certifier.sound, f"certifier {self.certifier} uses a training heuristic and certifies nothing")
        check(tightness_mode in TIGHTNESS_MODES, f"tightness_mode must be one of {TIGHTNESS_MODES}, got {tightness_mode!r}")
        check(bn_statistics in BN_STATISTICS, f"bn_statistics must be one of {BN_STATISTICS}, got {bn_statistics!r}")
        # an accepted option always acts: refuse the ones this method would silently ignore
        name = type(self).__name__
        check(elision or self.TRAINING_BOUNDS_MARGINS,
              f"elision: false changes how a training bound of the margins is formed; {name}'s training loss has none")
        check(bn_statistics == "differentiable" or self.REUSES_BATCH_STATISTICS,
              f"bn_statistics: {bn_statistics} changes how bounds reuse the clean batch's BatchNorm statistics; "
              f"{name}'s training loss does not reuse them")
        self.save_hyperparameters(ignore=["data_info"])
        # plain data only, so checkpoints load with torch.load(weights_only=True) and rebuild the net
        self.hparams["data_info"] = asdict(data_info)
        self.hparams["network"] = network.to_config()
        self.data_info = data_info
        self.num_classes = data_info.num_classes
        self.net = network.build(data_info)
        set_batch_statistics_mode(self.net, bn_statistics)
        self.has_batchnorm = bool(recording_batchnorms(self.net))
        self.eps_train, self.eps_test = float(eps_train), float(eps_test)
        self.shi_reg, self.shi_tol = shi_reg, shi_tol
        # set every step by lit_cert.callbacks.CertifiedSchedule; constant without it
        self.eps, self.kappa, self.beta = self.eps_train, 0.0, 1.0
        self.ramp_progress = 1.0  # fraction of the eps ramp done (warm-up: 0)
        self.epochs_done: float | None = None  # fractional epochs of training so far (None: no schedule)
        self.metrics = nn.ModuleDict(
            {
                stage: nn.ModuleDict(
                    {"nat_acc": NaturalAccuracy(), "cert_acc": CertifiedAccuracy(), "rob_loss": MeanMetric()}
                    | ({"tightness": PropagationTightness(self.eps_test, tightness_mode)} if log_tightness else {})
                    | ({"pgd_acc": PGDAccuracy(self.eps_test, pgd_eval_steps, pgd_eval_restarts)} if pgd_eval_steps else {})
                    | ({"relu_stability": ReLUStability()} if log_relu_stability else {})
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

    def apply_schedule(self, values: dict) -> None:
        """Turn the schedule's values (:meth:`lit_cert.callbacks.CertifiedSchedule.values_at`)
        into this step's eps (0 in warm-up, else ``eps_start`` moving to ``eps_train`` by the
        ramp's fraction), kappa, beta, ramp progress and training progress in epochs."""
        if values["warmup"]:
            self.eps = 0.0
        else:
            start = min(float(values["eps_start"]), self.eps_train)
            self.eps = start + float(values["eps_fraction"]) * (self.eps_train - start)
        self.kappa, self.beta = float(values["kappa"]), float(values["beta"])
        self.ramp_progress, self.epochs_done = float(values["progress"]), float(values["epochs"])

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Record the method's class and what data it was trained on (a ``data-identity``
        record: dataset, transforms, each split's size and content fingerprint), so certify,
        test and the analyses refuse to evaluate it on other data by mistake."""
        checkpoint["lit_cert_method"] = f"{type(self).__module__}.{type(self).__qualname__}"
        trainer = getattr(self, "_trainer", None)
        dm = getattr(trainer, "datamodule", None) if trainer is not None else None
        if dm is not None and hasattr(dm, "identity") and getattr(dm, "train_set", None) is not None:
            from lit_cert.files import DATA_IDENTITY
            from lit_cert.persist import stamp
            from lit_cert.runs import DATA_KEY

            checkpoint[DATA_KEY] = stamp(DATA_IDENTITY.kind, dm.identity())

    def spec(self, y: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return margin_spec(y, self.num_classes, dtype)

    # ------------------------------------------------------------------ the stages
    def input_region(self, x: torch.Tensor, y: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The input box whose bounds make the robust loss (default: the full L∞ ball ∩ [0, 1])."""
        return linf_box(x, eps)

    def propagate(self, lb: torch.Tensor, ub: torch.Tensor, spec: torch.Tensor, trace: IntervalTrace) -> torch.Tensor:
        """Lower bounds (B, K) of the margins ``spec @ f(x)`` over ``[lb, ub]``, recording any IBP
        walk into ``trace`` (used by the default :meth:`bound_loss`)."""
        raise NotImplementedError(f"{type(self).__name__} does not define a bound propagation")

    def margins(self, logit_bounds, spec: torch.Tensor) -> torch.Tensor:
        """Margin lower bounds from ``logit_bounds(spec)`` (a function giving lower bounds of
        ``spec @ f(x)``): with elision the specification goes into the bound computation, without
        it the logits' own intervals are bounded and combined by interval arithmetic."""
        if self.hparams.elision:
            return logit_bounds(spec)
        k = spec.shape[-1]
        eye = torch.eye(k, dtype=spec.dtype, device=spec.device).expand(spec.shape[0], k, k)
        both = logit_bounds(torch.cat([eye, -eye], dim=1))
        return spec_on_interval(spec, both[:, :k], -both[:, k:])[0]

    def bound_loss(self, x: torch.Tensor, y: torch.Tensor, lb: torch.Tensor, ub: torch.Tensor, eps: float,
                   trace: IntervalTrace) -> RobustLoss:
        """The region's robust loss: by default the robust CE of :meth:`propagate`'s bounds."""
        return RobustLoss(robust_cross_entropy(self.propagate(lb, ub, self.spec(y, lb.dtype), trace), y))

    def robust_loss(self, x: torch.Tensor, y: torch.Tensor, eps: float) -> RobustLoss:
        """:meth:`input_region` then :meth:`bound_loss`; the trace of its IBP walks rides along."""
        lb, ub = self.input_region(x, y, eps)
        trace = IntervalTrace()
        out = self.bound_loss(x, y, lb, ub, eps, trace)
        out.trace = trace
        return out

    # ------------------------------------------------------------------ training
    def natural_loss_used(self) -> bool:
        """Whether the natural CE has non-zero weight in :meth:`task_loss` right now."""
        return float(self.eps) <= 0 or float(self.kappa) > 0

    def clean_pass_in_graph(self) -> bool:
        """The clean pass is differentiated when the natural loss counts or when the bounds use
        its BatchNorm statistics as functions of the parameters (the default)."""
        stats_in_graph = self.has_batchnorm and self.hparams.bn_statistics == "differentiable"
        return self.natural_loss_used() or stats_in_graph

    def task_loss(self, x: torch.Tensor, y: torch.Tensor, nat: torch.Tensor, logits: torch.Tensor
                  ) -> tuple[torch.Tensor, dict, IntervalTrace | None]:
        """The method's loss given the clean pass (its ``logits`` and natural CE ``nat``):
        ``kappa * nat + (1 - kappa) * robust``. Returns (loss, values to log, the trace of the
        robust loss's IBP walks or None)."""
        eps, kappa = float(self.eps), float(self.kappa)
        logs = {"eps": eps, "kappa": kappa}
        if eps <= 0 or kappa >= 1:  # at eps = 0 every robust loss equals the natural one
            return nat, logs, None
        rob = self.robust_loss(x, y, eps)
        logs["rob_loss"] = rob.loss.detach()
        logs.update(rob.logs)
        mixed = rob.loss if kappa <= 0 else kappa * nat + (1 - kappa) * rob.loss
        return mixed, logs, rob.trace

    def shi_weight(self) -> float:
        """Current weight of Shi et al.'s regularisers (see the class docstring)."""
        if self.shi_reg <= 0 or self.eps_train <= 0 or float(self.ramp_progress) >= 1:
            return 0.0
        return self.shi_reg * (1.0 - max(float(self.eps), self.MIN_EPS_REG) / self.eps_train)

    def penalties(self, x: torch.Tensor, trace: IntervalTrace | None) -> dict[str, torch.Tensor]:
        """Penalties added to every method's loss, by name: ``l1`` and ``shi_reg``."""
        out: dict[str, torch.Tensor] = {}
        if self.hparams.l1 > 0:
            out["l1"] = self.hparams.l1 * l1_penalty(self.net)
        weight = self.shi_weight()
        if weight > 0:
            if trace is None or not trace.has_relus or trace.first_affine_input is None:
                trace = IntervalTrace()  # the method walked no IBP: one walk of the full region
                interval_bounds(self.net, *linf_box(x, max(float(self.eps), self.MIN_EPS_REG)), trace=trace)
            tight, relu = shi_regularizers(trace, self.shi_tol)
            out["shi_reg"] = weight * (tight + relu)
        return out

    def training_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Clean pass, the method's :meth:`task_loss`, then :meth:`penalties`; returns (loss, logs)."""
        # clean pass first: BatchNorm batch statistics come from here
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.clean_pass_in_graph()):
            logits = self.net(x)
            nat = F.cross_entropy(logits, y)
        loss, logs, trace = self.task_loss(x, y, nat, logits)
        logs["nat_loss"] = nat.detach()
        logs["nat_acc"] = (logits.argmax(1) == y).float().mean()
        for name, value in self.penalties(x, trace).items():
            loss = loss + value
            logs[name] = value.detach()
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
    def certify_margins(self, x: torch.Tensor, y: torch.Tensor, eps: float, trace: IntervalTrace | None = None) -> torch.Tensor:
        """Sound lower bounds of all margins over the full eps-ball, by the configured certifier
        (``trace`` receives the intervals of the certifier's IBP walk, if it makes one). The box
        is rounded outward (:func:`~lit_cert.bounds.region.certified_box`)."""
        lb, ub = certified_box(x, eps)
        return self.certifier.lower(self.net, lb, ub, self.spec(y, x.dtype), trace)

    def _evaluate(self, batch, stage: str) -> None:
        """Validation/test metrics, all in full float32 precision: the trainer's autocast
        (``16-mixed``/``bf16-mixed``) and TF32 or bf16 float32-matmul settings are switched off
        here (:func:`lit_cert.numerics.certified_numerics`), so the certified accuracy is a
        certificate whatever precision training used."""
        check_full_precision_weights(self.net, "validation and test metrics")
        with certified_numerics():
            x, y = batch
            self._evaluate_full_precision(full_precision(x), y, stage)

    def _evaluate_full_precision(self, x: torch.Tensor, y: torch.Tensor, stage: str) -> None:
        logits = self.net(x)
        m = self.metrics[stage]
        trace = IntervalTrace()
        margin_lb = self.certify_margins(x, y, self.eps_test, trace)
        m["nat_acc"].update(logits, y)
        m["cert_acc"].update(margin_lb, y)
        m["rob_loss"].update(robust_cross_entropy(margin_lb, y, reduction="none"))
        if "tightness" in m:
            n = self.hparams.tightness_samples
            keep = slice(None) if stage == "test" or n is None else slice(0, n)
            m["tightness"].update(self.net, x[keep], y[keep])
        if "pgd_acc" in m:
            m["pgd_acc"].update(self.net, x, y)
        if "relu_stability" in m:
            if not trace.has_relus:  # the certifier walked no IBP (e.g. CROWN): one walk here
                interval_bounds(self.net, *linf_box(x, self.eps_test), trace=trace)
            m["relu_stability"].update(trace)
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

    The class recorded in the checkpoint (see :meth:`CertifiedMethod.on_save_checkpoint`) is
    built from the saved hyper-parameters (plain data) and given the saved weights; a missing,
    corrupt or mismatching checkpoint is a :class:`~lit_cert.errors.ConfigError`."""
    ckpt = read_checkpoint(checkpoint_path)
    hp = {k: v for k, v in ckpt.get("hyper_parameters", {}).items() if not k.startswith("_")}
    class_path = ckpt.get("lit_cert_method") or ckpt.get("hyper_parameters", {}).get("_class_path")
    if not class_path:
        raise ConfigError(f"{checkpoint_path}: no method class recorded in the checkpoint; is it a lit_cert checkpoint?")
    cls = import_class(class_path, CertifiedMethod, "method")
    try:
        model = cls(**{**hp, **overrides})
    except TypeError as err:
        raise ConfigError(f"{checkpoint_path}: its hyper-parameters do not fit {class_path} ({err})") from None
    check_state_fits(model, ckpt["state_dict"], str(checkpoint_path))
    model.load_state_dict(ckpt["state_dict"])
    return model.to(map_location) if map_location is not None else model
