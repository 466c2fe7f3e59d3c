"""Datasets: MNIST, Fashion-MNIST, CIFAR-10, SVHN, and a synthetic one for tests.

Each finds local copies first (the user's ``data_dir``, then system copies such as Debian's
``dataset-fashion-mnist``), then tries torchvision's download, and otherwise stops with a
:class:`DataNotFoundError` that says what to do.

Two forms of each: the plain classes (``MNISTData``, ..., base :class:`ImageData`: no Lightning,
what ``certify``, ``export`` and ``analyze`` read through) and the LightningDataModules that
configs name (``lit_cert.data.MNIST``, ..., base ``ImageDataModule``), imported from
:mod:`lit_cert.data.modules` only when asked for, so that importing this package does not import
Lightning.
"""

from lit_cert.data.base import DataNotFoundError, ImageData, ImageTensorDataset, random_crop_flip
from lit_cert.data.cifar import CIFAR10Data
from lit_cert.data.info import DataInfo
from lit_cert.data.mnist import FashionMNISTData, MNISTData
from lit_cert.data.svhn import SVHNData
from lit_cert.data.synthetic import SyntheticImagesData
from lit_cert.errors import DataError

#: the LightningDataModules (in lit_cert.data.modules) and the plain class each one extends
#: (keyed by each plain class's ``CONFIG_NAME``, the name :meth:`ImageData.public_name` reports)
LIGHTNING_CLASSES = {"ImageDataModule": ImageData, **{c.CONFIG_NAME: c for c in (MNISTData, FashionMNISTData, CIFAR10Data, SVHNData,
                                                                                 SyntheticImagesData)}}


def __getattr__(name: str):
    if name in LIGHTNING_CLASSES:
        from lit_cert.data import modules

        return getattr(modules, name)
    raise AttributeError(f"module 'lit_cert.data' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *LIGHTNING_CLASSES])


__all__ = [
    "DataInfo", "DataError", "DataNotFoundError", "ImageData", "ImageTensorDataset", "random_crop_flip",
    "MNISTData", "FashionMNISTData", "CIFAR10Data", "SVHNData", "SyntheticImagesData", *LIGHTNING_CLASSES,
]
