"""``python -m lit_cert export``: a run's network as ONNX (BatchNorm folded; the normalisation
in the VNN-LIB box, or as constants without a batch axis) and one VNN-LIB robustness property per
sample, for alpha-beta-CROWN, MN-BaB and other VNN-COMP
verifiers (:mod:`lit_cert.certify.export`). Configured like ``certify`` (:class:`ExportCommand`,
``--config``/``--print_config``); the run's ``config.yaml`` is ``--run_config`` (``--config``
with a run config still works)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Optional

from lit_cert.errors import check
from lit_cert.options import ExistingDir, ExistingFile, PositiveFloat, PositiveInt, Radius, WritableDir


@dataclass
class ExportCommand:
    """What ``lit_cert export`` writes.

    Args:
        ckpt: checkpoint of a lit_cert run (required).
        out: output folder (required).
        run_config: the run's ``config.yaml`` (default: next to its ``checkpoints/`` folder).
        eps: radius in pixel units (default: the model's ``eps_test``).
        split: ``test``, ``val`` or ``train``.
        limit: properties for the first N samples.
        timeout: per-instance timeout written to ``instances.csv``.
        normalisation: ``box`` (the default: the dataset normalisation applied to the VNN-LIB box,
            the ONNX input in normalised space, as VNN-COMP networks) or ``constants`` (kept in the
            graph as Sub/Div with [C, 1, 1] constants; input and box in [0, 1] pixels).
        data_dir: where the run's dataset is (default: the run config's).
        allow_other_data: export properties of data other than the checkpoint was trained on.
    """

    ckpt: Annotated[Optional[str], ExistingFile()] = None
    out: Annotated[Optional[str], WritableDir()] = None
    run_config: Annotated[Optional[str], ExistingFile()] = None
    eps: Optional[Radius] = None
    split: Literal["test", "val", "train"] = "test"
    limit: PositiveInt = 10
    timeout: PositiveFloat = 300.0
    normalisation: Literal["box", "constants"] = "box"
    data_dir: Annotated[Optional[str], ExistingDir()] = None
    allow_other_data: bool = False

    def __post_init__(self):
        check(bool(self.ckpt) and bool(self.out), "export needs --ckpt CHECKPOINT and --out FOLDER")


def parse(argv: list[str]) -> ExportCommand:
    from lit_cert.commands.args import parse_settings
    from lit_cert.commands.certify import translate_legacy

    return parse_settings(build_parser(), translate_legacy(list(argv), certify_flags=False), ExportCommand)


def build_parser():
    from lit_cert.commands.args import settings_parser

    return settings_parser("export", ExportCommand, __doc__)


def main(argv: list[str]) -> Path:
    cmd = parse(argv)  # before the torch imports: --help and bad flags answer at once

    from lit_cert.certify.export import export_split
    from lit_cert.rundir import ensure_writable_dir
    from lit_cert.runs import load_run, split_dataset

    model, dm = load_run(cmd.ckpt, cmd.run_config, cmd.data_dir, allow_other_data=cmd.allow_other_data, split=cmd.split)
    eps = model.eps_test if cmd.eps is None else cmd.eps
    out = ensure_writable_dir(cmd.out, "export folder")
    n = export_split(model.net, model.data_info.in_shape, model.num_classes, split_dataset(dm, cmd.split), cmd.split, eps,
                     cmd.limit, cmd.timeout, out, cmd.normalisation)
    print(f"lit_cert export: model.onnx, {n} VNN-LIB properties and reference_outputs.npz in {out}")
    return out
