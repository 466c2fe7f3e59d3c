"""Linear-relaxation bounds by back-substitution (CROWN/DeepPoly, DeepZ, hBox, CROWN-IBP).

A linear function ``A · h_k + c`` of some layer's output is pushed backwards through the network
layer by layer until it is a linear function of the input, then minimised over the input box.
Affine layers transform ``A`` exactly (Linear: ``A W``; Conv2d: a transposed convolution, so no
dense matrix is ever built; BatchNorm/Normalize: per-channel scaling). A ReLU with input bounds
``[l, u]`` is replaced by two linear functions ``lo(x) <= relu(x) <= up(x)`` on ``[l, u]``; for a
lower bound, coefficients >= 0 take ``lo`` and negative ones take ``up``.

The relaxations of unstable ReLUs (l < 0 < u; stable ones are exact in all of them):

* ``crown`` (= DeepPoly): upper = chord ``u/(u-l) (x - l)``, lower = ``x`` if ``u >= -l`` else 0.
* ``deepz``: both parallel with slope ``u/(u-l)``: lower ``λx``, upper ``λx - λl`` (equivalent to
  DeepZ's zonotope transformer for these networks).
* ``hbox``: the box ``[0, u]`` (constant functions), exact for stable neurons.

Intermediate (pre-ReLU) bounds come either from the same relaxation (back-substituting every
neuron: precise but costly, fine for small networks) or from IBP (``intermediate="ibp"``:
CROWN-IBP, only the final specification is back-substituted).
"""

from __future__ import annotations

from typing import Callable, Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lit_cert.bounds.box import flat_layers, interval_bounds
from lit_cert.bounds.trace import IntervalTrace
from lit_cert.layers import Normalize, bn_affine_params

_DIAGONAL = (Normalize, nn.modules.batchnorm._BatchNorm, nn.ReLU, nn.Flatten, nn.Identity)

#: (l, u, lower_slope override or None) -> (lower slope, lower offset, upper slope, upper offset)
#: for the *unstable* neurons (the engine makes stable neurons exact whatever the rule says)
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


def _hbox(l, u, lower_slope):
    """hBox (symbolic intervals): the constants 0 <= relu <= u."""
    zero = torch.zeros_like(l)
    return zero, zero, zero, u.clamp(min=0)


#: the sound single-neuron ReLU relaxations of the back-substitution engine, by name
RELU_RELAXATIONS: dict[str, UnstableRule] = {"crown": _crown, "deepz": _deepz, "hbox": _hbox}
RELAXATIONS = tuple(RELU_RELAXATIONS)
Relaxation = Literal["crown", "deepz", "hbox"]


def relu_relaxation(l: torch.Tensor, u: torch.Tensor, kind: str | UnstableRule, lower_slope: torch.Tensor | None = None):
    """(lower slope, lower offset, upper slope, upper offset) with lo <= relu <= up on [l, u].

    ``kind`` is a name of :data:`RELU_RELAXATIONS` or a rule of the same signature (the unsound
    expected-bound mask of :mod:`lit_cert.bounds.expected` is such a rule). ``lower_slope``
    (values in [0, 1]) overrides the lower slope of unstable neurons (alpha-CROWN). Stable
    neurons always get the exact identity / zero.
    """
    if isinstance(kind, str):
        if kind not in RELU_RELAXATIONS:
            raise ValueError(f"unknown relaxation {kind!r}; choose from {RELAXATIONS}")
        rule = RELU_RELAXATIONS[kind]
    else:
        rule = kind
    lo_s, lo_b, up_s, up_b = rule(l, u, lower_slope)
    active, dead = l >= 0, u <= 0
    unstable = ~(active | dead)
    one, zero = torch.ones_like(l), torch.zeros_like(l)
    lo_s = torch.where(active, one, torch.where(dead, zero, lo_s))
    up_s = torch.where(active, one, torch.where(dead, zero, up_s))
    lo_b = torch.where(unstable, lo_b, zero)
    up_b = torch.where(unstable, up_b, zero)
    return lo_s, lo_b, up_s, up_b


def _dot(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Batched inner product of A (B, M, *shape) with v (B, *shape) -> (B, M)."""
    return (a * v.unsqueeze(1)).flatten(2).sum(-1)


def _back_linear(layer: nn.Linear, a, c, in_shape):
    if layer.bias is not None:
        c = c + a @ layer.bias
    return a @ layer.weight, c


def _back_conv(layer: nn.Conv2d, a, c, in_shape):
    b, m = a.shape[:2]
    if layer.bias is not None:
        c = c + (a.sum(dim=(-2, -1)) * layer.bias).sum(-1)
    out_h, out_w = a.shape[-2:]
    k_h, k_w = layer.kernel_size
    (s_h, s_w), (p_h, p_w), (d_h, d_w) = layer.stride, layer.padding, layer.dilation
    op_h = in_shape[-2] - ((out_h - 1) * s_h - 2 * p_h + d_h * (k_h - 1) + 1)
    op_w = in_shape[-1] - ((out_w - 1) * s_w - 2 * p_w + d_w * (k_w - 1) + 1)
    flat = a.reshape(b * m, *a.shape[2:])
    back = F.conv_transpose2d(
        flat, layer.weight, None, layer.stride, layer.padding, (op_h, op_w), layer.groups, layer.dilation
    )
    return back.reshape(b, m, *back.shape[1:]), c


def _back_bn(layer, a, c, in_shape):
    scale, shift = bn_affine_params(layer)
    shape = (1, 1, -1) + (1,) * (a.dim() - 3)
    c = c + (a * shift.view(shape)).flatten(2).sum(-1)
    return a * scale.view(shape), c


def _back_normalize(layer: Normalize, a, c, in_shape):
    mean, std = (layer.mean.flatten(), layer.std.flatten())
    shape = (1, 1, -1) + (1,) * (a.dim() - 3)
    if a.dim() == 3:  # flat features: one statistic per feature or a scalar
        shape = (1, 1, -1)
    inv = 1.0 / std.view(shape)
    c = c - (a * (mean.view(shape) * inv)).expand_as(a).flatten(2).sum(-1)
    return a * inv, c


def _back_flatten(layer: nn.Flatten, a, c, in_shape):
    return a.reshape(*a.shape[:2], *in_shape[1:]), c


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
    ):
        if isinstance(relaxation, str) and relaxation not in RELU_RELAXATIONS:
            raise ValueError(f"unknown relaxation {relaxation!r}; choose from {RELAXATIONS}")
        if intermediate not in ("same", "ibp"):
            raise ValueError(f"intermediate must be 'same' or 'ibp', got {intermediate!r}")
        self.layers = flat_layers(layers)
        self.lb, self.ub = lb, ub
        self.relaxation, self.intermediate = relaxation, intermediate
        self.lower_slopes = lower_slopes or {}
        self.pre_bounds: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # ReLU index -> (l, u)
        self.shapes = self._shapes()
        if intermediate == "ibp":
            self._ibp_pre_bounds(trace)

    def _shapes(self) -> list[tuple[int, ...]]:
        """Input shape of every layer (batch dimension included), from one cheap forward pass."""
        shapes = []
        with torch.no_grad():
            z = self.lb[:1]
            for layer in self.layers:
                shapes.append((self.lb.shape[0], *z.shape[1:]))
                if not _is_bn_training(layer):  # BatchNorm keeps the shape; never touch its statistics
                    z = layer(z)
            shapes.append((self.lb.shape[0], *z.shape[1:]))
        return shapes

    def _ibp_pre_bounds(self, trace: IntervalTrace | None) -> None:
        relu_idx = [i for i, m in enumerate(self.layers) if isinstance(m, nn.ReLU)]
        if trace is None or len(trace.relu_inputs) != len(relu_idx):
            trace = IntervalTrace()
            interval_bounds(self.layers, self.lb, self.ub, trace=trace)
        for i, bounds in zip(relu_idx, trace.relu_inputs):
            self.pre_bounds[i] = bounds

    def relu_input_bounds(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        if idx not in self.pre_bounds:
            prefix = self.layers[:idx]
            if sum(not isinstance(m, _DIAGONAL) for m in prefix) <= 1 and not any(isinstance(m, nn.ReLU) for m in prefix):
                # at most one non-diagonal affine map before the first ReLU: IBP is exact there
                l, u = interval_bounds(prefix, self.lb, self.ub)
            else:
                l, u = self.neuron_bounds(idx)
            self.pre_bounds[idx] = (l, u)
        return self.pre_bounds[idx]

    def neuron_bounds(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Bounds of every neuron of the input of layer ``idx`` (``len(layers)``: the output),
        shaped like it: one back-substitution row per neuron and side."""
        shape = self.shapes[idx]
        n = int(torch.tensor(shape[1:]).prod())
        eye = torch.eye(n, dtype=self.lb.dtype, device=self.lb.device).view(1, n, *shape[1:])
        a = eye.expand(shape[0], *eye.shape[1:])
        low = self.lower(idx, torch.cat([a, -a], dim=1))
        return low[:, :n].view(shape), -low[:, n:].view(shape)

    def lower(self, end: int, a: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """Lower bound over the input box of ``a · h_end + c``; ``h_end`` = input of layer ``end``.

        ``a`` has shape (B, M, *shape of h_end); returns (B, M)."""
        c = torch.zeros(a.shape[:2], dtype=a.dtype, device=a.device) if c is None else c
        for idx in range(end - 1, -1, -1):
            layer = self.layers[idx]
            if isinstance(layer, nn.ReLU):
                l, u = self.relu_input_bounds(idx)
                slopes = self.lower_slopes.get(idx)
                lo_s, lo_b, up_s, up_b = relu_relaxation(l, u, self.relaxation, slopes)
                pos, neg = a.clamp(min=0), a.clamp(max=0)
                c = c + _dot(pos, lo_b) + _dot(neg, up_b)
                a = pos * lo_s.unsqueeze(1) + neg * up_s.unsqueeze(1)
            else:
                a, c = backward_rule(layer)(layer, a, c, self.shapes[idx])
        pos, neg = a.clamp(min=0), a.clamp(max=0)
        return c + _dot(pos, self.lb) + _dot(neg, self.ub)

    def output_bounds(self, spec: torch.Tensor | None = None, need_upper: bool = True):
        """Bounds of ``spec @ f(x)`` (or of ``f(x)`` itself when ``spec`` is None)."""
        out_shape = self.shapes[-1]
        if spec is None:
            k = out_shape[1]
            spec = torch.eye(k, dtype=self.lb.dtype, device=self.lb.device).expand(out_shape[0], k, k)
        m = spec.shape[1]
        a = torch.cat([spec, -spec], dim=1) if need_upper else spec
        low = self.lower(len(self.layers), a)
        if need_upper:
            return low[:, :m], -low[:, m:]
        return low, None


def _is_bn_training(layer: nn.Module) -> bool:
    return isinstance(layer, nn.modules.batchnorm._BatchNorm) and layer.training


def linear_bounds(
    net: nn.Module,
    lb: torch.Tensor,
    ub: torch.Tensor,
    spec: torch.Tensor | None = None,
    relaxation: str = "crown",
    intermediate: Literal["same", "ibp"] = "same",
    need_upper: bool = True,
    trace: IntervalTrace | None = None,
):
    """(lower, upper) bounds of ``spec @ net(x)`` over the box (upper is None if not needed)."""
    return LinearBounds(net, lb, ub, relaxation, intermediate, trace=trace).output_bounds(spec, need_upper)
