"""Triangle and Parallelogram LP relaxations (lit_cert.bounds.lp) and training with them.

The reference is an independent, plain encoding: every neuron of every layer bounded by its own
scipy LP (no IBP screening, no envelope theorem), the relaxation rows written from seed 002
App. K.1.
"""

import numpy as np
import pytest
import torch
from scipy.optimize import linprog

from lit_cert.bounds import linf_box, margin_spec
from lit_cert.bounds.backsub import linear_bounds
from lit_cert.bounds.lp import lp_margin_bounds
from lit_cert.bounds.registry import compute_bounds
from lit_cert.data import SyntheticImages
from lit_cert.methods import LPRelaxationTraining

from .exact import affine_layers, min_linear_objective, tiny_relu_net


def reference_lp(net, lb, ub, c, relaxation):
    """min c @ net(x) over the LP relaxation, every bound by its own LP (plain scipy)."""
    layers = affine_layers(net)
    n0 = len(lb)
    bounds = []  # (l, u) of each hidden pre-activation

    def solve(k, obj, const):
        """min obj @ h_{k-1} + const over layers < k (h_{-1} = x)."""
        sizes = [n0] + [w.shape[0] for w, _ in layers[:k]]
        off = np.cumsum([0] + sizes)
        nvar = off[-1]
        a_ub, b_ub, a_eq, b_eq = [], [], [], []
        col = [(lo, hi) for lo, hi in zip(lb, ub)] + [(None, None)] * (nvar - n0)
        for j in range(k):
            w, b = layers[j]
            l, u = bounds[j]
            for i in range(w.shape[0]):
                h = off[j + 1] + i
                zrow = np.zeros(nvar)
                zrow[off[j] : off[j + 1]] = w[i]
                hrow = np.zeros(nvar)
                hrow[h] = 1
                if u[i] <= 0:
                    col[h] = (0, 0)
                elif l[i] >= 0:
                    a_eq.append(hrow - zrow); b_eq.append(b[i])
                else:
                    col[h] = (0, None)
                    a_ub.append(zrow - hrow); b_ub.append(-b[i])  # z <= h
                    if relaxation == "triangle":
                        lam = u[i] / (u[i] - l[i])
                        a_ub.append(hrow - lam * zrow); b_ub.append(lam * (b[i] - l[i]))
                    else:
                        a_ub.append(hrow); b_ub.append(u[i])
                        a_ub.append(hrow - zrow); b_ub.append(b[i] - l[i])
        cost = np.zeros(nvar)
        cost[off[k] : off[k + 1]] = obj
        res = linprog(cost, A_ub=np.array(a_ub) if a_ub else None, b_ub=b_ub or None, A_eq=np.array(a_eq) if a_eq else None,
                      b_eq=b_eq or None, bounds=col, method="highs")
        assert res.status == 0
        return res.fun + const

    for k in range(len(layers) - 1):
        w, b = layers[k]
        lo = np.array([solve(k, w[i], b[i]) for i in range(w.shape[0])])
        hi = np.array([-solve(k, -w[i], -b[i]) for i in range(w.shape[0])])
        bounds.append((lo, hi))
    w, b = layers[-1]
    return solve(len(layers) - 1, c @ w, c @ b)


def problem(seed, sizes=(3, 8, 6, 3), eps=0.3):
    net = tiny_relu_net(sizes, seed=seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(2, sizes[0], dtype=torch.float64, generator=g)
    y = torch.tensor([0, sizes[-1] - 1])
    return net, x - eps, x + eps, margin_spec(y, sizes[-1], torch.float64)


@pytest.mark.parametrize("relaxation", ["triangle", "parallelogram"])
@pytest.mark.parametrize("backend", ["highspy", "scipy"])
@pytest.mark.parametrize("seed", [0, 1])
def test_bounds_equal_an_independent_lp_and_are_sound(relaxation, backend, seed):
    net, lb, ub, spec = problem(seed)
    got = lp_margin_bounds(net, lb, ub, spec, relaxation, backend)
    for i in range(2):
        for m in range(3):
            if spec[i, m].abs().sum() == 0:
                assert got[i, m] == 0
                continue
            c = spec[i, m].numpy()
            ref = reference_lp(net, lb[i].numpy(), ub[i].numpy(), c, relaxation)
            assert got[i, m].item() == pytest.approx(ref, abs=1e-6)
            assert got[i, m].item() <= min_linear_objective(net, lb[i].numpy(), ub[i].numpy(), c) + 1e-7


def test_triangle_is_the_tightest():
    """Triangle >= Parallelogram, CROWN and DeepZ (seed 002 App. B: the tightest single-neuron
    relaxation), and sound against sampled points."""
    for seed in range(3):
        net, lb, ub, spec = problem(seed, sizes=(4, 10, 8, 3), eps=0.25)
        with torch.no_grad():
            tri = lp_margin_bounds(net, lb, ub, spec, "triangle")
            par = lp_margin_bounds(net, lb, ub, spec, "parallelogram")
            for other in (par, *(linear_bounds(net, lb, ub, spec, r, need_upper=False)[0] for r in ("crown", "deepz", "hbox"))):
                assert torch.all(tri >= other - 1e-7)
            pts = lb + (ub - lb) * torch.rand(200, *lb.shape, dtype=lb.dtype)
            for i in range(2):
                vals = net(pts[:, i]) @ spec[i].T
                assert torch.all(vals >= tri[i] - 1e-7)


@pytest.mark.parametrize("relaxation", ["triangle", "parallelogram"])
def test_gradients_match_finite_differences(relaxation):
    net, lb, ub, spec = problem(1)
    params = [net[0].weight, net[0].bias, net[2].weight, net[4].bias]
    value = lp_margin_bounds(net, lb, ub, spec, relaxation).sum()
    grads = torch.autograd.grad(value, params)
    g = torch.Generator().manual_seed(0)
    h = 1e-6
    checked = 0
    for p, grad in zip(params, grads):
        for _ in range(3):
            idx = tuple(int(torch.randint(0, s, (1,), generator=g)) for s in p.shape)
            with torch.no_grad():
                p[idx] += h
                up = lp_margin_bounds(net, lb, ub, spec, relaxation).sum().item()
                p[idx] -= 2 * h
                down = lp_margin_bounds(net, lb, ub, spec, relaxation).sum().item()
                p[idx] += h
            assert grad[idx].item() == pytest.approx((up - down) / (2 * h), abs=1e-5)
            checked += grad[idx].item() != 0
    assert checked >= 4  # most of the probed entries carry a signal


def test_training_and_certifying_with_an_lp_relaxation():
    dm = SyntheticImages(in_shape=(1, 4, 4), train_size=32, val_size=8, test_size=8, batch_size=16)
    dm.setup()
    x, y = dm.train_set.images[:8].float() / 255, dm.train_set.labels[:8]
    from lit_cert.models import FC

    m = LPRelaxationTraining(network=FC(hidden=(12, 10)), data_info=dm.info, eps_train=0.05, eps_test=0.05,
                             relaxation="parallelogram", certifier="triangle").train()
    m.eps, m.kappa = 0.05, 0.0
    loss = m.training_loss(x, y)[0]
    grads = torch.autograd.grad(loss, list(m.parameters()), allow_unused=True)
    assert torch.isfinite(loss) and any(g is not None and g.abs().sum() > 0 for g in grads)
    lb, ub = linf_box(x, 0.05)
    spec = margin_spec(y, dm.info.num_classes)
    tri = compute_bounds(m.net.eval(), lb, ub, spec, "triangle")
    crown = compute_bounds(m.net, lb, ub, spec, "crown")
    assert torch.all(tri >= crown - 1e-4)


def test_lp_training_with_batchnorm_bounds_the_clean_batch_network():
    """In training mode the LP probes the layers with unit vectors: they must not replace the
    clean batch's BatchNorm statistics nor update the running ones (they used to, so the LP
    bounded a different network)."""
    from lit_cert.layers import frozen_batch_stats, recording_batchnorms
    from lit_cert.models import FC

    dm = SyntheticImages(in_shape=(1, 4, 4), train_size=32, val_size=8, test_size=8, batch_size=16)
    dm.setup()
    x, y = dm.train_set.images[:8].float() / 255, dm.train_set.labels[:8]
    m = LPRelaxationTraining(network=FC(hidden=(10, 8), bn=True), data_info=dm.info, eps_train=0.05, eps_test=0.05,
                             relaxation="triangle").train()
    m.eps, m.kappa = 0.05, 0.0
    bns = recording_batchnorms(m.net)
    with torch.no_grad():
        m.net(x)  # the clean pass: what the bounds must describe
    clean = [(bn.batch_mean.clone(), bn.running_mean.clone()) for bn in bns]
    lb, ub = linf_box(x, 0.05)
    spec = margin_spec(y, dm.info.num_classes)
    low = m.propagate(lb, ub, spec, None).detach()
    for bn, (mean, running) in zip(bns, clean):
        assert torch.equal(bn.batch_mean, mean) and torch.equal(bn.running_mean, running)
    with torch.no_grad(), frozen_batch_stats(m.net):  # sampled points of the clean-batch network
        pts = lb.unsqueeze(1) + (ub - lb).unsqueeze(1) * torch.rand(8, 300, *lb.shape[1:])
        true = torch.einsum("bmk,bsk->bsm", spec, m.net(pts.flatten(0, 1)).view(8, 300, -1)).amin(1)
    assert torch.all(low <= true + 1e-5)
    assert torch.allclose(low, compute_bounds(m.net, lb, ub, spec, "triangle").detach(), atol=1e-5)
