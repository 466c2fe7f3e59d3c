"""The LightningDataModules ``fit`` uses: each dataset of :mod:`lit_cert.data` with
:class:`lightning.LightningDataModule` mixed in (the data logic is all in the plain classes, so
commands that do not train read data without importing Lightning)."""

from __future__ import annotations

import lightning as L

from lit_cert.data.base import ImageData
from lit_cert.data.cifar import CIFAR10Data
from lit_cert.data.mnist import FashionMNISTData, MNISTData
from lit_cert.data.svhn import SVHNData
from lit_cert.data.synthetic import SyntheticImagesData


class ImageDataModule(ImageData, L.LightningDataModule):
    __doc__ = ImageData.__doc__


class MNIST(MNISTData, ImageDataModule):
    __doc__ = MNISTData.__doc__


class FashionMNIST(FashionMNISTData, ImageDataModule):
    __doc__ = FashionMNISTData.__doc__


class CIFAR10(CIFAR10Data, ImageDataModule):
    __doc__ = CIFAR10Data.__doc__


class SVHN(SVHNData, ImageDataModule):
    __doc__ = SVHNData.__doc__


class SyntheticImages(SyntheticImagesData, ImageDataModule):
    __doc__ = SyntheticImagesData.__doc__
