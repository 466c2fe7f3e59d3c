"""Box reconstruction through a k-dimensional bottleneck (Mao et al., Theorem 3.10, Fig. 3 and 8).

Setting. Data lie in a random k-dimensional subspace of R^d spanned by the orthonormal columns of
Q (d x k, Haar-distributed). The best linear auto-encoder is PCA: encode with Q^T, decode with
Q, so the network is x -> Q Q^T x and reconstructs every data point exactly. Propagate the box
[x - eps, x + eps] through it, per output coordinate i (all radii below are divided by eps):

* optimal (exact) radius: ``r_opt_i = sum_l |(Q Q^T)_il|``: the radius of the true image box;
* layer-wise (IBP) radius: ``r_ibp_i = sum_j |Q_ij| sum_l |Q_lj|`` = ``(|Q| |Q^T| 1)_i``.

Results (our derivation; the Monte Carlo functions below check them):

* Layer-wise radius grows *linearly* in k: with u a uniform unit vector, E|u_1| |u_2| = 2/(pi d)
  exactly (E|g_1 g_2| = 2/pi for Gaussians and |g|^2 is independent of g/|g|), so
  ``E r_ibp = c(d) k`` with ``c(d) = 2/pi + (1 - 2/pi)/d -> 2/pi`` (the Theorem's constant).
* Optimal radius grows like *sqrt(k)*: for d -> infinity, d (Q Q^T)_il (i != l) becomes the inner
  product of two independent standard Gaussian k-vectors, whence
  ``E r_opt -> (2/sqrt(pi)) Gamma((k+1)/2) / Gamma(k/2) ~ sqrt(2 k / pi)``.
* Their ratio, the tightness of the PCA reconstruction, tends to Lemma 3.7's tau(k) ~ sqrt(pi/(2k)):
  an IBP-trained network cannot both reconstruct well and stay tight, so IBP training prefers
  lossy embeddings (small k) -- the regularisation the paper argues for.

Besides the PCA construction, :func:`trained_reconstruction` trains the same bottleneck (linear
or with a ReLU) with the standard or the IBP reconstruction loss and reports the same radii,
which shows the trade-off of Fig. 8 at small sizes.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lit_cert.bounds.box import interval_bounds


def c_closed_form(d: int) -> float:
    """Expected layer-wise radius per embedding dimension: ``2/pi + (1 - 2/pi)/d``."""
    return 2 / math.pi + (1 - 2 / math.pi) / d


def optimal_radius_limit(k: float) -> float:
    """``lim_{d->inf} E r_opt = (2/sqrt(pi)) Gamma((k+1)/2) / Gamma(k/2)`` (~ sqrt(2k/pi))."""
    return 2 / math.sqrt(math.pi) * math.exp(math.lgamma((k + 1) / 2) - math.lgamma(k / 2))


def random_subspace(d: int, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Orthonormal d x k basis of a Haar-random subspace (QR of a Gaussian, signs fixed)."""
    if not 1 <= k <= d:
        raise ValueError(f"need 1 <= k <= d, got k={k}, d={d}")
    q, r = torch.linalg.qr(torch.randn(d, k, generator=generator, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


def pca_radii(q: torch.Tensor) -> tuple[float, float]:
    """(optimal, layer-wise) radius per unit eps of x -> Q Q^T x, averaged over coordinates."""
    optimal = (q @ q.T).abs().sum(1).mean().item()
    layerwise = (q.abs() @ q.abs().sum(0)).mean().item()  # |Q| |Q^T| 1 without the d x d product
    return optimal, layerwise


def monte_carlo(d: int, k: int, trials: int = 20, seed: int = 0) -> dict:
    """Averages of the PCA radii over ``trials`` random subspaces."""
    g = torch.Generator().manual_seed(seed)
    opt = ibp = 0.0
    for _ in range(trials):
        o, i = pca_radii(random_subspace(d, k, g))
        opt, ibp = opt + o / trials, ibp + i / trials
    return {"d": d, "k": k, "optimal_radius": opt, "ibp_radius": ibp, "c": ibp / k, "tightness": opt / ibp,
            "c_closed_form": c_closed_form(d), "optimal_radius_limit": optimal_radius_limit(k)}


def growth_exponent(ks, radii) -> float:
    """Least-squares slope of log(radius) against log(k): ~0.5 for optimal, ~1 for layer-wise."""
    x = torch.log(torch.as_tensor(ks, dtype=torch.float64))
    y = torch.log(torch.as_tensor(radii, dtype=torch.float64))
    x = x - x.mean()
    return float((x * (y - y.mean())).sum() / (x * x).sum())


def _bottleneck(d: int, k: int, relu: bool) -> nn.Sequential:
    layers = [nn.Linear(d, k, bias=relu)] + ([nn.ReLU()] if relu else []) + [nn.Linear(k, d, bias=relu)]
    return nn.Sequential(*layers).double()


def reconstruction_radii(net: nn.Sequential, x: torch.Tensor, eps: float) -> dict:
    """IBP radius (per unit eps), worst-case L1 reconstruction error of the IBP box, clean L2 error."""
    with torch.no_grad():
        lb, ub = interval_bounds(net, x - eps, x + eps)
        worst = torch.maximum((ub - x).abs(), (x - lb).abs()).sum(1).mean().item()
        clean = (net(x) - x).norm(dim=1).mean().item()
    return {"ibp_radius": ((ub - lb) / (2 * eps)).mean().item(), "ibp_l1_error": worst, "clean_l2_error": clean}


def trained_reconstruction(d: int, k: int, eps: float, mode: str = "ibp", relu: bool = False, n: int = 500,
                           epochs: int = 200, lr: float = 5e-3, seed: int = 0) -> dict:
    """Train the d-k-d bottleneck on data from a random k-dim subspace and report its radii.

    ``mode="standard"`` minimises the clean L2 reconstruction error; ``mode="ibp"`` the L2 norm
    of the worst-case error over the IBP box (eps ramped up linearly over the first 40% of the
    epochs), both with full-batch Adam."""
    if mode not in ("standard", "ibp"):
        raise ValueError(f"mode must be 'standard' or 'ibp', got {mode!r}")
    g = torch.Generator().manual_seed(seed)
    q = random_subspace(d, k, g)
    x = torch.randn(n, k, generator=g, dtype=torch.float64) @ q.T
    torch.manual_seed(seed)
    net = _bottleneck(d, k, relu)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    ramp = max(1, int(0.4 * epochs))
    for epoch in range(epochs):
        opt.zero_grad()
        if mode == "standard":
            loss = (net(x) - x).norm(dim=1).mean()
        else:
            e = eps * min(1.0, (epoch + 1) / ramp)
            lb, ub = interval_bounds(net, x - e, x + e)
            loss = torch.maximum((ub - x).abs(), (x - lb).abs()).norm(dim=1).mean()
        loss.backward()
        opt.step()
    out = {"d": d, "k": k, "mode": mode, "relu": relu} | reconstruction_radii(net, x, eps)
    from lit_cert.metrics.tightness import local_tightness

    with torch.no_grad():
        out["tightness"] = local_tightness(net, x[:100], mode="logits").mean().item()
    return out
