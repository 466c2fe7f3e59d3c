"""Branching heuristics of branch and bound: which unstable ReLU an open domain splits next.

A heuristic is a class with ``choose(engine, splits, context) -> (D, 2)``: per domain, the ReLU
(its position in ``context.relu_idx``) and the flat neuron to split, -1 where every neuron is
stable or split already. :data:`BRANCHING` names them for ``BaBConfig.branching``; a new
heuristic is one class and one entry.

* :class:`BaBSR` -- the best intercept score (Bunel et al., JMLR 2020): the bound's coefficient
  ``A`` at the ReLU's output times the offset of its upper relaxation line,
  ``max(-A, 0) * (-l u / (u - l))`` -- what the bound gains if that neuron's relaxation became
  exact -- with ``|A| (u - l)`` to break ties.
* :class:`FSB` -- filtered smart branching (De Palma et al., 2021): the ``candidates``
  best-scored neurons each get both children bounded once, cheaply (the parent's intermediate
  bounds, slopes and split multipliers, no optimisation), and the neuron whose worse child is
  best is split.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lit_cert.bounds.backsub import LinearBounds


@dataclass
class BranchContext:
    """What a heuristic may look at besides the domains' bounds: the network's layers, the
    positions of its ReLUs, the input box (1, *in_shape) and the margin row (1, 1, K)."""

    layers: list
    relu_idx: list[int]
    lb: torch.Tensor
    ub: torch.Tensor
    spec1: torch.Tensor


def intercept_scores(engine: LinearBounds, splits: dict[int, torch.Tensor], relu_idx: list[int]):
    """(D, N) BaBSR scores of every ReLU neuron of every domain (-1 for a stable or split one) and
    the (R + 1,) offsets of each ReLU layer's neurons in the flat order."""
    scores = []
    for idx in relu_idx:
        l, u = engine.pre_bounds[idx]
        a = engine.coefficients[idx][:, 0]  # coefficients at the ReLU output (D, *shape)
        unstable = (l < 0) & (u > 0)
        if idx in splits:
            unstable &= splits[idx] == 0
        width = (u - l).clamp(min=1e-12)
        intercept = (-a).clamp(min=0) * (-l * u / width).clamp(min=0)
        scores.append(torch.where(unstable, intercept + 1e-4 * a.abs() * width + 1e-12, torch.full_like(l, -1.0)).flatten(1))
    sizes = torch.tensor([0] + [s.shape[1] for s in scores], device=scores[0].device).cumsum(0)
    return torch.cat(scores, 1), sizes


def _top(flat: torch.Tensor, sizes: torch.Tensor, k: int):
    """The ``k`` best scores (D, k) and their (ReLU position, flat neuron) (D, k, 2)."""
    val, arg = flat.topk(min(k, flat.shape[1]), dim=1)
    pos = torch.searchsorted(sizes[1:], arg, right=True)
    return val, torch.stack([pos, arg - sizes[pos]], 2)


def _none_left(val: torch.Tensor, best: torch.Tensor) -> torch.Tensor:
    return torch.where((val[:, 0] > 0).unsqueeze(1), best, torch.full_like(best, -1))


class BaBSR:
    """Split the neuron with the best intercept score."""

    name = "babsr"

    def choose(self, engine: LinearBounds, splits: dict[int, torch.Tensor], context: BranchContext) -> torch.Tensor:
        flat, sizes = intercept_scores(engine, splits, context.relu_idx)
        val, cand = _top(flat, sizes, 1)
        return _none_left(val, cand[:, 0])


class FSB:
    """Filtered smart branching over the ``candidates`` best-scored neurons."""

    name = "fsb"

    def __init__(self, candidates: int = 3):
        self.candidates = candidates

    def choose(self, engine: LinearBounds, splits: dict[int, torch.Tensor], context: BranchContext) -> torch.Tensor:
        flat, sizes = intercept_scores(engine, splits, context.relu_idx)
        val, cand = _top(flat, sizes, self.candidates)
        pick = torch.zeros(len(flat), dtype=torch.long, device=flat.device)
        if cand.shape[1] > 1:
            worse = self.probe(engine, splits, context, cand)
            worse = torch.where(val > 0, worse, torch.full_like(worse, -float("inf")))
            pick = worse.argmax(1)
        return _none_left(val, cand[torch.arange(len(flat), device=flat.device), pick])

    @staticmethod
    def probe(engine: LinearBounds, splits: dict[int, torch.Tensor], context: BranchContext, cand: torch.Tensor) -> torch.Tensor:
        """(D, k): the smaller of the two children's bounds for each candidate split, from one
        walk per child with the parent's intermediate bounds, slopes and multipliers (sound on the
        child, not optimised); an empty child counts as +inf. In chunks of domains that fit the
        coefficient budget (lit_cert.bounds.backsub.coefficient_memory)."""
        layers, relu_idx, lb, ub, spec1 = context.layers, context.relu_idx, context.lb, context.ub, context.spec1
        d, k = cand.shape[:2]
        per = engine.rows_per_walk(len(layers))  # rows per walk of all d domains within the budget
        chunk = d if per is None else max(1, per * d // (2 * k))  # one row per child
        out = []
        for c0 in range(0, d, chunk):
            sel = torch.arange(c0, min(d, c0 + chunk), device=lb.device)
            n = len(sel)
            rep = sel.repeat_interleave(2 * k)  # domain of each child: (domain, candidate, sign)
            which = torch.arange(k, device=lb.device).repeat_interleave(2).repeat(n)
            sign = torch.tensor([1, -1], dtype=torch.int8, device=lb.device).repeat(n * k)
            child_splits = {}
            for p, idx in enumerate(relu_idx):
                base = splits[idx] if idx in splits else torch.zeros_like(engine.pre_bounds[idx][0], dtype=torch.int8)
                s = base[rep].clone()
                c = cand[rep, which]
                hit = torch.nonzero(c[:, 0] == p).flatten()
                s.view(len(rep), -1)[hit, c[hit, 1]] = sign[hit]
                child_splits[idx] = s
            prior = {i: (l[rep], u[rep]) for i, (l, u) in engine.pre_bounds.items()}
            blb, bub = lb.expand(len(rep), *lb.shape[1:]), ub.expand(len(rep), *ub.shape[1:])
            child = LinearBounds(layers, blb, bub, "crown", "same", splits=child_splits, prior_bounds=prior,
                                 reuse_prior_upto=len(layers))
            child.lower_slopes = {i: a[rep] for i, a in engine.lower_slopes.items()}
            child.split_multipliers = {i: b[rep] for i, b in engine.split_multipliers.items()}
            child.cuts = engine.cuts
            child.cut_multipliers = {i: g[rep] for i, g in engine.cut_multipliers.items()}
            with torch.no_grad():
                value = child.lower(len(layers), spec1.expand(len(rep), 1, -1))[:, 0]
                value = torch.where(child.infeasible(), torch.full_like(value, float("inf")), value)
            out.append(value.view(n, k, 2).min(2).values)
        return torch.cat(out)


#: ``BaBConfig.branching`` -> the heuristic's class
BRANCHING = {"babsr": BaBSR, "fsb": FSB}


def branching_for(config) -> BaBSR | FSB:
    """The heuristic a :class:`~lit_cert.certify.settings.BaBConfig` names, with its options."""
    if config.branching == "fsb":
        return FSB(config.fsb_candidates)
    return BRANCHING[config.branching]()
