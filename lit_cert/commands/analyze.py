"""``python -m lit_cert analyze {dln-init,box-reconstruction,ibp-alignment,landscape,sgd-dynamics,sensitivity,expected-bounds,expected-exact,tightness,cr-curve,pgd-robustness} ...``

Each analysis writes ``<name>.csv`` and ``<name>.png`` into ``--out`` (default ``analysis/``).
Rows are dicts keyed by the CSV's column names; plots read columns by name. Configured like
``fit``: each analysis is a dataclass (:data:`ANALYSES`) parsed by jsonargparse, so
``--config FILE.yaml`` and ``--print_config`` work; list values are given as ``--ckpt A B`` or
``--ckpt [A,B]``; a run's ``config.yaml`` is ``--run_config``. The computations live in
:mod:`lit_cert.analysis` and :mod:`lit_cert.evaluation`."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal, Optional

import numpy as np

from lit_cert.commands.args import resolve_device
from lit_cert.errors import ConfigError, check
from lit_cert.reports import column, save_csv, save_plot
from lit_cert.rundir import ensure_writable_dir


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


def ibp_alignment(args) -> list[dict]:
    from lit_cert.analysis.ibp_alignment import run

    rows, training = run(args.widths, args.eps, args.trials, args.samples, args.steps, args.lr, every=args.every, seed=args.seed)
    save_csv(args.out / "ibp-alignment.csv", rows)
    save_csv(args.out / "ibp-alignment-training.csv", training)
    aligned = sum(r["inner"] <= 0 for r in rows)
    tighter = sum(r["tau_ibp_trained"] > r["tau_standard_trained"] for r in rows)
    premise = float(np.mean([r["premise_fraction"] for r in rows]))
    cv = float(np.mean([r["homogeneity_cv"] for r in rows]))
    print(f"lit_cert analyze ibp-alignment: <grad(R(eps)-R(0)), grad tau> <= 0 in {aligned} of {len(rows)} (trial, eps) pairs "
          f"(cosine {min(r['cosine'] for r in rows):.2f} to {max(r['cosine'] for r in rows):.2f}); the theorem's premise held for "
          f"{100 * premise:.1f}% of the entries (tightness spread over entries: CV {cv:.2f}); after {args.steps} steps "
          f"IBP-trained tighter than standard-trained in {tighter} of {len(rows)}")
    steps = sorted({r["step"] for r in training})

    def mean_tau(key: str, eps: float) -> list[float]:
        return [float(np.mean([r[key] for r in training if r["step"] == s and r["eps"] == eps])) for s in steps]

    series = {"standard (eps 0)": (steps, mean_tau("tau_standard", args.eps[0]), "k--")}
    for eps in args.eps:
        series[f"IBP, eps {eps:g}"] = (steps, mean_tau("tau_ibp", eps), "o-")
    save_plot(args.out / "ibp-alignment.png", series, "gradient step", "tightness tau (mean of trials)",
              title=f"Thm 3.9, DLN {'-'.join(map(str, args.widths))}: IBP vs standard training ({args.trials} trials)")
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
        from lit_cert.runs import load_run, split_dataset

        model, dm = load_run(args.ckpt, args.run_config)
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
    import torch

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


def sgd_dynamics(args) -> list[dict]:
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
        n = max(len(cases), 1)
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


def sensitivity(args) -> list[dict]:
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
    if args.depths:
        rows += expected_bounds_depth(args)
    return rows


def expected_bounds_depth(args) -> list[dict]:
    """Seed 001 beyond one block: Gamma vs depth with every layer as wide as the input (Fig. 1b),
    and the IBP/expected width ratio vs depth at n = k = ``depth_width`` (Fig. 3a/b)."""
    from lit_cert.analysis.expected_validity import gamma_and_ratio

    keys = ["n", "k", "layers", "eps", "trials", "samples", "gamma", "gamma_min", "ibp_over_expected_width"]
    rows = [{key: r[key] for key in keys} for n in args.depth_n for layers in args.depths
            for r in [gamma_and_ratio(n, n, trials=args.depth_trials, samples=args.depth_samples, radius=args.eps, layers=layers)]]
    rows += [{key: r[key] for key in keys} for eps in args.depth_eps for layers in args.depths
             for r in [gamma_and_ratio(args.depth_width, args.depth_width, trials=args.depth_trials, radius=eps, layers=layers,
                                       coverage=False)]]
    save_csv(args.out / "expected-bounds-depth.csv", rows, keys)
    series = {}
    for n in args.depth_n:
        sel = [r for r in rows if r["n"] == n and r["gamma"] is not None]
        series[f"Gamma, n = k = {n}"] = ([r["layers"] for r in sel], [r["gamma"] for r in sel], "o-")
        print(f"lit_cert analyze expected-bounds: n = k = {n}, eps {args.eps:g}: Gamma by depth " +
              ", ".join(f"{r['gamma']:.3f} ({r['layers']})" for r in sel))
    for eps in args.depth_eps:
        sel = [r for r in rows if r["n"] == args.depth_width and r["eps"] == eps and r["gamma"] is None]
        series[f"IBP/expected width, n = k = {args.depth_width}, eps {eps:g}"] = ([r["layers"] for r in sel], [r["ibp_over_expected_width"] for r in sel], "x--")
        print(f"lit_cert analyze expected-bounds: n = k = {args.depth_width}, eps {eps:g}: IBP/expected width by depth " +
              ", ".join(f"{r['ibp_over_expected_width']:.3g} ({r['layers']})" for r in sel))
    save_plot(args.out / "expected-bounds-depth.png", series, "affine layers", "value", logy=True,
              title="seed 001 Fig. 1b / 3a-b: Gamma and IBP/expected width vs depth")
    return rows


def expected_exact(args) -> list[dict]:
    """Seed 001 Table 1: Gamma of the expected bounds against the exact (MILP) logit ranges of a
    trained network, and their width against IBP's, per eps, over the first ``limit`` samples."""
    from lit_cert.analysis.expected_validity import exact_coverage
    from lit_cert.runs import load_run, split_dataset

    model, dm = load_run(args.ckpt[0], args.run_config)
    dataset = split_dataset(dm, args.split)
    n = min(args.limit, len(dataset))
    rows = []
    for eps in args.eps:
        runs = [exact_coverage(model.net, dataset[i][0].unsqueeze(0), eps, args.milp_timeout) for i in range(n)]
        gamma = np.concatenate([r["gamma"] for r in runs])
        exp_w, exact = (np.concatenate([r[key] for r in runs]) for key in ("expected_width", "exact_width"))
        ibp_all, exp_all = (np.concatenate([r[key] for r in runs]) for key in ("ibp_width_all", "expected_width_all"))
        ibp = np.concatenate([r["ibp_width"] for r in runs])
        stat = (lambda f, v: float(f(v)) if len(v) else None)  # noqa: E731
        row = {"eps": eps, "samples": n, "logits": int(sum(r["logits"] for r in runs)), "logits_exact": len(gamma),
               "gamma_mean": stat(np.mean, gamma), "gamma_std": stat(np.std, gamma), "gamma_min": stat(np.min, gamma),
               "gamma_max": stat(np.max, gamma),
               "ibp_minus_expected_width": float(np.abs(ibp_all - exp_all).mean()),
               "ibp_over_expected_width": float((ibp_all / np.maximum(exp_all, 1e-12)).mean()),
               "expected_over_exact_width": stat(np.mean, exp_w / np.maximum(exact, 1e-12)),
               "ibp_over_exact_width": stat(np.mean, ibp / np.maximum(exact, 1e-12))}
        rows.append(row)
        exact_part = ("no logit's MILP reached optimality" if not len(gamma) else
                      f"Gamma {row['gamma_mean']:.3f} +- {row['gamma_std']:.3f} (min {row['gamma_min']:.3f}, max {row['gamma_max']:.3f}), "
                      f"W_M / W_exact {row['expected_over_exact_width']:.3g}")
        print(f"lit_cert analyze expected-exact: eps {eps:g}: {exact_part} on the {row['logits_exact']} of {row['logits']} logits "
              f"solved exactly; |W_IBP - W_M| {row['ibp_minus_expected_width']:.3g}, W_IBP / W_M {row['ibp_over_expected_width']:.3g} (all logits)")
    save_csv(args.out / "expected-exact.csv", rows)
    ok = [r for r in rows if r["gamma_mean"] is not None]
    series = {"Gamma (mean)": ([r["eps"] for r in ok], [r["gamma_mean"] for r in ok], "o-"),
              "Gamma (min)": ([r["eps"] for r in ok], [r["gamma_min"] for r in ok], "x--"),
              "W_M / W_exact": ([r["eps"] for r in ok], [r["expected_over_exact_width"] for r in ok], "s:")}
    save_plot(args.out / "expected-exact.png", series, "eps", "value", title="seed 001 Table 1: expected bounds vs exact (MILP) logit ranges")
    return rows


def _label(ckpt: str, model) -> str:
    """A short name for a checkpoint in tables and legends: method class and run id."""
    run = Path(ckpt).resolve().parent.parent.name
    return f"{model.method_name} ({run})"


def checkpoint_metric(args, name: str) -> list[dict]:
    """Tightness or CR curves of one or more checkpoints (one row / one curve per checkpoint and
    certifier), through the one evaluation loop (:func:`lit_cert.evaluation.evaluate`)."""
    from lit_cert.evaluation import evaluate
    from lit_cert.metrics import CRCurve, NaturalAccuracy, PropagationTightness
    from lit_cert.runs import load_run, split_dataset

    device = resolve_device(args.device)
    rows, series = [], {}
    grid = None
    for ckpt in args.ckpt:
        model, dm = load_run(ckpt, args.run_config)
        ds = split_dataset(dm, args.split)
        n = min(args.limit, len(ds))
        label = _label(ckpt, model)
        if name == "tightness":
            eps = model.eps_test if args.eps is None else args.eps
            out = evaluate(model.net, ds, {"tightness": PropagationTightness(eps, args.mode), "nat": NaturalAccuracy()}, n, device=device)
            rows.append({"model": label, "checkpoint": ckpt, "split": args.split, "samples": n, "mode": args.mode, "eps": eps,
                         "tightness": out["tightness"].item(), "natural_accuracy": out["nat"].item()})
            print(f"lit_cert analyze tightness: {label}: tightness ({args.mode}, eps {eps:g}) {rows[-1]['tightness']:.4f}, "
                  f"natural accuracy {rows[-1]['natural_accuracy']:.4f} over {n} {args.split} samples")
            continue
        if grid is None:  # one grid for all checkpoints, so the curves are comparable
            grid = np.linspace(0, args.eps_max if args.eps_max else 2 * model.eps_test, args.points)
        curves = {certifier: CRCurve(grid.tolist(), certifier) for certifier in args.certifier}
        evaluate(model.net, ds, curves, n, device=device)
        for certifier, curve in curves.items():
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
    from lit_cert.evaluation import evaluate
    from lit_cert.metrics import NaturalAccuracy, PGDRobustness
    from lit_cert.runs import load_run, split_dataset

    device = resolve_device(args.device)
    rows, points = [], {}
    for ckpt in args.ckpt:
        model, dm = load_run(ckpt, args.run_config)
        ds = split_dataset(dm, args.split)
        n = min(args.limit, len(ds))
        label = _label(ckpt, model)
        metrics = {"accuracy": NaturalAccuracy(), **{e: PGDRobustness(e, steps=args.steps, restarts=args.restarts) for e in args.eps}}
        out = evaluate(model.net, ds, metrics, n, device=device)
        row = {"model": label, "checkpoint": ckpt, "split": args.split, "samples": n, "accuracy": out["accuracy"].item()}
        row |= {f"pgd_robustness@{e:g}": out[e].item() for e in args.eps}
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


# --------------------------------------------------------------------------- configuration
def _check_ints(cmd, *names: str) -> None:
    for name in names:
        values = getattr(cmd, name)
        for v in values if isinstance(values, (list, tuple)) else [values]:
            check(isinstance(v, int) and v >= 1, f"--{name}: must be an integer >= 1, got {v}")


def _check_positive(cmd, *names: str) -> None:
    for name in names:
        v = getattr(cmd, name)
        check(math.isfinite(v) and v > 0, f"--{name}: must be a finite number > 0, got {v}")


def _check_eps(cmd, *names: str) -> None:
    for name in names:
        values = getattr(cmd, name)
        for v in values if isinstance(values, (list, tuple)) else [values]:
            check(v is None or (math.isfinite(v) and 0 <= v <= 1), f"--{name}: must be a finite radius in [0, 1] (pixel units), got {v}")


@dataclass
class Output:
    """Where an analysis writes (``<name>.csv`` and ``.png``), and whether it also logs to W&B
    (offline unless logged in; automatic inside an active run)."""

    out: str = "analysis"
    wandb: bool = False


@dataclass
class DlnInit(Output):
    """Tightness at initialisation vs width and depth (seed 000, Lemma 3.7 / Cor. 3.8)."""

    widths: list[int] = field(default_factory=lambda: [4, 16, 64, 256])
    depths: list[int] = field(default_factory=lambda: [2, 3, 4])
    samples: int = 10

    def __post_init__(self):
        _check_ints(self, "widths", "depths", "samples")


@dataclass
class IbpAlignment(Output):
    """Theorem 3.9 (seed 000): the IBP-minus-standard gradient against the tightness gradient on
    Gaussian DLNs, the theorem's premises, and IBP vs standard training from the same weights."""

    widths: list[int] = field(default_factory=lambda: [16, 16, 10])  # input, hidden..., output
    eps: list[float] = field(default_factory=lambda: [0.05, 0.1, 0.3])
    trials: int = 3
    samples: int = 256
    steps: int = 300
    lr: float = 0.1
    every: int = 25
    seed: int = 0

    def __post_init__(self):
        _check_ints(self, "widths", "trials", "samples", "steps", "every")
        check(len(self.widths) >= 3, f"--widths: input, at least one hidden and the output width, got {self.widths}")
        _check_eps(self, "eps")
        _check_positive(self, "lr")
        check(self.seed >= 0, f"--seed: must be >= 0, got {self.seed}")


@dataclass
class BoxReconstruction(Output):
    """Theorem 3.10: reconstruction radius vs embedding dimension; ``train`` adds trained
    d-k-d bottlenecks (standard vs IBP)."""

    d: list[int] = field(default_factory=lambda: [100, 400])
    k: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16, 32, 64])
    trials: int = 20
    train: bool = False
    train_d: int = 50
    train_k: list[int] = field(default_factory=lambda: [1, 2, 5, 10, 20])
    train_eps: float = 0.01
    train_epochs: int = 200

    def __post_init__(self):
        _check_ints(self, "d", "k", "trials", "train_d", "train_k", "train_epochs")
        _check_eps(self, "train_eps")


@dataclass
class Checkpoints(Output):
    """One or more trained runs and the samples to evaluate them on."""

    ckpt: list[str] = field(default_factory=list)
    run_config: Optional[str] = None  # the run's config.yaml (single --ckpt only; default: next to checkpoints/)
    split: Literal["test", "val", "train"] = "test"
    limit: int = 1000
    device: str = "auto"

    def __post_init__(self):
        check(bool(self.ckpt), "--ckpt: give one or more checkpoints")
        check(not (self.run_config and len(self.ckpt) > 1), "analyze: --run_config applies to a single --ckpt")
        _check_ints(self, "limit")


@dataclass
class Landscape(Output):
    """Bounds along a parameter direction, per relaxation: the paradox paper's Sec. 4.1 example,
    or (``ckpt``) a trained net along each bound's gradient at one sample."""

    ckpt: Optional[str] = None
    run_config: Optional[str] = None
    split: Literal["test", "val", "train"] = "test"
    index: int = 0
    eps: Optional[float] = None
    output: int = 0
    w: float = 0.5  # w of the built-in example (no ckpt)
    delta: float = 0.7
    steps: int = 401
    device: str = "auto"

    def __post_init__(self):
        _check_ints(self, "steps")
        _check_positive(self, "delta")
        _check_eps(self, "eps")


@dataclass
class SgdDynamics(Output):
    """Gradient ascent on a bound along one line (seed 002 Sec. 4.4, App. F, Figs. 5/6): how often
    a discontinuous (CROWN) or sensitive (DeepZ) relaxation's ascent ends below Box's although
    its landscape reaches higher, over random integer networks."""

    relaxations: list[str] = field(default_factory=lambda: ["crown", "deepz"])
    networks: int = 200
    seed: int = 0
    span: float = 3.0  # the landscape grid: delta in [-span, span]
    points: int = 301

    def __post_init__(self):
        _check_ints(self, "networks", "points")
        bad = [r for r in self.relaxations if r not in ("crown", "deepz")]
        check(not bad, f"--relaxations: crown and/or deepz (the paper's two studied relaxations), got {bad}")
        check(self.seed >= 0, f"--seed: must be >= 0, got {self.seed}")
        _check_positive(self, "span")


@dataclass
class Sensitivity(Output):
    """Sensitivity of relaxations (seed 002 Sec. 4.2), measured exactly: the degree of the output
    bounds as rational functions of the first layer's shift, per width and depth, against the
    paper's worst-case count (:mod:`lit_cert.analysis.sensitivity`)."""

    widths: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5])  # M: input and every hidden layer
    hidden: list[int] = field(default_factory=lambda: [1, 2, 3])  # hidden ReLU layers (B + 1)
    networks: int = 5  # worst-case networks (every ReLU unstable) per (width, depth)
    relaxations: list[str] = field(default_factory=lambda: ["ibp", "hbox", "deepz", "crown", "crown-ibp"])
    seed: int = 0
    #: skip (width, depth) pairs whose paper count for DeepZ/CROWN exceeds this: exact arithmetic
    #: grows with the degrees (M = 4 with three hidden layers: ~10 min per network)
    max_count: int = 500

    def __post_init__(self):
        from lit_cert.analysis.sensitivity import RELAXATIONS

        _check_ints(self, "widths", "hidden", "networks", "max_count")
        bad = [r for r in self.relaxations if r not in RELAXATIONS]
        check(self.relaxations and not bad, f"--relaxations: choose from {', '.join(RELAXATIONS)}, got {bad or 'none'}")
        check(self.seed >= 0, f"--seed: must be >= 0, got {self.seed}")


@dataclass
class ExpectedBounds(Output):
    """Coverage Gamma and IBP/expected width ratio (seed 001 Fig. 1a, 2)."""

    n: list[int] = field(default_factory=lambda: [2, 5, 10, 15, 20])  # input sizes (the paper's Fig. 1a range)
    k: list[int] = field(default_factory=lambda: [10, 100, 1000])  # hidden units
    eps: float = 0.1  # box radius (the paper: 0.1)
    trials: int = 1000  # random blocks per (n, k) (the paper: 1000)
    samples: int = 1000000  # uniform samples per block besides the 2^n corners (the paper: 1e6)
    #: beyond one block (Fig. 1b, Fig. 3a/b): affine layers of the deeper networks (empty: not run)
    depths: list[int] = field(default_factory=list)
    depth_n: list[int] = field(default_factory=lambda: [10, 20])  # Fig. 1b: input size = every hidden width
    depth_width: int = 500  # Fig. 3a/b: n = k = 500
    depth_eps: list[float] = field(default_factory=lambda: [0.01, 0.1, 0.5])
    depth_trials: int = 100
    depth_samples: int = 100000

    def __post_init__(self):
        _check_ints(self, "n", "k", "trials", "samples", "depth_n", "depth_width", "depth_trials", "depth_samples")
        if self.depths:
            _check_ints(self, "depths")
            check(min(self.depths) >= 2, f"--depths: affine layers, at least 2 (one block), got {self.depths}")
        _check_positive(self, "eps")
        _check_eps(self, "depth_eps")


@dataclass
class ExpectedExact(Checkpoints):
    """Gamma of the expected bounds against the exact MILP logit ranges of a trained network
    (seed 001 Table 1), per eps."""

    eps: list[float] = field(default_factory=lambda: [0.01, 0.02, 0.03])  # the paper's Table 1 radii
    limit: int = 20
    milp_timeout: float = 60.0  # MILP seconds per sample (all 2K logit extremes)

    def __post_init__(self):
        super().__post_init__()
        check(len(self.ckpt) == 1, "analyze expected-exact: one --ckpt")
        _check_eps(self, "eps")
        _check_positive(self, "milp_timeout")


@dataclass
class Tightness(Checkpoints):
    """Mean local propagation tightness (Mao et al.) of each checkpoint on a split."""

    mode: Literal["margins", "logits"] = "margins"  # margins: the authors' measurement; logits: all-ones radius
    eps: Optional[float] = None  # box radius for margins mode (default: the model's eps_test)

    def __post_init__(self):
        super().__post_init__()
        _check_eps(self, "eps")


@dataclass
class CRCurveAnalysis(Checkpoints):
    """Certified accuracy over one eps grid and its CR-AUC, a curve per checkpoint and
    certifier (seed 002 Tables 1/4)."""

    eps_max: Optional[float] = None  # default: twice the first model's eps_test
    points: int = 11
    certifier: list[str] = field(default_factory=lambda: ["ibp"])  # names of the bound registry

    def __post_init__(self):
        super().__post_init__()
        _check_ints(self, "points")
        _check_eps(self, "eps_max")
        from lit_cert.bounds.registry import bound_method

        for name in self.certifier:
            bound_method(name)


@dataclass
class PGDRobustnessAnalysis(Checkpoints):
    """Accuracy vs PGD robustness averaged over test eps (seed 001's Fig. 5)."""

    eps: list[float] = field(default_factory=lambda: [0.1, 0.2, 0.3, 0.4])  # the paper's MNIST set
    steps: int = 50
    restarts: int = 1

    def __post_init__(self):
        super().__post_init__()
        _check_ints(self, "steps", "restarts")
        _check_eps(self, "eps")


#: name -> (settings, what runs it)
ANALYSES = {
    "dln-init": (DlnInit, dln_init),
    "box-reconstruction": (BoxReconstruction, box_reconstruction),
    "ibp-alignment": (IbpAlignment, ibp_alignment),
    "landscape": (Landscape, landscape),
    "sgd-dynamics": (SgdDynamics, sgd_dynamics),
    "sensitivity": (Sensitivity, sensitivity),
    "expected-bounds": (ExpectedBounds, expected_bounds_cmd),
    "expected-exact": (ExpectedExact, expected_exact),
    "tightness": (Tightness, lambda args: checkpoint_metric(args, "tightness")),
    "cr-curve": (CRCurveAnalysis, lambda args: checkpoint_metric(args, "cr-curve")),
    "pgd-robustness": (PGDRobustnessAnalysis, pgd_robustness),
}


def _list_fields(cls) -> set[str]:
    return {f.name for f in fields(cls) if "list" in str(f.type)}


def translate_lists(name: str, argv: list[str]) -> list[str]:
    """``--ckpt A B`` (space-separated values, as earlier versions took them) -> ``--ckpt=[A,B]``,
    a bare switch ``--train`` -> ``--train=true``, ``--config RUN.yaml`` for a run's config ->
    ``--run_config``."""
    from lit_cert.commands.certify import translate_legacy

    cls = ANALYSES[name][0] if name in ANALYSES else None
    lists = _list_fields(cls) if cls else set()
    flags = {f.name for f in fields(cls) if f.type in (bool, "bool")} if cls else set()
    out, i = [], 0
    while i < len(argv):
        key = argv[i][2:] if argv[i].startswith("--") and "=" not in argv[i] else None
        if key in flags and (i + 1 == len(argv) or argv[i + 1].startswith("--")):
            out.append(f"--{key}=true")  # a bare switch, as earlier versions took it
        elif key in lists:
            values = []
            while i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                values.append(argv[i + 1])
                i += 1
            out.append(f"--{key}=[{','.join(values)}]" if values and not values[0].startswith("[") else f"--{key}={''.join(values)}")
        else:
            out.append(argv[i])
        i += 1
    return translate_legacy(out, certify_flags=False)


def build_parser():
    from jsonargparse import ActionConfigFile, ArgumentParser

    p = ArgumentParser(prog="python -m lit_cert analyze", description=__doc__, default_env=False, allow_abbrev=False)
    sub = p.add_subcommands(dest="name", required=True)
    for name, (cls, _) in ANALYSES.items():
        s = ArgumentParser(description=(cls.__doc__ or "").strip(), default_env=False, allow_abbrev=False)
        s.add_argument("--config", action=ActionConfigFile, help="a YAML file of these settings (see --print_config)")
        s.add_class_arguments(cls, nested_key=None, as_group=False)
        sub.add_subcommand(name, s, help=(cls.__doc__ or "").strip().split("\n")[0])
    return p


def parse(argv: list[str]):
    from lit_cert.commands.parse_errors import parse_one_line

    name = argv[0] if argv else None
    argv = [name, *translate_lists(name, argv[1:])] if name else argv
    cfg = parse_one_line(build_parser(), argv, list(ANALYSES))
    cls = ANALYSES[cfg.name][0]
    values = cfg[cfg.name].as_dict()
    return cfg.name, cls(**{k: v for k, v in values.items() if k in {f.name for f in fields(cls)}})


def main(argv: list[str]):
    name, args = parse(argv)
    args.out = Path(args.out)
    ensure_writable_dir(args.out, "analysis output folder")
    rows = ANALYSES[name][1](args)
    print(f"lit_cert analyze {name}: wrote {args.out / (name + '.csv')}")
    if args.wandb or active_wandb_run() is not None:
        log_to_wandb(name, args.out)
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
