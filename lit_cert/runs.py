"""Loading what runs left on disk: a run's model and data from its checkpoint (for
certification, export and analysis) and the records of a sweep folder (for evaluation
scripts)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

from lit_cert.errors import ConfigError

SPLITS = ("test", "val", "train")


def run_config_path(ckpt: str, config: str | None) -> Path:
    """``config`` if given, else the run's ``config.yaml`` next to its ``checkpoints/`` folder."""
    if config:
        if not Path(config).is_file():
            raise ConfigError(f"config file {config} does not exist")
        return Path(config)
    guess = Path(ckpt).resolve().parent.parent / "config.yaml"
    if not guess.is_file():
        raise ConfigError(f"no config.yaml next to {ckpt}; pass --config with the run's config file")
    return guess


def load_run(ckpt: str, config: str | None = None, data_dir: str | None = None):
    """The trained method (eval mode, CPU) and its DataModule (set up), checked to fit together."""
    from lit_cert.classpath import import_class
    from lit_cert.data import ImageDataModule
    from lit_cert.methods import load_method
    model = load_method(ckpt).eval()
    try:
        cfg = yaml.safe_load(run_config_path(ckpt, config).read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"the run config of {ckpt} is not valid YAML: {err}") from None
    data = cfg.get("data") or {}
    if "class_path" not in data:
        raise ConfigError("the run config has no data.class_path")
    cls = import_class(data["class_path"], ImageDataModule, "data module")
    kwargs = dict(data.get("init_args") or {})
    if data_dir:
        kwargs["data_dir"] = data_dir
    dm = cls(**kwargs)
    info, trained = dm.info, model.data_info
    if tuple(info.in_shape) != tuple(trained.in_shape) or info.num_classes != trained.num_classes:
        raise ConfigError(f"{ckpt} was trained on inputs {trained.in_shape} with {trained.num_classes} classes, "
                          f"but the data is {info.in_shape} with {info.num_classes} classes")
    dm.prepare_data()
    dm.setup("test")
    return model, dm


def split_dataset(dm, split: str):
    """The ``test``, ``val`` (held out of the training data) or ``train`` dataset of ``dm``."""
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
    return {"test": dm.test_set, "val": dm.val_set, "train": dm.train_set}[split]


def read_records(path: Path, warn: bool = True) -> list[dict]:
    """The records of ``results.jsonl``. A line that is not a complete JSON record -- what a kill
    or a full disk leaves mid-append -- is skipped with a warning: that run counts as not
    finished and runs again."""
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or "run_id" not in record or "status" not in record:
                raise ValueError("not a run record")
        except ValueError:
            if warn:
                print(f"lit_cert sweep: warning: {path} line {number} is not a complete record (an interrupted "
                      "write?); it is ignored and that run runs again", file=sys.stderr)
            continue
        records.append(record)
    return records


def finished_runs(out: str | Path) -> list[tuple[dict, Path]]:
    """``(record, run directory)`` of every finished run in a sweep folder (the latest record of each
    run id), for evaluation scripts. The run directory is the one the run's ``fit`` reported,
    relative to the folder the sweep ran in unless the run made it absolute."""
    latest = {r["run_id"]: r for r in read_records(Path(out) / "results.jsonl")}
    return [(r, Path(r["metrics"]["run_dir"])) for r in latest.values()
            if r["status"] == "finished" and "run_dir" in r.get("metrics", {})]
