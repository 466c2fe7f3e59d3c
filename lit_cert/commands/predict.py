"""``python -m lit_cert predict``: a trained network's predictions, each with its certificate.

For every sample of a split: the label, the predicted class, the logits, and whether the
prediction is *certified* at ``eps`` -- a sound bound method of the registry
(:data:`lit_cert.bounds.BOUND_METHODS`, ``--certifier``) proves that no L∞ perturbation of size
eps changes the predicted class -- with the bound's smallest margin. The rows go to a CSV file
(written atomically) and one summary line is printed. The full cascade (PGD, CROWN, BaB, MILP)
with per-sample verdicts is ``lit_cert certify``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Optional

from lit_cert.commands.args import DeviceName
from lit_cert.errors import check
from lit_cert.options import ExistingDir, ExistingFile, OneOf, PositiveInt, Radius


def _certifiers():
    from lit_cert.bounds.registry import BOUND_METHODS

    return list(BOUND_METHODS)


@dataclass
class PredictCommand:
    """What ``lit_cert predict`` writes.

    Args:
        ckpt: checkpoint of a lit_cert run (required).
        out: the CSV file to write (default: ``<run dir>/predictions_<split>.csv``).
        run_config: the run's ``config.yaml`` (default: next to its ``checkpoints/`` folder).
        eps: radius in pixel units (default: the model's ``eps_test``).
        certifier: the sound bound method that certifies each prediction.
        split: ``test``, ``val`` or ``train``.
        limit: the first N samples (default: all).
        batch_size: samples per forward pass and bound.
        data_dir: where the run's dataset is (default: the run config's).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        allow_other_data: predict on data other than the checkpoint was trained on.
    """

    ckpt: Annotated[Optional[str], ExistingFile()] = None
    out: Optional[str] = None
    run_config: Annotated[Optional[str], ExistingFile()] = None
    eps: Optional[Radius] = None
    certifier: Annotated[str, OneOf(_certifiers)] = "crown-ibp"
    split: Literal["test", "val", "train"] = "test"
    limit: Optional[PositiveInt] = None
    batch_size: PositiveInt = 100
    data_dir: Annotated[Optional[str], ExistingDir()] = None
    device: DeviceName = "auto"
    allow_other_data: bool = False

    def __post_init__(self):
        check(bool(self.ckpt), "predict needs --ckpt CHECKPOINT (a checkpoint of a lit_cert run)")
        check(self.out is None or not Path(self.out).is_dir(), f"--out: {self.out} is a folder; give a CSV file name")


def build_parser():
    from lit_cert.commands.args import settings_parser

    return settings_parser("predict", PredictCommand, __doc__)


def parse(argv: list[str]) -> PredictCommand:
    from lit_cert.commands.args import parse_settings

    return parse_settings(build_parser(), argv, PredictCommand)


def predict(cmd: PredictCommand) -> list[dict]:
    import torch

    from lit_cert.bounds import bound_spec, certified_box, is_certified, margin_spec
    from lit_cert.commands.args import resolve_device
    from lit_cert.evaluation import batches
    from lit_cert.numerics import certified_numerics
    from lit_cert.reports import save_csv
    from lit_cert.rundir import ensure_writable_dir
    from lit_cert.runs import load_run, split_dataset

    device = resolve_device(cmd.device)
    model, dm = load_run(cmd.ckpt, cmd.run_config, cmd.data_dir, allow_other_data=cmd.allow_other_data, split=cmd.split)
    dataset = split_dataset(dm, cmd.split)
    eps = model.eps_test if cmd.eps is None else cmd.eps
    out = Path(cmd.out) if cmd.out else Path(cmd.ckpt).resolve().parent.parent / f"predictions_{cmd.split}.csv"
    ensure_writable_dir(out.parent, "predictions folder")
    bound = bound_spec(cmd.certifier)
    net = model.net.eval().to(device)
    rows, index = [], 0
    with certified_numerics(), torch.no_grad():
        for x, y in batches(dataset, cmd.limit, cmd.batch_size, device):
            logits = net(x)
            pred = logits.argmax(1)
            margins = bound.lower(net, *certified_box(x, eps), margin_spec(pred, logits.shape[1], x.dtype))
            robust = is_certified(margins, pred)
            others = margins.masked_fill(torch.nn.functional.one_hot(pred, logits.shape[1]).bool(), float("inf"))
            for j in range(len(y)):
                rows.append({"index": index, "label": int(y[j]), "pred": int(pred[j]), "correct": bool(pred[j] == y[j]),
                             "certified": bool(robust[j]), "min_margin_lower_bound": float(others[j].min()),
                             **{f"logit_{k}": float(v) for k, v in enumerate(logits[j].tolist())}})
                index += 1
    save_csv(out, rows)
    n = len(rows)
    correct = sum(r["correct"] for r in rows)
    robust = sum(r["certified"] for r in rows)
    both = sum(r["correct"] and r["certified"] for r in rows)
    print(f"lit_cert predict: {n} {cmd.split} samples, eps={eps:g}, {bound}: accuracy {100 * correct / n:.2f}%, "
          f"certified predictions {100 * robust / n:.2f}%, correct and certified {100 * both / n:.2f}% -> {out}")
    return rows


def main(argv: list[str]) -> list[dict]:
    return predict(parse(argv))
