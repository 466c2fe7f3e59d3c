"""CIFAR-10 from the python pickle batches (``cifar-10-batches-py``)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from lit_cert.options import NonNegativeInt, check_arguments
from lit_cert.data.base import ImageData, label_tensor, pixel_tensor
from lit_cert.errors import DataError
from lit_cert.data.info import DataInfo


def read_cifar_batch(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """One pickled batch: ``data`` (N, 3072) in CHW order (0..255 bytes, or floats in [0, 1]) and ``labels``."""
    with open(path, "rb") as f:
        entry = pickle.load(f, encoding="latin1")
    data = pixel_tensor(np.asarray(entry["data"]), str(path)).reshape(-1, 3, 32, 32)
    labels = label_tensor(np.asarray(entry.get("labels", entry.get("fine_labels"))), str(path))
    return data, labels


class CIFAR10Data(ImageData):
    """CIFAR-10 (32x32 RGB, 10 classes). Default augmentation: 2-pixel padding + random crop."""

    CONFIG_NAME = "CIFAR10"

    info = DataInfo("cifar10", (3, 32, 32), 10, (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
    display_name = "CIFAR-10"
    required_files = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
    subdirs = ("cifar-10-batches-py",)
    system_dirs = ("/usr/share/datasets/cifar10/cifar-10-batches-py", "/usr/share/datasets/cifar-10-batches-py")

    def __init__(self, *args, crop_padding: NonNegativeInt = 2, flip: bool = False, **kwargs):
        check_arguments()
        super().__init__(*args, crop_padding=crop_padding, flip=flip, **kwargs)

    def read_split(self, directory: Path, train: bool):
        names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
        parts = [read_cifar_batch(directory / n) for n in names]
        if len({p[0].dtype for p in parts}) > 1:
            raise DataError(f"CIFAR-10 batches in {directory} mix byte and float pixels")
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def fetch(self, root: Path) -> None:  # pragma: no cover - needs the internet
        torchvision = self.torchvision()

        torchvision.datasets.CIFAR10(str(root), train=True, download=True)
