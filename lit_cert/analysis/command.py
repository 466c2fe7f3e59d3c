"""``python -m lit_cert analyze {dln-init,landscape,expected-bounds,tightness,cr-curve} ...``

Each analysis writes ``<name>.csv`` and ``<name>.png`` into ``--out`` (default ``analysis/``)."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import torch


def save_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def save_plot(path: Path, x, series: dict, xlabel: str, ylabel: str, logx: bool = False, logy: bool = False, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for label, (xs, ys, style) in series.items():
        ax.plot(xs, ys, style, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def dln_init(args) -> list[list]:
    from lit_cert.analysis.dln import tau_closed_form, tau_depth_approx, tau_monte_carlo

    rows = []
    for depth in args.depths:
        for d in args.widths:
            rows.append([d, depth, tau_closed_form(d) if depth == 2 else "", tau_depth_approx(d, depth),
                         tau_monte_carlo(d, depth, args.samples), tau_monte_carlo(d, depth, args.samples, relu=True)])
    save_csv(args.out / "dln-init.csv", ["width", "depth", "tau_closed_form", "tau_depth_approx", "tau_mc_linear", "tau_mc_relu"], rows)
    series = {}
    for depth in args.depths:
        sel = [r for r in rows if r[1] == depth]
        series[f"MC linear, depth {depth}"] = ([r[0] for r in sel], [r[4] for r in sel], "o-")
        series[f"MC ReLU, depth {depth}"] = ([r[0] for r in sel], [r[5] for r in sel], "x--")
        if depth == 2:
            series["closed form (Lemma 3.7)"] = ([r[0] for r in sel], [r[2] for r in sel], "k-")
    save_plot(args.out / "dln-init.png", None, series, "width d", "tightness at init", logx=True, logy=True)
    return rows


def landscape(args) -> list[list]:
    from lit_cert.analysis.landscape import RELAXATIONS, discontinuities, scan

    if args.ckpt:
        from lit_cert.bounds.region import linf_box
        from lit_cert.certify.data import load_run

        model, dm = load_run(args.ckpt, args.config)
        net = model.net.eval()
        x = dm.test_set[args.index][0].unsqueeze(0)
        lb, ub = linf_box(x, model.eps_test if args.eps is None else args.eps)
    else:  # the paradox paper's three-layer example, see lit_cert.analysis.landscape
        from lit_cert.analysis.examples import paradox_example

        net, lb, ub = paradox_example(args.w)
    deltas = np.linspace(-args.delta, args.delta, args.steps)
    direction = None
    if not args.ckpt:  # the example's parameter is w, the first neuron's bias
        direction = [torch.zeros_like(net[0].weight), torch.tensor([1.0, 0.0], dtype=torch.float64)]
    rows, series = [], {}
    for relaxation in RELAXATIONS:
        values = scan(net, lb, ub, args.output, relaxation, deltas, direction)
        jumps = discontinuities(deltas, values)
        print(f"lit_cert analyze landscape: {relaxation:<6} " + (", ".join(f"jump {j:+.3g} at delta={d:.3g}" for d, j in jumps) or "continuous"))
        rows += [[relaxation, float(d), float(v)] for d, v in zip(deltas, values)]
        series[relaxation] = (deltas, values, "-")
    save_csv(args.out / "landscape.csv", ["relaxation", "delta", "lower_bound"], rows)
    xlabel = "delta along each bound's gradient" if args.ckpt else f"delta added to w (w = {args.w:g} at 0)"
    save_plot(args.out / "landscape.png", None, series, xlabel, f"lower bound of output {args.output}")
    return rows


def expected_bounds_cmd(args) -> list[list]:
    from lit_cert.analysis.expected_validity import gamma_and_ratio

    rows = [[r["n"], r["k"], r["gamma"], r["ibp_over_expected_width"]] for r in
            (gamma_and_ratio(n, k, trials=args.trials, samples=args.samples) for n in args.n for k in args.k)]
    save_csv(args.out / "expected-bounds.csv", ["n", "k", "gamma", "ibp_over_expected_width"], rows)
    series = {}
    for n in args.n:
        sel = [r for r in rows if r[0] == n]
        series[f"Gamma, n={n}"] = ([r[1] for r in sel], [r[2] for r in sel], "o-")
        series[f"IBP/expected width, n={n}"] = ([r[1] for r in sel], [r[3] for r in sel], "x--")
    save_plot(args.out / "expected-bounds.png", None, series, "hidden units k", "value", logx=True)
    return rows


def checkpoint_metric(args, name: str) -> list[list]:
    from torch.utils.data import DataLoader

    from lit_cert.certify.data import load_run
    from lit_cert.metrics import CRCurve, PropagationTightness

    model, dm = load_run(args.ckpt, args.config)
    ds = dm.test_set if args.split == "test" else dm.val_set
    n = len(ds) if args.limit is None else min(args.limit, len(ds))
    loader = DataLoader(torch.utils.data.Subset(ds, range(n)), batch_size=100)
    net = model.net.eval()
    if name == "tightness":
        metric = PropagationTightness()
        with torch.no_grad():
            for x, _ in loader:
                metric.update(net, x)
        rows = [[n, metric.compute().item()]]
        save_csv(args.out / "tightness.csv", ["samples", "tightness"], rows)
        print(f"lit_cert analyze tightness: {rows[0][1]:.4f} over {n} samples")
        return rows
    grid = np.linspace(0, args.eps_max if args.eps_max else 2 * model.eps_test, args.points)
    curve = CRCurve(grid.tolist())
    for x, y in loader:
        curve.update(net, x, y)
    values = curve.compute().tolist()
    rows = [[float(e), v] for e, v in zip(grid, values)]
    save_csv(args.out / "cr-curve.csv", ["eps", "certified_accuracy"], rows)
    save_plot(args.out / "cr-curve.png", None, {"IBP": (grid, values, "o-")}, "eps", "certified accuracy",
              title=f"CR-AUC {curve.auc():.4f} (trapezoid, normalised)")
    print(f"lit_cert analyze cr-curve: CR-AUC {curve.auc():.4f}")
    return rows


def main(argv: list[str]):
    p = argparse.ArgumentParser(prog="python -m lit_cert analyze", description=__doc__)
    sub = p.add_subparsers(dest="name", required=True)
    a = sub.add_parser("dln-init", help="tightness at initialisation vs width and depth")
    a.add_argument("--widths", type=int, nargs="+", default=[4, 16, 64, 256])
    a.add_argument("--depths", type=int, nargs="+", default=[2, 3, 4])
    a.add_argument("--samples", type=int, default=10)
    b = sub.add_parser("landscape", help="bounds along a parameter direction, per relaxation")
    b.add_argument("--ckpt", default=None)
    b.add_argument("--config", default=None)
    b.add_argument("--index", type=int, default=0)
    b.add_argument("--eps", type=float, default=None)
    b.add_argument("--output", type=int, default=0)
    b.add_argument("--w", type=float, default=0.5, help="w of the built-in example (no --ckpt)")
    b.add_argument("--delta", type=float, default=0.7)
    b.add_argument("--steps", type=int, default=401)
    c = sub.add_parser("expected-bounds", help="coverage Gamma and IBP/expected width ratio")
    c.add_argument("--n", type=int, nargs="+", default=[10, 50])
    c.add_argument("--k", type=int, nargs="+", default=[10, 50, 200])
    c.add_argument("--trials", type=int, default=10)
    c.add_argument("--samples", type=int, default=2000)
    for name in ("tightness", "cr-curve"):
        d = sub.add_parser(name, help=f"{name} of a checkpoint on a split")
        d.add_argument("--ckpt", required=True)
        d.add_argument("--config", default=None)
        d.add_argument("--split", choices=["test", "val"], default="test")
        d.add_argument("--limit", type=int, default=1000)
        if name == "cr-curve":
            d.add_argument("--eps_max", type=float, default=None)
            d.add_argument("--points", type=int, default=11)
    for s in sub.choices.values():
        s.add_argument("--out", type=Path, default=Path("analysis"))
        s.add_argument("--wandb", action="store_true", help="also log the table and plot to a W&B run (offline unless logged in)")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    handler = {"dln-init": dln_init, "landscape": landscape, "expected-bounds": expected_bounds_cmd}.get(args.name)
    rows = handler(args) if handler else checkpoint_metric(args, args.name)
    print(f"lit_cert analyze {args.name}: wrote {args.out / (args.name + '.csv')}")
    if args.wandb:
        log_to_wandb(args.name, args.out)
    return rows


def log_to_wandb(name: str, out: Path) -> None:
    """One W&B run per analysis: the CSV as a table, the PNG as an image."""
    import wandb

    from lit_cert.loggers import resolve_wandb_mode

    run = wandb.init(project="lit_cert", job_type="analysis", name=f"analyze-{name}", dir=str(out), mode=resolve_wandb_mode())
    with open(out / f"{name}.csv") as f:
        rows = list(csv.reader(f))
    run.log({f"{name}/table": wandb.Table(columns=rows[0], data=rows[1:])})
    if (out / f"{name}.png").is_file():
        run.log({f"{name}/plot": wandb.Image(str(out / f"{name}.png"))})
    run.finish()
