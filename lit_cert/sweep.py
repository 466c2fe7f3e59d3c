"""``python -m lit_cert sweep SWEEP.yaml``: run a W&B sweep file without a W&B server.

The same YAML that ``wandb sweep`` accepts (``program``, ``method``, ``metric``, ``parameters``,
``command``) is expanded here into runs -- ``grid`` (every combination), ``random`` (``--count``
samples, seeded) or ``bayes`` (W&B's own engine, the PyPI package ``sweeps==0.2.0``, when
installed) -- and each run is one subprocess with the sweep's command (macros ``${env}``,
``${interpreter}``, ``${program}``, ``${args}`` as W&B expands them; ``${interpreter}`` is this
Python). Every run gets ``$LIT_CERT_RESULT_FILE`` and writes its final metrics there.

``OUT/results.jsonl`` records each run (parameters, status, metric, return code, seconds);
a rerun skips finished runs, so an interrupted sweep resumes. Failures are recorded (with the
tail of the run's log) and do not stop the sweep. At the end ``OUT/results.csv`` and
``OUT/<metric>.png`` (the metric against each swept parameter) are written.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import json
import math
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

DEFAULT_COMMAND = ["${env}", "${interpreter}", "${program}", "${args}"]


def load_sweep(path: str | Path) -> dict:
    cfg = yaml.safe_load(Path(path).read_text())
    for key in ("method", "parameters"):
        if key not in cfg:
            raise ValueError(f"{path}: a sweep needs '{key}'")
    if cfg["method"] not in ("grid", "random", "bayes"):
        raise ValueError(f"{path}: method must be grid, random or bayes, got {cfg['method']!r}")
    return cfg


def _fixed(spec: dict) -> list | None:
    if "values" in spec:
        return list(spec["values"])
    if "value" in spec:
        return [spec["value"]]
    return None


def grid_runs(parameters: dict) -> list[dict]:
    names, choices = [], []
    for name, spec in parameters.items():
        values = _fixed(spec)
        if values is None:
            raise ValueError(f"grid search needs 'values' or 'value' for {name}")
        names.append(name)
        choices.append(values)
    return [dict(zip(names, combo)) for combo in itertools.product(*choices)]


def sample_parameter(spec: dict, rng: random.Random) -> Any:
    values = _fixed(spec)
    if values is not None:
        return rng.choice(values)
    dist = spec.get("distribution", "uniform" if isinstance(spec.get("min"), float) else "int_uniform")
    lo, hi = spec["min"], spec["max"]
    if dist == "uniform":
        return rng.uniform(lo, hi)
    if dist == "int_uniform":
        return rng.randint(int(lo), int(hi))
    if dist == "log_uniform_values":
        return math.exp(rng.uniform(math.log(lo), math.log(hi)))
    if dist == "log_uniform":  # W&B: min/max are exponents of e
        return math.exp(rng.uniform(lo, hi))
    raise ValueError(f"distribution {dist!r} is not supported by the offline runner")


def run_id(params: dict) -> str:
    return hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]


def build_command(cfg: dict, params: dict) -> list[str]:
    args = [f"--{k}={v}" for k, v in params.items()]
    out: list[str] = []
    for token in cfg.get("command", DEFAULT_COMMAND):
        if token == "${env}":
            out.append("/usr/bin/env")
        elif token == "${interpreter}":
            out.append(sys.executable)
        elif token == "${program}":
            out.append(cfg["program"])
        elif token == "${args}":
            out.extend(args)
        elif token == "${args_no_hyphens}":
            out.extend(a[2:] for a in args)
        else:
            out.append(str(token))
    return out


def read_records(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_one(cfg: dict, params: dict, out: Path, timeout: float | None) -> dict:
    rid = run_id(params)
    run_dir = out / "runs" / rid
    run_dir.mkdir(parents=True, exist_ok=True)
    result_file = run_dir / "result.json"
    result_file.unlink(missing_ok=True)
    cmd = build_command(cfg, params)
    env = {**os.environ, "LIT_CERT_RESULT_FILE": str(result_file)}
    start = time.perf_counter()
    with open(run_dir / "log.txt", "w") as log:
        log.write(" ".join(cmd) + "\n")
        log.flush()
        try:
            proc = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
    metrics = json.loads(result_file.read_text()) if result_file.is_file() else {}
    metric = cfg.get("metric", {}).get("name")
    record = {
        "run_id": rid,
        "params": params,
        "status": "finished" if code == 0 and metrics else "failed",
        "returncode": code,
        "seconds": round(time.perf_counter() - start, 2),
        "metric": metrics.get(metric) if metric else None,
        "metrics": metrics,
    }
    if record["status"] == "failed":
        record["log_tail"] = (run_dir / "log.txt").read_text()[-2000:]
    return record


def propose(cfg: dict, records: list[dict], count: int | None, seed: int) -> list[dict] | None:
    """Parameter sets to run next (None: the search is exhausted)."""
    method = cfg["method"]
    if method == "grid":
        return grid_runs(cfg["parameters"])
    if method == "random":
        rng = random.Random(seed)
        return [{k: sample_parameter(s, rng) for k, s in cfg["parameters"].items()} for _ in range(count or 10)]
    try:
        import sweeps  # W&B's sweep engine
    except ImportError as err:
        raise SystemExit("lit_cert: error: bayes sweeps need W&B's engine: pip install sweeps==0.2.0 scikit-learn") from err
    metric = cfg["metric"]["name"]
    runs = [
        sweeps.SweepRun(
            name=r["run_id"], state=sweeps.RunState.finished if r["status"] == "finished" else sweeps.RunState.failed,
            config={k: {"value": v} for k, v in r["params"].items()},
            summary_metrics={metric: r["metric"]} if r["metric"] is not None else {},
        )
        for r in records
    ]
    nxt = sweeps.next_run(cfg, runs)
    # numpy scalars -> plain Python numbers, so run ids, JSON records and CLI overrides are stable
    return None if nxt is None else [{k: getattr(v["value"], "item", lambda: v["value"])() for k, v in nxt.config.items()}]


def write_table(cfg: dict, records: list[dict], out: Path) -> None:
    names = list(cfg["parameters"])
    metric = cfg.get("metric", {}).get("name", "metric")
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run_id", *names, metric, "status", "returncode", "seconds"])
        for r in records:
            w.writerow([r["run_id"], *[r["params"].get(n) for n in names], r["metric"], r["status"], r["returncode"], r["seconds"]])
    done = [r for r in records if r["status"] == "finished" and r["metric"] is not None]
    if not done:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.5), squeeze=False)
    for ax, name in zip(axes[0], names):
        pts = sorted((r["params"][name], r["metric"]) for r in done if isinstance(r["params"].get(name), (int, float)))
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-")
        ax.set_xlabel(name.split(".")[-1])
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    fig.suptitle(Path(cfg.get("name", "sweep")).name)
    fig.tight_layout()
    fig.savefig(out / f"{metric.replace('/', '_')}.png", dpi=120)
    plt.close(fig)


def main(argv: list[str]) -> list[dict]:
    p = argparse.ArgumentParser(prog="python -m lit_cert sweep", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep", help="a W&B sweep YAML file")
    p.add_argument("--count", type=int, default=None, help="number of runs (random/bayes; grid: at most this many)")
    p.add_argument("--out", default=None, help="output folder (default: sweep_runs/<sweep file name>)")
    p.add_argument("--timeout", type=float, default=None, help="seconds per run before it is recorded as failed")
    p.add_argument("--seed", type=int, default=0, help="random-search seed")
    args = p.parse_args(argv)
    cfg = load_sweep(args.sweep)
    cfg.setdefault("name", Path(args.sweep).stem)
    out = Path(args.out or Path("sweep_runs") / Path(args.sweep).stem)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "results.jsonl"
    records = [r for r in read_records(log_path)]
    finished = {r["run_id"] for r in records if r["status"] == "finished"}
    budget = args.count
    started = 0
    while True:
        proposals = propose(cfg, records, args.count, args.seed)
        if proposals is None:
            break
        fresh = [pp for pp in proposals if run_id(pp) not in finished]
        if not fresh:
            break
        for params in fresh:
            if budget is not None and started >= budget:
                break
            record = run_one(cfg, params, out, args.timeout)
            started += 1
            records = [r for r in records if r["run_id"] != record["run_id"]] + [record]
            with open(log_path, "a") as f:
                f.write(json.dumps(record) + "\n")
            if record["status"] == "finished":
                finished.add(record["run_id"])
            value = record["metric"]
            print(f"lit_cert sweep: {record['status']:<8} {params} -> {value}", file=sys.stderr)
        if cfg["method"] != "bayes" or (budget is not None and started >= budget):
            break
    latest = {r["run_id"]: r for r in records}
    write_table(cfg, list(latest.values()), out)
    n_ok = sum(r["status"] == "finished" for r in latest.values())
    print(f"lit_cert sweep: {n_ok} finished, {len(latest) - n_ok} failed -> {out / 'results.csv'}")
    return list(latest.values())
