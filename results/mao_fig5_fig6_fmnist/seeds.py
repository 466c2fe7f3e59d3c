"""Figs. 5 and 6 with three training seeds at the ends of their ranges: seed 0 from ``runs.csv``
(the one-seed sweeps), seeds 1 and 2 from the ``run.py`` evaluations of the seeds sweeps
(``sweeps/mao_fig5_seeds_fmnist_cnn3.yaml`` (IBP), ``..._seeds_sabr_...``, ``..._seeds_pgd_...``,
``sweeps/mao_fig6_seeds_fmnist_cnn3.yaml``):

    python results/mao_fig5_fig6_fmnist/run.py --sweeps sweep_runs/fig5_seeds --limit 1000 --out results/mao_fig5_fig6_fmnist/seeds
    python results/mao_fig5_fig6_fmnist/seeds.py --seeds results/mao_fig5_fig6_fmnist/seeds/runs.csv [more runs.csv ...]

Prints, per (method, eps, lambda) present in the seeds files, the mean +- sample standard deviation
over the seeds of test tightness, natural and IBP-certified accuracy (the same first 1000 test images
for every seed), with the seed-0 row of the same setting from ``runs.csv``, and writes it to
``seeds_table.md`` next to this file; ``seeds_fig5.png`` / ``seeds_fig6.png`` plot every seed's
test tightness (one marker per run, so the spread is visible). A Fig. 5 run has no lambda (SABR's
default 0.4); a Fig. 6 run names it.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

HERE = Path(__file__).resolve().parent
MARKERS = {"IBP": "o", "SABR": "s", "PGD": "^"}


def setting(row: dict) -> tuple:
    """(method, eps, lambda or None): what a seed repeats."""
    return row["method"], float(row["eps"]), float(row["lam"]) if row.get("lam") not in (None, "") else None


def table(rows: list[dict], keys: list[tuple]) -> str:
    lines = ["| method | eps | lambda | seeds | test tightness | test natural % | test IBP-certified % |",
             "|---|---|---|---|---|---|---|"]
    for key in keys:
        group = [r for r in rows if setting(r) == key]

        def ms(column, scale=1.0, digits=3):
            values = [scale * float(r[column]) for r in group]
            spread = statistics.stdev(values) if len(values) > 1 else float("nan")
            return f"{statistics.mean(values):.{digits}f} +- {spread:.{digits}f}"

        method, eps, lam = key
        lines.append(f"| {method} | {eps:g} | {'-' if lam is None else f'{lam:g}'} | {len(group)} | {ms('test_tightness')} | "
                     f"{ms('test_nat_acc', 100, 1)} | {ms('test_ibp_cert_acc', 100, 1)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", nargs="+", required=True, help="runs.csv of each seeds evaluation")
    args = p.parse_args()
    seed0 = list(csv.DictReader(open(HERE / "runs.csv")))
    more = [r for f in args.seeds for r in csv.DictReader(open(f))]
    keys = sorted({setting(r) for r in more}, key=lambda k: (k[0], k[1], -1.0 if k[2] is None else k[2]))
    text = table(seed0 + more, keys)
    print(text)
    (HERE / "seeds_table.md").write_text(text)
    plot(seed0 + more, keys)


def plot(rows: list[dict], keys: list[tuple]) -> None:
    """Every seed's tightness at the settings that have seeds: Fig. 5 over eps, Fig. 6 over lambda."""
    from lit_cert.reports import save_plot

    runs = [r for r in rows if setting(r) in keys]
    fig5 = {}
    for method in sorted({k[0] for k in keys if k[2] is None}):
        pts = [(setting(r)[1], float(r["test_tightness"])) for r in runs if setting(r)[0] == method and setting(r)[2] is None]
        fig5[f"{method} (each seed)"] = ([x for x, _ in pts], [y for _, y in pts], MARKERS.get(method, "x"))
    if fig5:
        save_plot(HERE / "seeds_fig5.png", fig5, "eps (train = test)", "test tightness", logx=True,
                  title="Seed 000 Fig. 5 at CPU scale, every training seed (CNN3, Fashion-MNIST)")
    pts = [(setting(r)[2], float(r["test_tightness"]), float(r["test_nat_acc"])) for r in runs if setting(r)[2] is not None]
    if pts:
        save_plot(HERE / "seeds_fig6.png", {"tightness (each seed)": ([p[0] for p in pts], [p[1] for p in pts], "o"),
                                            "natural accuracy (each seed)": ([p[0] for p in pts], [p[2] for p in pts], "s")},
                  "SABR lambda", "value (test)", title="Seed 000 Fig. 6 at CPU scale, every training seed (SABR eps 0.03)")


if __name__ == "__main__":
    main()
