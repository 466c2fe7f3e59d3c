"""Does full CROWN stay within its ``coefficient_memory`` budget? Peak RSS against the budget.

    python benchmarks/bench_coefficient_budget.py [--widths 0.125 0.25] [--gbs 0.1 0.25 0.5] [--blocks 4 8]

``lit_cert certify --memory_gb`` promises that the coefficient blocks of CROWN / alpha-CROWN /
BaB walks fit the budget: each walk carries as many rows as ``_BLOCKS_PER_WALK`` blocks of the
widest activation allow (:meth:`lit_cert.bounds.backsub.LinearBounds.rows_per_walk`). This runs the
workload of ``bench_float64_memory.py`` (a random CNN7 of each width, one input, CROWN bounds of 9
rows, no gradient) once per (width, budget, dtype, blocks), each in its own process, and prints
the rise of peak RSS over the process after building the network, as a multiple of the budget
(<= 1: the budget held), and the seconds (a ratio between ``--blocks`` values on the same row
means something only on a quiet machine).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_float64_memory import one  # noqa: E402
from common import run_child  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--widths", type=float, nargs="+", default=[0.125, 0.25])
    p.add_argument("--gbs", type=float, nargs="+", default=[0.1, 0.25, 0.5])
    p.add_argument("--blocks", type=int, nargs="+", default=[4, 8], help="values of _BLOCKS_PER_WALK to compare")
    p.add_argument("--eps", type=float, default=0.01)
    p.add_argument("--one", nargs=5, help=argparse.SUPPRESS)  # dtype, width, eps, gb, blocks: the child process
    args = p.parse_args()
    if args.one:
        dtype, width, eps, gb, blocks = args.one
        print(json.dumps(one(dtype, True, float(width), float(eps), float(gb), int(blocks))))
        return
    print(f"uptime: {os.popen('uptime').read().strip()}")
    for width in args.widths:
        for gb in args.gbs:
            for dtype in ("float32", "float64"):
                cells = []
                for blocks in args.blocks:
                    r = run_child(__file__, ["--one", dtype, str(width), str(args.eps), str(gb), str(blocks)])
                    cells.append(f"blocks {blocks}: {r['peak_rise_gb'] / gb:.2f}x ({r['seconds']:.1f} s)")
                print(f"CNN7 width {width}, {gb} GB, {dtype}: " + ", ".join(cells), flush=True)


if __name__ == "__main__":
    main()
