"""What every engine needs to know about the affine layers, in one place.

* :func:`affine_segments` -- the network as dense affine maps between ReLUs,
  ``z_0 = W_0 x + b_0``, ``z_j = W_j relu(z_{j-1}) + b_j``: consecutive affine layers (Normalize,
  Conv2d, Linear, BatchNorm, Flatten) composed exactly by pushing the identity basis through
  them. Used by the LP relaxations (as functions of the parameters) and the MILP (as float64
  arrays, :func:`dense_affine_blocks`).
* :func:`linear_part` -- an affine layer's linear (bias-free) map applied to a stack of vectors
  (COLT's zonotope error terms).
* :func:`silenced_native_output` -- HiGHS prints from C++ (a banner when a solver is created,
  progress lines during MILPs); the LP relaxations and the MILP both silence it here.

BatchNorm in training mode is the map of the *clean batch's* recorded statistics (the convention
of every bound in lit_cert): the probes run under :func:`~lit_cert.layers.frozen_batch_stats`,
so they neither replace those statistics nor move the running ones.
"""

from __future__ import annotations

import copy
import os
import sys
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from lit_cert.bounds.box import flat_layers
from lit_cert.layers import BatchNorm1d, BatchNorm2d, Normalize, bn_affine_params, frozen_batch_stats


def _check_batchnorms(layers: list[nn.Module]) -> None:
    for m in layers:
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training:
            if not isinstance(m, (BatchNorm1d, BatchNorm2d)):
                raise RuntimeError(f"torch.nn.{type(m).__name__} in training mode: use lit_cert.layers.BatchNorm1d/2d "
                                   "or put the network in eval mode before bounding")
            if m.batch_mean is None:
                raise RuntimeError("BatchNorm in training mode has no recorded batch statistics yet: run the clean "
                                   "forward pass first (the bounds use its statistics)")


def affine_segments(net: nn.Module, in_shape: tuple[int, ...]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """[(W, b)] of the affine maps between ReLUs (module docstring), in the parameters' dtype and
    device and differentiable in them; the last entry is the map after the last ReLU."""
    layers = flat_layers(net)
    _check_batchnorms(layers)
    param = next(net.parameters())
    segments, current, shape = [], [], tuple(in_shape)
    with frozen_batch_stats(net):
        for layer in list(layers) + [nn.ReLU()]:
            if not isinstance(layer, nn.ReLU):
                current.append(layer)
                continue
            n = int(np.prod(shape))
            out = torch.cat([torch.zeros(1, n, dtype=param.dtype, device=param.device),
                             torch.eye(n, dtype=param.dtype, device=param.device)]).view(n + 1, *shape)
            for m in current:
                out = m(out)
            shape, current = tuple(out.shape[1:]), []
            out = out.flatten(1)
            segments.append(((out[1:] - out[:1]).T, out[0]))
    return segments


def dense_affine_blocks(net: nn.Module, in_shape: tuple[int, ...]) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`affine_segments` of an eval-mode float64 copy (the network itself is untouched), as
    numpy arrays: ``net = W_L relu(... relu(W_1 x + b_1) ...) + b_L`` on flattened inputs."""
    copy64 = copy.deepcopy(net).eval().double()
    with torch.no_grad():
        return [(w.cpu().numpy().copy(), b.cpu().numpy().copy()) for w, b in affine_segments(copy64, in_shape)]


def linear_part(layer: nn.Module, t: torch.Tensor, lead: int) -> torch.Tensor:
    """The linear part (no bias) of an affine layer applied to ``t``, whose first ``lead`` dims
    are extra leading dimensions before the batch dimension."""
    shape = t.shape
    flat = t.reshape(-1, *shape[lead + 1 :])
    if isinstance(layer, nn.Conv2d):
        out = torch.nn.functional.conv2d(flat, layer.weight, None, layer.stride, layer.padding, layer.dilation, layer.groups)
    elif isinstance(layer, nn.Linear):
        out = flat @ layer.weight.T
    elif isinstance(layer, Normalize):
        out = flat / layer._shaped(flat)[1]
    elif isinstance(layer, nn.Flatten):
        out = flat.flatten(1)
    elif isinstance(layer, nn.modules.batchnorm._BatchNorm):
        scale, _ = bn_affine_params(layer)
        out = flat * scale.view(1, -1, *([1] * (flat.dim() - 2)))
    elif isinstance(layer, nn.Identity):
        out = flat
    else:
        raise TypeError(f"no linear part for layer {type(layer).__name__}")
    return out.reshape(*shape[: lead + 1], *out.shape[1:])


@contextmanager
def silenced_native_output():
    """Redirect the process's stdout and stderr file descriptors to /dev/null for the block
    (native code such as HiGHS writes to them directly, past Python's ``sys.stdout``)."""
    sys.stdout.flush()
    sys.stderr.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    saved = [os.dup(1), os.dup(2)]
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)
