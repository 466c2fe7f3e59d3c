"""What is measured on each run of a reproduction, by name (:data:`MEASURES`).

Every measure goes through a lit_cert command's own door (``analyze``, ``certify``) or the one
evaluation loop, so a reproduction measures exactly what a user measures by hand, with the same
input checks. A measure returns flat numbers (accuracies as fractions); the files the command
writes go to the run's folder ``where``.

=================  =============================================================================
measure            numbers it records
=================  =============================================================================
``certified``      ``natural`` and ``certified_<relaxation>`` for each ``relaxations`` option
                   (sound bound of the registry at ``eps``, first ``limit`` images of ``split``)
``tightness``      ``tightness`` (local propagation tightness, margins) and ``natural``
``cascade``        ``certified_complete`` (the ``certify`` cascade's certified accuracy),
                   ``natural_cascade``, ``unknown`` (fraction left open), ``cascade_samples``
``pgd_robustness`` ``natural``, ``rob@<eps>`` for each eps, ``rob_mean``
``cr_curve``       ``cr_auc_<c>``, ``cert@<eps>_<c>`` for each certifier ``c`` and grid point
``analysis``       the row's ``lit_cert analyze`` run; ``extract`` picks numbers from its CSV
=================  =============================================================================
"""

from __future__ import annotations

import csv
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional


@dataclass
class RunContext:
    """What a measure gets: the run's last checkpoint (None for an analysis row), the row's
    analysis arguments, and the folder for the files the measure writes."""

    ckpt: Optional[str]
    analysis: tuple[str, ...]
    where: Path
    values: Optional[dict] = None


def _limit(options: dict) -> list[str]:
    return ["--limit", str(options["limit"])] if options.get("limit") else []


def _split(options: dict) -> list[str]:
    return ["--split", options["split"]] if options.get("split") else []


def _eps(options: dict) -> list[str]:
    return ["--eps", str(options["eps"])] if options.get("eps") is not None else []


def _analyze(args: list[str]) -> list[dict]:
    from lit_cert.commands.analyze import main as analyze

    return analyze(args)


def certified(run: RunContext, options: dict) -> dict:
    """Natural and certified accuracy with each relaxation, one pass per relaxation."""
    from lit_cert.evaluation import evaluate
    from lit_cert.metrics import CertifiedAccuracy, NaturalAccuracy
    from lit_cert.runs import load_run, split_dataset

    split = options.get("split", "test")
    model, dm = load_run(run.ckpt, None, split=split)
    dataset = split_dataset(dm, split)
    eps = model.eps_test if options.get("eps") is None else options["eps"]
    limit = options.get("limit")
    out = {"natural": evaluate(model.net, dataset, {"nat": NaturalAccuracy()}, limit, 250)["nat"].item()}
    for name in options["relaxations"]:
        if name == "own":  # the relaxation the row trained with (its values' "own")
            out["certified_own"] = evaluate(model.net, dataset, {"c": CertifiedAccuracy(eps, (run.values or {})["own"])},
                                            limit, 250)["c"].item()
            continue
        out[f"certified_{name}"] = evaluate(model.net, dataset, {"c": CertifiedAccuracy(eps, name)}, limit, 250)["c"].item()
    return out


def tightness(run: RunContext, options: dict) -> dict:
    row = _analyze(["tightness", "--ckpt", run.ckpt, *_split(options), *_limit(options), *_eps(options), "--out", str(run.where / "tightness")])[0]
    return {"tightness": float(row["tightness"]), "natural": float(row["natural_accuracy"])}


def cascade(run: RunContext, options: dict) -> dict:
    from lit_cert.commands.certify import main as certify

    args = ["--ckpt", run.ckpt, *_limit(options), *_eps(options), "--progress=false", "--out", str(run.where / "certify")]
    if options.get("stages"):
        args.append(f"--stages=[{','.join(options['stages'])}]")
    if options.get("bab_timeout"):
        args += ["--bab.timeout", str(options["bab_timeout"])]
    args += [str(a) for a in options.get("extra", ())]
    summary = certify(args)
    return {"certified_complete": summary["certified_accuracy"], "natural_cascade": summary["natural_accuracy"],
            "unknown": summary["unknown"] / summary["samples"], "cascade_samples": summary["samples"]}


def pgd_robustness(run: RunContext, options: dict) -> dict:
    eps = options["eps_list"]
    row = _analyze(["pgd-robustness", "--ckpt", run.ckpt, *_limit(options), "--eps", *map(str, eps),
                    "--out", str(run.where / "pgd-robustness")])[0]
    return {"natural": row["accuracy"], **{f"rob@{e:g}": row[f"pgd_robustness@{e:g}"] for e in eps},
            "rob_mean": row["pgd_robustness_mean"]}


def cr_curve(run: RunContext, options: dict) -> dict:
    folder = run.where / "cr-curve"
    _analyze(["cr-curve", "--ckpt", run.ckpt, *_limit(options), "--points", str(options.get("points", 11)),
              "--eps_max", str(options["eps_max"]), "--certifier", *options["certifiers"], "--out", str(folder)])
    return cr_metrics(list(csv.DictReader(open(folder / "cr-curve.csv"))), options["certifiers"])


def cr_metrics(rows: list[dict], certifiers) -> dict:
    """CR-AUC (the trapezoid area under the curve over its eps range, divided by the range) and
    the certified accuracy at each grid point, per certifier, from ``cr-curve.csv`` rows."""
    out = {}
    for c in certifiers:
        pts = [(float(r["eps"]), float(r["certified_accuracy"])) for r in rows if r["certifier"] == c]
        out[f"cr_auc_{c}"] = sum((e2 - e1) * (a1 + a2) / 2 for (e1, a1), (e2, a2) in zip(pts, pts[1:])) / pts[-1][0]
        out.update({f"cert@{e:g}_{c}": a for e, a in pts})
    return out


def _largest_step(values: list[float]) -> float:
    return max((abs(b - a) for a, b in zip(values, values[1:])), default=math.nan)


REDUCERS: dict[str, Callable[[list[float]], float]] = {
    "largest_step": _largest_step,
    "mean": statistics.mean, "min": min, "max": max, "first": lambda v: v[0], "last": lambda v: v[-1],
    "count": len, "sum": sum,
}


def _number(row: dict, key) -> Optional[float]:
    if isinstance(key, (int, float)):
        return float(key)
    value = row.get(key)
    if value in (None, ""):
        return None
    if str(value) in ("True", "False"):
        return float(str(value) == "True")
    return float(value)


def extract(rows: list[dict], spec: dict) -> float:
    """One number from an analysis' CSV rows: ``column`` of the rows matching ``where`` (each
    value: ``column - minus`` (a column or a number), its absolute value with ``abs``, or 1/0 for
    ``column > than``), reduced with ``reduce`` (mean, min, max, first, last, count, sum, largest_step: the largest
    change between neighbouring rows, for a landscape's jumps)."""
    where = spec.get("where", {})
    chosen = [r for r in rows if all(str(r.get(k)) == str(v) for k, v in where.items())]
    values = []
    for r in chosen:
        v = _number(r, spec["column"])
        if v is None:
            continue
        if "than" in spec:
            other = _number(r, spec["than"])
            v = math.nan if other is None else float(v > other)
        if "minus" in spec:
            other = _number(r, spec["minus"])
            v = math.nan if other is None else v - other
        values.append(abs(v) if spec.get("abs") else v)
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return math.nan
    return float(REDUCERS[spec.get("reduce", "mean")](values))


def analysis(run: RunContext, options: dict) -> dict:
    """The row's analysis (an untrained row), or ``options["args"]`` on the run's checkpoint."""
    if run.ckpt is not None:  # "{eps}" in an argument: the row's value
        name, *rest = [a.format(**(run.values or {})) if "{" in a else a for a in options["args"]]
        rest += ["--ckpt", run.ckpt]
    else:
        name, *rest = run.analysis
    folder = run.where / name
    _analyze([name, *rest, "--out", str(folder)])
    table = options.get("csv_by_row", {}).get((run.values or {}).get("row"), options.get("csv", f"{name}.csv"))
    return {metric: extract(list(csv.DictReader(open(folder / table))), spec) for metric, spec in options["extract"].items()}


MEASURES: dict[str, Callable[[RunContext, dict], dict]] = {
    "certified": certified, "tightness": tightness, "cascade": cascade, "pgd_robustness": pgd_robustness,
    "cr_curve": cr_curve, "analysis": analysis,
}
