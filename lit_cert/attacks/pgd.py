"""Projected gradient ascent in a box (L∞ PGD with random starts, restarts and step decay).

The training methods attack the way their reference implementations do; the differences that
matter are the step size (a fraction of the box radius), where the random start lies, and how
the step decays over the iterations. :class:`StepPolicy` names those choices:

* ``ctbench`` -- CTBench's ``adv_whitebox``: steps of ``step_size x radius`` per coordinate
  (``step_size`` defaults to ``max(0.25, 2 / steps)``), start ``x + U(-1/2, 1/2) * width``
  clipped to the box, step x0.2 every 10 iterations below 20 steps, x0.1 at 70% for 20-49
  steps, x0.1 at 50/80/90% from 50 steps on.
* ``sabr`` -- the SABR authors' attack (their ``adv_whitebox``): one scalar step scale for the
  whole batch (the largest box radius), ``step_size`` 0.5, x0.1 at 50/80/90% of the steps.
* ``latent`` -- TAPS' latent search (CTBench ``_get_pivotal_points``): uniform random start in
  the box, steps of ``max(0.2, 2 / steps) x`` the box *width*, x0.2 at 70% for 10-50 steps,
  at 40/70% for 51-80 and at 30/60/80% beyond.
* ``constant`` -- fixed steps of ``step_size x radius`` (default 0.5), uniform start; what the
  certification cascade and the PGD metrics use.

Every policy keeps, per sample, the best point seen over all iterations and restarts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Literal

import torch
import torch.nn.functional as F
from torch import nn

from lit_cert.bounds.region import linf_box

Policy = Literal["ctbench", "sabr", "latent", "constant"]
POLICIES = ("ctbench", "sabr", "latent", "constant")


@dataclass(frozen=True)
class StepPolicy:
    """A resolved attack schedule: per-iteration step multipliers and where to start."""

    step_size: float  # fraction of the scale (radius or width, see ``scale``)
    milestones: tuple[int, ...]  # iterations at which the step is multiplied by ``decay``
    decay: float
    scale: Literal["radius", "batch_radius", "width"]
    start: Literal["around_x", "uniform", "at_x"]  # at_x: exactly the given point (a seeded search)

    def step_at(self, iteration: int) -> float:
        return self.step_size * self.decay ** sum(iteration >= m for m in self.milestones)


def step_policy(policy: Policy, steps: int, step_size: float | None = None) -> StepPolicy:
    """The reference schedule ``policy`` for an attack of ``steps`` iterations (module doc)."""
    if policy == "ctbench":
        if steps >= 50:
            milestones, decay = tuple(math.ceil(f * steps) for f in (0.5, 0.8, 0.9)), 0.1
        elif steps >= 20:
            milestones, decay = (math.ceil(0.7 * steps),), 0.1
        else:
            milestones, decay = tuple(range(10, steps + 1, 10)), 0.2
        size = max(0.25, 2 / steps) if step_size is None else step_size
        return StepPolicy(size, milestones, decay, "radius", "around_x")
    if policy == "sabr":
        milestones = tuple(math.ceil(f * steps) for f in (0.5, 0.8, 0.9))
        return StepPolicy(0.5 if step_size is None else step_size, milestones, 0.1, "batch_radius", "around_x")
    if policy == "latent":
        if 10 <= steps <= 50:
            milestones = (int(0.7 * steps),)
        elif 50 < steps <= 80:
            milestones = (int(0.4 * steps), int(0.7 * steps))
        elif steps > 80:
            milestones = (int(0.3 * steps), int(0.6 * steps), int(0.8 * steps))
        else:
            milestones = ()
        return StepPolicy(max(0.2, 2 / steps) if step_size is None else step_size, milestones, 0.2, "width", "uniform")
    if policy == "constant":
        return StepPolicy(0.5 if step_size is None else step_size, (), 1.0, "radius", "uniform")
    raise ValueError(f"unknown attack policy {policy!r}; choose from {POLICIES}")


def pgd_maximize(
    objective: Callable[[torch.Tensor], torch.Tensor],
    lb: torch.Tensor,
    ub: torch.Tensor,
    steps: int = 20,
    restarts: int = 1,
    policy: Policy | StepPolicy = "constant",
    step_size: float | None = None,
    x: torch.Tensor | None = None,
    stop: Callable[[torch.Tensor], bool] | None = None,
) -> torch.Tensor:
    """Maximise a per-sample objective ``(B,)`` over the box ``[lb, ub]`` by signed-gradient steps.

    Returns the best point found per sample over all iterations (``steps + 1`` evaluations per
    restart) and restarts. ``policy`` fixes step sizes, decay and the random start (module doc);
    ``x`` is the point the ``around_x`` start perturbs (default: the box centre). ``stop``
    (given the best values so far) ends the search early when it returns True (e.g. as soon as
    one start has found a counterexample).
    """
    pol = policy if isinstance(policy, StepPolicy) else step_policy(policy, steps, step_size)
    lb, ub = lb.detach(), ub.detach()
    width = ub - lb
    if pol.scale == "width":
        scale = width
    elif pol.scale == "radius":
        scale = width / 2
    else:
        scale = (width / 2).amax()
    anchor = (lb + ub) / 2 if x is None else x.detach()
    best_x = anchor.clone()
    best_val = torch.full(lb.shape[:1], float("-inf"), dtype=lb.dtype, device=lb.device)
    view = (-1,) + (1,) * (lb.dim() - 1)
    for _ in range(max(restarts, 1)):
        if pol.start == "at_x":
            z = torch.min(torch.max(anchor, lb), ub)
        elif pol.start == "around_x":
            z = torch.min(torch.max(anchor + (torch.rand_like(lb) - 0.5) * width, lb), ub)
        else:
            z = lb + width * torch.rand_like(lb)
        for it in range(steps + 1):
            with torch.enable_grad():
                z = z.detach().requires_grad_(True)
                val = objective(z)
                grad = torch.autograd.grad(val.sum(), z)[0] if it < steps else None
            with torch.no_grad():
                val = val.detach()
                better = val > best_val
                best_val = torch.where(better, val, best_val)
                best_x = torch.where(better.view(view), z.detach(), best_x)
                if grad is not None:
                    z = torch.min(torch.max(z + pol.step_at(it) * scale * grad.sign(), lb), ub)
            if stop is not None and stop(best_val):
                return best_x.detach()
    return best_x.detach()


def margin_objective(net: nn.Module, y: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """``max_{i != y} z_i - z_y`` (positive means misclassified)."""

    def objective(z_in: torch.Tensor) -> torch.Tensor:
        logits = net(z_in)
        true = logits.gather(1, y[:, None]).squeeze(1)
        other = logits.clone()
        other[torch.arange(len(y), device=y.device), y] = float("-inf")
        return other.max(dim=1).values - true

    return objective


def ce_objective(net: nn.Module, y: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """Per-sample cross-entropy of the network's logits."""
    return lambda z: F.cross_entropy(net(z), y, reduction="none")


def pgd_attack(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int = 20,
    step_size: float | None = None,
    restarts: int = 1,
    loss: str = "margin",
) -> torch.Tensor:
    """L∞ PGD within ``eps`` of ``x`` (clamped to [0, 1]) with constant steps of ``step_size``
    times the radius (default 0.5); ``loss`` is ``"ce"`` or ``"margin"``.

    Works under inference mode too (Lightning's evaluation loop): the attack runs outside it,
    on copies.
    """
    if loss not in ("ce", "margin"):
        raise ValueError(f"loss must be 'ce' or 'margin', got {loss!r}")
    with torch.inference_mode(False):
        x, y = x.clone(), y.clone()  # inference tensors cannot be saved for backward
        lb, ub = linf_box(x, eps)
        objective = margin_objective(net, y) if loss == "margin" else ce_objective(net, y)
        return pgd_maximize(objective, lb, ub, steps=steps, restarts=restarts, policy="constant", step_size=step_size)
