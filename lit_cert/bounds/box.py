"""Interval bound propagation (IBP, the Box domain).

Each layer type has one rule mapping an interval to a sound interval of the layer's output;
:func:`interval_bounds` only walks the layers. Affine layers work on the centre/radius form
``c' = W c + b, r' = |W| r`` (exact for a single affine map), monotone layers (ReLU, pooling,
reshapes) on lower/upper bounds. The margin specification ``C`` is
folded into the final Linear layer (``W' = C W``) before bounding, which is tighter than
subtracting bounds of the logits and equally sound.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from lit_cert.bounds.trace import IntervalTrace
from lit_cert.layers import Normalize, bn_affine_params

Interval = tuple[torch.Tensor, torch.Tensor]
IntervalRule = Callable[[nn.Module, torch.Tensor, torch.Tensor], Interval]
#: the two forms of an interval a rule can take and return
FORMS = ("cr", "lu")


def interval_rule(form: str):
    """Declare the form a layer rule works in: ``"cr"`` (centre, radius -- affine maps, exact
    there) or ``"lu"`` (lower, upper -- monotone maps). The walk converts the interval to that
    form before the rule and keeps the rule's output in it; a rule without a declared form is
    refused, so a caller-supplied rule is never fed the wrong form."""
    if form not in FORMS:
        raise ValueError(f"an interval rule's form is 'cr' or 'lu', got {form!r}")

    def mark(fn):
        fn.form = form
        return fn

    return mark


def flat_layers(net: nn.Module | Iterable[nn.Module]) -> list[nn.Module]:
    """The network as a flat list of leaf layers (nested ``nn.Sequential`` are unrolled).

    This list is the canonical layer indexing used everywhere (e.g. split points)."""
    if isinstance(net, nn.Sequential) or (not isinstance(net, nn.Module)):
        out: list[nn.Module] = []
        for layer in net:
            out.extend(flat_layers(layer) if isinstance(layer, nn.Sequential) else [layer])
        return out
    return [net]


@interval_rule("cr")
def _linear(layer: nn.Linear, c, r) -> Interval:
    return F.linear(c, layer.weight, layer.bias), F.linear(r, layer.weight.abs())


@interval_rule("cr")
def _conv2d(layer: nn.Conv2d, c, r) -> Interval:
    return layer._conv_forward(c, layer.weight, layer.bias), layer._conv_forward(r, layer.weight.abs(), None)


@interval_rule("cr")
def _batchnorm(layer: nn.Module, c, r) -> Interval:
    scale, shift = bn_affine_params(layer)
    shape = (1, -1) + (1,) * (c.dim() - 2)
    scale, shift = scale.view(shape), shift.view(shape)
    return c * scale + shift, r * scale.abs()


@interval_rule("cr")
def _normalize(layer: Normalize, c, r) -> Interval:
    mean, std = layer._shaped(c)
    return (c - mean) / std, r / std


@interval_rule("lu")
def _monotone(layer: nn.Module, lb, ub) -> Interval:
    """Element-wise non-decreasing layers and monotone reshapes: apply to both ends."""
    return layer(lb), layer(ub)


#: affine layers map (centre, radius) to (centre, radius): c' = W c + b, r' = |W| r (exact)
AFFINE_RULES: dict[type, IntervalRule] = {
    nn.Linear: _linear,
    nn.Conv2d: _conv2d,
    nn.modules.batchnorm._BatchNorm: _batchnorm,
    Normalize: _normalize,
}
#: monotone layers map (lower, upper) to (lower, upper)
MONOTONE_RULES: dict[type, IntervalRule] = {
    nn.ReLU: _monotone,
    nn.Flatten: _monotone,
    nn.Identity: _monotone,
    nn.MaxPool2d: _monotone,
    nn.AvgPool2d: _monotone,
    nn.AdaptiveAvgPool2d: _monotone,
}
INTERVAL_RULES = {**AFFINE_RULES, **MONOTONE_RULES}


def rule_for(layer: nn.Module, rules: dict[type, IntervalRule] = INTERVAL_RULES) -> IntervalRule:
    """The rule of the most specific registered class of ``layer`` (follows the MRO)."""
    for cls in type(layer).__mro__:
        if cls in rules:
            return rules[cls]
    supported = ", ".join(sorted(c.__name__ for c in rules))
    raise TypeError(f"no interval rule for layer {type(layer).__name__}; supported: {supported}")


class _Box:
    """An interval kept in whichever form the last layer produced (lower/upper or centre/radius),
    converted only when the next layer needs the other form: chains of affine layers (Conv ->
    BatchNorm) never pay for conversions."""

    def __init__(self, lb, ub):
        self.form, self.a, self.b = "lu", lb, ub

    def as_lu(self) -> Interval:
        if self.form == "cr":
            self.form, self.a, self.b = "lu", self.a - self.b, self.a + self.b
        return self.a, self.b

    def as_cr(self) -> Interval:
        if self.form == "lu":
            self.form, self.a, self.b = "cr", (self.b + self.a) / 2, (self.b - self.a) / 2
        return self.a, self.b

    def record(self, trace: IntervalTrace | None, layer: nn.Module) -> None:
        if trace is not None:
            trace.add(layer, self.form, self.a, self.b)

    def apply(self, layer: nn.Module, rules: dict[type, IntervalRule] = INTERVAL_RULES) -> None:
        rule = rule_for(layer, rules)
        form = getattr(rule, "form", None)
        if form not in FORMS:
            raise TypeError(f"interval rule {getattr(rule, '__name__', rule)!r} for {type(layer).__name__} declares no form: "
                            "decorate it with lit_cert.bounds.box.interval_rule('cr' or 'lu')")
        self.a, self.b = rule(layer, *(self.as_cr() if form == "cr" else self.as_lu()))
        self.form = form


def interval_bounds(
    layers: nn.Module | Iterable[nn.Module],
    lb: torch.Tensor,
    ub: torch.Tensor,
    spec: torch.Tensor | None = None,
    trace: IntervalTrace | None = None,
    rules: dict[type, IntervalRule] = INTERVAL_RULES,
) -> Interval:
    """Propagate the box ``[lb, ub]`` through ``layers``.

    Args:
        spec: optional ``C`` of shape (B, M, K): bounds of ``C f(x)`` are returned instead of
            ``f(x)``. Folded into a final Linear layer when there is one.
        trace: optional :class:`~lit_cert.bounds.trace.IntervalTrace`; receives the interval
            entering every walked layer (the folded last layer included).
        rules: the layer rules (default :data:`INTERVAL_RULES`); training heuristics such as
            SABR's ReLU shrinkage swap in their own ReLU rule here.
    """
    seq = flat_layers(layers)
    fold = spec is not None and len(seq) > 0 and isinstance(seq[-1], nn.Linear)
    body = seq[:-1] if fold else seq
    box = _Box(lb, ub)
    for layer in body:
        box.record(trace, layer)
        box.apply(layer, rules)
    if spec is None:
        return box.as_lu()
    if fold:
        last: nn.Linear = seq[-1]
        center, radius = box.as_cr()
        box.record(trace, last)
        # centre: the spec applied to the logits of the centre (cheap); radius: |C W| r per sample,
        # one matmul for C W and an element-wise product (a batched mat-vec is ~2x slower on CPU)
        b, m, k = spec.shape
        cw = (spec.reshape(b * m, k) @ last.weight).view(b, m, -1)
        c = torch.einsum("bmk,bk->bm", spec, F.linear(center, last.weight, last.bias))
        r = (cw.abs() * radius.unsqueeze(1)).sum(-1)
        return c - r, c + r
    return spec_on_interval(spec, *box.as_lu())


def spec_on_interval(spec: torch.Tensor, lb: torch.Tensor, ub: torch.Tensor) -> Interval:
    """Bounds of ``C z`` for ``z`` in ``[lb, ub]`` (interval arithmetic, no folding)."""
    pos, neg = spec.clamp(min=0), spec.clamp(max=0)
    lo = torch.einsum("bmk,bk->bm", pos, lb) + torch.einsum("bmk,bk->bm", neg, ub)
    hi = torch.einsum("bmk,bk->bm", pos, ub) + torch.einsum("bmk,bk->bm", neg, lb)
    return lo, hi


def margin_bounds_ibp(
    net: nn.Module,
    lb: torch.Tensor,
    ub: torch.Tensor,
    spec: torch.Tensor,
    trace: IntervalTrace | None = None,
    rules: dict[type, IntervalRule] = INTERVAL_RULES,
) -> torch.Tensor:
    """Lower bounds (B, K) of the margins ``C f(x)`` over the box, by IBP."""
    return interval_bounds(net, lb, ub, spec=spec, trace=trace, rules=rules)[0]
