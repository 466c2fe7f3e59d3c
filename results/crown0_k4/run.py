"""Seed 002 App. K.4: CROWN-0 (CROWN with the lower line 0 for every neuron, stably active ones
too) is continuous but so loose that its CR-AUC is 0, and training with it gives no meaningful
certified network. Measured here two ways:

1. CR curves (IBP, CROWN, CROWN-0 as certifiers) of one IBP-trained paradox CONV
   (``configs/quickstart.yaml``, 5 epochs) on the first 200 Fashion-MNIST test images, eps 0..0.2;
2. the 2x20 FC of seed 002 App. K.3 (``configs/fashion_mnist/small_crown.yaml``) trained with CROWN
   and with CROWN-0, 3 seeds each, certified accuracy at eps 0.1 on 1000 test images with the
   training relaxation and with CROWN.

    python results/crown0_k4/run.py                  # ~35 min on one thread
    python results/crown0_k4/run.py --summary-only   # the numbers again, from the outputs
"""

from __future__ import annotations

import csv
import glob
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WORK = HERE / "work"


def lit_cert(*args: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    subprocess.run([sys.executable, "-m", "lit_cert", *args], cwd=WORK, env=env, check=True)


def fit(config: str, *extra: str) -> str:
    before = set(glob.glob(str(WORK / "runs" / "lit_cert" / "*")))
    lit_cert("fit", "--config", str(ROOT / config), "--trainer.logger=false", *extra)
    run = sorted(set(glob.glob(str(WORK / "runs" / "lit_cert" / "*"))) - before)[-1]
    return str(Path(run) / "checkpoints" / "last.ckpt")


def summarize() -> dict:
    """The numbers, read back from the outputs (so ``--summary-only`` needs no re-run)."""
    summary: dict = {}
    rows = list(csv.DictReader(open(HERE / "cr-curve.csv")))
    for certifier in ("ibp", "crown", "crown-0"):
        pts = [(float(r["eps"]), float(r["certified_accuracy"])) for r in rows if r["certifier"] == certifier]
        summary[f"conv_cr_auc_{certifier}"] = sum((e2 - e1) * (a1 + a2) / 2 for (e1, a1), (e2, a2) in zip(pts, pts[1:])) / pts[-1][0]
        summary[f"conv_cert_at_0.1_{certifier}"] = dict(pts)[0.1]
        summary[f"conv_cert_at_0_{certifier}"] = dict(pts)[0.0]
    for relaxation in ("crown", "crown-0"):
        for seed in (0, 1, 2):
            for certifier in dict.fromkeys([relaxation, "crown"]):
                curve = list(csv.DictReader(open(WORK / f"cr_{relaxation}_{seed}_{certifier}" / "cr-curve.csv")))
                summary.setdefault(f"train_{relaxation}_cert_{certifier}", []).append(float(curve[-1]["certified_accuracy"]))
                if certifier == "crown":  # CROWN at eps 0 is exact: the natural accuracy
                    summary.setdefault(f"train_{relaxation}_natural", []).append(float(curve[0]["certified_accuracy"]))
    for key, value in list(summary.items()):
        if isinstance(value, list):
            summary[key + "_mean_std"] = (statistics.mean(value), statistics.stdev(value))
    return summary


def main() -> None:
    if "--summary-only" not in sys.argv:
        run()
    summary = summarize()
    (HERE / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


def run() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    # 1. CR curves of an IBP-trained CONV
    conv = fit("configs/quickstart.yaml", "--test_after_fit=false")
    lit_cert("analyze", "cr-curve", "--ckpt", conv, "--limit", "200", "--points", "11", "--eps_max", "0.2",
             "--certifier", "ibp", "crown", "crown-0", "--out", str(HERE))
    # 2. training with CROWN vs CROWN-0 (3 seeds), certified with its own relaxation and with CROWN
    for relaxation in ("crown", "crown-0"):
        for seed in (0, 1, 2):
            ckpt = fit("configs/fashion_mnist/small_crown.yaml", f"--model.relaxation={relaxation}",
                       f"--model.certifier={relaxation}", f"--seed_everything={seed}")
            for certifier in dict.fromkeys([relaxation, "crown"]):
                lit_cert("analyze", "cr-curve", "--ckpt", ckpt, "--limit", "1000", "--points", "2", "--eps_max", "0.1",
                         "--certifier", certifier, "--out", str(WORK / f"cr_{relaxation}_{seed}_{certifier}"))


if __name__ == "__main__":
    main()
