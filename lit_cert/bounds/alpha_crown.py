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
    net: nn.Module, lb: torch.Tensor, ub: torch.Tensor, spec: torch.Tensor, steps: int = 20, lr: float = 0.1
) -> torch.Tensor:
    """Lower bounds (B, M) of ``spec @ net(x)`` over the box, >= CROWN's, sound for any steps."""
    with torch.inference_mode(False):
        return _alpha_crown(net, lb.clone(), ub.clone(), spec.clone(), steps, lr)


def _alpha_crown(net, lb, ub, spec, steps, lr):
    engine = LinearBounds(net, lb, ub, "crown", "same")
    with torch.no_grad():
        best = engine.output_bounds(spec, need_upper=False)[0]  # CROWN; fills intermediate bounds
    if steps <= 0:
        return best
    alphas = {}
    for idx, (l, u) in engine.pre_bounds.items():
        alphas[idx] = (u >= -l).to(lb.dtype).clone().requires_grad_(True)
    if not alphas:
        return best
    opt = torch.optim.Adam(list(alphas.values()), lr=lr)
    finite = torch.isfinite(best)
    with torch.enable_grad():
        for _ in range(steps):
            engine.lower_slopes = alphas
            bound = engine.output_bounds(spec, need_upper=False)[0]
            with torch.no_grad():
                best = torch.maximum(best, bound)
            loss = -bound[finite].sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():  # projected gradient: stay in the sound range [0, 1]
                for a in alphas.values():
                    a.clamp_(0, 1)
        engine.lower_slopes = {i: a.detach() for i, a in alphas.items()}
        with torch.no_grad():
            best = torch.maximum(best, engine.output_bounds(spec, need_upper=False)[0])
    return best.detach()
