"""Fig. 5 with three training seeds at the ends of the eps range (IBP): seed 0 from ``runs.csv``
(the one-seed sweep), seeds 1 and 2 from the ``run.py`` evaluation of
``sweeps/mao_fig5_seeds_fmnist_cnn3.yaml``:

    python results/mao_fig5_fig6_fmnist/run.py --sweeps sweep_runs/fig5_seeds --limit 1000 --out results/mao_fig5_fig6_fmnist/seeds
    python results/mao_fig5_fig6_fmnist/seeds.py --seeds results/mao_fig5_fig6_fmnist/seeds/runs.csv

Prints, per method and eps present in the seeds file, the mean +- sample standard deviation over
the three seeds of test tightness, natural and IBP-certified accuracy (the same first 1000 test
images for every seed), and writes it to ``seeds_table.md`` next to this file.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", required=True, help="runs.csv of the seeds 1, 2 evaluation")
    args = p.parse_args()
    seed0 = [r for r in csv.DictReader(open(HERE / "runs.csv")) if r["sweep"] == "fig5"]
    more = list(csv.DictReader(open(args.seeds)))
    keys = sorted({(r["method"], float(r["eps"])) for r in more})
    lines = ["| method | eps | seeds | test tightness | test natural % | test IBP-certified % |", "|---|---|---|---|---|---|"]
    for method, eps in keys:
        group = [r for r in seed0 + more if r["method"] == method and float(r["eps"]) == eps]

        def ms(key, scale=1.0, digits=3):
            values = [scale * float(r[key]) for r in group]
            return f"{statistics.mean(values):.{digits}f} +- {statistics.stdev(values):.{digits}f}"

        lines.append(f"| {method} | {eps:g} | {len(group)} | {ms('test_tightness')} | {ms('test_nat_acc', 100, 1)} | "
                     f"{ms('test_ibp_cert_acc', 100, 1)} |")
    text = "\n".join(lines) + "\n"
    print(text)
    (HERE / "seeds_table.md").write_text(text)


if __name__ == "__main__":
    main()
