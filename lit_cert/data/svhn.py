"""SVHN (cropped digits) from the MATLAB files ``train_32x32.mat`` / ``test_32x32.mat``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
import torch

from lit_cert.data.base import ImageDataModule
from lit_cert.data.info import DataInfo


def read_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``X`` is (32, 32, 3, N) uint8, ``y`` (N, 1) with labels 1..10 where 10 means digit 0."""
    mat = scipy.io.loadmat(str(path))
    x = np.transpose(mat["X"], (3, 2, 0, 1)).astype(np.uint8)
    y = mat["y"].astype(np.int64).reshape(-1) % 10
    return x, y


class SVHN(ImageDataModule):
    """SVHN (32x32 RGB, 10 classes; the ``extra`` split is not used)."""

    info = DataInfo("svhn", (3, 32, 32), 10, (0.4377, 0.4438, 0.4728), (0.1980, 0.2011, 0.1970))
    display_name = "SVHN"
    required_files = ("train_32x32.mat", "test_32x32.mat")
    subdirs = ("svhn", "SVHN")
    system_dirs = ("/usr/share/datasets/svhn",)

    def read_split(self, directory: Path, train: bool):
        x, y = read_svhn_mat(directory / ("train_32x32.mat" if train else "test_32x32.mat"))
        return torch.from_numpy(x), torch.from_numpy(y)

    def fetch(self, root: Path) -> None:  # pragma: no cover - needs the internet
        import torchvision

        torchvision.datasets.SVHN(str(root), split="train", download=True)
        torchvision.datasets.SVHN(str(root), split="test", download=True)
