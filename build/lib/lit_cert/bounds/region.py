"""Input regions. eps is always in pixel units of [0, 1] images (normalisation is a layer)."""

from __future__ import annotations

import math
from typing import Literal

import torch

#: how SABR places its small box near the border of the image domain (see :func:`small_box`)
BoxConvention = Literal["sabr", "ctbench"]
BOX_CONVENTIONS = ("sabr", "ctbench")


def _check_radius(eps, values: bool = False) -> None:
    """A radius must be finite and >= 0 (a float always; a tensor's values when ``values``)."""
    from lit_cert.bounds.inputs import BoundInputError

    if isinstance(eps, torch.Tensor):
        if values and eps.numel() and not (torch.isfinite(eps).all() and (eps >= 0).all()):
            raise BoundInputError("eps must be finite and >= 0 for every sample")
        return
    if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps >= 0):
        raise BoundInputError(f"eps must be a finite radius >= 0, got {eps!r}")


def linf_box(
    x: torch.Tensor, eps: float | torch.Tensor, lo: float = 0.0, hi: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """The L∞ ball of radius ``eps`` around ``x`` intersected with the domain ``[lo, hi]``.

    ``eps`` may be a float or a per-sample tensor of shape ``(B,)``; a negative or non-finite
    float radius is refused (it would swap the box's ends).
    """
    _check_radius(eps)
    if isinstance(eps, torch.Tensor) and eps.dim() == 1:
        eps = eps.view(-1, *([1] * (x.dim() - 1)))
    lb = torch.clamp(x - eps, min=lo, max=hi)
    ub = torch.clamp(x + eps, min=lo, max=hi)
    return lb, ub


def certified_box(
    x: torch.Tensor, eps: float | torch.Tensor, lo: float = 0.0, hi: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`linf_box` rounded *outward*: a box in ``x``'s dtype that contains the exact ball
    ``[x - eps, x + eps] ∩ [lo, hi]``, for everything reported as certified.

    ``x - eps`` in float32 rounds to nearest, so the computed box can lie up to half an ulp
    *inside* the ball a certificate claims; here each end is computed in float64 and moved one
    ulp outward wherever the rounded value is not certainly outside (the clipping to ``[lo, hi]``
    is exact). The box grows by at most two ulps per side; training keeps :func:`linf_box`."""
    _check_radius(eps, values=True)
    if isinstance(eps, torch.Tensor) and eps.dim() == 1:
        eps = eps.view(-1, *([1] * (x.dim() - 1)))
    wide = x.double()
    eps64 = eps.double() if isinstance(eps, torch.Tensor) else float(eps)
    exact_lo, exact_hi = wide - eps64, wide + eps64
    lb, ub = exact_lo.to(x.dtype), exact_hi.to(x.dtype)
    lb = torch.where(lb.double() >= exact_lo, torch.nextafter(lb, torch.full_like(lb, -float("inf"))), lb)
    ub = torch.where(ub.double() <= exact_hi, torch.nextafter(ub, torch.full_like(ub, float("inf"))), ub)
    return torch.clamp(lb, min=lo, max=hi), torch.clamp(ub, min=lo, max=hi)


def inner_box(
    x: torch.Tensor, eps: float | torch.Tensor, lo: float = 0.0, hi: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`linf_box` rounded *inward*: every point of it lies in the exact ball ``[x - eps,
    x + eps] ∩ [lo, hi]`` -- where a counterexample must be for a falsification to hold."""
    if isinstance(eps, torch.Tensor) and eps.dim() == 1:
        eps = eps.view(-1, *([1] * (x.dim() - 1)))
    wide = x.double()
    eps64 = eps.double() if isinstance(eps, torch.Tensor) else float(eps)
    exact_lo, exact_hi = (wide - eps64).clamp(lo, hi), (wide + eps64).clamp(lo, hi)
    lb, ub = exact_lo.to(x.dtype), exact_hi.to(x.dtype)
    lb = torch.where(lb.double() < exact_lo, torch.nextafter(lb, torch.full_like(lb, float("inf"))), lb)
    ub = torch.where(ub.double() > exact_hi, torch.nextafter(ub, torch.full_like(ub, -float("inf"))), ub)
    return torch.minimum(lb, x), torch.maximum(ub, x)


def small_box(
    x: torch.Tensor, eps: float, lam: float, point: torch.Tensor, convention: BoxConvention = "sabr"
) -> tuple[torch.Tensor, torch.Tensor]:
    """SABR's propagation region: a box of relative size ``lam`` inside the clipped eps-ball
    ``B = [max(x - eps, 0), min(x + eps, 1)]``, centred as close to ``point`` (an adversarial
    example in ``B``) as the box allows. Both conventions give a subset of ``B``; interior
    pixels (``B`` not clipped) get the same box ``point`` projected to ``x ± (1 - lam) eps``,
    radius ``lam * eps``. At the border of the image domain they differ:

    * ``"sabr"`` (the SABR paper and its authors' code, Müller et al. 2023): radius
      ``lam * eps`` in every coordinate; the centre is ``point`` projected so that the whole box
      lies in ``B``. Where ``B`` is narrower than ``2 lam eps`` the box is ``B`` itself. (The
      authors' code clamps the centre to ``[lb_B + lam eps, ub_B - lam eps]`` and then clips
      the box to [0, 1]; where that interval is empty, i.e. ``lam > 1/2`` at a pixel within
      ``eps`` of 0 or 1, its box at the upper border reaches below ``B``; we keep it inside.)
    * ``"ctbench"`` (CTBench's re-implementation): radius ``lam`` times the *half-width of*
      ``B`` per coordinate, centre ``point`` projected into ``B`` shrunk by that radius: border
      pixels get proportionally smaller boxes.
    """
    lb_ball, ub_ball = linf_box(x, eps)
    if convention == "sabr":
        radius = torch.minimum(torch.full_like(x, lam * eps), (ub_ball - lb_ball) / 2)
    elif convention == "ctbench":
        radius = (ub_ball - lb_ball) / 2 * lam
    else:
        raise ValueError(f"unknown small-box convention {convention!r}; choose from {BOX_CONVENTIONS}")
    centre = torch.min(torch.max(point, lb_ball + radius), ub_ball - radius)
    return centre - radius, centre + radius
