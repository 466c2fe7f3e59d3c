"""The one table of sound bound methods, by name (like auto_LiRPA's ``compute_bounds(method=)``).

Every consumer -- validation/test certifiers of the training methods, the certification
cascade, the CR-curve and landscape analyses -- looks methods up here, so a name means the same
computation everywhere and a new relaxation is added in one place. Each entry maps
``(net, lb, ub, spec, trace)`` to sound lower bounds (B, M) of the margins ``spec @ net(x)``
over the box ``[lb, ub]``; methods that walk IBP record that walk into ``trace`` when given one.

Every entry runs in full float32 (or float64) precision: autocast, TF32 and reduced float32
matmul precision are switched off while it runs (:mod:`lit_cert.numerics`).

Not in this table, on purpose: the *unsound* training signals (expected tight bounds, SABR's
small box, TAPS' latent PGD), which must never certify anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from lit_cert.bounds.alpha_crown import alpha_crown_margins
from lit_cert.bounds.backsub import LinearBounds
from lit_cert.bounds.box import margin_bounds_ibp
from lit_cert.bounds.trace import IntervalTrace
from lit_cert.errors import ConfigError
from lit_cert.numerics import certified_numerics, check_full_precision_weights, full_precision

MarginBound = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor, "IntervalTrace | None"], torch.Tensor]


@dataclass(frozen=True)
class BoundMethod:
    """A sound bound method: its function, what it is, and how its cost scales."""

    name: str
    fn: MarginBound
    description: str
    #: "ibp-like" (a few forward passes), "margin rows" (back-substitutes only the K margins),
    #: "every neuron" (back-substitutes every hidden neuron: small networks only), "LP per
    #: neuron" (two linear programs per unstable neuron and sample: tiny networks only)
    cost: str

    def __call__(self, net, lb, ub, spec, trace=None) -> torch.Tensor:
        """Sound lower bounds, computed in full precision whatever autocast, TF32 or the float32
        matmul precision say outside (:func:`lit_cert.numerics.certified_numerics`)."""
        check_full_precision_weights(net)
        with certified_numerics():
            lb, ub, spec = full_precision(lb, ub, spec)
            return self.fn(net, lb, ub, spec, trace)


def _linear(relaxation: str, intermediate: str) -> MarginBound:
    def bound(net, lb, ub, spec, trace=None):
        engine = LinearBounds(net, lb, ub, relaxation, intermediate, trace=trace)
        return engine.output_bounds(spec, need_upper=False)[0]

    return bound


def _lp(relaxation: str) -> MarginBound:
    def bound(net, lb, ub, spec, trace=None):
        from lit_cert.bounds.lp import lp_margin_bounds

        return lp_margin_bounds(net, lb, ub, spec, relaxation)

    return bound


def _alpha_crown(net, lb, ub, spec, trace=None):
    return alpha_crown_margins(net, lb, ub, spec)


BOUND_METHODS: dict[str, BoundMethod] = {
    m.name: m
    for m in (
        BoundMethod("ibp", lambda net, lb, ub, spec, trace=None: margin_bounds_ibp(net, lb, ub, spec, trace=trace),
                    "interval bound propagation (Box)", "ibp-like"),
        BoundMethod("crown-ibp", _linear("crown", "ibp"),
                    "CROWN for the margins, IBP intermediate bounds (CROWN-IBP (R))", "margin rows"),
        BoundMethod("crown", _linear("crown", "same"), "CROWN / DeepPoly with CROWN intermediate bounds", "every neuron"),
        BoundMethod("crown-0", _linear("crown-0", "same"), "CROWN with the lower ReLU line fixed to 0 (seed 002 K.4)", "every neuron"),
        BoundMethod("deepz", _linear("deepz", "same"), "DeepZ (parallel ReLU bounds), own intermediate bounds", "every neuron"),
        BoundMethod("hbox", _linear("hbox", "same"), "hybrid box / symbolic intervals, own intermediate bounds", "every neuron"),
        BoundMethod("alpha-crown", _alpha_crown, "CROWN with optimised lower slopes (20 Adam steps)", "every neuron"),
        BoundMethod("triangle", _lp("triangle"), "Triangle LP relaxation (seed 002 Sec. 5.2), LP per unstable neuron", "LP per neuron"),
        BoundMethod("parallelogram", _lp("parallelogram"), "Parallelogram LP relaxation (seed 002 Sec. 5.2)", "LP per neuron"),
    )
}


def bound_method(name: str) -> BoundMethod:
    """The registered method ``name``; a :class:`~lit_cert.errors.ConfigError` listing the
    names otherwise."""
    try:
        return BOUND_METHODS[name]
    except KeyError:
        raise ConfigError(f"unknown bound method {name!r}; available: {', '.join(BOUND_METHODS)}") from None


def compute_bounds(
    net: nn.Module, lb: torch.Tensor, ub: torch.Tensor, spec: torch.Tensor, method: str = "ibp", trace: IntervalTrace | None = None
) -> torch.Tensor:
    """Sound lower bounds (B, M) of ``spec @ net(x)`` over ``[lb, ub]`` by the named method."""
    return bound_method(method)(net, lb, ub, spec, trace)
