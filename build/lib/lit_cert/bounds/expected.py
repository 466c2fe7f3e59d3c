"""Expected tight bounds (seed 001: "Expected Tight Bounds for Robust Deep Neural Network Training").

For an Affine-ReLU-Affine block the paper replaces the ReLU by the diagonal 0/1 mask
``M = diag(1{u >= 0})`` of the pre-activation upper bound ``u`` and bounds the resulting *linear*
function exactly over the input box (its Eq. 3). For deeper networks (its Sec. 3.3, Eq. 6) the
whole network is linearised this way, block after block:

    G_0 = A_1,   M_i = diag(1{ G_{i-1} x + eps |G_{i-1}| 1 >= 0 }),   G_i = A_{i+1} M_i G_{i-1},

so each mask comes from the upper bound of the linear map propagated *so far* (``masks:
"propagated"``; the paper's construction for fully connected networks). For convolutional
networks the paper takes the masks from IBP upper bounds instead, which is much cheaper
(``masks: "ibp"``). Either way the output bounds are ``G x +- |G| r`` of the final linear map
over the input box (lit_cert's box is the eps-ball clipped to [0, 1]).

The paper proves these bounds tight *in expectation* over Gaussian weights; they are **not
sound**: a point of the box may map outside them. They are for training only and are not in
:data:`lit_cert.bounds.registry.BOUND_METHODS`, so nothing is ever certified with them.

Cost: ``propagated`` back-substitutes every hidden neuron (like CROWN's intermediate bounds; small
fully connected networks), ``ibp`` only the output rows (like CROWN-IBP's final pass).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from lit_cert.bounds.backsub import LinearBounds
from lit_cert.bounds.box import flat_layers

Masks = Literal["propagated", "ibp"]
MASKS = ("propagated", "ibp")


def expected_mask_rule(l: torch.Tensor, u: torch.Tensor, lower_slope=None):
    """The expected-bound "relaxation" of an unstable ReLU: the mask ``1{u >= 0}`` as *both*
    linear functions (slope 1, offset 0), i.e. the neuron is treated as active. NOT sound: it is
    a rule of the back-substitution engine's signature, kept here, away from the sound
    relaxations of :mod:`lit_cert.bounds.backsub`."""
    one = (u >= 0).to(l.dtype)
    zero = torch.zeros_like(l)
    return one, zero, one, zero


# structural facts for the backward walk: one line (slope = mask, offset 0) serves as both
expected_mask_rule.equal_slopes = True
expected_mask_rule.zero_lower_offset = True


def default_masks(net: nn.Module) -> Masks:
    """The paper's choice: propagated masks for fully connected networks, IBP masks when the
    network has convolutions."""
    return "ibp" if any(isinstance(m, nn.Conv2d) for m in flat_layers(net)) else "propagated"


def expected_bounds(net: nn.Module, lb: torch.Tensor, ub: torch.Tensor, spec: torch.Tensor | None = None,
                    masks: Masks = "propagated", need_upper: bool = True):
    """(lower, upper) expected bounds of ``spec @ net(x)`` (the logits if ``spec`` is None) over
    the box -- not sound bounds (module docstring)."""
    if masks not in MASKS:
        raise ValueError(f"masks must be one of {MASKS}, got {masks!r}")
    engine = LinearBounds(net, lb, ub, relaxation=expected_mask_rule, intermediate="same" if masks == "propagated" else "ibp")
    return engine.output_bounds(spec, need_upper=need_upper)


def worst_case_logits(lower: torch.Tensor, upper: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Gowal et al.'s adversarial logits: the lower bound of the true class, upper bounds of the
    others (the ``z`` of seed 001's loss)."""
    return torch.where(torch.nn.functional.one_hot(y, lower.shape[1]).bool(), lower, upper)
