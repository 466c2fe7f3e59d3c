"""Loss fusion for CROWN-IBP: bound the robust cross-entropy with ONE back-substituted row.

With margins ``m_i = z_i - z_y`` (so ``CE(z, y) = log sum_i exp(m_i)``), IBP gives every ``m_i``
an interval ``[l_i, u_i]``. On it, ``exp`` lies below its chord ``a_i m + b_i`` (exp is convex);
after shifting by ``s = max_i u_i`` for numerical range,

    CE(x) <= s + log( sum_i b_i + max_x sum_i a_i (m_i(x) - s) ),

and ``max_x sum_i a_i m_i(x)`` is a single linear function of the logits, bounded by one CROWN
back-substitution instead of one per class. Sound for every input of the box.
"""

from __future__ import annotations

import torch
from torch import nn

from lit_cert.bounds.backsub import LinearBounds
from lit_cert.bounds.box import interval_bounds
from lit_cert.bounds.spec import margin_spec
from lit_cert.bounds.trace import IntervalTrace


def fused_robust_ce(
    net: nn.Module, lb: torch.Tensor, ub: torch.Tensor, y: torch.Tensor, num_classes: int, trace: IntervalTrace | None = None
) -> torch.Tensor:
    """Per-sample upper bounds (B,) of the cross-entropy over the box (CROWN-IBP, fused).

    One IBP walk gives both the margin intervals and CROWN-IBP's intermediate bounds; it is
    recorded into ``trace`` (a fresh one if None)."""
    spec = margin_spec(y, num_classes, lb.dtype)  # rows e_y - e_i: (C z)_i = -m_i
    trace = IntervalTrace() if trace is None else trace
    c_lo, c_up = interval_bounds(net, lb, ub, spec=spec, trace=trace)
    m_lo, m_up = -c_up, -c_lo
    shift = m_up.max(dim=1, keepdim=True).values.detach()
    lo, up = m_lo - shift, m_up - shift
    width = up - lo
    e_lo, e_up = torch.exp(lo), torch.exp(up)
    narrow = width < 1e-6
    slope = torch.where(narrow, e_up, (e_up - e_lo) / torch.where(narrow, torch.ones_like(width), width))
    intercept = e_lo - slope * lo  # chord through (lo, e^lo); exact where the interval is a point
    # sum_i slope_i m_i = -(sum_i slope_i C_i) z: its maximum is minus the lower bound of that row
    row = (slope.unsqueeze(2) * spec).sum(dim=1, keepdim=True)
    engine = LinearBounds(net, lb, ub, "crown", "ibp", trace=trace)
    max_sum = -engine.output_bounds(row, need_upper=False)[0][:, 0]
    total = intercept.sum(1) + max_sum - (slope * shift).sum(1)
    return shift[:, 0] + torch.log(total.clamp(min=1e-30))
