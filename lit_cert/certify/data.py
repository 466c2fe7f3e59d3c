"""Rebuild a run's model and data for certification or export, from its checkpoint alone."""

from __future__ import annotations

import importlib
from pathlib import Path

import yaml

from lit_cert.data import ImageDataModule
from lit_cert.errors import ConfigError
from lit_cert.methods import CertifiedMethod, load_method


def run_config_path(ckpt: str, config: str | None) -> Path:
    """``config`` if given, else the run's ``config.yaml`` next to its ``checkpoints/`` folder."""
    if config:
        return Path(config)
    guess = Path(ckpt).resolve().parent.parent / "config.yaml"
    if not guess.is_file():
        raise ConfigError(f"no config.yaml next to {ckpt}; pass --config with the run's config file")
    return guess


def load_run(ckpt: str, config: str | None = None, data_dir: str | None = None) -> tuple[CertifiedMethod, ImageDataModule]:
    if not Path(ckpt).is_file():
        raise ConfigError(f"checkpoint {ckpt} does not exist")
    model = load_method(ckpt).eval()
    cfg = yaml.safe_load(run_config_path(ckpt, config).read_text())
    data = cfg.get("data") or {}
    if "class_path" not in data:
        raise ConfigError("the run config has no data.class_path")
    module, name = data["class_path"].rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    kwargs = dict(data.get("init_args") or {})
    if data_dir:
        kwargs["data_dir"] = data_dir
    dm = cls(**kwargs)
    dm.prepare_data()
    dm.setup("test")
    return model, dm
