"""SVHN (cropped digits) from the MATLAB files ``train_32x32.mat`` / ``test_32x32.mat``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
import torch

from lit_cert.data.base import ImageData, label_tensor, pixel_tensor
from lit_cert.errors import DataError
from lit_cert.data.info import DataInfo


def read_svhn_mat(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """``X`` is (32, 32, 3, N) uint8 (or floats in [0, 1]), ``y`` (N, 1) with labels 1..10 where 10 means digit 0."""
    mat = scipy.io.loadmat(str(path))
    x = pixel_tensor(np.transpose(mat["X"], (3, 2, 0, 1)), str(path))
    y = label_tensor(mat["y"].reshape(-1), str(path))
    if len(y) and (int(y.min()) < 1 or int(y.max()) > 10):
        raise DataError(f"{path}: SVHN labels range over [{int(y.min())}, {int(y.max())}], expected 1..10 (10 = digit 0)")
    return x, y % 10


class SVHNData(ImageData):
    """SVHN (32x32 RGB, 10 classes; the ``extra`` split is not used)."""

    CONFIG_NAME = "SVHN"

    info = DataInfo("svhn", (3, 32, 32), 10, (0.4377, 0.4438, 0.4728), (0.1980, 0.2011, 0.1970))
    display_name = "SVHN"
    required_files = ("train_32x32.mat", "test_32x32.mat")
    subdirs = ("svhn", "SVHN")
    system_dirs = ("/usr/share/datasets/svhn",)

    def read_split(self, directory: Path, train: bool):
        return read_svhn_mat(directory / ("train_32x32.mat" if train else "test_32x32.mat"))

    def fetch(self, root: Path) -> None:  # pragma: no cover - needs the internet
        torchvision = self.torchvision()

        torchvision.datasets.SVHN(str(root), split="train", download=True)
        torchvision.datasets.SVHN(str(root), split="test", download=True)
