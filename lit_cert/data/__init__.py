"""DataModules: MNIST, Fashion-MNIST, CIFAR-10, SVHN, and a synthetic one for tests.

Each finds local copies first (the user's ``data_dir``, then system copies such as Debian's
``dataset-fashion-mnist``), then tries torchvision's download, and otherwise stops with a
:class:`DataNotFoundError` that says what to do.
"""

from lit_cert.data.base import DataNotFoundError, ImageDataModule, ImageTensorDataset, random_crop_flip
from lit_cert.errors import DataError
from lit_cert.data.cifar import CIFAR10
from lit_cert.data.info import DataInfo
from lit_cert.data.mnist import MNIST, FashionMNIST
from lit_cert.data.svhn import SVHN
from lit_cert.data.synthetic import SyntheticImages

__all__ = [
    "DataInfo",
    "DataError",
    "DataNotFoundError",
    "ImageDataModule",
    "ImageTensorDataset",
    "random_crop_flip",
    "MNIST",
    "FashionMNIST",
    "CIFAR10",
    "SVHN",
    "SyntheticImages",
]
