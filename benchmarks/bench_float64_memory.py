"""Peak memory of full CROWN under a ``coefficient_memory`` budget, float32 vs float64.

    python benchmarks/bench_float64_memory.py [--width 0.125] [--eps 0.01] [--gb 0.25]

The cascade re-checks near-zero certificates in float64, chunking its walks by the same budget
(half the rows of float32's: twice the bytes per row). On a CNN7 that re-check still took ~2.5x
float32's memory. The cause: on CPU, float64 ``conv_transpose2d`` has no oneDNN kernel and its
fallback builds an im2col buffer of (output channels x kernel) values per input pixel for the
whole batch -- 9x the coefficient block of a 3x3 layer of equal channels -- which
:func:`lit_cert.bounds.backsub._conv_transpose` now splits into pieces. Each configuration runs in
its own process (peak RSS is per process): a random CNN7 of ``--width`` for Fashion-MNIST (IBP
initialisation, BN at its initial statistics), one random 28x28 input, CROWN bounds of 9 random rows under ``--gb``, no
gradient; printed: the rise of peak RSS above the process after building the network, seconds,
and the bound (the three runs must agree to float32 rounding).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import run_child  # noqa: E402


def one(dtype: str, pieces: bool, width: float, eps: float, gb: float, blocks: int | None = None) -> dict:
    """One configuration, in this process; ``blocks``: ``backsub._BLOCKS_PER_WALK`` (None: the library's)."""
    import torch

    from lit_cert.bounds import backsub
    from lit_cert.bounds.backsub import LinearBounds, coefficient_memory
    from lit_cert.data import FashionMNIST
    from lit_cert.models.architectures import CNN7

    torch.manual_seed(0)
    torch.set_num_threads(1)
    if blocks is not None:
        backsub._BLOCKS_PER_WALK = blocks
    if not pieces:  # the behaviour before: one conv_transpose2d call per walk step
        backsub._conv_transpose = lambda flat, weight, args: torch.nn.functional.conv_transpose2d(flat, weight, *args)
    dt = {"float32": torch.float32, "float64": torch.float64}[dtype]
    net = CNN7(width=width, linear_size=max(16, int(512 * width))).build(FashionMNIST.info).eval().to(dt)
    x = torch.rand(1, 1, 28, 28).to(dt)
    spec = torch.randn(1, 9, 10).to(dt)
    lb, ub = (x - eps).clamp(0, 1), (x + eps).clamp(0, 1)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    start = time.perf_counter()
    with torch.no_grad(), coefficient_memory(gb):
        engine = LinearBounds(net, lb, ub, "crown", "same")
        low = engine.output_bounds(spec, need_upper=False)[0]
    unstable = sum(int(((l < 0) & (u > 0)).sum()) for l, u in engine.pre_bounds.values())
    return {"dtype": dtype, "pieces": pieces, "peak_rise_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20 - base,
            "seconds": time.perf_counter() - start, "min_bound": float(low.min()), "unstable": unstable}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--width", type=float, default=0.125)
    p.add_argument("--eps", type=float, default=0.01)
    p.add_argument("--gb", type=float, default=0.25)
    p.add_argument("--one", nargs=2, help=argparse.SUPPRESS)  # dtype, pieces: the child process
    args = p.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], args.one[1] == "1", args.width, args.eps, args.gb)))
        return
    print(f"CNN7 width {args.width}, eps {args.eps}, budget {args.gb} GB; uptime: {os.popen('uptime').read().strip()}")
    for dtype, pieces in (("float32", True), ("float64", False), ("float64", True)):
        r = run_child(__file__, ["--width", str(args.width), "--eps", str(args.eps), "--gb", str(args.gb),
                                 "--one", dtype, "1" if pieces else "0"])
        label = f"{dtype}, conv transpose {'in pieces' if pieces else 'one call'}"
        print(f"{label:38s} peak RSS rise {r['peak_rise_gb']:.2f} GB ({r['peak_rise_gb'] / args.gb:.1f}x budget), "
              f"{r['seconds']:.1f} s, min bound {r['min_bound']:.6f}, {r['unstable']} unstable")


if __name__ == "__main__":
    main()
