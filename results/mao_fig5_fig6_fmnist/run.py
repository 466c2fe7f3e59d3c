"""Seed 000 Fig. 5 / Fig. 6 at CPU scale: evaluate the sweeps' final checkpoints on the test set.

    python results/mao_fig5_fig6_fmnist/run.py --sweeps SWEEP_DIR/fig5 SWEEP_DIR/fig6 --limit 1000 \
        --certify 1000 --certify_pgd 100 --out results/mao_fig5_fig6_fmnist

``SWEEP_DIR/<name>`` is a ``lit_cert sweep --out`` folder of ``sweeps/mao_fig5_eps_fmnist_cnn3.yaml``
or ``sweeps/mao_fig6_lambda_fmnist_cnn3.yaml``; run from the folder the sweep ran in (each run's log
records its run directory). For every finished run the *last* checkpoint (no model selection) is
evaluated on the first ``--limit`` test images: natural accuracy, IBP-certified accuracy at its
eps_test and the local propagation tightness (margins mode, at eps_test; seed 000 Def. 3.2 / Sec.
4.1); with ``--certify N`` also the complete cascade (PGD, IBP, CROWN-IBP, CROWN, alpha-CROWN,
branch and bound) on the first N test images. Writes ``runs.csv``, ``README``-ready tables (``tables.md``) and ``fig5.png`` / ``fig6.png``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from lit_cert.reports import RowCache, save_csv, save_plot
from lit_cert.certify import BaBConfig, Cascade, CascadeConfig
from lit_cert.evaluation import evaluate
from lit_cert.runs import load_run, split_dataset
from lit_cert.runs import finished_runs
from lit_cert.metrics import CertifiedAccuracy, NaturalAccuracy, PropagationTightness


STAGES = ("pgd", "ibp", "crown-ibp", "crown", "alpha-crown", "bab")


def complete(model, ds, n: int, timeout: float) -> dict:
    """The certification cascade with branch and bound on the first ``n`` test images."""
    x = torch.stack([ds[i][0] for i in range(n)])
    y = torch.tensor([int(ds[i][1]) for i in range(n)])
    cascade = Cascade(model.net.eval(), CascadeConfig(eps=model.eps_test, stages=STAGES, bab=BaBConfig(timeout=timeout)))
    verdicts = []
    for b in range(0, n, 100):
        verdicts += cascade.run(x[b : b + 100], y[b : b + 100], list(range(b, min(n, b + 100))))
    count = {s: sum(v.status == s for v in verdicts) for s in ("certified", "falsified", "misclassified", "unknown")}
    return {"bab_samples": n, "bab_nat_acc": 1 - count["misclassified"] / n, "bab_cert_acc": count["certified"] / n,
            "bab_not_falsified": (count["certified"] + count["unknown"]) / n, "bab_unknown": count["unknown"],
            "bab_falsified": count["falsified"]}


def evaluate_run(ckpt: Path, limit: int, certify: int, timeout: float) -> dict:
    model, dm = load_run(str(ckpt), None)
    ds = split_dataset(dm, "test")
    metrics = {"tightness": PropagationTightness(model.eps_test, "margins"), "nat": NaturalAccuracy(),
               "cert": CertifiedAccuracy(model.eps_test, "ibp")}
    out = evaluate(model.net, ds, metrics, limit, batch_size=250)  # the library's one evaluation loop
    row = {"test_nat_acc": out["nat"].item(), "test_ibp_cert_acc": out["cert"].item(),
           "test_tightness": out["tightness"].item(), "test_samples": min(limit, len(ds))}
    if certify:
        row.update(complete(model, ds, min(certify, len(ds)), timeout))
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sweeps", nargs="+", required=True)
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--out", required=True)
    p.add_argument("--certify", type=int, default=0, help="also run the complete cascade (with branch and bound) on the first N test images")
    p.add_argument("--bab_timeout", type=float, default=30.0)
    p.add_argument("--certify_pgd", type=int, default=None,
                   help="images for the complete cascade of PGD-trained runs (default: --certify); IBP fails on them, so every "
                        "sample goes to the expensive stages")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = RowCache(out / "cache.jsonl")  # finished evaluations by run id: a rerun only adds new runs
    rows = []
    for sweep in map(Path, args.sweeps):
        for r, run_dir in finished_runs(sweep):
            params = r["params"]
            row = {"sweep": sweep.name, "method": Path(params["config"]).stem.split("_")[1].upper(),
                   "eps": params.get("model.init_args.eps_train"), "lam": params.get("model.init_args.lam"),
                   "seed": params.get("seed_everything", 0), "run": run_dir.name, "train_minutes": round(r["seconds"] / 60, 1),
                   "val_nat_acc": r["metrics"].get("val/nat_acc"), "val_cert_acc": r["metrics"].get("val/cert_acc")}
            if cache.get(run_dir.name) is not None:
                row = {**cache.get(run_dir.name), **row}
            else:
                n_cert = args.certify_pgd if row["method"] == "PGD" and args.certify_pgd is not None else args.certify
                row.update(evaluate_run(run_dir / "checkpoints" / "last.ckpt", args.limit, n_cert, args.bab_timeout))
                cache.add(row)
            rows.append(row)
            print(json.dumps(row), flush=True)
    save_csv(out / "runs.csv", rows, header=list(dict.fromkeys(k for r in rows for k in r)))
    lines = ["| sweep | method | eps | lambda | test nat | test IBP-cert | test tightness | complete (first test images): nat / not falsified / certified / unknown | minutes |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        full = "-" if "bab_samples" not in r else (f"{100 * r['bab_nat_acc']:.1f} / {100 * r['bab_not_falsified']:.1f} / "
                                                  f"**{100 * r['bab_cert_acc']:.1f}** / {r['bab_unknown']} (of {r['bab_samples']})")
        lines.append(f"| {r['sweep']} | {r['method']} | {r['eps']} | {r['lam'] if r['lam'] is not None else '-'} | {r['test_nat_acc']:.4f} | "
                     f"{r['test_ibp_cert_acc']:.4f} | {r['test_tightness']:.4f} | {full} | {r['train_minutes']} |")
    (out / "tables.md").write_text("\n".join(lines) + "\n")
    fig5 = [r for r in rows if r["lam"] is None]
    series = {}
    for method in sorted({r["method"] for r in fig5}):
        pts = sorted((r["eps"], r["test_tightness"]) for r in fig5 if r["method"] == method)
        series[method] = ([e for e, _ in pts], [t for _, t in pts], "o-")
    if series:
        save_plot(out / "fig5.png", series, "eps (train = test)", "tightness (test, margins)", logx=True, logy=True,
                  title="Seed 000 Fig. 5 at CPU scale: CNN3, Fashion-MNIST")
    fig6 = sorted((r for r in rows if r["lam"] is not None), key=lambda r: r["lam"])
    if fig6:
        lam = [r["lam"] for r in fig6]
        save_plot(out / "fig6.png", {"tightness": (lam, [r["test_tightness"] for r in fig6], "o-"),
                                     "natural accuracy": (lam, [r["test_nat_acc"] for r in fig6], "s-"),
                                     "IBP-certified accuracy": (lam, [r["test_ibp_cert_acc"] for r in fig6], "^-")},
                  "SABR lambda", "value (test)", title="Seed 000 Fig. 6 at CPU scale: SABR eps 0.03, CNN3, Fashion-MNIST")


if __name__ == "__main__":
    main()
