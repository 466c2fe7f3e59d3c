"""Linear-relaxation bounds by back-substitution (CROWN/DeepPoly, DeepZ, hBox, CROWN-IBP).

A linear function ``A · h_k + c`` of some layer's output is pushed backwards through the network
layer by layer until it is a linear function of the input, then minimised over the input box.
Affine layers transform ``A`` exactly (Linear: ``A W``; Conv2d: a transposed convolution, so no
dense matrix is ever built; BatchNorm/Normalize: per-channel scaling). A ReLU with input bounds
``[l, u]`` is replaced by two linear functions ``lo(x) <= relu(x) <= up(x)`` on ``[l, u]``; for a
lower bound, coefficients >= 0 take ``lo`` and negative ones take ``up``.

The relaxations of unstable ReLUs (l < 0 < u; stable ones are exact in all of them):

* ``crown`` (= DeepPoly): upper = chord ``u/(u-l) (x - l)``, lower = ``x`` if ``u >= -l`` else 0.
* ``crown-0``: the same chord, lower line always 0 -- *also for stably active neurons* (seed 002
  Sec. 5.2 and App. K.4: "always use the lower bound x = 0 (even for stable ReLUs)"), which
  makes it continuous in the bounds and very loose.
* ``deepz``: both parallel with slope ``u/(u-l)``: lower ``λx``, upper ``λx - λl`` (equivalent to
  DeepZ's zonotope transformer for these networks).
* ``hbox``: the box ``[0, u]`` (constant functions), exact for stable neurons.

Intermediate (pre-ReLU) bounds come either from the same relaxation (``intermediate="same"``)
or from IBP (``intermediate="ibp"``: CROWN-IBP, only the final specification is
back-substituted).

Sparse intermediate bounds (``sparse=True``, the engine's default and auto_LiRPA's): a neuron
that a cheaper sound bound already proves stable (l >= 0 or u <= 0) is relaxed exactly whatever
its bounds are, so only the other neurons of a layer are back-substituted -- packed per sample
into as many rows as the most unstable sample needs -- and the others keep the cheaper bounds.
The cheaper bound (:meth:`LinearBounds.reference_bounds`) is IBP from the input intersected with
one interval step from the previous ReLU's computed bounds, as auto_LiRPA's reference (2026-12-07;
before, IBP alone: on a random CNN7 at eps 0.01 IBP called 99% of the deeper layers' neurons
unstable, the step 6-10%, and full CROWN went from 61 s to 9 s with the same bounds to 1e-7).
Below, "IBP-stable" means stable under that reference. The result equals
the dense computation (``sparse=False``: every neuron back-substituted with the relaxation's own
bounds, as the paradox authors' code does) whenever every IBP-stable neuron is also stable under
the relaxation's bounds. That always holds for hBox (its bounds lie inside IBP's and its
relaxation does not depend on where in ``[l, u]`` zero lies), and held for every neuron of
randomly initialised networks in our trials, but not always otherwise: CROWN's and DeepZ's bound
of a single neuron can be looser than IBP's (e.g. CROWN's lower line ``x`` over ``[-1, 2]``
against IBP's 0). The sparse bounds are then **different, in either direction** -- both are
sound. A neuron that sparse relaxes exactly makes its own bound tighter, but a *later* unstable
neuron's CROWN relaxation depends on its bounds (the adaptive lower slope, ``x`` if ``u >= -l``
else 0; DeepZ's slope ``u/(u-l)``), so tighter intermediate bounds can change a slope and make
the final margin *looser*: a probe of 508 random margins found 6 looser (by up to 0.115) and
more tighter; tests/test_bound_engine.py constructs both cases.
Training with CROWN/DeepZ therefore defaults to dense (the reference's loss), see
:class:`lit_cert.methods.RelaxationTraining`. The argument needs a sound relaxation, so only the
registered ones use sparsity; a custom rule such as seed 001's expected-bound masks (not sound)
always runs dense.

Other savings of the walk, all exact: lower and upper bounds share one walk when every ReLU's two
lines have equal slopes (DeepZ, hBox: the coefficients do not depend on the side); a BatchNorm is
walked together with the Linear/Conv2d before it (the small weight is scaled, not the large A);
rows shared by the batch (before the first ReLU) keep batch dimension 1; the zero margin row
of the true class is not walked (:func:`lit_cert.bounds.spec.skip_zero_rows`); and the sparse
intermediate rows of a convolution's neurons are walked on their receptive fields, not on whole
feature maps (:mod:`lit_cert.bounds.windows`, equal up to rounding).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from typing import Callable, Iterator, Literal, Sequence

import torch
from torch import nn

from lit_cert.bounds.box import flat_layers, interval_bounds
from lit_cert.bounds.coefficients import Dense, fused_affine_bn, fuses_with_previous
from lit_cert.bounds.cuts import ReluCuts
from lit_cert.bounds.spec import skip_zero_rows
from lit_cert.bounds.trace import IntervalTrace
from lit_cert.bounds.windows import Windows, window_elements, window_plan
from lit_cert.layers import Normalize, bn_affine_params

_DIAGONAL = (Normalize, nn.modules.batchnorm._BatchNorm, nn.ReLU, nn.Flatten, nn.Identity)

#: bytes one walk's coefficient blocks may take (None: no limit); see :func:`coefficient_memory`
_COEFF_BUDGET: contextvars.ContextVar[float | None] = contextvars.ContextVar("coefficient_budget", default=None)
#: A-sized blocks a walk is charged for: about four are alive at once (A, the next A, the ReLU step's
#: sign-split temporaries), and on CPU the allocator keeps about as much again of freed blocks
#: (glibc raises its mmap threshold to the size of a freed block, so later blocks come from the heap
#: and are not returned): with 4, peak RSS rose to 1.3-2.4x the budget on CNN7s, with 8 to 0.9-1.0x
#: at 0.2-0.5 GB, in the same time (benchmarks/bench_coefficient_budget.py, benchmarks/RESULTS.md)
_BLOCKS_PER_WALK = 8
#: the same for a windowed walk (:mod:`lit_cert.bounds.windows`), per window-sized block: each ReLU
#: step gathers three window-sized maps of relaxation lines besides the where/product temporaries;
#: charged 8, peak RSS reached 1.7-2.0x the budget on random CNN7s of width 0.25 at 0.1-0.25 GB,
#: charged 16 0.86-1.02x (benchmarks/bench_coefficient_budget.py, benchmarks/RESULTS.md)
_BLOCKS_PER_WINDOW_WALK = 16


#: per-sample intermediate bounds shared by the engines of one block (see :func:`shared_intermediate_bounds`)
_SHARED_BOUNDS: contextvars.ContextVar[dict | None] = contextvars.ContextVar("shared_intermediate_bounds", default=None)


@contextlib.contextmanager
def shared_intermediate_bounds() -> Iterator[dict]:
    """Within this block, engines on the same network (the same layer objects, unchanged), rule
    and sparsity reuse each other's per-sample intermediate bounds of an input box instead of
    recomputing them: the certification cascade's CROWN, alpha-CROWN and branch-and-bound root
    stages all start from CROWN's intermediate bounds of the same box, which on a CNN7 are nearly
    all of each stage's cost. Only unconstrained engines take part (no splits, prior bounds or
    optimised slopes) and only without autograd, so a reused bound is one the same computation
    made for the same sample's box (batch-mates may change rounding, never soundness). Yields
    the cache ({key: {ReLU index: (l, u)}}, per sample)."""
    cache: dict = {}
    token = _SHARED_BOUNDS.set(cache)
    try:
        yield cache
    finally:
        _SHARED_BOUNDS.reset(token)


def coefficient_budget() -> float | None:
    """Bytes a walk's coefficient blocks may take in the current :func:`coefficient_memory`
    block (None: no budget set)."""
    return _COEFF_BUDGET.get()


@contextlib.contextmanager
def coefficient_memory(gigabytes: float | None) -> Iterator[None]:
    """Within this block, intermediate bounds back-substitute their rows in chunks whose
    coefficient blocks fit ``gigabytes`` (None: all rows at once). Chunking changes no bound
    (each row is walked on its own); it is what lets full CROWN / alpha-CROWN / BaB run on a CNN7,
    whose second convolution alone has 50,176 neurons per sample. The certification cascade
    sets it from ``memory_gb``; training does not (its graph keeps every chunk anyway)."""
    token = _COEFF_BUDGET.set(None if gigabytes is None else float(gigabytes) * 2**30)
    try:
        yield
    finally:
        _COEFF_BUDGET.reset(token)

#: (l, u, lower_slope override or None) -> (lower slope, lower offset, upper slope, upper offset)
#: for the *unstable* neurons (the engine makes stable neurons exact whatever the rule says, except where a rule is marked
#: ``lower_zero_when_active``: then an active neuron's lower line is 0, as the paper's CROWN-0 has it)
UnstableRule = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], tuple]


def _chord(l, u):
    return u / (u - l).clamp(min=1e-12)


def _crown(l, u, lower_slope):
    """CROWN/DeepPoly: upper = chord, lower = x if u >= -l else 0 (adaptive; alpha overrides)."""
    chord = _chord(l, u)
    lo_s = (u >= -l).to(l.dtype) if lower_slope is None else lower_slope
    return lo_s, torch.zeros_like(l), chord, -chord * l


def _deepz(l, u, lower_slope):
    """DeepZ (= CAP, Fast-Lin, Neurify): two parallel lines of slope u/(u-l)."""
    chord = _chord(l, u)
    return chord, torch.zeros_like(l), chord, -chord * l


def _crown0(l, u, lower_slope):
    """CROWN-0 (seed 002, Sec. 5.2, App. K.4): CROWN with the lower line fixed to 0 for every
    neuron, stably active ones included -- no adaptive switch (CROWN's jump at u = -l is gone)
    and no jump where a neuron turns stably active (the chord tends to the identity there), so it
    is continuous (tests/test_relaxations.py, the paradox example) and much looser."""
    chord = _chord(l, u)
    zero = torch.zeros_like(l)
    return (zero if lower_slope is None else lower_slope), zero, chord, -chord * l


def _hbox(l, u, lower_slope):
    """hBox (symbolic intervals): the constants 0 <= relu <= u."""
    zero = torch.zeros_like(l)
    return zero, zero, zero, u.clamp(min=0)


# structural facts the backward walk exploits (exactly; unknown rules take the general path):
# every rule here has a zero lower offset, and DeepZ's two lines share their slope
for _rule in (_crown, _crown0, _deepz, _hbox):
    _rule.zero_lower_offset = True
for _rule in (_deepz, _hbox):  # the lower and upper lines have the same slope
    _rule.equal_slopes = True
_crown0.lower_zero_when_active = True  # the paper's CROWN-0: lower line 0 even for stably active neurons


#: the sound single-neuron ReLU relaxations of the back-substitution engine, by name
RELU_RELAXATIONS: dict[str, UnstableRule] = {"crown": _crown, "crown-0": _crown0, "deepz": _deepz, "hbox": _hbox}
RELAXATIONS = tuple(RELU_RELAXATIONS)
Relaxation = Literal["crown", "crown-0", "deepz", "hbox"]


def resolve_rule(kind: str | UnstableRule) -> UnstableRule:
    """The rule of a relaxation name of :data:`RELU_RELAXATIONS`, or ``kind`` itself if it is a
    rule (the unsound expected-bound mask of :mod:`lit_cert.bounds.expected` is one). Engines
    resolve it once, not at every ReLU."""
    if isinstance(kind, str):
        if kind not in RELU_RELAXATIONS:
            raise ValueError(f"unknown relaxation {kind!r}; choose from {RELAXATIONS}")
        return RELU_RELAXATIONS[kind]
    return kind


def relu_relaxation(l: torch.Tensor, u: torch.Tensor, rule: UnstableRule, lower_slope: torch.Tensor | None = None):
    """(lower slope, lower offset, upper slope, upper offset) with lo <= relu <= up on [l, u].

    ``rule`` gives the lines of unstable neurons (:func:`resolve_rule`); ``lower_slope`` (values
    in [0, 1]) overrides their lower slope (alpha-CROWN). Stable neurons always get the exact
    identity / zero.
    """
    lo_s, lo_b, up_s, up_b = rule(l, u, lower_slope)
    active, dead = l >= 0, u <= 0
    unstable = ~(active | dead)
    one, zero = torch.ones_like(l), torch.zeros_like(l)
    active_lower = zero if getattr(rule, "lower_zero_when_active", False) else one
    lo_s = torch.where(active, active_lower, torch.where(dead, zero, lo_s))
    up_s = torch.where(active, one, torch.where(dead, zero, up_s))
    lo_b = torch.where(unstable, lo_b, zero)
    up_b = torch.where(unstable, up_b, zero)
    return lo_s, lo_b, up_s, up_b


def relu_backward(a, c: torch.Tensor, rule, lo_s, lo_b, up_s, up_b):
    """One ReLU of the backward walk for a *lower* bound: coefficients >= 0 take the lower line,
    negative ones the upper line. ``a`` is a coefficient form (:mod:`lit_cert.bounds.coefficients`:
    whole-map or windowed rows, returned in the same form) or a tensor of whole-map rows (a tensor
    returned). Written to create as few A-sized tensors as possible (they dominate the cost of
    CROWN/DeepZ/hBox, see benchmarks/RESULTS.md): one slope select and one product, offsets as
    batched mat-vec products; DeepZ's equal slopes need no select at all. ``lo_s`` is per sample
    (B, *shape) or, for whole-map rows, per row (B, M, *shape) like ``a``."""
    if isinstance(a, torch.Tensor):
        new, c = relu_backward(Dense(a), c, rule, lo_s, lo_b, up_s, up_b)
        return new.a, c
    x = a.a
    pos = neg = None
    if getattr(rule, "equal_slopes", False):
        new_x = x * a.at(up_s)
    elif x.shape[0] == 1 < lo_s.shape[0]:
        # rows shared by the batch (the intermediate-bound rows before their first ReLU): the
        # sign split is two batch-1 products with the 0/1 sign mask, and ``a+ lo + a- up`` is
        # bitwise ``a * slope`` (one of the two terms is an exact zero) -- where a select
        # broadcast from the batch-1 mask to every sample, and its backward, cost ~3 products
        # each on CPU (benchmarks/RESULTS.md: the paradox CONV's CROWN step 487 -> 362 standard
        # steps). The mask (not clamps) keeps the select's gradient at a == 0: the a >= 0 side.
        keep = (x >= 0).to(x.dtype)
        pos, neg = x * keep, x * (1 - keep)
        new_x = (pos * a.at(lo_s)).addcmul_(neg, a.at(up_s))
    else:
        new_x = x * torch.where(x >= 0, a.at(lo_s), a.at(up_s))
    c = c + a.dot(x.clamp(max=0) if neg is None else neg, up_b)
    if not getattr(rule, "zero_lower_offset", False):
        c = c + a.dot(x.clamp(min=0) if pos is None else pos, lo_b)
    return a.like(new_x), c


def relu_backward_both(a, c_lo: torch.Tensor, c_up: torch.Tensor, rule, lo_s, lo_b, up_s, up_b):
    """One ReLU for the lower *and* upper bound of ``a · h`` at once (``a`` a coefficient form),
    for a rule whose two lines have equal slopes (DeepZ, hBox): the new coefficients are the
    same for both sides, only the offsets differ (the upper bound takes the upper line where
    ``a >= 0``)."""
    x = a.a
    new_x = x * a.at(up_s)
    neg = x.clamp(max=0)
    up_neg = a.dot(neg, up_b)
    up_pos = a.dot(x, up_b) - up_neg
    c_lo, c_up = c_lo + up_neg, c_up + up_pos
    if not getattr(rule, "zero_lower_offset", False):
        lo_neg = a.dot(neg, lo_b)
        c_lo, c_up = c_lo + (a.dot(x, lo_b) - lo_neg), c_up + lo_neg
    return a.like(new_x), c_lo, c_up


# The backward rule of each layer, written once for every coefficient form ``a``
# (:mod:`lit_cert.bounds.coefficients`): (layer, a, offset, the layer's input shape[, weight, bias
# of a fused BatchNorm]) -> (a on the layer's input, offset + the layer's constant term).


def _back_linear(layer: nn.Linear, a, c, in_shape, weight=None, bias=None):
    weight = layer.weight if weight is None else weight
    bias = layer.bias if bias is None else bias
    if bias is not None:
        c = c + a.a @ bias
    return a.linear_back(weight), c


def _back_conv(layer: nn.Conv2d, a, c, in_shape, weight=None, bias=None):
    weight = layer.weight if weight is None else weight
    bias = layer.bias if bias is None else bias
    if bias is not None:
        c = c + a.a.sum(dim=(-2, -1)) @ bias
    return a.conv_back(layer, weight, in_shape), c


def _back_bn(layer, a, c, in_shape):
    scale, shift = bn_affine_params(layer)
    x = a.a
    shape = (1, 1, -1) + (1,) * (x.dim() - 3)
    c = c + _channel_sums(x) @ shift
    return a.like(x * scale.view(shape)), c


def _channel_sums(a: torch.Tensor) -> torch.Tensor:
    """(B, M, C): the coefficients of A summed over the spatial positions of each channel (the
    reduction comes first, so no A-sized product is built for a per-channel offset)."""
    return a.sum(dim=tuple(range(3, a.dim()))) if a.dim() > 3 else a


def _back_normalize(layer: Normalize, a, c, in_shape):
    x = a.a
    mean, std = (layer.mean.flatten(), layer.std.flatten())
    shape = (1, 1, -1) + (1,) * (x.dim() - 3)
    if x.dim() == 3:  # flat features: one statistic per feature or a scalar
        shape = (1, 1, -1)
    inv = 1.0 / std.view(shape)
    c = c - (x * (mean.view(shape) * inv)).expand_as(x).flatten(2).sum(-1)
    return a.like(x * inv), c


def _back_flatten(layer: nn.Flatten, a, c, in_shape):
    return a.flatten_back(in_shape), c


def _back_identity(layer, a, c, in_shape):
    return a, c


BACKWARD_RULES = {
    nn.Linear: _back_linear,
    nn.Conv2d: _back_conv,
    nn.modules.batchnorm._BatchNorm: _back_bn,
    Normalize: _back_normalize,
    nn.Flatten: _back_flatten,
    nn.Identity: _back_identity,
}


def backward_rule(layer):
    """The back-substitution rule of the most specific registered class of ``layer``."""
    for cls in type(layer).__mro__:
        if cls in BACKWARD_RULES:
            return BACKWARD_RULES[cls]
    supported = ", ".join(sorted(c.__name__ for c in BACKWARD_RULES)) + ", ReLU"
    raise TypeError(f"no back-substitution rule for layer {type(layer).__name__}; supported: {supported}")


def window_lower(engine: LinearBounds, end: int, unit: torch.Tensor, plan: dict[int, tuple[int, int]]) -> torch.Tensor:
    """Lower bounds (B, M) over the engine's box of ``sign * h_end[channel, row, column]`` for
    the rows ``unit`` (B, M, 4) = (channel, row, column, sign), each walked on its receptive field
    (:mod:`lit_cert.bounds.windows`) by the engine's one walk, with its relaxation, slopes,
    splits and prior bounds; sign 0 is an empty row (bound 0)."""
    rows = Windows.unit_rows(unit, engine.shapes[end][1], plan, engine.lb.dtype, engine.lb.device)
    return engine.lower(end, rows)


class LinearBounds:
    """Back-substitution engine for one network and one input box.

    Args:
        layers: the network (flattened to leaf layers).
        lb, ub: the input box (B, *in_shape).
        relaxation: a name of :data:`RELU_RELAXATIONS` (``crown``, ``deepz``, ``hbox``) or an
            unstable-neuron rule with its signature (see :func:`relu_relaxation`).
        intermediate: ``"same"`` (pre-ReLU bounds by the same relaxation) or ``"ibp"``.
        lower_slopes: optional dict {layer index of a ReLU: tensor of lower slopes in [0, 1]}
            for unstable neurons (alpha-CROWN); used with ``crown``.
        trace: an :class:`IntervalTrace` of an IBP walk of the same box through the same layers
            that already holds the pre-activation bounds (``intermediate="ibp"`` reuses them
            instead of walking again).
        sparse: back-substitute only the neurons not proven stable by the reference bounds
            (:meth:`reference_bounds`: IBP and the interval step) for intermediate bounds (module
            docstring); ``False`` computes every neuron with the relaxation's own bounds.
            Ignored (dense) for a custom ``relaxation`` rule, whose soundness is not known.
        splits: branch-and-bound split constraints {ReLU layer index: int8 tensor shaped like
            that ReLU's input, +1 = neuron fixed active (z >= 0), -1 = inactive (z <= 0), 0 =
            free}. The bounds are then valid on the *subdomain* where the constraints hold: a
            split neuron's input bounds are clamped to its piece (so its relaxation is exact) and
            every deeper intermediate bound is computed with it. Empty subdomains show as
            ``l > u`` somewhere (:meth:`infeasible`).
        prior_bounds: known sound bounds {ReLU index: (l, u)} on a superset of the domain (a
            parent domain's): every computed bound is intersected with them.
        reuse_prior_upto: ReLU indices ``<=`` this take ``prior_bounds`` as they are (they
            cannot change: the new splits lie at or after it), only clamped by ``splits``.

    Split multipliers (beta-CROWN, Wang et al. 2021): ``split_multipliers`` {ReLU index: beta
    >= 0 shaped like the ReLU input} add ``-sum beta * split * z`` to the *output* bound's
    objective. On the subdomain every ``split * z >= 0``, so for any beta >= 0 this only lowers
    the objective there (weak duality): the bound stays valid on the subdomain, and optimising
    beta brings the split constraints themselves into the bound -- without it the bound uses a
    split only through its neuron's exact relaxation and ignores the half-space it cuts.
    """

    def __init__(
        self,
        layers: nn.Module | Sequence[nn.Module],
        lb: torch.Tensor,
        ub: torch.Tensor,
        relaxation: str | UnstableRule = "crown",
        intermediate: Literal["same", "ibp"] = "same",
        lower_slopes: dict[int, torch.Tensor] | None = None,
        trace: IntervalTrace | None = None,
        sparse: bool = True,
        splits: dict[int, torch.Tensor] | None = None,
        prior_bounds: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = None,
        reuse_prior_upto: int = -1,
    ):
        self.rule = resolve_rule(relaxation)
        if intermediate not in ("same", "ibp"):
            raise ValueError(f"intermediate must be 'same' or 'ibp', got {intermediate!r}")
        self.layers = flat_layers(layers)
        self.lb, self.ub = lb, ub
        self.relaxation, self.intermediate = relaxation, intermediate
        self.lower_slopes = lower_slopes or {}
        # sound relaxations only (module docstring): the registered rules, not a caller's
        self.sparse = sparse and self.rule in RELU_RELAXATIONS.values()
        self.pre_bounds: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # ReLU index -> (l, u)
        self._reference: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = None  # IBP bounds for sparsity
        self.splits = splits or {}
        self.prior_bounds = prior_bounds or {}
        self.reuse_prior_upto = reuse_prior_upto
        self.coefficients: dict[int, torch.Tensor] = {}  # filled by output_bounds(record=True)
        self.split_multipliers: dict[int, torch.Tensor] = {}  # beta (class docstring); output walks only
        self.cuts: dict[int, ReluCuts] = {}  # joint ReLU constraints (class docstring)
        self.cut_multipliers: dict[int, torch.Tensor] = {}  # their gamma >= 0 (B, M, P); output walks only
        self.shapes = self._shapes()
        #: walk the rows of convolutional neurons on their receptive fields (:mod:`lit_cert.bounds.windows`;
        #: the same bounds up to rounding); False walks them on the whole map
        self.windowed = True
        #: decide stability by the interval step from the previous ReLU's computed bounds as well
        #: as by IBP from the input (:meth:`reference_bounds`); False: IBP from the input only
        self.step_reference = True
        if intermediate == "ibp":
            self._ibp_pre_bounds(trace)
            self.pre_bounds = {i: self._constrain(i, *b) for i, b in self.pre_bounds.items()}

    def _shapes(self) -> list[tuple[int, ...]]:
        """Input shape of every layer (batch dimension included), then the output's."""
        return [(self.lb.shape[0], *s) for s in layer_shapes(self.layers, self.lb[:1])]

    def _ibp_pre_bounds(self, trace: IntervalTrace | None) -> None:
        relu_idx = [i for i, m in enumerate(self.layers) if isinstance(m, nn.ReLU)]
        if trace is None or len(trace.relu_inputs) != len(relu_idx):
            trace = IntervalTrace()
            interval_bounds(self.layers, self.lb, self.ub, trace=trace)
        for i, bounds in zip(relu_idx, trace.relu_inputs):
            self.pre_bounds[i] = bounds

    def _constrain(self, idx: int, l: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Intersect with the prior bounds, then clamp split neurons to their piece."""
        if idx in self.prior_bounds:
            pl, pu = self.prior_bounds[idx]
            l, u = torch.maximum(l, pl), torch.minimum(u, pu)
        split = self.splits.get(idx)
        if split is not None:
            l = torch.where(split > 0, l.clamp(min=0), l)
            u = torch.where(split < 0, u.clamp(max=0), u)
        return l, u

    def infeasible(self) -> torch.Tensor:
        """(B,) True where some computed intermediate bound has ``l > u``: the subdomain is empty
        (its split constraints contradict each other or the input box)."""
        out = torch.zeros(self.lb.shape[0], dtype=torch.bool, device=self.lb.device)
        for l, u in self.pre_bounds.values():
            out |= (l > u).flatten(1).any(1)
        return out

    def relu_input_bounds(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        if idx not in self.pre_bounds:
            shared = self._shared_entries()
            if shared is not None and all(idx in e for e in shared):
                l, u = (torch.stack([e[idx][k] for e in shared]) for k in (0, 1))
                self.pre_bounds[idx] = (l, u)
            else:
                self.pre_bounds[idx] = self._constrain(idx, *self._compute_input_bounds(idx))
                if shared is not None:
                    l, u = self.pre_bounds[idx]
                    for j, e in enumerate(shared):
                        e[idx] = (l[j].detach(), u[j].detach())
        return self.pre_bounds[idx]

    def _shared_entries(self) -> list[dict] | None:
        """This engine's per-sample entries of the :func:`shared_intermediate_bounds` cache, or
        None when no cache is active or the engine's bounds are not the plain ones of its box."""
        cache = _SHARED_BOUNDS.get()
        if cache is None or self.intermediate != "same" or self.lower_slopes or self.prior_bounds or torch.is_grad_enabled() \
                or any(bool((s != 0).any()) for s in self.splits.values()):
            return None
        if getattr(self, "_shared", None) is None:
            net = (tuple(id(m) for m in self.layers), tuple(int(p.data_ptr()) for m in self.layers for p in m.parameters(recurse=False)))
            rule = next((k for k, v in RELU_RELAXATIONS.items() if v is self.rule), id(self.rule))  # "crown" or the rule itself
            head = (net, rule, self.sparse, self.lb.dtype, str(self.lb.device))
            lbs, ubs = self.lb.detach().flatten(1).cpu(), self.ub.detach().flatten(1).cpu()
            self._shared = [cache.setdefault((head, lbs[j].numpy().tobytes(), ubs[j].numpy().tobytes()), {})
                            for j in range(self.lb.shape[0])]
        return self._shared

    def _compute_input_bounds(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        if idx <= self.reuse_prior_upto and idx in self.prior_bounds:
            return self.prior_bounds[idx]
        prefix = self.layers[:idx]
        if sum(not isinstance(m, _DIAGONAL) for m in prefix) <= 1 and not any(isinstance(m, nn.ReLU) for m in prefix):
            return interval_bounds(prefix, self.lb, self.ub)  # one affine map before: IBP is exact
        if self.sparse:
            return self.sparse_neuron_bounds(idx, *self.reference_bounds(idx))
        return self.neuron_bounds(idx)

    def reference_bounds(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Sound bounds of the input of ReLU ``idx`` that decide which neurons are stable (their
        relaxation is exact whatever their bounds are, so only the others are back-substituted),
        without gradient: the input's IBP bounds, intersected -- when an earlier ReLU exists --
        with the interval of its already computed (back-substituted) input bounds carried
        through the layers in between. The second is far tighter in deep networks, where IBP
        from the input compounds (auto_LiRPA's reference for sparse intermediate bounds is the
        same interval step from the computed bounds); on a random CNN7 at eps 0.01 it finds
        most of the neurons that IBP calls unstable stable (benchmarks/RESULTS.md)."""
        if self._reference is None:
            trace = IntervalTrace()
            with torch.no_grad():
                interval_bounds(self.layers, self.lb, self.ub, trace=trace)
            relu_idx = [i for i, m in enumerate(self.layers) if isinstance(m, nn.ReLU)]
            self._reference = dict(zip(relu_idx, trace.relu_inputs))
        ibp_l, ibp_u = self._reference[idx]
        before = [i for i in self._reference if i < idx]
        if not before or not self.step_reference:
            return ibp_l, ibp_u
        l, u = self.relu_input_bounds(before[-1])
        with torch.no_grad():
            step_l, step_u = interval_bounds(self.layers[before[-1] : idx], l.detach(), u.detach())
        return torch.maximum(ibp_l, step_l), torch.minimum(ibp_u, step_u)

    def sparse_neuron_bounds(self, idx: int, ref_l: torch.Tensor, ref_u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Bounds of the input of layer ``idx``: back-substituted for the neurons unstable under
        ``ref_l, ref_u`` (packed, per sample, into ``k`` = the largest unstable count rows), the
        reference bounds for the others. A convolution's neurons walk on windows where the plan
        allows (:meth:`_window_plan`), also when some sample has every neuron unstable (a 1x1
        window per row is still far less than the batch-shared whole-map rows)."""
        shape = self.shapes[idx]
        b, n = shape[0], ref_l[0].numel()
        unstable = ((ref_l < 0) & (ref_u > 0)).reshape(b, n)
        counts = unstable.sum(1)
        k = int(counts.max()) if b else 0
        if k == 0:
            return ref_l, ref_u
        plan = self._window_plan(idx)
        if k == n and plan is None:  # every neuron of some sample: the batch-shared unit rows of neuron_bounds
            return self.neuron_bounds(idx)
        order = torch.argsort(unstable.to(torch.int8), dim=1, descending=True, stable=True)[:, :k]  # unstable first
        valid = torch.arange(k, device=order.device).unsqueeze(0) < counts.unsqueeze(1)

        def rows(i: int, j: int) -> torch.Tensor:  # the unit rows of packed positions i..j-1
            out = torch.zeros(b, j - i, n, dtype=self.lb.dtype, device=self.lb.device)
            out.scatter_(2, order[:, i:j].unsqueeze(2), valid[:, i:j].unsqueeze(2).to(out.dtype))
            return out.view(b, j - i, *shape[1:])

        low, up = self._window_bounds(idx, plan, order, valid) if plan is not None else self._bounds_of_rows(idx, rows, k)
        flat_l, flat_u = ref_l.reshape(b, n), ref_u.reshape(b, n)
        new_l = torch.where(valid, low, flat_l.gather(1, order))
        new_u = torch.where(valid, up, flat_u.gather(1, order))
        return flat_l.scatter(1, order, new_l).view(shape), flat_u.scatter(1, order, new_u).view(shape)

    def _window_plan(self, idx: int) -> dict | None:
        """The window plan of the rows of ReLU ``idx``'s input (:func:`lit_cert.bounds.windows.window_plan`),
        or None: windows off (:attr:`windowed`), not a convolutional neuron, or per-row slopes
        on the way (they belong to the rows of another walk)."""
        if not self.windowed or any(s.dim() != len(self.shapes[i]) for i, s in self.lower_slopes.items() if i < idx):
            return None
        return window_plan(self.layers, self.shapes, idx)

    def _window_bounds(self, idx: int, plan: dict, order: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Lower and upper bounds (B, k) of the packed unit rows ``order`` (flat neuron indices of
        the input of layer ``idx``, ``valid`` marks real rows), each walked on its receptive
        field (:func:`window_lower`), in chunks that fit the
        :func:`coefficient_memory` budget."""
        self._bound_layers_below(idx)
        height, width = self.shapes[idx][-2:]
        unit = torch.stack([order // (height * width), order % (height * width) // width, order % width, valid.long()], -1)
        b, k = order.shape
        budget = _COEFF_BUDGET.get()
        per_row = 2 * _BLOCKS_PER_WINDOW_WALK * b * window_elements(plan, self.shapes) * self.lb.element_size()  # a row and its negation
        step = k if budget is None else max(1, int(budget // per_row))
        lows, ups = [], []
        for i in range(0, k, step):
            rows = unit[:, i : i + step]
            low = window_lower(self, idx, torch.cat([rows, rows * torch.tensor([1, 1, 1, -1], device=rows.device)], 1), plan)
            lows.append(low[:, : rows.shape[1]])
            ups.append(-low[:, rows.shape[1] :])
        return torch.cat(lows, 1), torch.cat(ups, 1)

    def neuron_bounds(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Bounds of every neuron of the input of layer ``idx`` (``len(layers)``: the output),
        shaped like it: one back-substitution row per neuron. The rows start batch-independent
        (batch dimension 1) and only become per-sample at the first ReLU."""
        shape = self.shapes[idx]
        n = math.prod(shape[1:])

        def rows(i: int, j: int) -> torch.Tensor:  # unit rows of neurons i..j-1, shared by the batch
            out = torch.zeros(j - i, n, dtype=self.lb.dtype, device=self.lb.device)
            out[torch.arange(j - i, device=out.device), torch.arange(i, j, device=out.device)] = 1
            return out.view(1, j - i, *shape[1:])

        low, up = self._bounds_of_rows(idx, rows, n)
        return low.reshape(shape), up.reshape(shape)

    def _bounds_of_rows(self, idx: int, rows: Callable[[int, int], torch.Tensor], m: int) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`bounds` of ``m`` rows that ``rows(i, j)`` builds a slice at a time: under a
        :func:`coefficient_memory` budget only one chunk of rows exists at once (a CNN7 layer's
        unit rows alone, 50k x 50k floats, would not fit)."""
        step = self.rows_per_walk(idx)
        if step is not None:
            self._bound_layers_below(idx)
        if step is not None and not self._one_walk_for_both(idx):
            step = max(1, step // 2)
        if step is None or step >= m:
            return self.bounds(idx, rows(0, m))
        parts = [self.bounds(idx, rows(i, min(i + step, m))) for i in range(0, m, step)]
        return torch.cat([p[0] for p in parts], 1), torch.cat([p[1] for p in parts], 1)

    def _bound_layers_below(self, idx: int) -> None:
        """Compute the intermediate bounds of every ReLU before layer ``idx`` now, deeper first:
        a chunk's walk must not wait on (and hold its memory during) a chunk of the layer below."""
        for i in range(idx):
            if isinstance(self.layers[i], nn.ReLU):
                self.relu_input_bounds(i)

    def _rule(self, idx: int):
        """The relaxation rule at ReLU ``idx`` (CROWN's general form under optimised slopes)."""
        if idx in self.lower_slopes:  # optimised lower slopes: the lines are no longer parallel
            return _crown
        return self.rule

    def _affine_step(self, idx: int, a, c):
        """Walk the rows ``a`` (a coefficient form) back through layer ``idx`` (an affine one); a
        BatchNorm right after a Linear or Conv2d is walked together with it
        (:func:`fused_affine_bn`). Returns the index of the layer before the ones walked, the
        rows on its output and the offset added."""
        layer = self.layers[idx]
        if fuses_with_previous(self.layers, idx):
            prev = self.layers[idx - 1]
            weight, bias = fused_affine_bn(prev, layer)
            a = a.stepping_to(idx - 1, self.shapes[idx + 1])
            a, c = backward_rule(prev)(prev, a, c, self.shapes[idx - 1], weight, bias)
            return idx - 2, a, c
        a = a.stepping_to(idx, self.shapes[idx + 1])
        a, c = backward_rule(layer)(layer, a, c, self.shapes[idx])
        return idx - 1, a, c

    def _walk(self, end: int, a, both: bool, record: bool = False):
        """Back-substitute ``a · h_end`` to the input: (the rows on the input, lower offset, upper
        offset or None). ``a``: a tensor of whole-map rows or windowed rows
        (:class:`~lit_cert.bounds.windows.Windows`); the rows come back as a coefficient form
        (:mod:`lit_cert.bounds.coefficients`). ``record`` keeps the coefficients met at every
        ReLU output in :attr:`coefficients`."""
        a = a if isinstance(a, Windows) else Dense(a)
        zero = torch.zeros(a.a.shape[:2], dtype=a.a.dtype, device=a.a.device)
        c_lo, c_up = zero, (zero if both else None)
        idx = end - 1
        while idx >= 0:
            layer = self.layers[idx]
            if isinstance(layer, nn.ReLU):
                a = a.stepping_to(idx, self.shapes[idx + 1])
                l, u = self.relu_input_bounds(idx)
                gamma = self.cut_multipliers.get(idx) if end == len(self.layers) and not both else None
                if gamma is not None:  # the joint constraints' Lagrangian terms (class docstring), outputs first
                    a = a.like(self.cuts[idx].add_outputs(a.a, gamma))
                if record:
                    self.coefficients[idx] = a.a.detach()
                slope = self.lower_slopes.get(idx)
                per_row = slope is not None and slope.dim() == len(self.shapes[idx]) + 1  # one slope per row (optimised intermediate bounds)
                lo_s, lo_b, up_s, up_b = relu_relaxation(l, u, self.rule, None if per_row else slope)
                if per_row:
                    lo_s = torch.where(((l < 0) & (u > 0)).unsqueeze(1), slope, lo_s.unsqueeze(1))
                if both:
                    a, c_lo, c_up = relu_backward_both(a, c_lo, c_up, self._rule(idx), lo_s, lo_b, up_s, up_b)
                else:
                    a, c_lo = relu_backward(a, c_lo, self._rule(idx), lo_s, lo_b, up_s, up_b)
                    if gamma is not None:
                        new_a, c_lo = self.cuts[idx].add_inputs(a.a, c_lo, gamma)
                        a = a.like(new_a)
                    if end == len(self.layers) and idx in self.split_multipliers:
                        a = a.like(a.a - (self.split_multipliers[idx] * self.splits[idx]).unsqueeze(1))
                idx -= 1
            else:
                idx, a, delta = self._affine_step(idx, a, zero.new_zeros(()))
                c_lo = c_lo + delta
                c_up = None if c_up is None else c_up + delta
        return a, c_lo, c_up

    def _one_walk_for_both(self, end: int) -> bool:
        """Whether lower and upper bounds can share one walk: every ReLU on the way uses a rule
        with equal slopes, so the coefficients never depend on the side."""
        return all(
            getattr(self._rule(i), "equal_slopes", False) for i in range(end) if isinstance(self.layers[i], nn.ReLU)
        )

    def rows_per_walk(self, end: int) -> int | None:
        """How many rows one walk back from layer ``end`` may carry within the budget of
        :func:`coefficient_memory` (None: no budget set). A row costs, per sample, the widest
        activation it meets on the way, ``_BLOCKS_PER_WALK`` times."""
        budget = _COEFF_BUDGET.get()
        if budget is None:
            return None
        widest = max(math.prod(s[1:]) for s in self.shapes[: end + 1])
        per_row = _BLOCKS_PER_WALK * self.lb.shape[0] * widest * self.lb.element_size()
        return max(1, int(budget // per_row))

    def bounds(self, end: int, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Lower and upper bounds (B, M) over the input box of ``a · h_end`` (shapes as in
        :meth:`lower`): one walk of ``a`` for equal-slope rules, else ``a`` and ``-a``. All rows
        in one walk; :meth:`_bounds_of_rows` chunks them under :func:`coefficient_memory`."""
        m = a.shape[1]
        if not self._one_walk_for_both(end):
            low = self.lower(end, torch.cat([a, -a], dim=1))
            return low[:, :m], -low[:, m:]
        rows, c_lo, c_up = self._walk(end, a, both=True)
        centre, radius = self._box()
        mid, spread = rows.dot(rows.a, centre), rows.dot(rows.a.abs(), radius)
        batch = (self.lb.shape[0], m)
        return (c_lo + mid - spread).expand(batch), (c_up + mid + spread).expand(batch)

    def _box(self) -> tuple[torch.Tensor, torch.Tensor]:
        return (self.ub + self.lb) / 2, (self.ub - self.lb) / 2

    def lower(self, end: int, a: torch.Tensor, record: bool = False) -> torch.Tensor:
        """Lower bound over the input box of ``a · h_end``; ``h_end`` = input of layer ``end``.

        ``a`` has shape (B, M, *shape of h_end) or, for rows shared by every sample,
        (1, M, *shape), or is windowed rows (:class:`~lit_cert.bounds.windows.Windows`, see
        :func:`window_lower`); returns (B, M). ``record`` keeps the coefficients at every ReLU output
        (:attr:`coefficients`, by ReLU index) and at the input (``coefficients[-1]``): the
        minimiser of the bound over the box is ``lb`` where the input coefficient is >= 0, else
        ``ub``."""
        rows, c, _ = self._walk(end, a, both=False, record=record)
        if record:
            self.coefficients[-1] = rows.a.detach()
        centre, radius = self._box()  # min over the box of a x: a . centre - |a| . radius
        return (c + rows.dot(rows.a, centre) - rows.dot(rows.a.abs(), radius)).expand(self.lb.shape[0], rows.a.shape[1])

    def output_bounds(self, spec: torch.Tensor | None = None, need_upper: bool = True, record: bool = False):
        """Bounds of ``spec @ f(x)`` (or of ``f(x)`` itself when ``spec`` is None); ``record``:
        see :meth:`lower` (lower bounds only, every row kept)."""
        out_shape = self.shapes[-1]
        if spec is None:
            k = out_shape[1]
            spec = torch.eye(k, dtype=self.lb.dtype, device=self.lb.device).unsqueeze(0)  # shared by the batch
        if need_upper:
            return self.bounds(len(self.layers), spec)
        if record or self.cut_multipliers:  # multipliers are per row of ``spec``: no row may be dropped
            return self.lower(len(self.layers), spec, record=record), None
        return skip_zero_rows(lambda rows: self.lower(len(self.layers), rows), spec), None


def _is_bn_training(layer: nn.Module) -> bool:
    return isinstance(layer, nn.modules.batchnorm._BatchNorm) and layer.training


def layer_shapes(layers: list[nn.Module], sample: torch.Tensor) -> list[tuple[int, ...]]:
    """Per-sample shape of every layer's input, then of the last layer's output, from one forward
    pass of ``sample`` (one input, batch dimension 1). BatchNorm in training mode is stepped over:
    it keeps the shape, and its running statistics must not move."""
    shapes = []
    with torch.no_grad():
        z = sample
        for layer in layers:
            shapes.append(tuple(z.shape[1:]))
            if not _is_bn_training(layer):
                z = layer(z)
        shapes.append(tuple(z.shape[1:]))
    return shapes


def linear_bounds(
    net: nn.Module,
    lb: torch.Tensor,
    ub: torch.Tensor,
    spec: torch.Tensor | None = None,
    relaxation: str = "crown",
    intermediate: Literal["same", "ibp"] = "same",
    need_upper: bool = True,
    trace: IntervalTrace | None = None,
    sparse: bool = True,
):
    """(lower, upper) bounds of ``spec @ net(x)`` over the box (upper is None if not needed)."""
    return LinearBounds(net, lb, ub, relaxation, intermediate, trace=trace, sparse=sparse).output_bounds(spec, need_upper)
