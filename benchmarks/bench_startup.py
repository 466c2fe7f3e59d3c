"""Start-up of the commands: wall seconds of ``python -m lit_cert <command> --help`` in fresh
interpreters, median of ``--repeats``, each command interleaved with the others, and which of
the heavy packages (lightning, wandb, torch) each one imported. A budget check, not a timed test:
it exits 1 if a command that does not train (certify, export, analyze, sweep) takes longer than
``--budget`` seconds (issue #24: <= 1.5 s on a quiet machine).

    python benchmarks/bench_startup.py [--repeats 5] [--budget 1.5] [--source DIR]

``--source DIR`` measures another checkout (e.g. a ``git worktree`` of an older commit) with the
same interpreter, for a before/after table. ``fit --help`` is listed for reference: its options
are Lightning's Trainer's, so it needs Lightning by construction.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = ["certify", "export", "analyze", "sweep", "fit"]
NO_TRAINING = {"certify", "export", "analyze", "sweep"}
PROBE = """
import runpy, sys, json
sys.argv = ["lit_cert"] + sys.argv[1:]
try:
    runpy.run_module("lit_cert", run_name="__main__")
except SystemExit:
    pass
sys.stderr.write("HEAVY=" + json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {"lightning", "wandb", "torch"})) + "\\n")
"""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--budget", type=float, default=1.5)
    p.add_argument("--source", type=Path, default=Path(__file__).resolve().parents[1])
    args = p.parse_args()
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONPATH": str(args.source.resolve())}
    times: dict[str, list[float]] = {c: [] for c in COMMANDS}
    heavy: dict[str, list[str]] = {}
    for _ in range(args.repeats):
        for command in COMMANDS:
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", PROBE, command, "--help"], cwd=args.source, env=env, capture_output=True,
                                  text=True)
            times[command].append(time.perf_counter() - start)
            line = [ln for ln in proc.stderr.splitlines() if ln.startswith("HEAVY=")]
            heavy[command] = json.loads(line[-1][6:]) if line else ["?"]
    print(f"source {args.source}; load average {os.getloadavg()[0]:.2f}; median of {args.repeats}")
    print("| command | --help wall s (median) | imports |")
    print("|---|---|---|")
    over = []
    for command in COMMANDS:
        median = statistics.median(times[command])
        print(f"| {command} | {median:.2f} | {', '.join(heavy[command]) or '-'} |")
        if command in NO_TRAINING and median > args.budget:
            over.append(command)
    if over:
        print(f"over the {args.budget} s budget: {', '.join(over)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
