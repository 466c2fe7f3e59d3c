"""Windowed back-substitution: the rows of convolutional neurons carried on their receptive field.

The intermediate bound of one neuron ``(c, h, w)`` of a convolution's output starts as a unit
row; walking back through a 3x3 convolution it becomes nonzero on a 3x3 window of the layer
before, through the next on a 5x5 window, and so on: its *receptive field*. Whole-map rows
(:class:`lit_cert.bounds.coefficients.Dense`) carry every row on the whole feature map -- on a
CNN7's 28x28 maps, 87 times the 3x3 window that the second convolution's rows need, and those
rows are most of full CROWN's work. :class:`Windows` carries each row on a window of the map with
its own offset (auto_LiRPA calls the idea "patches"): all rows of one walk share the window's
size, which the layers' geometry fixes, so they still go through each layer as one batch.

Windows are a *coefficient form*, not a second walker: the engine's one walk
(:meth:`lit_cert.bounds.backsub.LinearBounds._walk`) and its one rule per layer take them through
the primitives of :mod:`lit_cert.bounds.coefficients` (``at``, ``dot``, ``conv_back``, ...), which
this class implements on windows. This module holds the form and the plan of how far a row stays
a window (:func:`window_plan`); it knows no layer's relaxation.

Exactness: a row's coefficients are zero outside its receptive field, so the window holds every
nonzero coefficient. A convolution is walked back by a transposed convolution *without* padding
on the window: its output covers the input positions ``offset * stride - padding + i``; those
outside the map are the padding's zeros, which the dense transposed convolution crops, and here
are set to zero. A ReLU, BatchNorm or Normalize acts position by position, so it only needs its
relaxation lines (slopes and offsets, per sample) at the window's positions, gathered from the
maps. The result is the dense walk's bound, up to float rounding (summation order); the tests
compare the two on random networks, splits, optimised slopes and strided, padded convolutions.
When a window would cover the whole map the rows continue on the full map (the dense walk), so
a window is never larger than the map's area.

Which rows: the packed unstable rows of sparse intermediate bounds
(:meth:`~lit_cert.bounds.backsub.LinearBounds.sparse_neuron_bounds`) of a ReLU whose every
earlier layer is a Conv2d, BatchNorm, Normalize, ReLU or Identity, and whose ReLUs have at most
per-sample lower slopes (not per-row optimised ones) -- also where some sample has every neuron
of the layer unstable (large eps: ConvMed and GowalLarge at eps 0.1), which before 2026-12-07
went on whole maps.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lit_cert.bounds.coefficients import Dense, conv_transpose, fuses_with_previous
from lit_cert.layers import Normalize

_LOCAL = (nn.Conv2d, nn.modules.batchnorm._BatchNorm, Normalize, nn.ReLU, nn.Identity)


def _conv_before(layers: list[nn.Module], pos: int):
    """The walk's affine step back from the input of layer ``pos``, as the dense walk takes it
    (:meth:`~lit_cert.bounds.backsub.LinearBounds._affine_step`): (the Conv2d, whether a BatchNorm
    after it is fused into it, the position reached) when a convolution is next, else None."""
    layer = layers[pos - 1]
    if fuses_with_previous(layers, pos - 1):  # a Conv2d before it: window_plan admits no Linear here
        return layers[pos - 2], True, pos - 2
    if type(layer) is nn.Conv2d:
        return layer, False, pos - 1
    return None


def _windowable(layer: nn.Module) -> bool:
    if type(layer) is nn.Conv2d:
        return isinstance(layer.padding, tuple) and layer.padding_mode == "zeros"
    return isinstance(layer, _LOCAL)


def window_plan(layers: list[nn.Module], shapes: list[tuple[int, ...]], end: int) -> dict[int, tuple[int, int]] | None:
    """Window sizes of rows that start as 1x1 windows on the input of layer ``end``: {position
    ``p``: (height, width) of the window on the input of layer ``p``}, walking back while the
    window stays smaller than its map; the walk turns dense at the smallest position in the plan
    unless that is 0 (the input). None when the rows cannot be windowed: a non-local layer on the
    way, a map that is not an image, or no convolution whose window is smaller than its map."""
    if len(shapes[end]) != 4 or not all(_windowable(m) for m in layers[:end]):
        return None
    plan = {end: (1, 1)}
    h, w, pos, convs = 1, 1, end, 0
    while pos > 0:
        step = _conv_before(layers, pos)
        if step is None:
            pos -= 1
        else:
            conv, _, below = step
            (k_h, k_w), (s_h, s_w), (d_h, d_w) = conv.kernel_size, conv.stride, conv.dilation
            nh, nw = (h - 1) * s_h + d_h * (k_h - 1) + 1, (w - 1) * s_w + d_w * (k_w - 1) + 1
            if nh * nw >= math.prod(shapes[below][-2:]):
                break
            h, w, pos, convs = nh, nw, below, convs + 1
        plan[pos] = (h, w)
    return plan if convs else None


def window_elements(plan: dict[int, tuple[int, int]], shapes: list[tuple[int, ...]]) -> int:
    """Per row, the largest coefficient block of a windowed walk: channels x window, and the full
    map of every layer the walk goes on densely after the plan."""
    windowed = max(shapes[p][1] * h * w for p, (h, w) in plan.items())
    dense = [math.prod(s[1:]) for s in shapes[: min(plan) + 1]] if min(plan) > 0 else []
    return max([windowed] + dense)


def _gather(maps: torch.Tensor, oh: torch.Tensor, ow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, k, C, h, w): ``maps`` (B, C, H, W) at each row's window (offsets ``oh``, ``ow`` (B, k)).
    Positions outside the map read a clamped neighbour: the rows' coefficients are zero there."""
    b, k = oh.shape
    grid_h, grid_w = maps.shape[-2:]
    rows_h = (oh.unsqueeze(-1) + torch.arange(size[0], device=oh.device)).clamp(0, grid_h - 1)  # (B, k, h)
    rows_w = (ow.unsqueeze(-1) + torch.arange(size[1], device=ow.device)).clamp(0, grid_w - 1)  # (B, k, w)
    sample = torch.arange(b, device=oh.device).view(b, 1, 1, 1)
    picked = maps.permute(0, 2, 3, 1)[sample, rows_h.unsqueeze(-1), rows_w.unsqueeze(-2)]  # (B, k, h, w, C)
    return picked.permute(0, 1, 4, 2, 3)


def _inside(oh: torch.Tensor, ow: torch.Tensor, size: tuple[int, int], grid: tuple[int, int], dtype) -> torch.Tensor:
    """(B, k, 1, h, w) mask of the window positions that lie on the map."""
    ih = oh.unsqueeze(-1) + torch.arange(size[0], device=oh.device)
    iw = ow.unsqueeze(-1) + torch.arange(size[1], device=ow.device)
    mh = ((ih >= 0) & (ih < grid[0])).to(dtype)
    mw = ((iw >= 0) & (iw < grid[1])).to(dtype)
    return (mh.unsqueeze(-1) * mw.unsqueeze(-2)).unsqueeze(2)


def _dense(a: torch.Tensor, oh: torch.Tensor, ow: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """The windows ``a`` (B, k, C, h, w) placed on the full map (B, k, C, H, W): map position
    ``p`` takes window position ``p - offset`` (zero where that is outside the window)."""
    b, k, c, h, w = a.shape
    ih = torch.arange(grid[0], device=a.device) - oh.unsqueeze(-1)  # (B, k, H)
    iw = torch.arange(grid[1], device=a.device) - ow.unsqueeze(-1)  # (B, k, W)
    in_h, in_w = ((ih >= 0) & (ih < h)).to(a.dtype), ((iw >= 0) & (iw < w)).to(a.dtype)
    rows = a.gather(3, ih.clamp(0, h - 1).view(b, k, 1, grid[0], 1).expand(b, k, c, grid[0], w))
    rows = rows * in_h.view(b, k, 1, grid[0], 1)
    out = rows.gather(4, iw.clamp(0, w - 1).view(b, k, 1, 1, grid[1]).expand(b, k, c, grid[0], grid[1]))
    return out * in_w.view(b, k, 1, 1, grid[1])


class Windows:
    """Rows on windows of the map (the module docstring): ``a`` (B, M, C, h, w), the window of row
    ``(b, m)`` starting at map position (``oh[b, m]``, ``ow[b, m]``), on the input of layer
    ``pos``; ``plan`` (:func:`window_plan`) says down to which position the rows stay windows.
    The primitives of :class:`lit_cert.bounds.coefficients.Dense`, so each layer's rule walks
    both forms."""

    __slots__ = ("a", "oh", "ow", "plan")

    def __init__(self, a: torch.Tensor, oh: torch.Tensor, ow: torch.Tensor, plan: dict[int, tuple[int, int]]):
        self.a, self.oh, self.ow, self.plan = a, oh, ow, plan

    @classmethod
    def unit_rows(cls, unit: torch.Tensor, channels: int, plan: dict[int, tuple[int, int]], dtype, device) -> Windows:
        """1x1 windows of the rows ``unit`` (B, M, 4) = (channel, row, column, sign) of a map with
        ``channels`` channels; sign 0 is an empty row (all coefficients 0, bound 0)."""
        b, m = unit.shape[:2]
        a = torch.zeros(b, m, channels, 1, 1, dtype=dtype, device=device)
        a.view(b, m, -1).scatter_(2, unit[..., 0:1].clamp(min=0), unit[..., 3:4].to(dtype))
        return cls(a, unit[..., 1].clone(), unit[..., 2].clone(), plan)

    def like(self, a: torch.Tensor) -> Windows:
        return Windows(a, self.oh, self.ow, self.plan)

    def at(self, maps: torch.Tensor) -> torch.Tensor:
        """The per-sample ``maps`` (B, C, H, W) at each row's window: (B, M, C, h, w)."""
        if maps.dim() != 4:
            raise ValueError("windowed rows take per-sample maps (B, C, H, W) only (per-row slopes have no window plan)")
        return _gather(maps, self.oh, self.ow, tuple(self.a.shape[-2:]))

    def dot(self, part: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        return (part * self.at(maps)).flatten(2).sum(-1)

    def stepping_to(self, pos: int, shape: tuple[int, ...]) -> Windows | Dense:
        """The rows, now on a map of ``shape`` (batch first), about to walk back to the input of
        layer ``pos``: still windows where the plan reaches ``pos``, else placed on the whole map
        (the window would cover it), where the dense rules take over."""
        if pos in self.plan:
            return self
        return Dense(_dense(self.a, self.oh, self.ow, tuple(shape[-2:])))

    def conv_back(self, conv: nn.Conv2d, weight: torch.Tensor, in_shape: tuple[int, ...]) -> Windows:
        """A transposed convolution *without* padding on the window: its output covers input
        positions ``offset * stride - padding + i``; those outside the map are the padding's
        zeros, which the dense rule crops and which are set to zero here."""
        a = self.a
        b, m = a.shape[:2]
        back = conv_transpose(a.reshape(b * m, *a.shape[2:]), weight, (None, conv.stride, 0, 0, conv.groups, conv.dilation))
        back = back.reshape(b, m, *back.shape[1:])
        oh, ow = self.oh * conv.stride[0] - conv.padding[0], self.ow * conv.stride[1] - conv.padding[1]
        back = back * _inside(oh, ow, tuple(back.shape[-2:]), tuple(in_shape[-2:]), back.dtype)
        return Windows(back, oh, ow, self.plan)

    def linear_back(self, weight: torch.Tensor):
        raise TypeError("a window plan never reaches a Linear layer (window_plan admits local layers only)")

    def flatten_back(self, in_shape: tuple[int, ...]):
        raise TypeError("a window plan never reaches a Flatten layer (window_plan admits local layers only)")
