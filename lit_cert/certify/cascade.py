"""The certification cascade: cheap stages first, each sample ends certified, falsified or unknown.

Order: clean prediction (a misclassified sample is not robust) -> IBP -> PGD (a counterexample
*falsifies*, with its margin) -> CROWN-IBP -> CROWN -> alpha-CROWN -> branch and bound
(:mod:`lit_cert.certify.bab`, complete up to its time and domain limits) -> MILP (complete, under
a per-sample time limit). A sample leaves the cascade at the first stage that decides it; one
that no stage decides is reported as *unknown* with the reason (time limit, network too large
for the MILP, stage disabled) -- never silently as "not certified".

IBP goes before the attack because it is ~100x cheaper (two passes per sample against the
attack's 2 x steps x restarts) and a certified sample cannot be falsified: the same samples are
decided, but only those IBP leaves open are attacked (on the IBP-trained CNN7 of
``results/lit_cert-cnn7-certify``, 89 of 528 instead of all 528).

Each sample's outcome is a :class:`Verdict`; the stages are the table :data:`STAGES` of
:class:`Stage` entries, each a function that decides what it can for the samples still open.
The incomplete bound stages take their bounds from :mod:`lit_cert.bounds.registry`.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Literal

import numpy as np
import torch
from torch import nn

from lit_cert.attacks import pgd_attack
from lit_cert.bounds.backsub import LinearBounds, coefficient_memory, layer_shapes, shared_intermediate_bounds
from lit_cert.bounds.box import flat_layers, interval_bounds
from lit_cert.bounds.region import certified_box, inner_box
from lit_cert.bounds.registry import bound_method, bound_spec
from lit_cert.bounds.spec import is_certified, margin_spec
from lit_cert.bounds.trace import IntervalTrace
from lit_cert.certify.bab import BranchAndBound
from lit_cert.certify.settings import STAGE_NAMES, CascadeConfig
from lit_cert.bounds.affine import dense_affine_blocks
from lit_cert.certify.milp import verify_milp
from lit_cert.numerics import certified_numerics, check_full_precision_weights, full_precision

Status = Literal["certified", "falsified", "misclassified", "unknown"]


@dataclass
class Verdict:
    """What the cascade decided for one sample (one JSON record per sample in the shards)."""

    index: int
    label: int
    pred: int
    status: Status | None = None
    stage: str | None = None  # the stage that decided ("clean" for misclassified samples)
    margin: float | None = None  # proven lower bound (certified) or found margin (falsified)
    reason: str | None = None  # why an unknown sample stayed unknown
    seconds: dict[str, float] = field(default_factory=dict)  # time spent per stage
    details: dict = field(default_factory=dict)  # stage-specific facts (e.g. BaB domains)
    #: a falsified sample's counterexample (the input, flattened, float32 values inside the exact
    #: eps-ball), so the verdict can be re-checked without the cascade (:func:`check_verdict`)
    counterexample: list[float] | None = None

    @property
    def open(self) -> bool:
        return self.status is None

    def decide(self, status: Status, stage: str, margin: float | None = None) -> None:
        self.status, self.stage, self.margin = status, stage, None if margin is None else float(margin)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "Verdict":
        return cls(**data)


@dataclass(frozen=True)
class Stage:
    """One cascade stage: ``run(cascade, open verdicts, x, y, lb, ub, spec)`` decides what it can."""

    name: str
    kind: Literal["attack", "bound", "complete"]
    run: Callable[..., None]
    description: str


def _min_other(margins: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Smallest margin to another class (the true class's own margin, 0, is excluded)."""
    masked = margins.clone()
    masked[torch.arange(len(y), device=y.device), y] = float("inf")
    return masked.min(dim=1).values


def _pgd_stage(cascade: "Cascade", todo: list[Verdict], x, y, lb, ub, spec) -> None:
    """``cfg.pgd.restarts`` attacks of ``cfg.pgd.steps`` steps, each restart only on the samples
    the earlier ones did not falsify (a falsified sample needs no second counterexample)."""
    cfg = cascade.config
    box = inner_box(x, cfg.eps)
    left = torch.arange(len(x), device=x.device)
    for _ in range(cfg.pgd.restarts):
        x_adv = pgd_attack(cascade.net, x[left], y[left], cfg.eps, steps=cfg.pgd.steps, restarts=1, loss="margin")
        x_adv = torch.min(torch.max(x_adv, box[0][left]), box[1][left])  # certainly inside the exact ball
        with torch.no_grad():
            margins = _min_other(torch.einsum("bmk,bk->bm", spec[left], cascade.net(x_adv)), y[left])
        for j, m, point in zip(left.tolist(), margins.tolist(), x_adv):
            if m <= 0:
                todo[j].decide("falsified", "pgd", m)
                todo[j].counterexample = point.flatten().tolist()
        left = left[margins > 0]
        if not len(left):
            break


#: a certificate whose margin is within this fraction of the network's output scale of 0 is
#: re-checked in float64: float32 bound engines round to nearest, not outward, so a tight bound
#: can sit ~|value| * 6e-8 per operation on the wrong side of the truth
RECHECK_RTOL = 1e-3


def needs_float64_recheck(margin: float, scale: float) -> bool:
    """Whether a float32 certificate with this margin is too close to 0 to trust as computed."""
    return margin <= RECHECK_RTOL * (1.0 + scale)


def _bound_stage(name: str, bound: Callable[["Cascade", nn.Module, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
                 chunked: bool = False):
    """A bound stage; ``chunked`` stages back-substitute every hidden neuron, so their samples go
    in chunks that fit the configured memory (:meth:`Cascade.samples_per_chunk`). A certificate
    whose margin is near 0 (:func:`needs_float64_recheck`) is recomputed in float64 -- box and
    network -- and kept only if it holds there (``details["float64_recheck"]``)."""

    def run(cascade: "Cascade", todo: list[Verdict], x, y, lb, ub, spec) -> None:
        step = cascade.samples_per_chunk(x.shape[1:]) if chunked else len(todo)
        with torch.no_grad():
            margins = torch.cat([bound(cascade, cascade.net, lb[i : i + step], ub[i : i + step], spec[i : i + step])
                                 for i in range(0, len(todo), step)])
        certified, mins = is_certified(margins, y).tolist(), _min_other(margins, y).tolist()
        recheck = [j for j, (ok, m) in enumerate(zip(certified, mins)) if ok and x.dtype != torch.float64
                   and needs_float64_recheck(m, cascade.output_scale(todo[j]))]
        if recheck:
            sel = torch.tensor(recheck, device=x.device)
            lb64, ub64 = certified_box(x[sel].double(), cascade.config.eps)
            with torch.no_grad():
                m64 = bound(cascade, cascade.net64(), lb64, ub64, spec[sel].double())
            for j, ok64, m in zip(recheck, is_certified(m64, y[sel]).tolist(), _min_other(m64, y[sel]).tolist()):
                todo[j].details["float64_recheck"] = {"stage": name, "float32_margin": mins[j], "float64_margin": m, "held": ok64}
                certified[j], mins[j] = ok64, m
        for v, ok, m in zip(todo, certified, mins):
            if ok:
                v.decide("certified", name, m)

    return run


def _registry_stage(name: str, chunked: bool = False, options: Callable[["CascadeConfig"], dict] = lambda cfg: {}) -> "Stage":
    """A bound stage that is the registry's method ``name`` (the same computation as
    ``certifier: name`` in training and ``analyze cr-curve --certifier name``), with options
    taken from the cascade's config."""
    def bound(c, net, lb, ub, spec):
        return bound_spec(name, **options(c.config)).lower(net, lb, ub, spec)

    method = bound_method(name)
    stage = Stage(name, "bound", _bound_stage(name, bound, chunked), f"{method.description} (registry: {method.name})")
    _STAGE_SPECS[name] = lambda cfg: bound_spec(name, **options(cfg))
    return stage


#: bound stage -> its registry computation under a config (what certify reports it ran)
_STAGE_SPECS: dict[str, Callable] = {}


def stage_bound_spec(stage: str, config: "CascadeConfig"):
    """The registry computation (a :class:`~lit_cert.bounds.registry.BoundSpec`) a bound stage
    runs under ``config``; None for the attack and the complete stages."""
    make = _STAGE_SPECS.get(stage)
    return make(config) if make is not None else None


def _confirm_counterexample(cascade: "Cascade", v: Verdict, stage: str, cex: torch.Tensor, j: int, x, y, spec, unconfirmed: str) -> None:
    """A complete stage's counterexample counts only if, clamped into the exact eps-ball (the
    inward-rounded box), the network itself misclassifies it (float32); otherwise the sample
    stays open with ``unconfirmed`` as reason."""
    inner_lb, inner_ub = inner_box(x[j : j + 1], cascade.config.eps)
    cex = torch.min(torch.max(cex.to(inner_lb.dtype), inner_lb), inner_ub)
    with torch.no_grad():
        m = _min_other(torch.einsum("bmk,bk->bm", spec[j : j + 1], cascade.net(cex)), y[j : j + 1]).item()
    if m <= 0:
        v.decide("falsified", stage, m)
        v.counterexample = cex.flatten().tolist()
    else:
        v.reason = f"{unconfirmed} (margin {m:.2e})"


def _bab_stage(cascade: "Cascade", todo: list[Verdict], x, y, lb, ub, spec) -> None:
    cfg = cascade.config
    bab_config = cfg.bab
    blocks = lambda: cascade.blocks(x.shape[1:]) if cascade.hidden_neurons(x.shape[1:]) <= cfg.milp.max_neurons else None  # noqa: E731
    bab = BranchAndBound(cascade.net, bab_config, dense_blocks=blocks)
    bab.record_leaves = x.dtype != torch.float64  # a float32 certificate near 0 is replayed from its leaves in float64
    for j, v in enumerate(todo):
        rows = torch.cat([spec[j, : v.label], spec[j, v.label + 1 :]])
        out = bab.verify(lb[j : j + 1], ub[j : j + 1], rows)
        v.details["bab"] = out.details()
        v.seconds["bab"] = out.seconds
        if out.status == "certified" and x.dtype != torch.float64 and needs_float64_recheck(out.margin, cascade.output_scale(v)):
            lb64, ub64 = certified_box(x[j : j + 1].double(), cfg.eps)
            again = BranchAndBound(cascade.net64(), bab_config, dense_blocks=blocks).replay(lb64, ub64, rows.double(), out.leaves or {}, out.phase)
            v.details["float64_recheck"] = {"stage": "bab", "float32_margin": out.margin, "float64_margin": again.margin,
                                            "held": again.status == "certified", "float64_status": again.status,
                                            "float64_reason": again.reason, "float64_domains": again.domains,
                                            "leaves": sum(lv.count for lv in (out.leaves or {}).values())}
            v.seconds["bab"] += again.seconds
            if again.status != "certified":
                v.reason = (f"float32 BaB certificate (margin {out.margin:.2e}) not confirmed in float64 "
                            f"({again.status}: {again.reason or 'margin %.2e' % again.margin})")
                continue
            out = again
        if out.status == "certified":
            v.decide("certified", "bab", out.margin)
        elif out.status == "falsified":
            _confirm_counterexample(cascade, v, "bab", out.counterexample, j, x, y, spec, "BaB counterexample not confirmed")
        else:
            v.reason = out.reason


def _milp_stage(cascade: "Cascade", todo: list[Verdict], x, y, lb, ub, spec) -> None:
    cfg = cascade.config
    hidden = cascade.hidden_neurons(x.shape[1:])
    if hidden > cfg.milp.max_neurons:
        for v in todo:
            v.reason = f"network too large for the MILP ({hidden} > {cfg.milp.max_neurons} hidden neurons)"
        return
    for j, v in enumerate(todo):
        with torch.no_grad():
            pre = cascade.pre_activation_bounds(lb[j : j + 1], ub[j : j + 1])
        rows = np.delete(spec[j].double().cpu().numpy(), v.label, axis=0)
        out = verify_milp(cascade.blocks(x.shape[1:]), lb[j].flatten().double().cpu().numpy(), ub[j].flatten().double().cpu().numpy(),
                          pre, rows, cfg.milp.timeout)
        v.seconds["milp"] = out.seconds
        if out.status == "certified":
            v.decide("certified", "milp", out.min_margin)
        elif out.status == "falsified":
            cex = torch.from_numpy(out.counterexample).to(x.dtype).to(x.device).view_as(x[j : j + 1])
            _confirm_counterexample(cascade, v, "milp", cex, j, x, y, spec, "MILP counterexample not confirmed in float32")
        elif out.reason == "time limit":
            v.reason = f"MILP time limit ({cfg.milp.timeout:g}s)"
        else:
            v.reason = f"MILP: {out.reason}"


#: the stages in cascade order
STAGES: dict[str, Stage] = {
    s.name: s
    for s in (
        _registry_stage("ibp"),
        Stage("pgd", "attack", _pgd_stage, "PGD with the margin loss: a counterexample falsifies"),
        _registry_stage("crown-ibp"),
        _registry_stage("crown", chunked=True),
        _registry_stage("alpha-crown", chunked=True, options=lambda cfg: {"steps": cfg.alpha.steps}),
        Stage("bab", "complete", _bab_stage, "branch and bound on ReLU splits (beta-CROWN bounds), complete up to its limits"),
        Stage("milp", "complete", _milp_stage, "big-M MILP (HiGHS), complete up to its time limit"),
    )
}
assert tuple(STAGES) == STAGE_NAMES, "lit_cert.certify.settings.STAGE_NAMES must list STAGES in order"


@dataclass
class Cascade:
    net: nn.Module
    config: CascadeConfig
    _blocks: list | None = field(default=None, init=False)
    _sizes: tuple[int, int] | None = field(default=None, init=False)
    _net64: nn.Module | None = field(default=None, init=False)
    _scales: dict[int, float] = field(default_factory=dict, init=False)

    def net64(self) -> nn.Module:
        """A float64 copy of the network (for re-checking near-zero certificates), made once."""
        if self._net64 is None:
            self._net64 = copy.deepcopy(self.net).double().eval()
        return self._net64

    def output_scale(self, v: "Verdict") -> float:
        """The magnitude of the sample's clean logits: what float32 rounding errors scale with."""
        return self._scales.get(v.index, 0.0)

    def blocks(self, in_shape) -> list:
        if self._blocks is None:
            self._blocks = dense_affine_blocks(self.net, tuple(in_shape))
        return self._blocks

    def _activation_sizes(self, in_shape) -> tuple[int, int]:
        """(hidden ReLU neurons, widest activation) per sample, from one forward pass of a zero
        input -- cheap for any network, unlike the dense blocks of :meth:`blocks`."""
        if self._sizes is None:
            param = next(self.net.parameters(), None)
            layers = flat_layers(self.net)
            probe = torch.zeros(1, *in_shape, device=param.device if param is not None else None,
                                dtype=param.dtype if param is not None else None)
            shapes = layer_shapes(layers, probe)
            sizes = [int(np.prod(s)) for s in shapes]
            self._sizes = (sum(n for layer, n in zip(layers, sizes) if isinstance(layer, nn.ReLU)), max(sizes))
        return self._sizes

    def hidden_neurons(self, in_shape) -> int:
        return self._activation_sizes(in_shape)[0]

    def samples_per_chunk(self, in_shape) -> int:
        """How many samples CROWN / alpha-CROWN bound at once within ``config.memory_gb``.

        Full CROWN back-substitutes one row per hidden neuron; per sample the largest coefficient
        block is about (hidden neurons) x (widest activation) floats, and the walk holds about two
        such blocks. So a COLT-sized CNN is bounded ~13 samples at a time at 8 GB instead of running
        out of memory, while the paradox CONV keeps batches of 100."""
        hidden, widest = self._activation_sizes(in_shape)
        per_sample = 2 * 4 * max(hidden, 1) * widest
        return max(1, int(self.config.memory_gb * 2**30 // per_sample))

    def pre_activation_bounds(self, lb, ub):
        """Sound pre-activation bounds for the big-M constants: CROWN intersected with IBP."""
        relu_idx = [i for i, m in enumerate(flat_layers(self.net)) if isinstance(m, nn.ReLU)]
        eng = LinearBounds(self.net, lb, ub, "crown", "same")
        trace = IntervalTrace()
        interval_bounds(self.net, lb, ub, trace=trace)
        out = []
        for idx, (il, iu) in zip(relu_idx, trace.relu_inputs):
            cl, cu = eng.relu_input_bounds(idx)
            out.append((torch.max(il, cl).flatten().double().cpu().numpy(), torch.min(iu, cu).flatten().double().cpu().numpy()))
        return out

    def run(self, x: torch.Tensor, y: torch.Tensor, indices: list[int], progress=None) -> list[Verdict]:
        """Decide every sample. Runs in full precision whatever the caller's autocast, TF32 or
        float32-matmul settings (:func:`lit_cert.numerics.certified_numerics`), on the outward-
        rounded eps-box. The inputs are checked at the door (:func:`check_samples`).
        ``progress`` (a tqdm bar) moves by one per decided sample and shows the stage running."""
        check_full_precision_weights(self.net, "certification")
        check_samples(self.net, x, y, indices, self.config.stages)
        with certified_numerics(), coefficient_memory(self.config.memory_gb), shared_intermediate_bounds():
            return self._run(full_precision(x), y, indices, progress)

    def _run(self, x: torch.Tensor, y: torch.Tensor, indices: list[int], progress=None) -> list[Verdict]:
        net, cfg = self.net.eval(), self.config
        with torch.no_grad():
            logits = net(x)
        verdicts = [Verdict(int(i), int(t), int(p)) for i, t, p in zip(indices, y.tolist(), logits.argmax(1).tolist())]
        self._scales = {int(i): float(s) for i, s in zip(indices, logits.abs().amax(1).tolist())}
        for v in verdicts:
            if v.pred != v.label:
                v.decide("misclassified", "clean")
        lb, ub = certified_box(x, cfg.eps)  # rounded outward: it contains the exact eps-ball
        spec = margin_spec(y, logits.shape[1], x.dtype)
        shown = self._moved(progress, verdicts, 0)
        for name in cfg.stages:
            todo = [j for j, v in enumerate(verdicts) if v.open]
            if not todo:
                break
            if progress is not None:
                progress.set_postfix_str(f"{name}, {len(todo)} open", refresh=True)
            # complete stages decide one sample at a time: so does the progress bar
            groups = [[j] for j in todo] if STAGES[name].kind == "complete" else [todo]
            for group in groups:
                sel = torch.tensor(group, device=x.device)
                t0 = time.perf_counter()
                STAGES[name].run(self, [verdicts[j] for j in group], x[sel], y[sel], lb[sel], ub[sel], spec[sel])
                per = (time.perf_counter() - t0) / len(group)
                for j in group:  # batched stages: the batch's average; per-sample stages time themselves
                    verdicts[j].seconds.setdefault(name, per)
                shown = self._moved(progress, verdicts, shown)
        for v in verdicts:
            if v.open:
                v.status = "unknown"
                v.reason = v.reason or ("MILP not run" if "milp" not in cfg.stages else "undecided")
        self._moved(progress, verdicts, shown)
        return verdicts

    @staticmethod
    def _moved(progress, verdicts: list[Verdict], shown: int) -> int:
        """Move the bar to the number of decided samples; returns that number."""
        decided = sum(not v.open for v in verdicts)
        if progress is not None and decided > shown:
            progress.update(decided - shown)
        return max(decided, shown)


#: which bound rules each stage walks the network with (the attack needs only forward passes)
_STAGE_FAMILIES = {"ibp": ("interval",), "crown-ibp": ("interval", "backsub"), "crown": ("backsub",),
                   "alpha-crown": ("backsub",), "bab": ("backsub",), "milp": ("backsub",)}


def check_samples(net: nn.Module, x: torch.Tensor, y: torch.Tensor, indices, stages=STAGE_NAMES) -> None:
    """The cascade's door: a batch of finite images in [0, 1] of the network's input shape, one
    integer label per image inside the network's classes, one index per image, on the
    network's device; every layer has a rule of each stage that will walk it. Anything else is
    a :class:`~lit_cert.bounds.inputs.BoundInputError`, never a verdict."""
    from lit_cert.bounds.inputs import BoundInputError, check_box, check_network, network_outputs

    for family in sorted({f for s in stages for f in _STAGE_FAMILIES.get(s, ())}):
        check_network(net, family)
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise BoundInputError("the cascade takes tensors x (B, C, H, W) and y (B,)")
    if y.dim() != 1 or len(x) != len(y) or len(indices) != len(y):
        raise BoundInputError(f"the cascade needs x (B, ...), y (B,) and B indices; got x {tuple(x.shape)}, "
                              f"y {tuple(y.shape)}, {len(indices)} indices")
    check_box(x, x, net)  # floating point, batched, finite, on the network's device
    if y.is_floating_point() or y.dtype == torch.bool or y.device != x.device:
        raise BoundInputError(f"y must hold integer labels on the images' device, got {y.dtype} on {y.device}")
    if len(x) and not (x.min() >= 0 and x.max() <= 1):
        raise BoundInputError("images must hold pixel values in [0, 1] (eps is in pixel units; normalisation is the "
                              "network's first layer)")
    classes = network_outputs(net, x) if len(x) else None
    if classes is not None and (int(y.min()) < 0 or int(y.max()) >= classes):
        raise BoundInputError(f"labels must lie in 0..{classes - 1} (the network's classes), got "
                              f"{int(y.min())}..{int(y.max())}")


def check_verdict(net: nn.Module, x: torch.Tensor, y: int, eps: float, verdict: Verdict) -> bool:
    """Re-check one recorded verdict from its evidence alone, without the cascade: a falsified
    sample's counterexample lies in the exact eps-ball around ``x`` and is misclassified; a
    certified sample's margin bound is recomputed by its stage when that stage is a registry
    bound (``ibp``, ``crown-ibp``, ``crown``, ``alpha-crown``) and must be positive; a
    misclassified sample is misclassified. BaB and MILP certificates are re-checked by running
    that stage again (:class:`Cascade` with ``stages=(stage,)``). ``x`` is the sample as the
    dataset serves it (no batch dimension)."""
    net = net.eval()
    x = x.unsqueeze(0)
    with torch.no_grad(), certified_numerics():
        logits = net(x)
        if verdict.status == "misclassified":
            return int(logits.argmax(1)) != int(y)
        if verdict.status == "falsified":
            if verdict.counterexample is None:
                return False
            cex = torch.tensor(verdict.counterexample, dtype=x.dtype, device=x.device).view_as(x)
            exact = cex.double() - x.double()
            inside = bool((exact.abs() <= eps).all()) and bool(((cex >= 0) & (cex <= 1)).all())
            return inside and int(net(cex).argmax(1)) != int(y)
        if verdict.status == "certified":
            if verdict.stage in STAGES and STAGES[verdict.stage].kind == "bound":
                yy = torch.tensor([int(y)], device=x.device)
                margins = bound_spec(verdict.stage).lower(net, *certified_box(x, eps), margin_spec(yy, logits.shape[1], x.dtype))
                return bool(is_certified(margins, yy).all())
            verdicts = Cascade(net, CascadeConfig(eps=eps, stages=(verdict.stage,))).run(x, torch.tensor([int(y)], device=x.device),
                                                                                          [verdict.index])
            return verdicts[0].status == "certified"
    return verdict.status == "unknown"


def summarize(results: list[Verdict], stages: tuple[str, ...]) -> dict:
    """Counts and rates: natural, PGD and certified accuracy, decisions and time per stage."""
    n = len(results)
    certified_by = {s: sum(v.status == "certified" and v.stage == s for v in results) for s in stages if STAGES[s].kind != "attack"}
    falsified_by = {s: sum(v.status == "falsified" and v.stage == s for v in results) for s in stages if s in ("pgd", "milp", "bab")}
    seconds = {s: sum(v.seconds.get(s, 0.0) for v in results) for s in stages}
    ran = {s: sum(s in v.seconds for v in results) for s in stages}
    misclassified = sum(v.status == "misclassified" for v in results)
    rate = (lambda k: k / n) if n else (lambda k: 0.0)
    return {
        "samples": n,
        "natural_accuracy": rate(n - misclassified),
        # only when the attack ran: without it there is nothing to report (never natural accuracy again)
        "pgd_accuracy": rate(n - misclassified - falsified_by["pgd"]) if "pgd" in stages else None,
        "certified_accuracy": rate(sum(certified_by.values())),
        "misclassified": misclassified,
        "falsified": falsified_by,
        "certified": certified_by,
        "unknown": sum(v.status == "unknown" for v in results),
        # float32 certificates near 0 recomputed in float64 (kept only if they held there)
        "float64_rechecks": sum("float64_recheck" in v.details for v in results),
        "float64_rechecks_failed": sum(not v.details.get("float64_recheck", {}).get("held", True) for v in results),
        "stage_seconds": seconds,
        "stage_samples": ran,
        "stage_samples_per_second": {s: (ran[s] / seconds[s] if seconds[s] > 0 else None) for s in stages},
    }
