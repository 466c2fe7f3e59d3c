"""``analyze expected-polytope``: the output set of a random network, its expected bounds and
IBP's (seed 001 Fig. 4)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from lit_cert.commands.analyses.common import Output
from lit_cert.options import NonEmpty, PositiveInt, Range, Seed
from lit_cert.reports import save_csv

NAME = "expected-polytope"


@dataclass
class Settings(Output):
    """A random ``n-100-100-100-100-2`` network per radius (the paper's Fig. 4 with n = 20),
    Monte-Carlo outputs of uniform points of one eps-box, and both outputs' expected and IBP
    intervals.

    Args:
        n: input size.
        hidden: hidden layer widths.
        eps: box radii (one panel each).
        samples: uniform points per box.
        networks: random networks per radius (the paper shows several).
        seed: the first network's seed.
    """

    n: PositiveInt = 20
    hidden: Annotated[list[int], NonEmpty(), Range(1)] = field(default_factory=lambda: [100, 100, 100, 100])
    eps: Annotated[list[float], NonEmpty(), Range(0, 1, lo_open=True)] = field(default_factory=lambda: [0.05, 0.1, 0.25])
    samples: Annotated[int, Range(100, 10_000_000)] = 100_000
    networks: PositiveInt = 3
    seed: Seed = 0


def run(args) -> list[dict]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lit_cert.analysis.expected_validity import output_polytope
    from lit_cert.persist import atomic_path

    rows = []
    fig, axes = plt.subplots(args.networks, len(args.eps), figsize=(3.6 * len(args.eps), 3.2 * args.networks), squeeze=False)
    for j, eps in enumerate(args.eps):
        for i in range(args.networks):
            r = output_polytope(args.n, tuple(args.hidden), eps, args.samples, args.seed + i)
            (e_lo, e_hi), (i_lo, i_hi) = r["expected"], r["ibp"]
            rows.append({"eps": eps, "network": args.seed + i, "samples": args.samples, "inside": r["inside"],
                         **{f"gamma_{k}": r["gamma"][k] for k in (0, 1)},
                         **{f"ibp_over_expected_width_{k}": r["ibp_over_expected_width"][k] for k in (0, 1)},
                         **{f"{name}_{side}_{k}": float(t[k]) for name, pair in (("expected", r["expected"]), ("ibp", r["ibp"]))
                            for side, t in zip(("lo", "hi"), pair) for k in (0, 1)}})
            ax = axes[i][j]
            pts = r["points"][:: max(1, args.samples // 20000)].numpy()
            ax.plot(pts[:, 0], pts[:, 1], ",", color="0.4")
            xs = [e_lo[0], e_hi[0], e_hi[0], e_lo[0], e_lo[0]]
            ys = [e_lo[1], e_lo[1], e_hi[1], e_hi[1], e_lo[1]]
            ax.plot([float(v) for v in xs], [float(v) for v in ys], "r-", lw=1)
            ax.set_title(f"eps {eps:g}, network {args.seed + i}: IBP x [{float(i_lo[0]):.1f}, {float(i_hi[0]):.1f}]", fontsize=7)
            ax.tick_params(labelsize=6)
            print(f"lit_cert analyze expected-polytope: eps {eps:g}, network {args.seed + i}: {100 * r['inside']:.1f}% of the "
                  f"sampled outputs inside the expected box; IBP/expected width {r['ibp_over_expected_width'][0]:.0f} / "
                  f"{r['ibp_over_expected_width'][1]:.0f}")
    fig.suptitle("seed 001 Fig. 4: sampled outputs (grey), expected bounds (red); IBP's box is far larger (titles)", fontsize=8)
    fig.tight_layout()
    with atomic_path(args.out / "expected-polytope.png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    save_csv(args.out / "expected-polytope.csv", rows)
    return rows
