"""Samples per second of each certification stage, same process.

    python benchmarks/bench_certify.py [--threads 2] [--batch 32]

Random CNN7 (IBP init, eval mode) at MNIST shape, eps 0.1 -- the stages that scale to it: PGD
(50 steps, 3 restarts), IBP, CROWN-IBP. Full CROWN/alpha-CROWN back-substitute every hidden
neuron (~50k per conv layer for CNN7) and the MILP needs dense matrices: they are measured on
the paradox CONV network (Fashion-MNIST shape) instead, see the stage table of
``python -m lit_cert certify`` in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import time_interleaved  # noqa: E402

from lit_cert.attacks import pgd_attack  # noqa: E402
from lit_cert.bounds import compute_bounds, linf_box, margin_spec  # noqa: E402
from lit_cert.bounds.alpha_crown import alpha_crown_margins  # noqa: E402
from lit_cert.data import MNIST, FashionMNIST  # noqa: E402
from lit_cert.models import CNN7, CONV  # noqa: E402


def rate(fn, n: int, repeats: int = 3) -> float:
    """Samples per second: ``n`` over the median time of ``fn``."""
    return n / time_interleaved({"fn": fn}, repeats=repeats, warmup=1)["fn"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}")
    for label, arch, info, stages in (
        ("CNN7, MNIST shape", CNN7(), MNIST.info, ("pgd", "ibp", "crown-ibp")),
        ("CONV, Fashion-MNIST shape", CONV(), FashionMNIST.info, ("pgd", "ibp", "crown-ibp", "crown", "alpha-crown")),
    ):
        net = arch.build(info).eval()
        x = torch.rand(args.batch, *info.in_shape)
        y = torch.randint(0, 10, (args.batch,))
        lb, ub = linf_box(x, 0.1)
        spec = margin_spec(y, 10)
        fns = {
            "pgd": lambda: pgd_attack(net, x, y, 0.1, steps=50, restarts=3),
            "ibp": lambda: compute_bounds(net, lb, ub, spec, "ibp"),
            "crown-ibp": lambda: compute_bounds(net, lb, ub, spec, "crown-ibp"),
            "crown": lambda: compute_bounds(net, lb, ub, spec, "crown"),
            "alpha-crown": lambda: alpha_crown_margins(net, lb, ub, spec, steps=20),
        }
        print(f"\n{label}")
        for s in stages:
            with torch.no_grad() if s != "pgd" else torch.enable_grad():
                print(f"  {s:<12} {rate(fns[s], args.batch):>10.1f} samples/s")


if __name__ == "__main__":
    main()
