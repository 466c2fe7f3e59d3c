"""Time of one training step of every method divided by one standard step, same process.

    python benchmarks/bench_train_step.py [--threads 2] [--repeats 5] [--only ibp,sabr] [--device cuda]

A step = clean pass + loss + backward + Adam update, exactly what ``training_step`` runs, on a
fixed random batch; steps of all methods are interleaved and the median is reported.

* CNN7 (BatchNorm, IBP init) at MNIST shape, batch 64, eps 0.1, and (IBP only) CIFAR shape,
  batch 32: standard, PGD (10 steps), IBP with kappa = 0 (the CNN7 setting: robust loss only)
  and 0.5, CROWN-IBP (beta = 1, without and with loss fusion), SABR, TAPS, STAPS, MTL-IBP.
* The paradox paper's CONV at Fashion-MNIST shape, batch 100, eps 0.1: the relaxations with
  their own intermediate bounds (CROWN, DeepZ, hBox; ``_sparse``: ``sparse_intermediate: true``,
  the opt-in for CROWN/DeepZ, see lit_cert.methods.RelaxationTraining), which do not scale to CNN7.
* ``--blocks lp``: Triangle and Parallelogram (an LP per unstable neuron and margin) next to CROWN
  and IBP on the paradox FC and CONV, batch 10.
* The paradox FC (400-200-100-100) at Fashion-MNIST shape, batch 100: the same relaxations,
  expected tight bounds with the propagated masks of seed 001 Eq. 6 (``masks: propagated``) and
  IBP masks, and IBP.

``--conv-ckpt`` / ``--fc-ckpt`` load trained weights (a lit_cert checkpoint of that network) into
every method of that block, and ``--real-data`` times a batch of Fashion-MNIST training images
(found locally, e.g. Debian's dataset-fashion-mnist) instead of uniform noise: after certified
training most neurons are stable, which is what sparse intermediate bounds exploit.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import time_interleaved  # noqa: E402

from lit_cert.checkpoints import read_checkpoint  # noqa: E402
from lit_cert.data import CIFAR10, MNIST, FashionMNIST  # noqa: E402
from lit_cert.methods import (  # noqa: E402
    CROWNIBP, IBP, MTLIBP, SABR, STAPS, TAPS, ExpectedTightBounds, LPRelaxationTraining, PGDTraining, RelaxationTraining, Standard,
)
from lit_cert.models import CNN7, CONV, FC  # noqa: E402

CNN7_METHODS = {
    "pgd": (PGDTraining, {"pgd_steps": 10}, 0.0),
    "ibp": (IBP, {}, 0.0),
    "ibp_detached": (IBP, {"bn_statistics": "detached"}, 0.0),
    "ibp_kappa0.5": (IBP, {}, 0.5),
    "crown_ibp": (CROWNIBP, {}, 0.0),
    "crown_ibp_fused": (CROWNIBP, {"loss_fusion": True}, 0.0),
    "sabr": (SABR, {"lam": 0.4}, 0.0),
    "taps": (TAPS, {"split": 1}, 0.0),
    "staps": (STAPS, {"split": 1, "lam": 0.4}, 0.0),
    "mtl_ibp": (MTLIBP, {"alpha": 0.5}, 0.0),
}
RELAXATION_METHODS = {
    "crown": (RelaxationTraining, {"relaxation": "crown"}, 0.0),
    "crown_sparse": (RelaxationTraining, {"relaxation": "crown", "sparse_intermediate": True}, 0.0),
    "deepz": (RelaxationTraining, {"relaxation": "deepz"}, 0.0),
    "deepz_sparse": (RelaxationTraining, {"relaxation": "deepz", "sparse_intermediate": True}, 0.0),
    "hbox": (RelaxationTraining, {"relaxation": "hbox"}, 0.0),
    "crown_ibp": (CROWNIBP, {}, 0.0),
}
CONV_METHODS = {**RELAXATION_METHODS, "ibp": (IBP, {}, 0.0)}
FC_METHODS = {
    **RELAXATION_METHODS,
    "expected_propagated": (ExpectedTightBounds, {"masks": "propagated"}, 0.0),
    "expected_ibp_masks": (ExpectedTightBounds, {"masks": "ibp"}, 0.0),
    "ibp": (IBP, {}, 0.0),
}
LP_METHODS = {
    "triangle": (LPRelaxationTraining, {"relaxation": "triangle"}, 0.0),
    "parallelogram": (LPRelaxationTraining, {"relaxation": "parallelogram"}, 0.0),
    "crown": (RelaxationTraining, {"relaxation": "crown"}, 0.0),
    "ibp": (IBP, {}, 0.0),
}


def make_step(method, x, y, eps: float, kappa: float):
    """One optimiser step of ``method`` on (x, y) at full eps (after the ramp); on a GPU the step
    ends with a synchronisation, so wall time is the step's time."""
    method.train()
    method.eps, method.kappa, method.beta = eps, kappa, 1.0
    opt = torch.optim.Adam(method.parameters(), lr=1e-5)
    cuda = x.is_cuda

    def step():
        loss, _ = method.training_loss(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if cuda:
            torch.cuda.synchronize()

    return step


def peak_memory_mb(fns: dict) -> dict[str, float]:
    """Peak GPU memory (MB) of one step of each function, measured one at a time."""
    out = {}
    for name, fn in fns.items():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        fn()
        out[name] = torch.cuda.max_memory_allocated() / 2**20
    return out


def trained_weights(path: str | None, info) -> dict | None:
    """The network weights of a lit_cert checkpoint (None: random initialisation)."""
    if not path:
        return None
    return {k[len("net."):]: v for k, v in read_checkpoint(path)["state_dict"].items() if k.startswith("net.")}


def real_batch(info, batch: int):
    """The first ``batch`` Fashion-MNIST training images (found locally)."""
    dm = FashionMNIST(batch_size=batch)
    dm.setup("fit")
    return next(iter(dm.train_dataloader()))


MEMORY: dict[str, float] = {}  # peak GPU memory of the last bench() call, by method (--device cuda)


def bench(arch_factory, info, batch: int, eps: float, methods: dict, repeats: int, weights=None, data=None,
          device: str = "cpu") -> dict[str, float]:
    torch.manual_seed(0)
    if data is None:
        x = torch.rand(batch, *info.in_shape)
        y = torch.randint(0, info.num_classes, (batch,))
    else:
        x, y = data
    x, y = x.to(device), y.to(device)

    def build(cls, **kw):
        m = cls(network=arch_factory(), data_info=info, eps_test=eps, **kw)
        if weights is not None:
            m.net.load_state_dict(weights)
        return m.to(device)

    fns = {"standard": make_step(build(Standard), x, y, eps, 0.0)}
    for name, (cls, kw, kappa) in methods.items():
        fns[name] = make_step(build(cls, eps_train=eps, **kw), x, y, eps, kappa)
    times = time_interleaved(fns, repeats=repeats, warmup=1)
    MEMORY.clear()
    if str(device).startswith("cuda"):
        MEMORY.update(peak_memory_mb(fns))
    return times


def report(label: str, t: dict[str, float]) -> None:
    base = t["standard"]
    print(f"\n{label}: standard step {1e3 * base:.1f} ms")
    for name, v in t.items():
        memory = f"   peak {MEMORY[name]:>8.1f} MB" if name in MEMORY else ""
        if name != "standard":
            print(f"  {name:<14} {1e3 * v:>9.1f} ms   {v / base:>6.2f} x standard{memory}")
        elif memory:
            print(f"  {'standard':<14} {1e3 * v:>9.1f} ms   {1.0:>6.2f} x standard{memory}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated method names (default: all)")
    parser.add_argument("--blocks", default="cnn7,cifar,conv,fc", help="which networks (default: all but lp)")
    parser.add_argument("--conv-ckpt", default=None, help="trained CONV checkpoint for the CONV block")
    parser.add_argument("--fc-ckpt", default=None, help="trained FC checkpoint for the FC block")
    parser.add_argument("--real-data", action="store_true", help="Fashion-MNIST images for the CONV/FC blocks")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda: time the steps there (and report peak GPU memory)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    keep = set(filter(None, args.only.split(",")))

    def pick(d):
        return {k: v for k, v in d.items() if not keep or k in keep}

    blocks = set(args.blocks.split(","))
    where = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else f"{args.threads} threads"
    print(f"torch {torch.__version__}, {where}, median of {args.repeats} interleaved steps")
    dev = args.device
    if "cnn7" in blocks:
        report("CNN7, MNIST shape, batch 64, eps 0.1", bench(CNN7, MNIST.info, 64, 0.1, pick(CNN7_METHODS), args.repeats, device=dev))
    if "cifar" in blocks:
        ibp_only = {k: v for k, v in CNN7_METHODS.items() if k.startswith("ibp")}
        report("CNN7, CIFAR shape, batch 32, eps 2/255", bench(CNN7, CIFAR10.info, 32, 2 / 255, pick(ibp_only), args.repeats, device=dev))
    fm = FashionMNIST.info
    data = real_batch(fm, 100) if args.real_data else None
    source = "Fashion-MNIST images" if data is not None else "uniform noise"
    for key, arch, methods, ckpt, label in (("conv", CONV, CONV_METHODS, args.conv_ckpt, "CONV"),
                                            ("fc", FC, FC_METHODS, args.fc_ckpt, "FC 400-200-100-100")):
        if key in blocks:
            weights = trained_weights(ckpt, fm)
            state = f"trained ({ckpt})" if weights is not None else "random init"
            report(f"{label}, {state}, batch 100 of {source}, eps 0.1",
                   bench(arch, fm, 100, 0.1, pick(methods), args.repeats, weights, data, device=dev))
    if "lp" in blocks:  # the LP relaxations: one LP per unstable neuron and margin, so a small batch
        for arch, ckpt, label in ((FC, args.fc_ckpt, "FC 400-200-100-100"), (CONV, args.conv_ckpt, "CONV")):
            weights = trained_weights(ckpt, fm)
            state = f"trained ({ckpt})" if weights is not None else "random init"
            small = None if data is None else (data[0][:10], data[1][:10])
            report(f"{label}, {state}, batch 10 of {source}, eps 0.1",
                   bench(arch, fm, 10, 0.1, pick(LP_METHODS), args.repeats, weights, small, device=dev))


if __name__ == "__main__":
    main()
