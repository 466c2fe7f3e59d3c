"""Seed 000 Table 2 at CPU scale, over seeds: train PGD, COLT, SABR and IBP on ConvMed with the
budget of README.md (2000 training images, 6 epochs), then tightness on 1000 test images and
the complete cascade on 300, for each seed not done yet; then the table of mean +- std over
every seed present (seed 0 is the first run's files in this folder).

    python results/fashion_mnist_convmed_table2/run.py --seeds 1 2          # ~45 min per seed, one thread
    python results/fashion_mnist_convmed_table2/run.py --table              # only the table

Each seed's files go to ``seed<N>/`` (seed 0: this folder, the files of the first run).
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
METHODS = ("pgd", "colt", "sabr", "ibp")
TRAIN = {
    "colt": ["--data.init_args.train_size=2000", "--trainer.max_epochs=6", "--model.stage_epochs=2", "--model.mix_epochs=1"],
    "other": ["--data.init_args.train_size=2000", "--trainer.max_epochs=6", "--schedule.ramp_epochs=3", "--model.milestones=[4,5]"],
}


def lit_cert(*args: str, cwd: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    subprocess.run([sys.executable, "-m", "lit_cert", *args], cwd=cwd, env=env, check=True)


def run_seed(seed: int) -> None:
    out = HERE / f"seed{seed}"
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    for m in METHODS:
        if (out / f"certify_{m}.json").is_file():
            continue
        for stale in (work / f"tight_{m}", work / f"cert_{m}"):  # an interrupted earlier try: its checkpoint is not this one
            shutil.rmtree(stale, ignore_errors=True)
        before = set(glob.glob(str(work / "runs" / "lit_cert" / "*")))
        lit_cert("fit", "--config", str(ROOT / f"configs/fashion_mnist/convmed_{m}.yaml"), f"--seed_everything={seed}",
                 "--trainer.logger=false", *TRAIN["colt" if m == "colt" else "other"], cwd=work)
        run = sorted(set(glob.glob(str(work / "runs" / "lit_cert" / "*"))) - before)[-1]
        ckpt = str(Path(run) / "checkpoints" / "last.ckpt")
        lit_cert("analyze", "tightness", "--ckpt", ckpt, "--limit", "1000", "--out", str(work / f"tight_{m}"), cwd=work)
        (out / f"tightness_{m}.csv").write_text((work / f"tight_{m}" / "tightness.csv").read_text())
        lit_cert("certify", "--ckpt", ckpt, "--limit", "300", "--stages", "[pgd,ibp,crown-ibp,crown,alpha-crown,bab]",
                 "--bab.timeout", "10", "--progress=false", "--out", str(work / f"cert_{m}"), cwd=work)
        (out / f"certify_{m}.json").write_text((work / f"cert_{m}" / "summary.json").read_text())


def seed_dirs() -> dict[int, Path]:
    dirs = {0: HERE}
    for d in sorted(HERE.glob("seed*")):
        if d.is_dir() and d.name[4:].isdigit():
            dirs[int(d.name[4:])] = d
    return {s: d for s, d in dirs.items() if all((d / f"certify_{m}.json").is_file() for m in METHODS)}


def table() -> str:
    dirs = seed_dirs()
    values: dict[str, dict[str, list[float]]] = {m: {"tightness": [], "natural": [], "certified": []} for m in METHODS}
    for d in dirs.values():
        for m in METHODS:
            row = next(csv.DictReader(open(d / f"tightness_{m}.csv")))
            summary = json.loads((d / f"certify_{m}.json").read_text())
            values[m]["tightness"].append(float(row["tightness"]))
            values[m]["natural"].append(100 * float(row["natural_accuracy"]))
            values[m]["certified"].append(100 * summary["certified_accuracy"])

    def cell(v: list[float], digits: int) -> str:
        sd = statistics.stdev(v) if len(v) > 1 else float("nan")
        return f"{statistics.mean(v):.{digits}f} +- {sd:.{digits}f}"

    lines = [f"seeds: {sorted(dirs)} (n = {len(dirs)}); mean +- std (sample standard deviation over seeds)", "",
             "| method | tightness (1000) | natural % (1000) | certified % (complete cascade, 300) |", "|---|---|---|---|"]
    for m in METHODS:
        v = values[m]
        lines.append(f"| {m} | {cell(v['tightness'], 4)} | {cell(v['natural'], 1)} | {cell(v['certified'], 1)} |")
    lines += ["", "per seed (certified %): " + "; ".join(f"{m}: " + ", ".join(f"{c:.1f}" for c in values[m]["certified"]) for m in METHODS)]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="*", default=[])
    p.add_argument("--table", action="store_true", help="only print and write the table")
    args = p.parse_args()
    if not args.table:
        for seed in args.seeds:
            run_seed(seed)
    text = table()
    (HERE / "seeds_table.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
