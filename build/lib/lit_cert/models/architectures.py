"""The architectures of the certified-training literature, as buildable config objects.

All networks start with :class:`~lit_cert.layers.Normalize` (dataset mean/std), followed by
convolutions and/or linear layers with ReLUs, optionally BatchNorm after each hidden affine layer.
``width`` multiplies every hidden channel/neuron count; the final layer always has one output
per class. Sources of the shapes:

* FC, CONV, CONV+ -- the paradox paper (Jovanovic et al., 2022; their ``FC``/``CONV``/``CONVPLUS``):
  FC = 400-200-100-100; CONV = Conv(16,4x4,s2,p1)+FC100; CONV+ = Conv(16,4x4,s2)+Conv(32,4x4,s1)+FC100.
* GowalSmall/Medium/Large -- the small/medium/large nets of Gowal et al. (2018).
* CNN7 -- CTBench / Shi et al. / SABR / TAPS: conv 64-64-128-128-128 (3x3, strides 1,1,2,1,1,
  padding 1) + Linear 512, BatchNorm everywhere. ``depth`` = number of conv layers.
* CNN3 -- a small BatchNorm conv net (conv 32 s1, conv 64 s2, linear) for quick experiments.
"""

from __future__ import annotations

import inspect
from typing import Annotated, Literal, Optional, Sequence

from torch import nn

from lit_cert.data.info import DataInfo
from lit_cert.errors import ConfigError
from lit_cert.layers import BatchNorm1d, BatchNorm2d, Normalize
from lit_cert.models.init import ibp_init
from lit_cert.options import Check, PositiveFloat, PositiveInt, Range, check_arguments


def _conv_problem(spec) -> str | None:
    """One convolution of a ConvNet: (channels >= 1, kernel >= 1, stride >= 1, padding >= 0)."""
    try:
        c = [int(v) for v in spec]
    except (TypeError, ValueError):
        return "must be four integers (channels, kernel, stride, padding)"
    if len(c) != 4 or c[0] < 1 or c[1] < 1 or c[2] < 1 or c[3] < 0:
        return "must be (channels >= 1, kernel >= 1, stride >= 1, padding >= 0)"
    return None

ConvSpec = tuple[int, int, int, int]  # (channels, kernel, stride, padding)


class Architecture:
    """Base class: ``build(info)`` returns the network as an ``nn.Sequential``.

    Args:
        width: multiplier for hidden channels/neurons (rounded, at least 1).
        bn: BatchNorm after every hidden affine layer (before its ReLU).
        init: ``"default"`` (torch's) or ``"ibp"`` (Shi et al.'s IBP initialisation).
    """

    def __init__(self, width: PositiveFloat = 1.0, bn: bool = False, init: Literal["default", "ibp"] = "default"):
        check_arguments()
        self.width, self.bn, self.init = width, bn, init

    def scaled(self, n: int) -> int:
        return max(1, int(round(n * self.width)))

    def scaled_fc(self, n: int) -> int:
        """Hidden linear sizes (scaled like the channels unless a subclass says otherwise)."""
        return self.scaled(n)

    def build_layers(self, info: DataInfo) -> list[nn.Module]:  # pragma: no cover - interface
        raise NotImplementedError

    def build(self, info: DataInfo) -> nn.Sequential:
        net = nn.Sequential(Normalize(info.mean, info.std), *self.build_layers(info))
        if self.init == "ibp":
            ibp_init(net)
        return net

    def to_config(self) -> dict:
        """``{"class_path": ..., "init_args": {...}}``: plain data, safe to store in checkpoints."""
        params = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        init_args = {p: _plain(getattr(self, p)) for p in params}
        return {"class_path": f"{type(self).__module__}.{type(self).__qualname__}", "init_args": init_args}

    @staticmethod
    def from_config(config: dict) -> "Architecture":
        """Inverse of :meth:`to_config` (also accepts the CLI's ``class_path``/``init_args``)."""
        from lit_cert.classpath import import_class

        cls = import_class(config["class_path"], Architecture, "network")
        return cls(**(config.get("init_args") or {}))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.to_config()["init_args"].items())
        return f"{type(self).__name__}({args})"


def _plain(value):
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class ConvNet(Architecture):
    """Generic conv stack + fully connected head: what every named architecture instantiates.

    Args:
        convs: ``(channels, kernel, stride, padding)`` per convolution (channels scaled by width).
        fcs: hidden fully connected sizes (scaled by width); a final Linear to the classes follows.
    """

    def __init__(
        self,
        convs: Annotated[Sequence[Sequence[int]], Check(_conv_problem, "(channels, kernel, stride, padding)", ([0, 3, 1, 0],))] = (),
        fcs: Annotated[Sequence[int], Range(1)] = (),
        width: PositiveFloat = 1.0,
        bn: bool = False,
        init: Literal["default", "ibp"] = "default",
    ):
        check_arguments()
        super().__init__(width=width, bn=bn, init=init)
        self.convs = [tuple(int(v) for v in c) for c in convs]
        self.fcs = [int(v) for v in fcs]

    def build_layers(self, info: DataInfo) -> list[nn.Module]:
        c, h, w = (info.in_shape + (1, 1))[:3] if len(info.in_shape) < 3 else info.in_shape
        out: list[nn.Module] = []
        for channels, kernel, stride, padding in self.convs:
            ch = self.scaled(channels)
            out.append(nn.Conv2d(c, ch, kernel, stride=stride, padding=padding))
            if self.bn:
                out.append(BatchNorm2d(ch))
            out.append(nn.ReLU())
            h = (h + 2 * padding - kernel) // stride + 1
            w = (w + 2 * padding - kernel) // stride + 1
            if h < 1 or w < 1:
                raise ConfigError(f"{type(self).__name__}: the convolutions shrink a {info.in_shape} input to nothing")
            c = ch
        out.append(nn.Flatten())
        n = c * h * w
        for size in self.fcs:
            m = self.scaled_fc(size)
            out.append(nn.Linear(n, m))
            if self.bn:
                out.append(BatchNorm1d(m))
            out.append(nn.ReLU())
            n = m
        out.append(nn.Linear(n, info.num_classes))
        return out


class FC(ConvNet):
    """Fully connected (paradox paper FC: 400-200-100-100).

    Args:
        hidden: the hidden layers' sizes (scaled by ``width``).
        width: multiplier for the hidden sizes.
        bn: BatchNorm after every hidden layer.
        init: ``default`` or ``ibp``.
    """

    def __init__(
        self,
        hidden: Annotated[Sequence[int], Range(1)] = (400, 200, 100, 100),
        width: PositiveFloat = 1.0,
        bn: bool = False,
        init: Literal["default", "ibp"] = "default",
    ):
        check_arguments()
        super().__init__(convs=(), fcs=hidden, width=width, bn=bn, init=init)
        self.hidden = list(hidden)


class CONV(ConvNet):
    """Paradox paper CONV: Conv(16, 4x4, stride 2, pad 1) -> FC 100 -> classes."""

    def __init__(self, width: PositiveFloat = 1.0, bn: bool = False, init: Literal["default", "ibp"] = "default"):
        super().__init__(convs=[(16, 4, 2, 1)], fcs=[100], width=width, bn=bn, init=init)


class GowalSmall(ConvNet):
    """Gowal et al. small: Conv(16,4x4,s2) -> Conv(32,4x4,s1) -> FC 100 -> classes (no padding)."""

    def __init__(self, width: PositiveFloat = 1.0, bn: bool = False, init: Literal["default", "ibp"] = "default"):
        super().__init__(convs=[(16, 4, 2, 0), (32, 4, 1, 0)], fcs=[100], width=width, bn=bn, init=init)


class CONVPlus(GowalSmall):
    """Paradox paper CONV+ (their ``CONVPLUS``), which is Gowal et al.'s small network."""


class ConvMed(ConvNet):
    """The 4-layer CNN of Balunovic & Vechev's COLT (their ``convmed_flat_2_4_250``; CTBench's
    ``ConvMed``), which seed 000 Table 2 uses to compare PGD, COLT, SABR and IBP:
    Conv(32, 5x5, s2, p2) -> Conv(128, 4x4, s2, p1) -> FC 250 -> classes."""

    def __init__(self, width: PositiveFloat = 1.0, bn: bool = False, init: Literal["default", "ibp"] = "default"):
        super().__init__(convs=[(32, 5, 2, 2), (128, 4, 2, 1)], fcs=[250], width=width, bn=bn, init=init)


class GowalMedium(ConvNet):
    """Gowal et al. medium: Conv 32-32-64-64 (3x3 s1, 4x4 s2, 3x3 s1, 4x4 s2) -> FC 512-512."""

    def __init__(self, width: PositiveFloat = 1.0, bn: bool = False, init: Literal["default", "ibp"] = "default"):
        convs = [(32, 3, 1, 0), (32, 4, 2, 0), (64, 3, 1, 0), (64, 4, 2, 0)]
        super().__init__(convs=convs, fcs=[512, 512], width=width, bn=bn, init=init)


class GowalLarge(ConvNet):
    """Gowal et al. large: Conv 64-64-128-128-128 (3x3, strides 1,1,2,1,1, pad 1) -> FC 512."""

    def __init__(self, width: PositiveFloat = 1.0, bn: bool = False, init: Literal["default", "ibp"] = "default"):
        convs = [(64, 3, 1, 1), (64, 3, 1, 1), (128, 3, 2, 1), (128, 3, 1, 1), (128, 3, 1, 1)]
        super().__init__(convs=convs, fcs=[512], width=width, bn=bn, init=init)


class CNN7(ConvNet):
    """CNN7 of CTBench/Shi et al./SABR/TAPS with BatchNorm, ``width`` and ``depth``.

    Args:
        width: multiplies the convolution channels (64, 64, 128, ...) and, if ``scale_linear``,
            the hidden linear layer too; Mao et al.'s width sweep (seed 000 Fig. 4, CTBench's
            ``cnn_7layer_w<k>_bn``) keeps the linear layer at ``linear_size``: ``scale_linear: false``.
        depth: the number of 3x3 convolutions (default 5: CNN7 = 5 conv + 2 linear). The channel
            pattern is 64, 64, then 128 for the rest; the third convolution has stride 2 (or the
            last one when ``depth < 3``).
        layers: the *total* number of layers, as Mao et al.'s depth sweep counts them (seed 000
            Fig. 4: 3 ... 13); overrides ``depth``. 3, 4 and 5 are CTBench's ``cnn_3layer_bn``
            (conv 16 5x5 s2, conv 32 4x4 s2, linear), ``cnn_4layer_bn`` (the same convolutions, a
            hidden linear layer) and ``cnn_5layer_bn`` (conv 16 3x3, conv 16 4x4 s2, conv 32 4x4
            s2, hidden linear); from 6 on the CNN7 pattern with ``layers - 2`` convolutions
            (CTBench's ``cnn_<layers>layer_bn``).
        linear_size: the hidden linear layer's size (512).
        scale_linear: scale ``linear_size`` by ``width`` too.
        bn: BatchNorm after every hidden affine layer (default on).
        init: ``ibp`` (default, Shi et al.'s) or ``default``.
    """

    def __init__(
        self,
        width: PositiveFloat = 1.0,
        depth: PositiveInt = 5,
        linear_size: PositiveInt = 512,
        scale_linear: bool = True,
        layers: Optional[Annotated[int, Range(3)]] = None,
        bn: bool = True,
        init: Literal["default", "ibp"] = "ibp",
    ):
        check_arguments()
        fcs = [linear_size]
        if layers is None or layers >= 6:
            depth = depth if layers is None else layers - 2
            stride2_at = min(2, depth - 1)
            convs = [(64 if i < 2 else 128, 3, 2 if i == stride2_at else 1, 1) for i in range(depth)]
        elif layers == 5:
            convs = [(16, 3, 1, 1), (16, 4, 2, 1), (32, 4, 2, 1)]
        else:  # 3 or 4
            convs = [(16, 5, 2, 2), (32, 4, 2, 1)]
            fcs = [] if layers == 3 else fcs
        super().__init__(convs=convs, fcs=fcs, width=width, bn=bn, init=init)
        self.depth, self.linear_size, self.scale_linear, self.layers = depth, linear_size, scale_linear, layers

    def scaled_fc(self, n: int) -> int:
        return self.scaled(n) if self.scale_linear else n


class CNN3(ConvNet):
    """The anchors' ``cnn_3layer`` (Mao et al.'s tightness experiments): Conv(16, 5x5, s2, p2) ->
    Conv(32, 4x4, s2, p1) -> Linear(classes), channels scaled by ``width``; ``bn=True`` (default)
    is their ``cnn_3layer_bn``, with BatchNorm after each convolution."""

    def __init__(self, width: PositiveFloat = 1.0, bn: bool = True, init: Literal["default", "ibp"] = "ibp"):
        super().__init__(convs=[(16, 5, 2, 2), (32, 4, 2, 1)], fcs=[], width=width, bn=bn, init=init)

