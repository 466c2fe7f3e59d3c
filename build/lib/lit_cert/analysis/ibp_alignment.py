"""Theorem 3.9 of seed 000 measured: does the IBP loss's gradient point towards more tightness?

Seed 000 (Mao et al., Sec. 3.4 and App. B) considers a deep linear network (DLN) with optimal
propagation matrix ``W* = |W_L ... W_1|`` and layer-wise (IBP) matrix ``W+ = |W_L| ... |W_1|``,
and the IBP risk ``R(eps)`` of the box ``Box+(f, B_eps(x))``. Theorem 3.9: *if* tightness is
homogeneous (``W* = tau W+`` entrywise) *and* ``||grad W*_ij|| / W*_ij <= 1/2 ||grad W+_ij|| / W+_ij``
for every entry, then ``<grad (R(eps) - R(0)), grad tau> <= 0``: the part of the IBP gradient that
standard training lacks is aligned with *increasing* tightness.

What this module measures, on Gaussian-initialised DLNs and a linear teacher's labels:

* ``inner`` / ``cosine``: ``<grad(R(eps) - R(0)), grad tau>`` and its cosine, at initialisation;
* ``premise_fraction``: the share of entries ``(i, j)`` for which the gradient-ratio premise holds,
  and ``homogeneity_cv`` (the spread of ``W*/W+`` over entries; 0 = homogeneous);
* training: ``steps`` of gradient descent on ``R(eps)`` and on ``R(0)`` from the same weights,
  tightness along the way -- the theorem's practical claim is that IBP training ends tighter.

A fact the measurement makes plain (and tests/test_analysis.py checks): in a *two-layer* DLN the
premise never holds. ``W*_ij = |sum_k a_k b_k|`` and ``W+_ij = sum_k |a_k||b_k|`` (``a`` a row of
``W_2``, ``b`` a column of ``W_1``) have gradients of the same norm ``sqrt(|a|^2 + |b|^2)``, so the
premise would need ``W+_ij <= W*_ij / 2`` while ``W*_ij <= W+_ij`` always. In deeper DLNs the two
norms can differ (``|grad W*| <= |grad W+|`` entrywise), but no entry of our three-layer DLNs met
the premise either. So the theorem's conclusion is tested here *without* its premise.

Tightness ``tau`` is the mean over outputs of ``(W* 1)_i / (W+ 1)_i`` (Definition 3.5, averaged).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F


def dln_weights(widths: Sequence[int], generator: torch.Generator) -> list[torch.Tensor]:
    """``W_l`` (d_l x d_{l-1}) with i.i.d. N(0, 1/d_{l-1}) entries, float64, requiring grad."""
    return [(torch.randn(o, i, generator=generator, dtype=torch.float64) / i ** 0.5).requires_grad_()
            for i, o in zip(widths[:-1], widths[1:])]


def propagation_matrices(ws: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(W, W*, W+): the product, its absolute value, and the product of absolute values."""
    w, w_abs = ws[0], ws[0].abs()
    for layer in ws[1:]:
        w, w_abs = layer @ w, layer.abs() @ w_abs
    return w, w.abs(), w_abs


def tightness(ws: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mean over outputs of ``(W* 1)_i / (W+ 1)_i`` (seed 000 Definition 3.5)."""
    _, w_star, w_ibp = propagation_matrices(ws)
    return (w_star.sum(1) / w_ibp.sum(1)).mean()


def ibp_risk(ws: Sequence[torch.Tensor], x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """Cross-entropy of the IBP worst-case logits over the L-inf ball: the centre ``W x`` moved by
    the box radius ``eps W+ 1`` down for the true class and up for the others (eps 0: standard)."""
    w, _, w_ibp = propagation_matrices(ws)
    z = x @ w.T
    radius = eps * w_ibp.sum(1)
    true = F.one_hot(y, z.shape[1]).bool()
    return F.cross_entropy(torch.where(true, z - radius, z + radius), y)


def teacher_data(d_in: int, d_out: int, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian inputs labelled by a random linear teacher (argmax of ``T x``)."""
    x = torch.randn(n, d_in, generator=generator, dtype=torch.float64)
    teacher = torch.randn(d_out, d_in, generator=generator, dtype=torch.float64)
    return x, (x @ teacher.T).argmax(1)


def _flat_grad(value: torch.Tensor, ws: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([g.flatten() for g in torch.autograd.grad(value, ws, retain_graph=True)])


def premise(ws: Sequence[torch.Tensor]) -> tuple[float, float]:
    """(share of entries meeting Theorem 3.9's gradient-ratio premise, coefficient of variation of
    ``W*/W+`` over the entries -- 0 when tightness is homogeneous, the theorem's other premise)."""
    _, w_star, w_ibp = propagation_matrices(ws)
    met = total = 0
    for i in range(w_star.shape[0]):
        for j in range(w_star.shape[1]):
            g_star = _flat_grad(w_star[i, j], ws).norm()
            g_ibp = _flat_grad(w_ibp[i, j], ws).norm()
            if w_star[i, j] > 0:
                met += int(g_star / w_star[i, j] <= 0.5 * g_ibp / w_ibp[i, j])
            total += 1
    ratio = (w_star / w_ibp).detach()
    return met / total, float(ratio.std() / ratio.mean())


def alignment(ws: Sequence[torch.Tensor], x, y, eps: float) -> tuple[float, float]:
    """(<grad(R(eps) - R(0)), grad tau>, its cosine) at the weights ``ws``."""
    g_diff = _flat_grad(ibp_risk(ws, x, y, eps) - ibp_risk(ws, x, y, 0.0), ws)
    g_tau = _flat_grad(tightness(ws), ws)
    inner = float(g_diff @ g_tau)
    return inner, inner / float(g_diff.norm() * g_tau.norm())


def train_tightness(ws: Sequence[torch.Tensor], x, y, eps: float, steps: int, lr: float, every: int) -> list[tuple[int, float]]:
    """Gradient descent on ``R(eps)`` from a copy of ``ws``: [(step, tightness)] every ``every`` steps."""
    ws = [w.detach().clone().requires_grad_() for w in ws]
    out = [(0, float(tightness(ws).detach()))]
    for step in range(1, steps + 1):
        grads = torch.autograd.grad(ibp_risk(ws, x, y, eps), ws)
        with torch.no_grad():
            for w, g in zip(ws, grads):
                w -= lr * g
        if step % every == 0 or step == steps:
            out.append((step, float(tightness(ws).detach())))
    return out


def run(widths: Sequence[int], eps_values: Sequence[float], trials: int, samples: int, steps: int, lr: float,
        every: int = 10, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """Summary rows per (trial, eps) and training rows per (trial, eps, step); eps 0 is the
    standard-training baseline of the training rows."""
    summary, training = [], []
    for trial in range(trials):
        gen = torch.Generator().manual_seed(seed + trial)
        ws = dln_weights(widths, gen)
        x, y = teacher_data(widths[0], widths[-1], samples, gen)
        share, cv = premise(ws)
        standard = dict(train_tightness(ws, x, y, 0.0, steps, lr, every))
        for eps in eps_values:
            inner, cosine = alignment(ws, x, y, eps)
            trajectory = train_tightness(ws, x, y, eps, steps, lr, every)
            summary.append({"trial": trial, "eps": eps, "inner": inner, "cosine": cosine, "premise_fraction": share,
                            "homogeneity_cv": cv, "tau_init": trajectory[0][1], "tau_ibp_trained": trajectory[-1][1],
                            "tau_standard_trained": standard[steps]})
            training += [{"trial": trial, "eps": eps, "step": s, "tau_ibp": t, "tau_standard": standard[s]} for s, t in trajectory]
    return summary, training
