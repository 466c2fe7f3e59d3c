"""``analyze expected-bounds``: coverage and width of expected tight bounds (seed 001 Figs. 1-3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from lit_cert.commands.analyses.common import Output
from lit_cert.options import NonEmpty, PositiveFloat, PositiveInt, Range
from lit_cert.reports import column, save_csv, save_plot

NAME = "expected-bounds"


@dataclass
class Settings(Output):
    """Coverage Gamma and IBP/expected width ratio (seed 001 Fig. 1a, 2), and beyond one block
    (Fig. 1b, Fig. 3a/b) when ``depths`` is given.

    Args:
        n: input sizes (the paper's Fig. 1a range).
        k: hidden units.
        eps: box radius (the paper: 0.1).
        trials: random blocks per (n, k) (the paper: 1000).
        samples: uniform samples per block besides the 2^n corners (the paper: 1e6).
        depths: affine layers of the deeper networks (at least 2; empty: not run).
        depth_n: Fig. 1b: input size = every hidden width.
        depth_width: Fig. 3a/b: n = k = this.
        depth_eps: Fig. 3a/b radii.
        depth_trials: random networks per depth.
        depth_samples: samples per network.
    """

    n: Annotated[list[int], NonEmpty(), Range(1)] = field(default_factory=lambda: [2, 5, 10, 15, 20])
    k: Annotated[list[int], NonEmpty(), Range(1)] = field(default_factory=lambda: [10, 100, 1000])
    eps: PositiveFloat = 0.1
    trials: PositiveInt = 1000
    samples: PositiveInt = 1000000
    depths: Annotated[list[int], Range(2)] = field(default_factory=list)
    depth_n: Annotated[list[int], NonEmpty(), Range(1)] = field(default_factory=lambda: [10, 20])
    depth_width: PositiveInt = 500
    depth_eps: Annotated[list[float], NonEmpty(), Range(0, 1)] = field(default_factory=lambda: [0.01, 0.1, 0.5])
    depth_trials: PositiveInt = 100
    depth_samples: PositiveInt = 100000



def run(args) -> list[dict]:
    from lit_cert.analysis.expected_validity import gamma_and_ratio

    rows = [{k: r[k] for k in ("n", "k", "eps", "trials", "samples", "gamma", "gamma_min", "ibp_over_expected_width")}
            for r in (gamma_and_ratio(n, k, trials=args.trials, samples=args.samples, radius=args.eps)
                      for n in args.n for k in args.k)]
    save_csv(args.out / "expected-bounds.csv", rows)
    series = {}
    for k in args.k:
        ns = column(rows, "n", k=k)
        series[f"Gamma, k={k}"] = (ns, column(rows, "gamma", k=k), "o-")
        series[f"IBP/expected width, k={k}"] = (ns, column(rows, "ibp_over_expected_width", k=k), "x--")
        print(f"lit_cert analyze expected-bounds: k={k}: Gamma " + ", ".join(f"{g:.3f} (n={n})" for n, g in zip(ns, column(rows, "gamma", k=k))))
    save_plot(args.out / "expected-bounds.png", series, "input size n", "value", logy=True,
              title=f"seed 001 Fig. 1a/2: coverage Gamma and IBP/expected width, eps {args.eps:g}")
    if args.depths:
        rows += expected_bounds_depth(args)
    return rows


def expected_bounds_depth(args) -> list[dict]:
    """Seed 001 beyond one block: Gamma vs depth with every layer as wide as the input (Fig. 1b),
    and the IBP/expected width ratio vs depth at n = k = ``depth_width`` (Fig. 3a/b)."""
    from lit_cert.analysis.expected_validity import gamma_and_ratio

    keys = ["n", "k", "layers", "eps", "trials", "samples", "gamma", "gamma_min", "ibp_over_expected_width"]
    rows = [{key: r[key] for key in keys} for n in args.depth_n for layers in args.depths
            for r in [gamma_and_ratio(n, n, trials=args.depth_trials, samples=args.depth_samples, radius=args.eps, layers=layers)]]
    rows += [{key: r[key] for key in keys} for eps in args.depth_eps for layers in args.depths
             for r in [gamma_and_ratio(args.depth_width, args.depth_width, trials=args.depth_trials, radius=eps, layers=layers,
                                       coverage=False)]]
    save_csv(args.out / "expected-bounds-depth.csv", rows, keys)
    series = {}
    for n in args.depth_n:
        sel = [r for r in rows if r["n"] == n and r["gamma"] is not None]
        series[f"Gamma, n = k = {n}"] = ([r["layers"] for r in sel], [r["gamma"] for r in sel], "o-")
        print(f"lit_cert analyze expected-bounds: n = k = {n}, eps {args.eps:g}: Gamma by depth " +
              ", ".join(f"{r['gamma']:.3f} ({r['layers']})" for r in sel))
    for eps in args.depth_eps:
        sel = [r for r in rows if r["n"] == args.depth_width and r["eps"] == eps and r["gamma"] is None]
        series[f"IBP/expected width, n = k = {args.depth_width}, eps {eps:g}"] = ([r["layers"] for r in sel], [r["ibp_over_expected_width"] for r in sel], "x--")
        print(f"lit_cert analyze expected-bounds: n = k = {args.depth_width}, eps {eps:g}: IBP/expected width by depth " +
              ", ".join(f"{r['ibp_over_expected_width']:.3g} ({r['layers']})" for r in sel))
    save_plot(args.out / "expected-bounds-depth.png", series, "affine layers", "value", logy=True,
              title="seed 001 Fig. 1b / 3a-b: Gamma and IBP/expected width vs depth")
    return rows
