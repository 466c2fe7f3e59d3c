"""Helpers for the benchmarks: interleaved timing repeats (median, same process), and one
configuration per child process where a per-process quantity (peak RSS) is measured."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Callable


def time_interleaved(fns: dict[str, Callable[[], None]], repeats: int = 10, warmup: int = 2) -> dict[str, float]:
    """Median wall time (s) of each function, run round-robin so that machine noise hits all alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in samples.items()}


def run_child(script: str, args: list[str]) -> dict:
    """Run ``python script *args`` on one thread and return the JSON object it prints (peak RSS is
    per process, so each measured configuration gets a fresh one)."""
    cmd = [sys.executable, script, *args]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return json.loads(out.stdout)
