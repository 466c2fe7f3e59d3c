"""``python -m lit_cert analyze {dln-init,box-reconstruction,landscape,expected-bounds,tightness,cr-curve,pgd-robustness} ...``

Each analysis writes ``<name>.csv`` and ``<name>.png`` into ``--out`` (default ``analysis/``).
Rows are dicts keyed by the CSV's column names; plots read columns by name."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from lit_cert.commands import CommandParser, add_device_argument, eps_value, positive_float, positive_int, resolve_device
from lit_cert.errors import ConfigError
from lit_cert.rundir import ensure_writable_dir


def save_csv(path: Path, rows: list[dict], header: list[str] | None = None) -> None:
    header = header or (list(rows[0]) if rows else [])
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        w.writerows(rows)


def save_plot(path: Path, series: dict, xlabel: str, ylabel: str, logx: bool = False, logy: bool = False, title: str = "") -> None:
    """``series``: label -> (xs, ys, matplotlib style)."""
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


def column(rows: list[dict], key: str, **where) -> list:
    """The values of ``key`` in the rows matching every ``where`` item."""
    return [r[key] for r in rows if all(r[k] == v for k, v in where.items())]


def dln_init(args) -> list[dict]:
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


def box_reconstruction(args) -> list[dict]:
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


def landscape(args) -> list[dict]:
    from lit_cert.analysis.landscape import RELAXATIONS, bound_along, refine_jumps

    if args.ckpt:
        from lit_cert.bounds.region import linf_box
        from lit_cert.certify.data import load_run, split_dataset

        model, dm = load_run(args.ckpt, args.config)
        device = resolve_device(args.device)
        net = model.net.eval().to(device)
        dataset = split_dataset(dm, args.split)
        if not 0 <= args.index < len(dataset):
            raise ConfigError(f"--index {args.index} is outside the {args.split} split ({len(dataset)} samples)")
        x = dataset[args.index][0].unsqueeze(0).to(device)
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
        rows += [{"relaxation": relaxation, "delta": float(d), "lower_bound": float(v)} for d, v in zip(deltas, values)]
        series[relaxation] = (deltas, values, "-")
    save_csv(args.out / "landscape.csv", rows)
    xlabel = "delta along each bound's gradient" if args.ckpt else f"delta added to w (w = {args.w:g} at 0)"
    save_plot(args.out / "landscape.png", series, xlabel, f"lower bound of output {args.output}")
    return rows


def expected_bounds_cmd(args) -> list[dict]:
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
    return rows


def _label(ckpt: str, model) -> str:
    """A short name for a checkpoint in tables and legends: method class and run id."""
    run = Path(ckpt).resolve().parent.parent.name
    return f"{type(model).__name__} ({run})"


def checkpoint_metric(args, name: str) -> list[dict]:
    """Tightness or CR curves of one or more checkpoints (one row / one curve per checkpoint and
    certifier)."""
    from torch.utils.data import DataLoader

    from lit_cert.certify.data import load_run, split_dataset
    from lit_cert.metrics import CRCurve, NaturalAccuracy, PropagationTightness

    if args.config and len(args.ckpt) > 1:
        raise ConfigError("analyze: --config applies to a single --ckpt")
    device = resolve_device(args.device)
    rows, series = [], {}
    grid = None
    for ckpt in args.ckpt:
        model, dm = load_run(ckpt, args.config)
        ds = split_dataset(dm, args.split)
        n = min(args.limit, len(ds))
        loader = DataLoader(torch.utils.data.Subset(ds, range(n)), batch_size=100)
        net, label = model.net.eval().to(device), _label(ckpt, model)
        if name == "tightness":
            eps = model.eps_test if args.eps is None else args.eps
            tightness, nat = PropagationTightness(eps, args.mode).to(device), NaturalAccuracy().to(device)
            with torch.no_grad():
                for x, y in loader:
                    x, y = x.to(device), y.to(device)
                    tightness.update(net, x, y)
                    nat.update(net(x), y)
            rows.append({"model": label, "checkpoint": ckpt, "split": args.split, "samples": n, "mode": args.mode, "eps": eps,
                         "tightness": tightness.compute().item(), "natural_accuracy": nat.compute().item()})
            print(f"lit_cert analyze tightness: {label}: tightness ({args.mode}, eps {eps:g}) {rows[-1]['tightness']:.4f}, "
                  f"natural accuracy {rows[-1]['natural_accuracy']:.4f} over {n} {args.split} samples")
            continue
        if grid is None:  # one grid for all checkpoints, so the curves are comparable
            grid = np.linspace(0, args.eps_max if args.eps_max else 2 * model.eps_test, args.points)
        for certifier in args.certifier:
            curve = CRCurve(grid.tolist(), certifier).to(device)
            for x, y in loader:
                curve.update(net, x.to(device), y.to(device))
            values = curve.compute().tolist()
            rows += [{"model": label, "certifier": certifier, "eps": float(e), "certified_accuracy": v} for e, v in zip(grid, values)]
            series[f"{label}, {certifier}: CR-AUC {curve.auc():.3f}"] = (grid, values, "o-")
            print(f"lit_cert analyze cr-curve: {label}: {certifier} CR-AUC {curve.auc():.4f} (trapezoid, normalised)")
    if name == "tightness":
        save_csv(args.out / "tightness.csv", rows)
        return rows
    save_csv(args.out / "cr-curve.csv", rows)
    save_plot(args.out / "cr-curve.png", series, "eps", "certified accuracy")
    return rows


def pgd_robustness(args) -> list[dict]:
    """Seed 001's yardstick: test accuracy against PGD robustness (the prediction does not change
    under attack, whatever the label) averaged over several test eps, one point per checkpoint."""
    from torch.utils.data import DataLoader

    from lit_cert.certify.data import load_run, split_dataset
    from lit_cert.metrics import NaturalAccuracy, PGDRobustness

    if args.config and len(args.ckpt) > 1:
        raise ConfigError("analyze: --config applies to a single --ckpt")
    device = resolve_device(args.device)
    rows, points = [], {}
    for ckpt in args.ckpt:
        model, dm = load_run(ckpt, args.config)
        ds = split_dataset(dm, args.split)
        n = min(args.limit, len(ds))
        loader = DataLoader(torch.utils.data.Subset(ds, range(n)), batch_size=100)
        net, label = model.net.eval().to(device), _label(ckpt, model)
        nat = NaturalAccuracy().to(device)
        robust = {e: PGDRobustness(e, steps=args.steps, restarts=args.restarts).to(device) for e in args.eps}
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            with torch.no_grad():
                nat.update(net(x), y)
            for metric in robust.values():
                metric.update(net, x)
        row = {"model": label, "checkpoint": ckpt, "split": args.split, "samples": n, "accuracy": nat.compute().item()}
        row |= {f"pgd_robustness@{e:g}": m.compute().item() for e, m in robust.items()}
        row["pgd_robustness_mean"] = sum(row[f"pgd_robustness@{e:g}"] for e in args.eps) / len(args.eps)
        rows.append(row)
        points[label] = ([row["accuracy"]], [row["pgd_robustness_mean"]], "o")
        print(f"lit_cert analyze pgd-robustness: {label}: accuracy {row['accuracy']:.4f}, PGD robustness "
              + ", ".join(f"{row[f'pgd_robustness@{e:g}']:.4f} @ {e:g}" for e in args.eps)
              + f" (mean {row['pgd_robustness_mean']:.4f}) over {n} {args.split} samples")
    save_csv(args.out / "pgd-robustness.csv", rows)
    save_plot(args.out / "pgd-robustness.png", points, f"{args.split} accuracy",
              f"PGD robustness, mean over eps {', '.join(f'{e:g}' for e in args.eps)}",
              title="accuracy vs PGD robustness (expected-bounds paper, Fig. 5)")
    return rows


def build_parser() -> CommandParser:
    from lit_cert.bounds.registry import BOUND_METHODS
    from lit_cert.certify.data import SPLITS

    p = CommandParser(prog="python -m lit_cert analyze", description=__doc__)
    sub = p.add_subparsers(dest="name", required=True)
    a = sub.add_parser("dln-init", help="tightness at initialisation vs width and depth")
    a.add_argument("--widths", type=positive_int, nargs="+", default=[4, 16, 64, 256])
    a.add_argument("--depths", type=positive_int, nargs="+", default=[2, 3, 4])
    a.add_argument("--samples", type=positive_int, default=10)
    r = sub.add_parser("box-reconstruction", help="Theorem 3.10: reconstruction radius vs embedding dimension")
    r.add_argument("--d", type=positive_int, nargs="+", default=[100, 400])
    r.add_argument("--k", type=positive_int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    r.add_argument("--trials", type=positive_int, default=20)
    r.add_argument("--train", action="store_true", help="also train d-k-d bottlenecks (standard vs IBP)")
    r.add_argument("--train_d", type=positive_int, default=50)
    r.add_argument("--train_k", type=positive_int, nargs="+", default=[1, 2, 5, 10, 20])
    r.add_argument("--train_eps", type=eps_value, default=0.01)
    r.add_argument("--train_epochs", type=positive_int, default=200)
    b = sub.add_parser("landscape", help="bounds along a parameter direction, per relaxation")
    b.add_argument("--ckpt", default=None)
    b.add_argument("--config", default=None)
    b.add_argument("--split", choices=SPLITS, default="test")
    b.add_argument("--index", type=int, default=0)
    b.add_argument("--eps", type=eps_value, default=None)
    b.add_argument("--output", type=int, default=0)
    b.add_argument("--w", type=float, default=0.5, help="w of the built-in example (no --ckpt)")
    b.add_argument("--delta", type=positive_float, default=0.7)
    b.add_argument("--steps", type=positive_int, default=401)
    add_device_argument(b)
    c = sub.add_parser("expected-bounds", help="coverage Gamma and IBP/expected width ratio (seed 001 Fig. 1a, 2)")
    c.add_argument("--n", type=positive_int, nargs="+", default=[2, 5, 10, 15, 20], help="input sizes (the paper's Fig. 1a range)")
    c.add_argument("--k", type=positive_int, nargs="+", default=[10, 100, 1000], help="hidden units")
    c.add_argument("--eps", type=positive_float, default=0.1, help="box radius (the paper: 0.1)")
    c.add_argument("--trials", type=positive_int, default=1000, help="random blocks per (n, k) (the paper: 1000)")
    c.add_argument("--samples", type=positive_int, default=1000000, help="uniform samples per block besides the 2^n corners (the paper: 1e6)")
    for name in ("tightness", "cr-curve"):
        d = sub.add_parser(name, help=f"{name} of one or more checkpoints on a split")
        d.add_argument("--ckpt", required=True, nargs="+")
        d.add_argument("--config", default=None)
        d.add_argument("--split", choices=SPLITS, default="test", help="test, val or train (e.g. Mao et al.'s Fig. 4)")
        d.add_argument("--limit", type=positive_int, default=1000)
        add_device_argument(d)
        if name == "tightness":
            d.add_argument("--mode", choices=["margins", "logits"], default="margins",
                           help="margins (the authors' measurement, default) or logits (all-ones radius)")
            d.add_argument("--eps", type=eps_value, default=None, help="box radius for margins mode (default: the model's eps_test)")
        if name == "cr-curve":
            d.add_argument("--eps_max", type=eps_value, default=None)
            d.add_argument("--points", type=positive_int, default=11)
            d.add_argument("--certifier", nargs="+", default=["ibp"], choices=list(BOUND_METHODS),
                           help="one curve per sound bound method (default ibp)")
    g = sub.add_parser("pgd-robustness", help="accuracy vs PGD robustness averaged over test eps (seed 001's Fig. 5)")
    g.add_argument("--ckpt", required=True, nargs="+")
    g.add_argument("--config", default=None)
    g.add_argument("--split", choices=SPLITS, default="test")
    g.add_argument("--limit", type=positive_int, default=1000)
    g.add_argument("--eps", type=eps_value, nargs="+", default=[0.1, 0.2, 0.3, 0.4], help="test radii (default: the paper's MNIST set)")
    g.add_argument("--steps", type=positive_int, default=50)
    g.add_argument("--restarts", type=positive_int, default=1)
    add_device_argument(g)
    for s in sub.choices.values():
        s.add_argument("--out", type=Path, default=Path("analysis"))
        s.add_argument("--wandb", action="store_true",
                       help="also log the table and plot to a W&B run (offline unless logged in); automatic inside an active run")
    return p


def main(argv: list[str]):
    args = build_parser().parse_args(argv)
    ensure_writable_dir(args.out, "analysis output folder")
    handler = {"dln-init": dln_init, "box-reconstruction": box_reconstruction, "landscape": landscape,
               "expected-bounds": expected_bounds_cmd, "pgd-robustness": pgd_robustness}.get(args.name)
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
            table = list(csv.reader(f))
        run.log({f"{path.stem}/table": wandb.Table(columns=table[0], data=table[1:])})
        if path.with_suffix(".png").is_file():
            run.log({f"{path.stem}/plot": wandb.Image(str(path.with_suffix(".png")))})
    if own:
        run.finish()
