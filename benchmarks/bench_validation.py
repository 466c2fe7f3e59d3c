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
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import time_interleaved  # noqa: E402

from lit_cert.attacks import pgd_attack  # noqa: E402
from lit_cert.bounds import IntervalTrace, linf_box, margin_bounds_ibp, margin_spec  # noqa: E402
from lit_cert.data import CIFAR10, MNIST  # noqa: E402
from lit_cert.metrics import ReLUStability, local_tightness, relu_stability_trace  # noqa: E402
from lit_cert.models import CNN7  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, median of {args.repeats} interleaved")
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
                trace = IntervalTrace()
                margin_bounds_ibp(net, *linf_box(x, eps), spec, trace=trace)
                ReLUStability().update(trace)
                local_tightness(net, x[:16])

        def tightness():
            with torch.no_grad():
                local_tightness(net, x)

        def relu_stability():
            ReLUStability().update(relu_stability_trace(net, x, eps))

        def pgd10():
            pgd_attack(net, x, y, eps, steps=10, restarts=1, loss="margin")

        rows = {"baseline": baseline, "default val step": default_step, "tightness, all": tightness,
                "relu_stability, own IBP": relu_stability, "pgd_10x1": pgd10}
        t = time_interleaved(rows, repeats=args.repeats, warmup=1)
        base = t.pop("baseline")
        print(f"\n{label}, eps {eps:.4g}: baseline (forward + IBP margins) {1000 * base:.1f} ms")
        for name, v in t.items():
            print(f"  {name:<24} {1000 * v:>9.1f} ms  {v / base:>6.2f} x baseline")


if __name__ == "__main__":
    main()
