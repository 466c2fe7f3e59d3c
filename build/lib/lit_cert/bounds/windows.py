"""Windowed back-substitution: the rows of convolutional neurons carried on their receptive field.

The intermediate bound of one neuron ``(c, h, w)`` of a convolution's output starts as a unit
row; walking back through a 3x3 convolution it becomes nonzero on a 3x3 window of the layer
before, through the next on a 5x5 window, and so on: its *receptive field*. The dense walk
(:meth:`lit_cert.bounds.backsub.LinearBounds._walk`) carries every row on the whole feature map --
on a CNN7's 28x28 maps, 87 times the 3x3 window that the second convolution's rows need, and
those rows are most of full CROWN's work. Here each row is carried on a window of the map with
its own offset (auto_LiRPA calls the idea "patches"): all rows of one walk share the window's
size, which the layers' geometry fixes, so they still go through each layer as one batch.

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

Which rows: the packed IBP-unstable rows of sparse intermediate bounds
(:meth:`~lit_cert.bounds.backsub.LinearBounds.sparse_neuron_bounds`) of a ReLU whose every
earlier layer is a Conv2d, BatchNorm, Normalize, ReLU or Identity, and whose ReLUs have at most
per-sample lower slopes (not per-row optimised ones).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lit_cert.layers import Normalize

_LOCAL = (nn.Conv2d, nn.modules.batchnorm._BatchNorm, Normalize, nn.ReLU, nn.Identity)


def _conv_before(layers: list[nn.Module], pos: int):
    """The walk's affine step back from the input of layer ``pos``, as the dense walk takes it
    (:meth:`~lit_cert.bounds.backsub.LinearBounds._affine_step`): (the Conv2d, whether a BatchNorm
    after it is fused into it, the position reached) when a convolution is next, else None."""
    from lit_cert.bounds.backsub import fuses_with_previous

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


def window_lower(engine, end: int, unit: torch.Tensor, plan: dict[int, tuple[int, int]]) -> torch.Tensor:
    """Lower bounds (B, M) over the engine's box of ``sign * h_end[channel, row, column]`` for
    the rows ``unit`` (B, M, 4) = (channel, row, column, sign); sign 0 is an empty row (bound 0).
    The engine's relaxation, slopes, splits and prior bounds as in its dense walk."""
    from lit_cert.bounds.backsub import _back_bn, _back_normalize, _conv_transpose, _dot, fused_affine_bn, relu_relaxation

    layers = engine.layers
    b, m = unit.shape[:2]
    dtype, device = engine.lb.dtype, engine.lb.device
    a = torch.zeros(b, m, engine.shapes[end][1], 1, 1, dtype=dtype, device=device)
    a.view(b, m, -1).scatter_(2, unit[..., 0:1].clamp(min=0), unit[..., 3:4].to(dtype))
    oh, ow = unit[..., 1].clone(), unit[..., 2].clone()
    c = torch.zeros(b, m, dtype=dtype, device=device)
    pos = end  # the coefficients are on the input of layer ``pos``
    while pos > 0:
        layer = layers[pos - 1]
        if isinstance(layer, nn.ReLU):
            l, u = engine.relu_input_bounds(pos - 1)
            lo_s, lo_b, up_s, up_b = relu_relaxation(l, u, engine.rule, engine.lower_slopes.get(pos - 1))
            size = tuple(a.shape[-2:])
            c = c + (a.clamp(max=0) * _gather(up_b, oh, ow, size)).flatten(2).sum(-1)
            if not getattr(engine._rule(pos - 1), "zero_lower_offset", False):
                c = c + (a.clamp(min=0) * _gather(lo_b, oh, ow, size)).flatten(2).sum(-1)
            a = a * torch.where(a >= 0, _gather(lo_s, oh, ow, size), _gather(up_s, oh, ow, size))
            pos -= 1
            continue
        step = _conv_before(layers, pos)
        if step is None:  # BatchNorm not after a convolution, Normalize, Identity: per channel
            if isinstance(layer, Normalize):
                a, c = _back_normalize(layer, a, c, None)
            elif isinstance(layer, nn.modules.batchnorm._BatchNorm):
                a, c = _back_bn(layer, a, c, None)
            pos -= 1
            continue
        conv, fused, below = step
        if below not in plan:  # this convolution's window would cover its map: go on densely
            break
        weight, bias = fused_affine_bn(conv, layer) if fused else (conv.weight, conv.bias)
        if bias is not None:
            c = c + a.sum(dim=(-2, -1)) @ bias
        back = _conv_transpose(a.reshape(b * m, *a.shape[2:]), weight, (None, conv.stride, 0, 0, conv.groups, conv.dilation))
        a = back.reshape(b, m, *back.shape[1:])
        oh, ow = oh * conv.stride[0] - conv.padding[0], ow * conv.stride[1] - conv.padding[1]
        a = a * _inside(oh, ow, tuple(a.shape[-2:]), tuple(engine.shapes[below][-2:]), dtype)
        pos = below
    centre, radius = engine._box()
    if pos > 0:
        a, c_walk, _ = engine._walk(pos, _dense(a, oh, ow, tuple(engine.shapes[pos][-2:])), both=False)
        return c + c_walk + _dot(a, centre) - _dot(a.abs(), radius)
    size = tuple(a.shape[-2:])
    return c + (a * _gather(centre, oh, ow, size)).flatten(2).sum(-1) - (a.abs() * _gather(radius, oh, ow, size)).flatten(2).sum(-1)
