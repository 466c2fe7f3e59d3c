"""A deliberately plain back-substitution, independent of lit_cert.bounds.backsub.

The network is read as explicit dense matrices (each affine segment between two ReLUs probed
with the unit vectors, so convolutions, BatchNorm and Normalize need no rule of their own) and
every neuron of every layer is bounded by its own back-substitution, one sample at a time: the
dense algorithm the paradox authors' code and the reference library run. Written with torch ops
so that its loss can be differentiated; meant for float64 and small networks.
"""

from __future__ import annotations

import torch
from torch import nn


def dense_segments(net: nn.Sequential, in_shape: tuple[int, ...]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """[(W, b)] of the affine maps between ReLUs: ``z_0 = W_0 x + b_0``, ``z_j = W_j relu(z_{j-1}) + b_j``.

    Probed differentiably: ``b = f(0)`` and ``W[:, i] = f(e_i) - b`` (exact for affine f)."""
    param = next(net.parameters())
    segments, current, shape = [], [], tuple(in_shape)
    for layer in list(net) + [nn.ReLU()]:
        if not isinstance(layer, nn.ReLU):
            current.append(layer)
            continue
        n = int(torch.tensor(shape).prod())
        out = torch.cat([torch.zeros(1, n), torch.eye(n)]).to(param).view(n + 1, *shape)
        for m in current:
            out = m(out)
        shape, current = tuple(out.shape[1:]), []
        out = out.flatten(1)
        segments.append(((out[1:] - out[:1]).T, out[0]))
    return segments


def relax(l: torch.Tensor, u: torch.Tensor, kind: str):
    """(lower slope, lower offset, upper slope, upper offset) of relu on [l, u]."""
    active, dead = l >= 0, u <= 0
    unstable = ~(active | dead)
    safe = torch.where(unstable, u - l, torch.ones_like(l))
    chord = torch.where(unstable, u / safe, torch.zeros_like(l))
    zero = torch.zeros_like(l)
    if kind == "crown":
        lo_s, lo_b, up_s, up_b = (u >= -l).to(l.dtype), zero, chord, -chord * l
    elif kind == "crown-0":
        lo_s, lo_b, up_s, up_b = zero, zero, chord, -chord * l
    elif kind == "deepz":
        lo_s, lo_b, up_s, up_b = chord, zero, chord, -chord * l
    elif kind == "hbox":
        lo_s, lo_b, up_s, up_b = zero, zero, zero, u.clamp(min=0)
    elif kind == "expected":  # seed 001 Eq. 6: the mask 1{u >= 0} as both lines (not sound)
        mask = (u >= 0).to(l.dtype)
        lo_s, lo_b, up_s, up_b = mask, zero, mask, zero
    else:
        raise ValueError(kind)
    one = torch.ones_like(l)
    pick = lambda stable_value, v: torch.where(active, stable_value, torch.where(dead, zero, v))  # noqa: E731
    active_lower = zero if kind == "crown-0" else one  # seed 002: "x = 0 (even for stable ReLUs)"
    return pick(active_lower, lo_s), torch.where(unstable, lo_b, zero), pick(one, up_s), torch.where(unstable, up_b, zero)


def interval_pre_bounds(segments, lb: torch.Tensor, ub: torch.Tensor):
    """Plain interval arithmetic: [(l, u)] of every z_j for one flat input box."""
    out, l, u = [], lb, ub
    for w, b in segments:
        c, r = (u + l) / 2, (u - l) / 2
        zl, zu = w @ c + b - w.abs() @ r, w @ c + b + w.abs() @ r
        out.append((zl, zu))
        l, u = zl.clamp(min=0), zu.clamp(min=0)
    return out


def lower_bound(segments, pre, j: int, a: torch.Tensor, lb, ub, kind: str) -> torch.Tensor:
    """min over the box of ``a @ z_j`` (rows of ``a``), with the ReLU bounds ``pre``."""
    c = torch.zeros(a.shape[0], dtype=a.dtype)
    for k in range(j, -1, -1):
        w, b = segments[k]
        c = c + a @ b
        a = a @ w
        if k > 0:
            lo_s, lo_b, up_s, up_b = relax(*pre[k - 1], kind)
            pos, neg = a.clamp(min=0), a.clamp(max=0)
            c = c + pos @ lo_b + neg @ up_b
            a = pos * lo_s + neg * up_s
    centre, radius = (ub + lb) / 2, (ub - lb) / 2
    return c + a @ centre - a.abs() @ radius


def dense_bounds(net: nn.Sequential, lb: torch.Tensor, ub: torch.Tensor, spec: torch.Tensor, kind: str,
                 intermediate: str = "same"):
    """Lower bounds (B, M) of ``spec @ net(x)`` over the boxes, plus every sample's ReLU input
    bounds [(l, u)] computed with the same relaxation (``intermediate="same"``) or IBP. ``spec``
    may also be a list of specifications: then a list of lower bounds is returned."""
    specs = spec if isinstance(spec, list) else [spec]
    segments = dense_segments(net, tuple(lb.shape[1:]))
    lows, pres = [[] for _ in specs], []
    for i in range(lb.shape[0]):
        l0, u0 = lb[i].flatten(), ub[i].flatten()
        ibp = interval_pre_bounds(segments, l0, u0)[:-1]
        if intermediate == "ibp":
            pre = ibp
        else:
            pre = ibp[:1]  # one affine map: interval arithmetic is exact (= back-substituting I)
            for j in range(1, len(segments) - 1):
                n = segments[j][0].shape[0]
                eye = torch.eye(n, dtype=l0.dtype)
                pre.append((lower_bound(segments, pre, j, eye, l0, u0, kind), -lower_bound(segments, pre, j, -eye, l0, u0, kind)))
        for out, s in zip(lows, specs):
            out.append(lower_bound(segments, pre, len(segments) - 1, s[i], l0, u0, kind))
        pres.append(pre)
    result = [torch.stack(out) for out in lows]
    return (result if isinstance(spec, list) else result[0]), pres
