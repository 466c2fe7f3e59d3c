"""``analyze dln-init``: tightness at initialisation vs width and depth (seed 000, Lemma 3.7 /
Cor. 3.8)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from lit_cert.commands.analyses.common import Output
from lit_cert.options import NonEmpty, PositiveInt, Range
from lit_cert.reports import column, save_csv, save_plot

NAME = "dln-init"


@dataclass
class Settings(Output):
    """Tightness at initialisation vs width and depth (seed 000, Lemma 3.7 / Cor. 3.8).

    Args:
        widths: layer widths d.
        depths: numbers of layers L.
        samples: Monte Carlo networks per (d, L).
    """

    widths: Annotated[list[int], NonEmpty(), Range(1)] = field(default_factory=lambda: [4, 16, 64, 256])
    depths: Annotated[list[int], NonEmpty(), Range(1)] = field(default_factory=lambda: [2, 3, 4])
    samples: PositiveInt = 10



def run(args) -> list[dict]:
    from lit_cert.analysis.dln import tau_corollary_bound, tau_depth, tau_depth_approx, tau_monte_carlo, tau_relu_approx

    rows = [
        {"width": d, "depth": depth, "tau_cor38_bound": tau_corollary_bound(d, depth), "tau_closed_form": tau_depth(d, depth),
         "tau_large_d": tau_depth_approx(d, depth),
         "tau_relu_approx": tau_relu_approx(d, depth), "tau_mc_linear": tau_monte_carlo(d, depth, args.samples),
         "tau_mc_relu": tau_monte_carlo(d, depth, args.samples, relu=True)}
        for depth in args.depths for d in args.widths
    ]
    save_csv(args.out / "dln-init.csv", rows)
    series = {}
    for depth in args.depths:
        ws = column(rows, "width", depth=depth)
        # one legend entry for all closed-form lines (labels starting with "_" are hidden)
        series["exact tau(d)^(L-1)" if depth == args.depths[0] else f"_exact, L={depth}"] = (ws, column(rows, "tau_closed_form", depth=depth), "k-")
        series["Cor. 3.8 bound tau(d)^floor(L/2)" if depth == args.depths[0] else f"_bound, L={depth}"] = (ws, column(rows, "tau_cor38_bound", depth=depth), "k:")
        series[f"MC linear, L={depth}"] = (ws, column(rows, "tau_mc_linear", depth=depth), "o")
        series[f"MC ReLU, L={depth}"] = (ws, column(rows, "tau_mc_relu", depth=depth), "x--")
        worst = max(abs(r["tau_mc_linear"] / r["tau_closed_form"] - 1) for r in rows if r["depth"] == depth)
        below = all(r["tau_mc_linear"] <= r["tau_cor38_bound"] * 1.05 for r in rows if r["depth"] == depth)
        print(f"lit_cert analyze dln-init: depth {depth}: MC vs exact tau(d)^(L-1) within {100 * worst:.1f}%; "
              f"MC {'below' if below else 'ABOVE'} Corollary 3.8's bound tau(d)^floor(L/2)")
    save_plot(args.out / "dln-init.png", series, "width d", "tightness at initialisation", logx=True, logy=True,
              title="Gaussian init: Monte Carlo vs exact tau(d)^(L-1) and Cor. 3.8's bound tau(d)^floor(L/2)")
    return rows
