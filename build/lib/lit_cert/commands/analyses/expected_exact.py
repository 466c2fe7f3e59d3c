"""``analyze expected-exact``: expected bounds against exact (MILP) logit ranges (seed 001 Table 1)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import numpy as np

from lit_cert.commands.analyses.common import Checkpoints, load
from lit_cert.errors import check
from lit_cert.options import NonEmpty, PositiveFloat, PositiveInt, Range
from lit_cert.reports import save_csv, save_plot

NAME = "expected-exact"


@dataclass
class Settings(Checkpoints):
    """Gamma of the expected bounds against the exact MILP logit ranges of a trained network
    (seed 001 Table 1), per eps.

    Args:
        eps: the paper's Table 1 radii.
        limit: the first N samples.
        milp_timeout: MILP seconds per sample (all 2K logit extremes).
    """

    eps: Annotated[list[float], NonEmpty(), Range(0, 1)] = field(default_factory=lambda: [0.01, 0.02, 0.03])
    limit: PositiveInt = 20
    milp_timeout: PositiveFloat = 60.0

    def __post_init__(self):
        super().__post_init__()
        check(len(self.ckpt) == 1, "--ckpt: expected-exact takes one checkpoint")



def run(args) -> list[dict]:
    """Seed 001 Table 1: Gamma of the expected bounds against the exact (MILP) logit ranges of a
    trained network, and their width against IBP's, per eps, over the first ``limit`` samples."""
    from lit_cert.analysis.expected_validity import exact_coverage
    model, dataset = load(args, args.ckpt[0])
    n = min(args.limit, len(dataset))
    rows = []
    for eps in args.eps:
        runs = [exact_coverage(model.net, dataset[i][0].unsqueeze(0), eps, args.milp_timeout) for i in range(n)]
        gamma = np.concatenate([r["gamma"] for r in runs])
        exp_w, exact = (np.concatenate([r[key] for r in runs]) for key in ("expected_width", "exact_width"))
        ibp_all, exp_all = (np.concatenate([r[key] for r in runs]) for key in ("ibp_width_all", "expected_width_all"))
        ibp = np.concatenate([r["ibp_width"] for r in runs])
        stat = (lambda f, v: float(f(v)) if len(v) else None)  # noqa: E731
        row = {"eps": eps, "samples": n, "logits": int(sum(r["logits"] for r in runs)), "logits_exact": len(gamma),
               "gamma_mean": stat(np.mean, gamma), "gamma_std": stat(np.std, gamma), "gamma_min": stat(np.min, gamma),
               "gamma_max": stat(np.max, gamma),
               "ibp_minus_expected_width": float(np.abs(ibp_all - exp_all).mean()),
               "ibp_over_expected_width": float((ibp_all / np.maximum(exp_all, 1e-12)).mean()),
               "expected_over_exact_width": stat(np.mean, exp_w / np.maximum(exact, 1e-12)),
               "ibp_over_exact_width": stat(np.mean, ibp / np.maximum(exact, 1e-12))}
        rows.append(row)
        exact_part = ("no logit's MILP reached optimality" if not len(gamma) else
                      f"Gamma {row['gamma_mean']:.3f} +- {row['gamma_std']:.3f} (min {row['gamma_min']:.3f}, max {row['gamma_max']:.3f}), "
                      f"W_M / W_exact {row['expected_over_exact_width']:.3g}")
        print(f"lit_cert analyze expected-exact: eps {eps:g}: {exact_part} on the {row['logits_exact']} of {row['logits']} logits "
              f"solved exactly; |W_IBP - W_M| {row['ibp_minus_expected_width']:.3g}, W_IBP / W_M {row['ibp_over_expected_width']:.3g} (all logits)")
    save_csv(args.out / "expected-exact.csv", rows)
    ok = [r for r in rows if r["gamma_mean"] is not None]
    series = {"Gamma (mean)": ([r["eps"] for r in ok], [r["gamma_mean"] for r in ok], "o-"),
              "Gamma (min)": ([r["eps"] for r in ok], [r["gamma_min"] for r in ok], "x--"),
              "W_M / W_exact": ([r["eps"] for r in ok], [r["expected_over_exact_width"] for r in ok], "s:")}
    save_plot(args.out / "expected-exact.png", series, "eps", "value", title="seed 001 Table 1: expected bounds vs exact (MILP) logit ranges")
    return rows
