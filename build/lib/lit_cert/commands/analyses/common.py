"""What the analyses share: where they write, and the settings of analyses of trained runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal, Optional

from lit_cert.commands.args import DeviceName
from lit_cert.errors import check
from lit_cert.options import ExistingFile, NonEmpty, PositiveInt, WritableDir


@dataclass
class Output:
    """Where an analysis writes (``<name>.csv`` and ``.png``), and whether it also logs to W&B
    (offline unless logged in; automatic inside an active run).

    Args:
        out: output folder (created if needed); its files are replaced only when the analysis
            finished.
        wandb: also log the tables and plots to W&B.
    """

    out: Annotated[str, WritableDir()] = "analysis"
    wandb: bool = False


@dataclass
class Checkpoints(Output):
    """One or more trained runs and the samples to evaluate them on.

    Args:
        ckpt: checkpoints of lit_cert runs (one or more).
        run_config: the run's config.yaml (a single --ckpt only; default: next to checkpoints/).
        split: test, val (held out of training) or train.
        limit: the first N samples of the split.
        device: auto, cpu, cuda or cuda:N.
        allow_other_data: evaluate on data other than the checkpoint was trained on.
    """

    ckpt: Annotated[list[str], NonEmpty(), ExistingFile()] = field(default_factory=list)
    run_config: Annotated[Optional[str], ExistingFile()] = None
    split: Literal["test", "val", "train"] = "test"
    limit: PositiveInt = 1000
    device: DeviceName = "auto"
    allow_other_data: bool = False

    def __post_init__(self):
        check(bool(self.ckpt), "--ckpt: give one or more checkpoints")
        check(not (self.run_config and len(self.ckpt) > 1), "--run_config applies to a single --ckpt")


def label(ckpt: str, model) -> str:
    """A short name for a checkpoint in tables and legends: method class and run id."""
    run = Path(ckpt).resolve().parent.parent.name
    return f"{model.method_name} ({run})"


def load(args, ckpt: str):
    """(trained network, dataset of ``args.split``) of one checkpoint, checked to fit."""
    from lit_cert.runs import load_run, split_dataset

    model, dm = load_run(ckpt, args.run_config, allow_other_data=args.allow_other_data, split=args.split)
    return model, split_dataset(dm, args.split)
