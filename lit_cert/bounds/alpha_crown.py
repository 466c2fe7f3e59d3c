"""alpha-CROWN: CROWN with the lower slopes of unstable ReLUs optimised by gradient steps.

Any lower slope in [0, 1] gives a sound relaxation, so every iterate is a sound bound; we start
from CROWN's adaptive slopes and keep, per margin, the best bound seen -- the result is never
below CROWN's. Intermediate bounds are CROWN's (computed once, not re-optimised). Runs its
own gradient steps even when called under ``no_grad`` or inference mode (validation loops).
"""

from __future__ import annotations

import torch
from torch import nn

from lit_cert.bounds.backsub import LinearBounds


def alpha_crown_margins(
    net: nn.Module, lb: torch.Tensor, ub: torch.Tensor, spec: torch.Tensor, steps: int = 20, lr: float = 0.1, sparse: bool = True
) -> torch.Tensor:
    """Lower bounds (B, M) of ``spec @ net(x)`` over the box, >= CROWN's (with the same
    ``sparse`` intermediate bounds), sound for any steps."""
    with torch.inference_mode(False):
        engine = LinearBounds(net, lb.clone(), ub.clone(), "crown", "same", sparse=sparse)
        return optimised_lower_bounds(engine, spec.clone(), steps, lr)


def optimised_lower_bounds(engine: LinearBounds, spec: torch.Tensor, steps: int, lr: float = 0.1,
                           record: bool = False, beta: bool = False, start: dict | None = None) -> torch.Tensor:
    """The best lower bounds of ``spec @ f(x)`` over CROWN and ``steps`` Adam steps on the lower
    slopes of ``engine``'s unstable ReLUs (its intermediate bounds stay CROWN's, computed once)
    and, with ``beta``, on the multipliers of its split constraints (beta-CROWN, see
    :class:`LinearBounds`). ``record`` leaves the coefficients of the last bound pass in
    ``engine.coefficients``."""
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
    if not alphas and not betas:
        if record:
            with torch.no_grad():
                engine.output_bounds(spec, need_upper=False, record=True)
        return best
    opt = torch.optim.Adam(list(alphas.values()) + list(betas.values()), lr=lr)
    finite = torch.isfinite(best)
    with torch.inference_mode(False), torch.enable_grad():
        for _ in range(steps):
            engine.lower_slopes = alphas
            engine.split_multipliers = betas
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
                for b in betas.values():
                    b.clamp_(min=0)
        engine.lower_slopes = {i: a.detach() for i, a in alphas.items()}
        engine.split_multipliers = {i: b.detach() for i, b in betas.items()}
        with torch.no_grad():
            best = torch.maximum(best, engine.output_bounds(spec, need_upper=False, record=record)[0])
    return best.detach()
