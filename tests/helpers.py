"""Helpers the test files share: small configs and runs, synthetic batches, data files in the
real formats, a small BatchNorm CNN. (Fixtures are in conftest.py.)"""

from __future__ import annotations

import glob
import gzip
import struct
import textwrap
from pathlib import Path

import numpy as np
from torch import nn

from lit_cert.data import SyntheticImages
from lit_cert.layers import BatchNorm1d, BatchNorm2d, Normalize


def synthetic_batch(n: int = 32, train_size: int = 32, **kwargs):
    """(DataModule, x, y): the first ``n`` training images of a small synthetic dataset."""
    dm = SyntheticImages(train_size=train_size, val_size=16, test_size=16, batch_size=32, **kwargs)
    dm.setup()
    return dm, dm.train_set.images[:n].float() / 255, dm.train_set.labels[:n]


SYNTHETIC = """
seed_everything: 7
model:
  class_path: lit_cert.methods.IBP
  init_args:
    network:
      class_path: lit_cert.models.CNN3
      init_args: {width: 0.5}
    eps_train: 0.1
    eps_test: ${model.init_args.eps_train}
data:
  class_path: lit_cert.data.SyntheticImages
  init_args: {train_size: 64, val_size: 32, test_size: 32, batch_size: 32}
schedule: {warmup_epochs: 0, ramp_epochs: 1, shape: linear, kappa_start: 1.0, kappa_end: 0.5}
trainer:
  max_epochs: 2
  accelerator: cpu
  devices: 1
  enable_progress_bar: false
  enable_model_summary: false
"""


def write_config(tmp_path, text=SYNTHETIC, name="cfg.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return str(p)


def run_dirs(root):
    return sorted(glob.glob(str(Path(root) / "runs" / "lit_cert" / "*")))


def trained_run_in(root: Path) -> Path:
    """:func:`trained_run` made with ``root`` as the working folder (for module-scoped fixtures,
    which cannot use the ``workdir`` fixture); the caller's working folder is restored."""
    import os

    cwd = os.getcwd()
    os.chdir(root)
    try:
        return trained_run(root)
    finally:
        os.chdir(cwd)


#: the tiny run of :func:`trained_run` (an FC on 6x6 synthetic images); ``seed: N`` in its data
#: line gives the same-shaped data of another content
TRAINED_RUN = """seed_everything: 0
model:
  class_path: lit_cert.methods.IBP
  init_args:
    network: {class_path: lit_cert.models.FC, init_args: {hidden: [20, 20]}}
    eps_train: 0.02
    eps_test: 0.02
    lr: 3.0e-3
data:
  class_path: lit_cert.data.SyntheticImages
  init_args: {in_shape: [1, 6, 6], train_size: 128, val_size: 32, test_size: 48, batch_size: 32}
trainer: {max_epochs: 6, enable_progress_bar: false, enable_model_summary: false}
"""


def trained_run(workdir) -> Path:
    cfg = workdir / "cfg.yaml"
    cfg.write_text(TRAINED_RUN)
    from lit_cert.commands import main

    main(["fit", "--config", str(cfg)])
    return Path(glob.glob(str(workdir / "runs" / "lit_cert" / "*" / "checkpoints" / "last.ckpt"))[0])


IDX_TYPES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i2"): 0x0B, np.dtype(">i4"): 0x0C,
             np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}


def write_idx(path: Path, array: np.ndarray, gz: bool = True, dtype=np.uint8) -> None:
    """An IDX file of element type ``dtype`` (unsigned bytes, as distributed, by default)."""
    dtype = np.dtype(dtype).newbyteorder(">") if np.dtype(dtype).itemsize > 1 else np.dtype(dtype)
    header = bytes([0, 0, IDX_TYPES[dtype], array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    payload = header + array.astype(dtype).tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def make_idx_dataset(root: Path, n_train=60, n_test=20, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    data = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, size=(n,), dtype=np.uint8)
        write_idx(root / f"{prefix}-images-idx3-ubyte", x, gz)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", y, gz)
        data[prefix] = (x, y)
    return data


def conv_net(classes=4):
    return nn.Sequential(
        Normalize([0.5, 0.4], [0.25, 0.3]),
        nn.Conv2d(2, 4, 3, stride=2, padding=1),
        BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 5, 3, stride=1, padding=0),
        nn.BatchNorm2d(5),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(5 * 2 * 2, 12),
        BatchNorm1d(12),
        nn.ReLU(),
        nn.Linear(12, classes),
    )
