"""``analyze box-reconstruction``: Theorem 3.10 of seed 000 (reconstructing a box through a
bottleneck)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import numpy as np

from lit_cert.commands.analyses.common import Output
from lit_cert.errors import ConfigError
from lit_cert.options import NonEmpty, PositiveInt, Radius, Range
from lit_cert.reports import column, save_csv, save_plot

NAME = "box-reconstruction"


@dataclass
class Settings(Output):
    """Theorem 3.10: reconstruction radius vs embedding dimension; ``train`` adds trained
    d-k-d bottlenecks (standard vs IBP).

    Args:
        d: input dimensions.
        k: embedding dimensions (pairs with k > d are skipped).
        trials: random boxes per (d, k).
        train: also train d-k-d bottlenecks.
        train_d: their input dimension.
        train_k: their bottleneck widths.
        train_eps: their training radius.
        train_epochs: their epochs.
    """

    d: Annotated[list[int], NonEmpty(), Range(1)] = field(default_factory=lambda: [100, 400])
    k: Annotated[list[int], NonEmpty(), Range(1)] = field(default_factory=lambda: [1, 2, 4, 8, 16, 32, 64])
    trials: PositiveInt = 20
    train: bool = False
    train_d: PositiveInt = 50
    train_k: Annotated[list[int], NonEmpty(), Range(1)] = field(default_factory=lambda: [1, 2, 5, 10, 20])
    train_eps: Radius = 0.01
    train_epochs: PositiveInt = 200



def run(args) -> list[dict]:
    from lit_cert.analysis.box_reconstruction import growth_exponent, monte_carlo, trained_reconstruction

    keys = ["d", "k", "optimal_radius", "ibp_radius", "c", "c_closed_form", "optimal_radius_limit", "tightness"]
    rows = [{key: r[key] for key in keys} for r in (monte_carlo(d, k, args.trials) for d in args.d for k in args.k if k <= d)]
    if not rows:
        raise ConfigError("box-reconstruction: no (d, k) pair with k <= d")
    save_csv(args.out / "box-reconstruction.csv", rows, keys)
    series = {}
    for d in args.d:
        ks = column(rows, "k", d=d)
        if not ks:
            continue
        opt, ibp = column(rows, "optimal_radius", d=d), column(rows, "ibp_radius", d=d)
        series[f"layer-wise (IBP), d={d}"] = (ks, ibp, "o-")
        series[f"optimal, d={d}"] = (ks, opt, "s-")
        last = [r for r in rows if r["d"] == d][-1]
        exponents = (growth_exponent(ks, ibp), growth_exponent(ks, opt)) if len(ks) > 1 else (float("nan"),) * 2
        print(f"lit_cert analyze box-reconstruction: d={d}: c = {last['c']:.4f} (closed form {last['c_closed_form']:.4f}, "
              f"2/pi = {2 / np.pi:.4f}); radius ~ k^{exponents[0]:.2f} layer-wise, ~ k^{exponents[1]:.2f} optimal")
    from lit_cert.analysis.box_reconstruction import optimal_radius_limit

    ks = sorted(set(r["k"] for r in rows))
    series["Thm 3.10 (i): (2/pi) k"] = (ks, [2 / np.pi * k for k in ks], "k:")
    series["Thm 3.10 (ii): 2 G((k+1)/2) / (sqrt(pi) G(k/2))"] = (ks, [optimal_radius_limit(k) for k in ks], "k--")
    save_plot(args.out / "box-reconstruction.png", series, "embedding dimension k", "output radius / eps",
              logx=True, logy=True, title="PCA reconstruction of a box: layer-wise ~ k, optimal ~ sqrt(k)")
    if args.train:
        tkeys = ["d", "k", "mode", "relu", "ibp_radius", "ibp_l1_error", "clean_l2_error", "tightness"]
        trows = [{key: r[key] for key in tkeys}
                 for k in args.train_k for relu in (False, True) for mode in ("standard", "ibp")
                 for r in [trained_reconstruction(args.train_d, k, args.train_eps, mode, relu, epochs=args.train_epochs)]]
        save_csv(args.out / "box-reconstruction-trained.csv", trows, tkeys)
        tseries = {f"{mode}, {'ReLU' if relu else 'linear'}": (column(trows, "k", mode=mode, relu=relu), column(trows, "tightness", mode=mode, relu=relu), "o-")
                   for relu in (False, True) for mode in ("standard", "ibp")}
        save_plot(args.out / "box-reconstruction-trained.png", tseries, "bottleneck width k", "tightness",
                  title=f"trained d={args.train_d} bottleneck, eps={args.train_eps:g}")
    return rows
