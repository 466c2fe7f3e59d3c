"""CIFAR-10 from the python pickle batches (``cifar-10-batches-py``)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from lit_cert.data.base import ImageDataModule
from lit_cert.data.info import DataInfo


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch: ``data`` (N, 3072) uint8 in CHW order and ``labels``."""
    with open(path, "rb") as f:
        entry = pickle.load(f, encoding="latin1")
    data = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    labels = np.asarray(entry.get("labels", entry.get("fine_labels")), dtype=np.int64)
    return data, labels


class CIFAR10(ImageDataModule):
    """CIFAR-10 (32x32 RGB, 10 classes). Default augmentation: 2-pixel padding + random crop."""

    info = DataInfo("cifar10", (3, 32, 32), 10, (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
    display_name = "CIFAR-10"
    required_files = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
    subdirs = ("cifar-10-batches-py",)
    system_dirs = ("/usr/share/datasets/cifar10/cifar-10-batches-py", "/usr/share/datasets/cifar-10-batches-py")

    def __init__(self, *args, crop_padding: int = 2, flip: bool = False, **kwargs):
        super().__init__(*args, crop_padding=crop_padding, flip=flip, **kwargs)

    def read_split(self, directory: Path, train: bool):
        names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
        parts = [read_cifar_batch(directory / n) for n in names]
        x = np.concatenate([p[0] for p in parts])
        y = np.concatenate([p[1] for p in parts])
        return torch.from_numpy(x), torch.from_numpy(y)

    def fetch(self, root: Path) -> None:  # pragma: no cover - needs the internet
        import torchvision

        torchvision.datasets.CIFAR10(str(root), train=True, download=True)
