"""Sensitivity of relaxations, measured exactly (paradox paper, seed 002 Sec. 4.2).

The paper's quantity: move the first layer's weights (here weights and bias, as
:mod:`lit_cert.analysis.landscape`) by ``delta`` along a direction. On one *piece* of the
landscape -- every neuron's stability, CROWN's choice of lower line and every back-substitution
coefficient's sign fixed -- each neuron's bounds ``l`` and ``u`` are then rational functions of
``delta``; a relaxation has sensitivity ``N`` when the output neurons' bounds lie in
``R_N = {p/q : deg p, deg q <= N}``. The paper counts the worst case layer by layer
(:func:`paper_sensitivity`, :func:`paper_layer_counts`), every layer of width ``M`` and every
ReLU unstable: Box and hBox 1; DeepZ and CROWN ``2 * 3**B * M**(B + 1)``; CROWN-IBP
``(2 M**(B+2) - M**(B+1) - M) / (M - 1)``, ``B`` the ReLU-linear blocks after the first (one
hidden ReLU layer: ``B = 0``).

The measurement (:class:`ExactBounds`): each relaxation's computation -- the same lines as
:mod:`lit_cert.bounds.backsub` with dense intermediate bounds (``sparse=False``, the paper's),
and interval arithmetic for Box -- replayed in exact arithmetic over the field of rational
functions ``Q(delta)`` (sympy), on a small network with integer weights, the piece being the one
that holds ``delta0``. Every fraction is kept reduced, so the degree read off a bound is the
true degree of that function on the piece, not an artefact of how it was computed. Each replay
is checked against the float64 engine at several ``delta`` (:func:`engine_gap`): what is
measured is the sensitivity of *lit_cert's* relaxations. The measured value is a lower bound
on the worst case the paper counts; where it falls short of the paper's count, the count is
loose (e.g. a sum of ``M`` fractions whose denominators are linear has degree ``M + 1``, not
``2M``), which the analysis reports rather than hides.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

#: the relaxations of seed 002 Sec. 4.2, by their names in lit_cert's bound registry
RELAXATIONS = ("ibp", "hbox", "deepz", "crown", "crown-ibp")


class Tie(ValueError):
    """``delta0`` lies on a boundary between pieces (a bound or coefficient is exactly 0 there,
    or CROWN's ``u = -l``): the piece is not defined; take another network or ``delta0``."""


# --------------------------------------------------------------------------- the paper's count
def paper_layer_counts(relaxation: str, widths: list[int]) -> list[int]:
    """The paper's worst-case N after every affine layer (Sec. 4.2, step by step), for an FC
    network whose affine layer ``k`` reads ``widths[k]`` inputs (``widths[0]`` the input size):
    the first affine layer gives ``P_1``; a ReLU keeps Box's/hBox's polynomials, turns DeepZ's
    and CROWN's ``R_N`` into ``R_3N`` (``lambda in R_2N``) -- ``R_2`` after the first, whose
    inputs are polynomials -- and CROWN-IBP's into ``R_{N+1}`` (``lambda`` from Box bounds is in
    ``R_1``); an affine layer after a ReLU multiplies N by its fan-in for the rational
    relaxations and keeps polynomials' degree."""
    if relaxation not in RELAXATIONS:
        raise ValueError(f"unknown relaxation {relaxation!r}; choose from {RELAXATIONS}")
    n, counts = 1, [1]
    for k, fan_in in enumerate(widths[1:]):
        if relaxation in ("deepz", "crown"):
            n = fan_in * (2 * n if k == 0 else 3 * n)
        elif relaxation == "crown-ibp":
            n = fan_in * (n + 1)
        counts.append(n)
    return counts


def paper_sensitivity(relaxation: str, width: int, hidden: int) -> int:
    """The closed forms of Sec. 4.2 for ``hidden`` ReLU layers of width ``width`` (``B = hidden
    - 1``); equal to the last of :func:`paper_layer_counts` (tested)."""
    m, b = width, hidden - 1
    if relaxation in ("ibp", "hbox"):
        return 1
    if relaxation in ("deepz", "crown"):
        return 2 * 3**b * m ** (b + 1)
    if relaxation == "crown-ibp":
        return 2 + b if m == 1 else (2 * m ** (b + 2) - m ** (b + 1) - m) // (m - 1)
    raise ValueError(f"unknown relaxation {relaxation!r}; choose from {RELAXATIONS}")


# --------------------------------------------------------------------------- the exact replay
def _field():
    from sympy import QQ
    from sympy.polys.fields import field

    return field("delta", QQ)


def _q(x) -> Fraction:
    return Fraction(x) if not isinstance(x, float) else Fraction.from_float(x)


def degree(e) -> int:
    """N of the smallest ``R_N`` holding the (reduced) rational function ``e``."""
    num, den = e.numer, e.denom
    return max(0 if num.is_ground else num.degree(), 0 if den.is_ground else den.degree())


@dataclass
class Network:
    """A fully connected ReLU network in exact numbers: ``weights[k]`` (out x in) and
    ``biases[k]`` of affine layer ``k``, and the first layer's direction ``(dW, db)``."""

    weights: list[list[list[Fraction]]]
    biases: list[list[Fraction]]
    direction: tuple[list[list[Fraction]], list[Fraction]]
    centre: list[Fraction]
    eps: Fraction

    def torch(self, delta: float = 0.0):
        """The float64 ``nn.Sequential`` at ``delta`` and its input box (for the engine)."""
        import torch
        from torch import nn

        mods = []
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            lin = nn.Linear(len(w[0]), len(w)).double()
            wt = torch.tensor([[float(v) for v in row] for row in w], dtype=torch.float64)
            bt = torch.tensor([float(v) for v in b], dtype=torch.float64)
            if k == 0:
                wt = wt + delta * torch.tensor([[float(v) for v in row] for row in self.direction[0]], dtype=torch.float64)
                bt = bt + delta * torch.tensor([float(v) for v in self.direction[1]], dtype=torch.float64)
            with torch.no_grad():
                lin.weight.copy_(wt)
                lin.bias.copy_(bt)
            mods += [lin, nn.ReLU()]
        x = torch.tensor([[float(v) for v in self.centre]], dtype=torch.float64)
        return nn.Sequential(*mods[:-1]), x - float(self.eps), x + float(self.eps)


class ExactBounds:
    """One relaxation's bounds of every neuron of ``net`` as reduced elements of ``Q(delta)`` on
    the piece holding ``delta0`` (module docstring). ``pre[k]`` are the bounds ``(l, u)`` of the
    inputs of ReLU layer ``k``; :meth:`output` the bounds of the output neurons."""

    def __init__(self, net: Network, relaxation: str, delta0: Fraction):
        if relaxation not in RELAXATIONS:
            raise ValueError(f"unknown relaxation {relaxation!r}; choose from {RELAXATIONS}")
        self.K, self.d = _field()
        self.delta0, self.relaxation = delta0, relaxation
        K, d = self.K, self.d
        (dw, db) = net.direction
        self.W = [[[K(v) for v in row] for row in w] for w in net.weights]
        self.b = [[K(v) for v in b] for b in net.biases]
        self.W[0] = [[K(v) + d * K(g) for v, g in zip(row, grow)] for row, grow in zip(net.weights[0], dw)]
        self.b[0] = [K(v) + d * K(g) for v, g in zip(net.biases[0], db)]
        self.x0, self.eps = [K(v) for v in net.centre], K(net.eps)
        self.pre: list[tuple[list, list]] = []
        self.lines: list[list] = []  # per ReLU layer, per neuron: ((lower slope, offset), (upper slope, offset))
        for k in range(len(self.W) - 1):
            if relaxation in ("ibp", "crown-ibp"):
                l, u = self._interval(k)
            else:
                l, u = self._backsub_bounds(k)
            self.pre.append((l, u))
            if relaxation != "ibp":  # Box propagates intervals, no lines
                self.lines.append([self._lines(lj, uj) for lj, uj in zip(l, u)])

    # values at delta0 decide the piece
    def value(self, e) -> Fraction:
        v = e.numer(self.delta0) / e.denom(self.delta0)
        return Fraction(int(v.numerator), int(v.denominator))

    def _sign(self, e) -> int:
        v = self.value(e)
        if v == 0 and e != 0:
            raise Tie("a coefficient or bound is 0 at delta0 but not on the piece")
        return (v > 0) - (v < 0)

    def _lines(self, l, u):
        zero, one = self.K(0), self.K(1)
        lv, uv = self.value(l), self.value(u)
        if lv == 0 or uv == 0:
            raise Tie("a neuron's bound is 0 at delta0")
        if lv > 0:
            return (one, zero), (one, zero)
        if uv < 0:
            return (zero, zero), (zero, zero)
        if self.relaxation == "hbox":
            return (zero, zero), (zero, u)
        chord = u / (u - l)
        if self.relaxation == "deepz":
            return (chord, zero), (chord, -chord * l)
        if uv == -lv:
            raise Tie("u = -l at delta0: CROWN's lower line switches there")
        return ((one if uv > -lv else zero), zero), (chord, -chord * l)  # CROWN, CROWN-IBP

    def _interval(self, k: int):
        """Box bounds of the inputs of ReLU layer ``k`` (interval arithmetic)."""
        if k == 0:
            hl = [x - self.eps for x in self.x0]
            hu = [x + self.eps for x in self.x0]
        else:
            pl, pu = self.pre[k - 1]
            hl = [lj if self.value(lj) > 0 else self.K(0) for lj in pl]
            hu = [uj if self.value(uj) > 0 else self.K(0) for uj in pu]
            for e in (*pl, *pu):
                if self.value(e) == 0:
                    raise Tie("a Box bound is 0 at delta0")
        ls, us = [], []
        for row, bias in zip(self.W[k], self.b[k]):
            lo = hi = bias
            for w, a, c in zip(row, hl, hu):
                s = self._sign(w)
                lo, hi = (lo + w * a, hi + w * c) if s > 0 else (lo + w * c, hi + w * a)
            ls.append(lo)
            us.append(hi)
        return ls, us

    def lower(self, k: int, c: list, const):
        """Lower bound of ``c . h_k + const`` (``h_k`` the output of ReLU layer ``k - 1``, ``h_0``
        the input) by back-substitution with this relaxation's lines."""
        zero = self.K(0)
        while k >= 1:
            new = []
            for cj, ((slo, blo), (sup, bup)) in zip(c, self.lines[k - 1]):
                if cj == 0:
                    new.append(zero)
                    continue
                slope, off = (slo, blo) if self._sign(cj) > 0 else (sup, bup)
                new.append(cj * slope)
                const = const + cj * off
            w, b = self.W[k - 1], self.b[k - 1]
            const = const + sum((nj * bj for nj, bj in zip(new, b)), zero)
            c = [sum((nj * w[j][t] for j, nj in enumerate(new)), zero) for t in range(len(w[0]))]
            k -= 1
        for ct, xt in zip(c, self.x0):
            if ct != 0:
                const = const + ct * xt - self._sign(ct) * ct * self.eps
        return const

    def _backsub_bounds(self, k: int):
        """Bounds of the inputs of ReLU layer ``k`` (= affine layer ``k``) with this relaxation."""
        ls, us = [], []
        for row, bias in zip(self.W[k], self.b[k]):
            ls.append(self.lower(k, row, bias))
            us.append(-self.lower(k, [-w for w in row], -bias))
        return ls, us

    def output(self) -> tuple[list, list]:
        """Bounds ``(l, u)`` of the output neurons: interval arithmetic for Box, else the
        relaxation's back-substitution (CROWN-IBP: CROWN lines on Box bounds)."""
        k = len(self.W) - 1
        if self.relaxation == "ibp":
            self.pre.append(self._interval(k))
            return self.pre.pop()
        return self._backsub_bounds(k)


# --------------------------------------------------------------------------- networks, checks
def random_network(width: int, hidden: int, seed: int, outputs: int = 2) -> Network:
    """An FC network with ``width`` inputs and ``hidden`` ReLU layers of ``width`` neurons (the
    paper's "all layers of size M"), integer weights in [-4, 4] (as App. F's), integer biases in
    [-1, 1], the input box centred at 0 with eps in [1, 3] on a 1/128 grid -- small biases and a
    wide box make most ReLUs unstable, the case the paper counts -- and a random integer direction
    in [-4, 4] for the first layer's weights and bias (any direction off a measure-zero set gives
    the same degrees; the gradient's would need rounding to stay exact)."""
    rng = np.random.default_rng(seed)
    sizes = [width] * (hidden + 1) + [outputs]
    ints = lambda lo, hi, *shape: rng.integers(lo, hi + 1, size=shape).tolist()  # noqa: E731
    weights = [[[Fraction(v) for v in row] for row in ints(-4, 4, o, i)] for i, o in zip(sizes[:-1], sizes[1:])]
    biases = [[Fraction(v) for v in ints(-1, 1, o)] for o in sizes[1:]]
    direction = ([[Fraction(v) for v in row] for row in ints(-4, 4, sizes[1], sizes[0])], [Fraction(v) for v in ints(-4, 4, sizes[1])])
    return Network(weights, biases, direction, [Fraction(0)] * width, Fraction(int(rng.integers(128, 385)), 128))


def engine_gap(net: Network, bounds: ExactBounds, deltas) -> float:
    """Largest relative gap between the replay's output lower bounds and lit_cert's float64
    bound engine (registry method of the same name, dense intermediate bounds) at each
    ``delta``; ~1e-15 when the replay is the engine's function on the piece."""
    import torch

    from lit_cert.bounds.registry import compute_bounds

    lows, _ = bounds.output()
    gap = 0.0
    for delta in deltas:
        torch_net, lb, ub = net.torch(float(delta))
        spec = torch.eye(len(lows), dtype=torch.float64).unsqueeze(0)
        options = {"sparse": False} if bounds.relaxation in ("crown", "deepz", "hbox") else {}
        got = compute_bounds(torch_net, lb, ub, spec, bounds.relaxation, **options)[0].tolist()
        q = _q(delta)
        for e, g in zip(lows, got):
            exact = float(e.numer(q) / e.denom(q))
            gap = max(gap, abs(exact - g) / (1.0 + abs(exact)))
    return gap


def unstable_count(bounds: ExactBounds) -> int:
    return sum(bounds.value(l) < 0 < bounds.value(u) for l, u in (p for ls, us in bounds.pre for p in zip(ls, us)))


def sample(width: int, hidden: int, seed: int, relaxations=RELAXATIONS, delta0: Fraction = Fraction(1, 257),
           tries: int = 200) -> tuple[int, Network, dict]:
    """The first network from ``seed`` on (seeds ``seed``, ``seed + 10**6``, ...) on which every
    ReLU is unstable under every relaxation -- the paper's worst case -- and no bound ties at
    ``delta0``; with its :class:`ExactBounds` per relaxation. ``None`` after ``tries``."""
    for t in range(tries):
        s = seed + t * 10**6
        net = random_network(width, hidden, s)
        bounds = {}
        for r in sorted(relaxations, key=lambda r: r != "crown"):  # CROWN's are the tightest: the likeliest to fail
            try:
                b = ExactBounds(net, r, delta0)
            except Tie:
                break
            if unstable_count(b) != width * hidden:
                break
            bounds[r] = b
        if len(bounds) == len(relaxations):
            return s, net, {r: bounds[r] for r in relaxations}
    return None


def measure(width: int, hidden: int, seed: int, relaxations=RELAXATIONS, delta0: Fraction = Fraction(1, 257),
            check: bool = True, tries: int = 200) -> list[dict]:
    """One worst-case network's rows (:func:`sample`): per relaxation and per affine layer, the
    largest degree of any of its neurons' bounds (the output layer's is the measured
    sensitivity), the paper's count for that layer, and the gap to the engine. Empty when no
    network with every ReLU unstable was found in ``tries``."""
    found = sample(width, hidden, seed, relaxations, delta0, tries)
    if found is None:
        return []
    used, net, exact = found
    widths = [width] * (hidden + 1)
    rows = []
    for relaxation in relaxations:
        b = exact[relaxation]
        out = b.output()
        layers = [*b.pre, out]
        gap = engine_gap(net, b, [delta0, delta0 + Fraction(1, 10**6), delta0 - Fraction(1, 10**6)]) if check else float("nan")
        counts = paper_layer_counts(relaxation, widths)
        for k, (ls, us) in enumerate(layers):
            rows.append({"relaxation": relaxation, "width": width, "hidden": hidden, "seed": used, "layer": k + 1,
                         "output": k == len(layers) - 1, "measured_degree": max(degree(e) for e in (*ls, *us)),
                         "paper_degree": counts[k], "unstable": unstable_count(b), "relus": width * hidden,
                         "engine_gap": gap})
    return rows
