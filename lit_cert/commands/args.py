"""Shared pieces of the argparse commands (``certify``, ``export``, ``analyze``, ``sweep``).

Every argument problem becomes a :class:`~lit_cert.errors.ConfigError`, so the CLI reports it as
one ``lit_cert: error: ...`` line with exit status 2 like every other bad input (argparse would
print its usage block instead). The ``type=`` helpers reject values that would otherwise run and
produce meaningless output (negative or non-finite eps, zero sizes).
"""

from __future__ import annotations

import argparse
import math
from typing import Annotated

from lit_cert.errors import ConfigError
from lit_cert.options import Check, validate


class CommandParser(argparse.ArgumentParser):
    """argparse with errors raised as ConfigError (``--help`` still prints and exits 0)."""

    def error(self, message: str):  # type: ignore[override]
        raise ConfigError(f"{self.prog}: {message}")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


def nonnegative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def eps_value(text: str) -> float:
    """A radius in pixel units of [0, 1] images: finite, in [0, 1]."""
    value = float(text)
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise argparse.ArgumentTypeError(f"must be a finite radius in [0, 1] (pixel units), got {text}")
    return value


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="auto (the GPU when present), cpu, cuda or cuda:N")


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
    checked (:func:`lit_cert.options.validate`): values of a ``--config`` file that the parser
    let through as plain mappings (a section given as a number or a list) are refused with the
    option's name."""
    import dataclasses

    values = cfg.as_dict() if hasattr(cfg, "as_dict") else dict(cfg)
    values.pop("config", None)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name, value in list(values.items()):
        if name not in fields:
            values.pop(name)
            continue
        default = fields[name].default_factory() if fields[name].default_factory is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(default):
            if value is None or isinstance(value, dict) and not value:
                values[name] = type(default)()
            elif isinstance(value, dict):
                unknown = sorted(set(value) - {f.name for f in dataclasses.fields(default)})
                if unknown:
                    raise ConfigError(f"--{name}: unknown settings {', '.join(unknown)}")
                values[name] = type(default)(**value)
            elif not isinstance(value, type(default)):
                raise ConfigError(f"--{name}: a section of settings ({', '.join(f.name for f in dataclasses.fields(default))}), "
                                  f"got {value!r}")
    return validate(cls(**values))
