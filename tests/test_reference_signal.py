"""The training signal is the references' (issue #11): loss *and* gradients.

The reference gradient is computed independently of lit_cert's BatchNorm machinery: a plain
functional forward of the clean batch gives the batch mean and variance as functions of the
parameters; every BatchNorm is then folded into the affine layer before it (weights and bias
become tensors computed from the parameters and those statistics) and replaced by an identity.
The method's own loss code run on that folded network is the reference; its gradient reaches the
original parameters only through the folding. Attacks are replaced by fixed points, as in the
issue's comparison with CTBench.
"""

import copy

import pytest
import torch
from torch import nn

from lit_cert.bounds import linf_box
from lit_cert.bounds.region import small_box
from lit_cert.layers import BatchNorm1d, BatchNorm2d
from lit_cert.methods import CROWNIBP, IBP, MTLIBP, SABR, STAPS, TAPS
from lit_cert.models import CNN3, ConvNet

from .helpers import synthetic_batch


@pytest.fixture
def batch():
    return synthetic_batch(24, train_size=32)


def fixed_point(lb, ub):
    """A deterministic point of the box (replaces every attack)."""
    pattern = torch.linspace(0.1, 0.9, lb[0].numel(), dtype=lb.dtype).view(lb.shape[1:])
    return (lb + (ub - lb) * pattern).detach()


@pytest.fixture
def fixed_attacks(monkeypatch):
    import lit_cert.methods.mtl_ibp as mtl
    import lit_cert.methods.pgd as pgd
    import lit_cert.methods.sabr as sabr
    import lit_cert.methods.taps as taps

    for module in (sabr, mtl, pgd):
        monkeypatch.setattr(module, "attack_in_box", lambda net, x, y, lb, ub, *a, **k: fixed_point(lb, ub))
    monkeypatch.setattr(taps, "pgd_maximize", lambda objective, lb, ub, **k: fixed_point(lb, ub))


def folded_copy(method, x, detach_stats=False):
    """The method with every BatchNorm folded into the preceding affine layer using the clean
    batch's statistics from a plain forward pass (see module docstring)."""
    ref = copy.deepcopy(method)
    src, dst = list(method.net), list(ref.net)
    for a, b in zip(src, dst):  # the reference shares the method's parameters (gradients land there)
        for name, p in a.named_parameters(recurse=False):
            setattr(b, name, p)
    h = x
    for i, layer in enumerate(src):
        if isinstance(layer, (BatchNorm1d, BatchNorm2d)):
            dims = [0] + list(range(2, h.dim()))
            mean, var = h.mean(dims), h.var(dims, unbiased=False)
            if detach_stats:
                mean, var = mean.detach(), var.detach()
            scale = layer.weight / torch.sqrt(var + layer.eps)
            shift = layer.bias - mean * scale
            shape = (1, -1) + (1,) * (h.dim() - 2)
            h = h * scale.view(shape) + shift.view(shape)
            affine = dst[i - 1]
            w, b = src[i - 1].weight, src[i - 1].bias
            del affine._parameters["weight"], affine._parameters["bias"]
            affine.weight = w * scale.view(-1, *([1] * (w.dim() - 1)))
            affine.bias = b * scale + shift
            ref.net[i] = nn.Identity()
        else:
            h = layer(h)
    return ref


def grads(loss, params):
    return torch.autograd.grad(loss, params, allow_unused=True)


def rel_error(g, ref):
    num = sum(((a - b) ** 2).sum() for a, b in zip(g, ref) if b is not None)
    return (num / sum((b ** 2).sum() for b in ref if b is not None)).sqrt().item()


CASES = {
    "IBP": (IBP, {}, {}),
    "IBP-kappa": (IBP, {}, {"kappa": 0.4}),
    "CROWNIBP": (CROWNIBP, {}, {"beta": 0.5}),
    "CROWNIBP-fused": (CROWNIBP, {"loss_fusion": True}, {"beta": 0.7}),
    "SABR": (SABR, {"lam": 0.3}, {}),
    "SABR-ctbench": (SABR, {"lam": 0.3, "box_convention": "ctbench"}, {}),
    "MTLIBP": (MTLIBP, {"alpha": 0.3, "attack_range_scale": 2.0}, {}),
    "TAPS": (TAPS, {"grad_scale": 2.0}, {}),
    "STAPS": (STAPS, {"lam": 0.5}, {}),
    "TAPS-ramp": (TAPS, {}, {"ramp_progress": 0.5}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_training_gradient_equals_the_reference(batch, fixed_attacks, name):
    dm, x, y = batch
    cls, kwargs, state = CASES[name]
    torch.manual_seed(0)
    m = cls(network=CNN3(width=0.5), data_info=dm.info, eps_train=0.05, eps_test=0.05, shi_reg=0.5, **kwargs).train()
    for key, value in {"eps": 0.04, "kappa": 0.0, "ramp_progress": 1.0, **state}.items():
        setattr(m, key, value)
    params = list(m.parameters())
    loss, logs = m.training_loss(x, y)
    g = grads(loss, params)
    ref = folded_copy(m, x)
    ref_loss, _ = ref.training_loss(x, y)
    g_ref = grads(ref_loss, params)
    assert loss.item() == pytest.approx(ref_loss.item(), rel=1e-5)
    assert all(gr is not None for gr in g_ref)
    assert rel_error(g, g_ref) <= 1e-5
    # and the statistics matter: the detached reference is a different gradient
    detached = folded_copy(m, x, detach_stats=True).training_loss(x, y)[0]
    assert rel_error(g, grads(detached, params)) > 1e-3


def test_detached_option_really_detaches(batch):
    dm, x, y = batch
    torch.manual_seed(0)
    m = IBP(network=CNN3(width=0.5), data_info=dm.info, eps_train=0.05, eps_test=0.05, bn_statistics="detached").train()
    m.eps, m.kappa = 0.04, 0.0
    params = list(m.parameters())
    g = grads(m.training_loss(x, y)[0], params)
    g_detached_ref = grads(folded_copy(m, x, detach_stats=True).training_loss(x, y)[0], params)
    assert rel_error(g, g_detached_ref) <= 1e-5
    assert not m.clean_pass_in_graph()  # kappa = 0 and constant statistics: the clean pass needs no graph
    with torch.enable_grad():
        logits = m.net(x)
    assert all(bn.batch_mean.requires_grad for bn in m.net if isinstance(bn, BatchNorm2d))
    scale, _ = [bn for bn in m.net if isinstance(bn, BatchNorm2d)][0].affine_params()
    assert torch.autograd.grad(scale.sum(), [p for p in m.net.parameters()], allow_unused=True)[0] is None  # conv weight unreached


def test_without_batchnorm_the_clean_pass_needs_no_graph(batch):
    dm, x, y = batch
    m = IBP(network=ConvNet(convs=[(4, 3, 2, 1)], fcs=[16], bn=False), data_info=dm.info, eps_train=0.05, eps_test=0.05)
    m.eps, m.kappa = 0.04, 0.0
    assert not m.clean_pass_in_graph()
    m.kappa = 0.5
    assert m.clean_pass_in_graph()


# --------------------------------------------------------------------------- SABR's region
X = torch.tensor([[0.0, 1.0, 0.5, 0.02]])
POINT = torch.tensor([[0.05, 0.95, 0.6, 0.0]])


@pytest.mark.parametrize("convention,lam,lower,upper", [
    # eps 0.1; clipped ball: [0, .1], [.9, 1], [.4, .6], [0, .12]
    ("sabr", 0.4, [0.01, 0.91, 0.52, 0.0], [0.09, 0.99, 0.60, 0.08]),  # radius 0.04 everywhere
    ("ctbench", 0.4, [0.03, 0.93, 0.52, 0.0], [0.07, 0.97, 0.60, 0.048]),  # radius 0.4 x half-width
    # lam 0.8: where the ball is narrower than 0.16 the box is the ball (the authors' code would
    # give [0.84, 1.0] for the pixel at 1, outside the ball; lit_cert keeps it inside)
    ("sabr", 0.8, [0.0, 0.9, 0.44, 0.0], [0.1, 1.0, 0.60, 0.12]),
])
def test_small_box_conventions_by_hand(convention, lam, lower, upper):
    lb, ub = small_box(X, 0.1, lam, POINT, convention)
    assert torch.allclose(lb, torch.tensor([lower]), atol=1e-6) and torch.allclose(ub, torch.tensor([upper]), atol=1e-6)
    ball_lb, ball_ub = linf_box(X, 0.1)
    assert torch.all(lb >= ball_lb - 1e-7) and torch.all(ub <= ball_ub + 1e-7)


def test_sabr_attacks_the_whole_ball_then_projects(batch, monkeypatch):
    import lit_cert.methods.sabr as sabr

    dm, x, y = batch
    seen = {}

    def attack(net, x_, y_, lb, ub, steps, restarts, step_size, policy):
        seen.update(lb=lb, ub=ub, policy=policy, steps=steps)
        return ub  # the adversarial point at a corner of the ball

    monkeypatch.setattr(sabr, "attack_in_box", attack)
    m = SABR(network=CNN3(width=0.5), data_info=dm.info, eps_train=0.1, eps_test=0.1, lam=0.25).train()
    m.net(x)
    lb, ub = m.input_region(x, y, 0.1)
    ball_lb, ball_ub = linf_box(x, 0.1)
    assert torch.equal(seen["lb"], ball_lb) and torch.equal(seen["ub"], ball_ub)
    assert seen["policy"] == "sabr" and seen["steps"] == 8  # the authors' attack
    expected = small_box(x, 0.1, 0.25, ball_ub, "sabr")
    assert torch.equal(lb, expected[0]) and torch.equal(ub, expected[1])


def test_mtl_ibp_attacks_a_scaled_range(batch, monkeypatch):
    import lit_cert.methods.mtl_ibp as mtl

    dm, x, y = batch
    seen = {}
    monkeypatch.setattr(mtl, "attack_in_box", lambda net, x_, y_, lb, ub, *a, **k: seen.update(lb=lb, ub=ub) or lb)
    m = MTLIBP(network=CNN3(width=0.5), data_info=dm.info, eps_train=0.1, eps_test=0.1, attack_range_scale=2.0).train()
    m.eps, m.kappa = 0.03, 0.0
    m.training_loss(x, y)
    lb, ub = linf_box(x, 0.06)
    assert torch.equal(seen["lb"], lb) and torch.equal(seen["ub"], ub)


def test_taps_trains_with_ibp_during_the_ramp(batch, fixed_attacks):
    dm, x, y = batch
    torch.manual_seed(0)
    taps = TAPS(network=CNN3(width=0.5), data_info=dm.info, eps_train=0.05, eps_test=0.05).train()
    ibp = IBP(network=CNN3(width=0.5), data_info=dm.info, eps_train=0.05, eps_test=0.05).train()
    ibp.load_state_dict(taps.state_dict())
    for m in (taps, ibp):
        m.eps, m.kappa, m.ramp_progress = 0.02, 0.0, 0.3
    assert taps.training_loss(x, y)[0].item() == pytest.approx(ibp.training_loss(x, y)[0].item(), rel=1e-6)
    taps.ramp_progress = 1.0
    loss, logs = taps.training_loss(x, y)
    assert "taps_loss" in logs and loss.item() == pytest.approx((logs["taps_loss"] * logs["ibp_loss"]).item(), rel=1e-5)
    taps.ibp_during_ramp, taps.ramp_progress = False, 0.3
    assert "taps_loss" in taps.training_loss(x, y)[1]
