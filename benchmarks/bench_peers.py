"""lit_cert's training steps next to the peers', on the same network, weights and batch, steps
interleaved in one process (issue #24): IBP, CROWN-IBP (without and with loss fusion) on CNN7
(BatchNorm, IBP init) at MNIST shape, batch 64, eps 0.1, and CROWN relaxation training on the
paradox paper's CONV at Fashion-MNIST shape, batch 100, eps 0.1. A step is what training runs:
clean pass (its BatchNorm batch statistics feed the bounds), bounds, robust cross-entropy,
backward, Adam update; every time is divided by lit_cert's standard step in the same process.

    python benchmarks/bench_peers.py --auto-lirpa DIR --ctbench DIR [--threads 1] [--repeats 10]
        [--blocks cnn7,conv] [--memory] [--profile] [--device cpu|cuda] [--real-data]

DIR are local clones of the peers' public repositories (Verified-Intelligence/auto_LiRPA,
eth-sri/CTBench), put on ``sys.path`` here; a peer that is absent or fails to import is skipped
with a note. Nothing in lit_cert or its tests depends on them.

Before timing, each peer's margin lower bounds and its loss gradient are compared with lit_cert's
on fresh copies of the same weights (train mode, one batch): the table says "same" where bounds
agree to 1e-5 (relative to their scale) and gradients to 1e-4, and prints the differences
otherwise -- a different training signal is then a different method, not a faster one.

``--crown`` instead times full CROWN of one CNN7 sample (every intermediate bound back-substituted,
the margins' lower bounds; lit_cert's windows against auto_LiRPA's patches, each library's
default) at eps 0.01, 0.03 and 0.1, on a random CNN7 or a checkpoint's (``--ckpt``): each run in
a fresh one-thread process with its peak RSS growth, the tools alternating, bounds compared.

    python benchmarks/bench_peers.py --crown --auto-lirpa DIR [--ckpt RUN.ckpt] [--samples 2]

``--memory`` adds the peak memory of one step: on CPU the growth of the resident set (VmHWM -
VmRSS, Linux) over a fresh child process that builds the same step and runs it once; on a GPU
``torch.cuda.max_memory_allocated`` in this process. ``--profile`` splits lit_cert's steps
(one profiled run each) into dense linear algebra -- the convolutions and matrix products that
walking the same rows costs any implementation, a floor for the step -- and everything else.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import time_interleaved  # noqa: E402

from lit_cert.bounds.spec import margin_spec  # noqa: E402
from lit_cert.data import FashionMNIST, MNIST  # noqa: E402
from lit_cert.layers import Normalize  # noqa: E402
from lit_cert.methods import CROWNIBP, IBP, RelaxationTraining, Standard  # noqa: E402
from lit_cert.models import CNN7, CONV  # noqa: E402

BOUND_RTOL, GRAD_RTOL = 1e-5, 1e-5  # float64 agreement


# --------------------------------------------------------------------------- the workloads
@dataclass(frozen=True)
class Workload:
    """One row of the table: a network block and a bound."""

    block: str  # "cnn7" or "conv"
    name: str  # "ibp", "crown_ibp", "crown_ibp_fused", "crown"


WORKLOADS = [Workload("cnn7", "ibp"), Workload("cnn7", "crown_ibp"), Workload("cnn7", "crown_ibp_fused"), Workload("conv", "crown")]
BLOCKS = {  # architecture, data info, batch, eps
    "cnn7": (CNN7, MNIST.info, 64, 0.1),
    "conv": (CONV, FashionMNIST.info, 100, 0.1),
}
LIT_METHODS = {
    "ibp": (IBP, {}),
    "crown_ibp": (CROWNIBP, {}),
    "crown_ibp_fused": (CROWNIBP, {"loss_fusion": True}),
    "crown": (RelaxationTraining, {"relaxation": "crown"}),
}


def batch(block: str, real_data: bool, device: str):
    arch, info, size, eps = BLOCKS[block]
    torch.manual_seed(0)
    if real_data:  # Fashion-MNIST training images (found locally); the same shape as MNIST
        dm = FashionMNIST(batch_size=size)
        dm.setup("fit")
        x, y = next(iter(dm.train_dataloader()))
    else:
        x = torch.rand(size, *info.in_shape)
        y = torch.randint(0, info.num_classes, (size,))
    return x.to(device), y.to(device)


def lit_method(block: str, name: str, weights: dict | None, device: str):
    arch, info, _, eps = BLOCKS[block]
    cls, kw = (Standard, {}) if name == "standard" else LIT_METHODS[name]
    torch.manual_seed(0)
    m = cls(network=arch(), data_info=info, eps_test=eps, **({} if name == "standard" else {"eps_train": eps}), **kw)
    if weights is not None:
        m.net.load_state_dict(weights)
    m.train()
    m.eps, m.kappa, m.beta = eps, 0.0, 1.0
    return m.to(device)


def plain_layers(net: nn.Sequential) -> list[nn.Module]:
    """lit_cert's layers as plain torch modules with copied weights (Normalize kept aside)."""
    out = []
    for layer in net:
        if isinstance(layer, Normalize):
            continue
        if isinstance(layer, nn.BatchNorm2d) or isinstance(layer, nn.BatchNorm1d):
            plain = (nn.BatchNorm2d if isinstance(layer, nn.BatchNorm2d) else nn.BatchNorm1d)(layer.num_features)
            plain.load_state_dict({k: v for k, v in layer.state_dict().items() if k in plain.state_dict()})
            out.append(plain.to(layer.weight.device))
        elif isinstance(layer, (nn.Conv2d, nn.Linear, nn.ReLU, nn.Flatten)):
            out.append(copy.deepcopy(layer))
        else:
            raise TypeError(f"no plain copy of {type(layer).__name__}")
    return out


def others_spec(y: torch.Tensor, k: int) -> torch.Tensor:
    """C (B, K-1, K): rows e_y - e_j for j != y in increasing j (the peers' convention)."""
    full = margin_spec(y, k, torch.get_default_dtype())
    keep = torch.ones(y.shape[0], k, dtype=torch.bool, device=y.device)
    keep[torch.arange(y.shape[0]), y] = False
    return full[keep].view(y.shape[0], k - 1, k)


def lit_bounds(m, name: str, x, y, eps) -> torch.Tensor:
    """lit_cert's margin lower bounds (B, K-1) in train mode after the clean pass, as its training
    uses them; for loss fusion the per-sample upper bounds (B,) of the robust cross-entropy."""
    from lit_cert.bounds.region import linf_box
    from lit_cert.bounds.registry import bound_spec
    from lit_cert.bounds.trace import IntervalTrace

    m.net(x)  # BatchNorm batch statistics of the clean batch
    lb, ub = linf_box(x, eps)
    if name == "crown_ibp_fused":  # per-sample upper bound of the robust CE
        from lit_cert.bounds.fusion import fused_robust_ce

        return fused_robust_ce(m.net, lb, ub, y, m.num_classes)
    spec = others_spec(y, m.num_classes)
    if name == "ibp":
        return bound_spec("ibp").lower(m.net, lb, ub, spec, purpose="train")
    if name.startswith("crown_ibp"):
        trace = IntervalTrace()
        bound_spec("ibp").lower(m.net, lb, ub, spec, trace, purpose="train")
        return bound_spec("crown-ibp").lower(m.net, lb, ub, spec, trace, purpose="train")
    return bound_spec("crown").lower(m.net, lb, ub, spec, purpose="train")


# --------------------------------------------------------------------------- the peers
class Peer:
    """A peer's version of a workload: ``loss(x, y)`` (robust CE of one step), ``bounds(x, y)``
    (margin lower bounds, B x K-1), ``parameters()`` in lit_cert's layer order."""

    name = "peer"
    #: what differs from lit_cert's training signal by construction (shown in the table)
    note = ""

    def parameters(self):
        raise NotImplementedError


class AutoLiRPA(Peer):
    name = "auto_LiRPA"
    METHODS = {"ibp": "IBP", "crown_ibp": "CROWN-IBP", "crown": "CROWN"}

    def __init__(self, module, lit, workload: Workload, x, device):
        self.mod = module
        self.fused = workload.name == "crown_ibp_fused"
        _, info, _, self.eps = BLOCKS[workload.block]
        mean = torch.tensor(info.mean, device=device).view(1, -1, 1, 1)
        std = torch.tensor(info.std, device=device).view(1, -1, 1, 1)
        self.norm = lambda t: (t - mean) / std
        self.net = nn.Sequential(*plain_layers(lit.net)).to(device).eval()  # traced in eval mode (BatchNorm1d)
        opts = {"relu": "adaptive", "conv_mode": "patches"}
        if self.fused:  # Shi et al.'s / auto_LiRPA's loss fusion: bound sum_i exp(z_i - z_y) from above
            from auto_LiRPA.wrapper import CrossEntropyWrapper

            dummy = (torch.zeros_like(x[:2]), torch.zeros(2, dtype=torch.long, device=device))
            self.model = module.BoundedModule(CrossEntropyWrapper(self.net), dummy, bound_opts={**opts, "loss_fusion": True},
                                              device=device)
            from auto_LiRPA.operators import BoundExp

            self.exp = next(n for n in self.model.modules() if isinstance(n, BoundExp))
            # BoundExp.bound_backward floors the slope of the exp chord at 1e-8: where a class's
            # chord is flatter (loose margins, as here at initialisation) the bound is looser and
            # that class's gradient is cut; with that one clamp removed the gradients equal
            # lit_cert's to 2e-8 (float64, checked on a patched local copy)
            self.note = "the exp chord's slope floored at 1e-8 (BoundExp): a looser bound where margins are loose"
        else:
            self.model = module.BoundedModule(self.net, torch.zeros_like(x[:2]), bound_opts=opts, device=device)
        self.model.train()
        self.method = self.METHODS.get(workload.name, "CROWN-IBP")
        self.k = info.num_classes

    def bounds(self, x, y):
        from auto_LiRPA.perturbations import PerturbationLpNorm

        # the clean pass first, as Shi et al.'s training loop does: auto_LiRPA's BatchNorm bounds
        # use the statistics of the last forward (without it, those of the tracing call)
        lo, hi = self.norm((x - self.eps).clamp(0, 1)), self.norm((x + self.eps).clamp(0, 1))
        bx = self.mod.BoundedTensor(self.norm(x), PerturbationLpNorm(norm=float("inf"), x_L=lo, x_U=hi))
        if self.fused:  # per-sample upper bound of the robust CE
            self.model(bx, y)
            _, ub = self.model.compute_bounds(x=(bx, y), C=None, method=self.method, bound_lower=False, bound_upper=True)
            return (torch.log(ub) + self.exp.max_input).flatten()
        self.model(self.norm(x))
        lb, _ = self.model.compute_bounds(x=(bx,), C=others_spec(y, self.k), method=self.method, bound_upper=False)
        return lb

    def loss(self, x, y):
        if self.fused:
            return self.bounds(x, y).mean()
        lb = self.bounds(x, y)
        padded = torch.cat([torch.zeros_like(lb[:, :1]), -lb], 1)
        return F.cross_entropy(padded, torch.zeros_like(y))

    def parameters(self):
        return list(self.net.parameters())


class CTBench(Peer):
    name = "CTBench"

    def __init__(self, modules, lit, workload: Workload, x, device):
        abs_layers, conc_layers, wrappers = modules
        _, info, _, self.eps = BLOCKS[workload.block]
        self.torch_net = nn.Sequential(conc_layers.Normalization(tuple(info.in_shape), list(info.mean), list(info.std)),
                                       *plain_layers(lit.net)).to(device, torch.get_default_dtype())
        self.net = abs_layers.Sequential.from_concrete_network(self.torch_net, tuple(info.in_shape), disconnect=False).to(device)
        self.net.set_dim(torch.zeros_like(x[:1]))
        self.net.train()
        args = SimpleNamespace(train_eps=self.eps, test_eps=self.eps, grad_clip=10.0, use_amp=False)
        if workload.name == "ibp":
            self.wrapper = wrappers.BoxModelWrapper(self.net, nn.CrossEntropyLoss(), tuple(info.in_shape), device, args)
        else:
            self.wrapper = wrappers.DeepPolyModelWrapper(self.net, nn.CrossEntropyLoss(), tuple(info.in_shape), device, args,
                                                         use_dp_box=workload.name.startswith("crown_ibp"),
                                                         loss_fusion=workload.name == "crown_ibp_fused")
            if workload.name == "crown_ibp_fused":
                self.note = "fusion's exp relaxation uses IBP box bounds of the margins (construct_C_for_lf): another bound"
        self.wrapper.robust_weight = 1.0
        self.wrapper.summary_accu_stat = True
        self.fused = workload.name == "crown_ibp_fused"
        self.domain = {"ibp": "box", "crown_ibp": "deeppoly_box", "crown_ibp_fused": "deeppoly_box", "crown": "deeppoly"}[workload.name]

    def bounds(self, x, y):
        from AIDomains.wrapper import propagate_abs
        from AIDomains.zonotope import HybridZonotope

        self.wrapper.compute_nat_loss_and_set_BN(x, y)  # clean pass: BatchNorm statistics for the bounds
        box = HybridZonotope.construct_from_bounds((x - self.eps).clamp(min=0), (x + self.eps).clamp(max=1), domain="box")
        if self.fused:  # per-sample upper bound of the robust CE
            return propagate_abs(self.net, "deeppoly_box_loss_fusion", box, y)[0].flatten()
        out, _ = propagate_abs(self.net, self.domain, box, y)
        return -out[:, 1:]

    def loss(self, x, y):
        (loss, _, _), _ = self.wrapper.compute_model_stat(x, y, self.eps)
        return loss

    def parameters(self):
        return [p for p in self.net.parameters() if p.requires_grad]


def load_peers(args) -> tuple[dict[str, Callable], list[str]]:
    """Factories for the peers found, and a note for each one skipped."""
    factories, notes = {}, []
    if args.auto_lirpa:
        try:
            sys.path.insert(0, str(Path(args.auto_lirpa).resolve()))
            import auto_LiRPA

            factories["auto_LiRPA"] = lambda lit, w, x, dev: AutoLiRPA(auto_LiRPA, lit, w, x, dev)
            notes.append(f"auto_LiRPA {auto_LiRPA.__version__} from {args.auto_lirpa}")
        except Exception as err:  # a peer that does not import is skipped, with the reason
            notes.append(f"auto_LiRPA skipped: {type(err).__name__}: {err}")
    else:
        notes.append("auto_LiRPA skipped: no --auto-lirpa DIR")
    if args.ctbench:
        try:
            sys.path.insert(0, str(Path(args.ctbench).resolve()))
            import AIDomains.abstract_layers as abs_layers
            import AIDomains.concrete_layers as conc_layers
            import model_wrapper as wrappers

            head = subprocess.run(["git", "-C", str(args.ctbench), "log", "-1", "--format=%h %as"], capture_output=True, text=True).stdout.strip()
            factories["CTBench"] = lambda lit, w, x, dev: CTBench((abs_layers, conc_layers, wrappers), lit, w, x, dev)
            notes.append(f"CTBench {head or '(no git)'} from {args.ctbench}")
        except Exception as err:
            notes.append(f"CTBench skipped: {type(err).__name__}: {err}")
    else:
        notes.append("CTBench skipped: no --ctbench DIR")
    return factories, notes


# --------------------------------------------------------------------------- checks and steps
def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-12))


def compare(lit, peer: Peer, workload: Workload, x, y) -> dict:
    """Bounds and loss gradients of a fresh peer vs fresh lit_cert, same weights and batch."""
    out = {}
    _, _, _, eps = BLOCKS[workload.block]
    with torch.no_grad():
        ours = lit_bounds(lit, workload.name, x, y, eps)
        theirs = peer.bounds(x, y)
    out["bounds"] = relative(theirs, ours)
    lit.zero_grad(set_to_none=True)
    lit.training_loss(x, y)[0].backward()
    g_ours = [p.grad.flatten() for p in lit.net.parameters() if p.requires_grad and p.grad is not None]
    loss = peer.loss(x, y)
    g_theirs = torch.autograd.grad(loss, peer.parameters(), allow_unused=True)
    if len(g_theirs) == len(g_ours) and all(g is not None for g in g_theirs):
        # over the whole gradient: the biases before a BatchNorm have a zero true gradient, so a
        # per-tensor ratio would compare rounding noise with rounding noise
        out["grad"] = relative(torch.cat([g.flatten() for g in g_theirs]), torch.cat(g_ours))
    else:
        out["grad"] = float("nan")
    return out


@contextlib.contextmanager
def default_dtype(dtype):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def checked(factory, workload: Workload, x, y, device) -> dict:
    """:func:`compare` in float64 (the verdict: at CNN7's initial scale, margins of ~1e8 differ
    by float32 rounding of the summation order alone) and in float32 (what training sees)."""
    out = {}
    for dtype, suffix in ((torch.float64, ""), (torch.float32, "32")):
        with default_dtype(dtype):
            lit = lit_method(workload.block, workload.name, None, device).to(dtype)
            peer = factory(lit, workload, x.to(dtype), device)
            for k, v in compare(lit, peer, workload, x.to(dtype), y).items():
                out[k + suffix] = v
    out["note"] = peer.note
    return out


#: implementations whose step produced a non-finite gradient (the update was skipped)
NON_FINITE: set[str] = set()


def make_step(label: str, loss_fn: Callable[[], torch.Tensor], params: list, cuda: bool) -> Callable[[], None]:
    """loss, backward, Adam update -- skipped (and ``label`` noted) when a gradient is not finite,
    as a GradScaler skips it: the step costs the same and the weights stay usable. Every
    implementation runs this same loop, so the check costs all of them alike."""
    params = list(params)
    opt = torch.optim.Adam(params, lr=1e-5)

    def step():
        loss = loss_fn()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grads = [p.grad for p in params if p.grad is not None]
        if bool(torch.stack([g.abs().max() for g in grads]).isfinite().all()):
            opt.step()
        else:
            NON_FINITE.add(label)
        if cuda:
            torch.cuda.synchronize()

    return step


def build_step(impl: str, workload: Workload, factories, x, y, device) -> Callable[[], None]:
    lit = lit_method(workload.block, "standard" if impl == "standard" else workload.name, None, device)
    label = "standard" if impl == "standard" else f"{workload.name}/{impl}"
    if impl in ("lit_cert", "standard"):
        return make_step(label, lambda: lit.training_loss(x, y)[0], lit.parameters(), x.is_cuda)
    peer = factories[impl](lit, workload, x, device)
    return make_step(label, lambda: peer.loss(x, y), peer.parameters(), x.is_cuda)


def rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def memory_child(args) -> None:
    """In a fresh process: build one step, then report how far its first run raised the peak RSS."""
    block, name, impl = args.memory_child.split(":")
    factories, _ = load_peers(args)
    x, y = batch(block, args.real_data, "cpu")
    step = build_step(impl, Workload(block, name), factories, x, y, "cpu")
    before = rss_kb("VmRSS")
    step()
    print("PEAK_MB=" + json.dumps((rss_kb("VmHWM") - before) / 1024))


def peak_cpu_mb(args, block: str, name: str, impl: str) -> float | None:
    cmd = [sys.executable, __file__, "--memory-child", f"{block}:{name}:{impl}", "--threads", str(args.threads)]
    for flag, value in (("--auto-lirpa", args.auto_lirpa), ("--ctbench", args.ctbench)):
        if value:
            cmd += [flag, value]
    if args.real_data:
        cmd.append("--real-data")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("PEAK_MB=")]
    return json.loads(line[-1][8:]) if line else None


def peak_cuda_mb(step: Callable[[], None]) -> float:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    step()
    return torch.cuda.max_memory_allocated() / 2**20


#: the profiler's names of the dense linear algebra (convolutions, matrix products): the work a
#: back-substitution of the same rows must do in any implementation
LINALG_OPS = ("aten::_convolution", "aten::convolution_backward", "aten::mkldnn_convolution", "aten::mm", "aten::bmm",
              "aten::addmm", "aten::baddbmm")


def profile_split(step: Callable[[], None]) -> tuple[float, float]:
    """(seconds of dense linear algebra, seconds of everything else) in one profiled run of
    ``step`` (self CPU time): the first is a floor no reordering of the elementwise work lowers."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    events = prof.key_averages()
    linalg = sum(e.self_cpu_time_total for e in events if e.key in LINALG_OPS) / 1e6
    total = sum(e.self_cpu_time_total for e in events) / 1e6
    return linalg, total - linalg


def verdict(rel64: float, rel32: float, tol: float) -> str:
    """"same" when float64 agrees to ``tol``; the float32 difference is shown beside it."""
    word = "same" if rel64 <= tol else "differ"
    return f"{word} ({rel64:.0e}; fp32 {rel32:.0e})"


# --------------------------------------------------------------------------- main
# --------------------------------------------------------------------------- full CROWN of one CNN7 sample (#37)
CROWN_EPS = (0.01, 0.03, 0.1)


def crown_case(ckpt: str | None, index: int):
    """(lit_cert network in eval mode, its Normalize layer, x (1, C, H, W), y (1,), data info): the
    ``index``-th correctly classified test image of a checkpoint's data, or uniform noise
    (seed ``index``) through a random full-width CNN7 (IBP initialisation, seed 0) at MNIST shape."""
    if ckpt:
        from lit_cert.runs import load_run, split_dataset

        model, dm = load_run(ckpt, None)
        net, ds, info = model.net.eval(), split_dataset(dm, "test"), dm.info
        found = -1
        for i in range(len(ds)):
            x, y = ds[i][0].unsqueeze(0), int(ds[i][1])
            with torch.no_grad():
                found += int(net(x).argmax()) == y
            if found == index:
                break
    else:
        info = MNIST.info
        torch.manual_seed(0)
        net = CNN7().build(info).eval()
        gen = torch.Generator().manual_seed(index)
        x = torch.rand(1, *info.in_shape, generator=gen)
        with torch.no_grad():
            y = int(net(x).argmax())
    norm = next(m for m in net if isinstance(m, Normalize))
    return net, norm, x, torch.tensor([y]), info


def crown_child(spec: dict) -> dict:
    """In a fresh process: one tool's full CROWN lower bounds of the margins of one sample (every
    intermediate bound by back-substitution, each library's default engine), its wall time and
    how far it raised the peak RSS (VmHWM reset after the setup)."""
    import time

    net, norm, x, y, info = crown_case(spec["ckpt"], spec["sample"])
    eps = spec["eps"]
    lo, hi = (x - eps).clamp(0, 1), (x + eps).clamp(0, 1)
    c = others_spec(y, info.num_classes)
    if spec["tool"] == "lit_cert":
        from lit_cert.bounds.backsub import LinearBounds, coefficient_memory

        def run():
            with torch.no_grad(), coefficient_memory(8.0):  # certify's default memory_gb
                return LinearBounds(net, lo, hi, "crown", "same").output_bounds(c, need_upper=False)[0]
    else:
        sys.path.insert(0, str(Path(spec["auto_lirpa"]).resolve()))
        import auto_LiRPA
        from auto_LiRPA.perturbations import PerturbationLpNorm

        plain = nn.Sequential(*plain_layers(net)).eval()
        model = auto_LiRPA.BoundedModule(plain, torch.zeros_like(x), device="cpu")
        z = norm(x)
        bx = auto_LiRPA.BoundedTensor(z, PerturbationLpNorm(norm=float("inf"), x_L=norm(lo), x_U=norm(hi)))

        def run():
            with torch.no_grad():
                return model.compute_bounds(x=(bx,), C=c, method="CROWN", bound_upper=False)[0]
    Path("/proc/self/clear_refs").write_text("5")  # the peak RSS from here on
    before = rss_kb("VmRSS")
    start = time.perf_counter()
    low = run()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_mb": (rss_kb("VmHWM") - before) / 1024, "bounds": low.flatten().tolist()}


def crown_table(args) -> None:
    """Full CROWN per CNN7 sample, lit_cert beside auto_LiRPA: each (tool, eps, sample) in its own
    process on one thread, the two tools alternating which goes first, bounds compared."""
    if not args.auto_lirpa:
        raise SystemExit("--crown needs --auto-lirpa DIR")
    what = f"checkpoint {args.ckpt}" if args.ckpt else "random CNN7 (IBP init, seed 0), uniform-noise inputs"
    print(f"full CROWN per sample, {what}; torch {torch.__version__}, 1 thread; uptime: {os.popen('uptime').read().strip()}")
    print("| eps | sample | lit_cert s | auto_LiRPA s | lit / auto time | lit_cert peak MB | auto_LiRPA peak MB "
          "| lit / auto memory | max rel. bound difference |")
    print("|---|---|---|---|---|---|---|---|---|")
    for eps in args.crown_eps:
        for sample in range(args.samples):
            out = {}
            order = ("lit_cert", "auto_LiRPA") if sample % 2 == 0 else ("auto_LiRPA", "lit_cert")
            for tool in order:
                spec = {"tool": tool, "eps": eps, "sample": sample, "ckpt": args.ckpt, "auto_lirpa": args.auto_lirpa}
                proc = subprocess.run([sys.executable, __file__, "--crown-child", json.dumps(spec)], capture_output=True,
                                      text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
                lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("CROWN=")]
                if not lines:
                    raise SystemExit(f"{tool} failed:\n{proc.stderr[-2000:]}")
                out[tool] = json.loads(lines[-1][6:])
            lit, auto = out["lit_cert"], out["auto_LiRPA"]
            a, b = torch.tensor(lit["bounds"], dtype=torch.float64), torch.tensor(auto["bounds"], dtype=torch.float64)
            rel = float((a - b).abs().max() / b.abs().max().clamp(min=1e-12))
            print(f"| {eps} | {sample} | {lit['seconds']:.2f} | {auto['seconds']:.2f} | {lit['seconds'] / auto['seconds']:.2f} "
                  f"| {lit['peak_mb']:.0f} | {auto['peak_mb']:.0f} | {lit['peak_mb'] / max(auto['peak_mb'], 1):.2f} | {rel:.1e} |",
                  flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--auto-lirpa", default=None, help="local clone of Verified-Intelligence/auto_LiRPA")
    p.add_argument("--ctbench", default=None, help="local clone of eth-sri/CTBench")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--blocks", default="cnn7,conv")
    p.add_argument("--only", default="", help="comma-separated workload names (ibp, crown_ibp, crown_ibp_fused, crown)")
    p.add_argument("--memory", action="store_true", help="peak memory of one step")
    p.add_argument("--profile", action="store_true",
                   help="split lit_cert's step (torch.profiler) into dense linear algebra and the rest, per standard step")
    p.add_argument("--device", default="cpu")
    p.add_argument("--real-data", action="store_true", help="Fashion-MNIST training images instead of uniform noise")
    p.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--crown", action="store_true", help="full CROWN per CNN7 sample beside auto_LiRPA instead of training steps")
    p.add_argument("--ckpt", default=None, help="--crown: a trained CNN7's checkpoint (default: a random CNN7)")
    p.add_argument("--samples", type=int, default=2, help="--crown: samples per eps")
    p.add_argument("--crown-eps", type=float, nargs="+", default=list(CROWN_EPS), help="--crown: the eps values")
    p.add_argument("--crown-child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_child:
        memory_child(args)
        return 0
    if args.crown_child:
        print("CROWN=" + json.dumps(crown_child(json.loads(args.crown_child))))
        return 0
    if args.crown:
        crown_table(args)
        return 0
    factories, notes = load_peers(args)
    dev = args.device
    where = torch.cuda.get_device_name(dev) if dev.startswith("cuda") else f"{args.threads} thread(s)"
    load = os.getloadavg()[0]
    print(f"torch {torch.__version__}, {where}, load average {load:.2f}, median of {args.repeats} interleaved steps")
    for n in notes:
        print(f"  {n}")
    keep = set(filter(None, args.only.split(",")))
    for block in [b for b in ("cnn7", "conv") if b in args.blocks.split(",")]:
        workloads = [w for w in WORKLOADS if w.block == block and (not keep or w.name in keep)]
        if not workloads:
            continue
        x, y = batch(block, args.real_data, dev)
        fns: dict[str, Callable[[], None]] = {"standard": build_step("standard", workloads[0], factories, x, y, dev)}
        checks: dict[str, dict] = {}
        peer_notes: dict[str, str] = {}
        for w in workloads:
            fns[f"{w.name}/lit_cert"] = build_step("lit_cert", w, factories, x, y, dev)
            for impl, factory in factories.items():
                key = f"{w.name}/{impl}"
                try:
                    checks[key] = checked(factory, w, x, y, dev)
                    peer_notes[key] = checks[key].pop("note")
                    fns[key] = build_step(impl, w, factories, x, y, dev)
                except NotImplementedError as err:
                    peer_notes[key] = f"not run: {err}"
                except Exception as err:  # report, keep benchmarking the others
                    peer_notes[key] = f"failed: {type(err).__name__}: {err}"
                    traceback.print_exc(limit=3)
        times = time_interleaved(fns, repeats=args.repeats, warmup=1)
        memory: dict[str, float | None] = {}
        if args.memory:
            for key, fn in fns.items():
                name, _, impl = key.partition("/")
                memory[key] = peak_cuda_mb(fn) if dev.startswith("cuda") else peak_cpu_mb(args, block, workloads[0].name if key == "standard" else name,
                                                                                          impl or "standard")
        splits: dict[str, tuple[float, float]] = {}
        if args.profile:
            for key, fn in fns.items():
                if key == "standard" or key.endswith("/lit_cert"):
                    splits[key] = profile_split(fn)
        _, info, size, eps = BLOCKS[block]
        base = times["standard"]
        print(f"\n{block.upper()} ({info.name} shape), batch {size}, eps {eps}: standard step {1e3 * base:.1f} ms"
              + (f", peak {memory['standard']:.0f} MB" if memory.get("standard") is not None else ""))
        print("| step | implementation | ms | / standard | peak MB | bounds vs lit_cert | gradient vs lit_cert | note |")
        print("|---|---|---|---|---|---|---|---|")
        for w in workloads:
            for impl in ["lit_cert", *factories]:
                key = f"{w.name}/{impl}"
                if key not in fns:
                    print(f"| {w.name} | {impl} | - | - | - | - | - | {peer_notes.get(key, '')} |")
                    continue
                c = checks.get(key, {})
                same_b = "-" if impl == "lit_cert" else verdict(c["bounds"], c["bounds32"], BOUND_RTOL)
                same_g = "-" if impl == "lit_cert" else verdict(c["grad"], c["grad32"], GRAD_RTOL)
                mem = f"{memory[key]:.0f}" if memory.get(key) is not None else "-"
                if key in NON_FINITE:
                    peer_notes[key] = "; ".join(filter(None, [peer_notes.get(key), "non-finite gradients (updates skipped)"]))
                print(f"| {w.name} | {impl} | {1e3 * times[key]:.1f} | {times[key] / base:.2f} | {mem} | {same_b} | {same_g} | "
                      f"{peer_notes.get(key, '')} |")
        if splits:  # shares of one profiled run, scaled by the unprofiled ratio (the profiler inflates small ops)
            print("\nprofiled once: share of dense linear algebra (convolutions, matrix products) in the step, and that "
                  "share of the measured ratio (a floor for the same rows)")
            for key, (linalg, rest) in splits.items():
                share = linalg / (linalg + rest)
                print(f"  {key}: {100 * share:.0f}% -> {share * times[key] / base:.2f} standard steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
