"""``analyze expected-conv``: expected bounds of convolutional networks with IBP masks against
IBP, by depth (seed 001 Fig. 3c/d)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from lit_cert.commands.analyses.common import Output
from lit_cert.options import NonEmpty, NonNegativeInt, PositiveInt, Range, Seed
from lit_cert.reports import save_csv, save_plot

NAME = "expected-conv"


@dataclass
class Settings(Output):
    """Random convolutional networks (3x3 convolutions, ReLUs, a final linear output) of each
    depth; the expected bounds take their masks from IBP's upper bounds, as the paper does for
    convolutions (seed 001 Sec. 4).

    Args:
        depths: affine layers (convolutions + the final linear map; at least 2).
        eps: box radii.
        channels: filters per convolution.
        in_channels: input channels.
        size: input height and width.
        trials: random networks per (depth, eps).
        samples: uniform points (and as many random corners) per network for Gamma (0: width only).
        seed: the first network's seed.
    """

    depths: Annotated[list[int], NonEmpty(), Range(2, 30)] = field(default_factory=lambda: [2, 3, 4, 5, 6, 8, 10])
    eps: Annotated[list[float], NonEmpty(), Range(0, 1, lo_open=True)] = field(default_factory=lambda: [0.01, 0.1, 0.5])
    channels: PositiveInt = 8
    in_channels: PositiveInt = 3
    size: Annotated[int, Range(1, 64)] = 8
    trials: PositiveInt = 20
    samples: NonNegativeInt = 2000
    seed: Seed = 0


def run(args) -> list[dict]:
    from lit_cert.analysis.expected_validity import conv_width_ratio

    rows = [conv_width_ratio(d, args.channels, args.in_channels, args.size, eps, args.trials, args.samples, args.seed)
            for eps in args.eps for d in args.depths]
    save_csv(args.out / "expected-conv.csv", rows)
    series = {}
    for eps in args.eps:
        sel = [r for r in rows if r["eps"] == eps]
        series[f"IBP/expected width, eps {eps:g}"] = ([r["layers"] for r in sel], [r["ibp_over_expected_width"] for r in sel], "x--")
        if args.samples:
            series[f"Gamma, eps {eps:g}"] = ([r["layers"] for r in sel], [r["gamma"] for r in sel], "o-")
        print(f"lit_cert analyze expected-conv: eps {eps:g}: IBP/expected width by depth "
              + ", ".join(f"{r['ibp_over_expected_width']:.3g} ({r['layers']})" for r in sel))
    save_plot(args.out / "expected-conv.png", series, "affine layers", "value", logy=True,
              title=f"seed 001 Fig. 3c/d: CNNs ({args.channels} channels, IBP masks), {args.trials} networks each")
    return rows
