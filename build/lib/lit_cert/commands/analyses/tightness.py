"""``analyze tightness``: mean local propagation tightness (Mao et al., seed 000) of checkpoints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from lit_cert.commands.analyses.common import Checkpoints, label, load
from lit_cert.commands.args import resolve_device
from lit_cert.options import Radius
from lit_cert.reports import save_csv

NAME = "tightness"


@dataclass
class Settings(Checkpoints):
    """Mean local propagation tightness (Mao et al.) of each checkpoint on a split.

    Args:
        mode: margins (the authors' measurement) or logits (an all-ones radius).
        eps: box radius for margins mode (default: the model's eps_test).
    """

    mode: Literal["margins", "logits"] = "margins"
    eps: Optional[Radius] = None


def run(args) -> list[dict]:
    """One row per checkpoint, through the one evaluation loop (:func:`lit_cert.evaluation.evaluate`)."""
    from lit_cert.evaluation import evaluate
    from lit_cert.metrics import NaturalAccuracy, PropagationTightness

    device = resolve_device(args.device)
    rows = []
    for ckpt in args.ckpt:
        model, ds = load(args, ckpt)
        n = min(args.limit, len(ds))
        name = label(ckpt, model)
        eps = model.eps_test if args.eps is None else args.eps
        out = evaluate(model.net, ds, {"tightness": PropagationTightness(eps, args.mode), "nat": NaturalAccuracy()}, n, device=device)
        rows.append({"model": name, "checkpoint": ckpt, "split": args.split, "samples": n, "mode": args.mode, "eps": eps,
                     "tightness": out["tightness"].item(), "natural_accuracy": out["nat"].item()})
        print(f"lit_cert analyze tightness: {name}: tightness ({args.mode}, eps {eps:g}) {rows[-1]['tightness']:.4f}, "
              f"natural accuracy {rows[-1]['natural_accuracy']:.4f} over {n} {args.split} samples")
    save_csv(args.out / "tightness.csv", rows)
    return rows
