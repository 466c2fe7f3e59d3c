"""One-off migration (issue #36): the per-run numbers of the hand-written result drivers (their
``runs.csv`` / ``cache.jsonl`` / summaries and the committed analysis CSVs) as ``reproduce-run``
records of the catalog's specs, so that ``lit_cert reproduce ID --render_only --out results/ID``
rewrites each table from the same runs without retraining.

    python scripts/import_legacy_results.py OLD_RESULTS_DIR results

``OLD_RESULTS_DIR`` is a checkout's ``results/`` as of commit 5bbdf73 (the last with the drivers).
Every record names its source file and the commit that last changed it; the fingerprint is the
spec's today (the configs of those runs are the committed ones; a run trained with another
setting than its row's today is left out, see SKIPPED). Metrics keep the spec's names and every
original number beside them (prefixed ``legacy/``).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from lit_cert.files import REPRODUCE_RUN
from lit_cert.persist import append_line
from lit_cert.reproduce.catalog import EXPERIMENTS
from lit_cert.reproduce.measures import cr_metrics, extract
from lit_cert.reproduce.runner import analysis_command, fit_command, shown
from lit_cert.reproduce.spec import fingerprint

#: runs not imported, and why (their setting is not the row's today)
SKIPPED = {
    "seed000-table2 SABR seed 0": "trained with box_convention sabr; the config (and seeds 1, 2) use ctbench: rerun",
}


def last_commit(path: Path) -> str:
    out = subprocess.run(["git", "log", "-1", "--format=%h", "--", str(path)], cwd=path.parent, capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


class Importer:
    def __init__(self, old: Path, new: Path):
        self.old, self.new = old, new
        self.count: dict[str, int] = {}

    def add(self, exp_id: str, row_name: str, seed: int, metrics: dict, source: Path, seconds: dict | None = None,
            legacy: dict | None = None):
        exp = EXPERIMENTS[exp_id]
        scale = exp.scale("cpu")
        row = scale.row(row_name)
        command = shown(fit_command(row, seed)) if row.config else analysis_command(row, seed)
        numbers = {k: v for k, v in (legacy or {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        record = {"experiment": exp_id, "scale": "cpu", "row": row_name, "seed": seed,
                  "fingerprint": fingerprint(row, scale, seed), "status": "finished",
                  "metrics": {**metrics, **{f"legacy/{k}": v for k, v in numbers.items()}},
                  "seconds": seconds or {}, "command": command, "commit": last_commit(source), "run_dir": None,
                  "source": f"imported from results/{source.relative_to(self.old)}"}
        folder = self.new / exp_id
        folder.mkdir(parents=True, exist_ok=True)
        append_line(folder / "records.jsonl", REPRODUCE_RUN.kind, record)
        self.count[exp_id] = self.count.get(exp_id, 0) + 1


def rows_of(path: Path) -> list[dict]:
    return list(csv.DictReader(open(path)))


def num(v):
    return None if v in (None, "") else float(v)


def mao(imp: Importer) -> None:
    base = imp.old / "mao_fig5_fig6_fmnist"
    seeds_seen: dict = {}
    for path, default_seed in ((base / "runs.csv", 0), (base / "seeds" / "runs.csv", None),
                               (base / "seeds_pgd" / "runs.csv", None), (base / "seeds_fig6" / "runs.csv", None)):
        for r in rows_of(path):
            method, eps, lam = r["method"], float(r["eps"]), num(r.get("lam"))
            if r["sweep"].startswith("fig6"):
                exp, row = "seed000-fig6", f"SABR lam={lam:g}"
            else:
                exp, row = "seed000-fig5", f"{method} eps={eps:g}"
            if default_seed is not None:
                seed = default_seed
            elif r.get("seed"):
                seed = int(r["seed"])
            else:  # the seeds file did not record which of seeds 1, 2 a run is: file order
                seed = 1 + seeds_seen.get((exp, row), 0)
            seeds_seen[(exp, row)] = seeds_seen.get((exp, row), 0) + 1
            metrics = {"natural": float(r["test_nat_acc"]), "certified_ibp": float(r["test_ibp_cert_acc"]),
                       "tightness": float(r["test_tightness"])}
            seconds = {"train": 60 * float(r["train_minutes"])} if r.get("train_minutes") else {}
            imp.add(exp, row, seed, metrics, path, seconds, {k: num(v) for k, v in r.items() if k not in ("sweep", "method", "run")})


def table2(imp: Importer) -> None:
    base = imp.old / "fashion_mnist_convmed_table2"
    for seed, folder in ((0, base), (1, base / "seed1"), (2, base / "seed2")):
        for name, m in (("PGD", "pgd"), ("COLT", "colt"), ("SABR", "sabr"), ("IBP", "ibp")):
            if f"seed000-table2 {name} seed {seed}" in SKIPPED:
                continue
            tight = rows_of(folder / f"tightness_{m}.csv")[0]
            summary = json.loads((folder / f"certify_{m}.json").read_text())
            metrics = {"tightness": float(tight["tightness"]), "natural": float(tight["natural_accuracy"]),
                       "certified_complete": summary["certified_accuracy"], "natural_cascade": summary["natural_accuracy"],
                       "unknown": summary["unknown"] / summary["samples"], "cascade_samples": summary["samples"]}
            imp.add("seed000-table2", name, seed, metrics, folder / f"certify_{m}.json")


def seed001_fig5(imp: Importer) -> None:
    path = imp.old / "seed001_grid_fmnist" / "runs.csv"
    for r in rows_of(path):
        lr, t, kappa = float(r["lr"]), num(r.get("T")), num(r.get("kappa"))
        if r["training"] == "nominal":
            row = f"nominal lr={lr:g} T={t:g}"
        elif r["training"] == "ibp":
            row = f"IBP eps={float(r['eps_train']):g}"
        elif kappa not in (None, 1.0):
            row = f"expected kappa={kappa:g}"
        else:
            row = f"expected lr={lr:g} T={t:g} eps={float(r['eps_train']):g}"
        metrics = {"natural": float(r["test_acc"]), **{f"rob@{e}": float(r[f"rob@{e}"]) for e in ("0.1", "0.2", "0.3", "0.4")},
                   "rob_mean": float(r["rob_mean"])}
        seconds = {"train": 60 * float(r["train_minutes"])} if r.get("train_minutes") else {}
        imp.add("seed001-fig5", row, 0, metrics, path, seconds,
                {k: num(v) for k, v in r.items() if k not in ("training", "run", "failed", "eps_train")})


def table14(imp: Importer) -> None:
    path = imp.old / "paradox_table14_fmnist" / "runs.csv"
    for r in rows_of(path):
        metrics = {"natural": float(r["test_nat_acc"]), "certified_own": float(r["cert_" + r["trained_with"]]),
                   "certified_crown": float(r["cert_crown"]), "certified_triangle": float(r["cert_triangle"]),
                   "tightness": float(r["test_tightness"])}
        imp.add("seed002-table14", r["relaxation"], int(r["seed"]), metrics, path, {"train": float(r["train_seconds"])},
                {k: num(v) for k, v in r.items() if k not in ("relaxation", "trained_with", "run")})


def crown0(imp: Importer) -> None:
    base = imp.old / "crown0_k4"
    s = json.loads((base / "summary.json").read_text())
    for seed in range(3):
        imp.add("seed002-k4-train", "CROWN", seed,
                {"natural": s["train_crown_natural"][seed], "certified_own": s["train_crown_cert_crown"][seed],
                 "certified_crown": s["train_crown_cert_crown"][seed]}, base / "summary.json")
        imp.add("seed002-k4-train", "CROWN-0", seed,
                {"natural": s["train_crown-0_natural"][seed], "certified_own": s["train_crown-0_cert_crown-0"][seed],
                 "certified_crown": s["train_crown-0_cert_crown"][seed]}, base / "summary.json")
    imp.add("seed002-k4-crauc", "IBP CONV", 0, cr_metrics(rows_of(base / "cr-curve.csv"), ["ibp", "crown", "crown-0"]),
            base / "cr-curve.csv")


def analyses(imp: Importer) -> None:
    base = imp.old / "analysis"

    def from_csv(exp_id: str, row: str, path: Path, seed: int = 0) -> None:
        spec = EXPERIMENTS[exp_id].scale("cpu").measures[0].options
        table = rows_of(path)
        imp.add(exp_id, row, seed, {m: extract(table, e) for m, e in spec["extract"].items()}, path)

    from_csv("seed000-thm39", "DLN 16-16-10", base / "ibp-alignment.csv")
    from_csv("seed000-thm39", "DLN 16-16-16-10", base / "ibp_alignment_depth3" / "ibp-alignment.csv")
    from_csv("seed002-continuity", "example", base / "landscape.csv")
    from_csv("seed002-sensitivity", "exact", base / "sensitivity" / "sensitivity.csv")
    from_csv("seed002-dynamics", "200 networks", base / "sgd-dynamics.csv")
    # seed001-coverage: one CSV per row
    ext = EXPERIMENTS["seed001-coverage"].scale("cpu").measures[0].options["extract"]
    for row, path in (("one block", base / "expected-bounds.csv"), ("depth", base / "expected_depth" / "expected-bounds-depth.csv")):
        table = rows_of(path)
        imp.add("seed001-coverage", row, 0, {m: extract(table, e) for m, e in ext.items()}, path)
    # seed001-table1: one CSV of the three eps, one record per eps row
    path = base / "expected_exact" / "expected-exact.csv"
    ext = EXPERIMENTS["seed001-table1"].scale("cpu").measures[0].options["extract"]
    for eps in ("0.01", "0.02", "0.03"):
        table = [r for r in rows_of(path) if r["eps"] == eps]
        imp.add("seed001-table1", f"eps={float(eps):g}", 0, {m: extract(table, e) for m, e in ext.items()}, path)


def cnn7(imp: Importer) -> None:
    base = imp.old / "fashion_mnist_cnn7_eps0.1"
    for row, name in (("IBP CNN7", "ibp_windows_summary.json"), ("SABR CNN7", "sabr_summary_shards.json")):
        s = json.loads((base / name).read_text())
        if s["samples"] != 1000:
            continue
        imp.add("lit_cert-cnn7-certify", row, 0,
                {"certified_complete": s["certified_accuracy"], "natural_cascade": s["natural_accuracy"],
                 "unknown": s["unknown"] / s["samples"], "cascade_samples": s["samples"]}, base / name)


STEPS = {"mao": mao, "table2": table2, "seed001_fig5": seed001_fig5, "table14": table14, "crown0": crown0,
         "analyses": analyses, "cnn7": cnn7}


def main() -> None:
    """``OLD NEW [STEP ...]``: the named steps only (default: all)."""
    old, new = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    imp = Importer(old, new)
    for name in sys.argv[3:] or list(STEPS):
        STEPS[name](imp)
    for exp_id, n in imp.count.items():
        print(f"{exp_id}: {n} records")
    for what, why in SKIPPED.items():
        print(f"skipped {what}: {why}")


if __name__ == "__main__":
    main()
