"""alpha-CROWN: CROWN with the lower slopes of unstable ReLUs optimised by gradient steps.

Any lower slope in [0, 1] gives a sound relaxation, so every iterate is a sound bound; we start
from CROWN's adaptive slopes and keep, per margin, the best bound seen -- the result is never
below CROWN's. Intermediate bounds are CROWN's (computed once, not re-optimised). Runs its
own gradient steps even when called under ``no_grad`` or inference mode (validation loops).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from lit_cert.bounds.backsub import LinearBounds, coefficient_budget
from lit_cert.bounds.box import flat_layers


@contextlib.contextmanager
def frozen_parameters(layers):
    """The network's parameters as constants while slopes are optimised: the backward pass then
    computes the slopes' gradients only -- it leaves nothing in the network's ``.grad`` (a
    certificate must not change what a training step would do next) and the walks save no
    inputs for weight gradients (graph memory and time). Restored on exit."""
    params = [p for layer in layers for p in layer.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def alpha_crown_margins(
    net: nn.Module, lb: torch.Tensor, ub: torch.Tensor, spec: torch.Tensor, steps: int = 20, lr: float = 0.1, sparse: bool = True
) -> torch.Tensor:
    """Lower bounds (B, M) of ``spec @ net(x)`` over the box, >= CROWN's (with the same
    ``sparse`` intermediate bounds), sound for any steps."""
    with torch.inference_mode(False):
        engine = LinearBounds(net, lb.clone(), ub.clone(), "crown", "same", sparse=sparse)
        return optimised_lower_bounds(engine, spec.clone(), steps, lr)


def optimised_lower_bounds(engine: LinearBounds, spec: torch.Tensor, steps: int, lr: float = 0.1,
                           record: bool = False, beta: bool = False, start: dict | None = None,
                           cut_lr: float | None = None) -> torch.Tensor:
    """The best lower bounds of ``spec @ f(x)`` over CROWN and ``steps`` Adam steps on the lower
    slopes of ``engine``'s unstable ReLUs (its intermediate bounds stay CROWN's, computed once)
    and, with ``beta``, on the multipliers of its split constraints (beta-CROWN, see
    :class:`LinearBounds`), and on the multipliers of ``engine.cuts`` (joint ReLU constraints,
    :mod:`lit_cert.bounds.cuts`) when it has any. ``start`` warm-starts them: {"alpha": ...,
    "beta": ..., "gamma": ...}; ``cut_lr`` is the Adam step of the gammas (default ``lr``).
    ``record`` leaves the coefficients of the last bound pass in ``engine.coefficients``."""
    with torch.inference_mode(False), torch.no_grad():
        best = engine.output_bounds(spec, need_upper=False, record=record and steps <= 0)[0]  # fills the intermediate bounds
    if steps <= 0:
        return best
    engine.pre_bounds = {i: (l.detach(), u.detach()) for i, (l, u) in engine.pre_bounds.items()}  # constants here
    start = start or {}
    alphas = {}
    for idx, (l, u) in engine.pre_bounds.items():
        init = start.get("alpha", {}).get(idx)
        alphas[idx] = ((u >= -l).to(l.dtype) if init is None else init.clamp(0, 1)).clone().requires_grad_(True)
    betas = {}
    if beta:
        for idx, s in engine.splits.items():
            if bool((s != 0).any()):
                init = start.get("beta", {}).get(idx)
                zero = torch.zeros(s.shape, dtype=best.dtype, device=best.device)
                betas[idx] = (zero if init is None else init.clamp(min=0)).clone().requires_grad_(True)
    gammas = {}
    for idx, cuts in engine.cuts.items():  # multipliers of joint ReLU constraints (lit_cert.bounds.cuts)
        init = start.get("gamma", {}).get(idx)
        zero = torch.zeros((*spec.shape[:2], len(cuts)), dtype=best.dtype, device=best.device)
        gammas[idx] = (zero if init is None else init.clamp(min=0).expand_as(zero)).clone().requires_grad_(True)
    if not alphas and not betas and not gammas:
        if record:
            with torch.no_grad():
                engine.output_bounds(spec, need_upper=False, record=True)
        return best
    groups = [{"params": list(alphas.values()) + list(betas.values())}]
    if gammas:
        groups.append({"params": list(gammas.values()), "lr": lr if cut_lr is None else cut_lr})
    opt = torch.optim.Adam(groups, lr=lr)
    finite = torch.isfinite(best)
    with torch.inference_mode(False), torch.enable_grad(), frozen_parameters(engine.layers):
        for _ in range(steps):
            engine.lower_slopes = alphas
            engine.split_multipliers = betas
            engine.cut_multipliers = gammas
            bound = engine.output_bounds(spec, need_upper=False)[0]
            with torch.no_grad():
                best = torch.maximum(best, bound)
            loss = -bound[finite].sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():  # projected gradient: stay in the sound ranges [0, 1] and [0, inf)
                for a in alphas.values():
                    a.clamp_(0, 1)
                for b in list(betas.values()) + list(gammas.values()):
                    b.clamp_(min=0)
        engine.lower_slopes = {i: a.detach() for i, a in alphas.items()}
        engine.split_multipliers = {i: b.detach() for i, b in betas.items()}
        engine.cut_multipliers = {i: g.detach() for i, g in gammas.items()}
        with torch.no_grad():
            best = torch.maximum(best, engine.output_bounds(spec, need_upper=False, record=record)[0])
    return best.detach()


@dataclass
class OptimisedBox:
    """What :func:`optimised_box_bounds` proves about one input box."""

    lower: torch.Tensor  # (B, M) best lower bounds of the spec rows
    pre_bounds: dict[int, tuple[torch.Tensor, torch.Tensor]]  # ReLU index -> (l, u), the tightest seen
    slopes: dict[int, torch.Tensor]  # ReLU index -> the output walk's lower slopes (B, M, *shape) at the best bound's step
    steps: int  # optimisation steps run
    optimised_layers: list[int]  # ReLUs whose input bounds had their own optimised slopes
    #: ReLU index -> multipliers (B, M, P) of joint ReLU constraints in the rows' bounds (none unless
    #: a multi-neuron bounding added them, lit_cert.certify.bab.MultiNeuron)
    gammas: dict[int, torch.Tensor] = field(default_factory=dict)


#: slope-sized tensors one optimised layer costs: its slopes, their gradient, Adam's two moments, and
#: the autograd graph of its walk (the saved coefficient blocks: ~8 more, measured -- charged as 4, a
#: small CNN's optimised box at ``memory_gb`` 1 peaked at 1.92 GB, as 12 at 0.73 GB; benchmarks/RESULTS.md)
_SLOPE_COPIES = 12


def _slope_elements(engine: LinearBounds, relu_idx: list[int], t: int, rows: int) -> int:
    return rows * sum(math.prod(engine.shapes[j][1:]) for j in relu_idx if j < t)


def optimised_box_bounds(layers, lb: torch.Tensor, ub: torch.Tensor, spec: torch.Tensor, steps: int, lr: float = 0.1,
                         optimise_intermediate: bool = True, memory_gb: float | None = None,
                         time_limit: float | None = None) -> OptimisedBox:
    """alpha-CROWN with *optimised intermediate bounds* (as alpha-beta-CROWN bounds the root of
    its branch and bound): every unstable neuron's lower and upper bound gets its own lower
    slopes of all earlier ReLUs -- one slope per (bounded row, earlier neuron) -- and the spec
    rows get theirs; every step recomputes the intermediate bounds with their slopes, layer by
    layer, and one Adam step on all slopes follows the gradient of the sum of the spec's bounds
    (intermediate bounds improve only through what they do for the spec).

    Soundness: any lower slope in [0, 1] gives a valid relaxation, so every step's intermediate
    bounds are valid given the valid bounds of the layers before them, and so are their
    intersections with the best seen; every step's spec bound is valid. The results are never
    looser than CROWN's (step 0 is CROWN, and only the elementwise best is kept).

    Cost: per step one walk per layer with two rows per unstable neuron (unstable under the
    CROWN bounds), slopes ``2 x unstable x earlier neurons`` per layer. A layer whose slopes
    would exceed ``memory_gb`` (``_SLOPE_COPIES``: slopes, gradient, Adam moments, the walk's graph) keeps CROWN's
    bounds (not optimised) -- the optimisation pays on small networks with many unstable neurons,
    not on a CNN7, whose layers would need gigabytes each. ``memory_gb`` None: the
    :func:`~lit_cert.bounds.backsub.coefficient_memory` budget in force, at most 1 GB.
    ``time_limit`` (seconds): no step starts that would end after it (the last step's time
    as the estimate), and a step past it keeps the best bounds so far for its remaining layers
    (one layer's walk is the most a step overruns by); the bounds of the steps run are
    returned. The steps also stop once every row's bound is positive.
    ``optimise_intermediate=False``: CROWN's intermediate bounds, only the spec's slopes
    optimised (plain alpha-CROWN with one slope set per row).

    ``lb, ub`` (B, *in_shape); ``spec`` (B, M, K). Runs its own gradient steps in any mode.
    """
    layers = flat_layers(layers)
    relu_idx = [i for i, m in enumerate(layers) if isinstance(m, nn.ReLU)]
    with torch.inference_mode(False), torch.no_grad():
        lb, ub, spec = lb.clone(), ub.clone(), spec.clone()
        plain = LinearBounds(layers, lb, ub, "crown", "same")
        best = plain.output_bounds(spec, need_upper=False)[0]
    best_pre = {i: (l.detach(), u.detach()) for i, (l, u) in plain.pre_bounds.items()}
    b, m = spec.shape[:2]
    if steps <= 0 or bool((best > 0).all()):  # nothing to optimise, or nothing left to prove
        slopes = {j: (u >= -l).to(l.dtype).unsqueeze(1).expand(b, m, *l.shape[1:]) for j, (l, u) in best_pre.items()}
        return OptimisedBox(best.detach(), best_pre, slopes, 0, [])
    unstable_of = {i: ((l < 0) & (u > 0)) for i, (l, u) in best_pre.items()}
    adaptive = {i: (u >= -l).to(l.dtype) for i, (l, u) in best_pre.items()}

    # the layers whose bounds are back-substituted (the first ReLU's input is one affine map: exact)
    started = time.perf_counter()
    if memory_gb is None:
        memory_gb = min(coefficient_budget() or 2**30, 2**30) / 2**30
    budget = memory_gb * 2**30 / (_SLOPE_COPIES * lb.element_size())
    targets, packs = [], {}
    for t in relu_idx[1:] if optimise_intermediate else []:
        flat = unstable_of[t].reshape(b, -1)
        counts = flat.sum(1)
        k = int(counts.max())
        if k == 0:
            continue
        elements = b * _slope_elements(plain, relu_idx, t, 2 * k)
        if elements > budget:
            continue
        budget -= elements
        order = torch.argsort(flat.to(torch.int8), dim=1, descending=True, stable=True)[:, :k]
        valid = torch.arange(k, device=order.device).unsqueeze(0) < counts.unsqueeze(1)
        targets.append(t)
        packs[t] = (order, valid)

    def per_row(j: int, rows: int) -> torch.Tensor:
        a = adaptive[j]
        return a.unsqueeze(1).expand(b, rows, *a.shape[1:]).clone().requires_grad_(True)

    alphas = {t: {j: per_row(j, 2 * packs[t][0].shape[1]) for j in relu_idx if j < t} for t in targets}
    out_alpha = {j: per_row(j, m) for j in relu_idx}
    params = [a for d in alphas.values() for a in d.values()] + list(out_alpha.values())
    best_slopes = {j: a.detach().clone() for j, a in out_alpha.items()}
    opt = torch.optim.Adam(params, lr=lr)
    finite = torch.isfinite(best)
    run, last = 0, 0.0
    with torch.inference_mode(False), torch.enable_grad(), frozen_parameters(layers):
        for _ in range(steps):
            now = time.perf_counter()
            if time_limit is not None and now + last - started > time_limit:
                break
            if bool((best > 0).all()):  # every row proven: nothing left to gain
                break
            run += 1
            engine = LinearBounds(layers, lb, ub, "crown", "same", prior_bounds=best_pre, reuse_prior_upto=relu_idx[0])
            for t in relu_idx:
                late = time_limit is not None and time.perf_counter() - started > time_limit
                if t not in packs or late:  # CROWN's (or the exact first layer's, or the best so far) bounds, as constants
                    engine.pre_bounds[t] = best_pre[t]
                    continue
                order, valid = packs[t]
                k, shape = order.shape[1], engine.shapes[t]
                n = math.prod(shape[1:])
                unit = torch.zeros(b, k, n, dtype=lb.dtype, device=lb.device)
                unit.scatter_(2, order.unsqueeze(2), valid.unsqueeze(2).to(unit.dtype))
                unit = unit.view(b, k, *shape[1:])
                engine.lower_slopes = alphas[t]
                low = engine.lower(t, torch.cat([unit, -unit], 1))
                bl, bu = (x.reshape(b, n) for x in best_pre[t])
                new_l = torch.maximum(low[:, :k], bl.gather(1, order))
                new_u = torch.minimum(-low[:, k:], bu.gather(1, order))
                new_l = torch.where(valid, new_l, bl.gather(1, order))
                new_u = torch.where(valid, new_u, bu.gather(1, order))
                engine.pre_bounds[t] = (bl.scatter(1, order, new_l).view(shape), bu.scatter(1, order, new_u).view(shape))
            engine.lower_slopes = out_alpha
            bound = engine.lower(len(layers), spec)
            with torch.no_grad():
                better = bound > best
                best = torch.where(better, bound, best)
                for j, a in out_alpha.items():  # the slopes of each row's best bound (BaB starts from them)
                    best_slopes[j] = torch.where(better.view(b, m, *([1] * (a.dim() - 2))), a.detach(), best_slopes[j])
                best_pre = {i: (torch.maximum(l.detach(), best_pre[i][0]), torch.minimum(u.detach(), best_pre[i][1]))
                            for i, (l, u) in engine.pre_bounds.items()}
            loss = -bound[finite].sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                for a in params:
                    a.clamp_(0, 1)
            last = time.perf_counter() - now
    return OptimisedBox(best.detach(), best_pre, best_slopes, run, targets)
