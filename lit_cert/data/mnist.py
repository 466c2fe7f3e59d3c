"""MNIST and Fashion-MNIST from IDX files (plain or gzipped), as distributed by their authors.

Every IDX element type is read; unsigned-byte pixels (the distributed files) stay bytes, float
pixels (types 0x0D/0x0E) must lie in [0, 1] and are kept as floats (:func:`pixel_tensor`)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from lit_cert.data.base import ImageData, label_tensor, pixel_tensor
from lit_cert.data.info import DataInfo

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (magic: two zero bytes, dtype code, number of dimensions; big endian)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file")
    ndim = data[3]
    shape = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    arr = np.frombuffer(data, dtype=dtype, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape} but holds {arr.size} values")
    return arr.reshape(shape)


class _IdxData(ImageData):
    required_files = (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    )

    def read_split(self, directory: Path, train: bool):
        prefix = "train" if train else "t10k"
        image_file = self._resolve(directory, f"{prefix}-images-idx3-ubyte")
        label_file = self._resolve(directory, f"{prefix}-labels-idx1-ubyte")
        x = pixel_tensor(read_idx(image_file), str(image_file)).unsqueeze(1)
        return x, label_tensor(read_idx(label_file), str(label_file))


class MNISTData(_IdxData):
    """MNIST (28x28 grey, 10 classes)."""

    CONFIG_NAME = "MNIST"

    info = DataInfo("mnist", (1, 28, 28), 10, (0.1307,), (0.3081,))
    display_name = "MNIST"
    subdirs = ("MNIST/raw", "mnist")
    system_dirs = ("/usr/share/datasets/mnist",)

    def fetch(self, root: Path) -> None:  # pragma: no cover - needs the internet
        torchvision = self.torchvision()

        torchvision.datasets.MNIST(str(root), train=True, download=True)
        torchvision.datasets.MNIST(str(root), train=False, download=True)


class FashionMNISTData(_IdxData):
    """Fashion-MNIST (28x28 grey, 10 classes); Debian's ``dataset-fashion-mnist`` is found."""

    CONFIG_NAME = "FashionMNIST"

    info = DataInfo("fashion_mnist", (1, 28, 28), 10, (0.2860,), (0.3530,))
    display_name = "Fashion-MNIST"
    subdirs = ("FashionMNIST/raw", "fashion-mnist", "fashion_mnist")
    system_dirs = ("/usr/share/datasets/fashion-mnist",)

    def extra_hint(self) -> str:
        return "; on Debian/Ubuntu `apt-get install dataset-fashion-mnist` installs a copy that is found automatically"

    def fetch(self, root: Path) -> None:  # pragma: no cover - needs the internet
        torchvision = self.torchvision()

        torchvision.datasets.FashionMNIST(str(root), train=True, download=True)
        torchvision.datasets.FashionMNIST(str(root), train=False, download=True)
