"""``analyze sgd-dynamics``: gradient ascent on a bound along one line (seed 002 Sec. 4.4, App. F)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import numpy as np

from lit_cert.commands.analyses.common import Output
from lit_cert.options import NonEmpty, OneOf, PositiveFloat, PositiveInt, Range, Seed
from lit_cert.reports import save_csv, save_plot

NAME = "sgd-dynamics"


@dataclass
class Settings(Output):
    """Gradient ascent on a bound along one line (seed 002 Sec. 4.4, App. F, Figs. 5/6): how often
    a discontinuous (CROWN) or sensitive (DeepZ) relaxation's ascent ends below Box's although
    its landscape reaches higher, over random integer networks.

    Args:
        relaxations: crown and/or deepz (the paper's two studied relaxations).
        networks: random integer networks per relaxation.
        seed: the first network's seed.
        span: the landscape grid: delta in [-span, span].
        points: grid points (at least 3: the bends are second differences).
    """

    relaxations: Annotated[list[str], NonEmpty(), OneOf(("crown", "deepz"))] = field(default_factory=lambda: ["crown", "deepz"])
    networks: PositiveInt = 200
    seed: Seed = 0
    span: PositiveFloat = 3.0
    points: Annotated[int, Range(3)] = 301



def run(args) -> list[dict]:
    from lit_cert.analysis.sgd_dynamics import BASELINE, SETTINGS, survey

    rows, curves = [], []
    for relaxation in args.relaxations:
        cases = survey(relaxation, range(args.seed, args.seed + args.networks), span=args.span, points=args.points)
        shown = [c for c in cases if c.shows_claim]
        lr, decay, steps = SETTINGS[relaxation]
        rows += [{"relaxation": c.relaxation, "seed": c.seed, "bound_at_0": c.start, "ascent_final": c.final,
                  "ascent_final_box": c.final_box, "landscape_max": c.best, "landscape_max_box": c.best_box,
                  "largest_drop": c.drop, "bending_share": c.curved_share, "bending_share_box": c.curved_share_box,
                  "ends_below_box": c.ends_below_box, "fell": c.fell, "shows_claim": c.shows_claim} for c in cases]
        if not cases:
            print(f"lit_cert analyze sgd-dynamics: {relaxation}: none of the {args.networks} networks has a non-zero gradient "
                  "at the start (no line to follow); try more --networks")
            continue
        n = len(cases)
        print(f"lit_cert analyze sgd-dynamics: {relaxation} (lr {lr}, decay {decay}, {steps} steps) vs Box on {len(cases)} "
              f"networks: landscape above Box's but ascent ends below Box's in {len(shown)} ({100 * len(shown) / n:.1f}%); "
              f"ascent ends below Box's in {sum(c.ends_below_box for c in cases)}; its bound fell during ascent in "
              f"{sum(c.fell for c in cases)} (with the claim: {sum(c.fell for c in shown)}); "
              f"landscape bends at {100 * np.mean([c.curved_share for c in cases]):.0f}% of grid points "
              f"(Box {100 * np.mean([c.curved_share_box for c in cases]):.0f}%)")
        if not shown:
            continue
        c = next((c for c in shown if c.fell), shown[0])  # the first that shows it, falling if one does (the paper plots one chosen example)
        curves += [{"relaxation": relaxation, "seed": c.seed, "bound": name, "kind": "landscape", "step": "", "delta": float(d), "value": float(v)}
                   for name, vals in ((relaxation, c.values), (BASELINE, c.values_box)) for d, v in zip(c.deltas, vals)]
        curves += [{"relaxation": relaxation, "seed": c.seed, "bound": name, "kind": "ascent", "step": t, "delta": d, "value": v}
                   for name, path in ((relaxation, c.path), (BASELINE, c.path_box)) for t, (d, v) in enumerate(path)]
        series = {f"{relaxation} landscape": (c.deltas, c.values, "-"), "Box landscape": (c.deltas, c.values_box, "-"),
                  f"{relaxation} ascent": ([d for d, _ in c.path], [v for _, v in c.path], "o"),
                  "Box ascent": ([d for d, _ in c.path_box], [v for _, v in c.path_box], "x")}
        save_plot(args.out / f"sgd-dynamics-{relaxation}.png", series, "delta along the initial gradient",
                  "lower bound of output 0", title=f"Fig. {5 if relaxation == 'crown' else 6} setting, network {c.seed}: "
                  f"ends {c.final:.3g} ({relaxation}) vs {c.final_box:.3g} (Box)")
    save_csv(args.out / "sgd-dynamics.csv", rows)
    if curves:
        save_csv(args.out / "sgd-dynamics-curves.csv", curves)
    return rows
