"""``python -m lit_cert analyze {dln-init,box-reconstruction,landscape,expected-bounds,tightness,cr-curve} ...``

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

    wide = len(series) > 6  # many curves: legend beside the axes instead of over the data
    fig, ax = plt.subplots(figsize=(8.0 if wide else 5.5, 3.8))
    for label, (xs, ys, style) in series.items():
        ax.plot(xs, ys, style, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if wide:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def dln_init(args) -> list[list]:
    from lit_cert.analysis.dln import tau_depth, tau_depth_approx, tau_monte_carlo, tau_relu_approx

    rows = []
    for depth in args.depths:
        for d in args.widths:
            rows.append([d, depth, tau_depth(d, depth), tau_depth_approx(d, depth), tau_relu_approx(d, depth),
                         tau_monte_carlo(d, depth, args.samples), tau_monte_carlo(d, depth, args.samples, relu=True)])
    header = ["width", "depth", "tau_closed_form", "tau_large_d", "tau_relu_approx", "tau_mc_linear", "tau_mc_relu"]
    save_csv(args.out / "dln-init.csv", header, rows)
    series = {}
    for depth in args.depths:
        sel = [r for r in rows if r[1] == depth]
        ws = [r[0] for r in sel]
        # one legend entry for all closed-form lines (labels starting with "_" are hidden)
        series["closed form tau(d)^(L-1)" if depth == args.depths[0] else f"_closed form, L={depth}"] = (ws, [r[2] for r in sel], "k-")
        series[f"MC linear, L={depth}"] = (ws, [r[5] for r in sel], "o")
        series[f"MC ReLU, L={depth}"] = (ws, [r[6] for r in sel], "x--")
        worst = max(abs(r[5] / r[2] - 1) for r in sel)
        print(f"lit_cert analyze dln-init: depth {depth}: MC vs closed form tau(d)^(L-1) within {100 * worst:.1f}%")
    save_plot(args.out / "dln-init.png", None, series, "width d", "tightness at initialisation", logx=True, logy=True,
              title="Gaussian init: tau(d)^(L-1) (Lemma 3.7 / Cor. 3.8) vs Monte Carlo")
    return rows


def box_reconstruction(args) -> list[list]:
    from lit_cert.analysis.box_reconstruction import growth_exponent, monte_carlo, trained_reconstruction

    keys = ["d", "k", "optimal_radius", "ibp_radius", "c", "c_closed_form", "optimal_radius_limit", "tightness"]
    rows = [[r[key] for key in keys] for r in (monte_carlo(d, k, args.trials) for d in args.d for k in args.k if k <= d)]
    save_csv(args.out / "box-reconstruction.csv", keys, rows)
    series = {}
    for d in args.d:
        sel = [r for r in rows if r[0] == d]
        ks = [r[1] for r in sel]
        series[f"layer-wise (IBP), d={d}"] = (ks, [r[3] for r in sel], "o-")
        series[f"optimal, d={d}"] = (ks, [r[2] for r in sel], "s-")
        e_opt, e_ibp = growth_exponent(ks, [r[2] for r in sel]), growth_exponent(ks, [r[3] for r in sel])
        print(f"lit_cert analyze box-reconstruction: d={d}: c = {sel[-1][4]:.4f} (closed form {sel[-1][5]:.4f}, "
              f"2/pi = {2 / np.pi:.4f}); radius ~ k^{e_ibp:.2f} layer-wise, ~ k^{e_opt:.2f} optimal")
    ks = sorted(set(r[1] for r in rows))
    series["c(d) k, d -> inf"] = (ks, [2 / np.pi * k for k in ks], "k:")
    series["sqrt(2k/pi)"] = (ks, [np.sqrt(2 * k / np.pi) for k in ks], "k--")
    save_plot(args.out / "box-reconstruction.png", None, series, "embedding dimension k", "output radius / eps",
              logx=True, logy=True, title="PCA reconstruction of a box: layer-wise ~ k, optimal ~ sqrt(k)")
    if args.train:
        tkeys = ["d", "k", "mode", "relu", "ibp_radius", "ibp_l1_error", "clean_l2_error", "tightness"]
        trows = []
        for k in args.train_k:
            for relu in (False, True):
                for mode in ("standard", "ibp"):
                    r = trained_reconstruction(args.train_d, k, args.train_eps, mode, relu, epochs=args.train_epochs)
                    trows.append([r[key] for key in tkeys])
        save_csv(args.out / "box-reconstruction-trained.csv", tkeys, trows)
        tseries = {}
        for relu in (False, True):
            for mode in ("standard", "ibp"):
                sel = [r for r in trows if r[2] == mode and r[3] == relu]
                tseries[f"{mode}, {'ReLU' if relu else 'linear'}"] = ([r[1] for r in sel], [r[7] for r in sel], "o-")
        save_plot(args.out / "box-reconstruction-trained.png", None, tseries, "bottleneck width k", "tightness",
                  title=f"trained d={args.train_d} bottleneck, eps={args.train_eps:g}")
    return rows


def landscape(args) -> list[list]:
    from lit_cert.analysis.landscape import RELAXATIONS, bound_along, refine_jumps

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
        bound = bound_along(net, lb, ub, args.output, relaxation, direction)
        values = np.array([bound(float(d)) for d in deltas])
        jumps = refine_jumps(bound, deltas, values)
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


def _label(ckpt: str, model) -> str:
    """A short name for a checkpoint in tables and legends: method class and run id."""
    run = Path(ckpt).resolve().parent.parent.name
    return f"{type(model).__name__} ({run})"


def checkpoint_metric(args, name: str) -> list[list]:
    """Tightness or CR curve of one or more checkpoints (one row / one curve each)."""
    from torch.utils.data import DataLoader

    from lit_cert.certify.data import load_run
    from lit_cert.metrics import CRCurve, NaturalAccuracy, PropagationTightness

    if args.config and len(args.ckpt) > 1:
        raise SystemExit("lit_cert analyze: --config applies to a single --ckpt")
    rows, series = [], {}
    grid = None
    for ckpt in args.ckpt:
        model, dm = load_run(ckpt, args.config)
        ds = dm.test_set if args.split == "test" else dm.val_set
        n = len(ds) if args.limit is None else min(args.limit, len(ds))
        loader = DataLoader(torch.utils.data.Subset(ds, range(n)), batch_size=100)
        net, label = model.net.eval(), _label(ckpt, model)
        if name == "tightness":
            tightness, nat = PropagationTightness(), NaturalAccuracy()
            with torch.no_grad():
                for x, y in loader:
                    tightness.update(net, x)
                    nat.update(net(x), y)
            rows.append([label, ckpt, n, tightness.compute().item(), nat.compute().item()])
            print(f"lit_cert analyze tightness: {label}: tightness {rows[-1][3]:.4f}, natural accuracy "
                  f"{rows[-1][4]:.4f} over {n} samples")
            continue
        if grid is None:  # one grid for all checkpoints, so the curves are comparable
            grid = np.linspace(0, args.eps_max if args.eps_max else 2 * model.eps_test, args.points)
        curve = CRCurve(grid.tolist())
        for x, y in loader:
            curve.update(net, x, y)
        values = curve.compute().tolist()
        rows += [[label, float(e), v] for e, v in zip(grid, values)]
        series[f"{label}: CR-AUC {curve.auc():.3f}"] = (grid, values, "o-")
        print(f"lit_cert analyze cr-curve: {label}: CR-AUC {curve.auc():.4f} (IBP, trapezoid, normalised)")
    if name == "tightness":
        save_csv(args.out / "tightness.csv", ["model", "checkpoint", "samples", "tightness", "natural_accuracy"], rows)
        return rows
    save_csv(args.out / "cr-curve.csv", ["model", "eps", "certified_accuracy"], rows)
    save_plot(args.out / "cr-curve.png", None, series, "eps", "IBP-certified accuracy")
    return rows


def main(argv: list[str]):
    p = argparse.ArgumentParser(prog="python -m lit_cert analyze", description=__doc__)
    sub = p.add_subparsers(dest="name", required=True)
    a = sub.add_parser("dln-init", help="tightness at initialisation vs width and depth")
    a.add_argument("--widths", type=int, nargs="+", default=[4, 16, 64, 256])
    a.add_argument("--depths", type=int, nargs="+", default=[2, 3, 4])
    a.add_argument("--samples", type=int, default=10)
    r = sub.add_parser("box-reconstruction", help="Theorem 3.10: reconstruction radius vs embedding dimension")
    r.add_argument("--d", type=int, nargs="+", default=[100, 400])
    r.add_argument("--k", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    r.add_argument("--trials", type=int, default=20)
    r.add_argument("--train", action="store_true", help="also train d-k-d bottlenecks (standard vs IBP)")
    r.add_argument("--train_d", type=int, default=50)
    r.add_argument("--train_k", type=int, nargs="+", default=[1, 2, 5, 10, 20])
    r.add_argument("--train_eps", type=float, default=0.01)
    r.add_argument("--train_epochs", type=int, default=200)
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
        d = sub.add_parser(name, help=f"{name} of one or more checkpoints on a split")
        d.add_argument("--ckpt", required=True, nargs="+")
        d.add_argument("--config", default=None)
        d.add_argument("--split", choices=["test", "val"], default="test")
        d.add_argument("--limit", type=int, default=1000)
        if name == "cr-curve":
            d.add_argument("--eps_max", type=float, default=None)
            d.add_argument("--points", type=int, default=11)
    for s in sub.choices.values():
        s.add_argument("--out", type=Path, default=Path("analysis"))
        s.add_argument("--wandb", action="store_true",
                       help="also log the table and plot to a W&B run (offline unless logged in); automatic inside an active run")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    handler = {"dln-init": dln_init, "box-reconstruction": box_reconstruction, "landscape": landscape, "expected-bounds": expected_bounds_cmd}.get(args.name)
    rows = handler(args) if handler else checkpoint_metric(args, args.name)
    print(f"lit_cert analyze {args.name}: wrote {args.out / (args.name + '.csv')}")
    if args.wandb or active_wandb_run() is not None:
        log_to_wandb(args.name, args.out)
    return rows


def active_wandb_run():
    """The W&B run already active in this process (e.g. a sweep agent or a notebook calling
    ``main``), else None; never imports wandb just to find out."""
    import sys

    wandb = sys.modules.get("wandb")
    return getattr(wandb, "run", None) if wandb is not None else None


def log_to_wandb(name: str, out: Path) -> None:
    """Log the CSV(s) as tables and the PNG(s) as images: into the active W&B run if there is
    one, else into a new run of its own (offline unless logged in)."""
    import wandb

    from lit_cert.loggers import resolve_wandb_mode

    run = active_wandb_run()
    own = run is None
    if own:
        run = wandb.init(project="lit_cert", job_type="analysis", name=f"analyze-{name}", dir=str(out), mode=resolve_wandb_mode())
    for path in sorted(out.glob(f"{name}*.csv")):  # e.g. box-reconstruction.csv and ...-trained.csv
        with open(path) as f:
            rows = list(csv.reader(f))
        run.log({f"{path.stem}/table": wandb.Table(columns=rows[0], data=rows[1:])})
        if path.with_suffix(".png").is_file():
            run.log({f"{path.stem}/plot": wandb.Image(str(path.with_suffix(".png")))})
    if own:
        run.finish()
