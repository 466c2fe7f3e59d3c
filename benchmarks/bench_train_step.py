"""Time of one training step of a certified-training method divided by one standard step.

    python benchmarks/bench_train_step.py [--threads 2] [--repeats 10]

CNN7 (BatchNorm, IBP init) at MNIST shape with batch 64 and CIFAR shape with batch 32, all in one
process, steps interleaved. A step = clean pass + loss + backward + Adam update, exactly what
``training_step`` runs. IBP is measured with kappa = 0 (the CNN7 setting of Shi et al./CTBench:
robust loss only) and kappa = 0.5 (natural + robust loss).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import time_interleaved  # noqa: E402

from lit_cert.data import CIFAR10, MNIST  # noqa: E402
from lit_cert.methods import IBP, Standard  # noqa: E402
from lit_cert.models import CNN7  # noqa: E402


def make_step(method, x, y, eps: float, kappa: float):
    method.train()
    method.eps, method.kappa = eps, kappa
    opt = torch.optim.Adam(method.parameters(), lr=1e-4)

    def step():
        loss, _ = method.training_loss(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def bench(info, batch: int, eps: float, repeats: int) -> dict[str, float]:
    torch.manual_seed(0)
    x = torch.rand(batch, *info.in_shape)
    y = torch.randint(0, info.num_classes, (batch,))
    std = Standard(network=CNN7(), data_info=info, eps_test=eps)
    ibp0 = IBP(network=CNN7(), data_info=info, eps_train=eps, eps_test=eps)
    ibp5 = IBP(network=CNN7(), data_info=info, eps_train=eps, eps_test=eps)
    fns = {
        "standard": make_step(std, x, y, eps, 0.0),
        "ibp_kappa0": make_step(ibp0, x, y, eps, 0.0),
        "ibp_kappa0.5": make_step(ibp5, x, y, eps, 0.5),
    }
    return time_interleaved(fns, repeats=repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, median of {args.repeats} interleaved steps")
    print(f"{'shape':<22} {'standard [ms]':>14} {'IBP k=0 [ms]':>13} {'ratio':>6} {'IBP k=.5 [ms]':>14} {'ratio':>6}")
    for label, info, batch, eps in (("CNN7 MNIST, batch 64", MNIST.info, 64, 0.1), ("CNN7 CIFAR, batch 32", CIFAR10.info, 32, 2 / 255)):
        t = bench(info, batch, eps, args.repeats)
        print(
            f"{label:<22} {1e3 * t['standard']:>14.1f} {1e3 * t['ibp_kappa0']:>13.1f} {t['ibp_kappa0'] / t['standard']:>6.2f}"
            f" {1e3 * t['ibp_kappa0.5']:>14.1f} {t['ibp_kappa0.5'] / t['standard']:>6.2f}"
        )


if __name__ == "__main__":
    main()
