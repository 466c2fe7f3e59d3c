"""Loading what runs left on disk: a run's network and data from its checkpoint (for
certification, export and analysis) and the records of a sweep folder (for evaluation
scripts).

None of it imports Lightning: the network is rebuilt from the architecture and dataset the
checkpoint records (:class:`TrainedNetwork`), the data through the plain dataset classes of
:mod:`lit_cert.data`. (:func:`lit_cert.methods.load_method` gives the LightningModule itself.)
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
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


@dataclass
class TrainedNetwork:
    """What a checkpoint holds for certification and analysis: the network (eval mode, CPU) and
    the settings it was trained with."""

    net: "object"  # torch.nn.Sequential
    data_info: "object"  # lit_cert.data.DataInfo
    eps_train: float
    eps_test: float
    method: str  # the method's class path, e.g. lit_cert.methods.ibp.IBP
    hparams: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return self.data_info.num_classes

    @property
    def method_name(self) -> str:
        return self.method.rpartition(".")[2]


def load_network(ckpt: str) -> TrainedNetwork:
    """The network of a lit_cert checkpoint, rebuilt from the architecture and dataset recorded
    in its hyper-parameters, with the checkpoint's weights (a ConfigError if it does not fit)."""
    from lit_cert.checkpoints import check_state_fits, read_checkpoint
    from lit_cert.data.info import DataInfo
    from lit_cert.models.architectures import Architecture

    state = read_checkpoint(ckpt)
    hp = state.get("hyper_parameters", {})
    method = state.get("lit_cert_method") or hp.get("_class_path")
    if not method or "network" not in hp or "data_info" not in hp:
        raise ConfigError(f"{ckpt}: no method, network or dataset recorded in the checkpoint; is it a lit_cert checkpoint?")
    info = DataInfo(**hp["data_info"])
    net = Architecture.from_config(hp["network"]).build(info)
    weights = {k[len("net."):]: v for k, v in state["state_dict"].items() if k.startswith("net.")}
    check_state_fits(net, weights, str(ckpt))
    net.load_state_dict(weights)
    eps_train = float(hp.get("eps_train", 0.0))
    eps_test = float(hp["eps_test"]) if hp.get("eps_test") is not None else eps_train
    return TrainedNetwork(net.eval(), info, eps_train, eps_test, method, {k: v for k, v in hp.items() if not k.startswith("_")})


def plain_data_class(class_path: str):
    """The Lightning-free class behind a config's data ``class_path``: lit_cert's own
    DataModules (``lit_cert.data.MNIST``, ...) map to their plain dataset class; any other class
    (a user's DataModule) is imported as it is."""
    from lit_cert.classpath import import_class
    from lit_cert.data import LIGHTNING_CLASSES, ImageData

    module, _, name = class_path.rpartition(".")
    if module in ("lit_cert.data", "lit_cert.data.modules") and name in LIGHTNING_CLASSES:
        return LIGHTNING_CLASSES[name]
    return import_class(class_path, ImageData, "data module")


def load_run(ckpt: str, config: str | None = None, data_dir: str | None = None):
    """The trained network (:class:`TrainedNetwork`) and its dataset (set up), checked to fit
    together."""
    model = load_network(ckpt)
    try:
        cfg = yaml.safe_load(run_config_path(ckpt, config).read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"the run config of {ckpt} is not valid YAML: {' '.join(str(err).split())}") from None
    data = cfg.get("data") or {}
    if "class_path" not in data:
        raise ConfigError("the run config has no data.class_path")
    cls = plain_data_class(data["class_path"])
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
