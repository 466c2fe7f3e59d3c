"""Architectures: small config objects that build an ``nn.Sequential`` for a dataset.

Configs name them by class (``network: {class_path: lit_cert.models.CNN7, init_args: {width: 2}}``);
the method calls :meth:`Architecture.build` with the dataset's :class:`~lit_cert.data.info.DataInfo`.
"""

from lit_cert.models.architectures import (
    CNN3,
    CNN7,
    CONV,
    CONVPlus,
    FC,
    Architecture,
    ConvNet,
    GowalLarge,
    ConvMed,
    GowalMedium,
    GowalSmall,
)
from lit_cert.models.init import ibp_init

__all__ = [
    "Architecture",
    "ConvNet",
    "FC",
    "CONV",
    "CONVPlus",
    "CNN3",
    "CNN7",
    "GowalSmall",
    "ConvMed",
    "GowalMedium",
    "GowalLarge",
    "ibp_init",
]
