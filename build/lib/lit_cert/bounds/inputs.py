"""The door of every public bound entry point: a wrong call is an error, never a number.

A lower bound computed from a box whose ends are swapped, from NaN pixels, from a specification
of another shape or through a layer that no rule covers would still come out as numbers -- and a
positive number reads as "certified". :func:`check_inputs` refuses such calls before any work:

* ``lb`` and ``ub`` are floating-point tensors of one shape, dtype and device, on the network's
  device, with a batch dimension, finite, and ordered (``lb <= ub`` everywhere);
* the box fits the network (one forward pass of one sample) and the specification is
  ``(B, M, K)`` with the box's ``B`` and the network's ``K`` outputs, finite, in the box's dtype;
* every layer has a rule in the bound family that will walk it (:func:`check_network`):
  ``nn.Tanh`` or ``nn.MaxPool2d`` under CROWN is an error naming the layer.

The checks that read values (order, finiteness, the forward pass) cost a device sync; training
steps (``purpose="train"``) run only the shape, dtype and device checks.
"""

from __future__ import annotations

import torch
from torch import nn

from lit_cert.errors import UserError


class BoundInputError(UserError):
    """A bound or certification entry point was called with inputs it cannot bound soundly."""


class UnsupportedLayer(BoundInputError, TypeError):
    """The network has a layer that no rule of the requested bound computation covers."""


def _rules(family: str) -> list[dict]:
    from lit_cert.bounds.backsub import BACKWARD_RULES
    from lit_cert.bounds.box import INTERVAL_RULES

    relu = {nn.ReLU: None}
    return {"interval": [INTERVAL_RULES], "mixed": [INTERVAL_RULES, {**BACKWARD_RULES, **relu}]}.get(
        family, [{**BACKWARD_RULES, **relu}])


def check_network(net: nn.Module, family: str = "backsub") -> None:
    """Every layer of ``net`` (flattened) has a rule of ``family`` (``interval``, ``backsub``,
    ``mixed``, ``optimised``, ``lp``), else :class:`UnsupportedLayer` naming the layers."""
    from lit_cert.bounds.box import flat_layers

    if not isinstance(net, nn.Module):
        raise BoundInputError(f"the network must be a torch.nn.Module (a Sequential of layers), got {type(net).__name__}")
    tables = _rules(family)
    bad = []
    for i, layer in enumerate(flat_layers(net)):
        if not all(any(cls in table for cls in type(layer).__mro__) for table in tables):
            bad.append(f"{type(layer).__name__} (layer {i})")
    if bad:
        covered = sorted({c.__name__ for table in tables for c in table})
        raise UnsupportedLayer(f"no {family} bound rule for {', '.join(bad)}: a bound through it would not be sound. "
                               f"Layers with rules: {', '.join(covered)}")


def _device_of(net: nn.Module):
    for p in net.parameters():
        return p.device
    for b in net.buffers():
        return b.device
    return None


def check_box(lb, ub, net: nn.Module | None = None, values: bool = True) -> None:
    """``lb``/``ub`` as described in the module docstring (``values``: also order and finiteness)."""
    if not isinstance(lb, torch.Tensor) or not isinstance(ub, torch.Tensor):
        raise BoundInputError(f"lb and ub must be tensors, got {type(lb).__name__} and {type(ub).__name__}")
    if lb.shape != ub.shape:
        raise BoundInputError(f"lb and ub must have one shape, got {tuple(lb.shape)} and {tuple(ub.shape)}")
    if lb.dim() < 2:
        raise BoundInputError(f"lb and ub need a batch dimension first, (B, ...), got shape {tuple(lb.shape)}")
    if lb.dtype != ub.dtype or not lb.is_floating_point():
        raise BoundInputError(f"lb and ub must share one floating-point dtype, got {lb.dtype} and {ub.dtype}")
    if lb.device != ub.device:
        raise BoundInputError(f"lb and ub must be on one device, got {lb.device} and {ub.device}")
    device = _device_of(net) if net is not None else None
    if device is not None and device != lb.device:
        raise BoundInputError(f"the box is on {lb.device} but the network on {device}: move one of them")
    if values and lb.numel():
        if not (torch.isfinite(lb).all() and torch.isfinite(ub).all()):
            raise BoundInputError("lb and ub must be finite (NaN or infinite inputs give no bound)")
        swapped = lb > ub
        if swapped.any():
            raise BoundInputError(f"lb > ub at {int(swapped.sum())} of {lb.numel()} entries: the box's ends are swapped "
                                  "(an empty box would make any bound look certified)")


def check_spec(spec, lb: torch.Tensor, outputs: int | None) -> None:
    """``spec`` is (B, M, K): the box's batch, M rows, the network's ``outputs`` (K), finite."""
    if not isinstance(spec, torch.Tensor):
        raise BoundInputError(f"spec must be a tensor (B, M, K), got {type(spec).__name__}")
    if spec.dim() != 3 or spec.shape[0] != lb.shape[0] or (outputs is not None and spec.shape[2] != outputs):
        want = f"({lb.shape[0]}, M, {outputs if outputs is not None else 'K'})"
        raise BoundInputError(f"spec must have shape {want} (batch, rows, network outputs), got {tuple(spec.shape)}")
    if spec.device != lb.device:
        raise BoundInputError(f"spec is on {spec.device} but the box on {lb.device}")
    if not spec.is_floating_point():
        raise BoundInputError(f"spec must be floating point, got {spec.dtype}")


def network_outputs(net: nn.Module, lb: torch.Tensor) -> int | None:
    """K, the network's outputs, from one forward pass of one sample; a box of the wrong shape
    for the network is a :class:`BoundInputError` instead of a matmul error deep inside. A
    network with a layer in training mode (BatchNorm would use, or record, batch statistics) is
    not run: K is then the last Linear layer's width (None if there is none)."""
    if any(m.training for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)):
        from lit_cert.bounds.box import flat_layers

        last = [m for m in flat_layers(net) if isinstance(m, nn.Linear)]
        return last[-1].out_features if last else None
    try:
        with torch.no_grad():
            out = net(lb[:1].to(next((p.dtype for p in net.parameters()), lb.dtype)))
    except (RuntimeError, ValueError, IndexError) as err:
        raise BoundInputError(f"the box (shape {tuple(lb.shape[1:])} per sample) does not fit the network: "
                              f"{' '.join(str(err).split())[:160]}") from None
    if out.dim() != 2:
        raise BoundInputError(f"the network must output (B, K) logits, got {tuple(out.shape)}")
    return int(out.shape[1])


def _effective(dtype: torch.dtype) -> torch.dtype:
    """The dtype a certified bound computes in: half precision is raised to float32."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def check_inputs(net: nn.Module, lb, ub, spec, family: str = "backsub", values: bool = True) -> None:
    """All of the above for a call ``(net, lb, ub, spec)``; ``values=False`` (training steps)
    skips the checks that read tensor values or run the network, and the dtype agreement
    (autocast may hand over half-precision tensors there)."""
    check_network(net, family)
    check_box(lb, ub, net, values)
    if values:
        weights = next((p.dtype for p in net.parameters()), None)
        if weights is not None and _effective(lb.dtype) != weights:
            raise BoundInputError(f"the box is {lb.dtype} but the network's weights are {weights}: convert one "
                                  "(net.double() with a float64 box, or the box to the weights' dtype)")
        if isinstance(spec, torch.Tensor) and spec.is_floating_point() and _effective(spec.dtype) != _effective(lb.dtype):
            raise BoundInputError(f"spec is {spec.dtype} but the box {lb.dtype}: give both in one dtype")
    outputs = network_outputs(net, lb) if values and lb.shape[0] else None
    check_spec(spec, lb, outputs)
    if values and spec.numel() and not torch.isfinite(spec).all():
        raise BoundInputError("spec must be finite")
