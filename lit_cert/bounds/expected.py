"""Expected tight bounds (the ICLR 2020 submission "Expected Tight Bounds for Robust Training").

For an Affine-ReLU-Affine block ``A2 relu(A1 x + b1) + b2`` on the box with centre ``c`` and
radius ``r``, the ReLU is replaced by the diagonal mask ``M = diag(1{upper >= 0})`` (upper from
IBP), giving the interval ``A2 M (A1 c + b1) + b2 ± |A2 M A1| r``. The paper shows such bounds
are tight *in expectation* over random networks; they are **not sound**: a point of the box may
lie outside them. They are for training only and are never used to report certified accuracy
(``lit_cert.methods.base.CERTIFIERS`` does not offer them).

Depth: we apply the mask to every ReLU (masks from IBP upper bounds, also for convolutions),
which linearises the whole network; ``|spec · W_eff| r`` is obtained by back-substituting the K
specification rows (backward passes through the layers; no matrix is materialised).
"""

from __future__ import annotations

import torch
from torch import nn

from lit_cert.bounds.backsub import LinearBounds


def expected_bounds(net: nn.Module, lb: torch.Tensor, ub: torch.Tensor, spec: torch.Tensor | None = None):
    """(lower, upper) expected bounds of ``spec @ net(x)`` over the box -- not sound bounds."""
    return LinearBounds(net, lb, ub, relaxation="expected", intermediate="ibp").output_bounds(spec, need_upper=True)


def expected_margin_lower(net: nn.Module, lb: torch.Tensor, ub: torch.Tensor, spec: torch.Tensor) -> torch.Tensor:
    """Expected lower bounds of the margins (training signal only, never a certificate)."""
    return LinearBounds(net, lb, ub, relaxation="expected", intermediate="ibp").output_bounds(spec, need_upper=False)[0]
