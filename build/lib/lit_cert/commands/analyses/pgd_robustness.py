"""``analyze pgd-robustness``: accuracy vs PGD robustness (seed 001's yardstick)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from lit_cert.commands.analyses.common import Checkpoints, label, load
from lit_cert.commands.args import resolve_device
from lit_cert.options import NonEmpty, PositiveInt, Range
from lit_cert.reports import save_csv, save_plot

NAME = "pgd-robustness"


@dataclass
class Settings(Checkpoints):
    """Accuracy vs PGD robustness averaged over test eps (seed 001's Fig. 5).

    Args:
        eps: test radii (the paper's MNIST set).
        steps: PGD steps.
        restarts: PGD restarts.
    """

    eps: Annotated[list[float], NonEmpty(), Range(0, 1)] = field(default_factory=lambda: [0.1, 0.2, 0.3, 0.4])
    steps: PositiveInt = 50
    restarts: PositiveInt = 1



def run(args) -> list[dict]:
    """Seed 001's yardstick: test accuracy against PGD robustness (the prediction does not change
    under attack, whatever the label) averaged over several test eps, one point per checkpoint."""
    from lit_cert.evaluation import evaluate
    from lit_cert.metrics import NaturalAccuracy, PGDRobustness

    device = resolve_device(args.device)
    rows, points = [], {}
    for ckpt in args.ckpt:
        model, ds = load(args, ckpt)
        n = min(args.limit, len(ds))
        name = label(ckpt, model)
        metrics = {"accuracy": NaturalAccuracy(), **{e: PGDRobustness(e, steps=args.steps, restarts=args.restarts) for e in args.eps}}
        out = evaluate(model.net, ds, metrics, n, device=device)
        row = {"model": name, "checkpoint": ckpt, "split": args.split, "samples": n, "accuracy": out["accuracy"].item()}
        row |= {f"pgd_robustness@{e:g}": out[e].item() for e in args.eps}
        row["pgd_robustness_mean"] = sum(row[f"pgd_robustness@{e:g}"] for e in args.eps) / len(args.eps)
        rows.append(row)
        points[name] = ([row["accuracy"]], [row["pgd_robustness_mean"]], "o")
        print(f"lit_cert analyze pgd-robustness: {name}: accuracy {row['accuracy']:.4f}, PGD robustness "
              + ", ".join(f"{row[f'pgd_robustness@{e:g}']:.4f} @ {e:g}" for e in args.eps)
              + f" (mean {row['pgd_robustness_mean']:.4f}) over {n} {args.split} samples")
    save_csv(args.out / "pgd-robustness.csv", rows)
    save_plot(args.out / "pgd-robustness.png", points, f"{args.split} accuracy",
              f"PGD robustness, mean over eps {', '.join(f'{e:g}' for e in args.eps)}",
              title="accuracy vs PGD robustness (expected-bounds paper, Fig. 5)")
    return rows
