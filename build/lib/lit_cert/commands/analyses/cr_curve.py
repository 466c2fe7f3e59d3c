"""``analyze cr-curve``: certified accuracy over an eps grid and its CR-AUC (seed 002 Tables 1/4)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Optional

import numpy as np

from lit_cert.commands.analyses.common import Checkpoints, label, load
from lit_cert.commands.args import resolve_device
from lit_cert.options import NonEmpty, OneOf, Range
from lit_cert.reports import save_csv, save_plot

NAME = "cr-curve"


def _certifiers():
    from lit_cert.bounds.registry import BOUND_METHODS

    return list(BOUND_METHODS)


@dataclass
class Settings(Checkpoints):
    """Certified accuracy over one eps grid and its CR-AUC, a curve per checkpoint and
    certifier (seed 002 Tables 1/4).

    Args:
        eps_max: the grid's end (default: twice the first model's eps_test).
        points: grid points (at least 2).
        certifier: names of the bound registry (lit_cert.bounds.BOUND_METHODS).
    """

    eps_max: Optional[Annotated[float, Range(0, 1, lo_open=True)]] = None
    points: Annotated[int, Range(2)] = 11
    certifier: Annotated[list[str], NonEmpty(), OneOf(_certifiers)] = field(default_factory=lambda: ["ibp"])


def run(args) -> list[dict]:
    """One curve per checkpoint and certifier on one grid, so the curves are comparable."""
    from lit_cert.evaluation import evaluate
    from lit_cert.metrics import CRCurve

    device = resolve_device(args.device)
    rows, series = [], {}
    grid = None
    for ckpt in args.ckpt:
        model, ds = load(args, ckpt)
        n = min(args.limit, len(ds))
        name = label(ckpt, model)
        if grid is None:
            grid = np.linspace(0, args.eps_max if args.eps_max else 2 * model.eps_test, args.points)
        curves = {certifier: CRCurve(grid.tolist(), certifier) for certifier in args.certifier}
        evaluate(model.net, ds, curves, n, device=device)
        for certifier, curve in curves.items():
            values = curve.compute().tolist()
            rows += [{"model": name, "certifier": certifier, "eps": float(e), "certified_accuracy": v} for e, v in zip(grid, values)]
            series[f"{name}, {certifier}: CR-AUC {curve.auc():.3f}"] = (grid, values, "o-")
            print(f"lit_cert analyze cr-curve: {name}: {certifier} CR-AUC {curve.auc():.4f} (trapezoid, normalised)")
    save_csv(args.out / "cr-curve.csv", rows)
    save_plot(args.out / "cr-curve.png", series, "eps", "certified accuracy")
    return rows
