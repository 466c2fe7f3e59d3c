"""How valid are expected bounds? (seed 001, Sec. 4 "True Bounds in Expectation", Fig. 1a, and
"Tighter Bounds in Expectation", Fig. 2), with the paper's construction:

* a block ``g(x) = A2 max(A1 x + b1, 0) + b2`` with ``A1 in R^{k x n}``, ``A2 in R^{1 x k}``,
  weights drawn from N(0, 1/sqrt(n)) and N(0, 1/sqrt(k)) (standard deviations), biases as
  PyTorch initialises them (uniform in +-1/sqrt(fan_in));
* an input centre ``x ~ N(0, I)`` and the box ``[x - eps, x + eps]`` (eps 0.1 in the paper);
* the true interval estimated by the minimum and maximum of ``g`` over ``samples`` uniform points
  of the box and all ``2^n`` corners (random corners instead when ``n > 20``);
* ``Gamma = |[L_M, U_M] cap [L_true, U_true]| / |[L_true, U_true]|`` (1 iff the expected bounds
  contain the estimated true interval), averaged over ``trials`` random blocks; and the ratio of
  IBP's interval width to the expected bounds' width (Fig. 2).
"""

from __future__ import annotations

import copy
import itertools

import torch
from torch import nn

from lit_cert.bounds.box import interval_bounds
from lit_cert.bounds.expected import expected_bounds


def network(widths: list[int], generator: torch.Generator) -> nn.Sequential:
    """A random fully connected ReLU network of the paper's kind: ``widths`` = input, hidden...,
    output; every affine layer's weights N(0, 1/sqrt(fan_in)), biases uniform in +-1/sqrt(fan_in)."""
    mods: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        mods += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(widths) - 2 else [])
    return _initialised(nn.Sequential(*mods), generator)


def _initialised(net: nn.Sequential, generator: torch.Generator) -> nn.Sequential:
    """``net`` in float64 with every affine layer's weights N(0, 1/sqrt(fan_in)) and biases uniform
    in +-1/sqrt(fan_in), drawn from ``generator`` layer by layer (weights, then biases)."""
    net = net.double()
    with torch.no_grad():
        for m in net:
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=generator, dtype=torch.float64) / fan_in**0.5)
                m.bias.copy_((torch.rand(m.bias.shape, generator=generator, dtype=torch.float64) * 2 - 1) / fan_in**0.5)
    return net


def block(n: int, k: int, generator: torch.Generator) -> nn.Sequential:
    """The paper's random Affine-ReLU-Affine block with one output."""
    return network([n, k, 1], generator)


def _extremes(net: nn.Module, points, chunk: int = 1 << 17) -> tuple[float, float]:
    lo, hi = float("inf"), float("-inf")
    for start in range(0, len(points), chunk):
        out = net(points[start : start + chunk])
        lo, hi = min(lo, out.min().item()), max(hi, out.max().item())
    return lo, hi


def corners(lb: torch.Tensor, ub: torch.Tensor, limit_dim: int = 20, generator: torch.Generator | None = None, count: int = 0):
    """All ``2^n`` corners of the box for ``n <= limit_dim``, else ``count`` random ones."""
    n = lb.shape[-1]
    if n <= limit_dim:
        bits = torch.tensor(list(itertools.product((0.0, 1.0), repeat=n)), dtype=lb.dtype)
    else:
        bits = (torch.rand(count, n, generator=generator) < 0.5).to(lb.dtype)
    return lb + (ub - lb) * bits


def gamma_and_ratio(n: int, k: int, trials: int = 1000, samples: int = 1_000_000, radius: float = 0.1, seed: int = 0,
                    layers: int = 2, coverage: bool = True) -> dict:
    """Gamma and the IBP/expected width ratio averaged over ``trials`` random networks of
    ``layers`` affine layers (2: the paper's block; deeper: every hidden layer of width ``k``, as
    its Fig. 1b with k = n and Fig. 3a/b). ``coverage=False`` skips the sampled true interval
    (Gamma is then None): the width ratio needs no sampling, Gamma at n = 500 could not be
    estimated by sampling anyway."""
    g = torch.Generator().manual_seed(seed)
    gammas, ratios = [], []
    with torch.no_grad():
        for _ in range(trials):
            net = network([n] + [k] * (layers - 1) + [1], g)
            c = torch.randn(1, n, generator=g, dtype=torch.float64)
            lb, ub = c - radius, c + radius
            e_lo, e_hi = (b[0, 0].item() for b in expected_bounds(net, lb, ub))
            i_lo, i_hi = (b[0, 0].item() for b in interval_bounds(net, lb, ub))
            ratios.append((i_hi - i_lo) / max(e_hi - e_lo, 1e-12))
            if not coverage:
                continue
            pts = lb + (ub - lb) * torch.rand(samples, n, generator=g, dtype=torch.float64)
            s_lo, s_hi = _extremes(net, pts)
            v_lo, v_hi = _extremes(net, corners(lb[0], ub[0], generator=g, count=samples))
            t_lo, t_hi = min(s_lo, v_lo), max(s_hi, v_hi)
            covered = max(0.0, min(e_hi, t_hi) - max(e_lo, t_lo))
            gammas.append(covered / max(t_hi - t_lo, 1e-12))
    return {"n": n, "k": k, "layers": layers, "eps": radius, "trials": trials, "samples": samples if coverage else 0,
            "gamma": sum(gammas) / len(gammas) if gammas else None, "gamma_min": min(gammas) if gammas else None,
            "ibp_over_expected_width": sum(ratios) / len(ratios)}


def exact_coverage(net: nn.Module, x: torch.Tensor, eps: float, timeout: float = 60.0) -> dict:
    """Seed 001 Table 1 on a *trained* network: every logit's exact range over the eps-box of
    ``x`` (1, *in_shape) -- the MILP's optimum of ``min`` and ``max`` (lit_cert.certify.milp,
    intermediate bounds from CROWN) -- against the expected bounds and IBP's: Gamma per logit
    (the share of the exact interval the expected one covers), and the widths, over the logits
    whose two MILPs both reached optimality (``optimal`` of ``logits``)."""
    import numpy as np

    from lit_cert.bounds.affine import dense_affine_blocks
    from lit_cert.bounds.backsub import LinearBounds
    from lit_cert.bounds.box import flat_layers
    from lit_cert.bounds.expected import default_masks
    from lit_cert.bounds.region import linf_box
    from lit_cert.certify.milp import exact_ranges

    net = copy.deepcopy(net).eval().double()
    x = x.double()
    lb, ub = linf_box(x, eps)
    with torch.no_grad():
        crown = LinearBounds(net, lb, ub, "crown", "same")
        crown.output_bounds(None, need_upper=False)
        relu_idx = [i for i, m in enumerate(flat_layers(net)) if isinstance(m, nn.ReLU)]
        pre = [tuple(t[0].flatten().numpy() for t in crown.relu_input_bounds(i)) for i in relu_idx]
        e_lo, e_hi = (t[0].numpy() for t in expected_bounds(net, lb, ub, masks=default_masks(net)))
        i_lo, i_hi = (t[0].numpy() for t in interval_bounds(net, lb, ub))
    k = e_lo.size
    eye = np.eye(k)
    ranges = exact_ranges(dense_affine_blocks(net, tuple(x.shape[1:])), lb.flatten().numpy(), ub.flatten().numpy(), pre,
                          np.concatenate([eye, -eye]), timeout)
    # a logit counts only where both its MILPs reached optimality: a stopped search's best point
    # gives an *inner* estimate of the range, against which any coverage would be overstated
    optimal = np.array([ranges[j]["optimal"] and ranges[k + j]["optimal"] for j in range(k)])
    t_lo = np.array([r["value"] if r["value"] is not None else np.nan for r in ranges[:k]], dtype=float)
    t_hi = -np.array([r["value"] if r["value"] is not None else np.nan for r in ranges[k:]], dtype=float)
    covered = np.clip(np.minimum(e_hi, t_hi) - np.maximum(e_lo, t_lo), 0, None)
    gamma = covered / np.maximum(t_hi - t_lo, 1e-12)
    return {"gamma": gamma[optimal], "exact_width": (t_hi - t_lo)[optimal], "expected_width": (e_hi - e_lo)[optimal],
            "ibp_width": (i_hi - i_lo)[optimal], "ibp_width_all": i_hi - i_lo, "expected_width_all": e_hi - e_lo,
            "optimal": int(optimal.sum()), "logits": k, "all_optimal": bool(optimal.all())}


def conv_network(depth: int, channels: int, in_channels: int, size: int, generator: torch.Generator) -> nn.Sequential:
    """A random convolutional ReLU network: ``depth - 1`` convolutions (3x3, stride 1, padding 1,
    ``channels`` filters, each followed by a ReLU) and a final linear map to one output, so
    ``depth`` affine layers in all; weights N(0, 1/sqrt(fan_in)), biases uniform in
    +-1/sqrt(fan_in), as :func:`network`."""
    mods: list[nn.Module] = []
    c = in_channels
    for _ in range(depth - 1):
        mods += [nn.Conv2d(c, channels, 3, padding=1), nn.ReLU()]
        c = channels
    mods += [nn.Flatten(), nn.Linear(c * size * size, 1)]
    return _initialised(nn.Sequential(*mods), generator)


def conv_width_ratio(depth: int, channels: int = 8, in_channels: int = 3, size: int = 8, radius: float = 0.1,
                     trials: int = 20, samples: int = 2000, seed: int = 0) -> dict:
    """Seed 001 Fig. 3c/d: expected bounds of random convolutional networks with the masks taken
    from IBP's upper bounds (the paper's cheaper variant for convolutions), against IBP: the
    IBP/expected width ratio of the output, and Gamma against the range of ``samples`` uniform
    points and as many random corners (a lower estimate of the true range, so Gamma is an upper
    estimate of the coverage), averaged over ``trials`` networks."""
    g = torch.Generator().manual_seed(seed)
    gammas, ratios = [], []
    with torch.no_grad():
        for _ in range(trials):
            net = conv_network(depth, channels, in_channels, size, g)
            c = torch.randn(1, in_channels, size, size, generator=g, dtype=torch.float64)
            lb, ub = c - radius, c + radius
            e_lo, e_hi = (b[0, 0].item() for b in expected_bounds(net, lb, ub, masks="ibp"))
            i_lo, i_hi = (b[0, 0].item() for b in interval_bounds(net, lb, ub))
            ratios.append((i_hi - i_lo) / max(e_hi - e_lo, 1e-12))
            if samples:
                pts = lb + (ub - lb) * torch.rand(samples, *lb.shape[1:], generator=g, dtype=torch.float64)
                vertices = lb + (ub - lb) * (torch.rand(samples, *lb.shape[1:], generator=g) < 0.5).double()
                s_lo, s_hi = _extremes(net, pts, chunk=512)
                v_lo, v_hi = _extremes(net, vertices, chunk=512)
                t_lo, t_hi = min(s_lo, v_lo), max(s_hi, v_hi)
                gammas.append(max(0.0, min(e_hi, t_hi) - max(e_lo, t_lo)) / max(t_hi - t_lo, 1e-12))
    return {"layers": depth, "channels": channels, "eps": radius, "trials": trials, "samples": samples,
            "gamma": sum(gammas) / len(gammas) if gammas else None, "gamma_min": min(gammas) if gammas else None,
            "ibp_over_expected_width": sum(ratios) / len(ratios)}


def output_polytope(n: int = 20, hidden: tuple[int, ...] = (100, 100, 100, 100), radius: float = 0.1,
                    samples: int = 100_000, seed: int = 0) -> dict:
    """Seed 001 Fig. 4: a random ``n-100-100-100-100-2`` network and one eps-box; the outputs of
    ``samples`` uniform points of the box (the Monte-Carlo picture of the output set), the
    expected bounds and IBP's bounds of both outputs. Returns the points (``samples x 2``), the
    two boxes, and per output: the share of the sampled range the expected interval covers
    (Gamma), the share of sampled points inside the expected box, and the IBP/expected width."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        net = network([n, *hidden, 2], g)
        c = torch.randn(1, n, generator=g, dtype=torch.float64)
        lb, ub = c - radius, c + radius
        pts = net(lb + (ub - lb) * torch.rand(samples, n, generator=g, dtype=torch.float64))
        e_lo, e_hi = (b[0] for b in expected_bounds(net, lb, ub))
        i_lo, i_hi = (b[0] for b in interval_bounds(net, lb, ub))
    t_lo, t_hi = pts.min(0).values, pts.max(0).values
    gamma = ((torch.minimum(e_hi, t_hi) - torch.maximum(e_lo, t_lo)).clamp(min=0) / (t_hi - t_lo).clamp(min=1e-12))
    inside = ((pts >= e_lo) & (pts <= e_hi)).all(1).double().mean().item()
    return {"points": pts, "expected": (e_lo, e_hi), "ibp": (i_lo, i_hi), "sampled": (t_lo, t_hi),
            "gamma": gamma.tolist(), "inside": inside, "ibp_over_expected_width": ((i_hi - i_lo) / (e_hi - e_lo)).tolist()}
