"""The one vocabulary of bound methods, used by training, certification and the analyses.

Like auto_LiRPA's ``compute_bounds(method=...)``: every consumer names a bound method here --
the training methods' ``propagate`` (IBP, CROWN-IBP, the relaxations of seed 002, the LP
relaxations), the validation/test certifier, the certification cascade's bound stages, the
CR-curve metric and the landscape analysis -- so a name means one computation everywhere. Each
entry states its options with their defaults (e.g. ``crown``'s ``sparse`` intermediate bounds,
``alpha-crown``'s ``steps``, the LP ``lp_backend``); options are validated once, when a
:class:`BoundSpec` is made, and a spec prints as what it computes (``crown(sparse=False)``).

Each method maps ``(net, lb, ub, spec, trace)`` to lower bounds (B, M) of the margins
``spec @ net(x)`` over the box ``[lb, ub]``; methods that walk IBP record that walk into
``trace`` when given one. Two purposes:

* ``certify`` (the default of :func:`compute_bounds`): the bound of everything reported as
  certified -- run in full float32 precision whatever autocast / TF32 say outside
  (:mod:`lit_cert.numerics`), and refused with an option that makes it unsound;
* ``train``: the same computation as a differentiable training signal, in whatever precision
  the trainer chose (mixed precision then makes it an approximation, never a certificate), and
  with training heuristics allowed (IBP's ``relu_shrinkage``).

Not in this table, on purpose: the *unsound* training signals (expected tight bounds, SABR's
small box, TAPS' latent PGD), which must never certify anything, and CROWN-IBP's loss fusion,
which bounds the cross-entropy rather than the margins (:mod:`lit_cert.bounds.fusion`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import torch
from torch import nn

from lit_cert.bounds.alpha_crown import alpha_crown_margins
from lit_cert.bounds.backsub import RELU_RELAXATIONS, LinearBounds
from lit_cert.bounds.box import INTERVAL_RULES, interval_rule, margin_bounds_ibp
from lit_cert.bounds.inputs import check_inputs
from lit_cert.bounds.trace import IntervalTrace
from lit_cert.errors import ConfigError
from lit_cert.numerics import certified_numerics, check_full_precision_weights, full_precision

Purpose = Literal["certify", "train"]


@dataclass(frozen=True)
class Option:
    """One option of a bound method: its default, a validity check and what it means.
    ``sound=False`` marks a training heuristic: a non-default value makes the result no bound."""

    default: Any
    valid: Callable[[Any], bool]
    doc: str
    sound: bool = True


@dataclass(frozen=True)
class BoundMethod:
    """A bound method: its computation, what it is, how its cost scales, and its options."""

    name: str
    compute: Callable[..., torch.Tensor]  # (net, lb, ub, spec, trace, **options) -> (B, M)
    description: str
    #: "ibp-like" (a few forward passes), "margin rows" (back-substitutes only the K margins),
    #: "every neuron" (back-substitutes every hidden neuron: small networks only), "LP per
    #: neuron" (two linear programs per unstable neuron and sample: tiny networks only)
    cost: str
    #: "interval", "backsub" (a ReLU relaxation with its own intermediate bounds), "mixed"
    #: (CROWN-IBP), "optimised" (alpha-CROWN), "lp" -- what a consumer may rely on
    family: str
    options: dict[str, Option] = field(default_factory=dict)

    def spec(self, **options) -> "BoundSpec":
        """This method with ``options`` checked against its table (unknown or invalid values are
        a :class:`~lit_cert.errors.ConfigError`), the others at their defaults."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            known = ", ".join(self.options) or "none"
            raise ConfigError(f"bound method {self.name!r} has no option {', '.join(unknown)} (its options: {known})")
        full = {k: o.default for k, o in self.options.items()}
        for key, value in options.items():
            if not self.options[key].valid(value):
                raise ConfigError(f"bound method {self.name!r}: {key}={value!r} is invalid ({self.options[key].doc})")
            full[key] = value
        return BoundSpec(self, tuple(sorted(full.items())))

    def __call__(self, net, lb, ub, spec, trace=None, **options) -> torch.Tensor:
        return self.spec(**options).lower(net, lb, ub, spec, trace)


@dataclass(frozen=True)
class BoundSpec:
    """A bound method with its options fixed (validated once): ``lower(...)`` computes it."""

    method: BoundMethod
    items: tuple[tuple[str, Any], ...]

    @property
    def name(self) -> str:
        return self.method.name

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.items)

    @property
    def sound(self) -> bool:
        """False when a training heuristic is switched on: then it certifies nothing."""
        return all(self.method.options[k].sound or v == self.method.options[k].default for k, v in self.items)

    def __str__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.items)
        return f"{self.name}({opts})" if opts else self.name

    def lower(self, net: nn.Module, lb: torch.Tensor, ub: torch.Tensor, spec: torch.Tensor,
              trace: IntervalTrace | None = None, purpose: Purpose = "certify") -> torch.Tensor:
        """Lower bounds (B, M) of ``spec @ net(x)`` over ``[lb, ub]`` (module docstring for
        ``purpose``). The inputs are checked at the door (:mod:`lit_cert.bounds.inputs`): for
        ``certify`` completely, for ``train`` without reading tensor values."""
        if purpose not in ("certify", "train"):
            raise ValueError(f"purpose must be 'certify' or 'train', got {purpose!r}")
        if purpose == "certify":
            check_full_precision_weights(net)
        check_inputs(net, lb, ub, spec, self.method.family, values=purpose == "certify")
        if purpose == "train":
            return self.method.compute(net, lb, ub, spec, trace, **self.options)
        if not self.sound:
            raise ConfigError(f"{self} is a training heuristic, not a bound: it cannot certify")
        check_full_precision_weights(net)
        with certified_numerics():
            lb, ub, spec = full_precision(lb, ub, spec)
            return self.method.compute(net, lb, ub, spec, trace, **self.options)


# --------------------------------------------------------------------------- the computations
def ibp_rules(relu_shrinkage: float | None = None) -> dict:
    """IBP's layer rules; with ``relu_shrinkage`` an unstable neuron's output is ``[0, s * u]``
    instead of ``[0, u]`` (CTBench's training heuristic for SABR/TAPS/STAPS; no sound bound)."""
    if relu_shrinkage is None:
        return INTERVAL_RULES

    @interval_rule("lu")
    def shrinking_relu(layer, lb, ub):
        out_l, out_u = torch.relu(lb), torch.relu(ub)
        unstable = (lb < 0) & (ub > 0)
        return out_l, torch.where(unstable, out_u * relu_shrinkage, out_u)

    return {**INTERVAL_RULES, nn.ReLU: shrinking_relu}


def _ibp(net, lb, ub, spec, trace=None, relu_shrinkage=None):
    return margin_bounds_ibp(net, lb, ub, spec, trace=trace, rules=ibp_rules(relu_shrinkage))


def _crown_ibp(net, lb, ub, spec, trace=None):
    return LinearBounds(net, lb, ub, "crown", "ibp", trace=trace).output_bounds(spec, need_upper=False)[0]


def _backsub(relaxation: str):
    rule = RELU_RELAXATIONS[relaxation]  # resolved once, here

    def bound(net, lb, ub, spec, trace=None, sparse=True):
        return LinearBounds(net, lb, ub, rule, "same", trace=trace, sparse=sparse).output_bounds(spec, need_upper=False)[0]

    return bound


def _alpha_crown(net, lb, ub, spec, trace=None, steps=20, lr=0.1, sparse=True):
    return alpha_crown_margins(net, lb, ub, spec, steps=steps, lr=lr, sparse=sparse)


def _lp(relaxation: str):
    def bound(net, lb, ub, spec, trace=None, lp_backend="auto"):
        from lit_cert.bounds.lp import lp_margin_bounds

        return lp_margin_bounds(net, lb, ub, spec, relaxation, lp_backend)

    return bound


def _is_bool(v) -> bool:
    return isinstance(v, bool)


SPARSE = Option(True, _is_bool, "back-substitute for intermediate bounds only the neurons that neither IBP nor one interval "
                                "step from the previous layer's bounds proves stable (True, auto_LiRPA's "
                                "default; sound, usually tighter, sometimes looser than False) or every neuron with the "
                                "relaxation's own bounds (False, the paradox authors' dense computation)")
BOUND_METHODS: dict[str, BoundMethod] = {
    m.name: m
    for m in (
        BoundMethod("ibp", _ibp, "interval bound propagation (Box)", "ibp-like", "interval",
                    {"relu_shrinkage": Option(None, lambda v: v is None or (isinstance(v, (int, float)) and 0 <= v <= 1),
                                              "None or a factor in [0, 1] for unstable ReLUs' upper bounds (training only)",
                                              sound=False)}),
        BoundMethod("crown-ibp", _crown_ibp, "CROWN for the margins, IBP intermediate bounds (CROWN-IBP (R))", "margin rows",
                    "mixed"),
        BoundMethod("crown", _backsub("crown"), "CROWN / DeepPoly with CROWN intermediate bounds", "every neuron", "backsub",
                    {"sparse": SPARSE}),
        BoundMethod("crown-0", _backsub("crown-0"), "CROWN with the lower ReLU line fixed to 0 (seed 002 K.4)", "every neuron",
                    "backsub", {"sparse": SPARSE}),
        BoundMethod("deepz", _backsub("deepz"), "DeepZ (parallel ReLU bounds), own intermediate bounds", "every neuron", "backsub",
                    {"sparse": SPARSE}),
        BoundMethod("hbox", _backsub("hbox"), "hybrid box / symbolic intervals, own intermediate bounds", "every neuron",
                    "backsub", {"sparse": SPARSE}),
        BoundMethod("alpha-crown", _alpha_crown, "CROWN with optimised lower slopes (Adam steps)", "every neuron", "optimised",
                    {"steps": Option(20, lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "Adam steps >= 0"),
                     "lr": Option(0.1, lambda v: isinstance(v, (int, float)) and v > 0, "Adam learning rate > 0"),
                     "sparse": SPARSE}),
        BoundMethod("triangle", _lp("triangle"), "Triangle LP relaxation (seed 002 Sec. 5.2), LP per unstable neuron",
                    "LP per neuron", "lp", {"lp_backend": Option("auto", lambda v: v in ("auto", "highspy", "scipy"),
                                                                 "auto, highspy or scipy")}),
        BoundMethod("parallelogram", _lp("parallelogram"), "Parallelogram LP relaxation (seed 002 Sec. 5.2)", "LP per neuron",
                    "lp", {"lp_backend": Option("auto", lambda v: v in ("auto", "highspy", "scipy"), "auto, highspy or scipy")}),
    )
}


def names(*families: str) -> tuple[str, ...]:
    """The registered names of these families (all when none is given), in table order."""
    return tuple(n for n, m in BOUND_METHODS.items() if not families or m.family in families)


def bound_method(name: str) -> BoundMethod:
    """The registered method ``name``; a :class:`~lit_cert.errors.ConfigError` listing the
    names otherwise."""
    try:
        return BOUND_METHODS[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(str(name), list(BOUND_METHODS), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(f"unknown bound method {name!r}{hint}; available: {', '.join(BOUND_METHODS)}") from None


def bound_spec(name: str, **options) -> BoundSpec:
    """The method ``name`` with its options validated once."""
    return bound_method(name).spec(**options)


def compute_bounds(
    net: nn.Module, lb: torch.Tensor, ub: torch.Tensor, spec: torch.Tensor, method: str = "ibp",
    trace: IntervalTrace | None = None, purpose: Purpose = "certify", **options,
) -> torch.Tensor:
    """Lower bounds (B, M) of ``spec @ net(x)`` over ``[lb, ub]`` by the named method with
    ``options`` (see each entry of :data:`BOUND_METHODS`)."""
    return bound_spec(method, **options).lower(net, lb, ub, spec, trace, purpose)
