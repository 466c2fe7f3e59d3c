"""Multi-neuron constraints of a network over an input box (PRIMA's groups, MN-BaB's use).

For every ReLU layer, the ``neurons`` unstable neurons that matter most (by the score below) are
grouped ``k`` at a time: windows of ``k`` consecutive ones in index order (neighbours in a feature
map share most of their receptive field, so their inputs move together), overlapping by ``k - 1``. For each group the octagon of its inputs -- their box and the lower and upper bounds
of every pairwise sum and difference, back-substituted by CROWN with the given intermediate
bounds -- is handed to :mod:`lit_cert.bounds.relu_hull`, which returns facets of the exact convex
hull of the group's ReLU graph over it (those that tie neurons together), with offsets
recomputed over the hull's points and rounded up to the engine's precision. The result is one
:class:`~lit_cert.bounds.cuts.ReluCuts` per layer, used as Lagrangian terms of the output bound.

Soundness: the octagon's bounds are sound bounds of the network on the box (CROWN with sound
intermediate bounds), so it contains every reachable input of the group, and the hull's
constraints hold on the graph over it (:mod:`lit_cert.bounds.relu_hull`). They stay valid on any
subdomain of the box (branch and bound).

Score of an unstable neuron: the height of its single-neuron triangle, ``-l u / (u - l)`` (how
much the relaxation can be off at that neuron), times the magnitude of the coefficient the
output bound puts on its output when ``weights`` are given (as BaBSR rates neurons) -- where
the joint relaxation can gain most.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
from torch import nn

from lit_cert.bounds.backsub import LinearBounds
from lit_cert.bounds.cuts import ReluCuts
from lit_cert.bounds.relu_hull import graph_points, hull_cuts, octagon_faces, octagon_offsets, offsets


def neuron_groups(l: torch.Tensor, u: torch.Tensor, k: int, neurons: int, weight: torch.Tensor | None = None) -> torch.Tensor:
    """(B, G, k) flat indices of groups of unstable neurons of one layer (``l, u`` (B, *shape)),
    -1 in a group a sample cannot fill: the ``neurons`` best-scored (module docstring), in index
    order, in windows of ``k``."""
    b = l.shape[0]
    lf, uf = l.reshape(b, -1), u.reshape(b, -1)
    unstable = (lf < 0) & (uf > 0)
    score = (-lf * uf / (uf - lf).clamp(min=1e-12)).clamp(min=0)
    if weight is not None:
        score = score * (weight.reshape(b, -1).abs() + 1e-6)
    score = torch.where(unstable, score, torch.full_like(score, -1.0))
    top = min(neurons, score.shape[1])
    val, idx = score.topk(top, dim=1)
    # windows over the chosen ones in index order: neighbours in a feature map (or channels) share
    # most of their inputs, so their octagon is far tighter than their box (measured: score order
    # gained a third as much on a PGD-trained CNN3's root bounds)
    idx = torch.where(val >= 0, idx, torch.full_like(idx, torch.iinfo(idx.dtype).max)).sort(dim=1).values
    idx = torch.where(idx == torch.iinfo(idx.dtype).max, torch.full_like(idx, -1), idx)
    if top < k:
        return idx.new_zeros((b, 0, k))
    windows = torch.arange(top - k + 1, device=idx.device).unsqueeze(1) + torch.arange(k, device=idx.device)
    groups = idx[:, windows]  # (B, G, k)
    return torch.where((groups < 0).any(-1, keepdim=True), torch.full_like(groups, -1), groups)


def _pair_rows(groups: torch.Tensor, shape: tuple, dtype, device) -> torch.Tensor:
    """Rows (B, G * pairs * 4, *shape): per group and pair ``i < j`` of its neurons, the rows
    ``x_i + x_j``, ``-(x_i + x_j)``, ``x_i - x_j``, ``-(x_i - x_j)`` (a lower bound of each gives
    the sum's and difference's lower and upper bounds)."""
    b, g, k = groups.shape
    pairs = list(itertools.combinations(range(k), 2))
    n = math.prod(shape)
    rows = torch.zeros(b, g, len(pairs), 4, n, dtype=dtype, device=device)
    safe = groups.clamp(min=0)
    for p, (i, j) in enumerate(pairs):
        for r, (si, sj) in enumerate(((1, 1), (-1, -1), (1, -1), (-1, 1))):
            view = rows[:, :, p, r]
            view.scatter_add_(2, safe[:, :, i : i + 1], torch.full((b, g, 1), float(si), dtype=dtype, device=device))
            view.scatter_add_(2, safe[:, :, j : j + 1], torch.full((b, g, 1), float(sj), dtype=dtype, device=device))
    return rows.view(b, g * len(pairs) * 4, *shape)


def multi_neuron_cuts(layers, lb: torch.Tensor, ub: torch.Tensor, pre_bounds: dict[int, tuple[torch.Tensor, torch.Tensor]],
                      k: int = 3, neurons: int = 20, cuts_per_group: int = 24,
                      weights: dict[int, torch.Tensor] | None = None) -> dict[int, ReluCuts]:
    """Joint constraints {ReLU index: :class:`ReluCuts`} for the box ``[lb, ub]`` (B, *in_shape)
    given sound intermediate bounds ``pre_bounds`` {ReLU index: (l, u)} on it (module
    docstring); ``weights`` {ReLU index: (B, *shape)} the output bound's coefficients at each
    ReLU's output, for the score. A layer with fewer than ``k`` unstable neurons gets none."""
    if k < 2:
        raise ValueError(f"multi-neuron groups need k >= 2, got {k}")
    layers = list(layers)
    relu_idx = [i for i, m in enumerate(layers) if isinstance(m, nn.ReLU)]
    engine = LinearBounds(layers, lb, ub, "crown", "same", prior_bounds=pre_bounds, reuse_prior_upto=len(layers))
    faces, _ = octagon_faces(k)
    pairs = list(itertools.combinations(range(k), 2))
    np_dtype = np.float32 if lb.dtype in (torch.float32, torch.float16, torch.bfloat16) else np.float64
    out = {}
    for idx in relu_idx:
        if idx not in pre_bounds:
            continue
        l, u = pre_bounds[idx]
        groups = neuron_groups(l, u, k, neurons, None if weights is None else weights.get(idx))
        if groups.shape[1] == 0 or bool((groups < 0).all()):
            continue
        b, g = groups.shape[:2]
        shape = tuple(l.shape[1:])
        with torch.no_grad():
            low = engine.lower(idx, _pair_rows(groups, shape, lb.dtype, lb.device))
        low = low.detach().view(b, g, len(pairs), 4).double().cpu().numpy()
        sums = np.stack([low[..., 0], -low[..., 1]], -1)  # (B, G, pairs, lo/hi)
        diffs = np.stack([low[..., 2], -low[..., 3]], -1)
        lf = l.detach().reshape(b, -1).double().cpu().numpy()
        uf = u.detach().reshape(b, -1).double().cpu().numpy()
        grp = groups.cpu().numpy()
        index = np.zeros((b, g * cuts_per_group, k), dtype=np.int64)
        wx = np.zeros((b, g * cuts_per_group, k))
        wy = np.zeros((b, g * cuts_per_group, k))
        c = np.zeros((b, g * cuts_per_group))
        for s in range(b):
            for q in range(g):
                members = grp[s, q]
                if (members < 0).any():
                    continue
                lo, hi = lf[s, members], uf[s, members]
                box_sum = np.array([[lo[i] + lo[j], hi[i] + hi[j]] for i, j in pairs])
                box_diff = np.array([[lo[i] - hi[j], hi[i] - lo[j]] for i, j in pairs])
                pair_lo = np.stack([np.maximum(sums[s, q, :, 0], box_sum[:, 0]), np.maximum(diffs[s, q, :, 0], box_diff[:, 0])], 1)
                pair_hi = np.stack([np.minimum(sums[s, q, :, 1], box_sum[:, 1]), np.minimum(diffs[s, q, :, 1], box_diff[:, 1])], 1)
                points = graph_points(faces, octagon_offsets(lo, hi, pair_lo, pair_hi))
                gx, gy, _ = hull_cuts(points, k, cuts_per_group)
                if not len(gx):
                    continue
                gx, gy = gx.astype(np_dtype).astype(np.float64), gy.astype(np_dtype).astype(np.float64)
                gc = offsets(points, gx, gy, np_dtype)
                at = slice(q * cuts_per_group, q * cuts_per_group + len(gc))
                index[s, at], wx[s, at], wy[s, at], c[s, at] = members, gx, gy, gc
        keep = np.abs(wx).sum(-1).any(0) | np.abs(wy).sum(-1).any(0)  # drop padding no sample uses
        if not keep.any():
            continue
        as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a[:, keep])).to(lb.device, lb.dtype)  # noqa: E731
        out[idx] = ReluCuts(torch.from_numpy(np.ascontiguousarray(index[:, keep])).to(lb.device), as_t(wx), as_t(wy), as_t(c))
    return out
