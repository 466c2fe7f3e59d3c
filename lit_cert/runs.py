"""Loading what runs left on disk: a run's network and data from its checkpoint (for
certification, export and analysis) and the records of a sweep folder (for evaluation
scripts).

None of it imports Lightning: the network is rebuilt from the architecture and dataset the
checkpoint records (:class:`TrainedNetwork`), the data through the plain dataset classes of
:mod:`lit_cert.data`. (:func:`lit_cert.methods.load_method` gives the LightningModule itself.)
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path


from lit_cert.errors import ConfigError

SPLITS = ("test", "val", "train")


def run_config_path(ckpt: str, config: str | None) -> Path:
    """``config`` if given, else the run's ``config.yaml`` next to its ``checkpoints/`` folder."""
    if config:
        if not Path(config).is_file():
            raise ConfigError(f"run config {config} does not exist")
        return Path(config)
    guess = Path(ckpt).resolve().parent.parent / "config.yaml"
    if not guess.is_file():
        raise ConfigError(f"no config.yaml next to {ckpt}; pass --run_config with the run's config file")
    return guess


def read_run_config(path: str | Path) -> dict:
    """A run's ``config.yaml``, checked to be one (a ``run-config`` file of :mod:`lit_cert.files`)."""
    from lit_cert.files import RUN_CONFIG
    from lit_cert.persist import read_record

    return read_record(path, RUN_CONFIG.kind)


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
    #: what the network was trained on (a data-identity record), None for checkpoints of lit_cert < 0.2
    data_identity: dict | None = None

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
    return TrainedNetwork(net.eval(), info, eps_train, eps_test, method, {k: v for k, v in hp.items() if not k.startswith("_")},
                          recorded_data(state, ckpt))


#: where a checkpoint keeps its data-identity record
DATA_KEY = "lit_cert_data"


def recorded_data(state: dict, ckpt: str) -> dict | None:
    """The data-identity record a checkpoint carries (checked), or None if it has none."""
    from lit_cert.files import DATA_IDENTITY
    from lit_cert.persist import check_record

    if DATA_KEY not in state:
        return None
    return check_record(state[DATA_KEY], DATA_IDENTITY.kind, f"{ckpt} ({DATA_KEY})")


def data_differences(recorded: dict, current: dict, splits=("train", "val", "test")) -> list[str]:
    """What differs between two data-identity records: the dataset, shape, classes, transforms,
    and the size or content of each of ``splits`` that both record."""
    out = []
    for key in ("dataset", "name", "in_shape", "num_classes", "transforms"):
        if recorded.get(key) != current.get(key):
            out.append(f"{key} {recorded.get(key)!r} (trained) vs {current.get(key)!r} (now)")
    for split in splits:
        a, b = (recorded.get("splits") or {}).get(split), (current.get("splits") or {}).get(split)
        if a and b and a != b:
            what = "size" if a.get("size") != b.get("size") else "content"
            out.append(f"the {split} split's {what} ({a.get('size')} vs {b.get('size')} samples)")
    return out


def check_same_data(recorded: dict | None, dm, ckpt: str, splits=("train", "val", "test"), allow: bool = False,
                    fix: str = "point --run_config/--data_dir at the run's data") -> None:
    """Refuse to use a checkpoint whose data record (``recorded``, None for lit_cert < 0.2: not
    checked) differs from ``dm`` -- another dataset, other transforms, or ``splits`` of other
    content -- unless ``allow`` (``--allow_other_data``): then a notice says what differs. The
    one check of certify, export, predict, analyze and fit's test/validate/resume."""
    if recorded is None:
        return
    differ = data_differences(recorded, dm.identity(splits), splits)
    if differ and not allow:
        raise ConfigError(f"{ckpt} was trained on other data than this config gives: {'; '.join(differ[:3])}. "
                          f"To use the run's data, {fix}; or pass --allow_other_data true to do it on purpose")
    if differ:
        print(f"lit_cert: notice: other data than {ckpt} was trained on ({'; '.join(differ[:2])}): --allow_other_data",
              file=sys.stderr)


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


def load_run(ckpt: str, config: str | None = None, data_dir: str | None = None, allow_other_data: bool = False,
             split: str | None = None, report: bool = True):
    """The trained network (:class:`TrainedNetwork`) and its dataset (set up), checked to fit
    together: the same input shape and classes, and -- where the checkpoint records it -- the
    same dataset, transforms and split contents (:func:`check_same_data`); with ``split``, that
    split must not be empty. The data line is printed only once all of this held (``report=False``:
    the caller prints it, ``dm.report()``, after checks of its own)."""
    model = load_network(ckpt)
    cfg = read_run_config(run_config_path(ckpt, config))
    data = cfg["data"]
    cls = plain_data_class(data["class_path"])
    kwargs = dict(data.get("init_args") or {})
    if data_dir:
        kwargs["data_dir"] = data_dir
    dm = cls(**kwargs)
    info, trained = dm.info, model.data_info
    if tuple(info.in_shape) != tuple(trained.in_shape) or info.num_classes != trained.num_classes:
        raise ConfigError(f"{ckpt} was trained on inputs {trained.in_shape} with {trained.num_classes} classes, "
                          f"but the data is {info.in_shape} with {info.num_classes} classes")
    dm.defer_report = True  # the data line comes after the checks: an error is the only output
    dm.prepare_data()
    dm.setup("test")
    check_same_data(model.data_identity, dm, ckpt, allow=allow_other_data)
    if split is not None:
        split_dataset(dm, split)
    if report:
        dm.report()
    return model, dm


def split_dataset(dm, split: str):
    """The ``test``, ``val`` (held out of the training data) or ``train`` dataset of ``dm``; a
    ConfigError for an empty one (a run without a validation split has no ``val``)."""
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
    dataset = {"test": dm.test_set, "val": dm.val_set, "train": dm.train_set}[split]
    if len(dataset) == 0:
        hint = " (the run was trained with data.val_size 0: every training image was used for training)" if split == "val" else ""
        raise ConfigError(f"the {split} split of this run's data is empty{hint}; choose another --split")
    return dataset


def read_records(path: Path, warn: bool = True) -> list[dict]:
    """The records of ``results.jsonl`` (``sweep-record`` lines). A line that is not a valid
    record -- what a kill or a full disk leaves mid-append, garbage, another file's line -- is
    skipped with a warning: that run counts as not finished and runs again."""
    from lit_cert.files import SWEEP_RECORD
    from lit_cert.persist import read_lines

    def report(number, err):
        if warn:
            print(f"lit_cert sweep: warning: {path} line {number} is not a valid run record ({err.reason}); it is "
                  "ignored and that run runs again", file=sys.stderr)

    return read_lines(path, SWEEP_RECORD.kind, report)


def finished_runs(out: str | Path) -> list[tuple[dict, Path]]:
    """``(record, run directory)`` of every finished run in a sweep folder (the latest record of each
    run id), for evaluation scripts. The run directory is the one the run's ``fit`` reported,
    relative to the folder the sweep ran in unless the run made it absolute."""
    latest = {r["run_id"]: r for r in read_records(Path(out) / "results.jsonl")}
    return [(r, Path(r["metrics"]["run_dir"])) for r in latest.values()
            if r["status"] == "finished" and "run_dir" in r.get("metrics", {})]
