"""Seed 002 App. K.3 (Table 14) at CPU scale: certify every relaxation's model on the test set.

    python results/paradox_table14_fmnist/run.py --sweep SWEEP_DIR/table14 SWEEP_DIR/table14_seeds --out results/paradox_table14_fmnist

Each ``--sweep`` folder is the ``lit_cert sweep --out`` folder of
``sweeps/paradox_table14_small_fmnist.yaml`` (seed 0) or ``..._seeds.yaml`` (seeds 1, 2), run
from the folder the sweep ran in. Each run's
*last* checkpoint is evaluated on the first ``--limit`` test images: natural accuracy, certified accuracy with the
relaxation it was trained with (the paper's "CR") and with the tightest single-neuron relaxation
(Triangle), both sound, plus the local propagation tightness. Writes ``runs.csv`` (one row per
run) and ``table.md``: per relaxation the mean +- sample standard deviation over its training
seeds, and the one-seed table of seed 0.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from pathlib import Path


from lit_cert.reports import RowCache, save_csv
from lit_cert.evaluation import evaluate
from lit_cert.runs import load_run, split_dataset
from lit_cert.metrics import CertifiedAccuracy, NaturalAccuracy, PropagationTightness

# config stem -> (row name, the relaxation it trains with, seed 002 Table 14's Acc / CR in %)
ROWS = {
    "small_box": ("Box", "ibp", 72.27, 49.12),
    "small_hbox": ("hBox", "hbox", 68.85, 50.29),
    "small_crown_ibp_r": ("CROWN-IBP (R)", "crown-ibp", 76.37, 46.88),
    "small_deepz": ("DeepZ", "deepz", 75.78, 50.49),
    "small_crown": ("CROWN", "crown", 75.59, 44.14),
    "small_triangle": ("Triangle", "triangle", 73.34, 52.44),
    "small_parallelogram": ("Parallelogram", "parallelogram", 72.75, 52.25),
}


def evaluate_run(ckpt: Path, own: str, limit: int) -> dict:
    model, dm = load_run(str(ckpt), None)
    ds = split_dataset(dm, "test")
    n = min(limit, len(ds))
    out = evaluate(model.net, ds, {"nat": NaturalAccuracy(), "tightness": PropagationTightness(model.eps_test, "margins")}, n, 250)
    row = {"eps": model.eps_test, "test_samples": n, "test_nat_acc": out["nat"].item(), "test_tightness": out["tightness"].item()}
    for name in dict.fromkeys([own, "crown", "triangle"]):  # one pass per certifier: its time alone
        start = time.perf_counter()
        row[f"cert_{name}"] = evaluate(model.net, ds, {"cert": CertifiedAccuracy(model.eps_test, name)}, n, 250)["cert"].item()
        row[f"seconds_{name}"] = round(time.perf_counter() - start, 1)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sweep", required=True, nargs="+", help="sweep output folders (their runs are pooled)")
    p.add_argument("--out", required=True)
    p.add_argument("--limit", type=int, default=10000, help="first N test images")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = RowCache(out / "cache.jsonl")  # finished evaluations by run id: a rerun only adds new runs
    rows = []
    for sweep in map(Path, args.sweep):
        for line in (sweep / "results.jsonl").read_text().splitlines():
            r = json.loads(line)
            if r["status"] != "finished":
                continue
            stem = Path(r["params"]["config"]).stem
            name, own, paper_acc, paper_cr = ROWS[stem]
            run_dir = Path(re.search(r"run directory (\S+)", (sweep / "runs" / r["run_id"] / "log.txt").read_text()).group(1))
            row = cache.get(run_dir.name)
            if row is None:
                row = {"relaxation": name, "trained_with": own, "run": run_dir.name, "train_seconds": r["seconds"],
                       "paper_acc": paper_acc, "paper_cr": paper_cr, **evaluate_run(run_dir / "checkpoints" / "last.ckpt", own, args.limit)}
                cache.add(row)
            row = {**row, "seed": int(r["params"].get("seed_everything", 0))}  # the configs' seed_everything is 0
            rows.append(row)
            print(json.dumps(row), flush=True)
    save_csv(out / "runs.csv", rows, header=list(dict.fromkeys(k for r in rows for k in r)))
    lines = ["Mean +- sample standard deviation over the training seeds (n = seeds):", "",
             "| relaxation | n | test nat. | CR (own relaxation) | CR (Triangle) | CR (CROWN) | tightness | paper Acc / CR |",
             "|---|---|---|---|---|---|---|---|"]
    for name in dict.fromkeys(r["relaxation"] for r in rows):
        group = [r for r in rows if r["relaxation"] == name]
        own = [r["cert_" + r["trained_with"]] for r in group]

        def ms(values, scale=100.0, digits=2):
            m = scale * statistics.mean(values)
            sd = scale * statistics.stdev(values) if len(values) > 1 else float("nan")
            return f"{m:.{digits}f} +- {sd:.{digits}f}"

        lines.append(f"| {name} | {len(group)} | {ms([r['test_nat_acc'] for r in group])} | {ms(own)} | "
                     f"{ms([r['cert_triangle'] for r in group])} | {ms([r['cert_crown'] for r in group])} | "
                     f"{ms([r['test_tightness'] for r in group], 1.0, 3)} | {group[0]['paper_acc']} / {group[0]['paper_cr']} |")
    lines += ["", "Seed 0 alone:", "",
              "| relaxation | train time | test nat. | CR (own relaxation) | CR (Triangle) | CR (CROWN) | tightness | paper Acc / CR |",
              "|---|---|---|---|---|---|---|---|"]
    for r in (r for r in rows if r["seed"] == 0):
        own = r["cert_" + r["trained_with"]]
        lines.append(f"| {r['relaxation']} | {r['train_seconds'] / 60:.1f} min | {100 * r['test_nat_acc']:.2f} | "
                     f"{100 * own:.2f} | {100 * r['cert_triangle']:.2f} | {100 * r['cert_crown']:.2f} | "
                     f"{r['test_tightness']:.3f} | {r['paper_acc']} / {r['paper_cr']} |")
    (out / "table.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
