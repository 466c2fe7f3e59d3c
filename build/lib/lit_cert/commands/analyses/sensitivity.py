"""``analyze sensitivity``: the exact degree of each relaxation's bounds (seed 002 Sec. 4.2)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from lit_cert.commands.analyses.common import Output
from lit_cert.errors import check
from lit_cert.options import NonEmpty, OneOf, PositiveInt, Range, Seed
from lit_cert.reports import column, save_csv, save_plot

NAME = "sensitivity"


def _relaxations():
    from lit_cert.analysis.sensitivity import RELAXATIONS

    return RELAXATIONS


@dataclass
class Settings(Output):
    """Sensitivity of relaxations (seed 002 Sec. 4.2), measured exactly: the degree of the output
    bounds as rational functions of the first layer's shift, per width and depth, against the
    paper's worst-case count (:mod:`lit_cert.analysis.sensitivity`).

    Args:
        widths: M, the input and every hidden layer's width.
        hidden: hidden ReLU layers (B + 1).
        networks: worst-case networks (every ReLU unstable) per (width, depth).
        relaxations: which relaxations to measure.
        seed: the first network's seed.
        max_count: skip (width, depth) pairs whose paper count for DeepZ/CROWN exceeds this:
            exact arithmetic grows with the degrees (M = 4 with three hidden layers: ~10 min per
            network).
    """

    widths: Annotated[list[int], NonEmpty(), Range(1)] = field(default_factory=lambda: [1, 2, 3, 4, 5])
    hidden: Annotated[list[int], NonEmpty(), Range(1)] = field(default_factory=lambda: [1, 2, 3])
    networks: PositiveInt = 5
    relaxations: Annotated[list[str], NonEmpty(), OneOf(_relaxations)] = field(
        default_factory=lambda: ["ibp", "hbox", "deepz", "crown", "crown-ibp"])
    seed: Seed = 0
    max_count: PositiveInt = 500



def run(args) -> list[dict]:
    """Seed 002 Sec. 4.2: the exact degree of each relaxation's bounds as rational functions of
    the first layer's shift, on worst-case networks, against the paper's count."""
    from lit_cert.analysis.sensitivity import measure, paper_sensitivity

    rows, missing, skipped = [], [], []
    for hidden in args.hidden:
        for width in args.widths:
            if paper_sensitivity("deepz", width, hidden) > args.max_count:
                skipped.append((width, hidden))
                continue
            for k in range(args.networks):
                got = measure(width, hidden, args.seed + k, args.relaxations)
                rows += got
                if not got:
                    missing.append((width, hidden, args.seed + k))
    check(rows, "no network with every ReLU unstable was found; try other --widths/--hidden")
    worst = max(r["engine_gap"] for r in rows)
    out = [r for r in rows if r["output"]]
    over = [r for r in out if r["measured_degree"] > r["paper_degree"]]
    for relaxation in args.relaxations:
        cells = []
        for hidden in args.hidden:
            for width in args.widths:
                ds = column(out, "measured_degree", relaxation=relaxation, width=width, hidden=hidden)
                if ds:
                    cells.append(f"M={width},H={hidden}: {max(ds)}/{paper_sensitivity(relaxation, width, hidden)}")
        print(f"lit_cert analyze sensitivity: {relaxation}: measured max / paper's count: " + ", ".join(cells))
    print(f"lit_cert analyze sensitivity: {len(out) // len(args.relaxations)} networks, largest gap to the float64 engine "
          f"{worst:.1e}; above the paper's count: {len(over)}" + (f"; no worst-case network for {missing}" if missing else "")
          + (f"; skipped (paper's count > --max_count): {skipped}" if skipped else ""))
    save_csv(args.out / "sensitivity.csv", rows)
    styles = {"ibp": "bo", "hbox": "gs", "deepz": "r^", "crown": "mv", "crown-ibp": "cD"}
    families = {"Box, hBox": ("ibp", "k:"), "DeepZ, CROWN": ("deepz", "r--"), "CROWN-IBP": ("crown-ibp", "c--")}
    for axis, fixed in (("width", "hidden"), ("hidden", "width")):
        values = args.hidden if fixed == "hidden" else args.widths
        pick = values[len(values) // 2]  # one slice of the grid per plot
        series = {}
        for relaxation in args.relaxations:
            sel = {fixed: pick, "relaxation": relaxation}
            xs = sorted(set(column(out, axis, **sel)))
            if xs:
                series[f"{relaxation} measured (max)"] = (xs, [max(column(out, "measured_degree", **sel, **{axis: x})) for x in xs],
                                                          styles.get(relaxation, "ko") + "-")
        xs = sorted(set(column(out, axis, **{fixed: pick})))
        for label, (relaxation, style) in families.items():
            series[f"{label}: paper's count"] = (xs, [paper_sensitivity(relaxation, **{fixed: pick, axis: x}) for x in xs], style)
        if series:
            save_plot(args.out / f"sensitivity-{axis}.png", series, "width M" if axis == "width" else "hidden ReLU layers",
                      "degree N of the output bounds", logy=True,
                      title=f"seed 002 Sec. 4.2: sensitivity, {'H' if fixed == 'hidden' else 'M'} = {pick}, "
                            f"{args.networks} worst-case networks each")
    return rows
