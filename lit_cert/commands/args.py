"""Shared pieces of the settings commands (``certify``, ``export``, ``predict``, ``analyze``,
``sweep``): one parser built from a settings dataclass, its values checked against the declared
constraints (:mod:`lit_cert.options`), and the declared kinds of a device and a worker slice.
"""

from __future__ import annotations

from typing import Annotated

from lit_cert.errors import ConfigError
from lit_cert.options import Check, validate


def resolve_device(name: str):
    """``auto`` -> the first CUDA device if there is one, else the CPU; others are checked."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ConfigError(f"--device {name!r} is not a device (auto, cpu, cuda, cuda:N): {err}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name}: no CUDA device is available on this machine (use --device cpu or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type != "cpu":
        raise ConfigError(f"--device {name}: only cpu and cuda devices are supported")
    return device


def _device_problem(text) -> str | None:
    try:
        resolve_device(str(text))
    except ConfigError as err:
        reason = str(err)
        if "is not a device" in reason or "only cpu and cuda" in reason:
            return "must be auto, cpu, cuda or cuda:N"
        return reason.split(": ", 1)[-1]
    return None


def _worker_problem(text) -> str | None:
    if text == "auto":
        return None
    from lit_cert.certify.shards import parse_worker

    try:
        parse_worker(str(text), {})
    except ConfigError:
        return "must be K/N with 1 <= K <= N (e.g. 1/4), or auto"
    return None


#: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` -- checked against this machine
DeviceName = Annotated[str, Check(_device_problem, "auto|cpu|cuda|cuda:N", ("tpu", "cuda:99"))]
#: ``K/N`` or ``auto`` (torchrun / SLURM array)
WorkerSpec = Annotated[str, Check(_worker_problem, "K/N or auto", ("3/2", "0/2", "one"))]


def settings_parser(command: str, cls, description: str):
    """The parser of a command configured by one settings dataclass (certify, export, predict):
    its fields as options, with their docstrings as help, plus ``--config FILE`` and
    ``--print_config``."""
    from jsonargparse import ActionConfigFile, ArgumentParser

    parser = ArgumentParser(prog=f"lit_cert {command}", description=description, default_env=False, allow_abbrev=False)
    parser.add_argument("--config", action=ActionConfigFile, help="a YAML file of these settings (see --print_config)")
    parser.add_class_arguments(cls, nested_key=None, as_group=False)
    return parser


def parse_settings(parser, argv: list[str], cls):
    """``argv`` parsed (one line for what the parser rejects) into a checked ``cls``."""
    from lit_cert.commands.parse_errors import parse_one_line

    return build_command(parse_one_line(parser, list(argv)), cls)


def build_command(cfg, cls):
    """The command's dataclass from a parsed jsonargparse namespace, every declared constraint
    checked (:func:`lit_cert.options.validate`). Sections (certify's ``bab``, ...) arrive as
    mappings; the dataclass makes and checks them itself (a section given as a number or a list
    in a ``--config`` file is refused there, with the option's name)."""
    import dataclasses

    values = cfg.as_dict() if hasattr(cfg, "as_dict") else dict(cfg)
    names = {f.name for f in dataclasses.fields(cls)}
    return validate(cls(**{k: v for k, v in values.items() if k in names}))
