"""Cost of each validation metric relative to the validation baseline, same process.

    python benchmarks/bench_validation.py [--threads 2] [--batch 100] [--repeats 5]

Random CNN7 (IBP init, eval mode) at MNIST and CIFAR shape, eps as in the CNN7 configs. The
baseline is what every validation step does anyway: one forward pass plus IBP certification of
the margins. Each metric's time is printed as a multiple of that baseline, so a user can see
what ``log_tightness`` (default on), ``log_relu_stability`` (default on) and ``pgd_eval_steps``
(default 0) add to a validation epoch.
"""

from __future__ import annotations

import argparse
import time

import torch

from lit_cert.attacks import pgd_attack
from lit_cert.bounds import linf_box, margin_bounds_ibp, margin_spec
from lit_cert.data import CIFAR10, MNIST
from lit_cert.metrics import ReLUStability, local_tightness
from lit_cert.models import CNN7


def median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, median of {args.repeats}")
    for label, info, eps in (("CNN7, MNIST shape", MNIST.info, 0.1), ("CNN7, CIFAR shape", CIFAR10.info, 2 / 255)):
        net = CNN7().build(info).eval()
        x = torch.rand(args.batch, *info.in_shape)
        y = torch.randint(0, 10, (args.batch,))
        spec = margin_spec(y, 10)

        def baseline():
            with torch.no_grad():
                net(x)
                margin_bounds_ibp(net, *linf_box(x, eps), spec)

        def default_step():
            with torch.no_grad():
                net(x)
                record: dict = {}
                margin_bounds_ibp(net, *linf_box(x, eps), spec, record=record)
                ReLUStability(eps).update(record=record)
                local_tightness(net, x[:16])

        def tightness():
            with torch.no_grad():
                local_tightness(net, x)

        def relu_stability():
            ReLUStability(eps).update(net, x)

        def pgd10():
            pgd_attack(net, x, y, eps, steps=10, restarts=1, loss="margin")

        base = median_time(baseline, args.repeats)
        print(f"\n{label}, eps {eps:.4g}: baseline (forward + IBP margins) {1000 * base:.1f} ms")
        rows = (("default val step", default_step), ("tightness, all", tightness),
                ("relu_stability, own IBP", relu_stability), ("pgd_10x1", pgd10))
        for name, fn in rows:
            t = median_time(fn, args.repeats)
            print(f"  {name:<24} {1000 * t:>9.1f} ms  {t / base:>6.2f} x baseline")


if __name__ == "__main__":
    main()
