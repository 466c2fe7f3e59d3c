"""The coefficients of a back-substitution walk, and the primitives every layer rule is written in.

A walk (:meth:`lit_cert.bounds.backsub.LinearBounds._walk`) carries rows ``A`` of a linear
function ``A · h + c`` of some layer's input ``h`` back towards the network's input. The rows come
in two forms, each a class with the same primitives:

* :class:`Dense` -- every row on the layer's whole input: ``a`` (B or 1, M, *shape); batch 1 is a
  row shared by every sample (the rows of intermediate bounds before their first ReLU).
* :class:`lit_cert.bounds.windows.Windows` -- each row of a convolution's neuron on a window of
  the feature map around its receptive field, with its own offset (auto_LiRPA's "patches").

Each layer's backward rule (:mod:`lit_cert.bounds.backsub`: ReLU, BatchNorm, Normalize, Conv2d,
Linear, Flatten) is written once against these primitives, so one walker handles both forms:

* ``a`` -- the coefficient tensor; ``like(a)`` -- the same form (offsets, plan) with new values;
* ``at(maps)`` -- a per-sample map (B, *shape) of the layer input (relaxation lines, the input
  box) aligned with ``a``'s positions, broadcastable against it;
* ``dot(part, maps)`` -- (B, M): ``sum part * maps`` over each row's positions, for ``part`` a
  tensor shaped like ``a``;
* ``conv_back(conv, weight, in_shape)`` -- the rows walked back through a convolution (weight
  given: a BatchNorm may be fused into it);
* ``linear_back(weight)``, ``flatten_back(in_shape)`` -- the dense-only layers;
* ``stepping_to(pos, shape)`` -- the form in which the rows, now on a map of ``shape``, walk back
  to the input of layer ``pos`` (a window that would cover its map turns dense).

Per-channel layers (BatchNorm, Normalize) act on ``a`` directly: both forms keep the channel at
dimension 2.

Also here, because both forms and the walker need them: :func:`dot` (batched inner products
without an A-sized temporary), :func:`conv_transpose` (a transposed convolution within about
the memory of its input and output), and the fusion of a BatchNorm into the Linear/Conv2d
before it (:func:`fuses_with_previous`, :func:`fused_affine_bn`).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lit_cert.layers import bn_affine_params


def dot(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Batched inner product of A (B, M, *shape) with v (B, *shape) -> (B, M), as one batched
    matrix-vector product (no A-sized intermediate). A batch-independent A (batch 1) is one
    matrix product with all of v."""
    if a.shape[0] == 1 and v.shape[0] != 1:
        return (a[0].flatten(1) @ v.reshape(v.shape[0], -1).T).T
    return torch.bmm(a.flatten(2), v.reshape(v.shape[0], -1, 1)).squeeze(-1)


def conv_transpose(flat: torch.Tensor, weight: torch.Tensor, args: tuple) -> torch.Tensor:
    """``F.conv_transpose2d(flat, weight, *args)`` within about the memory of its input and output.

    On CPU, float64 has no oneDNN kernel: PyTorch's fallback builds an im2col buffer of (output
    channels x kernel size) values per input pixel for the whole batch at once -- 4.5-9x the
    coefficient block on a CNN7's convolutions, 1.5 GB for 400 rows of one 64-channel 28x28 layer
    (float32: no buffer). The chunked walks of the float64 re-check would then exceed the
    ``coefficient_memory`` budget by that factor, so there the rows go through in pieces whose
    buffer is about one block, written into the preallocated output (each row is transposed on
    its own, so the result is the same)."""
    if flat.device.type != "cpu" or flat.dtype != torch.float64 or flat.shape[0] < 2:
        return F.conv_transpose2d(flat, weight, *args)
    groups = args[4]
    buffer_per_input = weight.shape[1] * groups * weight.shape[2] * weight.shape[3] / flat.shape[1]
    pieces = min(flat.shape[0], math.ceil(buffer_per_input))
    if pieces <= 1:
        return F.conv_transpose2d(flat, weight, *args)
    step = -(-flat.shape[0] // pieces)
    first = F.conv_transpose2d(flat[:step], weight, *args)
    out = first.new_empty((flat.shape[0], *first.shape[1:]))
    out[:step] = first
    del first
    for i in range(step, flat.shape[0], step):
        out[i : i + step] = F.conv_transpose2d(flat[i : i + step], weight, *args)
    return out


def fuses_with_previous(layers: Sequence[nn.Module], idx: int) -> bool:
    """Whether the walk takes layer ``idx`` (a BatchNorm) together with the Linear/Conv2d before
    it (:func:`fused_affine_bn`): the one rule of every walk and of the window plan."""
    return isinstance(layers[idx], nn.modules.batchnorm._BatchNorm) and idx > 0 and type(layers[idx - 1]) in (nn.Linear, nn.Conv2d)


def fused_affine_bn(layer: nn.Module, bn: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of ``bn(layer(x))`` for a Linear/Conv2d ``layer`` followed by BatchNorm:
    walking back through both at once scales the (small) weight instead of the (large)
    coefficient tensor A, and adds the BatchNorm shift with the bias."""
    scale, shift = bn_affine_params(bn)
    weight = layer.weight * scale.view(-1, *([1] * (layer.weight.dim() - 1)))
    bias = shift if layer.bias is None else layer.bias * scale + shift
    return weight, bias


class Dense:
    """Rows on the layer's whole input: ``a`` (B or 1, M, *shape)."""

    __slots__ = ("a",)

    def __init__(self, a: torch.Tensor):
        self.a = a

    def like(self, a: torch.Tensor) -> Dense:
        return Dense(a)

    def at(self, maps: torch.Tensor) -> torch.Tensor:
        """``maps`` per sample (B, *shape) or already per row (B, M, *shape), broadcastable to ``a``."""
        return maps if maps.dim() == self.a.dim() else maps.unsqueeze(1)

    def dot(self, part: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        return dot(part, maps)

    def stepping_to(self, pos: int, shape: tuple[int, ...]) -> Dense:
        return self

    def conv_back(self, conv: nn.Conv2d, weight: torch.Tensor, in_shape: tuple[int, ...]) -> Dense:
        """Through ``conv`` by its transposed convolution, output padding chosen so that the
        result has the input's size (a strided convolution drops the last rows it never reaches)."""
        a = self.a
        b, m = a.shape[:2]
        out_h, out_w = a.shape[-2:]
        k_h, k_w = conv.kernel_size
        (s_h, s_w), (p_h, p_w), (d_h, d_w) = conv.stride, conv.padding, conv.dilation
        op_h = in_shape[-2] - ((out_h - 1) * s_h - 2 * p_h + d_h * (k_h - 1) + 1)
        op_w = in_shape[-1] - ((out_w - 1) * s_w - 2 * p_w + d_w * (k_w - 1) + 1)
        back = conv_transpose(a.reshape(b * m, *a.shape[2:]), weight,
                              (None, conv.stride, conv.padding, (op_h, op_w), conv.groups, conv.dilation))
        return Dense(back.reshape(b, m, *back.shape[1:]))

    def linear_back(self, weight: torch.Tensor) -> Dense:
        return Dense(self.a @ weight)

    def flatten_back(self, in_shape: tuple[int, ...]) -> Dense:
        return Dense(self.a.reshape(*self.a.shape[:2], *in_shape[1:]))
