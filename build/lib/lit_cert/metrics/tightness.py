"""Propagation tightness (Mao et al., seed 000, Def. 3.6), computed locally for ReLU networks.

At an input x the network is linear on its activation region: ``f(x') = J x' + b`` with
``J = W_L D_{L-1} W_{L-1} ... D_1 W_1`` (``D_k`` the 0/1 ReLU pattern at x; BatchNorm and
normalisation are diagonal affine maps). For an input box of radius ``r`` the optimal output box
has radius ``|J| r`` while layer-wise propagation with the same pattern gives
``|W_L| D |W_{L-1}| ... D |W_1| r``; tightness is their ratio per output (in (0, 1], 1 = box
propagation loses nothing), averaged over outputs and samples.

What the outputs and the radius are -- :data:`TIGHTNESS_MODES`:

* ``margins`` (default; as the authors measure it, CTBench's ``compute_tightness``): the outputs
  are the K - 1 margins ``z_y - z_i`` with the specification folded into the last Linear layer
  (``|C_i W_L|`` in the layer-wise product, i.e. IBP with last-layer elision), and ``r`` is the
  radius of the eps-box clipped to [0, 1] (``(min(x + eps, 1) - max(x - eps, 0)) / 2`` per pixel).
  Needs labels and eps.
* ``logits``: the K logits with an all-ones radius (Def. 3.6 read literally; what lit_cert
  reported before).

Both terms are computed with passes through the network (one reverse-mode pass per output row
of ``J`` for the numerator, one forward pass of absolute weights for the denominator): no
Jacobian is materialised per layer. A ratio 0/0 (no input moves the output) counts as 1.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from lit_cert.bounds.box import flat_layers, rule_for
from lit_cert.bounds.region import linf_box
from lit_cert.metrics.accuracy import RateMetric

TightnessMode = Literal["margins", "logits"]
TIGHTNESS_MODES = ("margins", "logits")


def margin_rows(y: torch.Tensor, num_classes: int, dtype=torch.float32) -> torch.Tensor:
    """(B, K-1, K) rows ``e_y - e_i`` for the classes ``i != y`` (CTBench's ``construct_C``)."""
    eye = torch.eye(num_classes, dtype=dtype, device=y.device)
    rows = eye[y].unsqueeze(1) - eye.unsqueeze(0)  # (B, K, K) with a zero row at y
    keep = ~torch.eye(num_classes, dtype=torch.bool, device=y.device)[y]  # (B, K)
    return rows[keep].view(len(y), num_classes - 1, num_classes)


def local_tightness(net: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, eps: float | None = None,
                    mode: TightnessMode = "margins") -> torch.Tensor:
    """(B, M) ratios ``|C J| r / (|C W_L| D ... |W_1|) r`` at the inputs ``x`` (module docstring):
    ``M = K - 1`` margins in ``margins`` mode (needs ``y`` and ``eps``), ``M = K`` logits otherwise."""
    if mode not in TIGHTNESS_MODES:
        raise ValueError(f"tightness mode must be one of {TIGHTNESS_MODES}, got {mode!r}")
    layers = flat_layers(net)
    if mode == "margins":
        if y is None or eps is None:
            raise ValueError("margin tightness needs the labels y and the radius eps")
        lb, ub = linf_box(x, eps if eps > 0 else 1e-6)  # the ratio is scale-free: eps -> 0 is its limit
        radius_in = ((ub - lb) / 2).detach()
    else:
        radius_in = torch.ones_like(x)
    masks = {}
    # numerator: one recorded forward pass (which also gives the activation pattern), then one
    # reverse-mode pass per output row; Lightning evaluates under inference mode, hence the switches
    with torch.inference_mode(False), torch.enable_grad():
        xx = x.detach().clone().requires_grad_(True)
        z = xx
        for i, layer in enumerate(layers):
            if isinstance(layer, nn.ReLU):
                masks[i] = (z > 0).detach().to(z.dtype)
            z = layer(z)
        k = z.shape[1]
        spec = margin_rows(y, k, z.dtype) if mode == "margins" else torch.eye(k, dtype=z.dtype, device=z.device).expand(len(z), k, k)
        outputs = torch.einsum("bmk,bk->bm", spec, z)
        rows = [(torch.autograd.grad(outputs[:, m].sum(), xx, retain_graph=m < outputs.shape[1] - 1)[0].abs() * radius_in)
                .flatten(1).sum(1) for m in range(outputs.shape[1])]
    numerator = torch.stack(rows, 1).detach()
    with torch.no_grad():
        # denominator: the radius through |W| layer by layer with the same pattern; the last
        # Linear layer is folded with the specification (|C W_L|)
        fold = isinstance(layers[-1], nn.Linear)
        radius = radius_in.to(numerator.dtype)
        for i, layer in enumerate(layers[:-1] if fold else layers):
            if isinstance(layer, nn.ReLU):
                radius = radius * masks[i]
            elif getattr(rule_for(layer), "form", None) == "cr":  # an affine layer: r' = |W| r
                _, radius = rule_for(layer)(layer, torch.zeros_like(radius), radius)
            else:
                radius = layer(radius)
        if fold:
            b, m, kk = spec.shape
            folded = (spec.reshape(b * m, kk) @ layers[-1].weight).view(b, m, -1).abs()
            denominator = (folded * radius.unsqueeze(1)).sum(-1)
        else:
            denominator = torch.einsum("bmk,bk->bm", spec.abs(), radius)
    dead = denominator <= 0
    return torch.where(dead, torch.ones_like(numerator), numerator / denominator.masked_fill(dead, 1.0))


class PropagationTightness(RateMetric):
    """Mean local propagation tightness over outputs and samples: ``update(net, x, y)``.

    Args:
        eps: the radius of the input box (``margins`` mode: clipped to [0, 1]).
        mode: ``margins`` (default, the authors' measurement) or ``logits`` (module docstring).

    A mean of ratios in (0, 1]: the rate metric's summed states hold the sum and the count."""

    def __init__(self, eps: float | None = None, mode: TightnessMode = "margins", **kwargs):
        super().__init__(**kwargs)
        if mode not in TIGHTNESS_MODES:
            raise ValueError(f"tightness mode must be one of {TIGHTNESS_MODES}, got {mode!r}")
        if mode == "margins" and eps is None:
            raise ValueError("margin tightness needs eps (the radius of the clipped input box)")
        self.eps, self.mode = eps, mode

    def update_from_net(self, net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
        self.update(net, x, y)

    def update(self, net: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> None:  # type: ignore[override]
        ratios = local_tightness(net, x, y, self.eps, self.mode)
        self.hits += ratios.sum().to(self.hits.dtype)
        self.total += ratios.numel()
