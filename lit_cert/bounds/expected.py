"""Expected tight bounds (the ICLR 2020 submission "Expected Tight Bounds for Robust Training").

For an Affine-ReLU-Affine block ``A2 relu(A1 x + b1) + b2`` on the box with centre ``c`` and
radius ``r``, the ReLU is replaced by the diagonal mask ``M = diag(1{upper >= 0})`` (upper from
IBP), giving the interval ``A2 M (A1 c + b1) + b2 ± |A2 M A1| r``. The paper shows such bounds
are tight *in expectation* over random networks; they are **not sound**: a point of the box may
lie outside them. They are for training only and are never used to report certified accuracy
(they are not in :data:`lit_cert.bounds.registry.BOUND_METHODS`, the sound bound methods).

Deeper networks, two modes:

* ``blocks="ara"`` (default, the paper's blockwise propagation): the layers are cut into
  Affine-ReLU-Affine blocks (affine = any run of Linear/Conv/BatchNorm/Normalize/Flatten layers)
  joined by single ReLUs, e.g. ``A R A | R | A R A | R | A``. Each block maps the incoming box to
  the box of its expected bounds; a joining ReLU maps a box to a box as in IBP. The bounds of a
  block's output neurons cost one back-substitution row per neuron (like CROWN's intermediate
  bounds): ~500x a standard step on the paradox FC on a CPU (benchmarks/RESULTS.md), far
  more for wide convolutional feature maps -- GPU territory.
* ``blocks="whole"``: every ReLU is masked at once, which linearises the whole network; only the
  K specification rows are back-substituted, so it costs about as much as CROWN-IBP's final
  pass. Tighter and cheaper, but no longer the paper's construction.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from lit_cert.bounds.backsub import LinearBounds
from lit_cert.bounds.box import flat_layers

Blocks = Literal["ara", "whole"]


def ara_segments(net: nn.Module) -> list[list[nn.Module]]:
    """Cut the flat layers into blocks with at most one ReLU each; the ReLUs *between* blocks
    are returned as one-element segments ``[relu]``."""
    segments: list[list[nn.Module]] = []
    current: list[nn.Module] = []
    has_relu = False
    for layer in flat_layers(net):
        if isinstance(layer, nn.ReLU) and has_relu:
            segments += [current, [layer]]
            current, has_relu = [], False
        else:
            has_relu = has_relu or isinstance(layer, nn.ReLU)
            current.append(layer)
    if current:
        segments.append(current)
    return segments


def expected_mask_rule(l: torch.Tensor, u: torch.Tensor, lower_slope=None):
    """The expected-bound "relaxation" of an unstable ReLU: the mask ``1{u >= 0}`` as *both*
    linear functions (slope 1, offset 0), i.e. the neuron is treated as active. NOT sound: it
    is a rule of the back-substitution engine's signature, kept here, away from the sound
    relaxations of :mod:`lit_cert.bounds.backsub`."""
    one = (u >= 0).to(l.dtype)
    zero = torch.zeros_like(l)
    return one, zero, one, zero


def _engine(layers, lb, ub) -> LinearBounds:
    return LinearBounds(layers, lb, ub, relaxation=expected_mask_rule, intermediate="ibp")


def expected_bounds(net: nn.Module, lb: torch.Tensor, ub: torch.Tensor, spec: torch.Tensor | None = None,
                    blocks: Blocks = "ara", need_upper: bool = True):
    """(lower, upper) expected bounds of ``spec @ net(x)`` over the box -- not sound bounds."""
    if blocks == "whole":
        return _engine(net, lb, ub).output_bounds(spec, need_upper=need_upper)
    if blocks != "ara":
        raise ValueError(f"blocks must be 'ara' or 'whole', got {blocks!r}")
    segments = ara_segments(net)
    for seg in segments[:-1]:
        if len(seg) == 1 and isinstance(seg[0], nn.ReLU):
            lb, ub = lb.clamp(min=0), ub.clamp(min=0)
        else:
            engine = _engine(seg, lb, ub)
            lb, ub = engine.neuron_bounds(len(engine.layers))
    return _engine(segments[-1], lb, ub).output_bounds(spec, need_upper=need_upper)


def expected_margin_lower(net: nn.Module, lb: torch.Tensor, ub: torch.Tensor, spec: torch.Tensor,
                          blocks: Blocks = "ara") -> torch.Tensor:
    """Expected lower bounds of the margins (training signal only, never a certificate)."""
    return expected_bounds(net, lb, ub, spec, blocks, need_upper=False)[0]
